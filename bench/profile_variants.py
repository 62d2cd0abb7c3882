"""`bench.accuracy_matrix` on variants of the named profiles: each profile with some knobs set
(`--set KNOB=VALUE`), registered as `<profile>_<suffix>` (name those in `--profiles`), built from scratch into
bench-output/accuracy/<profile>_<suffix>-<scale>-<seed>/. Then, with `--compare`, each
variant's scores beside the named profile's on the same seed (bench-output/accuracy/, or
`--base DIR` of score JSONs): the simulator's sensitivity to a knob, not a before → after on
the same worlds (once a knob changes a tx, the chains diverge).

    python -m bench.profile_variants --set forward_rest_spent_share=1.0 --suffix rests \
        --profiles hard_rests realistic_rests --scales small --seeds 1 2 3
    python -m bench.profile_variants --suffix rests --compare [--base /work/notes/s27-before]

docs/accuracy-log.md "Cash-outs: the misses are forward remainders the simulated hot
wallets never spend".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

ROOT = Path("bench-output/accuracy")


def _register(overrides: dict[str, float], suffix: str) -> None:
    from chainsleuth.simulate import profiles

    named = profiles._load()  # the cached table profile() reads
    for name in [n for n in named if not n.endswith(f"_{suffix}")]:
        named[f"{name}_{suffix}"] = dataclasses.replace(
            named[name], name=f"{name}_{suffix}", **overrides
        )


def _target(s: dict[str, Any]) -> bool:
    """issue 11's cash-out target: recall and precision >= 0.90, total within +-10%."""
    return bool(
        s["cashout_recall"] >= 0.9
        and s["cashout_precision"] >= 0.9
        and abs(s["cashout_total_ratio"] - 1) <= 0.1
    )


def compare(suffix: str, base: Path) -> None:
    """Print each variant world's scores beside its named profile's on the same seed."""
    rows = []
    for f in sorted(ROOT.glob(f"*_{suffix}-*.json")):
        name = f.stem.replace(f"_{suffix}", "")
        other = base / f"{name}.json"
        if other.exists():
            rows.append((name, json.loads(other.read_text()), json.loads(f.read_text())))
    rows.sort(key=lambda r: (_target(r[1]["score"]), r[1]["score"]["cashout_recall"]))
    print(f"| world | txs named → {suffix} | cash-out recall | precision | total ÷ true | target "
          "| lead precision | lead recall |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, b, a in rows:
        x, y = b["score"], a["score"]

        def pair(k: str, fmt: str = ".3f", x: dict[str, Any] = x, y: dict[str, Any] = y) -> str:
            return f"{x[k]:{fmt}} → {y[k]:{fmt}}"

        met = f"{'yes' if _target(x) else 'no'} → {'yes' if _target(y) else 'no'}"
        print(f"| {name} | {b['n_txs']:,} → {a['n_txs']:,} | {pair('cashout_recall')} | "
              f"{pair('cashout_precision')} | {pair('cashout_total_ratio', '.2f')} | {met} | "
              f"{pair('lead_precision')} | {pair('lead_recall')} |")  # fmt: skip
    if not rows:
        return
    for label, i in (("named", 1), (suffix, 2)):
        s = [r[i]["score"] for r in rows]
        print(f"{label}: {len(s)} worlds, cash-out target met {sum(map(_target, s))}, "
              f"worst recall {min(v['cashout_recall'] for v in s):.3f}, worst total "
              f"{min(v['cashout_total_ratio'] for v in s):.2f}, worst cash-out precision "
              f"{min(v['cashout_precision'] for v in s):.3f}, worst lead precision "
              f"{min(v['lead_precision'] for v in s):.3f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE")
    ap.add_argument("--suffix", required=True)
    ap.add_argument("--compare", action="store_true", help="only print the comparison")
    ap.add_argument("--base", type=Path, default=ROOT)
    args, rest = ap.parse_known_args(argv)
    if args.compare:
        compare(args.suffix, args.base)
        return 0
    overrides = {k: float(v) for k, v in (s.split("=", 1) for s in args.set)}
    _register(overrides, args.suffix)
    from bench import accuracy_matrix

    return int(accuracy_matrix.main(rest))


if __name__ == "__main__":
    raise SystemExit(main())
