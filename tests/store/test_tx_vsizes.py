"""`Store.tx_vsizes`: the vsize of some txs read at their rows, as the `txs` view computes it
(the style rules' fee-rate habit reads it, trace.services)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chainsleuth.store.store import Store


def test_vsizes_of_some_txs_equal_the_view(small_ingested: tuple[Path, object]) -> None:
    store = Store.open(small_ingested[0])
    view = store.sql("SELECT tx_id, vsize FROM txs ORDER BY tx_id")
    every = view.column("vsize").to_numpy()
    ids = np.sort(np.random.default_rng(7).choice(every.shape[0], 3_000, replace=False))
    assert (store.tx_vsizes(ids) == every[ids]).all()
    # segwit txs among them: the vsize is not the size
    sizes = store.sql("SELECT size FROM txs ORDER BY tx_id").column("size").to_numpy()
    assert (store.tx_vsizes(ids) < sizes[ids]).any()
    assert store.tx_vsizes(np.zeros(0, np.int64)).shape == (0,)
