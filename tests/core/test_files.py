"""The one atomic write: old or new content, never half; nothing left behind on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chainsleuth.core.files import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    publish_dir,
    replace_into_place,
)


def test_atomic_write_creates_the_folder_and_a_world_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "manifest.json"
    atomic_write_text(path, "{}\n")
    assert path.read_text() == "{}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(path.parent) == ["manifest.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    atomic_write_bytes(path, b"old")

    def half_then_fail(f: object) -> None:
        f.write(b"half of the new")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["report.html"]


def test_replace_into_place_publishes_a_file_written_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("old\n")
    tmp = tmp_path / "leads.csv.tmp"
    tmp.write_text("new\n")
    replace_into_place(tmp, path)
    assert path.read_text() == "new\n" and not tmp.exists()


def test_publish_dir_replaces_a_folder_and_leaves_nothing_aside(tmp_path: Path) -> None:
    target = tmp_path / "clusters"
    for content in (b"first", b"second"):
        tmp = tmp_path / "clusters.tmp"
        (tmp / "state").mkdir(parents=True)
        (tmp / "state" / "parent.npy").write_bytes(content)
        (tmp / "manifest.json").write_bytes(content)
        publish_dir(tmp, target)
        assert (target / "state" / "parent.npy").read_bytes() == content
        assert sorted(os.listdir(tmp_path)) == ["clusters"]  # no .tmp, no .old
    assert sorted(os.listdir(target)) == ["manifest.json", "state"]
