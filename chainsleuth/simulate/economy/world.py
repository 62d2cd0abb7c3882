"""The block loop: `World.step(height, time)` runs each actor in a fixed order."""

from __future__ import annotations

import datetime as dt

from chainsleuth.parse.serialize import Tx
from chainsleuth.simulate.economy.model import (
    COINBASE_MATURITY,
)
from chainsleuth.simulate.economy.payers import Payers
from chainsleuth.simulate.prices import close_usd

__all__ = ["World"]


class World(Payers):
    """The economy. `step()` once per block; `wallets`, `book` and the lists hold the truth."""

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
        if height == self.switch_height:
            self._switch_software()
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
