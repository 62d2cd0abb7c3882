"""The tags stage on disk: `DATA/tags/`, its versioned manifest, its files and its SQL views.

    DATA/tags/
      manifest.json                   the commit point: version, current files, history, views
      packs/<pack>/v000007.parquet    one file per tagpack version (TagPacks, CSV, analyst tags)
      actors/<pack>/v000003.parquet   one file per ActorPack version
      tagpacks/v000007.parquet        one row per current pack (title, creator, file, sha256)
      derived/address_ids-*.parquet   address -> store address id (rebuilt when the store grows)
      derived/cluster_tags-*.parquet  cluster attribution (rebuilt when clusters or tags change)
      empty/*.parquet                 schemas for views that have no file yet

Writers take an exclusive lock (`.lock`), write new files under new names, then replace
`manifest.json` in one `os.replace`, so a reader (the store's `chainsleuth sql`, which publishes
the manifest's `views`) sees the old version or the new one. Pack files are never rewritten or
deleted: `history` lists every version's files, so what the store said on a given day can be
reproduced. Derived files are replaced; the previous one is kept until the next replacement so
a reader holding the old manifest can finish.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from chainsleuth.core.files import atomic_write, atomic_write_bytes
from chainsleuth.store import layout
from chainsleuth.tags.model import ACTOR_SCHEMA, TAG_SCHEMA

try:  # POSIX; elsewhere writers are not serialised
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ADDRESS_ID_SCHEMA",
    "CLUSTER_TAG_SCHEMA",
    "FORMAT",
    "TAGS_VIEW_COLUMNS",
    "locked",
    "read_manifest",
    "stage_dir",
    "store_state",
    "write_manifest",
]

FORMAT = 1
STAGE = "tags"

ADDRESS_ID_SCHEMA = pa.schema([("address", pa.string()), ("address_id", pa.int64())])

#: one row per tagged cluster; see docs/design/tags.md for how each column is derived
CLUSTER_TAG_SCHEMA = pa.schema(
    [
        ("cluster_id", pa.int64()),
        ("actor", pa.string()),
        ("actor_label", pa.string()),
        ("label", pa.string()),
        ("category", pa.string()),
        ("confidence", pa.int16()),
        ("n_tagged_addresses", pa.int64()),
        ("n_tags", pa.int64()),
        ("n_addresses", pa.int64()),
        ("actors", pa.list_(pa.string())),
        ("labels", pa.list_(pa.string())),
        ("categories", pa.list_(pa.string())),
        ("abuses", pa.list_(pa.string())),
        ("tagpacks", pa.list_(pa.string())),
        ("evidence", pa.list_(pa.string())),
        ("conflict", pa.bool_()),
        ("conflict_kinds", pa.list_(pa.string())),
        ("conflicts", pa.list_(pa.string())),
        ("conflicting_tags", pa.list_(pa.string())),
        ("clusters_generation", pa.int64()),
    ]
)

#: the `tags` view: the public columns first (named in the issue), then provenance
TAGS_VIEW_COLUMNS = (
    "address",
    "label",
    "category",
    "actor",
    "confidence",
    "source",
    "tagpack",
    "abuse",
    "confidence_level",
    "origin",
    "created_by",
    "created_at",
    "lastmod",
    "is_public",
    "is_cluster_definer",
    "context",
    "currency",
    "network",
    "tag_type",
    "concepts",
    "address_type",
    "address_id",
    "tag_id",
    "pack_file",
    "pack_line",
)


def stage_dir(data_dir: Path) -> Path:
    return Path(data_dir) / STAGE


def now() -> dt.datetime:
    """The current UTC time, to the millisecond (what the parquet timestamps hold)."""
    t = dt.datetime.now(dt.UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): still record something
        return "unknown"


@contextlib.contextmanager
def locked(data_dir: Path) -> Iterator[None]:
    """Hold the stage's writer lock (one writer at a time; readers never wait)."""
    directory = stage_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+b") as f:
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def empty_manifest() -> dict[str, Any]:
    return {
        "stage": STAGE,
        "format": FORMAT,
        "version": 0,
        "updated_at": None,
        "packs": {},
        "actorpacks": {},
        "tagpacks_file": None,
        "address_ids": None,
        "cluster_tags": None,
        "history": [],
        "views": {},
    }


def read_manifest(data_dir: Path) -> dict[str, Any]:
    """The stage's manifest (an empty one when nothing was imported yet)."""
    path = stage_dir(data_dir) / "manifest.json"
    if not path.exists():
        return empty_manifest()
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def _empty_file(data_dir: Path, name: str, schema: pa.Schema) -> str:
    rel = f"empty/{name}.parquet"
    path = stage_dir(data_dir) / rel
    if not path.exists():
        write_table(path, schema.empty_table())
    return rel


def views_of(data_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The SQL views the manifest publishes (see Store._add_stage_views)."""
    pack_files = [p["file"] for _, p in sorted(manifest["packs"].items())]
    actor_files = [p["file"] for _, p in sorted(manifest["actorpacks"].items())]
    address_ids = manifest["address_ids"]["file"] if manifest["address_ids"] else None
    cluster_tags = manifest["cluster_tags"]["file"] if manifest["cluster_tags"] else None
    tagpacks = manifest.get("tagpacks_file")
    columns = ", ".join(
        "a.address_id" if c == "address_id" else f"t.{c}" for c in TAGS_VIEW_COLUMNS
    )
    return {
        "tags_raw": {"files": pack_files or [_empty_file(data_dir, "tags", TAG_SCHEMA)]},
        "tag_address_ids": {
            "files": [address_ids or _empty_file(data_dir, "address_ids", ADDRESS_ID_SCHEMA)]
        },
        "actors_raw": {"files": actor_files or [_empty_file(data_dir, "actors", ACTOR_SCHEMA)]},
        "cluster_tags": {
            "files": [cluster_tags or _empty_file(data_dir, "cluster_tags", CLUSTER_TAG_SCHEMA)]
        },
        "tagpacks": {"files": [tagpacks or _empty_file(data_dir, "tagpacks", TAGPACK_SCHEMA)]},
        "tags": {
            "sql": f"SELECT {columns} FROM tags_raw t "
            "LEFT JOIN tag_address_ids a ON a.address = t.address"
        },
        "actors": {
            "sql": "SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER "
            "(PARTITION BY id ORDER BY imported_at DESC, actorpack) AS rn FROM actors_raw) "
            "WHERE rn = 1"
        },
    }


def write_manifest(data_dir: Path, manifest: dict[str, Any]) -> None:
    """Publish the manifest (with its views recomputed) in one atomic replace."""
    manifest["views"] = views_of(data_dir, manifest)
    manifest["updated_at"] = now().isoformat()
    atomic_write_bytes(
        stage_dir(data_dir) / "manifest.json",
        json.dumps(manifest, indent=1, default=str).encode() + b"\n",
    )


def write_table(path: Path, table: pa.Table, row_group_size: int = 16_384) -> None:
    """Write a parquet file atomically (a temporary file renamed into place)."""
    atomic_write(
        path,
        lambda f: pq.write_table(
            table, f, compression="zstd", row_group_size=row_group_size, write_statistics=True
        ),
    )


_SAFE = re.compile(r"[^A-Za-z0-9._/-]+")


def pack_file(name: str, version: int, kind: str = "packs") -> str:
    """Relative path of a new version of pack `name` (sanitised; never overwrites)."""
    safe = _SAFE.sub("_", name).strip("/").replace("..", "_") or "pack"
    return f"{kind}/{safe}/v{version:06d}.parquet"


def read_pack(data_dir: Path, rel: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(stage_dir(data_dir) / rel, columns=columns)


def current_tags(data_dir: Path, manifest: dict[str, Any], columns: list[str]) -> pa.Table:
    """Every current tag (the given columns), concatenated over the packs."""
    tables = [read_pack(data_dir, p["file"], columns) for _, p in sorted(manifest["packs"].items())]
    if not tables:
        return TAG_SCHEMA.empty_table().select(columns)
    return pa.concat_tables(tables)


TAGPACK_SCHEMA = pa.schema(
    [
        ("tagpack", pa.string()),
        ("kind", pa.string()),
        ("title", pa.string()),
        ("creator", pa.string()),
        ("description", pa.string()),
        ("source_file", pa.string()),
        ("sha256", pa.string()),
        ("n_tags", pa.int64()),
        ("version", pa.int64()),
        ("imported_at", pa.string()),
        ("imported_by", pa.string()),
        ("file", pa.string()),
    ]
)


def write_tagpacks_table(data_dir: Path, manifest: dict[str, Any]) -> str:
    """The `tagpacks` view's file for this version: one row per current pack."""
    rows = [
        {
            "tagpack": name,
            "kind": p.get("kind"),
            "title": p.get("title"),
            "creator": p.get("creator"),
            "description": p.get("description"),
            "source_file": p.get("source_file"),
            "sha256": p.get("sha256"),
            "n_tags": p.get("rows"),
            "version": p.get("version"),
            "imported_at": p.get("imported_at"),
            "imported_by": p.get("imported_by"),
            "file": p.get("file"),
        }
        for name, p in sorted(manifest["packs"].items())
    ]
    rel = f"tagpacks/v{manifest['version']:06d}.parquet"
    write_table(stage_dir(data_dir) / rel, pa.Table.from_pylist(rows, schema=TAGPACK_SCHEMA))
    return rel


# ------------------------------------------------------------------------------- the store
def store_state(data_dir: Path) -> dict[str, Any] | None:
    """What address ids depend on: the store's network, epoch and address count (None: no store)."""
    m = layout.read_manifest(Path(data_dir))
    if m is None:
        return None
    return {"network": m["network"], "epoch": m["epoch"], "addresses": m["counts"]["addresses"]}


def store_network(data_dir: Path) -> str:
    """The network tags are validated for: the store's, or mainnet when there is no store yet."""
    state = store_state(data_dir)
    return "main" if state is None else str(state["network"])


def key_rows(address_keys: list[bytes] | pa.Array) -> np.ndarray:
    """Stored `address_key` values (kind byte + payload) as the store's 43-byte key rows."""
    width = layout.ARRAYS["address_key"].width
    values = address_keys.to_pylist() if isinstance(address_keys, pa.Array) else address_keys
    rows = np.zeros((len(values), width), np.uint8)
    for i, key in enumerate(values):
        rows[i, 0] = key[0]
        rows[i, 1] = len(key) - 1
        rows[i, 2 : 1 + len(key)] = np.frombuffer(key, np.uint8, offset=1)
    return rows


def resolve_address_ids(data_dir: Path, keys: np.ndarray) -> np.ndarray:
    """Store address id of each key row (-1 when the address is not in the store).

    Uses the store's address index (store.addrindex) for the addresses it covers and scans the
    address keys added since (or all of them when there is no index) against a small index of
    the tag keys, so the cost follows the number of tags, not of addresses.
    """
    from chainsleuth.store import addrindex
    from chainsleuth.store.hashindex import HashIndex

    data_dir = Path(data_dir)
    m = layout.read_manifest(data_dir)
    ids = np.full(keys.shape[0], -1, np.int64)
    if m is None or keys.shape[0] == 0:
        return ids
    n_addr = int(m["counts"]["addresses"])
    if n_addr == 0:
        return ids
    stored = layout.open_array(data_dir, "address_key", n_addr)
    found, covered = addrindex.find_ids(data_dir, np.ascontiguousarray(keys, np.uint8), stored)
    ids[:] = found
    if covered < n_addr:
        tag_index = HashIndex(max(1024, int(keys.shape[0] / 0.5)))
        tag_index.insert(keys, np.arange(keys.shape[0], dtype=np.int64), keys, keys[:0])
        chunk = 1 << 22
        for lo in range(covered, n_addr, chunk):
            hi = min(lo + chunk, n_addr)
            hits = tag_index.lookup(np.ascontiguousarray(stored[lo:hi]), keys)
            rows = np.flatnonzero(hits >= 0)
            first_free = ids[hits[rows]] < 0  # the first id of a key wins, as in the store
            ids[hits[rows][first_free]] = lo + rows[first_free]
    return ids
