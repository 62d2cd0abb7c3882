"""bench/calibrate.py's reliability check of the shipped confidence (`--check-shipped`) and
which lead rows the case caps, on rows with a known answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import calibrate


def _rows(confidence: float, right: int, wrong: int) -> list[tuple[str, dict[str, object]]]:
    one = {"confidence": confidence, "through_coinjoin": False}
    return [("hard", {**one, "correct": True})] * right + [
        ("hard", {**one, "correct": False})
    ] * wrong


def test_bins_report_mean_confidence_share_right_and_binomial_z() -> None:
    # 100 rows said 0.9 and right 90 times: on the mark; 100 said 0.96 and all right: z > 0
    rows = _rows(0.9, 90, 10) + _rows(0.96, 100, 0)
    bins = calibrate.shipped_reliability(rows)
    assert [(lo, n) for lo, _, n, _, _, _ in bins] == [(0.9, 100), (0.95, 100)]
    (_, _, _, c1, o1, z1), (_, _, _, c2, o2, z2) = bins
    assert (c1, o1) == pytest.approx((0.9, 0.9)) and z1 == pytest.approx(0.0, abs=1e-9)
    assert (c2, o2) == pytest.approx((0.96, 1.0))
    assert z2 == pytest.approx(0.04 / (0.96 * 0.04 / 100) ** 0.5)
    # one row said 0.999 and wrong: the error is floored at one row's worth, z stays finite
    [(_, _, _, _, o, z)] = calibrate.shipped_reliability(_rows(0.999, 0, 1))
    assert o == 0.0 and z == pytest.approx(-0.999)


def test_capped_rows_are_long_holds_and_forwards() -> None:
    assert calibrate._capped({"hold_days": calibrate.LONG_HOLD_DAYS + 1, "caution": "long_hold"})
    assert calibrate._capped({"hold_days": 1.0, "caution": "send_all_hop"})
    assert calibrate._capped({"hold_days": 1.0, "caution": "long_hold;switched_type"})
    assert not calibrate._capped({"hold_days": 1.0, "caution": ""})
    assert not calibrate._capped({"hold_days": 1.0})  # outcomes saved before `caution`


def test_check_shipped_reads_saved_outcomes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead = {"hops": 1, "share": 1.0, "custody": 0, "via_entity": False, "hold_days": 0.0}
    run = {
        "profile": "hard",
        "scale": "small",
        "seed": 4,
        "leads": [{**lead, "through_coinjoin": False, "confidence": 0.97, "correct": True}] * 3,
        "cashouts": [{"hops": 1, "share": 1.0, "coinjoin": False, "confidence": 0.93,
                      "correct": True}],
    }  # fmt: skip
    (tmp_path / "hard-small-4.json").write_text(json.dumps(run))
    monkeypatch.setattr(calibrate, "OUT", tmp_path)
    text = calibrate.check_shipped({4}, ["small"], ["small"])
    assert "leads, every profile (hard small 4)" in text
    assert "| 0.95–1.00 | 3 | 0.970 | 1.000 |" in text
    assert "| 0.90–0.95 | 1 | 0.930 | 1.000 |" in text
    assert calibrate.check_shipped({5}, ["small"], ["small"]).count("| rows |") == 2  # empty
