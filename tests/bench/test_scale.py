"""`make bench-scale` (bench/scale.py): the fits and projections on numbers with a known answer,
the memory limit's arithmetic, the re-linker's growth knobs, and one end-to-end run on a tiny
chain (the real commands in child processes, the limited ingest in a memory cgroup)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from bench import scale, synth_chain

ROOT = Path(__file__).resolve().parents[2]


def test_fit_recovers_a_line_and_a_power_law() -> None:
    x = [2e6, 5e6, 10e6, 20e6]
    line = scale.fit(x, [300e6 + 14.0 * v for v in x])
    assert line["a"] == pytest.approx(300e6, rel=1e-9)
    assert line["b"] == pytest.approx(14.0, rel=1e-9)
    power = scale.fit(x, [3.0 * v**1.2 for v in x])
    assert power["k"] == pytest.approx(1.2, rel=1e-9)
    assert power["c"] == pytest.approx(3.0, rel=1e-6)
    one = scale.fit([4.0], [10.0])  # one point: through the origin
    assert (one["a"], one["b"], one["k"]) == (0.0, 2.5, 1.0)


def test_project_takes_the_largest_of_drivers_and_models() -> None:
    # RSS = 1 GB + 20 B per UTXO; UTXOs are 1/10 of txs here but 180 M / 1.1 G at mainnet,
    # so projecting by txs says 1 GB + 2 B x 1.1 G = 3.2 GB and by UTXOs 1 GB + 20 x 180 M
    # = 4.6 GB; a power law through these points projects less than the line (k < 1).
    pts = [{"txs": t, "utxos": t / 10, "rss": 1e9 + 20 * t / 10} for t in (2e6, 5e6, 20e6)]
    mainnet = {"txs": 1.1e9, "utxos": 180e6}
    p = scale.project(pts, "rss", ("txs", "utxos"), mainnet)
    assert p["by"]["txs"]["linear"] == pytest.approx(1e9 + 2 * 1.1e9)
    assert p["by"]["utxos"]["linear"] == pytest.approx(1e9 + 20 * 180e6)
    assert p["by"]["utxos"]["power"] < p["by"]["utxos"]["linear"]
    assert (p["driver"], p["model"]) == ("utxos", "linear")
    assert p["value"] == pytest.approx(4.6e9)
    # faster than linear: the power law is the larger projection
    pts = [{"txs": t, "y": t**1.5} for t in (1e6, 2e6, 4e6)]
    q = scale.project(pts, "y", ("txs",), {"txs": 1e9})
    assert q["model"] == "power"
    assert q["value"] == pytest.approx(1e9**1.5, rel=1e-6)


def test_limit_and_delta_scale_with_the_chain() -> None:
    assert scale.memory_limit(1e9, 20_000_000) == int(20e6 / 1.1e9 * 16e9 + 1e9)
    assert scale.delta_max_for(1_100_000_000) == 1 << 26
    assert scale.delta_max_for(20_000_000) == int((1 << 26) * 20e6 / 1.1e9)
    assert [scale.parse_size(s) for s in ("2M", "20k", "1.5M", "300")] == [
        2_000_000,
        20_000,
        1_500_000,
        300,
    ]


def test_hold_and_reuse_knobs(tmp_path: Path) -> None:
    templates = synth_chain.load_templates()
    plain = synth_chain.build_chain(tmp_path / "a", passes=3, templates=templates)
    grown = synth_chain.build_chain(
        tmp_path / "b", passes=3, templates=templates, hold_rate=0.2, reuse_rate=0.5
    )
    assert plain.held_outputs == 0
    spendable = sum(t.spend_tx.shape[0] for t in templates) * 3
    assert 0.15 * spendable < grown.held_outputs < 0.25 * spendable
    # held outputs never reach the pool, so more fan-out funding is needed
    assert grown.fanout_txs > plain.fanout_txs


def test_prefix_chain_is_the_chain_built_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint of a longer build, linked out, is byte for byte what building that many
    passes alone writes, also when it ends inside a later blk file (small files here)."""
    monkeypatch.setattr(synth_chain, "MAX_BLOCKFILE_SIZE", 4 << 20)
    templates = synth_chain.load_templates()
    per_pass = sum(t.n_tx for t in templates)
    rates = {"hold_rate": 0.075, "reuse_rate": 0.3, "templates": templates}
    full = synth_chain.build_chain(
        tmp_path / "full", passes=4, checkpoints=[1, per_pass + 1], **rates
    )
    assert [cp["passes"] for cp in full.checkpoints] == [1, 2]
    assert full.blk_files > full.checkpoints[1]["blk_files"] > 1
    for cp in full.checkpoints:
        alone = synth_chain.build_chain(
            tmp_path / f"alone{cp['passes']}", passes=cp["passes"], **rates
        )
        linked = synth_chain.prefix_chain(tmp_path / "full", cp, tmp_path / f"pre{cp['passes']}")
        a, b = asdict(alone), asdict(linked)
        for volatile in ("seconds", "blocks_dir"):
            a.pop(volatile), b.pop(volatile)
        assert a == b
        names = sorted(p.name for p in (tmp_path / f"alone{cp['passes']}").iterdir())
        assert names == sorted(p.name for p in (tmp_path / f"pre{cp['passes']}").iterdir())
        for name in names:
            one = (tmp_path / f"alone{cp['passes']}" / name).read_bytes()
            assert one == (tmp_path / f"pre{cp['passes']}" / name).read_bytes(), name
    # bench.scale picks the checkpoint build_chain(min_txs=...) would have stopped at
    assert scale._checkpoint(full, per_pass + 1)["passes"] == 2
    assert scale._checkpoint(full, per_pass)["passes"] == 1
    with pytest.raises(KeyError):
        scale._checkpoint(full, 3 * per_pass)


@pytest.mark.slow  # seven fresh interpreters: ~20 s of CPU
def test_bench_scale_end_to_end_tiny(tmp_path: Path) -> None:
    out = tmp_path / "scale.md"
    cmd = [sys.executable, "-m", "bench.scale", "--sizes", "20k", "--work", str(tmp_path / "w")]
    cmd += ["--out", str(out), "--lookups", "5", "--cli-lookups", "1", "--seeds-n", "10"]
    cmd += ["--no-warm-up"]  # a cold numba cache only slows the timings, unchecked here
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=600)
    res = json.loads(out.with_suffix(".json").read_text())
    (size,) = res["sizes"]
    assert size["store"]["txs"] >= 20_000
    assert size["store"]["utxos"] > 0
    for stage in ("ingest", "cluster", "investigate"):
        assert size[stage]["rc"] == 0
        assert size[stage]["peak_rss_bytes"] > 50e6
        assert size[stage]["cpu_seconds"] > 0
    cold = size["address_cold"]
    assert cold["n"] == 5 and cold["p99_ms"] > 0
    # three rounds by default; the reported p99 is their median, so it lies among them
    assert len(cold["rounds"]) == 3 and all(q["n"] == 5 for q in cold["rounds"])
    assert cold["p99_ms"] in sorted(q["p99_ms"] for q in cold["rounds"])[1:2]
    assert cold["read_kib"]["p99"] >= cold["read_kib"]["p50"] >= 0
    assert cold["major_faults"]["max"] >= 0
    lim = res["limit_run"]
    assert lim["finished"], lim["stderr_tail"]
    assert lim["limit"]["limit_bytes"] == scale.memory_limit(
        size["ingest"]["peak_rss_bytes"], size["chain"]["n_txs"]
    )
    metrics = {p["metric"]: p for p in res["projections"]}
    assert math.isfinite(metrics["ingest.peak_rss_bytes"]["value"])
    text = out.read_text()
    assert "Projection to mainnet" in text and "hard memory limit" in text
    assert not (tmp_path / "w" / "20k").exists()  # each chain is deleted after measuring


def _size(
    label: str, txs: int, update_s: float, update_b: float, incremental: bool = True, cpu=0.1
) -> dict:
    return {
        "label": label,
        "store": {"txs": txs},
        "address_cold": {"p99_ms": 20.0},
        "cluster_update": {
            "median_seconds": update_s,
            "median_cpu_seconds": cpu,
            "median_bytes_published": update_b,
            "all_incremental": incremental,
        },
    }


def test_verdicts_per_target() -> None:
    """Each issue-13 target gets a verdict from the projection or the measurement behind it."""
    proj = [
        {"metric": "ingest.peak_rss_bytes", "value": 17e9, "driver": "txs", "model": "linear"},
        {"metric": "ingest.peak_anon_bytes", "value": 15e9, "driver": "txs", "model": "power"},
        {"metric": "cluster.peak_rss_bytes", "value": 23e9, "driver": "utxos", "model": "linear"},
    ]
    res = {
        "sizes": [_size("2M", 2_000_000, 0.9, 0.8e6), _size("20M", 20_000_000, 0.3, 0.79e6)],
        "projections": proj,
        "limit_run": {"label": "20M", "skipped": "thrashed for an hour last time"},
    }
    rows = {v["target"]: v for v in scale.verdicts(res)}
    assert rows["ingest peak RSS at mainnet"]["verdict"] == "not met"
    assert "17.00 GB" in rows["ingest peak RSS at mainnet"]["figure"]
    assert rows["ingest peak RssAnon at mainnet"]["verdict"] == "met"
    assert rows["cluster peak RSS at mainnet"]["verdict"] == "met"
    assert rows["investigate peak RSS at mainnet"]["verdict"] == "not measured"
    assert rows["cold `address` lookup p99, flat"]["verdict"] == "met"
    upd = next(v for t, v in rows.items() if t.startswith("one-block cluster update"))
    assert upd["verdict"] == "met" and "20M 0.30 s / 0.10 CPU s" in upd["figure"]
    lim = rows["ingest under a hard memory limit"]
    assert lim["verdict"] == "not run" and "thrashed" in lim["figure"]
    # growing bytes per block, or an update that published a new base, is not flat
    res["sizes"][1] = _size("20M", 20_000_000, 0.3, 2.5e6)
    assert scale.update_flat(res["sizes"])["ok"] is False
    res["sizes"][1] = _size("20M", 20_000_000, 0.3, 0.8e6, incremental=False)
    assert scale.update_flat(res["sizes"])["ok"] is False
    res["sizes"][1] = _size("20M", 20_000_000, 1.7, 0.8e6)
    assert scale.update_flat(res["sizes"])["ok"] is True  # 1.7 / 0.9 s: within 2x
    res["sizes"][1] = _size("20M", 20_000_000, 2.0, 0.8e6)
    assert scale.update_flat(res["sizes"])["ok"] is False  # 2.0 / 0.9 s: not
    res["sizes"][1] = _size("20M", 20_000_000, 0.9, 0.8e6, cpu=0.25)
    assert scale.update_flat(res["sizes"])["ok"] is False  # CPU 0.25 / 0.1 s: not
    res["sizes"][1]["address_cold"]["p99_ms"] = 120.0
    assert {v["target"]: v for v in scale.verdicts(res)}["cold `address` lookup p99, flat"][
        "verdict"
    ] == "not met"


@pytest.fixture(scope="module")
def tiny_chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared chain for --sizes 20k, built as `--chain-only` builds it."""
    work = tmp_path_factory.mktemp("chain-work")
    assert scale.main(["--sizes", "20k", "--work", str(work), "--chain-only"]) == 0
    return work / "chain"


def test_chain_only_builds_past_the_largest_size(tiny_chain: Path) -> None:
    info = synth_chain.ChainInfo(**json.loads((tiny_chain / "chain.json").read_text()))
    cp = scale._checkpoint(info, 20_000)
    assert info.passes == cp["passes"] + 1  # blocks to append after the largest size
    assert info.n_blocks > cp["n_blocks"]


def test_chain_flag_refuses_what_it_cannot_use(
    tiny_chain: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "link"
    link.symlink_to(tiny_chain)
    base = ["--work", str(tmp_path / "w"), "--no-warm-up"]
    cases = [
        (["--sizes", "20k", "--chain", str(link)], "symbolic link"),
        (["--sizes", "20k", "--chain", str(tmp_path)], "no chain.json"),
        (["--sizes", "20k", "500k", "--chain", str(tiny_chain)], "no checkpoint for 500,000"),
        (["--sizes", "20k", "--chain", str(tiny_chain), "--hold-rate", "0.2"], "hold_rate"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as e:
            scale.main(argv + base)
        text = str(e.value)
        assert text.startswith("bench-scale: --chain") and message in text, text
        assert "\n" not in text
    assert not (tmp_path / "w" / "20k").exists()  # refused before measuring anything


@pytest.mark.slow  # five fresh interpreters on a tiny chain
def test_bench_scale_with_update_on_a_given_chain(tiny_chain: Path, tmp_path: Path) -> None:
    """--chain reuses a built chain without touching it; --with-update appends blocks to the
    clustered store and publishes delta layers, then one full republish; --no-limit-run and
    --note reach the report, which opens with its verdicts."""
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in tiny_chain.rglob("*")}
    out = tmp_path / "scale.md"
    cmd = [sys.executable, "-m", "bench.scale", "--sizes", "20k", "--work", str(tmp_path / "w")]
    cmd += ["--out", str(out), "--chain", str(tiny_chain), "--with-update", "--update-blocks"]
    cmd += ["2", "--stages", "ingest", "cluster", "--no-warm-up", "--note", "load 3.5 (uptime)"]
    cmd += ["--no-limit-run", "the 20 M one thrashed"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=900)
    after = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in tiny_chain.rglob("*")}
    assert after == before  # read-only: not rebuilt, not deleted, not written
    res = json.loads(out.with_suffix(".json").read_text())
    (size,) = res["sizes"]
    u = size["cluster_update"]
    assert len(u["delta"]) == 2 and u["all_incremental"]
    heights = [d["block_height"] for d in u["delta"]]
    assert heights[1] == heights[0] + 1  # one block each
    assert heights[0] == size["chain"]["n_blocks"]  # the block right after the size's chain
    warm = u["warm"]["delta"]  # as many warm updates (not evicted) after the cold ones
    assert [d["cold"] for d in u["delta"] + warm] == [True, True, False, False]
    assert [d["block_height"] for d in warm] == [heights[1] + 1, heights[1] + 2]
    for d in u["delta"] + warm:
        assert d["published"] == "delta" and not d["from_scratch"]
        assert d["bytes_published"] > 0 and d["cpu_seconds"] > 0 and d["txs"] >= 1
        assert d["major_faults"] >= 0 and d["read_bytes"] >= 0
    full = u["full_republish"]
    assert full["published"] == "base" and full["block_height"] == heights[1] + 3
    assert full["bytes_published"] > 10 * u["median_bytes_published"]
    assert u["process"]["peak_rss_bytes"] > 50e6
    assert res["limit_run"] == {"label": "20k", "skipped": "the 20 M one thrashed"}
    text = out.read_text()
    assert text.index("## Verdicts") < text.index("## Chains")
    assert "load 3.5 (uptime)" in text and "the 20 M one thrashed" in text
    assert "**not run**" in text and "full republish" in text and "warm: median wall" in text
    assert not (tmp_path / "w" / "20k").exists()
