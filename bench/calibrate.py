"""Fit the confidence calibration on the profile matrix; check it on worlds the fit never saw.

Reads the lead and cash-out outcomes that `bench.accuracy_matrix` saved
(`bench-output/accuracy/<profile>-<scale>-<seed>.json`: every row with its features and the
truth's verdict), fits two logistic models (numpy Newton iterations,
`chainsleuth.cluster.learned.fit_logistic`) and writes `chainsleuth/cases/calibration.yaml`.

    python -m bench.accuracy_matrix --seeds 1 2 3 4 5 6 7      # outcomes (any calibration)
    python -m bench.calibrate --leave-out world scale profile  # honest checks, figures
    python -m bench.calibrate --scales small medium large --cashout-scales small medium large
    python -m bench.calibrate --check-shipped --check-seeds 4 5 6 7  # the shipped confidence
    python -m bench.calibrate --check-shipped --check-seeds 15 16 --by-basis  # per name_basis

`--leave-out` fits without one group of worlds (a world, a scale, a profile or a seed) and
checks on that group only, for every group in turn, so no row is checked by a model that saw
it; it reports per scale and per profile the bins (rows, mean confidence given, share right,
z, Wilson 95% interval), ECE and log loss, the same for the previous method (`--method v1`:
the features and weighting of the calibration this replaced) and for the confidence the cases
shipped, and lead precision and recall at >= 0.5 per world under each, and draws
docs/img/reliability.png and docs/img/reliability_groups.png.

Every (profile, scale) group counts equally in the fit (rows are weighted by 1 / rows of their
group), so neither the easy worlds' many right leads nor the large world's 12,000 rows drown
the rest. Leads are fitted on the rows the case ships the model's value for: a lead held over
LONG_HOLD_DAYS or showing forward signs is capped below the cut whatever the model says.
Features and their meaning: chainsleuth/cases/confidence.py.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from chainsleuth.cases.confidence import (
    CASHOUT_FEATURES,
    CASHOUT_SIGNS,
    LEAD_FEATURES,
    LEAD_SIGNS,
    cashout_design,
    lead_design,
    typical_hold_days,
)
from chainsleuth.cases.evaluate import deciding_leads
from chainsleuth.cases.rows import (
    FORWARD_CAP,
    LONG_HOLD_CAP,
    LONG_HOLD_DAYS,
    NAME_BASES,
    long_hold_capped,
)
from chainsleuth.cases.rows import FORWARD_CAUTIONS as _ROW_FORWARD_CAUTIONS
from chainsleuth.cluster.learned import fit_logistic, sigmoid

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "accuracy"
YAML_PATH = ROOT / "chainsleuth" / "cases" / "calibration.yaml"
FIGURE = ROOT / "docs" / "img" / "reliability.png"
GROUP_FIGURE = ROOT / "docs" / "img" / "reliability_groups.png"
BINS = (0.0, 0.1, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0001)
SCALES = ("small", "medium", "large")

Run = dict[str, Any]


def _load(
    seeds: set[int] | None,
    scales: list[str] | tuple[str, ...],
    profiles: set[str] | None = None,
) -> list[Run]:
    """Saved outcomes of the worlds of `scales` (of `seeds`, of `profiles`; None: every one).
    Every profile saved is read unless `profiles` says otherwise, the `*_untagged` ones too."""
    runs = []
    for scale in scales:
        for path in sorted(OUT.glob(f"*-{scale}-*.json")):
            run = json.loads(path.read_text())
            if (
                (seeds is None or run["seed"] in seeds)
                and (profiles is None or run["profile"] in profiles)
                and "leads" in run
            ):
                runs.append(run)
    return runs


def world(run: Run) -> str:
    return f"{run['profile']}-{run['scale']}-{run['seed']}"


#: `caution` reasons whose rows the case caps at FORWARD_CAP (chainsleuth/cases/rows.py)
FORWARD_CAUTIONS = tuple(sorted(_ROW_FORWARD_CAUTIONS))


def _forward_capped(o: dict[str, Any]) -> bool:
    return any(c in FORWARD_CAUTIONS for c in (o.get("caution") or "").split(";"))


def _long_hold(o: dict[str, Any]) -> bool:
    """Whether the case read a long hold on the row's path: its `caution` long_hold where the
    row saves a caution, else its `hold_days` over LONG_HOLD_DAYS (outcomes saved before
    `caution`). Why the caution first: a lead whose path passes the named exchange's own forward
    (`caution` own_forward) has its hold read from that forward on (cases.rows
    `own_forward_at`), while `hold_days`, the model's feature, is the whole path's; on small
    seeds 15-28, 106 of 32,500 rows held over LONG_HOLD_DAYS on the whole path shipped the
    model's value (0.94-0.99), not LONG_HOLD_CAP."""
    if "caution" in o:
        return "long_hold" in (o["caution"] or "").split(";")
    return bool(o.get("hold_days", 0.0) > LONG_HOLD_DAYS)


def _capped(o: dict[str, Any]) -> bool:
    """Whether the case ships a cap for this lead instead of the model's value: a forward
    sign, or a long hold (cases.rows.long_hold_capped: not on a path of three or four txs
    with no forward sign, whose rows ship the model's value)."""
    forward = _forward_capped(o)
    long_hold = _long_hold(o)
    capped = long_hold_capped(np.array([long_hold]), np.array([forward]),
                              np.array([o.get("hops", 0)]))  # fmt: skip
    return forward or bool(capped[0])


def _leads(run: Run) -> list[dict[str, Any]]:
    """The run's lead rows the model speaks for (a row beyond a CoinJoin is capped at 0.25)."""
    return [o for o in run["leads"] if not o["through_coinjoin"]]


def run_typical_hold(run: Run, fallback: float) -> float:
    """The typical hold of the run's case, as the case computes it (every exchange lead)."""
    return typical_hold_days(
        np.array([o.get("hold_days", 0.0) for o in run["leads"]], np.float64),
        np.array([o["hops"] for o in run["leads"]], np.int64),
        fallback,
    )


#: How a lead row becomes a design row: "v2" (LEAD_FEATURES: the hold relative to the case's
#: typical hold, the name resting on a style match), "base" (v2 without `style_name`: every
#: name but a tag one feature, as before it) or "v1" (the calibration v2 replaced: log(1 +
#: hold days), kept to compare)
Method = str
METHODS = ("v2", "base", "v1")

#: LEAD_FEATURES columns the methods read differently
_HOLD = LEAD_FEATURES.index("log1p_hold_ratio")
_STYLE = LEAD_FEATURES.index("style_name")


def style_name(o: dict[str, Any]) -> bool:
    """Whether an outcome row's name rests on a style match: its `style_name` (saved since
    leads.csv has name_basis), else `via_style` (the style rule's own names only: older
    outcomes do not say which change links carried a style name on)."""
    return bool(o.get("style_name", o.get("via_style", False)))


def lead_matrix(run: Run, method: Method = "v2", fallback: float = 1.0) -> np.ndarray:
    rows = _leads(run)
    cols = [
        np.array([o["hops"] for o in rows], np.float64),
        np.array([o["share"] for o in rows], np.float64),
        np.array([o["custody"] for o in rows], np.float64),
        np.array([o["via_entity"] for o in rows], np.float64),
        np.array([o.get("hold_days", 0.0) for o in rows], np.float64),
    ]
    style = np.array([style_name(o) for o in rows], np.float64)
    if method == "v1":
        x = lead_design(*cols, 1.0)
        x[:, _HOLD] = np.log1p(np.maximum(cols[4], 0.0))  # log(1 + days), not clipped
        x[:, _STYLE] = 0.0  # a column of 0 takes weight 0 (ridge)
        return x
    if method == "base":
        style[:] = 0.0
    return lead_design(*cols, run_typical_hold(run, fallback), style)


def _weighted_fit(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted logistic fit: rows repeated in proportion to their weight (rounded, >= 1)."""
    reps = np.maximum(np.round(w / w.min()).astype(np.int64), 1) if w.size else w.astype(int)
    reps = np.minimum(reps, 50)
    return fit_logistic(np.repeat(X, reps, axis=0), np.repeat(y, reps), ridge=1e-4)


def _group_weights(groups: list[str]) -> np.ndarray:
    """A weight per row that gives every group the same total (the mean weight is 1)."""
    count = Counter(groups)
    return np.array([1.0 / count[g] for g in groups]) * len(groups) / max(len(count), 1)


def fit_leads(runs: list[Run], method: Method = "v2", fallback: float = 1.0) -> np.ndarray:
    """Lead weights fitted on `runs`. v2: the uncapped rows, every (profile, scale) equal;
    v1: every row, every profile equal (the calibration this replaced)."""
    Xs, ys, groups = [], [], []
    for run in runs:
        rows = _leads(run)
        keep = np.array([method == "v1" or not _capped(o) for o in rows], np.bool_)
        Xs.append(lead_matrix(run, method, fallback)[keep])
        ys.append(np.array([o["correct"] for o in rows], np.float64)[keep])
        key = run["profile"] if method == "v1" else f"{run['profile']}-{run['scale']}"
        groups += [key] * int(keep.sum())
    if not groups:
        raise SystemExit("no outcomes to fit: run python -m bench.accuracy_matrix first")
    X, y, w = np.vstack(Xs), np.concatenate(ys), _group_weights(groups)
    if method == "v1":
        return _weighted_fit(X, y, w)
    return signed_fit(X, y, w)


def signed_fit(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    signs: dict[str, int] = LEAD_SIGNS,
    features: tuple[str, ...] = LEAD_FEATURES,
) -> np.ndarray:
    """`_weighted_fit` whose weights keep `signs` (LEAD_SIGNS; CASHOUT_SIGNS with
    CASHOUT_FEATURES): a column whose weight comes out of the wrong sign is held at 0 and the
    rest refitted, until none is."""
    sign = np.array([signs.get(f, 0) for f in features])
    free = np.ones(X.shape[1], np.bool_)
    while True:
        beta = np.zeros(X.shape[1])
        beta[free] = _weighted_fit(X[:, free], y, w)
        wrong = free & (sign * beta < 0)
        if not wrong.any():
            return beta
        free &= ~wrong


#: The surest leads: those the model puts at or above this are the ones `fit_ceiling` reads.
TOP_CONFIDENCE = 0.99

#: A (profile, scale) group speaks for the ceiling with at least this many surest rows (its
#: share right is then known to about +-0.3% at 0.997).
MIN_CEILING_ROWS = 1000


def fit_ceiling(
    runs: list[Run],
    weights: np.ndarray,
    fallback: float = 1.0,
    method: Method = "v2",
    style: bool | None = None,
) -> float:
    """The lead ceiling (confidence.Calibration.lead_ceiling): per (profile, scale) group of
    `runs`, the share right of its uncapped rows the model puts at >= TOP_CONFIDENCE; the
    lowest over the groups with MIN_CEILING_ROWS such rows (rounded down to 1e-4), so the top
    bin says what its worst group gives, never more. 1.0 when no group has enough rows.
    `style` False: the rows whose name rests on no style match only (the ceiling of the
    others when they have their own); True: those whose name does, at >= STYLE_TOP_CONFIDENCE
    (`Calibration.style_ceiling`); None: every row."""
    right: dict[str, list[float]] = {}
    top = STYLE_TOP_CONFIDENCE if style else TOP_CONFIDENCE
    for run in runs:
        rows = _leads(run)
        p = sigmoid(lead_matrix(run, method, fallback) @ weights)
        for o, q in zip(rows, p, strict=True):
            if style is not None and style_name(o) != style:
                continue
            if q >= top and not _capped(o):
                right.setdefault(f"{run['profile']}-{run['scale']}", []).append(o["correct"])
    shares = [float(np.mean(v)) for v in right.values() if len(v) >= MIN_CEILING_ROWS]
    return float(np.floor(min(shares) * 1e4) / 1e4) if shares else 1.0


#: The style leads the style ceiling reads: those the model puts at or above this. Lower than
#: TOP_CONFIDENCE: the style weight takes the style leads below 0.99, where the ceiling of the
#: others would read none of them, and a subpoena reads 0.9 as sure.
STYLE_TOP_CONFIDENCE = 0.9


def fit_ceilings(
    runs: list[Run], weights: np.ndarray, fallback: float = 1.0, method: Method = "v2"
) -> tuple[float, float]:
    """(ceiling, style ceiling) of `method`: v2 gives the style leads a ceiling of their own
    (`fit_ceiling` style True) and the others theirs; base one ceiling for all; v1 none."""
    if method == "v1":
        return 1.0, 1.0
    if method == "base":
        top = fit_ceiling(runs, weights, fallback, method)
        return top, top
    return (fit_ceiling(runs, weights, fallback, method, False),
            fit_ceiling(runs, weights, fallback, method, True))  # fmt: skip


def predict_leads(
    run: Run,
    weights: np.ndarray,
    method: Method = "v2",
    fallback: float = 1.0,
    ceiling: float = 1.0,
    style_ceiling: float = 1.0,
) -> np.ndarray:
    """The confidence the case would ship for the run's lead rows (`_leads`) with `weights`:
    the model up to `ceiling`, capped like rows.py caps long holds and forward signs."""
    rows = _leads(run)
    p = np.minimum(sigmoid(lead_matrix(run, method, fallback) @ weights), ceiling)
    style = np.array([style_name(o) for o in rows], np.bool_)
    if method == "v2":
        p = np.where(style, np.minimum(p, style_ceiling), p)
    held = np.array([_long_hold(o) for o in rows], np.bool_)
    hops = np.array([o["hops"] for o in rows], np.int64)
    forward = np.array([_forward_capped(o) for o in rows], np.bool_)
    capped_hold = long_hold_capped(held, forward, hops)
    p = np.where(capped_hold, np.minimum(p, LONG_HOLD_CAP), p)
    out: np.ndarray = np.where(forward, np.minimum(p, FORWARD_CAP), p)
    return out


def _by(by: str) -> Callable[[Run], Any]:
    if by == "world":
        return world
    if by in ("scale", "profile", "seed"):
        return lambda r: r[by]
    raise ValueError(f"--leave-out {by}: one of world, scale, profile, seed")


def leave_out_splits(runs: list[Run], by: str) -> list[tuple[Any, list[Run], list[Run]]]:
    """(group, worlds fitted, worlds checked) for each group of `runs` by world, scale,
    profile or seed: the checked worlds are that group's, the fitted ones every other."""
    key = _by(by)
    out = []
    for g in sorted({key(r) for r in runs}, key=str):
        fit = [r for r in runs if key(r) != g]
        check = [r for r in runs if key(r) == g]
        out.append((g, fit, check))
    return out


def leave_out_confidence(runs: list[Run], by: str, method: Method = "v2") -> dict[str, np.ndarray]:
    """Per world, the confidence of its lead rows (`_leads`) from a fit that left out its
    group (`leave_out_splits`). A group whose fit has no wrong row fits no logistic model
    (the weights run off to "always sure"): it is fitted all the same, and shows."""
    fallback = _reference_hold()
    out = {}
    for _, fit, check in leave_out_splits(runs, by):
        if not fit:
            continue
        w = fit_leads(fit, method, fallback)
        top, style_top = fit_ceilings(fit, w, fallback, method)
        for run in check:
            out[world(run)] = predict_leads(run, w, method, fallback, top, style_top)
    return out


def _reference_hold() -> float:
    """The shipped calibration's reference hold (read raw: a yaml of other features is fine)."""
    lead = yaml.safe_load(YAML_PATH.read_text())["lead"]
    return float(lead.get("reference_hold_days", 1.0))


#: The worlds the v1 calibration (main 7e262a1, the one the saved outcomes' confidence comes
#: from) was fitted on: its `fitted_on.lead_worlds`. Its confidence is compared on the others.
V1_FIT_WORLDS = tuple(
    [f"{p}-small-{s}" for p in ("easy", "hard", "realistic") for s in (1, 2, 3)]
    + ["hard-medium-1", "hard-medium-2", "realistic-medium-1"]
)


def shipped_reliability(
    rows: list[tuple[str, dict[str, Any]]],
) -> list[tuple[float, float, int, float, float, float]]:
    """Per bin of the confidence the case shipped (caps included): (bin low, bin high, rows,
    mean confidence given, share right, z), z = (share right - mean confidence) / its binomial
    standard error sqrt(c (1 - c) / rows) at the mean confidence c (floored at one row's worth,
    so a bin at 0.999 with no miss is not infinitely sure)."""
    p = np.array([o["confidence"] for _, o in rows], np.float64)
    y = np.array([o["correct"] for _, o in rows], np.float64)
    return reliability(p, y)


def reliability(
    p: np.ndarray, y: np.ndarray
) -> list[tuple[float, float, int, float, float, float]]:
    """`shipped_reliability` of confidences `p` with verdicts `y`."""
    out = []
    for lo, hi in zip(BINS, BINS[1:], strict=False):
        m = (p >= lo) & (p < hi)
        n = int(m.sum())
        if n:
            c, o = float(p[m].mean()), float(y[m].mean())
            se = max(float(np.sqrt(c * (1 - c) / n)), 1.0 / n)
            out.append((lo, min(hi, 1.0), n, c, o, (o - c) / se))
    return out


def wilson(right: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95%) of a share `right` of `n` rows."""
    if n == 0:
        return 0.0, 1.0
    centre = (right + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(right * (1 - right) / n + z * z / (4 * n * n))
    return float(max(centre - half, 0.0)), float(min(centre + half, 1.0))


def ece(p: np.ndarray, y: np.ndarray) -> float:
    """Expected calibration error over BINS: sum of rows/total x |mean given - share right|."""
    bins = reliability(p, y)
    return sum(n * abs(c - o) for _, _, n, c, o, _ in bins) / max(p.shape[0], 1)


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))) if p.size else 0.0


def _shipped_table(rows: list[tuple[float, float, int, float, float, float]]) -> str:
    lines = ["| confidence | rows | mean confidence | right | z |", "|---|---|---|---|---|"]
    lines += [
        f"| {lo:.2f}–{hi:.2f} | {n:,} | {c:.3f} | {o:.3f} | {z:+.1f} |"
        for lo, hi, n, c, o, z in rows
    ]
    return "\n".join(lines)


def _wilson_table(p: np.ndarray, y: np.ndarray) -> str:
    lines = [
        "| confidence | rows | mean given | right | Wilson 95% | z |",
        "|---|---|---|---|---|---|",
    ]
    for lo, hi, n, c, o, z in reliability(p, y):
        a, b = wilson(o, n)
        lines.append(
            f"| {lo:.2f}–{hi:.2f} | {n:,} | {c:.3f} | {o:.3f} | {a:.3f}–{b:.3f} | {z:+.1f} |"
        )
    return "\n".join(lines)


def name_basis(o: dict[str, Any]) -> str:
    """What an outcome row's exchange name rests on, as leads.csv `name_basis` says it
    (cases.rows: `style` before `chain` before `tag`): a style match (`style_name`), a link
    to a cluster named so (`via_entity`: every `attributed_via` but a tag), else its tag."""
    if style_name(o):
        return "style"
    return "chain" if o.get("via_entity") else "tag"


def check_shipped_by_basis(
    seeds: set[int], scales: list[str], profiles: set[str] | None = None
) -> str:
    """The lead half of `check_shipped` split by `name_basis` (tag / chain / style): pooled
    over the profiles, then per profile; the style ceiling and the others' are read from
    different groups, so each basis is checked on its own rows."""
    runs = _load(seeds, scales, profiles)
    rows = [(r["profile"], o) for r in runs for o in r["leads"] if not o["through_coinjoin"]]
    out = []
    for basis in NAME_BASES:
        mine = [(p, o) for p, o in rows if name_basis(o) == basis]
        out.append(f"leads, name_basis {basis}, every profile:\n\n" + _shipped_table(
            shipped_reliability(mine)))  # fmt: skip
    for profile in sorted({p for p, _ in rows}):
        for basis in NAME_BASES:
            mine = [(p, o) for p, o in rows if p == profile and name_basis(o) == basis]
            if mine:
                out.append(f"leads, {profile}, name_basis {basis}:\n\n" + _shipped_table(
                    shipped_reliability(mine)))  # fmt: skip
    return "\n\n".join(out)


def style_twin_worlds(seeds: set[int], scales: list[str], profiles: set[str] | None = None) -> str:
    """The worlds of `seeds` whose simulator drew style twins (`style_twins`: exchanges that
    sign alike, where a style match cannot tell them apart), with their style leads: rows,
    right, mean confidence shipped, and the deciding leads at >= 0.5 resting on style."""
    lines = [
        "| world | style twins | untagged | style rows | style right | mean confidence "
        "| deciding style leads >= 0.5 | of them right |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in _load(seeds, scales, profiles):
        if not r.get("style_twins"):
            continue
        style = [o for o in _leads(r) if style_name(o)]
        best = deciding_leads(
            [(o["deposit_address"], o["exchange"], int(o["amount_sat"]), float(o["confidence"]))
             for o in r["leads"]], 0.5)  # fmt: skip
        verdict = {(o["deposit_address"], o["exchange"]): o for o in r["leads"]}
        deciding = [verdict[(d, e)] for d, (_, e) in best.items()]
        deciding_style = [o for o in deciding if style_name(o)]
        twins = "; ".join("+".join(t) for t in r["style_twins"])
        untagged = ",".join(r.get("untagged_exchanges") or []) or "—"
        mean = float(np.mean([o["confidence"] for o in style])) if style else float("nan")
        lines.append(
            f"| {world(r)} | {twins} | {untagged} | {len(style):,} "
            f"| {sum(o['correct'] for o in style):,} | {mean:.3f} | {len(deciding_style):,} "
            f"| {sum(o['correct'] for o in deciding_style):,} |"
        )
    return "\n".join(lines)


def check_shipped(
    seeds: set[int],
    scales: list[str],
    cashout_scales: list[str],
    profiles: set[str] | None = None,
) -> str:
    """Reliability of the confidence the cases shipped (no fit, nothing written): leads and
    cash-outs of `seeds` (of `profiles`; None: every profile saved), pooled and per profile,
    as markdown."""
    out = []
    for kind, key, skip, sc in (
        ("leads", "leads", "through_coinjoin", scales),
        ("cash-outs", "cashouts", "coinjoin", cashout_scales),
    ):
        runs = _load(seeds, sc, profiles)
        rows = [(r["profile"], o) for r in runs for o in r[key] if not o[skip]]
        worlds = ", ".join(f"{r['profile']} {r['scale']} {r['seed']}" for r in runs)
        out.append(f"{kind}, every profile ({worlds}):\n\n" + _shipped_table(
            shipped_reliability(rows)))  # fmt: skip
        for profile in sorted({p for p, _ in rows}):
            mine = [(p, o) for p, o in rows if p == profile]
            out.append(f"{kind}, {profile} only:\n\n" + _shipped_table(
                shipped_reliability(mine)))  # fmt: skip
    return "\n\n".join(out)


def _groups(runs: list[Run]) -> list[tuple[str, list[Run]]]:
    """Every scale, then every profile, of `runs` (those present), with their worlds."""
    out = []
    for by in ("scale", "profile"):
        values = sorted({r[by] for r in runs}, key=lambda v: (v not in SCALES, SCALES.index(v)
                        if v in SCALES else 0, v))  # fmt: skip
        out += [(v, [r for r in runs if r[by] == v]) for v in values]
    return out


def _verdicts(runs: list[Run]) -> dict[str, np.ndarray]:
    return {world(r): np.array([o["correct"] for o in _leads(r)], np.float64) for r in runs}


def _shipped(runs: list[Run]) -> dict[str, np.ndarray]:
    """The confidence the cases shipped (the saved outcomes' own)."""
    return {world(r): np.array([o["confidence"] for o in _leads(r)], np.float64) for r in runs}


def _pooled(
    conf: dict[str, np.ndarray], truth: dict[str, np.ndarray], runs: list[Run]
) -> tuple[np.ndarray, np.ndarray]:
    mine = [world(r) for r in runs if world(r) in conf]
    if not mine:
        return np.zeros(0), np.zeros(0)
    return np.concatenate([conf[w] for w in mine]), np.concatenate([truth[w] for w in mine])


def _summary(p: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(ECE, log loss, largest |z| over the bins at >= 0.5)."""
    zs = [abs(z) for lo, _, _, _, _, z in reliability(p, y) if lo >= 0.5]
    return ece(p, y), log_loss(p, y), max(zs, default=0.0)


def lead_scores(run: Run, conf: np.ndarray) -> tuple[float, float, int, int]:
    """Lead precision and recall at >= 0.5 of the run's case had it shipped `conf` for its
    lead rows (`_leads`; rows beyond a CoinJoin keep their saved confidence, <= 0.25): the
    deciding lead per deposit by `evaluate.deciding_leads`, right by the saved verdict,
    recall over the saved score's eligible deposits (a deposit an untagged exchange paid,
    marked `untagged`, is right or wrong in precision but out of recall, as in
    `score_case`). Returns (precision, recall, named, right)."""
    given = iter(conf.tolist())
    rows, right, untagged = [], {}, set()
    for o in run["leads"]:
        c = o["confidence"] if o["through_coinjoin"] else next(given)
        rows.append((o["deposit_address"], o["exchange"], int(o["amount_sat"]), float(c)))
        right[(o["deposit_address"], o["exchange"])] = bool(o["correct"])
        if o.get("untagged"):
            untagged.add(o["deposit_address"])
    best = deciding_leads(rows, 0.5)
    named = len(best)
    correct = sum(right[(d, e)] for d, (_, e) in best.items())
    recalled = correct - sum(right[(d, e)] for d, (_, e) in best.items() if d in untagged)
    eligible = int(run["score"]["eligible"])
    return (correct / named if named else 1.0, recalled / eligible if eligible else 1.0, named,
            correct)  # fmt: skip


def leave_out_report(
    runs: list[Run], schemes: list[str], baseline: Method = "v1"
) -> tuple[str, dict[str, np.ndarray]]:
    """The --leave-out report (markdown) and the per-world leave-one-world-out confidence;
    `baseline` the method the new one is compared with (v1, or base: without style_name)."""
    truth, shipped = _verdicts(runs), _shipped(runs)
    shipped_fit = set(V1_FIT_WORLDS)
    out, by_world = [], {}
    b = baseline
    for by in schemes:
        new = leave_out_confidence(runs, by, "v2")
        old = leave_out_confidence(runs, by, baseline)
        if by == "world":
            by_world = new
        out.append(f"### Leave-one-{by}-out\n")
        lines = [
            f"| group | rows | ECE new | ECE {b} | log loss new | log loss {b} "
            f"| max abs z >= 0.5 new | max abs z >= 0.5 {b} |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, mine in _groups(runs):
            pn, y = _pooled(new, truth, mine)
            po, _ = _pooled(old, truth, mine)
            if not y.size:
                lines.append(f"| {name} | 0 (its fit had no other worlds) | | | | | | |")
                continue
            (en, ln, zn), (eo, lo, zo) = _summary(pn, y), _summary(po, y)
            lines.append(
                f"| {name} | {y.size:,} | {en:.4f} | {eo:.4f} | {ln:.4f} | {lo:.4f} | {zn:.1f} "
                f"| {zo:.1f} |"
            )
        out.append("\n".join(lines))
        for name, mine in _groups(runs):
            pn, y = _pooled(new, truth, mine)
            if y.size:
                out.append(f"leads, {name}, left out by {by} (new):\n\n" + _wilson_table(pn, y))
        if baseline != "v1":
            out.append(profile_scores(runs, {f"{b}": old, "new": new}, by))
    # the shipped confidence where its fit did not see the world
    held = [r for r in runs if world(r) not in shipped_fit]
    lines = [
        "### Shipped (v1) weights on the worlds their fit did not see, vs leave-one-world-out\n",
        "| group | rows | ECE shipped | ECE new | max abs z >= 0.5 shipped | max abs z >= 0.5 new |",
        "|---|---|---|---|---|---|",
    ]
    for name, mine in _groups(held):
        ps, y = _pooled(shipped, truth, mine)
        pn, _ = _pooled(by_world, truth, mine) if by_world else (ps, y)
        (es, _, zs), (en, _, zn) = _summary(ps, y), _summary(pn, y)
        lines.append(f"| {name} | {y.size:,} | {es:.4f} | {en:.4f} | {zs:.1f} | {zn:.1f} |")
    out.append("\n".join(lines))
    if by_world:
        out.append(precision_table(runs, shipped, by_world))
    return "\n\n".join(out), by_world


def profile_scores(runs: list[Run], conf: dict[str, dict[str, np.ndarray]], by: str) -> str:
    """Per profile, under each of `conf` (method -> per-world confidence): lead precision and
    recall at >= 0.5 (pooled over its worlds: named right / named, recalled / eligible), the
    worst world's, and the deciding leads whose name rests on a style match that fall below
    0.5 (`style_name`, of those at >= 0.5 under the saved confidence)."""
    lines = [
        f"### Lead precision and recall at >= 0.5 per profile, left out by {by}\n",
        "| profile | worlds | "
        + " | ".join(
            f"precision {m} | worst precision {m} | recall {m} | worst recall {m} "
            f"| style leads >= 0.5 {m}"
            for m in conf
        )
        + " |",
        "|---|---|" + "---|" * (5 * len(conf)),
    ]
    for profile in sorted({r["profile"] for r in runs}):
        mine = [r for r in runs if r["profile"] == profile]
        cells = []
        for c in conf.values():
            named = right = recalled = eligible = style = 0
            worst_p, worst_r = 1.0, 1.0
            for r in mine:
                p, rec, n, k = lead_scores(r, c[world(r)])
                named, right = named + n, right + k
                recalled += round(rec * int(r["score"]["eligible"]))
                eligible += int(r["score"]["eligible"])
                worst_p, worst_r = min(worst_p, p), min(worst_r, rec)
                q = iter(c[world(r)].tolist())
                style += sum(
                    1 for o in r["leads"]
                    if (o["confidence"] if o["through_coinjoin"] else next(q)) >= 0.5
                    and style_name(o)
                )  # fmt: skip
            cells.append(
                f"{right / max(named, 1):.4f} | {worst_p:.4f} | {recalled / max(eligible, 1):.4f}"
                f" | {worst_r:.4f} | {style:,}"
            )
        lines.append(f"| {profile} | {len(mine)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def precision_table(runs: list[Run], old: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> str:
    """Lead precision / recall at >= 0.5 per world under the saved (shipped v1) confidence,
    the leave-one-world-out one (`new`) and the calibration.yaml in place (fitted on every
    world, in-sample), worst precision first."""
    raw = yaml.safe_load(YAML_PATH.read_text())["lead"]
    refit = None
    if tuple(raw["features"]) == LEAD_FEATURES:
        w, ref = np.asarray(raw["weights"], np.float64), float(raw["reference_hold_days"])
        top, style_top = float(raw.get("ceiling", 1.0)), float(raw.get("style_ceiling", 1.0))
        refit = {world(r): predict_leads(r, w, "v2", ref, top, style_top) for r in runs}
    rows = []
    for r in runs:
        po, ro, no, _ = lead_scores(r, old[world(r)])
        pn, rn, nn, _ = lead_scores(r, new[world(r)])
        pf, rf, nf, _ = lead_scores(r, refit[world(r)]) if refit else (pn, rn, nn, 0)
        rows.append((min(po, pn, pf), world(r), po, pn, pf, ro, rn, rf, no, nn, nf))
    lines = [
        "### Lead precision and recall at >= 0.5 per world: shipped v1, leave-one-world-out, "
        "refit in place\n",
        "| world | precision v1 | precision left out | precision refit | recall v1 "
        "| recall left out | recall refit | named v1 | named left out | named refit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, w, *v in sorted(rows):
        lines.append(
            f"| {w} | " + " | ".join(f"{x:.4f}" for x in v[:6]) + " | "
            + " | ".join(f"{x:,}" for x in v[6:]) + " |"
        )  # fmt: skip
    return "\n".join(lines)


#: Edges of the hold ÷ typical hold bins of `hold_table`
HOLD_RATIO_EDGES = (0.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, np.inf)


def hold_table(runs: list[Run], profile: str = "hard") -> str:
    """Share right of `profile`'s lead rows without forward signs by hold ÷ the case's
    typical hold, per scale (markdown): the hold's risk is the same at every scale only
    relative to the case's pace."""
    scales = [s for s in SCALES if any(r["scale"] == s for r in runs)]
    cells: dict[str, list[str]] = {s: [] for s in scales}
    for scale in scales:
        ratio, right = [], []
        for r in runs:
            if r["scale"] != scale or r["profile"] != profile:
                continue
            typical = run_typical_hold(r, _reference_hold())
            for o in _leads(r):
                if not _forward_capped(o):
                    ratio.append(o.get("hold_days", 0.0) / typical)
                    right.append(o["correct"])
        x, y = np.array(ratio), np.array(right, np.float64)
        for lo, hi in zip(HOLD_RATIO_EDGES, HOLD_RATIO_EDGES[1:], strict=False):
            m = (x >= lo) & (x < hi)
            cells[scale].append(f"{y[m].mean():.3f} ({int(m.sum()):,})" if m.any() else "")
    lines = [
        f"| hold ÷ case's typical hold ({profile}) | " + " | ".join(scales) + " |",
        "|---" * (len(scales) + 1) + "|",
    ]
    for i, (lo, hi) in enumerate(zip(HOLD_RATIO_EDGES, HOLD_RATIO_EDGES[1:], strict=False)):
        label = f"{lo:g}–{hi:g}" if np.isfinite(hi) else f">= {lo:g}"
        lines.append(f"| {label} | " + " | ".join(cells[s][i] for s in scales) + " |")
    return "\n".join(lines)


def _panel(ax: Any, series: list[tuple[str, np.ndarray, np.ndarray]], title: str) -> None:
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="perfect")
    colors = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    for (name, p, y), color in zip(series, colors, strict=False):
        bins = reliability(p, y)
        if not bins:
            continue
        given = [c for _, _, _, c, _, _ in bins]
        obs = [o for _, _, _, _, o, _ in bins]
        top = max(n for _, _, n, _, _, _ in bins)
        size = [20 + 180 * np.sqrt(n / top) for _, _, n, _, _, _ in bins]
        for _, _, n, c, o, _ in bins:
            a, b = wilson(o, n)
            ax.plot([c, c], [a, b], color=color, linewidth=1, alpha=0.6)
        ax.plot(given, obs, color=color, linewidth=1.2)
        ax.scatter(given, obs, s=size, color=color, label=f"{name} ({p.size:,} rows)", zorder=3)
    ax.set_xlabel("confidence given (mean of its bin)")
    ax.set_ylabel("share of rows right (bars: Wilson 95%)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    ax.grid(alpha=0.3)


def draw(runs: list[Run], conf: dict[str, np.ndarray], cash: list[tuple[float, bool]]) -> None:
    """docs/img/reliability.png (leads pooled, cash-outs) and reliability_groups.png (per
    scale, per profile) of leave-one-world-out confidence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = _verdicts(runs)
    p, y = _pooled(conf, truth, runs)
    cp = np.array([c for c, _ in cash], np.float64)
    cy = np.array([v for _, v in cash], np.float64)
    fig, ax = plt.subplots(figsize=(5.2, 5.0), dpi=120)
    _panel(ax, [("leads", p, y), ("cash-outs (shipped)", cp, cy)],
           f"Leads: each world checked by a fit without it ({len(runs)} worlds)")  # fmt: skip
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(FIGURE)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(10.4, 5.0), dpi=120)
    for ax, by in zip(axes, ("scale", "profile"), strict=True):
        series = []
        for name, mine in _groups(runs):
            if mine[0][by] == name:
                series.append((name, *_pooled(conf, truth, mine)))
        _panel(ax, series, f"Leads by {by}: each world checked by a fit without it")
    fig.tight_layout()
    fig.savefig(GROUP_FIGURE)
    plt.close(fig)


def _cash_rows(runs: list[Run]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [(r["profile"], o) for r in runs for o in r["cashouts"] if not o["coinjoin"]]
    X = cashout_design(
        np.array([o["hops"] for _, o in rows], np.float64),
        np.array([o["share"] for _, o in rows], np.float64),
    )
    y = np.array([o["correct"] for _, o in rows], np.float64)
    return X, y, _group_weights([p for p, _ in rows])


def cashout_report(runs: list[Run]) -> str:
    """Cash-outs: the shipped confidence per scale and profile (Wilson intervals)."""
    out = []
    for name, mine in _groups(runs):
        rows = [o for r in mine for o in r["cashouts"] if not o["coinjoin"]]
        p = np.array([o["confidence"] for o in rows], np.float64)
        y = np.array([o["correct"] for o in rows], np.float64)
        if p.size:
            out.append(f"cash-outs, {name} (shipped, ECE {ece(p, y):.4f}):\n\n"
                       + _wilson_table(p, y))  # fmt: skip
    return "\n\n".join(out)


def refit(args: argparse.Namespace) -> dict[str, Any]:
    """Fit both models on the chosen worlds and write calibration.yaml; returns the doc."""
    seeds = set(args.fit_seeds) if args.fit_seeds else None
    profiles = set(args.profiles) if args.profiles else None
    fit_runs = _load(seeds, args.scales, profiles)
    cash_runs = _load(seeds, args.cashout_scales, profiles)
    if not fit_runs:
        raise SystemExit("no outcomes to fit: run python -m bench.accuracy_matrix first")
    # a case with too few leads to measure its own typical hold uses the fit worlds' median
    reference = float(np.median([run_typical_hold(r, 1.0) for r in fit_runs]))
    lead_w = fit_leads(fit_runs, "v2", reference)
    ceiling, style_ceiling = fit_ceilings(fit_runs, lead_w, reference)
    cX, cy, cw = _cash_rows(cash_runs)
    shipped_yaml = yaml.safe_load(YAML_PATH.read_text())
    # rows that are all right (or all wrong) fit no logistic model: the weights run off to
    # "always sure". Then the shipped cash-out fit stays, and says where it came from.
    cash_kept = cy.size == 0 or cy.min() == cy.max()
    if cash_kept:
        print(f"cash-outs: {cy.size} fit rows, {int(cy.sum())} right: keeping the shipped fit")
        cash_w = np.asarray(shipped_yaml["cashout"]["weights"], np.float64)
    else:
        cash_w = signed_fit(cX, cy, cw, CASHOUT_SIGNS, CASHOUT_FEATURES)
    command = (
        "python -m bench.calibrate"
        + (" --fit-seeds " + " ".join(map(str, sorted(seeds))) if seeds else "")
        + (" --profiles " + " ".join(sorted(profiles)) if profiles else "")
        + " --scales " + " ".join(args.scales)
        + " --cashout-scales " + " ".join(args.cashout_scales)
    )  # fmt: skip
    n_rows = sum(1 for r in fit_runs for o in _leads(r) if not _capped(o))
    doc: dict[str, Any] = {
        "lead": {
            "features": list(LEAD_FEATURES),
            "weights": [round(float(v), 6) for v in lead_w],
            "reference_hold_days": round(reference, 4),
            "ceiling": ceiling,
            "style_ceiling": style_ceiling,
        },
        "cashout": {
            "features": list(CASHOUT_FEATURES),
            "weights": [round(float(v), 6) for v in cash_w],
        },
        # fifo names what haircut names on the simulated worlds; poison is not calibrated and
        # keeps its old discount (0.6 / 0.9)
        "policy_scale": {"haircut": 1.0, "fifo": 1.0, "poison": 0.667},
        "fitted_on": {
            "profiles": sorted({r["profile"] for r in fit_runs}),
            "scales": list(args.scales),
            "cashout_scales": list(args.cashout_scales),
            "seeds": sorted({r["seed"] for r in fit_runs}),
            "lead_worlds": [world(r) for r in fit_runs],
            "lead_rows": n_rows,
            "cashout_rows": (
                shipped_yaml["fitted_on"]["cashout_rows"] if cash_kept else int(cy.shape[0])
            ),
            "command": command,
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
    tmp = YAML_PATH.with_suffix(".yaml.tmp")
    tmp.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=100))
    tmp.replace(YAML_PATH)
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-seeds", nargs="+", type=int, default=None,
                        help="fit on these seeds only (default: every world of --scales)")  # fmt: skip
    parser.add_argument("--check-seeds", nargs="+", type=int, default=[4, 5, 6, 7])
    parser.add_argument("--scales", nargs="+", default=list(SCALES), help="leads")
    parser.add_argument("--cashout-scales", nargs="+", default=list(SCALES))
    parser.add_argument(
        "--profiles",
        nargs="+",
        default=None,
        help="only the worlds of these profiles (default: every profile saved, *_untagged too)",
    )
    parser.add_argument(
        "--check-shipped",
        action="store_true",
        help="only print the reliability of the confidence the cases shipped on --check-seeds",
    )
    parser.add_argument(
        "--by-basis",
        action="store_true",
        help="--check-shipped: also the leads per name_basis (tag / chain / style), pooled and "
        "per profile, and the style-twin worlds' style leads",
    )
    parser.add_argument(
        "--fit-uncapped", action="store_true", help="the default now (kept for old commands)"
    )
    parser.add_argument(
        "--leave-out",
        nargs="+",
        choices=["world", "scale", "profile", "seed"],
        help="only check: fit without each group of worlds in turn, check on it (no write "
        "but the figures)",
    )
    parser.add_argument(
        "--baseline",
        choices=["v1", "base"],
        default="v1",
        help="--leave-out compares with this method: v1 (log hold days) or base (the current "
        "features without style_name), and with base prints precision / recall per profile",
    )
    parser.add_argument(
        "--no-figures", action="store_true", help="--leave-out: draw no reliability figure"
    )
    args = parser.parse_args(argv)
    if args.check_shipped:
        profiles = set(args.profiles) if args.profiles else None
        print(check_shipped(set(args.check_seeds), args.scales, args.cashout_scales, profiles))
        if args.by_basis:
            print()
            print(check_shipped_by_basis(set(args.check_seeds), args.scales, profiles))
            print()
            print(style_twin_worlds(set(args.check_seeds), args.scales, profiles))
        return 0
    if args.leave_out:
        profiles = set(args.profiles) if args.profiles else None
        runs = _load(None, args.scales, profiles)
        if not runs:
            raise SystemExit("no outcomes: run python -m bench.accuracy_matrix first")
        text, by_world = leave_out_report(runs, args.leave_out, args.baseline)
        print(hold_table(runs))
        print()
        print(text)
        cash_runs = _load(None, args.cashout_scales, profiles)
        print(cashout_report(cash_runs))
        if by_world and not args.no_figures:
            cash = [(float(o["confidence"]), bool(o["correct"])) for r in cash_runs
                    for o in r["cashouts"] if not o["coinjoin"]]  # fmt: skip
            draw(runs, by_world, cash)
        return 0
    doc = refit(args)
    print(yaml.safe_dump(doc, sort_keys=False, width=100))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
