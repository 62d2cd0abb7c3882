"""Pydantic models of the API's requests and responses (the OpenAPI schema is built from them).

Objects that pass a library result through (a tx, a block, an entity, exposure) name the fields
the contract promises and allow the rest (`extra="allow"`), so a stage adding a field extends
the API without breaking it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    version: str
    auth: Literal["open", "keys"]


class Me(BaseModel):
    key_id: str
    scope: str
    auth: Literal["open", "keys"]


class Status(Open):
    network: str | None
    tip_height: int | None
    tip_hash: str | None
    counts: dict[str, int]
    holds: list[str]
    clusters: bool
    tags: bool
    prices: str


class SearchItem(BaseModel):
    kind: str
    id: str
    label: str
    detail: str | None = None


class SearchResult(BaseModel):
    items: list[SearchItem]


class Node(Open):
    id: str
    kind: str
    label: str
    category: str | None = None
    entity: str | None = None
    coinjoin: bool = False
    cluster_id: int | None = None
    height: int | None = None


class Edge(Open):
    id: str
    source: str
    target: str
    value: int
    usd: float | None = None
    n_txs: int = 1
    first_height: int | None = None
    last_height: int | None = None
    txid: str | None = None


class Expansion(BaseModel):
    node: Node
    nodes: list[Node]
    edges: list[Edge]
    next_cursor: str | None
    total: int | None


class Neighbors(BaseModel):
    items: list[Edge]
    nodes: list[Node]
    next_cursor: str | None
    total: int | None


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None
    total: int | None


class AddressTx(BaseModel):
    txid: str
    height: int
    time: str
    received: int
    sent: int
    net: int


class AddressTxPage(BaseModel):
    items: list[AddressTx]
    next_cursor: str | None
    total: int | None


class RelationTx(BaseModel):
    txid: str
    height: int
    time: str
    value: int
    usd: float | None


class RelationPage(BaseModel):
    items: list[RelationTx]
    next_cursor: str | None
    total: int | None


class Address(Open):
    address: str
    script_type: str | None
    n_txs: int
    received: int
    sent: int
    balance: int
    cluster_id: int | None
    cluster_size: int | None
    coinjoin_txs: int
    mixers: list[str]
    tags: list[dict[str, Any]]
    attribution: dict[str, Any] | None


class Tx(Open):
    txid: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    usd_rate: float | None
    coinjoin: dict[str, Any] | None
    change: dict[str, Any] | None


class Block(Open):
    height: int
    hash: str
    txids: list[str]
    next_cursor: str | None


class Cluster(Open):
    cluster_id: int
    n_addresses: int
    received: int
    sent: int
    balance: int
    attribution: dict[str, Any] | None
    tags: Page
    conflicts: list[Any]
    rules: dict[str, int]
    coinjoin_txs: int
    mixers: list[str]


class TraceResult(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None
    total: int | None
    graph: dict[str, Any] | None


class TagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str = Field(min_length=1, max_length=200)
    label: str = Field(min_length=1, max_length=500)
    source: str | None = Field(
        default=None, min_length=1, max_length=1000, description="default: chainsleuth API, key ID"
    )
    category: str | None = Field(default=None, max_length=100)
    abuse: str | None = Field(default=None, max_length=100)
    actor: str | None = Field(default=None, max_length=200)
    confidence: str | None = Field(default=None, max_length=100)
    context: str | None = Field(default=None, max_length=10_000)
    note: str | None = Field(
        default=None, max_length=10_000, description="the analyst's note (stored as context)"
    )


class CaseStarted(BaseModel):
    case_id: str
    status: str


class CaseStatus(Open):
    case_id: str
    name: str
    status: Literal["queued", "running", "done", "failed"]
    progress: dict[str, Any]
    created: str
    finished: str | None
    error: str | None
    summary: dict[str, Any] | None


class CasePage(BaseModel):
    items: list[CaseStatus]
    next_cursor: str | None
    total: int | None


class CaseFile(BaseModel):
    name: str
    size: int


class CaseFiles(BaseModel):
    items: list[CaseFile]


class AuditEntry(Open):
    time: str
    key_id: str
    method: str
    path: str
    query: str
    status: int


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None
    total: int | None


class SqlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=100_000)
    limit: int = Field(default=1000, ge=1, le=10_000)


class SqlOut(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
