"""The API's services: argument checks, paging and budgets around the stages' functions.

Each method calls the library function the CLI command of the same name calls (see
docs/design/api.md) and shapes its result as the route's JSON. No forensic logic lives here:
graph expansion is `trace.graph`, summaries `cluster.summary`, tags `tags.query`, and so on.
Methods are synchronous; routes run them in a worker thread under the time budget.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from chainsleuth.api.errors import ApiError, decode_cursor, encode_cursor, page
from chainsleuth.api.security import AuditLog
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.store.store import Store
from chainsleuth.trace.graph import FlowGraph, parse_node

MAX_TRACE_HOPS = 25
MAX_PATH_HOPS = 20
MAX_EXPOSURE_HOPS = 10
MAX_SQL_ROWS = 10_000
MAX_TRACE_ROWS = 200_000  # rows a trace may produce before it is refused as too large


def _stamp(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


def _clean(value: Any) -> Any:
    """JSON-safe values: datetimes as ISO strings, NaN as None, numpy scalars as Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text.replace("+00:00", "Z") if isinstance(text, str) else text
    if isinstance(value, Path):
        return str(value)
    return value


class Services:
    """One data directory's services; the flow graph is opened once and reopened when a
    stage's manifest changes (a new ingest, clustering or tag import)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._graph: FlowGraph | None = None
        self._graph_key: tuple[Any, ...] | None = None
        self._lock = threading.Lock()
        # DuckDB connections are not shared between threads: each worker thread keeps its own
        # Store and TagLookup, reopened when their manifests change
        self._local = threading.local()
        self._opened: list[Any] = []  # every Store and TagLookup opened, to close at shutdown

    # ------------------------------------------------------------------------- helpers
    def _stamps(self) -> tuple[Any, ...]:
        return tuple(
            _stamp(self.data_dir / part / "manifest.json") for part in (".", "clusters", "tags")
        )

    def store(self) -> Store:
        """This thread's Store (reopened after an ingest)."""
        key = self._stamps()[0]
        cached = getattr(self._local, "store", None)
        if cached is not None and cached[0] == key:
            return cached[1]  # type: ignore[no-any-return]
        try:
            store = Store.open(self.data_dir)
        except ChainsleuthError as e:
            raise ApiError("no_data", " ".join(str(e).split())) from None
        self._local.store = (key, store)
        with self._lock:
            self._opened.append(store)
        return store

    def tags_lookup(self) -> Any:
        """This thread's TagLookup (reopened after a tag import or a clustering)."""
        from chainsleuth.tags.query import TagLookup

        key = self._stamps()
        cached = getattr(self._local, "tags", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        if cached is not None:
            cached[1].close()  # stale (closed again at shutdown: harmless)
        lookup = TagLookup.open(self.data_dir)
        self._local.tags = (self._stamps(), lookup)  # opening may refresh cluster tags
        with self._lock:
            self._opened.append(lookup)
        return lookup

    def close(self) -> None:
        """Close every DuckDB connection the services opened (call after the worker threads
        stopped): the server's shutdown."""
        with self._lock:
            opened, self._opened = self._opened, []
            graph, self._graph = self._graph, None
        for thing in opened:
            with contextlib.suppress(Exception):  # closed twice, or DuckDB dropped it already
                thing.close()
        if graph is not None:
            graph.store.close()

    def graph(self) -> FlowGraph:
        key = self._stamps()
        with self._lock:
            if self._graph is None or key != self._graph_key:
                try:
                    self._graph = FlowGraph(self.data_dir)
                except ChainsleuthError as e:
                    raise ApiError("no_data", " ".join(str(e).split())) from None
                self._graph_key = key
            return self._graph

    def clustered(self) -> bool:
        return (self.data_dir / "clusters" / "manifest.json").exists()

    def tagged(self) -> bool:
        return (self.data_dir / "tags" / "manifest.json").exists()

    def _need_clusters(self) -> None:
        if not self.clustered():
            raise ApiError("no_data", "no clustering yet: run `chainsleuth cluster` first", None)

    # ----------------------------------------------------------------------------- meta
    def status(self) -> dict[str, Any]:
        from chainsleuth.prices import resolve_prices
        from chainsleuth.store.store import data_dir_contents

        store = self.store()
        m = store.manifest
        tip = store.tip
        contents = data_dir_contents(self.data_dir)
        return {
            "network": m["network"],
            "tip_height": None if tip is None else tip[0],
            "tip_hash": None if tip is None else tip[1],
            "counts": dict(m["counts"]),
            "holds": [part for part, there in contents.items() if there],
            "clusters": self.clustered(),
            "tags": self.tagged(),
            "prices": resolve_prices(self.data_dir).series,
        }

    def search(self, q: str, limit: int) -> dict[str, Any]:
        from chainsleuth.store.lookups import search
        from chainsleuth.tags.query import search_names

        text = q.strip()
        if not text:
            raise ApiError("invalid", "give something to search for", "q")
        items: list[dict[str, Any]] = []
        lowered = text.lower()
        if lowered.startswith("cluster:") or (text.isdigit() and self.clustered()):
            key = lowered.removeprefix("cluster:")
            if key.isdigit() and self.clustered():
                try:
                    cid = self.graph().cluster_id(key)
                    node = self.graph().describe("cluster", np.array([cid]))[0]
                    items.append(
                        {
                            "kind": "cluster",
                            "id": node["id"],
                            "label": node["label"],
                            "detail": node["category"],
                        }
                    )
                except ChainsleuthError:
                    pass
        if not lowered.startswith("cluster:"):
            for r in search(self.store(), text, limit):
                node_kind = "address" if r["kind"] == "address" else r["kind"]
                prefix = {"address": "address", "tx": "tx", "block": "block"}[node_kind]
                items.append(
                    {
                        "kind": r["kind"],
                        "id": f"{prefix}:{r['key']}",
                        "label": r["key"],
                        "detail": r["detail"],
                    }
                )
            names = (
                search_names(self.data_dir, text, limit, self.tags_lookup())
                if self.tagged()
                else []
            )
            for r in names:
                items.append(
                    {
                        "kind": r["kind"],
                        "id": r["name"],
                        "label": r["label"] or r["name"],
                        "detail": r["category"],
                    }
                )
        return {"items": _clean(items[:limit])}

    # ------------------------------------------------------------------------ addresses
    def address(self, address: str) -> dict[str, Any]:
        from chainsleuth.store.lookups import address_info

        try:
            info = address_info(self.store(), address)
        except ChainsleuthError as e:
            raise _lib(e, "address") from None
        out = {
            "address": info["address"],
            "script_type": info.get("script_type"),
            **{k: v for k, v in info.items() if k not in ("address", "script_type")},
        }
        g = self.graph()
        aid = g.address_id(address)
        out["cluster_id"], out["cluster_size"] = None, None
        if g.clusters is not None:
            out["cluster_id"] = int(g.cluster_of(np.array([aid]))[0])
            out["cluster_size"] = int(g.clusters.members(out["cluster_id"]).shape[0])
        out.update(self._coinjoins(f"address:{address}"))
        out["tags"], out["attribution"] = [], None
        if self.tagged():
            from chainsleuth.tags.query import address_attribution

            attribution = address_attribution(self.data_dir, address, self.tags_lookup())
            out["tags"] = [_with_note(t) for t in attribution["tags"]]
            out["attribution"] = attribution["cluster"]
        return _clean(out)

    def _coinjoins(self, spec: str) -> dict[str, Any]:
        """The CoinJoins (flagged by the cluster stage) an address or cluster took part in:
        how many, and the mixer kinds named by their rules (the side panel's CoinJoin flag)."""
        g = self.graph()
        txs = g.coinjoin_txs(spec)
        mixers = sorted({g.mixer.get(t, "coinjoin") for t in txs.tolist()})
        return {"coinjoin_txs": int(txs.shape[0]), "mixers": mixers}

    def address_txs(
        self, address: str, since: str | None, until: str | None, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        params = {"address": address, "from": since, "to": until}
        offset = decode_cursor(cursor, params)
        g = self.graph()
        try:
            found = g.address_txs(address, since=since, until=until)
        except ChainsleuthError as e:
            raise _lib(e, "address") from None
        result = _tx_page(g, found, offset, limit, params, received=int, sent=int)
        for item in result["items"]:
            item["net"] = item["received"] - item["sent"]
        return result

    # ------------------------------------------------------------------------ graph
    def expand(
        self,
        node: str,
        direction: str,
        aggregate: bool,
        since: str | None,
        until: str | None,
        min_value: int,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        params = {
            "node": node,
            "direction": direction,
            "aggregate": aggregate,
            "from": since,
            "to": until,
            "min_value": min_value,
        }
        offset = decode_cursor(cursor, params)
        g = self.graph()
        ref = parse_node(node)
        if ref.kind == "cluster":
            self._need_clusters()
        try:
            e = g.expand(
                node, direction, aggregate=aggregate, since=since, until=until, min_value=min_value
            )
            centre = g.node(node)
        except ChainsleuthError as err:
            raise _lib(err, "node") from None
        nodes, edges = g.edges(e, offset, offset + limit)
        result = page(edges, offset, limit, len(e), params)
        return _clean(
            {
                "node": centre,
                "nodes": nodes,
                "edges": edges,
                **{k: result[k] for k in ("next_cursor", "total")},
            }
        )

    def neighbors(
        self,
        node: str,
        direction: str,
        since: str | None,
        until: str | None,
        min_value: int,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        found = self.expand(node, direction, True, since, until, min_value, cursor, limit)
        return {
            "items": found["edges"],
            "nodes": found["nodes"],
            "next_cursor": found["next_cursor"],
            "total": found["total"],
        }

    def relation(
        self,
        source: str,
        target: str,
        since: str | None,
        until: str | None,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        params = {"source": source, "target": target, "from": since, "to": until}
        offset = decode_cursor(cursor, params)
        g = self.graph()
        if "cluster" in (parse_node(source).kind, parse_node(target).kind):
            self._need_clusters()
        try:
            found = g.relation(source, target, since=since, until=until)
        except ChainsleuthError as e:
            raise _lib(e, "source") from None
        return _tx_page(g, found, offset, limit, params, value=int, usd=_usd)

    # --------------------------------------------------------------------- txs, blocks
    def tx(self, txid: str) -> dict[str, Any]:
        from chainsleuth.cluster.summary import tx_change
        from chainsleuth.store.lookups import transaction

        try:
            found = transaction(self.store(), txid)
        except ChainsleuthError as e:
            raise _lib(e, "txid") from None
        g = self.graph()
        t = g.tx_id(txid)
        rate = float(g.usd_per_height()[int(g.tx_height[t])])
        found["usd_rate"] = None if math.isnan(rate) else rate
        found["coinjoin"] = {"mixer": g.mixer.get(t, "coinjoin")} if g.is_coinjoin[t] else None
        found["change"] = tx_change(self.data_dir, txid)
        return _clean(found)

    def block(self, height_or_hash: str, cursor: str | None, limit: int) -> dict[str, Any]:
        from chainsleuth.store.lookups import block

        params = {"block": height_or_hash}
        offset = decode_cursor(cursor, params)
        try:
            found = block(self.store(), height_or_hash)
        except ChainsleuthError as e:
            raise _lib(e, "height_or_hash") from None
        txids = found.pop("txids")
        found["txids"] = txids[offset : offset + limit]
        found["next_cursor"] = page([], offset, limit, len(txids), params)["next_cursor"]
        return _clean(found)

    # -------------------------------------------------------------------------- clusters
    def cluster(self, cluster_id: int) -> dict[str, Any]:
        from chainsleuth.cluster.summary import cluster_summary_by_id

        self._need_clusters()
        try:
            summary = cluster_summary_by_id(self.data_dir, cluster_id)
        except ChainsleuthError as e:
            raise _lib(e, "cluster_id") from None
        cid = summary["cluster_id"]
        attribution, tags, tags_cursor = None, [], None
        if self.tagged():
            from chainsleuth.tags.query import attribution_of_cluster, list_tags

            lookup = self.tags_lookup()
            attribution = attribution_of_cluster(self.data_dir, cid, lookup)
            rows = list_tags(self.data_dir, cluster=cid, limit=101, lookup=lookup)
            tags = [_with_note(t) for t in rows[:100]]
            if len(rows) > 100:  # the next page is GET /tags?cluster=ID&cursor=...
                tags_cursor = encode_cursor(100, _tag_params(None, str(cid), None, None, None))
        conflicts = [] if attribution is None else list(attribution.get("conflicts") or [])
        return _clean(
            {
                "cluster_id": cid,
                "n_addresses": summary["size"],
                "received": summary["received"],
                "balance": summary["balance"],
                "n_outputs": summary["n_outputs"],
                "first_seen_height": summary["first_seen_height"],
                "last_seen_height": summary["last_seen_height"],
                "rules": summary["rules"],
                "policy": summary["policy"],
                "sent": summary["received"] - summary["balance"],
                "attribution": attribution,
                "tags": {
                    "items": tags,
                    "next_cursor": tags_cursor,
                    "total": None if tags_cursor else len(tags),
                },
                "conflicts": conflicts,
                **self._coinjoins(f"cluster:{cid}"),
            }
        )

    def cluster_addresses(self, cluster_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
        self._need_clusters()
        params = {"cluster_id": cluster_id}
        offset = decode_cursor(cursor, params)
        g = self.graph()
        try:
            cid = g.cluster_id(cluster_id)
        except ChainsleuthError as e:
            raise _lib(e, "cluster_id") from None
        assert g.clusters is not None
        members = g.clusters.members(cid)
        ids = members[offset : offset + limit]
        names = g.store.addresses(ids).to_pylist()
        items = [
            {"address": a, "address_id": int(i)} for a, i in zip(names, ids.tolist(), strict=True)
        ]
        return page(items, offset, limit, int(members.shape[0]), params)

    def cluster_merges(self, cluster_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
        from chainsleuth.cluster.summary import cluster_merges

        self._need_clusters()
        params = {"cluster_id": cluster_id}
        offset = decode_cursor(cursor, params)
        try:
            merges = cluster_merges(self.data_dir, cluster_id)
        except ChainsleuthError as e:
            raise _lib(e, "cluster_id") from None
        rows = merges.slice(offset, limit).to_pylist()
        ids = [r["address_a_id"] for r in rows] + [r["address_b_id"] for r in rows]
        names = self.graph().store.addresses(ids).to_pylist()
        n = len(rows)
        items = [
            {
                "txid": r["txid"],
                "rule": r["rule"],
                "change_rules": r["change_rules"],
                "confidence": r["confidence"],
                "from": names[k],
                "to": names[n + k],
            }
            for k, r in enumerate(rows)
        ]
        return page(_clean(items), offset, limit, merges.num_rows, params)

    def explain(self, a: str, b: str) -> dict[str, Any]:
        from chainsleuth.cluster.summary import explain_link

        self._need_clusters()
        store = self.store()
        try:
            ia = store.address_id(a)
        except ChainsleuthError as e:
            raise _lib(e, "a") from None
        try:
            ib = store.address_id(b)
        except ChainsleuthError as e:
            raise _lib(e, "b") from None
        steps = explain_link(self.data_dir, ia, ib)
        for s in steps or []:
            del s["from_address_id"], s["to_address_id"]
        attribution = None
        if self.tagged():
            from chainsleuth.tags.query import address_attribution

            lookup = self.tags_lookup()
            attribution = {x: address_attribution(self.data_dir, x, lookup) for x in (a, b)}
        return _clean(
            {"linked": steps is not None, "steps": steps or [], "attribution": attribution}
        )

    # ----------------------------------------------------------------------- tags
    def _need_tags(self) -> None:
        if not self.tagged():
            raise ApiError("no_data", "no tags yet: run `chainsleuth tags import PATH...` first")

    def tags(
        self,
        address: str | None,
        cluster: str | None,
        label: str | None,
        category: str | None,
        actor: str | None,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        from chainsleuth.tags.query import list_tags

        self._need_tags()
        params = _tag_params(address, cluster, label, category, actor)
        given = {k: v for k, v in params.items() if v is not None}
        if len(given) > 1:
            raise ApiError(
                "invalid", "give one of address, cluster, label, category, actor", sorted(given)[1]
            )
        offset = decode_cursor(cursor, params)
        try:
            # one row past the page says whether another page follows, without a count query
            rows = list_tags(  # type: ignore[arg-type]
                self.data_dir, **given, limit=offset + limit + 1, lookup=self.tags_lookup()
            )
        except ChainsleuthError as e:
            raise _lib(e, next(iter(given), None)) from None
        items = [_with_note(r) for r in rows[offset : offset + limit]]
        total = len(rows) if len(rows) <= offset + limit else None
        result = page(_clean(items), offset, limit, total, params)
        if total is None:
            result["next_cursor"] = encode_cursor(offset + limit, params)
        return result

    def add_tag(self, body: dict[str, Any], by: str) -> dict[str, Any]:
        from chainsleuth.tags.imports import add_tag

        body = dict(body)
        note = body.pop("note", None)
        if note is not None and body.get("context") is not None:
            raise ApiError("invalid", "give note or context, not both", "note")
        body["context"] = body.get("context") if note is None else note
        body["source"] = body.get("source") or f"chainsleuth API, key {by.removeprefix('api:')}"
        try:
            row = add_tag(self.data_dir, created_by=by, **body)
        except ChainsleuthError as e:
            raise _lib(e, "address") from None
        return _clean(_with_note(row))

    def entity(self, name: str) -> dict[str, Any]:
        from chainsleuth.tags.query import entity

        self._need_tags()
        try:
            return _clean(entity(self.data_dir, name))
        except ChainsleuthError as e:
            raise _lib(e, "name") from None

    # -------------------------------------------------------------------------- tracing
    def trace(
        self,
        target: str,
        direction: str,
        policy: str,
        max_hops: int,
        min_value: int,
        stops: bool,
        walk_coinjoins: bool,
        since: str | None,
        until: str | None,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        from chainsleuth.trace.rows import trace_rows

        params = {
            "target": target,
            "direction": direction,
            "policy": policy,
            "max_hops": max_hops,
            "min_value": min_value,
            "stops": stops,
            "walk_coinjoins": walk_coinjoins,
            "from": since,
            "to": until,
        }
        offset = decode_cursor(cursor, params)
        try:
            rows = trace_rows(
                self.data_dir,
                target,
                direction,
                policy,
                max_hops,
                min_value,
                stops,
                walk_coinjoins,
                since,
                until,
            )
        except ChainsleuthError as e:
            raise _lib(e, "target") from None
        if len(rows) > MAX_TRACE_ROWS:
            raise ApiError(
                "too_large",
                f"the trace has {len(rows):,} rows (more than {MAX_TRACE_ROWS:,}): lower "
                "max_hops, raise min_value or narrow from/to",
                "max_hops",
            )
        rows.sort(key=lambda r: (-r["amount"], r["output_id"]))
        items = rows[offset : offset + limit]
        result = page(_clean(items), offset, limit, len(rows), params)
        if offset == 0:
            from chainsleuth.trace.drawing import trace_graph

            result["graph"] = _clean(trace_graph(self.graph(), items, target, direction))
        else:
            result["graph"] = None
        return result

    def path(
        self,
        source: str,
        target: str,
        mode: str,
        level: str,
        max_hops: int,
        since: str | None = None,
        until: str | None = None,
    ) -> dict[str, Any]:
        from chainsleuth.trace.paths import find_path

        if level == "cluster":
            self._need_clusters()
        g = self.graph()
        lo, hi = _window(g, since, until)
        try:
            result = find_path(
                self.data_dir, source, target, mode, level, max_hops, min_height=lo, max_height=hi
            )
        except ChainsleuthError as e:
            raise _lib(e, "source") from None
        from chainsleuth.trace.drawing import path_graph

        result.update(path_graph(g, result))
        return _clean(result)

    def exposure(
        self, subject: str, max_hops: int, since: str | None = None, until: str | None = None
    ) -> dict[str, Any]:
        from chainsleuth.trace.exposure import exposure

        self._need_clusters()
        lo, hi = _window(self.graph(), since, until)
        try:
            return _clean(
                exposure(self.data_dir, subject, max_hops=max_hops, min_height=lo, max_height=hi)
            )
        except ChainsleuthError as e:
            raise _lib(e, "subject") from None

    def lead_graph(self, files_dir: Path, index: int) -> dict[str, Any]:
        from chainsleuth.cases.lead_path import lead_graph, read_lead

        try:
            return _clean(lead_graph(self.graph(), read_lead(files_dir, index)))
        except ChainsleuthError as e:
            raise _lib(e, "n") from None

    # ----------------------------------------------------------------------------- admin
    def audit(self, log: AuditLog, cursor: str | None, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {}
        offset = decode_cursor(cursor, params)
        rows, more = log.read(offset, limit)
        result = page(rows, offset, limit, None, params)
        if more:
            result["next_cursor"] = encode_cursor(offset + limit, params)
        return result

    def sql(self, query: str, limit: int, timeout_s: float) -> dict[str, Any]:
        try:
            store = Store.open_any(self.data_dir)
            table = store.user_sql(query, max_rows=limit, timeout_s=timeout_s)
        except ChainsleuthError as e:
            message = " ".join(str(e).split())
            code = "budget_exceeded" if "time budget" in message else "bad_request"
            raise ApiError(code, message, "query") from None
        except Exception as e:  # DuckDB's own errors (syntax, types): one line, the user's fault
            raise ApiError(
                "bad_request", "SQL error: " + " ".join(str(e).split()), "query"
            ) from None
        truncated = table.num_rows > limit
        table = table.slice(0, limit)
        rows = [list(r.values()) for r in table.to_pylist()]
        return _clean({"columns": table.column_names, "rows": rows, "truncated": truncated})


def _tx_page(
    g: FlowGraph,
    found: dict[str, np.ndarray],
    offset: int,
    limit: int,
    params: dict[str, Any],
    **columns: Callable[[Any], Any],
) -> dict[str, Any]:
    """The page [offset, offset + limit) of a list of txs the graph found (arrays "tx",
    "height" and one per column, in the same order): each row is the txid, height and block
    time, then each named column's value passed through its function, in the order given."""
    sl = slice(offset, offset + limit)
    heights = found["height"][sl]
    names = list(columns)
    values = [found[name][sl].tolist() for name in names]
    items = [
        {
            "txid": txid,
            "height": int(h),
            "time": t,
            **{name: columns[name](v) for name, v in zip(names, row, strict=True)},
        }
        for txid, h, t, *row in zip(
            g.txids(found["tx"][sl]), heights.tolist(), g.time_of(heights), *values, strict=True
        )
    ]
    return page(items, offset, limit, int(found["tx"].shape[0]), params)


def _tag_params(
    address: str | None,
    cluster: str | None,
    label: str | None,
    category: str | None,
    actor: str | None,
) -> dict[str, Any]:
    """The query parameters a /tags cursor belongs to."""
    return {
        "address": address,
        "cluster": cluster,
        "label": label,
        "category": category,
        "actor": actor,
    }


def _with_note(tag: dict[str, Any]) -> dict[str, Any]:
    """A tag with `note`: its free-text context (what the annotate form writes)."""
    return {**tag, "note": tag.get("context")}


def _usd(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 2)


def _window(g: FlowGraph, since: str | None, until: str | None) -> tuple[int | None, int | None]:
    """from/to as block heights; a date that is no date is the `from`/`to` field's error."""
    try:
        lo = g.window(since, None)[0]
    except ChainsleuthError as e:
        raise _lib(e, "from") from None
    try:
        return lo, g.window(None, until)[1]
    except ChainsleuthError as e:
        raise _lib(e, "to") from None


def _lib(error: ChainsleuthError, field: str | None) -> ApiError:
    from chainsleuth.api.errors import from_library

    return from_library(error, field)


def read_case_csv(path: Path, offset: int, limit: int) -> tuple[list[dict[str, str]], int]:
    """Rows offset..offset+limit of a case CSV and its row count (file order)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return rows[offset : offset + limit], len(rows)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
