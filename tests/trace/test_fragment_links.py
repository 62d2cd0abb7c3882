"""Unnamed fragments of a named exchange's wallet, linked by what the named wallet does with
their coins (issue 11, docs/accuracy-log.md "Payout outputs co-spent by a named wallet, and
sweeps into a fragment"): a payout of an `unidentified_service` whose output a named cluster
spends together with coins of its own (`payout_cospend`), and a named cluster's sweep whose
coin the service pays out (`sweep_into`) name the service after that exchange
(`trace.services.payout_cospend_evidence`, `sweep_into_evidence`,
`cases.investigate._lend_by_change`). Small chains built by hand (the helpers of
test_change_spend.py and test_change_return.py); every tx, input, output and value is spelled
out."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainsleuth.cases.investigate import _lend_by_change
from tests.trace.test_change_return import CitingChain
from tests.trace.test_change_spend import P2SH, Tx

UNIDENTIFIED = "unidentified_service"
ARCADIA, BOREALIS = ("arcadia", "exchange"), ("borealis", "exchange")
LABEL = ("cluster:20", UNIDENTIFIED)


def _lend(
    c: CitingChain, cluster_of: np.ndarray, attribution: dict[int, tuple[str | None, str]]
) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, list[int]]]:
    evidence: list[dict[str, Any]] = []
    via: dict[str, list[int]] = {}
    named = _lend_by_change(
        c.store(),
        c.shapes(cluster_of),
        attribution,
        np.zeros(200, np.bool_),
        None,
        evidence,
        via,
    )
    return named, evidence, via


def _payout(
    spend_inputs: int, spend_outputs: int, small_payees: int = 2
) -> tuple[CitingChain, np.ndarray]:
    """Cluster 20, an unidentified service, pays a payout from its coin (address 20): one big
    withdrawal of 60,000 (address 100), `small_payees` of 1,000, and its change of 30,000 to
    address 40 (not the largest output: no change return). Arcadia's hot wallet (cluster 1)
    spends that output, with `spend_inputs` - 1 coins of its own, in a tx of `spend_outputs`
    payees (address 40 lies in cluster 1 when the multi-input rule put it there)."""
    cluster_of = np.arange(200)
    c = CitingChain()
    coins = c.add(Tx([], [(1, 100_000), (20, 100_000), (2, 100_000), (3, 100_000)]))
    small = [(101 + k, 1_000) for k in range(small_payees)]
    out = c.add(Tx([coins[1]], [(100, 60_000), *small, (40, 30_000)]))
    if spend_inputs > 1:
        cluster_of[40] = 1
    ins = [out[-1], coins[0], coins[2], coins[3]][:spend_inputs]
    value = 30_000 + 100_000 * (spend_inputs - 1) - 1_000
    shares = [value // spend_outputs] * spend_outputs
    c.add(Tx(ins, [(150 + k, v) for k, v in enumerate(shares)]))
    return c, cluster_of


def test_a_payout_output_a_named_wallet_cospends_names_the_service() -> None:
    """The output is not the payout's largest, so no change return links it; arcadia spending
    it with a coin of its own in a 2-payee tx (a move to cold storage with change, a payout)
    does: every cluster of the label takes the name, cited as a payout_cospend."""
    c, cluster_of = _payout(spend_inputs=2, spend_outputs=2)
    attribution = {1: ARCADIA, 20: LABEL, 25: LABEL}
    named, evidence, via = _lend(c, cluster_of, attribution)
    assert named.tolist() == [20, 25]
    assert attribution[20] == attribution[25] == ARCADIA
    assert via == {"payout_cospend": [20, 25]}
    assert evidence == [
        {
            "label": "cluster:20",
            "clusters": 2,
            "name": "arcadia",
            "via": "payout_cospend",
            "batch_txid": "tx1",
            "spend_txid": "tx2",
            "named_cluster": 1,
        }
    ]


def test_no_cospend_link_from_a_lone_spend_a_sweep_or_another_type() -> None:
    """What another exchange does with a withdrawal into its deposit: forward it alone (one
    input, two outputs) or sweep it with other deposits (one payee). Neither links. Nor does an
    output of another script type than the coin the payout spends (a deposit of another
    type), nor a 2-payee payment (not a payout of 3+ payees)."""
    for inputs, outputs in ((1, 2), (3, 1)):
        c, cluster_of = _payout(spend_inputs=inputs, spend_outputs=outputs)
        attribution = {1: ARCADIA, 20: LABEL}
        named, evidence, via = _lend(c, cluster_of, attribution)
        assert named.tolist() == [] and evidence == [] and via == {}
        assert attribution[20] == LABEL
    c, cluster_of = _payout(spend_inputs=2, spend_outputs=2)
    c.txs[1].types[3] = P2SH  # the output arcadia spends is not of the payout's coin's type
    attribution = {1: ARCADIA, 20: LABEL}
    assert _lend(c, cluster_of, attribution)[0].tolist() == []
    # a payment and its change (two payees), not a payout of 3+
    c, cluster_of = _payout(spend_inputs=2, spend_outputs=2, small_payees=0)
    attribution = {1: ARCADIA, 20: LABEL}
    assert _lend(c, cluster_of, attribution)[0].tolist() == []


def test_two_named_wallets_cospending_lend_nothing() -> None:
    """Arcadia co-spends one output of the service's payout and borealis another: two names
    implied, none lent."""
    c, cluster_of = _payout(spend_inputs=2, spend_outputs=2)
    more = c.add(Tx([], [(5, 100_000)]))
    cluster_of[101] = 5
    second_payee = 5  # output ids: the first tx's 4 coins, then the payout's outputs
    c.add(Tx([second_payee, more[0]], [(160, 50_000), (161, 50_000)]))
    attribution = {1: ARCADIA, 5: BOREALIS, 20: LABEL}
    assert _lend(c, cluster_of, attribution)[0].tolist() == []
    assert attribution[20] == LABEL


def _sweep(n_inputs: int, spend_outputs: int) -> tuple[CitingChain, np.ndarray]:
    """Arcadia's deposits (cluster 1: addresses 1, 2, 3, co-spent) are swept, `n_inputs` of
    them, into address 20, whose cluster (an unidentified service) spends it in a tx of
    `spend_outputs` payees."""
    cluster_of = np.arange(200)
    cluster_of[[2, 3]] = 1
    c = CitingChain()
    coins = c.add(Tx([], [(1, 100_000), (2, 100_000), (3, 100_000)]))
    swept = c.add(Tx(coins[:n_inputs], [(20, 100_000 * n_inputs - 1_000)]))
    value = 100_000 * n_inputs - 2_000
    c.add(Tx([swept[0]], [(170 + k, value // spend_outputs) for k in range(spend_outputs)]))
    return c, cluster_of


def test_a_named_sweep_the_service_pays_out_names_it() -> None:
    c, cluster_of = _sweep(n_inputs=3, spend_outputs=3)
    attribution = {1: ARCADIA, 20: LABEL}
    named, evidence, via = _lend(c, cluster_of, attribution)
    assert named.tolist() == [20] and attribution[20] == ARCADIA
    assert via == {"sweep_into": [20]}
    assert [(e["via"], e["batch_txid"], e["spend_txid"]) for e in evidence] == [
        ("sweep_into", "tx1", "tx2")
    ]


def test_no_sweep_link_from_two_coins_or_a_one_payee_spend() -> None:
    """Two coins into one output is no sweep (a payment of a named wallet's may be a
    send-all of two coins to a stranger); a sweep's coin the service spends into one payee is a
    send-all on (what a customer does with a withdrawal), not a payout."""
    for n_inputs, outputs in ((2, 3), (3, 1)):
        c, cluster_of = _sweep(n_inputs=n_inputs, spend_outputs=outputs)
        attribution = {1: ARCADIA, 20: LABEL}
        assert _lend(c, cluster_of, attribution)[0].tolist() == []
        assert attribution[20] == LABEL
