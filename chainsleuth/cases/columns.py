"""Per-row tests on the string columns of a case's tables (leads.csv's and the like), run on
their Arrow arrays with `pyarrow.compute`: a case can hold millions of rows, and one Python
object per row costs ~50-100 B and a bytecode loop each (docs/design/cases.md
"Recalibrating leads on Arrow arrays"). Every function reads a null as "" and takes an Array or
a ChunkedArray (a case's tables are many chunks concatenated); the results are numpy arrays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def bools(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow result as a numpy bool array, null read as False."""
    out: np.ndarray = np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), np.bool_)
    return out


def string_equals(column: pa.Array | pa.ChunkedArray, value: str) -> np.ndarray:
    """Per row (bool): the string `column` is `value` (a null is not)."""
    return bools(pc.equal(column, pa.scalar(value, column.type)))


def string_in(column: pa.Array | pa.ChunkedArray, values: Iterable[str]) -> np.ndarray:
    """Per row (bool): the string `column` is one of `values` (a null is none)."""
    return bools(pc.is_in(column, value_set=pa.array(sorted(values), column.type)))


def has_item(column: pa.Array | pa.ChunkedArray, names: Iterable[str]) -> np.ndarray:
    """Per row (bool): one of `names` is a whole `;`-separated item of the string `column`
    (`caution`): "long_hold" is an item of "send_all_hop;long_hold", not of "long_holds"."""
    items = "|".join(re.escape(name) for name in sorted(names))
    return bools(pc.match_substring_regex(column, f"(?:^|;)(?:{items})(?:;|$)"))


def item_count(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Per row: how many `;`-separated items the string `column` holds (`custody_path`'s
    moves); 0 for "" and null."""
    count = pc.add(pc.count_substring(column, ";"), 1)
    empty = pc.equal(column, pa.scalar("", column.type))
    out: np.ndarray = np.asarray(
        pc.if_else(empty, 0, count).fill_null(0).to_numpy(zero_copy_only=False), np.int64
    )
    return out
