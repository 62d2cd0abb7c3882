"""Stay at the tip of a node: `chainsleuth ingest --follow`.

The follow loop is the one-shot ingest (`sync_blocks_dir`, `sync_rpc`: incremental, reorg-safe)
run again every `interval` seconds against one writer that stays open, so the derived indexes
are loaded once rather than at every poll, and the blocks directory's finished files are read
once (`blkfiles.ScanCache`). Every batch is committed through the manifest as in the one-shot
ingest, so readers (`chainsleuth sql`, `status`, ...) see each commit as soon as it is made.

Stopping: `stop` (a `threading.Event`) is checked at every commit boundary and while waiting
between polls; `stop_on_signals` sets it on SIGINT and SIGTERM, and a second SIGINT interrupts
at once (the store keeps its last commit, as after a crash). Errors: the first poll's errors end
the loop (a wrong directory, URL or password should say so at once); later a source error (the
node restarting, a file being replaced) is reported for that poll and the next poll tries again
with a writer reopened from the last commit. A store error always ends the loop.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Protocol

from chainsleuth.core.errors import ChainsleuthError, StoreError
from chainsleuth.core.network import network_by_name
from chainsleuth.sources import blkfiles
from chainsleuth.store import tracerows
from chainsleuth.store.ingest import (
    DEFAULT_BATCH_BYTES,
    IngestReport,
    ProgressCallback,
    StopCheck,
    sync_blocks_dir,
    sync_rpc,
)
from chainsleuth.store.writer import StoreWriter

DEFAULT_INTERVAL = 10.0
INDEX_SAVE_SECONDS = 3600.0  # save the derived indexes at most hourly while following

OpenWriter = Callable[[str], StoreWriter]  # network name -> the open writer


class Feed(Protocol):
    """A source polled by `follow`: one sync of the store to the source's best chain."""

    description: str

    def poll(
        self, open_writer: OpenWriter, progress: ProgressCallback | None, stop: StopCheck
    ) -> IngestReport: ...


class BlocksDirFeed:
    """A Bitcoin Core `blocks/` directory, rescanned at each poll (finished files cached)."""

    def __init__(
        self, blocks_dir: Path, network: str = "auto", batch_bytes: int = DEFAULT_BATCH_BYTES
    ) -> None:
        self.blocks_dir = Path(blocks_dir)
        self.network = network
        self.batch_bytes = batch_bytes
        self.cache = blkfiles.ScanCache()
        self.description = f"blocks-dir {self.blocks_dir}"

    def poll(
        self, open_writer: OpenWriter, progress: ProgressCallback | None, stop: StopCheck
    ) -> IngestReport:
        scan = blkfiles.scan_blocks_dir(self.blocks_dir, self.network, self.cache)
        writer = open_writer(scan.network.name)
        return sync_blocks_dir(
            writer,
            self.blocks_dir,
            scan,
            progress=progress,
            batch_bytes=self.batch_bytes,
            stop=stop,
        )


class RpcFeed:
    """Bitcoin Core's JSON-RPC (`chainsleuth.sources.rpc.RpcSource`)."""

    def __init__(self, source: object, batch_blocks: int = 64) -> None:
        from chainsleuth.sources.rpc import RpcSource

        assert isinstance(source, RpcSource)
        self.source = source
        self.batch_blocks = batch_blocks
        self.description = f"rpc {source.url}"

    def poll(
        self, open_writer: OpenWriter, progress: ProgressCallback | None, stop: StopCheck
    ) -> IngestReport:
        writer = open_writer(self.source.chain_info().chain)
        return sync_rpc(
            writer, self.source, progress=progress, batch_blocks=self.batch_blocks, stop=stop
        )


@dataclass
class Poll:
    """One poll of `follow`: what it ingested (or the error that ended it)."""

    number: int  # 1 for the first poll
    time: str  # UTC, when the poll ended
    seconds: float
    report: IngestReport | None  # None when the poll failed
    error: str | None = None

    @property
    def changed(self) -> bool:
        """Whether the store moved (blocks added or rolled back)."""
        r = self.report
        return r is not None and (r.n_blocks > 0 or r.rolled_back > 0)


@dataclass
class FollowSummary:
    """What a whole `follow` did, until it was stopped."""

    polls: int = 0
    blocks: int = 0
    txs: int = 0
    rolled_back: int = 0
    reorgs: int = 0
    errors: int = 0
    tip_height: int = -1
    tip_hash: str = ""
    stopped_by: str | None = None  # "signal SIGTERM", "max polls", ...
    last_error: str | None = field(default=None, repr=False)


class _Follower:
    def __init__(
        self, data_dir: Path, keep_scripts: bool | None = None, trace_rows: bool | None = None
    ) -> None:
        self.data_dir = Path(data_dir)
        self.keep_scripts = keep_scripts
        self.trace_rows = trace_rows
        self.writer: StoreWriter | None = None
        self.saved_at = time.monotonic()

    def open_writer(self, network: str) -> StoreWriter:
        if self.writer is None:
            self.writer = StoreWriter.open(self.data_dir, network, self.keep_scripts)
            tracerows.choose(self.data_dir, self.trace_rows)
        elif network_by_name(network).name != self.writer.network.name:
            raise StoreError(
                f"{self.data_dir} holds a {self.writer.network.name} store; the source is now "
                f"{network_by_name(network).name}"
            )
        return self.writer

    def drop(self) -> None:
        """After a failed poll: forget the writer; the next poll reopens (and recovers) it."""
        if self.writer is not None:
            self.writer.abort()
            self.writer = None

    def maybe_save_indexes(self, first_poll: bool) -> None:
        if self.writer is None:
            return
        if first_poll or time.monotonic() - self.saved_at >= INDEX_SAVE_SECONDS:
            self.writer.save_indexes()
            self.saved_at = time.monotonic()


def follow(
    feed: Feed,
    data_dir: Path,
    *,
    interval: float = DEFAULT_INTERVAL,
    stop: threading.Event | None = None,
    on_poll: Callable[[Poll], None] | None = None,
    progress: ProgressCallback | None = None,
    max_polls: int | None = None,
    keep_scripts: bool | None = None,
    trace_rows: bool | None = None,
) -> FollowSummary:
    """Keep `data_dir` at the tip of `feed`, polling every `interval` seconds until `stop`.

    Each poll is a one-shot ingest (new blocks appended, reorgs rolled back) committed batch
    by batch. Returns when `stop` is set (at a commit boundary) or after `max_polls` polls.
    `keep_scripts` and `trace_rows` as for `ingest_blocks_dir`.

    Example::

        stop = threading.Event()
        with stop_on_signals(stop):
            follow(BlocksDirFeed(Path("~/.bitcoin/blocks").expanduser()), Path("data"), stop=stop)
    """
    if interval <= 0:
        raise ChainsleuthError(f"--interval must be positive, got {interval}")
    stop = stop if stop is not None else threading.Event()
    summary = FollowSummary()
    follower = _Follower(data_dir, keep_scripts, trace_rows)
    clean = False
    try:
        while not stop.is_set():
            started = time.perf_counter()
            report: IngestReport | None = None
            error: str | None = None
            try:
                report = feed.poll(follower.open_writer, progress, stop.is_set)
            except StoreError:
                raise
            except ChainsleuthError as e:
                if summary.polls == 0:
                    raise
                error = str(e)
                follower.drop()
            summary.polls += 1
            if report is not None:
                summary.blocks += report.n_blocks
                summary.txs += report.n_txs
                summary.rolled_back += report.rolled_back
                summary.reorgs += report.rolled_back > 0
                summary.tip_height, summary.tip_hash = report.tip_height, report.tip_hash
                follower.maybe_save_indexes(first_poll=summary.polls == 1)
            else:
                summary.errors += 1
                summary.last_error = error
            if on_poll is not None:
                on_poll(
                    Poll(
                        summary.polls,
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        time.perf_counter() - started,
                        report,
                        error,
                    )
                )
            if max_polls is not None and summary.polls >= max_polls:
                summary.stopped_by = "max polls"
                break
            stop.wait(interval)
        clean = True
    finally:
        if follower.writer is not None:
            if clean:
                follower.writer.close()  # publishes what is left, saves the indexes
            else:
                follower.writer.abort()
    if summary.stopped_by is None:
        summary.stopped_by = getattr(stop, "reason", None) or "stop requested"
    return summary


class StopEvent(threading.Event):
    """A stop flag that remembers why it was set (`reason`, e.g. "signal SIGTERM")."""

    reason: str | None = None

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.set()


@contextlib.contextmanager
def stop_on_signals(stop: StopEvent) -> Iterator[StopEvent]:
    """SIGINT (Ctrl-C) and SIGTERM set `stop`; a second SIGINT interrupts at once.

    Call from the main thread (Python delivers signals there). The previous handlers come back
    on exit.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        stop.stop(f"signal {signal.Signals(signum).name}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
