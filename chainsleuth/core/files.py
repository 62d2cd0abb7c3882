"""Small file helpers shared by the stages: file hashing, and atomic writes.

Atomic writes: a reader sees the old file or the new one, never half of one. Every stage
publishes its files this way (manifests, index state, tag tables, prices, reports, case files),
so a crash or Ctrl-C mid-write leaves the previous version and a re-run starts clean. The file is
written under a temporary name in the same folder (so `os.replace` is a rename on one file
system), flushed to disk, renamed over the target, and the folder entry is synced. A folder
written as a whole (the clustering, the store's derived index) is published the same way by
`publish_dir`.

Example::

    atomic_write_text(data_dir / "manifest.json", json.dumps(manifest))
    atomic_write(report_pdf, lambda f: document.write_pdf(target=f))
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "publish_dir",
    "replace_into_place",
    "sha256_file",
]

#: published files are world-readable like any other (mkstemp creates them 0600)
FILE_MODE = 0o644


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a folder cannot be opened for reading on some systems: nothing to sync
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_into_place(tmp: Path | str, path: Path | str) -> None:
    """Publish a finished temporary file `tmp` (written by someone else, e.g. DuckDB or Arrow)
    as `path`: sync its bytes, make it readable, rename it over `path`, sync the folder."""
    tmp, path = Path(tmp), Path(path)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def publish_dir(tmp: Path | str, path: Path | str) -> None:
    """Publish a finished folder `tmp` as `path` (a sibling of it): sync every file in it, move
    the current `path` aside to `<path>.old`, rename `tmp` to `path`, sync the parent folder,
    then delete the old one.

    Two renames, not one (POSIX cannot swap a non-empty folder in one step): a crash between
    them leaves `<path>.old` and `tmp` complete, and no `path`; the writers rebuild it then.
    """
    tmp, path = Path(tmp), Path(path)
    for folder, _, files in os.walk(tmp):
        for name in files:
            with open(Path(folder) / name, "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(folder))
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], Any]) -> None:
    """Write `path` through `write(binary_file)`, atomically; the folder is created if needed.
    On any error (Ctrl-C included) the temporary file is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        replace_into_place(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (inputs and outputs of a case, tag
    packs: what provenance records name)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
