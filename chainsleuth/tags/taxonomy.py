"""The concept and confidence taxonomies that tags are validated against, and the concept tree.

A tag's `category` and `abuse` must be concepts of the GraphSense concepts taxonomy and its
`confidence` an id of the confidence taxonomy (with a level 0-100); ActorPack `jurisdictions`
are ISO 3166 codes. GraphSense's own files ship as package data
(`chainsleuth/data/taxonomies/graphsense/`, provenance and licence in the PROVENANCE.md there),
so that a bare install validates; `Taxonomy.default()` reads them with `importlib.resources`, and
`Taxonomy.from_dir` reads a newer copy in the same layout, both through the one loader `_read`.
The concept tree (`broader` links) also drives cluster attribution: which categories are
compatible (`docs/design/tags.md`).

Example::

    tax = Taxonomy.default()
    tax.level("service_data") == 50 and tax.is_a("exchange", "service")
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml

__all__ = ["Concept", "Confidence", "Taxonomy", "VASP_CONCEPTS", "shipped_taxonomy_dir"]

#: where the shipped copy came from (the folder's PROVENANCE.md says more)
SHIPPED_ORIGIN = "embedded copy of graphsense-lib @ a82914bf"


def shipped_taxonomy_dir() -> Traversable:
    """The package-data folder of GraphSense's taxonomy files (no file system path is assumed:
    the package may be installed as a zip)."""
    return resources.files("chainsleuth").joinpath("data", "taxonomies", "graphsense")


#: Concepts that are virtual asset service providers in the sense of INTERPOL DW-VA's
#: `virtual_asset_service_provider` (the FATF definition: exchanging, transferring or
#: safekeeping virtual assets for customers as a business). An abuse tag in the same cluster as
#: one of these (or their narrower concepts) is a conflict: see docs/design/tags.md.
VASP_CONCEPTS = frozenset({"exchange", "wallet_service", "payment_processor", "atm"})

#: The branch of concepts that describe how a wallet is used (hot, cold, deposit wallet, white
#: list), not who holds it: they are compatible with any category.
USAGE_ATTRIBUTE_ROOT = "white_usage"


@dataclass(frozen=True)
class Concept:
    id: str
    broader: str | None
    label: str
    description: str


@dataclass(frozen=True)
class Confidence:
    id: str
    label: str
    description: str
    level: int  # 0-100


@dataclass(frozen=True)
class Taxonomy:
    """Concepts (with their tree), confidence levels, tag types and country codes."""

    concepts: dict[str, Concept]
    confidence: dict[str, Confidence]
    tag_types: frozenset[str]
    countries: frozenset[str]
    origin: str = SHIPPED_ORIGIN
    _ancestors: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for cid in self.concepts:
            chain: list[str] = []
            cur: str | None = cid
            while cur is not None and cur in self.concepts and cur not in chain:
                chain.append(cur)
                cur = self.concepts[cur].broader
            self._ancestors[cid] = tuple(chain)

    # ------------------------------------------------------------------------ loading
    @staticmethod
    @cache
    def default() -> Taxonomy:
        """The GraphSense taxonomies shipped with the package (`shipped_taxonomy_dir`)."""
        return Taxonomy._read(shipped_taxonomy_dir(), SHIPPED_ORIGIN)

    @classmethod
    def from_dir(cls, directory: Path) -> Taxonomy:
        """Read `concepts.yaml`, `confidence.csv`, `tag_types.csv`, `countries.csv` of a dir."""
        return cls._read(Path(directory), str(directory))

    @classmethod
    def _read(cls, directory: Traversable, origin: str) -> Taxonomy:
        """The one loader of GraphSense's taxonomy layout, from a folder or package data."""

        def text(name: str) -> str:
            return directory.joinpath(name).read_text(encoding="utf-8")

        raw = yaml.safe_load(text("concepts.yaml"))
        concepts = {
            str(v["id"]): Concept(
                str(v["id"]),
                v.get("broader"),
                str(v.get("prefLabel", v["id"])),
                " ".join(str(v.get("description") or "").split()),
            )
            for k, v in raw.items()
            if k != "scheme"
        }
        confidence = {}
        rows = csv.reader(io.StringIO(text("confidence.csv"), newline=""))
        next(rows)
        for row in rows:
            # the description may hold unquoted commas: id, label first, level last
            desc = ",".join(row[2:-1]).strip()
            confidence[row[0]] = Confidence(row[0], row[1], desc, int(row[-1]))
        tag_types = frozenset(r["id"] for r in csv.DictReader(io.StringIO(text("tag_types.csv"))))
        countries = frozenset(r["id"] for r in csv.DictReader(io.StringIO(text("countries.csv"))))
        return cls(concepts, confidence, tag_types, countries, origin=origin)

    # ------------------------------------------------------------------------ queries
    def level(self, confidence_id: str) -> int:
        """The 0-100 level of a confidence id (KeyError if unknown)."""
        return self.confidence[confidence_id].level

    def ancestors(self, concept: str) -> tuple[str, ...]:
        """The concept and its broader concepts up to the root: `("exchange", "service", ...)`."""
        return self._ancestors.get(concept, (concept,))

    def is_a(self, concept: str, ancestor: str) -> bool:
        """True when `ancestor` is `concept` or one of its broader concepts."""
        return ancestor in self.ancestors(concept)

    def narrower_or_self(self, concept: str) -> frozenset[str]:
        """Every concept at or below `concept` in the tree (for `tags list --category service`)."""
        return frozenset(c for c in self.concepts if self.is_a(c, concept))

    def on_one_path(self, a: str, b: str) -> bool:
        """True when one concept is the other or a narrower form of it (exchange, service)."""
        return self.is_a(a, b) or self.is_a(b, a)

    def is_usage_attribute(self, concept: str) -> bool:
        return self.is_a(concept, USAGE_ATTRIBUTE_ROOT)

    def is_vasp(self, concept: str) -> bool:
        return any(self.is_a(concept, v) for v in VASP_CONCEPTS)

    def is_abuse(self, concept: str) -> bool:
        return self.is_a(concept, "abuse")
