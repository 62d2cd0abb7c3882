"""The API over a private copy of the small simulated world's store (tests/conftest.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chainsleuth.api.app import create_app

API = "/api/v1"


@pytest.fixture(scope="session")
def api_data(small_world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the small world's data dir, open mode (no key store)."""
    target = tmp_path_factory.mktemp("api") / "data"
    shutil.copytree(small_world[1], target)
    return target


@pytest.fixture(scope="session")
def client(api_data: Path) -> Iterator[TestClient]:
    # A generous budget: the first call of a numba kernel compiles it, which on a loaded box
    # can take longer than the production default of 10 s (budgets have their own tests).
    with TestClient(create_app(api_data, rate=0, time_budget_s=60)) as c:
        yield c


def error_model(body: dict) -> bool:
    """Whether a body is exactly the error model."""
    return (
        set(body) == {"error"}
        and set(body["error"]) == {"code", "message", "field"}
        and isinstance(body["error"]["code"], str)
        and isinstance(body["error"]["message"], str)
        and "\n" not in body["error"]["message"]
        and (body["error"]["field"] is None or isinstance(body["error"]["field"], str))
    )


def submit_case(client: TestClient, world: Path, form: dict[str, str]) -> str:
    """POST the world's seized deposit list as a case with the form's fields; its case id."""
    seeds = (world / "seeds" / "deposits.csv").read_bytes()
    r = client.post(f"{API}/cases", files={"seeds": ("deposits.csv", seeds, "text/csv")}, data=form)
    assert r.status_code == 202, r.text
    return str(r.json()["case_id"])
