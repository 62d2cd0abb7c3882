"""The trace kernel's radix sort and gather (`kernels._sort_keys`, `kernels._gather`).

A block's sort keys are (output id << 31) | index in the block; the sort must order them as
`np.sort` does (by output id, ties by index: the keys are unique) for output ids up to 2^32,
in one to three passes, and the gather must read `output_value` at every child, whatever the
order it reads them in.
"""

from __future__ import annotations

import numpy as np
import pytest

from chainsleuth.trace import kernels


@pytest.mark.parametrize(
    ("m", "top"),
    [(0, 10), (1, 0), (2, 1), (97, 2), (5000, 3_000), (5000, 5_453_293), (70_000, (1 << 32) - 1)],
)
def test_sort_keys_orders_by_output_then_index(m: int, top: int) -> None:
    rng = np.random.default_rng(m + top)
    outputs = rng.integers(0, top + 1, m).astype(np.int64)
    if m > 2:
        outputs[: m // 3] = outputs[0]  # many equal outputs: ties must stay in index order
    keys = (outputs << kernels._INDEX_BITS) | np.arange(m, dtype=np.int64)
    expected = np.sort(keys)
    work, tmp = keys.copy(), np.empty(m, np.int64)
    count = np.empty(1 << kernels._RADIX_BITS, np.int64)
    top_seen = int(outputs.max()) if m else 0
    got = kernels._sort_keys(work, tmp, count, m, top_seen)
    np.testing.assert_array_equal(got[:m], expected)


def test_gather_reads_every_child() -> None:
    rng = np.random.default_rng(7)
    value = rng.integers(0, 1 << 40, 100_000).astype(np.int64)
    children = rng.integers(0, value.shape[0], 30_000).astype(np.int64)
    children[:500] = 12_345  # a repeated child
    got = np.full(children.shape[0], -1, np.int64)
    keys, tmp = np.empty(children.shape[0], np.int64), np.empty(children.shape[0], np.int64)
    count = np.empty(1 << kernels._RADIX_BITS, np.int64)
    kernels._gather(value, children, got, children.shape[0], keys, tmp, count)
    np.testing.assert_array_equal(got, value[children])
