"""The stored chain is valid where an ingest looks: merkle roots, proof of work, BIP34, BIP141,
linkage, stale blocks and out-of-order storage.
"""

from __future__ import annotations

import datetime as dt

from chainsleuth.core.network import REGTEST
from chainsleuth.parse.serialize import (
    REGTEST_BITS,
    bits_to_target,
    merkle_root,
    witness_commitment_script,
)
from chainsleuth.simulate.chain import bip34_push
from chainsleuth.simulate.economy.model import subsidy
from tests.simulate.conftest import Chain


def test_every_stored_block_has_the_merkle_root_of_its_transactions(chain: Chain) -> None:
    for s in chain.stored:
        assert merkle_root([t.txid() for t in s.block.txs]) == s.block.header.merkle_root


def test_every_header_meets_regtest_proof_of_work(chain: Chain) -> None:
    target = bits_to_target(REGTEST_BITS)
    for s in chain.stored:
        assert s.block.header.bits == REGTEST_BITS
        assert int.from_bytes(s.hash, "little") <= target


def test_every_block_but_genesis_links_to_a_stored_parent(chain: Chain) -> None:
    for s in chain.stored:
        prev = s.block.header.prev_hash
        assert prev == bytes(32) or prev in chain.by_hash
    assert [s.hash for s in chain.stored if s.block.header.prev_hash == bytes(32)] == [
        bytes.fromhex(REGTEST.genesis_hash)[::-1]
    ]


def test_every_coinbase_script_starts_with_its_bip34_height(chain: Chain) -> None:
    for s in chain.stored[1:]:
        height = chain.height[s.hash]
        cb = s.block.txs[0]
        assert cb.is_coinbase()
        assert cb.inputs[0].script_sig.startswith(bip34_push(height))
        assert 2 <= len(cb.inputs[0].script_sig) <= 100


def test_bip34_push_matches_bitcoin_cores_script_number_encoding() -> None:
    assert bip34_push(1) == b"\x51"
    assert bip34_push(16) == b"\x60"
    assert bip34_push(17) == b"\x01\x11"
    assert bip34_push(128) == b"\x02\x80\x00"  # sign bit forces an extra byte
    assert bip34_push(500_000) == b"\x03\x20\xa1\x07"


def test_every_coinbase_commits_to_the_blocks_witness_txids(chain: Chain) -> None:
    for s in chain.stored[1:]:
        cb = s.block.txs[0]
        assert cb.inputs[0].witness == (bytes(32),)
        script = witness_commitment_script([t.wtxid() for t in s.block.txs[1:]])
        assert cb.outputs[-1].script_pubkey == script


def test_blocks_carry_segwit_transactions(chain: Chain) -> None:
    assert sum(t.has_witness for b in chain.main[101:] for t in b.txs[1:]) > 1000


def test_coinbase_claims_exactly_subsidy_plus_fees(chain: Chain, prevouts: dict) -> None:
    for height, block in enumerate(chain.main[1:], 1):
        fees = 0
        for tx in block.txs[1:]:
            fees += sum(prevouts[(i.prev_txid, i.prev_vout)][0] for i in tx.inputs)
            fees -= sum(o.value for o in tx.outputs)
        assert sum(o.value for o in block.txs[0].outputs) == subsidy(height) + fees


def test_tip_and_transaction_count_agree_with_world_json(chain: Chain, world: dict) -> None:
    assert len(chain.main) - 1 == world["tip_height"]
    assert chain.main[-1].header.hash_hex() == world["tip_hash"]
    assert sum(len(b.txs) for b in chain.main) == world["n_txs"]
    assert len(chain.stored) == world["n_blocks_stored"]


def test_stale_blocks_are_stored_but_not_on_the_most_work_chain(chain: Chain, world: dict) -> None:
    main = {b.header.hash_hex() for b in chain.main}
    stored = {s.block.header.hash_hex() for s in chain.stored}
    stale = set(world["stale_hashes"])
    assert stale
    assert stale <= stored
    assert not stale & main
    assert stored - main == stale


def test_a_two_block_stale_branch_is_stored_before_the_main_blocks_it_competes_with(
    chain: Chain,
) -> None:
    main = {b.header.hash() for b in chain.main}
    stale = [s for s in chain.stored if s.hash not in main]
    branch = [s for s in stale if s.block.header.prev_hash in {x.hash for x in stale}]
    assert branch, "no stale block extends another stale block"
    child = branch[0]
    rival = next(
        s
        for s in chain.stored
        if s.hash in main and chain.height[s.hash] == chain.height[child.hash]
    )
    assert child.order < rival.order


def test_stale_blocks_reconfirm_only_transactions_of_the_main_chain(chain: Chain) -> None:
    main_txids = {t.txid() for b in chain.main for t in b.txs}
    main = {b.header.hash() for b in chain.main}
    stale = [s for s in chain.stored if s.hash not in main]
    assert any(len(s.block.txs) > 1 for s in stale)
    for s in stale:
        assert all(t.txid() in main_txids for t in s.block.txs[1:])
        assert s.block.txs[0].txid() not in main_txids


def test_at_least_one_block_is_stored_before_its_parent(chain: Chain, world: dict) -> None:
    early = [
        s.block.header.hash_hex()
        for s in chain.stored
        if s.block.header.prev_hash != bytes(32)
        and chain.by_hash[s.block.header.prev_hash].order > s.order
    ]
    assert early
    assert sorted(early) == sorted(world["stored_before_parent"])


def test_block_times_increase_and_fall_in_2018_and_2019(chain: Chain) -> None:
    times = [b.header.time for b in chain.main[1:]]
    assert times == sorted(times) and len(set(times)) == len(times)
    first = dt.datetime.fromtimestamp(times[0], dt.UTC)
    last = dt.datetime.fromtimestamp(times[-1], dt.UTC)
    assert first.year == 2018 and last.year == 2019 and last.month == 12


def test_truth_blocks_csv_says_where_each_block_is_stored(chain: Chain, truth: dict) -> None:
    rows = truth["blocks"]
    assert len(rows) == len(chain.stored)
    for row, s in zip(rows, chain.stored, strict=True):
        assert row["hash"] == s.block.header.hash_hex()
        assert (row["file"], int(row["offset"])) == (s.file, s.offset)
        assert int(row["height"]) == chain.height[s.hash]
