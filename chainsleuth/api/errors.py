"""The API's one error model, `{"error": {"code", "message", "field"}}`, and cursors.

Library errors are `ChainsleuthError`s with a one-line message; `from_library` gives each its
HTTP status by what it says (not found, missing stage, bad argument), so the library keeps one
error type and the API still answers 404 / 409 / 400 as a client expects.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from chainsleuth.core.errors import ChainsleuthError

STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "no_data": 409,
    "too_large": 422,
    "invalid": 422,
    "budget_exceeded": 422,
    "rate_limited": 429,
    "internal": 500,
}

_NOT_FOUND = re.compile(
    r"not in the store|never been seen|^no cluster|no actor named|no clustering|"
    r"is not an address of the store|^no (address|tx|cluster) \d+|no case|no file|^no lead \d+",
    re.IGNORECASE,
)
_NO_DATA = re.compile(r"run `chainsleuth|has not been ingested|no tags|no store", re.IGNORECASE)


class ApiError(Exception):
    """An error answered as the error model (status from `code`)."""

    def __init__(
        self, code: str, message: str, field: str | None = None, headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field
        self.status = STATUS[code]
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


def from_library(error: ChainsleuthError, field: str | None = None) -> ApiError:
    """A library error as an ApiError: 404 when something is not there, 409 when a stage has
    not run (its message names the command), else 400."""
    message = " ".join(str(error).split())
    if _NO_DATA.search(message) and "no clustering" not in message.lower():
        return ApiError("no_data", message, field)
    if "no clustering" in message.lower():
        return ApiError("no_data", message, field)
    if _NOT_FOUND.search(message):
        return ApiError("not_found", message, field)
    return ApiError("bad_request", message, field)


# ---------------------------------------------------------------------------------- cursors
MAX_LIMIT = 1000


def query_hash(params: dict[str, Any]) -> str:
    """A short digest of the parameters a cursor belongs to."""
    text = json.dumps({k: params[k] for k in sorted(params)}, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def encode_cursor(offset: int, params: dict[str, Any]) -> str:
    raw = json.dumps({"o": offset, "h": query_hash(params)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, params: dict[str, Any]) -> int:
    """The offset a cursor stands for; 400 when it is not one of ours or belongs to other
    query parameters."""
    if cursor is None or cursor == "":
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        offset = int(data["o"])
        digest = str(data["h"])
    except (ValueError, KeyError, TypeError):
        raise ApiError("bad_request", "not a cursor from this API", "cursor") from None
    if offset < 0:
        raise ApiError("bad_request", "not a cursor from this API", "cursor")
    if digest != query_hash(params):
        raise ApiError("bad_request", "this cursor belongs to other query parameters", "cursor")
    return offset


def page(
    items: list[Any], offset: int, limit: int, total: int | None, params: dict[str, Any]
) -> dict[str, Any]:
    """A page: its items, the cursor of the next page (None at the end) and the total."""
    more = total is not None and offset + limit < total
    return {
        "items": items,
        "next_cursor": encode_cursor(offset + limit, params) if more else None,
        "total": total,
    }
