"""bench/candidate_requests.py: requests.csv scored against a hand-written truth."""

from __future__ import annotations

from pathlib import Path

from bench import candidate_requests
from tests.bench.truth_files import payment, write_rows


def _lead(d: str, ent: str, cat: str, conf: str) -> dict[str, str]:
    return {"deposit_address": d, "source_entity": ent, "source_category": cat,
            "confidence": conf, "amount_sat": "1000"}  # fmt: skip


def _ask(d: str, ex: str, order: int) -> dict[str, str]:
    return {"exchange": ex, "deposit_address": d, "ask_order": str(order)}


def test_the_funder_among_the_requests_and_its_ask_order(tmp_path: Path) -> None:
    w = tmp_path / "w"
    write_rows(w / "world" / "truth" / "payments.csv",
               [payment(d, ex) for d, ex in (("d1", "a"), ("d2", "b"), ("d3", "c"), ("d4", "a"),
                                             ("d5", "a"))])  # fmt: skip
    write_rows(w / "case" / "leads.csv", [
        _lead("d1", "cluster:1", "unidentified_service", "0"),
        _lead("d2", "cluster:1", "unidentified_service", "0"),
        _lead("d3", "cluster:1", "unidentified_service", "0"),
        _lead("d4", "a", "exchange", "0.9"),  # named right: not missed, not asked
        _lead("d5", "cluster:2", "unidentified_service", "0"),  # missed, not asked
    ])  # fmt: skip
    write_rows(w / "case" / "requests.csv", [
        _ask("d1", "a", 1), _ask("d1", "b", 2),  # funder asked first
        _ask("d2", "a", 1), _ask("d2", "b", 2),  # funder asked second
        _ask("d3", "a", 1), _ask("d3", "b", 2),  # funder (c) not among them
    ])  # fmt: skip
    got = candidate_requests.score_requests("w", tmp_path)
    assert (got["eligible"], got["named_right"], got["missed"]) == (5, 1, 4)
    assert (got["asked_missed"], got["funder_in"], got["not_missed"]) == (3, 2, 0)
    assert got["requests_per_deposit"] == 2.0 and got["ask_order_mean"] == 1.5
    assert (got["within_1"], got["within_2"]) == (1, 2)
    assert got["recall_if_confirmed"] == 0.6
    assert "| w | 0.200 | 4 | 3 | 2 (0.500 of missed, 0.667 of asked) |" in (
        candidate_requests.table([got])
    )
