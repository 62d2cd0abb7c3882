"""Measure `bench.scale`'s cluster and investigate stages again on the stores of a kept run.

    python -m bench.scale --sizes 2M 5M 10M --stages ingest cluster --keep --work W --out R.md
    python -m bench.scale_restage R.json --out AFTER.md [--stages cluster investigate]

The chains and stores of a `bench.scale --keep` run (under its `--work`) are measured again
with the code of this checkout, in fresh processes, by `bench.scale.run_measured` (the same
`ru_maxrss` and 20-ms `RssAnon`/`RssFile` sampling): `chainsleuth cluster --json
--from-scratch` (the store already has a clustering: from scratch is what the first run did)
and `chainsleuth investigate` with the run's own seed file. Same inputs, so a before/after
comparison of a change to those stages needs no new chains (each takes minutes to build and
ingest). The chain, ingest and store figures are the kept run's; the report is rendered by
`bench.scale.render` with this command as its header.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import log
from bench.scale import _checked, _write, cli, machine, parse_size, run_measured


def restage(res: dict[str, Any], stages: list[str]) -> dict[str, Any]:
    """`res` (a bench.scale JSON) with its sizes' `stages` measured again."""
    for r in sorted(res["sizes"], key=lambda r: parse_size(r["label"])):
        base = Path(r["base"])
        data = base / "data"
        if not (data / "manifest.json").exists():
            raise SystemExit(f"bench-scale-restage: {data} is gone (run bench.scale with --keep)")
        if "cluster" in stages:
            cmd = cli(data, "cluster", "--json", "--from-scratch")
            r["cluster"] = _checked("cluster", run_measured(cmd))
            log(f"{r['label']}: cluster {r['cluster']['peak_anon_bytes']:,} B anon")
        if "investigate" in stages:
            seeds, case = base / "seeds.csv", base / "case"
            cmd = cli(data, "investigate", "--seeds", str(seeds), "-o", str(case))
            r["investigate"] = _checked(
                "investigate", run_measured(cmd + ["--no-report", "--no-pdf"])
            )
            log(f"{r['label']}: investigate {r['investigate']['peak_anon_bytes']:,} B anon")
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kept", type=Path, help="the JSON of a bench.scale run made with --keep")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stages", nargs="+", choices=("cluster", "investigate"),
                   default=["cluster", "investigate"])  # fmt: skip
    p.add_argument("--sizes", nargs="+", help="only these of the kept run's sizes")
    args = p.parse_args(argv)
    started = time.perf_counter()
    res = json.loads(args.kept.read_text())
    res["command"] = "python -m bench.scale_restage " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    res["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    res["restaged_from"] = {"json": str(args.kept), "stages": args.stages,
                            "machine": res.get("machine")}  # fmt: skip
    res["machine"] = machine()
    if args.sizes:
        res["sizes"] = [r for r in res["sizes"] if r["label"] in args.sizes]
    restage(res, args.stages)
    _write(res, argparse.Namespace(out=str(args.out)), started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
