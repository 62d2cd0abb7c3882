"""Import tags into the store: GraphSense TagPacks and ActorPacks, CSV files, analysts' tags.

Every import validates with the same rules (`validate.py`), writes each changed pack as a new
parquet file, and publishes a new version of `DATA/tags/manifest.json`; a pack whose content is
unchanged writes nothing, so re-importing is idempotent. A pack is identified by its name
(`packs.pack_name`: its path below `packs/`, or `csv/<stem>`, or `analyst`): importing a pack of
the same name again replaces its tags, keeping each unchanged tag's first `created_at`. After
the import the address ids (when a store exists) and the cluster attribution are brought up to
date.

Example::

    report = import_tagpacks(Path("chainsleuth-data"), [Path("graphsense-tagpacks/packs")])
    print(report)   # 498,395 tags imported ..., skipped: 3,465 non_btc; 932 invalid; ...
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.core.files import sha256_file
from chainsleuth.tags import storage
from chainsleuth.tags.model import ImportReport, PackSummary, Problem
from chainsleuth.tags.packs import (
    ParsedFile,
    pack_name,
    parse_yaml_file,
    read_actorpack,
    read_tagpack,
)
from chainsleuth.tags.taxonomy import Taxonomy
from chainsleuth.tags.validate import TagColumns

__all__ = [
    "ANALYST_PACK",
    "DEFAULT_ANALYST_CONFIDENCE",
    "TagError",
    "add_tag",
    "drop_pack",
    "import_csv",
    "import_tagpacks",
    "remove_tags",
]

#: the pack that holds tags added one by one with `add_tag` / `chainsleuth tags add`
ANALYST_PACK = "analyst"
#: the confidence of an analyst's tag when none is given: "Creator retrieved address as part of
#: a forensic investigation" (confidence taxonomy, level 70)
DEFAULT_ANALYST_CONFIDENCE = "forensic_investigation"

# columns that make up a pack's content (not when or from where it was imported)
_CONTENT = [
    "tag_id",
    "address",
    "label",
    "category",
    "abuse",
    "actor",
    "confidence",
    "source",
    "lastmod",
    "is_public",
    "is_cluster_definer",
    "context",
    "network",
    "tag_type",
    "concepts",
    "created_by",
]
_YAML = (".yaml", ".yml")


class TagError(ChainsleuthError):
    """A tag or an import that cannot be accepted (the message lists why)."""


def _content_sha256(table: pa.Table, columns: list[str]) -> str:
    sink = io.BytesIO()
    subset = table.select(columns)
    with ipc.new_stream(sink, subset.schema) as writer:
        writer.write_table(subset)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def _expand(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _YAML)
            )
        elif path.exists():
            files.append(path)
        else:
            raise TagError(f"{path}: no such file or directory")
    return files


def _known_actors(data_dir: Path, manifest: dict[str, Any]) -> set[str]:
    ids: set[str] = set()
    for p in manifest["actorpacks"].values():
        ids.update(storage.read_pack(data_dir, p["file"], ["id"]).column("id").to_pylist())
    return ids


class _Commit:
    """Collects new pack versions, then writes them and the manifest in one step."""

    def __init__(self, data_dir: Path, manifest: dict[str, Any], by: str) -> None:
        self.data_dir = data_dir
        self.manifest = manifest
        self.version = int(manifest["version"]) + 1
        self.by = by
        self.changes: list[dict[str, Any]] = []

    def tags(
        self, name: str, kind: str, table: pa.Table, summary: PackSummary, meta: dict[str, Any]
    ) -> None:
        """Stage `table` as the new content of pack `name` unless it is unchanged."""
        previous = self.manifest["packs"].get(name)
        content = _content_sha256(table, _CONTENT)
        summary.rows = table.num_rows
        if previous is not None and previous.get("content_sha256") == content:
            summary.unchanged = True
            return
        if previous is not None:
            old = storage.read_pack(self.data_dir, previous["file"], ["tag_id", "created_at"])
            where = pc.index_in(table.column("tag_id"), value_set=old.column("tag_id"))
            kept = pc.is_valid(where)
            old_created = pc.take(old.column("created_at"), where)
            created = pc.if_else(kept, old_created, table.column("created_at"))
            table = table.set_column(
                table.schema.get_field_index("created_at"), "created_at", created
            )
            summary.added = table.num_rows - int(pc.sum(kept).as_py() or 0)
            summary.removed = old.num_rows - int(pc.sum(kept).as_py() or 0)
        else:
            summary.added = table.num_rows
        rel = storage.pack_file(name, self.version)
        storage.write_table(storage.stage_dir(self.data_dir) / rel, table)
        self.manifest["packs"][name] = {
            **meta,
            "kind": kind,
            "file": rel,
            "rows": table.num_rows,
            "version": self.version,
            "content_sha256": content,
            "imported_at": storage.now().isoformat(),
            "imported_by": self.by,
        }
        self.changes.append(
            {
                "pack": name,
                "kind": kind,
                "file": rel,
                "previous_file": previous["file"] if previous else None,
                "rows": table.num_rows,
                "added": summary.added,
                "removed": summary.removed,
            }
        )

    def actors(
        self, name: str, table: pa.Table, summary: PackSummary, meta: dict[str, Any]
    ) -> None:
        previous = self.manifest["actorpacks"].get(name)
        content = _content_sha256(
            table, ["id", "label", "uri", "categories", "jurisdictions", "aliases", "context"]
        )
        summary.rows = table.num_rows
        if previous is not None and previous.get("content_sha256") == content:
            summary.unchanged = True
            return
        rel = storage.pack_file(name, self.version, kind="actors")
        storage.write_table(storage.stage_dir(self.data_dir) / rel, table)
        old_rows = previous["rows"] if previous else 0
        summary.added = max(table.num_rows - old_rows, 0)
        self.manifest["actorpacks"][name] = {
            **meta,
            "file": rel,
            "rows": table.num_rows,
            "version": self.version,
            "content_sha256": content,
            "imported_at": storage.now().isoformat(),
            "imported_by": self.by,
        }
        self.changes.append(
            {
                "pack": name,
                "kind": "actorpack",
                "file": rel,
                "previous_file": previous["file"] if previous else None,
                "rows": table.num_rows,
            }
        )

    def remove(self, name: str) -> None:
        previous = self.manifest["packs"].pop(name)
        self.changes.append(
            {
                "pack": name,
                "kind": previous.get("kind"),
                "file": None,
                "previous_file": previous["file"],
                "rows": 0,
                "added": 0,
                "removed": previous["rows"],
            }
        )

    def finish(self, action: str, recompute: bool) -> int:
        """Write the manifest (when anything changed) and refresh derived data; the version."""
        if not self.changes:
            if recompute:
                _refresh_derived(self.data_dir, self.manifest, force_write=False)
            return int(self.manifest["version"])
        m = self.manifest
        m["version"] = self.version
        m["history"].append(
            {
                "version": self.version,
                "at": storage.now().isoformat(),
                "by": self.by,
                "action": action,
                "changes": self.changes,
                "packs": {n: p["file"] for n, p in sorted(m["packs"].items())},
                "actorpacks": {n: p["file"] for n, p in sorted(m["actorpacks"].items())},
            }
        )
        m["tagpacks_file"] = storage.write_tagpacks_table(self.data_dir, m)
        _refresh_derived(self.data_dir, m, force_write=True, recompute_clusters=recompute)
        return self.version


def _refresh_derived(
    data_dir: Path, manifest: dict[str, Any], force_write: bool, recompute_clusters: bool = True
) -> None:
    """Bring address ids and cluster attribution up to date, then write the manifest."""
    from chainsleuth.tags.attribution import refresh_address_ids, refresh_cluster_tags

    changed = refresh_address_ids(data_dir, manifest)
    if recompute_clusters:
        changed = refresh_cluster_tags(data_dir, manifest) or changed
    if changed or force_write:
        storage.write_manifest(data_dir, manifest)


def import_tagpacks(
    data_dir: Path,
    paths: Sequence[Path],
    *,
    taxonomy: Taxonomy | None = None,
    network: str | None = None,
    imported_by: str | None = None,
    recompute: bool = True,
) -> ImportReport:
    """Import TagPacks and ActorPacks (files or directories, searched for *.yaml) and CSV files.

    ActorPacks are read first, so tags of the same import resolve their actors. Invalid tags
    are listed in `report.problems` with file and line and do not stop the rest. Tags are
    validated for `network` (default: the store's, else "main").

    Example::

        report = import_tagpacks(data_dir, [Path("packs/ofac.yaml")])
        report.imported, report.skipped_non_btc, report.invalid
    """
    started = time.perf_counter()
    data_dir = Path(data_dir)
    taxonomy = taxonomy or Taxonomy.default()
    network = network or storage.store_network(data_dir)
    by = imported_by or storage.current_user()
    files = _expand(paths)
    csv_files = [f for f in files if f.suffix.lower() == ".csv"]
    yaml_files = [f for f in files if f.suffix.lower() != ".csv"]
    report = ImportReport()
    parsed: list[ParsedFile] = [parse_yaml_file(f) for f in yaml_files]
    with storage.locked(data_dir):
        manifest = storage.read_manifest(data_dir)
        commit = _Commit(data_dir, manifest, by)
        created_at = storage.now()
        for p in parsed:
            if p.problem is not None:
                report.problems.append(p.problem)
                report.packs.append(PackSummary(str(p.path), pack_name(p.path), "?", rejected=True))
        for p in parsed:
            if p.kind != "actorpack":
                continue
            name = pack_name(p.path)
            actors = read_actorpack(p, actorpack=name, taxonomy=taxonomy, imported_at=created_at)
            report.problems.extend(actors.problems)
            summary = PackSummary(str(p.path), name, "actorpack")
            report.packs.append(summary)
            if any(pr.code == "missing_header_field" for pr in actors.problems):
                summary.rejected = True
                continue
            report.actors += actors.table.num_rows
            commit.actors(name, actors.table, summary, _meta(p))
        known = _known_actors(data_dir, manifest)
        for p in parsed:
            if p.kind != "tagpack":
                continue
            name = pack_name(p.path)
            columns, pack_problems, n_tags = read_tagpack(
                p,
                tagpack=name,
                network=network,
                taxonomy=taxonomy,
                known_actors=known,
                created_at=created_at,
            )
            summary = PackSummary(str(p.path), name, "tagpack")
            report.packs.append(summary)
            if pack_problems:
                report.problems.extend(pack_problems)
                report.invalid += n_tags
                summary.rejected = True
                continue
            _account(report, columns)
            commit.tags(name, "tagpack", columns.table(), summary, _meta(p))
        for f in csv_files:
            summary = PackSummary(str(f), f"csv/{f.stem}", "csv")
            report.packs.append(summary)
            columns = _read_csv(
                f,
                pack=summary.name,
                network=network,
                taxonomy=taxonomy,
                known_actors=known,
                created_by=by,
                default_confidence=None,
                default_source=None,
            )
            _account(report, columns)
            if any(pr.code in ("missing_header_field", "unreadable") for pr in columns.problems):
                summary.rejected = True
                continue
            commit.tags(summary.name, "csv", columns.table(), summary, _csv_meta(f, by))
        report.version = commit.finish("import", recompute)
    report.seconds = time.perf_counter() - started
    return report


def _account(report: ImportReport, columns: TagColumns) -> None:
    columns.finish()
    report.imported += len(columns)
    report.invalid += columns.invalid
    report.duplicates += columns.duplicates
    for why, n in columns.skipped.items():
        report.skipped[why] += n
    report.problems.extend(columns.problems)


def _meta(p: ParsedFile) -> dict[str, Any]:
    doc = p.doc
    return {
        "source_file": str(Path(p.path).resolve()),
        "sha256": sha256_file(p.path),
        "title": doc.get("title"),
        "creator": doc.get("creator"),
        "description": doc.get("description"),
    }


def _csv_meta(path: Path, by: str) -> dict[str, Any]:
    return {
        "source_file": str(Path(path).resolve()),
        "sha256": sha256_file(path),
        "title": Path(path).name,
        "creator": by,
        "description": "CSV import",
    }


# ---------------------------------------------------------------------------------- CSV
CSV_COLUMNS = (
    "address",
    "label",
    "source",
    "category",
    "abuse",
    "actor",
    "confidence",
    "context",
    "created_by",
    "lastmod",
    "currency",
    "network",
    "is_public",
    "tag_type",
)
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f", ""}


def _same_line(line: int) -> Callable[[str], int]:
    """In a CSV row every field is on the row's line."""

    def line_of(_name: str) -> int:
        return line

    return line_of


def _read_csv(
    path: Path,
    *,
    pack: str,
    network: str,
    taxonomy: Taxonomy,
    known_actors: set[str],
    created_by: str,
    default_confidence: str | None,
    default_source: str | None,
) -> TagColumns:
    columns = TagColumns(
        tagpack=pack,
        origin="analyst",
        file=str(path),
        network=network,
        taxonomy=taxonomy,
        known_actors=known_actors,
        created_at=storage.now(),
        created_by=created_by,
    )
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        columns.problems.append(Problem(str(path), 0, "unreadable", str(e)))
        return columns
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        columns.problems.append(Problem(str(path), 1, "missing_header_field", "empty CSV file"))
        return columns
    missing = [c for c in ("address", "label") if c not in header]
    if missing:
        columns.problems.append(
            Problem(
                str(path),
                1,
                "missing_header_field",
                f"the CSV header has no {', '.join(missing)} column (needs address, label, "
                "source; optional: " + ", ".join(CSV_COLUMNS[3:]) + ")",
            )
        )
        return columns
    for h in header:
        if h not in CSV_COLUMNS:
            columns.warn_once(1, "unknown_field", h, f"CSV column {h!r} is not known (ignored)")
    line = reader.line_num + 1
    for row in reader:
        row_line, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        t: dict[str, Any] = {}
        for name, cell in zip(header, row, strict=False):
            cell = cell.strip()
            if name in ("is_public",):
                low = cell.lower()
                t[name] = True if low in _TRUE else False if low in _FALSE else cell
            elif cell:
                t[name] = cell
        t.setdefault("currency", "BTC")
        if default_confidence is not None:
            t.setdefault("confidence", default_confidence)
        if default_source is not None:
            t.setdefault("source", default_source)
        t["creator"] = t.pop("created_by", None) or created_by
        columns.add(t, row_line, _same_line(row_line))
    return columns


def import_csv(
    data_dir: Path,
    path: Path,
    *,
    name: str | None = None,
    created_by: str | None = None,
    confidence: str | None = None,
    source: str | None = None,
    taxonomy: Taxonomy | None = None,
    recompute: bool = True,
) -> ImportReport:
    """Import analysts' tags from a CSV file (a header row; columns in `CSV_COLUMNS`).

    Needs `address` and `label` columns, and `source` and `confidence` per row unless given
    here as defaults. The file becomes the pack `csv/<name or stem>`: importing it again
    replaces its tags.

    Example::

        import_csv(data_dir, Path("case-17.csv"), confidence="forensic_investigation")
    """
    started = time.perf_counter()
    data_dir = Path(data_dir)
    path = Path(path)
    taxonomy = taxonomy or Taxonomy.default()
    by = created_by or storage.current_user()
    pack = f"csv/{name or path.stem}"
    report = ImportReport()
    with storage.locked(data_dir):
        manifest = storage.read_manifest(data_dir)
        columns = _read_csv(
            path,
            pack=pack,
            network=storage.store_network(data_dir),
            taxonomy=taxonomy,
            known_actors=_known_actors(data_dir, manifest),
            created_by=by,
            default_confidence=confidence,
            default_source=source,
        )
        _account(report, columns)
        summary = PackSummary(str(path), pack, "csv")
        report.packs.append(summary)
        commit = _Commit(data_dir, manifest, by)
        if any(p.code in ("missing_header_field", "unreadable") for p in columns.problems):
            summary.rejected = True
        else:
            commit.tags(pack, "csv", columns.table(), summary, _csv_meta(path, by))
        report.version = commit.finish("import_csv", recompute)
    report.seconds = time.perf_counter() - started
    return report


# ------------------------------------------------------------------------------ analysts
def add_tag(
    data_dir: Path,
    address: str,
    *,
    label: str,
    source: str,
    category: str | None = None,
    abuse: str | None = None,
    actor: str | None = None,
    confidence: str | None = None,
    context: str | None = None,
    created_by: str | None = None,
    is_public: bool = False,
    taxonomy: Taxonomy | None = None,
    recompute: bool = True,
) -> dict[str, Any]:
    """Add (or update) one analyst's tag; returns the stored tag as a dict.

    The tag goes into the `analyst` pack with who (`created_by`, default the login name) and
    when (`created_at`). Adding the same address, label, source and actor again updates that
    tag instead of duplicating it. Raises TagError when the tag is invalid; an unknown actor
    is accepted (see `report` warnings in import_tagpacks) so that an investigator can name a
    new actor.

    Example::

        add_tag(data_dir, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", label="Satoshi",
                category="user", source="case 2024-17, exhibit 3")
    """
    data_dir = Path(data_dir)
    taxonomy = taxonomy or Taxonomy.default()
    by = created_by or storage.current_user()
    with storage.locked(data_dir):
        manifest = storage.read_manifest(data_dir)
        columns = TagColumns(
            tagpack=ANALYST_PACK,
            origin="analyst",
            file="chainsleuth tags add",
            network=storage.store_network(data_dir),
            taxonomy=taxonomy,
            known_actors=_known_actors(data_dir, manifest),
            created_at=storage.now(),
            created_by=by,
        )
        fields = {
            "address": address,
            "label": label,
            "source": source,
            "category": category,
            "abuse": abuse,
            "actor": actor,
            "confidence": confidence or DEFAULT_ANALYST_CONFIDENCE,
            "context": context,
            "is_public": is_public,
            "currency": "BTC",
            "creator": by,
            "lastmod": storage.now().date().isoformat(),
        }
        columns.add(fields, 0, lambda _name: 0)
        new = columns.table()
        if new.num_rows == 0:
            errors = [p.message for p in columns.problems if p.severity == "error"]
            raise TagError("tag not added: " + "; ".join(errors))
        previous = manifest["packs"].get(ANALYST_PACK)
        if previous is not None:
            old = storage.read_pack(data_dir, previous["file"])
            keep = pc.invert(pc.is_in(old.column("tag_id"), value_set=new.column("tag_id")))
            new = pa.concat_tables([old.filter(keep), new]).sort_by(
                [("address", "ascending"), ("tag_id", "ascending")]
            )
        summary = PackSummary("chainsleuth tags add", ANALYST_PACK, "analyst")
        commit = _Commit(data_dir, manifest, by)
        commit.tags(ANALYST_PACK, "analyst", new, summary, _analyst_meta(by))
        commit.finish("add", recompute)
    row = columns.table().to_pylist()[0]
    row["warnings"] = [p.message for p in columns.problems if p.severity == "warning"]
    row.pop("address_key", None)
    return row


def _analyst_meta(by: str) -> dict[str, Any]:
    return {
        "source_file": None,
        "sha256": None,
        "title": "Analysts' tags",
        "creator": by,
        "description": "tags added with `chainsleuth tags add`",
    }


def remove_tags(data_dir: Path, tag_ids: Sequence[str], *, removed_by: str | None = None) -> int:
    """Remove analysts' tags (`analyst` or `csv/...` packs) by tag id; the number removed.

    TagPack tags are not removed one by one: re-import the corrected pack instead. The removed
    tags stay in the history's earlier files.
    """
    data_dir = Path(data_dir)
    by = removed_by or storage.current_user()
    wanted = pa.array(list(tag_ids), pa.string())
    removed = 0
    with storage.locked(data_dir):
        manifest = storage.read_manifest(data_dir)
        commit = _Commit(data_dir, manifest, by)
        for name, p in sorted(manifest["packs"].items()):
            table = storage.read_pack(data_dir, p["file"])
            hit = pc.is_in(table.column("tag_id"), value_set=wanted)
            n = int(pc.sum(hit).as_py() or 0)
            if not n:
                continue
            if p.get("kind") == "tagpack":
                raise TagError(
                    f"tag(s) of TagPack {name!r} cannot be removed one by one; re-import the "
                    "corrected pack"
                )
            removed += n
            rest = table.filter(pc.invert(hit))
            if rest.num_rows == 0:
                commit.remove(name)
            else:
                meta = {
                    k: p.get(k)
                    for k in ("source_file", "sha256", "title", "creator", "description")
                }
                commit.tags(name, p["kind"], rest, PackSummary("", name, p["kind"]), meta)
        commit.finish("remove", True)
    return removed


def drop_pack(data_dir: Path, name: str, *, dropped_by: str | None = None) -> int:
    """Stop using a pack (TagPack, CSV or `analyst`) as of a new version; its tag count.

    Its files stay on disk and in the history. Raises TagError when no such pack is imported.
    """
    data_dir = Path(data_dir)
    by = dropped_by or storage.current_user()
    with storage.locked(data_dir):
        manifest = storage.read_manifest(data_dir)
        if name not in manifest["packs"]:
            known = ", ".join(sorted(manifest["packs"])[:10]) or "none"
            raise TagError(f"no pack named {name!r} (imported packs: {known})")
        rows = int(manifest["packs"][name]["rows"])
        commit = _Commit(data_dir, manifest, by)
        commit.remove(name)
        commit.finish("drop", True)
    return rows
