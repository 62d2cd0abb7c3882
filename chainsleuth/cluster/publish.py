"""Load the clusterer's saved state and publish a run: a new base, or one delta layer.

A run at the tip touches few addresses, so it publishes only those (docs/design/clustering.md,
"Publishing: a base and delta layers"): the members of every cluster that lost its id to a
merge, the new addresses, the roots whose size changed, the addresses of the merges and the
inputs whose batch-spender flag may have changed. Readers see them through
`chainsleuth.cluster.layers`. The members of a cluster are found without scanning every address:
the state keeps `next`, a circular list through each cluster's members (4 B/address), spliced
at every union of a resumed run; from scratch it is built from the cluster ids when the base is
written (`member_lists`), not held during the run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numba import njit

from chainsleuth.cluster import kernels
from chainsleuth.cluster.layers import (
    STATE_COLUMNS,
    LayerRecord,
    merge_records,
    open_cluster_ids,
    read_layer,
    write_layer,
)
from chainsleuth.cluster.ranges import flatten_parallel
from chainsleuth.core.files import atomic_write_bytes
from chainsleuth.core.heap import trim_heap
from chainsleuth.core.pages import advise, prefetch_rows
from chainsleuth.parse.address_kernels import encode_key_rows

#: Compact (rewrite the base) once the delta layers hold more than this share of the addresses
#: (or more rows than COMPACT_MIN_ROWS, whichever is larger). A compaction rewrites O(addresses),
#: so at 1/16 each address changed since the base costs 16 base entries rewritten: amortised O(1).
COMPACT_FRACTION = 16
COMPACT_MIN_ROWS = 1 << 16

#: The `clusters` view over a base and delta layers: the newest row of each address wins; a
#: cluster's size is its root's newest row (every size change rewrites the root's row).
CLUSTERS_SQL = (
    "WITH d AS (SELECT address_id, address, cluster_id, cluster_size FROM cluster_map_delta "
    "QUALIFY row_number() OVER (PARTITION BY address_id ORDER BY generation DESC) = 1), "
    "cur AS (SELECT b.address_id, b.address, b.cluster_id, b.cluster_size FROM cluster_map_base b "
    "ANTI JOIN d ON d.address_id = b.address_id UNION ALL SELECT * FROM d) "
    "SELECT cur.address_id, cur.address, cur.cluster_id, "
    "COALESCE(r.cluster_size, cur.cluster_size) AS cluster_size "
    "FROM cur LEFT JOIN d r ON r.address_id = cur.cluster_id"
)


@njit(cache=True, nogil=True)
def flatten(parent, out):
    """Cluster id (root) of every address, compressing every path to one step.

    Unions link the larger root id under the smaller and path halving only moves a pointer to
    an ancestor, so a parent's id is never above its child's: in ascending order the parent's
    root is already in `out`, and one pass with one read of `out` per address does it. (A
    parent above its child, which the clusterer never makes, is followed to its root.)
    """
    kernels.flatten_range(parent, out, 0, parent.shape[0])


@njit(cache=True, nogil=True)
def _roots_of(parent, ids, out):
    for i in range(ids.shape[0]):
        out[i] = kernels.find(parent, ids[i])


@njit(cache=True, nogil=True)
def _replay(node_a, node_b, orig):
    """Final cluster id of each pre-run cluster (compact node, sorted by id) after the unions."""
    k = orig.shape[0]
    up = np.arange(k)
    for i in range(node_a.shape[0]):
        ra = node_a[i]
        while up[ra] != ra:
            ra = up[ra]
        rb = node_b[i]
        while up[rb] != rb:
            rb = up[rb]
        if ra != rb:  # union by smallest id, as the engine does
            if ra < rb:
                up[rb] = ra
            else:
                up[ra] = rb
    final = np.empty(k, np.int64)
    for j in range(k):
        r = j
        while up[r] != r:
            r = up[r]
        final[j] = orig[r]
    return final


@njit(cache=True, nogil=True)
def _walk_cycles(next_, starts):
    """Every member of the clusters whose circular lists start at `starts`."""
    out = np.empty(max(16, 2 * starts.shape[0]), np.int64)
    n = 0
    for j in range(starts.shape[0]):
        x = np.int64(starts[j])
        while True:
            if n == out.shape[0]:
                out = np.concatenate((out, np.empty(out.shape[0], np.int64)))
            out[n] = x
            n += 1
            x = np.int64(next_[x])
            if x == starts[j]:
                break
    return out[:n]


@njit(cache=True, nogil=True)
def _fill_ids(a, lo):
    """a[i] = lo + i, without a temporary array of the ids (4 B per address at the peak)."""
    for i in range(a.shape[0]):
        a[i] = lo + i


@njit(cache=True, nogil=True)
def member_lists(cluster_of, next_):
    """The circular member lists from the cluster ids: root, its members ascending, root.

    A root is its cluster's smallest id, so going down the ids each member is put right after
    its root and the root comes last. `next_` must start zeroed (a fresh file): next_[r] > r
    says root r already has a member after it.
    """
    for x in range(cluster_of.shape[0] - 1, -1, -1):
        r = cluster_of[x]
        if x == r:
            if np.int64(next_[r]) <= r:
                next_[r] = np.uint32(r)
        else:
            head = np.int64(next_[r])
            next_[x] = np.uint32(head if head > r else r)
            next_[r] = np.uint32(x)


@njit(cache=True, nogil=True)
def splice(next_, a, b):
    """Join the circular member lists of a and b (in different clusters) for each union."""
    for i in range(a.shape[0]):
        x = a[i]
        y = b[i]
        t = next_[x]
        next_[x] = next_[y]
        next_[y] = t


@dataclass
class State:
    """The clusterer's union-find over address ids [0, n): what a run updates in place."""

    parent: np.ndarray
    size: np.ndarray
    attribution: np.ndarray
    batch_spent: np.ndarray
    #: None from scratch: the member lists are built from the cluster ids when the base is
    #: written (`member_lists`, straight into the mapped file), not held during the run.
    next: np.ndarray | None
    have: int  # addresses covered by the saved state (0 from scratch)
    fits: bool  # the base's files have room for every address (no compaction needed for room)

    def column(self, name: str) -> np.ndarray:
        value: np.ndarray | None = getattr(self, name)
        if value is None:
            raise ValueError(f"state column {name} is built when the base is written")
        return value


def load_state(
    cdir: Path,
    manifest: dict[str, Any] | None,
    n_addr: int,
    attribution: np.ndarray | None,
) -> State:
    """The saved union-find extended to `n_addr` addresses (None manifest: singletons).

    The base files are mapped copy-on-write (`mmap` private): a run reads the pages it
    touches and changes nothing on disk. A published run writes its changed entries into the
    base files in place afterwards (`_apply_state`); a layer still listed as `state_pending`
    (a crash during that write) is applied again here, which is idempotent (absolute values).
    """
    have, fits = 0, False
    columns: dict[str, np.ndarray] = {}
    if manifest is not None:
        base = manifest["layers"]["base"]
        have, capacity = int(manifest["layers"]["addresses"]), int(base["capacity"])
        # A layer a crashed run published but did not finish writing into the base: redo.
        for folder in manifest["layers"].get("state_pending", []):
            _apply_state(cdir, base, read_layer(cdir / folder))
        for name, dtype in STATE_COLUMNS.items():
            mapped = np.memmap(cdir / base["state"][name], dtype, mode="c", shape=(capacity,))
            # read-around off before the first fault (the fills below): the run reads the rows
            # it needs (engine.prefetch_tip asks for their pages), not 8 MB around each
            advise(mapped, mmap.MADV_RANDOM)
            columns[name] = np.asarray(mapped)
        fits = n_addr <= capacity
        if not fits:  # grow: the next publish is a compaction, which makes room again
            for name, dtype in STATE_COLUMNS.items():
                grown: np.ndarray = np.empty(n_addr, dtype)
                grown[:have] = columns[name][:have]
                columns[name] = grown
    else:  # from scratch: no member lists during the run (built when the base is written)
        for name, dtype in STATE_COLUMNS.items():
            if name != "next":
                columns[name] = np.empty(n_addr, _run_dtype(name, dtype, attribution, n_addr))
    part = {k: v[:n_addr] for k, v in columns.items()}
    state = State(
        parent=part["parent"],
        size=part["size"],
        attribution=part["attribution"],
        batch_spent=part["batch_spent"],
        next=part.get("next"),
        have=have,
        fits=fits,
    )
    _fill_ids(state.parent[have:], have)
    state.size[have:] = 1
    state.batch_spent[have:] = False
    if state.next is not None:
        _fill_ids(state.next[have:], have)
    state.attribution[have:] = -1 if attribution is None else attribution[have:n_addr]
    return state


#: Actor codes below this fit the run's narrow attribution column (int16; -1 none, -2 several).
NARROW_ACTORS = 1 << 15


def _run_dtype(name: str, dtype: Any, attribution: np.ndarray | None, n_addr: int) -> Any:
    """The in-memory dtype of a state column in a run from scratch.

    The attribution is an actor code per address: int16 while the codes fit (2 B per address
    less; the kernels read and write any integer dtype), else the files' int32. The base's
    files keep int32 (`_write_base` widens a slice at a time), so a run at the tip, which maps
    them, reads the same values."""
    if name != "attribution" or attribution is None:
        return np.int16 if name == "attribution" else dtype
    part = attribution[:n_addr]
    if part.shape[0] == 0 or -NARROW_ACTORS <= int(part.min()) <= int(part.max()) < NARROW_ACTORS:
        return np.int16
    return dtype


@dataclass
class RunOutput:
    """What clustering the new transactions produced, for publishing."""

    merge_a: np.ndarray  # every union of the run, in order (address ids); empty from scratch
    merge_b: np.ndarray
    tables: dict[str, list[EvidenceFile]]  # merges, coinjoins, quarantine rows (EvidenceWriter)
    input_addresses: np.ndarray  # addresses the run's inputs spent from (batch-spender flags)
    spliced: bool = False  # the unions were not kept (from scratch: `next` built at publish)


#: Rows per row group of the evidence files (merges, coinjoins, quarantine). `cluster-of` reads
#: the footer of each file its txs fall in and the row groups holding its txs
#: (`Clusters.merges_in_txs`), so both count: the footer holds ≈ 600 B per group (statistics
#: kept for `tx_id` only, the one column read by range), a merges group ≈ 24 kB. While each
#: table was one file the footer grew with the chain (2^15-row groups: a 385 kB footer at 20 M
#: txs, ≈ 37 MB at mainnet), so groups could not be small; with bounded files (below) they can.
#: Measured on the 2.27 M-tx hard world (`bench.page_touch cluster`, 40 cold lookups, p50 /
#: max pages of the store): one file of 2^15-row groups 237 / 592; files of 2^20 rows 254 /
#: 443 (20 lookups); 2^12-row groups in files of 2^19 rows 89.5 / 203, of 2^18 rows 91 / 215.
#: The merges' bytes do not grow (30.7 MB against 31.8 MB).
EVIDENCE_ROW_GROUP_ROWS = 1 << 12

#: Rows per evidence file: 128 row groups, a ≈ 77 kB footer whatever the chain's length. The
#: manifest's `evidence_ranges` (name → first tx id, last tx id, rows) lets a reader open only
#: the files whose tx range holds what it wants. At mainnet (≈ 2 G merges): ≈ 3,800 merges
#: files, ≈ 60 B each in the manifest (≈ 230 kB).
EVIDENCE_FILE_ROWS = 1 << 19


def evidence_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A parquet writer for an evidence file: zstd, statistics on `tx_id` only (see above)."""
    stats = [n for n in ("tx_id",) if n in schema.names]
    return pq.ParquetWriter(path, schema, compression="zstd", write_statistics=stats or False)


@dataclass
class EvidenceFile:
    """One written evidence file: its path, its rows, and the range of its `tx_id` column
    (first and last; -1, -1 for a table without one or no rows)."""

    path: Path
    rows: int = 0
    tx_lo: int = -1
    tx_hi: int = -1

    def note(self, table: pa.Table) -> None:
        """Count `table`'s rows, written to this file, into its rows and tx range."""
        self.rows += table.num_rows
        if table.num_rows and "tx_id" in table.schema.names:
            ids = table.column("tx_id").to_numpy()
            lo, hi = int(ids.min()), int(ids.max())
            self.tx_lo = lo if self.tx_lo < 0 else min(self.tx_lo, lo)
            self.tx_hi = max(self.tx_hi, hi)

    def range_entry(self) -> list[int]:
        """The manifest's `evidence_ranges` entry: [first tx id, last tx id, rows]."""
        return [self.tx_lo, self.tx_hi, self.rows]


class BoundedWriter:
    """Parquet evidence files of one table, a new file every `EVIDENCE_FILE_ROWS` rows: the
    files are `stem.suffix`, `stem-p0001.suffix`, ... (`name(i)`)."""

    def __init__(self, folder: Path, stem: str, suffix: str) -> None:
        self.folder, self.stem, self.suffix = folder, stem, suffix
        self.files: list[EvidenceFile] = []
        self.writer: pq.ParquetWriter | None = None

    def name(self, index: int) -> str:
        return f"{self.stem}{f'-p{index:04d}' if index else ''}{self.suffix}"

    def write(self, table: pa.Table) -> None:
        """Append `table`'s rows, starting a new file where the current one is full (an empty
        table still opens the first file, so an empty table keeps its schema)."""
        if self.writer is None:
            self._open(table.schema)
        start = 0
        while start < table.num_rows:
            if self.files[-1].rows >= EVIDENCE_FILE_ROWS:
                self._open(table.schema)
            assert self.writer is not None
            take = min(table.num_rows - start, EVIDENCE_FILE_ROWS - self.files[-1].rows)
            part = table.slice(start, take)
            self.writer.write_table(part.cast(self.writer.schema), EVIDENCE_ROW_GROUP_ROWS)
            self.files[-1].note(part)
            start += take

    def _open(self, schema: pa.Schema) -> None:
        if self.writer is not None:
            self.writer.close()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / self.name(len(self.files))
        self.writer = evidence_writer(path, schema)
        self.files.append(EvidenceFile(path))

    def close(self) -> list[EvidenceFile]:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        return self.files


class EvidenceWriter:
    """The run's evidence rows (merges, coinjoins, quarantine), written to parquet a range at
    a time, so a run from scratch holds one range's rows, not the chain's (a merge row is
    ~150 B: at mainnet's ~2 G unions that would be ~300 GB). Written as
    `KEY-gGENERATION[-pPART].run.parquet`, `EVIDENCE_FILE_ROWS` rows a file at most; `publish`
    renames or compacts them, and a crashed run's files are removed as unreferenced by the
    next publish."""

    def __init__(self, cdir: Path, generation: int) -> None:
        self.cdir = cdir
        self.generation = generation
        self.writers: dict[str, BoundedWriter] = {}

    def add(self, key: str, table: pa.Table) -> None:
        writer = self.writers.get(key)
        if writer is None:
            writer = BoundedWriter(self.cdir, f"{key}-g{self.generation:06d}", ".run.parquet")
            self.writers[key] = writer
        writer.write(table)

    def close(self) -> dict[str, list[EvidenceFile]]:
        """Finish the files; returns the files of each key that got rows, in order."""
        return {key: writer.close() for key, writer in self.writers.items()}


@dataclass
class Published:
    manifest: dict[str, Any]
    kind: str  # "base" or "delta"
    bytes_written: int


def publish(
    cdir: Path,
    data_dir: Path,
    old: dict[str, Any] | None,
    state: State,
    run: RunOutput,
    head: dict[str, Any],
    address_key: np.ndarray,
    network_code: int,
    compact_rows: int | None = None,
    on_disk: dict[str, Any] | None = None,
) -> Published:
    """Write this run's files and swap the manifest (the one commit point), then clean up.

    `old` is the manifest the run resumed from (None: from scratch); `head` the new manifest's
    scalar fields (generation, policy, store epoch, txs, ...); `on_disk` the manifest found
    (kept readable one more generation). Publishes a delta layer when resuming and the layers
    stay under the compaction threshold, else a new base.
    """
    n_addr = state.parent.shape[0]
    generation = int(head["generation"])
    cdir.mkdir(parents=True, exist_ok=True)
    written = 0
    record = run_rows = None
    if old is not None:
        record = _delta_record(data_dir, old, state, run, address_key, network_code, generation)
        limit = compact_rows
        if limit is None:
            limit = max(n_addr // COMPACT_FRACTION, COMPACT_MIN_ROWS)
        pending = sum(int(d["rows"]) for d in old["layers"]["deltas"]) + record.rows
        if not state.fits or pending > limit:  # compact_rows < 0: always a new base
            record = None
    elif state.next is not None and not run.spliced:
        splice(state.next, run.merge_a, run.merge_b)
    files = {k: list(v) for k, v in ((old or {}).get("files") or _no_files()).items()}
    ranges: dict[str, list[int]] = dict((old or {}).get("evidence_ranges") or {})
    if record is not None:
        assert old is not None
        deltas = list(old["layers"]["deltas"])
        run_rows = record  # this run's own rows: the only state entries to write in place
        if record.rows:  # nothing new: no layer, only the manifest
            # Merge with the newest layer while this one is at least as big (a binary counter):
            # at most log2(runs) layers, each row rewritten about log2(runs) / 2 times.
            while deltas and record.rows >= int(deltas[-1]["rows"]):
                record = merge_records(read_layer(cdir / deltas.pop()["dir"]), record)
            folder = f"layers/g{generation:06d}"
            _clear(cdir / folder)
            write_layer(cdir / folder, record)
            written += _size(cdir / folder)
            deltas.append({"dir": folder, "rows": record.rows, "generation": generation})
        layers = {"addresses": n_addr, "base": old["layers"]["base"], "deltas": deltas}
        for key, parts in run.tables.items():
            for part in parts:
                name = part.path.name.replace(".run.parquet", ".parquet")
                os.replace(part.path, cdir / name)
                written += (cdir / name).stat().st_size
                files[key].append(name)
                ranges[name] = part.range_entry()
        touched = state.size[record.columns["cluster"]]
        largest = max(int(old["largest_cluster"]), int(touched.max(initial=0)))
        n_clusters = int(old["clusters"]) + (n_addr - state.have) - int(run.merge_a.shape[0])
        kind = "delta"
    else:
        base, n_clusters, largest, written_base = _write_base(
            cdir, state, address_key, network_code, generation
        )
        written += written_base
        layers = {"addresses": n_addr, "base": base, "deltas": []}
        for key in list(files):
            # A compaction also gathers each table's small evidence files (the delta runs'
            # own) into files of up to EVIDENCE_FILE_ROWS rows; full files are kept as they are.
            kept, rewrite = _split_full(files[key], ranges)
            older = [cdir / f for f in rewrite]
            files[key] = kept
            for part in _gather(older, run.tables.get(key, []), cdir, f"{key}-g{generation:06d}"):
                written += part.path.stat().st_size
                files[key].append(part.path.name)
                ranges[part.path.name] = part.range_entry()
        kind = "base"
    listed = {name for names in files.values() for name in names}
    manifest = dict(
        head,
        clusters=n_clusters,
        largest_cluster=largest,
        files=files,
        evidence_ranges={n: r for n, r in ranges.items() if n in listed},
        layers=layers,
        views=_views(layers, files),
    )
    if kind == "delta" and run_rows is not None and run_rows.rows:
        # Commit with the layer as a redo log of the state, then write the state in place.
        committing = dict(manifest, layers=dict(layers, state_pending=[deltas[-1]["dir"]]))
        text = json.dumps(committing, indent=1).encode()
        atomic_write_bytes(cdir / "manifest.json", text)
        written += len(text) + _apply_state(cdir, layers["base"], run_rows)
    text = json.dumps(manifest, indent=1).encode()
    atomic_write_bytes(cdir / "manifest.json", text)
    written += len(text)
    _remove_unreferenced(cdir, manifest, on_disk if on_disk is not None else old)
    return Published(manifest, kind, written)


@contextlib.contextmanager
def writer_lock(cdir: Path) -> Iterator[None]:
    """Hold the clustering's writer lock (`clusters/.lock`); readers never take it."""
    cdir.mkdir(parents=True, exist_ok=True)
    with open(cdir / ".lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _apply_state(cdir: Path, base: dict[str, Any], record: LayerRecord) -> int:
    """Write a run's changed state entries into the base files in place; returns bytes.

    Each entry dirties its page: up to 4 KiB of write-back per scattered entry and column.
    """
    capacity, written = int(base["capacity"]), 0
    for name, dtype in STATE_COLUMNS.items():
        mapped = np.memmap(cdir / base["state"][name], dtype, mode="r+", shape=(capacity,))
        mapped[record.ids] = record.columns[name]
        mapped.flush()
        del mapped
        written += record.rows * np.dtype(dtype).itemsize
    return written


def _split_full(names: list[str], ranges: dict[str, list[int]]) -> tuple[list[str], list[str]]:
    """A table's evidence files split into the leading ones a compaction keeps (each at least
    half of EVIDENCE_FILE_ROWS, by the manifest's `evidence_ranges`) and the rest, which it
    rewrites. Only a prefix is kept, so the files stay in merge order; a file the manifest has
    no range for (a store clustered before bounded files) is rewritten, and so is what follows."""
    keep = 0
    while keep < len(names):
        entry = ranges.get(names[keep])
        if entry is None or int(entry[2]) < EVIDENCE_FILE_ROWS // 2:
            break
        keep += 1
    return names[:keep], names[keep:]


def _gather(
    older: list[Path], run: list[EvidenceFile], cdir: Path, stem: str
) -> list[EvidenceFile]:
    """Write the rows of the `older` files, then the run's, in order, into files
    `stem[-pN].parquet` of up to EVIDENCE_FILE_ROWS rows each, a row group at a time (memory:
    one row group); returns them. With no older file the run's own files (bounded already)
    are renamed, not rewritten; the run's `.run.parquet` files are removed."""
    namer = BoundedWriter(cdir, stem, ".parquet")
    if not older:
        out = []
        for index, part in enumerate(run):
            target = cdir / namer.name(index)
            os.replace(part.path, target)
            out.append(EvidenceFile(target, part.rows, part.tx_lo, part.tx_hi))
        return out
    try:
        for path in [*older, *(part.path for part in run)]:
            source = pq.ParquetFile(path)
            if source.num_row_groups == 0:
                namer.write(source.schema_arrow.empty_table())  # keeps the schema
            for i in range(source.num_row_groups):
                namer.write(source.read_row_group(i))
    finally:
        written = namer.close()
    for part in run:
        part.path.unlink()
    return written


def _no_files() -> dict[str, list[str]]:
    return {"merges": [], "coinjoins": [], "quarantine": []}


def _delta_record(
    data_dir: Path,
    old: dict[str, Any],
    state: State,
    run: RunOutput,
    address_key: np.ndarray,
    network_code: int,
    generation: int,
) -> LayerRecord:
    """The addresses this run changed, with their cluster ids, state and view rows.

    Splices the member lists (`state.next`) as a side effect.
    """
    have, n_addr = state.have, state.parent.shape[0]
    ma, mb = run.merge_a, run.merge_b
    previous = open_cluster_ids(data_dir, old)
    assert previous is not None
    both = np.concatenate((ma, mb))
    before = both.copy()  # each address's cluster before the run (a new address: itself)
    old_side = both < have
    prefetch_rows(previous.base, both[old_side])  # its exact pages, not read-around (engine)
    before[old_side] = previous.lookup(both[old_side])
    nodes, inverse = np.unique(before, return_inverse=True)
    final = _replay(inverse[: ma.shape[0]], inverse[ma.shape[0] :], nodes)
    # Members of the clusters that lost their id, from the lists before splicing.
    assert state.next is not None  # a resumed run maps the base's lists
    members = _walk_cycles(state.next, nodes[final != nodes])
    splice(state.next, ma, mb)
    ids = np.unique(
        np.concatenate(
            (
                members,
                np.arange(have, n_addr, dtype=np.int64),
                nodes,
                both,
                run.input_addresses.astype(np.int64),
            )
        )
    )
    old_ids = ids[ids < have]
    for column in (address_key, *(state.column(name) for name in STATE_COLUMNS)):
        prefetch_rows(column, old_ids)  # the rows read below, their pages only (engine)
    roots = np.empty(ids.shape[0], np.int64)
    _roots_of(state.parent, ids, roots)
    columns = {"cluster": roots}
    for name in STATE_COLUMNS:
        columns[name] = state.column(name)[ids]
    table = pa.table(
        {
            "address_id": ids,
            "address": encode_key_rows(np.asarray(address_key)[ids], network_code),
            "cluster_id": roots,
            "cluster_size": state.size[roots].astype(np.int64),
            "generation": np.full(ids.shape[0], generation, np.int64),
        }
    )
    return LayerRecord(ids, columns, table)


#: Addresses per slice when a base is written (a slice's map rows and their encoding:
#: ~100 B per address while built, ≈ 26 MB a slice).
BASE_SLICE = 1 << 18


def _write_base(
    cdir: Path, state: State, address_key: np.ndarray, network_code: int, generation: int
) -> tuple[dict[str, Any], int, int, int]:
    """Every address's cluster id, the `clusters` rows and the state, as a new base.

    Returns the base's manifest entry, the number of clusters, the largest cluster's size and
    the bytes written. The cluster ids are flattened straight into their memory-mapped file and
    the rows written a slice of BASE_SLICE addresses at a time; a cluster's size is its root's
    `size` (the union-find keeps it), so nothing of O(addresses) is held in memory beyond the
    state itself.
    """
    n_addr = state.parent.shape[0]
    g = f"g{generation:06d}"
    written = 0
    ids_name, map_name = f"address_cluster-{g}.npy", f"cluster_map-{g}.parquet"
    cluster_of: np.ndarray
    if n_addr:
        cluster_of = np.lib.format.open_memmap(
            cdir / ids_name, mode="w+", dtype=np.int64, shape=(n_addr,)
        )
        # on every thread (ranges.flatten_parallel: the same ids and parents as `flatten`)
        flatten_parallel(state.parent, cluster_of)
        cluster_of.flush()
    else:
        cluster_of = np.zeros(0, np.int64)
        np.save(cdir / ids_name, cluster_of)
    schema = pa.schema(
        [
            ("address_id", pa.int64()),
            ("address", pa.string()),
            ("cluster_id", pa.int64()),
            ("cluster_size", pa.int64()),
        ]
    )
    n_clusters = largest = 0
    with pq.ParquetWriter(cdir / map_name, schema, compression="zstd") as writer:
        for lo in range(0, n_addr, BASE_SLICE):
            hi = min(n_addr, lo + BASE_SLICE)
            ids = np.arange(lo, hi, dtype=np.int64)
            roots = np.asarray(cluster_of[lo:hi])
            sizes = state.size[roots].astype(np.int64)
            is_root = roots == ids
            n_clusters += int(is_root.sum())
            largest = max(largest, int(sizes.max(initial=0)))
            writer.write_table(
                pa.table(
                    {
                        "address_id": ids,
                        "address": encode_key_rows(np.asarray(address_key[lo:hi]), network_code),
                        "cluster_id": roots,
                        "cluster_size": sizes,
                    },
                    schema=schema,
                )
            )
            trim_heap()  # the slice's strings: else the heaps keep ≈ 75 MB resident
        if n_addr == 0:
            writer.write_table(schema.empty_table())
    # Room for a quarter more addresses, so runs at the tip map the base and append in place.
    capacity = n_addr + n_addr // 4 + 1024
    (cdir / "state").mkdir(exist_ok=True)
    state_files = {}
    for name, dtype in STATE_COLUMNS.items():
        rel = f"state/{name}-{g}.bin"
        if name == "next" and state.next is None:
            # From scratch: the lists built from the cluster ids, in the mapped file (0 anon).
            with open(cdir / rel, "wb") as f:
                f.truncate(capacity * np.dtype(dtype).itemsize)  # zeroed, as member_lists needs
            if n_addr:
                lists = np.memmap(cdir / rel, dtype, mode="r+", shape=(n_addr,))
                member_lists(cluster_of, lists)
                lists.flush()
                del lists
            with open(cdir / rel, "rb+") as f:
                os.fsync(f.fileno())
            state_files[name] = rel
            written += n_addr * np.dtype(dtype).itemsize
            continue
        column = state.column(name)
        with open(cdir / rel, "wb") as f:
            for lo in range(0, n_addr, BASE_SLICE):
                part = column[lo : min(n_addr, lo + BASE_SLICE)]
                f.write(np.ascontiguousarray(part, dtype).tobytes())
            f.truncate(capacity * np.dtype(dtype).itemsize)  # the rest stays sparse
            os.fsync(f.fileno())
        state_files[name] = rel
        written += n_addr * np.dtype(dtype).itemsize
    del cluster_of
    for name in (ids_name, map_name):
        with open(cdir / name, "rb") as f:
            os.fsync(f.fileno())
        written += (cdir / name).stat().st_size
    base = {
        "generation": generation,
        "addresses": n_addr,
        "capacity": capacity,
        "cluster_of": ids_name,
        "map": map_name,
        "state": state_files,
    }
    return base, n_clusters, largest, written


def _views(layers: dict[str, Any], files: dict[str, list[str]]) -> dict[str, Any]:
    base_map = layers["base"]["map"]
    views: dict[str, Any] = {}
    if layers["deltas"]:
        views["cluster_map_base"] = {"files": [base_map]}
        views["cluster_map_delta"] = {
            "files": [f"{d['dir']}/map.parquet" for d in layers["deltas"]]
        }
        views["clusters"] = {"sql": CLUSTERS_SQL}
    else:
        views["clusters"] = {"files": [base_map]}
    views["cluster_coinjoins"] = {"files": files["coinjoins"]}
    views["cluster_quarantine"] = {"files": files["quarantine"]}
    if files["merges"]:
        views["cluster_merges_raw"] = {"files": files["merges"]}
        views["cluster_merges"] = {
            "sql": "SELECT ca.address AS address_a, cb.address AS address_b, m.txid, m.rule, "
            "m.change_rules, m.confidence, ca.cluster_id FROM cluster_merges_raw m "
            "JOIN clusters ca ON ca.address_id = m.address_a_id "
            "JOIN clusters cb ON cb.address_id = m.address_b_id"
        }
    return views


def _referenced(manifest: dict[str, Any] | None) -> set[str]:
    """The files and folders (relative to clusters/) a manifest needs."""
    if manifest is None:
        return set()
    refs = {"manifest.json", ".lock", "state/tx_fingerprint.npy"}
    for spec in manifest.get("views", {}).values():
        refs.update(spec.get("files", []))
    for names in (manifest.get("files") or {}).values():
        refs.update(names)
    layers = manifest.get("layers")
    if layers is None:  # the layout before layers: one folder, replaced whole
        refs.update({"address_cluster.npy", *(f"state/{k}.npy" for k in STATE_COLUMNS)})
    else:
        base = layers["base"]
        refs.update({base["cluster_of"], base["map"], *base["state"].values()})
        refs.update(d["dir"] for d in layers["deltas"])
    return refs


def _remove_unreferenced(cdir: Path, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Delete what neither the new manifest nor the one before it names.

    The previous generation's files stay until the next publish, so a reader that read the
    old manifest just before the swap can still open them.
    """
    keep = _referenced(new) | _referenced(old)
    keep |= {r.split("/")[0] + "/" + r.split("/")[1] for r in keep if r.count("/") >= 2}
    for folder in (cdir, cdir / "state", cdir / "layers"):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            rel = path.relative_to(cdir).as_posix()
            if rel in keep or rel in ("state", "layers"):
                continue
            _clear(path)
    for stale in (cdir.with_name("clusters.tmp"), cdir.with_name("clusters.old")):
        shutil.rmtree(stale, ignore_errors=True)  # left by the layout before layers


def _clear(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.iterdir())
    return path.stat().st_size
