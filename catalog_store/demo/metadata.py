"""Metadata of the demo series: ids, titles, units and tags for each CSV column.

The descriptions and units follow the sources' own documentation (FRED, BLS) as
summarised in this directory's README.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalog_store.models import SeriesSpec

MACRO_FILE = "us_macro_quarterly.csv"
EMPLOYMENT_FILE = "us_employment_monthly.csv"
STOCKS_FILE = "stocks_monthly.csv"

CHAINED_2005 = "Billions of chained 2005 dollars"
SAAR = "seasonally adjusted annual rate"
SA = "seasonally adjusted"
NSA = "not seasonally adjusted"


@dataclass(frozen=True)
class DemoSpec:
    """Where one demo series comes from (file and column or symbol) and its metadata."""

    dataset: str
    column: str
    id: str
    title: str
    description: str
    source: str
    frequency: str
    units: str
    seasonal_adjustment: str
    tags: tuple[str, ...]
    attributes: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> SeriesSpec:
        return SeriesSpec.model_validate(
            {
                "id": self.id,
                "title": self.title,
                "description": self.description,
                "source": self.source,
                "frequency": self.frequency,
                "units": self.units,
                "seasonal_adjustment": self.seasonal_adjustment,
                "tags": list(self.tags),
                "attributes": {"dataset": self.dataset, "column": self.column, **self.attributes},
            }
        )


def _macro(
    column: str,
    series_id: str,
    title: str,
    description: str,
    units: str,
    adjustment: str,
    tags: tuple[str, ...],
    source: str = "FRED",
) -> DemoSpec:
    return DemoSpec(
        MACRO_FILE,
        column,
        series_id,
        title,
        description,
        source,
        "quarterly",
        units,
        adjustment,
        ("macro", *tags),
    )


MACRO = (
    _macro(
        "realgdp",
        "US.REALGDP",
        "Real Gross Domestic Product",
        "Real gross domestic product of the United States.",
        CHAINED_2005,
        SAAR,
        ("national-accounts", "gdp", "real"),
    ),
    _macro(
        "realcons",
        "US.REALCONS",
        "Real Personal Consumption Expenditures",
        "Real personal consumption expenditures of the United States.",
        CHAINED_2005,
        SAAR,
        ("national-accounts", "consumption", "real"),
    ),
    _macro(
        "realinv",
        "US.REALINV",
        "Real Gross Private Domestic Investment",
        "Real gross private domestic investment of the United States.",
        CHAINED_2005,
        SAAR,
        ("national-accounts", "investment", "real"),
    ),
    _macro(
        "realgovt",
        "US.REALGOVT",
        "Real Federal Consumption Expenditures and Gross Investment",
        "Real federal government consumption expenditures and gross investment.",
        CHAINED_2005,
        SAAR,
        ("national-accounts", "government", "real"),
    ),
    _macro(
        "realdpi",
        "US.REALDPI",
        "Real Disposable Personal Income",
        "Real disposable personal income of the United States.",
        CHAINED_2005,
        SAAR,
        ("income", "real"),
    ),
    _macro(
        "cpi",
        "US.CPI",
        "Consumer Price Index for All Urban Consumers: All Items",
        "Consumer price index for all urban consumers, all items, at the end of the quarter.",
        "Index 1982-1984=100",
        SA,
        ("prices", "inflation"),
    ),
    _macro(
        "m1",
        "US.M1",
        "M1 Money Stock",
        "Nominal M1 money stock at the end of the quarter.",
        "Billions of dollars",
        SA,
        ("money",),
    ),
    _macro(
        "tbilrate",
        "US.TBILRATE",
        "3-Month Treasury Bill: Secondary Market Rate",
        "Quarterly average of the monthly 3-month Treasury bill secondary market rate.",
        "Percent",
        NSA,
        ("interest-rates", "treasury"),
    ),
    _macro(
        "unemp",
        "US.UNRATE",
        "Civilian Unemployment Rate",
        "Civilian unemployment rate of the United States.",
        "Percent",
        SA,
        ("labor", "unemployment"),
        source="BLS",
    ),
    _macro(
        "pop",
        "US.POP",
        "Total Population",
        "Total population of the United States at the end of the quarter, all ages, "
        "including armed forces overseas.",
        "Millions of persons",
        NSA,
        ("population",),
    ),
    _macro(
        "infl",
        "US.INFL",
        "Inflation Rate",
        "Annualised quarterly inflation, 400 * ln(CPI(t) / CPI(t-1)), derived from US.CPI. "
        "Missing for 1959Q1, which has no earlier quarter in the data set.",
        "Percent, annualized",
        SA,
        ("prices", "inflation", "derived"),
    ),
    _macro(
        "realint",
        "US.REALINT",
        "Real Interest Rate",
        "Ex-post real interest rate: the 3-month Treasury bill rate minus the inflation "
        "rate (US.TBILRATE - US.INFL). Missing for 1959Q1, like US.INFL.",
        "Percent",
        "",
        ("interest-rates", "real", "derived"),
    ),
)

_SECTORS = (
    ("nonfarm", "Total Nonfarm"),
    ("private", "Total Private"),
    ("goods_producing", "Goods-Producing"),
    ("service_providing", "Service-Providing"),
    ("private_service_providing", "Private Service-Providing"),
    ("mining_and_logging", "Mining and Logging"),
    ("construction", "Construction"),
    ("manufacturing", "Manufacturing"),
    ("durable_goods", "Durable Goods"),
    ("nondurable_goods", "Nondurable Goods"),
    # The published file misspells this column; the series id does not.
    ("trade_transportation_utilties", "Trade, Transportation, and Utilities"),
    ("wholesale_trade", "Wholesale Trade"),
    ("retail_trade", "Retail Trade"),
    ("transportation_and_warehousing", "Transportation and Warehousing"),
    ("utilities", "Utilities"),
    ("information", "Information"),
    ("financial_activities", "Financial Activities"),
    ("professional_and_business_services", "Professional and Business Services"),
    ("education_and_health_services", "Education and Health Services"),
    ("leisure_and_hospitality", "Leisure and Hospitality"),
    ("other_services", "Other Services"),
    ("government", "Government"),
)


def _employment(column: str, name: str) -> DemoSpec:
    series_id = "US.PAYEMS." + column.replace("utilties", "utilities").upper()
    return DemoSpec(
        EMPLOYMENT_FILE,
        column,
        series_id,
        f"All Employees, {name}",
        f"Number of employees on nonfarm payrolls in the United States, {name.lower()} "
        "sector, from the BLS Current Employment Statistics survey.",
        "BLS",
        "monthly",
        "Thousands of persons",
        SA,
        ("labor", "employment", "payrolls", *(("headline",) if column == "nonfarm" else ())),
    )


EMPLOYMENT = (
    *(_employment(column, name) for column, name in _SECTORS),
    DemoSpec(
        EMPLOYMENT_FILE,
        "nonfarm_change",
        "US.PAYEMS.NONFARM_CHANGE",
        "All Employees, Total Nonfarm, Change from Previous Month",
        "Monthly change in the number of employees on total nonfarm payrolls in the "
        "United States, from the BLS Current Employment Statistics survey.",
        "BLS",
        "monthly",
        "Thousands of persons, change from previous month",
        SA,
        ("labor", "employment", "payrolls", "headline"),
    ),
)

_COMPANIES = (
    ("MSFT", "Microsoft Corporation", "NASDAQ"),
    ("AMZN", "Amazon.com, Inc.", "NASDAQ"),
    ("IBM", "International Business Machines Corporation", "NYSE"),
    ("GOOG", "Google Inc.", "NASDAQ"),
    ("AAPL", "Apple Inc.", "NASDAQ"),
)

STOCKS = tuple(
    DemoSpec(
        STOCKS_FILE,
        "price",
        symbol,
        f"{company} ({symbol}) share price",
        f"Monthly share price of {company} ({exchange}: {symbol}) in US dollars, one "
        "value per month dated the first of the month, as published in the Vega "
        "example data sets. The values are adjusted for stock splits (and apparently "
        "dividends) up to 2010, so early values differ from the prices quoted then.",
        "market",
        "monthly",
        "USD per share",
        "",
        ("stocks", "equity", "prices", exchange.lower()),
        {"symbol": symbol, "exchange": exchange},
    )
    for symbol, company, exchange in _COMPANIES
)

ALL: tuple[DemoSpec, ...] = (*MACRO, *EMPLOYMENT, *STOCKS)
