"""The calibrated confidence's features (chainsleuth/cases/confidence.py) against the shipped
calibration.yaml: the same features, and a confidence that moves the way it must."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pyarrow as pa
import pytest
import yaml

from chainsleuth.cases import confidence
from chainsleuth.cases.confidence import (
    CASHOUT_FEATURES,
    LEAD_FEATURES,
    LEAD_SIGNS,
    MAX_HOLD_RATIO,
    MIN_TYPICAL_HOLD_DAYS,
    MIN_TYPICAL_ROWS,
    calibration,
    lead_design,
    parse_calibration,
    typical_hold_days,
    via_entity,
)
from chainsleuth.cases.rows import (
    COINJOIN_CAP,
    FORWARD_CAP,
    LONG_HOLD_CAP,
    case_typical_hold,
    recalibrate_leads,
)


def _shipped_yaml() -> dict[str, object]:
    text = resources.files("chainsleuth.cases").joinpath("calibration.yaml").read_text()
    raw: dict[str, object] = yaml.safe_load(text)
    return raw


def test_shipped_yaml_names_the_features_confidence_py_computes() -> None:
    raw = _shipped_yaml()
    lead, cash = raw["lead"], raw["cashout"]
    assert isinstance(lead, dict) and isinstance(cash, dict)
    assert tuple(lead["features"]) == LEAD_FEATURES
    assert tuple(cash["features"]) == CASHOUT_FEATURES
    assert len(lead["weights"]) == len(LEAD_FEATURES)
    assert len(cash["weights"]) == len(CASHOUT_FEATURES)
    one = np.ones(4)
    x = lead_design(one, one, one, one, one, 1.0)
    assert x.shape == (4, len(LEAD_FEATURES))
    assert float(lead["reference_hold_days"]) > 0  # type: ignore[arg-type]


def test_a_yaml_of_other_features_is_refused_in_one_line() -> None:
    raw = _shipped_yaml()
    lead = dict(raw["lead"])  # type: ignore[call-overload]
    lead["features"] = [*LEAD_FEATURES[:-1], "log1p_hold_days"]
    with pytest.raises(ValueError, match=r"^cal\.yaml: lead\.features .*refit") as err:
        parse_calibration(yaml.safe_dump({**raw, "lead": lead}), "cal.yaml")
    assert "\n" not in str(err.value)
    short = dict(raw["cashout"])  # type: ignore[call-overload]
    short["weights"] = short["weights"][:2]
    with pytest.raises(ValueError, match="cashout.features"):
        parse_calibration(yaml.safe_dump({**raw, "cashout": short}), "cal.yaml")


def test_shipped_weights_keep_their_signs() -> None:
    c = calibration()
    for name, sign in LEAD_SIGNS.items():
        assert sign * c.lead_weights[LEAD_FEATURES.index(name)] >= 0, name


def _lead(**kw: float) -> float:
    """The shipped confidence of one lead (haircut), defaults a plain 3-hop tagged lead."""
    f = {"hops": 3.0, "share": 1.0, "custody": 0.0, "via": 0.0, "hold": 2.0, "typical": 2.0}
    f.update(kw)
    one = np.ones(1)
    p = calibration().lead(
        "haircut",
        one * f["hops"],
        one * f["share"],
        one * f["custody"],
        one * f["via"],
        one * f["hold"],
        f["typical"],
    )
    return float(p[0])


def test_confidence_is_monotone_where_it_must_be() -> None:
    hops = [_lead(hops=h) for h in range(1, 15)]
    assert all(a >= b for a, b in zip(hops, hops[1:], strict=False))
    # a longer path and a small share keep these below the ceiling, whatever the fit
    far = {"hops": 14.0, "share": 1e-5}
    holds = [_lead(hold=h, **far) for h in (0.0, 1.0, 4.0, 16.0, 64.0, 200.0)]
    assert all(a >= b for a, b in zip(holds, holds[1:], strict=False))
    assert holds[0] > holds[-1]  # the hold counts
    shares = [_lead(share=s) for s in (1e-5, 0.01, 0.2, 0.6, 1.0)]
    assert all(a <= b for a, b in zip(shares, shares[1:], strict=False))
    assert _lead(via=1.0) <= _lead(via=0.0)
    # the hold counts relative to the case's: 15 days is ordinary where coins sit ~6 days and
    # a sign of a change of hands where they sit ~0.7 days
    assert _lead(hold=15.0, typical=6.0, **far) > _lead(hold=15.0, typical=0.7, **far)
    assert _lead(hold=30.0, typical=10.0) == pytest.approx(_lead(hold=3.0, typical=1.0))


def test_hold_ratio_stops_at_its_cap() -> None:
    x = lead_design(np.ones(3), np.ones(3), np.zeros(3), np.zeros(3),
                    np.array([10.0, 10 * MAX_HOLD_RATIO, 100 * MAX_HOLD_RATIO]), 10.0)  # fmt: skip
    h = LEAD_FEATURES.index("log1p_hold_ratio")
    assert x[0, h] == pytest.approx(np.log1p(1.0))
    assert x[1, h] == x[2, h] == pytest.approx(np.log1p(MAX_HOLD_RATIO))


def test_typical_hold_is_the_median_of_multi_hop_leads() -> None:
    n = MIN_TYPICAL_ROWS
    holds = np.concatenate([np.zeros(3 * n), np.arange(1, n + 2, dtype=np.float64)])
    hops = np.concatenate([np.ones(3 * n, np.int64), np.full(n + 1, 4)])
    # the direct payments (one hop, held 0) do not pull it to 0
    assert typical_hold_days(holds, hops, 99.0) == pytest.approx(np.median(holds[3 * n :]))
    # too few multi-hop leads: the fallback
    assert typical_hold_days(holds[: 3 * n + n - 1], hops[: 3 * n + n - 1], 7.5) == 7.5
    # never below the floor
    assert typical_hold_days(np.zeros(n), np.full(n, 2), 5.0) == MIN_TYPICAL_HOLD_DAYS
    assert typical_hold_days(np.zeros(0), np.zeros(0), 0.0) == MIN_TYPICAL_HOLD_DAYS


def test_every_kind_but_a_tag_counts_as_via_entity() -> None:
    assert not via_entity("tag") and not via_entity("")
    for kind in ("service_entity", "wallet_style", "change_spend", "some_new_lending_kind"):
        assert via_entity(kind), kind


def test_lead_without_typical_uses_the_reference_hold() -> None:
    c = calibration()
    one = np.ones(1)
    args = (3 * one, one, 0 * one, 0 * one, 4 * one)
    assert c.lead("haircut", *args)[0] == c.lead("haircut", *args, c.reference_hold_days)[0]
    assert confidence.MIN_SHARE > 0


def _leads_table(n: int, hold: float, hops: int = 2, share: float = 1.0) -> pa.Table:
    """A leads table of `n` tagged exchange rows of `hops` hops and `share`, held `hold` days,
    then one of each capped or zeroed kind."""
    kinds = [
        # (category, through_coinjoin, caution, attributed_via)
        ("exchange", "false", "", "tag"),
        ("exchange", "true", "", "tag"),
        ("exchange", "false", "long_hold", "service_entity"),
        ("exchange", "false", "send_all_hop", "wallet_style"),
        ("coinjoin", "false", "", ""),
        ("unidentified_service", "false", "", ""),
    ]
    rows = [kinds[0]] * n + kinds[1:]
    m = len(rows)
    return pa.table(
        {
            "source_category": [r[0] for r in rows],
            "through_coinjoin": [r[1] for r in rows],
            "caution": [r[2] for r in rows],
            "attributed_via": [r[3] for r in rows],
            "hops": pa.array([hops] * m, pa.int64()),
            "share": pa.array([share] * m),
            "custody_path": [""] * (m - 1) + ["a;b"],
            "hold_days": pa.array([hold] * m),
            "policy": ["haircut"] * m,
            "confidence": pa.array([0.5] * m),
        }
    )


def test_recalibrate_leads_recomputes_confidence_at_the_case_typical_hold() -> None:
    n = MIN_TYPICAL_ROWS + 5
    # a long path and a small share keep the row below the ceiling, whatever the fit
    t = _leads_table(n, hold=200.0, hops=40, share=1e-4)
    assert case_typical_hold(t) == pytest.approx(200.0)
    out = recalibrate_leads(t, 1.0)
    c = out.column("confidence").to_numpy()
    one = np.ones(1)
    plain = float(
        calibration().lead("haircut", 40 * one, 1e-4 * one, 0 * one, 0 * one, 200 * one, 1.0)[0]
    )
    assert c[0] == pytest.approx(round(plain, 4))
    assert c[n] <= COINJOIN_CAP  # beyond a CoinJoin
    assert c[n + 1] <= LONG_HOLD_CAP and c[n + 2] <= FORWARD_CAP
    assert c[n + 4] == 0.0  # not a subpoena target
    # at the case's own typical hold, the same hold reads as ordinary: surer (200 days, the
    # ratio at its cap at a typical 1 day: a shorter hold can sit at the ceiling either way,
    # as 20 days does where the fit weighs the hold less, fitted with the *_untagged worlds)
    assert recalibrate_leads(t, 200.0).column("confidence").to_numpy()[0] > c[0]
    assert out.column_names == t.column_names


def test_a_lead_never_says_more_than_the_ceiling() -> None:
    raw = _shipped_yaml()
    lead = {**dict(raw["lead"]), "ceiling": 0.99}  # type: ignore[call-overload]
    c = parse_calibration(yaml.safe_dump({**raw, "lead": lead}), "cal.yaml")
    assert c.lead_ceiling == 0.99
    one = np.ones(3)
    # one hop, whole share, no hold: the model's surest lead
    p = c.lead("haircut", one, one, 0 * one, 0 * one, 0 * one, 1.0)
    assert np.all(p <= 0.99) and np.all(p == pytest.approx(0.99))
    # a yaml without a ceiling (fitted before it existed) has none
    old = dict(raw["lead"])  # type: ignore[call-overload]
    old.pop("ceiling", None)
    assert parse_calibration(yaml.safe_dump({**raw, "lead": old}), "cal.yaml").lead_ceiling == 1.0
