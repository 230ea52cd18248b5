from __future__ import annotations

import datetime as dt

from tests.conftest import StoreTarget


def test_round_trip_on_every_backend(target: StoreTarget) -> None:
    cat = target.open()
    try:
        cat.create(id="GDP", frequency="quarterly")
        cat.write("GDP", ([dt.date(2020, 1, 1)], [1.5]))
        assert cat.read("GDP").column("value").to_pylist() == [1.5]
    finally:
        cat.close()
