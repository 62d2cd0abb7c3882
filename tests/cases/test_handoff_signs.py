"""`cases.rows.handoff_signs`: chain evidence that a lead's path coin was a payment to someone
else on an intermediate tx (issue 11, docs/design/cases.md "Hand-offs on the path"), on a
hand-built graph."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa

from chainsleuth.cases.rows import (
    FORWARD_CAP,
    FORWARD_CAUTIONS,
    HANDOFF_SIGNS,
    forward_signs,
    handoff_signs,
    recalibrate_leads,
)
from chainsleuth.store.layout import NONE32


class _Chain:
    """Txs added in order: each spends outputs (ids from `out`) and makes outputs of the given
    values (0: an OP_RETURN, no address)."""

    def __init__(self) -> None:
        self.first_input: list[int] = []
        self.first_output: list[int] = []
        self.spent: list[int] = []
        self.values: list[int] = []
        self.outs: list[list[int]] = []

    def tx(self, spends: list[int], values: list[int]) -> int:
        self.first_input.append(len(self.spent))
        self.first_output.append(len(self.values))
        self.spent += spends or [int(NONE32)]  # a coinbase: one input spending nothing
        self.outs.append(list(range(len(self.values), len(self.values) + len(values))))
        self.values += values
        return len(self.outs) - 1

    def out(self, tx: int, vout: int) -> int:
        return self.outs[tx][vout]

    def graph(self) -> SimpleNamespace:
        n = len(self.values)
        values = np.array(self.values, np.int64)
        spent_by = np.full(n, NONE32, np.uint32)
        for tx, (a, b) in enumerate(
            zip(self.first_input, self.first_input[1:] + [len(self.spent)], strict=True)
        ):
            for o in self.spent[a:b]:
                if o != int(NONE32):
                    spent_by[o] = tx
        return SimpleNamespace(
            tx_first_input=np.array(self.first_input, np.int64),
            tx_first_output=np.array(self.first_output, np.int64),
            input_spent_output=np.array(self.spent, np.int64),
            output_address=np.where(values > 0, np.arange(n), NONE32).astype(np.uint32),
            output_value=values,
            output_spent_by_tx=spent_by,
        )


def _world() -> tuple[SimpleNamespace, dict[str, list[int]], np.ndarray]:
    """An exchange's batch (tx 0) paying seven customers, and what each customer did next.
    Returns the graph, the paths by name (funding tx first) and the CoinJoin flags."""
    c = _Chain()
    x = c.tx(
        [],
        [5_000_000, 7_123_456, 3_333_333, 9_876_543, 4_444_444, 6_543_210, 8_765_432],
    )
    # a round 0.02 BTC paid on to someone else, the rest kept: the walk took the payment
    r = c.tx([c.out(x, 0)], [2_000_000, 2_987_654])
    r_pay = c.tx([c.out(r, 0)], [1_500_000, 499_000])
    # both outputs round: the rule cannot tell
    b = c.tx([c.out(x, 1)], [3_000_000, 4_000_000])
    b_pay = c.tx([c.out(b, 0)], [2_500_000, 499_000])
    # a peel chain: the larger output peels on (one input, two payees), the walk took the peel
    p = c.tx([c.out(x, 2)], [333_333, 2_999_000])
    c.tx([c.out(p, 1)], [1_000_001, 1_998_000])
    p_pay = c.tx([c.out(p, 0)], [300_001, 33_000])
    # a person pays someone and the walk goes on from the larger output (their change)
    k = c.tx([c.out(x, 3)], [6_876_543, 2_999_000])
    c.tx([c.out(k, 1)], [1_000_001, 1_998_000])
    k_pay = c.tx([c.out(k, 0)], [6_000_001, 875_000])
    # a payout of three payees on the path
    m = c.tx([c.out(x, 4)], [1_111_111, 1_222_222, 2_100_000])
    m_pay = c.tx([c.out(m, 0)], [1_000_003, 110_000])
    # a Whirlpool Tx0: an OP_RETURN, the coordinator's fee, a premix a CoinJoin spends, change
    t = c.tx([c.out(x, 5)], [0, 1_234_567, 5_000_000, 300_001])
    mix = c.tx([c.out(t, 2)], [4_999_000])
    t_pay = c.tx([c.out(t, 3)], [200_001, 99_000])
    # the path coin the smaller, but the larger is spent by a payout of six, not peeled on
    f = c.tx([c.out(x, 6)], [2_345_678, 6_419_754])
    c.tx([c.out(f, 1)], [1_000_001, 1_100_002, 1_200_003, 1_300_004, 1_400_005, 419_000])
    f_pay = c.tx([c.out(f, 0)], [2_000_001, 345_000])
    paths = {
        "round": [x, r, r_pay],
        "both_round": [x, b, b_pay],
        "peel": [x, p, p_pay],
        "change": [x, k, k_pay],
        "payout": [x, m, m_pay],
        "tx0": [x, t, t_pay],
        "smaller_swept": [x, f, f_pay],
        "round_pays_deposit": [x, r],  # the round payment is the deposit's own payment
        "direct": [x, -1, -1],
    }
    coinjoin = np.zeros(len(c.outs), np.bool_)
    coinjoin[mix] = True
    return c.graph(), paths, coinjoin


def _matrix(paths: dict[str, list[int]]) -> np.ndarray:
    width = max(len(p) for p in paths.values())
    return np.array([p + [-1] * (width - len(p)) for p in paths.values()], np.int64)


def test_each_sign_reads_only_its_evidence() -> None:
    graph, paths, coinjoin = _world()
    n_payees = np.diff(np.append(graph.tx_first_output, graph.output_value.shape[0]))
    small_batch = (n_payees >= 3) & ~coinjoin
    signs = handoff_signs(graph, _matrix(paths), small_batch, coinjoin)
    flagged = {
        name: [p for p, hit in zip(paths, signs[name].tolist(), strict=True) if hit]
        for name in HANDOFF_SIGNS
    }
    assert flagged == {
        "round_payment": ["round"],
        "peeled_off": ["peel"],
        "payout_on_path": ["payout"],
    }
    # without the CoinJoin flags the Tx0 is a payout of three payees too
    signs = handoff_signs(graph, _matrix(paths), small_batch)
    assert signs["payout_on_path"].sum() == 2


def test_signs_that_need_the_case_arrays_stay_unread_without_them() -> None:
    graph, paths, _ = _world()
    signs = handoff_signs(graph, _matrix(paths))
    assert not signs["payout_on_path"].any()
    assert signs["round_payment"].sum() == 1 and signs["peeled_off"].sum() == 1
    empty = handoff_signs(graph, np.zeros((0, 3), np.int64))
    assert all(v.shape == (0,) for v in empty.values())
    short = handoff_signs(graph, np.array([[0, 1]], np.int64))
    assert not any(v.any() for v in short.values())


def test_a_handoff_caution_keeps_a_lead_below_the_cut_on_recalibration() -> None:
    assert set(HANDOFF_SIGNS) <= FORWARD_CAUTIONS
    leads = pa.table(
        {
            "source_category": ["exchange"] * 4,
            "custody_path": [""] * 4,
            "attributed_via": ["tag"] * 4,
            "through_coinjoin": ["false"] * 4,
            "caution": [*HANDOFF_SIGNS, ""],
            "policy": ["haircut"] * 4,
            "hops": [2] * 4,
            "share": [1.0] * 4,
            "hold_days": [1.0] * 4,
            "confidence": [0.99] * 4,
        }
    )
    again = recalibrate_leads(leads, 1.0).column("confidence").to_pylist()
    assert max(again[:3]) <= FORWARD_CAP < 0.5 < again[3]


class _PointReads:
    """A per-tx or per-input array that may be read at chosen indices only: a whole-array copy
    (`np.asarray`, `np.append` of a slice) fails, as it would cost 8 B per tx of the chain on
    every chunk of a case."""

    def __init__(self, values: np.ndarray) -> None:
        self._values = values
        self.shape = values.shape
        self.dtype = values.dtype

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            raise AssertionError("a slice of a per-tx array was read")
        return self._values[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise AssertionError("a per-tx array was copied whole")


def test_the_signs_read_the_chain_at_the_path_txs_only() -> None:
    """forward_signs and handoff_signs answer from the path's txs: the same answers with the
    per-tx and per-input arrays readable only at indices (issue 13: their `np.append` copies
    were ≈ 24 B per tx of the chain in every `lead_table`)."""
    graph, paths, coinjoin = _world()
    n_payees = np.diff(np.append(graph.tx_first_output, graph.output_value.shape[0]))
    small_batch = (n_payees >= 3) & ~coinjoin
    points = SimpleNamespace(**vars(graph))
    for name in ("tx_first_input", "tx_first_output", "input_spent_output"):
        setattr(points, name, _PointReads(getattr(graph, name)))
    points.output_script_type = np.zeros(graph.output_value.shape[0], np.uint8)
    graph.output_script_type = points.output_script_type
    matrix = _matrix(paths)
    expected = handoff_signs(graph, matrix, small_batch, coinjoin)
    got = handoff_signs(points, matrix, small_batch, coinjoin)
    assert {k: v.tolist() for k, v in got.items()} == {k: v.tolist() for k, v in expected.items()}
    assert any(v.any() for v in got.values())
    for a, b in zip(forward_signs(points, matrix), forward_signs(graph, matrix), strict=True):
        assert a.tolist() == b.tolist()
