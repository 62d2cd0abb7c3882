"""bench/calibrate.py on synthetic outcome lists (never bench-output): the reliability check
of the shipped confidence (`--check-shipped`), which lead rows the case caps, the leave-out
splits (a world is never checked by a fit that saw it), the sign-kept fit and the rescoring
of saved outcomes at >= 0.5."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
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
    assert [(lo, hi, n) for lo, hi, n, _, _, _ in bins] == [(0.9, 0.95, 100), (0.95, 0.99, 100)]
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
    # a long hold on a path read for a change of hands and showing none ships the model's value
    held = {"hold_days": calibrate.LONG_HOLD_DAYS + 1, "caution": "long_hold"}
    assert not calibrate._capped({**held, "hops": 3}) and not calibrate._capped({**held, "hops": 4})
    assert calibrate._capped({**held, "hops": 2})
    assert calibrate._capped({**held, "caution": "long_hold;peeled_off", "hops": 4})
    assert calibrate._capped({**held, "hops": 5})  # a path long enough to hide a hand-off
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
    assert "| 0.95–0.99 | 3 | 0.970 | 1.000 |" in text
    assert "| 0.90–0.95 | 1 | 0.930 | 1.000 |" in text
    assert calibrate.check_shipped({5}, ["small"], ["small"]).count("| rows |") == 2  # empty
    # an untagged-exchange world is read with the others unless --profiles leaves it out
    (tmp_path / "hard_untagged-small-4.json").write_text(
        json.dumps({**run, "profile": "hard_untagged"})
    )
    text = calibrate.check_shipped({4}, ["small"], ["small"])
    assert "(hard small 4, hard_untagged small 4)" in text and "hard_untagged only" in text
    text = calibrate.check_shipped({4}, ["small"], ["small"], {"hard"})
    assert "leads, every profile (hard small 4)" in text and "hard_untagged" not in text


def test_a_hold_read_from_the_own_forward_on_is_no_long_hold() -> None:
    # the case reads the hold from the named exchange's own forward on (caution own_forward, no
    # long_hold) while hold_days is the whole path's: the row ships the model's value
    own = {"hold_days": calibrate.LONG_HOLD_DAYS * 3, "caution": "own_forward", "hops": 5}
    assert not calibrate._capped(own)
    assert calibrate._capped({**own, "caution": "own_forward;long_hold"})
    assert calibrate._capped({"hold_days": calibrate.LONG_HOLD_DAYS + 1, "hops": 5})  # no caution
    lead = {**own, "share": 1.0, "custody": 0, "via_entity": True, "through_coinjoin": False,
            "style_name": False, "confidence": 0.99, "correct": True}  # fmt: skip
    run = {"leads": [lead] * 12}
    weights = np.array([6.0, 0, 0, 0, 0, 0, 0])
    [p, *_] = calibrate.predict_leads(run, weights, "v2", 1.0, 0.99, 0.94)
    assert p == pytest.approx(0.99)  # the ceiling, not LONG_HOLD_CAP
    assert calibrate.predict_leads({"leads": [{**lead, "caution": "long_hold"}] * 12}, weights,
                                   "v2", 1.0, 0.99, 0.94)[0] == calibrate.LONG_HOLD_CAP  # fmt: skip


def test_name_basis_is_style_then_chain_then_tag() -> None:
    assert calibrate.name_basis({"style_name": True, "via_entity": True}) == "style"
    assert calibrate.name_basis({"via_style": True, "via_entity": True}) == "style"  # older rows
    assert calibrate.name_basis({"style_name": False, "via_entity": True}) == "chain"
    assert calibrate.name_basis({"style_name": False, "via_entity": False}) == "tag"


def test_check_shipped_by_basis_splits_the_leads_and_reads_the_twin_worlds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = {"hops": 2, "share": 1.0, "custody": 0, "hold_days": 1.0, "through_coinjoin": False}
    tag = {**one, "via_entity": False, "style_name": False, "confidence": 0.99}
    style = {**one, "via_entity": True, "style_name": True, "confidence": 0.94}
    leads = [{**tag, "deposit_address": f"t{i}", "exchange": "a", "amount_sat": 5,
              "correct": True} for i in range(4)]  # fmt: skip
    leads += [{**style, "deposit_address": f"s{i}", "exchange": "b", "amount_sat": 5,
               "correct": i < 3} for i in range(5)]  # fmt: skip
    run = {"profile": "hard", "scale": "small", "seed": 15, "leads": leads, "cashouts": [],
           "style_twins": [["b", "c"]]}  # fmt: skip
    (tmp_path / "hard-small-15.json").write_text(json.dumps(run))
    (tmp_path / "hard-small-16.json").write_text(json.dumps({**run, "seed": 16,
                                                            "style_twins": []}))  # fmt: skip
    monkeypatch.setattr(calibrate, "OUT", tmp_path)
    text = calibrate.check_shipped_by_basis({15}, ["small"])
    style_part = text.split("name_basis style, every profile")[1].split("leads,")[0]
    assert "| 0.90–0.95 | 5 | 0.940 | 0.600 |" in style_part
    tag_part = text.split("name_basis tag, every profile")[1].split("leads,")[0]
    assert "| 0.99–1.00 | 4 | 0.990 | 1.000 |" in tag_part and "0.600" not in tag_part
    assert "leads, hard, name_basis chain" not in text  # no chain rows: no table
    twins = calibrate.style_twin_worlds({15, 16}, ["small"])
    assert "| hard-small-15 | b+c | — | 5 | 3 | 0.940 | 5 | 3 |" in twins
    assert "hard-small-16" not in twins  # no twins drawn


def _run(profile: str, scale: str, seed: int, n: int = 60, wrong_every: int = 7) -> dict[str, Any]:
    """A saved-outcome dict like bench.accuracy_matrix writes: `n` leads, every
    `wrong_every`-th wrong and held long, hops cycling 1..5."""
    rng = np.random.default_rng(seed + 100 * len(profile) + len(scale))
    leads = []
    for i in range(n):
        wrong = i % wrong_every == 0
        leads.append({
            "deposit_address": f"d{i // 2}", "exchange": "a" if i % 2 else "b",
            "amount_sat": int(rng.integers(1, 10**6)), "hops": 1 + i % 5,
            "share": float(rng.uniform(0.05, 1.0)), "custody": 0, "via_entity": bool(i % 3),
            "hold_days": (20.0 if wrong else 1.0) + float(rng.uniform(0, 1)),
            "through_coinjoin": False, "caution": "", "confidence": 0.97,
            "correct": not wrong,
        })  # fmt: skip
    return {"profile": profile, "scale": scale, "seed": seed, "leads": leads, "cashouts": [],
            "score": {"eligible": n // 2}}  # fmt: skip


def _runs() -> list[dict[str, Any]]:
    return [
        _run(p, s, seed)
        for p in ("easy", "hard")
        for s, seeds in (("small", (1, 2, 3)), ("medium", (1,)))
        for seed in seeds
    ]


@pytest.mark.parametrize("by", ["world", "scale", "profile", "seed"])
def test_leave_out_never_checks_a_world_its_fit_saw(
    by: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _runs()
    splits = calibrate.leave_out_splits(runs, by)
    checked = [calibrate.world(r) for _, _, check in splits for r in check]
    assert sorted(checked) == sorted(calibrate.world(r) for r in runs)  # each once
    for group, fit, check in splits:
        assert check and {calibrate.world(r) for r in fit}.isdisjoint(
            calibrate.world(r) for r in check
        ), group
        assert len(fit) + len(check) == len(runs)
    # and the predictions come from those fits: record what each fit saw
    seen: list[set[str]] = []
    real_fit = calibrate.fit_leads

    def spy(fit_runs: list[dict[str, Any]], *a: Any) -> np.ndarray:
        seen.append({calibrate.world(r) for r in fit_runs})
        return real_fit(fit_runs, *a)

    monkeypatch.setattr(calibrate, "fit_leads", spy)
    monkeypatch.setattr(calibrate, "_reference_hold", lambda: 1.0)
    conf = calibrate.leave_out_confidence(runs, by)
    assert set(conf) == {calibrate.world(r) for r in runs}
    for (_, _, check), fitted in zip(splits, seen, strict=True):
        assert fitted.isdisjoint(calibrate.world(r) for r in check)
    for r in runs:
        assert conf[calibrate.world(r)].shape == (len(r["leads"]),)


def test_scale_left_out_is_checked_by_the_other_scales_only() -> None:
    runs = _runs()
    [(_, fit, check)] = [s for s in calibrate.leave_out_splits(runs, "scale") if s[0] == "medium"]
    assert {r["scale"] for r in fit} == {"small"} and {r["scale"] for r in check} == {"medium"}


def test_leave_out_by_an_unknown_group_is_refused() -> None:
    with pytest.raises(ValueError, match="world, scale, profile, seed"):
        calibrate.leave_out_splits(_runs(), "exchange")


def test_signed_fit_holds_a_wrong_signed_weight_at_zero() -> None:
    # truth: right more often when the share is SMALLER (a sign the model must not learn)
    rng = np.random.default_rng(3)
    n = 4000
    x = calibrate.lead_design(
        rng.integers(1, 6, n), rng.uniform(0.01, 1, n), np.zeros(n), rng.integers(0, 2, n),
        rng.uniform(0, 10, n), 2.0,
    )  # fmt: skip
    share_col = calibrate.LEAD_FEATURES.index("log_share")
    hold_col = calibrate.LEAD_FEATURES.index("log1p_hold_ratio")
    logit = 3.0 - 1.0 * x[:, share_col] - 1.5 * x[:, hold_col]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    free = calibrate._weighted_fit(x, y, np.ones(n))
    assert free[share_col] < 0  # unconstrained, it would learn the wrong sign
    kept = calibrate.signed_fit(x, y, np.ones(n))
    assert kept[share_col] == 0.0
    assert kept[hold_col] < 0
    for name, sign in calibrate.LEAD_SIGNS.items():
        assert sign * kept[calibrate.LEAD_FEATURES.index(name)] >= 0


def test_fit_leaves_capped_rows_out_and_weights_groups_equally() -> None:
    run = _run("hard", "small", 1)
    # (one hop: the case's typical hold, over multi-hop leads, stays the same)
    capped = {**run["leads"][1], "hops": 1, "caution": "send_all_hop", "correct": False}
    X_rows = len(calibrate._leads(run))
    run2 = {**run, "leads": [*run["leads"], capped]}
    # the capped row changes nothing: the fit never sees it
    w1 = calibrate.fit_leads([run], "v2", 1.0)
    w2 = calibrate.fit_leads([run2], "v2", 1.0)
    assert np.allclose(w1, w2)
    assert X_rows == 60
    g = calibrate._group_weights(["a"] * 30 + ["b"] * 10)
    assert g[:30].sum() == pytest.approx(g[30:].sum()) and g.mean() == pytest.approx(1.0)


def test_lead_scores_rescore_saved_outcomes_like_score_case() -> None:
    run = {
        "score": {"eligible": 4},
        "leads": [
            {"deposit_address": "d1", "exchange": "a", "amount_sat": 5, "confidence": 0.9,
             "through_coinjoin": False, "correct": True},
            {"deposit_address": "d1", "exchange": "b", "amount_sat": 9, "confidence": 0.9,
             "through_coinjoin": False, "correct": False},
            {"deposit_address": "d2", "exchange": "a", "amount_sat": 5, "confidence": 0.2,
             "through_coinjoin": True, "correct": True},
            {"deposit_address": "d3", "exchange": "c", "amount_sat": 5, "confidence": 0.9,
             "through_coinjoin": False, "correct": True},
        ],
    }  # fmt: skip
    # saved confidence: d1 decided by b (larger amount, wrong), d3 right; d2 below the cut
    assert calibrate.lead_scores(run, np.array([0.9, 0.9, 0.9])) == (0.5, 0.25, 2, 1)
    # b below 0.5: d1 decided by a, right
    assert calibrate.lead_scores(run, np.array([0.9, 0.4, 0.9])) == (1.0, 0.5, 2, 2)
    assert calibrate.lead_scores(run, np.array([0.1, 0.1, 0.1])) == (1.0, 0.0, 0, 0)


def test_wilson_interval_and_ece() -> None:
    lo, hi = calibrate.wilson(0.0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = calibrate.wilson(0.9, 100)
    assert lo < 0.9 < hi and hi - lo == pytest.approx(0.12, abs=0.01)
    p = np.array([0.9] * 10 + [0.3] * 10)
    y = np.array([1.0] * 9 + [0.0] + [1.0] * 6 + [0.0] * 4)
    assert calibrate.ece(p, y) == pytest.approx(0.5 * 0.0 + 0.5 * 0.3)


def test_leave_out_report_and_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibrate, "FIGURE", tmp_path / "r.png")
    monkeypatch.setattr(calibrate, "GROUP_FIGURE", tmp_path / "g.png")
    monkeypatch.setattr(calibrate, "_reference_hold", lambda: 1.0)
    runs = _runs()
    text, by_world = calibrate.leave_out_report(runs, ["world", "scale"])
    assert "### Leave-one-world-out" in text and "### Leave-one-scale-out" in text
    assert "| medium |" in text and "| hard |" in text
    assert "| precision v1 | precision left out | precision refit |" in text
    calibrate.draw(runs, by_world, [(0.95, True)])
    assert (tmp_path / "r.png").stat().st_size > 0 and (tmp_path / "g.png").stat().st_size > 0


def test_hold_table_reads_the_hold_relative_to_the_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibrate, "_reference_hold", lambda: 1.0)
    runs = _runs()
    text = calibrate.hold_table(runs, "hard")
    lines = text.splitlines()
    assert lines[0].startswith("| hold ÷ case's typical hold (hard) | small | medium |")
    # the synthetic worlds' wrong rows hold ~20 days, ~14x the typical (~1.5 days), their
    # right ones ~1x: the first bin is all right, the 8-16 bin all wrong, the rest empty
    assert lines[2].startswith("| 0–2 | 1.000 (")
    assert lines[5].startswith("| 8–16 | 0.000 (")
    assert [line for line in lines[3:] if "(" in line] == [lines[5]]


def _sure_rows(profile: str, right: int, wrong: int) -> dict[str, Any]:
    """A run whose rows are all one-hop, whole-share leads (the surest kind)."""
    lead = {"hops": 1, "share": 1.0, "custody": 0, "via_entity": False, "hold_days": 0.0,
            "through_coinjoin": False, "caution": ""}  # fmt: skip
    rows = [{**lead, "correct": True}] * right + [{**lead, "correct": False}] * wrong
    return {"profile": profile, "scale": "small", "seed": 1, "leads": rows}


def _sure_weights() -> np.ndarray:
    """Weights that put every row at sigmoid(10) > 0.9999, whatever its features."""
    w = np.zeros(len(calibrate.LEAD_FEATURES))
    w[0] = 10.0
    return w


def test_ceiling_is_the_worst_groups_share_right_among_the_surest_rows() -> None:
    # the model puts every row of both groups at the top; one group is right 99.5% of the time,
    # the other 99.9%: the ceiling is the worse one, rounded down
    runs = [_sure_rows("hard", 1990, 10), _sure_rows("easy", 1998, 2)]
    sure = _sure_weights()
    assert calibrate.fit_ceiling(runs, sure) == pytest.approx(0.995)
    # a group with too few surest rows does not speak for the ceiling
    few = [_sure_rows("hard", calibrate.MIN_CEILING_ROWS - 2, 1), _sure_rows("easy", 1998, 2)]
    assert calibrate.fit_ceiling(few, sure) == pytest.approx(0.999)
    # no group with enough sure rows: no ceiling
    assert calibrate.fit_ceiling([_sure_rows("hard", 10, 0)], sure) == 1.0
    # the shipped confidence never says more than the ceiling
    p = calibrate.predict_leads(runs[0], sure, "v2", 1.0, 0.995)
    assert p.max() == pytest.approx(0.995)


def test_cashout_fit_never_makes_more_hops_surer() -> None:
    # truth: cash-outs next to the service wrong more often (one profile's wrong rows did this)
    rng = np.random.default_rng(5)
    n = 4000
    x = calibrate.cashout_design(rng.integers(1, 5, n), rng.uniform(0.1, 1, n))
    hops_col = calibrate.CASHOUT_FEATURES.index("hops_minus_1")
    logit = 2.0 + 1.5 * x[:, hops_col]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    assert calibrate._weighted_fit(x, y, np.ones(n))[hops_col] > 0  # free, the wrong sign
    kept = calibrate.signed_fit(
        x, y, np.ones(n), calibrate.CASHOUT_SIGNS, calibrate.CASHOUT_FEATURES
    )
    assert kept[hops_col] == 0.0


def test_style_leads_get_a_ceiling_of_their_own() -> None:
    """Rows whose name rests on a style match (`style_name`) are read apart: the others'
    ceiling from the others, the style ceiling from them (v2); base reads one for all."""
    tagged = _sure_rows("realistic", 1999, 1)
    styled = _sure_rows("realistic_untagged", 930, 70)
    styled["leads"] = [{**o, "style_name": True} for o in styled["leads"]]
    plain = _sure_rows("realistic_untagged", 1998, 2)
    styled["leads"] += plain["leads"]
    runs = [tagged, styled]
    sure = _sure_weights()
    assert calibrate.fit_ceilings(runs, sure, 1.0, "v2") == pytest.approx((0.999, 0.93))
    top, style_top = calibrate.fit_ceilings(runs, sure, 1.0, "base")
    assert top == style_top == pytest.approx(2928 / 3000, abs=1e-4)
    p = calibrate.predict_leads(styled, sure, "v2", 1.0, 0.999, 0.93)
    assert p[:1000].max() == pytest.approx(0.93) and p[1000:].min() == pytest.approx(0.999)
    # base: style_name reads as 0 and no style ceiling applies
    assert calibrate.lead_matrix(styled, "base")[:, calibrate._STYLE].max() == 0.0
    assert calibrate.predict_leads(styled, sure, "base", 1.0, 0.999, 0.93).min() == 0.999
