"""Making transactions: coin selection, change, output order, and booking each one."""

from __future__ import annotations

import math

from chainsleuth.parse.serialize import Tx, TxIn, TxOut, tx_weight
from chainsleuth.simulate.economy.base import WorldBase
from chainsleuth.simulate.economy.model import (
    MIN_CHANGE,
    REUSE_CHANGE,
    Wallet,
)
from chainsleuth.simulate.keys import INPUT_VSIZE_MAX, ROLE, SPK_TEMPLATE, Addr, Utxo

__all__ = ["Transactions"]


class Transactions(WorldBase):
    """Coin selection and `pay()`, on which every actor builds its transactions."""

    # -----------------------------------------------------------------------------------------
    # making transactions

    def _commit(
        self,
        spend: list[Utxo],
        ins: list[TxIn],
        outs: list[tuple[TxOut, Addr | None, list[Utxo] | None]],
        kind: str,
        wid: str,
        soft: int,
        change_vouts: list[int],
    ) -> tuple[bytes, list[Utxo | None]]:
        version, lt, _, _ = self.software[soft]
        tx = Tx(version, tuple(ins), tuple([o for o, _, _ in outs]), self.height - 1 if lt else 0)
        txid = tx.txid()
        book = self.book
        total_in = 0
        maxh = 0
        for u in spend:
            if u.spent:
                raise AssertionError("simulator tried to spend an output twice")
            u.spent = True
            total_in += u.value
            book.sent[u.addr.aid] += u.value
            if u.height > maxh:
                maxh = u.height
        total_out = 0
        made: list[Utxo | None] = []
        h = self.height
        wallets = self.wallets
        for vout, (o, addr, bucket) in enumerate(outs):
            total_out += o.value
            if addr is None:
                made.append(None)
                continue
            u = Utxo(txid, vout, o.value, addr, h)
            aid = addr.aid
            book.received[aid] += o.value
            book.n_outputs[aid] += 1
            (wallets[addr.owner].utxos if bucket is None else bucket).append(u)
            made.append(u)
        fee = total_in - total_out
        if fee < 0:
            raise AssertionError(f"{kind} transaction creates {-fee} sat")
        self.fees += fee
        self.block.append((tx, maxh, fee))
        self.n_txs += 1
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.tx_log is not None:
            cv = ";".join(map(str, change_vouts))
            self.rows.append(f"{txid[::-1].hex()},{h},{kind},{wid},{cv}\n")
        return txid, made

    def select(self, utxos: list[Utxo], need: int, rate: float, out_vb: int) -> list[Utxo] | None:
        """Coins from `utxos` (removed from it) covering `need` plus fees, or None.

        One coin that covers everything if there is one (the smallest such), else largest first.
        """
        if not utxos:
            return None
        base = 11 + out_vb + 43
        best: Utxo | None = None
        for u in utxos:
            if u.value >= need + rate * (base + INPUT_VSIZE_MAX[u.addr.stype]) and (
                best is None or u.value < best.value
            ):
                best = u
        if best is not None:
            utxos.remove(best)
            return [best]
        chosen = []
        acc = 0
        vb = base
        for u in sorted(utxos, key=_value, reverse=True):
            chosen.append(u)
            acc += u.value
            vb += INPUT_VSIZE_MAX[u.addr.stype]
            if acc >= need + rate * vb:
                break
        else:
            return None
        gone = {id(u) for u in chosen}
        utxos[:] = [u for u in utxos if id(u) not in gone]
        return chosen

    def pay(
        self,
        w: Wallet,
        outs: list[tuple[Addr, int, list[Utxo] | None]],
        kind: str,
        *,
        utxos: list[Utxo] | None = None,
        rate: float | None = None,
        sweep: bool = False,
        change_addr: Addr | None = None,
        change_bucket: list[Utxo] | None = None,
        op_return: bytes | None = None,
        order: str = "shuffle",
    ) -> tuple[bytes, list[Utxo | None], Utxo | None] | None:
        """`w` pays `outs` (address, value, bucket the new output joins) with change.

        Coins come from `utxos` if given (the caller has taken them out of any list), else are
        selected from `w.utxos`. With `sweep`, the single output gets everything less the fee.
        Returns (txid, the outputs made for `outs`, the change output) or None if funds lack.
        """
        rate = self.rate() if rate is None else rate
        version, _, seq, low_r = self.software[w.soft]
        pay_total = sum(v for _, v, _ in outs)
        extra = [TxOut(0, b"\x6a" + bytes((len(op_return),)) + op_return)] if op_return else []
        out_vb = sum(9 + len(a.spk) for a, _, _ in outs) + sum(
            9 + len(o.script_pubkey) for o in extra
        )
        if utxos is None:
            sel = self.select(w.utxos, pay_total, rate, out_vb)
            if sel is None:
                return None
        else:
            sel = utxos
        total = sum(u.value for u in sel)
        book, sigrng = self.book, self.sigrng
        ins = [book.txin(u, seq, sigrng, low_r) for u in sel]
        txouts = [TxOut(v, a.spk) for a, v, _ in outs]
        metas: list[tuple[Addr | None, list[Utxo] | None]] = [(a, b) for a, _, b in outs]
        change_value = 0
        change_meta: tuple[Addr | None, list[Utxo] | None] | None = None
        if sweep:
            vsize = (tx_weight(ins, txouts + extra) + 3) // 4
            fee = math.ceil(rate * vsize)
            value = total - fee
            if value < MIN_CHANGE:
                self._refund(w, sel, utxos)
                return None
            txouts[0] = TxOut(value, txouts[0].script_pubkey)
        else:
            if change_addr is not None:
                cspk = change_addr.spk
            elif w.reuse and w.change == REUSE_CHANGE:
                change_addr = self.recv(w)
                cspk = change_addr.spk
            else:
                cspk = SPK_TEMPLATE[self._change_stype(w, [a.stype for a, _, _ in outs])]
            vsize = (tx_weight(ins, [*txouts, *extra, TxOut(0, cspk)]) + 3) // 4
            fee = math.ceil(rate * vsize)
            change_value = total - pay_total - fee
            if change_value < MIN_CHANGE:
                nochange = math.ceil(rate * ((tx_weight(ins, txouts + extra) + 3) // 4))
                if total - pay_total < nochange:
                    self._refund(w, sel, utxos)
                    return None
                change_value = 0
            else:
                if change_addr is None:
                    change_addr = self.book.new(
                        self._change_stype(w, [a.stype for a, _, _ in outs]), w.idx, ROLE["change"]
                    )
                change_meta = (change_addr, change_bucket)
        # order the outputs
        rows: list[tuple[TxOut, Addr | None, list[Utxo] | None, int]] = [
            (o, m[0], m[1], i) for i, (o, m) in enumerate(zip(txouts, metas, strict=True))
        ]
        if change_meta is not None:
            rows.append((TxOut(change_value, change_meta[0].spk), *change_meta, -1))  # type: ignore[union-attr]
        if order == "shuffle":
            self.rng.shuffle(rows)
        elif order == "bip69":  # BIP69: by value, then by scriptPubKey (bytes)
            rows.sort(key=lambda r: (r[0].value, r[0].script_pubkey))
        for o in extra:
            if order == "op_return_first":
                rows.insert(0, (o, None, None, -2))
            else:
                rows.insert(self.rng.randrange(len(rows) + 1), (o, None, None, -2))
        change_vouts = [v for v, r in enumerate(rows) if r[3] == -1]
        txid, made = self._commit(
            sel, ins, [(o, a, b) for o, a, b, _ in rows], kind, w.wid, w.soft, change_vouts
        )
        by_index: list[Utxo | None] = [None] * len(outs)
        change_u = None
        for u, r in zip(made, rows, strict=True):
            if r[3] >= 0:
                by_index[r[3]] = u
            elif r[3] == -1:
                change_u = u
        return txid, by_index, change_u

    def _refund(self, w: Wallet, sel: list[Utxo], given: list[Utxo] | None) -> None:
        if given is None:
            w.utxos.extend(sel)


def _value(u: Utxo) -> int:
    return u.value
