"""The service's paying users: how each one funds a payment, and the truth of the trail.

A payment is a plan, a generator that yields how many blocks to wait before its next move:
an exchange withdrawal straight to the deposit address, hops of the payer's own wallet, a
peel chain, or a CoinJoin (Whirlpool, Wasabi, JoinMarket).
"""

from __future__ import annotations

from collections.abc import Iterator

from chainsleuth.simulate.economy.model import (
    COIN,
    P2SH,
    P2WPKH,
    USD_PRICES,
    Exchange,
    Payment,
    Request,
    Ticket,
    Wallet,
)
from chainsleuth.simulate.economy.service import Service
from chainsleuth.simulate.keys import ROLE, Utxo

__all__ = ["Payers"]


class Payers(Service):
    """The plans of the service's paying users."""

    # -----------------------------------------------------------------------------------------
    # the service's paying users

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
