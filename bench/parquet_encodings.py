"""Parquet encodings per column: PLAIN against DELTA_BINARY_PACKED (both under zstd).

    python -m bench.parquet_encodings DATA [--null-format5]

Rewrites every parquet file a store's manifest lists, in memory, twice with the writer's
settings (zstd, 256k-row groups, dictionary pages only for script and address types): once with
every integer column PLAIN, once with every integer column DELTA_BINARY_PACKED; then prints each
column's compressed bytes (from the footers) both ways, per tx. Columns are compressed one by one,
so the two files give each column's cost under each encoding. `--null-format5` first writes the
columns a format-5 default store leaves NULL (txs' input_value, output_value, fee, vsize, weight;
inputs' prev_vout) as NULL, to measure a format-4 store as format 5 would write it. Nothing in
the store is changed. Chooses `layout.DELTA_COLUMNS` (docs/design/store.md, "Format 5").
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from chainsleuth.store import layout

FORMAT5_NULLS = {
    "txs": ("input_value", "output_value", "fee", "vsize", "weight"),
    "inputs": ("prev_vout",),
}
DICTIONARY = ("script_type", "address_type")


def integer_columns(schema: pa.Schema) -> list[str]:
    """Columns DELTA_BINARY_PACKED can encode (int32 / int64 physical types, timestamps)."""
    return [
        f.name
        for f in schema
        if f.name not in DICTIONARY
        and (pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type))
    ]


def _sizes(data: pa.Table, delta: list[str]) -> dict[str, int]:
    sink = pa.BufferOutputStream()
    pq.write_table(
        data,
        sink,
        compression="zstd",
        row_group_size=256 * 1024,
        use_dictionary=[c for c in DICTIONARY if c in data.column_names],
        column_encoding={c: "DELTA_BINARY_PACKED" for c in delta} or None,
    )
    meta = pq.ParquetFile(pa.BufferReader(sink.getvalue())).metadata
    out: dict[str, int] = defaultdict(int)
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for c in range(rg.num_columns):
            out[rg.column(c).path_in_schema] += rg.column(c).total_compressed_size
    return out


def measure(data_dir: Path, null_format5: bool = False) -> dict[str, dict[str, list[int]]]:
    """table -> column -> [plain bytes, delta bytes] over every file of the store."""
    # read without the format check: a format-4 store is measured as format 5 would write it
    manifest = json.loads((data_dir / "manifest.json").read_text())
    result: dict[str, dict[str, list[int]]] = {}
    for table, files in layout.read_files(data_dir, manifest).items():
        cols: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for entry in files:
            data = pq.read_table(data_dir / entry["path"])
            if null_format5:
                for name in FORMAT5_NULLS.get(table, ()):
                    i = data.schema.get_field_index(name)
                    data = data.set_column(
                        i, data.schema.field(i), pa.nulls(data.num_rows, data.schema.field(i).type)
                    )
            ints = integer_columns(data.schema)
            plain, delta = _sizes(data, []), _sizes(data, ints)
            for name in plain:
                cols[name][0] += plain[name]
                cols[name][1] += delta[name]
        result[table] = dict(cols)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path)
    p.add_argument("--null-format5", action="store_true")
    args = p.parse_args(argv)
    counts = json.loads((args.data / "manifest.json").read_text())["counts"]
    n_tx = counts["txs"]
    result = measure(args.data, args.null_format5)
    print(f"{n_tx:,} txs; B/tx, plain -> delta (zstd both), integer columns only")
    print("| table.column | plain | delta | change |")
    print("|---|---|---|---|")
    total = [0, 0]
    for table, cols in result.items():
        ints = set(integer_columns(layout.SCHEMAS[table]))
        for name, (plain, delta) in cols.items():
            if name not in ints:
                continue
            total[0] += plain
            total[1] += delta
            change = (delta - plain) / plain * 100 if plain else 0.0
            print(f"| {table}.{name} | {plain / n_tx:.2f} | {delta / n_tx:.2f} | {change:+.0f} % |")
    print(f"| integer columns, all | {total[0] / n_tx:.2f} | {total[1] / n_tx:.2f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
