"""A transaction's full raw bytes, read back from the node: `chainsleuth tx TXID --raw`.

A default store does not keep scriptSigs and witnesses (most of a chain's bytes, and already in
the node's files); it keeps where each tx lies instead: `block_location` (blk file number, byte
offset of the block's header in it, block length) and `tx_offset` (the tx's offset in its
block; its length runs to the next tx's offset, or to the block's end). So the bytes come from

- the blk files, un-XORed with `xor.dat` by the sources stage (`blkfiles.read_blocks`), from the
  blocks directory the store was ingested from (or the one given);
- else over JSON-RPC: `getrawtransaction TXID false BLOCKHASH` (no `-txindex` needed when the
  block is named), or, where that fails, `getblock BLOCKHASH 0` cut at the tx's offset.

Either way the bytes are parsed as one transaction and its txid is checked against the one asked
for, so a blk file that changed since the ingest (a `-reindex` moves blocks) is noticed, never
returned.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from chainsleuth.core.errors import ChainsleuthError, InputError
from chainsleuth.parse.blocks import parse_blocks
from chainsleuth.sources import blkfiles
from chainsleuth.store.store import Store

_FAKE_HEADER = bytes(80)
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def txid_of(raw: bytes) -> str | None:
    """Display hex txid of one serialized transaction, or None when `raw` is not exactly one.

    Parsed as the only tx of a block with a blank header, so the parse stage's own rules (and
    its segwit stripping) decide what a transaction is.
    """
    try:
        batch = parse_blocks([_FAKE_HEADER + b"\x01" + raw], check_merkle=False)
    except InputError:
        return None
    if batch.n_tx != 1 or int(batch.tx_end[0]) != 81 + len(raw):
        return None
    return batch.txid_hex(0)


def blocks_dir_of(store: Store) -> Path | None:
    """The blocks directory of the store's latest blk-file ingest (from the manifest)."""
    for entry in reversed(store.manifest.get("ingests", [])):
        source = str(entry.get("source", ""))
        if source.startswith("blocks-dir "):
            return Path(source.removeprefix("blocks-dir "))
    return None


def _location(store: Store, tx_id: int) -> tuple[int, int, int, int, int]:
    """(height, blk file number or -1, file offset of the tx, tx offset in block, length)."""
    n_tx = store.counts["txs"]
    height = int(store.random_graph.tx_height[tx_id])
    file_number, block_offset, block_length = (
        int(v) for v in store.random_graph.block_location[height]
    )
    offsets = store.random_graph.tx_offset
    start = int(offsets[tx_id])
    same_block = tx_id + 1 < n_tx and int(store.random_graph.tx_height[tx_id + 1]) == height
    end = int(offsets[tx_id + 1]) if same_block else block_length
    return height, file_number, block_offset + start, start, end - start


def _from_blk(blocks_dir: Path, file_number: int, offset: int, length: int) -> bytes | str:
    """The bytes, or why not (one line)."""
    path = blocks_dir / f"blk{file_number:05d}.dat"
    if not path.is_file():
        return f"{path} is not there"
    try:
        key = blkfiles.read_xor_key(blocks_dir)
        record = blkfiles.BlockRecord(file_number, offset, length, b"", b"", 0, 0)
        return next(iter(blkfiles.read_blocks(blocks_dir, [record], key)))
    except (OSError, InputError) as e:
        return f"{path}: {e}"


def _from_rpc(rpc: Any, txid: str, block_hash: str, start: int, length: int) -> bytes | str:
    from chainsleuth.sources.rpc import RpcError

    try:
        return bytes.fromhex(rpc.call("getrawtransaction", txid, False, block_hash))
    except (RpcError, ValueError, TypeError) as first:
        try:
            block = rpc.raw_block(block_hash)
        except RpcError as e:
            return f"{rpc.url}: getrawtransaction: {first}; getblock: {e}"
        return block[start : start + length]


def raw_transaction(
    store: Store, txid: str, *, blocks_dir: Path | None = None, rpc: Any = None
) -> bytes:
    """The full serialized transaction (witness included), from blk files or over RPC.

    `blocks_dir`: the node's blocks directory (default: the one the store was ingested from);
    `rpc`: a `chainsleuth.sources.rpc.RpcSource`, used when the files are not there, do not
    hold the tx any more, or the store was ingested over RPC.
    """
    if not _HEX64.match(txid):
        raise ChainsleuthError(f"not a txid (64 hex characters): {txid!r}")
    txid = txid.lower()
    found = store.tx_id_of(txid)
    if found is None:
        raise ChainsleuthError(f"transaction {txid} is not in the store")
    tx_id = int(found)
    height, file_number, offset, start, length = _location(store, tx_id)
    tried: list[str] = []
    if file_number >= 0:
        directory = blocks_dir if blocks_dir is not None else blocks_dir_of(store)
        if directory is None:
            tried.append("no blocks directory is recorded: give --blocks-dir")
        else:
            got = _from_blk(Path(directory), file_number, offset, length)
            if isinstance(got, bytes) and txid_of(got) == txid:
                return got
            where = f"{Path(directory) / f'blk{file_number:05d}.dat'} @ {offset}"
            tried.append(got if isinstance(got, str) else f"{where} holds another tx now")
    else:
        tried.append("the store was ingested over RPC")
    if rpc is not None:
        block_hash = bytes(np.asarray(store.random_graph.block_hash[height])[::-1]).hex()
        got = _from_rpc(rpc, txid, block_hash, start, length)
        if isinstance(got, bytes) and txid_of(got) == txid:
            return got
        tried.append(got if isinstance(got, str) else f"{rpc.url} returned another tx")
    else:
        tried.append("no --rpc node to ask")
    raise ChainsleuthError(f"raw bytes of tx {txid} not found: {'; '.join(tried)}")
