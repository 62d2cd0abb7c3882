"""Property tests over the OpenAPI schema (schemathesis): generated inputs for every operation
never get a 500, and every error body is the error model.

The schema is read from an app at import (it does not depend on the data); the calls go to
an app over the small world's store, bound by a fixture (`_Late`), because schemathesis
generates the tests at collection time, before any fixture exists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from chainsleuth.api.app import close_app, create_app
from tests.api.conftest import error_model


class _Late:
    """An ASGI app that forwards to the app a fixture sets."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "the api_app fixture binds the app"
        await self.app(scope, receive, send)


LATE = _Late()
_spec = create_app(Path("/nonexistent-chainsleuth-data")).openapi()
schema = schemathesis.openapi.from_dict(_spec).exclude(
    operation_id="start_case"  # starts investigations: tests/api/test_cases.py covers it
)
schema.app = LATE


@pytest.fixture(scope="module", autouse=True)
def api_app(api_data: Path) -> Iterator[None]:
    LATE.app = create_app(api_data, rate=0, time_budget_s=30)
    yield
    close_app(LATE.app)  # schemathesis runs no lifespan: stop threads, close DuckDB here
    LATE.app = None


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_errors_in_the_model(case: schemathesis.Case) -> None:
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/json")
        assert error_model(response.json()), response.text
