"""A CoinJoin's change linked to the one input that paid it (`trace.mix_change`), and the
backward walk that goes on through that input instead of stopping at the CoinJoin.

Round (hand-built): four participants each put in one coin (P1 0.30, P2 0.25, P3 0.20, P4 0.45
BTC), each takes one 0.1 BTC output and gets the rest back less a 10,000 sat fee; a payment
then spends P2's change into X.
"""

from __future__ import annotations

import numpy as np
import pytest

from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store
from chainsleuth.trace.engine import FLAG_MIX_CHANGE, _chain, outputs_of_tx, trace_back
from chainsleuth.trace.mix_change import mix_change_links
from tests.chainbuilder import ChainBuilder, p2wpkh, spend

BTC = 10**8
DENOM = 10_000_000
FEE = 10_000
COINS = [30_000_000, 25_000_000, 20_000_000, 45_000_000]


def _round(ins: list[int], outs: list[int], coinjoin: bool = True) -> tuple[np.ndarray, ...]:
    """Arrays of one tx spending outputs 0..len(ins)-1 (their values `ins`) into `outs`."""
    n_in = len(ins)
    tx_first_input = np.array([0, 0], np.int64)  # tx 0: the funding (no inputs), tx 1: the round
    tx_first_output = np.array([0, n_in], np.int64)
    input_spent_output = np.arange(n_in, dtype=np.int64)
    output_value = np.array(ins + outs, np.int64)
    return (
        tx_first_input,
        tx_first_output,
        input_spent_output,
        output_value,
        np.array([False, coinjoin]),
    )


def _changes(fees: list[int]) -> list[int]:
    return [v - DENOM - f for v, f in zip(COINS, fees, strict=True)]


def test_each_change_links_to_the_one_input_that_paid_it() -> None:
    arrays = _round(COINS, [DENOM] * 4 + _changes([FEE] * 4))
    outs, ins = mix_change_links(*arrays)
    # outputs 4..7 are the denominations (ids 4-7 after the 4 funding outputs), 8..11 the changes
    assert outs.tolist() == [8, 9, 10, 11]
    assert ins.tolist() == [0, 1, 2, 3]


def test_a_tx_not_flagged_as_a_coinjoin_is_not_read() -> None:
    arrays = _round(COINS, [DENOM] * 4 + _changes([FEE] * 4), coinjoin=False)
    outs, _ = mix_change_links(*arrays)
    assert outs.shape[0] == 0


def test_a_change_two_inputs_fit_is_not_linked() -> None:
    coins = [*COINS, COINS[1]]  # a fifth input of P2's value: P2's change fits both
    outs, ins = mix_change_links(*_round(coins, [DENOM] * 5 + _changes([FEE] * 4)))
    linked = dict(zip(outs.tolist(), ins.tolist(), strict=True))
    assert 5 + 5 + 1 not in linked  # P2's change (output id 11) stays a stop
    assert linked == {10: 0, 12: 2, 13: 3}


def test_a_fee_that_stands_apart_from_the_rounds_is_a_coincidence() -> None:
    # P4's change leaves 0.5% of the denomination where the others leave 0.1%: within the
    # fee window, but no other participant's fee agrees with it
    outs, _ = mix_change_links(*_round(COINS, [DENOM] * 4 + _changes([FEE] * 3 + [50_000])))
    assert outs.tolist() == [8, 9, 10]


def test_fits_too_few_others_agree_with_link_nothing() -> None:
    # three participants whose fees all differ by 0.2% of the denomination or more: any of
    # them may be a coincidence, and nothing says which
    arrays = _round(COINS[:3], [DENOM] * 3 + _changes([FEE, 30_000, 50_000, FEE])[:3])
    outs, _ = mix_change_links(*arrays)
    assert outs.shape[0] == 0
    # two agreeing within MIX_FEE_SPREAD but not to the satoshi are not enough (MIN_FITS = 3:
    # a coincidence may find one partner)
    arrays = _round(COINS[:2], [DENOM] * 2 + _changes([FEE, FEE + 3_000, 0, 0])[:2])
    assert mix_change_links(*arrays)[0].shape[0] == 0
    # nor with the twin rule off, even when they agree to the satoshi
    arrays = _round(COINS[:2], [DENOM] * 2 + _changes([FEE] * 4)[:2])
    assert mix_change_links(*arrays, twin_sat=-1)[0].shape[0] == 0
    # three agreeing: linked
    outs, _ = mix_change_links(*_round(COINS[:3], [DENOM] * 3 + _changes([FEE] * 4)[:3]))
    assert outs.tolist() == [6, 7, 8]


def test_two_changes_whose_fees_are_equal_to_the_satoshi_link() -> None:
    # two participants paying the very same fee (TWIN_SAT = 0): the round's own fee, where a
    # coincidence would have to land on one exact value of the 1% window
    outs, ins = mix_change_links(*_round(COINS[:2], [DENOM] * 2 + _changes([FEE] * 4)[:2]))
    assert outs.tolist() == [4, 5]
    assert ins.tolist() == [0, 1]
    # one satoshi apart: not the same fee (and two are too few to agree by MIX_FEE_SPREAD)
    arrays = _round(COINS[:2], [DENOM] * 2 + _changes([FEE, FEE + 1, 0, 0])[:2])
    assert mix_change_links(*arrays)[0].shape[0] == 0


def test_of_a_changes_two_fits_the_one_whose_fee_another_change_repeats_links() -> None:
    # a fifth input (0.2501 BTC) that P2's change also fits, at a fee of 20,000 sat: no other
    # change pays that, so the fit at the round's 10,000 sat (twinned by P1, P3, P4) links
    coins = [*COINS, COINS[1] + FEE]
    outs, ins = mix_change_links(*_round(coins, [DENOM] * 5 + _changes([FEE] * 4)))
    linked = dict(zip(outs.tolist(), ins.tolist(), strict=True))
    assert linked == {10: 0, 11: 1, 12: 2, 13: 3}
    # with the twin rule off it stays a stop, as a change two inputs fit always did
    outs, _ = mix_change_links(*_round(coins, [DENOM] * 5 + _changes([FEE] * 4)), twin_sat=-1)
    assert 11 not in outs.tolist()
    # when both fits' fees are repeated (the fifth input pays P2's change at another
    # change's fee) neither says which: a stop
    coins = [*COINS, COINS[1] - 5_000]
    changes = _changes([FEE] * 4)
    changes[3] = COINS[3] - DENOM - 5_000  # P4 pays 5,000: P2's second fit repeats it
    outs, _ = mix_change_links(*_round(coins, [DENOM] * 5 + changes))
    assert 11 not in outs.tolist()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    chain = ChainBuilder()
    funds = []
    for k, v in enumerate(COINS):
        cb = chain.add_block(miner=p2wpkh(f"miner{k}")).txs[0]
        funds.append(spend([(cb, 0)], [(v, p2wpkh(f"P{k}")), (50 * BTC - v, p2wpkh(f"m{k}"))]))
    chain.add_block(funds)
    changes = _changes([FEE] * 4)
    mix = spend(
        [(f, 0) for f in funds],
        [(DENOM, p2wpkh(f"mixed{k}")) for k in range(4)]
        + [(c, p2wpkh(f"change{k}")) for k, c in enumerate(changes)],
    )
    chain.add_block([mix])
    pay = spend([(mix, 5)], [(changes[1] - 1_000, p2wpkh("X"))])
    chain.add_block([pay])
    data = tmp_path_factory.mktemp("mix-change")
    ingest_blocks_dir(chain.write(data / "blocks"), data / "store")
    store = Store.open(data / "store")

    def tx_id(tx: object) -> int:
        found = store.tx_id_of(tx.txid_hex())  # type: ignore[attr-defined]
        assert found is not None
        return found

    # the round flagged a CoinJoin, and its change links as investigate makes them
    is_coinjoin = np.zeros(store.counts["txs"], np.bool_)
    is_coinjoin[tx_id(mix)] = True
    graph = _chain(store)[0]
    links = mix_change_links(
        graph.tx_first_input,
        graph.tx_first_output,
        graph.input_spent_output,
        graph.output_value,
        is_coinjoin,
    )
    return {
        "dir": data / "store",
        "store": store,
        "mix": tx_id(mix),
        "fund_p2": tx_id(funds[1]),
        "x": int(outputs_of_tx(store, tx_id(pay))[0]),
        "is_coinjoin": is_coinjoin,
        "links": links,
    }


def test_the_walk_goes_back_through_the_linked_input_alone(world: dict) -> None:
    is_coinjoin, links = world["is_coinjoin"], world["links"]
    assert links[0].shape[0] == 4
    # without the links the CoinJoin ends the walk
    r = trace_back(world["dir"], [world["x"]], is_coinjoin=is_coinjoin)
    assert r.kind_names() == ["coinjoin"]
    # with them the whole amount goes back to P2's coin, and from it to P2's coinbase only
    r = trace_back(world["dir"], [world["x"]], is_coinjoin=is_coinjoin, mix_change=links)
    assert r.kind_names() == ["coinbase"]
    assert r.amount.tolist() == [COINS[1] - DENOM - FEE - 1_000]
    assert world["fund_p2"] in r.path(0).tolist()
    assert (r.flags & FLAG_MIX_CHANGE).all()


@pytest.mark.parametrize("policy", ["haircut", "fifo", "poison"])
def test_every_policy_carries_the_whole_change_back(world: dict, policy: str) -> None:
    is_coinjoin, links = world["is_coinjoin"], world["links"]
    r = trace_back(
        world["dir"], [world["x"]], policy=policy, max_hops=2, is_coinjoin=is_coinjoin,
        mix_change=links,
    )  # fmt: skip
    assert r.amount.sum() == COINS[1] - DENOM - FEE - 1_000
    assert r.hops.tolist() == [2]
