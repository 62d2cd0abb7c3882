"""Which cluster each address belongs to, as the clustering stage publishes it (or singletons).

The clustering stage publishes a cluster id per address id (int64, value = the smallest address
id of the cluster, stable across incremental updates) as a base array plus delta layers, named
by `DATA/clusters/manifest.json` with a `generation` that grows with every change; the cluster
stage's `layers.open_cluster_ids` resolves them. Attribution reads it through `ClusterMap`;
without it every address is its own cluster (cluster id = address id), so tags still attribute
addresses before clustering has run.

Example::

    clusters = load_clusters(Path("chainsleuth-data"))
    clusters.cluster_of(np.array([0, 5]))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chainsleuth.cluster.layers import LayeredIds, open_cluster_ids

__all__ = ["ClusterMap", "clusters_generation", "load_clusters"]

CLUSTER_ARRAY = "clusters/address_cluster.npy"
CLUSTER_MANIFEST = "clusters/manifest.json"


@dataclass(frozen=True)
class ClusterMap:
    """Cluster id per address id; addresses beyond the array are singletons."""

    # int64 by address id: the published base + delta layers (or a plain array); None: singletons
    array: LayeredIds | np.ndarray | None
    generation: int | None  # the clustering generation; None without clusters

    def cluster_of(self, address_ids: np.ndarray) -> np.ndarray:
        """Cluster ids of `address_ids` (int64); -1 stays -1 (not in the store)."""
        ids = np.asarray(address_ids, np.int64)
        out = ids.copy()
        if self.array is None:
            return out
        inside = (ids >= 0) & (ids < self.array.shape[0])
        out[inside] = self.array[ids[inside]]
        return out

    def members(self, cluster_ids: np.ndarray, n_addresses: int) -> np.ndarray:
        """A boolean mask over the first `n_addresses` address ids: in one of `cluster_ids`."""
        wanted = np.unique(np.asarray(cluster_ids, np.int64))
        mask = np.zeros(n_addresses, bool)
        if wanted.shape[0] == 0 or n_addresses == 0:
            return mask
        covered = 0 if self.array is None else min(self.array.shape[0], n_addresses)
        chunk = 1 << 24
        flag = np.zeros(n_addresses, bool)
        flag[wanted[(wanted >= 0) & (wanted < n_addresses)]] = True
        for lo in range(0, covered, chunk):
            hi = min(lo + chunk, covered)
            assert self.array is not None
            part = np.asarray(self.array[lo:hi])  # a LayeredIds slice reads base + layers
            ok = (part >= 0) & (part < n_addresses)
            hit = np.zeros(hi - lo, bool)
            hit[ok] = flag[part[ok]]
            mask[lo:hi] = hit
        # addresses the clustering has not seen yet are their own clusters
        mask[covered:] = flag[covered:]
        return mask

    def sizes(self, cluster_ids: np.ndarray, n_addresses: int) -> np.ndarray:
        """Number of addresses in each of `cluster_ids` (same order)."""
        ids = np.asarray(cluster_ids, np.int64)
        if self.array is None or ids.shape[0] == 0:
            return np.ones(ids.shape[0], np.int64)
        mask = self.members(ids, n_addresses)
        member_ids = np.flatnonzero(mask)
        labels = self.cluster_of(member_ids)
        uniq, counts = np.unique(labels, return_counts=True)
        pos = np.searchsorted(uniq, ids)
        pos = np.clip(pos, 0, max(uniq.shape[0] - 1, 0))
        found = uniq.shape[0] > 0
        out = np.ones(ids.shape[0], np.int64)
        if found:
            match = uniq[pos] == ids
            out[match] = counts[pos[match]]
        return out


def _manifest(data_dir: Path) -> dict[str, Any] | None:
    try:
        manifest: dict[str, Any] = json.loads((Path(data_dir) / CLUSTER_MANIFEST).read_text())
        return manifest
    except (OSError, ValueError):
        return None


def clusters_generation(data_dir: Path) -> int | None:
    """The clustering generation, or None when no clustering has been published."""
    manifest = _manifest(data_dir)
    layered = manifest is not None and "layers" in manifest
    if not layered and not (Path(data_dir) / CLUSTER_ARRAY).exists():
        return None
    try:
        return int((manifest or {}).get("generation", 0))
    except (ValueError, TypeError):
        return 0  # an array without a readable manifest: still use it


def load_clusters(data_dir: Path) -> ClusterMap:
    """The published clustering (memory-mapped base + delta layers), or singletons."""
    manifest = _manifest(data_dir)  # read once: the layers it names are one clustering
    ids = open_cluster_ids(Path(data_dir), manifest or {})
    if ids is None:
        return ClusterMap(None, None)
    generation = int((manifest or {}).get("generation", 0))
    return ClusterMap(ids, generation)
