"""A change link between wallets that sweep differently (issue 11, two exchanges untagged at
once; docs/accuracy-log.md "Two exchanges untagged at once"): an untagged exchange that sweeps
its deposits into reused hot addresses took a tagged look-alike's name, which never reuses
one, through a change return from a fragment that a style match had named.
`cases.investigate._lend_by_change` drops a change link where the label's sweeps (one is
enough) pay the other kind of address than the named wallet's own clusters (not those named
by a style match) show. The chain is test_change_position's; the sweep counts are set per
cluster by hand."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from chainsleuth.cases import investigate as inv
from chainsleuth.trace import services
from tests.trace.test_change_position import LABEL, _world
from tests.trace.test_change_spend import ARCADIA
from tests.trace.test_sweep_address_style import _sweeping_wallets


def _reads(fresh: dict[int, int], reused: dict[int, int]) -> Any:
    """A `StyleReads` stand-in: every habit as two sweeping wallets read by hand
    (test_sweep_address_style), the sweep counts summed per group from `fresh` and `reused`
    per cluster."""
    base = _sweeping_wallets()

    def styles(group: services.ClusterGroups) -> services.WalletStyles:
        f, r = np.zeros(2, np.int64), np.zeros(2, np.int64)
        for c, g in zip(group.clusters.tolist(), group.groups.tolist(), strict=True):
            f[g] += fresh.get(c, 0)
            r[g] += reused.get(c, 0)
        return replace(base, sweep_fresh=f, sweep_reused=r)

    return SimpleNamespace(months=6, covers=lambda group, months: True, styles=styles)


def _lend(reads: Any, style_rooted: set[int]) -> dict[int, tuple[str | None, str]]:
    """Arcadia (cluster 1) pays its batches' change last; the last batch's change, last too,
    is spent by cluster 80 (a change spend: 80 takes arcadia's name unless a check drops it)."""
    c, cluster_of = _world(3, withdrawal_last=True)
    attribution = {1: ARCADIA, 80: LABEL, 85: LABEL}
    inv._lend_by_change(c.store(), c.shapes(cluster_of), attribution, np.zeros(300, np.bool_),
                        style_reads=reads, style_rooted=style_rooted)  # fmt: skip
    return attribution


def test_no_change_link_between_fresh_and_reused_sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inv, "CHANGE_LINK_SWEEP_ADDRESS", True)
    # arcadia's own cluster sweeps into fresh addresses (4), the label's into reused ones (3)
    apart = _reads({1: 4}, {80: 3})
    assert _lend(apart, set())[80] == LABEL
    # switched off: the link names the label
    monkeypatch.setattr(inv, "CHANGE_LINK_SWEEP_ADDRESS", False)
    assert _lend(apart, set())[80] == ARCADIA


def test_the_link_stands_where_the_sweeps_agree_or_the_name_rests_on_a_style(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inv, "CHANGE_LINK_SWEEP_ADDRESS", True)
    assert _lend(_reads({1: 4, 80: 1}, {}), set())[80] == ARCADIA  # both fresh
    assert _lend(_reads({1: 4}, {}), set())[80] == ARCADIA  # the label shows no sweep
    assert _lend(_reads({1: 1}, {80: 3}), set())[80] == ARCADIA  # arcadia's read: too few
    # arcadia's cluster named by a style match: its sweeps are not the wallet's own read
    assert _lend(_reads({1: 4}, {80: 3}), {1})[80] == ARCADIA


def test_misfits_per_link_read_the_named_side_either_end() -> None:
    reads = _reads({1: 4}, {80: 3})
    named, by_name = np.array([1]), np.array([0])
    candidates, by_label = np.array([80]), np.array([1])
    fits = (reads, named, by_name, candidates, by_label, set())
    spend = (np.array([1]), np.array([80]), np.array([5]), np.array([6]))  # arcadia pays
    back = (np.array([80]), np.array([1]), np.array([5]), np.array([6]))  # the label pays
    assert inv._sweep_address_misfits(*fits, spend, 0).tolist() == [True]
    assert inv._sweep_address_misfits(*fits, back, 1).tolist() == [True]
    empty = (np.zeros(0, np.int64),) * 4
    assert inv._sweep_address_misfits(*fits, empty, 0).tolist() == []


def test_a_payout_cospend_link_is_dropped_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every kind of link says the label is the named wallet (test_fragment_links' payout
    co-spend: arcadia spends the label's payout output with a coin of its own)."""
    from tests.trace.test_fragment_links import LABEL as FRAGMENT
    from tests.trace.test_fragment_links import _payout

    def lend(reads: Any) -> dict[int, tuple[str | None, str]]:
        c, cluster_of = _payout(spend_inputs=2, spend_outputs=2)
        attribution = {1: ARCADIA, 20: FRAGMENT, 25: FRAGMENT}
        inv._lend_by_change(c.store(), c.shapes(cluster_of), attribution,
                            np.zeros(200, np.bool_), style_reads=reads, style_rooted=set())  # fmt: skip
        return attribution

    monkeypatch.setattr(inv, "CHANGE_LINK_SWEEP_ADDRESS", True)
    assert lend(_reads({1: 4}, {20: 3}))[20] == FRAGMENT
    assert lend(_reads({1: 4, 20: 1}, {}))[20] == ARCADIA
    monkeypatch.setattr(inv, "CHANGE_LINK_SWEEP_ADDRESS", False)
    assert lend(_reads({1: 4}, {20: 3}))[20] == ARCADIA
