"""The batched double-SHA256 kernels (parse/hashing.py) agree with hashlib, with either engine:
txids of arbitrary byte ranges and merkle roots of blocks of every small size, odd and even."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chainsleuth.parse import hashing

ROOT = Path(__file__).resolve().parents[2]


def _dsha(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _merkle(leaves: list[bytes]) -> bytes:
    """The textbook definition, written independently of the code under test."""
    if not leaves:
        return bytes(32)
    level = list(leaves)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [_dsha(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def _check(seed: int) -> None:
    rng = np.random.default_rng(seed)
    buf = rng.integers(0, 256, 300_000, dtype=np.uint8)
    # lengths around the 55/56/64-byte padding edges, empty messages, and large ones
    lengths = np.concatenate(
        [np.arange(0, 130), rng.integers(0, 9_000, 300), [32, 55, 56, 63, 64, 65, 119, 120]]
    ).astype(np.int64)
    starts = rng.integers(0, buf.shape[0] - 9_000, lengths.shape[0]).astype(np.int64)
    ends = starts + lengths
    out = np.empty((starts.shape[0], 32), np.uint8)
    hashing.hash_ranges(buf, starts, ends, out)
    for i in range(starts.shape[0]):
        assert bytes(out[i]) == _dsha(buf[starts[i] : ends[i]].tobytes()), (i, lengths[i])

    sizes = [*range(0, 20), 31, 32, 33, 255, 1000]
    leaves = rng.integers(0, 256, (sum(sizes), 32), dtype=np.uint8)
    first = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    roots = np.empty((len(sizes), 32), np.uint8)
    hashing.merkle_roots(leaves, first, roots)
    for b, n in enumerate(sizes):
        expected = _merkle([bytes(r) for r in leaves[first[b] : first[b + 1]]])
        assert bytes(roots[b]) == expected, n


def test_kernels_match_hashlib_with_this_process_engine() -> None:
    _check(seed=3)


@pytest.mark.parametrize("engine", ["numba", "libcrypto"])
def test_kernels_match_hashlib_with_each_engine(engine: str) -> None:
    """Each engine in a fresh process (the engine is chosen at import); libcrypto is skipped
    only where the machine has none, which the child reports."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CHAINSLEUTH_SHA256", None)
    if engine == "numba":
        env["CHAINSLEUTH_SHA256"] = "numba"
    code = (
        "from chainsleuth.parse import hashing; from tests.parse.test_hashing import _check; "
        "print(hashing.ENGINE); _check(seed=5)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = proc.stdout.strip().splitlines()[0]
    if engine == "libcrypto" and got != "libcrypto":
        pytest.skip("no libcrypto with SHA256_Init on this machine")
    assert got == engine
