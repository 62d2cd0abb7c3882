"""The simulated world's state: its population, addresses, fee rates and the schedule of plans."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import IO

import numpy as np

from chainsleuth.parse.serialize import Tx
from chainsleuth.simulate.economy.model import (
    COIN,
    COINBASE_MATURITY,
    CORE,
    ELECTRUM,
    EXCHANGE_NAMES,
    FRESH,
    MATCH,
    MOBILE,
    P2PKH,
    P2SH,
    P2TR,
    P2WPKH,
    P2WSH,
    REUSE_CHANGE,
    SOFTWARE,
    WHIRLPOOL_DENOMS,
    WHIRLPOOL_FEES,
    Cashout,
    Exchange,
    Habits,
    Payment,
    Scale,
    Software,
    Ticket,
    Wallet,
    WhirlpoolPool,
)
from chainsleuth.simulate.keys import ROLE, Addr, AddressBook, Utxo
from chainsleuth.simulate.profiles import Profile
from chainsleuth.simulate.profiles import profile as get_profile

__all__ = ["DEPOSITING_KINDS", "WorldBase"]

#: the kinds of wallet that deposit at an exchange account of their own (the people); an
#: account holder of several exchanges is drawn among them
DEPOSITING_KINDS = frozenset({"user", "customer", "miner", "merchant", "multisig"})


class WorldBase:
    """The world's state and population, addresses and fee rates, and the schedule of plans.

    Each actor adds its methods in a subclass of the one before it (see the package docstring);
    `chainsleuth.simulate.economy.world.World` is the last.
    """

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
        #: every signer's (version, locktime at the tip, nSequence, low-R), by `Wallet.soft`:
        #: `SOFTWARE`, then one row per exchange whose software the profile draws
        self.software: list[tuple[int, bool, int, bool]] = list(SOFTWARE)
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
        # each exchange's habits (its software), drawn from a stream of their own so that the
        # world's other draws stay where they were (docs/design/simulator.md)
        habit_rng = random.Random(self.seed * 6_700_417 + 11)
        for n in range(s.n_exchanges):
            name = EXCHANGE_NAMES[n]
            habits = (
                Habits.draw(habit_rng) if self.profile.exchange_habits == "drawn"
                else Habits.by_index(n)
            )  # fmt: skip
            stype = habits.stype
            w = self._wallet(f"exchange-{name}", "exchange", name, stype)
            hot = [book.new(stype, w.idx, ROLE["hot"]) for _ in range(2)]
            cold = book.new(P2WSH, w.idx, ROLE["cold"])
            self.exchanges.append(Exchange(n, w, cold, hot, rng, habits))
        if self.profile.exchange_software == "drawn":
            # a stream of its own, after the habits: the world's other draws stay where they were
            software_rng = random.Random(self.seed * 6_700_417 + 29)
            for ex in self.exchanges:
                ex.software = Software.draw(software_rng)
                self.software.append(ex.software.spec())
                ex.wallet.soft = len(self.software) - 1
        #: the height every drawn exchange software switches at (-1: never)
        self.switch_height = -1
        if self.profile.exchange_software_switch > 0:
            self.switch_height = max(
                COINBASE_MATURITY + 1, round(self.profile.exchange_software_switch * s.tip_height)
            )
        if self.profile.exchange_deposit_cospend_share > 0:
            # a stream of its own: the world's other draws stay where they were
            cospend_rng = random.Random(self.seed * 6_700_417 + 53)
            k = round(self.profile.exchange_deposit_cospend_share * s.n_exchanges)
            for ex in cospend_rng.sample(self.exchanges, k):
                ex.cospends_deposits = True
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
        self._draw_extra_exchanges(s)

    def _draw_extra_exchanges(self, s: Scale) -> None:
        """Profile knob `multi_exchange_customer_share`: that share of the people with an
        exchange account also hold accounts at one or two other exchanges and split their
        deposits among all of them (real users commonly hold several). Drawn from streams of
        their own, and not at all at 0, so every world without the knob stays byte-identical."""
        #: wallet index -> the exchanges (indices, home first) its deposits are split among
        self.deposit_homes: dict[int, tuple[int, ...]] = {}
        share = self.profile.multi_exchange_customer_share
        self.deposit_rng = random.Random(self.seed * 6_700_417 + 67)
        if share <= 0 or s.n_exchanges < 2:
            return
        multi_rng = random.Random(self.seed * 6_700_417 + 61)
        for w in self.wallets:
            if w.home < 0 or w.kind not in DEPOSITING_KINDS:
                continue
            if multi_rng.random() >= share:
                continue
            others = [n for n in range(s.n_exchanges) if n != w.home]
            k = min(len(others), multi_rng.choice((1, 2)))
            self.deposit_homes[w.idx] = (w.home, *multi_rng.sample(others, k))

    def deposit_exchange(self, w: Wallet) -> Exchange:
        """The exchange `w` deposits at this time: its home exchange, or, for a holder of
        several accounts (`multi_exchange_customer_share`), one of them drawn evenly."""
        homes = self.deposit_homes.get(w.idx)
        if homes is None:
            return self.exchanges[w.home]
        return self.exchanges[self.deposit_rng.choice(homes)]

    # -----------------------------------------------------------------------------------------
    # addresses and fees

    def _switch_software(self) -> None:
        """Every exchange with drawn software switches to other software (profile knob
        `exchange_software_switch`), from a stream of its own: the world's other draws stay
        where they were up to here."""
        rng = random.Random(self.seed * 6_700_417 + 43)
        for ex in self.exchanges:
            if ex.software is None:
                continue
            ex.software_before, ex.switched_at = ex.software, self.height
            ex.software = ex.software.switched(rng)
            self.software.append(ex.software.spec())
            ex.wallet.soft = len(self.software) - 1

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

    def exchange_rate(self, ex: Exchange, factor: float = 1.0) -> float:
        """`rate(factor)` as exchange `ex` pays it: rounded to whole sat/vB where its software
        does so (the same draw either way, so a world without drawn software is unchanged)."""
        rate = self.rate(factor)
        if ex.software is not None and ex.software.whole_fee_rate:
            return float(max(1, round(rate)))
        return rate

    @staticmethod
    def exchange_order(ex: Exchange, order: str = "shuffle") -> str:
        """The output order of exchange `ex`'s txs: BIP69 where its software sorts, else
        `order` (what its change habit says)."""
        return "bip69" if ex.software is not None and ex.software.bip69 else order

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
    # randomness and the schedule of plans

    def _poisson(self, lam: float) -> int:
        return int(self.nprng.poisson(lam * self.scale.activity))

    def _advance(self, plan: Iterator[int]) -> None:
        try:
            wait = next(plan)
        except StopIteration:
            return
        self.schedule.setdefault(self.height + max(1, wait), []).append(plan)

    def _later(self, plan: Iterator[int], wait: int) -> None:
        next(plan)  # run up to the first yield
        self.schedule.setdefault(self.height + max(1, wait), []).append(plan)
