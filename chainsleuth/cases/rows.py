"""Lead, subpoena and cash-out rows from trace results, a chunk of deposits at a time.

`investigate` (chainsleuth.cases.investigate) traces; this module turns the trace rows into the
case's tables without a Python object per row: the per-row work is one numba pass
(`cases.kernels`), grouping is `np.lexsort` + `reduceat`, txids and addresses are encoded once per
distinct id and stay Arrow strings, and subpoenas are one DuckDB query over the leads. Column
lists and confidence constants are here too (docs/investigations.md explains each).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chainsleuth.cases.cashouts import (
    CASHOUT_VIA,
    UNCONFIRMED_FORWARD_CAP,
    VIA_FORWARD_HABITS,
    VIA_FORWARD_SWITCHED,
    VIA_FORWARD_UNCONFIRMED,
    TxEnds,
)
from chainsleuth.cases.columns import has_item, item_count, string_equals, string_in
from chainsleuth.cases.confidence import calibration, typical_hold_days
from chainsleuth.core.script_types import ScriptType
from chainsleuth.store.layout import NONE32
from chainsleuth.store.store import Store

#: Tag categories whose clusters end a trace as a named source/destination (VASPs and mixers).
#: Any attributed cluster ends the walk; these are the ones a subpoena can go to.
EXCHANGE_CATEGORIES = frozenset(
    {"exchange", "otc_broker", "wallet_service", "atm", "payment_processor"}
)


#: Category of an untagged cluster that behaves like a custodial service (trace.services): a
#: source or destination of its own kind, never a subpoena target until someone names it.
UNIDENTIFIED_SERVICE = "unidentified_service"


#: Confidence of a source named beyond a CoinJoin, or of a CoinJoin itself, at most. The rest
#: of a lead's or cash-out's confidence is calibrated (cases.confidence, calibration.yaml).
COINJOIN_CAP = 0.25


#: A lead whose traced coins sat longer than this (days) at one address on its largest path is
#: held below the cut (LONG_HOLD_CAP, `caution` = long_hold): coins held for a month have most
#: likely changed hands on the way. On the simulated hard worlds most wrong leads at >= 0.5
#: walked back through a deposit an untagged exchange forwarded to a buyer, and on through
#: coins its customer had held for weeks or months to the exchange that paid that customer; a
#: right lead's coins rarely sat that long (docs/accuracy-log.md, "Long holds"). A month, not
#: a value fitted to a seed: 10 days already cost the easy worlds recall (their payers hold up
#: to ~9 days), and 14 days demoted an easy world's right lead held 24.5 days.
LONG_HOLD_DAYS = 30.0


#: Confidence at most of a lead held longer than LONG_HOLD_DAYS unless its path was read for a
#: change of hands and shows none (`long_hold_capped`): below the 0.5 a subpoena uses, the row
#: stays in leads.csv with its reason.
LONG_HOLD_CAP = 0.45

#: A long-held lead whose path has LONG_HOLD_MIN_HOPS to LONG_HOLD_MAX_HOPS txs (the funding
#: tx, then one or two txs of the payer's, then the tx paying the deposit) and shows none of
#: the forward and hand-off signs (FORWARD_CAUTIONS) ships the calibrated model's value, not
#: LONG_HOLD_CAP; its `caution` still says long_hold. Why: the month-long hold was a stand-in
#: for "the coins changed hands on the way", chosen before the case read a change of hands on
#: the path itself. With two or more txs after the exchange's withdrawal the case compares
#: their wallet fingerprints (one program signs all of one owner's txs) and reads every tx in
#: between for a payment to someone else (round amount, peel, payout, script-type switch,
#: send-all hop); when none of that shows on a short path, the path is one owner who held the
#: coins, and how long he held them is weighed by the model (relative to the case's typical
#: hold), not by a cut. A path of two txs has nothing to compare (the cap stays). A longer path
#: has more steps where two owners running the same wallet software could pay each other
#: unseen by either check (the cap stays). On the simulated worlds' seeds 1-7 (small and
#: medium) the long-held rows with no sign that the model puts at 0.5 or above were right 32
#: of 32 on paths of three or four txs and 27 of 29 on longer ones (both wrong ones had five,
#: on hard medium 5 and 7: 17 of 19 there, under the 0.98 a lead must hold); on seeds 8-14
#: 4 of 4 and 3 of 3 (docs/accuracy-log.md, "Long holds with no sign of a change of hands").
#: The bound 4 is a judgment read off those two rows, not a fit: the paths of 6-8 txs were
#: all right (7 of 7).
LONG_HOLD_MIN_HOPS = 3
LONG_HOLD_MAX_HOPS = 4


#: Confidence at most of a lead whose largest path shows how an exchange forwards a customer's
#: deposit rather than how a person spends coins (`forward_signs`; `caution` =
#: switched_type or send_all_hop): below the 0.5 a subpoena uses, the row stays in leads.csv.
#: On the simulated hard worlds every wrong deciding lead left at >= 0.5 walked back through
#: another exchange's deposit that its exchange forwarded straight to a buyer
#: (docs/accuracy-log.md, "Forward signs").
FORWARD_CAP = 0.45

#: The signs that the coins changed hands on a lead's largest path after the funding tx
#: (`handoff_signs`), each a `caution` of its own (docs/design/cases.md "Hand-offs on the path").
HANDOFF_SIGNS = ("round_payment", "peeled_off", "payout_on_path")
#: Links that name an unnamed fragment of a named exchange's wallet besides its batch change
#: (`investigate._lend_by_change`): each its own `attributed_via` and caution
#: (`linked_by_<kind>`), cited in case.json's `change_links`
FRAGMENT_LINKS = ("payout_cospend", "sweep_into")

#: The cautions of the leads capped at FORWARD_CAP (`forward_signs`, `fingerprint_change`,
#: `handoff_signs`).
FORWARD_CAUTIONS = frozenset(
    {"switched_type", "send_all_hop", "fingerprint_change", *HANDOFF_SIGNS}
)

#: The habits (`trace.services.STYLE_HABITS`) a tx must share with a tagged exchange to be read
#: as that exchange's forward of a customer's deposit (`own_forward_at`): the script type of
#: the deposits it sweeps (the one coin spent), its hot wallet's type (one of two outputs) and
#: its batches' wallet fingerprint (`cluster.learned.read_fingerprints`), as cash-outs' rule 6b
#: reads them (`cases.cashouts`).
FORWARD_HABITS = ("deposit_type", "hot_type", "fingerprint")

#: `caution` of a lead whose largest path passes a forward that fits the named exchange's own
#: habits and no other tagged exchange's: its forward, hand-off and long-hold signs are read on
#: the path from that forward on (`own_forward_at`). Not a cap: it says why the signs before
#: that tx do not count.
OWN_FORWARD = "own_forward"

#: A round amount (sat): the cluster stage's `round_amount` change rule (a multiple of 0.0001
#: BTC is a payment, change is what is left; cluster.kernels).
ROUND_SAT = 10_000


#: Script types a wallet moves to when it upgrades, and the older ones it moves from: a coin of
#: an older type spent into two outputs of one of these types is a wallet upgrading (or one that
#: matches its change to the payment's type, as Bitcoin Core does), not a service's forward.
SEGWIT_NATIVE = (int(ScriptType.P2WPKH), int(ScriptType.P2WSH), int(ScriptType.P2TR))
PRE_SEGWIT = (int(ScriptType.P2PKH), int(ScriptType.P2SH))


#: A tx with at least this many outputs is taken for a batch when moving a lead's funding tx
#: along an exchange's chain of withdrawals (each spending the last one's change). 3 = two
#: payees and change; on the simulated worlds 3 names the exchange's withdrawal to the customer
#: for 54 of 61 leads of the chaining exchange on the small world (4 and 6: 49 and 31), and no
#: lead of the other exchanges changes (docs/investigations.md).
BATCH_MIN_OUTPUTS = 3


#: Paths listed per lead (the largest by amount); `n_paths` counts them all.
MAX_PATHS = 3


#: Row order of leads.csv: per deposit address, the largest source first.
LEAD_ORDER = [
    ("deposit_address", "ascending"),
    ("amount_sat", "descending"),
    ("source_category", "ascending"),
    ("source_entity", "ascending"),
    ("funding_txid", "ascending"),
    ("source_address", "ascending"),
]


_TYPES = {
    "source_cluster": pa.int64(),
    "block_height": pa.int64(),
    "amount_sat": pa.int64(),
    "traced_sat": pa.int64(),
    "hops": pa.int64(),
    "n_paths": pa.int64(),
    "destination_cluster": pa.int64(),
    "amount_usd": pa.float64(),
    "confidence": pa.float64(),
    "output_value_sat": pa.int64(),
    "service_share": pa.float64(),
    "share": pa.float64(),
    "hold_days": pa.float64(),
}


def schema_of(columns: list[str]) -> pa.Schema:
    return pa.schema([(c, _TYPES.get(c, pa.string())) for c in columns])


EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


ISO = "%Y-%m-%dT%H:%M:%SZ"


LEAD_COLUMNS = [
    "deposit_address",
    "source_entity",
    "source_category",
    "source_cluster",
    "source_address",
    "funding_txid",
    "block_height",
    "block_time",
    "amount_sat",
    "amount_usd",
    "price_note",
    "hops",
    "policy",
    "confidence",
    "path",
    "n_paths",
    "custody_path",
    "through_coinjoin",
    "share",
    "attributed_via",
    "hold_days",
    "caution",
    "candidate_exchanges",
    "name_basis",
]

#: What a lead's source name rests on (leads.csv `name_basis`; empty where the source has no
#: name): `tag`, a tag on its own cluster; `chain`, a link the chain shows to a cluster named
#: so (its service entity, a change link, a deposit-spending batch chain); `style`, a
#: wallet-style match (`investigate._lend_by_style`: the one tagged wallet the fragment fits,
#: closed-world) or links from clusters named so alone. A feature of the lead's confidence
#: (`confidence.LEAD_FEATURES` `style_name`).
NAME_BASES = ("tag", "chain", "style")


SUBPOENA_COLUMNS = [
    "exchange",
    "exchange_total_sat",
    "funding_txid",
    "source_address",
    "block_height",
    "block_time",
    "amount_sat",
    "amount_usd",
    "price_note",
    "n_deposits",
    "deposit_addresses",
    "confidence",
    # the weakest name_basis of the row's leads (style, then chain, then tag): `style` rests on
    # the closed-world assumption (every exchange active in the case tagged)
    "name_basis",
]


SERVICE_COLUMNS = [
    "cluster_id",
    "n_addresses",
    "batches",
    "sweeps_received",
    "n_deposits_funded",
    "funded_sat",
    "n_cashouts",
    "cashout_sat",
    "example_addresses",
]


CASHOUT_COLUMNS = [
    "destination_address",
    "destination_entity",
    "destination_category",
    "destination_cluster",
    "txid",
    "block_height",
    "block_time",
    "amount_sat",
    "traced_sat",
    "amount_usd",
    "price_note",
    "hops",
    "output_value_sat",
    "service_share",
    "confidence",
    "attributed_via",
    "caution",
]


class ChainLookups:
    """Block times, daily prices and the store's lookups the writers need, vectorized over
    many txs or addresses (the arrays themselves are the store's `graph`)."""

    def __init__(self, store: Store, prices: dict[str, float]) -> None:
        self.store = store
        self.graph = store.graph
        rows = store.sql("SELECT height, epoch(time)::BIGINT AS t FROM blocks ORDER BY height")
        heights = rows.column("height").to_numpy().astype(np.int64)
        self.block_epoch = np.zeros(int(heights.max(initial=-1)) + 1, np.int64)
        self.block_epoch[heights] = rows.column("t").to_numpy().astype(np.int64)
        # daily closes by UTC day number (epoch // 86400); NaN where the file has no row
        days = np.array(
            [dt.date.fromisoformat(d).toordinal() - EPOCH_ORDINAL for d in prices], np.int64
        )
        self.price_day0 = int(days.min(initial=0))
        self.close = np.full(int(days.max(initial=-1)) - self.price_day0 + 1, np.nan)
        self.close[days - self.price_day0] = np.array(list(prices.values()), np.float64)

    def txids(self, tx_ids: np.ndarray) -> pa.Array:
        """Display txids (hex strings; "" for -1) of tx ids, as an Arrow string array."""
        return self.store.txids(tx_ids).fill_null("")

    def addresses_of_outputs(self, outputs: np.ndarray) -> pa.Array:
        """Address strings ("" without an address or for -1) of output ids (Arrow strings)."""
        outputs = np.asarray(outputs, np.int64)
        ids = np.full(outputs.shape[0], int(NONE32), np.int64)
        has = outputs >= 0
        ids[has] = self.graph.output_address[outputs[has]]
        # encode each distinct address once (a cash-out address repeats across rows)
        unique, inverse = np.unique(ids, return_inverse=True)
        names = self.store.addresses(unique).fill_null("")
        return names.take(pa.array(inverse.reshape(-1)))

    def when(self, tx_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(height, ISO UTC time strings, UTC day numbers) of the txs' blocks."""
        heights = self.graph.tx_height[np.asarray(tx_ids, np.int64)].astype(np.int64)
        epoch = self.block_epoch[heights]
        unique, inverse = np.unique(epoch, return_inverse=True)
        iso = np.array(
            [dt.datetime.fromtimestamp(int(t), dt.UTC).strftime(ISO) for t in unique.tolist()],
            object,
        )
        return heights, iso[inverse], epoch // 86400

    def usd(self, amount_sat: np.ndarray, day: np.ndarray) -> np.ndarray:
        """USD at the day's close, rounded to cents; NaN on a day the price file lacks."""
        index = np.asarray(day, np.int64) - self.price_day0
        ok = (index >= 0) & (index < self.close.shape[0])
        close = np.full(index.shape[0], np.nan)
        close[ok] = self.close[index[ok]]
        usd: np.ndarray = np.round(np.asarray(amount_sat, np.float64) / 1e8 * close, 2)
        return usd

    def n_outputs(self, tx_ids: np.ndarray) -> np.ndarray:
        tx_ids = np.asarray(tx_ids, np.int64)
        first = self.graph.tx_first_output
        # the next tx's first output, read at tx_ids only (not a copy of the per-tx array)
        nxt = np.minimum(tx_ids + 1, max(first.shape[0] - 1, 0))
        ends = np.where(tx_ids + 1 < first.shape[0], first[nxt], self.graph.n_outputs)
        return ends.astype(np.int64) - first[tx_ids].astype(np.int64)


def _groups(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort rows by `keys` (last key most significant... as np.lexsort) and find the groups.

    Returns (order, starts, group of each sorted row): rows order[starts[g]:starts[g+1]] share
    every key.
    """
    order = np.lexsort(keys)
    n = order.shape[0]
    change = np.zeros(n, np.bool_)
    if n:
        change[0] = True
        for k in keys:
            ks = k[order]
            change[1:] |= ks[1:] != ks[:-1]
    starts = np.flatnonzero(change)
    return order, starts, np.cumsum(change) - 1


SOURCE_ATTRIBUTED, SOURCE_COINJOIN, SOURCE_COINBASE, SOURCE_UNATTRIBUTED = 0, 1, 2, 3


def lead_table(
    chain: ChainLookups,
    result: Any,
    out_cluster: Any,  # cluster id per output (an array, or investigate.OutputIds): indexed
    attribution: dict[int, tuple[str | None, str]],
    mixer: dict[int, str],
    policy: str,
    max_hops: int,
    linked: Any = None,  # bool per cluster id: an array or trace.services.ClusterSet (indexed)
    styled: Any = None,
    change_spent: Any = None,
    fingerprint: np.ndarray | None = None,
    candidates: dict[tuple[str | None, str], str] | None = None,
    mix_tx: np.ndarray | None = None,
    path_txs: dict[str, Any] | None = None,
    change_returned: Any = None,
    fragment_linked: dict[str, Any] | None = None,
    forward_habits: dict[str, tuple[int, int, int]] | None = None,
    style_rooted: Any = None,
) -> pa.Table:
    """One row per (deposit address, funding source), amounts summed over paths.

    `linked` (bool per cluster id) marks clusters named through their service entity rather
    than a tag of their own (`attributed_via` = service_entity); `styled` (bool per cluster
    id, a subset of `linked`) those named through their wallet style (`wallet_style`);
    `change_spent` (bool per cluster id, a subset of `linked`) those that spent a named
    wallet's batch change (`change_spend`); `change_returned` (a subset of `change_spent`)
    those whose batch change a named wallet spent (`change_return`, caution
    `linked_by_change_return`: the name came from a spend of their change, listed with its txs
    in case.json's `change_links`). `fragment_linked` (`FRAGMENT_LINKS` kind -> bool per
    cluster id, subsets of `change_spent`) those named by that link (`attributed_via` and the
    caution `linked_by_<kind>` name it). `fingerprint` (wallet fingerprint per tx id,
    `cluster.learned.read_fingerprints`) gives each lead's `fingerprint_change` sign; None:
    not read. `path_txs` ({"small_batch", "coinjoin": bool per tx}, investigate's) lets
    `handoff_signs` read its payout_on_path sign; None: unread.
    `candidates` (unnamed service label -> `;`-joined exchange names,
    `investigate._lend_by_style`) fills `candidate_exchanges` on the rows whose source is
    such a label; it changes no other column. `mix_tx` (bool per tx id: the CoinJoins, whose
    fingerprint is the round's, not a participant wallet's) are left out of the
    `fingerprint_change` sign; None: none left out. `forward_habits` (tagged exchange -> its
    FORWARD_HABITS, `investigate._lend_by_style`) lets a lead whose path passes its named
    exchange's own forward read its signs from there on (`own_forward_at`, caution
    `own_forward`); None or empty: not read. `style_rooted` (bool per cluster id, a subset
    of `linked`: `CaseSetup.style_rooted_clusters`) those whose name rests on a wallet-style
    match (`name_basis` = style, the confidence's `style_name`); None: `styled`."""
    from chainsleuth.cases import kernels as case_kernels
    from chainsleuth.trace import kernels as trace_kernels

    seed_outputs = result.seeds
    deposit_addr = chain.graph.output_address[seed_outputs].astype(np.int64)

    def sources(max_moves: np.ndarray) -> tuple[np.ndarray, ...]:
        out: tuple[np.ndarray, ...] = case_kernels.lead_sources(
            result.entry,
            result.kind,
            result.tx,
            result.entry_parent,
            result.entry_tx,
            result.entry_output,
            result.entry_hops,
            chain.graph.tx_first_output,
            chain.graph.output_value.shape[0],
            chain.graph.output_script_type,
            BATCH_MIN_OUTPUTS,
            trace_kernels.KIND_CLUSTER,
            trace_kernels.KIND_COINJOIN,
            max_moves,
        )
        return out

    funding, source, hops, key, custody = sources(np.zeros(0, np.int32))
    moved_rows = np.flatnonzero(custody > 0)
    if moved_rows.shape[0]:
        kept = custody_moves_kept(
            chain.graph,
            out_cluster,
            case_kernels.custody_txs(
                result.entry[moved_rows],
                custody[moved_rows],
                int(custody.max()),
                result.entry_parent,
                result.entry_tx,
            ),
            funding[moved_rows],
        )
        if (kept < custody[moved_rows]).any():
            limit = custody.copy()
            limit[moved_rows] = kept
            funding, source, hops, key, custody = sources(limit)
    kind = result.kind
    cluster = out_cluster[result.output]
    attributed = np.zeros(cluster.shape[0], np.bool_)
    # the named clusters sorted, looked up by binary search: 8 B per name, where a sorted
    # Python list, its array and `np.isin`'s sort of both came to ≈ 40 B per name, per chunk
    # (the names grow with the chain: every unidentified service and send-all receiver)
    attributed_ids = np.fromiter(attribution, np.int64, len(attribution))
    attributed_ids.sort()
    has = cluster >= 0
    if attributed_ids.shape[0] and has.any():
        c = np.asarray(cluster[has], np.int64)
        pos = np.minimum(np.searchsorted(attributed_ids, c), attributed_ids.shape[0] - 1)
        attributed[has] = attributed_ids[pos] == c
    source_kind = np.full(kind.shape[0], SOURCE_UNATTRIBUTED, np.int64)
    source_kind[(kind == trace_kernels.KIND_CLUSTER) & attributed] = SOURCE_ATTRIBUTED
    source_kind[kind == trace_kernels.KIND_COINJOIN] = SOURCE_COINJOIN
    source_kind[kind == trace_kernels.KIND_COINBASE] = SOURCE_COINBASE
    named = source_kind <= SOURCE_COINJOIN
    source_cluster = np.where(source_kind == SOURCE_ATTRIBUTED, cluster, -1)
    funding = np.where(named, funding, -1)
    source = np.where(named, source, -1)
    key = np.where(named, key, -1)
    source_addr = np.full(kind.shape[0], -1, np.int64)
    source_addr[source >= 0] = chain.graph.output_address[source[source >= 0]]
    deposit = deposit_addr[result.seed]
    amount = result.amount.astype(np.int64)

    # groups: (deposit address, source kind, cluster, funding tx, source address)
    order, starts, _ = _groups(source_addr, funding, source_cluster, source_kind, deposit)
    g_amount = _sum_groups(amount[order], starts)
    g_hops = np.minimum.reduceat(hops[order], starts) if starts.shape[0] else hops[:0]
    first = order[starts]
    # paths: per (group, path key) the amount; each lead lists its largest MAX_PATHS paths
    n_groups = starts.shape[0]
    group_of_row = np.empty(order.shape[0], np.int64)
    group_of_row[order] = np.repeat(np.arange(n_groups), np.diff(np.append(starts, order.shape[0])))
    rows = np.flatnonzero(funding >= 0)
    p_order, p_starts, _ = _groups(key[rows], group_of_row[rows])
    p_first = rows[p_order[p_starts]]  # one row of each (group, path)
    p_amount = _sum_groups(amount[rows[p_order]], p_starts)
    p_group = group_of_row[p_first]
    n_paths = np.bincount(p_group, minlength=n_groups)
    ranked = np.lexsort((key[p_first], -p_amount, p_group))  # by group, then largest first
    rank = np.arange(ranked.shape[0]) - np.searchsorted(p_group[ranked], p_group[ranked])
    kept = ranked[rank < MAX_PATHS]
    top = ranked[rank == 0]
    texts = _join_txids(
        chain,
        case_kernels.path_txs(
            funding[p_first[kept]],
            key[p_first[kept]],
            max_hops + 2,
            result.entry_parent,
            result.entry_tx,
        ),
    )
    # kept is ordered by group, largest path first: one run of path texts per group
    g_path = _join_lists(_run_offsets(p_group[kept], n_groups), texts, "|")
    # the exchange's own txs the funding tx was moved past, on each lead's largest path
    top_rows = p_first[top]
    g_custody_n = np.zeros(n_groups, np.int64)
    g_custody_n[p_group[top]] = custody[top_rows]
    g_custody = _join_lists(
        _run_offsets(p_group[top], n_groups),
        _join_txids(
            chain,
            case_kernels.custody_txs(
                result.entry[top_rows],
                custody[top_rows],
                int(custody.max(initial=0)),
                result.entry_parent,
                result.entry_tx,
            ),
        ),
        "",
    )

    # the longest the traced coins sat at one address on each lead's largest path (days), and
    # whether that path shows an exchange's forward (forward_signs)
    top_paths = case_kernels.path_txs(
        funding[top_rows], key[top_rows], max_hops + 2, result.entry_parent, result.entry_tx
    )
    g_hold = np.zeros(n_groups, np.float64)
    g_hold[p_group[top]] = _longest_hold_days(chain, top_paths)
    g_switched = np.zeros(n_groups, np.bool_)
    g_send_all = np.zeros(n_groups, np.bool_)
    g_switched[p_group[top]], g_send_all[p_group[top]] = forward_signs(chain.graph, top_paths)
    g_fp_change = np.zeros(n_groups, np.bool_)
    if fingerprint is not None:
        g_fp_change[p_group[top]] = fingerprint_change(fingerprint, top_paths, mix_tx)
    extra = path_txs or {}
    handoffs = handoff_signs(
        chain.graph,
        top_paths,
        extra.get("small_batch"),
        extra.get("coinjoin"),
    )
    g_handoff = {}
    for name in HANDOFF_SIGNS:
        g_handoff[name] = np.zeros(n_groups, np.bool_)
        g_handoff[name][p_group[top]] = handoffs[name]

    g_kind = source_kind[first]
    g_cluster = source_cluster[first]
    g_funding = funding[first]
    g_deposit = deposit[first]
    known = np.unique(deposit_addr)
    received = np.bincount(
        np.searchsorted(known, deposit_addr),
        weights=chain.graph.output_value[seed_outputs].astype(np.float64),
        minlength=known.shape[0],
    )
    share = g_amount / np.maximum(received[np.searchsorted(known, g_deposit)], 1.0)
    entity = np.full(starts.shape[0], "", object)
    category = np.full(starts.shape[0], "unattributed", object)
    category[g_kind == SOURCE_COINBASE] = "coinbase"
    category[g_kind == SOURCE_COINJOIN] = "coinjoin"
    # names per distinct cluster / CoinJoin, then spread to the leads
    mixed = np.flatnonzero(g_kind == SOURCE_COINJOIN)
    cjs, where = np.unique(g_funding[mixed], return_inverse=True)
    entity[mixed] = np.array([mixer.get(int(t), "coinjoin") for t in cjs], object)[where]
    tagged = np.flatnonzero(g_kind == SOURCE_ATTRIBUTED)
    clusters, where = np.unique(g_cluster[tagged], return_inverse=True)
    names = [attribution[int(c)] for c in clusters]
    entity[tagged] = np.array([n or "" for n, _ in names], object)[where]
    category[tagged] = np.array([c for _, c in names], object)[where]
    exchange_like = np.isin(category, list(EXCHANGE_CATEGORIES)) | (g_kind == SOURCE_COINJOIN)
    via_entity = np.zeros(n_groups, np.bool_)
    if linked is not None:
        tagged_rows = g_kind == SOURCE_ATTRIBUTED
        via_entity[tagged_rows] = linked[g_cluster[tagged_rows]]
    via_style = np.zeros(n_groups, np.bool_)
    if styled is not None:
        tagged_rows = g_kind == SOURCE_ATTRIBUTED
        via_style[tagged_rows] = styled[g_cluster[tagged_rows]]
    # the name rests on a style match: named by it, or carried from fragments named so
    style_name = via_style.copy()
    if style_rooted is not None:
        tagged_rows = g_kind == SOURCE_ATTRIBUTED
        style_name[tagged_rows] = style_rooted[g_cluster[tagged_rows]]
    via_change = np.zeros(n_groups, np.bool_)
    if change_spent is not None:
        tagged_rows = g_kind == SOURCE_ATTRIBUTED
        via_change[tagged_rows] = change_spent[g_cluster[tagged_rows]]
    via_return = np.zeros(n_groups, np.bool_)
    if change_returned is not None:
        tagged_rows = g_kind == SOURCE_ATTRIBUTED
        via_return[tagged_rows] = change_returned[g_cluster[tagged_rows]]
    via_fragment = {k: np.zeros(n_groups, np.bool_) for k in FRAGMENT_LINKS}
    for k, linked_mask in (fragment_linked or {}).items():
        tagged_rows = g_kind == SOURCE_ATTRIBUTED
        via_fragment[k][tagged_rows] = linked_mask[g_cluster[tagged_rows]]
    share = np.clip(share, 0.0, 1.0)
    # how long this chunk's traced coins usually sit (investigate recomputes every lead's
    # confidence over the whole case's: recalibrate_leads)
    subpoena = np.isin(category, list(EXCHANGE_CATEGORIES))
    typical = typical_hold_days(
        g_hold[subpoena], g_hops[subpoena], calibration().reference_hold_days
    )
    # a source named beyond a CoinJoin (walk_coinjoins) is no surer than the CoinJoin itself
    through = (result.flags & trace_kernels.FLAG_LOW_CONFIDENCE) != 0
    g_through = np.maximum.reduceat(through[order], starts) if n_groups else np.zeros(0, np.bool_)
    # walked back through a CoinJoin's change to the one input that paid it (trace.mix_change):
    # not capped (that coin did not mix), but named in `caution` so that the step is visible
    mixed_change = (result.flags & trace_kernels.FLAG_MIX_CHANGE) != 0
    g_mix_change = (
        np.maximum.reduceat(mixed_change[order], starts) if n_groups else np.zeros(0, np.bool_)
    )
    # a path that passes the named exchange's own forward: the coins went back to it and it
    # paid them on, so the signs (and the hold) are read from that forward on
    g_own = np.zeros(n_groups, np.bool_)
    held_days = g_hold
    if forward_habits and fingerprint is not None and top.shape[0]:
        habit_names = np.array(sorted(forward_habits))
        table = np.array([forward_habits[k] for k in habit_names.tolist()], np.int64)
        top_groups = p_group[top]
        index = np.full(top_groups.shape[0], -1, np.int64)
        ent = entity[top_groups].astype(str)
        pos = np.minimum(np.searchsorted(habit_names, ent), habit_names.shape[0] - 1)
        found = np.isin(category[top_groups], list(EXCHANGE_CATEGORIES)) & (habit_names[pos] == ent)
        index[found] = pos[found]
        at = own_forward_at(chain.graph, fingerprint, top_paths, index, table)
        hit = at >= 1
        if hit.any():
            sub = path_from(top_paths[hit], at[hit])
            groups = top_groups[hit]
            signs_before = _signs(g_switched, g_send_all, g_fp_change, g_handoff)[groups]
            # a sign stays where the path from that forward on shows it too: reading the shorter
            # path only takes signs away (its first tx is no withdrawal of the exchange's, so a
            # sign read there that the whole path did not show, say switched_type on the tx
            # spending the forward, is not one the lead was built to read)
            switched, send_all = forward_signs(chain.graph, sub)
            g_switched[groups] &= switched
            g_send_all[groups] &= send_all
            g_fp_change[groups] &= fingerprint_change(fingerprint, sub, mix_tx)
            sub_handoffs = handoff_signs(
                chain.graph, sub, extra.get("small_batch"), extra.get("coinjoin")
            )
            for name in HANDOFF_SIGNS:
                g_handoff[name][groups] &= sub_handoffs[name]
            held_days = g_hold.copy()
            held_days[groups] = _longest_hold_days(chain, sub)
            # named in `caution` where reading from the forward on took a sign or the hold away
            g_own[groups] = (
                _signs(g_switched, g_send_all, g_fp_change, g_handoff)[groups] != signs_before
            ) | ((g_hold[groups] > LONG_HOLD_DAYS) & (held_days[groups] <= LONG_HOLD_DAYS))
    long_hold = held_days > LONG_HOLD_DAYS
    forwarded = g_switched | g_send_all | g_fp_change
    for name in HANDOFF_SIGNS:
        forwarded = forwarded | g_handoff[name]
    confidence = lead_confidence(
        policy,
        (g_hops, share, g_custody_n, via_entity, g_hold, style_name),
        typical,
        (g_kind == SOURCE_COINJOIN) | g_through,
        long_hold,
        forwarded,
        exchange_like,
    )
    heights = np.full(starts.shape[0], -1, np.int64)
    times = np.full(starts.shape[0], "", object)
    usd = np.full(starts.shape[0], np.nan)
    funded = np.flatnonzero(g_funding >= 0)
    h, t, day = chain.when(g_funding[funded])
    heights[funded], times[funded] = h, t
    usd[funded] = chain.usd(g_amount[funded], day)
    table = pa.table(
        {
            "deposit_address": chain.addresses_of_outputs(seed_outputs[result.seed[first]]),
            "source_entity": entity,
            "source_category": category,
            "source_cluster": pa.array(g_cluster, mask=g_cluster < 0),
            "source_address": chain.addresses_of_outputs(source[first]),
            "funding_txid": chain.txids(g_funding),
            "block_height": pa.array(heights, mask=heights < 0),
            "block_time": times,
            "amount_sat": g_amount,
            "amount_usd": pa.array(usd, mask=np.isnan(usd)),
            "price_note": np.where((g_funding >= 0) & np.isnan(usd), "missing_price", ""),
            "hops": g_hops.astype(np.int64),
            "policy": np.full(starts.shape[0], policy, object),
            "confidence": confidence,
            "path": g_path,
            "n_paths": n_paths,
            "custody_path": g_custody,
            "through_coinjoin": np.where(g_through, "true", "false"),
            "share": np.round(share, 4),
            "attributed_via": np.where(
                g_kind == SOURCE_ATTRIBUTED,
                np.select(
                    [via_return, *via_fragment.values(), via_change, via_style, via_entity],
                    [
                        "change_return",
                        *via_fragment,
                        "change_spend",
                        "wallet_style",
                        "service_entity",
                    ],
                    "tag",
                ),  # fmt: skip
                "",
            ),
            "hold_days": np.round(g_hold, 2),
            "caution": _cautions(
                exchange_like,
                [
                    ("long_hold", long_hold),
                    ("switched_type", g_switched),
                    ("send_all_hop", g_send_all),
                    ("fingerprint_change", g_fp_change),
                    ("coinjoin_change", g_mix_change),
                    # named through a spend of its batch's change (case.json change_links)
                    ("linked_by_change_return", via_return),
                    # named through a fragment link (case.json change_links, `via`)
                    *[("linked_by_" + k, v) for k, v in via_fragment.items()],
                    *[(name, g_handoff[name]) for name in HANDOFF_SIGNS],
                    (OWN_FORWARD, g_own),
                ],
            ),
            "candidate_exchanges": _candidate_exchanges(
                entity, category, g_kind == SOURCE_ATTRIBUTED, candidates
            ),
            "name_basis": np.where(
                g_kind == SOURCE_ATTRIBUTED,
                np.select([style_name, via_entity], ["style", "chain"], "tag"),
                "",
            ),
        },
        schema=schema_of(LEAD_COLUMNS),
    )
    return table


def custody_moves_kept(
    graph: Any, out_cluster: Any, moved: np.ndarray, funding: np.ndarray
) -> np.ndarray:
    """Per row of `moved` (the batches a lead's funding tx was moved past, in order,
    `kernels.custody_txs`; -1-padded) and its funding tx after the moves: how many of those
    moves stand.

    A move past batch B says that the next batch on the path spent B's change: the exchange
    spending its own coins. It stops at a B that pays an output other than the path's into the
    cluster B spends from: B's change is visible there, back in its own wallet, so the path
    output is one of its payees, and the batch that spent it is someone else's payout. The
    usual case is an exchange that spends its customers' deposits in its payouts: B paid its
    customer's deposit address at that exchange, and that exchange's next payout spent the
    deposit with its own coins (docs/accuracy-log.md "Moves past an exchange's own
    batches, and the exchange that spent the deposit"). The lead then stays at B, with that
    payout on its path. Work is per output of the moved batches."""
    n, width = moved.shape if moved.ndim == 2 else (0, 0)
    kept = np.full(n, width, np.int32)
    if n == 0:
        return kept
    row, col = np.nonzero(moved >= 0)
    kept[:] = np.bincount(row, minlength=n).astype(np.int32)
    tx = moved[row, col]
    nxt = np.where(col + 1 < width, moved[row, np.minimum(col + 1, width - 1)], -1)
    nxt = np.where(nxt >= 0, nxt, np.asarray(funding, np.int64)[row])
    first_input = np.asarray(graph.tx_first_input[tx], np.int64)
    own = np.asarray(out_cluster[np.asarray(graph.input_spent_output[first_input], np.int64)])
    owner, outputs = _tx_outputs(graph.tx_first_output, graph.output_value.shape[0], tx)
    spent = np.asarray(graph.output_spent_by_tx[outputs]).astype(np.int64)
    spender = np.where(spent == int(NONE32), -1, spent)
    clusters = np.asarray(out_cluster[outputs], np.int64)
    change = (clusters >= 0) & (clusters == own[owner]) & (spender != nxt[owner])
    stop = np.zeros(tx.shape[0], np.bool_)
    stop[owner[change]] = True
    # the first batch per row that shows its change: the moves before it stand
    hit = np.flatnonzero(stop)
    np.minimum.at(kept, row[hit], col[hit].astype(np.int32))
    return kept


def lead_confidence(
    policy: str,
    features: tuple[np.ndarray, ...],
    typical_hold: float,
    mixed: np.ndarray,
    long_hold: np.ndarray,
    forwarded: np.ndarray,
    exchange_like: np.ndarray,
) -> np.ndarray:
    """Leads' confidence: the calibrated model of `features` (hops, share, custody moves, via
    entity, hold days and, optionally, name resting on a style match; cases.confidence) at the
    case's `typical_hold`, capped at COINJOIN_CAP where `mixed` (a CoinJoin source or one
    beyond it), at LONG_HOLD_CAP where `long_hold` on a path too short to read
    (`long_hold_capped`), at FORWARD_CAP where `forwarded`, 0 where not `exchange_like`,
    rounded to 4 decimals."""
    hops, share, custody, via, hold = features[:5]
    style = features[5] if len(features) > 5 else None
    confidence = calibration().lead(policy, hops, share, custody, via, hold, typical_hold, style)
    confidence = np.where(mixed, np.minimum(confidence, COINJOIN_CAP), confidence)
    capped_hold = long_hold_capped(long_hold, forwarded, features[0])
    confidence = np.where(capped_hold, np.minimum(confidence, LONG_HOLD_CAP), confidence)
    confidence = np.where(forwarded, np.minimum(confidence, FORWARD_CAP), confidence)
    out: np.ndarray = np.where(exchange_like, np.round(confidence, 4), 0.0)
    return out


def long_hold_capped(long_hold: np.ndarray, forwarded: np.ndarray, hops: np.ndarray) -> np.ndarray:
    """Which long-held leads (`long_hold`) stay capped at LONG_HOLD_CAP: those whose path shows
    a change of hands (`forwarded`: a forward or hand-off sign), is too short to show one
    (fewer than LONG_HOLD_MIN_HOPS txs) or long enough to hide one (more than
    LONG_HOLD_MAX_HOPS). The others ship the model's value (LONG_HOLD_MIN_HOPS says why)."""
    hops = np.asarray(hops)
    short_path = (hops >= LONG_HOLD_MIN_HOPS) & (hops <= LONG_HOLD_MAX_HOPS)
    out: np.ndarray = np.asarray(long_hold, np.bool_) & (
        np.asarray(forwarded, np.bool_) | ~short_path
    )
    return out


def case_typical_hold(leads: pa.Table) -> float:
    """The typical hold (days) of a case's leads table: `confidence.typical_hold_days` of its
    exchange leads."""
    subpoena = string_in(leads.column("source_category"), EXCHANGE_CATEGORIES)
    return typical_hold_days(
        leads.column("hold_days").to_numpy(zero_copy_only=False)[subpoena],
        leads.column("hops").to_numpy(zero_copy_only=False)[subpoena],
        calibration().reference_hold_days,
    )


def recalibrate_leads(leads: pa.Table, typical_hold: float) -> pa.Table:
    """`leads` with their confidence recomputed at `typical_hold` from their own columns
    (hops, share, custody_path, attributed_via, hold_days, name_basis, through_coinjoin,
    caution, source_category, policy): lead_table computes it per chunk of seeds, the case's typical
    hold is known once every chunk is in.

    The string columns are read on their Arrow arrays (`pyarrow.compute`), never as one Python
    object per row: a case can hold millions of leads (docs/design/cases.md "Recalibrating
    leads on Arrow arrays"). A null reads as "" in every string column (as `lead_table`
    writes none)."""
    n = leads.num_rows
    if n == 0:
        return leads
    category = leads.column("source_category")
    caution = leads.column("caution")
    coinjoin = string_equals(category, "coinjoin")
    features = (
        leads.column("hops").to_numpy(zero_copy_only=False).astype(np.float64),
        leads.column("share").to_numpy(zero_copy_only=False).astype(np.float64),
        item_count(leads.column("custody_path")).astype(np.float64),
        _via_entity(leads.column("attributed_via")).astype(np.float64),
        leads.column("hold_days").to_numpy(zero_copy_only=False).astype(np.float64),
        # a table written before name_basis: no name rests on a style match
        string_equals(leads.column("name_basis"), "style")
        if "name_basis" in leads.column_names
        else np.zeros(n, np.bool_),
    )
    mixed = coinjoin | string_equals(leads.column("through_coinjoin").cast(pa.string()), "true")
    long_hold = has_item(caution, ("long_hold",))
    forwarded = has_item(caution, FORWARD_CAUTIONS)
    exchange_like = string_in(category, EXCHANGE_CATEGORIES) | coinjoin
    masks = (mixed, long_hold, forwarded, exchange_like)
    confidence = np.zeros(n)
    # one model call per distinct policy (a null policy is scored as "": no policy's scale)
    policy_column = leads.column("policy").fill_null("")
    policies = sorted(pc.unique(policy_column).to_pylist())
    for policy in policies:
        if len(policies) == 1:  # the usual case: every row, no copy
            confidence = lead_confidence(policy, features, typical_hold, *masks)
            break
        rows = string_equals(policy_column, policy)
        confidence[rows] = lead_confidence(
            policy, tuple(f[rows] for f in features), typical_hold, *(m[rows] for m in masks)
        )
    index = leads.schema.get_field_index("confidence")
    return leads.set_column(index, "confidence", pa.array(confidence, pa.float64()))


def _via_entity(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Per row (bool): `confidence.via_entity` of the `attributed_via` column (null read as
    ""), called once per distinct value, not per row."""
    # a local import, as before: lead_table names its own array `via_entity`
    from chainsleuth.cases.confidence import via_entity

    distinct = pc.unique(column).drop_null().to_pylist()
    return string_in(column, [v for v in distinct if via_entity(v)])


def _longest_hold_days(chain: ChainLookups, paths: np.ndarray) -> np.ndarray:
    """Per row of a tx id matrix (a path, -1-padded at the end): the longest time between two
    consecutive txs, in days: how long the traced coins sat at one address on the way. A
    direct payment (one tx) holds 0."""
    if paths.ndim != 2 or paths.shape[0] == 0 or paths.shape[1] < 2:
        return np.zeros(paths.shape[0] if paths.ndim else 0, np.float64)
    valid = paths >= 0
    epoch = np.zeros(paths.shape, np.float64)
    epoch[valid] = chain.block_epoch[chain.graph.tx_height[paths[valid]].astype(np.int64)]
    gap = np.abs(np.diff(epoch, axis=1))
    gap[~(valid[:, 1:] & valid[:, :-1])] = 0.0
    held: np.ndarray = gap.max(axis=1) / 86400.0
    return held


def _candidate_exchanges(
    entity: np.ndarray,
    category: np.ndarray,
    attributed: np.ndarray,
    candidates: dict[tuple[str | None, str], str] | None,
) -> np.ndarray:
    """`candidate_exchanges` of each lead: the set `candidates` holds for its source's label,
    on rows whose source is an `unidentified_service` label; "" elsewhere (an attributed
    source, a CoinJoin, no set). One look-up per distinct label, not per row."""
    out = np.full(entity.shape[0], "", object)
    if not candidates or entity.shape[0] == 0:
        return out
    rows = np.flatnonzero(attributed & (category == UNIDENTIFIED_SERVICE))
    if rows.shape[0] == 0:
        return out
    names, inverse = np.unique(entity[rows].astype(str), return_inverse=True)
    sets = np.array(
        [candidates.get((str(n), UNIDENTIFIED_SERVICE), "") for n in names.tolist()], object
    )
    out[rows] = sets[inverse]
    return out


def _signs(
    switched: np.ndarray, send_all: np.ndarray, fp_change: np.ndarray, handoff: dict[str, Any]
) -> np.ndarray:
    """The forward and hand-off signs of each lead as one bit mask (int64)."""
    bits = [switched, send_all, fp_change, *(handoff[name] for name in HANDOFF_SIGNS)]
    out = np.zeros(switched.shape[0], np.int64)
    for k, mask in enumerate(bits):
        out |= np.asarray(mask, np.int64) << k
    return out


def _cautions(rows: np.ndarray, reasons: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """`caution` of each lead: the names of its reasons (bool arrays), `;`-joined, on `rows`."""
    out = np.full(rows.shape[0], "", object)
    for name, mask in reasons:
        hit = rows & mask
        out[hit] = np.where(out[hit] == "", name, out[hit] + (";" + name))
    return out


def fingerprint_change(
    fingerprint: np.ndarray, paths: np.ndarray, mix_tx: np.ndarray | None = None
) -> np.ndarray:
    """Per row of a path matrix (the funding tx first, the tx paying the deposit last, -1-padded
    at the end): whether the txs after the funding tx carry two or more wallet fingerprints
    (`cluster.learned.read_fingerprints`: tx version, whether nLockTime is set, the first
    input's nSequence class).

    A lead says that the funding tx's exchange paid its customer, and that the customer moved
    those coins on to the deposit: every tx after the funding tx is taken for that customer's
    own. One wallet program signs all its txs alike, so two fingerprints among them mean two
    programs, most often two owners: the coins changed hands on the way, and the exchange that
    funded the first owner did not fund the payer. The usual case: exchange X paid exchange Y's
    deposit address, Y paid a buyer straight from that deposit with its own software, and the
    buyer's wallet paid the deposit (docs/accuracy-log.md "Fingerprint changes and
    change-spend majorities"). One person can use two wallets too, so such a lead is held
    below the cut (FORWARD_CAP), not dropped.
    A path of one or two txs has at most one tx after the funding tx: never flagged. Work is
    per cell of the matrix (1 B per cell for the fingerprints read).

    `mix_tx` (bool per tx id): CoinJoins on the path (a change walked back to its one input,
    `trace.mix_change`) are left out: every participant signs the round's one tx as the
    coordinator's protocol builds it, so its version, nLockTime and nSequence are the
    round's, and say nothing of the participant's own wallet."""
    n = paths.shape[0] if paths.ndim == 2 else 0
    if n == 0 or paths.shape[1] < 3:
        return np.zeros(n, np.bool_)
    after = paths[:, 1:]
    valid = after >= 0
    if mix_tx is not None:
        valid &= ~np.asarray(mix_tx)[np.maximum(after, 0)]
    fp = np.asarray(fingerprint)[np.maximum(after, 0)].astype(np.int16)
    # the first tx after the funding tx that counts, per row (rows with none: never flagged)
    lead = np.argmax(valid, axis=1)
    first = fp[np.arange(n), lead][:, None]
    changed: np.ndarray = (valid & (fp != first)).any(axis=1)
    return changed


def own_forward_at(
    graph: Any,
    fingerprint: np.ndarray,
    paths: np.ndarray,
    exchange: np.ndarray,
    habits: np.ndarray,
) -> np.ndarray:
    """Per row of a path matrix (the funding tx first, the tx paying the deposit last, -1-padded
    at the end): the column of the last tx after the funding tx that reads as the row's named
    exchange's own forward, -1 where none.

    Such a tx spends one coin into two outputs with addresses, and fits the named exchange's
    habits (`exchange`: its row in `habits`, -1 for none; `habits`: one row per tagged
    exchange of (deposit type, hot type, fingerprint), FORWARD_HABITS, negative where not
    read): the coin spent is of its deposits' type, one output of its hot wallet's type, and
    the tx carries its batches' fingerprint; all three read. A row where any tx after the
    funding tx could be another tagged exchange's forward (each of that exchange's habits read
    and equal, or not read) gets -1: the walk may have passed that exchange's wallet.

    What it means: the coins went back into the named exchange (its customer paid one of its
    deposit addresses) and the exchange paid them on straight from that deposit, as the
    `fingerprint_change` doc's forward does for another exchange. The fingerprint change and
    hand-offs before that tx are the customer paying the named exchange, not someone else, so
    `lead_table` reads the signs on the path from that tx on. On the simulated worlds every
    held `fingerprint_change` row with such a tx was right, 276 of 276 over every profile
    (docs/accuracy-log.md "Own forwards on the path"). Work is per cell of the matrix and
    per habit row (a few)."""
    n = paths.shape[0] if paths.ndim == 2 else 0
    out = np.full(n, -1, np.int64)
    habits = np.asarray(habits, np.int64).reshape(-1, len(FORWARD_HABITS))
    if n == 0 or paths.shape[1] < 2 or habits.shape[0] == 0:
        return out
    valid = paths >= 0
    valid[:, 0] = False
    row, col = np.nonzero(valid)
    if row.shape[0] == 0:
        return out
    tx = paths[row, col]
    first_input, first_output = graph.tx_first_input, graph.tx_first_output
    n_in = TxEnds(first_input, graph.input_spent_output.shape[0])[tx] - np.asarray(
        first_input[tx], np.int64
    )
    n_out = TxEnds(first_output, graph.output_value.shape[0])[tx] - np.asarray(
        first_output[tx], np.int64
    )
    shape = (n_in == 1) & (n_out == 2)
    first_out = np.asarray(first_output[tx], np.int64)
    spent = np.asarray(graph.input_spent_output[np.asarray(first_input[tx], np.int64)], np.int64)
    shape = shape & (spent >= 0) & (spent != int(NONE32))
    a, b = first_out, first_out + 1
    # read only where the shape holds (a one-output tx's "second" output is the next tx's)
    a, b, spent = a[shape], b[shape], spent[shape]
    row, col = row[shape], col[shape]
    addressed = (np.asarray(graph.output_address[a]) != NONE32) & (
        np.asarray(graph.output_address[b]) != NONE32
    )
    a, b, spent, row, col = (
        a[addressed],
        b[addressed],
        spent[addressed],
        row[addressed],
        col[addressed],
    )
    if row.shape[0] == 0:
        return out
    in_type = np.asarray(graph.output_script_type[spent]).astype(np.int64)
    a_type = np.asarray(graph.output_script_type[a]).astype(np.int64)
    b_type = np.asarray(graph.output_script_type[b]).astype(np.int64)
    fp = np.asarray(fingerprint)[paths[row, col]].astype(np.int64)
    deposit, hot, print_ = habits[:, 0], habits[:, 1], habits[:, 2]
    # cells x exchanges: each habit equal, or (for a rival) not read
    same_deposit: np.ndarray = np.equal.outer(in_type, deposit)
    same_hot: np.ndarray = np.equal.outer(a_type, hot) | np.equal.outer(b_type, hot)
    same_print: np.ndarray = np.equal.outer(fp, print_)
    read: np.ndarray = np.all(habits >= 0, axis=1)
    fits = same_deposit & same_hot & same_print & read[None, :]
    could = (
        (same_deposit | (deposit < 0)[None, :])
        & (same_hot | (hot < 0)[None, :])
        & (same_print | (print_ < 0)[None, :])
    )
    named = np.asarray(exchange, np.int64)[row]
    has = named >= 0
    own = np.zeros(row.shape[0], np.bool_)
    own[has] = fits[np.flatnonzero(has), named[has]]
    other = could.copy()
    other[np.flatnonzero(has), named[has]] = False
    rival = np.zeros(n, np.bool_)
    rival[row[other.any(axis=1)]] = True
    np.maximum.at(out, row[own], col[own])
    out[rival | (np.asarray(exchange) < 0)] = -1
    return out


def path_from(paths: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Each row of a path matrix (-1-padded at the end) from its column `start` on, left-aligned
    and -1-padded: the sub-path whose first tx is `start`'s."""
    n, width = paths.shape
    column = np.arange(width)[None, :] + np.asarray(start, np.int64)[:, None]
    inside = column < width
    out = np.full((n, width), -1, paths.dtype)
    out[inside] = paths[np.nonzero(inside)[0], column[inside]]
    return out


def forward_signs(graph: Any, paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a path matrix (the funding tx first, the tx paying the deposit last, -1-padded
    at the end): (switched_type, send_all_hop), two bool arrays.

    - **switched_type**: the tx that spends the funding tx's output spends it alone into two
      outputs, neither of the spent coin's script type, and not both of one native segwit type
      from an older coin (a wallet upgrading, or matching its change to the payment's type). A
      person's wallet keeps its change in the type it holds; an exchange that forwards a
      customer's deposit straight to a buyer receives on its deposit addresses' type and sends
      the rest to its hot wallet's. Then the funding tx paid another exchange's deposit: the
      exchange named only paid that exchange's customer, who is not the service's payer.
    - **send_all_hop**: a tx between the funding tx and the deposit's payment has one input and
      one output: a send-all, which pays another owner about a third of the time (issue 11),
      so whoever funded the coins before it most likely funded someone else.

    `graph` is the store's ChainGraph (its tx, input and output arrays). Work is per distinct tx
    of the matrix and per output of those txs (no Python object per tx)."""
    n = paths.shape[0] if paths.ndim == 2 else 0
    switched = np.zeros(n, np.bool_)
    send_all = np.zeros(n, np.bool_)
    if n == 0 or paths.shape[1] < 2:
        return switched, send_all
    # the per-tx and per-input arrays are read at the path's txs only (mapped, not copied)
    first_input, first_output = graph.tx_first_input, graph.tx_first_output
    spent_output = graph.input_spent_output
    output_type = graph.output_script_type
    txs = np.unique(paths[paths >= 0])
    # read at `txs` only: an `np.append` of the per-tx arrays was 8 B per tx of the chain each
    in_end = TxEnds(first_input, spent_output.shape[0])[txs]
    out_end = TxEnds(first_output, graph.output_value.shape[0])[txs]
    first_in = np.asarray(first_input[txs], np.int64)
    first_out = np.asarray(first_output[txs], np.int64)
    n_in = in_end - first_in
    n_out = out_end - first_out
    # every output of those txs, with its tx's index in `txs`
    owner = np.repeat(np.arange(txs.shape[0]), n_out)
    starts = np.cumsum(n_out) - n_out
    outputs = first_out[owner] + np.arange(owner.shape[0]) - starts[owner]
    payable = (graph.output_address[outputs] != NONE32) & (graph.output_value[outputs] > 0)
    n_payable = np.bincount(owner[payable], minlength=txs.shape[0])
    # the script type of each tx's first input (-1: a coinbase)
    spent = np.asarray(
        spent_output[np.minimum(first_in, max(spent_output.shape[0] - 1, 0))], np.int64
    )
    has_input = (n_in > 0) & (spent >= 0) & (spent != int(NONE32))
    in_type = np.full(txs.shape[0], -1, np.int64)
    in_type[has_input] = output_type[spent[has_input]]
    out_type = output_type[outputs].astype(np.int64)
    kept = payable & (out_type == in_type[owner])
    n_kept = np.bincount(owner[kept], minlength=txs.shape[0])
    # both payees of one native segwit type, from an older coin: a wallet upgrading
    low = np.full(txs.shape[0], 255, np.int64)
    high = np.full(txs.shape[0], -1, np.int64)
    np.minimum.at(low, owner[payable], out_type[payable])
    np.maximum.at(high, owner[payable], out_type[payable])
    upgrade = (low == high) & np.isin(low, SEGWIT_NATIVE) & np.isin(in_type, PRE_SEGWIT)
    one_in = (n_in == 1) & has_input
    switch_tx = one_in & (n_payable == 2) & (n_kept == 0) & ~upgrade
    send_all_tx = one_in & (n_payable == 1)
    at = np.searchsorted(txs, np.maximum(paths, 0))
    valid = paths >= 0
    switched = valid[:, 1] & switch_tx[at[:, 1]]
    length = valid.sum(axis=1)
    column = np.arange(paths.shape[1])
    between = valid & (column >= 1) & (column[None, :] < (length - 1)[:, None])
    send_all = (between & send_all_tx[at]).any(axis=1)
    return switched, send_all


def _tx_outputs(
    first_output: np.ndarray, n_outputs: int, txs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(owner, outputs): every output of `txs` (int64 tx ids, repeats allowed), with the index
    in `txs` of its tx."""
    end = TxEnds(first_output, n_outputs)[txs]
    first = np.asarray(first_output[txs], np.int64)
    width = end - first
    owner = np.repeat(np.arange(txs.shape[0]), width)
    starts = np.cumsum(width) - width
    return owner, first[owner] + np.arange(owner.shape[0]) - starts[owner]


def handoff_signs(
    graph: Any,
    paths: np.ndarray,
    small_batch: np.ndarray | None = None,
    coinjoin: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per row of a path matrix (the funding tx first, the tx paying the deposit last, -1-padded
    at the end): {sign: bool array} for the HANDOFF_SIGNS, each read on the path's
    intermediate txs (after the funding tx, before the tx paying the deposit).

    A lead takes every tx after the funding tx for one owner's: on each intermediate tx the
    walk must come through that owner's change, not through a payment to someone else. Each
    sign is chain evidence that the path coin was a payment there, so the exchange named paid
    the first owner, not the deposit's payer (docs/design/cases.md "Hand-offs on the path"):

    - **round_payment**: of the tx's two payees the path coin is a round amount (ROUND_SAT)
      and the other is not (the cluster stage's round-amount rule: payments are round, change
      is what is left).
    - **peeled_off**: the tx spends one coin into two payees, the path coin is the smaller, and
      the larger is spent again by a one-input, two-payee tx: a peel chain that goes on from
      the larger output (its change) while the walk left it at a peel.
    - **payout_on_path**: the tx is a payout of 3+ payees (`small_batch`: at most half of them
      of one value, not a CoinJoin) none of whose outputs a CoinJoin spends (a Whirlpool Tx0's
      premixes do): a wallet paying several people at once, the path coin one of them.

    `small_batch` and `coinjoin` (bool per tx) are the case's (investigate); None leaves
    payout_on_path unread. Work is per output of the matrix's intermediate cells and of the
    peels' next txs (no Python object per tx)."""
    n = paths.shape[0] if paths.ndim == 2 else 0
    out = {name: np.zeros(n, np.bool_) for name in HANDOFF_SIGNS}
    if n == 0 or paths.shape[1] < 3:
        return out
    valid = paths >= 0
    length = valid.sum(axis=1)
    column = np.arange(paths.shape[1])
    mid = valid & (column >= 1) & (column[None, :] < (length - 1)[:, None])
    row, col = np.nonzero(mid)
    if row.shape[0] == 0:
        return out
    tx = paths[row, col]
    nxt = paths[row, col + 1]
    # the per-tx arrays are read at the path's txs only (mapped, not copied)
    first_input, first_output = graph.tx_first_input, graph.tx_first_output
    n_outputs = graph.output_value.shape[0]
    ends_in = TxEnds(first_input, graph.input_spent_output.shape[0])

    def n_inputs(txs: np.ndarray) -> np.ndarray:
        # read at `txs` only (a whole-chain `np.append` and difference were 16 B per tx)
        result: np.ndarray = ends_in[txs] - np.asarray(first_input[txs], np.int64)
        return result

    def payees(outputs: np.ndarray) -> np.ndarray:
        return (np.asarray(graph.output_address[outputs]) != NONE32) & (
            np.asarray(graph.output_value[outputs]) > 0
        )

    owner, outputs = _tx_outputs(first_output, n_outputs, tx)
    value = np.asarray(graph.output_value[outputs]).astype(np.int64)
    payable = payees(outputs)
    spent = np.asarray(graph.output_spent_by_tx[outputs]).astype(np.int64)
    spender = np.where(spent == int(NONE32), -1, spent)
    on_path = spender == nxt[owner]
    cells = tx.shape[0]
    n_payable = np.bincount(owner[payable], minlength=cells)
    path_out = payable & on_path
    sib_out = payable & ~on_path
    # two payees, one of them the path coin: its value, the other's, and who spent the other
    two = (n_payable == 2) & (np.bincount(owner[path_out], minlength=cells) == 1)
    path_value = np.zeros(cells, np.int64)
    path_value[owner[path_out]] = value[path_out]
    sib_value = np.zeros(cells, np.int64)
    sib_spender = np.full(cells, -1, np.int64)
    sib_value[owner[sib_out]] = value[sib_out]
    sib_spender[owner[sib_out]] = spender[sib_out]
    cell = {}
    cell["round_payment"] = two & (path_value % ROUND_SAT == 0) & (sib_value % ROUND_SAT != 0)
    peel = two & (n_inputs(tx) == 1) & (path_value < sib_value) & (sib_spender >= 0)
    if peel.any():
        nexts = sib_spender[peel]
        n_owner, n_outs = _tx_outputs(first_output, n_outputs, nexts)
        nexts_payees = np.bincount(n_owner[payees(n_outs)], minlength=nexts.shape[0])
        peel[peel] = (n_inputs(nexts) == 1) & (nexts_payees == 2)
    cell["peeled_off"] = peel
    payout = np.zeros(cells, np.bool_)
    if small_batch is not None:
        into_coinjoin = np.zeros(cells, np.bool_)
        if coinjoin is not None:
            hit = np.zeros(outputs.shape[0], np.bool_)
            hit[spender >= 0] = np.asarray(coinjoin)[spender[spender >= 0]]
            into_coinjoin[owner[hit]] = True
        payout = np.asarray(small_batch)[tx] & ~into_coinjoin
    cell["payout_on_path"] = payout
    for name in HANDOFF_SIGNS:
        out[name][row[cell[name]]] = True
    return out


def _join_txids(chain: ChainLookups, paths: np.ndarray, separator: str = ";") -> pa.Array:
    """`separator`-joined txids of each row of a tx id matrix, -1-padded at the end."""
    lengths = (paths >= 0).sum(axis=1) if paths.ndim == 2 else np.zeros(0, np.int64)
    offsets = np.zeros(lengths.shape[0] + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    names = chain.txids(paths[paths >= 0]) if paths.size else pa.array([], pa.string())
    return _join_lists(offsets, names, separator)


def _run_offsets(group: np.ndarray, n_groups: int) -> np.ndarray:
    """List offsets for values sorted by group: group g owns offsets[g]:offsets[g + 1]."""
    offsets = np.zeros(n_groups + 1, np.int32)
    np.cumsum(np.bincount(group, minlength=n_groups), out=offsets[1:])
    return offsets


def _join_lists(offsets: np.ndarray, values: pa.Array, separator: str) -> pa.Array:
    """Join runs of strings: row i is values[offsets[i]:offsets[i+1]] joined by separator."""
    import pyarrow.compute as pc

    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)
    joined: pa.Array = pc.binary_join(lists, separator)
    return joined


def _sum_groups(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum of each group of sorted values (groups start at `starts`)."""
    if starts.shape[0] == 0:
        return np.zeros(0, np.int64)
    summed: np.ndarray = np.add.reduceat(values.astype(np.int64), starts)
    return summed


#: The confidence at which a cash-out counts in a case's totals when no cut was asked for
#: (`--min-confidence` 0, its default): the cut at which leads and cash-outs are scored.
DEFAULT_CASHOUT_CUT = 0.5


def cashout_cut(min_confidence: float) -> float:
    """The confidence at which a cash-out counts in the report's and the summary's totals:
    the case's `--min-confidence` when one was given, else DEFAULT_CASHOUT_CUT (rows below are
    listed in cashouts.csv, not totalled)."""
    value = float(min_confidence)
    return value if math.isfinite(value) and value > 0 else DEFAULT_CASHOUT_CUT


def subpoena_table(leads: pa.Table, min_confidence: float = 0.0) -> pa.Table:
    """Per exchange, the withdrawals (customers) to request: surest first (a row's confidence
    is its best lead's), then by the exchange's total paid to the service. Rows below
    `min_confidence` are left out. A row's `name_basis` is the weakest of its leads' (style,
    then chain, then tag); `tag` where `leads` predates the column."""
    import duckdb

    con = duckdb.connect()
    if "name_basis" not in leads.column_names:  # a table written before name_basis
        leads = leads.append_column("name_basis", pa.array([""] * leads.num_rows, pa.string()))
    con.register("leads", leads)
    categories = ", ".join(f"'{c}'" for c in sorted(EXCHANGE_CATEGORIES))
    table = con.sql(
        f"""
        WITH rows AS (
            SELECT source_entity AS exchange, funding_txid, source_address,
                   min(block_height) AS block_height, min(block_time) AS block_time,
                   sum(amount_sat)::BIGINT AS amount_sat,
                   round(sum(amount_usd), 2) AS amount_usd,
                   bool_or(amount_usd IS NULL) AS missing,
                   count(DISTINCT deposit_address) AS n_deposits,
                   string_agg(DISTINCT deposit_address, ';' ORDER BY deposit_address)
                       AS deposit_addresses,
                   max(confidence) AS confidence,
                   -- the weakest basis of its leads: a row any style lead makes rests on
                   -- the closed-world assumption
                   CASE max(CASE name_basis WHEN 'style' THEN 2 WHEN 'chain' THEN 1
                                            ELSE 0 END)
                        WHEN 2 THEN 'style' WHEN 1 THEN 'chain' ELSE 'tag' END AS name_basis
            FROM leads WHERE source_category IN ({categories})
            GROUP BY source_entity, funding_txid, source_address
            HAVING max(confidence) >= {float(min_confidence)!r}
        )
        SELECT exchange, (sum(amount_sat) OVER (PARTITION BY exchange))::BIGINT
                   AS exchange_total_sat,
               funding_txid, source_address, block_height, block_time, amount_sat,
               CASE WHEN missing THEN NULL ELSE amount_usd END AS amount_usd,
               CASE WHEN missing THEN 'missing_price' ELSE '' END AS price_note,
               n_deposits, deposit_addresses, confidence, name_basis
        FROM rows
        ORDER BY confidence DESC, exchange_total_sat DESC, exchange, amount_sat DESC,
                 funding_txid, source_address
        """
    ).arrow()
    con.close()
    return table if isinstance(table, pa.Table) else table.read_all()


def cashout_table(
    chain: ChainLookups,
    parts: list[dict[str, np.ndarray]],
    attribution: dict[int, tuple[str | None, str]],
    mixer: dict[int, str],
    policy: str = "haircut",
) -> pa.Table:
    """One row per destination output, summed over the trace rows of every chunk.

    `amount_sat` is the service's money that reached the destination under the policy (what
    the trace followed into it); `output_value_sat` is the destination output's whole value and
    `service_share` their ratio. An output the service paid only a sliver of is someone else's
    money: its confidence scales with that share, and decays per hop like a lead's.
    `attributed_via` says which rule of `cases.cashouts` made the row; rows of its weaker rule
    (`forward_unconfirmed`) carry that caution and their confidence is capped at
    `cashouts.UNCONFIRMED_FORWARD_CAP`.
    """
    rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    if not rows:
        rows = {k: np.zeros(0, np.int64) for k in ("destination", "tx", "hops", "traced", "via")}
        rows["coinjoin"] = np.zeros(0, np.bool_)
        rows["cluster"] = np.zeros(0, np.int64)
    order, starts, _ = _groups(rows["destination"])
    first = order[starts]
    d = rows["destination"][first]
    d_tx = rows["tx"][first]
    traced = _sum_groups(rows["traced"][order], starts)
    hops = rows["hops"][order]
    d_hops = np.minimum.reduceat(hops, starts) if starts.shape[0] else hops[:0]
    d_cluster = rows["cluster"][first]
    d_via = rows["via"][first]
    n = starts.shape[0]
    entity = np.full(n, "", object)
    category = np.full(n, "", object)
    for i, coinjoin in enumerate(rows["coinjoin"][first].tolist()):
        if coinjoin:
            entity[i], category[i] = mixer.get(int(d_tx[i]), "coinjoin"), "coinjoin"
        else:
            name, cat = attribution[int(d_cluster[i])]
            entity[i], category[i] = name or "", cat
    heights, times, day = chain.when(d_tx)
    value = chain.graph.output_value[d].astype(np.int64)
    amount = np.minimum(traced, value)
    usd = chain.usd(amount, day)
    share = np.clip(amount / np.maximum(value, 1), 0.0, 1.0)
    confidence = calibration().cashout(policy, d_hops, share)
    confidence = np.where(category == "coinjoin", np.minimum(confidence, COINJOIN_CAP), confidence)
    unconfirmed = d_via == VIA_FORWARD_UNCONFIRMED
    confidence = np.where(unconfirmed, np.minimum(confidence, UNCONFIRMED_FORWARD_CAP), confidence)
    # rules 6a and 6b rest on script types and the tx's software alone: reported, and say so (a
    # person whose wallet moved to another type can look alike; cases.cashouts)
    cautioned = unconfirmed | np.isin(d_via, (VIA_FORWARD_SWITCHED, VIA_FORWARD_HABITS))
    table = pa.table(
        {
            "destination_address": chain.addresses_of_outputs(d),
            "destination_entity": entity,
            "destination_category": category,
            "destination_cluster": pa.array(d_cluster, mask=d_cluster < 0),
            "txid": chain.txids(d_tx),
            "block_height": heights,
            "block_time": times,
            "amount_sat": amount,
            "traced_sat": traced,
            "amount_usd": pa.array(usd, mask=np.isnan(usd)),
            "price_note": np.where(np.isnan(usd), "missing_price", ""),
            "hops": d_hops,
            "output_value_sat": value,
            "service_share": np.round(share, 4),
            "confidence": np.round(confidence, 4),
            "attributed_via": np.asarray(CASHOUT_VIA, object)[d_via],
            "caution": np.where(cautioned, np.asarray(CASHOUT_VIA, object)[d_via], ""),
        },
        schema=schema_of(CASHOUT_COLUMNS),
    )
    return table.sort_by(
        [("block_height", "ascending"), ("txid", "ascending"), ("destination_address", "ascending")]
    )


def _members_of(cluster_of: Any, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(address ids, their cluster) of the members of `clusters` (sorted, unique): one pass over
    `cluster_of` (an array, or `cluster.layers.LayeredIds`), 2^20 addresses at a time, so
    nothing per address is held (a whole-array `np.isin` would materialise layered ids)."""
    found: list[np.ndarray] = [np.zeros(0, np.int64)]
    owners: list[np.ndarray] = [np.zeros(0, np.int64)]
    n = int(cluster_of.shape[0])
    if clusters.shape[0] == 0:
        return found[0], owners[0]
    for lo in range(0, n, 1 << 20):
        part = np.asarray(cluster_of[lo : min(n, lo + (1 << 20))], np.int64)
        pos = np.minimum(np.searchsorted(clusters, part), clusters.shape[0] - 1)
        hit = np.flatnonzero(clusters[pos] == part)
        found.append(hit + lo)
        owners.append(part[hit])
    return np.concatenate(found), np.concatenate(owners)


def services_table(
    store: Store,
    cluster_of: np.ndarray,
    leads: pa.Table,
    cashouts: pa.Table,
    stats: Any,
) -> pa.Table:
    """One row per unidentified service the case reached: its cluster, behaviour, what it
    funded and received, and up to three of its addresses (to identify the operator)."""
    import duckdb

    con = duckdb.connect()
    con.register("leads", leads.select(["deposit_address", "source_category", "source_cluster",
                                         "amount_sat"]))  # fmt: skip
    con.register("cashouts", cashouts.select(["destination_category", "destination_cluster",
                                              "amount_sat"]))  # fmt: skip
    reached = con.sql(
        f"""
        WITH f AS (SELECT source_cluster AS c, count(DISTINCT deposit_address) AS n_dep,
                          sum(amount_sat)::BIGINT AS funded
                   FROM leads WHERE source_category = '{UNIDENTIFIED_SERVICE}' GROUP BY 1),
             o AS (SELECT destination_cluster AS c, count(*) AS n_out,
                          sum(amount_sat)::BIGINT AS out_sat
                   FROM cashouts WHERE destination_category = '{UNIDENTIFIED_SERVICE}'
                   GROUP BY 1)
        SELECT coalesce(f.c, o.c) AS c, coalesce(n_dep, 0) AS n_dep, coalesce(funded, 0) AS funded,
               coalesce(n_out, 0) AS n_out, coalesce(out_sat, 0) AS out_sat
        FROM f FULL OUTER JOIN o ON f.c = o.c ORDER BY funded DESC, out_sat DESC, c
        """
    ).fetchnumpy()
    con.close()
    ids = np.asarray(reached["c"], np.int64)
    members, owner = _members_of(cluster_of, np.unique(ids))
    order = np.lexsort((members, owner))
    members, owner = members[order], owner[order]
    rank = np.arange(owner.shape[0]) - np.searchsorted(owner, owner)
    sizes = np.bincount(np.searchsorted(ids[np.argsort(ids)], owner), minlength=ids.shape[0])
    size_of = dict(zip(np.sort(ids).tolist(), sizes.tolist(), strict=True))
    keep = rank < 3
    names: dict[int, list[str]] = {}
    if keep.any():
        # encoded from the key rows of these addresses only: a join with DuckDB's
        # address_list_raw scanned every address of the store (its RssAnon grew with the chain)
        text = store.addresses(members[keep]).fill_null("").to_pylist()
        for c, a in zip(owner[keep].tolist(), text, strict=True):
            names.setdefault(c, []).append(str(a))
    return pa.table(
        {
            "cluster_id": ids,
            "n_addresses": np.array([size_of.get(c, 0) for c in ids.tolist()], np.int64),
            "batches": stats.batches[ids] if ids.shape[0] else np.zeros(0, np.int64),
            "sweeps_received": stats.sweeps_in[ids] if ids.shape[0] else np.zeros(0, np.int64),
            "n_deposits_funded": np.asarray(reached["n_dep"], np.int64),
            "funded_sat": np.asarray(reached["funded"], np.int64),
            "n_cashouts": np.asarray(reached["n_out"], np.int64),
            "cashout_sat": np.asarray(reached["out_sat"], np.int64),
            "example_addresses": [";".join(names.get(c, [])) for c in ids.tolist()],
        }
    )
