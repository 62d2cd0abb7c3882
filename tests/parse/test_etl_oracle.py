"""bitcoin-etl as an independent oracle: its recorded Core replies parsed by us, compared with its
expected exports (txids, sizes, script types, addresses, values, prevouts, and fees)."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chainsleuth.core.network import MAIN
from chainsleuth.core.script_types import CORE_RPC_NAMES, SCRIPT_TYPE_NAMES
from chainsleuth.parse.address_kernels import encode_address_keys
from chainsleuth.parse.blocks import ParsedBatch, parse_blocks
from chainsleuth.sources.rpc import RpcSource
from tests.sources.rpc_replay import RpcReplayServer, raw_block_from_verbose

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ETL = SHARED / "bitcoin-etl-fixtures"

# bitcoin-etl writes Bitcoin Core's `scriptPubKey.type` names; translated here, written out
# rather than taken from the package, so the package's own table is checked against it below.
ETL_TYPES = {
    "pubkey": "p2pk",
    "pubkeyhash": "p2pkh",
    "scripthash": "p2sh",
    "multisig": "multisig",
    "nulldata": "op_return",
    "nonstandard": "nonstandard",
    "witness_v0_keyhash": "p2wpkh",
    "witness_v0_scripthash": "p2wsh",
    "witness_v1_taproot": "p2tr",
    "anchor": "p2a",
    "witness_unknown": "witness_unknown",
}


def getblock_replies() -> list[Path]:
    """Every recorded `getblock <hash> 2` reply. The `..._None.json` file in stream_50001_50002
    is skipped: it is not a reply Core sent but bitcoin-etl's hand-made stub (block 500000's hash
    over block 50001's header fields, with no transactions), so nothing can be rebuilt from it."""
    return sorted(p for p in ETL.glob("*/rpc_response_getblock_*.json") if p.stem.endswith("_2"))


def load(path: Path) -> Any:
    reply = json.loads(path.read_text())
    if isinstance(reply, dict) and set(reply) <= {"result", "error", "id"} and "result" in reply:
        return reply["result"]
    return reply


def rebuild(block: dict[str, Any]) -> bytes:
    """The serialized block from the verbose reply: the header fields, then every tx's hex."""
    header = struct.pack("<I", block["version"] & 0xFFFFFFFF)
    header += bytes.fromhex(block.get("previousblockhash", "00" * 32))[::-1]
    header += bytes.fromhex(block["merkleroot"])[::-1]
    header += struct.pack("<III", block["time"], int(block["bits"], 16), block["nonce"])
    txs = [bytes.fromhex(tx["hex"]) for tx in block["tx"]]
    assert len(txs) < 0xFD
    return header + bytes([len(txs)]) + b"".join(txs)


def expected_rows(folder: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / name).read_text().splitlines() if line]


CASES = [(p.parent, load(p)) for p in getblock_replies()]
IDS = [f"{folder.name}-{block['height']}" for folder, block in CASES]


def parsed_block(block: dict[str, Any]) -> ParsedBatch:
    return parse_blocks([rebuild(block)], where=[f"getblock {block['hash']}"])


def addresses(batch: ParsedBatch) -> list[str | None]:
    return encode_address_keys(
        batch.out_key_kind, batch.out_key_payload, batch.out_key_len, MAIN.code
    ).to_pylist()


def test_the_none_stub_is_the_only_getblock_file_left_out() -> None:
    every = sorted(ETL.glob("*/rpc_response_getblock_*.json"))
    left_out = [p.name for p in every if p not in getblock_replies()]
    assert left_out == [
        "rpc_response_getblock_00000000000000000024fb37364cbf81fd49cc2d51c09c75c35433c3a1945d04"
        "_None.json"
    ]
    assert len(CASES) == 7  # blocks 0, 1, 50000, and 50001-50002 in two folders


def test_etl_type_names_agree_with_the_package_translation_of_core_names() -> None:
    assert {k: str(v) for k, v in CORE_RPC_NAMES.items()} == ETL_TYPES


@pytest.mark.parametrize(("folder", "block"), CASES, ids=IDS)
def test_rebuilt_block_equals_the_replay_servers_reconstruction(
    folder: Path, block: dict[str, Any]
) -> None:
    assert rebuild(block) == raw_block_from_verbose(block)


@pytest.mark.parametrize(("folder", "block"), CASES, ids=IDS)
def test_block_fields_equal_bitcoin_etl_expected_blocks(
    folder: Path, block: dict[str, Any]
) -> None:
    expected = next(
        r for r in expected_rows(folder, "expected_blocks.json") if r["hash"] == block["hash"]
    )
    batch = parsed_block(block)
    size = int(batch.block_end[0] - batch.block_start[0])
    stripped = size - int((batch.tx_size - batch.tx_base_size).sum())
    cb = int(batch.tx_first_input[0])
    assert batch.block_hash_hex(0) == expected["hash"]
    assert size == expected["size"]
    assert stripped == expected["stripped_size"]
    assert 3 * stripped + size == expected["weight"]
    assert block["height"] == expected["number"]
    assert int(batch.block_version[0]) == expected["version"]
    assert bytes(batch.block_merkle_root[0][::-1]).hex() == expected["merkle_root"]
    assert int(batch.block_time[0]) == expected["timestamp"]
    assert int(batch.block_nonce[0]) == int(expected["nonce"], 16)
    assert f"{int(batch.block_bits[0]):08x}" == expected["bits"]
    assert batch.script_sig(cb).hex() == expected["coinbase_param"]
    assert batch.n_tx == expected["transaction_count"]


@pytest.mark.parametrize(("folder", "block"), CASES, ids=IDS)
def test_transactions_equal_bitcoin_etl_expected_transactions(
    folder: Path, block: dict[str, Any]
) -> None:
    rows = [
        r
        for r in expected_rows(folder, "expected_transactions.json")
        if r["block_hash"] == block["hash"]
    ]
    batch = parsed_block(block)
    assert batch.n_tx == len(rows)
    out_addresses = addresses(batch)
    for t, row in enumerate(sorted(rows, key=lambda r: r["index"])):
        i0, i1 = int(batch.tx_first_input[t]), int(batch.tx_first_input[t + 1])
        o0, o1 = int(batch.tx_first_output[t]), int(batch.tx_first_output[t + 1])
        is_coinbase = bool(batch.in_is_coinbase[i0])
        assert batch.txid_hex(t) == row["hash"]
        assert int(batch.tx_size[t]) == row["size"]
        assert int(batch.tx_vsize[t]) == row["virtual_size"]
        assert int(batch.tx_version[t]) == row["version"]
        assert int(batch.tx_locktime[t]) == row["lock_time"]
        assert is_coinbase == row["is_coinbase"]
        assert row["block_number"] == block["height"]
        assert row["block_timestamp"] == int(batch.block_time[0])
        # bitcoin-etl drops the coinbase input; we keep it (flagged is_coinbase).
        assert (i1 - i0) - is_coinbase == row["input_count"] == len(row["inputs"])
        assert o1 - o0 == row["output_count"] == len(row["outputs"])
        assert int(batch.out_value[o0:o1].sum()) == row["output_value"]
        for k, out in enumerate(row["outputs"]):
            o = o0 + out["index"]
            assert out["index"] == k
            assert int(batch.out_value[o]) == out["value"]
            assert batch.script_pubkey(o).hex() == out["script_hex"]
            assert SCRIPT_TYPE_NAMES[batch.out_script_type[o]] == ETL_TYPES[out["type"]]
            # A P2PK output gets its key's P2PKH address, from bitcoin-etl as from us.
            assert ([out_addresses[o]] if out_addresses[o] else []) == out["addresses"]
        prev = batch.in_prev_txid()
        for k, inp in enumerate(row["inputs"]):
            i = i0 + is_coinbase + k
            assert inp["index"] == k
            assert bytes(prev[i][::-1]).hex() == inp["spent_transaction_hash"]
            assert int(batch.in_prev_vout[i]) == inp["spent_output_index"]
            assert batch.script_sig(i).hex() == inp["script_hex"]
            assert int(batch.in_sequence[i]) == inp["sequence"]


@pytest.fixture(scope="module")
def recorded_node() -> Iterator[RpcSource]:
    with (
        RpcReplayServer.recorded() as server,
        RpcSource(server.url, user=server.user, password=server.password) as node,
    ):
        yield node


def prevout_of(node: RpcSource, txid: str, vout: int) -> tuple[int, str, str | None]:
    """(value, script type, address) of an output, from the recorded `getrawtransaction` hex.

    The hex is parsed by our parser as a one-transaction block (merkle root = its txid)."""
    raw_tx = bytes.fromhex(node.call("getrawtransaction", txid, 0))
    header = bytes(4) + bytes(32) + bytes.fromhex(txid)[::-1] + bytes(12)
    batch = parse_blocks([header + b"\x01" + raw_tx], where=[f"getrawtransaction {txid}"])
    assert batch.txid_hex(0) == txid
    o = int(batch.tx_first_output[0]) + vout
    address = addresses(batch)[o]
    return int(batch.out_value[o]), SCRIPT_TYPE_NAMES[batch.out_script_type[o]], address


def test_fees_of_blocks_50001_and_50002_from_recorded_prevouts_equal_bitcoin_etl(
    recorded_node: RpcSource,
) -> None:
    # stream_50001_50002 is bitcoin-etl's export *with* input values (resolved through
    # getrawtransaction); block_with_transactions is the same blocks exported without them, where
    # bitcoin-etl reports fee = 0 - outputs (e.g. -10,000,000,000), which is not a fee.
    rows = {
        r["hash"]: r
        for r in expected_rows(ETL / "stream_50001_50002", "expected_transactions.json")
    }
    seen = 0
    for height in (50001, 50002):
        batch = parse_blocks(recorded_node.raw_blocks(recorded_node.block_hashes([height])))
        prev = batch.in_prev_txid()
        for t in range(batch.n_tx):
            row = rows[batch.txid_hex(t)]
            i0, i1 = int(batch.tx_first_input[t]), int(batch.tx_first_input[t + 1])
            o0, o1 = int(batch.tx_first_output[t]), int(batch.tx_first_output[t + 1])
            outputs = int(batch.out_value[o0:o1].sum())
            if batch.in_is_coinbase[i0]:
                assert row["fee"] == 0 and row["input_value"] == 0
                seen += 1
                continue
            inputs = 0
            for k, i in enumerate(range(i0, i1)):
                value, kind, address = prevout_of(
                    recorded_node, bytes(prev[i][::-1]).hex(), int(batch.in_prev_vout[i])
                )
                inputs += value
                expected = row["inputs"][k]
                assert value == expected["value"]
                assert kind == ETL_TYPES[expected["type"]]
                assert ([address] if address else []) == expected["addresses"]
            assert inputs == row["input_value"]
            assert inputs - outputs == row["fee"]
            seen += 1
    assert seen == len(rows) == 4  # every expected row was matched by a parsed tx
