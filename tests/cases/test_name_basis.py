"""What a lead's name rests on (leads.csv `name_basis`, the calibration's `style_name`): a
name from a wallet-style match is closed-world ("the one tagged wallet this fragment fits")
and so is a name a change link carries from a fragment named so alone; one link from a
cluster named otherwise roots it in the chain. Hand-built chains of tests/trace."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import yaml

from chainsleuth.cases import rows as case_rows
from chainsleuth.cases.confidence import LEAD_FEATURES, calibration, parse_calibration
from chainsleuth.cases.investigate import _lend_by_change
from chainsleuth.cases.rows import LEAD_COLUMNS, NAME_BASES, recalibrate_leads
from tests.trace.test_change_spend import ARCADIA, UNIDENTIFIED, Tx, _batch, _world

LABEL = ("cluster:20", UNIDENTIFIED)


def _lend(style_rooted: set[int], extra_tag: bool = False) -> tuple[set[int], list[int]]:
    """Arcadia's cluster 1 pays a batch whose change cluster 20 (label with 25) spends; with
    `extra_tag`, arcadia's cluster 2 pays a batch whose change cluster 25 spends too."""
    c, cluster_of, ids = _world()
    attribution = {1: ARCADIA, 20: LABEL, 25: LABEL, 30: ("cluster:30", UNIDENTIFIED)}
    if extra_tag:
        out = c.add(_batch(ids["coin2"], 50, 70_000, 150))
        c.add(Tx([out[-1]], [(26, 60_000), (27, 9_000)]))
        cluster_of[50] = 25  # the change address is the same service's
        attribution[2] = ARCADIA
    rooted = set(style_rooted)
    named = _lend_by_change(
        c.store(), c.shapes(cluster_of), attribution, np.zeros(200, np.bool_),
        style_rooted=rooted,
    )  # fmt: skip
    return rooted, named.tolist()


def test_a_name_carried_from_a_style_named_wallet_rests_on_the_style() -> None:
    rooted, named = _lend({1})
    assert named == [20, 25]
    assert rooted == {1, 20, 25}  # every cluster of the label the link named


def test_a_name_carried_from_a_tag_rests_on_the_chain() -> None:
    rooted, named = _lend(set())
    assert named == [20, 25]
    assert rooted == set()


def test_one_link_from_a_tag_roots_the_name() -> None:
    """Two links into the label, one from the style-named cluster 1, one from the tagged
    cluster 2 (both arcadia): the name does not rest on the style match alone."""
    rooted, named = _lend({1}, extra_tag=True)
    assert named == [20, 25]
    assert rooted == {1}
    # both from style-named clusters: it rests on them
    rooted, named = _lend({1, 2}, extra_tag=True)
    assert rooted == {1, 2, 20, 25}


def test_the_origin_goes_on_through_the_next_round() -> None:
    """Cluster 20, named in the first round from a style-named cluster, lends to 60 in the
    second: 60's name rests on the style match too; from a tag, on neither."""
    c, cluster_of, ids = _world()
    out = c.add(_batch(ids["spend"], 60, 10_000, 150))
    c.add(Tx([out[-1]], [(61, 5_000), (62, 4_000)]))
    cluster_of[21] = 20
    shapes = c.shapes(cluster_of)
    for start, want in (({1}, {1, 20, 60}), (set(), set())):
        attribution = {1: ARCADIA, 20: ("cluster:20", UNIDENTIFIED),
                       60: ("cluster:60", UNIDENTIFIED)}  # fmt: skip
        rooted = set(start)
        named = _lend_by_change(
            c.store(), shapes, attribution, np.zeros(200, np.bool_), style_rooted=rooted
        )
        assert named.tolist() == [20, 60]
        assert rooted == want


def test_name_basis_is_a_new_last_column() -> None:
    assert LEAD_COLUMNS[-1] == "name_basis"
    assert NAME_BASES == ("tag", "chain", "style")
    assert LEAD_FEATURES[-1] == "style_name"


def _with_style_weight(weight: float) -> object:
    from importlib import resources

    raw = yaml.safe_load(
        resources.files("chainsleuth.cases").joinpath("calibration.yaml").read_text()
    )
    raw["lead"]["weights"][LEAD_FEATURES.index("style_name")] = weight
    raw["lead"]["ceiling"] = 1.0
    return parse_calibration(yaml.safe_dump(raw), "cal.yaml")


def test_a_style_name_lowers_confidence_by_its_weight(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model reads `style_name`; recalibrate_leads reads it from the name_basis column
    (a table without the column: no style name)."""
    cal = _with_style_weight(-3.0)
    one = np.ones(2)
    args = (2 * one, one, 0 * one, one, 0 * one, 1.0)
    plain = cal.lead("haircut", *args)  # type: ignore[attr-defined]
    styled = cal.lead("haircut", *args, np.array([0.0, 1.0]))  # type: ignore[attr-defined]
    assert styled[0] == pytest.approx(plain[0])
    assert styled[1] < plain[1] - 0.02  # e^-3 of the odds: 0.998 -> 0.964
    monkeypatch.setattr(case_rows, "calibration", lambda: cal)
    t = pa.table(
        {
            "source_category": ["exchange"] * 3,
            "through_coinjoin": ["false"] * 3,
            "caution": [""] * 3,
            "attributed_via": ["change_spend", "change_spend", "tag"],
            "name_basis": ["style", "chain", "tag"],
            "hops": pa.array([2] * 3, pa.int64()),
            "share": pa.array([1.0] * 3),
            "custody_path": [""] * 3,
            "hold_days": pa.array([0.0] * 3),
            "policy": ["haircut"] * 3,
            "confidence": pa.array([0.5] * 3),
        }
    )
    c = recalibrate_leads(t, 1.0).column("confidence").to_numpy()
    assert c[0] == pytest.approx(round(float(styled[1]), 4))
    assert c[1] == pytest.approx(round(float(plain[1]), 4))
    assert c[0] < c[1] <= c[2]
    older = recalibrate_leads(t.drop_columns(["name_basis"]), 1.0).column("confidence")
    assert older.to_numpy()[0] == pytest.approx(c[1])


def test_the_shipped_calibration_reads_style_name() -> None:
    assert calibration().lead_features == LEAD_FEATURES


def test_a_style_lead_never_says_more_than_the_style_ceiling() -> None:
    from importlib import resources

    raw = yaml.safe_load(
        resources.files("chainsleuth.cases").joinpath("calibration.yaml").read_text()
    )
    raw["lead"]["ceiling"], raw["lead"]["style_ceiling"] = 0.99, 0.94
    c = parse_calibration(yaml.safe_dump(raw), "cal.yaml")
    one = np.ones(2)
    p = c.lead("haircut", one, one, 0 * one, 0 * one, 0 * one, 1.0, np.array([0.0, 1.0]))
    assert p[0] == pytest.approx(0.99) and p[1] == pytest.approx(0.94)
    # without style_name the style ceiling reads nothing; a yaml without one has none
    assert c.lead("haircut", one, one, 0 * one, 0 * one, 0 * one, 1.0)[1] == pytest.approx(0.99)
    del raw["lead"]["style_ceiling"]
    assert parse_calibration(yaml.safe_dump(raw), "cal.yaml").style_ceiling == 1.0


def test_a_subpoena_row_says_the_weakest_basis_of_its_leads() -> None:
    """subpoenas.csv `name_basis`: a row any style lead makes rests on style; a table from
    before name_basis reads as tag."""
    from chainsleuth.cases.rows import SUBPOENA_COLUMNS, subpoena_table

    assert SUBPOENA_COLUMNS[-1] == "name_basis"
    n = 5
    t = pa.table(
        {
            "source_entity": ["arcadia"] * 3 + ["borealis"] * 2,
            "source_category": ["exchange"] * n,
            "funding_txid": ["t1", "t1", "t2", "t3", "t4"],
            "source_address": ["s1", "s1", "s2", "s3", "s4"],
            "deposit_address": ["d1", "d2", "d3", "d4", "d5"],
            "block_height": pa.array([1] * n, pa.int64()),
            "block_time": ["2020-01-01T00:00:00Z"] * n,
            "amount_sat": pa.array([10, 20, 30, 40, 50], pa.int64()),
            "amount_usd": pa.array([1.0] * n),
            "confidence": pa.array([0.9, 0.6, 0.9, 0.9, 0.9]),
            "name_basis": ["tag", "style", "chain", "tag", "style"],
        }
    )
    got = {r["funding_txid"]: r["name_basis"] for r in subpoena_table(t).to_pylist()}
    assert got == {"t1": "style", "t2": "chain", "t3": "tag", "t4": "style"}
    older = subpoena_table(t.drop_columns(["name_basis"])).column("name_basis").to_pylist()
    assert older == ["tag"] * 4
