"""`chainsleuth sql` is really read-only: queries over the views answer, while COPY, ATTACH,
INSTALL, SET, CREATE and reading files outside the data directory are refused, in one line,
with nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chainsleuth.cluster.engine import cluster_store
from chainsleuth.core.errors import StoreError
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store
from tests.chainbuilder import ChainBuilder, p2wpkh, spend


def test_the_views_answer_as_before(nbitcoin_store: Path) -> None:
    store = Store.open(nbitcoin_store)
    for view in ("blocks", "txs", "outputs", "inputs", "addresses"):
        query = f"SELECT count(*) AS n FROM {view}"
        assert (
            store.user_sql(query).to_pylist() == Store.open(nbitcoin_store).sql(query).to_pylist()
        )
    assert store.user_sql("SELECT count(*) AS n FROM txs").to_pylist() == [{"n": 616}]
    assert store.user_sql("EXPLAIN SELECT count(*) FROM outputs").num_rows >= 1
    assert "txs" in store.user_sql("SHOW TABLES").column("name").to_pylist()


def test_stage_views_answer_too(tmp_path: Path) -> None:
    chain = ChainBuilder()
    coins = [chain.add_block(miner=p2wpkh(f"c{k}")).txs[0] for k in range(2)]
    chain.add_block([spend([(coins[0], 0), (coins[1], 0)], [(99 * 10**8, p2wpkh("x"))])])
    ingest_blocks_dir(chain.write(tmp_path / "blocks"), tmp_path / "data")
    cluster_store(tmp_path / "data", "multi_input", from_scratch=True)
    rows = Store.open(tmp_path / "data").user_sql(
        "SELECT count(DISTINCT cluster_id) AS n FROM clusters"
    )
    assert rows.to_pylist()[0]["n"] >= 1


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("COPY txs TO '{tmp}/x.csv'", "COPY statements are not run"),
        ("COPY txs TO '{data}/x.csv'", "COPY statements are not run"),
        ("SELECT 1; COPY txs TO '{tmp}/x.csv'", "COPY statements are not run"),
        ("EXPLAIN ANALYZE COPY txs TO '{tmp}/x.csv'", "EXPLAIN statements are not run"),
        ("ATTACH '{tmp}/x.db' AS x", "ATTACH statements are not run"),
        ("INSTALL httpfs", "INSTALL statements are not run"),
        ("SET enable_external_access = true", "SET statements are not run"),
        ("CREATE TABLE x AS SELECT 1", "CREATE statements are not run"),
        ("EXPORT DATABASE '{tmp}/x'", "EXPORT statements are not run"),
        ("SELECT * FROM read_csv('/etc/passwd')", "reads only the data directory's views"),
        ("SELECT * FROM glob('/etc/*')", "reads only the data directory's views"),
        ("SELECT * FROM read_text('{tmp}/secret.txt')", "reads only the data directory's views"),
    ],
)
def test_statements_that_write_or_read_elsewhere_are_refused(
    nbitcoin_store: Path, tmp_path: Path, query: str, says: str
) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    before = sorted(p.name for p in tmp_path.iterdir())
    data_before = sorted(str(p) for p in nbitcoin_store.rglob("*"))
    store = Store.open(nbitcoin_store)
    with pytest.raises(StoreError, match="read-only") as info:
        store.user_sql(query.format(tmp=tmp_path, data=nbitcoin_store))
    assert says in str(info.value) and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert sorted(str(p) for p in nbitcoin_store.rglob("*")) == data_before
    # and the same store keeps answering
    assert store.user_sql("SELECT count(*) AS n FROM blocks").to_pylist() == [{"n": 600}]


def test_cli_copy_fails_in_one_line_and_writes_nothing(
    nbitcoin_store: Path, tmp_path: Path
) -> None:
    target = tmp_path / "x.csv"
    done = subprocess.run(
        [sys.executable, "-m", "chainsleuth", "--data", str(nbitcoin_store), "sql"]
        + [f"COPY txs TO '{target}'"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: sql is read-only: COPY statements are not run (only SELECT queries over the "
        "views; `--format csv` exports a result)"
    ]
    assert not target.exists()
