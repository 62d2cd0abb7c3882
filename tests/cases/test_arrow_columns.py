"""The case's per-lead string tests on Arrow arrays (`cases.columns`) and `closed_world_counts`,
which counts on them, held to their per-row definitions written as plain-Python loops."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from chainsleuth.cases.columns import has_item, item_count, string_equals, string_in
from chainsleuth.cases.investigate import closed_world_counts
from chainsleuth.cases.rows import EXCHANGE_CATEGORIES

TEXTS = ["", None, "a", "a;b", "b;a;c", "ab", "xa;b", ";", "a;"]


def test_the_string_tests_match_python_on_every_kind_of_row() -> None:
    column = pa.chunked_array([TEXTS[:4], TEXTS[4:]])  # chunked, as a case's concatenated tables
    items = [set((t or "").split(";")) for t in TEXTS]
    assert has_item(column, ["a"]).tolist() == ["a" in i for i in items]
    assert has_item(column, ["c", "b"]).tolist() == [bool(i & {"b", "c"}) for i in items]
    assert item_count(column).tolist() == [len(t.split(";")) if t else 0 for t in TEXTS]
    assert string_equals(column, "a").tolist() == [t == "a" for t in TEXTS]
    assert string_in(column, {"a", "ab"}).tolist() == [t in ("a", "ab") for t in TEXTS]


def _reference_counts(leads: pa.Table, cut: float) -> dict[str, int]:
    """closed_world_counts one row at a time: per deposit, its first exchange row at `cut` or
    above with the largest amount."""
    deciding: dict[str, dict[str, object]] = {}
    for row in leads.to_pylist():
        confidence = row["confidence"]
        if confidence is None or confidence != confidence:  # null or NaN: read as 0
            confidence = 0.0
        if row["source_category"] not in EXCHANGE_CATEGORIES or not confidence >= cut:
            continue
        best = deciding.get(row["deposit_address"])
        if best is None or row["amount_sat"] > best["amount_sat"]:  # type: ignore[operator]
            deciding[row["deposit_address"]] = row
    style = [r for r in deciding.values() if r.get("name_basis", "") == "style"]
    if "name_basis" not in leads.column_names:
        style = [r for r in deciding.values() if r["attributed_via"] == "wallet_style"]
    return {
        "deciding_leads": len(deciding),
        "leads_resting_on_style": len(style),
        "leads_resting_on_style_carried": sum(r["attributed_via"] != "wallet_style" for r in style),
    }


def _leads(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)

    def draw(values: list[str | None]) -> list[str | None]:
        return [values[i] for i in rng.integers(0, len(values), n)]

    return pa.table(
        {
            # few deposits and few amounts: many rows per deposit and ties on the amount
            "deposit_address": [f"d{i}" for i in rng.integers(0, n // 4, n)],
            "source_category": draw(["exchange", "atm", "coinjoin", "unidentified_service", None]),
            "confidence": pa.array(
                np.where(rng.random(n) < 0.1, np.nan, rng.random(n)), from_pandas=False
            ),
            "amount_sat": rng.integers(1, 6, n),
            "attributed_via": draw(["", None, "tag", "wallet_style", "service_entity"]),
            "name_basis": draw(["", None, "tag", "chain", "style"]),
        }
    )


def test_closed_world_counts_match_the_per_row_definition() -> None:
    for seed in range(4):
        leads = pa.concat_tables([_leads(300, seed), _leads(200, seed + 100)])
        for cut in (0.0, 0.5):
            assert closed_world_counts(leads, cut) == _reference_counts(leads, cut)
            older = leads.drop_columns(["name_basis"])
            assert closed_world_counts(older, cut) == _reference_counts(older, cut)
    # the ties are there: a deposit whose largest amount is on two rows of different bases
    leads = _leads(300, 0)
    assert len(leads.group_by(["deposit_address", "amount_sat"]).aggregate([])) < 300
