"""The one builder of simulated worlds for the benches and the tests: simulate, ingest, cluster,
attribute (the demo's first steps).

It lives in bench, not in tests, so that `make bench` and pytest build a world the same way; the
tests' session fixtures (tests/conftest.py) call these steps one layer at a time, and
`build_world` runs them all. Each step is the library's own call; what is added here is the
order and the two calls that make "the world's tags" (import its TagPacks, then recompute the
clusters' attribution).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chainsleuth.cluster.engine import ClusterReport
    from chainsleuth.store.ingest import IngestReport
    from chainsleuth.tags.model import ImportReport


@dataclass(frozen=True)
class BuiltWorld:
    """A world folder (blocks/, truth/, seeds/, tags/) and the store built from it, with what
    each step reported."""

    world: Path
    store: Path
    ingest: IngestReport
    clustering: ClusterReport
    tags: ImportReport


def simulate_world(
    world: Path, seed: int = 1, scale: str = "small", profile: str = "easy", xor: bool = False
) -> Path:
    """The simulated world of (seed, scale, profile) written under `world`; returns `world`."""
    from chainsleuth.simulate import simulate

    simulate(world, seed=seed, scale=scale, xor=xor, profile=profile)
    return world


def tag_world(world: Path, store: Path) -> ImportReport:
    """The world's TagPacks imported into a clustered `store`, and every tagged cluster's
    attribution recomputed (what the demo and `chainsleuth tags import` leave behind)."""
    from chainsleuth.tags.attribution import recompute_cluster_tags
    from chainsleuth.tags.imports import import_tagpacks

    report = import_tagpacks(store, [world / "tags"])
    recompute_cluster_tags(store)
    return report


def build_store(world: Path, store: Path, policy: str = "conservative") -> BuiltWorld:
    """`world`'s blocks ingested into `store`, clustered with `policy` and tagged."""
    from chainsleuth.cluster.engine import cluster_store
    from chainsleuth.store.ingest import ingest_blocks_dir

    ingest = ingest_blocks_dir(world / "blocks", store)
    clustering = cluster_store(store, policy)
    return BuiltWorld(world, store, ingest, clustering, tag_world(world, store))


def build_world(
    root: Path,
    seed: int = 1,
    scale: str = "small",
    profile: str = "easy",
    *,
    xor: bool = False,
    policy: str = "conservative",
) -> BuiltWorld:
    """Every step under `root`: the world in `root/world`, its store in `root/store`."""
    simulate_world(root / "world", seed, scale, profile, xor)
    return build_store(root / "world", root / "store", policy)
