"""The published clustering as one base plus delta layers: the one place readers resolve it.

`chainsleuth cluster` at the tip publishes only what changed (docs/design/clustering.md,
"Publishing: a base and delta layers"). `DATA/clusters/manifest.json` names, under `layers`:

    base     address_cluster-gNNNNNN.npy   int64 cluster id per address id [0, base addresses)
             cluster_map-gNNNNNN.parquet   the `clusters` view's rows at the base
             state/*-gNNNNNN.bin           the clusterer's union-find (its own, not for readers)
    deltas   layers/gNNNNNN/               oldest first: ids.npy (sorted address ids), cluster.npy
                                           (their cluster ids then), the state columns, map.parquet

A value is the newest layer's that holds the address id, else the base's; an address id beyond
both is its own cluster. Every file is written under a new generation's name before the
manifest that names them replaces the old one (one rename), so a reader that reads the manifest
once and opens what it names sees one consistent clustering. A manifest without `layers` (an
older clustering, or a hand-made one in tests) is a base `address_cluster.npy` alone.

Example::

    ids = open_cluster_ids(Path("chainsleuth-data"))
    ids.lookup(np.array([0, 5]))        # cluster id of address ids 0 and 5
    np.asarray(ids)                      # the whole array (8 B per address), base + deltas
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LayeredIds",
    "LayerRecord",
    "layer_dirs",
    "merge_records",
    "open_cluster_ids",
    "open_state_column",
    "read_clusters_manifest",
    "write_layer",
]

MANIFEST = "manifest.json"
#: Addresses whose layer bits are worked out at once (a multiple of 8).
LAYER_BITS_SLICE = 1 << 23
#: Ids looked up at once by `LayeredIds.lookup` (a larger ask goes this many at a time).
LOOKUP_CHUNK = 1 << 18
#: `LayeredIds.lookup` builds its layer bits (a pass over n address ids) only for at least
#: n / SEARCH_PER_BIT ids; fewer are binary-searched in every layer (same result).
SEARCH_PER_BIT = 256
LEGACY_BASE = "address_cluster.npy"
#: the state columns a delta layer holds besides `ids` and `cluster` (dtype each)
STATE_COLUMNS = {
    "parent": np.uint32,
    "size": np.uint32,
    "attribution": np.int32,
    "batch_spent": np.bool_,
    "next": np.uint32,
}


def read_clusters_manifest(data_dir: Path) -> dict[str, Any] | None:
    """`DATA/clusters/manifest.json`, or None when nothing is published."""
    path = Path(data_dir) / "clusters" / MANIFEST
    if not path.exists():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


class LayeredIds:
    """Cluster id per address id: a memory-mapped base array and sorted delta layers.

    Behaves like the int64 array it stands for where readers need it: `len`, `shape`,
    `ids[i]` (an int, a slice or an int array), and `np.asarray(ids)` (the whole array, O(n)).
    Lookups of k ids cost one base read and one bit test each (`_layer_bits`: does a layer
    hold the id?), plus one binary search per layer for the ids a layer holds; never the
    whole array. `indexable()` is what a reader that indexes the ids should hold.
    """

    def __init__(
        self, base: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], n: int
    ) -> None:
        self.base = base
        self.layers = layers
        self.n = int(n)

    @property
    def shape(self) -> tuple[int]:
        return (self.n,)

    def __len__(self) -> int:
        return self.n

    def lookup(self, address_ids: np.ndarray) -> np.ndarray:
        """Cluster ids (int64) of `address_ids`; an id beyond the clustering is its own."""
        ids = np.asarray(address_ids, np.int64)
        # never the whole array (8 B per address), however many ids are asked for: the ids
        # some layer holds are found through one bit per address, the rest read the base
        if ids.shape[0] > LOOKUP_CHUNK:  # bounded temporaries (≈ 40 B per id looked up)
            out = np.empty_like(ids)
            for lo in range(0, ids.shape[0], LOOKUP_CHUNK):
                out[lo : lo + LOOKUP_CHUNK] = self.lookup(ids[lo : lo + LOOKUP_CHUNK])
            return out
        out = ids.copy()
        n_base = self.base.shape[0]
        inside = (ids >= 0) & (ids < n_base)
        out[inside] = self.base[ids[inside]]
        if not any(layer_ids.shape[0] for layer_ids, _ in self.layers):
            return out
        near = np.flatnonzero((ids >= 0) & (ids < self.n))
        if "_bits" in self.__dict__ or near.shape[0] * SEARCH_PER_BIT >= self.n:
            # only the ids some layer holds are searched for (a binary search per id and layer
            # cost more than the rest of the lookup): one bit per address tells which
            bits = self._layer_bits()
            held = (bits[ids[near] >> 3] >> (ids[near] & 7).astype(np.uint8)) & 1
            where = near[held.astype(np.bool_)]
        else:
            # a few ids (a run at the tip): searching the layers for each costs less than the
            # bits, which are a pass over every address id (O(the addresses) per run)
            where = near
        wanted = ids[where]
        for layer_ids, values in self.layers:  # oldest first: a newer layer overwrites
            if layer_ids.shape[0] == 0:
                continue
            pos = np.searchsorted(layer_ids, wanted)
            pos_ok = np.minimum(pos, layer_ids.shape[0] - 1)
            hit = (pos < layer_ids.shape[0]) & (layer_ids[pos_ok] == wanted)
            out[where[hit]] = values[pos_ok[hit]]
        return out

    def _layer_bits(self) -> np.ndarray:
        """One bit per address id (little-endian within a byte): does any layer hold it?
        n / 8 bytes (175 MB at mainnet), built once, LAYER_BITS_SLICE addresses at a time."""
        bits = self.__dict__.get("_bits")
        if bits is None:
            bits = np.zeros((self.n + 7) // 8, np.uint8)
            for lo in range(0, self.n, LAYER_BITS_SLICE):
                hi = min(self.n, lo + LAYER_BITS_SLICE)
                held = np.zeros(hi - lo, np.bool_)
                for layer_ids, _ in self.layers:
                    a, b = np.searchsorted(layer_ids, [lo, hi])
                    held[np.asarray(layer_ids[a:b], np.int64) - lo] = True
                packed = np.packbits(held, bitorder="little")
                bits[lo // 8 : lo // 8 + packed.shape[0]] = packed
            self.__dict__["_bits"] = bits
        return bits

    def range(self, lo: int, hi: int) -> np.ndarray:
        """The cluster ids of address ids [lo, hi): a base slice and the layers' entries in it."""
        lo, hi = max(0, int(lo)), min(self.n, int(hi))
        out = np.arange(lo, max(lo, hi), dtype=np.int64)
        covered = min(self.base.shape[0], hi)
        if covered > lo:
            out[: covered - lo] = self.base[lo:covered]
        for layer_ids, values in self.layers:
            a, b = np.searchsorted(layer_ids, [lo, hi])
            out[np.asarray(layer_ids[a:b], np.int64) - lo] = values[a:b]
        return out

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.n)
            if step == 1:
                return self.range(start, stop)
            return self.lookup(np.arange(self.n, dtype=np.int64)[key])
        if np.ndim(key) == 0:
            index = int(key)
            if index < 0:
                index += self.n
            if not 0 <= index < self.n:
                raise IndexError(f"address id {int(key)} beyond the clustering ({self.n})")
            return np.int64(self.lookup(np.array([index]))[0])
        return self.lookup(np.asarray(key))

    def materialize(self) -> np.ndarray:
        """The whole array (int64, one entry per address id)."""
        return self.range(0, self.n)

    def array(self) -> np.ndarray:
        """The whole array as cheaply as it can be had: the memory-mapped base itself when no
        layer changes it and it covers every address (0 B in memory), else `materialize()`
        (8 B per address)."""
        if not any(ids.shape[0] for ids, _ in self.layers) and self.base.shape[0] == self.n:
            return self.base
        return self.materialize()

    def indexable(self) -> np.ndarray | LayeredIds:
        """What a reader indexes for cluster ids without materialising them: the memory-mapped
        base itself when no layer changes it and it covers every address (0 B in memory), else
        this object (each index reads the base there and binary-searches the layers)."""
        if not any(ids.shape[0] for ids, _ in self.layers) and self.base.shape[0] == self.n:
            return self.base
        return self

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.materialize()
        return out if dtype is None else out.astype(dtype)

    def members(self, cluster_id: int) -> np.ndarray:
        """Address ids whose cluster is `cluster_id` (one pass over the array)."""
        return np.flatnonzero(self.materialize() == int(cluster_id))


def layer_dirs(manifest: dict[str, Any]) -> list[str]:
    """The delta layers' folders (relative to clusters/), oldest first."""
    return [d["dir"] for d in (manifest.get("layers") or {}).get("deltas", [])]


def open_cluster_ids(data_dir: Path, manifest: dict[str, Any] | None = None) -> LayeredIds | None:
    """The published cluster ids (None when nothing is published); reads the manifest once."""
    cdir = Path(data_dir) / "clusters"
    if manifest is None:
        manifest = read_clusters_manifest(data_dir)
    layers_spec = (manifest or {}).get("layers")
    if layers_spec is None:
        legacy = cdir / LEGACY_BASE
        if not legacy.exists():
            return None
        base = _map(legacy)
        return LayeredIds(base, [], base.shape[0])
    base = _map(cdir / layers_spec["base"]["cluster_of"])
    layers = [
        (_map(cdir / d / "ids.npy"), _map(cdir / d / "cluster.npy"))
        for d in layer_dirs(manifest or {})
    ]
    return LayeredIds(base, layers, int(layers_spec["addresses"]))


def open_state_column(data_dir: Path, manifest: dict[str, Any], name: str) -> LayeredIds | None:
    """A published state column (`STATE_COLUMNS`, e.g. "next", the circular member lists) as
    base + delta layers, memory-mapped like the cluster ids; None when the clustering has no
    such base file (a legacy or hand-made one). The base's state file is rewritten in place by
    later runs (`publish._apply_state`): a reader checks what it reads against the cluster ids."""
    spec = manifest.get("layers")
    if spec is None or name not in spec["base"].get("state", {}):
        return None
    cdir = Path(data_dir) / "clusters"
    n = int(spec["addresses"])
    capacity = int(spec["base"]["capacity"])
    base = np.memmap(
        cdir / spec["base"]["state"][name], STATE_COLUMNS[name], "r", shape=(capacity,)
    )
    layers = [
        (_map(cdir / d / "ids.npy"), _map(cdir / d / f"{name}.npy")) for d in layer_dirs(manifest)
    ]
    return LayeredIds(np.asarray(base)[:n], layers, n)


def _map(path: Path) -> np.ndarray:
    """A read-only memory map of an .npy file (an empty file cannot be mapped: loaded)."""
    array = np.load(path, mmap_mode="r")
    return np.asarray(array)


# ------------------------------------------------------------------------------ writing
class LayerRecord:
    """One delta layer in memory: sorted address ids, their cluster id and state, the view rows."""

    def __init__(self, ids: np.ndarray, columns: dict[str, np.ndarray], table: Any) -> None:
        self.ids = ids
        self.columns = columns  # "cluster" and the STATE_COLUMNS, aligned with ids
        self.table = table  # pyarrow table: address_id (aligned with ids), address, ...

    @property
    def rows(self) -> int:
        return int(self.ids.shape[0])


def read_layer(folder: Path) -> LayerRecord:
    import pyarrow.parquet as pq

    ids = np.load(folder / "ids.npy")
    columns = {k: np.load(folder / f"{k}.npy") for k in ("cluster", *STATE_COLUMNS)}
    return LayerRecord(ids, columns, pq.read_table(folder / "map.parquet"))


def merge_records(older: LayerRecord, newer: LayerRecord) -> LayerRecord:
    """One layer equal to `newer` on top of `older` (newer values win)."""
    both = np.concatenate((newer.ids, older.ids))
    ids, first = np.unique(both, return_index=True)  # first occurrence: the newer one
    columns = {
        k: np.concatenate((newer.columns[k], older.columns[k]))[first] for k in newer.columns
    }
    import pyarrow as pa

    table = pa.concat_tables([newer.table, older.table.cast(newer.table.schema)]).take(first)
    return LayerRecord(ids, columns, table)


def write_layer(folder: Path, record: LayerRecord) -> None:
    """Write a layer's folder atomically: into a temporary folder, synced, then renamed."""
    import pyarrow.parquet as pq

    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        for f in tmp.iterdir():
            f.unlink()
    tmp.mkdir(parents=True, exist_ok=True)
    np.save(tmp / "ids.npy", record.ids)
    for k, v in record.columns.items():
        np.save(tmp / f"{k}.npy", v)
    pq.write_table(record.table, tmp / "map.parquet", compression="zstd")
    for f in tmp.iterdir():
        with open(f, "rb") as handle:
            os.fsync(handle.fileno())
    os.replace(tmp, folder)
    fd = os.open(folder.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
