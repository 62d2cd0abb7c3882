"""Investigation benchmark: 100k and 1M seed addresses on the large simulated world, against the
same backward search written with networkx over the same edges.

`prepare` copies the ingested large world (`bench-output/stores/world`) to
`bench-output/stores/world-case`, clusters it (conservative) and imports the world's TagPacks
there, once (cached until the source store changes), and writes the two seed files:

* 100k: the first 100,000 rows of the world's `seeds/deposits.csv` (the service's deposit
  addresses);
* 1M: the service's 150,000 deposit addresses, then 850,000 ordinary people's receiving
  addresses (`truth/addresses.csv`, wallet_kind user/customer/merchant, role receive), drawn
  with `numpy.random.default_rng(0).permutation`.

Measured, each in its own process (`bench.measure`): the real CLI end to end (`python -m
chainsleuth --data STORE investigate --seeds FILE -o OUT`, wall time and the child's peak RSS);
the backward trace alone, in process, exactly as `investigate()` runs it (`_in_chunks` over
`trace_back`); and the networkx baseline: a MultiDiGraph with one node per tx and one edge per
input (spending tx -> funding tx, carrying the spent output, its value and its address), walked
in pure Python with the kernel's rules (haircut split, stop clusters, coinbase, CoinJoin, max
hops, dropped shares below the seed's minimum, the per-seed entry cap). Its per-(seed, kind)
totals are checked against chainsleuth's on a sample before it is timed.

    python -m bench.investigate_bench            # prepare, measure, print the report section
    python -m bench.investigate_bench --render   # re-render from bench-output/investigate/
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEEDS_SMALL = 100_000
SEEDS_LARGE = 1_000_000
#: The 1M case's extra seeds: ordinary people's receiving addresses.
PEOPLE_KINDS = ("user", "customer", "merchant")
PEOPLE_ROLE = "receive"
NETWORKX_BUDGET_S = 75.0  # seconds of the networkx walk (at least NETWORKX_MIN_SEEDS seeds)
NETWORKX_MIN_SEEDS = 1_000
VALIDATE_SEEDS = 300
#: Targets from the issue: the 1M case in minutes, and at least 50x networkx (seeds/s).
TARGET_1M_SECONDS = 60 * 60  # "minutes, not hours": under an hour
TARGET_VS_NETWORKX = 50.0


def _store_key(store_dir: Path) -> dict[str, Any]:
    manifest = json.loads((store_dir / "manifest.json").read_text())
    return {"tip": manifest.get("tip"), "counts": manifest.get("counts")}


def prepare(work: Path, world: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """The case store (copied, clustered, tagged; cached) and the two seed files."""
    source = work / "stores" / "world"
    case = work / "stores" / "world-case"
    out = work / "investigate"
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "prepared.json"
    key = {"source": _store_key(source), "world": json.loads((world / "world.json").read_text())}
    prepared = json.loads(marker.read_text()) if marker.exists() else {}
    if prepared.get("key") != key or not (case / "manifest.json").exists():
        from chainsleuth.cluster.engine import cluster_store
        from chainsleuth.tags.attribution import recompute_cluster_tags
        from chainsleuth.tags.imports import import_tagpacks

        log(f"investigate: copying {source} to {case}, clustering, importing the world's tags")
        marker.unlink(missing_ok=True)
        shutil.rmtree(case, ignore_errors=True)
        t = time.perf_counter()
        shutil.copytree(source, case)
        copy_s = time.perf_counter() - t
        t = time.perf_counter()
        cluster_store(case, "conservative")
        cluster_s = time.perf_counter() - t
        t = time.perf_counter()
        import_tagpacks(case, [world / "tags"])
        recompute_cluster_tags(case)
        tags_s = time.perf_counter() - t
        prepared = {
            "key": key,
            "copy_seconds": copy_s,
            "cluster_seconds": cluster_s,
            "tags_seconds": tags_s,
        }
        marker.write_text(json.dumps(prepared, indent=1) + "\n")
    else:
        log(f"investigate: {case} (cached)")
    small, large = out / "seeds-100k.csv", out / "seeds-1m.csv"
    if not small.exists() or not large.exists():
        log("investigate: writing the seed files")
        _write_seeds(world, small, large)
    return {
        "store": str(case),
        "seeds_100k": str(small),
        "seeds_1m": str(large),
        "out": str(out),
        "prepare": {k: v for k, v in prepared.items() if k != "key"},
    }


def _write_seeds(world: Path, small: Path, large: Path) -> None:
    import pyarrow.csv as pacsv

    with open(world / "seeds" / "deposits.csv", newline="") as f:
        service = [r["address"] for r in csv.DictReader(f)]
    truth = pacsv.read_csv(
        world / "truth" / "addresses.csv",
        convert_options=pacsv.ConvertOptions(
            include_columns=["address", "wallet_kind", "role"],
            column_types={"address": "string", "wallet_kind": "string", "role": "string"},
        ),
    )
    kind = np.asarray(truth.column("wallet_kind").to_numpy(zero_copy_only=False))
    role = np.asarray(truth.column("role").to_numpy(zero_copy_only=False))
    people = np.asarray(truth.column("address").to_numpy(zero_copy_only=False))[
        np.isin(kind, PEOPLE_KINDS) & (role == PEOPLE_ROLE)
    ]
    taken = set(service)
    people = np.array([a for a in people.tolist() if a not in taken], object)
    n_extra = SEEDS_LARGE - len(service)
    if people.shape[0] < n_extra:
        raise RuntimeError(f"only {people.shape[0]:,} receiving addresses; need {n_extra:,}")
    drawn = people[np.random.default_rng(0).permutation(people.shape[0])[:n_extra]]
    for path, rows in ((small, service[:SEEDS_SMALL]), (large, service + drawn.tolist())):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("address\n" + "\n".join(rows) + "\n")
        os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    from bench.run import ROOT as _root, log, simulated_world

    p = argparse.ArgumentParser(prog="python -m bench.investigate_bench")
    p.add_argument("--work", default=str(_root / "bench-output"))
    args = p.parse_args(argv)
    work = Path(args.work).resolve()
    world, _ = simulated_world(work / "worlds", "large")
    print(json.dumps(prepare(work, world, log), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
