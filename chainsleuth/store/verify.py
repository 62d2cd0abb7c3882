"""Check a store against its manifest: every file present, unchanged, with the rows it claims.

`chainsleuth verify` runs `verify_data_dir`: the chain (`verify_store`; a store that passes is
exactly what the last commit published) and the later stages' files (tags, clusters), whichever
of them the directory holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from chainsleuth.core.errors import StoreError
from chainsleuth.store import layout
from chainsleuth.store.layout import ARRAYS


def verify_store(data_dir: Path, checksums: bool = True) -> dict[str, Any]:
    """Return {"ok": bool, "checks": [{"check": str, "ok": bool}, ...]}."""
    manifest = layout.read_manifest(Path(data_dir))
    if manifest is None:
        raise StoreError(f"no chainsleuth store at {data_dir}")
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool) -> None:
        checks.append({"check": name, "ok": bool(ok)})

    counts = manifest["counts"]
    files = layout.read_files(Path(data_dir), manifest)  # the whole file log: verify reads all
    expected_rows = {
        "blocks": counts["blocks"],
        "txs": counts["txs"],
        "inputs": counts["inputs"],
        "outputs": counts["outputs"],
        "address_list": counts["addresses"],
    }
    for table in layout.TABLES:
        total = 0
        problems = []
        for entry in files[table]:
            path = Path(data_dir) / entry["path"]
            if not path.exists():
                problems.append(f"missing {entry['path']}")
                continue
            if path.stat().st_size != entry["bytes"]:
                problems.append(f"size changed: {entry['path']}")
                continue
            if checksums:
                with open(path, "rb") as f:
                    if hashlib.file_digest(f, "sha256").hexdigest() != entry["sha256"]:
                        problems.append(f"sha256 mismatch: {entry['path']}")
                        continue
            rows = pq.ParquetFile(path).metadata.num_rows
            if rows != entry["rows"]:
                problems.append(f"row count mismatch: {entry['path']}")
            total += rows
        detail = "; ".join(problems[:5])
        check(
            f"{table}: {len(files[table])} files"
            + (", sha256 verified" if checksums else "")
            + (f" — {detail}" if detail else ""),
            not problems,
        )
        check(
            f"{table}: {total:,} rows, manifest says {expected_rows[table]:,}",
            total == expected_rows[table],
        )
    for name, spec in ARRAYS.items():
        path = layout.array_path(Path(data_dir), name)
        row_bytes = np.dtype(spec.dtype).itemsize * spec.width
        have = path.stat().st_size // row_bytes if path.exists() else 0
        check(
            f"array {name}: {have:,} rows, need {counts[spec.count]:,}", have >= counts[spec.count]
        )
    if counts["blocks"] and manifest["tip"] is not None:
        hashes = layout.open_array(Path(data_dir), "block_hash", counts["blocks"])
        tip_hash = bytes(hashes[-1][::-1]).hex()
        check(
            f"tip {manifest['tip']['height']} hash matches the block array",
            tip_hash == manifest["tip"]["hash"],
        )
    if counts["outputs"]:
        spent = layout.open_array(Path(data_dir), "output_spent_by_tx", counts["outputs"])
        spends = layout.open_array(Path(data_dir), "input_spent_output", counts["inputs"])
        n_spent = int((np.asarray(spent) != layout.NONE32).sum())
        n_spending = int((np.asarray(spends) >= 0).sum())
        check(
            f"{n_spending:,} spending inputs mark {n_spent:,} outputs spent",
            n_spent == n_spending,
        )
    return {"ok": all(c["ok"] for c in checks), "checks": checks}


def verify_stage(data_dir: Path, stage: str) -> list[dict[str, Any]]:
    """A stage's files (`DATA/<stage>/manifest.json` views and, for tags, its packs): each
    present and a readable parquet file, packs with the rows their manifest gives."""
    import json

    stage_dir = Path(data_dir) / stage
    manifest = json.loads((stage_dir / "manifest.json").read_text())
    expected: dict[str, int | None] = {}
    for spec in manifest.get("views", {}).values():
        for rel in spec.get("files", []):
            expected.setdefault(rel, None)
    for kind in ("packs", "actorpacks"):
        for entry in manifest.get(kind, {}).values():
            if entry.get("file"):
                expected[entry["file"]] = int(entry.get("rows") or 0)
    problems = []
    for rel, rows in sorted(expected.items()):
        path = stage_dir / rel
        if not path.exists():
            problems.append(f"missing {rel}")
            continue
        try:
            have = pq.ParquetFile(path).metadata.num_rows
        except Exception as e:  # any unreadable file is a finding, not a crash
            problems.append(f"unreadable {rel} ({type(e).__name__})")
            continue
        if rows is not None and have != rows:
            problems.append(f"{rel}: {have:,} rows, manifest says {rows:,}")
    detail = "; ".join(problems[:5])
    return [
        {
            "check": f"{stage}: {len(expected)} files present and readable"
            + (" with the rows the manifest gives" if stage == "tags" else "")
            + (f" — {detail}" if detail else ""),
            "ok": not problems,
        }
    ]


def verify_data_dir(data_dir: Path, checksums: bool = True) -> dict[str, Any]:
    """Check whatever the data directory holds: chain, tags, clusters.

    Returns {"ok", "checks", "holds": [parts], "missing": {part: command that fills it}}; a
    directory holding none of them is a StoreError.
    """
    from chainsleuth.store.store import FILL_COMMAND, data_dir_contents, no_store_error

    contents = data_dir_contents(Path(data_dir))
    parts = ("chain", "tags", "clusters")
    if not any(contents[p] for p in parts):
        raise no_store_error(Path(data_dir))
    checks: list[dict[str, Any]] = []
    if contents["chain"]:
        checks += verify_store(data_dir, checksums)["checks"]
    for stage in ("tags", "clusters"):
        if contents[stage]:
            checks += verify_stage(data_dir, stage)
    return {
        "ok": all(c["ok"] for c in checks),
        "checks": checks,
        "holds": [p for p in parts if contents[p]],
        "missing": {p: FILL_COMMAND[p].format(dir=data_dir) for p in parts if not contents[p]},
    }
