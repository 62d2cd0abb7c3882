"""The default store leaves scriptSigs and witnesses in the node's files (issue 13, item 5).

A default ingest writes script_sig and witness as NULL and everything else exactly as an
`--keep-scripts` ingest of the same blocks (the fingerprints clustering reads included);
`tx TXID --raw` reads the full bytes back from the blk files (xor.dat obfuscated here) or over
RPC; a store refuses the other `--keep-scripts` choice with one line.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from chainsleuth.cli import app
from chainsleuth.cluster.learned import read_fingerprints
from chainsleuth.core.address import P2A_PROGRAM, script_pubkey
from chainsleuth.core.errors import ChainsleuthError, StoreError
from chainsleuth.core.network import REGTEST
from chainsleuth.core.script_types import ScriptType
from chainsleuth.simulate.blockfiles import BlockFileWriter
from chainsleuth.simulate.chain import regtest_genesis
from chainsleuth.sources.rpc import RpcSource
from chainsleuth.store.computed import scripts_of_keys, standard_scripts
from chainsleuth.store.ingest import ingest_blocks_dir, ingest_rpc
from chainsleuth.store.layout import (
    ADDRESS_KEY_WIDTH,
    DELTA_COLUMNS,
    FORMAT_VERSION,
    read_files,
    read_manifest,
)
from chainsleuth.store.raw import raw_transaction
from chainsleuth.store.store import Store
from tests.conftest import copy_nbitcoin, dump_views, extend_chain, raw
from tests.sources.rpc_replay import RpcReplayServer

KEY = bytes.fromhex("9a3c0000e1ff5b07")  # zeros in it: those bytes are stored as they are
BLOCK_1_COINBASE = "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098"
SCRIPT_COLUMNS = ("script_sig", "witness")


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


@pytest.fixture(scope="module")
def chain() -> list:
    """A regtest chain whose spends carry scriptSigs (P2PKH) and witnesses (P2WPKH, P2TR)."""
    return extend_chain([regtest_genesis()], 30, seed=13, tag=b"slim")


@pytest.fixture(scope="module")
def xor_blocks(chain: list, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chain in obfuscated blk files (Core 28+ xor.dat), several files of a few blocks."""
    blocks_dir = tmp_path_factory.mktemp("slim-xor") / "blocks"
    writer = BlockFileWriter(blocks_dir, REGTEST.magic, max_file_size=6_000, xor_key=KEY)
    for block in raw(chain):
        writer.write(block)
    writer.close()
    return blocks_dir


@pytest.fixture(scope="module")
def stores(xor_blocks: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("slim-stores")
    ingest_blocks_dir(xor_blocks, root / "slim")
    ingest_blocks_dir(xor_blocks, root / "keep", keep_scripts=True)
    return {"slim": root / "slim", "keep": root / "keep"}


def test_default_store_has_no_scripts_and_the_same_everything_else(
    stores: dict[str, Path],
) -> None:
    slim, keep = Store.open(stores["slim"]), Store.open(stores["keep"])
    counts = "SELECT count(script_sig) AS s, count(witness) AS w, count(*) AS n FROM inputs"
    s, k = slim.sql(counts).to_pylist()[0], keep.sql(counts).to_pylist()[0]
    assert s["s"] == s["w"] == 0 and s["n"] == k["n"] > 30
    assert k["s"] == k["n"] and k["w"] > 10  # witness is NULL for inputs without one
    assert read_manifest(stores["slim"])["keep_scripts"] is False  # type: ignore[index]
    assert read_manifest(stores["keep"])["keep_scripts"] is True  # type: ignore[index]
    # What the arrays hold is NULL in the default store's files; the views compute it (and the
    # views compare equal below). The --keep-scripts store's files hold every value.
    held = {
        "txs_raw": "count(txid), count(fee), count(input_value), count(output_value), "
        "count(vsize), count(weight)",
        "outputs_raw": "count(txid), count(value)",
        "inputs_raw": "count(txid), count(prev_txid), count(value), count(prev_vout)",
    }
    for table, columns in held.items():
        query = f"SELECT count(*), {columns} FROM {table}"
        n_rows, *slim_held = slim.sql(query).to_pylist()[0].values()
        assert slim_held == [0] * len(slim_held) and n_rows > 30, table
        n_keep, *keep_held = keep.sql(query).to_pylist()[0].values()
        assert keep_held[0] == n_keep == n_rows and min(keep_held) > 20, table
    kept = (
        "SELECT script_type, count(*) AS n, count(script_pubkey) AS kept FROM outputs_raw "
        "GROUP BY 1 ORDER BY 1"
    )
    by_type = {r["script_type"]: r for r in slim.sql(kept).to_pylist()}
    standard = {"p2pkh", "p2wpkh", "p2tr"} & set(by_type)
    assert len(standard) == 3 and all(by_type[t]["kept"] == 0 for t in standard)
    assert sum(r["kept"] for r in by_type.values()) > 0  # the others are kept in the file
    assert all(r["kept"] == r["n"] for t, r in by_type.items() if t not in standard)
    a, b = dump_views(stores["slim"]), dump_views(stores["keep"])
    for rows in (*a.values(), *b.values()):
        for row in rows:
            for column in SCRIPT_COLUMNS:
                row.pop(column, None)
    assert a == b
    n = slim.counts["txs"]
    fingerprints = read_fingerprints(slim, 0, n)
    assert (fingerprints == read_fingerprints(keep, 0, n)).all()
    assert len(set(fingerprints.tolist())) > 1  # coinbases and spends differ: it can fail


def test_raw_reads_every_tx_back_from_xored_blk_files(
    chain: list, xor_blocks: Path, stores: dict[str, Path]
) -> None:
    assert (xor_blocks / "xor.dat").read_bytes() == KEY
    assert len(list(xor_blocks.glob("blk*.dat"))) > 2
    files = b"".join(p.read_bytes() for p in sorted(xor_blocks.glob("blk*.dat")))
    store = Store.open(stores["slim"])
    keep = Store.open(stores["keep"])
    n_witness = 0
    for block in chain:
        for tx in block.txs:
            txid = tx.txid()[::-1].hex()
            got = raw_transaction(store, txid)
            assert got == tx.serialize()
            if tx.has_witness:
                n_witness += 1
                assert sha256d(got) == tx.wtxid()  # the witness is there
            else:
                assert sha256d(got)[::-1].hex() == txid
            if len(got) > 64:
                assert got not in files  # really read through the key
            # the bytes a --keep-scripts store holds are the ones read back
            for row in keep.sql(
                "SELECT script_sig, witness FROM inputs WHERE txid = ?", [txid]
            ).to_pylist():
                assert row["script_sig"] in got
                assert row["witness"] is None or row["witness"] in got
    assert n_witness > 10


def test_cli_tx_raw_prints_the_hex(chain: list, stores: dict[str, Path]) -> None:
    tx = chain[-1].txs[-1]
    txid = tx.txid()[::-1].hex()
    result = CliRunner().invoke(app, ["--data", str(stores["slim"]), "tx", txid, "--raw"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == tx.serialize().hex()


def test_raw_from_recorded_rpc_replies_when_the_files_are_gone(tmp_path: Path) -> None:
    blocks_dir = copy_nbitcoin(tmp_path / "blocks")
    ingest_blocks_dir(blocks_dir, tmp_path / "data")
    store = Store.open(tmp_path / "data")
    assert not (blocks_dir / "xor.dat").exists()  # plain (pre-28) blk files first
    assert sha256d(raw_transaction(store, BLOCK_1_COINBASE))[::-1].hex() == BLOCK_1_COINBASE
    shutil.rmtree(blocks_dir)
    with pytest.raises(ChainsleuthError) as missing:
        raw_transaction(store, BLOCK_1_COINBASE)
    assert "blk00000.dat is not there" in str(missing.value)
    assert "--rpc" in str(missing.value) and "\n" not in str(missing.value)
    with RpcReplayServer.recorded() as server:
        node = RpcSource(server.url, user=server.user, password=server.password)
        with node:
            got = raw_transaction(store, BLOCK_1_COINBASE, rpc=node)
        # block 1's coinbase has no recorded getrawtransaction: cut from the recorded block
        assert server.calls == ["getrawtransaction", "getblock"]
    assert sha256d(got)[::-1].hex() == BLOCK_1_COINBASE


def test_raw_over_rpc_for_a_store_ingested_over_rpc(chain: list, tmp_path: Path) -> None:
    with RpcReplayServer.scripted(raw(chain), chain="regtest") as server:
        node = RpcSource(server.url, user=server.user, password=server.password)
        with node:
            ingest_rpc(node, tmp_path / "data")
            store = Store.open(tmp_path / "data")
            assert (store.array("block_location")[:, 0] == -1).all()
            with pytest.raises(ChainsleuthError, match="ingested over RPC"):
                raw_transaction(store, chain[5].txs[0].txid()[::-1].hex())
            server.calls.clear()
            for block in chain[-3:]:
                for tx in block.txs:
                    got = raw_transaction(store, tx.txid()[::-1].hex(), rpc=node)
                    assert got == tx.serialize()
            assert set(server.calls) == {"getrawtransaction"}  # named by its block: no txindex


def test_keep_scripts_is_the_first_ingests_choice(
    chain: list, xor_blocks: Path, tmp_path: Path
) -> None:
    prefix = BlockFileWriter(tmp_path / "prefix", REGTEST.magic)
    for block in raw(chain[:12]):
        prefix.write(block)
    prefix.close()
    data = tmp_path / "data"
    runner = CliRunner()
    first = ["--data", str(data), "ingest", "--blocks-dir", str(tmp_path / "prefix")]
    assert runner.invoke(app, [*first, "--keep-scripts"]).exit_code == 0
    # a later run without the flag keeps scripts, as the first run chose
    again = ["--data", str(data), "ingest", "--blocks-dir", str(xor_blocks)]
    later = runner.invoke(app, again)
    assert later.exit_code == 0, later.output
    store = Store.open(data)
    row = store.sql("SELECT count(*) AS n, count(script_sig) AS s FROM inputs").to_pylist()[0]
    assert row["n"] == row["s"] > 30 and store.counts["blocks"] == len(chain)
    # asking for the other choice is one line, and changes nothing
    refused = subprocess.run(
        [sys.executable, "-m", "chainsleuth", *again, "--no-keep-scripts"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: ") and refused.stderr.strip().count("\n") == 0
    assert "keeps scriptSigs and witnesses" in refused.stderr
    assert "--no-keep-scripts" in refused.stderr
    assert read_manifest(data)["keep_scripts"] is True  # type: ignore[index]


def test_standard_scripts_rebuilt_from_address_keys_byte_for_byte() -> None:
    """Every key kind with a standard script rebuilds `core.address.script_pubkey` exactly; a
    script that differs from it (P2PK, trailing bytes) is kept in the file."""
    cases = [
        (ScriptType.P2PKH, bytes(range(20))),
        (ScriptType.P2SH, bytes(range(1, 21))),
        (ScriptType.P2WPKH, bytes(range(2, 22))),
        (ScriptType.P2WSH, bytes(range(32))),
        (ScriptType.P2TR, bytes(range(3, 35))),
        (ScriptType.P2A, P2A_PROGRAM),
        (ScriptType.WITNESS_UNKNOWN, bytes([2]) + bytes(range(40))),
    ]
    keys = np.zeros((len(cases) + 1, ADDRESS_KEY_WIDTH), np.uint8)
    for row, (kind, payload) in enumerate(cases):
        keys[row, :2] = int(kind), len(payload)
        keys[row, 2 : 2 + len(payload)] = np.frombuffer(payload, np.uint8)
    want = [script_pubkey(kind, payload) for kind, payload in cases]
    assert scripts_of_keys(keys).to_pylist() == [*want, None]  # no key: no script
    scripts = [*want, want[0] + b"\x00"]  # the last one has a byte more than its key's script
    keys[-1] = keys[0]
    buf = np.frombuffer(b"".join(scripts), np.uint8)
    lengths = np.array([len(x) for x in scripts])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    assert standard_scripts(keys, buf, starts, lengths).tolist() == [True] * len(cases) + [False]


@pytest.mark.parametrize("old", [3, 4])
def test_a_store_of_a_previous_format_is_refused_with_one_line(tmp_path: Path, old: int) -> None:
    (tmp_path / "manifest.json").write_text(f'{{"format": {old}}}')
    with pytest.raises(StoreError) as caught:
        read_manifest(tmp_path)
    message = str(caught.value)
    assert f"format {old}" in message and f"format {FORMAT_VERSION}" in message
    assert FORMAT_VERSION == 6 and "fees" in message  # says what the new format computes
    assert "Ingest again" in message and "\n" not in message


def test_a_format_4_store_is_refused_by_the_cli_with_one_line(
    stores: dict[str, Path], tmp_path: Path
) -> None:
    old = tmp_path / "old"
    shutil.copytree(stores["slim"], old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["format"] = 4
    (old / "manifest.json").write_text(json.dumps(manifest))
    done = subprocess.run(
        [sys.executable, "-m", "chainsleuth", "--data", str(old), "sql", "SELECT 1 FROM txs"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and done.stdout == ""
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "format 4" in lines[0] and "Ingest again" in lines[0], lines


def test_computed_tx_values_and_spent_positions_equal_the_kept_ones(
    stores: dict[str, Path],
) -> None:
    """Format 5's computed columns, row for row, against the values a --keep-scripts ingest of
    the same blocks wrote into its files (and against the parser's own arithmetic)."""
    slim, keep = Store.open(stores["slim"]), Store.open(stores["keep"])
    columns = "tx_id, fee, input_value, output_value, vsize, weight, is_coinbase"
    a = slim.sql(f"SELECT {columns} FROM txs ORDER BY tx_id").to_pylist()
    b = keep.sql(f"SELECT {columns} FROM txs_raw ORDER BY tx_id").to_pylist()
    assert a == b and len(a) > 30
    assert sum(r["fee"] for r in a) > 0  # the chain pays fees: a wrong sum can fail
    assert any(r["weight"] != 4 * r["vsize"] for r in a)  # segwit txs: the rounding is tested
    assert all(r["input_value"] == r["output_value"] + r["fee"] for r in a if not r["is_coinbase"])
    inputs = "SELECT input_id, prev_vout FROM {} ORDER BY input_id"
    a = slim.sql(inputs.format("inputs")).to_pylist()
    assert a == keep.sql(inputs.format("inputs_raw")).to_pylist()
    assert any((r["prev_vout"] or 0) > 0 for r in a) and any(r["prev_vout"] is None for r in a)
    # the block totals (kept in the blocks table) agree with the computed per-tx fees
    fees = slim.sql(
        "SELECT b.fees, sum(t.fee) AS total FROM blocks b JOIN txs t ON t.block_height = b.height "
        "GROUP BY b.fees, b.height"
    ).to_pylist()
    assert all(r["fees"] == r["total"] for r in fees)
    # a query filtered on ids computes only its rows, the bare connection of `tx` included
    one = slim.sql("SELECT fee, vsize FROM txs WHERE tx_id = ?", [b[-1]["tx_id"]]).to_pylist()
    assert one == [{"fee": b[-1]["fee"], "vsize": b[-1]["vsize"]}]


def test_counting_columns_are_delta_encoded_and_the_rest_are_not(stores: dict[str, Path]) -> None:
    """layout.DELTA_COLUMNS are written DELTA_BINARY_PACKED in every store (both choices of
    --keep-scripts); other integer columns keep the writer's PLAIN encoding."""
    for data in stores.values():
        manifest = read_manifest(data)
        assert manifest is not None
        seen = 0
        for table, files in read_files(data, manifest).items():
            delta = set(DELTA_COLUMNS[table])
            for entry in files:
                meta = pq.ParquetFile(data / entry["path"]).metadata
                for g in range(meta.num_row_groups):
                    for c in range(meta.num_columns):
                        column = meta.row_group(g).column(c)
                        encoded = "DELTA_BINARY_PACKED" in column.encodings
                        assert encoded == (column.path_in_schema in delta), (table, column)
                        seen += encoded
        assert seen > 10


def test_the_encoding_bench_measures_each_column_both_ways(stores: dict[str, Path]) -> None:
    """bench.parquet_encodings (which chose DELTA_COLUMNS): a dense id column shrinks under
    DELTA_BINARY_PACKED, and --null-format5 measures the kept values as NULL."""
    from bench.parquet_encodings import measure

    kept, nulled = measure(stores["keep"]), measure(stores["keep"], null_format5=True)
    plain, delta = kept["inputs"]["input_id"]
    assert delta < plain
    assert set(kept["txs"]) == set(layout_names("txs"))
    for table, column in (("txs", "fee"), ("txs", "weight"), ("inputs", "prev_vout")):
        assert nulled[table][column][0] < kept[table][column][0], (table, column)
    assert nulled["txs"]["tx_id"] == kept["txs"]["tx_id"]


def layout_names(table: str) -> list[str]:
    from chainsleuth.store.layout import SCHEMAS

    return SCHEMAS[table].names
