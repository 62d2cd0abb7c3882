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
    assert size["address_cold"]["n"] == 5 and size["address_cold"]["p99_ms"] > 0
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
