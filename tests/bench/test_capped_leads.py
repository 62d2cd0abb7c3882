"""bench/capped_leads.py: cap reasons read from a lead row, and the --lift conditions."""

from __future__ import annotations

from typing import Any

from bench import capped_leads


def _row(**kw: str) -> dict[str, str]:
    base = {"source_category": "exchange", "through_coinjoin": "false", "hold_days": "1.0",
            "caution": ""}  # fmt: skip
    return {**base, **kw}


def test_cap_reasons_name_the_caps_in_a_fixed_order() -> None:
    assert capped_leads.cap_reasons(_row()) == ""
    assert capped_leads.cap_reasons(_row(caution="coinjoin_change")) == ""  # not a cap
    got = capped_leads.cap_reasons(_row(caution="send_all_hop;long_hold;fingerprint_change",
                                        hold_days="40"))  # fmt: skip
    assert got == "long_hold;fingerprint_change;send_all_hop"
    assert capped_leads.cap_reasons(_row(through_coinjoin="true")) == "mixed"


def test_condition_matches_exact_reasons_and_fields() -> None:
    row: dict[str, Any] = {"reasons": "long_hold", "hops": 4, "agrees": False}
    assert capped_leads.condition("long_hold:hops>=3")(row)
    assert not capped_leads.condition("long_hold:hops>=5")(row)
    assert not capped_leads.condition("long_hold;peeled_off")(row)
    assert capped_leads.condition("*:hops<=4,agrees==0")(row)
    assert not capped_leads.condition("*")({**row, "reasons": "mixed;long_hold"})  # never lifted
    assert not capped_leads.condition("*")({**row, "reasons": ""})
