"""Simulator profiles: named sets of adversarial knobs (data in `profiles.yaml`).

A profile says how unkind a world is to the heuristics: whether exchanges reuse addresses, how
many of their addresses are tagged, whether money moves between exchanges, how often payments
are send-all. Every knob is independent, so a test can switch on one property alone; the named
profiles `easy`, `realistic` and `hard` are what the docs and benchmarks report on.

    >>> profile("hard").exchange_fresh_share
    0.67
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["HABIT_MODES", "SOFTWARE_MODES", "Profile", "profile", "profile_names"]

HABIT_MODES = ("drawn", "by_index")
SOFTWARE_MODES = ("service", "drawn")


@dataclass(frozen=True)
class Profile:
    """The knobs of one world (docs/simulator.md, "Profiles")."""

    name: str
    description: str = ""
    #: how each exchange's habits (script types, change address and position, fee deduction,
    #: batch and sweep intervals) are set: "drawn", each habit on its own per exchange from the
    #: world's seed (real exchanges run different software), or "by_index", a function of the
    #: exchange's index as in the worlds before 2026-12-07 (exchanges 0 and 4 twins)
    exchange_habits: str = "drawn"
    #: what each exchange's signing software shows beyond those habits (tx version, locktime,
    #: nSequence, BIP69 output order, whole sat/vB fee rates): "service", one signer for every
    #: exchange (version 1, locktime 0, final sequences, the fee estimator's fractional rate:
    #: every world before this knob, byte for byte), or "drawn", each exchange's own from
    #: `exchange_software.yaml` (docs/simulator.md "Exchange software")
    exchange_software: str = "service"
    #: where the chain's height reaches this share of its tip, every exchange whose software is
    #: drawn switches to other software: another signer, the other output order (BIP69 or
    #: not), its fee-rate habit drawn again, as Binance's batches changed between 2017 and
    #: 2018 (docs/simulator.md "Exchange software"); 0: never (every world before this knob)
    exchange_software_switch: float = 0.0
    #: share of exchanges that never reuse an address: a fresh hot address per sweep, fresh
    #: change per batched withdrawal, fresh cold storage per move
    exchange_fresh_share: float = 0.0
    #: (min, max) tags per exchange drawn from its whole wallet; (0, 0) = reserve wallets and a
    #: few deposit addresses, as the original world
    tags_per_exchange: tuple[int, int] = (0, 0)
    #: how many exchanges the TagPack leaves with no tag at all, as many real exchanges carry
    #: none: drawn from a stream of their own (`truth.untagged_exchanges`), so the chain and
    #: every other exchange's tags are the same as at 0; truth/untagged_exchanges.csv names
    #: them. 0: every exchange tagged (every profile but `*_untagged`, every world before it)
    untagged_exchanges: int = 0
    #: withdrawals per block (× the scale's activity) from one exchange to a user's deposit
    #: address at another
    cross_exchange_rate: float = 0.0
    #: share of withdrawals an exchange pays straight from one customer deposit (forwarded whole,
    #: the rest back to a fresh exchange address), without sweeping it first
    forward_whole_share: float = 0.0
    #: share of forwards whose rest (the remainder back in the hot wallet) the exchange's next
    #: batched withdrawal spends beside the coins it selects. At 0 (every named profile, every
    #: world before this knob) the hot wallet selects as always, the smallest one coin that
    #: covers a batch, else the largest first, and a small remainder waits: 58-76% of them
    #: unspent at the tip, 150+ blocks on (docs/accuracy-log.md "Cash-outs: the misses are
    #: forward remainders the simulated hot wallets never spend")
    forward_rest_spent_share: float = 0.0
    #: share of exchanges (drawn per exchange) that never sweep their customers' deposits but
    #: spend them straight as inputs of their batched withdrawals, together with hot-wallet
    #: coins, as many real exchanges do (the co-spend is how real-world clustering finds their
    #: deposit addresses). A withdrawal from another exchange into such a deposit is then spent
    #: by this exchange's wallet with its own coins, like that other exchange's change. 0:
    #: every exchange sweeps (every named profile but `hard_cospend`, every world before it)
    exchange_deposit_cospend_share: float = 0.0
    #: share of the people with an exchange account (users, customers, miners, merchants,
    #: multisig holders) who also hold accounts at one or two other exchanges (drawn per
    #: person from a stream of their own) and split their deposits evenly among them, as real
    #: users commonly do. 0: everyone deposits at one exchange (every world before this knob)
    multi_exchange_customer_share: float = 0.0
    #: share of a peel chain's peels that pay an exchange deposit address
    peel_to_exchange_share: float = 0.0
    #: share of person-to-person payments made as send-all: one output, paid to another owner
    send_all_share: float = 0.0
    #: share of service payments from a wallet made as send-all of the coin that pays
    send_all_service_share: float = 0.0
    #: share of Whirlpool plans that pay the service from the Tx0's change (a trail, not a mix)
    tx0_change_share: float = 0.0

    def __post_init__(self) -> None:
        if self.exchange_habits not in HABIT_MODES:
            raise ValueError(
                f"profile {self.name!r}: exchange_habits {self.exchange_habits!r} not in {HABIT_MODES}"
            )
        if self.exchange_software not in SOFTWARE_MODES:
            raise ValueError(
                f"profile {self.name!r}: exchange_software {self.exchange_software!r} "
                f"not in {SOFTWARE_MODES}"
            )
        if not 0.0 <= self.exchange_software_switch < 1.0 or (
            self.exchange_software_switch > 0 and self.exchange_software != "drawn"
        ):
            raise ValueError(
                f"profile {self.name!r}: exchange_software_switch {self.exchange_software_switch!r}"
                " must be in [0, 1), and above 0 only with exchange_software: drawn"
            )

        k = self.untagged_exchanges
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(
                f"profile {self.name!r}: untagged_exchanges {self.untagged_exchanges!r} "
                "must be a whole number >= 0"
            )
        if not 0.0 <= self.multi_exchange_customer_share <= 1.0:
            raise ValueError(
                f"profile {self.name!r}: multi_exchange_customer_share "
                f"{self.multi_exchange_customer_share!r} must be in [0, 1]"
            )
        if not 0.0 <= self.exchange_deposit_cospend_share <= 1.0:
            raise ValueError(
                f"profile {self.name!r}: exchange_deposit_cospend_share "
                f"{self.exchange_deposit_cospend_share!r} must be in [0, 1]"
            )

    def knobs(self) -> dict[str, Any]:
        """Every knob and its value (for world.json)."""
        d = asdict(self)
        d.pop("description")
        if self.exchange_software == "service":
            # left out at its default, so that world.json of every older world stays the same
            d.pop("exchange_software")
        if not self.forward_rest_spent_share:
            d.pop("forward_rest_spent_share")  # the same
        if self.exchange_software_switch == 0.0:
            d.pop("exchange_software_switch")  # likewise
        if self.exchange_deposit_cospend_share == 0.0:
            d.pop("exchange_deposit_cospend_share")  # likewise
        if self.untagged_exchanges == 0:
            d.pop("untagged_exchanges")  # likewise
        if self.multi_exchange_customer_share == 0.0:
            d.pop("multi_exchange_customer_share")  # likewise
        d["tags_per_exchange"] = list(self.tags_per_exchange)
        return d


@cache
def _load() -> dict[str, Profile]:
    text = resources.files("chainsleuth.simulate").joinpath("profiles.yaml").read_text()
    raw = yaml.safe_load(text)
    known = {f.name for f in fields(Profile)}
    out: dict[str, Profile] = {}
    for name, values in raw.items():
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"profiles.yaml: profile {name!r} has unknown knobs {sorted(unknown)}")
        values = dict(values)
        values["tags_per_exchange"] = tuple(values.get("tags_per_exchange", (0, 0)))
        out[name] = Profile(name=name, **values)
    return out


def profile_names() -> list[str]:
    """The named profiles, easiest first."""
    return list(_load())


def profile(name: str | Profile) -> Profile:
    """The named profile (a Profile is returned as it is)."""
    if isinstance(name, Profile):
        return name
    profiles = _load()
    if name not in profiles:
        raise ValueError(f"unknown profile {name!r}; expected one of {', '.join(profiles)}")
    return profiles[name]
