"""The shipped taxonomies equal the shared files; the concept tree answers what attribution asks."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from chainsleuth.tags.taxonomy import Taxonomy, shipped_taxonomy_dir
from tests.tags.conftest import TAXONOMIES

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("concepts.yaml", "confidence.csv", "tag_types.csv", "countries.csv", "LICENSE")


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


def test_shipped_taxonomy_files_are_the_shared_graphsense_files_byte_for_byte() -> None:
    shipped = shipped_taxonomy_dir()
    for name in SHIPPED:
        assert (
            shipped.joinpath(name).read_bytes() == (TAXONOMIES / "graphsense" / name).read_bytes()
        )


def _install_like_setuptools(target: Path) -> None:
    """Copy what a wheel of this checkout holds: the packages' modules and the package data that
    pyproject.toml lists. (A real wheel build needs setuptools from PyPI, which the test machine
    may not reach; these are the same rules: every package under `chainsleuth`, plus each
    package-data glob relative to its package's folder.)"""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    source = ROOT / "chainsleuth"
    for init in source.rglob("__init__.py"):
        for module in init.parent.glob("*.py"):
            dest = target / module.relative_to(ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(module, dest)
    for package, patterns in config["package-data"].items():
        folder = ROOT.joinpath(*package.split("."))
        for pattern in patterns:
            for path in folder.glob(pattern):
                dest = target / path.relative_to(ROOT)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)


def test_an_installed_copy_finds_the_taxonomies_as_package_data(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install_like_setuptools(site)
    script = (
        "import chainsleuth, sys\n"
        "from chainsleuth.tags.taxonomy import Taxonomy\n"
        "t = Taxonomy.default()\n"
        "print(chainsleuth.__file__, len(t.concepts), len(t.confidence), len(t.countries),"
        " sorted(t.tag_types))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,  # not the checkout, so only the installed copy is importable
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    where, *counts = done.stdout.split(" ", 4)
    assert Path(where).is_relative_to(site)
    shared = Taxonomy.from_dir(TAXONOMIES / "graphsense")
    assert counts == [
        str(len(shared.concepts)),
        str(len(shared.confidence)),
        str(len(shared.countries)),
        str(sorted(shared.tag_types)) + "\n",
    ]
