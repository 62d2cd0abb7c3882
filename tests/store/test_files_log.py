"""The file log (issue 13 item 4): opening a store and an address lookup do not read the store's
parquet file list, a tx lookup reads O(log) of it, a commit appends to it, a crash after the
append and before the manifest swap leaves the previous store, and a format 5 store is read as
it is and converted by its next writer."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from chainsleuth.store import layout, lookups
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store
from chainsleuth.store.writer import StoreWriter
from tests.conftest import NBITCOIN, dump_views
from tests.store.test_crash import assert_consistent

HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
HAL_TX = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"


@pytest.fixture(scope="module")
def many_commits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The nbitcoin chain ingested in ~70 small batches (one commit each)."""
    data = tmp_path_factory.mktemp("many-commits") / "data"
    ingest_blocks_dir(NBITCOIN, data, batch_bytes=2000)
    return data


class Spy:
    """Counts the calls to and bytes returned by layout.read_log_bytes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = self.bytes = 0
        real = layout.read_log_bytes

        def spy(path: Path, offset: int, size: int) -> bytes:
            got = real(path, offset, size)
            self.calls += 1
            self.bytes += len(got)
            return got

        monkeypatch.setattr(layout, "read_log_bytes", spy)


def test_open_and_address_lookup_read_no_file_list_and_a_tx_lookup_a_bounded_part(
    many_commits: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = layout.read_manifest(many_commits)
    assert manifest is not None and manifest["format"] == layout.FORMAT_VERSION
    log = manifest["files_log"]
    assert "files" not in manifest and log["sorted"] and log["lines"] > 200
    assert log["group"] > 50  # one group per commit
    # the manifest does not grow with the commits: no per-file entry in it
    assert len((many_commits / "manifest.json").read_bytes()) < 20_000
    spy = Spy(monkeypatch)
    store = Store.open(many_commits)
    info = lookups.address_info(store, HAL)
    assert info["address"] == HAL
    assert (spy.calls, spy.bytes) == (0, 0)
    tx = lookups.transaction(store, HAL_TX)
    assert tx["txid"] == HAL_TX and len(tx["outputs"]) == 2
    # three tables (txs, inputs, outputs), each a binary search of small reads
    per_search = 2 * math.ceil(math.log2(log["lines"])) + 4
    assert 0 < spy.calls <= 3 * per_search, spy.calls
    assert spy.bytes <= spy.calls * layout._LogReader.CHUNK < log["bytes"] / 2


def test_the_binary_search_finds_exactly_the_files_holding_each_height(many_commits: Path) -> None:
    manifest = layout.read_manifest(many_commits)
    assert manifest is not None
    files = layout.read_files(many_commits, manifest)
    assert sum(map(len, files.values())) == manifest["files_log"]["lines"]
    for table in layout.TABLES:
        for height in range(-1, manifest["counts"]["blocks"] + 1):
            want = [f for f in files[table] if f["min_height"] <= height <= f["max_height"]]
            got = layout.files_at_height(many_commits, manifest, table, height)
            assert got == want, (table, height)
            if table != "address_list" and 0 <= height < manifest["counts"]["blocks"]:
                assert len(got) == 1, (table, height)


def test_a_crash_after_the_log_append_before_the_manifest_swap_leaves_the_previous_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nbitcoin_views: dict
) -> None:
    data = tmp_path / "data"
    real = layout.write_manifest
    calls: list[dict[str, Any]] = []

    def write_then_die(data_dir: Path, manifest: dict[str, Any]) -> None:
        calls.append(manifest)
        if len(calls) == 12:  # the log holds this commit's lines by now
            raise KeyboardInterrupt("killed before the manifest swap")
        real(data_dir, manifest)

    monkeypatch.setattr(layout, "write_manifest", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        ingest_blocks_dir(NBITCOIN, data, batch_bytes=2000)
    monkeypatch.setattr(layout, "write_manifest", real)
    committed = layout.read_manifest(data)
    assert committed is not None
    log = committed["files_log"]
    assert (data / log["path"]).stat().st_size > log["bytes"]  # uncommitted lines are there
    assert 0 < committed["counts"]["blocks"] < 600
    assert_consistent(data)  # a reader sees only the committed files
    ingest_blocks_dir(NBITCOIN, data, batch_bytes=2000)
    done = layout.read_manifest(data)
    assert done is not None and done["counts"]["blocks"] == 600
    assert (data / done["files_log"]["path"]).stat().st_size == done["files_log"]["bytes"]
    assert dump_views(data) == nbitcoin_views
    assert_consistent(data)


def test_a_format_5_store_is_read_and_converted_by_the_next_ingest(
    tmp_path: Path, nbitcoin_store: Path, nbitcoin_views: dict
) -> None:
    data = tmp_path / "data"
    shutil.copytree(nbitcoin_store, data)
    manifest = layout.read_manifest(data)
    assert manifest is not None
    files = layout.read_files(data, manifest)
    (data / manifest.pop("files_log")["path"]).unlink()
    old = {**manifest, "format": 5, "files": files}
    (data / "manifest.json").write_text(json.dumps(old))
    assert dump_views(data) == nbitcoin_views  # read as it is
    assert lookups.transaction(Store.open(data), HAL_TX)["txid"] == HAL_TX
    ingest_blocks_dir(NBITCOIN, data)  # nothing new: the writer converts it
    new = layout.read_manifest(data)
    assert new is not None and new["format"] == 6 and "files" not in new
    assert layout.read_files(data, new) == files
    assert sorted(p.name for p in data.glob("files-*.jsonl")) == [new["files_log"]["path"]]
    assert dump_views(data) == nbitcoin_views


def check_search(data: Path) -> dict[str, Any]:
    """files_at_height against the whole list, for every height and table."""
    manifest = layout.read_manifest(data)
    assert manifest is not None
    files = layout.read_files(data, manifest)
    for table in layout.TABLES:
        for height in range(-1, manifest["counts"]["blocks"] + 1):
            want = [f for f in files[table] if f["min_height"] <= height <= f["max_height"]]
            assert layout.files_at_height(data, manifest, table, height) == want, (table, height)
    return manifest


def test_a_rollback_writes_a_new_log_that_is_still_searched(
    tmp_path: Path, many_commits: Path, nbitcoin_views: dict
) -> None:
    data = tmp_path / "data"
    shutil.copytree(many_commits, data)
    before = layout.read_manifest(data)
    assert before is not None
    writer = StoreWriter.open(data, "main")
    assert writer.rollback(300) == 299
    writer.close()
    after = check_search(data)
    assert after["counts"]["blocks"] == 301 and after["files_log"]["sorted"]
    assert after["files_log"]["path"] != before["files_log"]["path"]
    assert sorted(p.name for p in data.glob("files-*.jsonl")) == [after["files_log"]["path"]]
    assert after["files_log"]["lines"] < before["files_log"]["lines"]
    ingest_blocks_dir(NBITCOIN, data, batch_bytes=2000)  # back to the tip, appending
    assert check_search(data)["counts"]["blocks"] == 600
    assert dump_views(data) == nbitcoin_views
