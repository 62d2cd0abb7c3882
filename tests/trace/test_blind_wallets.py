"""Blind tagged wallets (issue 11, docs/accuracy-log.md "Blind tagged wallets"): a tag that
shows nothing of its exchange's batches gets the wallet that paid it its own coins
(`trace.services.funder_links`, `cases.investigate._lend_to_funders`) and the hot type and
fingerprint of the small payouts and sweep spends of its coins (`trace.services.blind_styles`).
Small chains built by hand: every tx, input and output is spelled out."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from chainsleuth.cases.investigate import _lend_to_funders
from chainsleuth.trace import services
from chainsleuth.trace.services import STYLE_UNSEEN, WalletStyles
from tests.trace.hand_shapes import HandChain, hand_shapes, hand_vsizes

P2PKH, P2SH, P2WPKH = 2, 3, 4
UNIDENTIFIED = "unidentified_service"


@dataclass
class Tx:
    inputs: list[int]  # output ids it spends
    outputs: list[tuple[int, int]]  # (address id, script type)
    fp: int = 1
    coinjoin: bool = False


class Chain(HandChain):
    """The chain these tests spell out, with the arrays its tests read."""

    def build(self, cluster_of: np.ndarray) -> tuple[Any, services.TxShapes, np.ndarray]:
        """(a store-like object with the graph arrays, the tx shapes, the fingerprints)."""
        first_input = np.cumsum([0] + [len(t.inputs) for t in self.txs])[:-1]
        output_address = np.array([a for t in self.txs for a, _ in t.outputs], np.uint32)
        output_type = np.array([s for t in self.txs for _, s in t.outputs], np.uint8)
        spent_output = np.array([o for t in self.txs for o in t.inputs], np.int64)
        input_address = (
            output_address[spent_output] if spent_output.shape[0] else output_address[:0]
        )
        shapes = hand_shapes(
            [t.inputs for t in self.txs],
            [[a for a, _ in t.outputs] for t in self.txs],
            [[1000] * len(t.outputs) for t in self.txs],
            [t.coinjoin for t in self.txs],
            cluster_of,
        )
        graph = SimpleNamespace(
            tx_first_input=first_input,
            input_address=input_address,
            input_spent_output=spent_output,
            output_script_type=output_type,
            block_time=np.zeros(1, np.uint32),  # one block: the habits read pooled
        )
        fingerprint = np.array([t.fp for t in self.txs], np.uint8)
        return SimpleNamespace(graph=graph, tx_vsizes=hand_vsizes), shapes, fingerprint


def _payees(first: int, n: int, script: int = P2PKH) -> list[tuple[int, int]]:
    return [(first + k, script) for k in range(n)]


def test_funder_links_only_from_outputs_a_sweep_does_not_take() -> None:
    """A tag the payer's batch made change of (still unspent, or spent by the next batch) links
    the payer; a deposit that is swept links nobody; so does a CoinJoin or the tag itself."""
    cluster_of = np.arange(100)
    tag = 10
    c = Chain()
    coins = c.add(Tx([], [(1, P2SH), (2, P2SH), (3, P2SH), (4, P2SH), (5, P2SH), (50, P2PKH)]))
    # cluster 1's batch: its change is the tagged address, never spent
    c.add(Tx([coins[0]], [(tag, P2SH), *_payees(60, 6)]))
    # cluster 2 pays the tag, and the tag's coin is swept with others: a deposit
    deposit = c.add(Tx([coins[1]], [(tag, P2SH), (61, P2SH)]))
    # cluster 3 pays the tag, and a batch spends that coin: the payer's own change
    change = c.add(Tx([coins[2]], [(tag, P2SH), (62, P2SH)]))
    c.add(Tx([change[0]], _payees(70, 6)))
    # cluster 4 is a CoinJoin paying the tag, unspent
    c.add(Tx([coins[3]], [(tag, P2SH), *_payees(80, 4)], coinjoin=True))
    sweep_in = c.add(Tx([coins[4]], [(11, P2SH), (12, P2SH)]))
    c.add(Tx([deposit[0], *sweep_in], [(90, P2SH)]))
    _store, shapes, _fp = c.build(cluster_of)
    funder, paid, payout = services.funder_links(shapes, cluster_of, np.array([tag]))
    order = np.argsort(funder)
    assert funder[order].tolist() == [1, 3]
    assert paid.tolist() == [tag, tag]
    assert payout[order].tolist() == [True, False]  # cluster 1 paid a payout, cluster 3 did not
    assert services.funder_links(shapes, cluster_of, np.zeros(0, np.int64))[0].shape[0] == 0


def test_lend_to_funders_names_an_unnamed_payer_of_a_payout_when_one_name_is_implied() -> None:
    cluster_of = np.arange(100)
    c = Chain()
    coins = c.add(Tx([], [(1, P2SH), (3, P2SH), (4, P2SH), (5, P2SH), (6, P2SH)]))
    c.add(Tx([coins[0]], [(10, P2SH), *_payees(60, 3)]))  # cluster 1's payout: cobalt's change
    c.add(Tx([coins[1]], [(20, P2SH), *_payees(70, 3)]))  # cluster 3 pays cobalt's tag ...
    c.add(Tx([coins[2]], [(30, P2SH), *_payees(80, 3)]))  # ... its address 4 dunmore's
    c.add(Tx([coins[3]], [(20, P2SH), *_payees(90, 3)]))  # an unidentified service pays cobalt
    c.add(Tx([coins[4]], [(20, P2SH), (95, P2SH)]))  # cluster 6: no payout (a customer's pay)
    cluster_of[4] = 3
    _store, shapes, _fp = c.build(cluster_of)
    cobalt, dunmore = ("cobalt", "exchange"), ("dunmore", "exchange")
    tags: dict[int, tuple[str | None, str]] = {10: cobalt, 20: cobalt, 30: dunmore}
    attribution = {**tags, 5: ("cluster:5", UNIDENTIFIED), 7: ("cluster:5", UNIDENTIFIED)}
    named = _lend_to_funders(shapes, cluster_of, attribution, tags, np.zeros(100, np.bool_))
    assert named.tolist() == [1]
    assert attribution[1] == cobalt
    assert 3 not in attribution  # two names implied for cluster 3: it stays unnamed
    # an unidentified service paying a tag is as likely another exchange's withdrawal
    assert attribution[5] == attribution[7] == ("cluster:5", UNIDENTIFIED)
    assert 6 not in attribution


def test_lend_to_funders_does_not_name_a_customer_after_an_unswept_deposit() -> None:
    """The costliest error: a customer pays an exchange's tagged deposit address that is still
    unspent (not yet swept, or dust never swept). The customer is not the exchange, and naming
    it would make every deposit it funds a wrong lead. Only a payout of 3+ payees by a payer
    with no name yet lends the name."""
    cluster_of = np.arange(100)
    cluster_of[41] = 40  # the customer's wallet: two addresses one tx spent together
    cluster_of[46:48] = 45  # a second customer's wallet of three addresses
    cobalt = ("cobalt", "exchange")
    c = Chain()
    coins = c.add(Tx([], [(40, P2WPKH), (41, P2WPKH), (45, P2WPKH), (46, P2WPKH), (47, P2WPKH)]))
    # customer 40 pays deposit 10 with change back to itself; the deposit stays unspent
    c.add(Tx([coins[0], coins[1]], [(10, P2SH), (41, P2WPKH)]))
    # customer 45 sends its whole wallet to deposit 12; that stays unspent too
    c.add(Tx(coins[2:5], [(12, P2SH)]))
    # a lone address pays deposit 14 once (payment and change)
    lone = c.add(Tx([], [(50, P2WPKH)]))
    c.add(Tx([lone[0]], [(14, P2SH), (51, P2WPKH)]))
    _store, shapes, _fp = c.build(cluster_of)
    tags: dict[int, tuple[str | None, str]] = {10: cobalt, 12: cobalt, 14: cobalt}
    funder, _paid, payout = services.funder_links(shapes, cluster_of, np.array([10, 12, 14]))
    assert sorted(funder.tolist()) == [40, 45, 50]  # the links exist ...
    assert not payout.any()  # ... but none comes from a payout
    attribution = dict(tags)
    named = _lend_to_funders(shapes, cluster_of, attribution, tags, np.zeros(100, np.bool_))
    assert named.tolist() == []
    assert attribution == tags  # no customer took the exchange's name


def _blind(n_groups: int, named_seen: dict[int, tuple[int, int]]) -> WalletStyles:
    hot = np.full(n_groups, STYLE_UNSEEN, np.int64)
    fp = np.full(n_groups, STYLE_UNSEEN, np.int64)
    for g, (h, f) in named_seen.items():
        hot[g], fp[g] = h, f
    zeros = np.zeros(n_groups, np.int64)
    return WalletStyles(hot, fp, np.full(n_groups, P2WPKH, np.int64), zeros, zeros.copy(),
                        np.zeros(n_groups, np.bool_))  # fmt: skip


def _blind_chain(
    sweep_spend_fp: int,
) -> tuple[Any, services.TxShapes, np.ndarray, services.ClusterGroups]:
    """Group 0 (cluster 10: addresses 10-14) is named and blind; group 1 (cluster 20) named and
    seen; cluster 30 belongs to nobody named."""
    cluster_of = np.arange(100)
    cluster_of[11:15] = 10
    c = Chain()
    coins = c.add(Tx([], [(30, P2PKH), (10, P2WPKH), (11, P2WPKH), (12, P2WPKH), (13, P2WPKH),
                          (14, P2SH), (20, P2SH)]))  # fmt: skip
    # a small payout spending the blind wallet's coin as its second input: its own
    c.add(Tx([coins[0], coins[1]], _payees(60, 3), fp=7))
    # its sweep, and the next spend of what the sweep made (a 2-payee tx of the hot wallet)
    swept = c.add(Tx(coins[2:5], [(40, P2WPKH)], fp=7))
    c.add(Tx([swept[0]], _payees(70, 2), fp=sweep_spend_fp))
    # a 2-payee forward of its P2SH deposit: not a payout, ignored
    c.add(Tx([coins[5]], _payees(80, 2), fp=9))
    # the seen named wallet's own small payout
    c.add(Tx([coins[6]], _payees(90, 3), fp=3))
    store, shapes, fingerprint = c.build(cluster_of)
    group = services.ClusterGroups.of(np.array([10, 20]), np.array([0, 1]))
    return store, shapes, fingerprint, group


def test_blind_styles_read_small_payouts_and_sweep_spends_of_blind_named_wallets() -> None:
    store, shapes, fingerprint, group = _blind_chain(sweep_spend_fp=7)
    styles = _blind(2, {1: (P2SH, 2)})
    cluster_of = np.arange(100)
    cluster_of[11:15] = 10
    got = services.blind_styles(
        store, shapes, cluster_of, styles, group, np.array([0, 1]), fingerprint
    )
    assert (got.hot.tolist(), got.fingerprint.tolist()) == ([P2WPKH, P2SH], [7, 2])
    # a group that is not named (a candidate) keeps what its batches show: nothing
    got = services.blind_styles(
        store, shapes, cluster_of, styles, group, np.array([1]), fingerprint
    )
    assert got.hot[0] == STYLE_UNSEEN and got.fingerprint[0] == STYLE_UNSEEN


def test_blind_styles_take_nothing_when_the_proxies_disagree() -> None:
    store, shapes, fingerprint, group = _blind_chain(sweep_spend_fp=8)
    cluster_of = np.arange(100)
    cluster_of[11:15] = 10
    styles = _blind(2, {1: (P2SH, 2)})
    got = services.blind_styles(
        store, shapes, cluster_of, styles, group, np.array([0, 1]), fingerprint
    )
    assert got.hot[0] == STYLE_UNSEEN and got.fingerprint[0] == STYLE_UNSEEN
    assert (got.hot[1], got.fingerprint[1]) == (P2SH, 2)
