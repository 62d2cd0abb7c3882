"""A change link through an output its batch did not put where the wallet puts its change
(issue 11, one exchange left untagged; docs/accuracy-log.md "Change links through a payment
into an untagged exchange's deposit"): a named wallet whose batches put their change last pays
a big withdrawal, the batch's largest output but not its last, into another (untagged)
exchange's deposit, which that exchange forwards in a one-input, two-output tx, the shape of a
wallet spending its own change. `cases.investigate._lend_by_change` reads the change position
of both sides (`_change_position_misfits`) and makes no link. Small chains built by hand."""

from __future__ import annotations

import numpy as np
import pytest

from chainsleuth.cases import investigate as inv
from chainsleuth.trace import services
from tests.trace.test_change_spend import ARCADIA, UNIDENTIFIED, Chain, Tx, _batch

LABEL = ("cluster:80", UNIDENTIFIED)


def _world(change_last_batches: int, withdrawal_last: bool) -> tuple[Chain, np.ndarray]:
    """Arcadia (cluster 1) pays `change_last_batches` batches, each spending the last one's
    change (last of its 7 outputs, addresses 10, 11, ... in cluster 1), then a batch of 6
    payees, a 90,000 sat withdrawal to address 80 (cluster 80: an untagged exchange's deposit)
    and its change, 9,000 sat to address 9 (cluster 1), last unless `withdrawal_last`. Cluster
    80 forwards the deposit: one input, a buyer and its own rest."""
    cluster_of = np.arange(300)
    c = Chain()
    coin = c.add(Tx([], [(1, 1_000_000)]))[0]
    for k in range(change_last_batches):
        cluster_of[10 + k] = 1
        coin = c.add(_batch(coin, 10 + k, 900_000 - 10_000 * k, 100 + 6 * k))[-1]
    cluster_of[9] = 1
    payees = [(200 + k, 1_000) for k in range(6)]
    change, withdrawal = (9, 9_000), (80, 90_000)
    outputs = payees + ([change, withdrawal] if withdrawal_last else [withdrawal, change])
    out = c.add(Tx([coin], outputs))
    c.add(Tx([out[7 if withdrawal_last else 6]], [(81, 60_000), (82, 29_000)]))
    return c, cluster_of


def _lend(c: Chain, cluster_of: np.ndarray) -> dict[int, tuple[str | None, str]]:
    store, shapes = c.store(), c.shapes(cluster_of)
    attribution = {1: ARCADIA, 80: LABEL, 85: LABEL}
    reads = services.StyleReads(
        store, shapes, cluster_of, np.array(sorted(attribution)), np.zeros(len(c.txs), np.uint8)
    )
    inv._lend_by_change(store, shapes, attribution, np.zeros(300, np.bool_), style_reads=reads)
    return attribution


def test_no_change_link_through_an_output_a_change_last_wallet_did_not_put_last() -> None:
    c, cluster_of = _world(3, withdrawal_last=False)
    assert _lend(c, cluster_of)[80] == LABEL


def test_the_same_output_last_links(monkeypatch: pytest.MonkeyPatch) -> None:
    """The withdrawal last (where the wallet puts its change): the link stands, as it does
    with the check switched off, and where the wallet's change position is not known (two
    batches with change last, `STYLE_MIN_LAST` = 3)."""
    c, cluster_of = _world(3, withdrawal_last=True)
    assert _lend(c, cluster_of)[80] == ARCADIA
    c, cluster_of = _world(2, withdrawal_last=False)
    assert _lend(c, cluster_of)[80] == ARCADIA
    monkeypatch.setattr(inv, "CHANGE_LINK_POSITION", False)
    c, cluster_of = _world(3, withdrawal_last=False)
    assert _lend(c, cluster_of)[80] == ARCADIA


def test_misfits_read_either_side() -> None:
    """`_change_position_misfits` per link: the payer's or the spender's group puts its change
    last, and the linked output is not the batch's last."""
    c, cluster_of = _world(3, withdrawal_last=False)
    shapes = c.shapes(cluster_of)
    batch, spend = len(c.txs) - 2, len(c.txs) - 1
    links = (np.array([1]), np.array([80]), np.array([batch]), np.array([spend]))
    group = services.ClusterGroups.of(np.array([1, 80]), np.array([0, 1]))
    for last, want in (([True, False], True), ([False, True], True), ([False, False], False)):
        got = inv._change_position_misfits(shapes, links, group, np.array(last))
        assert got.tolist() == [want]
