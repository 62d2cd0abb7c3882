"""`chainsleuth doctor`: check a user's setup, one line per check, each saying what to fix.

Checks (each `ok`, `warn` or `fail`, with a fix when not ok):

- blocks dir (`--blocks-dir`): readable, blk files present, the network from the first record's
  magic, the xor key (Core 28+ `xor.dat`: present, zero or absent), the newest file, and how
  many blocks the store is behind the files' best tip (a full header scan, as ingest does).
- RPC (`--rpc`): reachable, credentials accepted, the node's chain and height, how far the
  store is behind it.
- disk: free space where the data directory lives against the projected store size.
- memory: physical and available memory against the projected need of ingest.
- PDF report: whether WeasyPrint and its Pango libraries load (their versions).

The projections are estimates (docs/design/cli.md): the store takes about
`STORE_BYTES_PER_BLK_BYTE` bytes per byte of blk files and ingest about
`MEMORY_BYTES_PER_BLK_BYTE` bytes of memory (its two hash indexes) plus a fixed working set.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chainsleuth.core.errors import ChainsleuthError

#: store bytes per byte of blk files: mainnet's ~205 GB of graph arrays (docs/design/store.md)
#: plus about as much parquet, over ~700 GB of blk files (an estimate, not a measurement)
STORE_BYTES_PER_BLK_BYTE = 0.6
#: ingest memory per byte of blk files: ~40 GB of hash indexes at mainnet size (store.md)
MEMORY_BYTES_PER_BLK_BYTE = 0.06
MEMORY_BASE_BYTES = 2 * 1024**3  # batches in flight, parquet writing, Python itself
MAINNET_BLK_BYTES = 700 * 10**9  # for a projection when no source says how big the chain is
GB = 1e9


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    check: str  # "blocks dir", "rpc", "disk", "memory", "pdf report", ...
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str | None = None

    def line(self) -> str:
        text = f"{self.status:<4} {self.check}: {self.detail}"
        return f"{text}; {self.fix}" if self.fix else text


@dataclass
class _Context:
    data_dir: Path
    store_tip: int | None = None  # height, None when nothing is ingested
    store_network: str | None = None
    store_bytes: int = 0
    chain_bytes: int | None = None  # size of the source's blocks, when a source tells


def _store_state(ctx: _Context) -> None:
    from chainsleuth.store import layout

    try:
        manifest = layout.read_manifest(ctx.data_dir)
    except (ChainsleuthError, ValueError, OSError):
        manifest = None
    if manifest is not None:
        ctx.store_network = manifest["network"]
        ctx.store_tip = None if manifest["tip"] is None else int(manifest["tip"]["height"])
    if ctx.data_dir.is_dir():
        ctx.store_bytes = sum(p.stat().st_size for p in ctx.data_dir.rglob("*") if p.is_file())


def _behind(ctx: _Context, tip: int, source: str, ingest: str) -> Check:
    if ctx.store_tip is None:
        return Check(
            "store",
            "warn",
            f"nothing ingested into {ctx.data_dir} yet; {source} is at height {tip:,}",
            f"run `chainsleuth --data {ctx.data_dir} {ingest}`",
        )
    behind = tip - ctx.store_tip
    if behind <= 0:
        return Check("store", "ok", f"at height {ctx.store_tip:,}, up to date with {source}")
    return Check(
        "store",
        "warn",
        f"at height {ctx.store_tip:,}, {behind:,} blocks behind {source} (height {tip:,})",
        f"run `chainsleuth --data {ctx.data_dir} {ingest}` (add --follow to stay at the tip)",
    )


def check_blocks_dir(blocks_dir: Path, ctx: _Context) -> list[Check]:
    """Readable, network, xor key, newest file, and how far behind the files the store is."""
    from chainsleuth.core.network import BY_MAGIC
    from chainsleuth.sources import blkfiles

    name = "blocks dir"
    blocks_dir = Path(blocks_dir).expanduser()
    if not blocks_dir.is_dir():
        return [
            Check(
                name,
                "fail",
                f"{blocks_dir} is not a directory",
                "pass Bitcoin Core's blocks/ directory (e.g. ~/.bitcoin/blocks)",
            )
        ]
    files = sorted(blocks_dir.glob("blk[0-9][0-9][0-9][0-9][0-9].dat"))
    if not files:
        return [
            Check(
                name,
                "fail",
                f"no blk*.dat files in {blocks_dir}",
                "point --blocks-dir at the blocks/ directory inside Core's datadir",
            )
        ]
    unreadable = [f for f in files if not os.access(f, os.R_OK)]
    if unreadable or not os.access(blocks_dir, os.R_OK | os.X_OK):
        return [
            Check(
                name,
                "fail",
                f"{len(unreadable) or 'the directory'} of {blocks_dir} not readable by this user"
                + (f" (first: {unreadable[0].name})" if unreadable else ""),
                "run as the user that runs bitcoind, or add yourself to its group "
                "(`chmod g+r` on the files, `g+rx` on the directory)",
            )
        ]
    checks = []
    try:
        key = blkfiles.read_xor_key(blocks_dir)
    except ChainsleuthError as e:
        return [Check(name, "fail", str(e), "restore xor.dat from the node's datadir")]
    if (blocks_dir / "xor.dat").exists():
        kind = "zero (files not obfuscated)" if key == bytes(8) else f"{key.hex()} (Core 28+)"
        checks.append(Check("xor key", "ok", f"xor.dat present, key {kind}"))
    else:
        checks.append(Check("xor key", "ok", "no xor.dat: files not obfuscated (Core < 28)"))
    with open(files[0], "rb") as f:
        head = f.read(8)
    magic = bytes(b ^ key[i % 8] for i, b in enumerate(head[:4]))
    network = BY_MAGIC.get(magic)
    if network is None:
        checks.append(
            Check(
                name,
                "fail",
                f"{files[0].name} starts with {magic.hex()}, no Bitcoin network's magic",
                "is this a Bitcoin Core blocks/ directory (and xor.dat its own)?",
            )
        )
        return checks
    newest = files[-1]
    age = time.time() - newest.stat().st_mtime
    checks.insert(
        0,
        Check(
            name,
            "ok",
            f"{blocks_dir}: {len(files):,} blk files, network {network.name}, newest "
            f"{newest.name} ({newest.stat().st_size / 1e6:,.0f} MB, written "
            f"{_ago(age)} ago)",
        ),
    )
    if ctx.store_network is not None and ctx.store_network != network.name:
        checks.append(
            Check(
                "store",
                "fail",
                f"{ctx.data_dir} holds a {ctx.store_network} store; the files are {network.name}",
                "use another --data directory for this network",
            )
        )
        return checks
    ctx.chain_bytes = sum(f.stat().st_size for f in files)
    try:
        scan = blkfiles.scan_blocks_dir(blocks_dir, network.name)
        tip = len(blkfiles.best_chain(scan.records, scan.network).chain) - 1
    except ChainsleuthError as e:
        checks.append(
            Check(
                name,
                "fail",
                f"cannot read the chain: {e}",
                "ingest stops at the same place: check the file named (disk error, copy cut short?)",
            )
        )
        return checks
    checks.append(_behind(ctx, tip, "the blk files' best tip", f"ingest --blocks-dir {blocks_dir}"))
    return checks


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{max(seconds, 0):.0f} s"


def check_rpc(
    url: str,
    ctx: _Context,
    *,
    cookie_file: Path | None = None,
    user: str | None = None,
    password: str | None = None,
    timeout: float = 5.0,
) -> list[Check]:
    """Reachable, credentials accepted, the node's chain and height; the store against it."""
    from chainsleuth.sources.rpc import RpcAuthError, RpcError, RpcSource

    try:
        with RpcSource(
            url, cookie_file=cookie_file, user=user, password=password, timeout=timeout
        ) as source:
            info = source.chain_info()
            raw = source.call("getblockchaininfo")
    except RpcError as e:
        text = str(e)
        auth = isinstance(e, RpcAuthError)
        fix = (
            "check --rpc-cookie (Core's datadir/.cookie, readable by you) or "
            "--rpc-user/--rpc-password (rpcauth in bitcoin.conf)"
            if auth
            else "start bitcoind with server=1, or check the --rpc host and port "
            "(rpcport, rpcbind, rpcallowip in bitcoin.conf)"
        )
        return [Check("rpc", "fail", text, fix)]
    except ChainsleuthError as e:
        return [Check("rpc", "fail", str(e), "check the --rpc URL and credentials options")]
    size = raw.get("size_on_disk") if isinstance(raw, dict) else None
    if isinstance(size, int) and not info.pruned:
        ctx.chain_bytes = size
    checks = [
        Check(
            "rpc",
            "warn" if info.initial_block_download or info.pruned else "ok",
            f"{url} reachable, credentials accepted: {info.chain}, height {info.blocks:,}"
            + (
                f" of {info.headers:,} headers (still syncing)"
                if info.initial_block_download
                else ""
            )
            + (" (pruned)" if info.pruned else ""),
            "a pruned node serves only recent blocks: ingest needs the whole chain"
            if info.pruned
            else ("ingest follows the node as it syncs" if info.initial_block_download else None),
        )
    ]
    from chainsleuth.core.network import network_by_name

    node_network = network_by_name(info.chain).name
    if ctx.store_network is not None and ctx.store_network != node_network:
        checks.append(
            Check(
                "store",
                "fail",
                f"{ctx.data_dir} holds a {ctx.store_network} store; the node is {node_network}",
                "use another --data directory for this network",
            )
        )
        return checks
    checks.append(_behind(ctx, info.blocks, "the node", f"ingest --rpc {url}"))
    return checks


def check_disk(ctx: _Context) -> Check:
    """Free space on the data directory's filesystem against the projected store size."""
    where = ctx.data_dir.absolute()
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    chain = ctx.chain_bytes
    guessed = chain is None  # no source said how big its chain is: assume mainnet, warn only
    if chain is None and ctx.store_network in (None, "main"):
        chain, basis = MAINNET_BLK_BYTES, "a full mainnet store (assumed: no source was read)"
    elif chain is None:
        return Check("disk", "ok", f"{free / GB:,.1f} GB free at {where}")
    else:
        basis = f"the source's {chain / GB:,.1f} GB of blocks"
    projected = int(chain * STORE_BYTES_PER_BLK_BYTE)
    needed = max(projected - ctx.store_bytes, 0)
    detail = (
        f"{free / GB:,.1f} GB free at {where}; the store needs about {projected / GB:,.1f} GB "
        f"for {basis}, {ctx.store_bytes / GB:,.1f} GB of it there already"
    )
    if free < needed:
        return Check(
            "disk",
            "warn" if guessed else "fail",
            detail,
            f"free {(needed - free) / GB:,.1f} GB more, or put --data on a bigger disk",
        )
    if free < needed * 1.2:
        return Check("disk", "warn", detail, "less than 20 % to spare: leave room for growth")
    return Check("disk", "ok", detail)


def memory_bytes() -> tuple[int, int]:
    """(total, available) physical memory in bytes (/proc/meminfo, else sysconf)."""
    try:
        fields = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = int(value.split()[0]) * 1024
        return fields["MemTotal"], fields.get("MemAvailable", fields["MemTotal"])
    except (OSError, KeyError, ValueError, IndexError):
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return total, total


def check_memory(ctx: _Context, memory: Callable[[], tuple[int, int]] = memory_bytes) -> Check:
    """Physical memory against what ingest of the source's chain needs (projected)."""
    total, available = memory()
    guessed = ctx.chain_bytes is None  # assume mainnet, warn only
    chain = ctx.chain_bytes if ctx.chain_bytes is not None else MAINNET_BLK_BYTES
    basis = "this chain" if ctx.chain_bytes is not None else "a full mainnet ingest (assumed)"
    need = int(chain * MEMORY_BYTES_PER_BLK_BYTE) + MEMORY_BASE_BYTES
    detail = (
        f"{total / GB:,.1f} GB, {available / GB:,.1f} GB available; {basis} needs about "
        f"{need / GB:,.1f} GB"
    )
    if total < need:
        return Check(
            "memory",
            "warn" if guessed else "fail",
            detail,
            "use a machine with more memory (the address index is the largest part, "
            "docs/design/store.md)",
        )
    if available < need:
        return Check("memory", "warn", detail, "close other programs before a long ingest")
    return Check("memory", "ok", detail)


def _load_pdf_libraries() -> str:
    """Versions of WeasyPrint and Pango; raises ImportError/OSError when they do not load."""
    import weasyprint
    from weasyprint.text.ffi import pango

    version = pango.pango_version()
    return (
        f"WeasyPrint {weasyprint.__version__}, Pango "
        f"{version // 10000}.{version // 100 % 100}.{version % 100}"
    )


def check_pdf(load: Callable[[], str] = _load_pdf_libraries) -> Check:
    """Whether the PDF report's libraries (WeasyPrint, Pango) load."""
    try:
        versions = load()
    except (ImportError, OSError, AttributeError) as e:
        return Check(
            "pdf report",
            "fail",
            f"WeasyPrint or its Pango libraries do not load ({' '.join(str(e).split())})",
            "on Debian/Ubuntu `apt-get install libpango-1.0-0 libpangoft2-1.0-0 "
            "libharfbuzz-subset0 fonts-dejavu-core`; or run investigate with --no-pdf",
        )
    return Check("pdf report", "ok", versions)


def run_doctor(
    data_dir: Path,
    *,
    blocks_dir: Path | None = None,
    rpc: str | None = None,
    rpc_cookie: Path | None = None,
    rpc_user: str | None = None,
    rpc_password: str | None = None,
    rpc_timeout: float = 5.0,
    memory: Callable[[], tuple[int, int]] = memory_bytes,
    pdf_libraries: Callable[[], str] = _load_pdf_libraries,
) -> list[Check]:
    """Every check, in order: source(s), store, disk, memory, PDF report."""
    ctx = _Context(Path(data_dir))
    _store_state(ctx)
    checks: list[Check] = []
    if blocks_dir is not None:
        checks += check_blocks_dir(blocks_dir, ctx)
    if rpc is not None:
        checks += check_rpc(
            rpc,
            ctx,
            cookie_file=rpc_cookie,
            user=rpc_user,
            password=rpc_password,
            timeout=rpc_timeout,
        )
    if blocks_dir is None and rpc is None:
        state = (
            "nothing ingested yet"
            if ctx.store_tip is None
            else f"{ctx.store_network} at height {ctx.store_tip:,}"
        )
        checks.append(
            Check(
                "source",
                "warn",
                f"no --blocks-dir or --rpc given, so the node is not checked; store: {state}",
                "pass --blocks-dir ~/.bitcoin/blocks or --rpc URL to check the node too",
            )
        )
    checks.append(check_disk(ctx))
    checks.append(check_memory(ctx, memory))
    checks.append(check_pdf(pdf_libraries))
    return checks


def report_json(checks: list[Check]) -> dict[str, Any]:
    """`doctor --json`: {"ok": no check failed, "checks": [...]}."""
    return {
        "ok": all(c.status != "fail" for c in checks),
        "checks": [asdict(c) for c in checks],
    }


__all__ = [
    "Check",
    "check_blocks_dir",
    "check_disk",
    "check_memory",
    "check_pdf",
    "check_rpc",
    "memory_bytes",
    "report_json",
    "run_doctor",
]
