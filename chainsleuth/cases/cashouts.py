"""Cash-outs: where the service's money left its own wallet, and whose deposit it paid.

A cash-out is money leaving the service's wallet to an exchange, directly or through a wallet
the service controls (issue 11). The forward trace (`investigate`) walks the service's spent
deposits through the service's own clusters and stops at the first output outside them: the
service's **payee**. `cashout_rows` then decides, from the payee and the tx that spends it,
whether the payee is a deposit at a custodial service, and whose:

1. **Send-all hops.** A payee passed on whole in a one-input, one-output tx (the
   administrator's own wallet sending everything to an exchange, or the service moving a coin)
   is followed to that tx's output, at most `MAX_SENDALL_HOPS` times. Where the next output is
   a hot wallet's (spent by a payout of 3+ payees), the payee before it was the deposit;
   unless that payout's wallet spends its customers' deposits in its payouts
   (`trace.services.deposit_cospenders`), or the send-all is written with another wallet
   fingerprint than the payout (`cluster.learned.read_fingerprints`: a wallet writes its
   move of a deposit into its hot wallet with the software that writes its payouts): then the
   send-all paid its deposit, and is followed from a named payee too (docs/accuracy-log.md
   "Cash-outs on co-spending exchanges").
2. **Named.** A payee whose cluster the tags stage, a service entity or a hot-change link
   names (`attribution`) is that actor's deposit.
3. **Swept.** A payee spent by a sweep (`SWEEP_MIN_INPUTS`+ inputs into one payee) is a deposit
   of whoever owns the sweep's output: named when that cluster is, else an
   `unidentified_service` named `cluster:<id>` of the sweep's output cluster. This is how an
   exchange deposit is recognised when the exchange's wallet past it carries no tag: an
   exchange that never reuses an address sweeps its deposits into fresh hot or cold addresses
   that no batch may ever spend, and a walk past the deposit reaches nothing attributed.
4. **Forwarded.** A payee spent alone in a one-input, two-payee tx whose other output a
   payout spends (`PAYOUT_MIN_PAYEES`+ payees, at most `PAYOUT_EQUAL_SHARE` of them of one
   value) is a deposit the payout's wallet forwarded (an exchange paying a buyer straight from
   a customer's deposit, its remainder spent in its next batch): named by the remainder's
   cluster, else `unidentified_service` `cluster:<id>` of it. Customers pay deposit addresses,
   not batches; a payout is an exchange's or a pool's. The payout may carry a CoinJoin flag:
   the equal-output rule takes batched withdrawals of a few round amounts for CoinJoins, and
   the mixes' own shapes (half or more of the payees of one value) are left out by the share.
5. **CoinJoins.** A payee (or a service output) spent by a flagged CoinJoin is a cash-out into
   the mixer, as before.
6a. **Forwarded into other script types** (`attributed_via` = `forward_switched_type`, the
   `caution` column says so too). Rule 6's shape, where the payee is P2PKH or P2SH, neither
   output is of its type, the two outputs are of two different types, and they are not a
   P2WPKH beside another native segwit output. A person's wallet keeps its change in the type
   it holds, or matches it to the payment's type (Bitcoin Core since 23.0: two outputs alike),
   or gives native change when paying a native address (Core 0.16-22: P2WPKH beside a native
   payee); such a wallet also holds P2WPKH coins it can spend into its own older type, so a
   P2WPKH payee is never read. An exchange forwarding a customer's deposit receives on its
   deposit addresses' type and sends the rest to its hot wallet's, which may differ from both.
   Only P2PKH, P2SH, P2WPKH and P2WSH outputs count (`SWITCH_TYPES`; taproot change from an
   older coin is a wallet moving on). Reported like rule 4, named `unidentified_service`
   `cluster:<id>` of the payee. What it cannot tell apart: a person whose wallet moved from
   P2PKH or P2SH to native segwit paying an address of the third type (1-4 of 8,933-10,391
   people's one-input, two-output spends per world, chain-wide, on hard small 1 and 4 and
   realistic small 4; none of the 55,229 people's coins rule 6 reads on hard medium 4 and 7).
   It marks 17-21% of those small worlds' exchange forwards, 4% on the two medium ones
   (docs/accuracy-log.md "Cash-outs: what the misses are, and forwards into other script
   types").
6b. **Forwarded the way a tagged exchange moves coins** (`attributed_via` and `caution` =
   `forward_exchange_habits`). Rule 6's shape (of any of `SWITCH_TYPES`), neither output of
   the payee's script type (two outputs alike, native change and a P2WPKH payee allowed,
   unlike rule 6a), and one tagged exchange's habits (`trace.services.style_habits`, read from
   its batches and sweeps) fit all of it: its deposits' type is the payee's, its hot wallet's
   type is one output's, and its batches' wallet fingerprint (version, locktime, first
   nSequence: `cluster.learned.read_fingerprints`) is the spend's, with locktime 0 and
   nSequence final. A person's wallet gives change of another type than the coin it spends
   when it is Bitcoin Core (change matched to the payment since 23.0, native change since
   0.16, and P2WPKH change spent on into the wallet's older type: the cases rule 6a steps
   around), and Core writes an anti-fee-sniping locktime and a non-final nSequence; software
   that writes neither keeps its change in the type it holds. Of the coins the simulated
   exchanges withdrew to people, 0 of 28,615 spends of rule 6's shape are marked (10 small
   worlds). What it cannot tell apart: a person's coin held at an address of another type
   than the wallet's own (a self-transfer into another type; chain-wide, 0-0.28% of
   people's one-input, two-output spends per world, almost all of such coins), spent by
   fingerprint-less software into a tagged exchange's hot type (docs/accuracy-log.md
   "Cash-outs: forwards that fit a tagged exchange's habits"). Reported like rule 6a, named
   `unidentified_service` `cluster:<id>` of the payee. An exchange whose software changed
   (its habits read two values in two calendar half-years) is read per half-year, and a
   forward is compared with the habits of the half-year its block is in (`exchange_habits`'
   window column; docs/accuracy-log.md "Cash-outs: rule 6b per half-year").
6. **Forwarded, unconfirmed** (a weaker rule, `attributed_via` = `forward_unconfirmed`). A
   payee spent alone in a plain one-input, two-output tx whose remainder no payout spends:
   an exchange forwarding the deposit to a buyer looks so, and so does a person paying
   someone with change, and nothing on the chain tells them apart. The row is listed as an
   `unidentified_service` (`cluster:<id>` of the payee itself) with the caution
   `forward_unconfirmed` and a confidence capped at `UNCONFIRMED_FORWARD_CAP` (below the
   subpoena cut): a place to look, not a subpoena.
7. **Otherwise** the payee is not shown to be a service's deposit (a payee spent in any other
   way, or kept unspent): no row. It is counted (`CashoutRows.unidentified`) and not walked
   past: money that reached an exchange through a third party's wallet is that party's, not
   the service's, cash-out, and walking on named the wrong exchange (issue 11's worlds: an
   exchange forwarding the service's deposit to a buyer at another exchange).

Memory: a few int64 arrays per trace row; no Python object per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from chainsleuth.core.script_types import ScriptType
from chainsleuth.store.layout import NONE32
from chainsleuth.trace.services import ClusterSet

__all__ = [
    "CASHOUT_VIA",
    "MAX_SENDALL_HOPS",
    "PAYOUT_EQUAL_SHARE",
    "PAYOUT_MIN_PAYEES",
    "SWITCH_TYPES",
    "VIA_FORWARD_HABITS",
    "VIA_FORWARD_SWITCHED",
    "VIA_FORWARD_UNCONFIRMED",
    "CashoutRows",
    "PayeeFates",
    "cashout_rows",
    "UNCONFIRMED_FORWARD_CAP",
    "payee_fates_summary",
]

#: One-input, one-output hops followed past the service's payee (the administrator's wallet
#: sending a cash-out on whole is one). Each hop can also be someone else's send-all, so few.
MAX_SENDALL_HOPS = 2

#: Payees of a payout that spends a forwarded deposit's remainder (rule 4): a batched
#: withdrawal's, as `trace.services.BATCH_MIN_PAYEES` (people paying a few payees with change
#: reach 3-5: at 3 payees and half of one value, 56-74% of the one-input, two-payee txs so
#: marked on hard small 1 and 5 and realistic small 1 spent users' and mixers' coins, none at
#: 6 and a quarter; docs/investigations.md).
PAYOUT_MIN_PAYEES = 6

#: At most this share of a payout's payees may pay one value (rule 4). The simulated worlds'
#: mixes sit at 0.39 and above (Wasabi 0.39-0.49, JoinMarket 0.50, Whirlpool Tx0 0.67-0.75),
#: exchanges' batched withdrawals at 0.05-0.50 (median 0.15-0.17) and pool payouts at 0.03-0.08
#: (hard medium seed 1, realistic small seed 1).
PAYOUT_EQUAL_SHARE = 0.25

#: Confidence cap of rule 6's rows (`forward_unconfirmed`), the CoinJoin cap's value: listed
#: for the investigator, below the subpoena cut. What share of such payees are deposits depends
#: on whom the service pays, which the chain does not show: all of them on the simulated
#: worlds, whose services pay only exchanges; 1-3% of the same shape among the payees of the
#: worlds' exchanges and pools (people, mostly); 2-7% chain-wide (docs/accuracy-log.md
#: "Cash-outs: the misses left (this round)", `bench.cashout_factor_check`).
UNCONFIRMED_FORWARD_CAP = 0.25


#: What each cash-out row rests on (`rows["via"]` is the index; the `attributed_via` column):
#: the payee's cluster is named; a sweep spent it; a send-all took it into a hot wallet; its
#: forward's remainder went to a payout; its forward was not confirmed (rule 6, weaker); or a
#: CoinJoin spent it.
CASHOUT_VIA = (
    "named",
    "sweep",
    "sendall_to_hot",
    "forward_to_payout",
    "forward_unconfirmed",
    "coinjoin",
    "forward_switched_type",
    "forward_exchange_habits",
)
(
    VIA_NAMED,
    VIA_SWEEP,
    VIA_HOT,
    VIA_PAYOUT,
    VIA_FORWARD_UNCONFIRMED,
    VIA_COINJOIN,
    VIA_FORWARD_SWITCHED,
    VIA_FORWARD_HABITS,
) = range(8)

#: Script types rule 6a reads (codes of `core.script_types.ScriptType`): the address types a
#: wallet holds and makes change in. P2TR is left out: a wallet moving to taproot gives P2TR
#: change from an older coin, which would look like a switch.
SWITCH_TYPES = (
    int(ScriptType.P2PKH),
    int(ScriptType.P2SH),
    int(ScriptType.P2WPKH),
    int(ScriptType.P2WSH),
)
_PRE_SEGWIT = (int(ScriptType.P2PKH), int(ScriptType.P2SH))
_NATIVE = (int(ScriptType.P2WPKH), int(ScriptType.P2WSH))

#: `cluster.learned.read_fingerprints` bits rule 6b reads: locktime > 0 (bit 2) and the first
#: input's nSequence class (bits 3-4, 0 = final). A spend with either set is not rule 6b's:
#: anti-fee-sniping locktimes and RBF or locktime-enabling nSequences are what Bitcoin Core
#: and Electrum write, the wallets that give change of another type than the coin's.
_FP_LOCKTIME = 0b100
_FP_SEQUENCE = 0b11000


@dataclass(frozen=True)
class PayeeFates:
    """The service's payees (destination output ids, unique within a chunk) by what their
    spend showed: a deposit (rules 1-4), the ambiguous forward of rule 6, or spent some other
    way (not by a CoinJoin, a sweep or a payout, and explained by no rule: a person's
    wallet, most likely)."""

    deposit: np.ndarray
    ambiguous: np.ndarray
    other: np.ndarray


@dataclass(frozen=True)
class CashoutRows:
    """The cash-out rows of one forward trace chunk (per row) and what was left unnamed."""

    rows: dict[str, np.ndarray]
    unidentified: int  # trace rows ending at a payee not shown to be a service's deposit
    unidentified_sat: int  # the service's satoshis in them
    fates: PayeeFates | None = None


class TxEnds:
    """`np.append(first[1:], last)` read at the indices asked for, instead of a copy of the
    per-tx array (8 B per tx, per chunk of seeds): where each tx's inputs or outputs end, with
    `first` a tx_first_input / tx_first_output array and `last` the count after the last tx.
    The indices must be valid tx ids (0 <= tx < len(first))."""

    def __init__(self, first: np.ndarray, last: int) -> None:
        self.first, self.last = first, last

    def __getitem__(self, tx: np.ndarray) -> np.ndarray:
        tx = np.asarray(tx, np.int64)
        n = self.first.shape[0]
        nxt = np.asarray(self.first[np.minimum(tx + 1, max(n - 1, 0))], np.int64)
        return np.where(tx + 1 < n, nxt, self.last)


class _Plain:
    """`~sweep_tx & ~is_coinjoin` (a bool per tx: neither a sweep nor a CoinJoin) read at the
    txs asked for, instead of three whole-chain bool temporaries (3 B per tx, per chunk)."""

    def __init__(self, sweep_tx: np.ndarray, is_coinjoin: np.ndarray) -> None:
        self.sweep_tx, self.is_coinjoin = sweep_tx, is_coinjoin

    def __getitem__(self, tx: np.ndarray) -> np.ndarray:
        tx = np.asarray(tx, np.int64)
        plain: np.ndarray = ~np.asarray(self.sweep_tx[tx]) & ~np.asarray(self.is_coinjoin[tx])
        return plain


def _tx_of_output(tx_first_output: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    made: np.ndarray = np.searchsorted(tx_first_output, outputs, side="right") - 1
    return made


def cashout_rows(
    result: Any,
    out_cluster: Any,  # per output, an array or investigate.OutputIds (indexed only)
    out_addr: Any,
    attribution: dict[int, tuple[str | None, str]],
    service_mask: np.ndarray | ClusterSet,  # bool per cluster id (indexed only)
    tx_first_input: np.ndarray,
    tx_first_output: np.ndarray,
    spent_by: np.ndarray,
    is_coinjoin: np.ndarray,
    sweep_tx: np.ndarray,
    batch_tx: np.ndarray,
    out_value: np.ndarray,
    out_type: np.ndarray | None = None,
    tx_fingerprint: np.ndarray | None = None,
    exchange_habits: np.ndarray | None = None,
    tx_height: Any = None,
    block_window: np.ndarray | None = None,
    cospenders: np.ndarray | ClusterSet | None = None,  # bool per cluster id (indexed only)
) -> CashoutRows:
    """Rows of a forward trace (stopped at the service's payees: every cluster outside the service stops it) that are
    cash-outs: `destination` (output id), `tx` (the tx that paid it, or the CoinJoin),
    `hops` (from the service's deposit output), `traced` (satoshis), `coinjoin`, `cluster`
    (the cluster that names the destination). New `unidentified_service` names for sweeps'
    and payouts' clusters are added to `attribution` (in place). `out_value`: satoshis per
    output. `out_type`: script type code per output (rule 6a; None: rules 6a and 6b off).
    `tx_fingerprint`: `cluster.learned.read_fingerprints` per tx, and `exchange_habits`: the
    tagged exchanges' (deposit type, hot type, batch fingerprint), k x 3, or k x 4 with the
    calendar window each row holds in (-1: the whole chain; `trace.services.habit_rows`), read
    at a forward's block through `tx_height` (per tx) and `block_window` (per block); rule 6b;
    None or empty: rule 6b off). `cospenders`: the clusters of wallets that spend their customers'
    deposits straight in their payouts (`trace.services.deposit_cospenders`); a send-all into
    one of them that a payout spends is taken for its deposit, not its hot wallet (rule 1).
    See the module docstring."""
    from chainsleuth.trace import kernels as trace_kernels

    n_txs = tx_first_output.shape[0]
    first_in = np.asarray(tx_first_input, np.int64)
    first_out = np.asarray(tx_first_output, np.int64)
    n_outputs = out_cluster.shape[0]
    ends_out = TxEnds(first_out, n_outputs)
    ends_in = TxEnds(first_in, np.iinfo(np.int64).max)
    # the named clusters, read like a bool per cluster id: 8 B per name, not 1 B per address
    named = ClusterSet(np.fromiter(attribution, np.int64, len(attribution)), service_mask.shape[0])

    def spender(o: np.ndarray) -> np.ndarray:
        raw = np.asarray(spent_by[o]).astype(np.int64)
        bad = (raw == int(NONE32)) | (raw < 0) | (raw >= n_txs)
        return np.where(bad, -1, raw)

    def is_named(o: np.ndarray) -> np.ndarray:
        c = out_cluster[o]
        return (c >= 0) & named[np.maximum(c, 0)]

    kind = result.kind
    coinjoin_rows = np.flatnonzero(kind == trace_kernels.KIND_COINJOIN)
    stopped = np.flatnonzero(kind == trace_kernels.KIND_CLUSTER)
    dest = result.output[stopped].astype(np.int64)
    tx = result.tx[stopped].astype(np.int64)
    hops = result.hops[stopped].astype(np.int64)
    prev = np.full(dest.shape[0], -1, np.int64)
    prev_tx = np.full(dest.shape[0], -1, np.int64)

    def into_foreign_payout(sendall: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Per send-all tx and its output: the output is spent by a payout written with
        another wallet fingerprint than the send-all (none without `tx_fingerprint`). A wallet
        moving a deposit into its own hot wallet writes that move with the software that
        writes its payouts; a send-all written otherwise (another version, locktime or
        nSequence class) is someone else's payment into a coin the payout spent: a deposit of
        the payout's wallet, spent straight in its payout (85 cached worlds: 33 send-alls into
        a payout's coin, all on hard_cospend small and medium 2, all a Core-written send-all by
        the administrator into a deposit of a plainly written payout; the step back was right
        for none)."""
        p = spender(out)
        p0 = np.maximum(p, 0)
        if tx_fingerprint is None:
            return np.zeros(p.shape[0], np.bool_)
        sent = np.asarray(tx_fingerprint[np.maximum(sendall, 0)]).astype(np.int64)
        paid = np.asarray(tx_fingerprint[p0]).astype(np.int64)
        foreign: np.ndarray = (p >= 0) & batch_tx[p0] & (sent != paid)
        return foreign

    def one_name(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per pair of outputs (a few: named payees sent on whole): both clusters carry one
        name."""
        ca, cb = np.asarray(out_cluster[a]).tolist(), np.asarray(out_cluster[b]).tolist()
        same = [
            x in attribution and attribution[x] == attribution.get(y)
            for x, y in zip(ca, cb, strict=True)
        ]
        return np.array(same, np.bool_)

    # 1. send-all hops: one input, one output, not a CoinJoin, from a payee nobody names; or
    # from a named one into a foreign payout's deposit of the payee's own name: a wallet's own
    # deposit it would have spent itself, so the name came to the sender's coin through an
    # entity link (hard_cospend small 4: the administrator's address in a service entity). A
    # tagged exchange forwarding the payee whole to another exchange's deposit keeps its row.
    for _ in range(MAX_SENDALL_HOPS):
        s = spender(dest)
        ok = s >= 0
        s0 = np.maximum(s, 0)
        ok &= (ends_in[s0] - first_in[s0] == 1) & (ends_out[s0] - first_out[s0] == 1)
        ok &= ~is_coinjoin[s0]
        nxt = first_out[s0]
        ok &= out_addr[nxt] >= 0
        named_here = ok & is_named(dest)
        if named_here.any():
            ok[named_here] = into_foreign_payout(s0[named_here], nxt[named_here]) & one_name(
                dest[named_here], nxt[named_here]
            )
        prev = np.where(ok, dest, prev)
        prev_tx = np.where(ok, tx, prev_tx)
        dest = np.where(ok, nxt, dest)
        tx = np.where(ok, s, tx)
        hops = np.where(ok, hops + 1, hops)
    # a send-all into a hot wallet (its output spent by a payout): the payee before was the
    # deposit, swept alone
    s = spender(dest)
    hot = (prev >= 0) & (s >= 0) & batch_tx[np.maximum(s, 0)]
    if cospenders is not None:
        # a wallet that spends deposits in its payouts: the coin its payout spent may be the
        # deposit the send-all paid (an administrator sending a coin whole to an exchange),
        # so the payee before it is not taken for one (hard_cospend: 12 wrong cash-outs)
        c = out_cluster[dest]
        hot &= ~((c >= 0) & cospenders[np.maximum(c, 0)])
    if hot.any():
        # a send-all written unlike the payout that spends its coin paid that coin in: not a
        # hot wallet's, a deposit (`into_foreign_payout`)
        hot[hot] = ~into_foreign_payout(tx[hot], dest[hot])
    credited_by = dest.copy()  # whose cluster names the deposit
    dest = np.where(hot, prev, dest)
    tx = np.where(hot, prev_tx, tx)
    hops = np.where(hot, hops - 1, hops)
    # 2. named payees; 3. swept payees; 4. payees spent by a CoinJoin
    s = spender(dest)
    s0 = np.maximum(s, 0)
    swept = ~hot & (s >= 0) & sweep_tx[s0] & ~is_coinjoin[s0]
    mixed = ~hot & (s >= 0) & is_coinjoin[s0]
    payee = _sweep_payee(s0, first_out, ends_out, out_addr)
    credited_by = np.where(swept & ~is_named(dest), payee, np.where(hot, credited_by, dest))
    # 4. forwarded: spent alone beside a remainder that a payout spends
    plain = _Plain(sweep_tx, is_coinjoin)
    remainder = _paid_on_by_payout(
        np.where(~hot & ~swept & ~mixed & ~is_named(dest), s, -1),
        first_in, ends_in, first_out, ends_out, out_addr, out_value, spent_by, n_txs,
        plain,
    )  # fmt: skip
    forwarded = remainder >= 0
    credited_by = np.where(forwarded, remainder, credited_by)
    # 6. forwarded, unconfirmed: spent alone in a plain one-input, two-payee tx, the rest
    # unexplained; named by the payee's own cluster, the row flagged (weaker evidence)
    named_dest = is_named(dest)
    ambiguous = ~hot & ~swept & ~mixed & ~forwarded & ~named_dest & (s >= 0)
    ambiguous &= _one_in_two_payees(s0, first_in, ends_in, first_out, ends_out, out_addr)
    ambiguous &= plain[s0]
    # 6a. the same shape, into two other script types than the payee's: an exchange's forward
    typed = np.zeros_like(ambiguous)
    if out_type is not None and ambiguous.any():
        typed[ambiguous] = _switched_type(dest[ambiguous], s0[ambiguous], first_out, out_type)
    ambiguous &= ~typed
    # 6b. the same shape, the payee's type dropped, written by an exchange's software
    styled = np.zeros_like(ambiguous)
    if (
        out_type is not None
        and tx_fingerprint is not None
        and exchange_habits is not None
        and exchange_habits.shape[0]
        and ambiguous.any()
    ):
        asked = s0[ambiguous]
        window = None
        if tx_height is not None and block_window is not None:
            window = np.asarray(block_window)[np.asarray(tx_height[asked]).astype(np.int64)]
        styled[ambiguous] = _exchange_habits_fit(
            dest[ambiguous], asked, first_out, out_type, tx_fingerprint, exchange_habits, window
        )
    ambiguous &= ~styled
    typed |= styled
    shown = hot | swept | forwarded | named_dest | typed
    fates = PayeeFates(
        deposit=np.unique(dest[shown & ~mixed]),
        ambiguous=np.unique(dest[ambiguous]),
        other=np.unique(
            dest[(s >= 0) & ~shown & ~mixed & ~ambiguous & ~batch_tx[s0] & ~sweep_tx[s0]]
        ),
    )
    cluster = np.where(credited_by >= 0, out_cluster[np.maximum(credited_by, 0)], -1)
    # a sweep or payout whose wallet no one names is an unidentified service's deposit
    unnamed = (swept & ~named_dest) | forwarded | ambiguous | typed
    new = np.unique(cluster[unnamed & (cluster >= 0)])
    for c in new.tolist():
        if c not in attribution and not service_mask[c]:
            attribution[c] = (f"cluster:{c}", "unidentified_service")
    named = ClusterSet(np.fromiter(attribution, np.int64, len(attribution)), service_mask.shape[0])
    keep = ~mixed & (cluster >= 0) & named[np.maximum(cluster, 0)] & (shown | ambiguous)
    keep &= ~service_mask[np.maximum(cluster, 0)]
    via = np.select(
        [named_dest & ~hot, hot, swept, forwarded, styled, typed, ambiguous],
        [
            VIA_NAMED,
            VIA_HOT,
            VIA_SWEEP,
            VIA_PAYOUT,
            VIA_FORWARD_HABITS,
            VIA_FORWARD_SWITCHED,
            VIA_FORWARD_UNCONFIRMED,
        ],  # fmt: skip
        VIA_NAMED,
    )
    traced = result.amount[stopped].astype(np.int64)
    lost = ~keep & ~mixed
    rows = {
        "destination": np.concatenate([dest[keep], dest[mixed], result.output[coinjoin_rows]]),
        "tx": np.concatenate([tx[keep], s[mixed], result.tx[coinjoin_rows]]),
        "hops": np.concatenate([hops[keep], hops[mixed], result.hops[coinjoin_rows]]),
        "traced": np.concatenate([traced[keep], traced[mixed], result.amount[coinjoin_rows]]),
        "coinjoin": np.concatenate(
            [
                np.zeros(int(keep.sum()), np.bool_),
                np.ones(int(mixed.sum()) + coinjoin_rows.shape[0], np.bool_),
            ]
        ),
        "cluster": np.concatenate(
            [cluster[keep], out_cluster[dest[mixed]], out_cluster[result.output[coinjoin_rows]]]
        ),
        "via": np.concatenate(
            [via[keep], np.full(int(mixed.sum()) + coinjoin_rows.shape[0], VIA_COINJOIN)]
        ),
    }
    rows = {k: v.astype(np.bool_ if k == "coinjoin" else np.int64) for k, v in rows.items()}
    return CashoutRows(rows, int(lost.sum()), int(traced[lost].sum()), fates)


def _one_in_two_payees(
    tx: np.ndarray,
    first_in: np.ndarray,
    ends_in: TxEnds | np.ndarray,
    first_out: np.ndarray,
    ends_out: TxEnds | np.ndarray,
    out_addr: Any,
) -> np.ndarray:
    """Per tx: one input and exactly two outputs, both with an address."""
    t = np.asarray(tx, np.int64)
    ok = (ends_in[t] - first_in[t] == 1) & (ends_out[t] - first_out[t] == 2)
    n_outputs = out_addr.shape[0]
    for k in (0, 1):
        ok &= out_addr[np.minimum(first_out[t] + k, n_outputs - 1)] >= 0
    result: np.ndarray = ok
    return result


def _switched_type(
    payee: np.ndarray, tx: np.ndarray, first_out: np.ndarray, out_type: np.ndarray
) -> np.ndarray:
    """Per payee spent alone in `tx` (one input, two outputs with addresses, checked by the
    caller): rule 6a's sign. The payee is P2PKH or P2SH (a wallet holding P2WPKH native change
    may spend it into its own older type) and both outputs are of `SWITCH_TYPES`; neither
    output is of the payee's type; the two outputs differ in type (change matched to the
    payment's type explains two alike); and not a P2WPKH output beside a native segwit one
    (native change when paying a native address)."""
    d = np.asarray(out_type[payee]).astype(np.int64)
    a = np.asarray(out_type[first_out[tx]]).astype(np.int64)
    b = np.asarray(out_type[first_out[tx] + 1]).astype(np.int64)
    known = np.isin(d, _PRE_SEGWIT) & np.isin(a, SWITCH_TYPES) & np.isin(b, SWITCH_TYPES)
    p2wpkh = int(ScriptType.P2WPKH)
    native_change = ((a == p2wpkh) & np.isin(b, _NATIVE)) | ((b == p2wpkh) & np.isin(a, _NATIVE))
    switched: np.ndarray = known & (a != d) & (b != d) & (a != b) & ~native_change
    return switched


def _exchange_habits_fit(
    payee: np.ndarray,
    tx: np.ndarray,
    first_out: np.ndarray,
    out_type: np.ndarray,
    tx_fingerprint: np.ndarray,
    exchange_habits: np.ndarray,
    window: np.ndarray | None = None,
) -> np.ndarray:
    """Per payee spent alone in `tx` (one input, two outputs with addresses, checked by the
    caller): rule 6b's sign. The payee and both outputs are of `SWITCH_TYPES`, neither output
    of the payee's type, `tx`'s fingerprint has locktime 0 and nSequence final, and
    one row of `exchange_habits` (deposit type, hot type, fingerprint[, window]) has the
    payee's type, one output's type and `tx`'s fingerprint, and holds over the whole chain
    (window -1 or no window column) or in `tx`'s window (`window`, per tx; None: no row of
    one window fits)."""
    d = np.asarray(out_type[payee]).astype(np.int64)
    a = np.asarray(out_type[first_out[tx]]).astype(np.int64)
    b = np.asarray(out_type[first_out[tx] + 1]).astype(np.int64)
    known = np.isin(d, SWITCH_TYPES) & np.isin(a, SWITCH_TYPES) & np.isin(b, SWITCH_TYPES)
    fp = np.asarray(tx_fingerprint[tx]).astype(np.int64)
    plain = (fp & (_FP_LOCKTIME | _FP_SEQUENCE)) == 0
    fits = np.zeros(d.shape[0], np.bool_)
    table = np.asarray(exchange_habits, np.int64)
    if table.shape[1] == 3:
        table = np.column_stack([table, np.full(table.shape[0], -1, np.int64)])
    for deposit, hot, print_, w in table.tolist():  # a few rows per exchange
        held = True if w < 0 else (window == w) if window is not None else False
        fits |= (d == deposit) & ((a == hot) | (b == hot)) & (fp == print_) & held
    result: np.ndarray = known & (a != d) & (b != d) & plain & fits
    return result


def payee_fates_summary(fates: list[PayeeFates | None]) -> dict[str, int]:
    """How many of the service's payees (distinct outputs over every chunk) each fate holds:
    for `case.json`, so a reader sees how much of the service's spending the rules explain."""

    def count(name: str) -> int:
        parts = [getattr(f, name) for f in fates if f is not None]
        return int(np.unique(np.concatenate(parts)).shape[0]) if parts else 0

    return {
        "payees_shown_deposits": count("deposit"),
        "payees_forward_unconfirmed": count("ambiguous"),
        "payees_spent_otherwise": count("other"),
    }


def _sweep_payee(tx: np.ndarray, first_out: np.ndarray, ends_out: Any, out_addr: Any) -> np.ndarray:
    """The output of each tx that has an address (a sweep's one payee; OP_RETURNs skipped);
    -1 where none."""
    payee = np.full(tx.shape[0], -1, np.int64)
    if not tx.shape[0]:
        return payee
    width = int((ends_out[tx] - first_out[tx]).max(initial=0))
    for k in range(min(width, 4)):  # a sweep pays one address; OP_RETURNs are few
        o = first_out[tx] + k
        here = (payee < 0) & (o < ends_out[tx])
        here &= out_addr[np.minimum(o, out_addr.shape[0] - 1)] >= 0
        payee = np.where(here, o, payee)
    return payee


def _paid_on_by_payout(
    tx: np.ndarray,
    first_in: np.ndarray,
    ends_in: TxEnds | np.ndarray,
    first_out: np.ndarray,
    ends_out: TxEnds | np.ndarray,
    out_addr: np.ndarray,
    out_value: np.ndarray,
    spent_by: np.ndarray,
    n_txs: int,
    plain_tx: np.ndarray | _Plain,
) -> np.ndarray:
    """Per tx (-1: none): for a one-input tx of exactly two outputs with addresses (`plain_tx`:
    not a sweep or a CoinJoin), the output a payout spends (`PAYOUT_MIN_PAYEES`+ payees, at
    most `PAYOUT_EQUAL_SHARE` of them of one value); -1 where neither or both are. Reads only
    the few payouts reached, not the whole chain."""
    t = np.asarray(tx, np.int64)
    out = np.full(t.shape[0], -1, np.int64)
    t0 = np.maximum(t, 0)
    ok = (t >= 0) & plain_tx[t0] & (ends_in[t0] - first_in[t0] == 1)
    ok &= ends_out[t0] - first_out[t0] == 2
    pair = np.stack([first_out[t0], first_out[t0] + 1], axis=1)
    n_outputs = out_addr.shape[0]
    pair = np.minimum(pair, n_outputs - 1)
    ok &= (out_addr[pair] >= 0).all(axis=1)
    raw = np.asarray(spent_by[pair]).astype(np.int64)
    spender = np.where((raw == int(NONE32)) | (raw < 0) | (raw >= n_txs), -1, raw)
    spender[~ok] = -1
    payouts = np.unique(spender[spender >= 0])
    is_payout = np.zeros(payouts.shape[0], np.bool_)
    if payouts.shape[0]:
        width = ends_out[payouts] - first_out[payouts]
        owner = np.repeat(np.arange(payouts.shape[0]), width)
        o = np.repeat(first_out[payouts] - np.cumsum(width) + width, width) + np.arange(
            int(width.sum())
        )
        payable = (out_addr[o] >= 0) & (out_value[o] > 0)
        n_payees = np.bincount(owner[payable], minlength=payouts.shape[0])
        # the most payees of one value in each payout: runs of equal (payout, value)
        order = np.lexsort((out_value[o][payable], owner[payable]))
        k, v = owner[payable][order], out_value[o][payable][order]
        run = np.ones(k.shape[0], np.bool_)
        run[1:] = (k[1:] != k[:-1]) | (v[1:] != v[:-1])
        starts = np.flatnonzero(run)
        most = np.zeros(payouts.shape[0], np.int64)
        np.maximum.at(most, k[starts], np.diff(np.append(starts, k.shape[0])))
        is_payout = (n_payees >= PAYOUT_MIN_PAYEES) & (most <= PAYOUT_EQUAL_SHARE * n_payees)
    hit = spender >= 0
    hit[hit] = is_payout[np.searchsorted(payouts, spender[hit])]
    one = hit.sum(axis=1) == 1
    out[one] = np.where(hit[one, 0], pair[one, 0], pair[one, 1])
    return out
