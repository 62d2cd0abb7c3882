"""Simulated keys: output scripts, well-formed fake signatures, and the book of every address.

The simulator never signs anything, yet the chain it writes should look like one a real wallet
made: a P2PKH input carries a DER signature and a compressed public key that really hashes to
the address it spends, a P2SH-P2WPKH input pushes its redeem script, a P2WSH 2-of-3 input has the
empty dummy, two signatures and the witness script. Keys are derived from the seed and the address
id, so nothing but small integers is kept per address; the `AddressBook` holds the ground truth
(owner wallet, role, account) in flat arrays that `chainsleuth.simulate.encode` turns into address
strings in bulk at the end. Used by `chainsleuth.simulate.economy`.
"""

from __future__ import annotations

import hashlib
import random
from array import array

from chainsleuth.core.script_types import ScriptType
from chainsleuth.parse.serialize import TxIn

__all__ = ["ROLES", "Addr", "AddressBook", "Utxo", "SPK_TEMPLATE", "INPUT_VSIZE_MAX"]

_sha256 = hashlib.sha256


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", _sha256(data).digest()).digest()


#: what an address is for, stored as an index into this tuple (append-only)
ROLES: tuple[str, ...] = (
    "receive",  # 0 a wallet's receiving address
    "change",  # 1 change back to the payer
    "deposit",  # 2 an exchange deposit address, credited to `account`
    "hot",  # 3 exchange / service hot wallet
    "cold",  # 4 exchange cold storage (P2WSH 2-of-3)
    "coinbase",  # 5 a pool's coinbase payout address
    "service_deposit",  # 6 the service's per-user deposit address
    "service_wallet",  # 7 where the service sweeps its deposits
    "premix",  # 8 Whirlpool tx0 output
    "postmix",  # 9 output of a CoinJoin round (equal denomination)
    "coordinator_fee",  # 10 a CoinJoin coordinator's fee address
    "mix_change",  # 11 a CoinJoin participant's change (toxic change)
)
ROLE = {name: i for i, name in enumerate(ROLES)}

#: output scripts of the right length, for sizing a transaction before its change exists
SPK_TEMPLATE: dict[int, bytes] = {
    ScriptType.P2PKH: b"\x76\xa9\x14" + bytes(20) + b"\x88\xac",
    ScriptType.P2SH: b"\xa9\x14" + bytes(20) + b"\x87",
    ScriptType.P2WPKH: b"\x00\x14" + bytes(20),
    ScriptType.P2WSH: b"\x00\x20" + bytes(32),
    ScriptType.P2TR: b"\x51\x20" + bytes(32),
}

#: an upper bound on each input's vsize (signatures here are at most 72 bytes), for coin selection
INPUT_VSIZE_MAX: dict[int, int] = {
    ScriptType.P2PKH: 148,
    ScriptType.P2SH: 91,
    ScriptType.P2WPKH: 68,
    ScriptType.P2WSH: 105,
    ScriptType.P2TR: 58,
}

P2PKH = int(ScriptType.P2PKH)
P2SH = int(ScriptType.P2SH)
P2WPKH = int(ScriptType.P2WPKH)
P2WSH = int(ScriptType.P2WSH)
P2TR = int(ScriptType.P2TR)


class Addr:
    """One address: its id in the book, script type and output script."""

    __slots__ = ("aid", "stype", "spk", "owner")

    def __init__(self, aid: int, stype: int, spk: bytes, owner: int) -> None:
        self.aid = aid
        self.stype = stype
        self.spk = spk
        self.owner = owner


class Utxo:
    """An unspent output the simulator tracks: where it is, what it holds, who can spend it."""

    __slots__ = ("txid", "vout", "value", "addr", "height", "spent")

    def __init__(self, txid: bytes, vout: int, value: int, addr: Addr, height: int) -> None:
        self.txid = txid
        self.vout = vout
        self.value = value
        self.addr = addr
        self.height = height
        self.spent = False


class AddressBook:
    """Every address the world creates, with its owner, role and account, in creation order.

    Payloads are kept in one bytearray (32 bytes per address, 20-byte hashes left-aligned) so a
    large world holds millions of addresses without millions of Python objects.
    """

    def __init__(self, seed: int) -> None:
        self._salt = _sha256(b"chainsleuth-simulate-keys" + seed.to_bytes(8, "little")).digest()
        self.stype = array("B")
        self.owner = array("i")
        self.role = array("B")
        self.account = array("i")
        self.payload = bytearray()
        self.received = array("q")
        self.sent = array("q")
        self.n_outputs = array("i")

    def __len__(self) -> int:
        return len(self.stype)

    def _key(self, aid: int, i: int = 0) -> bytes:
        return _sha256(self._salt + aid.to_bytes(5, "little") + bytes((i,))).digest()

    def pubkey(self, aid: int, i: int = 0) -> bytes:
        """Compressed public key number `i` of an address (random bytes shaped like one)."""
        d = self._key(aid, i)
        return (b"\x02" if d[31] & 1 == 0 else b"\x03") + d

    def witness_script(self, aid: int) -> bytes:
        """`OP_2 <pk0> <pk1> <pk2> OP_3 OP_CHECKMULTISIG` of a P2WSH 2-of-3 address."""
        pks = b"".join(b"\x21" + self.pubkey(aid, i) for i in range(3))
        return b"\x52" + pks + b"\x53\xae"

    def new(self, stype: int, owner: int, role: int, account: int = -1) -> Addr:
        """Create the next address of a script type for a wallet."""
        aid = len(self.stype)
        if stype == P2PKH:
            payload = _hash160(self.pubkey(aid))
            spk = b"\x76\xa9\x14" + payload + b"\x88\xac"
        elif stype == P2WPKH:
            payload = _hash160(self.pubkey(aid))
            spk = b"\x00\x14" + payload
        elif stype == P2SH:  # always P2SH-P2WPKH here
            payload = _hash160(b"\x00\x14" + _hash160(self.pubkey(aid)))
            spk = b"\xa9\x14" + payload + b"\x87"
        elif stype == P2TR:
            payload = self._key(aid)  # x-only output key
            spk = b"\x51\x20" + payload
        elif stype == P2WSH:  # always 2-of-3 multisig here
            payload = _sha256(self.witness_script(aid)).digest()
            spk = b"\x00\x20" + payload
        else:
            raise ValueError(f"the simulator makes no {ScriptType(stype)} addresses")
        self.stype.append(stype)
        self.owner.append(owner)
        self.role.append(role)
        self.account.append(account)
        self.payload += payload.ljust(32, b"\x00")
        self.received.append(0)
        self.sent.append(0)
        self.n_outputs.append(0)
        return Addr(aid, stype, spk, owner)

    def payload_of(self, aid: int) -> bytes:
        """The address key's payload (hash or witness program)."""
        n = 20 if self.stype[aid] in (P2PKH, P2SH, P2WPKH) else 32
        return bytes(self.payload[32 * aid : 32 * aid + n])

    def txin(self, u: Utxo, sequence: int, rng: random.Random, low_r: bool) -> TxIn:
        """An input spending `u`, with unlocking data of the right shape for its script type."""
        a = u.addr
        st = a.stype
        if st == P2WPKH:
            return TxIn(u.txid, u.vout, b"", sequence, (der_sig(rng, low_r), self.pubkey(a.aid)))
        if st == P2PKH:
            sig = der_sig(rng, low_r)
            ss = bytes((len(sig),)) + sig + b"\x21" + self.pubkey(a.aid)
            return TxIn(u.txid, u.vout, ss, sequence)
        if st == P2SH:
            pk = self.pubkey(a.aid)
            ss = b"\x16\x00\x14" + _hash160(pk)
            return TxIn(u.txid, u.vout, ss, sequence, (der_sig(rng, low_r), pk))
        if st == P2TR:  # key-path spend, SIGHASH_DEFAULT
            return TxIn(u.txid, u.vout, b"", sequence, (rng.randbytes(64),))
        # P2WSH 2-of-3: CHECKMULTISIG's extra pop, two signatures, the witness script
        ws = self.witness_script(a.aid)
        return TxIn(
            u.txid, u.vout, b"", sequence, (b"", der_sig(rng, low_r), der_sig(rng, low_r), ws)
        )


def der_sig(rng: random.Random, low_r: bool) -> bytes:
    """A strictly DER-encoded ECDSA signature of random r and low s, plus SIGHASH_ALL.

    71 bytes when r's top bit is clear (Core grinds for that since 0.17), else 72.
    """
    rs = rng.getrandbits(512).to_bytes(64, "little")
    r0 = rs[0] | 1
    if low_r:
        r0 &= 0x7F
    s0 = (rs[32] & 0x7F) | 1
    s = bytes((s0,)) + rs[33:]
    if r0 & 0x80:
        return b"\x30\x45\x02\x21\x00" + bytes((r0,)) + rs[1:32] + b"\x02\x20" + s + b"\x01"
    return b"\x30\x44\x02\x20" + bytes((r0,)) + rs[1:32] + b"\x02\x20" + s + b"\x01"
