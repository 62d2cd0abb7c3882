"""Tx shapes (`trace.services.TxShapes`) of a small chain built by hand, for the tests of the
links between service clusters (test_blind_wallets.py, test_change_spend.py). Each tx is its
spent output ids, its outputs' address ids and values, and whether it is a CoinJoin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainsleuth.trace import services


def hand_vsizes(tx_ids: np.ndarray) -> np.ndarray:
    """`Store.tx_vsizes` of a hand-built chain that gives no sizes: 0 each (the fee-rate habit
    is then not read)."""
    return np.zeros(len(tx_ids), np.int64)


def hand_shapes(
    inputs: Sequence[Sequence[int]],
    output_address: Sequence[Sequence[int]],
    output_value: Sequence[Sequence[int]],
    coinjoin: Sequence[bool],
    cluster_of: np.ndarray,
) -> services.TxShapes:
    """The shapes `trace.services.tx_shapes` gives, from per-tx lists (every output payable)."""
    n_txs = len(inputs)
    first_output = np.cumsum([0] + [len(a) for a in output_address])[:-1].astype(np.int64)
    address = np.array([a for outs in output_address for a in outs], np.uint32)
    value = np.array([v for values in output_value for v in values], np.int64)
    spent_by = np.full(address.shape[0], -1, np.int32)
    for i, spent in enumerate(inputs):
        spent_by[list(spent)] = i
    n_payees = np.array([len(a) for a in output_address], np.uint8)
    spender = np.array(
        [int(cluster_of[address[spent[0]]]) if spent else -1 for spent in inputs], np.int64
    )
    is_coinjoin = np.array(coinjoin, np.bool_)
    small = (spender >= 0) & (n_payees >= services.SMALL_BATCH_PAYEES) & ~is_coinjoin
    return services.TxShapes(
        n_inputs=np.array([len(spent) for spent in inputs], np.uint8),
        n_payees=n_payees,
        spender=spender,
        batch=small & (n_payees >= services.BATCH_MIN_PAYEES),
        made_by=services._made_by(first_output, address.shape[0]),
        spent_by=spent_by,
        first_output=first_output,
        output_address=address,
        payable=services._payable(address, value),
        plain=np.ones(n_txs, np.bool_),
        coinjoin=is_coinjoin,
        small_batch=small,
        output_value=value,
    )


def hand_store(inputs: Sequence[Sequence[int]], output_types: Sequence[int]) -> Any:
    """A store-like object with the graph arrays the style passes read: each tx's first input,
    the output each input spends, and each output's script type."""
    from types import SimpleNamespace

    first_input = np.cumsum([0] + [len(spent) for spent in inputs])[:-1].astype(np.int64)
    return SimpleNamespace(
        tx_vsizes=hand_vsizes,
        graph=SimpleNamespace(
            tx_first_input=first_input,
            input_spent_output=np.array([o for spent in inputs for o in spent], np.int64),
            output_script_type=np.array(output_types, np.uint8),
            block_time=np.zeros(1, np.uint32),  # one block: the habits read pooled
        ),
    )


@dataclass
class HandChain:
    """Txs appended in order; each tx's outputs get the next output ids."""

    txs: list[Any] = field(default_factory=list)

    def add(self, tx: Any) -> list[int]:
        """Adds `tx` (anything with an `outputs` list); returns its output ids."""
        first = sum(len(t.outputs) for t in self.txs)
        self.txs.append(tx)
        return list(range(first, first + len(tx.outputs)))
