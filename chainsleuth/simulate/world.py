"""The simulated economy: who owns what, and the transactions they make, block by block.

Forensic heuristics (clustering, change detection, CoinJoin detection, tracing) can only be
scored against ground truth, so this module plays an economy modelled on the Welcome to Video
case and on how wallets behave, and remembers who owns every address:

- exchanges: a fresh deposit address per deposit, periodic sweeps of deposits into the hot wallet
  (many inputs), batched withdrawals with change back to the exchange, hot/cold moves (P2WSH 2-of-3);
- mining pools: coinbase to a reused address, matured (100 blocks) coinbases paid out in batches
  to miners (who reuse one address) and to exchange deposits;
- customers of the exchanges, each with a preferred script type, wallet software (locktime,
  sequence, low-R signatures) and change habit (fresh, reused, Core's "match the payment");
- the service: one deposit address per registered user, most never paid; paying users fund their
  payment from an exchange withdrawal directly, over hops of their own wallet, along a peel chain,
  or through a CoinJoin (Whirlpool, Wasabi 1.x, JoinMarket); the service sweeps deposits and its
  administrator cashes out to exchange deposit addresses;
- background users, merchants, miners, P2WSH multisig wallets and privacy users, paying each other
  and the exchanges, with OP_RETURN outputs, so that most transactions have nothing to do with the
  case.

`chainsleuth.simulate.run` drives it: `World.step(height, time)` returns the block's transactions
(spends always after the outputs they spend), the chain code adds the coinbase, and
`World.credit_coinbase` books it. Everything random comes from generators seeded by the world's
seed, and iteration is over lists only, so a seed always gives the same world.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np

from chainsleuth.core.script_types import ScriptType
from chainsleuth.parse.serialize import Tx, TxIn, TxOut, tx_weight
from chainsleuth.simulate.keys import (
    INPUT_VSIZE_MAX,
    ROLE,
    SPK_TEMPLATE,
    Addr,
    AddressBook,
    Utxo,
)
from chainsleuth.simulate.prices import close_usd
from chainsleuth.simulate.profiles import Profile
from chainsleuth.simulate.profiles import profile as get_profile

__all__ = ["COIN", "WALLET_KINDS", "Scale", "SCALES", "World", "Wallet", "subsidy"]

COIN = 100_000_000
DUST = 546  # Core's dust limit for P2PKH; wallets drop smaller change into the fee
MIN_CHANGE = 5_000  # wallets here avoid change outputs smaller than this
COINBASE_MATURITY = 100
HALVING_INTERVAL = 210_000  # mainnet's schedule, not regtest's 150 (see docs/simulator.md)

P2PKH = int(ScriptType.P2PKH)
P2SH = int(ScriptType.P2SH)
P2WPKH = int(ScriptType.P2WPKH)
P2WSH = int(ScriptType.P2WSH)
P2TR = int(ScriptType.P2TR)

#: wallet kinds as written to truth/addresses.csv
WALLET_KINDS = (
    "exchange",
    "pool",
    "miner",
    "customer",
    "user",
    "merchant",
    "multisig",
    "privacy",
    "maker",
    "coordinator",
    "service",
    "admin",
)

# wallet software: (tx version, locktime = tip height?, nSequence, low-R signatures)
CORE, ELECTRUM, MOBILE, SERVICE, MIXER = range(5)
_SOFT = (
    (2, True, 0xFFFFFFFE, True),  # Bitcoin Core 0.17-0.19: anti-fee-sniping locktime, low R
    (2, True, 0xFFFFFFFD, False),  # Electrum: locktime and opt-in RBF
    (1, False, 0xFFFFFFFF, False),  # simple mobile wallets
    (1, False, 0xFFFFFFFF, False),  # exchanges, pools, the service
    (1, False, 0xFFFFFFFF, False),  # CoinJoin coordinators
)
FRESH, REUSE_CHANGE, MATCH = range(3)  # change habits

EXCHANGE_NAMES = ("arcadia", "borealis", "cobalt", "dunmore", "ember", "fjordbit")
WHIRLPOOL_DENOMS = (100_000, 1_000_000, 5_000_000, 50_000_000)  # 0.001 / 0.01 / 0.05 / 0.5 BTC
WHIRLPOOL_FEES = (5_000, 50_000, 175_000, 1_750_000)  # the coordinator's entry fee per pool
USD_PRICES = (5, 10, 20, 25, 50, 100, 150, 200, 250, 500, 1000)
BTC_ROUND = (100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000, 25_000_000)


def subsidy(height: int) -> int:
    """Block subsidy on mainnet's schedule: `subsidy(0) == 50 * COIN`."""
    halvings = height // HALVING_INTERVAL
    return 0 if halvings >= 64 else (50 * COIN) >> halvings


@dataclass(frozen=True)
class Scale:
    """Sizes of one world scale: chain length, populations and activity rate."""

    name: str
    tip_height: int
    activity: float  # multiplies every per-block activity rate
    n_exchanges: int
    n_pools: int
    n_users: int
    n_merchants: int
    n_miners: int
    n_multisig: int
    n_privacy: int
    n_makers: int
    n_customers: int
    n_registered: int  # service deposit addresses
    paying_fraction: float
    wasabi_min: int  # participants before a Wasabi round starts
    max_file_size: int  # blk file rollover size
    n_swaps: int  # blocks stored after their child
    stale: tuple[tuple[int, int, bool], ...]  # (fork height as fraction*1000, length, before)


SCALES: dict[str, Scale] = {
    "small": Scale(
        "small", 420, 1.6, 4, 4, 1200, 150, 120, 30, 60, 20, 600, 1500, 0.25, 12,
        2 * 1024 * 1024, 3, ((400, 1, False), (700, 2, True)),
    ),
    "medium": Scale(
        "medium", 1100, 5.5, 5, 5, 10_000, 1000, 600, 200, 300, 60, 5_000, 15_000, 0.2, 25,
        16 * 1024 * 1024, 8, ((300, 1, False), (600, 2, True), (850, 1, True)),
    ),
    "large": Scale(
        "large", 3100, 21.0, 6, 6, 100_000, 8000, 4000, 1500, 2000, 200, 40_000, 150_000, 0.15,
        60, 128 * 1024 * 1024, 20, ((250, 1, False), (500, 2, True), (750, 1, True), (900, 1, False)),
    ),
}  # fmt: skip


class Wallet:
    """One wallet: kind, habits and its spendable outputs."""

    __slots__ = (
        "idx", "wid", "kind", "entity", "stype", "reuse", "soft", "change", "utxos", "addr",
        "home", "extra",
    )  # fmt: skip

    def __init__(
        self, idx: int, wid: str, kind: str, entity: str, stype: int, *, reuse: bool = False,
        soft: int = SERVICE, change: int = FRESH, home: int = -1,
    ) -> None:  # fmt: skip
        self.idx = idx
        self.wid = wid
        self.kind = kind
        self.entity = entity
        self.stype = stype
        self.reuse = reuse
        self.soft = soft
        self.change = change
        self.utxos: list[Utxo] = []
        self.addr: Addr | None = None
        self.home = home  # exchange index of the wallet's account
        self.extra: list[Utxo] = []  # second list: cold storage, matured coinbases, ...

    def balance(self) -> int:
        return sum(u.value for u in self.utxos)


class Exchange:
    """An exchange: hot wallet (the wallet's utxos), cold storage, deposits, withdrawal queue."""

    def __init__(self, n: int, wallet: Wallet, cold: Addr, hot: list[Addr], rng: random.Random):
        self.n = n
        self.wallet = wallet
        self.name = wallet.entity
        self.dep_stype = (P2PKH, P2SH, P2WPKH, P2SH, P2PKH, P2WPKH)[n % 6]
        self.hot = hot
        self.cold = cold
        self.fresh_change = n % 3 == 2  # others send change back to a reused hot address
        self.no_reuse = False  # profile: fresh hot per sweep, fresh change, fresh cold
        self.change_last = n % 2 == 0
        self.deducts_fee = n % 2 == 1  # withdrawal fee taken from the amount sent
        self.batch_every = 1 + n % 2
        self.sweep_every = 4 + n % 4
        self.offset = rng.randrange(12)
        self.deposits: list[Utxo] = []
        self.queue: list[Request] = []
        self.ema_out = 1.0 * COIN  # withdrawals per block, smoothed


class Request:
    """A withdrawal waiting for the exchange's next batch; filled in when it is paid."""

    __slots__ = ("addr", "value", "bucket", "utxo", "txid", "forward_tried")

    def __init__(self, addr: Addr, value: int, bucket: list[Utxo] | None) -> None:
        self.addr = addr
        self.value = value
        self.bucket = bucket
        self.utxo: Utxo | None = None
        self.txid: bytes | None = None
        self.forward_tried = False  # profile knob: each request is offered to a forward once


class Ticket:
    """A plan's place in a CoinJoin: the outputs it got back, and the round's txid."""

    __slots__ = ("mixed", "change", "txid")

    def __init__(self) -> None:
        self.mixed: list[Utxo] = []
        self.change: Utxo | None = None
        self.txid: bytes | None = None


class WhirlpoolPool:
    """One Whirlpool denomination: entrants waiting (premix) and mixed coins that remix for free."""

    def __init__(self, denom: int, fee: int, fee_addr: Addr) -> None:
        self.denom = denom
        self.fee = fee
        self.fee_addr = fee_addr
        self.premix: list[tuple[Utxo, Ticket | None]] = []
        self.remix: list[Utxo] = []


@dataclass
class Payment:
    """One payment into a service deposit address, with the trail that funded it."""

    txid: str
    vout: int
    deposit_aid: int
    user_wallet: str
    amount: int
    height: int
    funding_exchange: str
    funding_txid: str
    hops: int
    path_kind: str
    coinjoin_kind: str
    broke_trail: bool
    path_txids: list[str]


@dataclass
class Cashout:
    """The administrator moving service funds to an exchange deposit address."""

    txid: str
    vout: int
    aid: int
    exchange: str
    amount: int
    height: int
    time: int
    hops: int


class World:
    """The economy. `step()` once per block; `wallets`, `book` and the lists hold the truth."""

    def __init__(
        self,
        seed: int,
        scale: Scale,
        tx_log: IO[str] | None = None,
        profile: Profile | None = None,
    ) -> None:
        self.seed = seed
        self.scale = scale
        self.profile = profile if profile is not None else get_profile("easy")
        self.rng = random.Random(seed)
        self.sigrng = random.Random(seed * 7919 + 17)
        self.nprng = np.random.Generator(np.random.PCG64(seed))
        self.book = AddressBook(seed)
        self.wallets: list[Wallet] = []
        self.tx_log = tx_log
        self.schedule: dict[int, list[Iterator[int]]] = {}
        self.payments: list[Payment] = []
        self.cashouts: list[Cashout] = []
        self.counts: dict[str, int] = {}
        self.block: list[tuple[Tx, int, int]] = []
        self.rows: list[str] = []
        self.fees = 0
        self.height = 0
        self.time = 0
        self.price = 10_000.0
        self.base_rate = 5.0
        self.n_txs = 0
        self._build(scale)

    # -----------------------------------------------------------------------------------------
    # population

    def _wallet(self, wid: str, kind: str, entity: str | None, stype: int, **kw: object) -> Wallet:
        w = Wallet(len(self.wallets), wid, kind, entity or wid, stype, **kw)  # type: ignore[arg-type]
        self.wallets.append(w)
        return w

    def _user_stype(self) -> int:
        return self.rng.choices((P2PKH, P2SH, P2WPKH, P2TR), (45, 30, 20, 5))[0]

    def _person(self, wid: str, kind: str, reuse_p: float) -> Wallet:
        rng = self.rng
        soft = rng.choices((CORE, ELECTRUM, MOBILE), (30, 25, 45))[0]
        reuse = rng.random() < reuse_p
        change = REUSE_CHANGE if reuse else (MATCH if soft == CORE else FRESH)
        home = rng.randrange(self.scale.n_exchanges)
        return self._wallet(
            wid, kind, None, self._user_stype(), reuse=reuse, soft=soft, change=change, home=home
        )

    def _build(self, s: Scale) -> None:
        rng = self.rng
        book = self.book
        self.exchanges: list[Exchange] = []
        for n in range(s.n_exchanges):
            name = EXCHANGE_NAMES[n]
            stype = (P2SH, P2SH, P2WPKH, P2PKH, P2SH, P2WPKH)[n % 6]
            w = self._wallet(f"exchange-{name}", "exchange", name, stype)
            hot = [book.new(stype, w.idx, ROLE["hot"]) for _ in range(2)]
            cold = book.new(P2WSH, w.idx, ROLE["cold"])
            self.exchanges.append(Exchange(n, w, cold, hot, rng))
        if self.profile.exchange_fresh_share > 0:
            k = round(self.profile.exchange_fresh_share * s.n_exchanges)
            for ex in rng.sample(self.exchanges, k):
                ex.no_reuse = True
                ex.fresh_change = True
        self.pools: list[Wallet] = []
        for n in range(s.n_pools):
            w = self._wallet(
                f"pool-{n:02d}", "pool", None, (P2PKH, P2SH, P2WPKH)[n % 3], reuse=True
            )
            w.addr = book.new(w.stype, w.idx, ROLE["coinbase"])
            self.pools.append(w)
        self.pool_weights = [1.0 / (n + 1.5) for n in range(s.n_pools)]
        self.miners = [self._person(f"miner-{i:05d}", "miner", 1.0) for i in range(s.n_miners)]
        for m in self.miners:
            m.change = REUSE_CHANGE
        self.users = [self._person(f"user-{i:06d}", "user", 0.15) for i in range(s.n_users)]
        self.merchants = [
            self._person(f"merchant-{i:05d}", "merchant", 0.4) for i in range(s.n_merchants)
        ]
        self.multisig = []
        for i in range(s.n_multisig):
            w = self._person(f"multisig-{i:05d}", "multisig", 0.3)
            w.stype = P2WSH
            w.change = REUSE_CHANGE if w.reuse else FRESH
            self.multisig.append(w)
        self.privacy = []
        for i in range(s.n_privacy):
            w = self._person(f"privacy-{i:05d}", "privacy", 0.0)
            w.stype, w.soft, w.change = P2WPKH, ELECTRUM, FRESH
            self.privacy.append(w)
        self.makers = []
        for i in range(s.n_makers):
            w = self._person(f"maker-{i:04d}", "maker", 0.0)
            w.stype, w.change = P2SH, FRESH
            self.makers.append(w)
        self.customers = [
            self._person(f"customer-{i:06d}", "customer", 0.2) for i in range(s.n_customers)
        ]
        # CoinJoin coordinators
        wp = self._wallet("coordinator-whirlpool", "coordinator", "whirlpool", P2WPKH, reuse=True)
        self.whirlpool = [
            WhirlpoolPool(d, f, book.new(P2WPKH, wp.idx, ROLE["coordinator_fee"]))
            for d, f in zip(WHIRLPOOL_DENOMS, WHIRLPOOL_FEES, strict=True)
        ]
        ww = self._wallet("coordinator-wasabi", "coordinator", "wasabi", P2WPKH, reuse=True)
        self.wasabi_fee_addr = book.new(P2WPKH, ww.idx, ROLE["coordinator_fee"])
        self.wasabi_queue: list[tuple[Wallet, list[Utxo], Ticket | None]] = []
        self.wasabi_last = 0
        # the service, its administrator, and its registered users' deposit addresses
        self.service = self._wallet("service", "service", "service", P2PKH)
        self.service_hot = [
            book.new(P2PKH, self.service.idx, ROLE["service_wallet"]) for _ in range(4)
        ]
        self.admin = self._wallet("service-admin", "admin", "service", P2WPKH, soft=ELECTRUM)
        self.admin_exchanges = [0, 1 % s.n_exchanges]
        self.service_deposits: list[Utxo] = []
        self.deposit_addrs: list[Addr] = []
        self.registrant_ids: list[str] = []
        for i in range(s.n_registered):
            self.registrant_ids.append(f"svc-user-{i:06d}")
            self.deposit_addrs.append(book.new(P2PKH, self.service.idx, ROLE["service_deposit"]))
        self.payer_of: dict[int, Wallet] = {}  # registrant index -> paying customer wallet
        first = COINBASE_MATURITY + 12
        last = s.tip_height - 6
        n_payers = int(s.n_registered * s.paying_fraction)
        self.plan_starts: dict[int, list[tuple[int, Wallet]]] = {}
        for r in rng.sample(range(s.n_registered), n_payers):
            payer = self._person(f"payer-{r:06d}", "customer", 0.2)
            self.payer_of[r] = payer
            times = 2 if rng.random() < 0.12 else 1
            for _ in range(times):
                h = rng.randrange(first, last)
                self.plan_starts.setdefault(h, []).append((r, payer))

    # -----------------------------------------------------------------------------------------
    # addresses and fees

    def recv(self, w: Wallet, role: str = "receive", stype: int | None = None) -> Addr:
        """An address of `w` to be paid at: its one reused address, or a fresh one."""
        if w.reuse and stype is None:
            if w.addr is None:
                w.addr = self.book.new(w.stype, w.idx, ROLE[role])
            return w.addr
        return self.book.new(stype if stype is not None else w.stype, w.idx, ROLE[role])

    def deposit_addr(self, ex: Exchange, account: Wallet) -> Addr:
        """A fresh deposit address of `ex`, credited to `account`."""
        return self.book.new(ex.dep_stype, ex.wallet.idx, ROLE["deposit"], account.idx)

    def hot_addr(self, ex: Exchange) -> Addr:
        """Where `ex` sweeps deposits: one of its reused hot addresses, or a fresh one."""
        if ex.no_reuse:
            return self.book.new(ex.wallet.stype, ex.wallet.idx, ROLE["hot"])
        return self.rng.choice(ex.hot)

    def cold_addr(self, ex: Exchange) -> Addr:
        """`ex`'s cold storage: its one reused address, or a fresh one."""
        if ex.no_reuse:
            return self.book.new(P2WSH, ex.wallet.idx, ROLE["cold"])
        return ex.cold

    def _change_stype(self, w: Wallet, pay_stypes: list[int]) -> int:
        if w.change == MATCH and w.stype == P2SH and any(s in (P2WPKH, P2WSH) for s in pay_stypes):
            return P2WPKH  # Core 0.16+: native change when paying a native segwit address
        return w.stype

    def rate(self, factor: float = 1.0) -> float:
        """A fee rate in sat/vB around the day's level."""
        return max(1.0, self.base_rate * factor * self.rng.lognormvariate(0.0, 0.45))

    @staticmethod
    def _base_rate(day: dt.date) -> float:
        # rough shape of 2018-2019 mempool levels: the January 2018 peak, a quiet 2018, the 2019 spike
        if day < dt.date(2018, 1, 20):
            return 120.0
        if day < dt.date(2018, 2, 20):
            return 30.0
        if day < dt.date(2019, 4, 1):
            return 4.0
        if day < dt.date(2019, 8, 1):
            return 25.0
        return 8.0

    def usd(self, dollars: float) -> int:
        """Satoshis worth `dollars` at the day's close."""
        return int(dollars / self.price * COIN)

    # -----------------------------------------------------------------------------------------
    # making transactions

    def _commit(
        self,
        spend: list[Utxo],
        ins: list[TxIn],
        outs: list[tuple[TxOut, Addr | None, list[Utxo] | None]],
        kind: str,
        wid: str,
        soft: int,
        change_vouts: list[int],
    ) -> tuple[bytes, list[Utxo | None]]:
        version, lt, _, _ = _SOFT[soft]
        tx = Tx(version, tuple(ins), tuple([o for o, _, _ in outs]), self.height - 1 if lt else 0)
        txid = tx.txid()
        book = self.book
        total_in = 0
        maxh = 0
        for u in spend:
            if u.spent:
                raise AssertionError("simulator tried to spend an output twice")
            u.spent = True
            total_in += u.value
            book.sent[u.addr.aid] += u.value
            if u.height > maxh:
                maxh = u.height
        total_out = 0
        made: list[Utxo | None] = []
        h = self.height
        wallets = self.wallets
        for vout, (o, addr, bucket) in enumerate(outs):
            total_out += o.value
            if addr is None:
                made.append(None)
                continue
            u = Utxo(txid, vout, o.value, addr, h)
            aid = addr.aid
            book.received[aid] += o.value
            book.n_outputs[aid] += 1
            (wallets[addr.owner].utxos if bucket is None else bucket).append(u)
            made.append(u)
        fee = total_in - total_out
        if fee < 0:
            raise AssertionError(f"{kind} transaction creates {-fee} sat")
        self.fees += fee
        self.block.append((tx, maxh, fee))
        self.n_txs += 1
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.tx_log is not None:
            cv = ";".join(map(str, change_vouts))
            self.rows.append(f"{txid[::-1].hex()},{h},{kind},{wid},{cv}\n")
        return txid, made

    def select(self, utxos: list[Utxo], need: int, rate: float, out_vb: int) -> list[Utxo] | None:
        """Coins from `utxos` (removed from it) covering `need` plus fees, or None.

        One coin that covers everything if there is one (the smallest such), else largest first.
        """
        if not utxos:
            return None
        base = 11 + out_vb + 43
        best: Utxo | None = None
        for u in utxos:
            if u.value >= need + rate * (base + INPUT_VSIZE_MAX[u.addr.stype]) and (
                best is None or u.value < best.value
            ):
                best = u
        if best is not None:
            utxos.remove(best)
            return [best]
        chosen = []
        acc = 0
        vb = base
        for u in sorted(utxos, key=_value, reverse=True):
            chosen.append(u)
            acc += u.value
            vb += INPUT_VSIZE_MAX[u.addr.stype]
            if acc >= need + rate * vb:
                break
        else:
            return None
        gone = {id(u) for u in chosen}
        utxos[:] = [u for u in utxos if id(u) not in gone]
        return chosen

    def pay(
        self,
        w: Wallet,
        outs: list[tuple[Addr, int, list[Utxo] | None]],
        kind: str,
        *,
        utxos: list[Utxo] | None = None,
        rate: float | None = None,
        sweep: bool = False,
        change_addr: Addr | None = None,
        change_bucket: list[Utxo] | None = None,
        op_return: bytes | None = None,
        order: str = "shuffle",
    ) -> tuple[bytes, list[Utxo | None], Utxo | None] | None:
        """`w` pays `outs` (address, value, bucket the new output joins) with change.

        Coins come from `utxos` if given (the caller has taken them out of any list), else are
        selected from `w.utxos`. With `sweep`, the single output gets everything less the fee.
        Returns (txid, the outputs made for `outs`, the change output) or None if funds lack.
        """
        rate = self.rate() if rate is None else rate
        version, _, seq, low_r = _SOFT[w.soft]
        pay_total = sum(v for _, v, _ in outs)
        extra = [TxOut(0, b"\x6a" + bytes((len(op_return),)) + op_return)] if op_return else []
        out_vb = sum(9 + len(a.spk) for a, _, _ in outs) + sum(
            9 + len(o.script_pubkey) for o in extra
        )
        if utxos is None:
            sel = self.select(w.utxos, pay_total, rate, out_vb)
            if sel is None:
                return None
        else:
            sel = utxos
        total = sum(u.value for u in sel)
        book, sigrng = self.book, self.sigrng
        ins = [book.txin(u, seq, sigrng, low_r) for u in sel]
        txouts = [TxOut(v, a.spk) for a, v, _ in outs]
        metas: list[tuple[Addr | None, list[Utxo] | None]] = [(a, b) for a, _, b in outs]
        change_value = 0
        change_meta: tuple[Addr | None, list[Utxo] | None] | None = None
        if sweep:
            vsize = (tx_weight(ins, txouts + extra) + 3) // 4
            fee = math.ceil(rate * vsize)
            value = total - fee
            if value < MIN_CHANGE:
                self._refund(w, sel, utxos)
                return None
            txouts[0] = TxOut(value, txouts[0].script_pubkey)
        else:
            if change_addr is not None:
                cspk = change_addr.spk
            elif w.reuse and w.change == REUSE_CHANGE:
                change_addr = self.recv(w)
                cspk = change_addr.spk
            else:
                cspk = SPK_TEMPLATE[self._change_stype(w, [a.stype for a, _, _ in outs])]
            vsize = (tx_weight(ins, [*txouts, *extra, TxOut(0, cspk)]) + 3) // 4
            fee = math.ceil(rate * vsize)
            change_value = total - pay_total - fee
            if change_value < MIN_CHANGE:
                nochange = math.ceil(rate * ((tx_weight(ins, txouts + extra) + 3) // 4))
                if total - pay_total < nochange:
                    self._refund(w, sel, utxos)
                    return None
                change_value = 0
            else:
                if change_addr is None:
                    change_addr = self.book.new(
                        self._change_stype(w, [a.stype for a, _, _ in outs]), w.idx, ROLE["change"]
                    )
                change_meta = (change_addr, change_bucket)
        # order the outputs
        rows: list[tuple[TxOut, Addr | None, list[Utxo] | None, int]] = [
            (o, m[0], m[1], i) for i, (o, m) in enumerate(zip(txouts, metas, strict=True))
        ]
        if change_meta is not None:
            rows.append((TxOut(change_value, change_meta[0].spk), *change_meta, -1))  # type: ignore[union-attr]
        if order == "shuffle":
            self.rng.shuffle(rows)
        for o in extra:
            if order == "op_return_first":
                rows.insert(0, (o, None, None, -2))
            else:
                rows.insert(self.rng.randrange(len(rows) + 1), (o, None, None, -2))
        change_vouts = [v for v, r in enumerate(rows) if r[3] == -1]
        txid, made = self._commit(
            sel, ins, [(o, a, b) for o, a, b, _ in rows], kind, w.wid, w.soft, change_vouts
        )
        by_index: list[Utxo | None] = [None] * len(outs)
        change_u = None
        for u, r in zip(made, rows, strict=True):
            if r[3] >= 0:
                by_index[r[3]] = u
            elif r[3] == -1:
                change_u = u
        return txid, by_index, change_u

    def _refund(self, w: Wallet, sel: list[Utxo], given: list[Utxo] | None) -> None:
        if given is None:
            w.utxos.extend(sel)

    # -----------------------------------------------------------------------------------------
    # the block loop

    def step(self, height: int, time: int) -> list[tuple[Tx, int, int]]:
        """All transactions of the block at `height` in block order, each with the highest height
        among the outputs it spends (stale blocks reuse the older ones) and its fee.
        """
        self.height = height
        self.time = time
        day = dt.datetime.fromtimestamp(time, dt.UTC).date()
        self.price = close_usd(day)
        self.base_rate = self._base_rate(day)
        self.block = []
        self.rows = []
        self.fees = 0
        if height <= COINBASE_MATURITY:
            return self.block
        self._pool_payouts()
        for r, payer in self.plan_starts.pop(height, []):
            self._start_plan(r, payer)
        due = self.schedule.pop(height, [])
        for plan in due:
            self._advance(plan)
        self._background()
        self._coinjoins()
        self._service_ops()
        for ex in self.exchanges:
            self._exchange_ops(ex)
        return self.block

    def _advance(self, plan: Iterator[int]) -> None:
        try:
            wait = next(plan)
        except StopIteration:
            return
        self.schedule.setdefault(self.height + max(1, wait), []).append(plan)

    def credit_coinbase(self, pool: Wallet, tx: Tx) -> None:
        """Book the main-chain coinbase paying `pool` (output 0)."""
        out = tx.outputs[0]
        u = Utxo(tx.txid(), 0, out.value, pool.addr, self.height)  # type: ignore[arg-type]
        pool.extra.append(u)
        self.book.received[u.addr.aid] += out.value
        self.book.n_outputs[u.addr.aid] += 1
        self.n_txs += 1
        self.counts["coinbase"] = self.counts.get("coinbase", 0) + 1
        if self.tx_log is not None:
            self.tx_log.write(f"{tx.txid_hex()},{self.height},coinbase,{pool.wid},\n")
            self.tx_log.writelines(self.rows)
        self.rows = []

    def pick_pool(self) -> Wallet:
        """The pool that mines the next block (by hash-rate share)."""
        return self.rng.choices(self.pools, self.pool_weights)[0]

    def _poisson(self, lam: float) -> int:
        return int(self.nprng.poisson(lam * self.scale.activity))

    # -----------------------------------------------------------------------------------------
    # exchanges

    def withdraw(
        self, ex: Exchange, addr: Addr, value: int, bucket: list[Utxo] | None = None
    ) -> Request:
        """Queue a withdrawal; the exchange pays it in its next batch."""
        req = Request(addr, value, bucket)
        ex.queue.append(req)
        return req

    def _exchange_ops(self, ex: Exchange) -> None:
        h = self.height
        w = ex.wallet
        if (h + ex.offset) % ex.sweep_every == 0:
            ready = [u for u in ex.deposits if u.height < h]
            if ready:
                ex.deposits[:] = [u for u in ex.deposits if u.height >= h]  # in place: buckets
                for k in range(0, len(ready), 200):
                    chunk = ready[k : k + 200]
                    to_cold = self.rng.random() < 0.1
                    dest = self.cold_addr(ex) if to_cold else self.hot_addr(ex)
                    bucket = w.extra if to_cold else None
                    self.pay(w, [(dest, 0, bucket)], "exchange_sweep", utxos=chunk, sweep=True,
                             rate=self.rate(0.5))  # fmt: skip
        if ex.queue and self.profile.forward_whole_share > 0:
            self._exchange_forwards(ex)
        if ex.queue and (h + ex.offset) % ex.batch_every == 0:
            self._exchange_batch(ex)
        hot = w.balance()
        high = int(12 * ex.ema_out) + 5 * COIN
        if hot > 2 * high and (h + ex.offset) % 6 == 0:
            self.pay(w, [(self.cold_addr(ex), hot - high, w.extra)], "exchange_cold_move",
                     rate=self.rate(0.5))  # fmt: skip

    def _refill(self, ex: Exchange, need: int) -> None:
        w = ex.wallet
        cold = w.extra
        if not cold:
            return
        amount = need + int(6 * ex.ema_out)
        sel = self.select(cold, amount, self.rate(), 40)
        if sel is None:  # everything there is
            sel, cold[:] = cold[:], []
            self.pay(w, [(self._refill_addr(ex), 0, None)], "exchange_cold_move", utxos=sel,
                     sweep=True)  # fmt: skip
            return
        self.pay(w, [(self._refill_addr(ex), amount, None)], "exchange_cold_move", utxos=sel,
                 change_addr=self.cold_addr(ex), change_bucket=cold)  # fmt: skip

    def _refill_addr(self, ex: Exchange) -> Addr:
        if ex.no_reuse:
            return self.book.new(ex.wallet.stype, ex.wallet.idx, ROLE["hot"])
        return ex.hot[0]

    def _exchange_forwards(self, ex: Exchange) -> None:
        """Profile knob: pay queued withdrawals straight from one customer deposit each (an
        OTC-style forward), the rest back to the exchange, instead of sweeping it first."""
        rng, h = self.rng, self.height
        w = ex.wallet
        for req in list(ex.queue[:50]):
            if req.forward_tried:
                continue
            req.forward_tried = True
            if rng.random() >= self.profile.forward_whole_share:
                continue
            fit = next(
                (u for u in ex.deposits[:300]
                 if u.height < h and req.value + 50_000 <= u.value <= 4 * req.value),
                None,
            )  # fmt: skip
            if fit is None:
                continue
            ex.deposits.remove(fit)  # in place: the list is a bucket
            res = self.pay(w, [(req.addr, req.value, req.bucket)], "exchange_forward",
                           utxos=[fit], change_addr=self._refill_addr(ex), rate=self.rate(0.8))  # fmt: skip
            if res is None:
                ex.deposits.append(fit)
                continue
            txid, made, _ = res
            req.utxo, req.txid = made[0], txid
            ex.queue.remove(req)

    def _exchange_batch(self, ex: Exchange) -> None:
        w = ex.wallet
        reqs = ex.queue[:250]
        total = sum(r.value for r in reqs)
        if w.balance() < total + COIN // 10:
            self._refill(ex, total + COIN // 10 - w.balance())
        bal = w.balance() - COIN // 20
        take: list[Request] = []
        acc = 0
        for r in reqs:
            if acc + r.value <= bal:
                take.append(r)
                acc += r.value
        if not take:
            return
        if ex.fresh_change:
            change = self.book.new(w.stype, w.idx, ROLE["hot"])
        else:
            change = ex.hot[self.height % len(ex.hot)]
        res = self.pay(
            w, [(r.addr, r.value, r.bucket) for r in take], "exchange_withdrawal",
            rate=self.rate(0.8), change_addr=change, order="change_last" if ex.change_last else "shuffle",
        )  # fmt: skip
        if res is None:
            return
        txid, made, _ = res
        for r, u in zip(take, made, strict=True):
            r.utxo, r.txid = u, txid
        done = {id(r) for r in take}
        ex.queue = [r for r in ex.queue if id(r) not in done]
        ex.ema_out = 0.9 * ex.ema_out + 0.1 * acc / ex.batch_every

    def buy_amount(self, ex: Exchange) -> int:
        """What a customer withdraws after buying: a USD-sized or a round BTC amount."""
        rng = self.rng
        if rng.random() < 0.6:
            v = self.usd(rng.choice((50, 100, 200, 250, 500, 1000, 2000, 5000)) * 0.985)
        else:
            v = rng.choice(BTC_ROUND[2:]) + rng.choice((0, 0, 0, 10_000_000))
        return v - 50_000 if ex.deducts_fee else v

    # -----------------------------------------------------------------------------------------
    # pools and miners

    def _pool_payouts(self) -> None:
        h = self.height
        for n, pool in enumerate(self.pools):
            if (h + n) % 4:
                continue
            ripe = [u for u in pool.extra if u.height <= h - COINBASE_MATURITY]
            if not ripe:
                continue
            ripe = ripe[:60]
            gone = {id(u) for u in ripe}
            pool.extra = [u for u in pool.extra if id(u) not in gone]
            total = sum(u.value for u in ripe) + pool.balance()
            ripe += pool.utxos
            pool.utxos = []
            budget = int(total * 0.97)
            outs: list[tuple[Addr, int, list[Utxo] | None]] = []
            k = self.rng.randint(8, 30)
            miners = self.rng.sample(self.miners, min(k, len(self.miners)))
            share = [self.rng.random() + 0.1 for _ in range(k + 4)]
            unit = budget / sum(share)
            for m, s in zip(miners, share, strict=False):
                outs.append((self.recv(m), int(unit * s), None))
            for s in share[len(miners) :]:  # miners paid straight into an exchange account
                acct = self.rng.choice(self.miners)
                ex = self.exchanges[acct.home]
                outs.append((self.deposit_addr(ex, acct), int(unit * s), ex.deposits))
            outs = [o for o in outs if o[1] > MIN_CHANGE]
            self.pay(pool, outs, "pool_payout", utxos=ripe, change_addr=pool.addr)

    # -----------------------------------------------------------------------------------------
    # background activity

    def _funded(self, group: list[Wallet], tries: int = 6) -> Wallet | None:
        for _ in range(tries):
            w = self.rng.choice(group)
            if w.utxos:
                return w
        return None

    def _payee(self) -> tuple[Addr, list[Utxo] | None]:
        rng = self.rng
        x = rng.random()
        if x < 0.55:
            return self.recv(rng.choice(self.merchants)), None
        if x < 0.85:
            return self.recv(rng.choice(self.users)), None
        if x < 0.92:
            return self.recv(rng.choice(self.customers)), None
        if x < 0.97:
            return self.recv(rng.choice(self.multisig)), None
        return self.recv(rng.choice(self.privacy)), None

    def _amount(self, w: Wallet) -> int:
        rng = self.rng
        bal = w.balance()
        x = rng.random()
        if x < 0.55:
            v = self.usd(rng.choice(USD_PRICES))
        elif x < 0.7:
            v = rng.choice(BTC_ROUND)
        else:
            v = int(bal * rng.uniform(0.05, 0.6))
        return min(v, int(bal * 0.9))

    def _background(self) -> None:
        rng = self.rng
        w: Wallet | None
        # people buying on exchanges: withdrawals to their own wallets
        for group, lam in (
            (self.users, 7.0), (self.customers, 5.0), (self.multisig, 0.4), (self.privacy, 1.2),
            (self.makers, 0.3), (self.merchants, 0.2),
        ):  # fmt: skip
            for _ in range(self._poisson(lam)):
                w = rng.choice(group)
                ex = self.exchanges[w.home]
                v = self.buy_amount(ex)
                if w.kind in ("privacy", "maker"):
                    v = v * 3 + COIN // 5
                self.withdraw(ex, self.recv(w), v)
        knobs = self.profile
        if knobs.cross_exchange_rate > 0 and len(self.exchanges) > 1:
            # moving coins from one exchange to an account at another
            for _ in range(self._poisson(knobs.cross_exchange_rate)):
                w = rng.choice(self.users if rng.random() < 0.7 else self.customers)
                src = self.exchanges[w.home]
                dst = rng.choice([e for e in self.exchanges if e is not src])
                self.withdraw(src, self.deposit_addr(dst, w), self.buy_amount(src), dst.deposits)
        # payments between people
        for group, lam in ((self.users, 20.0), (self.customers, 3.0), (self.multisig, 0.8)):
            for _ in range(self._poisson(lam)):
                w = self._funded(group)
                if w is None:
                    continue
                if knobs.send_all_share > 0 and rng.random() < knobs.send_all_share:
                    # send-all: a coin or two, whole, to another owner (one output, no change)
                    k = min(len(w.utxos), rng.choice((1, 1, 2, 3)))
                    coins, w.utxos = w.utxos[:k], w.utxos[k:]
                    addr, bucket = self._payee()
                    if self.pay(w, [(addr, 0, bucket)], "payment", utxos=coins, sweep=True) is None:
                        w.utxos.extend(coins)
                    continue
                n_out = 1 if rng.random() < 0.9 else rng.randint(2, 4)
                outs = []
                for _ in range(n_out):
                    addr, bucket = self._payee()
                    v = self._amount(w)
                    if v > MIN_CHANGE:
                        outs.append((addr, v, bucket))
                if outs:
                    op = None
                    if rng.random() < 0.03:  # timestamp-style OP_RETURN riding on a payment
                        op = rng.randbytes(32)
                    self.pay(w, outs, "payment", op_return=op)
        # selling: deposits to an exchange
        for group, lam in (
            (self.users, 5.0), (self.customers, 3.0), (self.miners, 1.0), (self.merchants, 1.0),
            (self.multisig, 0.2),
        ):  # fmt: skip
            for _ in range(self._poisson(lam)):
                w = self._funded(group)
                if w is None:
                    continue
                ex = self.exchanges[w.home]
                dep = self.deposit_addr(ex, w)
                if w.kind in ("miner", "merchant") or rng.random() < 0.3:
                    coins, w.utxos = w.utxos[:150], w.utxos[150:]
                    self.pay(w, [(dep, 0, ex.deposits)], "deposit", utxos=coins, sweep=True)
                else:
                    v = int(w.balance() * rng.uniform(0.2, 0.9))
                    if v > MIN_CHANGE:
                        self.pay(w, [(dep, v, ex.deposits)], "deposit")
        # OP_RETURN-only transactions: data carriers paying change back to themselves
        for _ in range(self._poisson(0.8)):
            w = self._funded(self.users)
            if w is None:
                continue
            data = rng.choice(
                (b"omni" + rng.randbytes(16), rng.randbytes(32), b"DOCPROOF" + rng.randbytes(32))
            )
            self.pay(w, [], "op_return", op_return=data)
        # merchants consolidating into their own wallet
        for _ in range(self._poisson(0.5)):
            w = self._funded(self.merchants)
            if w is not None and len(w.utxos) >= 5:
                coins, w.utxos = w.utxos[:100], w.utxos[100:]
                self.pay(
                    w,
                    [(self.recv(w, stype=w.stype), 0, None)],
                    "consolidation",
                    utxos=coins,
                    sweep=True,
                )

    # -----------------------------------------------------------------------------------------
    # CoinJoins

    def _coinjoins(self) -> None:
        rng = self.rng
        # privacy users entering Whirlpool (tx0) or Wasabi
        for _ in range(self._poisson(0.5)):
            w = self._funded(self.privacy)
            if w is None:
                continue
            bal = w.balance()
            pools = [p for p in self.whirlpool if bal > 2 * p.denom + p.fee]
            if pools:
                pool = rng.choice(pools[-2:])
                n = min(rng.randint(2, 6), (bal - pool.fee - 200_000) // self.premix_value(pool))
                if n >= 1:
                    coins, w.utxos = w.utxos, []
                    self.tx0(w, coins, pool, n, None)
        for _ in range(self._poisson(1.2)):
            w = self._funded(self.privacy)
            if w is None:
                continue
            coins = [u for u in w.utxos if u.addr.stype == P2WPKH][:3]
            if sum(u.value for u in coins) > 11_000_000:
                gone = {id(u) for u in coins}
                w.utxos = [u for u in w.utxos if id(u) not in gone]
                self.wasabi_queue.append((w, coins, None))
        # privacy users leaving: spending mixed coins
        for pool in self.whirlpool:
            for _ in range(self._poisson(0.4 if pool.denom < 50_000_000 else 0.1)):
                if len(pool.remix) > 8:
                    u = pool.remix.pop(rng.randrange(len(pool.remix)))
                    owner = self.wallets[u.addr.owner]
                    addr, bucket = self._payee()
                    v = min(u.value // 2, self.usd(rng.choice(USD_PRICES)))
                    if self.pay(owner, [(addr, v, bucket)], "payment", utxos=[u]) is None:
                        owner.utxos.append(u)
        for pool in self.whirlpool:
            for _ in range(3 + len(pool.premix) // 2):  # enough rounds to keep the queue short
                if not self.whirlpool_mix(pool):
                    break
        if len(self.wasabi_queue) >= self.scale.wasabi_min and (
            self.height - self.wasabi_last >= 2
            or len(self.wasabi_queue) >= 3 * self.scale.wasabi_min
        ):
            self.wasabi_round()
        for _ in range(self._poisson(0.15)):
            w = self._funded(self.privacy)
            if w is None:
                continue
            coins = w.utxos[:2]
            amount = int(sum(u.value for u in coins) * rng.uniform(0.3, 0.8))
            if amount > 1_000_000:
                w.utxos = w.utxos[2:]
                dest = self.recv(w)
                if self.joinmarket(w, coins, amount, dest, None) is None:
                    w.utxos.extend(coins)

    def premix_value(self, pool: WhirlpoolPool) -> int:
        """A premix output: the denomination plus this entrant's share of the mix's miner fee."""
        return pool.denom + max(2_000, int(self.base_rate * 260))

    def tx0(
        self, w: Wallet, coins: list[Utxo], pool: WhirlpoolPool, n: int, ticket: Ticket | None,
        change_bucket: list[Utxo] | None = None,
    ) -> bytes | None:  # fmt: skip
        """Whirlpool's tx0: the pool fee, an OP_RETURN, `n` premix outputs and toxic change."""
        rate = self.rate()
        premix_value = self.premix_value(pool)
        hold: list[Utxo] = []
        outs: list[tuple[Addr, int, list[Utxo] | None]] = [(pool.fee_addr, pool.fee, None)]
        premix = [self.book.new(P2WPKH, w.idx, ROLE["premix"]) for _ in range(n)]
        outs += [(a, premix_value, hold) for a in premix]
        change = self.book.new(P2WPKH, w.idx, ROLE["mix_change"])
        res = self.pay(w, outs, "whirlpool_tx0", utxos=coins, rate=rate, change_addr=change,
                       change_bucket=change_bucket, op_return=self.rng.randbytes(46),
                       order="op_return_first")  # fmt: skip
        if res is None:
            w.utxos.extend(coins)
            return None
        txid, made, _ = res
        for u in hold:
            pool.premix.append((u, ticket))
        return txid

    def whirlpool_mix(self, pool: WhirlpoolPool) -> bool:
        """One mix: 5 inputs (at least one premix paying the fee), 5 outputs of the denomination."""
        rng = self.rng
        if not pool.premix or len(pool.premix) + len(pool.remix) < 5:
            return False
        k = min(len(pool.premix), 5 - min(len(pool.remix), rng.randint(2, 4)))
        entrants = pool.premix[:k]
        del pool.premix[:k]
        remixers = [pool.remix.pop(rng.randrange(len(pool.remix))) for _ in range(5 - k)]
        spend = [u for u, _ in entrants] + remixers
        tickets = [t for _, t in entrants] + [None] * len(remixers)
        order = list(range(5))
        rng.shuffle(order)
        spend = [spend[i] for i in order]
        tickets = [tickets[i] for i in order]
        _, _, seq, low_r = _SOFT[MIXER]
        ins = [self.book.txin(u, seq, self.sigrng, False) for u in spend]
        outs: list[tuple[TxOut, Addr | None, list[Utxo] | None]] = []
        addrs = [self.book.new(P2WPKH, u.addr.owner, ROLE["postmix"]) for u in spend]
        rng.shuffle(addrs)
        for a in addrs:
            outs.append((TxOut(pool.denom, a.spk), a, pool.remix))
        txid, made = self._commit(
            spend, ins, outs, "whirlpool_mix", "coordinator-whirlpool", MIXER, []
        )
        owner_ticket = {
            u.addr.owner: t for u, t in zip(spend, tickets, strict=True) if t is not None
        }
        for u in made:
            assert u is not None
            t = owner_ticket.get(u.addr.owner)
            if t is not None:
                pool.remix.remove(u)
                t.mixed.append(u)
                t.txid = txid
                del owner_ticket[u.addr.owner]
        return True

    def wasabi_round(self) -> None:
        """A Wasabi 1.x round: many inputs, equal ~0.1 BTC outputs, change, the coordinator fee."""
        rng = self.rng
        queue = self.wasabi_queue[: 4 * self.scale.wasabi_min]
        self.wasabi_queue = self.wasabi_queue[len(queue) :]
        self.wasabi_last = self.height
        denom = 10_000_000 + rng.randrange(-40_000, 90_000)
        rate = self.rate()
        anon = len(queue)
        coord_fee_per = int(denom * 0.00003 * anon)
        parts: list[tuple[Wallet, list[Utxo], Ticket | None, int, int]] = []
        levels_of: list[int] = []
        for w, coins, t in queue:
            total = sum(u.value for u in coins)
            miner = math.ceil(rate * (68 * len(coins) + 2 * 31 + 2))
            levels = 1
            spare = total - denom - coord_fee_per - miner
            if spare > 2 * denom + coord_fee_per + 31 * rate and rng.random() < 0.3:
                levels = 2  # a second mixing level (2 x denomination) for big inputs
            parts.append((w, coins, t, total, miner))
            levels_of.append(levels)
        if levels_of.count(2) < 2:  # a level needs at least two participants
            levels_of = [1] * len(parts)
        spend: list[Utxo] = []
        outs: list[tuple[TxOut, Addr | None, list[Utxo] | None]] = []
        kinds: list[str] = []
        owners: list[tuple[Wallet, Ticket | None]] = []
        coord_total = 0
        joined: list[tuple[Wallet, list[Utxo]]] = []
        for (w, coins, t, total, miner), levels in zip(parts, levels_of, strict=True):
            mixed = [denom] if levels == 1 else [denom, 2 * denom]
            fee = coord_fee_per * levels
            change = total - sum(mixed) - fee - miner
            if change < 0:
                w.utxos.extend(coins)
                continue
            joined.append((w, coins))
            spend += coins
            coord_total += fee
            for v in mixed:
                a = self.book.new(P2WPKH, w.idx, ROLE["postmix"])
                outs.append((TxOut(v, a.spk), a, []))
                kinds.append("mixed")
                owners.append((w, t))
            if change >= MIN_CHANGE:
                a = self.book.new(P2WPKH, w.idx, ROLE["mix_change"])
                outs.append((TxOut(change, a.spk), a, []))
                kinds.append("change")
                owners.append((w, t))
        if sum(1 for k in kinds if k == "mixed") < 2:
            for w, coins in joined:
                w.utxos.extend(coins)
            return
        outs.append((TxOut(coord_total, self.wasabi_fee_addr.spk), self.wasabi_fee_addr, None))
        kinds.append("fee")
        owners.append((self.wallets[self.wasabi_fee_addr.owner], None))
        rng.shuffle(spend)
        order = list(range(len(outs)))
        rng.shuffle(order)
        outs = [outs[i] for i in order]
        kinds = [kinds[i] for i in order]
        owners = [owners[i] for i in order]
        _, _, seq, _ = _SOFT[MIXER]
        ins = [self.book.txin(u, seq, self.sigrng, False) for u in spend]
        change_vouts = [v for v, k in enumerate(kinds) if k == "change"]
        txid, made = self._commit(
            spend, ins, outs, "wasabi_mix", "coordinator-wasabi", MIXER, change_vouts
        )
        for u, k, (w, t) in zip(made, kinds, owners, strict=True):
            if u is None or k == "fee":
                continue
            if t is None:
                w.utxos.append(u)  # privacy users keep (and later spend or re-register) their coins
            elif k == "mixed":
                t.mixed.append(u)
                t.txid = txid
            else:
                t.change = u
                t.txid = txid

    def joinmarket(
        self, taker: Wallet, coins: list[Utxo], amount: int, dest: Addr, bucket: list[Utxo] | None
    ) -> tuple[bytes, Utxo] | None:
        """A JoinMarket round: the taker and 2-6 makers each get `amount`; makers and taker change."""
        rng = self.rng
        n = rng.randint(2, 6)
        makers = []
        for m in rng.sample(self.makers, min(len(self.makers), 3 * n)):
            coin = next((u for u in m.utxos if u.value > amount + 20_000), None)
            if coin is not None:
                makers.append((m, coin))
            if len(makers) == n:
                break
        if len(makers) < 2:
            return None
        rate = self.rate()
        spend = list(coins)
        outs: list[tuple[TxOut, Addr | None, list[Utxo] | None]] = [
            (TxOut(amount, dest.spk), dest, bucket)
        ]
        cjfees = 0
        change_rows = []
        for m, coin in makers:
            m.utxos.remove(coin)
            spend.append(coin)
            cjfee = rng.choice((250, 500, 1000)) + int(
                amount * rng.choice((0.00002, 0.0001, 0.0002))
            )
            cjfees += cjfee
            a = self.book.new(m.stype, m.idx, ROLE["postmix"])
            outs.append((TxOut(amount, a.spk), a, None))
            c = self.book.new(m.stype, m.idx, ROLE["mix_change"])
            change_rows.append(len(outs))
            outs.append((TxOut(coin.value - amount + cjfee, c.spk), c, None))
        _, _, seq, _ = _SOFT[taker.soft]
        ins = [self.book.txin(u, seq, self.sigrng, False) for u in spend]
        tchange = self.book.new(self._change_stype(taker, []), taker.idx, ROLE["mix_change"])
        probe = [o for o, _, _ in outs] + [TxOut(0, tchange.spk)]
        fee = math.ceil(rate * ((tx_weight(ins, probe) + 3) // 4))
        left = sum(u.value for u in coins) - amount - cjfees - fee
        if left < 0:
            for m, coin in makers:
                m.utxos.append(coin)
            return None
        if left >= MIN_CHANGE:
            change_rows.append(len(outs))
            outs.append((TxOut(left, tchange.spk), tchange, None))
        order = list(range(len(outs)))
        rng.shuffle(order)
        pos = {old: new for new, old in enumerate(order)}
        outs = [outs[i] for i in order]
        txid, made = self._commit(
            spend,
            ins,
            outs,
            "joinmarket_mix",
            taker.wid,
            taker.soft,
            sorted(pos[i] for i in change_rows),
        )
        u = made[pos[0]]
        assert u is not None
        return txid, u

    # -----------------------------------------------------------------------------------------
    # the service

    def _service_ops(self) -> None:
        h = self.height
        svc = self.service
        if h % 3 == 0:
            ready = [u for u in self.service_deposits if u.height < h]
            if ready:
                self.service_deposits[:] = [u for u in self.service_deposits if u.height >= h]
                for k in range(0, len(ready), 150):
                    dest = self.rng.choice(self.service_hot)
                    self.pay(
                        svc,
                        [(dest, 0, None)],
                        "service_sweep",
                        utxos=ready[k : k + 150],
                        sweep=True,
                    )
        if h % 7 == 3:
            bal = svc.balance()
            threshold = max(self.usd(2000), COIN // 20)
            if bal > threshold:
                self._cashout(bal)

    def _cashout(self, bal: int) -> None:
        rng = self.rng
        ex = self.exchanges[rng.choice(self.admin_exchanges)]
        amount = int(bal * rng.uniform(0.4, 0.8)) // 1_000_000 * 1_000_000
        if amount < 1_000_000:
            return
        change = self.book.new(P2PKH, self.service.idx, ROLE["service_wallet"])
        if rng.random() < 0.7:
            dep = self.deposit_addr(ex, self.admin)
            res = self.pay(
                self.service, [(dep, amount, ex.deposits)], "service_cashout", change_addr=change
            )
            if res is not None:
                txid, made, _ = res
                u = made[0]
                assert u is not None
                self.cashouts.append(
                    Cashout(
                        txid[::-1].hex(),
                        u.vout,
                        dep.aid,
                        ex.name,
                        amount,
                        self.height,
                        self.time,
                        1,
                    )
                )
            return
        # through the administrator's own wallet first
        hop: list[Utxo] = []
        res = self.pay(
            self.service,
            [(self.recv(self.admin), amount, hop)],
            "service_cashout",
            change_addr=change,
        )
        if res is not None:
            self._later(self._admin_hop(ex, hop), rng.randint(1, 3))

    def _admin_hop(self, ex: Exchange, hop: list[Utxo]) -> Iterator[int]:
        yield 0
        dep = self.deposit_addr(ex, self.admin)
        res = self.pay(self.admin, [(dep, 0, ex.deposits)], "deposit", utxos=hop, sweep=True)
        if res is not None:
            txid, made, _ = res
            u = made[0]
            assert u is not None
            self.cashouts.append(
                Cashout(
                    txid[::-1].hex(), u.vout, dep.aid, ex.name, u.value, self.height, self.time, 2
                )
            )

    def _later(self, plan: Iterator[int], wait: int) -> None:
        next(plan)  # run up to the first yield
        self.schedule.setdefault(self.height + max(1, wait), []).append(plan)

    def _start_plan(self, r: int, payer: Wallet) -> None:
        rng = self.rng
        if rng.random() < 0.6:
            price = self.usd(rng.choice((10, 20, 25, 30, 50, 100, 150, 200)))
        else:
            price = rng.choice((100_000, 500_000, 1_000_000, 2_000_000, 3_000_000))
        kind = rng.choices(("direct", "own_wallet", "peel_chain", "coinjoin"), (20, 35, 15, 30))[0]
        if kind == "coinjoin":
            cj = rng.choices(("whirlpool", "wasabi", "joinmarket"), (40, 40, 20))[0]
            plan = getattr(self, f"_plan_{cj}")(r, payer, price)
        else:
            plan = getattr(self, f"_plan_{kind}")(r, payer, price)
        self._advance(plan)

    def _record(
        self, r: int, payer: Wallet, res: tuple[bytes, list[Utxo | None], Utxo | None] | None,
        funding: tuple[Exchange, bytes], path: list[bytes], kind: str, cj: str, broke: bool,
    ) -> bool:  # fmt: skip
        if res is None:
            return False
        txid, made, _ = res
        u = made[0]
        assert u is not None
        self._record_utxo(r, payer, txid, u, funding, path, kind, cj, broke)
        return True

    def _record_utxo(
        self, r: int, payer: Wallet, txid: bytes, u: Utxo, funding: tuple[Exchange, bytes],
        path: list[bytes], kind: str, cj: str, broke: bool,
    ) -> None:  # fmt: skip
        full = [*path, txid] if not path or path[-1] != txid else path
        self.payments.append(
            Payment(
                txid[::-1].hex(), u.vout, self.deposit_addrs[r].aid, payer.wid, u.value, self.height,
                funding[0].name, funding[1][::-1].hex(), len(full), kind, cj, broke,
                [t[::-1].hex() for t in full],
            )
        )  # fmt: skip

    def _wait_for(self, req: Request) -> Iterator[int]:
        while req.utxo is None:
            yield 1

    def _plan_direct(self, r: int, payer: Wallet, price: int) -> Iterator[int]:
        ex = self.exchanges[payer.home]
        req = self.withdraw(ex, self.deposit_addrs[r], price, self.service_deposits)
        yield from self._wait_for(req)
        assert req.utxo is not None and req.txid is not None
        self._record_utxo(r, payer, req.txid, req.utxo, (ex, req.txid), [], "direct", "", False)

    def _plan_own_wallet(self, r: int, payer: Wallet, price: int) -> Iterator[int]:
        rng = self.rng
        ex = self.exchanges[payer.home]
        trail: list[Utxo] = []
        req = self.withdraw(
            ex, self.recv(payer), int(price * rng.uniform(1.3, 4.0)) + 200_000, trail
        )
        yield from self._wait_for(req)
        assert req.utxo is not None and req.txid is not None
        path = [req.txid]
        u = req.utxo
        trail.remove(u)
        for _ in range(rng.choices((0, 1, 2), (55, 35, 10))[0]):
            yield rng.randint(0, 3)
            nxt: list[Utxo] = []
            stype = rng.choice((payer.stype, P2WPKH, P2SH))
            send = int((u.value - price) * rng.uniform(0.3, 0.9)) + price
            res = self.pay(
                payer, [(self.recv(payer, stype=stype), send, nxt)], "self_transfer", utxos=[u]
            )
            if res is None:
                payer.utxos.append(u)
                return
            path.append(res[0])
            u = nxt[0]
            nxt.clear()
        yield rng.randint(0, 4)
        share = self.profile.send_all_service_share
        send_all = share > 0 and rng.random() < share
        res = self.pay(
            payer,
            [(self.deposit_addrs[r], 0 if send_all else price, self.service_deposits)],
            "service_payment",
            utxos=[u],
            sweep=send_all,
        )
        if res is None:
            payer.utxos.append(u)
            return
        self._record(r, payer, res, (ex, req.txid), path, "own_wallet", "", False)

    def _plan_peel_chain(self, r: int, payer: Wallet, price: int) -> Iterator[int]:
        rng = self.rng
        ex = self.exchanges[payer.home]
        trail: list[Utxo] = []
        big = max(price * rng.randint(6, 30), rng.choice((20_000_000, 50_000_000, 100_000_000)))
        req = self.withdraw(ex, self.recv(payer), big, trail)
        yield from self._wait_for(req)
        assert req.utxo is not None and req.txid is not None
        path = [req.txid]
        u = req.utxo
        trail.clear()
        length = rng.randint(3, 9)
        at = rng.randint(1, length)
        bucket: list[Utxo] | None
        for i in range(1, length + 1):
            yield rng.choice((0, 0, 1, 1, 2))
            if i == at:
                dest, v, bucket, kind = (
                    self.deposit_addrs[r],
                    price,
                    self.service_deposits,
                    "service_payment",
                )
            else:
                share = self.profile.peel_to_exchange_share
                if share > 0 and rng.random() < share:
                    other = rng.choice(self.exchanges)
                    dest, bucket = self.deposit_addr(other, payer), other.deposits
                else:
                    dest, bucket = self._payee()
                v, kind = min(self.usd(rng.choice(USD_PRICES)), u.value // 3), "peel"
            change = self.book.new(payer.stype, payer.idx, ROLE["change"])
            res = self.pay(
                payer, [(dest, v, bucket)], kind, utxos=[u], change_addr=change, change_bucket=trail
            )
            if res is None or not trail:
                if res is None:
                    payer.utxos.append(u)
                if i == at and res is not None:
                    self._record(r, payer, res, (ex, req.txid), path, "peel_chain", "", False)
                return
            if i == at:
                self._record(r, payer, res, (ex, req.txid), path, "peel_chain", "", False)
            elif i < at:
                path.append(res[0])
            u = trail.pop()
        payer.utxos.append(u)

    def _plan_whirlpool(self, r: int, payer: Wallet, price: int) -> Iterator[int]:
        rng = self.rng
        ex = self.exchanges[payer.home]
        pool = next((p for p in self.whirlpool if p.denom >= price * 1.05), self.whirlpool[-1])
        n = rng.randint(1, 3)
        need = n * self.premix_value(pool) + pool.fee + int(1200 * self.base_rate) + 20_000
        trail: list[Utxo] = []
        req = self.withdraw(
            ex, self.recv(payer, stype=P2WPKH), int(need * rng.uniform(1.05, 1.6)), trail
        )
        yield from self._wait_for(req)
        assert req.utxo is not None and req.txid is not None
        trail.clear()
        yield rng.randint(0, 3)
        share = self.profile.tx0_change_share
        if share > 0 and rng.random() < share:
            # the Tx0's change pays: a trail from the exchange, not a mix
            change: list[Utxo] = []
            t0 = self.tx0(payer, [req.utxo], pool, n, None, change_bucket=change)
            if t0 is None or not change:
                return
            yield rng.randint(0, 5)
            coin = change[0]
            if coin.value < price + 5_000:
                price = coin.value // 2
            res = self.pay(payer, [(self.deposit_addrs[r], price, self.service_deposits)],
                           "service_payment", utxos=[coin],
                           change_addr=self.book.new(P2WPKH, payer.idx, ROLE["change"]))  # fmt: skip
            if res is None:
                payer.utxos.append(coin)
                return
            self._record(r, payer, res, (ex, req.txid), [req.txid, t0], "tx0_change", "", False)
            return
        ticket = Ticket()
        t0 = self.tx0(payer, [req.utxo], pool, n, ticket)
        if t0 is None:
            return
        for _ in range(60):
            if ticket.mixed:
                break
            yield 1
        if not ticket.mixed or ticket.txid is None:
            return
        yield rng.randint(0, 5)
        coin = ticket.mixed[0]
        if coin.value < price + 5_000:
            price = coin.value // 2
        res = self.pay(payer, [(self.deposit_addrs[r], price, self.service_deposits)], "service_payment",
                       utxos=[coin], change_addr=self.book.new(P2WPKH, payer.idx, ROLE["change"]))  # fmt: skip
        self._record(
            r,
            payer,
            res,
            (ex, req.txid),
            [req.txid, t0, coin.txid],
            "coinjoin",
            "whirlpool",
            True,
        )

    def _plan_wasabi(self, r: int, payer: Wallet, price: int) -> Iterator[int]:
        rng = self.rng
        ex = self.exchanges[payer.home]
        trail: list[Utxo] = []
        req = self.withdraw(
            ex, self.recv(payer, stype=P2WPKH), int(rng.uniform(0.12, 0.35) * COIN), trail
        )
        yield from self._wait_for(req)
        assert req.utxo is not None and req.txid is not None
        trail.clear()
        yield rng.randint(0, 2)
        ticket = Ticket()
        self.wasabi_queue.append((payer, [req.utxo], ticket))
        for _ in range(80):
            if ticket.txid is not None:
                break
            yield 1
        if ticket.txid is None or not ticket.mixed:
            return
        yield rng.randint(0, 5)
        from_change = (
            ticket.change is not None
            and ticket.change.value > price + 20_000
            and rng.random() < 0.3
        )
        coin = ticket.change if from_change else ticket.mixed[0]
        assert coin is not None
        for u in ticket.mixed + ([ticket.change] if ticket.change else []):
            if u is not coin:
                payer.utxos.append(u)
        if coin.value < price + 5_000:
            price = coin.value // 2
        res = self.pay(payer, [(self.deposit_addrs[r], price, self.service_deposits)], "service_payment",
                       utxos=[coin], change_addr=self.book.new(P2WPKH, payer.idx, ROLE["change"]))  # fmt: skip
        self._record(
            r,
            payer,
            res,
            (ex, req.txid),
            [req.txid, coin.txid],
            "coinjoin",
            "wasabi",
            not from_change,
        )

    def _plan_joinmarket(self, r: int, payer: Wallet, price: int) -> Iterator[int]:
        rng = self.rng
        ex = self.exchanges[payer.home]
        trail: list[Utxo] = []
        req = self.withdraw(
            ex, self.recv(payer), int(price * rng.uniform(1.5, 4.0)) + 300_000, trail
        )
        yield from self._wait_for(req)
        assert req.utxo is not None and req.txid is not None
        trail.clear()
        yield rng.randint(0, 3)
        got = self.joinmarket(
            payer, [req.utxo], price, self.deposit_addrs[r], self.service_deposits
        )
        if got is None:  # no makers: pay plainly instead, and say so
            res = self.pay(payer, [(self.deposit_addrs[r], price, self.service_deposits)], "service_payment",
                           utxos=[req.utxo])  # fmt: skip
            self._record(r, payer, res, (ex, req.txid), [req.txid], "own_wallet", "", False)
            return
        txid, u = got
        self._record_utxo(
            r, payer, txid, u, (ex, req.txid), [req.txid], "coinjoin", "joinmarket", True
        )


def _value(u: Utxo) -> int:
    return u.value
