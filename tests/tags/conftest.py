"""Shared fixtures of the tags tests: the real public TagPacks imported once, small stores.

`real_import` imports the whole `../shared/data/graphsense-tagpacks` (about 500k tags, a few
seconds) once per session into a store-less data directory; tests must not change it.
`store_dir` is a private copy of the real 600-block mainnet store (from tests/conftest.py), for
tests that join tags to address ids and clusters.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from chainsleuth.tags import ImportReport, import_tagpacks
from tests.conftest import SHARED_DATA

TAGPACKS = SHARED_DATA / "graphsense-tagpacks"
TAXONOMIES = SHARED_DATA / "taxonomies"


@pytest.fixture(scope="session")
def real_import(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ImportReport]:
    data_dir = tmp_path_factory.mktemp("real-tags") / "data"
    report = import_tagpacks(data_dir, [TAGPACKS], imported_by="tests")
    return data_dir, report


@pytest.fixture
def store_dir(nbitcoin_store: Path, tmp_path: Path) -> Path:
    """A writable copy of the 600-block mainnet store (614 addresses)."""
    target = tmp_path / "store"
    shutil.copytree(nbitcoin_store, target)
    return target


def store_addresses(data_dir: Path) -> dict[int, str]:
    """address id -> address of a store."""
    from chainsleuth.store.store import Store

    rows = Store.open(data_dir).sql("SELECT address_id, address FROM addresses").to_pylist()
    return {r["address_id"]: r["address"] for r in rows}


def write_clusters(data_dir: Path, groups: list[list[int]], generation: int = 1) -> np.ndarray:
    """A hand-made clustering: each group of address ids becomes one cluster (id = its min)."""
    from chainsleuth.store.layout import read_manifest

    manifest = read_manifest(data_dir)
    assert manifest is not None
    array = np.arange(manifest["counts"]["addresses"], dtype=np.int64)
    for group in groups:
        array[group] = min(group)
    folder = data_dir / "clusters"
    folder.mkdir(exist_ok=True)
    np.save(folder / "address_cluster.npy", array)
    (folder / "manifest.json").write_text(json.dumps({"generation": generation}))
    return array


def write_pack(folder: Path, name: str, text: str) -> Path:
    """A YAML file from an indented literal (dedented)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path
