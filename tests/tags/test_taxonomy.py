"""The embedded taxonomies equal the shared files; the concept tree answers what attribution asks."""

from __future__ import annotations

from chainsleuth.tags.taxonomy import Taxonomy
from tests.tags.conftest import TAXONOMIES


def test_embedded_taxonomy_equals_the_shared_graphsense_files() -> None:
    shared = Taxonomy.from_dir(TAXONOMIES / "graphsense")
    embedded = Taxonomy.default()
    assert shared.concepts == embedded.concepts
    assert shared.confidence == embedded.confidence
    assert shared.tag_types == embedded.tag_types and shared.countries == embedded.countries
    assert len(embedded.concepts) == 93 and len(embedded.countries) == 249


def test_confidence_levels_come_from_the_taxonomy() -> None:
    tax = Taxonomy.default()
    assert tax.level("ownership") == 100 and tax.level("service_data") == 50
    assert tax.level("web_crawl") == 20
    # its description holds an unquoted comma: the level is still the last column
    assert tax.level("unknown") == 5
    assert tax.confidence["unknown"].description.endswith("Use these tags with care")


def test_concept_ids_are_the_id_field_not_the_yaml_key() -> None:
    # concepts.yaml files `id: defi_derivative` under the key `defi_derivatives`
    assert "defi_derivative" in Taxonomy.default().concepts


def test_the_concept_tree() -> None:
    tax = Taxonomy.default()
    assert tax.ancestors("exchange") == ("exchange", "service", "entity", "concept")
    assert tax.is_a("coinjoin", "mixing") and tax.is_abuse("ransomware")
    assert tax.on_one_path("service", "exchange") and not tax.on_one_path("exchange", "market")
    assert tax.is_vasp("escrow_wallet") and not tax.is_vasp("market")
    assert tax.is_usage_attribute("cold_wallet")
    assert {"exchange", "market", "wallet_service"} <= tax.narrower_or_self("service")
