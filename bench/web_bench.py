"""Render time of a 1,000-node expansion in the web explorer (headless Debian Chromium).

`python -m bench.web_bench [--n 1000] [--repeat 5] [--out bench-output/web_bench.json]`

Builds a small regtest store in which one address (the "hub") paid N other addresses in one
transaction, serves it with `chainsleuth serve --rate 0` on 127.0.0.1, opens the explorer in
Chromium (Playwright, `executable_path=/usr/bin/chromium`), sets the page size to N, searches the
hub and clicks "Expand out". Measured inside the page: from the click to the moment the canvas
holds all N+1 nodes, the dagre layout has run and two animation frames have been painted
(`total_ms`), and the /graph/expand request's own duration (`api_ms`) from the Resource Timing
API. The expansion is collapsed and redone `--repeat` times; min, median and max are printed.
Figures are for the machine it runs on; this is a measurement, never a test assertion.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import log, table
from chainsleuth.core.network import REGTEST
from chainsleuth.parse.serialize import Tx, TxIn, TxOut
from chainsleuth.simulate.blockfiles import BlockFileWriter
from chainsleuth.simulate.chain import mine_block, regtest_genesis

COIN = 100_000_000


def _p2wpkh(n: int) -> bytes:
    return b"\x00\x14" + n.to_bytes(20, "big")


def build_store(root: Path, n: int) -> tuple[Path, str]:
    """A store where the hub's coinbase coins pay `n` addresses in one tx; returns (store, hub)."""
    from chainsleuth.cluster.engine import cluster_store
    from chainsleuth.store.ingest import ingest_blocks_dir
    from chainsleuth.store.store import Store

    hub = _p2wpkh(1)
    genesis = regtest_genesis()
    b1 = mine_block(genesis, 1, [], hub, b"/web-bench/", 50 * COIN)
    cb = b1.txs[0]
    each = (50 * COIN - 10_000) // n
    fanout = Tx(
        2,
        (TxIn(cb.txid(), 0, b"", 0xFFFFFFFD, (b"\x30" * 71, b"\x02" * 33)),),
        tuple(TxOut(each, _p2wpkh(1000 + i)) for i in range(n)),
        0,
    )
    b2 = mine_block(b1, 2, [fanout], _p2wpkh(2), b"/web-bench/", 50 * COIN)
    writer = BlockFileWriter(root / "blocks", REGTEST.magic)
    for b in (genesis, b1, b2):
        writer.write(b.serialize())
    writer.close()
    store = root / "store"
    ingest_blocks_dir(root / "blocks", store)
    cluster_store(store, "conservative")
    rows = (
        Store.open(store)
        .sql("SELECT address FROM addresses ORDER BY sent DESC, address LIMIT 1")
        .to_pylist()
    )
    return store, str(rows[0]["address"])


class _Server:
    """`chainsleuth serve` (the real command) on a free loopback port, in a child process.

    A child process, not the app in this one: bench, like a stage, imports no face."""

    def __init__(self, data_dir: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "chainsleuth", "--data", str(data_dir), "serve"]
        cmd += ["--port", str(port), "--rate", "0"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/api/v1/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                self.close()
                raise RuntimeError(f"chainsleuth serve did not start: {err[-2000:]}")
            time.sleep(0.1)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


EXPAND = """async (n) => {
  const t0 = performance.now();
  document.getElementById('expand-out').click();
  await new Promise((resolve) => {
    const check = () => (document.body.dataset.busy === '0' && window.cy.nodes().length > n)
      ? resolve() : setTimeout(check, 2);
    check();
  });
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const total = performance.now() - t0;
  const api = performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/graph/expand')).pop();
  return {total_ms: total, api_ms: api ? api.duration : null,
          nodes: window.cy.nodes().length, edges: window.cy.edges().length};
}"""


def run(n: int, repeat: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("web_bench: chromium not found (apt-get install chromium)")
    load = [Path("/proc/loadavg").read_text().split()[0]]
    with tempfile.TemporaryDirectory(prefix="web-bench-") as tmp:
        log(f"building a store with a {n}-output fan-out")
        store, hub = build_store(Path(tmp), n)
        server = _Server(store)
        samples: list[dict[str, Any]] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=executable,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            page.goto(server.url + "/")
            page.wait_for_selector("body[data-ready='1']")
            page.fill("#page-size", str(n))
            page.click("#apply-filters")
            page.fill("#search", hub)
            page.click("#search-go")
            page.wait_for_selector("#expand-out")
            # the renderer's CPU time (main thread, whole process) from the DevTools protocol:
            # what the expansion costs the browser, which other jobs on the machine do not
            # inflate as they inflate wall time
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")

            def cpu() -> dict[str, float]:
                got = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                return {k: float(got.get(k, float("nan"))) for k in ("ThreadTime", "ProcessTime")}

            for i in range(repeat):
                page.evaluate("() => performance.clearResourceTimings()")
                before = cpu()
                sample = page.evaluate(EXPAND, n)
                after = cpu()
                sample["main_thread_cpu_ms"] = 1000 * (after["ThreadTime"] - before["ThreadTime"])
                sample["renderer_cpu_ms"] = 1000 * (after["ProcessTime"] - before["ProcessTime"])
                if sample["nodes"] != n + 1:
                    raise RuntimeError(f"expected {n + 1} nodes on the canvas, got {sample}")
                samples.append(sample)
                log(
                    f"run {i + 1}: {sample['total_ms']:.0f} ms (API {sample['api_ms']:.0f} ms; "
                    f"renderer CPU {sample['renderer_cpu_ms']:.0f} ms, main thread "
                    f"{sample['main_thread_cpu_ms']:.0f} ms)"
                )
                page.click("#collapse-out")
                page.wait_for_selector("#expand-out")
            browser.close()
        server.close()
    load.append(Path("/proc/loadavg").read_text().split()[0])
    totals = [s["total_ms"] for s in samples]
    apis = [s["api_ms"] for s in samples if s["api_ms"] is not None]
    threads = [s["main_thread_cpu_ms"] for s in samples]
    renderers = [s["renderer_cpu_ms"] for s in samples]
    return {
        "n_neighbours": n,
        "repeat": repeat,
        "total_ms": {"min": min(totals), "median": statistics.median(totals), "max": max(totals)},
        "api_ms": {"min": min(apis), "median": statistics.median(apis), "max": max(apis)}
        if apis
        else None,
        "main_thread_cpu_ms": _spread(threads),
        "renderer_cpu_ms": _spread(renderers),
        "loadavg_start_end": load,
        "chromium": executable,
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def render(r: dict[str, Any]) -> str:
    """The "web explorer" section of docs/benchmarks.md."""
    t, a = r["total_ms"], r["api_ms"] or {"min": 0, "median": 0, "max": 0}
    rows = [
        ["click → nodes drawn, placed, painted", *(f"{t[k]:,.0f} ms" for k in ("min", "median", "max"))],
        ["of which /graph/expand", *(f"{a[k]:,.0f} ms" for k in ("min", "median", "max"))],
    ]  # fmt: skip
    for key, what in (
        ("renderer_cpu_ms", "renderer CPU time (every thread)"),
        ("main_thread_cpu_ms", "renderer main thread CPU time"),
    ):
        if r.get(key):
            rows.append([what, *(f"{r[key][k]:,.0f} ms" for k in ("min", "median", "max"))])
    loads = " → ".join(r.get("loadavg_start_end") or ["?"])
    return (
        "\n## Web explorer: a 1,000-node expansion (issue 14)\n\n"
        f"Headless Chromium ({r['chromium']}) on `chainsleuth serve` (loopback): an address that "
        f"paid {r['n_neighbours']:,} others expanded in one page, {r['repeat']} runs "
        f"(the issue's bound: under 2 s); load average {loads}. CPU times from the DevTools "
        "protocol (`Performance.getMetrics`). Measured by `python -m bench.web_bench`.\n\n"
        + table(["", "min", "median", "max"], rows)
        + "\n"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("bench-output/web_bench.json"))
    args = ap.parse_args(argv)
    result = run(args.n, args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(render(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
