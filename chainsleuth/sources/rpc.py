"""Raw blocks from a Bitcoin Core node over JSON-RPC, fetched in batches.

The incremental, reorg-safe ingest loop reads the chain tip and new blocks through this module:
`chain_info()` for the tip, `block_hashes()` / `iter_raw_blocks()` for the active chain, and
`raw_block()` for any block by hash (Core keeps serving stale blocks by hash after a reorg, which is
what lets the loop walk back to the fork point). Blocks come back as the raw wire bytes the parse
stage reads from blk*.dat, never as Core's decoded JSON, so both sources feed one parser.

Only the standard library is used: one persistent HTTP/1.1 keep-alive connection, and JSON-RPC
batch requests (a JSON array of calls) so a sync pays one round trip per `batch_size` blocks. Every
failure becomes an `RpcError` with one clear message; the password never appears in one.

Example:

    with RpcSource("http://127.0.0.1:8332", cookie_file=Path("~/.bitcoin/.cookie")) as node:
        tip = node.chain_info()
        for height, block_hash, raw in node.iter_raw_blocks(tip.blocks - 9, tip.blocks):
            ...
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import itertools
import json
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.core.network import Network, network_by_name

__all__ = ["ChainInfo", "RpcError", "RpcSource"]

# Bitcoin Core's RPC error codes (src/rpc/protocol.h) that get a message of their own.
RPC_MISC_ERROR = -1  # also "Block not available (pruned data)"
RPC_INVALID_ADDRESS_OR_KEY = -5  # "Block not found"
RPC_INVALID_PARAMETER = -8  # "Block height out of range"
RPC_IN_WARMUP = -28  # "Loading block index..."
RPC_METHOD_NOT_FOUND = -32601

_DEFAULT_PORT = 8332  # mainnet; other networks always need the port in the URL
_AUTH_HINT = "check --rpc-user/--rpc-password or --rpc-cookie"


class RpcError(ChainsleuthError):
    """Bitcoin Core could not be reached, refused us, or answered a call with an error.

    `code` is Core's JSON-RPC error code (None for transport and HTTP failures), `method` the RPC
    method that failed, `rpc_message` Core's own message.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        method: str | None = None,
        rpc_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.method = method
        self.rpc_message = rpc_message


class RpcAuthError(RpcError):
    """Bitcoin Core refused our credentials (HTTP 401), or the cookie file could not be used.

    A type of its own so callers (`doctor`) tell "wrong password" from "nothing listening"
    without reading the message, whose URL may hold any digits.
    """


@dataclass(frozen=True)
class ChainInfo:
    """The node's view of its active chain, from `getblockchaininfo`."""

    chain: str  # Core's name: "main", "test", "testnet4", "signet", "regtest"
    blocks: int  # height of the tip of the active (fully validated) chain
    best_block_hash: str
    headers: int = 0  # height of the best header known; above `blocks` while Core syncs
    initial_block_download: bool = False
    pruned: bool = False
    prune_height: int | None = None  # lowest height whose block data the node still has

    @property
    def network(self) -> Network:
        """`ChainInfo("main", 0, h).network.hrp == "bc"`."""
        try:
            return network_by_name(self.chain)
        except ValueError as e:
            raise RpcError(f"Bitcoin Core reports an unknown chain {self.chain!r}") from e


class RpcSource:
    """A JSON-RPC client for one Bitcoin Core node.

    Credentials come from `user`/`password`, else from the URL (`http://user:pass@host:port`),
    else from Core's `.cookie` file (`__cookie__:<secret>`, rewritten by Core on every start, so a
    401 makes us read it again once).

    >>> node = RpcSource("http://127.0.0.1:18443", user="alice", password="s3cret")
    >>> node.block_hash(0)  # doctest: +SKIP
    '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206'
    """

    def __init__(
        self,
        url: str,
        *,
        cookie_file: Path | None = None,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 60.0,
        batch_size: int = 16,
    ) -> None:
        if batch_size < 1:
            raise RpcError(f"batch_size must be at least 1, got {batch_size}")
        if timeout <= 0:
            raise RpcError(f"timeout must be positive, got {timeout}")
        self.timeout = timeout
        self.batch_size = batch_size
        try:
            parts = urlsplit(url)
            port = parts.port or _DEFAULT_PORT
            url_user = unquote(parts.username) if parts.username is not None else None
            url_password = unquote(parts.password) if parts.password is not None else None
        except ValueError:
            # Neither the URL nor urllib's message: a misparsed URL can put the password there.
            raise RpcError(
                "not a valid Bitcoin Core RPC URL: expected http://[user:password@]host:port, "
                "with special characters in the credentials percent-encoded"
            ) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RpcError(
                "not a valid Bitcoin Core RPC URL: expected http://[user:password@]host:port"
            )
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port
        self._path = parts.path or "/"  # Core serves wallets at /wallet/<name>
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.url = f"{parts.scheme}://{host}:{port}{self._path}"  # credentials stripped

        self._user: str | None
        self._password: str | None
        if user is not None or password is not None:
            if cookie_file is not None:
                raise RpcError("give either --rpc-user/--rpc-password or --rpc-cookie, not both")
            self._user, self._password = user or "", password or ""
        elif url_user is not None:
            if cookie_file is not None:
                raise RpcError("give either credentials in the URL or --rpc-cookie, not both")
            self._user, self._password = url_user, url_password or ""
        elif cookie_file is not None:
            self._user, self._password = _read_cookie(Path(cookie_file))
        else:
            self._user = self._password = None  # Core will answer 401; the message says why
        self._cookie_file = Path(cookie_file) if cookie_file is not None else None
        self._conn: http.client.HTTPConnection | None = None
        self._ids = itertools.count(1)

    # -- public API ---------------------------------------------------------------------------

    def chain_info(self) -> ChainInfo:
        """The node's chain name, tip height and tip hash."""
        info = self.call("getblockchaininfo")
        try:
            prune_height = info.get("pruneheight") if info.get("pruned") else None
            return ChainInfo(
                chain=str(info["chain"]),
                blocks=int(info["blocks"]),
                best_block_hash=str(info["bestblockhash"]),
                headers=int(info.get("headers", info["blocks"])),
                initial_block_download=bool(info.get("initialblockdownload", False)),
                pruned=bool(info.get("pruned", False)),
                prune_height=int(prune_height) if prune_height is not None else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise RpcError(f"getblockchaininfo: unexpected reply from {self.url} ({e!r})") from None

    def block_hash(self, height: int) -> str:
        """Hash of the block at `height` on the node's active chain (`getblockhash`)."""
        return self.block_hashes([height])[0]

    def block_hashes(self, heights: Sequence[int]) -> list[str]:
        """Hashes of the blocks at `heights` on the active chain, `batch_size` per HTTP request."""
        for height in heights:
            if isinstance(height, bool) or not isinstance(height, int) or height < 0:
                raise RpcError(f"not a block height: {height!r}")
        hashes = self._batched("getblockhash", [[h] for h in heights])
        for height, block_hash in zip(heights, hashes, strict=True):
            if not _is_hash(block_hash):
                raise RpcError(
                    f"getblockhash {height}: Bitcoin Core at {self.url} returned "
                    f"{block_hash!r}, not a block hash"
                )
        return hashes

    def raw_block(self, block_hash: str) -> bytes:
        """The serialized block with this hash (`getblock <hash> 0`), stale blocks included."""
        return self.raw_blocks([block_hash])[0]

    def raw_blocks(self, hashes: Sequence[str]) -> list[bytes]:
        """Serialized blocks for `hashes`, in order, `batch_size` per HTTP request.

        Each block's header is hashed and checked against the hash asked for, so a block that
        comes back is the block that was asked for.
        """
        for block_hash in hashes:
            if not _is_hash(block_hash):
                raise RpcError(f"not a block hash (64 hex digits): {block_hash!r}")
        replies = self._batched("getblock", [[h, 0] for h in hashes])
        blocks = []
        for block_hash, reply in zip(hashes, replies, strict=True):
            try:
                raw = bytes.fromhex(reply)
            except (TypeError, ValueError):
                raise RpcError(
                    f"getblock {block_hash} 0: Bitcoin Core at {self.url} returned a reply that "
                    "is not hex"
                ) from None
            got = block_hash_of(raw)
            if got != block_hash.lower():
                raise RpcError(
                    f"getblock {block_hash} 0: Bitcoin Core at {self.url} returned a block whose "
                    f"header hashes to {got}"
                )
            blocks.append(raw)
        return blocks

    def iter_raw_blocks(
        self, start_height: int, stop_height: int
    ) -> Iterator[tuple[int, str, bytes]]:
        """`(height, hash, raw block)` for heights `start_height..stop_height`, both included.

        Each batch costs two HTTP requests: `getblockhash` for its heights, then `getblock` for
        their hashes. A block is exactly the block with the hash yielded beside it, but a reorg
        between two calls can make consecutive blocks not link: the caller checks each header's
        previous-block hash against the hash it holds for the height below.
        """
        if start_height < 0 or stop_height < start_height - 1:
            raise RpcError(f"not a height range: {start_height}..{stop_height}")
        for first in range(start_height, stop_height + 1, self.batch_size):
            heights = list(range(first, min(first + self.batch_size, stop_height + 1)))
            hashes = self.block_hashes(heights)
            yield from zip(heights, hashes, self.raw_blocks(hashes), strict=True)

    def call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; its `result`, or `RpcError` with Core's code and message."""
        return self.batch([(method, list(params))])[0]

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Many calls in one HTTP request (a JSON-RPC batch); their results, in order.

        If any call fails, raises `RpcError` for the first failure (in request order).
        """
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        requests = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": list(params)}
            for i, (method, params) in zip(ids, calls, strict=True)
        ]
        # A single call goes as a bare object, as bitcoin-cli sends it; several as an array.
        body = self._post(requests[0] if len(requests) == 1 else requests, calls[0][0])
        replies = body if isinstance(body, list) else [body]
        by_id: dict[Any, Any] = {}
        for reply in replies:
            if isinstance(reply, dict) and "id" in reply:
                by_id[reply["id"]] = reply
        if None in by_id and by_id[None].get("error") is not None:
            # A reply to no call: Core could not parse the request at all.
            raise self._call_error(calls[0][0], calls[0][1], by_id[None]["error"])
        results = []
        for i, (method, params) in zip(ids, calls, strict=True):
            reply = by_id.get(i)
            if reply is None:
                raise RpcError(
                    f"{method}: Bitcoin Core at {self.url} sent no reply to this call",
                    method=method,
                )
            error = reply.get("error")
            if error is not None:
                raise self._call_error(method, params, error)
            if "result" not in reply:
                raise RpcError(f"{method}: reply from {self.url} has neither result nor error")
            results.append(reply["result"])
        return results

    def close(self) -> None:
        """Close the keep-alive connection; the next call opens a new one."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> RpcSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RpcSource({self.url!r})"  # never the credentials

    # -- transport ----------------------------------------------------------------------------

    def _batched(self, method: str, param_lists: list[list[Any]]) -> list[Any]:
        results: list[Any] = []
        for first in range(0, len(param_lists), self.batch_size):
            chunk = param_lists[first : first + self.batch_size]
            results.extend(self.batch([(method, params) for params in chunk]))
        return results

    def _post(self, payload: Any, method: str) -> Any:
        """POST one JSON-RPC request or batch; the decoded reply body."""
        data = json.dumps(payload).encode()
        retried_auth = False
        while True:
            status, reason, body = self._send(data)
            if status == 401 and self._cookie_file is not None and not retried_auth:
                # Core writes a new cookie each time it starts: read it again, try once more.
                retried_auth = True
                self._user, self._password = _read_cookie(self._cookie_file)
                continue
            break
        if status == 401:
            raise RpcAuthError(
                f"authentication failed: {_AUTH_HINT} (Bitcoin Core at {self.url} answered 401)"
            )
        if status == 403:
            raise RpcError(
                f"{method}: Bitcoin Core at {self.url} refused the call (HTTP 403): "
                "the RPC user may be limited by -rpcwhitelist"
            )
        if status == 503:
            raise RpcError(
                f"{method}: Bitcoin Core at {self.url} is overloaded (HTTP 503, "
                f"{body[:200].decode(errors='replace').strip() or reason}); "
                "lower the batch size or raise -rpcworkqueue"
            )
        try:
            return json.loads(body)
        except ValueError:
            # Core answers errors with a JSON body even on HTTP 404/500; anything else is not Core.
            snippet = body[:200].decode(errors="replace").strip()
            raise RpcError(
                f"{method}: {self.url} did not answer with JSON-RPC "
                f"(HTTP {status} {reason}{': ' + snippet if snippet else ''}); "
                "is this Bitcoin Core's RPC port?"
            ) from None

    def _send(self, data: bytes) -> tuple[int, str, bytes]:
        """One HTTP round trip on the keep-alive connection, reconnecting once if it went stale."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._user is not None:
            token = base64.b64encode(f"{self._user}:{self._password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._connection()
            try:
                conn.request("POST", self._path, body=data, headers=headers)
                response = conn.getresponse()
                body = response.read()
                if response.will_close:
                    self.close()
                return response.status, response.reason, body
            except TimeoutError:
                self.close()
                raise RpcError(
                    f"Bitcoin Core at {self.url} did not answer within {self.timeout:g} s"
                ) from None
            except (http.client.HTTPException, ConnectionError, OSError) as e:
                self.close()
                # Core (or a proxy) may drop an idle keep-alive connection; that is not an error.
                if reused and attempt == 1:
                    continue
                raise RpcError(f"cannot reach Bitcoin Core at {self.url}: {_describe(e)}") from None
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout)
        return self._conn

    def _call_error(self, method: str, params: Sequence[Any], error: Any) -> RpcError:
        if isinstance(error, dict):
            code = error.get("code")
            message = str(error.get("message", ""))
        else:
            code, message = None, str(error)
        code = code if isinstance(code, int) else None
        shown = " ".join([method, *(str(p) for p in params)])
        core = f"Bitcoin Core error {code}: {message}" if code is not None else message
        if method == "getblock" and code == RPC_INVALID_ADDRESS_OR_KEY:
            text = f"block {params[0]} is not on the node ({shown}: {core})"
        elif method == "getblock" and code == RPC_MISC_ERROR and "prun" in message.lower():
            text = (
                f"block {params[0]} is pruned on the node ({shown}: {core}); "
                "ingest from an unpruned node, or start at or above its prune height"
            )
        elif method == "getblockhash" and code == RPC_INVALID_PARAMETER:
            text = f"block height {params[0]} is above the node's tip ({shown}: {core})"
        elif code == RPC_IN_WARMUP:
            text = f"Bitcoin Core is still starting up; try again shortly ({shown}: {core})"
        elif code == RPC_METHOD_NOT_FOUND:
            text = f"Bitcoin Core at {self.url} does not offer {method} ({core})"
        else:
            text = f"{shown}: {core}"
        return RpcError(text, code=code, method=method, rpc_message=message)


def block_hash_of(raw_block: bytes) -> str:
    """Display hex of a block's hash: double-SHA256 of its 80-byte header, byte-reversed."""
    return hashlib.sha256(hashlib.sha256(raw_block[:80]).digest()).digest()[::-1].hex()


def _is_hash(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 64:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def _read_cookie(path: Path) -> tuple[str, str]:
    """`(user, password)` from Core's `.cookie` file, which holds `__cookie__:<hex secret>`."""
    path = path.expanduser()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise RpcAuthError(
            f"{path}: cookie file not found; is Bitcoin Core running with this data directory "
            "(and network)? Or use --rpc-user/--rpc-password"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise RpcAuthError(f"{path}: cannot read cookie file ({_describe(e)})") from None
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise RpcAuthError(f"{path}: not a Bitcoin Core cookie file (expected user:secret)")
    return user, password


def _describe(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused (is bitcoind running, with -server and this -rpcport?)"
    if isinstance(e, socket.gaierror):
        return f"unknown host ({e.strerror or e})"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__
