"""`chainsleuth ingest --follow`: a subprocess stays at the tip while the test plays the node.

The node side writes blk files the way a running Core 28+ node does (the project's own writer,
`BlockFileWriter(preallocate=True)` with an xor key, lays out each state; the live files only
receive the bytes that changed, in place: appends into the pre-allocated zero tail, the cut-back
of a finished file). It appends blocks, switches to a longer fork (a reorg), leaves a record half
written (a torn write) and finishes it. The follower's store is read while it runs, then it is
stopped with SIGTERM (SIGINT for RPC) and compared with a one-shot ingest of the final files.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chainsleuth.core.errors import InputError
from chainsleuth.core.network import REGTEST
from chainsleuth.parse.serialize import Block
from chainsleuth.simulate.blockfiles import BlockFileWriter
from chainsleuth.sources import blkfiles
from chainsleuth.store.follow import BlocksDirFeed, Poll, StopEvent, follow
from chainsleuth.store.ingest import ingest_blocks_dir, ingest_rpc
from chainsleuth.store.store import Store
from tests.conftest import dump_views, extend_chain, raw, regtest_genesis
from tests.sources.rpc_replay import RpcReplayServer

KEY = bytes.fromhex("5a17c3e9b2468df1")
MAX_FILE = 6_000  # small blk files: the follow crosses from one file to the next
WAIT = 90.0  # seconds: the longest any step may take (a cold subprocess imports numba)


@pytest.fixture(scope="module")
def chains() -> tuple[list[Block], list[Block]]:
    """A: genesis + 14 blocks. B: A's heights 0-11, then 8 other blocks (heights 12-19)."""
    a = extend_chain([regtest_genesis()], 14, seed=31, tag=b"fa")
    b = extend_chain(a[:12], 8, seed=32, tag=b"fb")
    return a, b


class Node:
    """A blocks/ directory written in place as a running Core 28+ node writes it."""

    def __init__(self, root: Path) -> None:
        self.live = root / "blocks"
        self.staging = root / "staging"
        self.received: list[bytes] = []

    def receive(self, blocks: list[Block], torn_cut: int | None = None) -> None:
        """Store `blocks` after those received so far; with `torn_cut`, only the first
        `torn_cut` bytes of the last record reach the disk (the rest stays raw zeros)."""
        self.received += raw(blocks)
        shutil.rmtree(self.staging, ignore_errors=True)
        writer = BlockFileWriter(
            self.staging, REGTEST.magic, max_file_size=MAX_FILE, xor_key=KEY, preallocate=True
        )
        last = (0, 0, 0)
        for block in self.received:
            number, offset = writer.write(block)
            last = (number, offset - 8, len(block) + 8)
        writer.close()
        self.live.mkdir(parents=True, exist_ok=True)
        if not (self.live / "xor.dat").exists():
            shutil.copyfile(self.staging / "xor.dat", self.live / "xor.dat")
        for staged in sorted(self.staging.glob("blk*.dat")):
            data = staged.read_bytes()
            if torn_cut is not None and staged.name == f"blk{last[0]:05d}.dat":
                start = last[1] + torn_cut
                data = data[:start] + bytes(last[1] + last[2] - start) + data[last[1] + last[2] :]
            self._write_in_place(self.live / staged.name, data)

    @staticmethod
    def _write_in_place(path: Path, data: bytes) -> None:
        old = path.read_bytes() if path.exists() else b""
        same = 0
        while same < min(len(old), len(data)) and old[same] == data[same]:
            same += 1
        if same == len(old) == len(data):
            return
        with open(path, "r+b" if path.exists() else "wb") as f:
            f.seek(same)
            f.write(data[same:])
            f.truncate(len(data))
            f.flush()
            os.fsync(f.fileno())


class Follower:
    """`chainsleuth ingest --follow --json` in a subprocess; its JSON lines read in a thread."""

    def __init__(self, data: Path, *source: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chainsleuth", "--data", str(data), "ingest", *source]
            + ["--follow", "--interval", "0.1", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.eof = threading.Event()  # its stdout is closed: every line is in `lines`
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        buffer = ""
        for text in self.proc.stdout:
            buffer += text
            try:
                self.lines.put(json.loads(buffer))
            except json.JSONDecodeError:
                continue  # the final summary spans several lines
            buffer = ""
        self.eof.set()

    def wait_for(self, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.eof.is_set() and self.lines.empty():
                    err = self.proc.stderr.read() if self.proc.stderr else ""
                    raise AssertionError(f"follower exited: {err}") from None
                continue
            self.seen.append(line)
            if check(line):
                return line
        self.kill()
        raise AssertionError(f"timed out waiting for {what}; saw {self.seen}")

    def stop(self, sig: int) -> dict[str, Any]:
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=WAIT)  # stdout is the reader thread's
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        assert self.proc.returncode == 0, err
        assert "Traceback" not in err
        return self.wait_for(lambda line: "stopped" in line, "the final summary")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)


@pytest.fixture
def followers() -> Iterator[list[Follower]]:
    started: list[Follower] = []
    yield started
    for f in started:
        f.kill()


def tip_of(data: Path) -> tuple[int, str] | None:
    return Store.open(data).tip


def test_follow_blocks_dir_through_a_reorg_and_a_torn_write_equals_a_one_shot_ingest(
    tmp_path: Path, chains: tuple[list[Block], list[Block]], followers: list[Follower]
) -> None:
    a, b = chains
    node = Node(tmp_path)
    node.receive(a[:9])
    data = tmp_path / "data"
    follower = Follower(data, "--blocks-dir", str(node.live))
    followers.append(follower)

    def at(block: Block) -> Callable[[dict[str, Any]], bool]:
        return lambda line: line.get("tip_hash") == block.header.hash_hex()

    follower.wait_for(at(a[8]), "the first catch-up")
    assert tip_of(data) == (8, a[8].header.hash_hex())  # readers see each commit at once

    # another process cannot write the same data directory meanwhile
    other = subprocess.run(
        [sys.executable, "-m", "chainsleuth", "--data", str(data), "ingest"]
        + ["--blocks-dir", str(node.live)],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert "being written by another chainsleuth ingest" in other.stderr

    node.receive(a[9:])  # heights 9-14, into the next blk files
    follower.wait_for(at(a[14]), "chain A's tip")
    assert tip_of(data) == (14, a[14].header.hash_hex())
    assert len(list(node.live.glob("blk*.dat"))) >= 3

    node.receive(b[12:18])  # the longer fork B: heights 12-17 replace A's 12-14
    follower.wait_for(at(b[17]), "the reorg to chain B")
    assert any(line.get("rolled_back_blocks") for line in follower.seen)
    assert {line["fork_height"] for line in follower.seen if line.get("rolled_back_blocks")} == {11}
    assert tip_of(data) == (17, b[17].header.hash_hex())

    node.receive(b[18:19], torn_cut=8 + 60)  # magic, length and part of the header on disk
    torn = follower.wait_for(lambda line: line.get("left_for_next_run") is not None, "torn")
    assert torn["tip_hash"] == b[17].header.hash_hex()
    assert torn["left_for_next_run"]["bytes"] <= 8 + 60
    node.received.pop()
    node.receive(b[18:])  # the node finishes the block and writes the next one
    follower.wait_for(at(b[19]), "chain B's tip after the torn write")
    summary = follower.stop(signal.SIGTERM)
    assert summary["stopped"] == "signal SIGTERM"
    assert summary["tip_height"] == 19 and summary["reorgs"] >= 1

    report = ingest_blocks_dir(node.live, tmp_path / "one-shot")
    assert report.tip_hash == b[19].header.hash_hex()
    followed, once = Store.open(data), Store.open(tmp_path / "one-shot")
    assert followed.tip == once.tip == (19, b[19].header.hash_hex())
    assert followed.counts == once.counts
    assert followed.counts["txs"] == sum(len(x.txs) for x in b)
    assert dump_views(data) == dump_views(tmp_path / "one-shot")


def test_follow_rpc_through_a_reorg_equals_a_one_shot_ingest(
    tmp_path: Path, chains: tuple[list[Block], list[Block]], followers: list[Follower]
) -> None:
    a, b = chains
    data = tmp_path / "data"
    with RpcReplayServer.scripted(raw(a[:10]), chain="regtest") as server:
        credentials = ["--rpc-user", server.user, "--rpc-password", server.password]
        follower = Follower(data, "--rpc", server.url, *credentials)
        followers.append(follower)
        follower.wait_for(lambda line: line.get("tip_height") == 9, "the first catch-up")
        server.set_chain(raw(a))
        follower.wait_for(lambda line: line.get("tip_height") == 14, "chain A's tip")
        server.set_chain(raw(b))
        line = follower.wait_for(lambda line: line.get("tip_height") == 19, "the reorg")
        assert (line["rolled_back_blocks"], line["fork_height"]) == (3, 11)
        assert tip_of(data) == (19, b[19].header.hash_hex())
        summary = follower.stop(signal.SIGINT)  # Ctrl-C
        assert summary["stopped"] == "signal SIGINT" and summary["blocks"] == 10 + 5 + 8

        from chainsleuth.sources.rpc import RpcSource

        with RpcSource(server.url, user=server.user, password=server.password) as source:
            ingest_rpc(source, tmp_path / "one-shot")
    assert Store.open(data).counts == Store.open(tmp_path / "one-shot").counts
    assert dump_views(data) == dump_views(tmp_path / "one-shot")


def test_follow_reports_a_source_error_and_carries_on_but_fails_fast_on_the_first_poll(
    tmp_path: Path, chains: tuple[list[Block], list[Block]]
) -> None:
    a, _ = chains
    node = Node(tmp_path)
    with pytest.raises(InputError, match="not a directory"):
        follow(BlocksDirFeed(node.live), tmp_path / "data", interval=0.01, max_polls=3)

    node.receive(a[:5])
    polls: list[Poll] = []
    hidden = tmp_path / "hidden"

    def on_poll(poll: Poll) -> None:
        polls.append(poll)
        if poll.number == 1:
            node.live.rename(hidden)  # e.g. the disk holding the node is unmounted
        elif poll.number == 2:
            hidden.rename(node.live)
            node.receive(a[5:])

    summary = follow(
        BlocksDirFeed(node.live), tmp_path / "data", interval=0.01, on_poll=on_poll, max_polls=3
    )
    assert [p.report.n_blocks if p.report else None for p in polls] == [5, None, 10]
    assert polls[1].error is not None and "not a directory" in polls[1].error
    assert (summary.errors, summary.blocks, summary.tip_height) == (1, 15, 14)
    assert summary.stopped_by == "max polls"
    assert dump_views(tmp_path / "data") == dump_views(_one_shot(node.live, tmp_path / "once"))


def _one_shot(blocks: Path, data: Path) -> Path:
    ingest_blocks_dir(blocks, data)
    return data


def test_stop_is_honoured_at_a_commit_boundary_mid_catch_up(
    tmp_path: Path, chains: tuple[list[Block], list[Block]]
) -> None:
    a, _ = chains
    node = Node(tmp_path)
    node.receive(a)
    stop = StopEvent()
    batches: list[int] = []

    def progress(report: Any, total: int) -> None:
        batches.append(report.n_blocks)
        if len(batches) == 2:
            stop.stop("test")

    summary = follow(
        BlocksDirFeed(node.live, batch_bytes=1_000),
        tmp_path / "data",
        interval=0.01,
        stop=stop,
        progress=progress,
    )
    assert summary.stopped_by == "test" and summary.polls == 1
    store = Store.open(tmp_path / "data")
    assert store.counts["blocks"] == batches[1] < len(a)  # committed up to that batch, no more
    assert store.tip == (batches[1] - 1, a[batches[1] - 1].header.hash_hex())


def test_scan_cache_reads_only_the_newest_and_changed_files(
    tmp_path: Path, chains: tuple[list[Block], list[Block]], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = chains
    node = Node(tmp_path)
    node.receive(a)
    cache = blkfiles.ScanCache()
    first = blkfiles.scan_blocks_dir(node.live, cache=cache)
    files = sorted(node.live.glob("blk*.dat"))
    assert len(files) >= 3 and len(cache.files) == len(files) - 1
    read: list[str] = []
    scan_file = blkfiles._scan_file

    def counting(path: Path, *args: Any) -> Any:
        read.append(path.name)
        return scan_file(path, *args)

    monkeypatch.setattr(blkfiles, "_scan_file", counting)
    again = blkfiles.scan_blocks_dir(node.live, cache=cache)
    assert again.records == first.records and read == [files[-1].name]
    files[0].write_bytes(files[0].read_bytes() + bytes(8))  # an older file changes: read again
    read.clear()
    blkfiles.scan_blocks_dir(node.live, cache=cache)
    assert read == [files[0].name, files[-1].name]
