"""What an import reports (problems with file and line, counts) and the columns of stored tags.

Shared by the TagPack/ActorPack reader (`packs.py`), the CSV and analyst paths (`imports.py`) and
the storage (`storage.py`); the column lists here are the on-disk schema of the tags stage.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

__all__ = [
    "ACTOR_SCHEMA",
    "TAG_SCHEMA",
    "ImportReport",
    "PackSummary",
    "Problem",
]

#: Columns of the stored tags, one parquet file per tagpack version (sorted by address).
#: `tag_id` is stable: a hash of (tagpack, address, label, source, actor).
TAG_SCHEMA = pa.schema(
    [
        ("tag_id", pa.string()),
        ("address", pa.string()),
        ("label", pa.string()),
        ("category", pa.string()),
        ("abuse", pa.string()),
        ("actor", pa.string()),
        ("confidence", pa.string()),
        ("confidence_level", pa.int16()),
        ("source", pa.string()),
        ("tagpack", pa.string()),
        ("origin", pa.string()),  # "tagpack" or "analyst"
        ("created_by", pa.string()),
        ("created_at", pa.timestamp("ms", tz="UTC")),
        ("lastmod", pa.string()),
        ("is_public", pa.bool_()),
        ("is_cluster_definer", pa.bool_()),
        ("context", pa.string()),
        ("currency", pa.string()),
        ("network", pa.string()),
        ("tag_type", pa.string()),
        ("concepts", pa.list_(pa.string())),
        ("address_type", pa.string()),
        ("address_key", pa.binary()),  # script type code + payload, as the store indexes it
        ("pack_file", pa.string()),
        ("pack_line", pa.int32()),
    ]
)

#: Columns of the stored actors, one parquet file per ActorPack version.
ACTOR_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("label", pa.string()),
        ("uri", pa.string()),
        ("categories", pa.list_(pa.string())),
        ("jurisdictions", pa.list_(pa.string())),
        ("aliases", pa.list_(pa.string())),
        ("context", pa.string()),
        ("lastmod", pa.string()),
        ("actorpack", pa.string()),
        ("created_by", pa.string()),
        ("imported_at", pa.timestamp("ms", tz="UTC")),
        ("pack_file", pa.string()),
        ("pack_line", pa.int32()),
    ]
)


@dataclass(frozen=True)
class Problem:
    """Something wrong in an input file. Errors keep a tag (or a whole pack) out; warnings don't.

    `code` is one of a fixed set (docs/attribution.md lists them), `line` is 1-based (0 when the
    problem concerns the whole file and no line applies).
    """

    file: str
    line: int
    code: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity} {self.code}: {self.message}"


@dataclass
class PackSummary:
    """What one file contributed: its tags (or actors) and how they differ from the last import."""

    file: str
    name: str  # the tagpack (or actorpack) id
    kind: str  # "tagpack", "actorpack" or "csv"
    rows: int = 0  # valid tags (actors) now stored for this pack
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: bool = False  # same content as the stored version: nothing written
    rejected: bool = False  # a pack-level error kept the whole file out


@dataclass
class ImportReport:
    """Counts and problems of one import; `str(report)` is a one-paragraph summary.

    `imported` counts the valid Bitcoin tags read (present in the store after the import,
    whether they were new or already there); `skipped` counts tags left out on purpose by
    reason (`non_btc`: another currency); `invalid` counts tags with at least one error.
    """

    imported: int = 0
    invalid: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    actors: int = 0
    packs: list[PackSummary] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    version: int = 0
    seconds: float = 0.0

    @property
    def skipped_non_btc(self) -> int:
        return self.skipped["non_btc"]

    @property
    def added(self) -> int:
        return sum(p.added for p in self.packs if p.kind != "actorpack")

    @property
    def removed(self) -> int:
        return sum(p.removed for p in self.packs if p.kind != "actorpack")

    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def problems_by_code(self, severity: str = "error") -> Counter[str]:
        return Counter(p.code for p in self.problems if p.severity == severity)

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "added": self.added,
            "removed": self.removed,
            "skipped": dict(self.skipped),
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "actors": self.actors,
            "errors_by_code": dict(self.problems_by_code("error")),
            "warnings_by_code": dict(self.problems_by_code("warning")),
            "version": self.version,
            "seconds": round(self.seconds, 3),
            "packs": [vars(p) for p in self.packs],
            "problems": [vars(p) for p in self.problems],
        }

    def __str__(self) -> str:
        skipped = ", ".join(f"{n:,} {why}" for why, n in sorted(self.skipped.items())) or "none"
        return (
            f"{self.imported:,} tags imported ({self.added:,} new, {self.removed:,} removed), "
            f"skipped: {skipped}; {self.invalid:,} invalid; {self.actors:,} actors; "
            f"{len(self.errors()):,} errors, {len(self.warnings()):,} warnings; "
            f"version {self.version} in {self.seconds:.1f} s"
        )
