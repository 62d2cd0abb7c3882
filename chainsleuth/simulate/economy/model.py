"""The simulated economy's vocabulary: constants, scales, and the actors' state.

Plain data only (wallets, exchanges, withdrawal requests, CoinJoin tickets and pools, the
truth records of payments and cash-outs); what the actors do is in the modules beside this one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from chainsleuth.core.script_types import ScriptType
from chainsleuth.simulate.keys import Addr, Utxo

__all__ = [
    "COIN",
    "COINBASE_MATURITY",
    "SCALES",
    "WALLET_KINDS",
    "WHIRLPOOL_DENOMS",
    "Cashout",
    "Exchange",
    "Habits",
    "Payment",
    "Scale",
    "Wallet",
    "subsidy",
]


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
SOFTWARE = (
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


#: the value sets of an exchange's habits (an exchange's software); `by_index` walks them with
#: the exchange's index, `draw_habits` draws each on its own (docs/simulator.md, "Exchange habits")
WALLET_STYPES = (P2SH, P2SH, P2WPKH, P2PKH, P2SH, P2WPKH)
DEPOSIT_STYPES = (P2PKH, P2SH, P2WPKH, P2SH, P2PKH, P2WPKH)
BATCH_EVERY = (1, 2)
SWEEP_EVERY = (4, 5, 6, 7)


@dataclass(frozen=True)
class Habits:
    """What an exchange's wallet software does, as seen on chain."""

    stype: int  # the hot wallet's script type (hot addresses, change)
    dep_stype: int  # customers' deposit addresses
    fresh_change: bool  # a fresh change address per batch (else a reused hot address)
    change_last: bool  # change is the batch's last output (else shuffled in)
    deducts_fee: bool  # withdrawal fee taken from the amount sent
    batch_every: int  # blocks between batched withdrawals
    sweep_every: int  # blocks between deposit sweeps

    @classmethod
    def by_index(cls, n: int) -> Habits:
        """The habits of exchange `n` in the worlds before 2026-12-07: a function of `n` alone
        (exchanges 0 and 4 twins on every habit)."""
        return cls(WALLET_STYPES[n % 6], DEPOSIT_STYPES[n % 6], n % 3 == 2, n % 2 == 0,
                   n % 2 == 1, 1 + n % 2, 4 + n % 4)  # fmt: skip

    @classmethod
    def draw(cls, rng: random.Random) -> Habits:
        """Each habit drawn on its own from the same value sets (and shares) as `by_index`."""
        return cls(
            rng.choice(WALLET_STYPES),
            rng.choice(DEPOSIT_STYPES),
            rng.random() < 1 / 3,
            rng.random() < 0.5,
            rng.random() < 0.5,
            rng.choice(BATCH_EVERY),
            rng.choice(SWEEP_EVERY),
        )


@dataclass(frozen=True)
class Software:
    """What an exchange's signing software shows beyond its `Habits` (profile knob
    `exchange_software: drawn`): its signer (tx version, locktime at the tip or 0, every input's
    nSequence, low-R signatures), whether it orders outputs by BIP69 and whether it pays whole
    sat/vB fee rates. Value sets and shares: `exchange_software.yaml`."""

    signer: str
    version: int
    locktime: bool
    sequence: int
    low_r: bool
    bip69: bool
    whole_fee_rate: bool

    @classmethod
    def draw(cls, rng: random.Random) -> Software:
        """Each of the three drawn on its own from `exchange_software.yaml`."""
        table = software_table()
        signers = table["signers"]
        names = list(signers)
        name = rng.choices(names, [signers[n][4] for n in names])[0]
        version, locktime, sequence, low_r, _share = signers[name]
        return cls(name, int(version), bool(locktime), int(sequence), bool(low_r),
                   rng.random() < float(table["bip69_share"]),
                   rng.random() < float(table["whole_fee_rate_share"]))  # fmt: skip

    def switched(self, rng: random.Random) -> Software:
        """Other software (profile knob `exchange_software_switch`): another signer drawn by
        the table's shares, the other output order, the fee-rate habit drawn again."""
        table = software_table()
        signers = table["signers"]
        names = [n for n in signers if n != self.signer]
        name = rng.choices(names, [signers[n][4] for n in names])[0]
        version, locktime, sequence, low_r, _share = signers[name]
        return Software(name, int(version), bool(locktime), int(sequence), bool(low_r),
                        not self.bip69, rng.random() < float(table["whole_fee_rate_share"]))  # fmt: skip

    def spec(self) -> tuple[int, bool, int, bool]:
        """As a `SOFTWARE` row: (version, locktime at the tip, nSequence, low-R)."""
        return (self.version, self.locktime, self.sequence, self.low_r)


@cache
def software_table() -> dict[str, Any]:
    """`exchange_software.yaml`, read once."""
    text = resources.files("chainsleuth.simulate").joinpath("exchange_software.yaml").read_text()
    return dict(yaml.safe_load(text))


class Exchange:
    """An exchange: hot wallet (the wallet's utxos), cold storage, deposits, withdrawal queue."""

    def __init__(
        self, n: int, wallet: Wallet, cold: Addr, hot: list[Addr], rng: random.Random,
        habits: Habits,
    ) -> None:  # fmt: skip
        self.n = n
        self.wallet = wallet
        self.name = wallet.entity
        self.habits = habits
        self.dep_stype = habits.dep_stype
        self.hot = hot
        self.cold = cold
        self.fresh_change = habits.fresh_change  # others send change back to a reused hot address
        self.no_reuse = False  # profile: fresh hot per sweep, fresh change, fresh cold
        self.change_last = habits.change_last
        self.deducts_fee = habits.deducts_fee  # withdrawal fee taken from the amount sent
        self.batch_every = habits.batch_every
        self.sweep_every = habits.sweep_every
        self.offset = rng.randrange(12)
        #: its signing software where the profile draws one (`Software`), else None: it signs as
        #: `SOFTWARE[SERVICE]`, orders outputs as `change_last` says, pays fractional fee rates
        self.software: Software | None = None
        #: the software it signed with before a switch (`exchange_software_switch`) and the
        #: height it switched at
        self.software_before: Software | None = None
        self.switched_at = -1
        self.deposits: list[Utxo] = []
        self.queue: list[Request] = []
        #: forward remainders the next batch spends (profile knob `forward_rest_spent_share`)
        self.rests: list[Utxo] = []
        #: spends its deposits in its batches with hot coins instead of sweeping them (profile
        #: knob `exchange_deposit_cospend_share`)
        self.cospends_deposits = False
        #: the deposits the batch being made spends (`Exchanges._with_deposits`)
        self.cospent: list[Utxo] = []
        self.ema_out = 1.0 * COIN  # withdrawals per block, smoothed

    def habit_record(self) -> dict[str, object]:
        """The habits the exchange acts on (for world.json): a never-reusing exchange takes
        fresh change whatever it drew."""
        record: dict[str, object] = {
            "wallet_stype": str(ScriptType(self.wallet.stype)),
            "deposit_stype": str(ScriptType(self.dep_stype)),
            "never_reuse": self.no_reuse,
            "fresh_change": self.fresh_change,
            "change_last": self.change_last,
            "deducts_fee": self.deducts_fee,
            "batch_every": self.batch_every,
            "sweep_every": self.sweep_every,
        }
        if self.cospends_deposits:  # only where so: older worlds' world.json unchanged
            record["cospends_deposits"] = True
        if self.software is not None:  # only where drawn: older worlds' world.json unchanged
            sw = self.software if self.software_before is None else self.software_before
            record.update({
                "signer": sw.signer, "tx_version": sw.version, "locktime_at_tip": sw.locktime,
                "sequence": sw.sequence, "bip69": sw.bip69, "whole_fee_rate": sw.whole_fee_rate,
            })  # fmt: skip
        if self.software_before is not None and self.software is not None:
            sw = self.software  # after the switch (only where the knob is on)
            record.update({
                "switched_at": self.switched_at, "signer_after": sw.signer,
                "tx_version_after": sw.version, "locktime_at_tip_after": sw.locktime,
                "sequence_after": sw.sequence, "bip69_after": sw.bip69,
                "whole_fee_rate_after": sw.whole_fee_rate,
            })  # fmt: skip
        return record


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
