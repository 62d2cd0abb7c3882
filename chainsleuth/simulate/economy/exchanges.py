"""The exchanges: deposit sweeps, batched withdrawals, forwards, and hot/cold moves."""

from __future__ import annotations

from chainsleuth.simulate.economy.model import (
    BTC_ROUND,
    COIN,
    Exchange,
    Request,
)
from chainsleuth.simulate.economy.transactions import Transactions
from chainsleuth.simulate.keys import INPUT_VSIZE_MAX, ROLE, Addr, Utxo

__all__ = ["Exchanges"]

#: the most deposits a batch of an exchange that spends its deposits in its batches takes
#: (the size of a sweep's chunk)
COSPEND_MAX = 200


class Exchanges(Transactions):
    """What the exchanges do each block."""

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
        # an exchange that spends its deposits in its batches sweeps only what piles up beyond
        # what a batch takes (`COSPEND_MAX` each)
        piled = ex.cospends_deposits and len(ex.deposits) > 2 * COSPEND_MAX
        if (h + ex.offset) % ex.sweep_every == 0 and (not ex.cospends_deposits or piled):
            ready = [u for u in ex.deposits if u.height < h]
            if piled:
                ready = ready[: max(len(ready) - COSPEND_MAX, 0)]
            if ready and piled:  # the newest COSPEND_MAX ready ones wait for the next batch
                gone = {id(u) for u in ready}
                ex.deposits[:] = [u for u in ex.deposits if id(u) not in gone]
            elif ready:
                ex.deposits[:] = [u for u in ex.deposits if u.height >= h]  # in place: buckets
            if ready:
                for k in range(0, len(ready), 200):
                    chunk = ready[k : k + 200]
                    to_cold = self.rng.random() < 0.1
                    dest = self.cold_addr(ex) if to_cold else self.hot_addr(ex)
                    bucket = w.extra if to_cold else None
                    self.pay(w, [(dest, 0, bucket)], "exchange_sweep", utxos=chunk, sweep=True,
                             rate=self.exchange_rate(ex, 0.5))  # fmt: skip
        if ex.queue and self.profile.forward_whole_share > 0:
            self._exchange_forwards(ex)
        if ex.queue and (h + ex.offset) % ex.batch_every == 0:
            self._exchange_batch(ex)
        hot = w.balance()
        high = int(12 * ex.ema_out) + 5 * COIN
        if hot > 2 * high and (h + ex.offset) % 6 == 0:
            self.pay(w, [(self.cold_addr(ex), hot - high, w.extra)], "exchange_cold_move",
                     rate=self.exchange_rate(ex, 0.5), order=self.exchange_order(ex))  # fmt: skip

    def _refill(self, ex: Exchange, need: int) -> None:
        w = ex.wallet
        cold = w.extra
        if not cold:
            return
        amount = need + int(6 * ex.ema_out)
        rate = self.exchange_rate(ex)
        sel = self.select(cold, amount, rate, 40)
        if sel is None:  # everything there is
            sel, cold[:] = cold[:], []
            self.pay(w, [(self._refill_addr(ex), 0, None)], "exchange_cold_move", utxos=sel,
                     sweep=True, rate=self._refill_rate(ex))  # fmt: skip
            return
        self.pay(w, [(self._refill_addr(ex), amount, None)], "exchange_cold_move", utxos=sel,
                 change_addr=self.cold_addr(ex), change_bucket=cold, rate=self._refill_rate(ex),
                 order=self.exchange_order(ex))  # fmt: skip

    def _refill_rate(self, ex: Exchange) -> float | None:
        """The rate of a refill from cold storage: None (`pay` draws it, as before drawn
        software) unless the exchange's software is drawn."""
        return None if ex.software is None else self.exchange_rate(ex)

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
                           utxos=[fit], change_addr=self._refill_addr(ex),
                           rate=self.exchange_rate(ex, 0.8), order=self.exchange_order(ex))  # fmt: skip
            if res is None:
                ex.deposits.append(fit)
                continue
            txid, made, rest = res
            req.utxo, req.txid = made[0], txid
            ex.queue.remove(req)
            share = self.profile.forward_rest_spent_share
            if rest is not None and share > 0 and (share >= 1 or rng.random() < share):
                ex.rests.append(rest)

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
        rate = self.exchange_rate(ex, 0.8)
        sel = self._with_rests(ex, acc, rate, len(take)) if ex.rests else None
        if sel is None and ex.cospends_deposits:
            sel = self._with_deposits(ex, acc, rate, len(take))
        res = self.pay(
            w, [(r.addr, r.value, r.bucket) for r in take], "exchange_withdrawal", utxos=sel,
            rate=rate, change_addr=change,
            order=self.exchange_order(ex, "change_last" if ex.change_last else "shuffle"),
        )  # fmt: skip
        if res is None:
            if sel is not None:  # given coins are not refunded by `pay`
                mine = {id(u) for u in ex.cospent}
                w.utxos.extend(u for u in sel if id(u) not in mine)
                ex.deposits.extend(ex.cospent)
            ex.cospent = []
            return
        ex.cospent = []
        txid, made, _ = res
        for r, u in zip(take, made, strict=True):
            r.utxo, r.txid = u, txid
        done = {id(r) for r in take}
        ex.queue = [r for r in ex.queue if id(r) not in done]
        ex.ema_out = 0.9 * ex.ema_out + 0.1 * acc / ex.batch_every

    def _with_deposits(
        self, ex: Exchange, need: int, rate: float, n_payees: int
    ) -> list[Utxo] | None:
        """The coins a batch paying `need` spends at an exchange that spends its deposits in
        its batches (`exchange_deposit_cospend_share`): its ready deposits (up to
        `COSPEND_MAX`, kept in `ex.cospent` until the batch is made) and the hot coins that
        cover the rest (at least one: the deposits are spent *with* the wallet's coins), all
        taken out of their lists; None (`pay` selects) where there is no ready deposit or the
        hot wallet does not cover the rest."""
        h = self.height
        ready = [u for u in ex.deposits if u.height < h][:COSPEND_MAX]
        if not ready:
            return None
        got = sum(u.value for u in ready)
        vb = 34 * n_payees + sum(INPUT_VSIZE_MAX[u.addr.stype] for u in ready)
        hot = self.select(ex.wallet.utxos, max(need - got, 0), rate, vb)
        if hot is None:
            return None
        taken = {id(u) for u in ready}
        ex.deposits[:] = [u for u in ex.deposits if id(u) not in taken]  # in place: buckets
        ex.cospent = ready
        return hot + ready

    def _with_rests(self, ex: Exchange, need: int, rate: float, n_payees: int) -> list[Utxo] | None:
        """The coins a batch paying `need` selects, and the forward remainders still in the hot
        wallet (`ex.rests`, emptied), all taken out of it; None (`pay` selects) where the wallet
        does not cover `need`."""
        w = ex.wallet
        here = {id(u) for u in w.utxos}
        rests = [u for u in ex.rests if id(u) in here]
        ex.rests = []
        sel = self.select(w.utxos, need, rate, 34 * n_payees)
        if sel is None:
            return None
        taken = {id(u) for u in sel}
        extra = [u for u in rests if id(u) not in taken]
        gone = {id(u) for u in extra}
        w.utxos[:] = [u for u in w.utxos if id(u) not in gone]
        return sel + extra

    def buy_amount(self, ex: Exchange) -> int:
        """What a customer withdraws after buying: a USD-sized or a round BTC amount."""
        rng = self.rng
        if rng.random() < 0.6:
            v = self.usd(rng.choice((50, 100, 200, 250, 500, 1000, 2000, 5000)) * 0.985)
        else:
            v = rng.choice(BTC_ROUND[2:]) + rng.choice((0, 0, 0, 10_000_000))
        return v - 50_000 if ex.deducts_fee else v
