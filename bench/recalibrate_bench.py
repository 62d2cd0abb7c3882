"""Time `cases.rows.recalibrate_leads` on a synthetic case of millions of lead rows: main
8eb74db's version (one Python object per row: `to_pylist`, a `set` of cautions per row; copied
below verbatim as `recalibrate_leads_pylist`) against the Arrow one (`pyarrow.compute`); and
`investigate.closed_world_counts` the same way (main's `closed_world_counts_pylist`: numpy
object arrays of every lead's strings).

    python -m bench.recalibrate_bench --rows 1000000 5000000

Each (size, version) runs in its own subprocess, which reads the table from an Arrow IPC file
and reports its CPU time (`time.process_time`), wall time and peak RSS (`ru_maxrss`) above
the RSS it had with the table loaded; the two versions' confidences are compared bit for bit,
the counts for equality.
The table has every column `lead_table` writes (LEAD_COLUMNS), strings of the lengths a case
writes (64-hex txids, 42-character addresses, two-txid paths) and the mix of categories,
cautions, custody moves and attributions of a small simulated case.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chainsleuth.cases.investigate import closed_world_counts
from chainsleuth.cases.rows import (
    EXCHANGE_CATEGORIES,
    FORWARD_CAUTIONS,
    LEAD_COLUMNS,
    lead_confidence,
    recalibrate_leads,
    schema_of,
)

#: (value, weight) of the string columns `recalibrate_leads` reads, as in hard small 1's
#: leads.csv (main 8eb74db), with rarer values kept so that every branch runs
CATEGORY = [("exchange", 0.69), ("coinjoin", 0.22), ("unidentified_service", 0.085), ("atm", 0.005)]
CAUTION = [
    ("", 0.90),
    ("coinjoin_change", 0.025),
    ("linked_by_change_return", 0.025),
    ("fingerprint_change", 0.01),
    ("send_all_hop", 0.01),
    ("long_hold;fingerprint_change", 0.01),
    ("round_payment", 0.005),
    ("payout_on_path;own_forward", 0.005),
    ("long_hold", 0.01),
]
VIA = [
    ("", 0.22),
    ("wallet_style", 0.35),
    ("tag", 0.30),
    ("service_entity", 0.09),
    ("change_return", 0.025),
    ("change_spend", 0.01),
    ("payout_cospend", 0.005),
]
BASIS = [("", 0.22), ("style", 0.38), ("tag", 0.30), ("chain", 0.10)]
THROUGH = [("false", 0.98), ("true", 0.02)]


def recalibrate_leads_pylist(leads: pa.Table, typical_hold: float) -> pa.Table:
    """main 8eb74db's `rows.recalibrate_leads`, verbatim: the baseline."""
    from chainsleuth.cases.confidence import via_entity

    n = leads.num_rows
    if n == 0:
        return leads
    col = {k: leads.column(k).to_pylist() for k in (
        "source_category", "custody_path", "attributed_via", "through_coinjoin", "caution",
        "policy")}  # fmt: skip
    category = np.asarray(col["source_category"], object)
    cautions = [set((c or "").split(";")) for c in col["caution"]]
    features = (
        leads.column("hops").to_numpy(zero_copy_only=False).astype(np.float64),
        leads.column("share").to_numpy(zero_copy_only=False).astype(np.float64),
        np.array([len(c.split(";")) if c else 0 for c in col["custody_path"]], np.float64),
        np.array([via_entity(v or "") for v in col["attributed_via"]], np.float64),
        leads.column("hold_days").to_numpy(zero_copy_only=False).astype(np.float64),
        # a table written before name_basis: no name rests on a style match
        np.asarray(leads.column("name_basis").to_pylist(), object) == "style"
        if "name_basis" in leads.column_names
        else np.zeros(n, np.bool_),
    )
    confidence = np.zeros(n)
    policies = np.asarray(col["policy"], object)
    for policy in sorted(set(col["policy"])):
        rows = policies == policy
        confidence[rows] = lead_confidence(
            policy,
            tuple(f[rows] for f in features),  # type: ignore[arg-type]
            typical_hold,
            ((category == "coinjoin") | (np.asarray(col["through_coinjoin"]) == "true"))[rows],
            np.array(["long_hold" in c for c in cautions])[rows],
            np.array([bool(c & FORWARD_CAUTIONS) for c in cautions])[rows],
            (np.isin(category, list(EXCHANGE_CATEGORIES)) | (category == "coinjoin"))[rows],
        )
    index = leads.schema.get_field_index("confidence")
    return leads.set_column(index, "confidence", pa.array(confidence, pa.float64()))


def closed_world_counts_pylist(leads: pa.Table, cut: float = 0.5) -> dict[str, int]:
    """main 8eb74db's `investigate.closed_world_counts` (docstring cut), verbatim: the
    baseline."""
    counts = {"deciding_leads": 0, "leads_resting_on_style": 0, "leads_resting_on_style_carried": 0}
    if leads.num_rows == 0:
        return counts
    category = np.asarray(leads.column("source_category").to_numpy(zero_copy_only=False))
    confidence = leads.column("confidence").to_numpy(zero_copy_only=False)
    keep = np.isin(category, sorted(EXCHANGE_CATEGORIES)) & (
        np.nan_to_num(np.asarray(confidence, np.float64), nan=0.0) >= cut
    )
    if not keep.any():
        return counts
    deposit = np.asarray(leads.column("deposit_address").to_numpy(zero_copy_only=False))[keep]
    amount = np.asarray(leads.column("amount_sat").to_numpy(zero_copy_only=False), np.int64)
    via = np.asarray(leads.column("attributed_via").to_numpy(zero_copy_only=False))[keep]
    by_style = via == "wallet_style"
    style = (
        np.asarray(leads.column("name_basis").to_numpy(zero_copy_only=False))[keep] == "style"
        if "name_basis" in leads.column_names
        else by_style
    )
    # per deposit the largest amount first (ties: the first row in the case's order)
    order = np.lexsort((-amount[keep], deposit))
    deposit = deposit[order]
    first = np.ones(deposit.shape[0], np.bool_)
    first[1:] = deposit[1:] != deposit[:-1]
    deciding_style = style[order][first]
    counts["deciding_leads"] = int(first.sum())
    counts["leads_resting_on_style"] = int(deciding_style.sum())
    counts["leads_resting_on_style_carried"] = int((deciding_style & ~by_style[order][first]).sum())
    return counts


#: What each child runs, by version name (the pylist ones are main 8eb74db's)
VERSIONS = {
    "recalibrate_leads pylist": recalibrate_leads_pylist,
    "recalibrate_leads arrow": recalibrate_leads,
    "closed_world_counts pylist": closed_world_counts_pylist,
    "closed_world_counts arrow": closed_world_counts,
}


def _hex_strings(rng: np.random.Generator, n: int, n_bytes: int) -> pa.Array:
    """`n` random lowercase hex strings of `n_bytes` bytes each, built on buffers."""
    digits = np.frombuffer(b"0123456789abcdef", np.uint8)
    raw = rng.integers(0, 16, (n, 2 * n_bytes), dtype=np.uint8)
    offsets = (np.arange(n + 1, dtype=np.int64) * 2 * n_bytes).astype(np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(digits[raw]))


def _drawn(rng: np.random.Generator, n: int, weights: list[tuple[str, float]]) -> pa.Array:
    values = pa.array([v for v, _ in weights], pa.string())
    p = np.array([w for _, w in weights])
    return pc.take(values, rng.choice(len(weights), n, p=p / p.sum()))


def synthetic_leads(n: int, seed: int = 1) -> pa.Table:
    """`n` lead rows with every column `lead_table` writes."""
    rng = np.random.default_rng(seed)
    txid = _hex_strings(rng, n, 32)
    second = _hex_strings(rng, n, 32)
    moves = rng.random(n)
    custody = pc.if_else(
        pa.array(moves < 0.01),
        pc.if_else(pa.array(moves < 0.002), pc.binary_join_element_wise(txid, second, ";"), txid),
        pa.scalar("", pa.string()),
    )
    hops = rng.integers(1, 8, n)
    columns = {
        "deposit_address": _hex_strings(rng, n, 21),
        "source_entity": _drawn(rng, n, [("cobalt", 0.4), ("arcadia", 0.3), ("whirlpool", 0.3)]),
        "source_category": _drawn(rng, n, CATEGORY),
        "source_cluster": rng.integers(0, 10**6, n),
        "source_address": _hex_strings(rng, n, 21),
        "funding_txid": txid,
        "block_height": rng.integers(0, 900_000, n),
        "block_time": pa.array(["2019-10-21T18:36:06Z"] * n, pa.string()),
        "amount_sat": rng.integers(1, 10**9, n),
        "amount_usd": np.round(rng.uniform(0, 10**5, n), 2),
        "price_note": pa.array([""] * n, pa.string()),
        "hops": hops,
        "policy": pa.array(["haircut"] * n, pa.string()),
        "confidence": np.zeros(n),
        "path": pc.binary_join_element_wise(txid, second, ";"),
        "n_paths": np.ones(n, np.int64),
        "custody_path": custody,
        "through_coinjoin": _drawn(rng, n, THROUGH),
        "share": np.round(rng.uniform(0.0, 1.0, n), 4),
        "attributed_via": _drawn(rng, n, VIA),
        "hold_days": np.round(rng.exponential(20.0, n), 2),
        "caution": _drawn(rng, n, CAUTION),
        "candidate_exchanges": pa.array([""] * n, pa.string()),
        "name_basis": _drawn(rng, n, BASIS),
    }
    return pa.table(columns, schema=schema_of(LEAD_COLUMNS))


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child(version: str, table_path: str, out_path: str) -> None:
    """One measurement: read the table, run one version once, print JSON, save confidences."""
    with pa.OSFile(table_path, "rb") as f:
        leads = pa.ipc.open_file(f).read_all()
    rss_before = _rss_kb()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu, wall = time.process_time(), time.perf_counter()
    if version.startswith("recalibrate_leads"):
        out = VERSIONS[version](leads, 12.5)
    else:
        # at 0.0: every exchange row counts (the synthetic confidences are placeholders)
        counts = VERSIONS[version](leads, 0.0)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if version.startswith("recalibrate_leads"):
        np.save(out_path, out.column("confidence").to_numpy())
    else:
        Path(out_path).write_text(json.dumps(counts, sort_keys=True))
    print(
        json.dumps(
            {
                "cpu_s": cpu,
                "wall_s": wall,
                "rss_loaded_kb": rss_before,
                "peak_before_kb": peak_before,
                "peak_kb": peak,
                "table_bytes": leads.nbytes,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--child", nargs=3, metavar=("VERSION", "TABLE", "OUT"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print("| rows | version | CPU s | wall s | peak RSS above the loaded table (MB) | B per row |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            table_path = os.path.join(tmp, f"leads-{n}.arrow")
            leads = synthetic_leads(n)
            with pa.OSFile(table_path, "wb") as f, pa.ipc.new_file(f, leads.schema) as w:
                w.write_table(leads)
            table_bytes = leads.nbytes
            del leads
            outs: dict[str, object] = {}
            for version in VERSIONS:
                out = os.path.join(tmp, f"{version.replace(' ', '-')}-{n}.out")
                run = subprocess.run(
                    [sys.executable, "-m", "bench.recalibrate_bench", "--child", version,
                     table_path, out],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                r = json.loads(run.stdout.strip().splitlines()[-1])
                extra_kb = r["peak_kb"] - r["rss_loaded_kb"]
                outs[version] = (
                    np.load(out + ".npy") if os.path.exists(out + ".npy") else Path(out).read_text()
                )
                print(
                    f"| {n:,} | {version} | {r['cpu_s']:.2f} | {r['wall_s']:.2f} | "
                    f"{extra_kb / 1024:,.0f} | {extra_kb * 1024 / n:,.0f} |",
                    flush=True,
                )
            a, b = outs["recalibrate_leads pylist"], outs["recalibrate_leads arrow"]
            assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
            same = np.array_equal(a.view(np.uint64), b.view(np.uint64))
            counts_same = outs["closed_world_counts pylist"] == outs["closed_world_counts arrow"]
            print(
                f"<!-- {n:,} rows: table {table_bytes / n:,.0f} B per row; confidences "
                f"bit-identical: {same}; closed_world counts equal: {counts_same} "
                f"{outs['closed_world_counts arrow']} -->",
                flush=True,
            )
            if not (same and counts_same):
                raise SystemExit(f"{n} rows: the two versions differ")


if __name__ == "__main__":
    main()
