"""A store's parquet files rewritten with this code's row groups, into a copy: bytes before/after.

    python -m bench.rowgroups SRC DST

DST is made a hard-linked copy of SRC (`cp -al`: no bytes copied), then the files whose row
groups this code writes smaller are rewritten there, each to a new file replacing its link (SRC
is never written): the `txs`, `inputs` and `outputs` tables with the writer's own options
(`writer.parquet_options`: `layout.ROW_GROUP_ROWS` rows a group) and the clustering's merges
and coinjoins with `publish.EVIDENCE_ROW_GROUP_ROWS`. The rows are the same, so DST is the store
an ingest and a clustering with this code would have written, for measuring reads (`bench.
page_touch`, `bench.lookup_bench`) on a large store without ingesting it again. The manifest's
sha256 of each rewritten file is not updated (`chainsleuth verify` would flag them; readers do
not check). Prints bytes per part before and after, and the store's total, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.common import log


def _bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def rewrite(src: Path, dst: Path, only_evidence: bool = False) -> dict[str, Any]:
    from chainsleuth.cluster.publish import EVIDENCE_ROW_GROUP_ROWS, evidence_writer
    from chainsleuth.store import layout
    from chainsleuth.store.writer import parquet_options

    if not only_evidence:
        if dst.exists():
            raise SystemExit(f"{dst} exists")
        subprocess.run(["cp", "-al", str(src), str(dst)], check=True)
    parts: dict[str, list[Path]] = {
        t: sorted((dst / "tables" / t).rglob("*.parquet"))
        for t in layout.POINT_TABLES
        if not only_evidence
    }
    parts["clusters/evidence"] = sorted(
        p for k in ("merges", "coinjoins") for p in (dst / "clusters").glob(f"{k}-*.parquet")
    )
    total_before = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    result: dict[str, Any] = {"src": str(src), "dst": str(dst), "parts": {}}
    for part, files in parts.items():
        before = _bytes(files)
        for path in files:
            tmp = path.with_name(path.name + ".rg.tmp")
            if part in layout.POINT_TABLES:
                data = pq.read_table(path)
                pq.write_table(data, tmp, **parquet_options(part, data.column_names))
            else:
                source = pq.ParquetFile(path)
                with evidence_writer(tmp, source.schema_arrow) as w:
                    for g in range(source.num_row_groups):
                        w.write_table(source.read_row_group(g), EVIDENCE_ROW_GROUP_ROWS)
            os.replace(tmp, path)  # a new inode: SRC's file (the old link) is untouched
        after = _bytes(files)
        result["parts"][part] = {"files": len(files), "before": before, "after": after}
        log(f"{part}: {len(files)} files, {before:,} -> {after:,} B")
    total_after = sum(p.stat().st_size for p in dst.rglob("*") if p.is_file())
    result["store_before"], result["store_after"] = total_before, total_after
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument(
        "--only-evidence", action="store_true", help="DST exists: rewrite its evidence files only"
    )
    args = p.parse_args()
    print(json.dumps(rewrite(args.src, args.dst, args.only_evidence), indent=1))


if __name__ == "__main__":
    main()
