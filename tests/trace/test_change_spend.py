"""Change spent by an untagged wallet (issue 11, docs/accuracy-log.md "Change spent by an
untagged wallet"): a named exchange's batch whose largest output (its fresh change) an
`unidentified_service` spends names that service (`trace.services.change_spend_links`,
`cases.investigate._lend_by_change`). Small chains built by hand: every tx, input, output and
value is spelled out."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from chainsleuth.cases.investigate import _lend_by_change
from chainsleuth.trace import services
from tests.trace.hand_shapes import HandChain, hand_shapes, hand_vsizes

UNIDENTIFIED = "unidentified_service"
P2SH, P2WPKH = 3, 4
ARCADIA, BOREALIS = ("arcadia", "exchange"), ("borealis", "exchange")


@dataclass
class Tx:
    inputs: list[int]  # output ids it spends
    outputs: list[tuple[int, int]]  # (address id, value)
    coinjoin: bool = False
    types: dict[int, int] = field(default_factory=dict)  # vout -> script type (else P2WPKH)


class Chain(HandChain):
    """The chain these tests spell out, with the arrays its tests read."""

    def store(self) -> Any:
        """A store-like object with the graph arrays `change_spend_links` reads."""
        first_input = np.cumsum([0] + [len(t.inputs) for t in self.txs])[:-1].astype(np.int64)
        return SimpleNamespace(
            tx_vsizes=hand_vsizes,
            graph=SimpleNamespace(
                tx_first_input=first_input,
                input_spent_output=np.array([o for t in self.txs for o in t.inputs], np.int64),
                output_script_type=np.array(
                    [t.types.get(v, P2WPKH) for t in self.txs for v in range(len(t.outputs))],
                    np.uint8,
                ),
                block_time=np.zeros(1, np.uint32),  # one block: the habits read pooled
            ),
        )

    def links(
        self, cluster_of: np.ndarray, named: list[int], candidates: list[int], **kw: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        return services.change_spend_links(
            self.store(), self.shapes(cluster_of), np.array(named), np.array(candidates), **kw
        )

    def shapes(self, cluster_of: np.ndarray) -> services.TxShapes:
        return hand_shapes(
            [t.inputs for t in self.txs],
            [[a for a, _ in t.outputs] for t in self.txs],
            [[v for _, v in t.outputs] for t in self.txs],
            [t.coinjoin for t in self.txs],
            cluster_of,
        )


def _batch(coin: int, change: int, change_value: int, first_payee: int) -> Tx:
    """A batch of 6 payees of 1,000 sat each, and its change to `change` (6+1 outputs)."""
    return Tx([coin], [(first_payee + k, 1_000) for k in range(6)] + [(change, change_value)])


def _world() -> tuple[Chain, np.ndarray, dict[str, int]]:
    """Arcadia's tagged hot wallet (cluster 1) pays a batch; its change (address 20, the
    largest output) is spent by cluster 20, an unidentified service, in a 2-payee tx; a
    payee of the same batch (address 30) is spent by cluster 30, another unidentified
    service (a customer's withdrawal landing at another exchange's wallet)."""
    cluster_of = np.arange(200)
    c = Chain()
    coins = c.add(Tx([], [(1, 100_000), (2, 100_000), (3, 100_000)]))
    out = c.add(_batch(coins[0], 20, 50_000, 100))
    # the first payee of the batch is the address 30 (swap it in)
    c.txs[-1].outputs[0] = (30, 1_000)
    change_spend = c.add(Tx([out[-1]], [(21, 20_000), (22, 29_000)]))  # cluster 20's own spend
    c.add(Tx([out[0]], [(31, 500), (32, 400)]))  # cluster 30 spends a payee output
    return c, cluster_of, {"coin2": coins[1], "coin3": coins[2], "spend": change_spend[0]}


def test_change_spend_links_find_the_spender_of_the_largest_output() -> None:
    c, cluster_of, _ = _world()
    payer, spender = c.links(cluster_of, [1], [20, 30])
    assert payer.tolist() == [1]
    assert spender.tolist() == [20]
    # not named: no link; not a candidate: no link
    assert c.links(cluster_of, [2], [20])[0].shape[0] == 0
    assert c.links(cluster_of, [1], [30])[0].shape[0] == 0


def test_no_link_without_the_largest_output() -> None:
    """A payee output spent by an unidentified service is no link (it is where a withdrawal
    went); only without the largest-output condition does it make one. Nor does a batch whose
    largest value appears twice, a CoinJoin spend of the change, or a 5-payee payout."""
    c, cluster_of, _ = _world()
    payer, spender = c.links(cluster_of, [1], [20, 30], largest_only=False)
    assert sorted(spender.tolist()) == [20, 30]  # the payee's spender comes in without it
    # two outputs of the largest value: no change is told apart
    d = Chain()
    coins = d.add(Tx([], [(1, 100_000), (2, 100_000)]))
    out = d.add(Tx([coins[0]], [(100 + k, 1_000) for k in range(5)] + [(20, 9_000), (40, 9_000)]))
    d.add(Tx([out[5]], [(21, 8_000)]))
    assert d.links(cluster_of, [1], [20])[0].shape[0] == 0
    # the change spent by a CoinJoin, and a 5-payee payout (not a batch), and a big withdrawal
    # (the largest output) to another exchange's deposit that it sweeps: one payee
    e = Chain()
    coins = e.add(Tx([], [(1, 100_000), (2, 100_000), (3, 100_000), (4, 100_000)]))
    out = e.add(_batch(coins[3], 50, 9_000, 120))
    e.txs[-1].outputs[0] = (60, 90_000)
    others = e.add(Tx([], [(61, 5_000), (62, 5_000)]))
    e.add(Tx([out[0], *others], [(63, 99_000)]))
    out = e.add(_batch(coins[0], 20, 50_000, 100))
    e.add(Tx([out[-1], coins[1]], [(21, 1_000), (22, 1_000), (23, 1_000)], coinjoin=True))
    out = e.add(Tx([coins[2]], [(110 + k, 1_000) for k in range(4)] + [(40, 50_000)]))
    e.add(Tx([out[-1]], [(41, 49_000)]))
    cluster_of[61:63] = 60
    assert e.links(cluster_of, [1], [20, 40, 60])[0].shape[0] == 0
    # the largest output of another script type than the coin the batch spends (a withdrawal
    # into another exchange's P2SH deposit, forwarded with change): no link
    f = Chain()
    coins = f.add(Tx([], [(1, 100_000)]))
    out = f.add(_batch(coins[0], 70, 90_000, 130))
    f.txs[-1].types[6] = P2SH
    f.add(Tx([out[-1]], [(71, 80_000), (72, 9_000)]))
    assert f.links(cluster_of, [1], [70])[0].shape[0] == 0
    f.txs[1].types.clear()  # the same with the hot wallet's type: a link
    assert f.links(cluster_of, [1], [70])[1].tolist() == [70]


def test_no_link_from_a_largest_output_that_does_not_hold_most_of_the_batch() -> None:
    """The batch's largest output is a big withdrawal, not its change: 15,000 sat against six
    payouts of 10,000 (60,000 together), of the hot wallet's own script type, paid into another
    exchange's deposit that exchange forwards straight to a buyer (one input, buyer and its own
    change out: the shape of a wallet spending its change). Hard small 1 named an arcadia
    fragment cobalt so. No link; the same output holding most of the batch (70,000 sat) is one."""
    cluster_of = np.arange(200)
    c = Chain()
    coins = c.add(Tx([], [(1, 200_000)]))
    out = c.add(Tx([coins[0]], [(100 + k, 10_000) for k in range(6)] + [(80, 15_000)]))
    c.add(Tx([out[-1]], [(81, 9_000), (82, 5_500)]))  # the forward: buyer, forwarder's change
    assert c.links(cluster_of, [1], [80])[0].shape[0] == 0
    # one sat short of the other payouts together: still no link; one more than them: a link
    c.txs[1].outputs[-1] = (80, 60_000)
    assert c.links(cluster_of, [1], [80])[0].shape[0] == 0
    c.txs[1].outputs[-1] = (80, 60_001)
    assert c.links(cluster_of, [1], [80])[1].tolist() == [80]
    c.txs[1].outputs[-1] = (80, 70_000)
    payer, spender = c.links(cluster_of, [1], [80])
    assert (payer.tolist(), spender.tolist()) == ([1], [80])


def test_lend_by_change_names_the_whole_service_after_one_exchange() -> None:
    c, cluster_of, _ = _world()
    shapes = c.shapes(cluster_of)
    label = ("cluster:20", UNIDENTIFIED)
    attribution = {1: ARCADIA, 20: label, 25: label, 30: ("cluster:30", UNIDENTIFIED)}
    named = _lend_by_change(c.store(), shapes, attribution, np.zeros(200, np.bool_))
    assert named.tolist() == [20, 25]  # every cluster of the service's label
    assert attribution[20] == attribution[25] == ARCADIA
    assert attribution[30] == ("cluster:30", UNIDENTIFIED)  # a payee's spender: not named


def test_two_compatible_exchanges_lend_no_name() -> None:
    """Borealis's batch change is spent by the same service too: two names, none lent."""
    c, cluster_of, ids = _world()
    out = c.add(_batch(ids["coin2"], 50, 70_000, 150))
    c.add(Tx([out[-1]], [(26, 60_000), (27, 9_000)]))  # the change's own spend
    cluster_of[50] = 25  # the change address is in cluster 25, the same service's
    shapes = c.shapes(cluster_of)
    label = ("cluster:20", UNIDENTIFIED)
    attribution = {1: ARCADIA, 2: BOREALIS, 20: label, 25: label}
    before = dict(attribution)
    named = _lend_by_change(c.store(), shapes, attribution, np.zeros(200, np.bool_))
    assert named.tolist() == []
    assert attribution == before


def test_lend_by_change_goes_on_through_a_named_service_in_the_next_round() -> None:
    """Cluster 20, named in the first round, pays a batch whose change cluster 60 spends:
    60 takes the name in the second round. The seized service's clusters are never named."""
    c, cluster_of, ids = _world()
    out = c.add(_batch(ids["spend"], 60, 10_000, 150))
    c.add(Tx([out[-1]], [(61, 5_000), (62, 4_000)]))
    shapes = c.shapes(cluster_of)
    assert shapes.spender[-2] == 21  # the batch spends address 21, cluster 21 ...
    cluster_of[21] = 20  # ... which the base clustering put with 20
    shapes = c.shapes(cluster_of)
    attribution = {
        1: ARCADIA,
        20: ("cluster:20", UNIDENTIFIED),
        60: ("cluster:60", UNIDENTIFIED),
    }
    named = _lend_by_change(c.store(), shapes, attribution, np.zeros(200, np.bool_))
    assert named.tolist() == [20, 60]
    assert attribution[60] == ARCADIA
    seized = np.zeros(200, np.bool_)
    seized[60] = True
    attribution = {
        1: ARCADIA,
        20: ("cluster:20", UNIDENTIFIED),
        60: ("cluster:60", UNIDENTIFIED),
    }
    assert _lend_by_change(c.store(), shapes, attribution, seized).tolist() == [20]


@pytest.fixture(scope="module")
def change_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The realistic simulated world (small, seed 4), the small world whose case names the most
    services through change spends (34 rows). Hard small 7 served here until exchange habits
    were drawn per world (2026-12-07: 1 row), then hard small 3 (22 rows), until the round-amount
    and cadence habits named those services by style (2 rows). Built by the accuracy bench's own
    `build_case`, so that test and bench measure one thing."""
    from bench.accuracy_matrix import build_case

    root = tmp_path_factory.mktemp("change-case")
    build_case(root, "realistic", "small", 4)
    return root


@pytest.mark.slow
def test_a_case_names_services_through_change_spends(change_world: Path) -> None:
    """The case's leads carry `change_spend` rows, right by the truth at >= 0.5 (measured 1.000
    lead precision and 0.831 recall on this world), and their confidence is the calibrated one
    of a row named through its service (`via_entity` = 1): never higher than a tag's."""
    from chainsleuth.cases.confidence import calibration, typical_hold_days
    from chainsleuth.cases.evaluate import score_case
    from chainsleuth.cases.rows import EXCHANGE_CATEGORIES

    with open(change_world / "case" / "leads.csv", newline="") as f:
        every = [r for r in csv.DictReader(f) if r["source_category"] in EXCHANGE_CATEGORIES]
    leads = [r for r in every if r["source_category"] == "exchange"]
    change = [r for r in leads if r["attributed_via"] == "change_spend"]
    assert len(change) > 10  # measured 34 rows
    cal = calibration()
    # a lead's hold counts over the case's typical hold (its exchange leads' median)
    typical = typical_hold_days(
        np.array([float(r["hold_days"]) for r in every]),
        np.array([int(r["hops"]) for r in every]),
        cal.reference_hold_days,
    )
    for r in change:
        if r["caution"]:
            continue  # capped (long hold, forward signs): below its calibrated value
        custody = len(r["custody_path"].split(";")) if r["custody_path"] else 0
        one = np.ones(1)
        args = (one * int(r["hops"]), one * float(r["share"]), one * custody)
        style = one * (r.get("name_basis") == "style")
        want = cal.lead(r["policy"], *args, one, one * float(r["hold_days"]), typical, style)[0]
        as_tag = cal.lead(r["policy"], *args, 0 * one, one * float(r["hold_days"]), typical)[0]
        assert float(r["confidence"]) == pytest.approx(want, abs=2e-4)
        assert float(r["confidence"]) <= as_tag + 1e-4
    # right by the truth: the exchange funded a payment into the deposit whose trail holds
    with open(change_world / "world" / "truth" / "payments.csv", newline="") as f:
        funded = {
            (p["deposit_address"], p["funding_exchange"])
            for p in csv.DictReader(f)
            if p["funding_exchange"]
            and not (p["path_kind"] == "coinjoin" and p["coinjoin_broke_trail"] == "true")
        }
    sure = [r for r in change if float(r["confidence"]) >= 0.5]
    right = sum((r["deposit_address"], r["source_entity"]) in funded for r in sure)
    assert len(sure) > 10 and right >= 0.98 * len(sure)  # measured 33 of 33
    s = score_case(change_world / "world", change_world / "case")
    assert s.lead_precision >= 0.98  # measured 1.000
    assert s.lead_recall >= 0.5  # measured 0.831
