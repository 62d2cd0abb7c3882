"""Calibrated confidence of leads and cash-outs (`calibration.yaml`, docs/investigations.md).

A lead's confidence should mean what it says: leads at 0.9 right about 90% of the time. It is a
logistic model of what the case knows about each row, fitted by `python -m bench.calibrate` on
the outcomes of the simulator's profile matrix (easy, realistic and hard worlds, several seeds)
and shipped as package data; held-out seeds check it (the reliability diagram in the docs).

Lead features: hops from the funding tx to the deposit, log of the lead's share of the deposit,
the batches the funding tx was moved past (`custody_path`), whether the source's name came
from a tag on its own cluster or through its service entity (`attributed_via`), and log(1 + the
longest time in days the traced coins sat at one address on the lead's largest path,
`hold_days`). Coins that sat for weeks before moving on have most likely changed hands on the
way: on the simulated hard worlds most wrong leads walked back through a deposit an exchange
forwarded to a buyer, and on to coins its customer had held for a long time
(docs/investigations.md). Cash-out
features: hops and log of the service's share of the destination output. The fit is for the
haircut policy; fifo and poison scale it by their base ratio to haircut (not calibrated).
Sources named beyond a CoinJoin, and CoinJoins themselves, stay capped at 0.25.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import yaml

__all__ = ["Calibration", "calibration", "lead_design", "cashout_design"]

#: Shares below this are treated as this (a log would run away).
MIN_SHARE = 1e-4


@dataclass(frozen=True)
class Calibration:
    """Logistic weights for leads and cash-outs, and where they were fitted."""

    lead_features: tuple[str, ...]
    lead_weights: np.ndarray
    cashout_features: tuple[str, ...]
    cashout_weights: np.ndarray
    policy_scale: dict[str, float]
    fitted_on: dict[str, Any]

    def lead(self, policy: str, hops: np.ndarray, share: np.ndarray, custody: np.ndarray,
             via_entity: np.ndarray, hold_days: np.ndarray) -> np.ndarray:  # fmt: skip
        """P(the lead names an exchange that funded the deposit)."""
        x = lead_design(hops, share, custody, via_entity, hold_days)
        return _sigmoid(x @ self.lead_weights) * self.policy_scale.get(policy, 1.0)

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


def lead_design(
    hops: np.ndarray,
    share: np.ndarray,
    custody: np.ndarray,
    via_entity: np.ndarray,
    hold_days: np.ndarray,
) -> np.ndarray:
    """Design matrix of lead rows: bias, hops - 1, log share, custody moves, via entity,
    log(1 + longest hold in days)."""
    hops = np.asarray(hops, np.float64)
    return np.column_stack(
        [
            np.ones(hops.shape[0]),
            np.maximum(hops - 1.0, 0.0),
            _log_share(share),
            np.asarray(custody, np.float64),
            np.asarray(via_entity, np.float64),
            np.log1p(np.maximum(np.asarray(hold_days, np.float64), 0.0)),
        ]
    )


def cashout_design(hops: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Design matrix of cash-out rows: bias, hops - 1, log share."""
    hops = np.asarray(hops, np.float64)
    return np.column_stack([np.ones(hops.shape[0]), np.maximum(hops - 1.0, 0.0), _log_share(share)])


@cache
def calibration() -> Calibration:
    """The shipped calibration (chainsleuth/cases/calibration.yaml)."""
    raw = yaml.safe_load(
        resources.files("chainsleuth.cases").joinpath("calibration.yaml").read_text()
    )
    return Calibration(
        lead_features=tuple(raw["lead"]["features"]),
        lead_weights=np.asarray(raw["lead"]["weights"], np.float64),
        cashout_features=tuple(raw["cashout"]["features"]),
        cashout_weights=np.asarray(raw["cashout"]["weights"], np.float64),
        policy_scale={k: float(v) for k, v in raw["policy_scale"].items()},
        fitted_on=raw.get("fitted_on", {}),
    )
