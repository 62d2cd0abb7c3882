"""The level-by-level trace walk returns exactly what the one-entry-at-a-time walk returned.

`kernels.trace_kernel` reads each block of a level in ascending output id and then appends
children in queue order; `tests/trace/sequential_walk.py` is the walk it replaced. On the small
simulated world, with stop clusters, CoinJoin flags, a time window and every limit firing,
both must give the same entries, rows and dropped satoshis, array for array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainsleuth.cluster.engine import Clusters
from chainsleuth.store import tracerows
from chainsleuth.store.store import Store
from chainsleuth.trace import kernels
from chainsleuth.trace.engine import POLICIES
from tests.trace.sequential_walk import sequential_walk

NAMES = [
    "e_output",
    "e_amount",
    "e_parent",
    "e_tx",
    "e_seed",
    "e_hops",
    "e_flags",
    "r_entry",
    "r_kind",
    "r_tx",
    "dropped",
]


def _fill_creators(out: tuple, first_output: np.ndarray) -> list[np.ndarray]:
    """Rows left at STOP_AT_CREATOR get their output's creating tx, as the engine does."""
    arrays = [np.asarray(a).copy() for a in out]
    e_output, r_entry, r_tx = arrays[0], arrays[7], arrays[9]
    at = r_tx == kernels.STOP_AT_CREATOR
    r_tx[at] = np.searchsorted(first_output, e_output[r_entry[at]], side="right") - 1
    return arrays


@pytest.fixture(scope="module")
def chain(small_world: tuple[Path, Path]) -> dict:
    _, data = small_world
    store = Store.open(data)
    g = store.graph
    rng = np.random.default_rng(5)
    cluster_of = np.asarray(Clusters(data).cluster_of, np.int64)
    # stop clusters: those of 3 % of the addresses; CoinJoin flags on 2 % of the txs
    stop_cluster = np.zeros(cluster_of.shape[0], np.bool_)
    stop_cluster[cluster_of[rng.random(cluster_of.shape[0]) < 0.03]] = True
    is_coinjoin = rng.random(g.n_txs) < 0.02
    spent = np.flatnonzero(np.asarray(g.output_spent_by_tx) < g.n_txs)
    seeds = np.concatenate(
        [rng.integers(0, g.n_outputs, 1500), rng.choice(spent, 1500), rng.choice(spent, 20)]
    ).astype(np.int64)
    # the trace rows from their definition (`store.tracerows`; opt-in, so the shared store has
    # none): per output address << 32 | creating tx, per input the value it spends
    first = np.asarray(g.tx_first_output)
    creator = np.searchsorted(first, np.arange(g.n_outputs), side="right") - 1
    address = np.asarray(g.output_address).astype(np.uint64)
    spent_of = np.asarray(g.input_spent_output)
    value = np.where(spent_of >= 0, np.asarray(g.output_value)[np.maximum(spent_of, 0)], 0)
    rows = ((address << np.uint64(32)) | creator.astype(np.uint64), value.astype(np.int64))
    return {
        "g": g,
        "rows": rows,
        "cluster_of": cluster_of,
        "stop_cluster": stop_cluster,
        "stop_address": stop_cluster[cluster_of],
        "is_coinjoin": is_coinjoin,
        "seeds": seeds,
        "heights": (int(g.tx_height[g.n_txs // 5]), int(g.tx_height[g.n_txs - g.n_txs // 5])),
    }


CASES = {
    "plain": {"max_entries_per_seed": 400},
    "min_fraction": {"min_fraction": 0.01, "max_hops": 15, "max_entries_per_seed": 400},
    "seed_limit": {"max_entries_per_seed": 40, "max_hops": 15},
    "limit": {"max_entries": 9000, "max_hops": 15},
    "window": {"window": True, "max_hops": 10, "min_fraction": 0.01, "max_entries_per_seed": 400},
    "walk_coinjoins": {
        "walk_coinjoins": True,
        "max_hops": 8,
        "min_value": 20_000,
        "max_entries_per_seed": 400,
    },
    "no_stops": {"no_stops": True, "max_hops": 6, "max_entries_per_seed": 400},
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("backward", [True, False], ids=["back", "forward"])
@pytest.mark.parametrize("rows", [False, True], ids=["arrays", "trace_rows"])
def test_level_walk_equals_the_sequential_walk(
    chain: dict, case: str, policy: str, backward: bool, rows: bool
) -> None:
    """Blocks of 97 entries: every level of the walk spans several blocks. With the trace
    rows (`tracerows`: creating tx and address per output, spent value per input) or
    without (the fence and the store's arrays); forward walks never read the rows."""
    _compare(chain, CASES[case], case, policy, backward, 97, rows)


@pytest.mark.parametrize("backward", [True, False], ids=["back", "forward"])
def test_one_block_per_level_equals_the_sequential_walk(chain: dict, backward: bool) -> None:
    """The production block size (every level here fits in one block)."""
    _compare(chain, CASES["min_fraction"], "min_fraction", "haircut", backward, kernels.BLOCK)


def _compare(
    chain: dict, opts: dict, case: str, policy: str, backward: bool, block: int, rows: bool = False
) -> None:
    g = chain["g"]
    seeds = chain["seeds"]
    values = np.asarray(g.output_value)[seeds].astype(np.int64)
    seed_min = np.maximum(
        np.ceil(values * float(opts.get("min_fraction", 0.0))).astype(np.int64),
        int(opts.get("min_value", 0)),
    )
    lo, hi = chain["heights"] if opts.get("window") else (-1, 1 << 31)
    no_stops = bool(opts.get("no_stops"))
    common = (
        backward,
        POLICIES[policy],
        seeds,
        values,
        int(opts.get("max_hops", 6)),
        seed_min,
        int(opts.get("max_entries", 20_000_000)),
        int(opts.get("max_entries_per_seed", 1 << 62)),
        bool(opts.get("walk_coinjoins", False)),
        g.tx_first_input,
        g.tx_first_output,
        g.input_spent_output,
        g.output_value,
        g.output_address,
        g.output_spent_by_tx,
    )
    window = (chain["is_coinjoin"], g.tx_height, lo, hi)
    empty = np.zeros(0, np.bool_)
    shift = kernels.FENCE_SHIFT if block == kernels.BLOCK else 2
    fence = kernels.creator_fence(g.tx_first_output, g.n_outputs, shift)
    new = kernels.trace_kernel(
        *common,
        empty if no_stops else chain["stop_cluster"],
        chain["cluster_of"],
        *window,
        fence,
        shift,
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        *(chain["rows"] if rows else tracerows.EMPTY_ROWS),
        *kernels.empty_work(),
        block,
    )[:11]
    old = sequential_walk(*common, empty if no_stops else chain["stop_address"], *window)
    first_output = np.asarray(g.tx_first_output)
    new_a, old_a = _fill_creators(new, first_output), _fill_creators(old, first_output)
    assert old_a[7].shape[0] > 100  # rows to compare
    for name, a, b in zip(NAMES, new_a, old_a, strict=True):
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    kinds = set(old_a[8].tolist())
    if case in ("limit", "seed_limit"):
        wanted = kernels.KIND_LIMIT if case == "limit" else kernels.KIND_SEED_LIMIT
        assert wanted in kinds, f"the {case} case must hit its limit"
    if case == "window":
        assert kernels.KIND_WINDOW in kinds
