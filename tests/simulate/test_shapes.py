"""Transactions have the shapes real wallets and services give them."""

from __future__ import annotations

import hashlib
from collections import Counter

from chainsleuth.core.address import hash160
from chainsleuth.parse.serialize import Tx
from chainsleuth.simulate.economy.model import WHIRLPOOL_DENOMS
from tests.simulate.conftest import Chain


def _of_kind(chain: Chain, tx_kinds: dict, kind: str) -> list[Tx]:
    return [tx for _, tx in chain.main_txs() if tx_kinds[tx.txid_hex()]["kind"] == kind]


def _is_strict_der(sig: bytes) -> bool:
    """BIP66's IsValidSignatureEncoding, with the sighash byte."""
    if not 9 <= len(sig) <= 73 or sig[0] != 0x30 or sig[1] != len(sig) - 3:
        return False
    rlen = sig[3]
    if 5 + rlen >= len(sig) or sig[2] != 0x02 or rlen == 0 or sig[4] & 0x80:
        return False
    if rlen > 1 and sig[4] == 0 and not sig[5] & 0x80:
        return False
    slen = sig[5 + rlen]
    if rlen + slen + 7 != len(sig) or sig[4 + rlen] != 0x02 or slen == 0 or sig[6 + rlen] & 0x80:
        return False
    return not (slen > 1 and sig[6 + rlen] == 0 and not sig[7 + rlen] & 0x80)


def test_inputs_carry_unlocking_data_shaped_for_the_script_they_spend(
    chain: Chain, prevouts: dict
) -> None:
    seen: Counter[str] = Counter()
    for _, tx in chain.main_txs():
        if tx.is_coinbase():
            continue
        for i in tx.inputs:
            spk = prevouts[(i.prev_txid, i.prev_vout)][1]
            if spk[:3] == b"\x76\xa9\x14":  # P2PKH: <sig> <pubkey>, the key hashing to the address
                sig = i.script_sig[1 : 1 + i.script_sig[0]]
                pk = i.script_sig[2 + len(sig) :]
                assert _is_strict_der(sig) and len(pk) == 33 and not i.witness
                assert hash160(pk) == spk[3:23]
                seen["p2pkh"] += 1
            elif spk[:2] == b"\x00\x14":  # P2WPKH
                assert i.script_sig == b"" and len(i.witness) == 2
                assert _is_strict_der(i.witness[0]) and hash160(i.witness[1]) == spk[2:]
                seen["p2wpkh"] += 1
            elif spk[:2] == b"\xa9\x14":  # P2SH-P2WPKH: the redeem script is pushed
                redeem = i.script_sig[1:]
                assert i.script_sig[0] == 22 and hash160(redeem) == spk[2:22]
                assert redeem == b"\x00\x14" + hash160(i.witness[1])
                seen["p2sh"] += 1
            elif spk[:2] == b"\x00\x20":  # P2WSH 2-of-3: dummy, two sigs, witness script
                dummy, s1, s2, ws = i.witness
                assert dummy == b"" and _is_strict_der(s1) and _is_strict_der(s2)
                assert (
                    hashlib.sha256(ws).digest() == spk[2:]
                    and ws[0] == 0x52
                    and ws[-2:] == b"\x53\xae"
                )
                seen["p2wsh"] += 1
            elif spk[:2] == b"\x51\x20":  # P2TR key path
                assert i.script_sig == b"" and len(i.witness) == 1 and len(i.witness[0]) == 64
                seen["p2tr"] += 1
            else:
                raise AssertionError(f"unexpected prevout script {spk.hex()}")
    assert all(seen[k] > 50 for k in ("p2pkh", "p2wpkh", "p2sh", "p2wsh", "p2tr")), seen


def test_output_script_types_are_mixed_like_2018_2019(chain: Chain) -> None:
    kinds: Counter[str] = Counter()
    for h, tx in chain.main_txs():
        for o in tx.outputs if h > 0 else ():  # genesis pays a bare public key (P2PK)
            s = o.script_pubkey
            kind = {b"\x76\xa9": "p2pkh", b"\xa9\x14": "p2sh", b"\x00\x14": "p2wpkh",
                    b"\x00\x20": "p2wsh", b"\x51\x20": "p2tr"}.get(s[:2], "op_return" if s[0] == 0x6A else "?")  # fmt: skip
            kinds[kind] += 1
    total = sum(kinds.values())
    assert "?" not in kinds
    assert kinds["p2pkh"] / total > 0.2 and kinds["p2sh"] / total > 0.1
    assert kinds["op_return"] > 400  # witness commitments and data carriers


def test_whirlpool_mixes_are_five_equal_outputs_at_a_pool_denomination(
    chain: Chain, tx_kinds: dict
) -> None:
    mixes = _of_kind(chain, tx_kinds, "whirlpool_mix")
    assert len(mixes) >= 20
    for tx in mixes:
        assert len(tx.inputs) == 5 and len(tx.outputs) == 5
        values = {o.value for o in tx.outputs}
        assert len(values) == 1 and values.pop() in WHIRLPOOL_DENOMS


def test_whirlpool_tx0s_pay_a_fee_and_carry_an_op_return(chain: Chain, tx_kinds: dict) -> None:
    for tx in _of_kind(chain, tx_kinds, "whirlpool_tx0"):
        assert tx.outputs[0].script_pubkey[:1] == b"\x6a"
        premix = Counter(o.value for o in tx.outputs[2:])
        assert premix.most_common(1)[0][0] > min(WHIRLPOOL_DENOMS)


def test_wasabi_rounds_have_ten_or_more_equal_outputs_near_a_tenth_of_a_bitcoin(
    chain: Chain, tx_kinds: dict
) -> None:
    rounds = _of_kind(chain, tx_kinds, "wasabi_mix")
    assert len(rounds) >= 5
    for tx in rounds:
        counts = Counter(o.value for o in tx.outputs)
        count, value = max((n, -v) for v, n in counts.items())  # largest group, ties: smaller
        assert count >= 10 and abs(-value - 10_000_000) <= 2_000_000
        assert len(tx.inputs) >= count
        assert len(tx.outputs) > count  # change outputs and the coordinator fee


def test_joinmarket_rounds_have_one_equal_group_and_change(chain: Chain, tx_kinds: dict) -> None:
    rounds = _of_kind(chain, tx_kinds, "joinmarket_mix")
    assert rounds
    for tx in rounds:
        _, n = Counter(o.value for o in tx.outputs).most_common(1)[0]
        assert n >= 3 and len(tx.outputs) in (2 * n - 1, 2 * n)


def test_exchange_sweeps_consolidate_many_deposits_into_one_output(
    chain: Chain, tx_kinds: dict
) -> None:
    sweeps = _of_kind(chain, tx_kinds, "exchange_sweep")
    assert all(len(tx.outputs) == 1 for tx in sweeps)
    assert max(len(tx.inputs) for tx in sweeps) >= 20


def test_withdrawal_batches_pay_many_customers_with_change(chain: Chain, tx_kinds: dict) -> None:
    batches = _of_kind(chain, tx_kinds, "exchange_withdrawal")
    assert max(len(tx.outputs) for tx in batches) >= 10
    with_change = sum(bool(tx_kinds[tx.txid_hex()]["change_vouts"]) for tx in batches)
    assert with_change > 0.9 * len(batches)


def test_wallet_software_leaves_locktime_and_sequence_fingerprints(chain: Chain) -> None:
    styles: Counter[tuple[bool, int]] = Counter()
    for h, tx in chain.main_txs():
        if not tx.is_coinbase():
            styles[(tx.locktime == h - 1, tx.inputs[0].sequence)] += 1
    assert styles[(True, 0xFFFFFFFE)] > 100  # Core: anti-fee-sniping, final-ish sequence
    assert styles[(True, 0xFFFFFFFD)] > 100  # Electrum: opt-in RBF
    assert styles[(False, 0xFFFFFFFF)] > 100  # everyone else


def test_many_payments_are_round_in_btc_or_usd(chain: Chain, tx_kinds: dict) -> None:
    payments = _of_kind(chain, tx_kinds, "payment")
    round_btc = sum(any(o.value % 100_000 == 0 for o in tx.outputs) for tx in payments)
    assert round_btc > 0.05 * len(payments)
