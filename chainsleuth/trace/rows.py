"""Trace rows: `trace_rows` resolves what a person names (an address, a TXID, TXID:VOUT or a
cluster id), applies the stops and the time window, and turns a `trace.engine` result into one
plain dict per row.

It is the library behind `chainsleuth trace` (trace/cli.py prints the rows) and what notebooks
and tests call; the case stage walks the engine directly.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import numpy as np

from chainsleuth.cluster.engine import Clusters, read_manifest
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.store.layout import NONE32
from chainsleuth.store.lookups import outputs_of_addresses
from chainsleuth.store.store import Store
from chainsleuth.trace.engine import (
    FLAG_LOW_CONFIDENCE,
    FLAG_POISON,
    KINDS,
    TraceOptions,
    outputs_of_tx,
    path_txids,
    trace_back,
    trace_forward,
    txid_hex,
)
from chainsleuth.trace.exposure import attributed_cluster_labels, coinjoin_flags

__all__ = ["trace_rows", "window_height", "window_heights"]

NONE = int(NONE32)

_TXID = re.compile(r"^[0-9a-fA-F]{64}$")


def trace_rows(
    data_dir: Path,
    target: str,
    direction: str = "back",
    policy: str = "haircut",
    max_hops: int = 6,
    min_value: int = 0,
    stops: bool = True,
    walk_coinjoins: bool = False,
    since: str | None = None,
    until: str | None = None,
) -> list[dict[str, Any]]:
    """Trace from `target` and return one dict per row. The target is an address (its receiving
    outputs), a TXID (its outputs), TXID:VOUT (one output) or a cluster id (digits: the
    receiving outputs of every address in that cluster).

    With `stops` (and a clustering), the walk ends at attributed clusters other than the
    seeds' own (kind "cluster", with the entity and category) and at the txs the cluster stage
    flagged as CoinJoins (kind "coinjoin", with the mixer), unless `walk_coinjoins`: then it
    walks through them and marks the rows beyond as low confidence. `since` / `until` (a block
    height or a UTC date YYYY-MM-DD, both included) bound the time window of the walk.
    """
    if direction not in ("back", "forward"):
        raise ChainsleuthError("--direction is back or forward")
    store = Store.open(data_dir)
    txid, _, vout = target.partition(":")
    if _TXID.match(txid):
        tx_id = store.tx_id_of(txid.lower())
        if tx_id is None:
            raise ChainsleuthError(f"tx {txid} is not in the store")
        seeds = outputs_of_tx(store, tx_id)
        if vout:
            if not vout.isdigit() or int(vout) >= seeds.shape[0]:
                raise ChainsleuthError(
                    f"tx {txid} has no output {vout!r} ({seeds.shape[0]} outputs)"
                )
            seeds = seeds[int(vout) : int(vout) + 1]
    elif target.isdigit():
        if read_manifest(data_dir) is None:
            raise ChainsleuthError("a cluster id needs a clustering: run `chainsleuth cluster`")
        members = np.flatnonzero(np.asarray(Clusters(data_dir).cluster_of) == int(target))
        if members.shape[0] == 0:
            raise ChainsleuthError(f"no cluster {target}")
        seeds = outputs_of_addresses(store, members)
    else:
        found = store.address_id(target, what="not an address, TXID[:VOUT] or cluster id")
        seeds = outputs_of_addresses(store, [found])
    min_height, max_height = window_heights(store, since, until)
    run = trace_back if direction == "back" else trace_forward
    options: dict[str, Any] = {}
    attribution: dict[int, tuple[str | None, str]] = {}
    mixer: dict[int, str] = {}
    cluster_of = None
    if stops and read_manifest(data_dir) is not None:
        cluster_of = np.asarray(Clusters(data_dir).cluster_of, np.int64)
        seed_addresses = store.graph.output_address[seeds].astype(np.int64)
        own = set(cluster_of[seed_addresses[seed_addresses != NONE]].tolist())
        attribution = {c: v for c, v in attributed_cluster_labels(data_dir).items() if c not in own}
        is_coinjoin, mixer = coinjoin_flags(data_dir, store.counts["txs"])
        options = {
            "stop_clusters": np.array(sorted(attribution), np.int64),
            "cluster_of": cluster_of,
            "is_coinjoin": is_coinjoin,
        }
    settings = TraceOptions(
        policy=policy,
        max_hops=max_hops,
        min_value=min_value,
        walk_coinjoins=walk_coinjoins and bool(options),  # no stops: no tx is flagged a CoinJoin
        min_height=min_height,
        max_height=max_height,
    )
    result = run(data_dir, seeds, settings, **options)
    address_ids = store.graph.output_address[result.output].astype(np.int64)
    addresses = store.addresses(address_ids).to_pylist()
    txids = txid_hex(store, result.tx)

    def entity(k: int) -> tuple[str | None, str | None]:
        kind = KINDS[int(result.kind[k])]
        if kind == "coinjoin":
            return mixer.get(int(result.tx[k]), "coinjoin"), "coinjoin"
        if kind == "cluster" and cluster_of is not None and address_ids[k] != NONE:
            name, category = attribution.get(int(cluster_of[address_ids[k]]), (None, None))
            return name, category
        return None, None

    names = [entity(k) for k in range(len(result))]
    return [
        {
            "seed_output_id": int(result.seeds[result.seed[k]]),
            "output_id": int(result.output[k]),
            "address": addresses[k],
            "txid": txids[k],
            "amount": int(result.amount[k]),
            "hops": int(result.hops[k]),
            "kind": KINDS[int(result.kind[k])],
            "entity": names[k][0],
            "category": names[k][1],
            "poison": bool(result.flags[k] & FLAG_POISON),
            "low_confidence": bool(result.flags[k] & FLAG_LOW_CONFIDENCE),
            "path": path_txids(store, result, k),
        }
        for k in range(len(result))
    ]


def window_height(store: Any, value: str, edge: str) -> int:
    """A time window edge as a block height: digits are a height; YYYY-MM-DD a UTC date (since:
    the first block of that day; until: the last block of that day)."""
    if value.isdigit():
        return int(value)
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ChainsleuthError(
            f"--{edge} takes a block height or a date YYYY-MM-DD, not {value!r}"
        ) from None
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    # the block time array, not SQL: O(blocks) in numpy, and safe from many threads (the API)
    times = store.graph.block_time
    if edge == "since":
        found = np.flatnonzero(times >= start)
        return int(found[0]) if found.shape[0] else 1 << 31
    found = np.flatnonzero(times < start + 86400)
    return int(found[-1]) if found.shape[0] else -1


def window_heights(
    store: Any, since: str | None, until: str | None
) -> tuple[int | None, int | None]:
    """A `since`/`until` pair (each a block height, a date YYYY-MM-DD or None) as the
    (min_height, max_height) that `find_path`, `exposure` and `TraceOptions` take.

    >>> window_heights(Store.open(data), "2009-01-09", "200")  # doctest: +SKIP
    (1, 200)
    """
    lo = None if since is None else window_height(store, since, "since")
    hi = None if until is None else window_height(store, until, "until")
    return lo, hi
