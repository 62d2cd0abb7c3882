"""Numba kernels of the investigation: turn trace rows into lead and cash-out sources.

`trace_kernel` (chainsleuth.trace.kernels) leaves one row per traced amount that stopped, with a
parent pointer per frontier entry. Rebuilding each row's path in Python costs microseconds per
row, and a million-deposit case has tens of millions of rows, so the per-row work (which tx
funded the deposit, which output it paid, how many hops, which path) is done here in one pass.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _n_outputs(tx, tx_first_output, n_outputs_total):
    hi = tx_first_output[tx + 1] if tx + 1 < tx_first_output.shape[0] else n_outputs_total
    return hi - tx_first_output[tx]


@njit(cache=True, nogil=True)
def lead_sources(
    r_entry,
    r_kind,
    r_tx,
    e_parent,
    e_tx,
    e_output,
    e_hops,
    tx_first_output,
    n_outputs_total,
    output_script_type,
    batch_min_outputs,
    kind_cluster,
    kind_coinjoin,
    max_moves,
):
    """Per row of a backward trace: (funding tx, source output, hops, path key, custody txs).

    Attributed-cluster rows: the funding tx is the tx that spent the attributed output, moved
    towards the deposit while the path runs through the exchange's own batched withdrawals (a
    batch of at least `batch_min_outputs` outputs whose path output, of the attributed output's
    script type, is spent by another such batch: the exchange spending its own change); `custody`
    counts those moves. CoinJoin rows: the CoinJoin. Other rows: -1. The source output is the
    funding tx's output on the path; hops count txs from the funding tx to the deposit, both
    included. The path key is the entry whose chain of parents, after the funding tx, gives
    the rest of the path (`path_txs`); rows with equal funding tx and path key share a path.
    `max_moves` (per row, or empty: no limit) caps the moves (`rows.lead_table`: a batch that
    pays change into its own cluster is moved past no further).
    """
    n = r_entry.shape[0]
    limited = max_moves.shape[0] == n
    funding = np.full(n, -1, np.int64)
    source = np.full(n, -1, np.int64)
    hops = np.zeros(n, np.int32)
    key = np.full(n, -1, np.int64)
    custody = np.zeros(n, np.int32)
    for row in range(n):
        e = r_entry[row]
        if r_kind[row] == kind_cluster and e_parent[e] >= 0:
            wanted = output_script_type[e_output[e]]
            f = e
            moved = 0
            while True:
                if limited and moved >= max_moves[row]:
                    break
                p = e_parent[f]
                if e_parent[p] < 0:
                    break  # the funding tx created the deposit itself
                here = e_tx[f]
                nxt = e_tx[p]
                if (
                    _n_outputs(here, tx_first_output, n_outputs_total) >= batch_min_outputs
                    and _n_outputs(nxt, tx_first_output, n_outputs_total) >= batch_min_outputs
                    and output_script_type[e_output[p]] == wanted
                ):
                    f = p
                    moved += 1
                else:
                    break
            funding[row] = e_tx[f]
            source[row] = e_output[e_parent[f]]
            hops[row] = e_hops[f]
            key[row] = e_parent[f]
            custody[row] = moved
        elif r_kind[row] == kind_coinjoin:
            funding[row] = r_tx[row]
            source[row] = e_output[e]
            hops[row] = e_hops[e] + 1
            key[row] = e
        else:
            hops[row] = e_hops[e]
    return funding, source, hops, key, custody


@njit(cache=True, nogil=True)
def path_txs(heads, keys, max_len, e_parent, e_tx):
    """Tx ids of paths: row i is heads[i] then the txs of keys[i]'s parent chain, -1 padded."""
    n = heads.shape[0]
    out = np.full((n, max_len), -1, np.int64)
    for i in range(n):
        out[i, 0] = heads[i]
        k = 1
        e = keys[i]
        while e >= 0 and e_parent[e] >= 0 and k < max_len:
            out[i, k] = e_tx[e]
            k += 1
            e = e_parent[e]
    return out


@njit(cache=True, nogil=True)
def custody_txs(entries, counts, max_len, e_parent, e_tx):
    """The exchange's own txs a lead's funding tx was moved through (see `lead_sources`)."""
    n = entries.shape[0]
    out = np.full((n, max(max_len, 1)), -1, np.int64)
    for i in range(n):
        e = entries[i]
        for k in range(min(counts[i], max_len)):
            out[i, k] = e_tx[e]
            e = e_parent[e]
    return out
