"""Mining pools: who mines each block, booking its coinbase, and paying matured coinbases out."""

from __future__ import annotations

from chainsleuth.parse.serialize import Tx
from chainsleuth.simulate.economy.exchanges import Exchanges
from chainsleuth.simulate.economy.model import (
    COINBASE_MATURITY,
    MIN_CHANGE,
    Wallet,
)
from chainsleuth.simulate.keys import Addr, Utxo

__all__ = ["Mining"]


class Mining(Exchanges):
    """Pools and their miners."""

    # -----------------------------------------------------------------------------------------
    # pools and miners

    def pick_pool(self) -> Wallet:
        """The pool that mines the next block (by hash-rate share)."""
        return self.rng.choices(self.pools, self.pool_weights)[0]

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
                ex = self.deposit_exchange(acct)
                outs.append((self.deposit_addr(ex, acct), int(unit * s), ex.deposits))
            outs = [o for o in outs if o[1] > MIN_CHANGE]
            self.pay(pool, outs, "pool_payout", utxos=ripe, change_addr=pool.addr)
