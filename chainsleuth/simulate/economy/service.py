"""The service: sweeping its deposit addresses, and its administrator cashing out."""

from __future__ import annotations

from collections.abc import Iterator

from chainsleuth.simulate.economy.coinjoins import CoinJoins
from chainsleuth.simulate.economy.model import (
    COIN,
    P2PKH,
    Cashout,
    Exchange,
)
from chainsleuth.simulate.keys import ROLE, Utxo

__all__ = ["Service"]


class Service(CoinJoins):
    """The darknet service and its administrator."""

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
