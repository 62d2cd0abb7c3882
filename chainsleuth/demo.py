"""`make demo`: simulate the Welcome-to-Video world, ingest it, and show what is there.

Each stage that exists adds its step here; it must run on a fresh clone in about two minutes.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console


def run_demo(out: Path, console: Console) -> None:
    """Run every stage that exists on the small simulated world under `out`."""
    try:
        from chainsleuth.simulate import simulate  # type: ignore[attr-defined]
    except ImportError:
        console.print("demo arrives with the simulator")
        return
    from chainsleuth.store.ingest import ingest_blocks_dir
    from chainsleuth.store.store import Store

    out = Path(out)
    started = time.perf_counter()
    console.print(f"[bold]1. simulate[/] the small world into {out}/world")
    world = simulate(out / "world", seed=1, scale="small", xor=False)
    console.print(f"   {world.n_txs:,} transactions in {world.n_blocks:,} blocks")
    console.print(f"[bold]2. ingest[/] {out}/world/blocks into {out}/store")
    report = ingest_blocks_dir(out / "world" / "blocks", out / "store")
    console.print(
        f"   {report.n_txs:,} txs, {report.n_outputs:,} outputs, {report.n_new_addresses:,} "
        f"addresses in {report.seconds:.1f} s ({report.n_txs / max(report.seconds, 1e-9):,.0f} tx/s);"
        f" {len(report.stale_blocks)} stale block(s) left out"
    )
    store = Store.open(out / "store")
    top = store.sql(
        "SELECT address, n_txs, received FROM addresses ORDER BY n_txs DESC LIMIT 5"
    ).to_pylist()
    console.print("[bold]3. busiest addresses[/]")
    for row in top:
        console.print(
            f"   {row['address']}  {row['n_txs']:>6,} txs  {row['received'] / 1e8:,.4f} BTC"
        )
    console.print(
        f"\nDone in {time.perf_counter() - started:.0f} s. Try:\n"
        f"  .venv/bin/chainsleuth --data {out}/store status\n"
        f'  .venv/bin/chainsleuth --data {out}/store sql "SELECT * FROM blocks ORDER BY height DESC LIMIT 5"'
    )
