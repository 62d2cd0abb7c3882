"""Score a case against ground truth: leads and cash-outs the way a subpoena would use them.

Simulated worlds (and any labelled world written in the same CSV layout: `truth/payments.csv`,
`truth/deposits.csv`, `truth/cashouts.csv`, docs/simulator.md) say who funded every deposit and
where the service cashed out. `score_case(world_dir, case_dir)` reads those files and a case's
`leads.csv` and `cashouts.csv` and measures what issue 11 asks for:

- **Leads.** Only rows at `confidence >= min_confidence` (0.5) count, and per deposit address
  the lead that counts is its exchange row with the largest `amount_sat` among them. A deposit
  is *eligible* when it was paid at least once without a trail-breaking CoinJoin; a named lead
  is *correct* when its exchange funded one of the deposit's payments whose trail holds.
  Precision = correct / named (over every deposit named, eligible or not), recall = correct /
  eligible, overall and per exchange (the truth's exchange of the deposit's first trail-holding
  payment).
- **Untagged exchanges.** A world may leave exchanges with no tag at all
  (`truth/untagged_exchanges.csv`, simulator knob `untagged_exchanges`): no lead can name
  them, so a deposit one of their trail-holding payments paid is out of `eligible` and out of
  per-exchange recall (`untagged_deposits` counts them). Its deciding lead still counts in
  precision: right where it names an exchange that funded one of its trail-holding payments
  (a tagged co-funder), else wrong, and then also counted in `untagged_named_wrong` (a
  subpoena to an exchange that never held the money). A world without the file scores as
  before.
- **CoinJoins and unpaid deposits.** Deposits paid only through trail-breaking CoinJoins that
  carry an exchange lead above 0.25, and unpaid deposits with any exchange lead, are counted
  (both must be zero).
- **Cash-outs.** Rows at `confidence >= min_confidence` matched to the truth by (txid,
  destination address): recall, precision, whether the exchange is right (and how many name
  another of the truth's exchanges, `cashout_exchange_wrong`), and the reported
  total (`amount_sat`, the service's money traced into the destination) over the true total.

Used by the tests, `bench/accuracy_matrix.py`, `bench/calibrate.py` (which rescores saved
outcomes with `deciding_leads`) and docs/investigations.md. Reads files only; it imports no
other stage.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chainsleuth.cases.confidence import via_entity

__all__ = [
    "CaseScore",
    "cashout_outcomes",
    "deciding_leads",
    "lead_outcomes",
    "score_case",
    "untagged_exchanges",
]

#: The categories a subpoena can go to (the same set as cases.rows.EXCHANGE_CATEGORIES).
_SUBPOENA_CATEGORIES = frozenset(
    {"exchange", "otc_broker", "wallet_service", "atm", "payment_processor"}
)


@dataclass
class CaseScore:
    """What `score_case` measured (fractions are 1.0 where their denominator is 0)."""

    eligible: int = 0
    named: int = 0
    correct: int = 0
    lead_precision: float = 1.0
    lead_recall: float = 1.0
    per_exchange: dict[str, dict[str, float]] = field(default_factory=dict)
    #: deposits paid by an untagged exchange (a trail-holding payment), out of recall
    untagged_deposits: int = 0
    #: those whose deciding lead names an exchange that funded none of their payments
    untagged_named_wrong: int = 0
    coinjoin_only_deposits: int = 0
    coinjoin_attributed_above_cap: int = 0
    unpaid_attributed: int = 0
    cashouts_true: int = 0
    cashouts_reported: int = 0
    cashouts_found: int = 0
    cashout_recall: float = 1.0
    cashout_precision: float = 1.0
    cashout_exchange_right: int = 0
    #: true cash-outs whose row names another exchange than the truth's (a subpoena to the
    #: wrong exchange; an untagged exchange's deposit named after a tagged look-alike)
    cashout_exchange_wrong: int = 0
    cashout_total_ratio: float = 1.0

    def worst_exchange_recall(self) -> float:
        return min((v["recall"] for v in self.per_exchange.values()), default=1.0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _float(text: str) -> float:
    return float(text) if text else 0.0


def _truth(world_dir: Path) -> tuple[dict[str, list[dict[str, str]]], list[str]]:
    """Payments per deposit address, and every seized deposit address."""
    payments: dict[str, list[dict[str, str]]] = defaultdict(list)
    for p in _rows(world_dir / "truth" / "payments.csv"):
        payments[p["deposit_address"]].append(p)
    deposits = [d["deposit_address"] for d in _rows(world_dir / "truth" / "deposits.csv")]
    return payments, deposits


def untagged_exchanges(world_dir: Path) -> frozenset[str]:
    """The exchanges the world's tags leave out (`truth/untagged_exchanges.csv`; none where
    the file is absent, as in every world built before the simulator's knob)."""
    path = Path(world_dir) / "truth" / "untagged_exchanges.csv"
    return frozenset(r["exchange"] for r in _rows(path)) if path.exists() else frozenset()


def _holds(p: dict[str, str]) -> bool:
    """A payment whose trail from the exchange holds (no trail-breaking CoinJoin on it)."""
    return bool(p["funding_exchange"]) and not (
        p["path_kind"] == "coinjoin" and p["coinjoin_broke_trail"] == "true"
    )


def lead_outcomes(
    world_dir: Path, case_dir: Path, min_confidence: float = 0.0
) -> list[dict[str, Any]]:
    """Every exchange lead row of the case (at `min_confidence` or above) with the truth's
    verdict `correct` (its exchange funded a trail-holding payment into the deposit), its
    confidence and the features the calibration reads (hops, share, custody moves, named via
    the service entity, longest hold in days, name resting on a style match, through a
    CoinJoin) and its `caution`. A row of
    a deposit an untagged exchange paid (`score_case`) also says `untagged: True` (the key is
    absent elsewhere, so that the outcomes of worlds without untagged exchanges stay as
    they were)."""
    payments, _ = _truth(Path(world_dir))
    untagged = untagged_exchanges(Path(world_dir))
    out = []
    for r in _rows(Path(case_dir) / "leads.csv"):
        if r["source_category"] not in _SUBPOENA_CATEGORIES:
            continue
        c = _float(r["confidence"])
        if c < min_confidence:
            continue
        right = {p["funding_exchange"] for p in payments.get(r["deposit_address"], []) if _holds(p)}
        custody = r.get("custody_path") or ""
        out.append(
            {
                "deposit_address": r["deposit_address"],
                "exchange": r["source_entity"],
                "confidence": c,
                "amount_sat": int(r["amount_sat"]),
                "hops": int(r["hops"] or 0),
                "share": _float(r.get("share", "")),
                "custody": len(custody.split(";")) if custody else 0,
                "via_entity": via_entity(r.get("attributed_via") or ""),
                "via_style": r.get("attributed_via") == "wallet_style",
                # the name rests on a wallet-style match (leads.csv name_basis; the
                # calibration's style_name)
                "style_name": r.get("name_basis") == "style",
                "hold_days": _float(r.get("hold_days", "")),
                "through_coinjoin": r.get("through_coinjoin") == "true",
                # why the case capped its confidence (long_hold, switched_type, ...), if it did
                "caution": r.get("caution") or "",
                "correct": r["source_entity"] in right,
                **({"untagged": True} if right & untagged else {}),
            }
        )
    return out


def cashout_outcomes(world_dir: Path, case_dir: Path) -> list[dict[str, Any]]:
    """Every cash-out row with its verdict (a true cash-out: same txid and destination), its
    confidence, hops and the service's share of the destination output."""
    truth = {
        (c["txid"], c["destination_address"])
        for c in _rows(Path(world_dir) / "truth" / "cashouts.csv")
    }
    return [
        {
            "confidence": _float(r.get("confidence", "")),
            "hops": int(r["hops"] or 0),
            "share": _float(r.get("service_share", "")),
            "coinjoin": r["destination_category"] == "coinjoin",
            "correct": (r["txid"], r["destination_address"]) in truth,
        }
        for r in _rows(Path(case_dir) / "cashouts.csv")
    ]


def deciding_leads(
    leads: Iterable[tuple[str, str, int, float]], min_confidence: float = 0.5
) -> dict[str, tuple[int, str]]:
    """The lead that counts per deposit, from (deposit address, exchange, amount_sat,
    confidence) rows in leads.csv order: among the rows at `min_confidence` or above, the one
    with the largest amount (the first of equals). Returns {deposit: (amount, exchange)}."""
    best: dict[str, tuple[int, str]] = {}
    for d, exchange, amount, c in leads:
        if c >= min_confidence and (d not in best or amount > best[d][0]):
            best[d] = (amount, exchange)
    return best


def score_case(world_dir: Path, case_dir: Path, min_confidence: float = 0.5) -> CaseScore:
    """Score `case_dir`'s leads.csv and cashouts.csv against `world_dir/truth/`."""
    world_dir, case_dir = Path(world_dir), Path(case_dir)
    payments, deposits = _truth(world_dir)
    untagged = untagged_exchanges(world_dir)
    top_confidence: dict[str, float] = defaultdict(float)
    rows = []
    for r in _rows(case_dir / "leads.csv"):
        if r["source_category"] not in _SUBPOENA_CATEGORIES:
            continue
        c = _float(r["confidence"])
        d = r["deposit_address"]
        top_confidence[d] = max(top_confidence[d], c)
        rows.append((d, r["source_entity"], int(r["amount_sat"]), c))
    best = deciding_leads(rows, min_confidence)
    s = CaseScore()
    per: dict[str, dict[str, float]] = defaultdict(lambda: {"eligible": 0, "correct": 0})
    for d in deposits:
        ps = payments.get(d, [])
        holding = [p for p in ps if _holds(p)]
        named = best.get(d)
        if not ps:
            s.unpaid_attributed += d in top_confidence
            continue
        if not holding:
            s.coinjoin_only_deposits += 1
            s.coinjoin_attributed_above_cap += top_confidence.get(d, 0.0) > 0.25
        right = {p["funding_exchange"] for p in holding}
        if named is not None:
            s.named += 1
            s.correct += named[1] in right
        if right & untagged:
            # nobody can name an exchange the tags do not know: out of recall, in precision
            s.untagged_deposits += 1
            s.untagged_named_wrong += named is not None and named[1] not in right
            continue
        if holding:
            s.eligible += 1
            e = per[holding[0]["funding_exchange"]]
            e["eligible"] += 1
            e["correct"] += named is not None and named[1] in right
    s.lead_precision = s.correct / s.named if s.named else 1.0
    correct_eligible = sum(int(v["correct"]) for v in per.values())
    s.lead_recall = correct_eligible / s.eligible if s.eligible else 1.0
    s.per_exchange = {
        k: {**v, "recall": v["correct"] / v["eligible"] if v["eligible"] else 1.0}
        for k, v in sorted(per.items())
    }
    truth = {
        (c["txid"], c["destination_address"]): c
        for c in _rows(world_dir / "truth" / "cashouts.csv")
    }
    reported = [
        r
        for r in _rows(case_dir / "cashouts.csv")
        if _float(r.get("confidence", "1")) >= min_confidence
    ]
    found = [r for r in reported if (r["txid"], r["destination_address"]) in truth]
    s.cashouts_true = len(truth)
    s.cashouts_reported = len(reported)
    s.cashouts_found = len({(r["txid"], r["destination_address"]) for r in found})
    s.cashout_recall = s.cashouts_found / len(truth) if truth else 1.0
    s.cashout_precision = len(found) / len(reported) if reported else 1.0
    s.cashout_exchange_right = sum(
        r["destination_entity"]
        == truth[(r["txid"], r["destination_address"])]["destination_exchange"]
        for r in found
    )
    # the exchanges the truth knows: every funder of a payment and every cash-out's exchange
    exchanges = {p["funding_exchange"] for ps in payments.values() for p in ps}
    exchanges |= {c["destination_exchange"] for c in truth.values()}
    exchanges.discard("")
    s.cashout_exchange_wrong = sum(
        r["destination_entity"] in exchanges
        and r["destination_entity"]
        != truth[(r["txid"], r["destination_address"])]["destination_exchange"]
        for r in found
    )
    true_total = sum(int(c["amount_sat"]) for c in truth.values())
    reported_total = sum(int(r["amount_sat"]) for r in reported)
    s.cashout_total_ratio = reported_total / true_total if true_total else 1.0
    return s
