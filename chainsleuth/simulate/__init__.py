"""Simulated worlds with ground truth, written as Bitcoin Core block files (`chainsleuth simulate`).

`simulate(out, seed, scale, xor)` builds an economy (exchanges, pools, customers, a darknet
service, CoinJoins, background users), writes its regtest chain under `out/blocks/` exactly as
Bitcoin Core stores one, and the truth about every address under `out/truth/`. Imports are lazy
so that `import chainsleuth.simulate` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chainsleuth.simulate.run import SimulationSummary, simulate

__all__ = ["SCALE_NAMES", "SimulationSummary", "simulate"]

SCALE_NAMES = ("small", "medium", "large")


def __getattr__(name: str) -> Any:
    if name in ("simulate", "SimulationSummary"):
        from chainsleuth.simulate import run

        return getattr(run, name)
    raise AttributeError(name)
