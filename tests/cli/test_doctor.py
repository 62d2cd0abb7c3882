"""`chainsleuth doctor`: each check's ok and failing path, on tmp dirs, a scripted RPC node and
an unreachable loopback port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest

from chainsleuth.core.network import REGTEST
from chainsleuth.doctor import Check, check_memory, check_pdf, report_json, run_doctor
from chainsleuth.parse.serialize import Block
from chainsleuth.simulate.blockfiles import BlockFileWriter
from chainsleuth.store.ingest import ingest_blocks_dir
from tests.conftest import NBITCOIN, extend_chain, raw, regtest_genesis
from tests.sources.rpc_replay import RpcReplayServer

KEY = bytes.fromhex("5a17c3e9b2468df1")
GiB = 1024**3
ok_memory = lambda: (512 * GiB, 512 * GiB)  # noqa: E731
ok_pdf = lambda: "WeasyPrint test, Pango test"  # noqa: E731


@pytest.fixture(scope="module")
def chain() -> list[Block]:
    return extend_chain([regtest_genesis()], 12, seed=41, tag=b"doc")


def core_dir(directory: Path, blocks: list[Block], key: bytes | None = KEY) -> Path:
    writer = BlockFileWriter(
        directory, REGTEST.magic, max_file_size=4_000, xor_key=key, preallocate=True
    )
    for block in raw(blocks):
        writer.write(block)
    writer.close()
    return directory


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.check: c for c in checks}


def doctor(data: Path, **options: object) -> dict[str, Check]:
    options.setdefault("memory", ok_memory)
    options.setdefault("pdf_libraries", ok_pdf)
    return by_name(run_doctor(data, **options))  # type: ignore[arg-type]


def test_blocks_dir_ok_names_network_key_newest_file_and_how_far_behind(
    tmp_path: Path, chain: list[Block]
) -> None:
    blocks = core_dir(tmp_path / "blocks", chain)
    partial = core_dir(tmp_path / "partial", chain[:8])
    ingest_blocks_dir(partial, tmp_path / "data")  # the store at height 7, the files at 12
    checks = doctor(tmp_path / "data", blocks_dir=blocks)
    newest = sorted(blocks.glob("blk*.dat"))[-1].name
    assert checks["blocks dir"].status == "ok"
    assert "network regtest" in checks["blocks dir"].detail
    assert newest in checks["blocks dir"].detail
    assert checks["xor key"].status == "ok" and KEY.hex() in checks["xor key"].detail
    store = checks["store"]
    assert store.status == "warn" and "5 blocks behind" in store.detail
    assert store.fix is not None and f"ingest --blocks-dir {blocks}" in store.fix

    ingest_blocks_dir(blocks, tmp_path / "data")
    assert doctor(tmp_path / "data", blocks_dir=blocks)["store"].status == "ok"
    plain = core_dir(tmp_path / "plain", chain, key=None)
    assert "no xor.dat" in doctor(tmp_path / "data", blocks_dir=plain)["xor key"].detail


def test_blocks_dir_failures_say_what_to_fix(
    tmp_path: Path, chain: list[Block], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    missing = doctor(data, blocks_dir=tmp_path / "nope")["blocks dir"]
    assert missing.status == "fail" and "not a directory" in missing.detail and missing.fix

    (tmp_path / "empty").mkdir()
    empty = doctor(data, blocks_dir=tmp_path / "empty")["blocks dir"]
    assert empty.status == "fail" and "no blk*.dat" in empty.detail

    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "blk00000.dat").write_bytes(b"\x01\x02\x03\x04" + bytes(100))
    bad = doctor(data, blocks_dir=garbage)["blocks dir"]
    assert bad.status == "fail" and "01020304" in bad.detail

    blocks = core_dir(tmp_path / "blocks", chain)
    (blocks / "xor.dat").write_bytes(b"\x01\x02")
    short_key = doctor(data, blocks_dir=blocks)["blocks dir"]
    assert short_key.status == "fail" and "xor.dat must hold 8 bytes" in short_key.detail
    (blocks / "xor.dat").write_bytes(KEY)

    # unreadable (tests run as root, who reads anything: ask os.access as another user would)
    monkeypatch.setattr("chainsleuth.doctor.os.access", lambda path, mode: False)
    unreadable = doctor(data, blocks_dir=blocks)["blocks dir"]
    assert unreadable.status == "fail" and "not readable" in unreadable.detail
    assert unreadable.fix is not None and "bitcoind" in unreadable.fix
    monkeypatch.undo()

    mainnet_store = tmp_path / "main"
    ingest_blocks_dir(NBITCOIN, mainnet_store)
    other = doctor(mainnet_store, blocks_dir=blocks)["store"]
    assert other.status == "fail" and "holds a main store" in other.detail


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_rpc_ok_wrong_password_and_unreachable(tmp_path: Path, chain: list[Block]) -> None:
    blocks = core_dir(tmp_path / "blocks", chain[:10])
    ingest_blocks_dir(blocks, tmp_path / "data")
    with RpcReplayServer.scripted(raw(chain), chain="regtest") as server:
        checks = doctor(
            tmp_path / "data", rpc=server.url, rpc_user=server.user, rpc_password=server.password
        )
        assert checks["rpc"].status == "ok" and "regtest, height 12" in checks["rpc"].detail
        assert (
            checks["store"].status == "warn"
            and "3 blocks behind the node" in checks["store"].detail
        )
        wrong = doctor(tmp_path / "data", rpc=server.url, rpc_user="x", rpc_password="y")["rpc"]
        assert wrong.status == "fail" and wrong.fix is not None and "--rpc-user" in wrong.fix
    # A URL whose digits and path read like "401" or "auth" is still "nothing listening":
    # the fix is chosen by the error's type, never by words in its message.
    for url in (f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}/auth401"):
        down = doctor(tmp_path / "data", rpc=url, rpc_user="x", rpc_password="y")["rpc"]
        assert down.status == "fail" and down.fix is not None and "server=1" in down.fix, url


def test_disk_ok_and_not_enough(
    tmp_path: Path, chain: list[Block], monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = core_dir(tmp_path / "blocks", chain)
    assert doctor(tmp_path / "data", blocks_dir=blocks)["disk"].status == "ok"
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("chainsleuth.doctor.shutil.disk_usage", lambda p: usage(10, 10, 10))
    disk = doctor(tmp_path / "data", blocks_dir=blocks)["disk"]
    assert disk.status == "fail" and disk.fix is not None and "bigger disk" in disk.fix
    # no source read: the projection assumes mainnet and only warns
    assert doctor(tmp_path / "data")["disk"].status == "warn"


def test_memory_ok_short_and_busy(tmp_path: Path, chain: list[Block]) -> None:
    blocks = core_dir(tmp_path / "blocks", chain)
    assert doctor(tmp_path / "data", blocks_dir=blocks)["memory"].status == "ok"
    small = doctor(tmp_path / "data", blocks_dir=blocks, memory=lambda: (GiB, GiB))["memory"]
    assert small.status == "fail" and small.fix
    busy = doctor(tmp_path / "data", blocks_dir=blocks, memory=lambda: (64 * GiB, GiB // 4))
    assert busy["memory"].status == "warn"
    from chainsleuth.doctor import _Context

    assert check_memory(_Context(tmp_path), lambda: (GiB, GiB)).status == "warn"  # assumed


def test_pdf_libraries_load_here_and_a_missing_pango_is_a_failure() -> None:
    real = check_pdf()
    assert real.status == "ok" and "Pango" in real.detail and "WeasyPrint" in real.detail

    def missing() -> str:
        raise OSError("cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open")

    failed = check_pdf(missing)
    assert failed.status == "fail" and "libpango" in failed.detail
    assert failed.fix is not None and "apt-get install libpango-1.0-0" in failed.fix


def test_cli_one_line_per_check_json_and_exit_status(tmp_path: Path, chain: list[Block]) -> None:
    blocks = core_dir(tmp_path / "blocks", chain)
    base = [sys.executable, "-m", "chainsleuth", "--data", str(tmp_path / "data"), "doctor"]
    done = subprocess.run(
        [*base, "--blocks-dir", str(blocks)], capture_output=True, text=True, timeout=120
    )
    lines = done.stdout.strip().splitlines()
    assert all(line.split()[0] in ("ok", "warn", "fail") for line in lines)
    assert len(lines) == 6 and "Traceback" not in done.stderr
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [*base, "--rpc", url, "--rpc-user", "x", "--rpc-password", "y", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["ok"] is False
    assert {c["check"]: c["status"] for c in result["checks"]}["rpc"] == "fail"
    assert report_json([Check("x", "ok", "fine")]) == {
        "ok": True,
        "checks": [{"check": "x", "status": "ok", "detail": "fine", "fix": None}],
    }
