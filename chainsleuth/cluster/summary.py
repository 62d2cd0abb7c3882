"""The cluster of one address as a person asks for it: size, value, first and last seen, and
the rules whose merges built it (`chainsleuth cluster-of`, notebooks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from chainsleuth.cluster.engine import Clusters
from chainsleuth.store import lookups
from chainsleuth.store.store import Store

__all__ = ["cluster_summary"]

#: Clusters up to this size go through the lookup index; larger ones scan the output array once.
INDEXED_MEMBERS_MAX = 4096


def cluster_summary(data_dir: Path, address: str) -> dict[str, Any]:
    """Size, first/last seen, balance and the rules that built the cluster of an address."""
    store = Store.open(data_dir)
    clusters = Clusters(data_dir)
    address_id = lookups.address_id(store, address)
    cluster_id = int(clusters.cluster_of[address_id])
    members = clusters.members(cluster_id)
    if members.shape[0] <= INDEXED_MEMBERS_MAX:  # the lookup index: O(the cluster's outputs)
        outs = store.lookup_index().outputs_of_addresses(members.astype(np.int64))
    else:
        out_address = np.asarray(store.array("output_address"))
        outs = np.flatnonzero(np.isin(out_address, members.astype(np.uint32))).astype(np.int64)
    values = np.asarray(store.array("output_value"))[outs]
    spent = store.spent_by_tx()[outs] >= 0
    first_out = np.asarray(store.array("tx_first_output"))
    creating = np.searchsorted(first_out, outs, side="right") - 1
    heights = np.asarray(store.array("tx_height"))[creating]
    merges = clusters.merges()
    a_ids = merges.column("address_a_id").to_numpy()
    inside = np.asarray(clusters.cluster_of)[a_ids] == cluster_id if a_ids.shape[0] else a_ids
    rules: dict[str, int] = {}
    if a_ids.shape[0]:
        rule_col = np.asarray(merges.column("rule").to_pylist(), dtype=object)[inside]
        change_col = np.asarray(merges.column("change_rules").to_pylist(), dtype=object)[inside]
        for rule, change in zip(rule_col, change_col, strict=True):
            key = rule if change is None else f"change:{change}"
            rules[key] = rules.get(key, 0) + 1
    return {
        "address": address,
        "cluster_id": cluster_id,
        "size": int(members.shape[0]),
        "received": int(values.sum()),
        "balance": int(values[~spent].sum()),
        "n_outputs": int(outs.shape[0]),
        "first_seen_height": int(heights.min()) if heights.shape[0] else None,
        "last_seen_height": int(heights.max()) if heights.shape[0] else None,
        "rules": rules,
        "policy": clusters.manifest["policy"],
    }
