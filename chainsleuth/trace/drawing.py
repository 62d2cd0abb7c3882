"""Nodes and edges to draw: a trace's rows, a path, or a chain of txs (a case lead's path) as
the graph view's node and edge dicts (`FlowGraph.describe` nodes; edges pointing the way the
money went, with BTC, USD at the time and the tx).

They hold no inference of their own: they lay out what `trace_rows`, `find_path` or a lead's
`path` column already say, so that the API, the explorer and a notebook draw the same thing.

    >>> g = FlowGraph(data_dir)                                            # doctest: +SKIP
    >>> trace_graph(g, trace_rows(data_dir, addr), addr, "back")["edges"][0]  # doctest: +SKIP
    >>> tx_chain_graph(g, ["f4184f..."], source_address="12cbQ...")      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.store.layout import NONE32
from chainsleuth.trace.graph import FlowGraph, parse_node

__all__ = ["path_graph", "trace_graph", "tx_chain_graph"]

NONE = int(NONE32)
Drawing = dict[str, list[dict[str, Any]]]


def _edge(g: FlowGraph, source: str, target: str, value: int, tx: int, txid: str) -> dict[str, Any]:
    """One tx's edge: `value` satoshis from `source` to `target` in tx `tx`."""
    height = int(g.tx_height[tx])
    usd = float(g.usd(np.array([value], np.int64), np.array([height]))[0])
    return {
        "id": f"{source}->{target}@{txid}",
        "source": source,
        "target": target,
        "value": int(value),
        "usd": None if np.isnan(usd) else round(usd, 2),
        "n_txs": 1,
        "first_height": height,
        "last_height": height,
        "txid": txid,
    }


def trace_graph(
    g: FlowGraph, rows: Sequence[Mapping[str, Any]], target: str, direction: str
) -> Drawing:
    """Nodes and edges of trace rows (`trace.rows.trace_rows`, traced from `target`, a node
    spec such as "address:…", "tx:…" or a cluster id): each row's path of txs from the seed
    side to the row's address; amounts are summed where paths share a hop (`value`), and
    `n_rows` counts the rows through each edge. The row's entity and category name its end
    node when the node has none of its own."""
    nodes: dict[str, dict[str, Any]] = {}
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    seed = parse_node(target)
    seed_id = seed.id if seed.kind != "cluster" else f"cluster:{target}"
    try:
        nodes[seed_id] = g.node(seed_id)
    except ChainsleuthError:
        nodes[seed_id] = {"id": seed_id, "kind": seed.kind, "label": target}
    txids = sorted({t for r in rows for t in r["path"]})
    tx_ids = np.array([g.tx_id(t) for t in txids], np.int64)
    for n in g.describe("tx", tx_ids):
        nodes[n["id"]] = n
    for r in rows:
        hops = [seed_id] + [f"tx:{t}" for t in r["path"]]
        end = f"address:{r['address']}" if r["address"] else None
        if end is not None and end not in nodes:
            try:
                nodes[end] = g.node(end)
            except ChainsleuthError:
                end = None
        if end is not None:
            nodes[end]["entity"] = nodes[end].get("entity") or r["entity"]
            nodes[end]["category"] = nodes[end].get("category") or r["category"]
            hops.append(end)
        chain = hops if direction == "forward" else hops[::-1]
        for a, b in zip(chain, chain[1:], strict=False):
            edge = edges.setdefault(
                (a, b),
                {"id": f"{a}->{b}", "source": a, "target": b, "value": 0, "n_rows": 0},
            )
            edge["value"] += int(r["amount"])
            edge["n_rows"] += 1
    return {"nodes": list(nodes.values()), "edges": list(edges.values())}


def path_graph(g: FlowGraph, result: dict[str, Any]) -> Drawing:
    """Nodes and edges of a `trace.paths.find_path` result: one edge per hop (its tx's
    `amount` to the hop's `to` node). Also sets each hop's `from_node` / `to_node` (node
    specs) in `result`."""
    hops = result["hops"]
    ids = sorted({h["from"] for h in hops} | {h["to"] for h in hops})
    if result["level"] == "address":
        names = dict(zip(ids, g.store.addresses(ids).to_pylist(), strict=True))
        node_of = {i: f"address:{names[i]}" for i in ids}
    else:
        node_of = {i: f"cluster:{i}" for i in ids}
    nodes = g.describe(result["level"], np.array(ids, np.int64))
    edges = []
    for h in hops:
        h["from_node"], h["to_node"] = node_of[h["from"]], node_of[h["to"]]
        tx = g.tx_id(h["txid"])
        edges.append(_edge(g, h["from_node"], h["to_node"], h["amount"], tx, h["txid"]))
    return {"nodes": nodes, "edges": edges}


def _inputs(g: FlowGraph, tx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(address id, value, creating tx) of each input of `tx` (a coinbase has none)."""
    hi = int(g.first_input[tx + 1]) if tx + 1 < g.n_txs else g.n_inputs
    spent = g.in_spent[int(g.first_input[tx]) : hi].astype(np.int64)
    spent = spent[spent >= 0]
    creator = np.searchsorted(g.first_output, spent, side="right") - 1
    return g.out_address[spent].astype(np.int64), g.out_value[spent].astype(np.int64), creator


def _outputs(g: FlowGraph, tx: int) -> tuple[np.ndarray, np.ndarray]:
    """(address id, value) of each output of `tx`."""
    hi = int(g.first_output[tx + 1]) if tx + 1 < g.n_txs else g.n_outputs
    lo = int(g.first_output[tx])
    return g.out_address[lo:hi].astype(np.int64), g.out_value[lo:hi].astype(np.int64)


def tx_chain_graph(
    g: FlowGraph,
    txids: Sequence[str],
    source_address: str | None = None,
    end_address: str | None = None,
) -> Drawing:
    """Nodes and edges of a chain of txs (a case lead's `path`: funding tx first, deposit
    last), each joined to the next through the outputs the next one spends.

    Into the first tx: `source_address`'s inputs, or every input's address when the source is
    not among them (it is then the first payee, e.g. an exchange's withdrawal). Out of each
    tx: the addresses whose outputs the next tx spends; out of the last: `end_address`'s
    outputs (the deposit). One edge per (from, to, tx), values summed."""
    if not txids:
        raise ChainsleuthError("a chain of txs needs at least one txid")
    txs = [g.tx_id(t) for t in txids]
    wanted = [a for a in (source_address, end_address) if a]
    known = {a: g.address_id(a) for a in wanted}
    source = known.get(source_address or "", -1)
    end = known.get(end_address or "", -1)
    flows: dict[tuple[str, int, int], int] = {}  # (direction, address, position) -> value

    def add(direction: str, address: int, k: int, value: int) -> None:
        if address != NONE:
            flows[(direction, address, k)] = flows.get((direction, address, k), 0) + value

    addr, value, _ = _inputs(g, txs[0])
    own = addr == source
    for a, v in zip(*((addr[own], value[own]) if own.any() else (addr, value)), strict=True):
        add("in", int(a), 0, int(v))
    for k, t in enumerate(txs):
        if k + 1 < len(txs):
            addr, value, creator = _inputs(g, txs[k + 1])
            joined = creator == t
            for a, v in zip(addr[joined].tolist(), value[joined].tolist(), strict=True):
                add("out", a, k, v)
                add("in", a, k + 1, v)
        else:
            addr, value = _outputs(g, t)
            paid = addr == end
            for a, v in zip(addr[paid].tolist(), value[paid].tolist(), strict=True):
                add("out", a, k, v)
    address_ids = sorted({a for _, a, _ in flows} | ({source} if source >= 0 else set()))
    described = g.describe("address", np.array(address_ids, np.int64))
    node_of = dict(zip(address_ids, (n["id"] for n in described), strict=True))
    tx_nodes = g.describe("tx", np.array(txs, np.int64))
    nodes = {n["id"]: n for n in described + tx_nodes}
    edges = []
    for (direction, a, k), v in flows.items():
        tx_node = tx_nodes[k]["id"]
        src, dst = (node_of[a], tx_node) if direction == "in" else (tx_node, node_of[a])
        edges.append(_edge(g, src, dst, v, txs[k], tx_nodes[k]["label"]))
    return {"nodes": list(nodes.values()), "edges": edges}
