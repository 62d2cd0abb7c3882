"""Check a store against its manifest: every file present, unchanged, with the rows it claims.

`chainsleuth verify` runs this; a store that passes is exactly what the last commit published.
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
        for entry in manifest["files"][table]:
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
            f"{table}: {len(manifest['files'][table])} files"
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
