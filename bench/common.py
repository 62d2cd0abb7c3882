"""What every bench module shares: the repository root, logging to stderr, one measurement in
a fresh interpreter, the cached simulated world, and the Markdown formatting of figures.

It exists so that `bench.run` (the whole `make bench`) and the benches it runs
(`bench.investigate_bench`) import it rather than each other: no import cycle in bench/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def measure(kind: str, **args: Any) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its last stdout line is the JSON result."""
    cmd = [sys.executable, "-m", "bench.measure", kind, json.dumps(args)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def simulated_world(worlds: Path, scale: str) -> tuple[Path, float]:
    """The simulated world of this scale (cached), and the seconds its generation took."""
    world = worlds / f"{scale}-1"
    if not (world / "world.json").exists():
        subprocess.run(
            [sys.executable, "-m", "chainsleuth", "simulate", "--out", str(world)]
            + ["--scale", scale, "--seed", "1"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    timing = json.loads((world / "timing.json").read_text())
    return world, float(timing["generation_seconds"])


# ---------------------------------------------------------------------------------------------
# formatting


def si(x: float, unit: str = "", digits: int = 3) -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.{digits}g} {prefix}{unit}".rstrip()
    return f"{x:.{digits}g} {unit}".rstrip()


def secs(x: float) -> str:
    return f"{x * 1000:.2f} ms" if x < 0.1 else f"{x:.2f} s"


def mib(x: float) -> str:
    return f"{x / 2**20:,.0f} MiB"


def duration(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def scaling(by_threads: dict[Any, float]) -> str:
    """Speed-up from the fewest to the most threads (or cores), e.g. '1.42x'."""
    keys = sorted(by_threads, key=int)
    return f"{by_threads[keys[0]] / by_threads[keys[-1]]:.2f}x"


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def evict(data_dir: Path) -> None:
    """Drop every file of a store from the page cache (clean pages only; no root needed), so the
    next read is cold."""
    for path in Path(data_dir).rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def quantiles(seconds: list[float]) -> dict[str, float]:
    """Count, p50, p99 and max of timings given in seconds, in milliseconds."""
    ms = np.asarray(seconds) * 1000
    return {
        "n": int(ms.shape[0]),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }
