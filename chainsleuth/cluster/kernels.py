"""Numba kernels of the clusterer: per-transaction rule votes, and the union-find that merges.

`analyze_txs` looks at each transaction once (its inputs' spent outputs and its outputs, all
from the store's memory-mapped arrays) and records which CoinJoin rule matched and which output
each change rule points at. `apply_merges` then walks the transactions in chain order and
unions address ids under a policy, recording every union with its transaction and rule (the
evidence `explain` reads) and quarantining merges that would create a super-cluster.

Only information available at a transaction's own position in the chain is used, so clustering
the chain in pieces (incrementally) gives exactly the clusters of one pass from scratch.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from chainsleuth.cluster.rules import BY_NAME, CHANGE_BITS
from chainsleuth.core.script_types import ScriptType
from chainsleuth.store.layout import NONE32

# Plain ints derived from their one owner (numba compiles module-level ints in as constants).
NONE = int(NONE32)
ST_OP_RETURN = int(ScriptType.OP_RETURN)

CJ_WHIRLPOOL = BY_NAME["whirlpool"].code
CJ_WASABI1 = BY_NAME["wasabi1"].code
CJ_WABISABI = BY_NAME["wabisabi"].code
CJ_JOINMARKET = BY_NAME["joinmarket"].code
CJ_EQUAL_OUTPUT = BY_NAME["equal_output"].code

BIT_FRESH = CHANGE_BITS["fresh_address"]
BIT_SCRIPT = CHANGE_BITS["script_type"]
BIT_ROUND = CHANGE_BITS["round_amount"]
BIT_OPTIMAL = CHANGE_BITS["optimal_change"]

RULE_MULTI_INPUT = BY_NAME["multi_input"].code
# Evidence codes of a merge, not rule registry codes: change merges carry their vote mask.
RULE_CHANGE = 2  # evidence rule code for change merges; the vote mask says which rules
RULE_LEARNED = 3  # evidence rule code for learned_change merges (vote mask BIT_LEARNED)
BIT_LEARNED = CHANGE_BITS["learned_change"]

Q_LARGE_CONFLICT = 1
Q_GROWTH = 2


@njit(cache=True, nogil=True)
def fresh_outputs(out_address, first_output, initial_max, fresh):
    """fresh[o - first_output] = output o pays an address never seen in an earlier output.

    Address ids are assigned in order of first appearance, so an output is the first to pay its
    address exactly when its id exceeds every id before it.
    """
    running = np.int64(initial_max)
    for k in range(fresh.shape[0]):
        a = out_address[first_output + k]
        if a == NONE:
            fresh[k] = False
            continue
        a64 = np.int64(a)
        if a64 > running:
            fresh[k] = True
            running = a64
        else:
            fresh[k] = False
    return running


@njit(cache=True, nogil=True)
def max_address_paid(out_address, o0, o1, initial_max):
    """The highest address id paid by outputs [o0, o1), or `initial_max` if higher: what
    `fresh_outputs` returns, without its flags (multi-input alone reads none)."""
    running = np.int64(initial_max)
    for o in range(o0, o1):
        a = out_address[o]
        if a != NONE and np.int64(a) > running:
            running = np.int64(a)
    return running


@njit(cache=True, nogil=True)
def _sort_prefix(buf, n):
    """Sort buf[:n] in place. Short runs (most txs) by insertion: numba's array sort allocates
    its work stack on every call, which costs more than sorting a handful of values."""
    if n > 32:
        buf[:n].sort()
        return
    for i in range(1, n):
        v = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > v:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v


@njit(cache=True, nogil=True)
def _mode_sorted(s):
    """(most common value, its count) of a sorted array; (0, 0) when empty."""
    n = s.shape[0]
    if n == 0:
        return 0, 0
    best_v = s[0]
    best_c = 1
    run = 1
    for k in range(1, n):
        if s[k] == s[k - 1]:
            run += 1
        else:
            run = 1
        if run > best_c:
            best_c = run
            best_v = s[k]
    return best_v, best_c


@njit(cache=True, nogil=True)
def _repeated_sorted(s):
    """How many values of a sorted array occur at least twice."""
    n = s.shape[0]
    count = 0
    for k in range(n):
        if (k > 0 and s[k] == s[k - 1]) or (k + 1 < n and s[k] == s[k + 1]):
            count += 1
    return count


@njit(cache=True, nogil=True)
def _distinct_sorted(s):
    if s.shape[0] == 0:
        return 0
    d = 1
    for k in range(1, s.shape[0]):
        if s[k] != s[k - 1]:
            d += 1
    return d


# Script types a WabiSabi (Wasabi 2) coordinator registers: its clients spend and receive
# P2WPKH and P2TR coins only (legacy and P2SH inputs are refused), so a multi-denomination round
# is made of these two types. Bit masks over `ScriptType` values.
P2WPKH_BIT = 1 << int(ScriptType.P2WPKH)
WABISABI_TYPES = P2WPKH_BIT | (1 << int(ScriptType.P2TR))


@njit(cache=True, nogil=True)
def _one_look(types):
    """Do the outputs of one value (bit mask of their script types) look alike, as the mixed
    outputs of a CoinJoin must? One script type, or P2WPKH and P2TR (WabiSabi registers both
    in one denomination); an output of another type in the group would tell its owner apart."""
    return types & (types - 1) == 0 or types & ~WABISABI_TYPES == 0


@njit(cache=True, nogil=True)
def coinjoin_shaped(
    n_pay,
    mode_c,
    repeated,
    distinct_in,
    mode_types=P2WPKH_BIT,
    repeated_types=P2WPKH_BIT,
    in_types=P2WPKH_BIT,
):
    """Does a tx with `mode_c` equal outputs look like many owners mixing, not like one
    exchange's batch that pays a few customers the same round amount? (the generic
    `equal_output` rule's shape test, issue 11)

    In a CoinJoin every participant brings at least one input and takes at most a mixed
    output and a change, so the payees are at most about two per distinct input address
    (BlockSci's `isCoinjoin`: (outputs + 1) / 2 participants, no more than the distinct
    input addresses). And the participants are about as many as the equal outputs, so a
    single-denomination CoinJoin has at least a quarter as many equal outputs as distinct
    input addresses (a participant rarely brings more than four coins). A multi-denomination
    one (WabiSabi-like, under the `wabisabi` rule's 50 inputs) has most of its payees sharing
    a value with another, and about as many payees as inputs: each participant's amount is
    split into several standard denominations, so the payees are at least half the distinct
    inputs and at most twice. An exchange's batch spends one or a few hot coins into tens of
    payees of distinct values, a few of them one round amount.

    Script types (bit masks over `ScriptType`: `mode_types` of the outputs of the most common
    value, `repeated_types` of every output whose value another shares, `in_types` of the
    inputs; the defaults are all P2WPKH, the shape alone). A CoinJoin's equal outputs must
    look alike, or the type tells their owners apart: they share one script type (Whirlpool,
    Wasabi 1 and JoinMarket rounds are one type; WabiSabi mixes P2WPKH and P2TR), while the
    customers an exchange pays the same amount bring whatever addresses they have. And the
    multi-denomination branch stands for WabiSabi, whose coordinator takes only P2WPKH and
    P2TR inputs and outputs: a legacy or P2SH input, or a shared value paid to another type,
    is no WabiSabi round. On the 30 cached worlds of the accuracy matrix the rule flagged
    131 exchange batches and no CoinJoin with the counts alone, 5 with the script types (3
    customers of one type paid one amount); every Whirlpool, Wasabi and JoinMarket round is
    caught by its own rule first, and the real ones in the shared mainnet blocks pass this
    test too (docs/clustering.md, "Exchange batches told from CoinJoins by script types").
    """
    if n_pay > 2 * distinct_in + 1:
        return False
    if not _one_look(mode_types):
        return False
    if 4 * mode_c >= distinct_in:
        return True
    if in_types & ~WABISABI_TYPES != 0 or repeated_types & ~WABISABI_TYPES != 0:
        return False
    return 2 * repeated >= n_pay and 2 * distinct_in >= n_pay and 2 * n_pay >= distinct_in


@njit(cache=True, nogil=True)
def _input_types(in_spent_output, out_script_type, fi, n_in):
    """Bit mask of the script types of the coins a tx spends (its inputs from `fi`)."""
    mask = 0
    for i in range(n_in):
        mask |= 1 << np.int64(out_script_type[in_spent_output[fi + i]])
    return mask


@njit(cache=True, nogil=True)
def _value_group_types(keys, n, mode_v):
    """(script types of the outputs paying `mode_v`, of the outputs whose value another
    shares) as bit masks, and how many of the latter are of a type a Wasabi coordinator does
    not register (neither P2WPKH nor P2TR), from keys[:n] = value * 16 + script type (sorted
    here in place)."""
    _sort_prefix(keys, n)
    mode_types = 0
    repeated_types = 0
    foreign = 0
    k = 0
    while k < n:
        v = keys[k] >> 4
        e = k
        types = 0
        other = 0
        while e < n and keys[e] >> 4 == v:
            types |= 1 << (keys[e] & 15)
            if (1 << (keys[e] & 15)) & ~WABISABI_TYPES != 0:
                other += 1
            e += 1
        if e - k >= 2:
            repeated_types |= types
            foreign += other
        if v == mode_v:
            mode_types |= types
        k = e
    return mode_types, repeated_types, foreign


@njit(cache=True, nogil=True)
def _wasabi_denominations(pay_values, pay, out_script_type, fo, keys, repeated):
    """Could the outputs that share a value be a Wasabi round's denominations? A coordinator
    registers its standard denominations to its clients' own fresh P2WPKH or P2TR addresses
    (Wasabi 1.x P2WPKH only); an address of another type can only be a client's payment,
    paid from the round, whose amount rarely equals a denomination. So no more than a quarter
    of the value-sharing outputs may be of another type: an exchange's batch pays its
    customers of every type (at least 55 % of the shared-value outputs of the 140 batches the
    Wasabi rules flagged on hard and realistic large 1 are P2PKH, P2SH or P2WSH; 0 of the
    2,009 Wasabi 1.x rounds' are). `pay` holds the payment outputs' positions from `fo`,
    `keys` is scratch space, `repeated` counts the outputs whose value another shares."""
    n = pay.shape[0]
    for q in range(n):
        keys[q] = pay_values[q] * 16 + out_script_type[fo + pay[q]]
    foreign = _value_group_types(keys, n, -1)[2]
    return 4 * foreign <= repeated


@njit(cache=True, nogil=True)
def analyze_txs(
    t0,
    t1,
    tx_first_input,
    tx_first_output,
    n_inputs_total,
    n_outputs_total,
    in_spent_output,
    in_address,
    out_value,
    out_address,
    out_script_type,
    fresh,
    fresh_base,
    coinjoin,
    payjoin,
    vote_fresh,
    vote_script,
    vote_round,
    vote_optimal,
    want_votes=True,
):
    """Per tx in [t0, t1): CoinJoin rule code (0 none), PayJoin suspicion, change votes.

    Votes are global output ids (-1 when the rule does not fire). `fresh[o - fresh_base]`.
    """
    n_tx = tx_first_input.shape[0]
    # Scratch space sized for the largest transaction, reused (no allocation per transaction).
    widest = 1
    for t in range(t0, t1):
        fi2 = tx_first_input[t + 1] if t + 1 < n_tx else n_inputs_total
        fo2 = tx_first_output[t + 1] if t + 1 < n_tx else n_outputs_total
        widest = max(widest, fi2 - tx_first_input[t], fo2 - tx_first_output[t])
    in_values_buf = np.empty(widest, np.int64)
    in_addrs_buf = np.empty(widest, np.int64)
    in_types_buf = np.empty(widest, np.int64)
    pay_buf = np.empty(widest, np.int64)
    pay_values_buf = np.empty(widest, np.int64)
    sorted_buf = np.empty(widest, np.int64)
    key_buf = np.empty(widest, np.int64)
    for t in range(t0, t1):
        k = t - t0
        coinjoin[k] = 0
        payjoin[k] = False
        if want_votes:  # else the vote arrays are not read (and may be empty)
            vote_fresh[k] = -1
            vote_script[k] = -1
            vote_round[k] = -1
            vote_optimal[k] = -1
        fi = tx_first_input[t]
        fi2 = tx_first_input[t + 1] if t + 1 < n_tx else n_inputs_total
        fo = tx_first_output[t]
        fo2 = tx_first_output[t + 1] if t + 1 < n_tx else n_outputs_total
        n_in = fi2 - fi
        if n_in == 0 or in_spent_output[fi] < 0:
            continue  # coinbase
        if not want_votes and (n_in < 3 or fo2 - fo < 3):
            # Every CoinJoin rule needs 3+ inputs and 3+ payment outputs, and multi-input
            # alone wants nothing else: most txs are settled without reading their rows.
            continue
        in_values = in_values_buf[:n_in]
        in_addrs = in_addrs_buf[:n_in]
        in_types = in_types_buf[:n_in]
        for i in range(n_in):
            in_addrs[i] = np.int64(in_address[fi + i])  # sequential: the store keeps them
            if want_votes:  # random reads cost most here: skip what multi-input does not use
                o = in_spent_output[fi + i]
                in_values[i] = out_value[o]
                in_types[i] = out_script_type[o]
        n_out = fo2 - fo
        # Outputs that can be payments: value > 0 and not OP_RETURN.
        n_pay = 0
        for j in range(n_out):
            if out_value[fo + j] > 0 and out_script_type[fo + j] != ST_OP_RETURN:
                pay_buf[n_pay] = j
                pay_values_buf[n_pay] = out_value[fo + j]
                n_pay += 1
        pay = pay_buf[:n_pay]
        pay_values = pay_values_buf[:n_pay]
        mode_v, mode_c, distinct_in, repeated = 0, 0, n_in, 0
        if n_pay >= 3 and n_in >= 3:  # every CoinJoin rule needs 3+ equal outputs and inputs
            for q in range(n_pay):
                sorted_buf[q] = pay_values_buf[q]
            _sort_prefix(sorted_buf, n_pay)
            ordered = sorted_buf[:n_pay]
            mode_v, mode_c = _mode_sorted(ordered)
            repeated = _repeated_sorted(ordered)
            if mode_c >= 3:  # distinct inputs only matter to the rules that need 3+ equal
                for i in range(n_in):
                    sorted_buf[i] = in_addrs_buf[i]
                _sort_prefix(sorted_buf, n_in)
                distinct_in = _distinct_sorted(sorted_buf[:n_in])

        # CoinJoin rules, most specific first.
        code = 0
        if (
            mode_c == n_pay
            and n_pay >= 5
            and n_pay <= 8
            and n_in == n_pay
            and (
                mode_v == 100_000
                or mode_v == 1_000_000
                or mode_v == 5_000_000
                or mode_v == 50_000_000
            )
        ):
            code = CJ_WHIRLPOOL
        # Wasabi's coordinators take only segwit key-hash and taproot coins (Wasabi 1.x
        # P2WPKH, WabiSabi also P2TR): a legacy or P2SH input is an exchange's batch, and
        # so are denominations paid to customers of every address type (issue 11).
        elif (
            mode_c >= 10
            and n_in >= mode_c
            and 9_000_000 <= mode_v <= 12_000_000
            and _input_types(in_spent_output, out_script_type, fi, n_in) & ~WABISABI_TYPES == 0
            and _wasabi_denominations(pay_values, pay, out_script_type, fo, key_buf, repeated)
        ):
            code = CJ_WASABI1
        elif (
            n_in >= 50
            and n_pay >= 50
            and repeated * 2 >= n_pay
            and _input_types(in_spent_output, out_script_type, fi, n_in) & ~WABISABI_TYPES == 0
            and _wasabi_denominations(pay_values, pay, out_script_type, fo, key_buf, repeated)
        ):
            code = CJ_WABISABI
        elif mode_c >= 3 and n_pay <= 2 * mode_c + 1 and distinct_in >= mode_c:
            code = CJ_JOINMARKET
        elif mode_c >= 3 and distinct_in >= mode_c and n_in >= 3:
            # The script types the shape test reads: rare txs come here, so read them now.
            for q in range(n_pay):
                key_buf[q] = pay_values[q] * 16 + out_script_type[fo + pay[q]]
            mode_types, repeated_types, _ = _value_group_types(key_buf, n_pay, mode_v)
            in_types_mask = _input_types(in_spent_output, out_script_type, fi, n_in)
            if coinjoin_shaped(
                n_pay, mode_c, repeated, distinct_in, mode_types, repeated_types, in_types_mask
            ):
                code = CJ_EQUAL_OUTPUT
        coinjoin[k] = code
        if code != 0:
            continue

        if not want_votes:
            continue
        min_in = in_values.min()
        max_in = in_values.max()
        if n_in == 2 and n_pay == 2:
            big = max(pay_values[0], pay_values[1])
            if big > max_in and in_types[0] == in_types[1]:
                payjoin[k] = True

        if n_pay < 2:
            continue
        # Change votes: each rule must single out exactly one output.
        n_fresh = 0
        fresh_j = -1
        same_type = True
        for i in range(1, n_in):
            if in_types[i] != in_types[0]:
                same_type = False
        n_type = 0
        type_j = -1
        n_round = 0
        notround_j = -1
        n_small = 0
        small_j = -1
        for q in range(n_pay):
            j = pay[q]
            o = fo + j
            if out_address[o] == NONE:
                continue
            if fresh[o - fresh_base]:
                n_fresh += 1
                fresh_j = o
            if same_type and out_script_type[o] == in_types[0]:
                n_type += 1
                type_j = o
            if out_value[o] % 10_000 == 0:
                n_round += 1
            else:
                notround_j = o
            if out_value[o] < min_in:
                n_small += 1
                small_j = o
        if n_fresh == 1:
            vote_fresh[k] = fresh_j
        if same_type and n_type == 1:
            vote_script[k] = type_j
        if n_pay == 2 and n_round == 1 and notround_j >= 0:
            vote_round[k] = notround_j
        if n_in >= 2 and n_small == 1:
            vote_optimal[k] = small_j


@njit(cache=True, nogil=True)
def choose_change(k, votes, rule, out_address, fresh, fresh_base, hot):
    """(output merged as change or -1, mask of the rules that voted for it) for tx k.

    `votes` is the four change rules' picks per tx (vote_fresh, vote_script, vote_round,
    vote_optimal: an output id or -1, `CHANGE_BITS` order); `rule` is the policy's
    (change_mask, veto_mask, required_mask, any_mask, min_votes, hot_mask), as
    `Policy.change_rule()` gives it. Two tuples, so that every caller passes one policy and one
    set of votes rather than spelling out fifteen arguments.

    Rules in `change_mask` vote; rules in `veto_mask` only block: a merge needs every firing
    rule of either mask to point at the same output, `min_votes` votes, the `required_mask`
    rules among them, one of the `any_mask` rules (when not 0), and a change address never seen
    before (the reused_address veto). When another output pays a service's spending address
    (`hot[k]` > 0: an address that already paid a batch), one of the `hot_mask` rules must vote
    too (when not 0): the spender may be that service, its change the reused address.
    """
    vote_fresh, vote_script, vote_round, vote_optimal = votes
    change_mask, veto_mask, required_mask, any_mask, min_votes, hot_mask = rule
    target = np.int64(-1)
    agree = True
    votes = 0
    n_votes = 0
    for bit in (BIT_FRESH, BIT_SCRIPT, BIT_ROUND, BIT_OPTIMAL):
        if not ((change_mask | veto_mask) & bit):
            continue
        if bit == BIT_FRESH:
            v = vote_fresh[k]
        elif bit == BIT_SCRIPT:
            v = vote_script[k]
        elif bit == BIT_ROUND:
            v = vote_round[k]
        else:
            v = vote_optimal[k]
        if v < 0:
            continue
        if target < 0:
            target = v
        elif v != target:
            agree = False
        if change_mask & bit:
            votes |= bit
            n_votes += 1
    if (
        target >= 0
        and agree
        and n_votes >= min_votes
        and (votes & required_mask) == required_mask
        and (any_mask == 0 or (votes & any_mask) != 0)
        and (hot_mask == 0 or hot[k] == 0 or (votes & hot_mask) != 0)
        and out_address[target] != NONE
        and fresh[target - fresh_base]
    ):
        return target, votes
    return np.int64(-1), 0


@njit(cache=True, nogil=True)
def hot_outputs(
    t0,
    t1,
    tx_first_input,
    tx_first_output,
    n_inputs_total,
    n_outputs_total,
    in_address,
    out_address,
    coinjoin,
    batch_spent,
    hot,
):
    """hot[k]: outputs of tx t0 + k paying an address that spent in a batch before it.

    A batch is a transaction with three or more outputs that is not a CoinJoin; the addresses
    spending in one are a service's spending (hot) addresses. `batch_spent` (one bool per
    address) holds what txs before t0 did and is updated with [t0, t1).
    """
    n_tx = tx_first_input.shape[0]
    for t in range(t0, t1):
        k = t - t0
        fi = tx_first_input[t]
        fi2 = tx_first_input[t + 1] if t + 1 < n_tx else n_inputs_total
        fo = tx_first_output[t]
        fo2 = tx_first_output[t + 1] if t + 1 < n_tx else n_outputs_total
        c = 0
        for o in range(fo, fo2):
            a = out_address[o]
            if a != NONE and batch_spent[a]:
                c += 1
        hot[k] = c
        if coinjoin[k] == 0 and fo2 - fo >= 3:
            for i in range(fi, fi2):
                a = in_address[i]
                if a != NONE:
                    batch_spent[a] = True


@njit(cache=True, nogil=True)
def find(parent, x):
    """Root of x, halving the path as it goes."""
    x = np.int64(x)
    while True:
        p = np.int64(parent[x])
        if p == x:
            return x
        gp = np.int64(parent[p])
        if gp == p:  # x hangs off the root: nothing to halve (and no write)
            return p
        parent[x] = np.uint32(gp)
        x = gp


@njit(cache=True, nogil=True)
def root(parent, x):
    """Root of x without writing (safe while other threads link or halve)."""
    x = np.int64(x)
    p = np.int64(parent[x])
    while p != x:
        x = p
        p = np.int64(parent[x])
    return x


@njit(cache=True, nogil=True)
def union_edges(edge_a, edge_b, parent, lo=0, hi=-1):
    """Union-find over the edges [lo, hi) of an edge list (all of them by default): each
    edge joins its two addresses' clusters, the larger root id linked under the smaller, so a
    cluster's id is its smallest address id (as in `apply_merges`) and `parent[x] <= x` holds
    throughout (`publish.flatten` relies on it). Path halving; returns the unions made.

    The same union-find as `apply_merges` without its guard, sizes and evidence: the kernel
    measured against scipy's connected components on the same edge list (bench/cluster_bench).
    """
    if hi < 0:
        hi = edge_a.shape[0]
    n = 0
    for i in range(lo, hi):
        ra = find(parent, edge_a[i])
        rb = find(parent, edge_b[i])
        if ra == rb:
            continue
        if ra < rb:
            parent[rb] = np.uint32(ra)
        else:
            parent[ra] = np.uint32(rb)
        n += 1
    return n


@njit(cache=True, nogil=True)
def link_edges_unlocked(edge_a, edge_b, parent, lo, hi):
    """`union_edges` on edges [lo, hi) while other threads do the same on other edges of the
    list, without locks (numba has no compare-and-swap): two threads can link the same root
    at once, and one of the links is lost, leaving an edge unjoined (`count_unjoined` finds
    those). Every write still keeps `parent[x] <= x` and points x at an address of its own
    component, so nothing wrong is ever joined. Returns the links written: when as many roots
    are gone, no link was lost (each lost one leaves a root that was counted gone)."""
    links = 0
    for i in range(lo, hi):
        ra = find(parent, edge_a[i])
        rb = find(parent, edge_b[i])
        while ra != rb:
            small = ra if ra < rb else rb
            big = rb if ra < rb else ra
            if np.int64(parent[big]) == big:
                parent[big] = np.uint32(small)
                links += 1
                break
            # big was linked by another thread since it was found: go on from the new roots
            ra = find(parent, small)
            rb = find(parent, big)
    return links


@njit(cache=True, nogil=True)
def count_roots(parent, lo, hi):
    """Addresses in [lo, hi) that are their cluster's root."""
    n = 0
    for x in range(lo, hi):
        if np.int64(parent[x]) == x:
            n += 1
    return n


@njit(cache=True, nogil=True)
def count_unjoined(edge_a, edge_b, parent, cuts, bad, c0, c1):
    """bad[c] for the pieces c in [c0, c1): the edges of piece [cuts[c], cuts[c + 1]) whose
    addresses have different roots (reads only)."""
    for c in range(c0, c1):
        k = 0
        for i in range(cuts[c], cuts[c + 1]):
            if root(parent, edge_a[i]) != root(parent, edge_b[i]):
                k += 1
        bad[c] = k


@njit(cache=True, nogil=True)
def flatten_range(parent, out, lo, hi):
    """`publish.flatten` of the addresses [lo, hi) while other threads flatten other ranges:
    a parent in [lo, x) is already resolved in `out` (as in `flatten`); a parent below lo may
    not be yet, and is followed to its root (another thread compressing that path only moves
    pointers to ancestors, so every value read leads to the same root)."""
    for x in range(lo, hi):
        p = np.int64(parent[x])
        if p == x:
            r = p
        elif lo <= p < x:
            r = np.int64(out[p])
        else:
            r = p
            while np.int64(parent[r]) != r:
                r = np.int64(parent[r])
        if r != p:
            parent[x] = np.uint32(r)
        out[x] = r


@njit(cache=True, nogil=True)
def _merge_pair(
    a,
    b,
    t,
    large,
    growth,
    parent,
    size,
    attribution,
    ev_a,
    ev_b,
    ev_tx,
    ev_rule,
    ev_votes,
    n_ev,
    q_tx,
    q_reason,
    n_q,
):
    """Union of two addresses for a learned change merge of tx t, under the same guard."""
    ra = find(parent, a)
    rb = find(parent, b)
    if ra == rb:
        return n_ev, n_q
    sa = np.int64(size[ra])
    sb = np.int64(size[rb])
    total = sa + sb
    largest = sa if sa > sb else sb
    reason = 0
    attr_a = np.int64(attribution[ra])
    attr_b = np.int64(attribution[rb])
    if sa >= large and sb >= large and attr_a >= 0 and attr_b >= 0 and attr_a != attr_b:
        reason = Q_LARGE_CONFLICT
    elif total >= large and total >= growth * largest:
        reason = Q_GROWTH
    if reason != 0:
        if n_q < q_tx.shape[0]:
            q_tx[n_q] = t
            q_reason[n_q] = reason
        return n_ev, n_q + 1
    lo = ra if ra < rb else rb
    hi = rb if ra < rb else ra
    parent[hi] = np.uint32(lo)
    size[lo] = np.uint32(total)
    a_lo = np.int64(attribution[lo])
    a_hi = np.int64(attribution[hi])
    if a_lo < 0:
        attribution[lo] = a_hi
    elif a_hi >= 0 and a_hi != a_lo:
        attribution[lo] = -2
    if n_ev < ev_a.shape[0]:
        ev_a[n_ev] = a
        ev_b[n_ev] = b
        ev_tx[n_ev] = t
        ev_rule[n_ev] = RULE_LEARNED
        ev_votes[n_ev] = BIT_LEARNED
    return n_ev + 1, n_q


@njit(cache=True, nogil=True)
def apply_merges(
    t0,
    t1,
    tx_first_input,
    n_inputs_total,
    in_spent_output,
    in_address,
    out_address,
    fresh,
    fresh_base,
    coinjoin,
    payjoin,
    vote_fresh,
    vote_script,
    vote_round,
    vote_optimal,
    change_mask,
    veto_mask,
    required_mask,
    any_mask,
    min_votes,
    hot,
    hot_mask,
    multi_input,
    merge_payjoin,
    large,
    growth,
    parent,
    size,
    attribution,
    ev_a,
    ev_b,
    ev_tx,
    ev_rule,
    ev_votes,
    n_ev,
    q_tx,
    q_reason,
    n_q,
    change_chosen,
    learned_tx,
    learned_out,
    learned_due,
    attributed=True,
):
    """Union addresses tx by tx under the policy; returns (evidence rows, quarantined txs).

    `attributed` False promises that no address carries an attribution (every entry -1, as
    `UnionFind.singletons` makes them): the unions then leave `attribution` unread.

    Learned change merges (tx, output) are applied just before the tx at their due position
    (sorted by it; see learned.py), linking the change address to the tx's first input address.

    Every union of two different clusters appends an evidence row (address a, address b, tx,
    rule, change vote mask). A tx whose merges would join two large clusters with different
    attributions, or grow a cluster `growth` times over past `large` addresses, is quarantined:
    recorded, not applied.

    The distinct roots of a tx are found by sorting them (no scratch array per address).
    """
    n_tx = tx_first_input.shape[0]
    # A guard at or above the number of addresses can never fire: no merged size reaches it.
    guard_on = large < parent.shape[0]
    change_rules = (change_mask | veto_mask) != 0
    tx_votes = (vote_fresh, vote_script, vote_round, vote_optimal)
    rule = (change_mask, veto_mask, required_mask, any_mask, min_votes, hot_mask)
    # Scratch for the widest tx of the range (inputs and a change output), sized once: an
    # array reassigned inside the loop costs numba an atomic reference count update per tx.
    widest = 1
    for t in range(t0, t1):
        fi2 = tx_first_input[t + 1] if t + 1 < n_tx else n_inputs_total
        widest = max(widest, fi2 - tx_first_input[t])
    roots = np.empty(widest + 2, np.int64)
    members = np.empty(widest + 2, np.int64)
    lp = 0
    for t in range(t0, t1):
        while lp < learned_due.shape[0] and learned_due[lp] <= t:
            lt = learned_tx[lp]
            lo_ = learned_out[lp]
            lp += 1
            la = in_address[tx_first_input[lt]]
            lb = out_address[lo_]
            if la == NONE or lb == NONE:
                continue
            n_ev, n_q = _merge_pair(
                np.int64(la),
                np.int64(lb),
                lt,
                large,
                growth,
                parent,
                size,
                attribution,
                ev_a,
                ev_b,
                ev_tx,
                ev_rule,
                ev_votes,
                n_ev,
                q_tx,
                q_reason,
                n_q,
            )
        k = t - t0
        change_chosen[k] = -1
        if coinjoin[k] != 0:
            continue
        fi = tx_first_input[t]
        fi2 = tx_first_input[t + 1] if t + 1 < n_tx else n_inputs_total
        if fi2 - fi < 2 and not change_rules:
            continue  # one input and no change rule: nothing to merge (most txs; no read)
        if fi2 == fi or in_spent_output[fi] < 0:
            continue
        # Change output chosen by the policy (none to choose under multi-input alone).
        change = np.int64(-1)
        votes = 0
        if change_rules:
            change, votes = choose_change(k, tx_votes, rule, out_address, fresh, fresh_base, hot)
        if change >= 0:
            change_chosen[k] = change
        use_inputs = multi_input and (merge_payjoin or not payjoin[k])
        # Collect the addresses to merge: inputs (multi-input) and the change address.
        n_m = 0
        n_in = fi2 - fi
        if use_inputs:
            for i in range(n_in):
                a = in_address[fi + i]
                if a == NONE:
                    continue
                members[n_m] = np.int64(a)
                n_m += 1
        else:
            a = in_address[fi]
            if a != NONE:
                members[0] = np.int64(a)
                n_m = 1
        if change >= 0 and n_m >= 1:
            members[n_m] = np.int64(out_address[change])
            n_m += 1
        if n_m < 2:
            continue
        # The guard. Summing the members' cluster sizes with repeats bounds the merged size
        # from above; when that bound is below `large` neither guard rule can fire (both need
        # a merged size of at least `large`), so the distinct roots are only sorted out for
        # txs that touch a large cluster: most txs skip the sort.
        bound = np.int64(0)
        if guard_on:
            for m in range(n_m):
                r = find(parent, members[m])
                roots[m] = r
                bound += np.int64(size[r])
        if bound >= large:
            n_r = 0
            total = np.int64(0)
            largest = np.int64(0)
            n_large = 0
            attr_seen = np.int64(-1)
            attr_conflict = False
            # Sorted so that each distinct root is counted once (the guard's sums do not depend
            # on the order); no scratch array per address (4 B/address).
            _sort_prefix(roots, n_m)
            for m in range(n_m):
                r = roots[m]
                if m > 0 and r == roots[m - 1]:  # this root is already counted for this tx
                    continue
                n_r += 1
                s = np.int64(size[r])
                total += s
                if s > largest:
                    largest = s
                if s >= large:
                    n_large += 1
                    a = np.int64(attribution[r]) if attributed else -1
                    if a >= 0:
                        if attr_seen >= 0 and a != attr_seen:
                            attr_conflict = True
                        attr_seen = a
            if n_r < 2:
                continue
            reason = 0
            if n_large >= 2 and attr_conflict:
                reason = Q_LARGE_CONFLICT
            elif total >= large and total >= growth * largest:
                reason = Q_GROWTH
            if reason != 0:
                if n_q < q_tx.shape[0]:
                    q_tx[n_q] = t
                    q_reason[n_q] = reason
                n_q += 1
                continue
        # Union into the smallest root id, so a cluster's id is its smallest address id and
        # stays stable as the chain grows.
        anchor = members[0]
        ra = find(parent, anchor)  # the anchor's root, kept up to date across the unions
        for m in range(1, n_m):
            rb = find(parent, members[m])
            if ra == rb:
                continue
            lo = ra if ra < rb else rb
            hi = rb if ra < rb else ra
            ra = lo
            parent[hi] = np.uint32(lo)
            size[lo] = np.uint32(np.int64(size[lo]) + np.int64(size[hi]))
            if attributed:  # else every attribution is -1 and stays so: two reads saved
                a_lo = np.int64(attribution[lo])
                a_hi = np.int64(attribution[hi])
                if a_lo < 0:
                    attribution[lo] = a_hi
                elif a_hi >= 0 and a_hi != a_lo:
                    attribution[lo] = -2  # conflicting attributions inside one cluster
            if n_ev < ev_a.shape[0]:
                ev_a[n_ev] = anchor
                ev_b[n_ev] = members[m]
                ev_tx[n_ev] = t
                is_change = change >= 0 and m == n_m - 1
                ev_rule[n_ev] = RULE_CHANGE if is_change else RULE_MULTI_INPUT
                ev_votes[n_ev] = votes if is_change else 0
            n_ev += 1
    return n_ev, n_q
