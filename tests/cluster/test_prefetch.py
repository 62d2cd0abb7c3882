"""engine.prefetch_tip_state asks for the pages of the tip's rows only: as many pages for the
same tip on a 10^5-address and a 10^7-address state (a count of pages, not a timing)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from chainsleuth.cluster import engine
from chainsleuth.cluster.publish import State
from chainsleuth.core import pages
from chainsleuth.core.pages import PAGE


def _state(tmp: Path, n: int) -> State:
    cols = {}
    for name, dtype in (
        ("parent", np.uint32),
        ("size", np.uint32),
        ("attribution", np.int32),
        ("batch_spent", np.bool_),
        ("next", np.uint32),
    ):
        path = tmp / f"{name}-{n}.bin"
        with open(path, "wb") as f:
            f.truncate(n * np.dtype(dtype).itemsize)
        cols[name] = np.asarray(np.memmap(path, dtype, mode="c", shape=(n,)))
    cols["parent"][:] = np.arange(n, dtype=np.uint32)  # every address its own root
    return State(**cols, have=n, fits=True)


def _tip(ids: np.ndarray) -> SimpleNamespace:
    """A 'chain' whose only tx spends from and pays to `ids` (half each)."""
    half = ids.shape[0] // 2
    return SimpleNamespace(
        n_txs=1,
        tx_first_input=np.zeros(1, np.int64),
        tx_first_output=np.zeros(1, np.int64),
        input_address=ids[:half].astype(np.uint32),
        output_address=ids[half:].astype(np.uint32),
    )


def test_pages_asked_follow_the_tip_not_the_state(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    k = 40
    asked = {}
    for n in (100_000, 10_000_000):
        ids = rng.choice(n, k, replace=False)
        asked[n] = engine.prefetch_tip_state(_tip(ids), _state(tmp_path, n), 0)
    # 5 columns, each row's page once for the row and once for its parent (itself here), a
    # gap of up to GAP_PAGES pages between two asked pages filled in: a bound in k, not n
    bound = 2 * k * 5 * (pages.GAP_PAGES + 1)
    assert 0 < asked[100_000] <= bound
    assert 0 < asked[10_000_000] <= bound
    whole = 10_000_000 * (4 + 4 + 4 + 1 + 4) // PAGE
    assert asked[10_000_000] < whole / 100  # far from every page of the columns


def test_a_long_catch_up_is_left_to_read_around(tmp_path: Path) -> None:
    n = 10_000
    ids = np.arange(0, n, 10)  # 1,000 addresses: more than n / PREFETCH_SHARE
    assert engine.prefetch_tip_state(_tip(ids), _state(tmp_path, n), 0) == 0


def test_tip_addresses_are_the_tips_unique_addresses() -> None:
    arrays = SimpleNamespace(
        n_txs=3,
        tx_first_input=np.array([0, 2, 3]),
        tx_first_output=np.array([0, 1, 3]),
        input_address=np.array([9, 9, 5, 7], np.uint32),
        output_address=np.array([1, 2, 0xFFFFFFFF, 5, 8], np.uint32),
    )
    # from tx 1: inputs 2.. (5, 7), outputs 1.. (2, none, 5, 8)
    assert engine.tip_addresses(arrays, 1).tolist() == [2, 5, 7, 8]  # type: ignore[arg-type]
    assert engine.tip_addresses(arrays, 3).tolist() == []  # type: ignore[arg-type]
