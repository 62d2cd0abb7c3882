"""Batch clusters that spend deposits as they come (`trace.services.deposit_spending_batches`)
and the entity links into them that `service_entities` then drops, on a chain built by hand."""

from __future__ import annotations

import numpy as np

from chainsleuth.trace import services
from tests.trace.hand_shapes import hand_shapes

# addresses are their own clusters
SOURCE = 0  # the funding tx's coins have no input (spender -1)
PAYEES = [90, 91, 92, 93, 94, 95]  # six withdrawal payees (a batch needs 6+)


def _chain(deposit_kind: str, wait: int) -> tuple[services.TxShapes, np.ndarray, int, list[int]]:
    """One wallet (cluster 1) whose batch spends six coins that six other clusters (10-15)
    made, each `wait` blocks after it was made. `deposit_kind`: "sendall" (each maker pays its
    whole coin, one output: a customer paying a deposit) or "forward" (each maker keeps a
    second output: a deposit forwarded with its remainder back to the wallet). Returns the
    shapes, the height per tx, the batch cluster and the makers' clusters."""
    makers = [10, 11, 12, 13, 14, 15]
    inputs: list[list[int]] = [[]]
    outputs: list[list[int]] = [[1, *makers]]  # tx 0 funds the wallet and each maker
    values: list[list[int]] = [[10_000_000] + [1_000_000] * len(makers)]
    paid: list[int] = []  # the output each maker's tx sends on to the batch
    out = len(outputs[0])
    for i, _m in enumerate(makers):
        inputs.append([1 + i])
        if deposit_kind == "sendall":
            outputs.append([20 + i])
            values.append([990_000])
        else:
            outputs.append([20 + i, 30 + i])
            values.append([600_000, 390_000])
        paid.append(out)
        out += len(outputs[-1])
    inputs.append([0, *paid])  # the wallet's batch: its own coin first, then the six
    outputs.append(PAYEES + [2])
    values.append([100_000] * len(PAYEES) + [9_000_000])
    cluster_of = np.arange(100, dtype=np.int64)
    shapes = hand_shapes(inputs, outputs, values, [False] * len(inputs), cluster_of)
    height = np.array([0] + [1] * len(makers) + [1 + wait], np.int32)
    return shapes, height, 1, makers


def test_a_batch_spending_send_alls_reads_as_a_deposit_spender_even_when_it_waits() -> None:
    # a wallet that waits 9 blocks before it spends: the timing read does not see it, but six
    # send-alls (one output, no sweep) are no change of their makers: they paid the wallet
    shapes, height, wallet, makers = _chain("sendall", wait=9)
    assert services.deposit_spending_batches(shapes, height).tolist() == [wallet]
    nodes, entity = services.service_entities(shapes)
    # without the read, every payer is joined to the wallet
    assert set(nodes.tolist()) == {wallet, *makers}
    assert len(set(entity.tolist())) == 1
    spenders = services.deposit_spending_batches(shapes, height)
    nodes, entity = services.service_entities(shapes, spenders=spenders)
    assert nodes.shape[0] == 0


def test_a_batch_spending_forwards_remainders_keeps_its_links() -> None:
    # a sweeping wallet's forwards keep a remainder (two outputs): no send-all, and spent
    # 9 blocks on, not as soon as they confirm: its links stand
    shapes, height, wallet, makers = _chain("forward", wait=9)
    spenders = services.deposit_spending_batches(shapes, height)
    assert spenders.shape[0] == 0
    nodes, entity = services.service_entities(shapes, spenders=spenders)
    assert set(nodes.tolist()) == {wallet, *makers}


def test_a_batch_spending_coins_as_soon_as_they_confirm_reads_as_a_deposit_spender() -> None:
    # the same forwards spent 1 block after they were paid, every one: the timing read
    shapes, height, wallet, _makers = _chain("forward", wait=1)
    assert services.deposit_spending_batches(shapes, height).tolist() == [wallet]
