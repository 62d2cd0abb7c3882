"""Exposure of an address or a cluster: where its received value came from and where its sent
value went, by category of the attributed clusters reached (docs/design/trace.md, "Exposure").

Received: a haircut `trace_back` from every output paying the subject; sent: a haircut
`trace_forward` from every spent output of the subject. Attributed clusters (the tags stage's
`cluster_tags`) are stop clusters, so a walk ends at the first attributed cluster it meets; the
subject's own cluster is walked through. Each row of the trace is then given a category: the
attributed cluster's category, "coinbase", "coinjoin", "self" (the subject's own cluster) or
"unattributed". Direct exposure is the same trace with max_hops=1; indirect with max_hops=N.
A time window (`min_height`/`max_height`) keeps the value received or sent by txs inside it,
and the walks do not cross its edges: value that was there before the window opened (received)
or still held when it closed (sent) gets the category "outside_window".

    >>> exposure(data, "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3")["received"]["direct"]  # doctest: +SKIP
    {'coinbase': {'amount': 1000000000, 'share': 1.0}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from chainsleuth.cluster.engine import Clusters
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.core.scratch import Scratch, scratch_array
from chainsleuth.store.graph import owned_rows
from chainsleuth.store.layout import NONE32
from chainsleuth.store.store import Store
from chainsleuth.trace.engine import KINDS, TraceOptions, TraceResult, trace_back, trace_forward
from chainsleuth.trace.paths import resolve_node


def attributed_cluster_labels(data_dir: Path) -> dict[int, tuple[str | None, str]]:
    """{cluster id: (actor or label, category)} from the tags stage; empty without tags."""
    data_dir = Path(data_dir)
    if not (data_dir / "tags" / "manifest.json").exists():
        return {}
    from chainsleuth.tags.query import TagLookup

    with TagLookup.open(data_dir) as lookup:
        try:
            rows = lookup.query("SELECT cluster_id, actor, label, category FROM cluster_tags")
        except Exception:  # no cluster_tags view yet (no tag has an address in the store)
            return {}
    return {
        int(r["cluster_id"]): (r["actor"] or r["label"], r["category"] or "other") for r in rows
    }


def coinjoin_flags(
    data_dir: Path, n_txs: int, scratch: Scratch | None = None
) -> tuple[np.ndarray, dict[int, str]]:
    """Bool per tx (flagged as a CoinJoin by the cluster stage) and {tx id: rule (the mixer
    kind)}; all False without a clustering. `scratch` (core.scratch): the flags file-backed."""
    flags = scratch_array(scratch, n_txs, np.bool_)
    rules: dict[int, str] = {}
    table = Clusters.or_singletons(data_dir).coinjoins(["tx_id", "rule"])
    tx_ids = table.column("tx_id").to_numpy().astype(np.int64)
    for t, rule in zip(tx_ids.tolist(), table.column("rule").to_pylist(), strict=True):
        if 0 <= t < n_txs:
            flags[t] = True
            rules[t] = str(rule)
    return flags, rules


def one_wallet_txs(
    store: Store,
    cluster_of: np.ndarray,
    only: np.ndarray | None = None,
    scratch: Scratch | None = None,
) -> np.ndarray:
    """Bool per tx: do all of its inputs lie in one cluster (coinbases: False)?

    A CoinJoin mixes several wallets' coins; a tx flagged as one whose inputs all belong to a
    single cluster is one wallet's own split (a Whirlpool Tx0, an exchange's equal-amount
    batch), and tracing may walk through it as through any other tx of that wallet.
    `only` (bool per tx): answer for those txs alone (the rest False), reading only their
    inputs instead of every input of the chain (~35 B per input). `scratch` (core.scratch):
    the result file-backed.
    """
    first = store.graph.tx_first_input
    n_txs, n_inputs = first.shape[0], store.graph.input_address.shape[0]
    if n_txs == 0 or n_inputs == 0:
        return scratch_array(scratch, n_txs, np.bool_)
    if only is None:
        txs = np.arange(n_txs, dtype=np.int64)
    else:
        txs = np.flatnonzero(only[:n_txs]).astype(np.int64)
    rows, owner = owned_rows(first, n_inputs, txs)
    address = np.asarray(store.graph.input_address[rows]).astype(np.int64)
    known = address != int(NONE32)
    cluster = np.full(address.shape[0], -1, np.int64)
    cluster[known] = cluster_of[address[known]]
    result = scratch_array(scratch, n_txs, np.bool_)
    if rows.shape[0]:
        # each owner's rows are contiguous: reduce over the runs of `owner`
        starts = np.flatnonzero(np.diff(owner, prepend=-1))
        low = np.minimum.reduceat(cluster, starts)
        high = np.maximum.reduceat(cluster, starts)
        result[txs[owner[starts]]] = (low == high) & (low >= 0)
    return result


def _categorise(
    store: Store,
    result: TraceResult,
    cluster_of_address: np.ndarray,
    attribution: dict[int, tuple[str | None, str]],
    own_cluster: int,
) -> tuple[dict[str, int], dict[str, int]]:
    """Amount per category and per attributed actor over the rows of a haircut trace."""
    by_category: dict[str, int] = {}
    by_actor: dict[str, int] = {}
    address = store.graph.output_address[result.output].astype(np.int64)
    cluster = np.full(address.shape[0], -1, np.int64)
    known = address != int(NONE32)
    cluster[known] = cluster_of_address[address[known]]
    for kind, c, amount in zip(
        result.kind.tolist(), cluster.tolist(), result.amount.tolist(), strict=True
    ):
        name = KINDS[kind]
        actor = None
        if name in ("coinbase", "coinjoin"):
            category = name
        elif name == "time_window":
            category = "outside_window"
        elif c == own_cluster and c >= 0:
            category = "self"
        elif c in attribution:
            actor, category = attribution[c]
        else:
            category = "unattributed"
        by_category[category] = by_category.get(category, 0) + int(amount)
        if actor is not None:
            by_actor[actor] = by_actor.get(actor, 0) + int(amount)
    return by_category, by_actor


def _shares(amounts: dict[str, int], total: int) -> dict[str, dict[str, float | int]]:
    return {
        k: {"amount": v, "share": (v / total) if total else 0.0}
        for k, v in sorted(amounts.items(), key=lambda kv: (-kv[1], kv[0]))
    }


def exposure(
    store_dir: Path,
    address_or_cluster: str | int,
    max_hops: int = 3,
    is_coinjoin: np.ndarray | None = None,
    min_value: int = 0,
    *,
    min_height: int | None = None,
    max_height: int | None = None,
) -> dict[str, Any]:
    """Direct (1 hop) and indirect (up to `max_hops`) exposure of an address (a string) or a
    cluster (an int, or a string of digits), received and sent, by category.

    Returns {"subject", "level", "node", "cluster", "max_hops", "received": side, "sent": side}
    where side = {"total", "direct": {category: {"amount", "share"}}, "indirect": {...},
    "direct_actors": {actor: satoshis}, "indirect_actors": {...}, "untraced_direct",
    "untraced_indirect"}. Shares are of `total` (received: the value paid to the subject; sent:
    the value of its spent outputs); `untraced_*` is what the haircut lost to fees or dropped
    below `min_value`.

    `min_height`/`max_height` (block heights, both included; `trace.rows.window_heights` turns
    dates into them) restrict it to a time window: received counts the outputs paid to the
    subject by txs inside it, sent the outputs the subject spent in txs inside it, and the
    walks stop at txs outside it (category "outside_window"). The result echoes the window.

    >>> exposure(data, 123, max_hops=2)["sent"]["indirect"]   # doctest: +SKIP
    >>> exposure(data, "1Q2TW...", min_height=100, max_height=200)  # doctest: +SKIP
    """
    if max_hops < 1:
        raise ChainsleuthError("max_hops must be at least 1")
    store_dir = Path(store_dir)
    store = Store.open(store_dir)
    is_cluster = isinstance(address_or_cluster, int) or str(address_or_cluster).isdigit()
    level = "cluster" if is_cluster else "address"
    node = resolve_node(store, address_or_cluster, level)
    n_addresses = store.counts["addresses"]
    cluster_of_address = Clusters.or_singletons(store_dir).clusters_of(np.arange(n_addresses))
    own_cluster = node if is_cluster else int(cluster_of_address[node])
    attribution = attributed_cluster_labels(store_dir)
    stop = np.zeros(max(n_addresses, 1), np.bool_)
    ids = np.array([c for c in attribution if 0 <= c < stop.shape[0] and c != own_cluster])
    stop[ids.astype(np.int64)] = True

    address = store.graph.output_address.astype(np.int64)
    if is_cluster:
        members = np.flatnonzero(cluster_of_address == node)
        outs = np.flatnonzero(np.isin(address, members))
    else:
        outs = np.flatnonzero(address == node)
    value = store.graph.output_value
    spender = store.spent_by(outs)
    spent = outs[spender >= 0]
    if min_height is not None or max_height is not None:
        heights = store.graph.tx_height
        lo = -1 if min_height is None else min_height
        hi = (1 << 31) if max_height is None else max_height
        first_output = store.graph.tx_first_output
        creator = np.searchsorted(first_output, outs, side="right") - 1
        h_in = heights[creator]
        h_out = heights[spender[spender >= 0]]
        outs = outs[(h_in >= lo) & (h_in <= hi)]
        spent = spent[(h_out >= lo) & (h_out <= hi)]

    def side(seeds: np.ndarray, run: Any) -> dict[str, Any]:
        total = int(value[seeds].sum())
        out: dict[str, Any] = {"total": total}
        for name, hops in (("direct", 1), ("indirect", max_hops)):
            result = run(
                store_dir,
                seeds,
                TraceOptions(
                    policy="haircut",
                    max_hops=hops,
                    min_value=min_value,
                    min_height=min_height,
                    max_height=max_height,
                ),
                stop_clusters=stop,
                cluster_of=cluster_of_address,
                is_coinjoin=is_coinjoin,
            )
            cats, actors = _categorise(store, result, cluster_of_address, attribution, own_cluster)
            out[name] = _shares(cats, total)
            out[f"{name}_actors"] = dict(sorted(actors.items(), key=lambda kv: -kv[1]))
            out[f"untraced_{name}"] = total - sum(cats.values())
        return out

    return {
        "subject": str(address_or_cluster),
        "level": level,
        "node": node,
        "cluster": own_cluster,
        "max_hops": max_hops,
        "min_height": min_height,
        "max_height": max_height,
        "received": side(outs, trace_back),
        "sent": side(spent, trace_forward),
    }
