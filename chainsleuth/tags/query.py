"""Look tags up: by address, cluster, actor, label or category, and the entity behind an actor.

`TagLookup` opens the stage once (a DuckDB connection over the current parquet files, the
same views `chainsleuth sql` shows) and answers many lookups in milliseconds: the tag files are
sorted by address and the cluster attribution by cluster id, so parquet statistics skip all but
one row group. The module-level functions open a lookup per call, which is what the CLI does.
Tags do not need the chain: without a store, address ids and clusters are simply absent.

Example::

    with TagLookup.open(Path("chainsleuth-data")) as tags:
        tags.by_address("1Archive1n2C579dMsAu3iC6tWzuQJz8dN")
        tags.cluster(1234)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from chainsleuth.cluster.engine import Clusters
from chainsleuth.core.address import AddressError
from chainsleuth.core.errors import AddressNotSeenError
from chainsleuth.tags import storage
from chainsleuth.tags.attribution import ensure_fresh
from chainsleuth.tags.imports import TagError
from chainsleuth.tags.taxonomy import Taxonomy
from chainsleuth.tags.validate import check_address

__all__ = [
    "TagLookup",
    "address_attribution",
    "attribution_of_cluster",
    "entity",
    "history",
    "list_tags",
]

# what a lookup shows of a tag (the `tags` view has more: pack_file, concepts, ...)
_SHOWN = (
    "address, label, category, abuse, actor, confidence, confidence_level, source, tagpack, "
    "origin, created_by, created_at, lastmod, address_id, tag_id, pack_file, pack_line, context"
)


class _InMemory:
    """Every tag sorted by address and every cluster row sorted by id, with numpy keys for
    binary search: microsecond lookups for a session that makes many (a notebook, an API)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.tags = con.sql(f"SELECT {_SHOWN} FROM tags ORDER BY address, tag_id").to_arrow_table()
        self.addresses = np.array(self.tags.column("address").to_pylist(), dtype=object)
        self.clusters = con.sql("SELECT * FROM cluster_tags ORDER BY cluster_id").to_arrow_table()
        self.cluster_ids = self.clusters.column("cluster_id").to_numpy()

    def by_address(self, address: str) -> list[dict[str, Any]]:
        lo = int(np.searchsorted(self.addresses, address, "left"))
        hi = int(np.searchsorted(self.addresses, address, "right"))
        rows: list[dict[str, Any]] = self.tags.slice(lo, hi - lo).to_pylist()
        rows.sort(key=lambda r: (-r["confidence_level"], r["tagpack"], r["label"]))
        return rows

    def cluster(self, cluster_id: int) -> dict[str, Any] | None:
        i = int(np.searchsorted(self.cluster_ids, cluster_id))
        if i >= self.cluster_ids.shape[0] or self.cluster_ids[i] != cluster_id:
            return None
        row: dict[str, Any] = self.clusters.slice(i, 1).to_pylist()[0]
        return row


class TagLookup:
    """Tag and attribution lookups over one version of the tags stage.

    `in_memory=True` loads every tag and cluster row once (about a second for 500k tags) and
    answers address and cluster lookups from memory; otherwise each lookup is a DuckDB query
    over the parquet files.
    """

    def __init__(self, data_dir: Path, manifest: dict[str, Any], in_memory: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.manifest = manifest
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET parquet_metadata_cache = true")
        base = storage.stage_dir(self.data_dir)
        views = manifest.get("views") or storage.views_of(self.data_dir, manifest)
        for name, spec in views.items():
            if "files" in spec:
                listing = ", ".join(
                    "'" + str(base / f).replace("'", "''") + "'" for f in spec["files"]
                )
                self.con.execute(
                    f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listing}], "
                    "hive_partitioning = false)"
                )
        for name, spec in views.items():
            if "sql" in spec:
                self.con.execute(f"CREATE VIEW {name} AS {spec['sql']}")
        self._clusters: Clusters | None = None
        self._memory = _InMemory(self.con) if in_memory else None

    @classmethod
    def open(cls, data_dir: Path, *, refresh: bool = True, in_memory: bool = False) -> TagLookup:
        """Open the current version (recomputing stale address ids and clusters first)."""
        data_dir = Path(data_dir)
        manifest = ensure_fresh(data_dir) if refresh else storage.read_manifest(data_dir)
        return cls(data_dir, manifest, in_memory=in_memory)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> TagLookup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, query: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Rows of any SQL over the views (tags, actors, tagpacks, cluster_tags, …) as dicts."""
        rows: list[dict[str, Any]] = (
            self.con.sql(query, params=params or None).to_arrow_table().to_pylist()
        )
        return rows

    # ------------------------------------------------------------------------- tags
    def by_address(self, address: str) -> list[dict[str, Any]]:
        """Every tag on `address`, most confident first."""
        if self._memory is not None:
            return self._memory.by_address(address.strip())
        return self.query(
            f"SELECT {_SHOWN} FROM tags WHERE address = ? "
            "ORDER BY confidence_level DESC, tagpack, label",
            [address.strip()],
        )

    def by_actor(self, actor: str, limit: int | None = None) -> list[dict[str, Any]]:
        return self.query(
            f"SELECT {_SHOWN} FROM tags WHERE actor = ? ORDER BY address, tagpack" + _limit(limit),
            [actor],
        )

    def by_label(self, label: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Tags whose label contains `label` (case-insensitive)."""
        return self.query(
            f"SELECT {_SHOWN} FROM tags WHERE label ILIKE ? ORDER BY label, address"
            + _limit(limit),
            ["%" + label.replace("%", r"\%").replace("_", r"\_") + "%"],
        )

    def by_category(
        self, concept: str, limit: int | None = None, taxonomy: Taxonomy | None = None
    ) -> list[dict[str, Any]]:
        """Tags whose category or abuse is `concept` or a narrower concept (service: exchange…)."""
        taxonomy = taxonomy or Taxonomy.default()
        if concept not in taxonomy.concepts:
            raise TagError(f"{concept!r} is not a concept of the taxonomy")
        wanted = sorted(taxonomy.narrower_or_self(concept))
        return self.query(
            f"SELECT {_SHOWN} FROM tags WHERE list_contains(?, category) "
            "OR list_contains(?, abuse) ORDER BY address, tagpack" + _limit(limit),
            [wanted, wanted],
        )

    def by_cluster(self, cluster_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """The tags of every address in the cluster (the attribution's evidence)."""
        return self.query(
            f"SELECT {_SHOWN} FROM tags WHERE tag_id IN "
            "(SELECT unnest(evidence) FROM cluster_tags WHERE cluster_id = ?) "
            "ORDER BY address, tagpack" + _limit(limit),
            [int(cluster_id)],
        )

    def all_tags(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self.query(f"SELECT {_SHOWN} FROM tags ORDER BY address, tagpack" + _limit(limit))

    # ---------------------------------------------------------------------- clusters
    def cluster(self, cluster_id: int) -> dict[str, Any] | None:
        """The attribution of a cluster (None when none of its addresses is tagged)."""
        if self._memory is not None:
            return self._memory.cluster(int(cluster_id))
        rows = self.query("SELECT * FROM cluster_tags WHERE cluster_id = ?", [int(cluster_id)])
        return rows[0] if rows else None

    def address_id(self, address: str) -> int | None:
        """The store address id of `address` (None without a store or when not in it)."""
        rows = self.query(
            "SELECT address_id FROM tag_address_ids WHERE address = ?", [address.strip()]
        )
        if rows:
            return int(rows[0]["address_id"])
        state = storage.store_state(self.data_dir)
        if state is None:
            return None
        check = check_address(address.strip(), state["network"])
        if check.code is not None:
            raise AddressError(check.message)
        key = bytes((int(check.kind),)) + check.payload  # type: ignore[arg-type]
        ids = storage.resolve_address_ids(self.data_dir, storage.key_rows([key]))
        return int(ids[0]) if ids[0] >= 0 else None

    def cluster_of(self, address: str) -> int | None:
        """The cluster id of an address (None when the address is not in the store)."""
        address_id = self.address_id(address)
        if address_id is None:
            return None
        if self._clusters is None:
            self._clusters = Clusters.or_singletons(self.data_dir)
        return int(self._clusters.clusters_of(np.array([address_id]))[0])

    def address(self, address: str) -> dict[str, Any]:
        """An address's own tags and its cluster's attribution (for `address`, `explain`)."""
        cluster_id = self.cluster_of(address)
        return {
            "address": address,
            "tags": self.by_address(address),
            "cluster_id": cluster_id,
            "cluster": None if cluster_id is None else self.cluster(cluster_id),
        }

    # ------------------------------------------------------------------------ actors
    def actor(self, name: str) -> dict[str, Any] | None:
        """The actor with id `name`, else with that label or alias (case-insensitive)."""
        rows = self.query("SELECT * FROM actors WHERE id = ?", [name])
        if not rows:
            rows = self.query(
                "SELECT * FROM actors WHERE lower(id) = lower($1) OR lower(label) = lower($1) "
                "OR list_contains(list_transform(aliases, lambda x: lower(x)), lower($1)) "
                "ORDER BY id LIMIT 1",
                [name],
            )
        return rows[0] if rows else None

    def actor_suggestions(self, name: str, n: int = 5) -> list[str]:
        rows = self.query(
            "SELECT id FROM (SELECT id, label FROM actors UNION SELECT DISTINCT actor, actor "
            "FROM tags_raw WHERE actor IS NOT NULL) "
            "ORDER BY least(jaro_winkler_similarity(lower(id), lower($1)), 1) DESC, "
            "jaro_winkler_similarity(lower(label), lower($1)) DESC LIMIT $2",
            [name, n],
        )
        return [r["id"] for r in rows]


def _limit(limit: int | None) -> str:
    return "" if limit is None else f" LIMIT {int(limit)}"


# ------------------------------------------------------------------------------ functions
def list_tags(
    data_dir: Path,
    *,
    address: str | None = None,
    cluster: int | str | None = None,
    actor: str | None = None,
    category: str | None = None,
    label: str | None = None,
    limit: int | None = None,
    lookup: TagLookup | None = None,
) -> list[dict[str, Any]]:
    """Tags matching one filter (or every tag, up to `limit`, without one).

    `cluster` is a cluster id, or an address whose cluster is meant. `lookup` reuses an open
    TagLookup (a server making many lookups); by default one is opened and closed.

    Example::

        list_tags(data_dir, category="exchange", limit=10)
    """
    given = [x for x in (address, cluster, actor, category, label) if x is not None]
    if len(given) > 1:
        raise TagError("give one of address, cluster, actor, category, label")
    with _opened(data_dir, lookup) as lookup:
        if address is not None:
            return lookup.by_address(address)
        if cluster is not None:
            return lookup.by_cluster(_cluster_id(lookup, cluster), limit)
        if actor is not None:
            return lookup.by_actor(actor, limit)
        if category is not None:
            return lookup.by_category(category, limit)
        if label is not None:
            return lookup.by_label(label, limit)
        return lookup.all_tags(limit)


def _cluster_id(lookup: TagLookup, cluster: int | str) -> int:
    if isinstance(cluster, int) or (isinstance(cluster, str) and cluster.strip().isdigit()):
        return int(cluster)
    found = lookup.cluster_of(str(cluster))
    if found is None:
        raise AddressNotSeenError(str(cluster))
    return found


@contextmanager
def _opened(data_dir: Path, lookup: TagLookup | None) -> Iterator[TagLookup]:
    """`lookup` itself (left open), or a new TagLookup closed on exit."""
    if lookup is not None:
        yield lookup
        return
    with TagLookup.open(data_dir) as opened:
        yield opened


def attribution_of_cluster(
    data_dir: Path, cluster: int | str, lookup: TagLookup | None = None
) -> dict[str, Any] | None:
    """A cluster's attribution row (by cluster id or by one of its addresses)."""
    with _opened(data_dir, lookup) as lookup:
        return lookup.cluster(_cluster_id(lookup, cluster))


def address_attribution(
    data_dir: Path, address: str, lookup: TagLookup | None = None
) -> dict[str, Any]:
    """An address's tags and its cluster's attribution: what `address` and `explain` show."""
    with _opened(data_dir, lookup) as lookup:
        return lookup.address(address)


def history(data_dir: Path) -> list[dict[str, Any]]:
    """Every version of the tags stage: when, by whom, what changed, which files."""
    entries: list[dict[str, Any]] = storage.read_manifest(Path(data_dir))["history"]
    return entries


# ------------------------------------------------------------------------------ entities
def _activity(data_dir: Path, address_mask: np.ndarray) -> dict[str, Any]:
    """Totals over the addresses in `address_mask`: received, sent, txs, first/last activity."""
    from chainsleuth.store.layout import NONE32
    from chainsleuth.store.store import Store

    store = Store.open(data_dir)
    out_address = store.graph.output_address
    values = store.graph.output_value
    hit = np.zeros(out_address.shape[0], bool)
    chunk = 1 << 24
    for lo in range(0, out_address.shape[0], chunk):
        part = out_address[lo : lo + chunk]
        ok = part != NONE32
        sub = np.zeros(part.shape[0], bool)
        sub[ok] = address_mask[part[ok].astype(np.int64)]
        hit[lo : lo + chunk] = sub
    outs = np.flatnonzero(hit)
    if outs.shape[0] == 0:
        return {
            "received": 0,
            "sent": 0,
            "balance": 0,
            "n_txs": 0,
            "n_outputs": 0,
            "first_seen_height": None,
            "last_seen_height": None,
            "first_seen_time": None,
            "last_seen_time": None,
        }
    spent_by = store.spent_by(outs)
    first_out = store.graph.tx_first_output
    creating = np.searchsorted(first_out, outs, side="right") - 1
    txs = np.union1d(creating, spent_by[spent_by >= 0])
    heights = store.graph.tx_height[txs]
    times = store.graph.block_time
    received = int(values[outs].sum())
    sent = int(values[outs][spent_by >= 0].sum())
    import datetime as dt

    def when(h: int) -> str:
        return dt.datetime.fromtimestamp(int(times[h]), dt.UTC).isoformat()

    lo_h, hi_h = int(heights.min()), int(heights.max())
    return {
        "received": received,
        "sent": sent,
        "balance": received - sent,
        "n_txs": int(txs.shape[0]),
        "n_outputs": int(outs.shape[0]),
        "first_seen_height": lo_h,
        "last_seen_height": hi_h,
        "first_seen_time": when(lo_h),
        "last_seen_time": when(hi_h),
    }


def entity(data_dir: Path, name: str, *, max_addresses: int = 20) -> dict[str, Any]:
    """The actor `name` (id, label or alias) as an investigator sees it: its clusters, its
    tagged addresses, totals and first/last activity over the clusters attributed to it.

    Clusters where the actor is tagged but another actor is attributed are listed as
    `contested_clusters` and left out of the totals. Raises TagError when no actor matches.

    Example::

        entity(data_dir, "bitmex")["totals"]["balance"]
    """
    data_dir = Path(data_dir)
    with TagLookup.open(data_dir) as lookup:
        actor = lookup.actor(name)
        actor_id = actor["id"] if actor else name
        n_tags = lookup.query("SELECT count(*) AS n FROM tags WHERE actor = ?", [actor_id])[0]["n"]
        if actor is None and n_tags == 0:
            hints = lookup.actor_suggestions(name)
            raise TagError(
                f"no actor named {name!r}"
                + (f"; did you mean: {', '.join(hints)}?" if hints else " (no actors imported)")
            )
        clusters = lookup.query(
            "SELECT cluster_id, actor, label, category, confidence, n_addresses, "
            "n_tagged_addresses, n_tags, actors, conflict, conflict_kinds, conflicts "
            "FROM cluster_tags WHERE list_contains(actors, ?) "
            "ORDER BY n_addresses DESC, cluster_id",
            [actor_id],
        )
        summary = lookup.query(
            "SELECT count(DISTINCT address) AS n_tagged_addresses, "
            "list(DISTINCT label ORDER BY label) AS labels, "
            "list(DISTINCT category ORDER BY category) FILTER (WHERE category IS NOT NULL) "
            "AS categories, list(DISTINCT tagpack ORDER BY tagpack) AS tagpacks, "
            "min(lastmod) AS first_lastmod, max(lastmod) AS last_lastmod "
            "FROM tags WHERE actor = ?",
            [actor_id],
        )[0]
        addresses = lookup.query(
            "SELECT address, address_id, list(DISTINCT label) AS labels, max(confidence_level) "
            "AS confidence_level FROM tags WHERE actor = ? GROUP BY address, address_id "
            "ORDER BY address LIMIT ?",
            [actor_id, max_addresses],
        )
    attributed = [c for c in clusters if c["actor"] == actor_id]
    contested = [c for c in clusters if c["actor"] != actor_id]
    state = storage.store_state(data_dir)
    totals = None
    if state is not None and attributed:
        n_addr = int(state["addresses"])
        mask = Clusters.or_singletons(data_dir).member_mask(
            np.array([c["cluster_id"] for c in attributed], np.int64), n_addr
        )
        totals = {"n_addresses": int(mask.sum()), **_activity(data_dir, mask)}
    return {
        "actor": actor_id,
        "label": actor["label"] if actor else None,
        "categories": actor["categories"] if actor else summary["categories"],
        "uri": actor["uri"] if actor else None,
        "jurisdictions": actor["jurisdictions"] if actor else [],
        "in_actorpack": actor is not None,
        "n_tags": n_tags,
        "n_tagged_addresses": summary["n_tagged_addresses"],
        "labels": summary["labels"],
        "tagpacks": summary["tagpacks"],
        "clusters": attributed,
        "contested_clusters": contested,
        "totals": totals,
        "tagged_addresses": addresses,
    }


def search_names(
    data_dir: Path, text: str, limit: int = 20, lookup: TagLookup | None = None
) -> list[dict[str, Any]]:
    """Actors (ActorPacks and tags' actor ids) and tag labels starting with `text`
    (case-insensitive), actors first: [{"kind": "entity" | "tag", "name", "label",
    "category"}]. For a search box; [] without tags.

    Example::

        search_names(data_dir, "bin")[0]["name"]   # 'binance'
    """
    data_dir = Path(data_dir)
    if not (data_dir / "tags" / "manifest.json").exists() or not text.strip():
        return []
    prefix = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    prefix += "%"
    with _opened(data_dir, lookup) as lookup:
        actors = lookup.query(
            "SELECT id AS name, any_value(label) AS label FROM ("
            "SELECT id, label FROM actors UNION ALL "
            "SELECT DISTINCT actor, actor FROM tags_raw WHERE actor IS NOT NULL) "
            "WHERE lower(id) LIKE $1 ESCAPE '\\' OR lower(label) LIKE $1 ESCAPE '\\' "
            "GROUP BY id ORDER BY id LIMIT $2",
            [prefix, limit],
        )
        labels = lookup.query(
            "SELECT label AS name, label, any_value(category) AS category FROM tags "
            "WHERE lower(label) LIKE $1 ESCAPE '\\' GROUP BY label ORDER BY label LIMIT $2",
            [prefix, limit],
        )
    found = [{"kind": "entity", "category": None, **r} for r in actors]
    found += [{"kind": "tag", **r} for r in labels]
    return found[:limit]
