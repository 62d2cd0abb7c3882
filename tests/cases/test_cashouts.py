"""Cash-outs: the service's payees recognised as deposits by what spends them.

The slow tests build a world whose exchanges never reuse an address (realistic profile, small
seed 1): the service's payees are deposits recognised by their sweep, and no walk goes past
them. Measured (docs/investigations.md): at confidence >= 0.5 recall 0.958 (23 of 24) and
precision 1.000, total 0.94 of the truth, since exchange habits are drawn per exchange
(2026-12-07; before: 0.875, 1.000, 0.90, and 0.625, 0.938, 0.64 before cash-outs ended at the
service's payee). The one miss is a deposit the exchange forwarded in a one-input, two-output
tx whose change stays unspent: listed by rule 6 (`forward_unconfirmed`) at 0.25, below the cut
(3 such misses on the world of index-walked habits). The fast
ones check the forwarded-deposit rules on a hand-made chain and, chain-wide, on the session's
small world.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bench.accuracy_matrix import build_case
from chainsleuth.cases.cashouts import (
    UNCONFIRMED_FORWARD_CAP,
    VIA_FORWARD_UNCONFIRMED,
    VIA_HOT,
    VIA_NAMED,
    VIA_PAYOUT,
    cashout_rows,
    payee_fates_summary,
)
from chainsleuth.cases.evaluate import score_case
from chainsleuth.cases.investigate import prepare_case
from chainsleuth.store.layout import NONE32
from chainsleuth.trace import kernels as trace_kernels


@pytest.fixture(scope="module")
def realistic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("realistic-case")
    build_case(root, "realistic", "small", 1)
    return root


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_cashouts_into_untagged_exchanges_are_found(realistic: Path) -> None:
    s = score_case(realistic / "world", realistic / "case")
    assert s.cashout_recall >= 0.85  # measured 0.958 (0.875 with index-walked habits)
    assert s.cashout_precision >= 0.95  # measured 1.000
    assert 0.85 <= s.cashout_total_ratio <= 1.1  # measured 0.94 (0.90)
    rows = _rows(realistic / "case" / "cashouts.csv")
    truth = {
        (r["txid"], r["destination_address"])
        for r in _rows(realistic / "world" / "truth" / "cashouts.csv")
    }
    # deposits swept into wallets no tag names: reported, as an unidentified service
    unnamed = [r for r in rows if r["destination_category"] == "unidentified_service"]
    assert unnamed and {(r["txid"], r["destination_address"]) for r in unnamed} <= truth
    # the forwards whose remainder no one spends: listed below the cut, flagged, all true here
    # (this world's service pays only exchanges; bench.cashout_forward_check for people)
    weak = [r for r in rows if r["attributed_via"] == "forward_unconfirmed"]
    assert len(weak) == 1  # measured: the one miss at >= 0.5 (3 with index-walked habits)
    assert {(r["txid"], r["destination_address"]) for r in weak} <= truth
    assert all(float(r["confidence"]) <= UNCONFIRMED_FORWARD_CAP for r in weak)
    assert all(r["caution"] == "forward_unconfirmed" for r in weak)
    assert all(r["caution"] == "" for r in rows if r not in weak)
    assert all(r["attributed_via"] for r in rows)
    listed = score_case(realistic / "world", realistic / "case", min_confidence=0.25)
    assert listed.cashout_recall > s.cashout_recall and listed.cashout_precision == 1.0
    case = json.loads((realistic / "case" / "case.json").read_text())
    fates = case["service"]["cashout_payee_fates"]
    assert fates["payees_forward_unconfirmed"] == 1
    assert fates["payees_shown_deposits"] >= 20  # measured 23 (21 with index-walked habits)
    assert case["parameters"]["confidence"]["unconfirmed_forward_cap"] == UNCONFIRMED_FORWARD_CAP


@pytest.mark.slow
def test_every_cashout_the_chain_shows_is_found(realistic: Path) -> None:
    """The evidence ceiling (docs/accuracy-log.md "Cash-outs: the evidence ceiling"): each
    true cash-out missed at >= 0.5 has a destination the chain does not tell from a person's
    coin by the tip: unspent, or spent alone in a one-input, two-output tx whose other output
    is unspent. A rule change that loses a cash-out the chain does show fails here."""
    from chainsleuth.store.store import Store

    store = Store.open(realistic / "store")
    g = store.graph
    n_txs = g.n_txs

    def spender(o: int) -> int:
        s = int(g.output_spent_by_tx[o])
        return -1 if s == int(NONE32) or s >= n_txs else s

    def outputs(t: int) -> list[int]:
        end = int(g.tx_first_output[t + 1]) if t + 1 < n_txs else int(g.n_outputs)
        return list(range(int(g.tx_first_output[t]), end))

    def n_inputs(t: int) -> int:
        end = int(g.tx_first_input[t + 1]) if t + 1 < n_txs else int(g.n_inputs)
        return end - int(g.tx_first_input[t])

    found = {
        (r["txid"], r["destination_address"])
        for r in _rows(realistic / "case" / "cashouts.csv")
        if float(r["confidence"]) >= 0.5
    }
    truth = _rows(realistic / "world" / "truth" / "cashouts.csv")
    missed = [c for c in truth if (c["txid"], c["destination_address"]) not in found]
    assert missed and len(missed) < len(truth) // 5  # measured 3 of 24
    for c in missed:
        t = store.tx_id_of(c["txid"])
        assert t is not None
        s = spender(int(g.tx_first_output[t]) + int(c["vout"]))
        if s < 0:
            continue  # not spent by the tip
        rest = [o for o in outputs(s) if spender(o) < 0]
        assert n_inputs(s) == 1 and len(outputs(s)) == 2 and rest, c
    store.close()


@pytest.mark.slow
def test_cashouts_end_at_the_services_payee(realistic: Path) -> None:
    """Each destination is paid by the service, or by a one-input, one-output send-all of a
    coin the service paid: never by a third party further on."""
    setup = prepare_case(realistic / "store", realistic / "world" / "seeds" / "deposits.csv")
    store = setup.store
    first_in = np.asarray(store.array("tx_first_input")).astype(np.int64)
    input_address = np.asarray(store.array("input_address")).astype(np.int64)
    spent_output = np.asarray(store.array("input_spent_output")).astype(np.int64)
    first_out = np.asarray(store.graph.tx_first_output).astype(np.int64)
    n_txs = first_in.shape[0]

    def inputs(t: int) -> np.ndarray:
        end = first_in[t + 1] if t + 1 < n_txs else input_address.shape[0]
        return np.arange(first_in[t], end)

    def paid_by_service(t: int) -> bool:
        return bool(setup.service_mask[setup.cluster_of[input_address[inputs(t)]]].any())

    rows = [
        r
        for r in _rows(realistic / "case" / "cashouts.csv")
        if r["destination_category"] != "coinjoin"
    ]
    assert rows
    for r in rows:
        t = store.tx_id_of(r["txid"])
        assert t is not None
        if paid_by_service(t):
            continue
        # a send-all: one input, one output, spending an output the service paid
        assert inputs(t).shape[0] == 1 and setup.chain.n_outputs(np.array([t]))[0] == 1, r
        before = int(np.searchsorted(first_out, spent_output[inputs(t)[0]], side="right") - 1)
        assert paid_by_service(before), r


@dataclass
class _Trace:
    """The fields of a forward TraceResult that `cashout_rows` reads."""

    kind: np.ndarray
    output: np.ndarray
    tx: np.ndarray
    hops: np.ndarray
    amount: np.ndarray


def _forwarding_chain(cashout_payout_flagged: bool = True) -> dict[str, object]:
    """The service (tx 0) pays payees D1 (output 0) and D2 (output 1). Each is forwarded alone
    in a one-input, two-output tx (txs 1, 2: a buyer and a remainder). D1's remainder (output 4)
    is spent by a payout of 7 payees of distinct values (tx 3, flagged as a CoinJoin as the
    equal-output rule flags batched withdrawals); D2's (output 6) by a JoinMarket-like mix
    (tx 4: 3 of 6 payees of one value). Every output has its own address and cluster."""
    n_out = 20
    values = np.array([1_000_000, 2_000_000, 5_000, 400_000, 590_000, 900_000, 1_090_000]
                      + [100_000 + 1_000 * k for k in range(7)]
                      + [100_000, 100_000, 100_000, 210_000, 220_000, 230_000], np.int64)  # fmt: skip
    spent_by = np.full(n_out, int(NONE32), np.uint32)
    spent_by[[0, 1, 4, 6]] = [1, 2, 3, 4]
    service = np.zeros(n_out, np.bool_)
    service[2] = True  # the service's change
    return {
        "out_cluster": np.arange(n_out, dtype=np.int64),
        "out_addr": np.arange(n_out, dtype=np.int64),
        "service_mask": service,
        "tx_first_input": np.array([0, 1, 2, 3, 5], np.int64),
        "tx_first_output": np.array([0, 3, 5, 7, 14], np.int64),
        "spent_by": spent_by,
        "is_coinjoin": np.array([False, False, False, cashout_payout_flagged, True]),
        "sweep_tx": np.zeros(5, np.bool_),
        "batch_tx": np.zeros(5, np.bool_),
        "out_value": values,
    }


def _service_payees() -> _Trace:
    return _Trace(
        kind=np.full(2, trace_kernels.KIND_CLUSTER, np.int8),
        output=np.array([0, 1], np.int64),
        tx=np.zeros(2, np.int64),
        hops=np.ones(2, np.int64),
        amount=np.array([1_000_000, 2_000_000], np.int64),
    )


@pytest.mark.parametrize("flagged", [True, False])
def test_a_deposit_forwarded_beside_a_payouts_coin_is_a_cashout(flagged: bool) -> None:
    """D1's remainder went into a payout (a batched withdrawal): D1 was the payout wallet's
    deposit, forwarded to a buyer. D2's went into a mix: nothing confirms D2, so it is listed
    by the weaker rule 6 only, named by its own cluster."""
    chain = _forwarding_chain(flagged)
    attribution: dict[int, tuple[str | None, str]] = {}
    got = cashout_rows(_service_payees(), attribution=attribution, **chain)  # type: ignore[arg-type]
    assert got.rows["destination"].tolist() == [0, 1]
    assert got.rows["via"].tolist() == [VIA_PAYOUT, VIA_FORWARD_UNCONFIRMED]
    assert got.rows["tx"].tolist() == [0, 0] and got.rows["hops"].tolist() == [1, 1]
    assert got.rows["cluster"].tolist() == [4, 1]  # the remainder's wallet; D2's own cluster
    assert attribution[4] == ("cluster:4", "unidentified_service")
    assert attribution[1] == ("cluster:1", "unidentified_service")
    assert (got.unidentified, got.unidentified_sat) == (0, 0)
    assert payee_fates_summary([got.fates]) == {
        "payees_shown_deposits": 1,
        "payees_forward_unconfirmed": 1,
        "payees_spent_otherwise": 0,
    }
    # a tag on the remainder's cluster names the exchange
    tagged: dict[int, tuple[str | None, str]] = {4: ("arcadia", "exchange")}
    got = cashout_rows(_service_payees(), attribution=tagged, **chain)  # type: ignore[arg-type]
    assert got.rows["cluster"].tolist() == [4, 1] and tagged[4] == ("arcadia", "exchange")


def test_forwarded_rule_marks_only_services_coins_on_the_small_world(
    small_world: tuple[Path, Path],
) -> None:
    """Chain-wide on the session's world: every one-input, two-output tx one of whose outputs a
    payout spends (the forwarded-deposit rule, applied to every tx) spends a coin of an
    exchange or a pool, by the truth."""
    from chainsleuth.cases.cashouts import _paid_on_by_payout
    from chainsleuth.cases.rows import ChainLookups
    from chainsleuth.store.store import Store

    world, data = small_world
    store = Store.open(data)
    first_in = np.asarray(store.graph.tx_first_input, np.int64)
    first_out = np.asarray(store.graph.tx_first_output, np.int64)
    n_txs, n_out = first_in.shape[0], store.graph.output_value.shape[0]
    spent_output = np.asarray(store.graph.input_spent_output, np.int64)
    out_addr = store.graph.output_address.astype(np.int64)
    out_addr[out_addr == int(NONE32)] = -1
    ends_in = np.append(first_in[1:], spent_output.shape[0])
    ends_out = np.append(first_out[1:], n_out)
    tx = np.arange(n_txs, dtype=np.int64)
    tx[first_in == ends_in] = -1  # no inputs (the genesis)
    remainder = _paid_on_by_payout(
        tx, first_in, ends_in, first_out, ends_out, out_addr,
        np.asarray(store.graph.output_value, np.int64), store.graph.output_spent_by_tx, n_txs,
        np.ones(n_txs, np.bool_),
    )  # fmt: skip
    marked = np.flatnonzero(remainder >= 0)
    assert marked.shape[0] > 20
    chain = ChainLookups(store, {})
    spent = spent_output[first_in[marked]]
    owner = {r["address"]: r["wallet_kind"] for r in _rows(world / "truth" / "addresses.csv")}
    kinds = {owner.get(str(a)) for a in chain.addresses_of_outputs(spent).to_pylist()}
    assert kinds <= {"exchange", "pool"}, kinds


def _people_chain() -> dict[str, object]:
    """The service (tx 0) pays P1 (output 0), P2 (output 1) and P3 (output 2); its change is
    output 3. P1 is spent with another coin (output 9, paid by tx 1) in a two-input,
    two-output payment (tx 2); P2 in a one-input, three-output payment (tx 3); P3 is unspent.
    Tx 4 closes the chain. Every output has its own address and cluster."""
    return _hand_chain(16, {0: 2, 9: 2, 1: 3}, 3, [0, 1, 2, 4, 5], [0, 9, 10, 12, 15])


def _hand_chain(
    n_out: int,
    spent: dict[int, int],
    service_output: int,
    first_input: list[int],
    first_output: list[int],
    batch: list[int] | None = None,
) -> dict[str, object]:
    """A hand-made chain of `cashout_rows`' arrays: every output of 100,000 sat with its own
    address and cluster, `spent` output -> spending tx, one service output, `batch` the txs
    that are payouts; no CoinJoin, no sweep."""
    n_txs = len(first_input)
    spent_by = np.full(n_out, int(NONE32), np.uint32)
    spent_by[list(spent)] = list(spent.values())
    service = np.zeros(n_out, np.bool_)
    service[service_output] = True
    batch_tx = np.zeros(n_txs, np.bool_)
    batch_tx[batch or []] = True
    return {
        "out_cluster": np.arange(n_out, dtype=np.int64),
        "out_addr": np.arange(n_out, dtype=np.int64),
        "service_mask": service,
        "tx_first_input": np.array(first_input, np.int64),
        "tx_first_output": np.array(first_output, np.int64),
        "spent_by": spent_by,
        "is_coinjoin": np.zeros(n_txs, np.bool_),
        "sweep_tx": np.zeros(n_txs, np.bool_),
        "batch_tx": batch_tx,
        "out_value": np.full(n_out, 100_000, np.int64),
    }


def test_people_paid_by_the_service_get_no_row() -> None:
    """A payee spent with other coins, or into three payees, or kept: no row, and the two
    spent ones are counted as spent otherwise (what rule 6 must not read as a forward)."""
    chain = _people_chain()
    trace = _Trace(
        kind=np.full(3, trace_kernels.KIND_CLUSTER, np.int8),
        output=np.array([0, 1, 2], np.int64),
        tx=np.zeros(3, np.int64),
        hops=np.ones(3, np.int64),
        amount=np.full(3, 100_000, np.int64),
    )
    attribution: dict[int, tuple[str | None, str]] = {}
    got = cashout_rows(trace, attribution=attribution, **chain)  # type: ignore[arg-type]
    assert got.rows["destination"].tolist() == [] and attribution == {}
    assert (got.unidentified, got.unidentified_sat) == (3, 300_000)
    assert payee_fates_summary([got.fates, got.fates]) == {
        "payees_shown_deposits": 0,
        "payees_forward_unconfirmed": 0,
        "payees_spent_otherwise": 2,
    }


def _sendall_chain() -> dict[str, object]:
    """The service (tx 0) pays X (output 0; its change output 1). X is sent whole in a
    one-input, one-output tx (tx 1) to D (output 2), which a payout of 7 payees spends with
    another coin (tx 2, outputs 3-9). D's cluster (2) is the payout's input cluster."""
    return _hand_chain(10, {0: 1, 2: 2}, 1, [0, 1, 2], [0, 2, 3], batch=[2])


def test_a_sendall_into_a_deposit_cospenders_payout_is_its_deposit() -> None:
    """A send-all whose output a payout spends: for a sweeping exchange the payee before it (X)
    was the deposit, swept alone into the hot wallet (rule 1). For a wallet that spends its
    customers' deposits in its payouts, D itself may be the deposit (the administrator sending
    X whole to the exchange, hard_cospend small 6): the row is D, named by its own cluster."""
    chain = _sendall_chain()
    trace = _Trace(
        kind=np.full(1, trace_kernels.KIND_CLUSTER, np.int8),
        output=np.array([0], np.int64),
        tx=np.zeros(1, np.int64),
        hops=np.ones(1, np.int64),
        amount=np.full(1, 100_000, np.int64),
    )
    named: dict[int, tuple[str | None, str]] = {2: ("borealis", "exchange")}
    got = cashout_rows(trace, attribution=dict(named), **chain)  # type: ignore[arg-type]
    assert got.rows["destination"].tolist() == [0] and got.rows["via"].tolist() == [VIA_HOT]
    assert got.rows["tx"].tolist() == [0] and got.rows["cluster"].tolist() == [2]
    cospenders = np.zeros(10, np.bool_)
    cospenders[2] = True
    got = cashout_rows(trace, attribution=dict(named), cospenders=cospenders, **chain)  # type: ignore[arg-type]
    assert got.rows["destination"].tolist() == [2] and got.rows["via"].tolist() == [VIA_NAMED]
    assert got.rows["tx"].tolist() == [1] and got.rows["hops"].tolist() == [2]
    assert got.rows["cluster"].tolist() == [2]


def _one_payee(output: int) -> _Trace:
    """A forward trace that stopped at one service payee, `output`, paid by tx 0."""
    return _Trace(
        kind=np.full(1, trace_kernels.KIND_CLUSTER, np.int8),
        output=np.array([output], np.int64),
        tx=np.zeros(1, np.int64),
        hops=np.ones(1, np.int64),
        amount=np.full(1, 100_000, np.int64),
    )


#: `cluster.learned.read_fingerprints` values: Bitcoin Core's (version 2, an anti-fee-sniping
#: locktime, RBF nSequence) and a plain service's (version 1, locktime 0, final nSequence)
CORE_PRINT, PLAIN_PRINT = 0b10110, 0b00001


def test_a_sendall_written_unlike_the_payout_is_its_deposit() -> None:
    """Rule 1's step back (X was the deposit, swept alone into the payout wallet's hot address)
    holds only where the send-all is written as the payout is: the wallet's own move. A
    send-all written by other software (Core's locktime and nSequence, the payout plain) paid
    D in, and the payout spent D straight: D is its deposit, whatever D's name (the guard's
    per-name reading missed it where D's name was a service entity's label, hard_cospend
    small 3, 4, 10). Without fingerprints rule 1 steps back as before."""
    chain = _sendall_chain()
    named: dict[int, tuple[str | None, str]] = {2: ("cluster:7", "unidentified_service")}
    for prints, want in (
        (None, (0, VIA_HOT, 0, 1)),
        ([PLAIN_PRINT, PLAIN_PRINT, PLAIN_PRINT], (0, VIA_HOT, 0, 1)),
        ([PLAIN_PRINT, CORE_PRINT, PLAIN_PRINT], (2, VIA_NAMED, 1, 2)),
    ):
        fp = None if prints is None else np.array(prints, np.uint8)
        got = cashout_rows(_one_payee(0), attribution=dict(named), tx_fingerprint=fp, **chain)  # type: ignore[arg-type]
        r = got.rows
        assert (r["destination"].tolist(), r["via"].tolist()) == ([want[0]], [want[1]]), prints
        assert (r["tx"].tolist(), r["hops"].tolist()) == ([want[2]], [want[3]])
        assert r["cluster"].tolist() == [2]


def test_a_named_payee_sent_whole_into_its_own_names_foreign_payout_is_not_the_deposit() -> None:
    """A named payee X sent whole (by Core) into D, which a plainly written payout of X's own
    name spends: the wallet would have spent its own deposit X itself, so X's name came to
    the sender's coin through an entity link; D is the deposit (hard_cospend small 4). A
    payee of another name than the payout's (a tagged exchange forwarding the service's
    deposit whole into another exchange's) keeps its row, as do both without fingerprints."""
    chain = _sendall_chain()
    fp = np.array([PLAIN_PRINT, CORE_PRINT, PLAIN_PRINT], np.uint8)
    entity = ("cluster:7", "unidentified_service")
    for names, prints, want in (
        ({0: entity, 2: entity}, fp, (2, 1, 2)),
        ({0: entity, 2: entity}, None, (0, 0, 1)),
        ({0: ("arcadia", "exchange"), 2: ("borealis", "exchange")}, fp, (0, 0, 1)),
    ):
        got = cashout_rows(_one_payee(0), attribution=dict(names), tx_fingerprint=prints, **chain)  # type: ignore[arg-type]
        r = got.rows
        assert (r["destination"].tolist(), r["tx"].tolist(), r["hops"].tolist()) == (
            [want[0]],
            [want[1]],
            [want[2]],
        ), names
        assert r["via"].tolist() == [VIA_NAMED] and r["cluster"].tolist() == [want[0]]


def _typed_forwards_chain() -> dict[str, object]:
    """The service (tx 0) pays five payees (outputs 0-4, its change output 5); each is spent
    alone in a one-input, two-output tx (txs 1-5, outputs 6-15) whose outputs stay unspent;
    tx 6 closes the chain. Script types (payee -> its spend's two outputs):

    - output 0: P2PKH -> P2SH + P2WPKH (neither the payee's type, two types: rule 6a);
    - output 1: P2SH -> P2WPKH + P2WSH (native change beside a native payment: a person);
    - output 2: P2WPKH -> P2SH + P2SH (change matched to the payment's type: a person);
    - output 3: P2PKH -> P2PKH + P2SH (change kept in the payee's type: a person);
    - output 4: P2WPKH -> P2PKH + P2SH (a wallet spending its native change into its own
      older type: a person)."""
    p2pkh, p2sh, p2wpkh, p2wsh = 2, 3, 4, 5
    types = [p2pkh, p2sh, p2wpkh, p2pkh, p2wpkh, p2pkh]
    types += [p2sh, p2wpkh, p2wpkh, p2wsh, p2sh, p2sh, p2pkh, p2sh, p2pkh, p2sh, p2pkh]
    n_out = len(types)
    spent_by = np.full(n_out, int(NONE32), np.uint32)
    spent_by[[0, 1, 2, 3, 4]] = [1, 2, 3, 4, 5]
    service = np.zeros(n_out, np.bool_)
    service[5] = True
    return {
        "out_cluster": np.arange(n_out, dtype=np.int64),
        "out_addr": np.arange(n_out, dtype=np.int64),
        "service_mask": service,
        "tx_first_input": np.arange(7, dtype=np.int64),
        "tx_first_output": np.array([0, 6, 8, 10, 12, 14, 16], np.int64),
        "spent_by": spent_by,
        "is_coinjoin": np.zeros(7, np.bool_),
        "sweep_tx": np.zeros(7, np.bool_),
        "batch_tx": np.zeros(7, np.bool_),
        "out_value": np.full(n_out, 1_000_000, np.int64),
        "out_type": np.array(types, np.uint8),
    }


def test_a_forward_into_two_other_script_types_is_a_cashout() -> None:
    """Rule 6a: the payee whose spend moves it into two script types, neither its own and none
    a person's wallet would choose for change, is reported (`forward_switched_type`, named by
    its own cluster); the four spends a person's wallet makes stay rule 6's, below the cut."""
    from chainsleuth.cases.cashouts import VIA_FORWARD_SWITCHED

    chain = _typed_forwards_chain()
    trace = _Trace(
        kind=np.full(5, trace_kernels.KIND_CLUSTER, np.int8),
        output=np.arange(5, dtype=np.int64),
        tx=np.zeros(5, np.int64),
        hops=np.ones(5, np.int64),
        amount=np.full(5, 1_000_000, np.int64),
    )
    attribution: dict[int, tuple[str | None, str]] = {}
    got = cashout_rows(trace, attribution=attribution, **chain)  # type: ignore[arg-type]
    assert got.rows["destination"].tolist() == [0, 1, 2, 3, 4]
    assert got.rows["via"].tolist() == [VIA_FORWARD_SWITCHED] + [VIA_FORWARD_UNCONFIRMED] * 4
    assert got.rows["cluster"].tolist() == [0, 1, 2, 3, 4]
    assert attribution[0] == ("cluster:0", "unidentified_service")
    assert payee_fates_summary([got.fates]) == {
        "payees_shown_deposits": 1,
        "payees_forward_unconfirmed": 4,
        "payees_spent_otherwise": 0,
    }
    # without script types the rule is off: all five are rule 6's
    del chain["out_type"]
    got = cashout_rows(trace, attribution={}, **chain)  # type: ignore[arg-type]
    assert got.rows["via"].tolist() == [VIA_FORWARD_UNCONFIRMED] * 5


def test_switched_type_rule_marks_no_persons_coin_on_the_small_world(
    small_world: tuple[Path, Path],
) -> None:
    """Chain-wide on the session's world: of the coins spent alone in a one-input, two-output
    tx (rule 6's shape) whose owner is a person by the truth (not an exchange, pool, mixer or
    the service), rule 6a marks at most 1 in 1,000. Measured 4 of 11,611: P2SH coins spent into
    P2PKH and P2WPKH, a wallet that moved to native segwit. Reading P2WPKH payees too (a wallet
    spending its native change into its own older type) marked 61 (0.5%)."""
    from bench.cashout_switch_check import one_in_two_spends
    from chainsleuth.cases.cashouts import _switched_type
    from chainsleuth.store.store import Store

    world, data = small_world
    store = Store.open(data)
    sp = one_in_two_spends(world, store)
    assert sp.people.sum() > 1_000  # rule 6's shape is common among people's spends
    marked = _switched_type(sp.coin, sp.tx, sp.first_out, sp.out_type)
    assert int((marked & sp.people).sum()) * 1_000 <= int(sp.people.sum())
    store.close()


def test_exchange_habits_rule_marks_no_persons_coin_on_the_small_world(
    small_world: tuple[Path, Path],
) -> None:
    """Chain-wide on the session's world, as above, with the tagged exchanges' habits the case
    reads: rule 6b marks at most 1 in 1,000 of people's spends of rule 6's shape. Measured 3
    of 11,611 (customers' coins at a P2SH address of a P2PKH wallet, spent into two P2PKH
    outputs by software without locktime or RBF); with the fingerprint alone (no payee-type or
    exchange-pair condition) it marked 20-22 per easy world."""
    from bench.cashout_switch_check import one_in_two_spends
    from chainsleuth.cases.cashouts import _exchange_habits_fit

    world, data = small_world
    setup = prepare_case(data, world / "seeds" / "deposits.csv")
    assert setup.exchange_habits.shape[0] >= 2  # the tagged exchanges show their habits
    assert setup.tx_fingerprint is not None
    sp = one_in_two_spends(world, setup.store)
    assert sp.people.sum() > 1_000
    marked = _exchange_habits_fit(
        sp.coin, sp.tx, sp.first_out, sp.out_type, setup.tx_fingerprint, setup.exchange_habits
    )
    assert int((marked & sp.people).sum()) * 1_000 <= int(sp.people.sum())
    setup.store.close()


def test_a_forward_that_fits_a_tagged_exchanges_habits_is_a_cashout() -> None:
    """Rule 6b: a P2PKH payee spent into two P2SH outputs (rule 6a leaves two outputs alike:
    change matched to the payment) by a tx with the fingerprint of a tagged exchange whose
    deposits are P2PKH and whose hot wallet is P2SH is that exchange's kind of forward
    (`forward_exchange_habits`, cautioned, named by the payee's cluster); so is a P2WPKH payee
    spent so where a tagged exchange receives on P2WPKH (rule 6a never reads one). The same
    spends by Bitcoin Core's fingerprint (which matches change to the payment, or gives
    native change), or keeping the payee's type on an output (a person's change), or where no
    tagged exchange receives on the payee's type, or none keeps its hot wallet in either
    output's type, stay rule 6's."""
    from chainsleuth.cases.cashouts import VIA_FORWARD_HABITS

    p2pkh, p2sh, p2wpkh = 2, 3, 4
    # payee -> its spend's two outputs, and the spend's fingerprint
    v1_plain, core = 1, 2 | 4 | (1 << 3)  # v1, locktime 0, final; v2, locktime, 0xfffffffe
    cases = [
        (p2pkh, (p2sh, p2sh), v1_plain),  # the forward: rule 6b
        (p2wpkh, (p2pkh, p2sh), v1_plain),  # a native deposit's forward: rule 6b
        (p2pkh, (p2sh, p2wpkh), v1_plain),  # two other types: rule 6a first
        (p2pkh, (p2sh, p2sh), core),  # Core matching change to the payment: a person
        (p2wpkh, (p2sh, p2sh), core),  # Core's native change spent into its own type
        (p2pkh, (p2pkh, p2sh), v1_plain),  # change kept in the payee's type: a person
        (p2sh, (p2pkh, p2pkh), v1_plain),  # no tagged exchange receives on P2SH
        (p2pkh, (p2wpkh, p2wpkh), v1_plain),  # no P2PKH-receiving exchange's hot type
    ]
    n = len(cases)
    types = [c[0] for c in cases] + [p2pkh]  # the payees, the service's change
    for _, outs, _ in cases:
        types += list(outs)
    n_out = len(types)
    spent_by = np.full(n_out, int(NONE32), np.uint32)
    spent_by[:n] = np.arange(1, n + 1)
    service = np.zeros(n_out, np.bool_)
    service[n] = True
    first_out = np.array([0] + [n + 1 + 2 * k for k in range(n)] + [n_out], np.int64)
    chain = {
        "out_cluster": np.arange(n_out, dtype=np.int64),
        "out_addr": np.arange(n_out, dtype=np.int64),
        "service_mask": service,
        "tx_first_input": np.arange(n + 2, dtype=np.int64),
        "tx_first_output": first_out,
        "spent_by": spent_by,
        "is_coinjoin": np.zeros(n + 2, np.bool_),
        "sweep_tx": np.zeros(n + 2, np.bool_),
        "batch_tx": np.zeros(n + 2, np.bool_),
        "out_value": np.full(n_out, 1_000_000, np.int64),
        "out_type": np.array(types, np.uint8),
        "tx_fingerprint": np.array([core] + [c[2] for c in cases] + [core], np.uint8),
        # tagged exchanges: P2PKH deposits into a P2SH hot wallet; P2WPKH into P2SH
        "exchange_habits": np.array([[p2pkh, p2sh, v1_plain], [p2wpkh, p2sh, v1_plain]]),
    }
    trace = _Trace(
        kind=np.full(n, trace_kernels.KIND_CLUSTER, np.int8),
        output=np.arange(n, dtype=np.int64),
        tx=np.zeros(n, np.int64),
        hops=np.ones(n, np.int64),
        amount=np.full(n, 1_000_000, np.int64),
    )
    from chainsleuth.cases.cashouts import VIA_FORWARD_SWITCHED

    attribution: dict[int, tuple[str | None, str]] = {}
    got = cashout_rows(trace, attribution=attribution, **chain)  # type: ignore[arg-type]
    assert got.rows["destination"].tolist() == list(range(n))
    assert got.rows["via"].tolist() == [VIA_FORWARD_HABITS] * 2 + [VIA_FORWARD_SWITCHED] + [
        VIA_FORWARD_UNCONFIRMED
    ] * (n - 3)
    assert got.rows["cluster"].tolist()[:2] == [0, 1]
    assert attribution[0] == ("cluster:0", "unidentified_service")
    assert payee_fates_summary([got.fates])["payees_shown_deposits"] == 3
    # without the exchanges' habits (none tagged, or none read) the rule is off
    got = cashout_rows(trace, attribution={}, **(chain | {"exchange_habits": None}))  # type: ignore[arg-type]
    assert got.rows["via"].tolist()[0] == VIA_FORWARD_UNCONFIRMED
