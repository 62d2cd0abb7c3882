"""`simulate()`: build a world, write its chain as Bitcoin Core block files and its ground truth.

This is the library entry point behind `chainsleuth simulate` and `chainsleuth demo`; notebook
users call it directly:

    >>> from chainsleuth.simulate import simulate
    >>> summary = simulate(Path("world"), seed=7, scale="small")   # doctest: +SKIP
    >>> summary.tip_height, summary.n_txs                          # doctest: +SKIP

Everything written under `out` is a function of (seed, scale, xor, profile) only, except `timing.json`,
which records how long generation took. The layout is documented in docs/simulator.md.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import random
import shutil
import time as _time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from chainsleuth.core.network import REGTEST
from chainsleuth.simulate.blockfiles import BlockFileWriter
from chainsleuth.simulate.chain import ChainBuilder
from chainsleuth.simulate.economy.model import COINBASE_MATURITY, SCALES
from chainsleuth.simulate.economy.world import World
from chainsleuth.simulate.profiles import Profile
from chainsleuth.simulate.profiles import profile as get_profile
from chainsleuth.simulate.truth import write_truth

__all__ = ["SimulationSummary", "simulate", "block_times", "xor_key_for"]

#: (blocks done, blocks in all, transactions so far)
Progress = Callable[[int, int, int], None]

_START = int(dt.datetime(2018, 1, 1, tzinfo=dt.UTC).timestamp())
_END = int(dt.datetime(2019, 12, 31, 23, 0, tzinfo=dt.UTC).timestamp())
_OWNED_DIRS = ("blocks", "truth", "seeds", "tags")
_OWNED_FILES = ("world.json", "timing.json")


@dataclass
class SimulationSummary:
    """What `simulate()` built: main chain size and tip, files, stale blocks, time taken."""

    n_blocks: int  # main-chain blocks, genesis included
    n_txs: int  # main-chain transactions, coinbases (and genesis's) included
    tip_height: int
    tip_hash: str
    n_files: int  # blk*.dat files
    stale_hashes: list[str]
    seconds: float
    paths: dict[str, Path] = field(default_factory=dict)


def xor_key_for(seed: int) -> bytes:
    """The 8-byte blocks-directory XOR key of a seed's `--xor` world."""
    return hashlib.sha256(b"chainsleuth-simulate-xor" + seed.to_bytes(8, "little")).digest()[:8]


def block_times(tip_height: int, rng: random.Random) -> list[int]:
    """Block times for heights 0..tip: regtest genesis, 100 ten-minute blocks from 2018-01-01
    (the coinbases that must mature first), then the rest spread evenly to the end of 2019.
    """
    times = [1296688602]
    t = _START
    for _ in range(1, COINBASE_MATURITY + 1):
        t += rng.randint(300, 900)
        times.append(t)
    n = tip_height - COINBASE_MATURITY
    start = max(t, _START + 86_400)
    step = (_END - start) / max(n, 1)
    for i in range(1, n + 1):
        jitter = rng.uniform(-0.3, 0.3) * step
        times.append(max(int(start + i * step + jitter), times[-1] + 1))
    return times


def _clean(out: Path) -> None:
    for name in _OWNED_DIRS:
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    for name in _OWNED_FILES:
        (out / name).unlink(missing_ok=True)


@contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """Python's cycle collector off for the block (on again after, if it was on).

    The world is millions of live container objects (wallets' coins, addresses, transactions
    waiting for their block) that stay alive to the end; every collection of the older
    generations walks all of them, which was ~40% of a large world's simulation (py-spy,
    hard large 1). Nothing here relies on the collector: what the simulator drops is freed by
    reference counting, and what it builds does not depend on when (or whether) it runs.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def simulate(
    out: Path,
    seed: int = 1,
    scale: str = "small",
    xor: bool = False,
    progress: Progress | None = None,
    profile: str | Profile = "easy",
) -> SimulationSummary:
    """Build the `scale` world of `seed` under `out` (its blocks/, truth/, seeds/, tags/,
    world.json and timing.json are replaced; nothing else there is touched). `profile` names
    how adversarial the world is (`easy`, `realistic`, `hard`; docs/simulator.md, "Profiles").
    """
    knobs = get_profile(profile)
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    started = _time.perf_counter()
    sc = SCALES[scale]
    if knobs.untagged_exchanges >= sc.n_exchanges:
        # said now, not after the chain is built (truth.untagged_exchanges says it again)
        raise ValueError(
            f"profile {knobs.name!r}: untagged_exchanges {knobs.untagged_exchanges} leaves none "
            f"of the {scale} scale's {sc.n_exchanges} exchanges tagged"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _clean(out)
    for name in _OWNED_DIRS:
        (out / name).mkdir()
    rng = random.Random(seed * 1_000_003 + 11)
    times = block_times(sc.tip_height, rng)
    span = sc.tip_height - COINBASE_MATURITY
    stale = {}
    for frac, length, before in sc.stale:
        stale[COINBASE_MATURITY + span * frac // 1000] = (length, before)
    busy = {h + d for h in stale for d in range(-3, 6)}
    candidates = [h for h in range(COINBASE_MATURITY + 5, sc.tip_height - 3) if h not in busy]
    swaps = sorted(rng.sample(candidates, sc.n_swaps))
    swaps = [h for i, h in enumerate(swaps) if i == 0 or h - swaps[i - 1] > 2]
    writer = BlockFileWriter(
        out / "blocks", REGTEST.magic, sc.max_file_size, xor_key_for(seed) if xor else None
    )
    chain = ChainBuilder(writer, seed, stale, swaps)
    with _cycle_collection_paused(), (out / "truth" / "txs.csv").open("w", newline="\n") as tx_log:
        tx_log.write("txid,block_height,kind,wallet_id,change_vouts\n")
        tx_log.write(f"{chain_genesis_txid()},0,genesis,,\n")
        world = World(seed, sc, tx_log, knobs)
        for height in range(1, sc.tip_height + 1):
            txs = world.step(height, times[height])
            pool = world.pick_pool()
            others = [p for p in world.pools if p is not pool]
            payouts = [(p.addr.spk, f"/{p.wid}/".encode()) for p in others if p.addr is not None]
            assert pool.addr is not None
            cb = chain.add(height, times[height], txs, world.fees, pool.addr.spk,
                           f"/{pool.wid}/".encode(), payouts)  # fmt: skip
            world.credit_coinbase(pool, cb)
            if progress is not None:
                progress(height, sc.tip_height, world.n_txs + 1)
        chain.finish()
    with _cycle_collection_paused():
        paths = write_truth(out, world, chain, seed=seed, scale=scale, xor=xor, network=REGTEST)
    seconds = _time.perf_counter() - started
    n_txs = chain.n_main_txs
    (out / "timing.json").write_text(
        json.dumps(
            {"generation_seconds": round(seconds, 3), "transactions": n_txs,
             "transactions_per_second": round(n_txs / seconds, 1)},
            indent=2,
        ) + "\n"
    )  # fmt: skip
    paths["timing"] = out / "timing.json"
    return SimulationSummary(
        n_blocks=chain.tip_height + 1,
        n_txs=n_txs,
        tip_height=chain.tip_height,
        tip_hash=chain.tip_hash,
        n_files=len(writer.paths),
        stale_hashes=chain.stale_hashes,
        seconds=seconds,
        paths=paths,
    )


def chain_genesis_txid() -> str:
    """Txid of the genesis coinbase (display order)."""
    from chainsleuth.simulate.chain import regtest_genesis

    return regtest_genesis().txs[0].txid_hex()
