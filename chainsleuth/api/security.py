"""API keys, the audit log and per-key rate limits (docs/design/api.md, "Auth").

Keys live in `DATA/api/keys.json` as sha256 hashes only: a key is `cs_` + 32 random bytes
(url-safe base64), so a hash cannot be brute-forced back into a key and a plain sha256 (not a
slow password hash) is enough. The key id (the 8 characters after `cs_`) names the key in the
audit log and in `keys list`. The audit log `DATA/api/audit.jsonl` is append-only: one JSON line
per request, written with O_APPEND and never rewritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainsleuth.core.errors import ChainsleuthError

SCOPES = ("read", "investigate", "admin")  # each includes the ones before it
KEY_PREFIX = "cs_"


def api_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "api"


def keys_path(data_dir: Path) -> Path:
    return api_dir(data_dir) / "keys.json"


def audit_path(data_dir: Path) -> Path:
    return api_dir(data_dir) / "audit.jsonl"


def scope_allows(held: str, needed: str) -> bool:
    return SCOPES.index(held) >= SCOPES.index(needed)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _read_keys(data_dir: Path) -> list[dict[str, Any]]:
    path = keys_path(data_dir)
    if not path.exists():
        return []
    try:
        keys: list[dict[str, Any]] = json.loads(path.read_text())["keys"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ChainsleuthError(f"{path}: not a readable key store ({e})") from None
    return keys


def _write_keys(data_dir: Path, keys: list[dict[str, Any]]) -> None:
    path = keys_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"format": 1, "keys": keys}, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def create_key(data_dir: Path, scope: str, name: str | None = None) -> tuple[str, dict[str, Any]]:
    """A new key of `scope`: returns (the key, its stored record). Only the hash is stored."""
    if scope not in SCOPES:
        raise ChainsleuthError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
    keys = _read_keys(data_dir)
    while True:
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = key[len(KEY_PREFIX) : len(KEY_PREFIX) + 8]
        # an id starting with "-" would read as an option in `keys revoke ID`
        if key_id[0].isalnum() and all(k["id"] != key_id for k in keys):
            break
    record = {
        "id": key_id,
        "name": name or "",
        "scope": scope,
        "sha256": _hash(key),
        "created": _now(),
        "revoked": None,
    }
    keys.append(record)
    _write_keys(data_dir, keys)
    return key, record


def list_keys(data_dir: Path) -> list[dict[str, Any]]:
    """The stored keys without their hashes."""
    return [{k: v for k, v in r.items() if k != "sha256"} for r in _read_keys(data_dir)]


def revoke_key(data_dir: Path, key_id: str) -> None:
    keys = _read_keys(data_dir)
    for k in keys:
        if k["id"] == key_id:
            k["revoked"] = k["revoked"] or _now()
            _write_keys(data_dir, keys)
            return
    raise ChainsleuthError(f"no key {key_id!r} in {keys_path(data_dir)}")


@dataclass(frozen=True)
class Principal:
    """Who makes a request: the key id and its scope ("local" in open mode)."""

    key_id: str
    scope: str


class KeyStore:
    """The key hashes, re-read when keys.json changes (a key created or revoked while the
    server runs takes effect at once)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = keys_path(data_dir)
        self.data_dir = Path(data_dir)
        self._stamp: tuple[int, int, int] | None = None
        self._by_hash: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def present(self) -> bool:
        return self.path.exists()

    def check(self, key: str) -> Principal | None:
        with self._lock:
            # the inode too: each write replaces the file, and two writes may share an mtime
            st = self.path.stat() if self.path.exists() else None
            stamp = None if st is None else (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._by_hash = {k["sha256"]: k for k in _read_keys(self.data_dir)}
                self._stamp = stamp
            wanted = _hash(key)
            for digest, record in self._by_hash.items():
                if hmac.compare_digest(digest, wanted) and not record.get("revoked"):
                    return Principal(record["id"], record["scope"])
        return None


class AuditLog:
    """Append-only JSON lines: time, key id, method, path, query, status."""

    def __init__(self, data_dir: Path) -> None:
        self.path = audit_path(data_dir)
        self._lock = threading.Lock()

    def write(
        self,
        key_id: str,
        method: str,
        path: str,
        query: str,
        status: int,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """One line; `detail` is what a POST asked for that the URL does not say (the SQL
        text, the address tagged, the seed file), so every query can be accounted for."""
        entry = {
            "time": _now(),
            "key_id": key_id,
            "method": method,
            "path": path,
            "query": query,
            "status": status,
        }
        if detail is not None:
            entry["detail"] = detail
        line = json.dumps(entry, sort_keys=True)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)

    def read(self, offset: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Lines offset .. offset+limit (oldest first) and whether more follow."""
        if not self.path.exists():
            return [], False
        rows: list[dict[str, Any]] = []
        more = False
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f):
                if n < offset:
                    continue
                if len(rows) == limit:
                    more = True
                    break
                rows.append(json.loads(line))
        return rows, more


class RateLimiter:
    """A token bucket per key: `rate` requests a second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str) -> float:
        """0 when the request may go on, else the seconds to wait before the next one."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key_id] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[key_id] = (tokens - 1.0, now)
            return 0.0


def is_loopback(host: str) -> bool:
    """Whether binding `host` only listens on this machine (localhost, 127/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, data_dir: Path) -> None:
    """Refuse to listen beyond this machine without a key store (one-line error)."""
    if not is_loopback(host) and not keys_path(data_dir).exists():
        raise ChainsleuthError(
            f"refusing to listen on {host} without API keys: create one with "
            f"`chainsleuth --data {data_dir} keys create --scope read`, or serve on 127.0.0.1"
        )
