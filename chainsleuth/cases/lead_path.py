"""A case lead's path as nodes and edges to draw (the explorer's "open a lead"): the lead's
largest path of txs (its `path` column, funding tx first), joined through the outputs each
next tx spends, from the source address to the deposit address (`trace.drawing.tx_chain_graph`).

    >>> lead = read_lead(case_dir / "files", 0)                          # doctest: +SKIP
    >>> lead_graph(FlowGraph(data_dir), lead)["txids"]                   # doctest: +SKIP
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.trace.drawing import tx_chain_graph
from chainsleuth.trace.graph import FlowGraph

__all__ = ["lead_graph", "lead_txids", "read_lead"]


def read_lead(files_dir: Path, index: int) -> dict[str, str]:
    """Row `index` (0-based, file order, as `GET /cases/{id}/leads` pages them) of a case's
    leads.csv."""
    path = Path(files_dir) / "leads.csv"
    if not path.exists():
        raise ChainsleuthError(f"{path}: no leads file (has the case finished?)")
    n_rows = 0
    with open(path, newline="", encoding="utf-8") as f:
        for k, row in enumerate(csv.DictReader(f)):
            if k == index:
                return dict(row)
            n_rows = k + 1
    raise ChainsleuthError(f"no lead {index} in this case (it has {n_rows} leads)")


def lead_txids(lead: Mapping[str, str]) -> list[str]:
    """The txids of a lead's largest path (`path` holds up to 3 paths, `|`-separated, largest
    first, each `;`-separated, funding tx first); the funding tx alone when `path` is empty."""
    largest = (lead.get("path") or "").split("|")[0]
    txids = [t for t in largest.split(";") if t]
    return txids or [lead["funding_txid"]]


def lead_graph(g: FlowGraph, lead: Mapping[str, str]) -> dict[str, Any]:
    """{"txids", "nodes", "edges"}: the lead's largest path from its source address to its
    deposit address. The source node carries the lead's entity and category where the
    store's attribution names none (a lead may be named through the service's other
    clusters)."""
    txids = lead_txids(lead)
    drawing = tx_chain_graph(g, txids, lead.get("source_address"), lead.get("deposit_address"))
    source_id = f"address:{lead.get('source_address')}"
    for node in drawing["nodes"]:
        if node["id"] == source_id:
            node["entity"] = node["entity"] or lead.get("source_entity") or None
            node["category"] = node["category"] or lead.get("source_category") or None
    return {"txids": txids, **drawing}
