"""Attribution: GraphSense TagPacks and ActorPacks, analysts' tags, and tags on clusters.

The library API (the CLI in `chainsleuth.tags.cli` is a thin layer over it)::

    from chainsleuth.tags import import_tagpacks, add_tag, list_tags, entity
    report = import_tagpacks(data_dir, [Path("graphsense-tagpacks/packs")])
    print(report)                       # counts; report.problems has file, line and reason
    add_tag(data_dir, "1A1z...", label="Seller X", category="market", source="case 17")
    list_tags(data_dir, actor="bitmex", limit=5)
    entity(data_dir, "bitmex")          # the actor's clusters, totals, first/last activity

Tags live in `DATA/tags/` (docs/design/tags.md) and appear in `chainsleuth sql` as the views
`tags`, `actors`, `tagpacks` and `cluster_tags`.
"""

from chainsleuth.tags.attribution import compute_cluster_tags, ensure_fresh, recompute_cluster_tags
from chainsleuth.tags.imports import (
    TagError,
    add_tag,
    drop_pack,
    import_csv,
    import_tagpacks,
    remove_tags,
)
from chainsleuth.tags.model import ImportReport, PackSummary, Problem
from chainsleuth.tags.query import (
    TagLookup,
    address_attribution,
    attribution_of_cluster,
    entity,
    history,
    list_tags,
)
from chainsleuth.tags.taxonomy import Taxonomy

__all__ = [
    "ImportReport",
    "PackSummary",
    "Problem",
    "TagError",
    "TagLookup",
    "Taxonomy",
    "add_tag",
    "address_attribution",
    "attribution_of_cluster",
    "compute_cluster_tags",
    "drop_pack",
    "ensure_fresh",
    "entity",
    "history",
    "import_csv",
    "import_tagpacks",
    "list_tags",
    "recompute_cluster_tags",
    "remove_tags",
]
