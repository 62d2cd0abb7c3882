"""Read GraphSense TagPacks and ActorPacks (YAML) into validated columns, with file and line.

A TagPack is a header (title, creator, description, is_public, and any tag field: label,
source, currency, category, confidence, actor, ...) plus a `tags:` list; every header field
except title/description/owner applies to each tag unless the tag sets it itself. An ActorPack
is a header plus an `actors:` list of {id, label, uri, categories, jurisdictions, context,
aliases, lastmod}. Both formats are defined by `taxonomies/graphsense/*_schema.yaml`
(graphsense-lib); this module implements them for `chainsleuth.tags.imports`, which decides
what is stored.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from chainsleuth.tags.model import ACTOR_SCHEMA, Problem
from chainsleuth.tags.taxonomy import Taxonomy
from chainsleuth.tags.validate import HEADER_FIELDS, TAG_FIELDS, TagColumns
from chainsleuth.tags.yamlread import LineDict, YamlError, load_with_lines

__all__ = ["ParsedActorPack", "ParsedFile", "pack_name", "parse_yaml_file", "read_tagpack"]

# header fields that describe the pack, not its tags (everything else is inherited)
_NOT_INHERITED = frozenset(("title", "description", "owner", "tags", "actors"))
_ACTOR_FIELDS = frozenset(
    ("id", "label", "uri", "lastmod", "categories", "jurisdictions", "context", "aliases")
)


def pack_name(path: Path) -> str:
    """The id of a pack file: its path below the nearest `packs`/`actors` folder, no suffix.

    `pack_name(Path("repo/packs/sub/ofac.yaml")) == "sub/ofac"`; a file outside such a folder
    is named by its stem. Re-importing a file with the same id replaces that pack's tags.
    """
    path = Path(path)
    parts = path.with_suffix("").parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in ("packs", "actors"):
            return "/".join(parts[i + 1 :])
    return path.stem


class ParsedFile:
    """A YAML file read with line numbers; `kind` is "tagpack", "actorpack" or None (error)."""

    def __init__(self, path: Path, doc: Any, problem: Problem | None) -> None:
        self.path = path
        self.doc = doc
        self.problem = problem
        self.kind: str | None = None
        if problem is None and isinstance(doc, LineDict):
            if isinstance(doc.get("tags"), list):
                self.kind = "tagpack"
            elif isinstance(doc.get("actors"), list):
                self.kind = "actorpack"
        if self.kind is None and self.problem is None:
            self.problem = Problem(
                str(path),
                getattr(doc, "line", 1) or 1,
                "not_a_pack",
                "neither a TagPack (a mapping with a `tags:` list) nor an ActorPack "
                "(`actors:` list)",
            )


def parse_yaml_file(path: Path) -> ParsedFile:
    """Read and parse one file; a YAML or I/O error becomes the file's problem."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return ParsedFile(path, None, Problem(str(path), 0, "unreadable", str(e)))
    try:
        doc = load_with_lines(data)
    except YamlError as e:
        return ParsedFile(path, None, Problem(str(path), e.line, "yaml_error", str(e)))
    return ParsedFile(path, doc, None)


def _missing_header(parsed: ParsedFile, fields: tuple[str, ...]) -> Problem | None:
    doc = parsed.doc
    missing = [f for f in fields if not isinstance(doc.get(f), str) or not doc.get(f).strip()]
    if missing:
        return Problem(
            str(parsed.path),
            doc.line,
            "missing_header_field",
            f"the pack header has no {', '.join(missing)} (mandatory); the pack is not imported",
        )
    return None


def read_tagpack(
    parsed: ParsedFile,
    *,
    tagpack: str,
    network: str,
    taxonomy: Taxonomy,
    known_actors: frozenset[str] | set[str],
    created_at: dt.datetime,
) -> tuple[TagColumns, list[Problem], int]:
    """Validate every tag of a parsed TagPack: (columns, pack-level problems, tags in the file).

    When a pack-level problem is returned (no title or creator), no tag is kept.
    """
    doc = parsed.doc
    file = str(parsed.path)
    tags = doc["tags"]
    columns = TagColumns(
        tagpack=tagpack,
        origin="tagpack",
        file=file,
        network=network,
        taxonomy=taxonomy,
        known_actors=known_actors,
        created_at=created_at,
        created_by=None,
    )
    problem = _missing_header(parsed, ("title", "creator"))
    if problem is not None:
        return columns, [problem], len(tags)
    header = {k: v for k, v in doc.items() if k not in _NOT_INHERITED}
    header_lines = doc.key_lines
    for key in doc:
        if key not in TAG_FIELDS and key not in HEADER_FIELDS:
            columns.warn_once(
                header_lines.get(key, doc.line),
                "unknown_field",
                str(key),
                f"header field {key!r} is not in the TagPack schema (ignored)",
            )
    add = columns.add
    for tag in tags:
        if not isinstance(tag, LineDict):
            columns.invalid += 1
            columns.problems.append(
                Problem(
                    file,
                    getattr(tag, "line", doc.key_lines.get("tags", 0)),
                    "bad_field_type",
                    "a tag must be a mapping",
                )
            )
            continue
        merged = dict(header)
        merged.update(tag)
        lines = tag.key_lines

        def line_of(name: str, _lines: dict[Any, int] = lines) -> int:
            line = _lines.get(name)
            return line if line is not None else header_lines.get(name, 0)

        for key in tag:
            if key not in TAG_FIELDS:
                columns.warn_once(
                    lines.get(key, tag.line),
                    "unknown_field",
                    str(key),
                    f"tag field {key!r} is not in the TagPack schema (ignored)",
                )
        add(merged, tag.line, line_of)
    return columns, [], len(tags)


class ParsedActorPack:
    """The actors of an ActorPack as an Arrow table (ACTOR_SCHEMA), with problems."""

    def __init__(self, table: pa.Table, problems: list[Problem], n_read: int) -> None:
        self.table = table
        self.problems = problems
        self.n_read = n_read


def _str_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def read_actorpack(
    parsed: ParsedFile, *, actorpack: str, taxonomy: Taxonomy, imported_at: dt.datetime
) -> ParsedActorPack:
    """Validate the actors of a parsed ActorPack.

    Errors (the actor is left out): a missing id, label, uri or categories, or a field of the
    wrong type. Warnings (kept as written): a category outside the concept taxonomy, a
    jurisdiction that is no ISO 3166 code, an id defined twice (the first is kept).
    """
    doc = parsed.doc
    file = str(parsed.path)
    problems: list[Problem] = []
    cols: dict[str, list[Any]] = {name: [] for name in ACTOR_SCHEMA.names}
    header_problem = _missing_header(parsed, ("title", "creator"))
    actors = doc["actors"]
    if header_problem is not None:
        return ParsedActorPack(ACTOR_SCHEMA.empty_table(), [header_problem], len(actors))
    creator = doc["creator"]
    header_lastmod = doc.get("lastmod")
    warned: set[tuple[str, str]] = set()
    seen: set[str] = set()

    def warn(line: int, code: str, value: str, message: str) -> None:
        if (code, value) not in warned:
            warned.add((code, value))
            problems.append(Problem(file, line, code, message, "warning"))

    for actor in actors:
        if not isinstance(actor, LineDict):
            problems.append(Problem(file, doc.line, "bad_field_type", "an actor must be a mapping"))
            continue
        line = actor.line
        missing = [
            f for f in ("id", "label", "uri") if not isinstance(actor.get(f), str) or not actor[f]
        ]
        # mandatory means present: 447 public actors have `categories: []`, which the
        # GraphSense validator accepts too
        categories = _str_list(actor.get("categories")) if "categories" in actor else None
        if categories is None:
            missing.append("categories")
        if missing:
            problems.append(
                Problem(
                    file,
                    line,
                    "missing_actor_field",
                    f"actor {actor.get('id')!r} has no {', '.join(missing)} (mandatory)",
                )
            )
            continue
        assert categories is not None
        jurisdictions = _str_list(actor.get("jurisdictions"))
        aliases = _str_list(actor.get("aliases"))
        if jurisdictions is None or aliases is None:
            problems.append(
                Problem(
                    file, line, "bad_field_type", "jurisdictions and aliases must be text lists"
                )
            )
            continue
        actor_id = actor["id"]
        if actor_id in seen:
            warn(line, "duplicate_actor", actor_id, f"actor {actor_id!r} is defined twice")
            continue
        seen.add(actor_id)
        for c in categories:
            if c not in taxonomy.concepts:
                warn(
                    actor.key_lines.get("categories", line),
                    "unknown_category",
                    c,
                    f"actor category {c!r} is not a concept of the taxonomy (kept as written)",
                )
        for j in jurisdictions:
            if j not in taxonomy.countries:
                warn(
                    actor.key_lines.get("jurisdictions", line),
                    "unknown_jurisdiction",
                    j,
                    f"jurisdiction {j!r} is not an ISO 3166 country code (kept as written)",
                )
        for key in actor:
            if key not in _ACTOR_FIELDS:
                warn(
                    actor.key_lines.get(key, line),
                    "unknown_field",
                    str(key),
                    f"actor field {key!r} is not in the ActorPack schema (ignored)",
                )
        context = actor.get("context")
        if context is not None and not isinstance(context, str):
            context = json.dumps(context, sort_keys=True, default=str)
        lastmod = actor.get("lastmod", header_lastmod)
        cols["id"].append(actor_id)
        cols["label"].append(actor["label"])
        cols["uri"].append(actor["uri"])
        cols["categories"].append(categories)
        cols["jurisdictions"].append(jurisdictions)
        cols["aliases"].append(aliases)
        cols["context"].append(context)
        cols["lastmod"].append(None if lastmod is None else str(lastmod))
        cols["actorpack"].append(actorpack)
        cols["created_by"].append(creator)
        cols["imported_at"].append(imported_at)
        cols["pack_file"].append(file)
        cols["pack_line"].append(line)
    table = pa.table(cols, schema=ACTOR_SCHEMA).sort_by("id")
    return ParsedActorPack(table, problems, len(actors))
