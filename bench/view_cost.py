"""What typical queries on the SQL views cost, warm, on one store (issue 13, item 5).

    python -m bench.view_cost DATA_DIR [--runs 5] [--only QUERY ...]

A default store computes txids, spent values, output values and standard scripts from the
arrays (store/computed.py) instead of reading them from parquet; this times the queries that
touch those columns (and `chainsleuth tx`'s lookup) so that a store of the previous format, read
by the previous code, can be timed the same way for a before / after comparison. Each query runs
once to warm the page cache and DuckDB, then `--runs` times; the median and the minimum are
printed. The parameters (a txid, an address) are taken from the store, the same for any two
stores of the same chain.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from chainsleuth.store.lookups import transaction
from chainsleuth.store.store import Store

QUERIES = {
    "txs by txid (scan)": "SELECT * FROM txs WHERE txid = $txid",
    "outputs by txid (scan)": "SELECT * FROM outputs WHERE txid = $txid",
    "inputs by tx_id": "SELECT * FROM inputs WHERE tx_id = $tx_id",
    "inputs by prev_txid (scan)": "SELECT count(*) FROM inputs WHERE prev_txid = $txid",
    "sum of output values": "SELECT count(*), sum(value) FROM outputs",
    "sum of input values": "SELECT count(*), sum(value) FROM inputs",
    "unspent outputs": "SELECT count(*), sum(value) FROM outputs WHERE spent_by_txid IS NULL",
    "outputs of an address": "SELECT * FROM outputs WHERE address = $address",
    "top addresses by balance": "SELECT * FROM addresses ORDER BY balance DESC LIMIT 10",
    "scripts of a height range": (
        "SELECT sum(octet_length(script_pubkey)) FROM outputs WHERE block_height < $height"
    ),
    "every column of the outputs": "SELECT * FROM outputs",
    # format 5 computes these (txs' values, fee, vsize, weight; inputs' prev_vout)
    "sum of fees and vsizes": "SELECT count(*), sum(fee), sum(vsize), sum(weight) FROM txs",
    "txs of one block with fees": (
        "SELECT txid, fee, vsize, input_value, output_value FROM txs WHERE block_height = $height"
    ),
    "inputs by outpoint (scan)": (
        "SELECT count(*) FROM inputs WHERE prev_txid = $txid AND prev_vout = 0"
    ),
    "sum of prev_vout": "SELECT count(*), sum(prev_vout) FROM inputs",
}


def parameters(store: Store) -> dict[str, Any]:
    n = store.counts["txs"]
    row = store.sql(
        "SELECT txid, tx_id FROM txs WHERE tx_id >= ? AND n_inputs > 1 ORDER BY tx_id LIMIT 1",
        [n // 2],
    ).to_pylist()[0]
    address = store.sql(
        "SELECT address FROM outputs WHERE output_id >= ? AND address IS NOT NULL "
        "ORDER BY output_id LIMIT 1",
        [store.counts["outputs"] // 2],
    ).to_pylist()[0]["address"]
    height = int(store.manifest["tip"]["height"]) // 2
    return {"txid": row["txid"], "tx_id": row["tx_id"], "address": address, "height": height}


def timed(run: Any, runs: int) -> tuple[float, float]:
    run()  # warm
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), min(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--only", nargs="+", metavar="QUERY", help="time only these queries (names as printed)"
    )
    args = parser.parse_args(argv)
    store = Store.open(args.data_dir)
    params = parameters(store)
    print(f"{args.data_dir}: {store.counts['txs']:,} txs; parameters {params}")
    print("| query | median ms | min ms |\n|---|---|---|")
    for name, query in QUERIES.items():
        if args.only and name not in args.only:
            continue
        used = {k: v for k, v in params.items() if f"${k}" in query}

        def run(query: str = query, used: dict[str, Any] = used) -> None:
            store.connection().sql(query, params=used).to_arrow_table()

        median, best = timed(run, args.runs)
        print(f"| {name} | {median * 1e3:.1f} | {best * 1e3:.1f} |")
    if args.only and "tx" not in args.only:
        return 0
    median, best = timed(lambda: transaction(store, params["txid"]), args.runs)
    print(
        f"| `chainsleuth tx` lookup (lookups.transaction) | {median * 1e3:.1f} | {best * 1e3:.1f} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
