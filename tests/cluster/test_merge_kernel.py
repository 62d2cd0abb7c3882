"""`kernels.apply_merges` against a plain-Python union-find written from its contract.

The kernel skips the guard's sort of distinct roots when the members' sizes summed with
repeats stay below the guard, and skips the guard entirely when it is at or above the number
of addresses; these tests pin that the evidence rows, quarantines, parents, sizes and
attributions are exactly those of the reference, with guards small enough to fire often.
"""

from __future__ import annotations

import numpy as np
import pytest

from chainsleuth.cluster import kernels
from chainsleuth.store.layout import NONE32

NONE = int(NONE32)


def _random_chain(rng: np.random.Generator, n_tx: int, n_addr: int) -> dict[str, np.ndarray]:
    n_in = rng.integers(1, 7, n_tx)
    n_in[rng.random(n_tx) < 0.05] = 25  # a few wide consolidations
    first = np.concatenate([[0], np.cumsum(n_in)[:-1]]).astype(np.int64)
    total = int(n_in.sum())
    # uniform address reuse: clusters of every size form as the chain goes (a giant one late)
    addr = rng.integers(0, n_addr, total).astype(np.uint32)
    addr[rng.random(total) < 0.05] = NONE
    spent = np.arange(total, dtype=np.int64)
    spent[first[rng.random(n_tx) < 0.03]] = -1  # coinbases
    return {"first": first, "addr": addr, "spent": spent, "n_inputs": np.int64(total)}


def _reference(
    chain: dict[str, np.ndarray],
    coinjoin: np.ndarray,
    payjoin: np.ndarray,
    merge_payjoin: bool,
    large: int,
    growth: int,
    attribution: np.ndarray,
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]], np.ndarray, np.ndarray, np.ndarray]:
    """Multi-input merges tx by tx, as docs/design/clustering.md states them."""
    n_addr = attribution.shape[0]
    parent = list(range(n_addr))
    size = [1] * n_addr
    attr = attribution.tolist()

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    first, addr, spent = chain["first"], chain["addr"], chain["spent"]
    n_tx = first.shape[0]
    evidence: list[tuple[int, int, int]] = []
    quarantined: list[tuple[int, int]] = []
    for t in range(n_tx):
        lo = int(first[t])
        hi = int(first[t + 1]) if t + 1 < n_tx else int(chain["n_inputs"])
        if coinjoin[t] or hi == lo or spent[lo] < 0:
            continue
        if merge_payjoin or not payjoin[t]:
            members = [int(a) for a in addr[lo:hi] if int(a) != NONE]
        else:
            members = [int(addr[lo])] if int(addr[lo]) != NONE else []
        if len(members) < 2:
            continue
        roots = sorted({find(m) for m in members})
        if len(roots) < 2:
            continue
        sizes = [size[r] for r in roots]
        total, largest = sum(sizes), max(sizes)
        big_attrs = {attr[r] for r in roots if size[r] >= large and attr[r] >= 0}
        n_large = sum(1 for s in sizes if s >= large)
        if n_large >= 2 and len(big_attrs) >= 2:
            quarantined.append((t, kernels.Q_LARGE_CONFLICT))
            continue
        if total >= large and total >= growth * largest:
            quarantined.append((t, kernels.Q_GROWTH))
            continue
        anchor = members[0]
        for m in members[1:]:
            ra, rb = find(anchor), find(m)
            if ra == rb:
                continue
            r_lo, r_hi = min(ra, rb), max(ra, rb)
            parent[r_hi] = r_lo
            size[r_lo] += size[r_hi]
            if attr[r_lo] < 0:
                attr[r_lo] = attr[r_hi]
            elif attr[r_hi] >= 0 and attr[r_hi] != attr[r_lo]:
                attr[r_lo] = -2
            evidence.append((anchor, m, t))
    roots = np.array([find(x) for x in range(n_addr)], np.int64)
    return evidence, quarantined, roots, np.array(size), np.array(attr)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    ("large", "growth"), [(3, 2), (8, 2), (8, 3), (40, 2), (40, 100), (2**31 - 1, 2**31 - 1)]
)
def test_apply_merges_matches_reference(seed: int, large: int, growth: int) -> None:
    rng = np.random.default_rng(seed)
    n_tx, n_addr = 3000, 12000
    chain = _random_chain(rng, n_tx, n_addr)
    coinjoin = np.where(rng.random(n_tx) < 0.03, 1, 0).astype(np.int16)
    payjoin = rng.random(n_tx) < 0.05
    attribution = np.where(rng.random(n_addr) < 0.05, rng.integers(0, 4, n_addr), -1)
    attribution = attribution.astype(np.int32)
    merge_payjoin = seed == 2
    ev_expected, q_expected, roots_expected, size_expected, attr_expected = _reference(
        chain, coinjoin, payjoin, merge_payjoin, large, growth, attribution
    )

    parent = np.arange(n_addr, dtype=np.uint32)
    size = np.ones(n_addr, np.uint32)
    attr = attribution.copy()
    total_in = int(chain["n_inputs"])
    ev = [np.empty(total_in + n_tx, np.int64) for _ in range(5)]
    q_tx = np.empty(n_tx, np.int64)
    q_reason = np.empty(n_tx, np.int64)
    none = np.full(n_tx, -1, np.int64)
    z = np.zeros(0, np.int64)
    n_ev, n_q = kernels.apply_merges(
        0,
        n_tx,
        chain["first"],
        chain["n_inputs"],
        chain["spent"],
        chain["addr"],
        np.zeros(1, np.uint32),  # out_address: no change merges under multi-input alone
        np.zeros(1, np.bool_),
        0,
        coinjoin,
        payjoin,
        none,
        none,
        none,
        none,
        0,
        0,
        0,
        0,
        0,
        np.zeros(n_tx, np.int32),
        0,
        True,
        merge_payjoin,
        large,
        growth,
        parent,
        size,
        attr,
        *ev,
        0,
        q_tx,
        q_reason,
        0,
        np.empty(n_tx, np.int64),
        z,
        z,
        z,
    )
    got_ev = list(
        zip(ev[0][:n_ev].tolist(), ev[1][:n_ev].tolist(), ev[2][:n_ev].tolist(), strict=True)
    )
    assert got_ev == ev_expected
    assert (ev[3][:n_ev] == kernels.RULE_MULTI_INPUT).all() and (ev[4][:n_ev] == 0).all()
    assert list(zip(q_tx[:n_q].tolist(), q_reason[:n_q].tolist(), strict=True)) == q_expected
    if growth <= 3:  # these guards fire on this chain: the slow path is compared too
        assert n_q > 0
    roots = np.array([kernels.find(parent, x) for x in range(n_addr)], np.int64)
    assert (roots == roots_expected).all()
    is_root = roots_expected == np.arange(n_addr)
    assert (size[is_root] == size_expected[is_root]).all()
    assert (attr[is_root] == attr_expected[is_root]).all()
