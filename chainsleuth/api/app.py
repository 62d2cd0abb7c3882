"""The FastAPI app: `create_app(data_dir)` wires the routes, auth, audit, rate limits, the
error model, security headers and the web explorer's static files (docs/design/api.md).

    >>> app = create_app(Path("chainsleuth-data"))         # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)     # doctest: +SKIP
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from chainsleuth import __version__
from chainsleuth.api.cases import CaseRunner
from chainsleuth.api.errors import ApiError
from chainsleuth.api.security import AuditLog, KeyStore, RateLimiter
from chainsleuth.api.services import Services

API = "/api/v1"
WEB_STATIC = Path(__file__).resolve().parents[1] / "web" / "static"
DOCS_STATIC = Path(__file__).resolve().parent / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
# Swagger UI sets style attributes from its script; its page alone allows inline styles.
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def create_app(
    data_dir: Path,
    *,
    time_budget_s: float = 10.0,
    rate: float = 20.0,
    burst: int = 60,
    cors_origins: list[str] | None = None,
    workers: int = 4,
    require_keys: bool = False,
) -> FastAPI:
    """The API (and the web UI when `chainsleuth/web/static/` exists) over one data directory.

    Without `DATA/api/keys.json` every request acts as key `local` with scope admin: only for
    a loopback server (`chainsleuth serve` refuses another host without keys). With a key
    store, every route but /health needs `Authorization: Bearer KEY`. `require_keys` (what
    `serve` sets for a host beyond loopback) keeps them required even if the key store
    disappears while the server runs."""
    from chainsleuth.api.routes import router

    data_dir = Path(data_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        close_app(app)

    app = FastAPI(
        lifespan=lifespan,
        title="chainsleuth API",
        version=__version__,
        description="Bitcoin forensics over one chainsleuth data directory (docs/design/api.md).",
        openapi_url=f"{API}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    state = app.state
    state.data_dir = data_dir
    state.services = Services(data_dir)
    state.keys = KeyStore(data_dir)
    state.audit = AuditLog(data_dir)
    state.limiter = RateLimiter(rate, burst)
    state.cases = CaseRunner(data_dir)
    state.time_budget_s = time_budget_s
    state.require_keys = require_keys
    state.workers = workers
    state.executor = None  # started on first use (budget.executor), stopped by close_app
    app.include_router(router, prefix=API)

    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.middleware("http")
    async def headers_and_audit(request: Request, call_next: Any) -> Response:
        try:
            response: Response = await call_next(request)
        except Exception:  # never a traceback to the client: the error model, logged as 500
            response = error_response(ApiError("internal", "internal error"))
        path = request.url.path
        response.headers["Content-Security-Policy"] = DOCS_CSP if path == "/docs" else CSP
        for name, value in HEADERS.items():
            response.headers[name] = value
        if path.startswith(API) and path != f"{API}/health":
            principal = getattr(request.state, "principal", None)
            who = principal.key_id if principal is not None else "anonymous"
            detail = getattr(request.state, "audit_detail", None)  # set by POST routes
            state.audit.write(
                who, request.method, path, request.url.query, response.status_code, detail
            )
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("query", "path", "body")]
        field = ".".join(loc) or None
        message = f"{field or 'request'}: {first.get('msg', 'invalid')}"
        return error_response(ApiError("invalid", message, field))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        if exc.status_code >= 500:
            code = "internal"
        error = ApiError(code, str(exc.detail))
        error.status = exc.status_code
        return error_response(error)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        return error_response(ApiError("internal", f"internal error ({type(exc).__name__})"))

    # /docs: Swagger UI from the swagger-ui-bundle package (no CDN), started by our own
    # script file so the page needs no inline script.
    import swagger_ui_bundle

    app.mount(
        "/docs-assets",
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="docs-assets",
    )
    app.mount("/docs-init", StaticFiles(directory=DOCS_STATIC), name="docs-init")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse((DOCS_STATIC / "docs.html").read_text())

    mimetypes.add_type("application/javascript", ".js")
    mimetypes.add_type("text/css", ".css")
    if WEB_STATIC.is_dir():
        app.mount("/", StaticFiles(directory=WEB_STATIC, html=True), name="web")
    return app


def close_app(app: FastAPI) -> None:
    """Stop the app's worker threads and close its DuckDB connections (the lifespan's exit;
    call it yourself when serving without a lifespan). A process that forks later (a process
    pool) then inherits no running DuckDB state."""
    state = app.state
    executor, state.executor = state.executor, None  # the next request starts a new one
    if executor is not None:
        executor.shutdown(wait=True, cancel_futures=True)
    state.cases.close()
    state.services.close()
