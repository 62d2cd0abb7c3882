"""Calibrated confidence of leads and cash-outs (`calibration.yaml`, docs/investigations.md).

A lead's confidence should mean what it says: leads at 0.9 right about 90% of the time. It is a
logistic model of what the case knows about each row, fitted by `python -m bench.calibrate` on
the outcomes of the simulator's profile matrix (easy, realistic and hard worlds, several seeds)
and shipped as package data; held-out seeds check it (the reliability diagram in the docs).

Lead features: hops from the funding tx to the deposit, log of the lead's share of the deposit,
the batches the funding tx was moved past (`custody_path`), whether the source's name came
from a tag on its own cluster or through its service entity (`attributed_via`: any kind but
`tag`, so a new lending kind is read as one), and the relative hold: log(1 + the longest time
the traced coins sat at one address on the lead's largest path, `hold_days`, over the case's
typical hold, at most MAX_HOLD_RATIO). The typical hold is the median `hold_days` of the
case's exchange leads of two hops or more (`typical_hold_days`): coins that sat much longer
than the case's other traced coins have most likely changed hands on the way. Days alone do
not carry over between chains: the simulated small worlds' typical hold is ~6 days, the
medium ~2, the large ~0.7, and 15 days is ordinary on the first and a sign of a change of
hands on the last (docs/accuracy-log.md, "Calibration across scales"). And whether the name
rests on a wallet-style match (`style_name`: the leads.csv `name_basis` is `style`): named by
the one tagged wallet whose habits the source's fragment fits (`_lend_by_style`), or carried
by a change link from a fragment named so. That inference is closed-world: it holds only where
every exchange active on the chain is tagged, and where one is not its customers' deposits are
named after a tagged look-alike (docs/accuracy-log.md "A profile with an untagged exchange").
Cash-out features:
hops and log of the service's share of the destination output. The fit is for the haircut
policy; fifo and poison scale it by their base ratio to haircut (not calibrated). Sources
named beyond a CoinJoin, and CoinJoins themselves, stay capped at 0.25.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import yaml

__all__ = [
    "CASHOUT_FEATURES",
    "LEAD_FEATURES",
    "LEAD_SIGNS",
    "CASHOUT_SIGNS",
    "Calibration",
    "calibration",
    "cashout_design",
    "lead_design",
    "parse_calibration",
    "typical_hold_days",
    "via_entity",
]

#: Shares below this are treated as this (a log would run away).
MIN_SHARE = 1e-4

#: The lead model's columns, in order (calibration.yaml must name the same).
LEAD_FEATURES = ("bias", "hops_minus_1", "log_share", "custody_moves", "via_entity",
                 "log1p_hold_ratio", "style_name")  # fmt: skip

#: The direction a lead's confidence must move in as each feature grows (+1 up, -1 down):
#: more hops, a name through the service entity rather than a tag, a name resting on a
#: wallet-style match (`style_name`), or a longer hold never make a lead surer, and a larger
#: share never makes it less sure. `bench.calibrate` fits with a
#: weight of the wrong sign held at 0 (custody moves are free).
LEAD_SIGNS = {"hops_minus_1": -1, "log_share": 1, "via_entity": -1, "log1p_hold_ratio": -1,
              "style_name": -1}  # fmt: skip

#: The cash-out model's columns, in order.
CASHOUT_FEATURES = ("bias", "hops_minus_1", "log_share")

#: The same for cash-outs: more hops from the service never make a cash-out surer, a larger
#: share never less sure. (Fitted free, the wrong cash-outs of one profile, all next to the
#: service, gave more hops a positive weight: docs/design/cases.md.)
CASHOUT_SIGNS = {"hops_minus_1": -1, "log_share": 1}

#: A lead's hold over the case's typical hold counts up to this: beyond ~a month at the large
#: worlds' pace, right leads stay at ~0.6 instead of falling on (the long-hold and forward
#: caps take those rows below the cut anyway). Chosen by the leave-out checks (8, 16, 32, 64
#: measured; docs/investigations.md).
MAX_HOLD_RATIO = 32.0

#: The typical hold is the median over at least this many exchange leads of two hops or
#: more; a case with fewer uses the calibration's `reference_hold_days`.
MIN_TYPICAL_ROWS = 20

#: The typical hold is at least this (days): a case whose coins never sat would divide by 0.
MIN_TYPICAL_HOLD_DAYS = 0.1


@dataclass(frozen=True)
class Calibration:
    """Logistic weights for leads and cash-outs, and where they were fitted."""

    lead_features: tuple[str, ...]
    lead_weights: np.ndarray
    cashout_features: tuple[str, ...]
    cashout_weights: np.ndarray
    policy_scale: dict[str, float]
    fitted_on: dict[str, Any]
    #: typical hold (days) of a case with too few leads to measure its own (MIN_TYPICAL_ROWS)
    reference_hold_days: float = 1.0
    #: the most a lead's confidence says: the share right of the surest leads in the fit's
    #: worst (profile, scale) group. A logistic model runs on toward 1 where the features
    #: see nothing left to doubt, but some of those leads are still wrong (a lookalike wallet,
    #: a customer of an untagged exchange); 0.999 would promise more than any profile gives.
    lead_ceiling: float = 1.0
    #: the most a lead whose name rests on a wallet-style match (`style_name`) says: the share
    #: right of the surest such leads in the fit's worst group. Where an exchange is untagged
    #: the style rule names its customers' deposits after a tagged look-alike, and no feature
    #: of the lead tells those apart: the style leads' top bin holds what the model's weight
    #: cannot say (their wrong rows sit in a few worlds, at the top, among right ones).
    style_ceiling: float = 1.0

    def lead(self, policy: str, hops: np.ndarray, share: np.ndarray, custody: np.ndarray,
             via_entity: np.ndarray, hold_days: np.ndarray,
             typical_hold: float | None = None,
             style_name: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """P(the lead names an exchange that funded the deposit). `typical_hold`: the case's
        (`typical_hold_days` of its exchange leads); None: `reference_hold_days`.
        `style_name`: 1 where the name rests on a wallet-style match (None: none does)."""
        typical = self.reference_hold_days if typical_hold is None else typical_hold
        x = lead_design(hops, share, custody, via_entity, hold_days, typical, style_name)
        p = np.minimum(_sigmoid(x @ self.lead_weights), self.lead_ceiling)
        if style_name is not None:
            p = np.where(np.asarray(style_name) > 0, np.minimum(p, self.style_ceiling), p)
        out: np.ndarray = p * self.policy_scale.get(policy, 1.0)
        return out

    def cashout(self, policy: str, hops: np.ndarray, share: np.ndarray) -> np.ndarray:
        """P(the row is a cash-out of the service to that destination)."""
        x = cashout_design(hops, share)
        return _sigmoid(x @ self.cashout_weights) * self.policy_scale.get(policy, 1.0)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))
    return out


def _log_share(share: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.log(np.clip(np.asarray(share, np.float64), MIN_SHARE, 1.0))
    return out


def via_entity(attributed_via: str) -> bool:
    """Whether a lead's name came through its service entity rather than a tag on its own
    cluster: every `attributed_via` kind but `tag` (service_entity, wallet_style,
    change_spend, and any lending kind added later)."""
    return attributed_via not in ("", "tag")


def typical_hold_days(hold_days: np.ndarray, hops: np.ndarray, fallback: float) -> float:
    """The case's typical hold: the median `hold_days` of its exchange leads of two hops or
    more (a direct payment holds 0), at least MIN_TYPICAL_HOLD_DAYS; `fallback` when fewer
    than MIN_TYPICAL_ROWS such leads."""
    held = np.asarray(hold_days, np.float64)[np.asarray(hops) >= 2]
    if held.shape[0] < MIN_TYPICAL_ROWS:
        return max(float(fallback), MIN_TYPICAL_HOLD_DAYS)
    return max(float(np.median(held)), MIN_TYPICAL_HOLD_DAYS)


def lead_design(
    hops: np.ndarray,
    share: np.ndarray,
    custody: np.ndarray,
    via: np.ndarray,
    hold_days: np.ndarray,
    typical_hold: float,
    style_name: np.ndarray | None = None,
) -> np.ndarray:
    """Design matrix of lead rows (LEAD_FEATURES): bias, hops - 1, log share, custody moves,
    via entity, log(1 + min(hold / typical hold, MAX_HOLD_RATIO)), name resting on a style
    match (None: 0 on every row)."""
    hops = np.asarray(hops, np.float64)
    style = np.zeros(hops.shape[0]) if style_name is None else np.asarray(style_name, np.float64)
    ratio = np.maximum(np.asarray(hold_days, np.float64), 0.0) / max(
        float(typical_hold), MIN_TYPICAL_HOLD_DAYS
    )
    return np.column_stack(
        [
            np.ones(hops.shape[0]),
            np.maximum(hops - 1.0, 0.0),
            _log_share(share),
            np.asarray(custody, np.float64),
            np.asarray(via, np.float64),
            np.log1p(np.minimum(ratio, MAX_HOLD_RATIO)),
            style,
        ]
    )


def cashout_design(hops: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Design matrix of cash-out rows: bias, hops - 1, log share."""
    hops = np.asarray(hops, np.float64)
    return np.column_stack([np.ones(hops.shape[0]), np.maximum(hops - 1.0, 0.0), _log_share(share)])


@cache
def calibration() -> Calibration:
    """The shipped calibration (chainsleuth/cases/calibration.yaml)."""
    path = resources.files("chainsleuth.cases").joinpath("calibration.yaml")
    return parse_calibration(path.read_text(), str(path))


def parse_calibration(text: str, where: str) -> Calibration:
    """A calibration from its yaml text; ValueError (one line, naming `where`) when its
    features are not the ones this module computes."""
    raw = yaml.safe_load(text)
    for kind, want in (("lead", LEAD_FEATURES), ("cashout", CASHOUT_FEATURES)):
        got = tuple(raw[kind]["features"])
        if got != want or len(raw[kind]["weights"]) != len(want):
            raise ValueError(
                f"{where}: {kind}.features {list(got)} with {len(raw[kind]['weights'])} weights,"
                f" confidence.py computes {list(want)}: refit with python -m bench.calibrate"
            )
    return Calibration(
        lead_features=tuple(raw["lead"]["features"]),
        lead_weights=np.asarray(raw["lead"]["weights"], np.float64),
        cashout_features=tuple(raw["cashout"]["features"]),
        cashout_weights=np.asarray(raw["cashout"]["weights"], np.float64),
        policy_scale={k: float(v) for k, v in raw["policy_scale"].items()},
        fitted_on=raw.get("fitted_on", {}),
        reference_hold_days=float(raw["lead"].get("reference_hold_days", 1.0)),
        lead_ceiling=float(raw["lead"].get("ceiling", 1.0)),
        style_ceiling=float(raw["lead"].get("style_ceiling", 1.0)),
    )
