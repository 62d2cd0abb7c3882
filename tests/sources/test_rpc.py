"""RpcSource against recorded mainnet replies and a scripted chain of real mainnet blocks."""

from __future__ import annotations

import hashlib
import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from chainsleuth.core.network import MAIN
from chainsleuth.sources.rpc import ChainInfo, RpcError, RpcSource
from tests.sources.rpc_replay import DATA, FIXTURES, RpcReplayServer

BLK00000 = DATA / "mainnet-blocks" / "blk" / "nbitcoin" / "blk00000.dat"
RECORDED = FIXTURES / "block_with_transactions"
HASH_50001 = "000000001c920d495e1eeef2452b6d1c6c229a919b28196c103ecffebabee141"
HASH_50002 = "000000002066d7f9b134c30b5005b7bf5fbfa52f279883f1fde793dcdc964266"
NOT_ON_NODE = "00000000000000000000000000000000000000000000000000000000deadbeef"


def header_hash(raw: bytes) -> str:
    return hashlib.sha256(hashlib.sha256(raw[:80]).digest()).digest()[::-1].hex()


def read_blk(path: Path, count: int) -> list[bytes]:
    """The first `count` blocks of a blk*.dat file: magic f9beb4d9, u32 LE length, block."""
    data, offset = path.read_bytes(), 0
    blocks: list[bytes] = []
    while len(blocks) < count:
        magic, length = struct.unpack_from("<4sI", data, offset)
        assert magic == MAIN.magic
        blocks.append(data[offset + 8 : offset + 8 + length])
        offset += 8 + length
    return blocks


def remined(raw: bytes, prev_hash: str | None = None) -> bytes:
    """A sibling of `raw`: another nonce (so another hash), optionally another parent.

    Its proof of work is not valid; the replay server, like the code under test, does not check.
    """
    prev = bytes.fromhex(prev_hash)[::-1] if prev_hash else raw[4:36]
    nonce = (struct.unpack_from("<I", raw, 76)[0] + 1) & 0xFFFFFFFF
    return raw[:4] + prev + raw[36:76] + struct.pack("<I", nonce) + raw[80:]


def node(server: RpcReplayServer, batch_size: int = 16) -> RpcSource:
    return RpcSource(server.url, user=server.user, password=server.password, batch_size=batch_size)


@pytest.fixture(scope="module")
def recorded() -> Iterator[RpcReplayServer]:
    with RpcReplayServer.recorded() as server:
        yield server


@pytest.fixture(scope="module")
def mainnet_blocks() -> list[bytes]:
    return read_blk(BLK00000, 21)


@pytest.fixture
def scripted(mainnet_blocks: list[bytes]) -> Iterator[RpcReplayServer]:
    with RpcReplayServer.scripted(mainnet_blocks, chain="main") as server:
        yield server


# -- recorded Bitcoin Core replies --------------------------------------------------------------


def test_block_hash_of_50001_is_the_recorded_hash(recorded: RpcReplayServer) -> None:
    recorded_hash = json.loads((RECORDED / "rpc_response_getblockhash_50001.json").read_text())
    with node(recorded) as source:
        assert source.block_hash(50001) == recorded_hash == HASH_50001


@pytest.mark.parametrize("block_hash", [HASH_50001, HASH_50002])
def test_raw_block_hashes_to_the_requested_hash_with_the_recorded_tx_count(
    recorded: RpcReplayServer, block_hash: str
) -> None:
    verbose = json.loads((RECORDED / f"rpc_response_getblock_{block_hash}_2.json").read_text())
    with node(recorded) as source:
        raw = source.raw_block(block_hash)
    assert isinstance(raw, bytes)
    assert header_hash(raw) == block_hash
    assert raw[80] == verbose["nTx"]  # compact size: one byte below 0xfd
    assert len(raw) == verbose["size"]


def test_batch_fetching_returns_what_single_fetching_returns(recorded: RpcReplayServer) -> None:
    with node(recorded) as source:
        single_hashes = [source.block_hash(50001), source.block_hash(50002)]
        single_blocks = [source.raw_block(h) for h in single_hashes]
        before = recorded.http_requests
        batch_hashes = source.block_hashes([50001, 50002])
        batch_blocks = source.raw_blocks(batch_hashes)
        assert recorded.http_requests - before == 2  # one batch request each
    assert batch_hashes == single_hashes == [HASH_50001, HASH_50002]
    assert batch_blocks == single_blocks


def test_chain_info_reports_mainnet_and_the_highest_recorded_block(
    recorded: RpcReplayServer,
) -> None:
    with node(recorded) as source:
        info = source.chain_info()
    assert info == ChainInfo(chain="main", blocks=50002, best_block_hash=HASH_50002, headers=50002)
    assert info.network is MAIN


def test_recorded_blocks_0_and_1_rebuild_to_the_bytes_in_blk00000(
    recorded: RpcReplayServer, mainnet_blocks: list[bytes]
) -> None:
    with node(recorded) as source:
        assert source.raw_blocks(source.block_hashes([0, 1])) == mainnet_blocks[:2]


# -- a scripted chain of real mainnet blocks ----------------------------------------------------


def test_iter_raw_blocks_returns_blocks_0_to_20_in_order_byte_identical(
    scripted: RpcReplayServer, mainnet_blocks: list[bytes]
) -> None:
    with node(scripted, batch_size=16) as source:
        fetched = list(source.iter_raw_blocks(0, 20))
    assert [height for height, _, _ in fetched] == list(range(21))
    assert [block_hash for _, block_hash, _ in fetched] == [header_hash(b) for b in mainnet_blocks]
    assert [raw for _, _, raw in fetched] == mainnet_blocks
    assert fetched[0][1] == MAIN.genesis_hash
    # 21 blocks in batches of 16: getblockhash + getblock for each of two batches.
    assert scripted.http_requests == 4
    assert scripted.calls.count("getblock") == 21


def test_chain_info_of_a_scripted_chain_names_its_chain_and_tip(
    scripted: RpcReplayServer, mainnet_blocks: list[bytes]
) -> None:
    with node(scripted) as source:
        info = source.chain_info()
    assert (info.chain, info.blocks, info.best_block_hash) == (
        "main",
        20,
        header_hash(mainnet_blocks[20]),
    )


def test_reorg_changes_block_hash_and_the_stale_tip_stays_fetchable(
    scripted: RpcReplayServer, mainnet_blocks: list[bytes]
) -> None:
    old_tip = header_hash(mainnet_blocks[20])
    new_19 = remined(mainnet_blocks[19])
    new_20 = remined(mainnet_blocks[20], prev_hash=header_hash(new_19))
    with node(scripted) as source:
        assert source.block_hash(20) == old_tip
        scripted.set_chain([*mainnet_blocks[:19], new_19, new_20])
        assert source.block_hashes([18, 19, 20]) == [
            header_hash(mainnet_blocks[18]),
            header_hash(new_19),
            header_hash(new_20),
        ]
        assert source.chain_info().best_block_hash == header_hash(new_20)
        assert source.raw_block(old_tip) == mainnet_blocks[20]
        assert source.call("getblockheader", old_tip)["confirmations"] == -1
        assert source.call("getblockheader", header_hash(new_20))["confirmations"] == 1


def test_calls_share_one_keep_alive_connection(scripted: RpcReplayServer) -> None:
    with node(scripted, batch_size=4) as source:
        list(source.iter_raw_blocks(0, 20))
        source.chain_info()
    assert scripted.http_requests == 13
    assert scripted.connections == 1


def test_a_connection_the_node_closed_is_reopened(scripted: RpcReplayServer) -> None:
    with node(scripted) as source:
        source.block_hash(0)
        scripted.drop_connections()
        assert source.block_hash(1) == header_hash(read_blk(BLK00000, 2)[1])
    assert scripted.connections == 2


# -- errors: one RpcError with a clear message, never a traceback -------------------------------


def test_wrong_password_raises_authentication_failed_without_the_password(
    scripted: RpcReplayServer,
) -> None:
    with (
        RpcSource(scripted.url, user=scripted.user, password="wrong-pw-123") as source,
        pytest.raises(RpcError, match="authentication failed") as err,
    ):
        source.block_hash(0)
    assert "wrong-pw-123" not in str(err.value)
    assert err.value.__cause__ is None


def test_credentials_in_the_url_authenticate_and_are_never_shown(
    scripted: RpcReplayServer,
) -> None:
    url = scripted.url.replace("//", f"//{scripted.user}:{scripted.password}@")
    with RpcSource(url) as source:
        assert source.block_hash(0) == MAIN.genesis_hash
        assert scripted.password not in source.url + repr(source)
    with RpcSource(url.replace(scripted.password, "wrong-pw-123")) as source:
        with pytest.raises(RpcError, match="authentication failed") as err:
            source.block_hash(0)
        assert "wrong-pw-123" not in str(err.value)


@pytest.mark.parametrize("url", ["http://u:pa/ss-word@127.0.0.1:8332", "ftp://u:ss-word@host"])
def test_a_bad_url_is_refused_without_showing_the_password(url: str) -> None:
    with pytest.raises(RpcError, match="not a valid Bitcoin Core RPC URL") as err:
        RpcSource(url)
    assert "ss-word" not in str(err.value)


def test_cookie_file_authenticates(mainnet_blocks: list[bytes], tmp_path: Path) -> None:
    cookie = tmp_path / ".cookie"
    cookie.write_text("__cookie__:0a1b2c3d4e5f")
    with (
        RpcReplayServer.scripted(
            mainnet_blocks, user="__cookie__", password="0a1b2c3d4e5f"
        ) as server,
        RpcSource(server.url, cookie_file=cookie) as source,
    ):
        assert source.block_hash(0) == MAIN.genesis_hash


def test_cookie_is_read_again_after_core_restarts(
    mainnet_blocks: list[bytes], tmp_path: Path
) -> None:
    cookie = tmp_path / ".cookie"
    cookie.write_text("__cookie__:old")
    with RpcReplayServer.scripted(mainnet_blocks, user="__cookie__", password="new") as server:
        source = RpcSource(server.url, cookie_file=cookie)
        cookie.write_text("__cookie__:new")
        assert source.block_hash(0) == MAIN.genesis_hash
        source.close()


def test_missing_cookie_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "regtest" / ".cookie"
    with pytest.raises(RpcError, match="cookie file not found") as err:
        RpcSource("http://127.0.0.1:18443", cookie_file=missing)
    assert str(missing) in str(err.value)


def test_nothing_listening_raises_cannot_reach() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        RpcSource(f"http://u:secret-pw@127.0.0.1:{port}", timeout=5) as source,
        pytest.raises(
            RpcError, match=f"cannot reach Bitcoin Core at http://127.0.0.1:{port}/"
        ) as err,
    ):
        source.chain_info()
    assert "secret-pw" not in str(err.value)


def test_a_node_that_does_not_answer_raises_a_timeout() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with (
            RpcSource(f"http://127.0.0.1:{port}", user="u", password="p", timeout=0.2) as source,
            pytest.raises(RpcError, match=r"did not answer within 0\.2 s"),
        ):
            source.chain_info()


def test_unknown_block_hash_raises_code_minus_5(scripted: RpcReplayServer) -> None:
    with node(scripted) as source, pytest.raises(RpcError, match="not on the node") as err:
        source.raw_block(NOT_ON_NODE)
    assert (err.value.code, err.value.method) == (-5, "getblock")
    assert "Block not found" in str(err.value)


def test_errors_from_a_core_before_v28_are_read_from_http_500_replies(
    mainnet_blocks: list[bytes],
) -> None:
    # Before v28 Core ignores "jsonrpc": "2.0" and answers an error with HTTP 500 (404 for an
    # unknown method) and a JSON body.
    with (
        RpcReplayServer.scripted(mainnet_blocks, legacy_only=True) as server,
        node(server) as source,
    ):
        assert source.block_hash(0) == MAIN.genesis_hash
        with pytest.raises(RpcError, match="not on the node") as err:
            source.raw_block(NOT_ON_NODE)
        assert err.value.code == -5
        with pytest.raises(RpcError, match="does not offer") as err:
            source.call("getwalletinfo")
        assert err.value.code == -32601


def test_height_above_the_tip_raises_code_minus_8(scripted: RpcReplayServer) -> None:
    with node(scripted) as source, pytest.raises(RpcError, match="above the node's tip") as err:
        list(source.iter_raw_blocks(15, 21))
    assert err.value.code == -8


def test_pruned_block_raises_a_pruned_error(scripted: RpcReplayServer) -> None:
    scripted.prune_below(10)
    with node(scripted) as source:
        assert source.chain_info().prune_height == 10
        assert len(source.raw_block(source.block_hash(10))) > 80
        with pytest.raises(RpcError, match="pruned") as err:
            source.raw_block(source.block_hash(9))
    assert err.value.code == -1


def test_unknown_method_raises_code_minus_32601(scripted: RpcReplayServer) -> None:
    with node(scripted) as source, pytest.raises(RpcError, match="does not offer") as err:
        source.call("getwalletinfo")
    assert err.value.code == -32601


def test_malformed_block_hash_is_refused_before_asking_core(scripted: RpcReplayServer) -> None:
    with node(scripted) as source, pytest.raises(RpcError, match="not a block hash"):
        source.raw_block("00ff")
    assert scripted.http_requests == 0
