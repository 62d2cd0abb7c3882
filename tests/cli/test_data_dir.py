"""One data directory, whatever it holds: `sql`, `status` and `verify` on tags only, on the chain
only and on both; a query that needs a missing part says so in one line, with the command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.test_cli import HAL, HAL_TX, run
from tests.conftest import NBITCOIN

PACK = (
    "title: Hal\ncreator: tester\nlabel: Hal Finney\nsource: https://example.org/hal\n"
    "currency: BTC\ncategory: user\nconfidence: service_data\ntags:\n"
    f"- address: {HAL}\n"
)


def one_line_error(done: object) -> str:
    assert done.returncode == 2, done.stdout  # type: ignore[attr-defined]
    err = done.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return " ".join(err.split())


def import_tags(data: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hal.yaml").write_text(PACK)
    done = run(data, "tags", "import", str(folder / "hal.yaml"))
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def tags_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tags-only")
    import_tags(root / "data", root / "packs")
    return root / "data"


# Its own store, not the session's `nbitcoin_store`: ingesting through the CLI is under test.
@pytest.fixture(scope="module")
def chain_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("chain-only") / "data"
    done = run(data, "ingest", "--blocks-dir", str(NBITCOIN), "--json")
    assert done.returncode == 0, done.stderr
    return data


def test_sql_on_tags_only(tags_only: Path) -> None:
    done = run(tags_only, "sql", "SELECT address, label, category FROM tags", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"address": HAL, "label": "Hal Finney", "category": "user"}]


@pytest.mark.parametrize(
    ("query", "view"),
    [
        ("SELECT count(*) FROM txs", "txs"),
        ("SELECT * FROM tags t JOIN addresses a USING (address)", "addresses"),
        ("SELECT max(height) FROM blocks_raw", "blocks_raw"),
    ],
)
def test_sql_on_the_chain_in_a_tags_only_directory_says_to_ingest(
    tags_only: Path, query: str, view: str
) -> None:
    err = one_line_error(run(tags_only, "sql", query))
    assert "the chain has not been ingested into" in err and str(tags_only) in err
    assert f"`{view}` needs it" in err and "(it holds tags)" in err
    assert f"chainsleuth --data {tags_only} ingest --blocks-dir" in err


def test_lookups_in_a_tags_only_directory_say_to_ingest(tags_only: Path) -> None:
    for args in (("tx", HAL_TX), ("address", HAL), ("block", "0")):
        err = one_line_error(run(tags_only, *args))
        assert "the chain has not been ingested" in err and "ingest --blocks-dir" in err


def test_status_of_a_tags_only_directory(tags_only: Path) -> None:
    status = json.loads(run(tags_only, "status", "--json").stdout)
    assert status["holds"] == ["tags"] and status["tip_height"] is None
    assert status["network"] is None and status["txs"] == 0
    assert (status["tags"]["tagpacks"], status["tags"]["tags"]) == (1, 1)
    assert "ingest --blocks-dir" in status["missing"]["chain"]
    assert status["prices"]["series"] == "shipped"
    text = run(tags_only, "status")
    assert text.returncode == 0, text.stderr
    assert "not ingested" in text.stdout and "tagpacks 1" in text.stdout


def test_verify_a_tags_only_directory(tags_only: Path, tmp_path: Path) -> None:
    result = json.loads(run(tags_only, "verify", "--json").stdout)
    assert result["ok"] and result["holds"] == ["tags"] and "chain" in result["missing"]
    assert [c["check"].split(":")[0] for c in result["checks"]] == ["tags"]
    shown = run(tags_only, "verify")
    assert shown.returncode == 0 and "no chain here" in shown.stdout

    copy = tmp_path / "copy"
    shutil.copytree(tags_only, copy)
    pack = next((copy / "tags" / "packs").rglob("*.parquet"))
    pack.unlink()
    done = run(copy, "verify", "--json")
    assert done.returncode == 1
    failed = [c["check"] for c in json.loads(done.stdout)["checks"] if not c["ok"]]
    assert len(failed) == 1 and "missing packs/" in failed[0]


def test_chain_only_directory(chain_only: Path) -> None:
    err = one_line_error(run(chain_only, "sql", "SELECT * FROM tags"))
    assert "`tags` is not in" in err and "no tags there yet" in err
    assert f"chainsleuth --data {chain_only} tags import" in err
    err = one_line_error(run(chain_only, "sql", "SELECT * FROM clusters"))
    assert "no clusters there yet" in err and "cluster`" in err
    status = json.loads(run(chain_only, "status", "--json").stdout)
    assert status["holds"] == ["chain"] and status["tags"] is None
    assert status["tip_height"] == 599 and "tags import" in status["missing"]["tags"]
    result = json.loads(run(chain_only, "verify", "--json").stdout)
    assert result["ok"] and result["holds"] == ["chain"] and "tags" in result["missing"]
    # a query on a view no stage has is still plain SQL
    assert "SQL error" in one_line_error(run(chain_only, "sql", "SELECT * FROM nowhere"))


def test_tags_first_then_the_chain(tmp_path: Path) -> None:
    data = tmp_path / "data"
    import_tags(data, tmp_path / "packs")
    done = run(data, "ingest", "--blocks-dir", str(NBITCOIN), "--json")
    assert done.returncode == 0, done.stderr
    done = run(
        data,
        "sql",
        "SELECT t.label, a.received, a.n_txs FROM tags t JOIN addresses a USING (address)",
        "--format",
        "json",
    )
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert row["label"] == "Hal Finney" and row["received"] == 10 * 10**8
    status = json.loads(run(data, "status", "--json").stdout)
    assert status["holds"] == ["chain", "tags"] and status["tip_height"] == 599
    assert list(status["missing"]) == ["clusters"]
    result = json.loads(run(data, "verify", "--json").stdout)
    assert result["ok"] and result["holds"] == ["chain", "tags"]
    assert any(c["check"].startswith("tags:") for c in result["checks"])
    assert any(c["check"].startswith("blocks:") for c in result["checks"])


def test_an_empty_directory_still_says_there_is_no_store(tmp_path: Path) -> None:
    for command in (("status",), ("verify",), ("sql", "SELECT 1")):
        err = one_line_error(run(tmp_path / "nothing", *command))
        assert "no chainsleuth store" in err and "ingest" in err
