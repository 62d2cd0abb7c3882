"""Background activity: people buying, paying each other, selling, OP_RETURNs, consolidation.

Most transactions of a world are these, and have nothing to do with the case.
"""

from __future__ import annotations

from chainsleuth.simulate.economy.mining import Mining
from chainsleuth.simulate.economy.model import (
    BTC_ROUND,
    COIN,
    MIN_CHANGE,
    USD_PRICES,
    Wallet,
)
from chainsleuth.simulate.keys import Addr, Utxo

__all__ = ["Background"]


class Background(Mining):
    """The users, customers, merchants and miners going about their day."""

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
                ex = self.deposit_exchange(w)
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
