"""Cluster a store's addresses into wallets, incrementally, with evidence for every merge.

`cluster_store(data_dir, policy)` processes the transactions the clusterer has not seen yet
(all of them the first time), in chain order, and writes the clustering stage's directory:

    DATA/clusters/
      manifest.json          generation, policy, store epoch and tx count covered, views,
                             and the layers below (the one file replaced to publish a run)
      state/*-g*.bin         union-find base (parent, size, attribution, batch spent, member
                             list) — 17 bytes per address, mapped copy-on-write by the next run
      address_cluster-g*.npy cluster id per address id (int64) at the base
      cluster_map-g*.parquet address_id, address, cluster_id, cluster_size at the base
      layers/g*/             a delta layer: what later runs changed (see layers.py, publish.py)
      merges-g*.parquet      one row per union: address_a, address_b, txid, rule, votes
      coinjoins-g*.parquet   transactions excluded from merging, with the rule that matched
      quarantine-g*.parquet  merges refused by the super-cluster guard, with the reason
                             (each evidence table in files of ≤ 2^19 rows, `-pN` after the
                             first; the manifest's `evidence_ranges` gives each one's tx range)

A cluster's id is the smallest address id in it. When clusters merge the larger id stops being
a root, and `resolve_cluster(old_id)` (the root of that address) gives the cluster it is now
part of, so saved cases keep resolving. A reorg (store epoch changed) or another policy
recomputes from scratch; otherwise only new transactions are processed, and only the addresses
they changed are published. Readers resolve base + layers through `layers.LayeredIds`.
"""

from __future__ import annotations

import hashlib
import mmap
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from chainsleuth.cluster import kernels
from chainsleuth.cluster import learned as lc
from chainsleuth.cluster.layers import (
    LayeredIds,
    open_cluster_ids,
    open_state_column,
    read_clusters_manifest,
)
from chainsleuth.cluster.publish import (
    EvidenceWriter,
    RunOutput,
    State,
    load_state,
    publish,
    writer_lock,
)
from chainsleuth.cluster.ranges import CHUNK_TXS, RangeResult, UnionFind, process_range
from chainsleuth.cluster.rules import BY_CODE, CHANGE_BITS, POLICIES, RULES_VERSION, Policy
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.core.files import atomic_write
from chainsleuth.core.heap import trim_heap
from chainsleuth.core.pages import advise, prefetch_rows
from chainsleuth.store import layout, points
from chainsleuth.store.columns import hex_column
from chainsleuth.store.graph import ChainGraph
from chainsleuth.store.store import Store


def evidence_files(manifest: dict[str, Any], key: str, wanted: np.ndarray) -> list[str]:
    """The evidence files of a clustering manifest's `files[key]` whose tx range (its
    `evidence_ranges`) holds one of `wanted` (sorted tx ids), in order; a file without a range
    (clustered before bounded files) is always listed. No file's footer is then read for a tx
    it cannot hold, so a point read's cost does not grow with the number of files."""
    ranges = manifest.get("evidence_ranges") or {}
    out = []
    for name in manifest.get("files", {}).get(key, []):
        entry = ranges.get(name)
        if entry is not None:
            lo, hi = np.searchsorted(wanted, [int(entry[0]), int(entry[1]) + 1])
            if hi <= lo:
                continue
        out.append(name)
    return out


@dataclass
class ClusterReport:
    policy: str
    from_scratch: bool
    txs_processed: int
    addresses: int
    clusters: int
    largest_cluster: int
    merges: int
    coinjoins: int
    quarantined: int
    seconds: float
    rules: dict[str, int] = field(default_factory=dict)
    published: str = "base"  # "base" (every address) or "delta" (what changed)
    bytes_written: int = 0  # bytes of the files this run published


def clusters_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "clusters"


def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    return read_clusters_manifest(data_dir)


def get_policy(name: str) -> Policy:
    if name not in POLICIES:
        raise ChainsleuthError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    return POLICIES[name]


def cluster_store(
    data_dir: Path,
    policy: str = "conservative",
    *,
    attribution: np.ndarray | None = None,
    from_scratch: bool = False,
    change_model: Any = None,
    compact_rows: int | None = None,
) -> ClusterReport:
    """Cluster every address of the store at `data_dir`; returns what was done.

    `attribution` (optional, int per address id, -1 none) names the actor each tagged address
    belongs to; the super-cluster guard refuses to join two large clusters of different actors.
    Policies with the learned change rule train its model on the chain when clustering from
    scratch (or use `change_model`, a learned.ChangeModel) and keep it in the manifest, which
    incremental runs reuse. An incremental run publishes a delta layer of what changed, and a
    new base once the layers pass `compact_rows` rows (default: publish.COMPACT_FRACTION).
    """
    started = time.perf_counter()
    pol = get_policy(policy)
    store = Store.open(data_dir)
    n_tx, n_addr = store.counts["txs"], store.counts["addresses"]
    cdir = clusters_dir(data_dir)
    # One run at a time (a second waits, then resumes from the first one's result).
    with writer_lock(cdir):
        on_disk = read_manifest(data_dir)
        resume = not from_scratch and _can_resume(
            on_disk, pol, store, attribution, change_model, n_tx, n_addr
        )
        manifest = on_disk if resume else None
        state = load_state(cdir, manifest, n_addr, attribution)
        if attribution is not None and manifest is None:
            state.attribution[:] = attribution[:n_addr]
        arrays = store.graph
        first_tx = manifest["txs"] if manifest else 0
        if manifest is not None:
            prefetch_tip(arrays, state, first_tx)
        unions = UnionFind(
            state.parent,
            state.size,
            state.attribution,
            manifest["max_address_seen"] if manifest else -1,
            state.batch_spent,
            # no attribution now means none in the saved state either (a run resumes only
            # under the same attribution digest): every entry -1, the merges need not read them
            attributed=attribution is not None,
        )
        decisions = learned_state = fingerprint = None
        if pol.learned:
            decisions, learned_state, fingerprint = _learned_decisions(
                store, arrays, pol, cdir, manifest, change_model
            )
        generation = (on_disk["generation"] + 1) if on_disk else 1
        # From scratch the unions are not kept (the member lists are built from the cluster
        # ids when the base is written); a resumed run keeps them for its delta layer (few at
        # the tip).
        evidence = EvidenceWriter(cdir, generation)
        try:
            run, counts = _cluster_new_txs(
                store, arrays, unions, pol, first_tx, decisions, evidence, manifest is not None
            )
        finally:
            evidence.close()
        if fingerprint is not None:
            atomic_write(cdir / "state" / "tx_fingerprint.npy", lambda f: np.save(f, fingerprint))
        head = {
            "generation": generation,
            "policy": pol.name,
            "rules": RULES_VERSION,
            "store_epoch": store.manifest["epoch"],
            "store_generation": store.manifest["generation"],
            "txs": n_tx,
            "addresses": n_addr,
            "max_address_seen": unions.max_address,
            "attribution_digest": _digest(attribution, n_addr),
            "learned": learned_state,
        }
        published = publish(
            cdir,
            data_dir,
            manifest,
            state,
            run,
            head,
            store.graph.address_key,
            store.network.code,
            compact_rows=compact_rows,
            on_disk=on_disk,
        )
    return ClusterReport(
        policy=pol.name,
        from_scratch=not resume,
        txs_processed=n_tx - first_tx,
        addresses=n_addr,
        clusters=published.manifest["clusters"],
        largest_cluster=published.manifest["largest_cluster"],
        merges=counts["merges"],
        coinjoins=counts["coinjoins"],
        quarantined=counts["quarantined"],
        seconds=time.perf_counter() - started,
        rules=counts["rules"],
        published=published.kind,
        bytes_written=published.bytes_written,
    )


#: The tip's addresses are prefetched page by page only while they are fewer than the
#: clustering's addresses / PREFETCH_SHARE: a longer catch-up reads most pages of the state
#: columns anyway, which read-around does in fewer, larger reads.
PREFETCH_SHARE = 64


def _rows(lo: int, hi: int) -> np.ndarray:
    return np.arange(lo, hi, dtype=np.int64)


def prefetch_tip(arrays: ChainGraph, state: State, first_tx: int) -> int:
    """Ask for the pages an incremental run over txs [first_tx, n) reads, before it reads
    them: the tip's rows of the graph arrays, the outputs its inputs spend, and the state rows
    of its addresses (`prefetch_tip_state`). Each array's read-around is turned off, so the
    run's other scattered reads (cluster members, a root's row) read one page each. A
    catch-up longer than n / PREFETCH_SHARE txs is left to read-around. Returns the pages
    asked for."""
    n_tx = arrays.n_txs
    if first_tx >= n_tx or (n_tx - first_tx) * PREFETCH_SHARE > n_tx:
        random_state(state, False)
        return 0
    by_count: dict[str, list[np.ndarray]] = {"txs": [], "inputs": [], "outputs": []}
    for name, spec in layout.ARRAYS.items():
        if spec.count in by_count:
            by_count[spec.count].append(getattr(arrays, name))
    asked = sum(prefetch_rows(a, _rows(first_tx, n_tx)) for a in by_count["txs"])
    i0, o0 = int(arrays.tx_first_input[first_tx]), int(arrays.tx_first_output[first_tx])
    asked += sum(prefetch_rows(a, _rows(i0, arrays.n_inputs)) for a in by_count["inputs"])
    spent = np.asarray(arrays.input_spent_output[i0:]).astype(np.int64)
    outs = np.concatenate((_rows(o0, arrays.n_outputs), spent[(spent >= 0) & (spent < o0)]))
    asked += sum(prefetch_rows(a, outs) for a in by_count["outputs"])
    return asked + prefetch_tip_state(arrays, state, first_tx)


def random_state(state: State, random: bool) -> None:
    """Read-around off (`random`) or back on for the state columns' mappings."""
    for column in (state.parent, state.size, state.attribution, state.batch_spent, state.next):
        if column is not None:
            advise(column, mmap.MADV_RANDOM if random else mmap.MADV_NORMAL)


def tip_addresses(arrays: ChainGraph, first_tx: int) -> np.ndarray:
    """Address ids (int64, unique) the txs [first_tx, n) spend from or pay to: the rows of
    the per-address state an incremental run reads first."""
    n_tx = arrays.n_txs
    if first_tx >= n_tx:
        return np.zeros(0, np.int64)
    i0, o0 = int(arrays.tx_first_input[first_tx]), int(arrays.tx_first_output[first_tx])
    both = np.concatenate(
        (np.asarray(arrays.input_address[i0:]), np.asarray(arrays.output_address[o0:]))
    )
    return np.unique(both[both != kernels.NONE]).astype(np.int64)


def prefetch_tip_state(arrays: ChainGraph, state: State, first_tx: int) -> int:
    """Ask for exactly the pages of the saved state an incremental run reads first: the rows
    of the tip's addresses and of their union-find parents, in every state column
    (docs/design/clustering.md, "Cold pages at the tip"). Without it each cold fault on a
    state column reads `read_ahead_kb` around it: at 2 M txs every page of every column
    (13 MB each), at mainnet up to 8 MB per address touched. Returns the pages asked for."""
    ids = tip_addresses(arrays, first_tx)
    ids = ids[ids < state.have]  # rows beyond the saved ones: just written by load_state
    if ids.shape[0] == 0 or ids.shape[0] * PREFETCH_SHARE > state.have:
        random_state(state, False)
        return 0
    columns = [state.parent, state.size, state.attribution, state.batch_spent, state.next]
    asked = 0
    for column in columns:
        if column is not None:
            asked += prefetch_rows(column, ids)
    # their parents (a union-find path is 1-2 steps after a base's flatten): one more round,
    # which waits only for the parent column's pages asked for above
    parents = np.unique(np.asarray(state.parent[ids]).astype(np.int64))
    parents = parents[parents < state.have]
    for column in columns:
        if column is not None:
            asked += prefetch_rows(column, parents)
    return asked


def _can_resume(
    manifest: dict[str, Any] | None,
    pol: Policy,
    store: Store,
    attribution: np.ndarray | None,
    change_model: Any,
    n_tx: int,
    n_addr: int,
) -> bool:
    """Whether the saved clustering can be extended (else: from scratch).

    A reorg bumps the store's epoch: the ids above the fork point were reused, so the
    clustering starts over (docs/design/clustering.md, "Reorgs").
    """
    return (
        manifest is not None
        and "layers" in manifest
        and manifest["policy"] == pol.name
        and manifest.get("rules") == RULES_VERSION  # rules changed since: their flags are stale
        and manifest["store_epoch"] == store.manifest["epoch"]
        and manifest["txs"] <= n_tx
        and manifest["addresses"] <= n_addr
        # New tags may change the guard's past decisions: resume only when the addresses
        # clustered before carry the same attribution as then.
        and manifest.get("attribution_digest") == _digest(attribution, manifest["addresses"])
        and (
            change_model is None
            or (manifest.get("learned") or {}).get("model") == change_model.to_json()
        )
    )


def _cluster_new_txs(
    store: Store,
    arrays: ChainGraph,
    unions: UnionFind,
    pol: Policy,
    first_tx: int,
    decisions: Any,
    evidence: EvidenceWriter,
    keep_unions: bool = True,
) -> tuple[RunOutput, dict[str, Any]]:
    """Cluster txs [first_tx, n) into `unions`, chunk by chunk; the run's unions and counts.

    Each range's evidence rows go to `evidence` (parquet on disk) as they are made, so memory
    does not grow with the merges. With `keep_unions` the run's unions are returned for the
    delta layer (16 B per union); without (from scratch) they are not kept.
    """
    n_tx = arrays.n_txs
    merge_a: list[np.ndarray] = []
    merge_b: list[np.ndarray] = []
    txids = store.graph.tx_txid
    counts: dict[str, Any] = {"merges": 0, "coinjoins": 0, "quarantined": 0, "rules": {}}
    spent: list[np.ndarray] = []
    for t0 in range(first_tx, n_tx, CHUNK_TXS):
        t1 = min(n_tx, t0 + CHUNK_TXS)
        result = process_range(arrays, unions, pol, t0, t1, decisions)
        counts["merges"] += result.n_merges
        counts["quarantined"] += result.quarantined.shape[0]
        counts["coinjoins"] += result.coinjoin_tx.shape[0]
        if keep_unions:
            # copies: the views would keep the range's whole evidence buffers alive
            merge_a.append(result.merge_a.copy())
            merge_b.append(result.merge_b.copy())
            # The addresses the range's inputs spent from: the only batch-spender flags the
            # run can set (published in the delta layer).
            i0 = int(arrays.tx_first_input[t0])
            i1 = int(arrays.tx_first_input[t1]) if t1 < n_tx else arrays.n_inputs
            part = np.asarray(arrays.input_address[i0:i1])
            spent.append(np.unique(part[part != kernels.NONE]))
        if result.n_merges:
            _count_rules(result, counts["rules"])
            # A merge row is ~150 B while its table is built (the hex txid alone 64 B): a slice
            # of EVIDENCE_ROWS rows at a time, not the range's ~1 M rows (≈150 MB).
            for lo in range(0, result.n_merges, EVIDENCE_ROWS):
                hi = min(result.n_merges, lo + EVIDENCE_ROWS)
                evidence.add("merges", _merge_rows(result, txids, lo, hi))
                trim_heap()
        if result.coinjoin_tx.shape[0]:
            cj = result.coinjoin_tx
            evidence.add(
                "coinjoins",
                pa.table(
                    {
                        "tx_id": cj,
                        "txid": hex_column(np.asarray(txids[cj])),
                        "rule": pa.array(
                            [BY_CODE[int(c)].name for c in result.coinjoin_rule], pa.string()
                        ),
                    }
                ),
            )
        if result.quarantined.shape[0]:
            qt = result.quarantined
            evidence.add(
                "quarantine",
                pa.table(
                    {
                        "tx_id": qt,
                        "txid": hex_column(np.asarray(txids[qt])),
                        "reason": pa.array(
                            [
                                "joins two large clusters with different attributions"
                                if r == kernels.Q_LARGE_CONFLICT
                                else "grows a cluster by orders of magnitude in one tx"
                                for r in result.quarantine_reason
                            ],
                            pa.string(),
                        ),
                    }
                ),
            )
        # Free this range's buffers before the next range allocates its own (else two
        # ranges' rule arrays and evidence buffers are alive at once), and give the freed
        # heap pages back (core.heap: glibc keeps them resident otherwise).
        del result
        trim_heap()
    run = RunOutput(
        np.concatenate([np.zeros(0, np.int64), *merge_a]),
        np.concatenate([np.zeros(0, np.int64), *merge_b]),
        evidence.close(),
        np.unique(np.concatenate([np.zeros(0, np.uint32), *spent])),
        spliced=not keep_unions,
    )
    return run, counts


#: Evidence rows built into one table at a time (see `_cluster_new_txs`).
EVIDENCE_ROWS = 1 << 17

_RULE_NAMES = ["", "multi_input", "change", "change"]


def _count_rules(result: RangeResult, rule_counts: dict[str, int]) -> None:
    """Add a range's unions to the counts per rule name (names first seen in sorted order)."""
    codes = np.minimum(result.merge_rule, kernels.RULE_LEARNED)
    names = _RULE_NAMES
    n_learned = int((codes == kernels.RULE_LEARNED).sum())
    if n_learned:
        rule_counts["learned_change"] = rule_counts.get("learned_change", 0) + n_learned
    per_name: dict[str, int] = {}
    for name, count in zip(names, np.bincount(codes, minlength=4).tolist(), strict=False):
        per_name[name] = per_name.get(name, 0) + count
    for name in sorted(per_name):  # the names present, in sorted order
        if per_name[name]:
            rule_counts[name] = rule_counts.get(name, 0) + per_name[name]


def _merge_rows(result: RangeResult, txids: np.ndarray, lo: int, hi: int) -> pa.Table:
    """The evidence rows of a range's unions [lo, hi) (the `cluster_merges_raw` view)."""
    merge_rule, merge_votes = result.merge_rule[lo:hi], result.merge_votes[lo:hi]
    codes = np.minimum(merge_rule, kernels.RULE_LEARNED)
    # string columns built from their few distinct values (no Python object per row)
    rules = pa.array(_RULE_NAMES, pa.string()).take(pa.array(codes))
    votes, which = np.unique(merge_votes, return_inverse=True)
    vote_names = pa.array([_vote_names(int(v)) for v in votes], pa.string())
    ev_tx = result.merge_tx[lo:hi]
    return pa.table(
        {
            "address_a_id": result.merge_a[lo:hi].astype(np.int64),  # u4 in the run
            "address_b_id": result.merge_b[lo:hi].astype(np.int64),
            "tx_id": ev_tx,
            "txid": hex_column(np.asarray(txids[ev_tx])),
            "rule": rules,
            "change_rules": vote_names.take(pa.array(which)),
            "confidence": _confidence(merge_rule, merge_votes),
        }
    )


def _learned_decisions(
    store: Store,
    arrays: ChainGraph,
    pol: Policy,
    cdir: Path,
    manifest: dict[str, Any] | None,
    change_model: Any,
) -> tuple[Any, dict[str, Any], np.ndarray]:
    """The learned change rule's model and decisions for this run (see learned.py).

    `manifest` is the previous clustering's when resuming: its model and pending position are
    reused, and the tx fingerprints kept in its state are extended to the new txs.
    """
    n_tx = arrays.n_txs
    fp_path = cdir / "state" / "tx_fingerprint.npy"
    have = np.zeros(0, np.uint8)
    if manifest is not None and fp_path.exists():
        have = np.load(fp_path)[:n_tx]
    fingerprint = np.concatenate((have, lc.read_fingerprints(store, have.shape[0], n_tx)))
    spent_by = store.graph.output_spent_by_tx
    tx_height = store.graph.tx_height
    state = (manifest or {}).get("learned")
    if state:
        model = lc.ChangeModel.from_json(state["model"])
        pending_from, pending_max = state["pending_from"], state["pending_max_address"]
    else:
        model = change_model or lc.train_model(
            arrays,
            pol,
            store.counts["addresses"],
            spent_by,
            tx_height,
            fingerprint,
            lc.DEFAULT_WINDOW,
        )
        pending_from, pending_max = 0, -1
    decisions = lc.decide(
        arrays, model, pol, spent_by, tx_height, fingerprint, pending_from, pending_max
    )
    fired = (state or {}).get("fired", 0) + int(decisions.tx.shape[0])
    new_state = {
        "model": model.to_json(),
        "pending_from": decisions.pending_from,
        "pending_max_address": decisions.pending_max_address,
        "fired": fired,
    }
    return decisions, new_state, fingerprint


def _digest(attribution: np.ndarray | None, n_addresses: int) -> str | None:
    """Fingerprint of the attribution of the first n addresses (None: no attribution)."""
    if attribution is None:
        return None
    # the int32 bytes of the first n codes, hashed a slice at a time (a whole copy would be
    # 4 B per address: 6 GB at mainnet)
    digest = hashlib.sha256()
    n = min(n_addresses, attribution.shape[0])
    for lo in range(0, n, DIGEST_SLICE):
        part = attribution[lo : min(n, lo + DIGEST_SLICE)]
        digest.update(np.ascontiguousarray(part, dtype=np.int32).tobytes())
    return digest.hexdigest()


#: Attribution codes hashed at a time by `_digest` (4 MiB of int32).
DIGEST_SLICE = 1 << 20


def _vote_names(votes: int) -> str | None:
    names = [name for name, bit in CHANGE_BITS.items() if votes & bit]
    return "+".join(names) if names else None


def _confidence(rules: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """Multi-input: its rule confidence. Change: 1 - prod(1 - c) over the agreeing rules."""
    from chainsleuth.cluster.rules import BY_NAME

    out = np.full(rules.shape[0], BY_NAME["multi_input"].confidence)
    out[rules == kernels.RULE_LEARNED] = BY_NAME["learned_change"].confidence
    is_change = rules == kernels.RULE_CHANGE
    miss = np.ones(rules.shape[0])
    for name, bit in CHANGE_BITS.items():
        fired = is_change & ((votes & bit) != 0)
        miss[fired] *= 1.0 - BY_NAME[name].confidence
    out[is_change] = 1.0 - miss[is_change]
    return np.round(out, 4)


# ------------------------------------------------------------------------------ reading
def clusters_generation(data_dir: Path) -> int | None:
    """The clustering generation, or None when no clustering has been published."""
    try:
        manifest = read_manifest(data_dir)
    except (OSError, ValueError):
        manifest = None
    layered = manifest is not None and "layers" in manifest
    if not layered and not (clusters_dir(data_dir) / "address_cluster.npy").exists():
        return None
    try:
        return int((manifest or {}).get("generation", 0))
    except (ValueError, TypeError, AttributeError):
        return 0  # an array without a readable manifest: still use it


#: A cluster is read from its member list (one lookup per member, ≈ 17 µs) up to
#: max(WALK_MEMBERS_MIN, addresses / WALK_ADDRESSES_PER_STEP) members, at most
#: WALK_MEMBERS_MAX; a larger one by a pass over the cluster ids (≈ 8 ns per address warm), which
#: then costs less than the walk: 1,024 members at 2 M addresses, 2^20 at mainnet's 1.5 G.
WALK_MEMBERS_MIN = 1 << 10
WALK_MEMBERS_MAX = 1 << 20
WALK_ADDRESSES_PER_STEP = 2048
#: Cluster ids read at once by a pass over them (8 B each: 128 MB).
MEMBER_SCAN_SLICE = 1 << 24


def _advise_ids(ids: LayeredIds | np.ndarray, option: int) -> None:
    """madvise the memory maps of cluster ids or a state column (base and layers)."""
    if not hasattr(mmap, "MADV_RANDOM"):
        return
    if isinstance(ids, LayeredIds):
        advise(ids.base, option)
        for layer_ids, values in ids.layers:
            advise(layer_ids, option)
            advise(values, option)
    else:
        advise(ids, option)


def _empty_merges() -> pa.Table:
    return pa.table(
        {
            "address_a_id": pa.array([], pa.int64()),
            "address_b_id": pa.array([], pa.int64()),
            "tx_id": pa.array([], pa.int64()),
            "txid": pa.array([], pa.string()),
            "rule": pa.array([], pa.string()),
            "change_rules": pa.array([], pa.string()),
            "confidence": pa.array([], pa.float64()),
        }
    )


class Clusters:
    """The published clustering of a store: the one reader of `DATA/clusters/`.

    `cluster_of` is the cluster id per address id (int64; a cluster's id is its smallest
    address id): the memory-mapped base (8 B/address) with the delta layers of later runs
    over it (`layers.LayeredIds`; indexing and slices read base + layers). Later stages read the clustering only through
    this class: lookups (`resolve_cluster`, `members`, `explain`, `merges`) and vectorized
    questions over many ids (`clusters_of`, `member_mask`, `sizes`), where an address beyond
    the array (ingested after the clustering ran) is its own cluster.

    `Clusters(data_dir)` needs a clustering; `Clusters.or_singletons(data_dir)` makes every
    address its own cluster when there is none (tags attribute before clustering has run).
    """

    data_dir: Path | None
    manifest: dict[str, Any]
    generation: int | None  # the clustering generation; None: no clustering (singletons)
    cluster_of: LayeredIds | np.ndarray
    random: bool = False  # mapped for a few lookups (see __init__)

    def __init__(self, data_dir: Path, random: bool = False) -> None:
        """`random`: this reader looks up a few clusters (`cluster-of`, the API): the cluster
        ids and member lists are mapped with read-around off (`MADV_RANDOM`), so a cold
        lookup reads the pages of the ids it needs, not an 8 MB window around each; a pass
        over every id (`members` of a cluster past the walk's limit) turns it back on."""
        manifest = read_manifest(data_dir)
        if manifest is None:
            raise ChainsleuthError("no clustering yet: run `chainsleuth cluster` first")
        self.data_dir = Path(data_dir)
        self.manifest = manifest
        self.generation = int(manifest.get("generation", 0))
        ids = open_cluster_ids(data_dir, manifest)  # base + delta layers, one manifest read
        if ids is None:
            raise ChainsleuthError("no clustering yet: run `chainsleuth cluster` first")
        self.cluster_of = ids
        self.random = random
        if random:
            _advise_ids(ids, mmap.MADV_RANDOM)

    @classmethod
    def or_singletons(cls, data_dir: Path) -> Clusters:
        """The published clustering, or every address its own cluster when there is none."""
        if clusters_generation(data_dir) is not None and read_manifest(data_dir) is not None:
            return cls(data_dir)
        return cls.from_array(np.zeros(0, np.int64), None, data_dir)

    @classmethod
    def from_array(
        cls, cluster_of: np.ndarray, generation: int | None = None, data_dir: Path | None = None
    ) -> Clusters:
        """A clustering held in memory (cluster id per address id), e.g. a benchmark's."""
        clusters = cls.__new__(cls)
        clusters.data_dir = None if data_dir is None else Path(data_dir)
        clusters.manifest = {}
        clusters.generation = generation
        clusters.cluster_of = cluster_of
        return clusters

    def clusters_of(self, address_ids: np.ndarray) -> np.ndarray:
        """Cluster ids of `address_ids` (int64); -1 stays -1 (not in the store)."""
        ids = np.asarray(address_ids, np.int64)
        out = ids.copy()
        inside = (ids >= 0) & (ids < self.cluster_of.shape[0])
        out[inside] = self.cluster_of[ids[inside]]
        return out

    def member_mask(self, cluster_ids: np.ndarray, n_addresses: int) -> np.ndarray:
        """A boolean mask over the first `n_addresses` address ids: in one of `cluster_ids`.
        One pass over `cluster_of` in chunks of 2^24 (a flag per address: 1 B/address)."""
        wanted = np.unique(np.asarray(cluster_ids, np.int64))
        mask = np.zeros(n_addresses, bool)
        if wanted.shape[0] == 0 or n_addresses == 0:
            return mask
        covered = min(self.cluster_of.shape[0], n_addresses)
        chunk = 1 << 24
        flag = np.zeros(n_addresses, bool)
        flag[wanted[(wanted >= 0) & (wanted < n_addresses)]] = True
        for lo in range(0, covered, chunk):
            hi = min(lo + chunk, covered)
            part = np.asarray(self.cluster_of[lo:hi])
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
        if self.generation is None or ids.shape[0] == 0:
            return np.ones(ids.shape[0], np.int64)
        mask = self.member_mask(ids, n_addresses)
        labels = self.clusters_of(np.flatnonzero(mask))
        uniq, counts = np.unique(labels, return_counts=True)
        pos = np.clip(np.searchsorted(uniq, ids), 0, max(uniq.shape[0] - 1, 0))
        out = np.ones(ids.shape[0], np.int64)
        if uniq.shape[0] > 0:
            match = uniq[pos] == ids
            out[match] = counts[pos[match]]
        return out

    def resolve_cluster(self, cluster_id: int) -> int:
        """The current id of a cluster id saved earlier (clusters only ever merge)."""
        if not 0 <= cluster_id < self.cluster_of.shape[0]:
            raise ChainsleuthError(f"no cluster {cluster_id} in this clustering")
        return int(self.cluster_of[cluster_id])

    def members(self, cluster_id: int) -> np.ndarray:
        """Address ids of a cluster (a saved id resolves to the cluster it merged into),
        ascending. O(the cluster) through the published member lists (`next`), up to
        the walk's limit (WALK_MEMBERS_MIN..MAX); a larger cluster, or a clustering without member lists, is
        found by one pass over the cluster ids (2^24 at a time)."""
        cid = self.resolve_cluster(cluster_id)
        walked = self._walk_members(cid)
        if walked is not None:
            return walked
        if self.random:  # a pass over every id: read-around on again
            _advise_ids(self.cluster_of, mmap.MADV_NORMAL)
        found = []
        for lo in range(0, self.cluster_of.shape[0], MEMBER_SCAN_SLICE):
            part = np.asarray(self.cluster_of[lo : lo + MEMBER_SCAN_SLICE])
            found.append(np.flatnonzero(part == cid) + lo)
        return np.concatenate(found) if found else np.zeros(0, np.int64)

    def _member_lists(self) -> LayeredIds | None:
        """The published `next` column (the circular member lists) as base + delta layers,
        or None when this clustering has none on disk (a legacy or in-memory one)."""
        if "_next" in self.__dict__:
            next_ids: LayeredIds | None = self.__dict__["_next"]
            return next_ids
        next_ids = None
        if self.data_dir is not None:
            # the walk is checked against the cluster ids before it is trusted (`_walk_members`)
            next_ids = open_state_column(self.data_dir, self.manifest, "next")
            if next_ids is not None and self.random:
                _advise_ids(next_ids, mmap.MADV_RANDOM)  # the walk reads a row per member
        self.__dict__["_next"] = next_ids
        return next_ids

    def _walk_members(self, cid: int) -> np.ndarray | None:
        """The members of cluster `cid` read from its circular member list: one lookup per
        member. None (the caller scans) when there is no list, the cluster has more members
        than the walk's limit, or the list disagrees with the cluster ids (a later run
        rewriting the base's state while this reader holds an older manifest)."""
        next_ids = self._member_lists()
        if next_ids is None or not 0 <= cid < next_ids.shape[0]:
            return None
        walked = [cid]
        x = cid
        n = next_ids.shape[0]
        limit = min(WALK_MEMBERS_MAX, max(WALK_MEMBERS_MIN, n // WALK_ADDRESSES_PER_STEP))
        for _ in range(limit):
            x = int(next_ids[x])
            if x == cid:
                break
            if not 0 <= x < next_ids.shape[0]:
                return None
            walked.append(x)
        else:
            return None
        members = np.unique(np.array(walked, np.int64))
        if members.shape[0] != len(walked):
            return None
        if np.any(self.clusters_of(members) != cid):
            return None
        return members

    def _tables(self, key: str, columns: list[str] | None = None) -> list[pa.Table]:
        """The parquet files the manifest lists under `files[key]` (none without one)."""
        names = self.manifest.get("files", {}).get(key, [])
        if not names:
            return []
        assert self.data_dir is not None  # only a clustering read from disk lists files
        return [pq.read_table(clusters_dir(self.data_dir) / f, columns=columns) for f in names]

    def merges(self) -> pa.Table:
        """Every merge (O(the merges): mainnet has billions); `merges_in_txs` for some."""
        tables = self._tables("merges")
        if not tables:
            return _empty_merges()
        return pa.concat_tables(tables)

    def coinjoins(self, columns: list[str] | None = None) -> pa.Table:
        """The transactions the clustering excluded as CoinJoins: tx_id, txid, rule (the
        rule that matched); empty without a clustering."""
        tables = self._tables("coinjoins", columns)
        if tables:
            return pa.concat_tables(tables)
        empty = pa.schema([("tx_id", pa.int64()), ("txid", pa.string()), ("rule", pa.string())])
        return empty.empty_table().select(columns or empty.names)

    def merges_in_txs(self, tx_ids: np.ndarray, first_in: np.ndarray | None = None) -> pa.Table:
        """The merges made in any of `tx_ids` (dense tx ids), in merge order; with `first_in`
        (address ids), only those whose address_a is one of them. Reads only the row groups
        whose tx_id range holds one of the txs (the evidence is written in tx order), first
        their two id columns, then every column of the groups that hold a match: asking for a
        cluster's txs costs O(the cluster), not O(every merge)."""
        wanted = np.unique(np.asarray(tx_ids, np.int64))
        names = self.manifest.get("files", {}).get("merges", [])
        parts = []
        if self.data_dir is not None and wanted.shape[0]:
            for name in evidence_files(self.manifest, "merges", wanted):
                # read-around off; only the row groups whose tx_id range holds a wanted tx
                handle, raw, groups = points.read_groups(
                    clusters_dir(self.data_dir) / name, "tx_id", wanted
                )
                with raw:
                    for g in groups:
                        ids = handle.read_row_group(g, columns=["tx_id", "address_a_id"])
                        keep = np.isin(ids.column("tx_id").to_numpy(), wanted)
                        if first_in is not None:
                            keep &= np.isin(ids.column("address_a_id").to_numpy(), first_in)
                        if keep.any():
                            parts.append(handle.read_row_group(g).filter(pa.array(keep)))
        if not parts:
            if names and self.data_dir is not None:  # none matched: the files' own columns
                return pq.read_schema(clusters_dir(self.data_dir) / names[0]).empty_table()
            return _empty_merges()
        return pa.concat_tables(parts)

    def explain(
        self, address_a: int, address_b: int, merges: pa.Table | None = None
    ) -> list[dict[str, Any]] | None:
        """The shortest chain of merges linking two address ids, or None if not linked.
        `merges`: the cluster's merges when the caller has them (`summary.cluster_merges`,
        O(the cluster)); else every merge is read."""
        if self.cluster_of[address_a] != self.cluster_of[address_b]:
            return None
        if address_a == address_b:
            return []
        if merges is None:
            merges = self.merges()
        a_ids = merges.column("address_a_id").to_numpy()
        b_ids = merges.column("address_b_id").to_numpy()
        cluster = self.cluster_of[address_a]
        inside = np.flatnonzero(self.clusters_of(a_ids) == cluster)
        adjacency: dict[int, list[tuple[int, int]]] = {}
        for row in inside.tolist():
            a, b = int(a_ids[row]), int(b_ids[row])
            adjacency.setdefault(a, []).append((b, row))
            adjacency.setdefault(b, []).append((a, row))
        previous: dict[int, tuple[int, int]] = {address_a: (-1, -1)}
        queue = deque([address_a])
        while queue:
            node = queue.popleft()
            if node == address_b:
                break
            for nxt, row in adjacency.get(node, ()):
                if nxt not in previous:
                    previous[nxt] = (node, row)
                    queue.append(nxt)
        if address_b not in previous:
            return None
        steps = []
        node = address_b
        rows = merges.to_pydict()
        while node != address_a:
            prev, row = previous[node]
            steps.append(
                {
                    "from_address_id": prev,
                    "to_address_id": node,
                    "txid": rows["txid"][row],
                    "rule": rows["rule"][row],
                    "change_rules": rows["change_rules"][row],
                    "confidence": rows["confidence"][row],
                }
            )
            node = prev
        steps.reverse()
        return steps
