"""The tracer's walk one frontier entry at a time: the oracle for `kernels.trace_kernel`.

This is the queue walk the tracer ran before it was walked level by level in sorted blocks
(issue 13). It is kept here, not in the package, so the tests can check that the faster walk
returns the same entries, rows and order on every policy, direction and limit.
"""

# ruff: noqa: E501
from __future__ import annotations

import numpy as np
from numba import njit

from chainsleuth.trace import kernels
from chainsleuth.trace.kernels import (
    FLAG_LOW_CONFIDENCE,
    FLAG_POISON,
    KIND_CLUSTER,
    KIND_COINBASE,
    KIND_COINJOIN,
    KIND_LIMIT,
    KIND_MAX_HOPS,
    KIND_SEED_LIMIT,
    KIND_UNSPENT,
    KIND_WINDOW,
    NONE,
    POLICY_FIFO,
    POLICY_HAIRCUT,
    POLICY_POISON,
    STOP_AT_CREATOR,
)


@njit(nogil=True)
def sequential_walk(
    backward,
    policy,
    seeds,
    seed_amounts,
    max_hops,
    seed_min_amount,
    max_entries,
    max_entries_per_seed,
    walk_coinjoins,
    tx_first_input,
    tx_first_output,
    input_spent_output,
    output_value,
    output_address,
    output_spent_by_tx,
    stop_address,
    is_coinjoin,
    tx_height,
    min_height,
    max_height,
):
    """Walk from `seeds` and return (entry arrays..., row arrays...); see the module docstring.

    stop_address: bool per address id (empty: no stop clusters). is_coinjoin: bool per tx.
    output_spent_by_tx: uint32 per output, NONE or >= n_txs when unspent. seed_min_amount: per
    seed, the smallest amount followed (smaller shares are dropped and summed in `dropped`).
    max_entries caps the whole walk (kind LIMIT), max_entries_per_seed each seed's part of it
    (kind SEED_LIMIT), so one exploding seed cannot starve the others. A tx outside
    [min_height, max_height] (tx_height per tx) is not walked through (kind WINDOW): backward,
    value that was already there before the window; forward, value still held at its end.
    """
    n_txs = tx_first_output.shape[0]
    n_inputs = input_spent_output.shape[0]
    n_outputs = output_value.shape[0]
    cap = max(16, 4 * seeds.shape[0])
    e_output = np.empty(cap, np.int64)
    e_offset = np.empty(cap, np.int64)
    e_amount = np.empty(cap, np.int64)
    e_parent = np.empty(cap, np.int64)
    e_tx = np.empty(cap, np.int64)
    e_seed = np.empty(cap, np.int32)
    e_hops = np.empty(cap, np.int32)
    e_flags = np.empty(cap, np.uint8)
    n = 0
    per_seed = np.zeros(seeds.shape[0], np.int64)
    dropped = np.zeros(seeds.shape[0], np.int64)
    for s in range(seeds.shape[0]):
        e_output[n] = seeds[s]
        e_offset[n] = 0
        e_amount[n] = seed_amounts[s]
        e_parent[n] = -1
        e_tx[n] = -1
        e_seed[n] = s
        e_hops[n] = 0
        e_flags[n] = 0
        n += 1
    rcap = 16
    r_entry = np.empty(rcap, np.int64)
    r_kind = np.empty(rcap, np.uint8)
    r_tx = np.empty(rcap, np.int64)
    nr = 0
    check_stop = stop_address.shape[0] > 0
    head = 0
    while head < n:
        e = head
        head += 1
        o = e_output[e]
        kind = -1
        # where a row stopped: the output's creating tx unless set below; the search for it
        # is left to the caller (`STOP_AT_CREATOR`), done once for the rows instead of once
        # per entry, since most entries of an investigation stop at a tagged cluster
        stop_tx = STOP_AT_CREATOR
        addr = output_address[o]
        if e_hops[e] > 0 and check_stop and addr != NONE and stop_address[addr]:
            kind = KIND_CLUSTER
        if kind < 0:
            if backward:
                t = np.searchsorted(tx_first_output, o, side="right") - 1
            else:
                raw = np.int64(output_spent_by_tx[o])
                t = -1 if (raw == NONE or raw >= n_txs) else raw
            if t < 0:
                kind = KIND_UNSPENT
            else:
                i_lo = tx_first_input[t]
                i_hi = tx_first_input[t + 1] if t + 1 < n_txs else n_inputs
                if i_hi > i_lo and input_spent_output[i_lo] < 0:
                    if backward:
                        kind = KIND_COINBASE
                elif is_coinjoin[t] and not walk_coinjoins:
                    kind = KIND_COINJOIN
                    stop_tx = t
                if kind < 0 and (tx_height[t] < min_height or tx_height[t] > max_height):
                    kind = KIND_WINDOW
                    stop_tx = t
                if kind < 0 and e_hops[e] >= max_hops:
                    kind = KIND_MAX_HOPS
                if kind < 0:
                    o_lo = tx_first_output[t]
                    o_hi = tx_first_output[t + 1] if t + 1 < n_txs else n_outputs
                    # The traced slice, in the value space of the side it enters the tx from.
                    # (haircut needs the input total, FIFO the slice's position; each loop
                    # reads memory at random, so only the policy that needs it runs it)
                    total_in = np.int64(0)
                    if policy == POLICY_HAIRCUT:
                        for i in range(i_lo, i_hi):
                            total_in += output_value[input_spent_output[i]]
                    pos = np.int64(0)
                    if backward:
                        if policy == POLICY_FIFO:
                            for k in range(o_lo, o):
                                pos += output_value[k]
                        c_lo, c_hi = i_lo, i_hi
                    else:
                        if policy == POLICY_FIFO:
                            for i in range(i_lo, i_hi):
                                if input_spent_output[i] == o:
                                    break
                                pos += output_value[input_spent_output[i]]
                        c_lo, c_hi = o_lo, o_hi
                    lo = pos + e_offset[e]
                    hi = lo + e_amount[e]
                    flags = e_flags[e]
                    if policy == POLICY_POISON:
                        flags |= FLAG_POISON
                    if is_coinjoin[t]:
                        flags |= FLAG_LOW_CONFIDENCE
                    owner = e_seed[e]
                    if n + (c_hi - c_lo) > max_entries:
                        kind = KIND_LIMIT
                    elif per_seed[owner] + (c_hi - c_lo) > max_entries_per_seed:
                        kind = KIND_SEED_LIMIT
                    else:
                        cursor = np.int64(0)
                        for c in range(c_lo, c_hi):
                            child = input_spent_output[c] if backward else c
                            v = output_value[child]
                            off = np.int64(0)
                            if policy == POLICY_FIFO:
                                a = max(lo, cursor)
                                b = min(hi, cursor + v)
                                amt = b - a
                                off = a - cursor
                            elif policy == POLICY_HAIRCUT:
                                amt = kernels._share(e_amount[e], v, total_in)
                            elif backward:
                                amt = e_amount[e]
                            else:
                                amt = v
                            cursor += v
                            if amt <= 0:
                                continue
                            if amt < seed_min_amount[owner]:
                                # kept below the floor only backward, when the coin pays a
                                # stop address (the kernel's `_pays_stop`)
                                pays = output_address[child]
                                if not (
                                    backward and check_stop and pays != NONE and stop_address[pays]
                                ):
                                    dropped[owner] += amt
                                    continue
                            per_seed[owner] += 1
                            if n == e_output.shape[0]:
                                e_output = kernels._grow(e_output, n + 1)
                                e_offset = kernels._grow(e_offset, n + 1)
                                e_amount = kernels._grow(e_amount, n + 1)
                                e_parent = kernels._grow(e_parent, n + 1)
                                e_tx = kernels._grow(e_tx, n + 1)
                                e_seed = kernels._grow(e_seed, n + 1)
                                e_hops = kernels._grow(e_hops, n + 1)
                                e_flags = kernels._grow(e_flags, n + 1)
                            e_output[n] = child
                            e_offset[n] = off
                            e_amount[n] = amt
                            e_parent[n] = e
                            e_tx[n] = t
                            e_seed[n] = e_seed[e]
                            e_hops[n] = e_hops[e] + 1
                            e_flags[n] = flags
                            n += 1
        if kind >= 0:
            if nr == r_entry.shape[0]:
                r_entry = kernels._grow(r_entry, nr + 1)
                r_kind = kernels._grow(r_kind, nr + 1)
                r_tx = kernels._grow(r_tx, nr + 1)
            r_entry[nr] = e
            r_kind[nr] = kind
            r_tx[nr] = stop_tx
            nr += 1
    return (
        e_output[:n].copy(),
        e_amount[:n].copy(),
        e_parent[:n].copy(),
        e_tx[:n].copy(),
        e_seed[:n].copy(),
        e_hops[:n].copy(),
        e_flags[:n].copy(),
        r_entry[:nr].copy(),
        r_kind[:nr].copy(),
        r_tx[:nr].copy(),
        dropped,
    )
