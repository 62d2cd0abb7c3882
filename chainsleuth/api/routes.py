"""The routes of /api/v1: each checks auth, reads its parameters and calls one service.

The contract (paths, parameters, shapes) is docs/design/api.md; routes hold no logic.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from chainsleuth import __version__
from chainsleuth.api import models as m
from chainsleuth.api.budget import bounded
from chainsleuth.api.errors import MAX_LIMIT, ApiError, decode_cursor, from_library, page
from chainsleuth.api.security import Principal, scope_allows
from chainsleuth.api.services import (
    MAX_EXPOSURE_HOPS,
    MAX_PATH_HOPS,
    MAX_TRACE_HOPS,
    read_case_csv,
)
from chainsleuth.core.errors import ChainsleuthError

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": m.ErrorBody, "description": text}
    for code, text in (
        (400, "bad request"),
        (401, "no or unknown key"),
        (403, "the key's scope does not allow this"),
        (404, "not found"),
        (409, "the data directory lacks a stage this needs, or the case is not done"),
        (422, "invalid parameter, or over a budget"),
        (429, "rate limited"),
    )
}
router = APIRouter(responses=ERRORS)
bearer = HTTPBearer(auto_error=False, description="an API key from `chainsleuth keys create`")


def require(scope: str) -> Any:
    """A dependency: the caller's key must exist and hold `scope` (open mode: always)."""

    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        state = request.app.state
        if not state.keys.present() and state.require_keys:
            raise ApiError(
                "unauthorized",
                "this server needs API keys and has none: `chainsleuth keys create`",
                None,
                {"WWW-Authenticate": "Bearer"},
            )
        if not state.keys.present():
            principal = Principal("local", "admin")
        else:
            if credentials is None or not credentials.credentials:
                raise ApiError(
                    "unauthorized",
                    "send an API key: Authorization: Bearer KEY",
                    None,
                    {"WWW-Authenticate": "Bearer"},
                )
            found = state.keys.check(credentials.credentials)
            if found is None:
                raise ApiError(
                    "unauthorized",
                    "unknown or revoked API key",
                    None,
                    {"WWW-Authenticate": "Bearer"},
                )
            principal = found
        request.state.principal = principal
        if not scope_allows(principal.scope, scope):
            raise ApiError("forbidden", f"this needs scope {scope}; the key has {principal.scope}")
        wait = state.limiter.take(principal.key_id)
        if wait > 0:
            raise ApiError(
                "rate_limited",
                "too many requests for this key; slow down",
                None,
                {"Retry-After": str(max(1, round(wait)))},
            )
        return principal

    return check


Read = Annotated[Principal, Depends(require("read"))]
Investigate = Annotated[Principal, Depends(require("investigate"))]
Admin = Annotated[Principal, Depends(require("admin"))]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")]
Cursor = Annotated[
    str | None, Query(max_length=500, description="next_cursor of the previous page")
]
From = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=10,
        pattern=r"^(\d{1,9}|\d{4}-\d{2}-\d{2})$",
        description="window start: block height or UTC date YYYY-MM-DD (included)",
    ),
]
To = Annotated[
    str | None,
    Query(
        alias="to",
        max_length=10,
        pattern=r"^(\d{1,9}|\d{4}-\d{2}-\d{2})$",
        description="window end: block height or UTC date YYYY-MM-DD (included)",
    ),
]
MinValue = Annotated[int, Query(ge=0, le=21_000_000 * 10**8, description="satoshis")]
Direction = Annotated[Literal["in", "out"], Query(description="in: sources; out: destinations")]


class _Group(BaseModel):
    """Query parameters that many routes share, declared once. FastAPI lists a group's fields
    in the OpenAPI schema, and validates them, at the group's place in the route's signature,
    exactly as if each were written out there."""

    def args(self) -> tuple[Any, ...]:
        """The values in declaration order, as the services take them."""
        return tuple(getattr(self, name) for name in type(self).model_fields)


class Paging(_Group):
    """A page of a listing: `cursor`, `limit`."""

    cursor: Cursor = None
    limit: Limit = 100


class WindowPaging(_Group):
    """A page of what happened in a window of time: `from`, `to`, `cursor`, `limit`."""

    since: From = None
    until: To = None
    cursor: Cursor = None
    limit: Limit = 100


class FlowPaging(_Group):
    """A page of flows over a value floor in a window: `from`, `to`, `min_value`, `cursor`,
    `limit`."""

    since: From = None
    until: To = None
    min_value: MinValue = 0
    cursor: Cursor = None
    limit: Limit = 100


Page = Annotated[Paging, Query()]
WindowPage = Annotated[WindowPaging, Query()]
FlowPage = Annotated[FlowPaging, Query()]

NodeSpec = Annotated[
    str, Query(min_length=1, max_length=200, description="address:A, tx:TXID or cluster:N")
]
ClusterId = Annotated[int, Path(ge=0, le=2**40)]


def _svc(request: Request) -> Any:
    return request.app.state.services


# ------------------------------------------------------------------------------------ meta
@router.get("/health", response_model=m.Health, summary="Is the server up", operation_id="health")
async def health(request: Request) -> dict[str, Any]:
    state = request.app.state
    auth = "keys" if state.keys.present() or state.require_keys else "open"
    return {"status": "ok", "version": __version__, "auth": auth}


@router.get("/me", response_model=m.Me, summary="The caller's key and scope", operation_id="me")
async def me(request: Request, who: Read) -> dict[str, Any]:
    state = request.app.state
    auth = "keys" if state.keys.present() or state.require_keys else "open"
    return {"key_id": who.key_id, "scope": who.scope, "auth": auth}


@router.get(
    "/status", response_model=m.Status, summary="What the data directory holds",
    operation_id="status",
)  # fmt: skip
async def status(request: Request, who: Read) -> Any:
    return await bounded(request, _svc(request).status)


@router.get(
    "/search", response_model=m.SearchResult, operation_id="search",
    summary="Find an address, tx, block, cluster, entity or tag label (exact, then prefix)",
)  # fmt: skip
async def search(
    request: Request,
    who: Read,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    return await bounded(request, _svc(request).search, q, limit)


# ------------------------------------------------------------------------------- addresses
AddressPath = Annotated[str, Path(min_length=1, max_length=200)]


@router.get(
    "/addresses/{address}", response_model=m.Address, operation_id="get_address",
    summary="An address: totals, first/last seen, cluster, tags",
)  # fmt: skip
async def get_address(request: Request, who: Read, address: AddressPath) -> Any:
    return await bounded(request, _svc(request).address, address)


@router.get(
    "/addresses/{address}/txs", response_model=m.AddressTxPage, operation_id="address_txs",
    summary="An address's txs with what it received and sent in each, newest first",
)  # fmt: skip
async def address_txs(request: Request, who: Read, address: AddressPath, paging: WindowPage) -> Any:
    return await bounded(request, _svc(request).address_txs, address, *paging.args())


@router.get(
    "/addresses/{address}/neighbors", response_model=m.Neighbors,
    operation_id="address_neighbors",
    summary="Every address this one paid (out) or was paid by (in), summed, largest first",
)  # fmt: skip
async def address_neighbors(
    request: Request,
    who: Read,
    address: AddressPath,
    direction: Direction = "out",
    *,
    paging: FlowPage,
) -> Any:
    return await bounded(
        request, _svc(request).neighbors, f"address:{address}", direction, *paging.args()
    )


# ------------------------------------------------------------------------------ txs, blocks
@router.get(
    "/txs/{txid}", response_model=m.Tx, operation_id="get_tx",
    summary="A transaction: inputs, outputs, the change guess with its rule, CoinJoin flag",
)  # fmt: skip
async def get_tx(
    request: Request, who: Read, txid: Annotated[str, Path(min_length=1, max_length=100)]
) -> Any:
    return await bounded(request, _svc(request).tx, txid)


@router.get(
    "/blocks/{height_or_hash}", response_model=m.Block, operation_id="get_block",
    summary="A block by height or hash, with a page of its txids",
)  # fmt: skip
async def get_block(
    request: Request,
    who: Read,
    height_or_hash: Annotated[str, Path(min_length=1, max_length=100)],
    paging: Page,
) -> Any:
    return await bounded(request, _svc(request).block, height_or_hash, *paging.args())


# -------------------------------------------------------------------------------- clusters
@router.get(
    "/clusters/{cluster_id}", response_model=m.Cluster, operation_id="get_cluster",
    summary="A cluster: size, totals, rules, attribution, tags, conflicts",
)  # fmt: skip
async def get_cluster(request: Request, who: Read, cluster_id: ClusterId) -> Any:
    return await bounded(request, _svc(request).cluster, cluster_id)


@router.get(
    "/clusters/{cluster_id}/addresses", response_model=m.Page,
    operation_id="cluster_addresses", summary="A cluster's addresses, first seen first",
)  # fmt: skip
async def cluster_addresses(
    request: Request, who: Read, cluster_id: ClusterId, paging: Page
) -> Any:
    return await bounded(request, _svc(request).cluster_addresses, cluster_id, *paging.args())


@router.get(
    "/clusters/{cluster_id}/merges", response_model=m.Page, operation_id="cluster_merges",
    summary="The merges that built a cluster (the evidence: tx, rule, confidence)",
)  # fmt: skip
async def cluster_merges(request: Request, who: Read, cluster_id: ClusterId, paging: Page) -> Any:
    return await bounded(request, _svc(request).cluster_merges, cluster_id, *paging.args())


@router.get(
    "/clusters/{cluster_id}/neighbors", response_model=m.Neighbors,
    operation_id="cluster_neighbors",
    summary="Every cluster this one paid (out) or was paid by (in), summed, largest first",
)  # fmt: skip
async def cluster_neighbors(
    request: Request,
    who: Read,
    cluster_id: ClusterId,
    direction: Direction = "out",
    *,
    paging: FlowPage,
) -> Any:
    return await bounded(
        request, _svc(request).neighbors, f"cluster:{cluster_id}", direction, *paging.args()
    )


@router.get(
    "/explain", response_model=m.Open, operation_id="explain",
    summary="Why two addresses are one wallet: the chain of merges (txs and rules)",
)  # fmt: skip
async def explain(
    request: Request,
    who: Read,
    a: Annotated[str, Query(min_length=1, max_length=200)],
    b: Annotated[str, Query(min_length=1, max_length=200)],
) -> Any:
    return await bounded(request, _svc(request).explain, a, b)


# ---------------------------------------------------------------------------- tags, entities
@router.get(
    "/tags", response_model=m.Page, operation_id="list_tags",
    summary="Tags by address, cluster, label (contains), category or actor",
)  # fmt: skip
async def list_tags(
    request: Request,
    who: Read,
    address: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    cluster: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    label: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    category: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    actor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    *,
    paging: Page,
) -> Any:
    return await bounded(
        request, _svc(request).tags, address, cluster, label, category, actor, *paging.args()
    )


@router.post(
    "/tags", response_model=m.Open, status_code=201, operation_id="add_tag",
    summary="Add an analyst's tag (scope investigate; recorded with the key id)",
)  # fmt: skip
async def add_tag(request: Request, who: Investigate, body: m.TagIn) -> Any:
    request.state.audit_detail = {"address": body.address, "label": body.label}
    return await bounded(request, _svc(request).add_tag, body.model_dump(), f"api:{who.key_id}")


@router.get(
    "/entities/{name}", response_model=m.Open, operation_id="get_entity",
    summary="An actor: its clusters, tagged addresses, totals and activity",
)  # fmt: skip
async def get_entity(
    request: Request, who: Read, name: Annotated[str, Path(min_length=1, max_length=200)]
) -> Any:
    return await bounded(request, _svc(request).entity, name)


# ------------------------------------------------------------------------------------ graph
@router.get(
    "/graph/expand", response_model=m.Expansion, operation_id="graph_expand",
    summary="One-hop expansion of an address, tx or cluster node (every neighbour, paged)",
)  # fmt: skip
async def graph_expand(
    request: Request,
    who: Read,
    node: NodeSpec,
    direction: Direction = "out",
    aggregate: bool = True,
    *,
    paging: FlowPage,
) -> Any:
    return await bounded(request, _svc(request).expand, node, direction, aggregate, *paging.args())


@router.get(
    "/graph/relation", response_model=m.RelationPage, operation_id="graph_relation",
    summary="The single txs behind an aggregated edge between two addresses or clusters",
)  # fmt: skip
async def graph_relation(
    request: Request,
    who: Read,
    source: NodeSpec,
    target: NodeSpec,
    paging: WindowPage,
) -> Any:
    return await bounded(request, _svc(request).relation, source, target, *paging.args())


# ---------------------------------------------------------------------------------- tracing
@router.get(
    "/trace", response_model=m.TraceResult, operation_id="trace",
    summary="Trace value back to its sources or forward (auto-trace: stops at tagged "
    "services and CoinJoins)",
)  # fmt: skip
async def trace(
    request: Request,
    who: Read,
    target: Annotated[str, Query(min_length=1, max_length=200)],
    direction: Literal["back", "forward"] = "back",
    policy: Literal["haircut", "poison", "fifo"] = "haircut",
    max_hops: Annotated[int, Query(ge=1, le=MAX_TRACE_HOPS)] = 6,
    min_value: MinValue = 0,
    stops: bool = True,
    walk_coinjoins: bool = False,
    *,
    paging: WindowPage,
) -> Any:
    return await bounded(
        request,
        _svc(request).trace,
        target,
        direction,
        policy,
        max_hops,
        min_value,
        stops,
        walk_coinjoins,
        *paging.args(),
    )


@router.get(
    "/path", response_model=m.Open, operation_id="path",
    summary="A path of txs from one address (or cluster) to a chosen target",
)  # fmt: skip
async def path(
    request: Request,
    who: Read,
    source: Annotated[str, Query(min_length=1, max_length=200)],
    target: Annotated[str, Query(min_length=1, max_length=200)],
    mode: Literal["fewest_hops", "largest_flow"] = "fewest_hops",
    level: Literal["address", "cluster"] = "address",
    max_hops: Annotated[int, Query(ge=1, le=MAX_PATH_HOPS)] = 8,
    since: From = None,
    until: To = None,
) -> Any:
    return await bounded(
        request, _svc(request).path, source, target, mode, level, max_hops, since, until
    )


@router.get(
    "/exposure", response_model=m.Open, operation_id="exposure",
    summary="Direct and indirect exposure of an address or cluster, by category",
)  # fmt: skip
async def exposure(
    request: Request,
    who: Read,
    subject: Annotated[str, Query(min_length=1, max_length=200)],
    max_hops: Annotated[int, Query(ge=1, le=MAX_EXPOSURE_HOPS)] = 3,
    since: From = None,
    until: To = None,
) -> Any:
    return await bounded(request, _svc(request).exposure, subject, max_hops, since, until)


# ------------------------------------------------------------------------------------ cases
CaseId = Annotated[str, Path(min_length=1, max_length=40)]


def _case_error(e: ChainsleuthError, field: str = "case_id") -> ApiError:
    return from_library(e, field)


@router.post(
    "/cases", response_model=m.CaseStarted, status_code=202, operation_id="start_case",
    summary="Start an investigation from a seed CSV (column `address`); poll its status",
)  # fmt: skip
async def start_case(
    request: Request,
    who: Investigate,
    seeds: Annotated[UploadFile, File(description="CSV with a column `address`")],
    name: Annotated[str | None, Form(max_length=200)] = None,
    policy: Annotated[Literal["haircut", "poison", "fifo"], Form()] = "haircut",
    max_hops: Annotated[int, Form(ge=1, le=MAX_TRACE_HOPS)] = 15,
    walk_coinjoins: Annotated[bool, Form()] = False,
    min_confidence: Annotated[float, Form(ge=0.0, le=1.0)] = 0.0,
    # false: name no wallet by its style alone (TagPacks that leave an active exchange untagged)
    style_names: Annotated[bool, Form()] = True,
    skip_invalid: Annotated[bool, Form()] = False,
    report: Annotated[bool, Form()] = True,
    pdf: Annotated[bool, Form()] = True,
) -> Any:
    data = await seeds.read()
    request.state.audit_detail = {"seeds": seeds.filename, "bytes": len(data), "name": name}
    options = {
        "policy": policy,
        "max_hops": max_hops,
        "walk_coinjoins": walk_coinjoins,
        "min_confidence": min_confidence,
        "style_names": style_names,
        "skip_invalid": skip_invalid,
        "report": report,
        "pdf": pdf and report,
    }
    try:
        case_id = request.app.state.cases.start(data, options, name, who.key_id)
    except ChainsleuthError as e:
        raise _case_error(e, "seeds") from None
    request.state.audit_detail["case_id"] = case_id
    return {"case_id": case_id, "status": "queued"}


@router.get(
    "/cases", response_model=m.CasePage, operation_id="list_cases",
    summary="Every case, newest first",
)  # fmt: skip
async def list_cases(request: Request, who: Read, paging: Page) -> Any:
    offset = decode_cursor(paging.cursor, {})
    cases = request.app.state.cases.all()
    return page(cases[offset : offset + paging.limit], offset, paging.limit, len(cases), {})


def _case(request: Request, case_id: str) -> Any:
    try:
        return request.app.state.cases.status(case_id)
    except ChainsleuthError as e:
        raise _case_error(e) from None


@router.get(
    "/cases/{case_id}", response_model=m.CaseStatus, operation_id="get_case",
    summary="A case's status and progress (and its summary when done)",
)  # fmt: skip
async def get_case(request: Request, who: Read, case_id: CaseId) -> Any:
    return _case(request, case_id)


def _done(request: Request, case_id: str) -> Any:
    status = _case(request, case_id)
    if status["status"] != "done":
        raise ApiError("conflict", f"case {case_id} is {status['status']}, not done", "case_id")
    return request.app.state.cases.folder(case_id) / "files"


CSVS = {
    "leads": "leads.csv",
    "subpoenas": "subpoenas.csv",
    "cashouts": "cashouts.csv",
    "requests": "requests.csv",
}
#: Case files a case folder from an older version lacks: listed as no rows
OPTIONAL_CSVS = frozenset({"requests"})


@router.get(
    "/cases/{case_id}/money-flow.svg", operation_id="case_money_flow",
    summary="The case's money-flow diagram (as in report.html)",
    response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}},
)  # fmt: skip
async def case_money_flow(request: Request, who: Read, case_id: CaseId) -> Response:
    from chainsleuth.cases.report import money_flow_svg

    folder = _done(request, case_id)
    svg = await bounded(request, money_flow_svg, folder)
    return Response(svg, media_type="image/svg+xml")


def _rows_route(kind: str) -> Any:
    async def rows(request: Request, who: Read, case_id: CaseId, paging: Page) -> Any:
        folder = _done(request, case_id)
        params = {"case_id": case_id, "kind": kind}
        offset = decode_cursor(paging.cursor, params)
        if kind in OPTIONAL_CSVS and not (folder / CSVS[kind]).exists():
            return page([], offset, paging.limit, 0, params)
        items, total = await bounded(
            request, read_case_csv, folder / CSVS[kind], offset, paging.limit
        )
        return page(items, offset, paging.limit, total, params)

    return rows


for _kind, _what in (
    ("leads", "The case's leads (who funded each deposit), file order"),
    ("subpoenas", "The case's subpoena rows (per exchange), file order"),
    ("cashouts", "The case's cash-outs, file order"),
    (
        "requests",
        "The case's requests to rule exchanges in or out (requests.csv: deposits whose best "
        "lead is a wallet several exchanges fit alike; not attributions), file order",
    ),
):
    router.add_api_route(
        f"/cases/{{case_id}}/{_kind}",
        _rows_route(_kind),
        methods=["GET"],
        response_model=m.Page,
        summary=_what,
        operation_id=f"case_{_kind}",
    )


@router.get(
    "/cases/{case_id}/leads/{n}/graph", response_model=m.Open, operation_id="case_lead_graph",
    summary="A lead's largest path (lead n of the leads listing, 0-based) as nodes and edges",
)  # fmt: skip
async def case_lead_graph(
    request: Request, who: Read, case_id: CaseId, n: Annotated[int, Path(ge=0, le=10**9)]
) -> Any:
    folder = _done(request, case_id)
    return await bounded(request, _svc(request).lead_graph, folder, n)


@router.get(
    "/cases/{case_id}/files", response_model=m.CaseFiles, operation_id="case_files",
    summary="The case's files (report, CSVs, case.json)",
)  # fmt: skip
async def case_files(request: Request, who: Read, case_id: CaseId) -> Any:
    _case(request, case_id)
    return {"items": request.app.state.cases.files(case_id)}


@router.get(
    "/cases/{case_id}/files/{name}", operation_id="case_file",
    summary="Download one case file", response_class=FileResponse,
)  # fmt: skip
async def case_file(
    request: Request,
    who: Read,
    case_id: CaseId,
    name: Annotated[str, Path(min_length=1, max_length=100)],
) -> FileResponse:
    _case(request, case_id)
    try:
        path = request.app.state.cases.file(case_id, name)
    except ChainsleuthError as e:
        raise _case_error(e, "name") from None
    return FileResponse(path, filename=name)


# ------------------------------------------------------------------------------------ admin
@router.get(
    "/audit", response_model=m.AuditPage, operation_id="audit",
    summary="The audit log: who looked up what and when (scope admin), oldest first",
)  # fmt: skip
async def audit(request: Request, who: Admin, paging: Page) -> Any:
    return await bounded(request, _svc(request).audit, request.app.state.audit, *paging.args())


@router.post(
    "/sql", response_model=m.SqlOut, operation_id="sql",
    summary="Read-only SQL over the views (scope admin; no file or network access)",
)  # fmt: skip
async def sql(request: Request, who: Admin, body: m.SqlIn) -> Any:
    request.state.audit_detail = {"sql": body.query, "limit": body.limit}
    budget = float(request.app.state.time_budget_s)
    return await bounded(request, _svc(request).sql, body.query, body.limit, budget * 0.9)
