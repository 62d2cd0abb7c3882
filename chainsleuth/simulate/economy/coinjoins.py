"""CoinJoins: Whirlpool (tx0 and mixes), Wasabi 1.x rounds and JoinMarket rounds."""

from __future__ import annotations

import math

from chainsleuth.parse.serialize import TxOut, tx_weight
from chainsleuth.simulate.economy.background import Background
from chainsleuth.simulate.economy.model import (
    MIN_CHANGE,
    MIXER,
    P2WPKH,
    SOFTWARE,
    USD_PRICES,
    Ticket,
    Wallet,
    WhirlpoolPool,
)
from chainsleuth.simulate.keys import ROLE, Addr, Utxo

__all__ = ["CoinJoins"]


class CoinJoins(Background):
    """The mixers, and the privacy users entering and leaving them."""

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
        _, _, seq, low_r = SOFTWARE[MIXER]
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
        _, _, seq, _ = SOFTWARE[MIXER]
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
        _, _, seq, _ = SOFTWARE[taker.soft]
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
