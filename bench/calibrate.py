"""Fit the confidence calibration on the profile matrix, check it on held-out seeds.

Reads the lead and cash-out outcomes that `bench.accuracy_matrix` saved
(`bench-output/accuracy/<profile>-<scale>-<seed>.json`), fits two logistic models (numpy
Newton iterations, `chainsleuth.cluster.learned.fit_logistic`) on the `--fit-seeds` of every
profile, writes `chainsleuth/cases/calibration.yaml`, and draws the reliability diagram of the
`--check-seeds` (which the fit never saw) to `docs/img/reliability.png`.

    python -m bench.accuracy_matrix --seeds 1 2 3 4 5 6     # outcomes (any calibration)
    python -m bench.calibrate --fit-seeds 1 2 3 --check-seeds 4 5 6
    python -m bench.accuracy_matrix --seeds 1 2 3 4 5 6 --reuse-clusters  # scores with it
    python -m bench.calibrate --check-shipped --check-seeds 4 5 6 7  # the shipped confidence

Every profile counts equally in the fit (rows are weighted by 1 / rows of their profile), so
the easy worlds' many right leads do not drown the hard worlds' wrong ones. Features and their
meaning: chainsleuth/cases/confidence.py.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from chainsleuth.cases.confidence import cashout_design, lead_design
from chainsleuth.cases.rows import FORWARD_CAP, LONG_HOLD_CAP, LONG_HOLD_DAYS
from chainsleuth.cluster.learned import fit_logistic, sigmoid

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "accuracy"
YAML_PATH = ROOT / "chainsleuth" / "cases" / "calibration.yaml"
FIGURE = ROOT / "docs" / "img" / "reliability.png"
BINS = (0.0, 0.1, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0001)


def _load(seeds: set[int], scales: list[str]) -> list[dict[str, Any]]:
    runs = []
    for scale in scales:
        for path in sorted(OUT.glob(f"*-{scale}-*.json")):
            run = json.loads(path.read_text())
            if run["seed"] in seeds and "leads" in run:
                runs.append(run)
    return runs


#: `caution` reasons whose rows the case caps at FORWARD_CAP (chainsleuth/cases/rows.py)
FORWARD_CAUTIONS = ("switched_type", "send_all_hop")


def _forward_capped(o: dict[str, Any]) -> bool:
    return any(c in FORWARD_CAUTIONS for c in (o.get("caution") or "").split(";"))


def _capped(o: dict[str, Any]) -> bool:
    """Whether the case ships a cap for this lead instead of the model's value."""
    return o.get("hold_days", 0.0) > LONG_HOLD_DAYS or _forward_capped(o)


def _lead_rows(
    runs: list[dict[str, Any]], uncapped_only: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [
        (r["profile"], o)
        for r in runs
        for o in r["leads"]
        if not o["through_coinjoin"] and not (uncapped_only and _capped(o))
    ]
    per_profile = Counter(p for p, _ in rows)
    X = lead_design(
        np.array([o["hops"] for _, o in rows], np.float64),
        np.array([o["share"] for _, o in rows], np.float64),
        np.array([o["custody"] for _, o in rows], np.float64),
        np.array([o["via_entity"] for _, o in rows], np.float64),
        np.array([o.get("hold_days", 0.0) for _, o in rows], np.float64),
    )
    return X, *_labels_and_weights(rows, per_profile)


def _labels_and_weights(
    rows: list[tuple[str, dict[str, Any]]], per_profile: Counter[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Truth of each row, and a weight that gives every profile the same total."""
    y = np.array([o["correct"] for _, o in rows], np.float64)
    w = np.array([1.0 / per_profile[p] for p, _ in rows]) * len(rows) / max(len(per_profile), 1)
    return y, w


def _cashout_rows(runs: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [(r["profile"], o) for r in runs for o in r["cashouts"] if not o["coinjoin"]]
    per_profile = Counter(p for p, _ in rows)
    X = cashout_design(
        np.array([o["hops"] for _, o in rows], np.float64),
        np.array([o["share"] for _, o in rows], np.float64),
    )
    return X, *_labels_and_weights(rows, per_profile)


def _weighted_fit(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted logistic fit: rows repeated in proportion to their weight (rounded, >= 1)."""
    reps = np.maximum(np.round(w / w.min()).astype(np.int64), 1) if w.size else w.astype(int)
    reps = np.minimum(reps, 50)
    return fit_logistic(np.repeat(X, reps, axis=0), np.repeat(y, reps), ridge=1e-4)


def _figure(lead: list[tuple[float, float, int, float, float, float]],
            cash: list[tuple[float, float, int, float, float, float]], title: str) -> None:  # fmt: skip
    """Share right against the mean confidence given, per bin (`shipped_reliability` rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 5.0), dpi=120)
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="perfect")
    for rows, color, name in ((lead, "#1f77b4", "leads"), (cash, "#d62728", "cash-outs")):
        if not rows:
            continue
        given = [c for _, _, _, c, _, _ in rows]
        obs = [o for _, _, _, _, o, _ in rows]
        size = [20 + 180 * np.sqrt(n / max(r[2] for r in rows)) for _, _, n, _, _, _ in rows]
        ax.plot(given, obs, color=color, linewidth=1.5)
        ax.scatter(given, obs, s=size, color=color, label=f"{name} (dot area ~ rows)", zorder=3)
    ax.set_xlabel("confidence given (mean of its bin)")
    ax.set_ylabel("share of rows right (held-out seeds)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(FIGURE)
    plt.close(fig)


def shipped_reliability(
    rows: list[tuple[str, dict[str, Any]]],
) -> list[tuple[float, float, int, float, float, float]]:
    """Per bin of the confidence the case shipped (caps included): (bin low, bin high, rows,
    mean confidence given, share right, z), z = (share right - mean confidence) / its binomial
    standard error sqrt(c (1 - c) / rows) at the mean confidence c (floored at one row's worth,
    so a bin at 0.999 with no miss is not infinitely sure)."""
    p = np.array([o["confidence"] for _, o in rows], np.float64)
    y = np.array([o["correct"] for _, o in rows], np.float64)
    out = []
    for lo, hi in zip(BINS, BINS[1:], strict=False):
        m = (p >= lo) & (p < hi)
        n = int(m.sum())
        if n:
            c, o = float(p[m].mean()), float(y[m].mean())
            se = max(float(np.sqrt(c * (1 - c) / n)), 1.0 / n)
            out.append((lo, min(hi, 1.0), n, c, o, (o - c) / se))
    return out


def _shipped_table(rows: list[tuple[float, float, int, float, float, float]]) -> str:
    lines = ["| confidence | rows | mean confidence | right | z |", "|---|---|---|---|---|"]
    lines += [
        f"| {lo:.2f}–{hi:.2f} | {n:,} | {c:.3f} | {o:.3f} | {z:+.1f} |"
        for lo, hi, n, c, o, z in rows
    ]
    return "\n".join(lines)


def check_shipped(seeds: set[int], scales: list[str], cashout_scales: list[str]) -> str:
    """Reliability of the confidence the cases shipped (no fit, nothing written): leads and
    cash-outs of `seeds`, pooled and per profile, as markdown."""
    out = []
    for kind, key, skip, sc in (
        ("leads", "leads", "through_coinjoin", scales),
        ("cash-outs", "cashouts", "coinjoin", cashout_scales),
    ):
        runs = _load(seeds, sc)
        rows = [(r["profile"], o) for r in runs for o in r[key] if not o[skip]]
        worlds = ", ".join(f"{r['profile']} {r['scale']} {r['seed']}" for r in runs)
        out.append(f"{kind}, every profile ({worlds}):\n\n" + _shipped_table(
            shipped_reliability(rows)))  # fmt: skip
        for profile in sorted({p for p, _ in rows}):
            mine = [(p, o) for p, o in rows if p == profile]
            out.append(f"{kind}, {profile} only:\n\n" + _shipped_table(
                shipped_reliability(mine)))  # fmt: skip
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--check-seeds", nargs="+", type=int, default=[4, 5, 6, 7])
    parser.add_argument("--scales", nargs="+", default=["small", "medium"], help="leads")
    # cash-outs keep their own scales (issue 11's cash-out work refits them separately)
    parser.add_argument("--cashout-scales", nargs="+", default=["small"])
    parser.add_argument(
        "--check-shipped",
        action="store_true",
        help="only print the reliability of the confidence the cases shipped on --check-seeds",
    )
    parser.add_argument(
        "--fit-uncapped",
        action="store_true",
        help="fit leads only on rows the case ships the model's value for (no long-hold or "
        "forward cap): a capped row's confidence is the cap whatever the model says",
    )
    args = parser.parse_args(argv)
    if args.check_shipped:
        print(check_shipped(set(args.check_seeds), args.scales, args.cashout_scales))
        return 0
    fit_runs = _load(set(args.fit_seeds), args.scales)
    check_runs = _load(set(args.check_seeds), args.scales)
    cash_fit_runs = _load(set(args.fit_seeds), args.cashout_scales)
    cash_check_runs = _load(set(args.check_seeds), args.cashout_scales)
    if not fit_runs:
        raise SystemExit("no outcomes to fit: run python -m bench.accuracy_matrix first")
    X, y, w = _lead_rows(fit_runs, uncapped_only=args.fit_uncapped)
    lead_w = _weighted_fit(X, y, w)
    cX, cy, cw = _cashout_rows(cash_fit_runs)
    shipped_yaml = yaml.safe_load(YAML_PATH.read_text())
    # rows that are all right (or all wrong) fit no logistic model: the weights run off to
    # "always sure". Then the shipped cash-out fit stays, and says where it came from.
    cash_kept = cy.size == 0 or cy.min() == cy.max()
    if cash_kept:
        print(f"cash-outs: {cy.size} fit rows, {int(cy.sum())} right: keeping the shipped fit")
        cash_w = np.asarray(shipped_yaml["cashout"]["weights"], np.float64)
    else:
        cash_w = _weighted_fit(cX, cy, cw)
    profiles = sorted({r["profile"] for r in fit_runs})
    doc = {
        "lead": {
            "features": [
                "bias",
                "hops_minus_1",
                "log_share",
                "custody_moves",
                "via_entity",
                "log1p_hold_days",
            ],  # fmt: skip
            "weights": [round(float(v), 6) for v in lead_w],
        },
        "cashout": {
            "features": ["bias", "hops_minus_1", "log_share"],
            "weights": [round(float(v), 6) for v in cash_w],
        },
        # fifo names what haircut names on the simulated worlds; poison is not calibrated and
        # keeps its old discount (0.6 / 0.9)
        "policy_scale": {"haircut": 1.0, "fifo": 1.0, "poison": 0.667},
        "fitted_on": {
            "profiles": profiles,
            "scales": list(args.scales),
            "cashout_scales": list(args.cashout_scales),
            "seeds": sorted(args.fit_seeds),
            # which worlds: the scales' seeds need not all have been measured
            "lead_worlds": [f"{r['profile']}-{r['scale']}-{r['seed']}" for r in fit_runs],
            "lead_rows": int(y.shape[0]),
            "cashout_rows": (
                shipped_yaml["fitted_on"]["cashout_rows"] if cash_kept else int(cy.shape[0])
            ),
            "command": "python -m bench.calibrate --fit-seeds "
            + " ".join(map(str, sorted(args.fit_seeds)))
            + " --scales "
            + " ".join(args.scales)
            + " --cashout-scales "
            + " ".join(args.cashout_scales)
            + (" --fit-uncapped" if args.fit_uncapped else ""),
        },
    }
    if cash_kept:
        previous = shipped_yaml["fitted_on"]
        doc["fitted_on"]["cashout_kept_from"] = previous.get(
            "cashout_kept_from", previous.get("command", "")
        )
    header = (
        "# Confidence calibration of leads and cash-outs (chainsleuth/cases/confidence.py).\n"
        "# Written by `python -m bench.calibrate`; do not edit by hand.\n"
    )
    YAML_PATH.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=100))
    print(yaml.safe_dump(doc, sort_keys=False, width=100))
    runs = check_runs or fit_runs
    hX, hy, _ = _lead_rows(runs)
    # the confidence the case ships: leads held over LONG_HOLD_DAYS or showing a forward are
    # capped below the cut (both caps are 0.45; outcomes saved before `caution` was recorded
    # get only the long-hold cap)
    kept = [o for r in runs for o in r["leads"] if not o["through_coinjoin"]]
    held = np.array([o.get("hold_days", 0.0) for o in kept])
    forward = np.array([_forward_capped(o) for o in kept], np.bool_)
    shipped = sigmoid(hX @ lead_w)
    shipped = np.where(held > LONG_HOLD_DAYS, np.minimum(shipped, LONG_HOLD_CAP), shipped)
    shipped = np.where(forward, np.minimum(shipped, FORWARD_CAP), shipped)
    hcX, hcy, _ = _cashout_rows(cash_check_runs or cash_fit_runs)
    cash_given = sigmoid(hcX @ cash_w)
    # per bin: rows, mean confidence given, share right and binomial z; pooled and per profile
    profiles_of = [r["profile"] for r in runs for o in r["leads"] if not o["through_coinjoin"]]
    lead_rows = [
        (p, {**o, "confidence": float(c)})
        for p, o, c in zip(profiles_of, kept, shipped, strict=True)
    ]
    cash_rows = [
        ("", {"confidence": float(c), "correct": bool(v)})
        for c, v in zip(cash_given, hcy, strict=True)
    ]
    for profile in [None, *sorted(set(profiles_of))]:
        mine = [(p, o) for p, o in lead_rows if profile in (None, p)]
        print(f"leads, held out, {profile or 'every profile'}:\n"
              + _shipped_table(shipped_reliability(mine)))  # fmt: skip
    print("cash-outs, held out:\n" + _shipped_table(shipped_reliability(cash_rows)))
    seeds = sorted({r["seed"] for r in runs})
    title = (
        f"Reliability on held-out seeds {seeds} ({', '.join(sorted({r['scale'] for r in runs}))};\n"
        f"{', '.join(sorted({r['profile'] for r in runs}))}); fitted on seeds "
        f"{sorted(args.fit_seeds)}"
    )
    _figure(shipped_reliability(lead_rows), shipped_reliability(cash_rows), title)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
