"""Point reads of parquet files: the rows with one key value, reading only the row groups whose
statistics can hold it, with the kernel's read-ahead off (docs/design/store.md, "Cold point reads").

A cold read through DuckDB's `read_parquet` (or a plain `pq.read_table`) reads every row group
the filter cannot rule out, and the kernel reads ahead of each sequential-looking read (up to
`read_ahead_kb`, 8 MB on the bench VM). Here the file is opened with `POSIX_FADV_RANDOM` (the
kernel reads what is asked for, no more), its footer is read, and only the row groups whose
min-max statistics of the key column hold the value are read. With the writer's row groups of
`layout.ROW_GROUP_ROWS` rows, a point read costs one row group per file whatever the file's or
the chain's size.

`ReadCounter` counts what was read (row groups, and the compressed bytes of the column chunks),
so tests can assert that a lookup's reads are bounded without timing anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["ReadCounter", "groups_holding", "open_random", "read_key_rows", "COUNTER"]


@dataclass
class ReadCounter:
    """What the point reads of this process read: files opened, row groups and their
    compressed column-chunk bytes (per file path)."""

    files: int = 0
    row_groups: int = 0
    chunk_bytes: int = 0
    by_file: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.files = self.row_groups = self.chunk_bytes = 0
        self.by_file.clear()


#: The process's counter (tests reset it and read it; nothing else depends on it).
COUNTER = ReadCounter()


def open_random(path: Path) -> IO[bytes]:
    """`path` opened for reading with read-ahead off (`POSIX_FADV_RANDOM` on this descriptor):
    each read brings the pages asked for."""
    handle = open(path, "rb")  # noqa: SIM115 (the caller closes it)
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_RANDOM)
    return handle


def groups_holding(handle: pq.ParquetFile, column: str, wanted: np.ndarray) -> list[int]:
    """The row groups of a parquet file whose min-max range of `column` holds one of `wanted`
    (sorted int64); a group without statistics is kept (read to be safe)."""
    index = handle.schema_arrow.get_field_index(column)
    groups = []
    for g in range(handle.metadata.num_row_groups):
        stats = handle.metadata.row_group(g).column(index).statistics
        if stats is None or not stats.has_min_max:
            groups.append(g)
            continue
        lo, hi = np.searchsorted(wanted, [stats.min, stats.max + 1])
        if hi > lo:
            groups.append(g)
    return groups


def _count(
    path: Path, handle: pq.ParquetFile, groups: list[int], columns: list[str] | None
) -> None:
    meta = handle.metadata
    names = set(columns) if columns is not None else None
    size = 0
    for g in groups:
        rg = meta.row_group(g)
        for c in range(rg.num_columns):
            chunk = rg.column(c)
            if names is None or chunk.path_in_schema.split(".")[0] in names:
                size += chunk.total_compressed_size
    COUNTER.row_groups += len(groups)
    COUNTER.chunk_bytes += size
    COUNTER.by_file[str(path)] = COUNTER.by_file.get(str(path), 0) + len(groups)


def read_groups(
    path: Path, key: str, wanted: np.ndarray, columns: list[str] | None = None
) -> tuple[pq.ParquetFile, IO[bytes], list[int]]:
    """Open `path` for point reads; the row groups that may hold one of `wanted` (sorted) in
    `key`. The caller reads them (`handle.read_row_group`) and closes the file."""
    raw = open_random(path)
    try:
        handle = pq.ParquetFile(raw)
        groups = groups_holding(handle, key, np.asarray(wanted, np.int64))
    except BaseException:
        raw.close()
        raise
    COUNTER.files += 1
    _count(path, handle, groups, columns)
    return handle, raw, groups


def read_key_rows(path: Path, key: str, value: int, columns: list[str] | None = None) -> pa.Table:
    """The rows of the parquet file at `path` whose `key` equals `value` (all columns, or
    `columns`), in file order; reads the footer and the row groups that may hold it only."""
    if columns is not None and key not in columns:
        columns = [*columns, key]
    handle, raw, groups = read_groups(path, key, np.array([value], np.int64), columns)
    if columns is not None:  # a column an older file lacks is left out (unified by name later)
        have = set(handle.schema_arrow.names)
        columns = [c for c in columns if c in have]
    with raw:
        parts: list[pa.Table] = []
        for g in groups:
            rows = handle.read_row_group(g, columns=columns)
            keep = pc.equal(rows.column(key), pa.scalar(value, rows.schema.field(key).type))
            parts.append(rows.filter(keep))
        if not parts:
            schema = handle.schema_arrow
            names = columns if columns is not None else schema.names
            return pa.schema([schema.field(n) for n in names]).empty_table()
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def concat(tables: list[pa.Table]) -> Any:
    """Tables of the same table's files, their columns unified by name (as DuckDB's
    `union_by_name`)."""
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="default")
