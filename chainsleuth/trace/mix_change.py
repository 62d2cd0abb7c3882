"""A CoinJoin's unmixed change, linked to the one input that paid it (issue 11, leads).

Why: a CoinJoin ends a backward walk (`trace.kernels`, kind "coinjoin"), because its equal
outputs cannot be told apart. Its *change* can: a participant of a Wasabi-1-style round (or a
JoinMarket taker) puts in coins, takes one or more outputs of the round's denominations and
gets the rest back, less the fees, as one output of a value nobody else has. When exactly one
input's value is that change plus a mixed amount plus a small fee, the change is that input
owner's money and did not mix: a walk from a deposit paid with it may go on through that one
input (Möser & Narayanan's "unmixed change" is the textbook case of a CoinJoin that breaks no
trail). Everything else about the CoinJoin stays a stop: the mixed outputs, and any change
whose input is ambiguous (no input fits, or two do: a participant with several inputs, or a
coincidence), and any fit whose fee fewer than two other participants' fees in the round
agree with. Such a change is still linked through the one of its fits whose fee, in sat,
another change's fit repeats exactly (`TWIN_SAT`): one-input participants of one level pay the
round's very same fee.

Who calls it: `cases.investigate.prepare_case` (the leads' backward trace only; the kernel
reads the pairs, `trace.kernels.trace_kernel`'s `link_output` / `link_input`).

The rule reads amounts only: no script type, no timing. Cost: one numba pass over the flagged
CoinJoins' inputs and outputs (scratch: 32 B per (change, input) pair of the largest round,
reused) and 16 B per link.

    >>> outs, ins = mix_change_links(tx_first_input, tx_first_output, input_spent_output,
    ...                              output_value, is_coinjoin)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "MAX_DENOMINATIONS",
    "MIN_FITS",
    "MIX_FEE_SHARE",
    "MIX_FEE_SPREAD",
    "TWIN_SAT",
    "mix_change_links",
]

#: The most a participant pays in fees (coordinator and mining) as a share of what it mixed:
#: Wasabi 1.x took 0.003% per anonymity-set member (0.3% at 100) plus the mining fee of its
#: inputs and outputs; a JoinMarket taker pays its makers' fees (typically well under 0.1%
#: each) and the mining fee. 1% covers them; a wider window admits coincidences.
MIX_FEE_SHARE = 0.01
#: How far two participants' fees (as shares of what each mixed) may differ and still be the
#: round's one fee: the coordinator's rate is the round's, the mining fee differs by the
#: inputs' sizes (0.05% of 0.1 BTC is 5,000 sat: 80 vbytes, a P2PKH input against a P2WPKH
#: one, at ~60 sat/vB).
MIX_FEE_SPREAD = 0.0005
#: Fits whose fees agree (itself included) before a change is linked: a fit that no other
#: fit of its round agrees with is as likely a coincidence (any input within the 1% window).
#: 3, not 2: with 2, 1 link in 16-28 joined two owners on the hard medium worlds (big rounds
#: of multi-input participants give coincidences a partner), with 3 1 in 30-45, for a tenth
#: fewer links (docs/investigations.md "CoinJoin change walked back to its input").
MIN_FITS = 3
#: Mixed amounts tried per CoinJoin: each denomination (a value two or more outputs share) and
#: each sum of two of them (a participant mixing at two levels). A round with more distinct
#: denominations than this is left alone (not the shapes this rule knows).
MAX_DENOMINATIONS = 8
#: Two fits' fees (in sat) this close are one fee: participants of a round with the same
#: level and inputs pay the same coordinator and mining fee (a fee rate times a size, rounded
#: up once). A change another input also fits, or whose fee too few fits agree with by
#: `MIX_FEE_SPREAD`, is linked through the one fit whose fee another change's fit (on another
#: input) repeats; -1 turns this off (docs/accuracy-log.md "Wasabi change that held its trail").
TWIN_SAT = 0


@njit(cache=True, nogil=True)
def _links(tx_ids, tx_first_input, tx_first_output, input_spent_output, output_value, fee_share,
           fee_spread, min_fits, max_denoms, twin_sat):  # fmt: skip
    n_txs = tx_first_output.shape[0]
    n_inputs = input_spent_output.shape[0]
    n_outputs = output_value.shape[0]
    cap = 16
    l_out = np.empty(cap, np.int64)
    l_in = np.empty(cap, np.int64)
    n = 0
    # each round's fits, 32 B a fit: room for every (change, input) pair of the largest round
    # so far, reused round to round
    f_o = np.empty(64, np.int64)
    f_i = np.empty(64, np.int64)
    f_s = np.empty(64)
    f_r = np.empty(64, np.int64)
    for t in tx_ids:
        o_lo = tx_first_output[t]
        o_hi = tx_first_output[t + 1] if t + 1 < n_txs else n_outputs
        i_lo = tx_first_input[t]
        i_hi = tx_first_input[t + 1] if t + 1 < n_txs else n_inputs
        if o_hi - o_lo < 3 or i_hi - i_lo < 2:
            continue
        vals = np.sort(output_value[o_lo:o_hi])
        # denominations: values two or more outputs share
        denoms = np.empty(max_denoms, np.int64)
        nd = 0
        too_many = False
        j = 0
        while j < vals.shape[0]:
            k = j
            while k + 1 < vals.shape[0] and vals[k + 1] == vals[j]:
                k += 1
            if k > j and vals[j] > 0:
                if nd == max_denoms:
                    too_many = True
                    break
                denoms[nd] = vals[j]
                nd += 1
            j = k + 1
        if nd == 0 or too_many:
            continue
        # mixed amounts: each denomination and each sum of two different ones
        sums = np.empty(nd + nd * (nd - 1) // 2, np.int64)
        ns = 0
        for a in range(nd):
            sums[ns] = denoms[a]
            ns += 1
            for b in range(a + 1, nd):
                sums[ns] = denoms[a] + denoms[b]
                ns += 1
        n_in = i_hi - i_lo
        in_val = np.empty(n_in, np.int64)
        for i in range(n_in):
            s = input_spent_output[i_lo + i]
            in_val[i] = output_value[s] if s >= 0 else -1
        # each change candidate (a value no other output has): every input it fits, and the
        # fit's fee (in sat, and as a share of the mixed amount)
        m = o_hi - o_lo
        out_val = output_value[o_lo:o_hi]
        is_change = np.zeros(m, np.bool_)
        n_cand = 0
        for k in range(m):
            same = 0
            for p in range(m):
                same += out_val[p] == out_val[k]
            if same == 1:
                is_change[k] = True
                n_cand += 1
        if n_cand == 0:
            continue
        if f_o.shape[0] < n_cand * n_in:
            # room for every pair: a round's fits never outgrow it mid-round
            f_o = np.empty(n_cand * n_in, np.int64)
            f_i = np.empty(n_cand * n_in, np.int64)
            f_s = np.empty(n_cand * n_in)
            f_r = np.empty(n_cand * n_in, np.int64)
        nf = 0
        for o in range(o_lo, o_hi):
            if not is_change[o - o_lo]:
                continue
            c = output_value[o]
            for i in range(n_in):
                v = in_val[i]
                for q in range(ns):
                    r = v - c - sums[q]
                    if 0 <= r <= fee_share * sums[q]:
                        f_o[nf] = o - o_lo
                        f_i[nf] = i
                        f_s[nf] = r / sums[q]
                        f_r[nf] = r
                        nf += 1
                        break
        # the round's fee: one coordinator fee rate for all, and a mining fee that differs by
        # the inputs' sizes only, so two participants' fees (as shares of what they mixed)
        # agree; a change with one fit is kept when the one fits of at least `min_fits - 1`
        # other changes agree with its fee (a fit that none agree with is a coincidence: any
        # input within the 1% window). Else (several fits, or too few agreeing), a fit is kept
        # when another change's fit, on another input, paid the very same fee to within
        # `twin_sat`: participants of one level with inputs of one count and type pay the
        # same coordinator fee and the same mining fee (Wasabi 1.x charges both per
        # participant from the round's rates), so equal fees are the round's own, and a
        # coincidence lands on one exact value of a ~100,000 sat window rarely
        if nf == 0:  # no change fits any input (a Whirlpool mix has no change at all)
            continue
        n_fits = np.zeros(m, np.int64)
        for a in range(nf):
            n_fits[f_o[a]] += 1
        # one change per input: an input two changes' one fits share tells neither apart
        used_one = np.zeros(n_in, np.int64)
        for a in range(nf):
            if n_fits[f_o[a]] == 1:
                used_one[f_i[a]] += 1
        kept = np.zeros(m, np.int64)
        pick = np.full(m, -1, np.int64)
        # the one fits of changes that have one, sorted by fee share: the fits within
        # `fee_spread` of one are a window found by two binary searches (no fits x fits)
        one = np.empty(nf, np.int64)
        n_one = 0
        for a in range(nf):
            if n_fits[f_o[a]] == 1 and used_one[f_i[a]] == 1:
                one[n_one] = a
                n_one += 1
        one = one[:n_one]
        one_s = f_s[one]
        order = np.argsort(one_s)
        one = one[order]
        one_s = one_s[order]
        lo_at = np.searchsorted(one_s, one_s - fee_spread, side="left")
        hi_at = np.searchsorted(one_s, one_s + fee_spread, side="right")
        for k in range(n_one):
            # itself included: the window holds it
            if hi_at[k] - lo_at[k] >= min_fits:
                a = one[k]
                kept[f_o[a]] = 1
                pick[f_o[a]] = f_i[a]
        if twin_sat >= 0:
            n_twin = np.zeros(m, np.int64)
            twin_pick = np.full(m, -1, np.int64)
            # all fits sorted by fee in sat: a fit's twins are its neighbours within twin_sat
            by_r = np.argsort(f_r[:nf], kind="mergesort")
            r_sorted = f_r[by_r]
            for k in range(nf):
                a = by_r[k]
                if kept[f_o[a]] == 1:
                    continue
                j = np.searchsorted(r_sorted, r_sorted[k] - twin_sat, side="left")
                while j < nf and r_sorted[j] <= r_sorted[k] + twin_sat:
                    b = by_r[j]
                    if f_o[b] != f_o[a] and f_i[b] != f_i[a]:
                        n_twin[f_o[a]] += 1
                        twin_pick[f_o[a]] = f_i[a]
                        break
                    j += 1
            for k in range(m):
                if kept[k] == 0 and n_twin[k] == 1:
                    kept[k] = 1
                    pick[k] = twin_pick[k]
        used = np.zeros(n_in, np.int64)
        for k in range(m):
            if kept[k] == 1:
                used[pick[k]] += 1
        for k in range(m):
            if kept[k] == 1 and used[pick[k]] == 1:
                if n == cap:
                    cap *= 2
                    l_out2 = np.empty(cap, np.int64)
                    l_in2 = np.empty(cap, np.int64)
                    l_out2[:n] = l_out[:n]
                    l_in2[:n] = l_in[:n]
                    l_out = l_out2
                    l_in = l_in2
                l_out[n] = o_lo + k
                l_in[n] = i_lo + pick[k]
                n += 1
    return l_out[:n], l_in[:n]


def mix_change_links(
    tx_first_input: np.ndarray,
    tx_first_output: np.ndarray,
    input_spent_output: np.ndarray,
    output_value: np.ndarray,
    is_coinjoin: np.ndarray,
    fee_share: float = MIX_FEE_SHARE,
    fee_spread: float = MIX_FEE_SPREAD,
    min_fits: int = MIN_FITS,
    twin_sat: int = TWIN_SAT,
) -> tuple[np.ndarray, np.ndarray]:
    """(change output ids, sorted; the input id each one's value came from) of the CoinJoins
    flagged in `is_coinjoin` (bool per tx): a change output (a value no other output of its
    CoinJoin has) is linked when exactly one input's value is the change plus one mixed
    amount (a denomination, or two different ones) plus at most `fee_share` of that amount,
    no other change fits that input, and at least `min_fits` such fits of the round (itself
    included) have fees within `fee_spread` of its own (module docstring)."""
    tx_ids = np.flatnonzero(np.asarray(is_coinjoin, np.bool_)).astype(np.int64)
    outs, ins = _links(
        tx_ids,
        np.asarray(tx_first_input),
        np.asarray(tx_first_output),
        np.asarray(input_spent_output),
        np.asarray(output_value),
        float(fee_share),
        float(fee_spread),
        int(min_fits),
        MAX_DENOMINATIONS,
        int(twin_sat),
    )
    order = np.argsort(outs, kind="stable")
    return outs[order], ins[order]
