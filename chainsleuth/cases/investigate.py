"""Investigate a service from its seized deposit addresses (docs/investigations.md).

`investigate(data_dir, seeds_csv, out_dir)` maps the seed addresses to address ids, takes the
service's own clusters from them, traces every deposit output backward to the attributed
clusters (the tags stage) or CoinJoins (the cluster stage) that funded it, traces the service's
spent deposits forward to where the money left, and writes `leads.csv`, `subpoenas.csv`,
`cashouts.csv` and `case.json` into `out_dir` (the rows are built by `cases.rows`, the report
by `cases.report`). The CSVs are a function of the store, the clustering, the tags, the seeds,
the prices and the parameters only: re-running gives the same bytes.

    >>> investigate(data, Path("seeds.csv"), Path("case"), policy="haircut")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chainsleuth import __version__
from chainsleuth.cases.candidate_requests import (
    REQUEST_COLUMNS,
    request_summary,
    request_table,
)
from chainsleuth.cases.cashouts import (
    UNCONFIRMED_FORWARD_CAP,
    cashout_rows,
    payee_fates_summary,
)
from chainsleuth.cases.columns import bools, string_equals, string_in
from chainsleuth.cases.confidence import MAX_HOLD_RATIO, MIN_TYPICAL_ROWS, calibration
from chainsleuth.cases.lookalikes import count_unnamed_leads, lookalike_exchanges
from chainsleuth.cases.rows import (  # noqa: F401  (column lists are part of this API)
    BATCH_MIN_OUTPUTS,
    CASHOUT_COLUMNS,
    COINJOIN_CAP,
    DEFAULT_CASHOUT_CUT,
    EXCHANGE_CATEGORIES,
    FORWARD_HABITS,
    FRAGMENT_LINKS,
    LEAD_COLUMNS,
    LEAD_ORDER,
    LONG_HOLD_CAP,
    LONG_HOLD_DAYS,
    LONG_HOLD_MAX_HOPS,
    LONG_HOLD_MIN_HOPS,
    MAX_PATHS,
    SERVICE_COLUMNS,
    SUBPOENA_COLUMNS,
    UNIDENTIFIED_SERVICE,
    ChainLookups,
    case_typical_hold,
    cashout_cut,
    cashout_table,
    lead_table,
    recalibrate_leads,
    schema_of,
    services_table,
    subpoena_table,
)
from chainsleuth.cluster.layers import LayeredIds
from chainsleuth.cluster.learned import read_fingerprints
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.core.files import atomic_write_text, replace_into_place
from chainsleuth.core.files import sha256_file as _sha256
from chainsleuth.core.heap import bound_heap, reuse_heap, trim_heap
from chainsleuth.core.scratch import Scratch, scratch_array
from chainsleuth.prices import PriceSource, describe, read_prices, resolve_prices
from chainsleuth.prices import shipped_prices_path as shipped_prices_path
from chainsleuth.store.graph import owned_rows
from chainsleuth.store.layout import NONE32
from chainsleuth.store.store import Store
from chainsleuth.trace import services as services_module
from chainsleuth.trace.engine import TraceOptions, address_stops, pooled_entries
from chainsleuth.trace.exposure import coinjoin_flags as _coinjoins
from chainsleuth.trace.exposure import one_wallet_txs
from chainsleuth.trace.mix_change import mix_change_links
from chainsleuth.trace.services import (
    BATCH_MIN_PAYEES,
    MIN_EVENTS,
    STYLE_HABITS,
    STYLE_MIN_CANDIDATES,
    STYLE_MIN_CHANGE_ADDRESS,
    STYLE_MIN_LAST,
    STYLE_MIN_SHUFFLED,
    STYLE_MIXED,
    STYLE_PERIOD_MONTHS,
    SWEEP_MIN_INPUTS,
    ClusterGroups,
    ClusterSet,
    PaidInReads,
    ServiceStats,
    StyleReads,
    TxShapes,
    blind_styles,
    block_periods,
    change_spend_evidence,
    deposit_cospenders,
    deposit_payer_bridges,
    deposit_spending_batches,
    funder_links,
    habit_rows,
    habits_changed,
    hot_change_links,
    known_and_different,
    payout_cospend_evidence,
    received_deposits,
    sendall_receivers,
    service_entities,
    service_stats,
    small_batch_links,
    spender_change_chains,
    style_candidates,
    style_habits,
    style_matches,
    style_orphan_vetoes,
    style_rival_vetoes,
    sweep_into_evidence,
    tx_shapes,
    wallet_styles,
)

#: The daily BTC/USD closes shipped with the package (chainsleuth/data/prices/, PROVENANCE.md
#: there); `investigate` uses it when neither --prices nor an imported series is there.
DEFAULT_PRICES = shipped_prices_path()


#: Hops walked back from a deposit: peel chains of 10 payments and exchanges' chains of batched
#: withdrawals (each spending the last one's change) are common; 15 finds 98% of the simulated
#: world's sources (docs/investigations.md) and costs little, because shares below MIN_FRACTION
#: are not followed.
DEFAULT_MAX_HOPS = 15


#: Trace bounds of an investigation: shares below MIN_FRACTION of a deposit are not followed
#: (a haircut through a 200-input sweep would otherwise split one deposit into millions of
#: dust-sized pieces), each seed's walk holds at most MAX_ENTRIES_PER_SEED entries, and seeds
#: are traced CHUNK_SEEDS at a time within CHUNK_ENTRIES entries (about 1 GB).
MIN_FRACTION = 0.01


MAX_ENTRIES_PER_SEED = 5_000


CHUNK_SEEDS = 65_536


CHUNK_ENTRIES = 20_000_000


#: Threads tracing chunks at once: None = one per core this process may run on
#: (`trace_threads`: its CPU affinity, so taskset and cgroups count), at most MAX_TRACE_THREADS;
#: an int forces the count, as the environment variable CHAINSLEUTH_TRACE_THREADS does.
TRACE_THREADS: int | None = None
MAX_TRACE_THREADS = 64

#: Frontier entries of all chunks in flight together (about 3.9 GB at 49 B an entry): a chunk
#: may hold CHUNK_ENTRIES, or this budget split between the threads when that is less, so 16
#: cores trace 16 chunks in the memory that 4 took (docs/design/trace.md).
TRACE_ENTRIES_BUDGET = 80_000_000

#: Chunks are cut smaller than CHUNK_SEEDS (down to MIN_CHUNK_SEEDS) where that gives every
#: thread CHUNKS_PER_THREAD of them, so a 1M-seed case keeps 16 cores busy (13 chunks of
#: 65,536 would leave 3 idle and the last chunk alone at the end).
MIN_CHUNK_SEEDS = 4_096
CHUNKS_PER_THREAD = 2


def trace_threads() -> int:
    """Chunks traced at once: TRACE_THREADS, CHAINSLEUTH_TRACE_THREADS, or one per core this
    process may run on (the walk's numba kernel releases the GIL), at most MAX_TRACE_THREADS."""
    if TRACE_THREADS is not None:
        return max(1, TRACE_THREADS)
    forced = os.environ.get("CHAINSLEUTH_TRACE_THREADS", "")
    if forced.isdigit() and int(forced) > 0:
        return int(forced)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, MAX_TRACE_THREADS))


def chunk_cuts(group: np.ndarray, workers: int, starts: np.ndarray | None = None) -> list[int]:
    """Where `_in_chunks` cuts seeds sorted by `group`: at a group boundary once a chunk holds
    the chunk size, CHUNK_SEEDS or less so that `workers` threads get CHUNKS_PER_THREAD chunks
    each (never under MIN_CHUNK_SEEDS); a group is never split. `starts`: `group_starts(group)`
    when the caller has it."""
    n = int(group.shape[0])
    wanted = -(-n // max(1, workers * CHUNKS_PER_THREAD))
    size = max(1, min(CHUNK_SEEDS, max(MIN_CHUNK_SEEDS, wanted)))
    bounds = group_starts(group) if starts is None else starts
    # each cut is the first group start at least `size` past the previous cut: one search a
    # chunk (a Python loop over every group start took 0.025 CPU s of the 1M-seed trace's
    # 0.55, for its 822,816 starts)
    cuts = [0]
    while True:
        k = int(np.searchsorted(bounds, cuts[-1] + size, "left"))
        if k >= bounds.shape[0]:
            break
        cuts.append(int(bounds[k]))
    cuts.append(n)
    return cuts


def group_starts(group: np.ndarray) -> np.ndarray:
    """Where a new group starts in `group` (sorted): the positions i > 0 with group[i] !=
    group[i - 1], ascending."""
    group = np.asarray(group)
    return np.flatnonzero(group[1:] != group[:-1]) + 1


@dataclass(frozen=True)
class InvestigationSummary:
    out_dir: Path
    n_seeds: int
    n_seeds_in_store: int
    n_deposit_outputs: int
    n_deposits_with_exchange_lead: int
    n_leads: int
    n_subpoena_rows: int
    n_cashouts: int  # every row of cashouts.csv
    service_clusters: int
    exchanges: dict[str, int]  # exchange -> customers (funding withdrawals) to request
    cashouts_by_entity: dict[str, int]  # destination entity -> satoshis, at the cut
    untraced_sat: int = 0  # shares below MIN_FRACTION, not followed
    n_cashouts_at_cut: int = 0  # at confidence >= cashout_cut: the report's totals
    cashout_cut: float = 0.5
    report_html: Path | None = None
    report_pdf: Path | None = None
    # case.json's lookalike_exchanges: tagged exchanges the wallet-style rule cannot tell apart
    # (each group's names) and those whose wallet showed no habit (cases.lookalikes)
    lookalike_exchanges: list[list[str]] = field(default_factory=list)
    unreadable_exchanges: list[str] = field(default_factory=list)
    # requests.csv (cases.candidate_requests): rows (exchange, deposit) and the deposits asked
    # about, whose best lead is a wallet two or more exchanges fit alike
    n_request_rows: int = 0
    n_request_deposits: int = 0
    # case.json's closed_world (`closed_world_counts`): the deciding leads whose name_basis
    # is style, those of them carried by change links, and the deciding leads in all
    n_leads_resting_on_style: int = 0
    n_leads_resting_on_style_carried: int = 0
    n_deciding_leads: int = 0


# ------------------------------------------------------------------------------- inputs
def _read_seeds(seeds_csv: Path) -> pa.Array:
    """The `address` column of a seeds CSV, stripped, without blanks or repeats (sorted).

    Read with Arrow's CSV reader (a million seeds in well under a second); a malformed file
    is a ChainsleuthError naming the file and what Arrow found wrong (with the row).
    """
    import pyarrow.csv as pacsv

    from chainsleuth.cases.seeds import seed_lines

    seeds_csv = Path(seeds_csv)
    try:
        with open(seeds_csv, newline="") as f:
            header = next(csv.reader(f), [])
    except OSError as e:
        raise ChainsleuthError(f"cannot read {seeds_csv}: {e}") from None
    except (UnicodeDecodeError, csv.Error):
        list(seed_lines(seeds_csv))  # a binary file: one line naming it and the byte
        raise ChainsleuthError(f"{seeds_csv}: not a readable CSV") from None
    if "address" not in [h.strip() for h in header]:
        raise ChainsleuthError(f"{seeds_csv} has no column `address`")
    names = [h.strip() for h in header]
    try:
        table = pacsv.read_csv(
            seeds_csv,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            convert_options=pacsv.ConvertOptions(
                include_columns=["address"], column_types={"address": pa.string()}
            ),
        )
        column = table.column("address")
    except (pa.ArrowInvalid, pa.ArrowKeyError):
        # a row Arrow cannot parse (a quote left open, bytes that are not UTF-8): line by line
        column = pa.chunked_array([[v for _, v in seed_lines(seeds_csv)]], pa.string())
    column = pc.utf8_trim_whitespace(column.fill_null(""))
    column = pc.filter(column, pc.not_equal(column, ""))
    unique = pc.unique(column)
    return unique.take(pc.sort_indices(unique))


def read_seed_addresses(seeds_csv: Path) -> list[str]:
    """The `address` column of a seeds CSV, stripped, without blanks or repeats (sorted)."""
    return [str(a) for a in _read_seeds(seeds_csv).to_pylist()]


def load_prices(prices_csv: Path) -> dict[str, float]:
    """{"YYYY-MM-DD": daily close in USD} from a `date,close_usd[,source]` CSV, checked
    (`chainsleuth.prices.read_prices`: a bad row is an error naming the file, line and field)."""
    return read_prices(prices_csv).close


def _seed_ids(store: Store, addresses: list[str] | pa.Array) -> np.ndarray:
    """Address ids of the seed addresses found in the store (sorted, unique)."""
    con = store.connection().cursor()
    column = addresses if isinstance(addresses, pa.Array) else pa.array(addresses, pa.string())
    con.register("cs_seed_list", pa.table({"address": column}))
    ids = con.sql(
        "SELECT a.address_id FROM cs_seed_list s JOIN address_list_raw a ON a.address = s.address"
    ).fetchnumpy()["address_id"]
    con.unregister("cs_seed_list")
    return np.unique(np.asarray(ids, np.int64))


# ------------------------------------------------------------------------------ the case
@dataclass
class CaseSetup:
    """Everything a case derives from the store, clustering, tags and seeds before it traces
    (`prepare_case`); `deposits` are grouped by address, `options` go to the traces."""

    store: Store
    chain: ChainLookups
    clusters: Any
    addresses: pa.Array
    seed_ids: np.ndarray
    cluster_of: Any  # cluster id per address: the mapped base, or `LayeredIds` (read where indexed)
    service_clusters: np.ndarray
    seed_clusters: np.ndarray
    wallet_clusters: np.ndarray
    service_mask: ClusterSet  # read like a bool per cluster id; 8 B per service cluster
    attribution: dict[int, tuple[str | None, str]]
    mixer: dict[int, str]
    service_stats: ServiceStats
    linked_clusters: np.ndarray
    entity_clusters: np.ndarray
    styled_clusters: np.ndarray  # named through their wallet style (`_lend_by_style`), sorted
    change_clusters: np.ndarray  # named through a spend of a named batch's change, sorted
    batch_tx: np.ndarray  # bool per tx: a payout of 3+ payees (trace.services), 1 B per tx
    sweep_tx: np.ndarray  # bool per tx: SWEEP_MIN_INPUTS+ inputs into one payee, 1 B per tx
    one_wallet: np.ndarray
    out_addr: OutputIds  # address id per output, -1 none (read where indexed)
    out_cluster: OutputIds  # cluster id per output, -1 none
    seed_outputs: np.ndarray
    deposits: np.ndarray
    trace: TraceOptions  # both traces' policy and limits
    stops: dict[str, Any]  # the forward trace's (cash-outs) stops: stop_clusters, is_coinjoin, ...
    lead_attribution: dict[int, tuple[str | None, str]]  # `attribution` and send-all receivers
    back_stops: dict[str, Any]  # the backward trace's (leads): stops at lead_attribution
    # wallet fingerprint per tx (cluster.learned.read_fingerprints; 1 B per tx): the leads'
    # fingerprint_change sign (rows.fingerprint_change)
    tx_fingerprint: np.ndarray | None = None
    # unnamed service label -> the exchanges its wallet style is still compatible with
    # (`_lend_by_style`; ";"-joined): the leads' candidate_exchanges. One entry per label
    # left unnamed with 2+ candidates, not per cluster
    style_candidates: dict[tuple[str | None, str], str] = field(default_factory=dict)
    # the tagged exchanges' habits as the style rules read them, and those no habit tells apart
    # (`cases.lookalikes.lookalike_exchanges`): case.json's lookalike_exchanges
    lookalikes: dict[str, Any] = field(default_factory=dict)
    # named only through a change return (`_lend_by_change`: a named wallet spent the change of
    # their batch), sorted, a subset of change_clusters: `attributed_via` = change_return
    returned_clusters: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # named by the fragment links of `_lend_by_change` (`payout_cospend`, `sweep_into`: kind
    # -> sorted clusters, subsets of change_clusters): `attributed_via` and the caution say which
    fragment_clusters: dict[str, np.ndarray] = field(default_factory=dict)
    # one entry per label `_lend_by_change` named: the txs it rests on (case.json's
    # change_links)
    change_links: list[dict[str, Any]] = field(default_factory=list)
    # the tagged exchanges' (deposit type, hot type, batch fingerprint, window), one row per
    # exchange that shows all three, per window for one whose software changed (k x 4 int64,
    # window -1: the whole chain; `trace.services.habit_rows`): cash-outs' rule 6b
    exchange_habits: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    # per block its calendar window (`trace.services.block_periods`, 4 B per block), where a
    # row of `exchange_habits` holds in one window only; None otherwise
    block_window: np.ndarray | None = None
    # per tagged exchange (entity name): its (deposit type, hot type, batch fingerprint), each
    # negative where not read as one value (`_lend_by_style`): the leads' own_forward reading
    # (`rows.own_forward_at`)
    forward_habits: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    # sorted clusters of the names whose wallet spends its customers' deposits in its payouts
    # (`_deposit_cospender_names` on the final names): cash-outs' send-all rule
    cospender_clusters: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # sorted clusters whose name rests on a wallet-style match (closed-world: the one tagged
    # wallet the fragment fits): styled_clusters and those `_lend_by_change` named through
    # links from such clusters alone (`style_rooted`): the leads' name_basis `style`
    style_rooted_clusters: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def prepare_case(
    data_dir: Path,
    seeds_csv: Path,
    prices: Path | PriceSource | None = None,
    policy: str = "haircut",
    max_hops: int = DEFAULT_MAX_HOPS,
    walk_coinjoins: bool = False,
    scratch: Scratch | None = None,
    habit_period_months: int | None = None,
    style_names: bool = True,
) -> CaseSetup:
    """The service (seed clusters and wallet), stops, CoinJoins and deposit outputs of a case.

    `habit_period_months`: the window the wallet-style rules read habits in
    (`trace.services.wallet_styles`; None: `STYLE_PERIOD_MONTHS`, 0: pooled over the chain).
    `style_names` False: no wallet is named by its style alone (`_lend_by_style`'s `lend`):
    that rule assumes the TagPacks tag every exchange active in the case (a closed world), so
    where they do not, an untagged exchange's wallet takes a tagged look-alike's name. What
    the change rules would lend from such names is then not lent either.

    `prices`: a price CSV, a resolved `PriceSource`, or None for the data directory's series
    (imported, else shipped). `scratch` (core.scratch): where the arrays per tx and per
    address live (TxShapes, the CoinJoin and sweep flags, the fingerprints, the stops): files
    in the page cache; None keeps them in anonymous memory (≈ 16 B per tx at mainnet,
    docs/design/store.md "Investigation's memory").
    """
    from chainsleuth.cluster.engine import Clusters
    from chainsleuth.trace.exposure import attributed_cluster_labels

    # arrays of 1 MiB and more get their own mapping, given back when freed: the passes'
    # slices are not left in malloc's heaps (core.heap; trim_heap between the steps)
    bound_heap()
    store = Store.open(data_dir)
    source = prices if isinstance(prices, PriceSource) else resolve_prices(data_dir, prices)
    chain = ChainLookups(store, source.load().close)
    addresses = _read_seeds(seeds_csv)
    seed_ids = _seed_ids(store, addresses)
    clusters = Clusters(data_dir)
    ids = clusters.cluster_of
    # the mapped base when no delta layer changes it, else the layered ids read where indexed:
    # 0 B per address in memory either way (materialising them would be 8 B per address)
    cluster_of: Any = ids.indexable() if isinstance(ids, LayeredIds) else np.asarray(ids, np.int64)
    n_addresses = cluster_of.shape[0]
    service_clusters, seed_clusters, wallet_clusters = _service_clusters(
        store, chain, cluster_of, seed_ids
    )
    service_mask = ClusterSet(service_clusters, max(n_addresses, 1))
    attribution = {
        c: v
        for c, v in attributed_cluster_labels(data_dir).items()
        if 0 <= c < n_addresses and not service_mask[c]
    }
    n_txs = store.counts["txs"]
    is_coinjoin, mixer = _coinjoins(data_dir, n_txs, scratch)
    shapes = tx_shapes(store, cluster_of, is_coinjoin, scratch)
    stats = service_stats(shapes, cluster_of)
    # read once: the batch links, the wallet styles and the leads' fingerprint_change sign
    # all need it
    fingerprint = read_fingerprints(store, 0, n_txs, SLICE, scratch)
    trim_heap()  # what DuckDB's threads freed in their own malloc arenas during the read
    batch_links = small_batch_links(store, shapes, fingerprint)
    # batch clusters that spend deposits as they come: no entity link into them, and where
    # that splits an entity the links had joined under two names, the pieces are read warily
    # (`_split_entities`)
    spenders = deposit_spending_batches(shapes, store.graph.tx_height)
    entities = service_entities(shapes, batch_links, spenders)
    split = _split_entities(attribution, service_mask, shapes, batch_links, spenders)
    del batch_links
    hot = hot_change_links(shapes, cluster_of, stats)
    trim_heap()
    tags = dict(attribution)  # the tags alone, before services lend their names
    # the names whose wallet spends deposits in its payouts are read up to five times below,
    # each on the names lent by then: the chain's inputs are read once per cluster, here
    # (`trace.services.PaidInReads`), and each read re-aggregates them
    reads = PaidInReads(store, shapes) if shapes is not None else None
    linked, entity_attributed = _attribute_services(
        attribution, stats, entities, service_mask, hot, store, shapes, split, reads
    )
    del entities, hot  # 16 B per link (0.2 hot links per tx on the scale chains)
    trim_heap()
    # a payout into a tag of a wallet that spends its customers' deposits in its payouts pays a
    # deposit there as often as its own change: no name lent so (`_lend_to_funders`)
    cospending = (
        _deposit_cospender_names(store, shapes, attribution, reads=reads)
        if shapes is not None and attribution
        else set()
    )
    funded = _lend_to_funders(shapes, cluster_of, attribution, tags, service_mask, cospending)
    linked = np.union1d(linked, funded)
    candidates: dict[tuple[str | None, str], str] = {}
    lookalikes: dict[str, Any] = {}
    exchange_habits: dict[tuple[str | None, str], tuple[np.ndarray, int]] = {}
    forward_habits: dict[str, tuple[int, int, int]] = {}
    none = np.zeros(0, np.int64)
    chains = (
        spender_change_chains(store, shapes, spenders)
        if shapes is not None and spenders.shape[0]
        else (none, none)
    )
    # a tagged exchange's deposit-spending fragments, its co-spending habit read over them too
    kin = _cospend_kin(chains, tags, service_mask) if services_module.VETO_COSPEND else {}
    # the style rounds and rule 6b's rows group the same clusters (the keys of `attribution`
    # now: the later rules only rename them; and `kin`) several ways: one pass over the chain
    # for all
    keys = np.union1d(np.fromiter(attribution, np.int64, len(attribution)),
                      np.fromiter(kin, np.int64, len(kin)))  # fmt: skip
    style_reads = (
        StyleReads(store, shapes, cluster_of, keys, fingerprint, habit_period_months)
        if shapes is not None and attribution
        else None
    )
    styled = _lend_by_style(
        store, shapes, cluster_of, attribution, fingerprint, candidates, lookalikes,
        exchange_habits, habit_period_months, forward_habits, split[1], style_reads,
        style_names, kin,
    )  # fmt: skip
    returned: list[int] = []
    change_links: list[dict[str, Any]] = []
    change_via: dict[str, list[int]] = {}
    # the clusters whose name rests on a style match: named by it, or by change links from
    # such clusters only (the leads' name_basis `style`, a feature of their confidence)
    style_rooted = set(styled.tolist())
    change_spent = _lend_by_change(
        store, shapes, attribution, service_mask, returned, change_links, change_via, split[1],
        reads, style_reads, style_rooted,
    )  # fmt: skip
    # the change links carried a name past the tags' era (an exchange whose software changed:
    # its tags fall on the old software's batches, and its change chain reaches the new
    # one's): its style is read again over what they named, and what the new software's
    # other fragments show can then match it (docs/design/trace.md "Styles read again after
    # the change links")
    more = change_spent
    for _ in range(STYLE_AFTER_CHANGE if style_names else 0):
        if not more.shape[0]:
            break
        restyled = _lend_by_style(
            store, shapes, cluster_of, attribution, fingerprint, None, None, None,
            habit_period_months, None, split[1], style_reads, True, kin, STYLE_AFTER_CHANGE_CHANGED,
        )  # fmt: skip
        if not restyled.shape[0]:
            break
        styled = np.union1d(styled, restyled)
        style_rooted.update(restyled.tolist())
        more = _lend_by_change(
            store, shapes, attribution, service_mask, returned, change_links, change_via,
            split[1], reads, style_reads, style_rooted,
        )  # fmt: skip
        change_spent = np.union1d(change_spent, more)
    # last: the fragments of a wallet that spends deposits in its batches, chained by their
    # change to the one name their chain holds by now
    chained = _lend_by_chain(store, shapes, attribution, service_mask, spenders, tags, chains)
    change_spent = np.union1d(change_spent, chained)
    trim_heap()
    habits = _exchange_habit_rows(
        store, shapes, cluster_of, attribution, fingerprint, habit_period_months, exchange_habits,
        style_reads,
    )  # fmt: skip
    del style_reads
    # the clusters of the names and labels whose wallet spends deposits in its payouts, read
    # on the final names: a coin their payout spends may be a deposit, not their hot wallet's
    # (cash-outs' send-all rule, `cases.cashouts.cashout_rows`)
    cospender_clusters = np.zeros(0, np.int64)
    if shapes is not None and attribution:
        refused = _deposit_cospender_names(
            store, shapes, attribution, EXCHANGE_CATEGORIES | {UNIDENTIFIED_SERVICE}, reads
        )
        cospender_clusters = np.array(
            sorted(c for c, v in attribution.items() if v in refused), np.int64
        )
    # payouts (at least SMALL_BATCH_PAYEES payees, not a CoinJoin): an entity's output one of
    # them spends is its wallet's, not a deposit it credits (cases.cashouts.cashout_rows)
    batch_tx = shapes.small_batch if shapes is not None else scratch_array(scratch, n_txs, np.bool_)
    # sweeps: what they pay is a wallet's, the outputs they spend are the deposits it credits
    # (a slice at a time into `scratch`: no whole-chain temporaries)
    sweep_tx = scratch_array(scratch, n_txs, np.bool_)
    if shapes is not None:
        for t0 in range(0, n_txs, SLICE):
            t1 = min(n_txs, t0 + SLICE)
            sweep_tx[t0:t1] = (shapes.n_inputs[t0:t1] >= SWEEP_MIN_INPUTS) & (
                shapes.n_payees[t0:t1] == 1
            )
    # a backward walk also stops where another owner's send-all landed and was spent on (a
    # customer's deposit an exchange forwarded): unidentified_service for the leads only
    lead_attribution = dict(attribution)
    receivers = sendall_receivers(shapes, cluster_of)
    for c in receivers[~service_mask[receivers]].tolist():
        if c not in lead_attribution:
            lead_attribution[c] = (f"cluster:{c}", UNIDENTIFIED_SERVICE)
    del shapes, receivers, reads  # `reads` holds `shapes` and its triples
    trim_heap()
    # the traces' stops as one flag per address (1 B each), shared by every chunk and thread:
    # the walk needs no cluster id per address then; backward at the lead attribution (a
    # superset of `attribution`), forward at every cluster outside the service
    back_stop = address_stops(
        np.array(sorted(lead_attribution), np.int64), cluster_of, stop_sorted=True, scratch=scratch
    )
    # the cash-out walk stops at every cluster outside the service (its payees), without a
    # mask over cluster ids
    forward_stop = address_stops(
        service_mask.ids, cluster_of, stop_sorted=True, outside=True, scratch=scratch
    )
    # one wallet cannot mix with itself: a flagged tx whose inputs share a cluster is walked
    # (`only`: true for flagged txs alone, so no `is_coinjoin &` and no per-tx temporaries)
    one_wallet = one_wallet_txs(store, cluster_of, only=is_coinjoin, scratch=scratch)
    is_coinjoin[np.flatnonzero(one_wallet)] = False

    # address id and cluster id per output (-1: no address), read from the mapped arrays
    # where the case asks (nothing per output is held)
    out_addr = OutputIds(chain.graph.output_address)
    out_cluster = OutputIds(chain.graph.output_address, cluster_of)
    seed_outputs = _outputs_paying(chain.graph.output_address, seed_ids)

    # internal moves (the service paying its own deposit address) are not customers
    creating = np.searchsorted(chain.graph.tx_first_output, seed_outputs, side="right") - 1
    internal_tx = _spends_from(store, creating, service_mask, cluster_of)
    deposits = seed_outputs[~internal_tx]
    # grouped by address, so each chunk of the trace holds every output of its addresses
    deposits = deposits[np.lexsort((deposits, out_addr[deposits]))]
    trim_heap()
    trace = TraceOptions(
        policy=policy,
        max_hops=max_hops,
        max_entries_per_seed=MAX_ENTRIES_PER_SEED,
        min_fraction=MIN_FRACTION,
        walk_coinjoins=walk_coinjoins,
    )
    stops: dict[str, Any] = {
        "stop_clusters": forward_stop,
        "is_coinjoin": is_coinjoin,
        "cluster_of": cluster_of,
    }
    # a CoinJoin's change that amounts tie to the one input that paid it did not mix: the
    # leads' walk goes on through that input (trace.mix_change); the cash-outs' walk never
    # enters a CoinJoin backward, so it needs none
    g = chain.graph
    mix_change = mix_change_links(
        g.tx_first_input, g.tx_first_output, g.input_spent_output, g.output_value, is_coinjoin
    )
    back_stops = {**stops, "stop_clusters": back_stop, "mix_change": mix_change}
    # rule 6b reads a per-window row in the window of the forward's block
    block_window = (
        block_periods(np.asarray(store.graph.block_time), _period_months(habit_period_months))
        if (habits[:, 3] >= 0).any()
        else None
    )
    return CaseSetup(
        store=store,
        chain=chain,
        clusters=clusters,
        addresses=addresses,
        seed_ids=seed_ids,
        cluster_of=cluster_of,
        service_clusters=service_clusters,
        seed_clusters=seed_clusters,
        wallet_clusters=wallet_clusters,
        service_mask=service_mask,
        attribution=attribution,
        mixer=mixer,
        service_stats=stats,
        linked_clusters=linked,
        entity_clusters=entity_attributed,
        styled_clusters=styled,
        change_clusters=change_spent,
        batch_tx=batch_tx,
        sweep_tx=sweep_tx,
        one_wallet=one_wallet,
        out_addr=out_addr,
        out_cluster=out_cluster,
        seed_outputs=seed_outputs,
        deposits=deposits,
        trace=trace,
        stops=stops,
        lead_attribution=lead_attribution,
        back_stops=back_stops,
        tx_fingerprint=fingerprint,
        style_candidates=candidates,
        lookalikes=lookalikes or lookalike_exchanges(None, np.zeros(0, np.int64), []),
        returned_clusters=np.array(returned, np.int64),
        fragment_clusters={k: np.array(change_via.get(k, []), np.int64) for k in FRAGMENT_LINKS},
        change_links=change_links,
        exchange_habits=habits,
        block_window=block_window,
        forward_habits=forward_habits,
        cospender_clusters=cospender_clusters,
        style_rooted_clusters=np.array(sorted(style_rooted), np.int64),
    )


def closed_world_counts(leads: pa.Table, cut: float = DEFAULT_CASHOUT_CUT) -> dict[str, int]:
    """case.json's `closed_world` counts: per deposit address, its deciding lead (its exchange
    row, `EXCHANGE_CATEGORIES`, at confidence `cut` or above with the largest `amount_sat`: the
    lead a subpoena follows, as `cases.evaluate` scores it; ties: the first row in the case's
    order). `deciding_leads`: the deposits that have one; `leads_resting_on_style`: those whose
    deciding lead's `name_basis` is `style` (named by a wallet-style match, or carried by
    links from style-named clusters only: the closed-world assumption, as the calibration's
    `style_name` counts it); `leads_resting_on_style_carried`: of those, the ones carried by
    such links (`attributed_via` not `wallet_style`). A table written before `name_basis`
    counts `attributed_via` == `wallet_style` (no carried ones)."""
    counts = {"deciding_leads": 0, "leads_resting_on_style": 0, "leads_resting_on_style_carried": 0}
    if leads.num_rows == 0:
        return counts
    # on the Arrow columns: no Python object per lead (cases.columns)
    confidence = leads.column("confidence").to_numpy(zero_copy_only=False)
    keep = string_in(leads.column("source_category"), EXCHANGE_CATEGORIES) & (
        np.nan_to_num(np.asarray(confidence, np.float64), nan=0.0) >= cut
    )
    if not keep.any():
        return counts
    read = ["deposit_address", "amount_sat", "attributed_via"]
    read += ["name_basis"] if "name_basis" in leads.column_names else []
    kept = leads.select(read).filter(pa.array(keep))  # the columns read, not the whole rows
    by_style = string_equals(kept.column("attributed_via"), "wallet_style")
    style = (
        string_equals(kept.column("name_basis"), "style")
        if "name_basis" in kept.column_names
        else by_style
    )
    # per deposit the largest amount first (ties: the first row in the case's order: a stable
    # sort)
    order = pc.sort_indices(
        kept, sort_keys=[("deposit_address", "ascending"), ("amount_sat", "descending")]
    )
    deposit = pc.take(kept.column("deposit_address"), order)
    first = np.ones(kept.num_rows, np.bool_)
    first[1:] = bools(pc.not_equal(deposit[1:], deposit[:-1]))
    order_np = order.to_numpy()
    deciding_style = style[order_np][first]
    counts["deciding_leads"] = int(first.sum())
    counts["leads_resting_on_style"] = int(deciding_style.sum())
    counts["leads_resting_on_style_carried"] = int(
        (deciding_style & ~by_style[order_np][first]).sum()
    )
    return counts


def leads_resting_on_style(leads: pa.Table, cut: float = DEFAULT_CASHOUT_CUT) -> int:
    """The deposits whose deciding lead rests on a wallet-style name (`closed_world_counts`'
    `leads_resting_on_style`: name_basis `style`, named by the style rule or carried by links
    from style-named clusters only)."""
    return closed_world_counts(leads, cut)["leads_resting_on_style"]


def _period_months(habit_period_months: int | None) -> int:
    """The habit window in months (`prepare_case`'s `habit_period_months`, None: the default)."""
    return STYLE_PERIOD_MONTHS if habit_period_months is None else int(habit_period_months)


def investigate(
    data_dir: Path,
    seeds_csv: Path,
    out_dir: Path,
    policy: str = "haircut",
    max_hops: int = DEFAULT_MAX_HOPS,
    prices_csv: Path | None = None,
    report: bool = True,
    pdf: bool = True,
    walk_coinjoins: bool = False,
    min_confidence: float = 0.0,
    progress: Callable[[str, int, int | None], None] | None = None,
    habit_period_months: int | None = None,
    style_names: bool = True,
) -> InvestigationSummary:
    """Run the case: leads (who funded the deposits), subpoenas (per exchange), cash-outs.

    `min_confidence` leaves subpoena rows whose best lead is less sure out of subpoenas.csv
    (leads.csv keeps every lead). `progress(step, done, total)` is called as the case moves
    through its steps ("setup", "leads", "cashouts", "files", "report"; done/total count the
    chunks of seeds traced, total None where unknown). `habit_period_months`: the window the
    wallet-style rules read habits in (`prepare_case`). `style_names` False: no wallet is named
    by its style alone (`prepare_case`), for TagPacks that do not tag every exchange active
    in the case; case.json's `closed_world` says which was run and how many deciding leads
    rest on a style name."""

    def tell(step: str, done: int = 0, total: int | None = None) -> None:
        if progress is not None:
            progress(step, done, total)

    from chainsleuth.trace.engine import POLICIES, trace_back, trace_forward

    if policy not in POLICIES:
        raise ChainsleuthError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if max_hops < 1:
        raise ChainsleuthError("max_hops must be at least 1")
    data_dir, seeds_csv, out_dir = Path(data_dir), Path(seeds_csv), Path(out_dir)
    price_source = resolve_prices(data_dir, prices_csv)
    price_series = price_source.load()  # checked before the case starts
    tell("setup")
    # the case's arrays per tx and per address in files beside its outputs (page cache, not
    # anonymous memory), unlinked at once: nothing of them is left in out_dir
    made_out_dir = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        setup = prepare_case(
            data_dir, seeds_csv, price_source, policy, max_hops, walk_coinjoins, Scratch(out_dir),
            habit_period_months, style_names,
        )  # fmt: skip
    except BaseException:
        # a case that fails before it starts leaves no folder behind that it made (bad seeds,
        # a store not clustered): the scratch files were unlinked, so it is empty
        if made_out_dir and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    store, chain, clusters, addresses = setup.store, setup.chain, setup.clusters, setup.addresses
    seed_ids, attribution, mixer = setup.seed_ids, setup.attribution, setup.mixer
    service_clusters, service_mask = setup.service_clusters, setup.service_mask
    seed_clusters, wallet_clusters, one_wallet = (
        setup.seed_clusters,
        setup.wallet_clusters,
        setup.one_wallet,
    )
    out_addr, out_cluster = setup.out_addr, setup.out_cluster
    seed_outputs, deposits = setup.seed_outputs, setup.deposits
    parts: list[pa.Table] = []
    untraced = 0
    # named through their wallet style or a spend of a named wallet's change
    # (`_lend_by_change`): not their own tag either (confidence, cash-outs); read like bool
    # masks over the cluster ids, 8 B per member
    n_clusters = service_mask.shape[0]
    linked_mask = ClusterSet(
        np.concatenate([setup.linked_clusters, setup.styled_clusters, setup.change_clusters]),
        n_clusters,
    )
    styled_mask = ClusterSet(setup.styled_clusters, n_clusters)
    style_rooted_mask = ClusterSet(setup.style_rooted_clusters, n_clusters)
    change_mask = ClusterSet(setup.change_clusters, n_clusters)
    returned_mask = ClusterSet(setup.returned_clusters, n_clusters)
    fragment_masks = {k: ClusterSet(v, n_clusters) for k, v in setup.fragment_clusters.items()}
    # the leads' payout_on_path sign (rows.handoff_signs): payouts of 3+ payees, CoinJoins
    path_txs = {"small_batch": setup.batch_tx, "coinjoin": setup.stops["is_coinjoin"]}
    tell("leads", 0, None)
    for result in _in_chunks(
        partial(trace_back, data_dir, options=setup.trace),
        deposits,
        out_addr[deposits],
        **setup.back_stops,
    ):
        tell("leads", len(parts) + 1, None)
        parts.append(
            lead_table(
                chain,
                result,
                out_cluster,
                setup.lead_attribution,
                mixer,
                policy,
                max_hops,
                linked_mask,
                styled_mask,
                change_mask,
                setup.tx_fingerprint,
                setup.style_candidates,
                setup.stops["is_coinjoin"],
                path_txs,
                returned_mask,
                fragment_masks,
                setup.forward_habits,
                style_rooted_mask,
            )
        )
        untraced += int(result.dropped.sum())
    leads = (pa.concat_tables(parts) if parts else schema_of(LEAD_COLUMNS).empty_table()).sort_by(
        LEAD_ORDER
    )
    # a lead's hold counts over the whole case's typical hold (each chunk measured its own):
    # recomputed from the rows themselves, so the chunking changes no byte
    typical_hold = case_typical_hold(leads)
    leads = recalibrate_leads(leads, typical_hold)
    del parts
    trim_heap()
    subpoenas = subpoena_table(leads, min_confidence)
    # what each look-alike group costs this case: deposits whose leads end at a service that
    # could be any of them
    lookalikes = count_unnamed_leads(setup.lookalikes, leads)
    # the deposits no subpoena covers whose best lead is a wallet several exchanges fit alike:
    # a request to each candidate to rule it in or out (cases.candidate_requests)
    requests = request_table(leads, cashout_cut(min_confidence))

    tell("cashouts")
    # store.spent_by_tx() read at the seed outputs only (it copies the whole array: 8 B/output)
    spender = np.asarray(store.graph.output_spent_by_tx[seed_outputs]).astype(np.int64)
    spent_seed = seed_outputs[(spender != int(NONE32)) & (spender < store.counts["txs"])]
    cash_parts = [
        cashout_rows(
            result,
            out_cluster,
            out_addr,
            attribution,
            service_mask,
            store.graph.tx_first_input,
            store.graph.tx_first_output,
            store.graph.output_spent_by_tx,
            setup.stops["is_coinjoin"],
            setup.sweep_tx,
            setup.batch_tx,
            store.graph.output_value,
            store.graph.output_script_type,
            setup.tx_fingerprint,
            setup.exchange_habits,
            store.graph.tx_height,
            setup.block_window,
            ClusterSet(setup.cospender_clusters, n_clusters),
        )  # fmt: skip
        for result in _in_chunks(
            partial(trace_forward, data_dir, options=setup.trace),
            spent_seed,
            np.arange(spent_seed.shape[0]),
            **setup.stops,
        )
    ]
    cashouts = cashout_table(chain, [p.rows for p in cash_parts], attribution, mixer, policy)
    payee_fates = payee_fates_summary([p.fates for p in cash_parts])
    unidentified_payees = {
        "trace_rows": sum(p.unidentified for p in cash_parts),
        "sat": sum(p.unidentified_sat for p in cash_parts),
    }
    del cash_parts
    trim_heap()

    tell("files")
    out_dir.mkdir(parents=True, exist_ok=True)
    digests = {
        "leads.csv": _write_csv(out_dir / "leads.csv", LEAD_COLUMNS, leads),
        "subpoenas.csv": _write_csv(out_dir / "subpoenas.csv", SUBPOENA_COLUMNS, subpoenas),
        "cashouts.csv": _write_csv(out_dir / "cashouts.csv", CASHOUT_COLUMNS, cashouts),
    }
    services = services_table(store, setup.cluster_of, leads, cashouts, setup.service_stats)
    digests["services.csv"] = _write_csv(out_dir / "services.csv", SERVICE_COLUMNS, services)
    digests["requests.csv"] = _write_csv(out_dir / "requests.csv", REQUEST_COLUMNS, requests)
    asked = request_summary(requests)
    closed = closed_world_counts(leads)
    tip = store.tip
    tags_manifest = data_dir / "tags" / "manifest.json"
    case = {
        "format": 1,
        "chainsleuth_version": __version__,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "inputs": {
            "seeds": {"path": str(seeds_csv.resolve()), "sha256": _sha256(seeds_csv)},
            "prices": describe(price_source, price_series),
        },
        "store": {
            "data_dir": str(data_dir.resolve()),
            "tip_height": None if tip is None else tip[0],
            "tip_hash": None if tip is None else tip[1],
            "counts": store.counts,
            "clustering": {
                "policy": clusters.manifest.get("policy"),
                "generation": clusters.manifest.get("generation"),
            },
            "tags_manifest_sha256": _sha256(tags_manifest) if tags_manifest.exists() else None,
        },
        "parameters": {
            "policy": policy,
            "max_hops": max_hops,
            "stop_clusters": "every attributed cluster (tags stage) outside the service, and "
            "every untagged cluster that behaves like a service (unidentified_service)",
            "unidentified_service": {
                "batch_min_payees": BATCH_MIN_PAYEES,
                "sweep_min_inputs": SWEEP_MIN_INPUTS,
                "min_events": MIN_EVENTS,
            },
            "exchange_categories": sorted(EXCHANGE_CATEGORIES),
            "coinjoins": "cluster stage (clusters/manifest.json files.coinjoins) "
            + ("walked through, leads beyond marked" if walk_coinjoins else "stop the walk"),
            "walk_coinjoins": walk_coinjoins,
            "min_confidence": min_confidence,
            "one_wallet_coinjoins_walked": int(one_wallet.sum()),
            "confidence": {
                "coinjoin_cap": COINJOIN_CAP,
                "unconfirmed_forward_cap": UNCONFIRMED_FORWARD_CAP,
                "long_hold_days": LONG_HOLD_DAYS,
                "long_hold_cap": LONG_HOLD_CAP,
                # a long hold on a path this long with no forward sign is not capped (rows.py)
                "long_hold_min_hops": LONG_HOLD_MIN_HOPS,
                "long_hold_max_hops": LONG_HOLD_MAX_HOPS,
                "lead_features": list(calibration().lead_features),
                "lead_weights": [round(float(w), 6) for w in calibration().lead_weights],
                "cashout_features": list(calibration().cashout_features),
                "cashout_weights": [round(float(w), 6) for w in calibration().cashout_weights],
                "policy_scale": calibration().policy_scale,
                # a lead's hold counts over the case's typical hold (confidence.py)
                "typical_hold_days": round(typical_hold, 4),
                "reference_hold_days": calibration().reference_hold_days,
                "max_hold_ratio": MAX_HOLD_RATIO,
                "min_typical_rows": MIN_TYPICAL_ROWS,
                "fitted_on": calibration().fitted_on,
            },
            "batch_min_outputs": BATCH_MIN_OUTPUTS,
            "max_paths_per_lead": MAX_PATHS,
            "service_wallet": "clusters receiving two or more one-output sweeps of the seeds",
        },
        "service": {
            "seed_addresses": len(addresses),
            "seed_addresses_in_store": int(seed_ids.shape[0]),
            "clusters": int(service_clusters.shape[0]),
            "seed_clusters": int(seed_clusters.shape[0]),
            "wallet_clusters": [int(c) for c in wallet_clusters[:100]],
            "deposit_outputs": int(deposits.shape[0]),
            "internal_outputs_skipped": int(seed_outputs.shape[0] - deposits.shape[0]),
            "untraced_sat": untraced,
            # the service's payees not shown to be a service's deposit: no cash-out row
            "cashout_payees_unidentified": unidentified_payees,
            # the service's payees by what their spend showed (cases.cashouts.PayeeFates)
            "cashout_payee_fates": payee_fates,
        },
        # tagged exchanges the wallet-style rule cannot tell apart, from the habits it read
        # (cases.lookalikes; docs/design/cases.md "Look-alike exchanges")
        "lookalike_exchanges": lookalikes,
        # requests.csv: per candidate exchange, the unnamed deposits whose best lead is a
        # wallet it and others fit alike (to rule in or out; never an attribution)
        "candidate_requests": asked,
        # the untagged services named through a batch's change (`_lend_by_change`), each with
        # the batch and the spend of its change that link it to the name: the evidence a lead
        # with attributed_via change_spend or change_return rests on
        "change_links": setup.change_links,
        # the wallet-style rule's closed-world assumption (every exchange active in the case
        # tagged): whether it named wallets, the deciding leads (subpoena-grade: per deposit
        # its largest exchange row at >= 0.5) and those resting on such a name (name_basis
        # style; `_carried`: through links from style-named clusters; `closed_world_counts`)
        "closed_world": {"style_names": style_names, **closed},
        "outputs": digests,
    }
    case_json = out_dir / "case.json"
    atomic_write_text(case_json, json.dumps(case, indent=2, sort_keys=True) + "\n")
    html = pdf_path = None
    if report:
        from chainsleuth.cases.report import write_report

        tell("report")
        paths = write_report(out_dir, pdf=pdf)
        html, pdf_path = paths.html, paths.pdf

    exchanges: dict[str, int] = {}
    for name in subpoenas.column("exchange").to_pylist():  # sorted by total paid
        exchanges[name] = exchanges.get(name, 0) + 1
    # cash-outs count at the case's cut, as in the report (rows below are listed in the CSV)
    cut = cashout_cut(min_confidence)
    confidence = cashouts.column("confidence").to_numpy(zero_copy_only=False)
    counted = np.nan_to_num(np.asarray(confidence, np.float64), nan=1.0) >= cut
    at_cut = cashouts.filter(pa.array(counted))
    by_entity: dict[str, int] = {}
    for name, sat in zip(
        at_cut.column("destination_entity").to_pylist(),
        at_cut.column("amount_sat").to_pylist(),
        strict=True,
    ):
        by_entity[name] = by_entity.get(name, 0) + int(sat)
    named = string_in(leads.column("source_category"), EXCHANGE_CATEGORIES)
    deposits_named = pc.count_distinct(leads.column("deposit_address").filter(pa.array(named)))
    return InvestigationSummary(
        out_dir=out_dir,
        n_seeds=len(addresses),
        n_seeds_in_store=int(seed_ids.shape[0]),
        n_deposit_outputs=int(deposits.shape[0]),
        n_deposits_with_exchange_lead=int(deposits_named.as_py()),
        n_leads=leads.num_rows,
        n_subpoena_rows=subpoenas.num_rows,
        n_cashouts=cashouts.num_rows,
        n_cashouts_at_cut=int(counted.sum()),
        cashout_cut=cut,
        service_clusters=int(service_clusters.shape[0]),
        exchanges=exchanges,
        cashouts_by_entity=by_entity,
        untraced_sat=untraced,
        report_html=html,
        report_pdf=pdf_path,
        lookalike_exchanges=[g["exchanges"] for g in lookalikes.get("groups", [])],
        unreadable_exchanges=list(lookalikes.get("unreadable", [])),
        n_request_rows=requests.num_rows,
        n_request_deposits=int(asked["deposits"]),
        n_leads_resting_on_style=closed["leads_resting_on_style"],
        n_leads_resting_on_style_carried=closed["leads_resting_on_style_carried"],
        n_deciding_leads=closed["deciding_leads"],
    )


def _attribute_services(
    attribution: dict[int, tuple[str | None, str]],
    stats: ServiceStats,
    entities: tuple[np.ndarray, np.ndarray],
    service_mask: np.ndarray | ClusterSet,
    hot_links: tuple[np.ndarray, np.ndarray] | None = None,
    store: Store | None = None,
    shapes: TxShapes | None = None,
    split: tuple[np.ndarray, np.ndarray] | None = None,
    reads: PaidInReads | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Extend `attribution` (in place) to the untagged clusters of custodial services.

    Clusters that one service's own transactions join (`trace.services.service_entities`) are
    one entity. An entity whose tagged clusters all name one actor lends that name to its
    untagged clusters; an entity with conflicting names lends none. Untagged clusters that
    behave like a service (batches) and got no name, and every cluster of their entity, are
    `unidentified_service`, named `cluster:<entity>`. The seized service's own clusters are
    left alone. Last, a cluster still without a name that spent into a hot wallet's change
    (`trace.services.hot_change_links`) takes that wallet's name or `unidentified_service`,
    one hop only (never through an entity: one wrong link would carry a whole entity). With
    `store` and `shapes`, a hot wallet whose exchange spends its customers' deposits in its
    payouts (`_deposit_cospender_names`) lends no name so: its deposits sit in its cluster,
    so a customer's payment into one looks like a spend into its change. Returns
    the clusters that got an exchange's name through their entity or a hot-change link, and
    every cluster attributed so (named or `unidentified_service`), sorted.

    `split` (`_split_entities`: the clusters that the links without the deposit spenders' put
    in an entity of two names, and the deposit spenders among them): an entity with a cluster
    of the first lends no name when its name's wallet spends deposits in its payouts (read on
    the tags, `_deposit_cospender_names`) or when it holds one of the second. The links that
    joined two owners there are cut, but a few such links may be left in it. `reads`: the
    case's `PaidInReads` (`_deposit_cospender_names`).
    """

    # Python objects only for the clusters that get a name: the tests over every node and hot
    # link are vectorized (1.1 M hot links at 5 M txs, each two Python ints in a loop before),
    # and keep their order, so `attribution` gets the same keys in the same order. The clusters
    # of one entity share their name's tuple.
    n = service_mask.shape[0]

    def known(ids: np.ndarray) -> np.ndarray:
        keys = np.fromiter(attribution, np.int64, len(attribution))
        result: np.ndarray = ClusterSet(keys, n)[ids]
        return result

    unnamed: dict[int, tuple[str | None, str]] = {}

    def unidentified(e: int) -> tuple[str | None, str]:
        return unnamed.setdefault(e, (f"cluster:{e}", UNIDENTIFIED_SERVICE))

    nodes, entity = entities
    outside = ~service_mask[nodes] if nodes.shape[0] else np.zeros(0, np.bool_)
    nodes, entity = nodes[outside], entity[outside]
    names: dict[int, set[tuple[str | None, str]]] = {}
    tagged = known(nodes)
    for c, e in zip(nodes[tagged].tolist(), entity[tagged].tolist(), strict=True):
        names.setdefault(e, set()).add(attribution[c])
    if split is not None and split[0].shape[0] and names:
        for e in _wary_entities(attribution, nodes, entity, names, split, store, shapes, reads):
            del names[e]
    named_entities = np.array(sorted(names), np.int64)
    linked = []
    # nodes are distinct: naming one does not change the test of another
    of_named_entity = ClusterSet(named_entities, n)[entity]
    lend = ~tagged & of_named_entity
    for c, e in zip(nodes[lend].tolist(), entity[lend].tolist(), strict=True):
        named = names[e]
        if len(named) == 1:
            attribution[c] = next(iter(named))
            linked.append(c)
    # untagged services: the service-like clusters, and the rest of their entities
    like = stats.service_like()
    like = like[~service_mask[like]]
    # the entity of each service-like cluster (itself outside every entity); nodes are sorted
    like_entity = like.copy()
    if nodes.shape[0]:
        pos = np.minimum(np.searchsorted(nodes, like), nodes.shape[0] - 1)
        inside = nodes[pos] == like
        like_entity[inside] = entity[pos[inside]]
    free = ~known(like)
    service_entity = ClusterSet(like_entity[free], n)
    for c, e in zip(like[free].tolist(), like_entity[free].tolist(), strict=True):
        attribution[c] = unidentified(e)
    via_entity = list(linked)
    rest = ~known(nodes) & service_entity[entity] & ~of_named_entity
    for c, e in zip(nodes[rest].tolist(), entity[rest].tolist(), strict=True):
        attribution[c] = unidentified(e)
        via_entity.append(c)
    if hot_links is not None:
        lent: dict[int, set[tuple[str | None, str]]] = {}
        a_all, b_all = hot_links
        refused = set()
        if store is not None and shapes is not None and a_all.shape[0]:
            refused = _deposit_cospender_names(store, shapes, attribution, reads=reads)
        # `attribution` is not changed while the links are read: one test for all of them
        take = ~known(a_all) & ~service_mask[a_all] & known(b_all)
        for a, b in zip(a_all[take].tolist(), b_all[take].tolist(), strict=True):
            # a customer paying a deposit that sits in the hot wallet's cluster: no name, and
            # a veto of the others (`COSPEND_VETO`)
            name = COSPEND_VETO if attribution[b] in refused else attribution[b]
            lent.setdefault(a, set()).add(name)
        for a, got in lent.items():
            if len(got) == 1 and COSPEND_VETO not in got:
                attribution[a] = next(iter(got))
                via_entity.append(a)
                if attribution[a][1] != UNIDENTIFIED_SERVICE:
                    linked.append(a)
    return np.array(sorted(linked), np.int64), np.array(sorted(via_entity), np.int64)


def _lend_to_funders(
    shapes: TxShapes | None,
    cluster_of: np.ndarray,
    attribution: dict[int, tuple[str | None, str]],
    tags: dict[int, tuple[str | None, str]],
    service_mask: np.ndarray | ClusterSet,
    cospending: set[tuple[str | None, str]] | frozenset[tuple[str | None, str]] = frozenset(),
) -> np.ndarray:
    """Name the wallet whose own payout paid a tag after that tag (in place).

    A tag on a cold-storage address or on a batch's change shows nothing of its exchange's hot
    wallet, and such a blind name blocks every wallet-style match it cannot be told from
    (`trace.services.style_matches`). The tx that paid it can be the exchange's own
    (`trace.services.funder_links`), but a tag is as often a deposit address, and a deposit
    that was paid and not yet swept (or dust never swept) looks the same: its payer is a
    customer, or another exchange paying a withdrawal. Naming either after the tag would make
    every deposit it funds a wrong lead. So only a payout of 3+ payees (the exchange paying
    out, the tag its change) lends the name, and only to a payer that carries no name yet: an
    `unidentified_service` that pays into a tag is as likely another exchange's withdrawal
    (docs/accuracy-log.md "Blind tagged wallets": with every deposit's sweep removed, lending
    to such services dropped lead precision to 0.65 on hard small 1 and 7; this guard kept it
    at 0.991-1.000). Only where exactly one exchange name is implied for the payer. A tag of
    a name in `cospending` (`_deposit_cospender_names`: its wallet spends its customers'
    deposits in its payouts, so its tagged cluster holds deposits that its payouts spend like
    change) implies no name: a payout into it is as likely another exchange paying a
    withdrawal into one of those deposits (on hard_cospend small 1-14 every payer named
    through such a tag was another exchange's wallet, 4 of 4). Returns
    the clusters named so (sorted; `attributed_via` = `service_entity`)."""
    exchange_tags = {
        c: v for c, v in tags.items() if v[1] not in _MIXING_CATEGORIES and v not in cospending
    }
    if shapes is None or not exchange_tags:
        return np.zeros(0, np.int64)
    tagged = np.array(sorted(exchange_tags), np.int64)
    funder, paid, payout = funder_links(shapes, cluster_of, tagged)
    implied: dict[int, set[tuple[str | None, str]]] = {}
    for f, t in zip(funder[payout].tolist(), paid[payout].tolist(), strict=True):
        if not service_mask[f] and f not in attribution:
            implied.setdefault(f, set()).add(exchange_tags[t])
    named = []
    for f, names in implied.items():
        if len(names) == 1:
            attribution[f] = next(iter(names))
            named.append(f)
    return np.array(sorted(named), np.int64)


#: Rounds of naming by wallet style (`_lend_by_style`). On the simulated hard and realistic
#: small worlds the second round named 6-108% more clusters than the first, the third none.
STYLE_ROUNDS = 3

#: Fewest orphan groups (`trace.services.style_orphan_vetoes`: unnamed services whose habits
#: rule out every named wallet) a style match must also be compatible with to be left unnamed:
#: an exchange the tags miss shows in its other fragments, and a fragment that could be it as
#: well as the one named wallet it fits is no evidence for that wallet (docs/design/trace.md).
#: 0 turns the guard off.
ORPHAN_MIN_GROUPS = 2

#: Fewest matched groups on each side of a habit that makes a named wallet's style matches
#: contested (`trace.services.style_rival_vetoes`: two groups matched to one named wallet that
#: differ in a habit it does not show cannot both be it). 0 turns the guard off.
RIVAL_MIN_GROUPS = 1

#: How many times as many matched groups must contradict a group as agree with it for it to be
#: the rival where the named wallet's own read does not settle a contest
#: (`trace.services.style_rival_vetoes`). 10 (`STYLE_HABIT_RATIO`) left realistic_sw small 10's
#: dunmore contested by two groups of the tagged arcadia against 15 of its own, every match to
#: it unnamed (lead recall 0.947 -> 0.514); 5 settles it, and the untagged variants move the
#: same either way (docs/accuracy-log.md "Contested style names").
RIVAL_RATIO = 5

#: Tag categories of CoinJoin coordinators and mixers (never named through a wallet style).
_MIXING_CATEGORIES = frozenset({"coinjoin", "mixer"})


def _lend_by_style(
    store: Store,
    shapes: TxShapes | None,
    cluster_of: np.ndarray,
    attribution: dict[int, tuple[str | None, str]],
    fingerprint: np.ndarray | None = None,
    candidates: dict[tuple[str | None, str], str] | None = None,
    lookalikes: dict[str, Any] | None = None,
    exchange_habits: dict[tuple[str | None, str], tuple[np.ndarray, int]] | None = None,
    period_months: int | None = None,
    forward_habits: dict[str, tuple[int, int, int]] | None = None,
    deposit_spenders: np.ndarray | None = None,
    style_reads: StyleReads | None = None,
    lend: bool = True,
    cospend_kin: dict[int, tuple[str | None, str]] | None = None,
    changed_only: bool = False,
) -> np.ndarray:
    """Name untagged services after the one tagged wallet whose style they alone share.

    A wallet that never reuses an address falls apart into hundreds of service entities that
    nothing on chain joins (docs/investigations.md), and its 3-5 tags name only the few they
    fall on. Its habits still show in every batch: the script type of the coins it spends, its
    wallet fingerprint, where it puts its change, the script type of the deposits it sweeps
    (`trace.services.wallet_styles`). An `unidentified_service` that shares the hot type, the
    fingerprint and its change position or deposit type with exactly one named wallet, and
    that no other named wallet's habits rule out (`trace.services.style_matches`), takes that
    name (in place; `attributed_via` = `wallet_style`). Rounds repeat with the named wallets'
    styles widened by what joined them, up to `STYLE_ROUNDS`. On the simulated hard and
    realistic small worlds (seeds 1-7) 14 of 6,171 clusters named so were another owner's
    (strays their entity carried), docs/investigations.md. Returns the clusters named so.

    `candidates`, when given, gets the exchanges each service left unnamed is still compatible
    with (`trace.services.style_candidates` on the last round's styles): its label -> the
    names, sorted and `;`-joined (the leads' `candidate_exchanges`; never a name).
    `lookalikes`, when given, gets the tagged exchanges' habits on those styles and the ones
    no habit tells apart (`cases.lookalikes.lookalike_exchanges`: case.json's
    `lookalike_exchanges`). `exchange_habits`, when given, gets per tagged exchange (label)
    its deposit type, hot type and batch fingerprint (`read_fingerprints` code) as rows (k x 4,
    the last column the calendar window the row holds in, -1 the whole chain;
    `trace.services.habit_rows`: per window for an exchange whose software changed, else one
    pooled row if it shows all three), and its pooled deposit type (cash-outs' rule 6b,
    `cases.cashouts`; `_exchange_habit_rows`).
    `period_months`: the window habits are compared in (`trace.services.wallet_styles`); the
    look-alike warning stays pooled over the chain.
    `forward_habits`, when given, gets the same three per tagged exchange by entity name, a
    habit not read (or two labels of one name that differ on it) negative (the leads'
    `own_forward`, `rows.own_forward_at`).
    `deposit_spenders` (`_split_entities`): a label with one of these clusters takes no style
    name: the coins its batches spend are its customers' deposits, so its habits are theirs
    as much as its own. `style_reads` (`trace.services.StyleReads` of `attribution`'s
    clusters): each round's styles re-aggregated from its one pass, the same.
    `lend` False: one round reads the styles (for `candidates`, `lookalikes` and the habits,
    then read on the tags alone) and names nothing: "the one tagged wallet it fits" holds only
    where every exchange active on the chain is tagged (`prepare_case`'s `style_names`).
    `cospend_kin` (`_cospend_kin`): a tagged exchange's deposit-spending fragments; with
    `trace.services.VETO_COSPEND` its co-spending habit is read over them too.
    `changed_only` (`STYLE_AFTER_CHANGE`'s second pass): a match names a group only after a
    named wallet whose signing software reads changed (`trace.services.habits_changed`)."""
    if not attribution:
        return np.zeros(0, np.int64)
    names: dict[tuple[str | None, str], int] = {}
    clusters = np.fromiter(attribution.keys(), np.int64, len(attribution))
    label = np.fromiter(
        (names.setdefault(v, len(names)) for v in attribution.values()), np.int64, len(attribution)
    )
    by_label = list(names)
    unidentified = np.array([v[1] == UNIDENTIFIED_SERVICE for v in by_label], np.bool_)
    # CoinJoin coordinators pay no batches (a CoinJoin is not one): they can't share a style
    mixing = np.array([v[1] in _MIXING_CATEGORIES for v in by_label], np.bool_)
    named = np.flatnonzero(~unidentified & ~mixing)
    # labels that take no style name (`deposit_spenders`)
    unstyled = np.zeros(len(by_label), np.bool_)
    if deposit_spenders is not None and deposit_spenders.shape[0]:
        spending = [names[attribution[c]] for c in deposit_spenders.tolist() if c in attribution]
        unstyled[np.array(spending, np.int64)] = True
    if fingerprint is None:
        fingerprint = read_fingerprints(store, 0, store.counts["txs"], SLICE)
    # a named wallet's style gets surer as the services that match it join it, and that lets
    # the next round tell apart what it could not; a round that names nothing ends it
    owner = np.arange(len(by_label), dtype=np.int64)  # the label a label's clusters now carry
    styles = None
    kin_reads = None
    if lend and cospend_kin and services_module.VETO_COSPEND:
        kin_reads = _kin_cospending(
            store, shapes, cluster_of, fingerprint, period_months, style_reads, cospend_kin,
            attribution, names,
        )  # fmt: skip
    for _ in range(STYLE_ROUNDS):
        candidate = np.flatnonzero(unidentified & ~unstyled & (owner == np.arange(owner.shape[0])))
        # the groups as sorted (cluster, group) pairs: 16 B per attributed cluster, not 8 B
        # per address (an array over every cluster id: 12 GB at mainnet)
        group = ClusterGroups.of(clusters, owner[label])
        if style_reads is not None and style_reads.covers(group, period_months):
            styles = style_reads.styles(group)
        else:
            styles = wallet_styles(store, shapes, cluster_of, group, fingerprint, period_months)
        styles = blind_styles(store, shapes, cluster_of, styles, group, named, fingerprint)
        # and, where neither sweeps anything in its group, from the sweeps and deposits it
        # received (docs/accuracy-log.md "Deposit types weighed by swept inputs")
        asked = np.union1d(named, candidate)
        styles = received_deposits(store, shapes, cluster_of, styles, group, asked)
        if kin_reads is not None and styles.cospend_batches is not None:
            # a named wallet's co-spending, its fragments' batches with its own (the named
            # labels own themselves: their ids are below the groups' count)
            m = styles.cospend_batches.shape[0]
            base = styles.batches if styles.batches is not None else np.zeros(m, np.int64)
            styles = replace(
                styles, cospend_batches=styles.cospend_batches + kin_reads[0][:m],
                cospend_reads=base + kin_reads[1][:m],
            )  # fmt: skip
        match = style_matches(styles, named, candidate)
        if not lend:
            break
        # both guards read the round's matches before either vetoes one
        vetoed = np.zeros(candidate.shape[0], np.bool_)
        if ORPHAN_MIN_GROUPS:
            vetoed |= style_orphan_vetoes(styles, named, candidate, match, ORPHAN_MIN_GROUPS)
        if RIVAL_MIN_GROUPS:
            vetoed |= style_rival_vetoes(styles, candidate, match, RIVAL_MIN_GROUPS, RIVAL_RATIO)
        match[vetoed] = -1
        if changed_only:
            # the second pass is for a wallet the change links carried into another era of
            # its software; a wallet that shows one era has had its style read already
            changed = np.zeros(len(by_label), np.bool_)
            changed[named[habits_changed(styles, named)]] = True
            match[(match >= 0) & ~changed[np.maximum(match, 0)]] = -1
        if not (match >= 0).any():
            break
        owner[candidate[match >= 0]] = match[match >= 0]
    if candidates is not None and styles is not None:
        # the last round's styles: who each group left unnamed could still be (no pass per tx)
        left = np.flatnonzero(unidentified & (owner == np.arange(owner.shape[0])))
        listed = np.array([by_label[g][1] in EXCHANGE_CATEGORIES for g in named.tolist()], np.bool_)
        # style names off: a wallet that fits exactly one tagged exchange is left unnamed, but
        # asking that one exchange to rule the deposit in or out is cheap and answerable (a
        # set of one; requests.csv marks it). On, such a wallet is named or lacks evidence.
        sets = style_candidates(styles, named, left, listed, STYLE_MIN_CANDIDATES if lend else 1)
        for g, row in zip(left.tolist(), sets, strict=True):
            if row.any():
                candidates[by_label[g]] = ";".join(
                    sorted(str(by_label[m][0]) for m in named[row].tolist())
                )
    if lookalikes is not None:
        exchanges = np.array(
            [g for g in named.tolist() if by_label[g][1] in EXCHANGE_CATEGORIES], np.int64
        )
        # one name per exchange: its entity, with its category where two categories share it
        entity = [str(by_label[g][0]) for g in exchanges.tolist()]
        shown = [
            e if entity.count(e) == 1 else f"{e} ({by_label[g][1]})"
            for e, g in zip(entity, exchanges.tolist(), strict=True)
        ]
        lookalikes.update(lookalike_exchanges(styles, exchanges, shown))
    if exchange_habits is not None and styles is not None:
        exchanges = np.array(
            [g for g in named.tolist() if by_label[g][1] in EXCHANGE_CATEGORIES], np.int64
        )
        # per half-year for an exchange whose software changed (pooled, its fingerprint reads
        # mixed and rule 6b read nothing of it); the rest pooled, as before
        deposit = style_habits(styles, exchanges)[STYLE_HABITS.index("deposit_type")]
        for g, d in zip(exchanges.tolist(), deposit.tolist(), strict=True):
            rows = habit_rows(styles, np.array([g], np.int64), RULE_6B_HABITS)
            exchange_habits[by_label[g]] = (rows, int(d))
    if forward_habits is not None and styles is not None:
        exchanges = np.array(
            [g for g in named.tolist() if by_label[g][1] in EXCHANGE_CATEGORIES], np.int64
        )
        habits = style_habits(styles, exchanges)
        for g, row in zip(
            exchanges.tolist(),
            zip(*(habits[STYLE_HABITS.index(h)].tolist() for h in FORWARD_HABITS), strict=True),
            strict=True,
        ):
            name = str(by_label[g][0])
            seen = forward_habits.get(name, row)
            # two labels of one name (two categories): a habit they differ on is not one value
            forward_habits[name] = tuple(  # type: ignore[assignment]
                a if a == b else STYLE_MIXED for a, b in zip(row, seen, strict=True)
            )
    take = owner[label] != label
    for c, m in zip(clusters[take].tolist(), owner[label[take]].tolist(), strict=True):
        attribution[c] = by_label[m]
    return np.sort(clusters[take])


#: The habits cash-outs' rule 6b reads of a tagged exchange (`cases.cashouts`), in the order
#: of `CaseSetup.exchange_habits`' columns.
RULE_6B_HABITS = ("deposit_type", "hot_type", "fingerprint")


def _exchange_habit_rows(
    store: Store,
    shapes: TxShapes | None,
    cluster_of: np.ndarray,
    attribution: dict[int, tuple[str | None, str]],
    fingerprint: np.ndarray | None,
    period_months: int | None,
    by_label: dict[tuple[str | None, str], tuple[np.ndarray, int]],
    style_reads: StyleReads | None = None,
) -> np.ndarray:
    """Rule 6b's table (`CaseSetup.exchange_habits`, k x 4) from the style rounds' rows per
    tagged exchange (`_lend_by_style`'s `exchange_habits`), re-read per window for an exchange
    whose software changed as everything named after it by the end shows it.

    A change of software shows only where the exchange's named clusters span both eras. The
    style rounds name a fragment only where its habits fit the tags', so a tag set that falls
    in one era reads that era's fingerprint alone (a pooled row that fits none of the other
    era's forwards), and the other era's fragments join the name later, through the change
    spends `_lend_by_change` reads (the switching batch spends the old software's change). So
    the tagged exchanges are read once more over all their clusters named by then (one more
    pass of `trace.services.wallet_styles` over the batches and sweeps of those clusters); one
    that reads changed then (`habits_changed`) gives its rows per window (`habit_rows`; its
    deposit type, where its own sweeps show none, the style rounds'), the others keep the style
    rounds' rows, which on a chain where no exchange changed are main's rows exactly.
    `style_reads` (`trace.services.StyleReads` of the style rounds): that read grouped by the
    final names, with no pass of its own."""
    empty = np.zeros((0, 4), np.int64)
    labels = list(by_label)
    kept = [by_label[v][0] for v in labels]
    months = _period_months(period_months)
    if not labels or shapes is None or months <= 0:
        return np.concatenate(kept or [empty]).reshape(-1, 4)
    index = {v: i for i, v in enumerate(labels)}
    owned = [(c, index[v]) for c, v in attribution.items() if v in index]
    clusters = np.fromiter((c for c, _ in owned), np.int64, len(owned))
    group = ClusterGroups.of(clusters, np.fromiter((g for _, g in owned), np.int64, len(owned)))
    if style_reads is not None and style_reads.covers(group, months):
        styles = style_reads.styles(group)  # the style rounds' pass, grouped by the final names
    else:
        styles = wallet_styles(store, shapes, cluster_of, group, fingerprint, months)
    every = np.arange(len(labels), dtype=np.int64)
    changed = habits_changed(styles, every)
    if changed.any():
        deposit = np.asarray(styles.deposit, np.int64).copy()
        m = min(deposit.shape[0], len(labels))
        shown = np.array([by_label[v][1] for v in labels[:m]], np.int64)
        deposit[:m] = np.where(deposit[:m] >= 0, deposit[:m], shown)
        styles = replace(styles, deposit=deposit)
        for g in np.flatnonzero(changed).tolist():
            kept[g] = habit_rows(styles, np.array([g], np.int64), RULE_6B_HABITS)
    return np.concatenate(kept).reshape(-1, 4)


#: Rounds of naming by change spends (`_lend_by_change`): a wallet named in one round lends its
#: name through its own batches in the next.
def _split_entities(
    attribution: dict[int, tuple[str | None, str]],
    service_mask: np.ndarray | ClusterSet,
    shapes: TxShapes | None,
    batch_links: tuple[np.ndarray, np.ndarray],
    spenders: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The clusters (outside the seized service) that the entity links, with the links into
    deposit spenders kept (`trace.services.service_entities` without `spenders`), put in an
    entity whose tagged clusters carry two names, and the deposit spenders among them; both
    sorted, empty when there is no deposit spender (the entities are then the same).

    Such an entity names nothing, and its unnamed service clusters share one
    `unidentified_service` label that the later rules do not name. The deposit spenders split
    it; a piece named by one tag may still hold a few links from another owner, so
    `_attribute_services` reads the pieces warily, and the later rules take the deposit
    spenders among them for wallets that spend deposits (`_lend_by_change`: their links
    veto; `_lend_by_style`: no style name). Memory: 16 B per linked cluster, twice."""
    none = np.zeros(0, np.int64)
    if spenders.shape[0] == 0:
        return none, none
    nodes, entity = service_entities(shapes, batch_links)
    n = service_mask.shape[0]
    keys = np.fromiter(attribution, np.int64, len(attribution))
    tagged = ClusterSet(keys, n)[nodes] & ~service_mask[nodes]
    names: dict[int, set[tuple[str | None, str]]] = {}
    for c, e in zip(nodes[tagged].tolist(), entity[tagged].tolist(), strict=True):
        names.setdefault(e, set()).add(attribution[c])
    two = np.array(sorted(e for e, v in names.items() if len(v) > 1), np.int64)
    inside = np.sort(nodes[np.isin(entity, two)])
    return inside, spenders[ClusterSet(inside, n)[spenders]]


def _wary_entities(
    attribution: dict[int, tuple[str | None, str]],
    nodes: np.ndarray,
    entity: np.ndarray,
    names: dict[int, set[tuple[str | None, str]]],
    split: tuple[np.ndarray, np.ndarray],
    store: Store | None,
    shapes: TxShapes | None,
    reads: PaidInReads | None = None,
) -> list[int]:
    """The named entities (`names`' keys) with a cluster of `split[0]` that lend no name
    (`_attribute_services`): their name's wallet spends deposits in its payouts, or they hold a
    deposit spender (`split[1]`)."""
    inside, spenders = split
    n = max(int(nodes.max()) + 1, int(inside.max()) + 1) if nodes.shape[0] else 1
    wary = set(entity[ClusterSet(inside, n)[nodes]].tolist()) & set(names)
    if not wary:
        return []
    refused: set[tuple[str | None, str]] = set()
    if store is not None and shapes is not None:
        refused = _deposit_cospender_names(store, shapes, attribution, reads=reads)
    holding = set(entity[np.isin(nodes, spenders)].tolist())
    return sorted(e for e in wary if names[e] & refused or e in holding)


CHANGE_ROUNDS = 3
#: How many times the wallet-style rounds run again after the change links named something
#: (`prepare_case`; each followed by the change links again where it named anything): a name
#: the change links carried into another era of a wallet's software widens the style read of
#: that wallet (docs/design/trace.md "Styles read again after the change links"). 0: one
#: style pass, before the change links (main before 2026-12-08).
STYLE_AFTER_CHANGE = 1
#: Whether that second pass names only after wallets whose software reads changed.
STYLE_AFTER_CHANGE_CHANGED = True
#: Whether a change link must fit a change-last wallet's position (`_change_position_misfits`).
CHANGE_LINK_POSITION = True
#: Whether a link of `_lend_by_change` (any kind) is dropped where the label's sweeps pay the
#: other kind of hot address (fresh or reused) than the named wallet's own clusters (those whose
#: name rests on no style match) show (`_sweep_address_misfits`; docs/design/cases.md).
CHANGE_LINK_SWEEP_ADDRESS = True
#: What a link through a wallet that spends deposits in its payouts implies of its label
#: (`_deposit_cospender_names`): no name, and none lent by any other link either.
COSPEND_VETO: tuple[str | None, str] = (None, "deposit_cospender")
#: The links `_lend_by_change` reads, in the order a label is cited by (its `attributed_via`).
LINK_KINDS = ("change_spend", "change_return", "payout_cospend", "sweep_into")


def _lend_by_change(
    store: Store,
    shapes: TxShapes | None,
    attribution: dict[int, tuple[str | None, str]],
    service_mask: np.ndarray | ClusterSet,
    returned: list[int] | None = None,
    evidence: list[dict[str, Any]] | None = None,
    via: dict[str, list[int]] | None = None,
    deposit_spenders: np.ndarray | None = None,
    reads: PaidInReads | None = None,
    style_reads: StyleReads | None = None,
    style_rooted: set[int] | None = None,
) -> np.ndarray:
    """Name an untagged service after the exchange whose batch change it spends (in place).

    An exchange that never reuses an address pays each batch from one coin and sends the rest
    to a fresh address: the batch's largest output. When that output is spent by a cluster of
    an `unidentified_service` (the spend is not itself a batch, or `service_entities` would
    have joined them), that service is most likely the same wallet
    (`trace.services.change_spend_links`). The converse holds too (a *change return*): a batch
    paid by an `unidentified_service` whose change a named exchange's cluster spends is that
    exchange's batch, the change going back to the wallet that made it (an exchange's hot
    wallet collecting its own change; docs/accuracy-log.md "Change returned to a named
    wallet"). Neither a change spend nor a change return links a batch of which the payer's
    own wallet (its name, its label) spends another output in a batch: that output was its
    change (docs/accuracy-log.md "Change read from a batch the payer spends"). Every
    cluster of the service (its `cluster:<entity>` label) takes the name when
    all links of both kinds into it come from one exchange's name; links from two names lend
    none. Rounds repeat, up to `CHANGE_ROUNDS`, so that a wallet named in one round lends
    through its own batches in the next. Only names of the subpoena categories
    (`EXCHANGE_CATEGORIES`) lend. Returns the clusters named so (sorted; `attributed_via` =
    `change_spend`, or `change_return` for those of `returned`, which gets the clusters that
    only a change return named). `evidence` gets one entry per label named: the name, the
    kind, and the batch and spending tx of its first link (what the case cites).

    Two more links of an unnamed fragment to a named exchange's wallet, each read the same way
    (docs/accuracy-log.md "Payout outputs co-spent by a named wallet, and sweeps into a
    fragment"): a `payout_cospend`, an output of the service's payout (3+ payees) that a named
    cluster spends together with coins of its own in a tx of 2+ payees
    (`trace.services.payout_cospend_evidence`), and a `sweep_into`, a named cluster's sweep
    whose coin the service pays out (`trace.services.sweep_into_evidence`). A label is cited by
    its first kind in the order change_spend, change_return, payout_cospend, sweep_into; `via`
    gets the clusters of each kind after the change spend (`change_return`, `payout_cospend`,
    `sweep_into`), sorted. A link of any kind whose label or named wallet spends its customers'
    deposits in its payouts (`_deposit_cospender_names`, read once before the rounds) vetoes
    the label: it takes no name (docs/accuracy-log.md "Exchanges that spend deposits in their
    payouts"). The names and labels of `deposit_spenders` (`_split_entities`) are read so too.
    `reads`: the case's `PaidInReads` (`_deposit_cospender_names`).

    A change spend or change return says the batch and its change are one wallet's, the named
    one and the label alike. Where either side's batches put their change last (a change
    position read as `style_matches` reads it, from `style_reads` grouped by this round's names
    and labels), a link through an output that is not its batch's last is no change link: the
    output was a payment, perhaps into another service's deposit that the service then spent
    (`_change_position_misfits`; docs/accuracy-log.md "Change links through a payment into an
    untagged exchange's deposit").

    A link of any kind whose label sweeps into the other kind of hot address (fresh or reused)
    than the named wallet's own clusters (not those in `style_rooted`) is dropped too
    (`_sweep_address_misfits`, `CHANGE_LINK_SWEEP_ADDRESS`; docs/accuracy-log.md "Two exchanges
    untagged at once"): with two exchanges untagged, a style-named fragment of one passed the
    look-alike's name on to the other by a change return.

    `style_rooted`, when given, holds the clusters whose name rests on a wallet-style match
    (`_lend_by_style`'s, at the start): a label whose every link comes from such a cluster
    joins it (in place, round by round, so a chain of links carries the origin on); one link
    from a cluster named otherwise (a tag, the service entity, a change link rooted in one)
    roots the name there."""
    lent: list[int] = []
    if shapes is None or not attribution:
        return np.zeros(0, np.int64)
    # read once, before any name is lent here: the names and unnamed labels whose wallet
    # spends deposits in its payouts (a change spend into one of them, or a change return,
    # payout co-spend or sweep of one, is no link)
    cospenders = _deposit_cospender_names(
        store, shapes, attribution, EXCHANGE_CATEGORIES | {UNIDENTIFIED_SERVICE}, reads
    )
    if deposit_spenders is not None:
        cospenders |= {attribution[c] for c in deposit_spenders.tolist() if c in attribution}
    for _ in range(CHANGE_ROUNDS):
        named = np.array(
            sorted(c for c, v in attribution.items() if v[1] in EXCHANGE_CATEGORIES), np.int64
        )
        members: dict[tuple[str | None, str], list[int]] = {}
        for c, v in attribution.items():
            if v[1] == UNIDENTIFIED_SERVICE and not service_mask[c]:
                members.setdefault(v, []).append(c)
        if named.shape[0] == 0 or not members:
            break
        candidates = np.array(sorted(c for cs in members.values() for c in cs), np.int64)
        # one wallet per name and per label: a batch another output of which that wallet's
        # own batch spends makes no link (its change was that output)
        codes: dict[tuple[str | None, str], int] = {}
        by_name = np.array([codes.setdefault(attribution[c], len(codes)) for c in named.tolist()])
        by_label = np.array(
            [codes.setdefault(attribution[c], len(codes)) for c in candidates.tolist()]
        )
        spent = change_spend_evidence(store, shapes, named, candidates, payer_groups=by_name)
        back = change_spend_evidence(store, shapes, candidates, named, payer_groups=by_label)
        if style_reads is not None and CHANGE_LINK_POSITION:
            group = ClusterGroups.of(
                np.concatenate([named, candidates]), np.concatenate([by_name, by_label])
            )
            if style_reads.covers(group, style_reads.months):
                styles = style_reads.styles(group)
                last = styles.change_position(STYLE_MIN_LAST, STYLE_MIN_SHUFFLED) == 1
                spent = _keep_links(spent, _change_position_misfits(
                    shapes, spent, group, last))  # fmt: skip
                back = _keep_links(back, _change_position_misfits(
                    shapes, back, group, last))  # fmt: skip
        cospent = payout_cospend_evidence(store, shapes, candidates, named)
        swept = sweep_into_evidence(store, shapes, named, candidates)
        if style_reads is not None and CHANGE_LINK_SWEEP_ADDRESS:
            # every kind says the label is the named wallet: its sweeps must fit the wallet's
            fits = (style_reads, named, by_name, candidates, by_label, style_rooted or set())
            spent = _keep_links(spent, _sweep_address_misfits(*fits, spent, 0))
            back = _keep_links(back, _sweep_address_misfits(*fits, back, 1))
            cospent = _keep_links(cospent, _sweep_address_misfits(*fits, cospent, 1))
            swept = _keep_links(swept, _sweep_address_misfits(*fits, swept, 0))
        # label -> (kind rank, batch tx, spending tx, named cluster) of the link it cites: a
        # change spend before a change return (a label with both is `change_spend`), then
        # the earliest batch
        implied: dict[tuple[str | None, str], set[tuple[str | None, str]]] = {}
        first: dict[tuple[str | None, str], tuple[int, int, int, int]] = {}
        # labels with a link from a named cluster whose name rests on no style match
        rooted: set[tuple[str | None, str]] = set()
        for rank, (mine, theirs, batch, spend) in (
            (0, (spent[1], spent[0], spent[2], spent[3])),
            (1, back),
            (2, cospent),
            (3, (swept[1], swept[0], swept[2], swept[3])),
        ):
            for x, p, b, t in zip(
                mine.tolist(), theirs.tolist(), batch.tolist(), spend.tolist(), strict=True
            ):
                label = attribution[x]
                if label in cospenders or attribution[p] in cospenders:
                    # a wallet that spends deposits in its payouts: the link says nothing of
                    # whose change it was, and vetoes the label (dropped, it could leave a
                    # wrong name alone where it was one of two)
                    implied.setdefault(label, set()).add(COSPEND_VETO)
                    continue
                implied.setdefault(label, set()).add(attribution[p])
                if style_rooted is None or p not in style_rooted:
                    rooted.add(label)
                if label not in first or (rank, b) < first[label][:2]:
                    first[label] = (rank, b, t, p)
        took = 0
        for label, names in implied.items():
            if len(names) != 1 or COSPEND_VETO in names:
                continue
            name = next(iter(names))
            rank, b, t, p = first[label]
            kind = LINK_KINDS[rank]
            for c in members[label]:
                attribution[c] = name
                lent.append(c)
                if returned is not None and kind == "change_return":
                    returned.append(c)
                if via is not None and rank > 0:
                    via.setdefault(kind, []).append(c)
            if style_rooted is not None and label not in rooted:
                style_rooted.update(members[label])
            if evidence is not None:
                txids = store.txids(np.array([b, t], np.int64)).to_pylist()
                evidence.append(
                    {
                        "label": label[0],
                        "clusters": len(members[label]),
                        "name": name[0],
                        "via": kind,
                        "batch_txid": txids[0],
                        "spend_txid": txids[1],
                        "named_cluster": p,
                    }
                )
            took += 1
        if not took:
            break
    if returned is not None:
        returned.sort()
    for cs in (via or {}).values():
        cs.sort()
    return np.array(sorted(lent), np.int64)


def _change_position_misfits(
    shapes: TxShapes,
    links: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    group: ClusterGroups,
    last: np.ndarray,
) -> np.ndarray:
    """Per link of `change_spend_evidence` (payer cluster, spender cluster, batch, spending
    tx): True where the payer's or the spender's group (`group`: a name or label per cluster)
    puts its change last (`last`, per group) and the output the link runs through is not the
    batch's last output. The link says both sides are one wallet, so that wallet's batch would
    have put its change last; the linked output was a payment. hard small 13, dunmore
    untagged: an arcadia batch (change last in every batch arcadia's tags show) paid 15.4 M sat
    to a dunmore deposit as its 6th output of 7, its change last; dunmore forwarded the deposit
    and took arcadia's name, and 62 of its 64 deposits after it."""
    payer, spender, batch, spend = links
    if batch.shape[0] == 0:
        return np.zeros(0, np.bool_)
    n_txs = shapes.first_output.shape[0]
    n_outputs = shapes.spent_by.shape[0]
    ends = np.where(
        batch + 1 < n_txs,
        np.asarray(shapes.first_output[np.minimum(batch + 1, n_txs - 1)], np.int64),
        n_outputs,
    )
    at_last = np.asarray(shapes.spent_by[ends - 1], np.int64) == spend
    habit = np.zeros(batch.shape[0], np.bool_)
    for side in (payer, spender):
        g = group.lookup(side)
        habit |= (g >= 0) & last[np.maximum(g, 0)]
    return habit & ~at_last


def _sweep_address_misfits(
    style_reads: StyleReads,
    named: np.ndarray,
    by_name: np.ndarray,
    candidates: np.ndarray,
    by_label: np.ndarray,
    style_rooted: set[int],
    links: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    named_side: int,
) -> np.ndarray:
    """Per link of `change_spend_evidence` (bool): the label's sweeps (one is enough) pay the
    other kind of hot address, fresh or reused, than the named wallet's own clusters show (at
    `STYLE_MIN_CHANGE_ADDRESS`; its clusters whose name rests on a style match are left out,
    the name being what is in question). `named_side`: which end of the link (0 payer, 1
    spender) is the named cluster; the other is the label's. `named`/`by_name`, `candidates`/
    `by_label`: `_lend_by_change`'s clusters (sorted) and their codes."""
    drop = np.zeros(links[0].shape[0], np.bool_)
    if not drop.shape[0]:
        return drop
    rooted = np.fromiter(style_rooted, np.int64, len(style_rooted))
    own = ~np.isin(named, rooted)
    group = ClusterGroups.of(
        np.concatenate([named[own], candidates]), np.concatenate([by_name[own], by_label])
    )
    if group.n_groups == 0 or not style_reads.covers(group, style_reads.months):
        return drop
    styles = style_reads.styles(group)
    label_read = styles.sweep_address(1)
    name_read = styles.sweep_address(STYLE_MIN_CHANGE_ADDRESS)
    name_code = by_name[np.searchsorted(named, links[named_side])]
    label_code = by_label[np.searchsorted(candidates, links[1 - named_side])]
    theirs = np.where(name_code < name_read.shape[0],
                      name_read[np.minimum(name_code, name_read.shape[0] - 1)], -1)  # fmt: skip
    mine = np.where(label_code < label_read.shape[0],
                    label_read[np.minimum(label_code, label_read.shape[0] - 1)], -1)  # fmt: skip
    return known_and_different(mine, theirs)


def _keep_links(
    links: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], drop: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`links` (parallel arrays) without the rows `drop` marks."""
    if not drop.any():
        return links
    keep = ~drop
    return (links[0][keep], links[1][keep], links[2][keep], links[3][keep])


def _lend_by_chain(
    store: Store,
    shapes: TxShapes | None,
    attribution: dict[int, tuple[str | None, str]],
    service_mask: np.ndarray | ClusterSet,
    spenders: np.ndarray,
    tags: dict[int, tuple[str | None, str]] | None = None,
    chains: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Name the fragments of a wallet that spends deposits in its batches after the one
    exchange name its change chain holds (in place). `chains`: `spender_change_chains`
    already read (`prepare_case`), None reads it.

    `trace.services.spender_change_chains` chains the deposit-spending batch clusters
    (`deposit_spending_batches`: `prepare_case`'s `spenders`) by their batches' change. A
    chain whose tagged clusters (`tags`; None: every name in `attribution`) all carry one
    exchange's name lends it to its clusters that have no name, or only an
    `unidentified_service` label (the cluster alone, not the rest of its label); a chain with
    two names lends none, and the seized service's clusters are left alone. The co-spender
    guards of the earlier rules stay: this rule reads no payment into the wallet, only the
    wallet's own change, so a customer's deposit makes no link. Returns the clusters named so
    (sorted; `attributed_via` = `change_spend`)."""
    none = np.zeros(0, np.int64)
    if shapes is None or spenders.shape[0] == 0:
        return none
    nodes, chain = spender_change_chains(store, shapes, spenders) if chains is None else chains
    source = attribution if tags is None else tags
    if BRIDGE_PAYERS:
        # the strands of one wallet that no own spend joins, joined by the customers whose
        # deposits both spend
        nodes, chain = _bridge_pieces(shapes, spenders, (nodes, chain), source)
    if nodes.shape[0] == 0:
        return none
    # the names a chain holds are its tags': a name lent by the style or change rules may be a
    # look-alike's, where the wallet's own exchange is untagged, and the chain would carry it
    # to every fragment (one exchange left untagged, hard_cospend small 1 cobalt: 1 -> 7
    # deposits named wrong with every lent name read)
    names = _chain_tag_names(nodes, chain, source)
    lent = []
    for c, e in zip(nodes.tolist(), chain.tolist(), strict=True):
        got = names.get(e, set())
        if len(got) != 1 or service_mask[c]:
            continue
        v = attribution.get(c)
        if v is None or v[1] == UNIDENTIFIED_SERVICE:
            attribution[c] = next(iter(got))
            lent.append(c)
    return np.array(sorted(lent), np.int64)


#: `_lend_by_chain` also joins the change chains (and lone deposit-spending clusters) that
#: `trace.services.deposit_payer_bridges` bridges; off, only the change chains lend (ablation)
BRIDGE_PAYERS = True


def _bridge_pieces(
    shapes: TxShapes,
    spenders: np.ndarray,
    chains: tuple[np.ndarray, np.ndarray],
    tags: dict[int, tuple[str | None, str]],
) -> tuple[np.ndarray, np.ndarray]:
    """The change chains (`spender_change_chains`' (clusters, chain of each)) joined by the
    payer bridges of `deposit_payer_bridges`, as the same (sorted clusters, component id)
    pair; a deposit-spending cluster in no chain is a piece of its own. Bridges are taken
    strongest first, those of equal support together, and none that would put pieces whose
    tags (`tags`) carry different exchange names in one is taken: its payers are customers of
    both exchanges (hard_cospend small 1-14: each of the 6 bridges that joined two owners at
    two payers)."""
    nodes, chain = chains
    a, b, support = deposit_payer_bridges(shapes, spenders, chains)
    if a.shape[0] == 0:
        return nodes, chain
    # pieces: chain ids, and the flagged clusters outside every chain
    chain_of = dict(zip(nodes.tolist(), chain.tolist(), strict=True))
    members: dict[int, list[int]] = {}
    for c, e in chain_of.items():
        members.setdefault(e, []).append(c)
    for c in spenders.tolist():
        if c not in chain_of:
            members.setdefault(c, [c])
    names: dict[int, set[tuple[str | None, str]]] = {}
    for e, cs in members.items():
        got = {tags[c] for c in cs if c in tags and tags[c][1] in EXCHANGE_CATEGORIES}
        if got:
            names[e] = got
    root: dict[int, int] = {}

    def find(x: int, parent: dict[int, int]) -> int:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    def join(x: int, y: int, parent: dict[int, int], named: dict[int, set[Any]]) -> None:
        rx, ry = find(x, parent), find(y, parent)
        if rx != ry:
            lo, hi = min(rx, ry), max(rx, ry)
            parent[hi] = lo
            named[lo] = named.get(lo, set()) | named.get(hi, set())

    # bridges of equal support are taken together, strongest first: a tier whose bridges would
    # put two tag names in one piece takes none of its bridges into that piece (which of them
    # joins the wrong customer's strand the chain does not tell; hard_cospend small 14: an
    # arcadia cluster and a dunmore strand bridged by 2 payers, as the dunmore strand was to
    # dunmore's own tagged one)
    supports = support.tolist()
    i = 0
    while i < len(supports):
        j = i
        while j < len(supports) and supports[j] == supports[i]:
            j += 1
        trial, trial_names = dict(root), {k: set(v) for k, v in names.items()}
        for x, y in zip(a[i:j].tolist(), b[i:j].tolist(), strict=True):
            join(x, y, trial, trial_names)
        for x, y in zip(a[i:j].tolist(), b[i:j].tolist(), strict=True):
            if len(trial_names.get(find(x, trial), set())) <= 1:
                join(x, y, root, names)
        i = j
    # every piece, bridged or not: a lone flagged cluster that no bridge reached lends only
    # its own tag's name to itself, which it has
    out_nodes, out_comp = [], []
    for e, cs in members.items():
        out_nodes.extend(cs)
        out_comp.extend([find(e, root)] * len(cs))
    order = np.argsort(np.array(out_nodes, np.int64), kind="stable")
    return np.array(out_nodes, np.int64)[order], np.array(out_comp, np.int64)[order]


def _chain_tag_names(
    nodes: np.ndarray, chain: np.ndarray, source: dict[int, tuple[str | None, str]]
) -> dict[int, set[tuple[str | None, str]]]:
    """Per change chain (`spender_change_chains`' `chain` ids): the exchange names its
    clusters carry in `source`."""
    names: dict[int, set[tuple[str | None, str]]] = {}
    for c, e in zip(nodes.tolist(), chain.tolist(), strict=True):
        v = source.get(c)
        if v is not None and v[1] in EXCHANGE_CATEGORIES:
            names.setdefault(e, set()).add(v)
    return names


def _cospend_kin(
    chains: tuple[np.ndarray, np.ndarray],
    tags: dict[int, tuple[str | None, str]],
    service_mask: np.ndarray | ClusterSet,
) -> dict[int, tuple[str | None, str]]:
    """The deposit-spending fragments of a tagged exchange: the clusters of each change chain
    (`chains`: `spender_change_chains`) whose tags (`tags`, before any name is lent) carry one
    exchange name, with that name; the seized service's left out. Its co-spending batches are
    there, not under its tags (hard_cospend small 1: cobalt's tagged clusters hold 1 batch,
    its fragments 157, 154 co-spending), so `_lend_by_style` reads its habit over both."""
    nodes, chain = chains
    names = _chain_tag_names(nodes, chain, tags)
    kin: dict[int, tuple[str | None, str]] = {}
    for c, e in zip(nodes.tolist(), chain.tolist(), strict=True):
        got = names.get(e, set())
        if len(got) == 1 and not service_mask[c]:
            kin[c] = next(iter(got))
    return kin


def _kin_cospending(
    store: Store,
    shapes: TxShapes | None,
    cluster_of: np.ndarray,
    fingerprint: np.ndarray | None,
    period_months: int | None,
    style_reads: StyleReads | None,
    kin: dict[int, tuple[str | None, str]],
    attribution: dict[int, tuple[str | None, str]],
    names: dict[tuple[str | None, str], int],
) -> tuple[np.ndarray, np.ndarray]:
    """Per style label (`names`' ids): the batches of its deposit-spending fragments
    (`_cospend_kin`) outside the label itself, and those of them that co-spend deposits
    (`WalletStyles.cospends`), as int64 arrays; read once, the fragments do not move between
    rounds. 16 B per fragment cluster."""
    n = len(names)
    rows = [(c, names[v]) for c, v in kin.items() if v in names and attribution.get(c) != v]
    if not rows:
        return np.zeros(n, np.int64), np.zeros(n, np.int64)
    group = ClusterGroups.of(
        np.array([c for c, _ in rows], np.int64), np.array([g for _, g in rows], np.int64)
    )
    if style_reads is not None and style_reads.covers(group, period_months):
        styles = style_reads.styles(group)
    else:
        styles = wallet_styles(store, shapes, cluster_of, group, fingerprint, period_months)
    yes, read = np.zeros(n, np.int64), np.zeros(n, np.int64)
    if styles.cospend_batches is not None and styles.batches is not None:
        m = styles.batches.shape[0]
        yes[:m], read[:m] = styles.cospend_batches, styles.batches
    return yes, read


def _deposit_cospender_names(
    store: Store,
    shapes: TxShapes,
    attribution: dict[int, tuple[str | None, str]],
    categories: frozenset[str] | set[str] = EXCHANGE_CATEGORIES,
    reads: PaidInReads | None = None,
) -> set[tuple[str | None, str]]:
    """The names (attribution values of `categories`; an `unidentified_service` label is one
    too) whose wallet spends its customers' deposits straight in its payouts with its own
    coins (`trace.services.deposit_cospenders`, each name's clusters one group): its spends of
    another wallet's outputs say nothing about whose change they were (docs/accuracy-log.md
    "Exchanges that spend deposits in their payouts"). `reads`: the case's `PaidInReads`
    (`prepare_case`: one per case, so the rules' five reads of the names pass over each
    cluster's inputs once); None reads the chain afresh, the same names."""
    names = sorted({v for v in attribution.values() if v[1] in categories}, key=str)
    if not names:
        return set()
    index = {v: i for i, v in enumerate(names)}
    clusters = np.array(sorted(c for c, v in attribution.items() if v[1] in categories), np.int64)
    group = np.array([index[attribution[c]] for c in clusters.tolist()], np.int64)
    found = deposit_cospenders(store, shapes, clusters, group, len(names), reads)
    return {names[g] for g in found}


def _service_clusters(
    store: Store, chain: ChainLookups, cluster_of: np.ndarray, seed_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(service clusters, seed clusters, service-wallet clusters) as sorted cluster ids.

    The seed clusters hold the deposit addresses. The service's wallet is where it sweeps them:
    a tx spending only seed-cluster outputs into one output is a sweep, and a cluster that
    receives two or more sweeps is the service's own (a one-off send-all to an exchange is not
    taken for the service; the service reuses its wallet addresses, an exchange deposit address
    is used once).
    """
    seed_clusters = np.unique(cluster_of[seed_ids])
    input_address = store.graph.input_address
    first_input = store.graph.tx_first_input
    first_output = chain.graph.tx_first_output
    n_txs, n_inputs = first_input.shape[0], input_address.shape[0]
    n_outputs = chain.graph.n_outputs
    targets = [np.zeros(0, np.int64)]
    # a slice of txs at a time: only the slice's inputs and per-tx counts are in memory
    for t0 in range(0, n_txs, SLICE):
        t1 = min(n_txs, t0 + SLICE)
        starts = np.asarray(first_input[t0:t1], np.int64)
        i0 = int(starts[0])
        i1 = int(first_input[t1]) if t1 < n_txs else n_inputs
        ends = np.append(starts[1:], i1)
        addr = np.asarray(input_address[i0:i1]).astype(np.int64)
        ok = addr != int(NONE32)
        spends_seed = np.zeros(addr.shape[0], np.int64)
        if seed_clusters.shape[0] and ok.any():
            cl = np.asarray(cluster_of[addr[ok]], np.int64)
            pos = np.minimum(np.searchsorted(seed_clusters, cl), seed_clusters.shape[0] - 1)
            spends_seed[ok] = seed_clusters[pos] == cl
        # per tx: do all of its inputs spend seed-cluster outputs (coinbases have one, unowned)
        upto = np.concatenate(([0], np.cumsum(spends_seed)))
        n_in = ends - starts
        seed_inputs = upto[ends - i0] - upto[starts - i0]
        out_starts = np.asarray(first_output[t0:t1], np.int64)
        out_ends = np.append(out_starts[1:], int(first_output[t1]) if t1 < n_txs else n_outputs)
        sweeps = (seed_inputs == n_in) & (n_in > 0) & (out_ends - out_starts == 1)
        target = np.asarray(chain.graph.output_address[out_starts[sweeps]]).astype(np.int64)
        targets.append(target[target != int(NONE32)])
    target = np.concatenate(targets)
    clusters, counts = np.unique(cluster_of[target], return_counts=True)
    wallet = np.setdiff1d(clusters[counts >= 2], seed_clusters)
    return np.union1d(seed_clusters, wallet), seed_clusters, wallet


#: Txs (or outputs) per slice of the passes over the whole chain: ~30 B per input or output
#: while in use, so a slice costs tens of MB whatever the chain's length.
SLICE = 1 << 18


class OutputIds:
    """Address id (or, given `cluster_of`, cluster id) per output, -1 where the output has no
    address: what an int64 array per output would hold (8 B per output, ~25 GB at mainnet),
    read from the store's mapped `output_address` (4 B per output, page cache) at the indices
    asked for. Supports what the case's rows do with it: `shape`, `len` and indexing."""

    def __init__(self, output_address: np.ndarray, cluster_of: np.ndarray | None = None) -> None:
        self.output_address = output_address
        self.cluster_of = cluster_of

    @property
    def shape(self) -> tuple[int]:
        return (int(self.output_address.shape[0]),)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> Any:
        ids = np.asarray(self.output_address[key]).astype(np.int64)
        none = ids == int(NONE32)
        if self.cluster_of is not None:
            ids = np.asarray(self.cluster_of[np.where(none, 0, ids)], np.int64)
        out = np.where(none, -1, ids)
        return out if out.ndim else np.int64(out)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def _outputs_paying(output_address: np.ndarray, address_ids: np.ndarray) -> np.ndarray:
    """Output ids (sorted) that pay one of `address_ids` (sorted, unique): one pass over the
    mapped array, a slice at a time."""
    found = [np.zeros(0, np.int64)]
    if address_ids.shape[0] == 0:
        return found[0]
    wanted = address_ids.astype(np.int64)
    for lo in range(0, output_address.shape[0], SLICE):
        part = np.asarray(output_address[lo : lo + SLICE]).astype(np.int64)
        pos = np.minimum(np.searchsorted(wanted, part), wanted.shape[0] - 1)
        found.append(np.flatnonzero(wanted[pos] == part) + lo)
    return np.concatenate(found)


def _spends_from(
    store: Store, txs: np.ndarray, cluster_mask: np.ndarray | ClusterSet, cluster_of: np.ndarray
) -> np.ndarray:
    """Per tx of `txs`: does one of its inputs spend from a cluster in `cluster_mask`
    (bool per cluster id)? Reads only those txs' inputs."""
    n_inputs = store.graph.input_address.shape[0]
    out = np.zeros(txs.shape[0], np.bool_)
    if txs.shape[0] == 0 or n_inputs == 0:
        return out
    rows, owner = owned_rows(store.graph.tx_first_input, n_inputs, txs)
    addr = np.asarray(store.graph.input_address[rows]).astype(np.int64)
    ok = addr != int(NONE32)
    hit = np.zeros(addr.shape[0], np.bool_)
    hit[ok] = cluster_mask[np.asarray(cluster_of[addr[ok]], np.int64)]
    out[owner[hit]] = True
    return out


def _in_chunks(trace: Any, seeds: np.ndarray, group: np.ndarray, **options: Any) -> Iterator[Any]:
    """Trace `seeds` a chunk at a time, never splitting a group (seeds sorted by group).

    Chunks are cut by `chunk_cuts`; a chunk whose walk hits the trace's `max_entries`
    is split in two and traced again, so no result is cut short by the other seeds of its chunk
    (each seed's own walk is capped by MAX_ENTRIES_PER_SEED). The walks run on one thread per
    core (`trace_threads`; the numba kernel releases the GIL); memory stays within
    TRACE_ENTRIES_BUDGET × 49 B of frontiers whatever the number of seeds or threads. Results
    come in any order.
    Inside, malloc keeps freed arrays for the next chunk (`reuse_heap`; trimmed at the end).
    """
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    bounds = group_starts(group)
    workers = trace_threads()
    cuts = chunk_cuts(group, workers, bounds)
    pending = [(cuts[i], cuts[i + 1]) for i in range(len(cuts) - 1) if cuts[i + 1] > cuts[i]]
    pending.reverse()
    max_entries = max(MAX_ENTRIES_PER_SEED, min(CHUNK_ENTRIES, TRACE_ENTRIES_BUDGET // workers))
    running: dict[Future[Any], tuple[int, int]] = {}
    # each chunk allocates and frees the same few-MiB arrays: reused from malloc's heaps,
    # not mapped, faulted in and zeroed again each time (core.heap.reuse_heap)
    # and the walks write their entries into arrays of earlier chunks whose results are gone
    # (`trace.engine.pooled_entries`), so those pages are faulted in once, not once a chunk
    with reuse_heap(), pooled_entries(workers + 2), ThreadPoolExecutor(max_workers=workers) as pool:
        while pending or running:
            while pending and len(running) < workers:
                lo, hi = pending.pop()
                job = pool.submit(trace, seeds[lo:hi], max_entries=max_entries, **options)
                running[job] = (lo, hi)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            while done:
                job = done.pop()
                lo, hi = running.pop(job)
                result = job.result()
                # no reference to the result is kept here (nor by its future) once it is
                # handed over: the next chunk's walk can then take its entry arrays
                # (`pooled_entries`) as soon as the caller lets go of it
                del job
                if result.hit_limit:
                    # the group starts strictly inside (lo, hi), found by search (a mask
                    # over every start, each chunk, cost a pass over them all)
                    inside = bounds[
                        np.searchsorted(bounds, lo, "right") : np.searchsorted(bounds, hi, "left")
                    ]
                    if inside.shape[0]:
                        mid = int(inside[inside.shape[0] // 2])
                        pending.extend([(mid, hi), (lo, mid)])
                        del result
                        continue
                yield result
                del result


#: How each column is written: floats with fixed decimals, so a CSV is a function of its data.
_FORMATS = {
    "amount_usd": "%.2f",
    "confidence": "%.4f",
    "service_share": "%.4f",
    "share": "%.4f",
    "hold_days": "%.2f",
}


def _write_csv(path: Path, columns: list[str], table: pa.Table) -> str:
    """Write the table's `columns` as CSV atomically (DuckDB's writer: quotes only where
    needed, nulls and empty strings as empty cells); returns the file's sha256."""
    import duckdb

    select = []
    for name in columns:
        column = f'"{name}"'
        if name in _FORMATS:
            select.append(f"printf('{_FORMATS[name]}', {column}) AS {column}")
        elif pa.types.is_string(table.schema.field(name).type):
            select.append(f"nullif({column}, '') AS {column}")  # "" would be written as ""
        else:
            select.append(column)
    tmp = path.with_name(path.name + ".tmp")
    con = duckdb.connect()
    try:
        con.register("case_rows", table.select(columns))
        target = str(tmp).replace("'", "''")
        con.execute(
            f"COPY (SELECT {', '.join(select)} FROM case_rows) TO '{target}' "
            "(FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"')"
        )
    finally:
        con.close()
    replace_into_place(tmp, path)
    return _sha256(path)
