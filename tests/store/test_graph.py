"""The store's typed API (`Store.graph`, `txids`, `addresses`, `address_id`) answers what the
SQL views answer, on real blocks, and maps the arrays without copying them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainsleuth.core.address import encode_address
from chainsleuth.core.errors import AddressNotSeenError, ChainsleuthError
from chainsleuth.core.network import MAIN
from chainsleuth.core.script_types import ScriptType
from chainsleuth.store import layout
from chainsleuth.store.graph import ARRAY_FIELDS
from chainsleuth.store.store import Store


def test_the_graph_holds_every_array_memory_mapped_at_its_committed_length(
    nbitcoin_store: Path,
) -> None:
    store = Store.open(nbitcoin_store)
    assert sorted(ARRAY_FIELDS) == sorted(layout.ARRAYS)
    for graph in (store.graph, store.random_graph):
        for name, spec in layout.ARRAYS.items():
            array = getattr(graph, name)
            assert array.shape[0] == store.counts[spec.count], name
            assert array.dtype == np.dtype(spec.dtype), name
            # a view of the file's map (no copy of a chain-sized array), read-only
            assert isinstance(array.base, np.memmap), name
            assert not array.flags.writeable, name
        assert graph.n_txs == store.counts["txs"] and graph.n_outputs == store.counts["outputs"]
    assert store.graph is store.graph  # opened once per Store
    with pytest.raises(AttributeError):
        store.graph.n_txs = 0  # type: ignore[misc]


def test_ids_to_txids_and_addresses_match_the_views(nbitcoin_store: Path) -> None:
    store = Store.open(nbitcoin_store)
    txs = store.sql("SELECT tx_id, txid FROM txs ORDER BY tx_id")
    tx_ids = txs.column("tx_id").to_numpy()
    assert store.txids(tx_ids).to_pylist() == txs.column("txid").to_pylist()
    assert store.txids(np.array([-1, 0])).to_pylist() == [None, txs.column("txid")[0].as_py()]
    listed = store.sql("SELECT address_id, address FROM address_list_raw ORDER BY address_id")
    ids = listed.column("address_id").to_numpy()
    assert store.addresses(ids).to_pylist() == listed.column("address").to_pylist()
    some = np.array([int(ids[-1]), int(layout.NONE32), -1, int(ids[0])])
    names = listed.column("address").to_pylist()
    assert store.addresses(some).to_pylist() == [names[-1], None, None, names[0]]
    assert store.address_id(names[3]) == int(ids[3])


def test_address_to_id_has_one_error_for_never_seen_and_one_for_malformed(
    nbitcoin_store: Path,
) -> None:
    store = Store.open(nbitcoin_store)
    unseen = encode_address(ScriptType.P2WPKH, bytes(20), MAIN)
    with pytest.raises(AddressNotSeenError, match="never been seen"):
        store.address_id(unseen)
    with pytest.raises(ChainsleuthError, match="^not a target: 'nope'"):
        store.address_id("nope", what="not a target")
