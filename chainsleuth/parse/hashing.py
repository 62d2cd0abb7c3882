"""Batched double-SHA256 in numba kernels that release the GIL: txids, block hashes, merkle roots.

Why: hashing every transaction through `hashlib` costs a Python call (and two objects) per
message and holds the GIL for messages under 2 KiB, which is most transactions and every merkle
node; the parse threads then take turns instead of running side by side. These kernels walk a
whole batch with the GIL released.

Two SHA-256 engines, measured in docs/design/parse.md:
- `libcrypto`: OpenSSL's `SHA256_Init/Update/Final` called from numba (the library `hashlib`
  itself uses, so SHA-NI where the CPU has it). The symbols are bound by name through
  llvmlite, so the kernels stay in numba's on-disk cache.
- `numba`: the portable SHA-256 of `address_kernels` (no SHA-NI; several times slower per byte),
  used only when no libcrypto can be loaded.

`ENGINE` says which one this process uses. Called by `chainsleuth.parse.blocks`.
"""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

import numpy as np
from llvmlite import binding as llvm
from numba import njit, types

from chainsleuth.parse.address_kernels import _sha256_into


def _load_libcrypto() -> bool:
    """Make OpenSSL's SHA-256 functions visible to numba's linker; False when there is no libcrypto.

    The library `hashlib` links is preferred (same build, already mapped into the process).
    `CHAINSLEUTH_SHA256=numba` forces the portable kernel (for tests and measurements).
    """
    if os.environ.get("CHAINSLEUTH_SHA256", "") == "numba":
        return False
    candidates: list[str] = []
    try:
        import _hashlib

        maps = Path("/proc/self/maps")
        if maps.exists() and _hashlib.__file__:
            for line in maps.read_text().splitlines():
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if "libcrypto" in Path(path).name:
                    candidates.append(path)
                    break
    except (ImportError, OSError):
        pass
    found = ctypes.util.find_library("crypto")
    if found:
        candidates.append(found)
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
            if not all(hasattr(lib, f"SHA256_{f}") for f in ("Init", "Update", "Final")):
                continue
            llvm.load_library_permanently(name)
        except (OSError, RuntimeError):
            continue
        return True
    return False


ENGINE = "libcrypto" if _load_libcrypto() else "numba"
_USE_LIBCRYPTO = ENGINE == "libcrypto"  # a compile-time constant of the kernels below

# SHA256_Init/Update/Final over a caller-owned SHA256_CTX (112 bytes in OpenSSL 1.1 and 3.x).
# Not the one-shot SHA256(): in OpenSSL 3 that fetches an EVP digest on every call, which made
# a 64-byte merkle node 4.6x as expensive (measured: 0.81 s against 0.18 s for 1 M nodes).
_CTX_BYTES = 256
_vp = types.voidptr
_SHA256_INIT = types.ExternalFunction("SHA256_Init", types.intc(_vp))
_SHA256_UPDATE = types.ExternalFunction("SHA256_Update", types.intc(_vp, _vp, types.uintp))
_SHA256_FINAL = types.ExternalFunction("SHA256_Final", types.intc(_vp, _vp))


@njit(cache=True, nogil=True)
def _scratch() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Working memory of `_dsha`: the inner digest, and the portable kernel's block, message
    schedule and state (allocated once per kernel call, not per message)."""
    return (
        np.empty(32, np.uint8),
        np.empty(_CTX_BYTES, np.uint8),
        np.empty(64, np.int64),
        np.empty(8, np.int64),
    )


@njit(cache=True, nogil=True, inline="always")
def _dsha_libcrypto(
    msg: np.ndarray,
    out: np.ndarray,
    mid: np.ndarray,
    block: np.ndarray,
    w: np.ndarray,
    state: np.ndarray,
) -> None:
    ctx = block.ctypes.data  # the SHA256_CTX lives in the portable kernel's block scratch
    _SHA256_INIT(ctx)
    _SHA256_UPDATE(ctx, msg.ctypes.data, msg.shape[0])
    _SHA256_FINAL(mid.ctypes.data, ctx)
    _SHA256_INIT(ctx)
    _SHA256_UPDATE(ctx, mid.ctypes.data, 32)
    _SHA256_FINAL(out.ctypes.data, ctx)


@njit(nogil=True, inline="always")
def _dsha_portable(
    msg: np.ndarray,
    out: np.ndarray,
    mid: np.ndarray,
    block: np.ndarray,
    w: np.ndarray,
    state: np.ndarray,
) -> None:
    _sha256_into(msg, mid, block[:64], w, state)
    _sha256_into(mid, out, block[:64], w, state)


# The engine is chosen once, at import. Only the libcrypto kernels are cached: numba's cache
# does not tell the two engines apart (it keys on the source, not on `_dsha`), and code compiled
# against `SHA256` must never be loaded where that symbol is not bound.
_dsha = _dsha_libcrypto if _USE_LIBCRYPTO else _dsha_portable


@njit(cache=_USE_LIBCRYPTO, nogil=True)
def hash_ranges(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, out: np.ndarray) -> None:
    """out[i] = double-SHA256(buf[starts[i]:ends[i]]), for (n, 32) uint8 `out`."""
    mid, block, w, state = _scratch()
    for i in range(starts.shape[0]):
        _dsha(buf[starts[i] : ends[i]], out[i], mid, block, w, state)


@njit(cache=_USE_LIBCRYPTO, nogil=True)
def merkle_roots(leaves: np.ndarray, first: np.ndarray, out: np.ndarray) -> None:
    """Bitcoin's merkle root of each group of (n, 32) leaves: group b is rows
    [first[b], first[b+1]); an empty group's root is 32 zero bytes, an odd level's last
    node is paired with itself."""
    mid, block, w, state = _scratch()
    pair = np.empty(64, np.uint8)
    most = 0
    for b in range(first.shape[0] - 1):
        most = max(most, first[b + 1] - first[b])
    level = np.empty(((most + 1) // 2 + 1) * 64, np.uint8)
    for b in range(first.shape[0] - 1):
        lo = first[b]
        n = first[b + 1] - lo
        if n == 0:
            out[b, :] = 0
            continue
        if n == 1:
            out[b, :] = leaves[lo]
            continue
        # The first level reads the leaves; later ones work in place in `level` (node k of
        # the next level is written over pair k of this one, after that pair was read).
        for k in range(0, n, 2):
            j = k + 1 if k + 1 < n else k
            pair[:32] = leaves[lo + k]
            pair[32:] = leaves[lo + j]
            _dsha(pair, level[16 * k : 16 * k + 32], mid, block, w, state)
        n = (n + 1) // 2
        while n > 1:
            if n % 2:
                level[32 * n : 32 * n + 32] = level[32 * (n - 1) : 32 * n]
                n += 1
            for k in range(0, n, 2):
                node = level[32 * k : 32 * k + 64]
                _dsha(node, level[16 * k : 16 * k + 32], mid, block, w, state)
            n //= 2
        out[b, :] = level[:32]
