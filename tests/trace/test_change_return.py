"""Change returned to a named wallet (issue 11, docs/accuracy-log.md "Change returned to a
named wallet"): an `unidentified_service`'s batch whose largest output (its change) a named
exchange's cluster spends is that exchange's batch, and the service takes the name
(`cases.investigate._lend_by_change`, `attributed_via` = change_return). Small chains built by
hand (the helpers of test_change_spend.py); every tx, input, output and value is spelled out."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from chainsleuth.cases.investigate import _lend_by_change
from tests.trace.test_change_spend import P2SH, Chain, Tx, _batch

UNIDENTIFIED = "unidentified_service"
ARCADIA, BOREALIS = ("arcadia", "exchange"), ("borealis", "exchange")


class CitingChain(Chain):
    """A hand chain whose store also names its txs (`tx<i>`), as the evidence cites them."""

    def store(self) -> Any:
        s = super().store()
        s.txids = lambda ids: pa.array([f"tx{int(i)}" for i in np.asarray(ids)])
        return s


def _world() -> tuple[CitingChain, np.ndarray, dict[str, int]]:
    """Cluster 20, an unidentified service, pays a batch of 6 payees from its coin (address
    20) and sends the rest, the largest output, to address 40; arcadia's tagged hot wallet
    (cluster 1) spends that change with one of its own coins in a 2-payee tx (address 40 is in
    cluster 1: the multi-input rule put it there)."""
    cluster_of = np.arange(200)
    cluster_of[40] = 1
    c = CitingChain()
    coins = c.add(Tx([], [(1, 100_000), (20, 100_000), (2, 100_000), (30, 100_000)]))
    out = c.add(_batch(coins[1], 40, 80_000, 100))
    c.add(Tx([out[-1], coins[0]], [(41, 150_000), (42, 29_000)]))
    return c, cluster_of, {"batch": 1, "spend": 2, "coin2": coins[2], "coin30": coins[3]}


def test_a_change_return_names_the_service_and_cites_its_txs() -> None:
    c, cluster_of, ids = _world()
    label = ("cluster:20", UNIDENTIFIED)
    attribution = {1: ARCADIA, 20: label, 25: label, 30: ("cluster:30", UNIDENTIFIED)}
    returned: list[int] = []
    evidence: list[dict[str, Any]] = []
    named = _lend_by_change(
        c.store(), c.shapes(cluster_of), attribution, np.zeros(200, np.bool_), returned, evidence
    )
    assert named.tolist() == [20, 25]  # every cluster of the service's label
    assert returned == [20, 25]  # named by a change return, nothing else
    assert attribution[20] == attribution[25] == ARCADIA
    assert attribution[30] == ("cluster:30", UNIDENTIFIED)  # no batch of its own: untouched
    assert evidence == [
        {
            "label": "cluster:20",
            "clusters": 2,
            "name": "arcadia",
            "via": "change_return",
            "batch_txid": f"tx{ids['batch']}",
            "spend_txid": f"tx{ids['spend']}",
            "named_cluster": 1,
        }
    ]


def test_a_label_with_a_change_spend_too_is_cited_by_it() -> None:
    """Cluster 20 also spends the change of an arcadia batch: the name is the same, and the
    label counts as named by the change spend (the rule shipped before), not as a return."""
    c, cluster_of, ids = _world()
    out = c.add(_batch(ids["coin2"], 21, 60_000, 150))
    cluster_of[2] = 1  # arcadia's coin
    cluster_of[21] = 20  # its change lands in the service's cluster, which spends it
    c.add(Tx([out[-1]], [(22, 50_000), (23, 9_000)]))
    label = ("cluster:20", UNIDENTIFIED)
    attribution = {1: ARCADIA, 20: label}
    returned: list[int] = []
    evidence: list[dict[str, Any]] = []
    named = _lend_by_change(
        c.store(), c.shapes(cluster_of), attribution, np.zeros(200, np.bool_), returned, evidence
    )
    assert named.tolist() == [20] and returned == []
    assert [e["via"] for e in evidence] == ["change_spend"]


def test_two_owners_look_alike_and_lend_nothing() -> None:
    """Cluster 30, another owner's service (an untagged exchange), pays a batch whose largest
    output is a big withdrawal into an arcadia deposit (address 50, in arcadia's cluster 1):
    arcadia sweeps it (one payee) or it is of the deposit's script type, not the batch's coin's:
    no link, the service keeps no name. Spent by arcadia in a 2-payee tx of the batch's own
    type, the same output would link (the rule cannot tell that from a change return), so two
    names implied (arcadia and borealis) lend none."""
    cluster_of = np.arange(200)
    cluster_of[50] = 1
    c = CitingChain()
    coins = c.add(Tx([], [(1, 100_000), (30, 100_000), (2, 100_000), (3, 100_000)]))
    out = c.add(_batch(coins[1], 50, 90_000, 100))
    c.add(Tx([out[-1], coins[0]], [(51, 189_000)]))  # arcadia's sweep: one payee
    label = ("cluster:30", UNIDENTIFIED)

    def lend(chain: CitingChain, attribution: dict[int, tuple[str | None, str]]) -> np.ndarray:
        return _lend_by_change(
            chain.store(), chain.shapes(cluster_of), attribution, np.zeros(200, np.bool_)
        )

    attribution = {1: ARCADIA, 30: label}
    assert lend(c, attribution).tolist() == []
    assert attribution[30] == label
    # a 2-payee spend, but the withdrawal went to a P2SH deposit from a P2WPKH coin
    d = CitingChain()
    coins = d.add(Tx([], [(1, 100_000), (30, 100_000)]))
    out = d.add(_batch(coins[1], 50, 90_000, 100))
    d.txs[-1].types[6] = P2SH
    d.add(Tx([out[-1]], [(52, 80_000), (53, 9_000)]))
    attribution = {1: ARCADIA, 30: label}
    assert lend(d, attribution).tolist() == []
    # of the batch's type and spent in 2 payees: a link; with borealis's change spent too, two
    # names and none lent
    d.txs[1].types.clear()
    attribution = {1: ARCADIA, 30: label}
    assert lend(d, attribution).tolist() == [30] and attribution[30] == ARCADIA
    cluster_of[60] = 30
    cluster_of[3] = 2
    out = d.add(_batch(d.add(Tx([], [(3, 100_000)]))[0], 60, 70_000, 150))
    d.add(Tx([out[-1]], [(61, 60_000), (62, 9_000)]))  # borealis's batch change, spent by 30
    attribution = {1: ARCADIA, 2: BOREALIS, 30: label}
    assert lend(d, attribution).tolist() == []
    assert attribution[30] == label


@pytest.fixture(scope="module")
def return_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The realistic simulated world (small, seed 3): the cached small world whose recall the
    change returns moved most (0.942 -> 0.963, dunmore 0.806 -> 0.896). Built by the accuracy
    bench's own `build_case`, so that test and bench measure one thing."""
    from bench.accuracy_matrix import build_case

    root = tmp_path_factory.mktemp("return-case")
    build_case(root, "realistic", "small", 3)
    return root


@pytest.mark.slow
def test_a_case_names_services_through_change_returns(return_world: Path) -> None:
    """Rows named by a change return say so (`attributed_via` = change_return, caution
    `linked_by_change_return`), are right by the truth at >= 0.5, and case.json's change_links
    cites, for each label named so, a batch and a spend that are txs of the chain."""
    from chainsleuth.cases.evaluate import score_case

    with open(return_world / "case" / "leads.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["attributed_via"] == "change_return"]
    assert rows, "no lead named through a change return"
    assert all("linked_by_change_return" in r["caution"].split(";") for r in rows)
    with open(return_world / "world" / "truth" / "payments.csv", newline="") as f:
        funded = {
            (p["deposit_address"], p["funding_exchange"])
            for p in csv.DictReader(f)
            if p["funding_exchange"]
            and not (p["path_kind"] == "coinjoin" and p["coinjoin_broke_trail"] == "true")
        }
    sure = [r for r in rows if float(r["confidence"]) >= 0.5]
    right = sum((r["deposit_address"], r["source_entity"]) in funded for r in sure)
    assert sure and right >= 0.98 * len(sure)
    case = json.loads((return_world / "case" / "case.json").read_text())
    links = [e for e in case["change_links"] if e["via"] == "change_return"]
    assert links
    with open(return_world / "world" / "truth" / "txs.csv", newline="") as f:
        txids = {t["txid"] for t in csv.DictReader(f)}
    for e in links:
        assert e["batch_txid"] in txids and e["spend_txid"] in txids
    # every cluster a change_return row names is one of those the cited labels cover
    assert len({r["source_cluster"] for r in rows}) <= sum(e["clusters"] for e in links)
    s = score_case(return_world / "world", return_world / "case")
    assert s.lead_precision >= 0.98


def _forwarded_withdrawal() -> tuple[CitingChain, np.ndarray]:
    """Cluster 30 (label cluster:30, with cluster 35), an unidentified service, pays a batch of
    6 payees of 1,000 sat, its change of 20,000 to address 36 and a withdrawal of 40,000 into
    arcadia's deposit (address 50, in arcadia's cluster 1): the withdrawal is the largest output
    and holds more than the rest together (26,000), of the batch coin's own type. Arcadia
    forwards that deposit in a 2-payee tx (a buyer and its own change): read as a change
    return, it names cluster:30 arcadia (hard_swswitch small 7: an arcadia batch's largest
    output, 48.7M sat against 42.5M, was a borealis deposit borealis forwarded)."""
    cluster_of = np.arange(200)
    cluster_of[50] = 1
    c = CitingChain()
    coins = c.add(Tx([], [(30, 100_000), (1, 100_000), (35, 100_000), (60, 100_000)]))
    out = c.add(Tx([coins[0]], [(100 + k, 1_000) for k in range(6)] + [(36, 20_000), (50, 40_000)]))
    c.add(Tx([out[7]], [(51, 30_000), (52, 9_000)]))  # arcadia forwards the deposit
    return c, cluster_of


def _lend(c: CitingChain, cluster_of: np.ndarray, attribution: dict) -> np.ndarray:
    return _lend_by_change(c.store(), c.shapes(cluster_of), attribution, np.zeros(200, np.bool_))


def test_no_change_return_when_the_payer_spends_its_change_in_its_own_batch() -> None:
    """The service's next batch spends the 20,000-sat output (address 36) together with a coin
    of cluster 35, the label's other cluster: that output was its change and the largest a
    withdrawal, so no link, and the label keeps no name. Without that batch the rule cannot
    tell the forward from a change return and names it (the failure this check removes); the
    same output spent in a 2-payee tx of the service (no batch) tells nothing either."""
    label = ("cluster:30", UNIDENTIFIED)
    c, cluster_of = _forwarded_withdrawal()
    # without the service's own batch: the wrong name (what hard_swswitch small 7 did)
    attribution = {1: ARCADIA, 30: label, 35: label}
    assert _lend(c, attribution=attribution, cluster_of=cluster_of).tolist() == [30, 35]
    assert attribution[30] == ARCADIA
    # the change spent by the service's next batch (cluster 35: one of the label's clusters)
    cluster_of[36] = 35
    c.add(Tx([2, 8], [(140 + k, 2_000) for k in range(6)] + [(37, 100_000)]))
    assert c.shapes(cluster_of).batch[-1] and c.shapes(cluster_of).spender[-1] == 35
    attribution = {1: ARCADIA, 30: label, 35: label}
    assert _lend(c, cluster_of, attribution).tolist() == []
    assert attribution[30] == attribution[35] == label
    # spent by the payer's own cluster itself: the same
    cluster_of[36] = 30
    attribution = {1: ARCADIA, 30: label, 35: label}
    assert _lend(c, cluster_of, attribution).tolist() == []
    # spent by the service, but in a 2-payee tx (not a batch): the link stands
    d, cluster_of = _forwarded_withdrawal()
    cluster_of[36] = 35
    d.add(Tx([2, 8], [(140, 2_000), (37, 100_000)]))
    attribution = {1: ARCADIA, 30: label, 35: label}
    assert _lend(d, cluster_of, attribution).tolist() == [30, 35]


def test_a_change_return_stands_when_another_wallet_batches_a_payee() -> None:
    """The right change return of `_world` (arcadia spends the service's change) still names
    the service when one of the batch's payees is spent by a batch of another wallet (cluster
    60, a label of its own: a withdrawal landing in another service's hot wallet). And the
    same check holds the other way round: arcadia's batch whose other output an arcadia
    cluster spends in a batch lends no change spend."""
    c, cluster_of, ids = _world()
    cluster_of[100] = 60  # the batch's first payee lands in cluster 60, which batches it
    payee = 4  # the batch's first output (tx 0's four coins come first)
    c.add(Tx([payee, ids["coin30"]], [(160 + k, 1_000) for k in range(6)] + [(61, 90_000)]))
    cluster_of[30] = 60
    shapes = c.shapes(cluster_of)
    assert shapes.batch[-1] and shapes.spender[-1] == 60
    label = ("cluster:20", UNIDENTIFIED)
    attribution = {1: ARCADIA, 20: label, 60: ("cluster:60", UNIDENTIFIED)}
    assert _lend(c, cluster_of, attribution).tolist() == [20]
    assert attribution[20] == ARCADIA and attribution[60] == ("cluster:60", UNIDENTIFIED)
    # change spend: arcadia (clusters 1 and 2) pays a batch; its largest output is spent by
    # the unidentified cluster 70 in 2 payees, another output by arcadia's cluster 2 in a batch
    e = CitingChain()
    cluster_of = np.arange(200)
    coins = e.add(Tx([], [(1, 100_000), (2, 100_000)]))
    out = e.add(Tx([coins[0]], [(100 + k, 1_000) for k in range(6)] + [(3, 20_000), (70, 40_000)]))
    e.add(Tx([out[7]], [(71, 30_000), (72, 9_000)]))
    other = ("cluster:70", UNIDENTIFIED)
    attribution = {1: ARCADIA, 2: ARCADIA, 70: other}
    assert _lend(e, cluster_of, attribution).tolist() == [70]  # no batch of arcadia's yet
    cluster_of[3] = 2
    e.add(Tx([out[6], coins[1]], [(180 + k, 2_000) for k in range(6)] + [(4, 100_000)]))
    attribution = {1: ARCADIA, 2: ARCADIA, 70: other}
    assert _lend(e, cluster_of, attribution).tolist() == []
    assert attribution[70] == other


@pytest.fixture(scope="module")
def switch_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulated world whose change returns went wrong (`hard_swswitch`, small, seed 7):
    an arcadia batch's largest output (48.7M sat, more than its 42.5M other outputs) was a
    withdrawal into a borealis deposit that borealis forwarded in a 2-payee tx, and its change
    (29.5M) arcadia's next batch spent; read as a change return, it named two arcadia labels
    (44 clusters) borealis, 11 wrong lead rows (lead precision 0.949 on c3ff095). Built by the
    accuracy bench's own `build_case`."""
    from bench.accuracy_matrix import build_case

    root = tmp_path_factory.mktemp("switch-case")
    build_case(root, "hard_swswitch", "small", 7)
    return root


@pytest.mark.slow
def test_change_links_cite_the_batch_change_on_a_switch_world(switch_world: Path) -> None:
    """Every change link the case cites (change spend and change return) spent the output the
    truth calls the batch's change (`truth/txs.csv` change_vouts); change returns still name
    labels (measured 9 on this world), and lead precision holds the bar (1.000)."""
    from chainsleuth.cases.evaluate import score_case
    from chainsleuth.store.lookups import transaction
    from chainsleuth.store.store import Store

    case = json.loads((switch_world / "case" / "case.json").read_text())
    links = [e for e in case["change_links"] if e["via"] in ("change_spend", "change_return")]
    assert sum(e["via"] == "change_return" for e in links) >= 5
    with open(switch_world / "world" / "truth" / "txs.csv", newline="") as f:
        change = {
            t["txid"]: {int(v) for v in t["change_vouts"].split(";") if v}
            for t in csv.DictReader(f)
        }
    store = Store.open(switch_world / "store")
    for e in links:
        spend = transaction(store, e["spend_txid"])
        vouts = {i["prev_vout"] for i in spend["inputs"] if i["prev_txid"] == e["batch_txid"]}
        assert vouts and vouts <= change[e["batch_txid"]], e
    s = score_case(switch_world / "world", switch_world / "case")
    assert s.lead_precision >= 0.98
