"""Property-based run over the published OpenAPI document: no 5xx, every response as documented."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.app import create_app
from tests.conftest import StoreTarget
from tests.gateway.conftest import seed, settings_for

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 25
#: The whole run stops drawing new operations after this long (each is bounded too).
BUDGET_SECONDS = 90


def is_rest(path: str) -> bool:
    """The REST routes; ``/graphql`` has its own tests."""
    return path.startswith(("/v1/", "/health/", "/metrics"))


def exercise(operation: APIOperation, statuses: set[int]) -> None:
    """Valid and invalid requests for one operation; raises on the first failed check."""
    strategy = st.one_of(
        operation.as_strategy(),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        statuses.add(case.call_and_validate(checks=CHECKS).status_code)

    run()


def test_api_conforms_to_its_schema(tmp_path: Path) -> None:
    target = StoreTarget("local", str(tmp_path / "store"))
    seed(target)
    app = create_app(settings_for(target))
    # schemathesis runs the app's lifespan (which opens the catalog) on its own event loop.
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    started = time.monotonic()
    operations = [
        op for op in (result.ok() for result in schema.get_all_operations()) if is_rest(op.path)
    ]
    assert len(operations) >= 14
    for operation in operations:
        if time.monotonic() - started > BUDGET_SECONDS:
            pytest.fail(f"schemathesis run over budget before {operation.label}")
        try:
            exercise(operation, statuses.setdefault(operation.label, set()))
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    # The run reached real successes, not only rejections.
    assert 200 in statuses["GET /v1/series"]
    assert 200 in statuses["GET /v1/versions"]
    assert all(code < 500 for codes in statuses.values() for code in codes)
