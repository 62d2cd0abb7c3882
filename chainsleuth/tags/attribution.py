"""Cluster attribution: from the tags of a cluster's addresses to one answer, its evidence,
its aggregate confidence and its conflicts (docs/design/tags.md explains each rule).

Tags are stored per address; investigators reason about clusters (wallets). For every cluster
with at least one tagged address this module derives one `cluster_tags` row: the attributed
actor (or label when no tag names an actor), the evidence (every tag id and tagpack behind it),
an aggregate confidence (noisy-OR of the strongest level of each independent source) and a
conflict flag with the conflicting tags, never resolving a conflict silently. It also keeps the
tags' store address ids current. Called after every import, and by readers when the clustering
generation, the store or the tags changed since the last computation.

Example::

    table = recompute_cluster_tags(Path("chainsleuth-data"))
    table.filter(pc.field("conflict")).to_pylist()
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chainsleuth.cluster.engine import Clusters, clusters_generation
from chainsleuth.store import layout
from chainsleuth.tags import storage
from chainsleuth.tags.taxonomy import Taxonomy

__all__ = [
    "Claim",
    "compute_cluster_tags",
    "conflict_between",
    "ensure_fresh",
    "recompute_cluster_tags",
    "refresh_address_ids",
    "refresh_cluster_tags",
]

_TAG_COLUMNS = [
    "tag_id",
    "address",
    "actor",
    "label",
    "category",
    "abuse",
    "confidence_level",
    "tagpack",
    "source",
]


# ------------------------------------------------------------------------------ address ids
def _key_rows_fast(keys: pa.Array) -> np.ndarray:
    """Binary address keys (kind byte + payload) to 43-byte store key rows, vectorised."""
    width = layout.ARRAYS["address_key"].width
    keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    n = len(keys)
    rows = np.zeros((n, width), np.uint8)
    if n == 0:
        return rows
    offsets = np.frombuffer(keys.buffers()[1], np.int32, n + 1, keys.offset * 4)
    data = np.frombuffer(keys.buffers()[2], np.uint8)
    lengths = np.diff(offsets)
    for length in np.unique(lengths):
        idx = np.flatnonzero(lengths == length)
        pos = offsets[idx][:, None] + np.arange(length)
        block = data[pos]
        rows[idx, 0] = block[:, 0]
        rows[idx, 1] = length - 1
        rows[idx, 2 : 1 + length] = block[:, 1:]
    return rows


def refresh_address_ids(data_dir: Path, manifest: dict[str, Any], force: bool = False) -> bool:
    """Map every tagged address to its store address id when the store or the tags changed.

    Returns True when `manifest["address_ids"]` changed (the caller writes the manifest).
    """
    state = storage.store_state(data_dir)
    want = {"store": state, "tags_version": manifest["version"]}
    current = manifest.get("address_ids")
    if not force and current is not None and {k: current.get(k) for k in want} == want:
        return False
    if state is None:
        if current is None:
            return False
        manifest["address_ids"] = None
        return True
    tags = storage.current_tags(data_dir, manifest, ["address", "address_key", "network"])
    tags = tags.filter(pc.equal(tags.column("network"), state["network"]))
    unique = tags.group_by("address", use_threads=False).aggregate([("address_key", "first")])
    keys = _key_rows_fast(unique.column("address_key_first").combine_chunks())
    ids = storage.resolve_address_ids(data_dir, keys)
    found = ids >= 0
    table = pa.table(
        {
            "address": unique.column("address").filter(pa.array(found)),
            "address_id": pa.array(ids[found], pa.int64()),
        },
        schema=storage.ADDRESS_ID_SCHEMA,
    ).sort_by("address")
    rel = (
        f"derived/address_ids-v{manifest['version']:06d}-e{state['epoch']}-a{state['addresses']}"
        ".parquet"
    )
    storage.write_table(storage.stage_dir(data_dir) / rel, table)
    _retire(data_dir, "address_ids", {rel, current["file"] if current else None})
    manifest["address_ids"] = {**want, "file": rel, "n": table.num_rows}
    return True


def _retire(data_dir: Path, prefix: str, keep: set[str | None]) -> None:
    """Delete derived files of `prefix` except `keep` (the new one and the one it replaces,
    which a reader holding the previous manifest may still be reading)."""
    for path in (storage.stage_dir(data_dir) / "derived").glob(f"{prefix}-*.parquet"):
        if f"derived/{path.name}" not in keep:
            path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------ conflicts
class Claim:
    """What a group of tags says about a cluster: an actor, an entity category, an abuse."""

    __slots__ = ("abuse", "actor", "category", "tag_ids")

    def __init__(
        self, actor: str | None, category: str | None, abuse: str | None, tag_ids: list[str]
    ) -> None:
        self.actor = actor
        self.category = category
        self.abuse = abuse
        self.tag_ids = tag_ids

    @classmethod
    def of(
        cls,
        taxonomy: Taxonomy,
        actor: str | None,
        category: str | None,
        abuse: str | None,
        tag_ids: list[str],
    ) -> Claim:
        """Normalise: a category that is an abuse concept counts as the abuse; `unknown` as none."""
        if category in ("unknown", "concept"):
            category = None
        if category is not None and taxonomy.is_abuse(category):
            abuse = abuse or category
            category = None
        return cls(actor, category, abuse, tag_ids)

    def describe(self) -> str:
        parts = [p for p in (self.actor, self.category, self.abuse) if p]
        n = len(self.tag_ids)
        return f"{'/'.join(parts) or 'untyped'} ({n:,} tag{'s' if n != 1 else ''})"


def conflict_between(
    a: Claim, b: Claim, taxonomy: Taxonomy, actor_categories: dict[str, list[str]]
) -> list[str]:
    """The kinds of conflict between two claims on one cluster (empty when they agree).

    - `different_actors`: both name an actor and the actors differ;
    - `incompatible_categories`: both name a category and neither is the other or a narrower
      form of it in the concept tree (exchange vs market; service vs exchange is fine), unless
      one is a usage attribute (hot/cold/deposit wallet: the `white_usage` branch);
    - `abuse_on_vasp`: one claims an abuse, the other claims no abuse and is a virtual asset
      service provider (exchange, wallet service, payment processor, ATM: by its category or
      its actor's ActorPack categories), and the abuse is not tagged on that same actor.
    """
    kinds = []
    if a.actor and b.actor and a.actor != b.actor:
        kinds.append("different_actors")
    if (
        a.category
        and b.category
        and not taxonomy.on_one_path(a.category, b.category)
        and not taxonomy.is_usage_attribute(a.category)
        and not taxonomy.is_usage_attribute(b.category)
    ):
        kinds.append("incompatible_categories")
    if (a.abuse is None) != (b.abuse is None):
        benign, abusive = (a, b) if a.abuse is None else (b, a)
        if abusive.actor is None or abusive.actor != benign.actor:
            cats = [benign.category] if benign.category else []
            if benign.actor:
                cats += actor_categories.get(benign.actor, [])
            if any(c in taxonomy.concepts and taxonomy.is_vasp(c) for c in cats):
                kinds.append("abuse_on_vasp")
    return kinds


# ------------------------------------------------------------------------------ attribution
_SQL = """
WITH t AS (
    SELECT *, lower(rtrim(trim(source), '/')) AS src FROM tagged
),
per_cluster AS (
    SELECT cluster_id,
           count(*) AS n_tags,
           count(DISTINCT address_id) AS n_tagged_addresses,
           list(DISTINCT actor ORDER BY actor) FILTER (WHERE actor IS NOT NULL) AS actors,
           list(DISTINCT label ORDER BY label) AS labels,
           list(DISTINCT category ORDER BY category) FILTER (WHERE category IS NOT NULL)
               AS categories,
           list(DISTINCT abuse ORDER BY abuse) FILTER (WHERE abuse IS NOT NULL) AS abuses,
           list(DISTINCT tagpack ORDER BY tagpack) AS tagpacks,
           list(tag_id ORDER BY tag_id) AS evidence,
           bool_or(actor IS NOT NULL) AS any_actor
    FROM t GROUP BY cluster_id
),
supporting AS (
    SELECT t.*, CASE WHEN p.any_actor THEN t.actor ELSE t.label END AS claim
    FROM t JOIN per_cluster p USING (cluster_id)
    WHERE NOT p.any_actor OR t.actor IS NOT NULL
),
per_source AS (
    SELECT cluster_id, claim, src, max(confidence_level) AS level, count(*) AS n
    FROM supporting GROUP BY ALL
),
support AS (
    SELECT cluster_id, claim,
           round(100 * (1 - product(1 - level / 100.0)))::SMALLINT AS confidence,
           sum(n) AS n
    FROM per_source GROUP BY ALL
),
best AS (
    SELECT cluster_id, claim, confidence FROM (
        SELECT *, row_number() OVER (
            PARTITION BY cluster_id ORDER BY confidence DESC, n DESC, claim) AS rank
        FROM support)
    WHERE rank = 1
),
best_tags AS (
    SELECT s.cluster_id,
           mode(s.label ORDER BY s.label) AS label,
           mode(s.category ORDER BY s.category) FILTER (WHERE s.category IS NOT NULL)
               AS category
    FROM supporting s JOIN best b ON b.cluster_id = s.cluster_id AND b.claim = s.claim
    GROUP BY s.cluster_id
)
SELECT p.cluster_id,
       CASE WHEN p.any_actor THEN b.claim END AS actor,
       bt.label, bt.category, b.confidence,
       p.n_tagged_addresses, p.n_tags,
       coalesce(p.actors, []) AS actors, p.labels,
       coalesce(p.categories, []) AS categories, coalesce(p.abuses, []) AS abuses,
       p.tagpacks, p.evidence,
       (len(coalesce(p.actors, [])) > 1 OR len(coalesce(p.categories, [])) > 1
        OR (len(coalesce(p.abuses, [])) > 0
            AND (len(coalesce(p.categories, [])) > 0 OR len(coalesce(p.actors, [])) > 0)))
           AS candidate
FROM per_cluster p JOIN best b USING (cluster_id) JOIN best_tags bt USING (cluster_id)
ORDER BY p.cluster_id
"""

_CLAIMS_SQL = """
SELECT cluster_id, actor, category, abuse, list(tag_id ORDER BY tag_id) AS tag_ids
FROM tagged WHERE cluster_id IN (SELECT unnest(?::BIGINT[]))
GROUP BY ALL ORDER BY ALL
"""


def compute_cluster_tags(
    tagged: pa.Table,
    clusters: Clusters,
    *,
    n_addresses: int,
    taxonomy: Taxonomy | None = None,
    actors: pa.Table | None = None,
) -> pa.Table:
    """One attribution row per cluster from tags that carry an `address_id` (pure function).

    `tagged` needs the columns tag_id, address_id, actor, label, category, abuse,
    confidence_level, tagpack, source; `actors` (id, label, categories) names actors and gives
    the categories used by the `abuse_on_vasp` rule. Rows come sorted by cluster id.
    """
    taxonomy = taxonomy or Taxonomy.default()
    schema = storage.CLUSTER_TAG_SCHEMA
    if tagged.num_rows == 0:
        return schema.empty_table()
    cluster_ids = clusters.clusters_of(tagged.column("address_id").to_numpy())
    tagged = tagged.append_column("cluster_id", pa.array(cluster_ids, pa.int64()))
    con = duckdb.connect(":memory:")
    try:
        con.register("tagged", tagged)
        result = con.sql(_SQL).to_arrow_table()
        candidates = result.filter(result.column("candidate")).column("cluster_id").to_pylist()
        claims: dict[int, list[Claim]] = {}
        if candidates:
            rows = con.sql(_CLAIMS_SQL, params=[candidates]).to_arrow_table().to_pylist()
            for r in rows:
                claims.setdefault(r["cluster_id"], []).append(
                    Claim.of(taxonomy, r["actor"], r["category"], r["abuse"], r["tag_ids"])
                )
    finally:
        con.close()
    actor_label: dict[str, str] = {}
    actor_categories: dict[str, list[str]] = {}
    if actors is not None and actors.num_rows:
        for a in actors.select(["id", "label", "categories"]).to_pylist():
            actor_label[a["id"]] = a["label"]
            actor_categories[a["id"]] = a["categories"] or []
    n = result.num_rows
    conflict = np.zeros(n, bool)
    kinds: list[list[str]] = [[] for _ in range(n)]
    texts: list[list[str]] = [[] for _ in range(n)]
    conflicting: list[list[str]] = [[] for _ in range(n)]
    index_of = {cid: i for i, cid in enumerate(result.column("cluster_id").to_pylist())}
    for cid, cl in claims.items():
        i = index_of[cid]
        involved: set[int] = set()
        for (ia, a), (ib, b) in combinations(enumerate(cl), 2):
            found = conflict_between(a, b, taxonomy, actor_categories)
            if not found:
                continue
            involved.update((ia, ib))
            kinds[i].extend(k for k in found if k not in kinds[i])
            texts[i].append(f"{', '.join(found)}: {a.describe()} vs {b.describe()}")
        if involved:
            conflict[i] = True
            conflicting[i] = sorted({t for j in involved for t in cl[j].tag_ids})
    cluster_col = result.column("cluster_id").to_numpy()
    sizes = clusters.sizes(cluster_col, n_addresses)
    actor_col = result.column("actor").to_pylist()
    out = {
        "cluster_id": result.column("cluster_id"),
        "actor": result.column("actor"),
        "actor_label": pa.array(
            [actor_label.get(a) if a else None for a in actor_col], pa.string()
        ),
        "label": result.column("label"),
        "category": result.column("category"),
        "confidence": result.column("confidence"),
        "n_tagged_addresses": result.column("n_tagged_addresses"),
        "n_tags": result.column("n_tags"),
        "n_addresses": pa.array(sizes, pa.int64()),
        "actors": result.column("actors"),
        "labels": result.column("labels"),
        "categories": result.column("categories"),
        "abuses": result.column("abuses"),
        "tagpacks": result.column("tagpacks"),
        "evidence": result.column("evidence"),
        "conflict": pa.array(conflict),
        "conflict_kinds": pa.array(kinds, pa.list_(pa.string())),
        "conflicts": pa.array(texts, pa.list_(pa.string())),
        "conflicting_tags": pa.array(conflicting, pa.list_(pa.string())),
        "clusters_generation": pa.array([clusters.generation] * n, pa.int64()),
    }
    return pa.table(out).cast(schema)


def _tagged(data_dir: Path, manifest: dict[str, Any]) -> pa.Table:
    """Current tags that have a store address id (the join of tags and address ids)."""
    tags = storage.current_tags(data_dir, manifest, _TAG_COLUMNS)
    ids_entry = manifest.get("address_ids")
    if ids_entry is None or tags.num_rows == 0:
        return tags.append_column("address_id", pa.array([], pa.int64())).slice(0, 0)
    ids = storage.read_pack(data_dir, ids_entry["file"])
    joined = tags.join(ids, "address", join_type="inner", use_threads=False)
    return joined


def _actors(data_dir: Path, manifest: dict[str, Any]) -> pa.Table | None:
    tables = [
        storage.read_pack(data_dir, p["file"], ["id", "label", "categories"])
        for _, p in sorted(manifest["actorpacks"].items())
    ]
    return pa.concat_tables(tables) if tables else None


def refresh_cluster_tags(data_dir: Path, manifest: dict[str, Any], force: bool = False) -> bool:
    """Recompute cluster attribution when clusters, store or tags changed; True if it did."""
    state = storage.store_state(data_dir)
    want = {
        "clusters_generation": clusters_generation(data_dir),
        "store": state,
        "tags_version": manifest["version"],
    }
    current = manifest.get("cluster_tags")
    if not force and current is not None and {k: current.get(k) for k in want} == want:
        return False
    if state is None:
        if current is None:
            return False
        manifest["cluster_tags"] = None
        return True
    refresh_address_ids(data_dir, manifest)
    clusters = Clusters.or_singletons(data_dir)
    table = compute_cluster_tags(
        _tagged(data_dir, manifest),
        clusters,
        n_addresses=int(state["addresses"]),
        actors=_actors(data_dir, manifest),
    )
    gen = "none" if want["clusters_generation"] is None else want["clusters_generation"]
    rel = (
        f"derived/cluster_tags-v{manifest['version']:06d}-g{gen}-e{state['epoch']}"
        f"-a{state['addresses']}.parquet"
    )
    # small row groups: a lookup by cluster id decodes one group's evidence lists, not all
    storage.write_table(storage.stage_dir(data_dir) / rel, table, row_group_size=256)
    _retire(data_dir, "cluster_tags", {rel, current["file"] if current else None})
    manifest["cluster_tags"] = {
        **want,
        "file": rel,
        "clusters": table.num_rows,
        "conflicts": int(pc.sum(table.column("conflict")).as_py() or 0),
        "computed_at": storage.now().isoformat(),
    }
    return True


def _is_stale(data_dir: Path, manifest: dict[str, Any]) -> bool:
    state = storage.store_state(data_dir)
    ids = manifest.get("address_ids")
    if state is None:
        return ids is not None or manifest.get("cluster_tags") is not None
    if ids is None or ids.get("store") != state or ids.get("tags_version") != manifest["version"]:
        return True
    ct = manifest.get("cluster_tags")
    return (
        ct is None
        or ct.get("store") != state
        or ct.get("tags_version") != manifest["version"]
        or ct.get("clusters_generation") != clusters_generation(data_dir)
    )


def ensure_fresh(data_dir: Path) -> dict[str, Any]:
    """The stage manifest, after recomputing address ids and cluster attribution if stale.

    Readers call this: a new ingest, a new clustering generation or new tags since the last
    computation make `tags list --cluster`, `entity` and the `cluster_tags` view current again.
    """
    data_dir = Path(data_dir)
    manifest = storage.read_manifest(data_dir)
    if manifest["version"] == 0 or not _is_stale(data_dir, manifest):
        return manifest
    with storage.locked(data_dir):
        manifest = storage.read_manifest(data_dir)
        changed = refresh_address_ids(data_dir, manifest)
        changed = refresh_cluster_tags(data_dir, manifest) or changed
        if changed:
            storage.write_manifest(data_dir, manifest)
    return manifest


def recompute_cluster_tags(data_dir: Path) -> pa.Table:
    """Recompute (and publish) the attribution of every tagged cluster; returns the table.

    The clustering stage calls this after publishing a new generation; readers call
    `ensure_fresh`, which recomputes only when something changed.
    """
    data_dir = Path(data_dir)
    with storage.locked(data_dir):
        manifest = storage.read_manifest(data_dir)
        refresh_address_ids(data_dir, manifest)
        refresh_cluster_tags(data_dir, manifest, force=True)
        storage.write_manifest(data_dir, manifest)
    entry = manifest.get("cluster_tags")
    if entry is None:
        return storage.CLUSTER_TAG_SCHEMA.empty_table()
    return storage.read_pack(data_dir, entry["file"])


def address_actor_codes(data_dir: Path) -> tuple[np.ndarray, list[str]]:
    """The actor of each store address id as a code (-1: none, -2: tags name several actors),
    and the actor names by code: the `attribution` input of `cluster_store`, whose guard refuses
    to merge large clusters of different actors.

    Example::

        codes, names = address_actor_codes(data_dir)
        cluster_store(data_dir, attribution=codes)
    """
    data_dir = Path(data_dir)
    manifest = ensure_fresh(data_dir)
    state = storage.store_state(data_dir)
    n_addr = 0 if state is None else int(state["addresses"])
    codes = np.full(n_addr, -1, np.int32)
    tagged = _tagged(data_dir, manifest)
    tagged = tagged.filter(pc.is_valid(tagged.column("actor")))
    if n_addr == 0 or tagged.num_rows == 0:
        return codes, []
    names = sorted(set(tagged.column("actor").to_pylist()))
    code_of = {name: i for i, name in enumerate(names)}
    ids = tagged.column("address_id").to_numpy()
    actor_codes = np.array([code_of[a] for a in tagged.column("actor").to_pylist()], np.int32)
    order = np.lexsort((actor_codes, ids))
    ids, actor_codes = ids[order], actor_codes[order]
    first = np.ones(ids.shape[0], bool)
    first[1:] = ids[1:] != ids[:-1]
    starts = np.flatnonzero(first)
    lo = np.minimum.reduceat(actor_codes, starts)
    hi = np.maximum.reduceat(actor_codes, starts)
    inside = ids[starts] < n_addr
    codes[ids[starts][inside]] = np.where(lo == hi, lo, -2)[inside]
    return codes, names
