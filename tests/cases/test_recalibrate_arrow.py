"""`rows.recalibrate_leads` reads its string columns on Arrow arrays (pyarrow.compute); these
tests hold it to the per-row definition, written as a slow plain-Python loop: one lead at a
time, its cautions split into a set, its custody moves counted with `str.split`."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from chainsleuth.cases.confidence import via_entity
from chainsleuth.cases.rows import (
    EXCHANGE_CATEGORIES,
    FORWARD_CAUTIONS,
    LEAD_COLUMNS,
    lead_confidence,
    recalibrate_leads,
    schema_of,
)

CATEGORIES = ["exchange", "atm", "coinjoin", "unidentified_service", "", None]
THROUGH = ["true", "false", "", None]
CAUTIONS = [
    "",
    None,
    "long_hold",
    "send_all_hop",
    "long_hold;switched_type",
    "coinjoin_change;round_payment",
    "linked_by_change_return",
    "own_forward",
    # near-misses: a caution item is matched whole, never as a part of another item
    "long_holds",
    "xlong_hold;send_all_hops",
    "fingerprint_change;long_hold",
]
CUSTODY = ["", None, "aa", "aa;bb", "aa;bb;cc", ";"]
VIA = ["", None, "tag", "service_entity", "wallet_style", "change_spend", "sweep_into"]
BASIS = ["", None, "tag", "chain", "style"]
POLICIES = ["haircut", "poison", "fifo"]


def _mixed_leads(n: int, seed: int, policies: list[str | None]) -> pa.Table:
    """`n` lead rows drawing every string column from the lists above (nulls included)."""
    rng = np.random.default_rng(seed)

    def draw(values: list[str | None]) -> list[str | None]:
        return [values[i] for i in rng.integers(0, len(values), n)]

    columns: dict[str, object] = {c: [""] * n for c in LEAD_COLUMNS}
    columns.update(
        source_category=draw(CATEGORIES),
        through_coinjoin=draw(THROUGH),
        caution=draw(CAUTIONS),
        custody_path=draw(CUSTODY),
        attributed_via=draw(VIA),
        name_basis=draw(BASIS),
        policy=draw(policies),  # type: ignore[arg-type]
        hops=rng.integers(1, 16, n),
        share=np.round(rng.uniform(0.0, 1.0, n), 4),
        hold_days=np.round(rng.exponential(20.0, n), 2),
        confidence=np.full(n, -1.0),
        n_paths=np.ones(n, np.int64),
        amount_sat=rng.integers(1, 10**8, n),
        source_cluster=np.zeros(n, np.int64),
        block_height=np.zeros(n, np.int64),
        amount_usd=np.zeros(n),
    )
    return pa.table(columns, schema=schema_of(LEAD_COLUMNS))


def _reference(leads: pa.Table, typical_hold: float) -> list[float]:
    """The per-row definition: each lead alone, its strings read with Python's str methods."""
    out = []
    for row in leads.to_pylist():
        cautions = set((row["caution"] or "").split(";"))
        custody = row["custody_path"]
        category = row["source_category"]
        features = (
            np.array([float(row["hops"])]),
            np.array([float(row["share"])]),
            np.array([float(len(custody.split(";")) if custody else 0)]),
            np.array([float(via_entity(row["attributed_via"] or ""))]),
            np.array([float(row["hold_days"])]),
            np.array([row["name_basis"] == "style"]),
        )
        confidence = lead_confidence(
            row["policy"] or "",
            features,
            typical_hold,
            np.array([category == "coinjoin" or row["through_coinjoin"] == "true"]),
            np.array(["long_hold" in cautions]),
            np.array([bool(cautions & FORWARD_CAUTIONS)]),
            np.array([category in EXCHANGE_CATEGORIES or category == "coinjoin"]),
        )
        out.append(float(confidence[0]))
    return out


def test_recalibrate_leads_matches_the_per_row_definition() -> None:
    leads = _mixed_leads(3000, seed=11, policies=POLICIES)
    for typical_hold in (1.0, 30.0):
        got = recalibrate_leads(leads, typical_hold).column("confidence").to_pylist()
        assert got == _reference(leads, typical_hold)
    # every kind of row is drawn: the comparison covers each cap and each near-miss
    assert {r for r in leads.column("caution").to_pylist()} == set(CAUTIONS)


def test_recalibrate_leads_on_chunks_and_one_policy() -> None:
    """A case's leads are many tables concatenated (one per chunk of seeds): chunked columns
    read as one; a single policy is scored without a per-policy mask."""
    parts = [_mixed_leads(400, seed=s, policies=["haircut"]) for s in range(3)]
    leads = pa.concat_tables(parts)
    assert leads.column("caution").num_chunks == 3
    got = recalibrate_leads(leads, 5.0).column("confidence").to_pylist()
    assert got == _reference(leads, 5.0)


def test_recalibrate_leads_reads_a_null_policy_as_none() -> None:
    """A null policy is no policy's scale (as "" is): the same confidence as a row of an
    unscaled policy (haircut's scale is 1), not a crash when policies are mixed."""
    leads = _mixed_leads(200, seed=3, policies=[None, "haircut"])
    got = recalibrate_leads(leads, 1.0).column("confidence").to_pylist()
    plain = recalibrate_leads(
        leads.set_column(
            leads.schema.get_field_index("policy"), "policy", pa.array(["haircut"] * 200)
        ),
        1.0,
    )
    assert got == plain.column("confidence").to_pylist()
    assert got == _reference(leads, 1.0)
