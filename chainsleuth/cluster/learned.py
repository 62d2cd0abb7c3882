"""A change classifier trained on the chain itself (rule 25, `learned_change`).

No ground truth is needed: after the multi-input rule has clustered the whole chain, a
transaction T whose payment outputs include exactly one address that ended up in T's input
cluster (because the wallet later spent it together with its other coins) has revealed its own
change (Möser & Narayanan, "Resurrecting Address Clustering in Bitcoin", FC 2022). Those
transactions label themselves: the revealed output is a positive, the other outputs negatives.
A logistic regression over per-output features, relative within the transaction, learns from
them and then picks the change of transactions that revealed nothing.

Features look ahead `window` blocks at how an output is spent (a batch job may look ahead).
So that clustering in pieces gives the clusters of one pass, the decision for T is made, and its
merge applied, at the first transaction of height > height(T) + window (its *due* position):
everything the decision reads is in the chain by then and never changes afterwards. A run that
ends earlier leaves T pending; the next run decides it at the same position.

Everything is vectorized over ranges of transactions (numba kernels, no Python object per
transaction). Arrays added, per item (mainnet ≈ 1.1 G txs, 3.1 G outputs, 1.4 G addresses):
  tx_fingerprint        u1 per tx, kept in clusters/state/ (1.1 GB)
  multi-input roots     u4 per address, at training only (5.6 GB)
  features              F × f4 per candidate output, one chunk of 2^20 txs at a time
  decisions             3 × i8 per transaction the rule fires on (tx, output, due position)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numba import njit

from chainsleuth.cluster import kernels
from chainsleuth.cluster.ranges import (
    CHUNK_TXS,
    Analysis,
    UnionFind,
    analyze_range,
    batch_spenders_before,
    process_range,
)
from chainsleuth.core.scratch import Scratch, scratch_array
from chainsleuth.store.graph import ChainGraph

NONE = kernels.NONE
ST_OP_RETURN = kernels.ST_OP_RETURN

# Columns the feature kernel computes, in order. A model uses a subset (`ChangeModel.features`).
ALL_FEATURES: tuple[str, ...] = (
    "bias",
    "fresh",  # the output's address is seen for the first time
    "same_type_as_inputs",  # all inputs share one script type and the output has it
    "only_output_of_input_type",  # ... and no other output has it (the script_type rule)
    "round_1e4",  # value is a multiple of 10^4 sat
    "round_1e5",
    "round_1e6",
    "largest",  # largest payment output of the tx
    "smallest",
    "first",  # position among the payment outputs
    "last",
    "below_min_input",  # smaller than every input (optimal change)
    "log2_outputs",  # log2 of the tx's payment outputs
    "value_share",  # value / total payment value of the tx
    "only_fresh",  # the only fresh output (the fresh_address rule)
    "only_below_min_input",  # the only output below every input (the optimal_change rule)
    "unspent_in_window",  # not spent within `window` blocks
    "log2_blocks_to_spend",  # log2(1 + blocks until spent), 0 if not spent in the window
    "spender_same_fingerprint",  # spending tx has T's version, locktime>0 and nSequence class
    "spender_batch",  # spending tx has 3 or more outputs
    "spender_log2_inputs",  # log2 of the spending tx's inputs
    "spent_with_sibling",  # its spending tx also spends another output of T
)
F_ALL = len(ALL_FEATURES)

# No feature sees an address's history (fresh, reused): most self-labels are self-change, and
# the model must not learn the reuse rule; the rule fires only on fresh outputs instead.
DEFAULT_FEATURES: tuple[str, ...] = (
    "bias",
    "same_type_as_inputs",
    "only_output_of_input_type",
    "round_1e4",
    "round_1e5",
    "round_1e6",
    "largest",
    "smallest",
    "first",
    "last",
    "below_min_input",
    "log2_outputs",
    "value_share",
    "only_below_min_input",
    "unspent_in_window",
    "log2_blocks_to_spend",
    "spender_same_fingerprint",
    "spender_batch",
)

TARGET_PRECISION = 0.995
MIN_HELDOUT_FIRES = 100  # fewer self-labelled held-out decisions than this: the rule stays off
MARGIN = 0.5  # best probability minus the second best, per tx
HOLDOUT_MOD = 5  # txs with (tx * 2654435761) % 2^32 % 5 == 0 are held out
DEFAULT_WINDOW = 6  # blocks of look-ahead: the decision for a tx waits this long
MAX_TRAIN_TXS = 4_000_000  # the training set is a deterministic stride sample above this


@dataclass
class ChangeModel:
    """Coefficients and decision rule, stored in the clusters manifest (`learned`)."""

    features: list[str]
    coef: list[float]
    threshold: float  # fire when p(best) >= threshold and p(best) - p(second) >= margin
    margin: float
    window: int  # blocks of look-ahead
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.threshold <= 1.0

    def columns(self) -> np.ndarray:
        return np.array([ALL_FEATURES.index(f) for f in self.features], np.int64)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChangeModel:
        return cls(
            list(d["features"]),
            [float(c) for c in d["coef"]],
            float(d["threshold"]),
            float(d["margin"]),
            int(d["window"]),
            dict(d.get("stats", {})),
        )


# ----------------------------------------------------------------------------- kernels
@njit(cache=True, nogil=True)
def _tx_bounds(t, tx_first_input, tx_first_output, n_inputs_total, n_outputs_total):
    n_tx = tx_first_input.shape[0]
    fi = tx_first_input[t]
    fi2 = tx_first_input[t + 1] if t + 1 < n_tx else n_inputs_total
    fo = tx_first_output[t]
    fo2 = tx_first_output[t + 1] if t + 1 < n_tx else n_outputs_total
    return fi, fi2, fo, fo2


@njit(cache=True, nogil=True)
def _is_candidate(o, out_value, out_address, out_script_type):
    return out_value[o] > 0 and out_script_type[o] != ST_OP_RETURN and out_address[o] != NONE


@njit(cache=True, nogil=True)
def count_candidates(
    t0,
    t1,
    tx_first_input,
    tx_first_output,
    n_inputs_total,
    n_outputs_total,
    in_spent_output,
    out_value,
    out_address,
    out_script_type,
    coinjoin,
    want,
    n_cand,
):
    """n_cand[k] = candidate outputs of tx t0 + k when it is eligible and wanted, else 0.

    Eligible: not a coinbase, not a CoinJoin, two or more payment outputs with an address.
    """
    for t in range(t0, t1):
        k = t - t0
        n_cand[k] = 0
        if not want[k] or coinjoin[k] != 0:
            continue
        fi, fi2, fo, fo2 = _tx_bounds(
            t, tx_first_input, tx_first_output, n_inputs_total, n_outputs_total
        )
        if fi2 == fi or in_spent_output[fi] < 0:
            continue
        c = 0
        for o in range(fo, fo2):
            if _is_candidate(o, out_value, out_address, out_script_type):
                c += 1
        if c >= 2:
            n_cand[k] = c


@njit(cache=True, nogil=True)
def label_txs(
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
    coinjoin,
    fresh,
    fresh_base,
    root,
    label,
    how,
):
    """Self-labels from the multi-input clustering `root` (cluster root per address).

    label[k]: the output id revealed as change: exactly one payment output's address is in the
    inputs' cluster at the end of the chain; -1 none or several; -3 not eligible.
    how[k] (for labelled txs): 1 self-change (the output pays one of the tx's own input
    addresses), 2 an address seen before, 3 a fresh address later spent with the wallet's coins.
    """
    for t in range(t0, t1):
        k = t - t0
        label[k] = -3
        how[k] = 0
        if coinjoin[k] != 0:
            continue
        fi, fi2, fo, fo2 = _tx_bounds(
            t, tx_first_input, tx_first_output, n_inputs_total, n_outputs_total
        )
        if fi2 == fi or in_spent_output[fi] < 0:
            continue
        n_c = 0
        for o in range(fo, fo2):
            if _is_candidate(o, out_value, out_address, out_script_type):
                n_c += 1
        if n_c < 2:
            continue
        r = root[in_address[fi]]
        hits = 0
        hit = -1
        for o in range(fo, fo2):
            if not _is_candidate(o, out_value, out_address, out_script_type):
                continue
            if root[out_address[o]] == r:
                hits += 1
                hit = o
        if hits != 1:
            label[k] = -1
            continue
        label[k] = hit
        if fresh[hit - fresh_base]:
            how[k] = 3
        else:
            how[k] = 2
            a = out_address[hit]
            for i in range(fi, fi2):
                if in_address[i] == a:
                    how[k] = 1


@njit(cache=True, nogil=True)
def _fingerprint_eq(a, b):
    return a == b


@njit(cache=True, nogil=True)
def fill_features(
    t0,
    t1,
    tx_first_input,
    tx_first_output,
    n_inputs_total,
    n_outputs_total,
    n_txs_visible,
    in_spent_output,
    out_value,
    out_address,
    out_script_type,
    spent_by,
    tx_height,
    fingerprint,
    fresh,
    fresh_base,
    window,
    n_cand,
    offsets,
    X,
    cand_out,
    cand_tx,
):
    """Feature rows (ALL_FEATURES order) of every candidate output of txs with n_cand > 0.

    Rows of tx t0 + k start at offsets[k]. `spent_by` is the store's output_spent_by_tx (u4,
    values >= n_txs_visible ignored); only spends at height <= height(T) + window count.
    """
    widest = 1
    for t in range(t0, t1):
        fi, fi2, fo, fo2 = _tx_bounds(
            t, tx_first_input, tx_first_output, n_inputs_total, n_outputs_total
        )
        widest = max(widest, fi2 - fi)
    n_tx = tx_first_input.shape[0]
    for t in range(t0, t1):
        k = t - t0
        if n_cand[k] == 0:
            continue
        fi, fi2, fo, fo2 = _tx_bounds(
            t, tx_first_input, tx_first_output, n_inputs_total, n_outputs_total
        )
        min_in = np.int64(-1)
        in_type = -1
        same_type = True
        for i in range(fi, fi2):
            o = in_spent_output[i]
            v = out_value[o]
            if min_in < 0 or v < min_in:
                min_in = v
            st = np.int64(out_script_type[o])
            if in_type < 0:
                in_type = st
            elif st != in_type:
                same_type = False
        total = 0.0
        max_v = np.int64(-1)
        min_v = np.int64(-1)
        n_type = 0
        n_fresh = 0
        n_small = 0
        first_o = -1
        last_o = -1
        for o in range(fo, fo2):
            if not _is_candidate(o, out_value, out_address, out_script_type):
                continue
            v = out_value[o]
            total += v
            if v > max_v:
                max_v = v
            if min_v < 0 or v < min_v:
                min_v = v
            if same_type and np.int64(out_script_type[o]) == in_type:
                n_type += 1
            if fresh[o - fresh_base]:
                n_fresh += 1
            if v < min_in:
                n_small += 1
            if first_o < 0:
                first_o = o
            last_o = o
        n_c = n_cand[k]
        h_limit = tx_height[t] + window
        row = offsets[k]
        for o in range(fo, fo2):
            if not _is_candidate(o, out_value, out_address, out_script_type):
                continue
            v = out_value[o]
            x = X[row]
            for f in range(x.shape[0]):
                x[f] = 0.0
            x[0] = 1.0
            is_fresh = fresh[o - fresh_base]
            x[1] = 1.0 if is_fresh else 0.0
            own_type = same_type and np.int64(out_script_type[o]) == in_type
            x[2] = 1.0 if own_type else 0.0
            x[3] = 1.0 if own_type and n_type == 1 else 0.0
            x[4] = 1.0 if v % 10_000 == 0 else 0.0
            x[5] = 1.0 if v % 100_000 == 0 else 0.0
            x[6] = 1.0 if v % 1_000_000 == 0 else 0.0
            x[7] = 1.0 if v == max_v else 0.0
            x[8] = 1.0 if v == min_v else 0.0
            x[9] = 1.0 if o == first_o else 0.0
            x[10] = 1.0 if o == last_o else 0.0
            x[11] = 1.0 if v < min_in else 0.0
            x[12] = np.log2(n_c)
            x[13] = v / total if total > 0 else 0.0
            x[14] = 1.0 if is_fresh and n_fresh == 1 else 0.0
            x[15] = 1.0 if v < min_in and n_small == 1 else 0.0
            s = np.int64(spent_by[o])
            if s == np.int64(NONE) or s >= n_txs_visible or tx_height[s] > h_limit:
                x[16] = 1.0
            else:
                x[17] = np.log2(1.0 + tx_height[s] - tx_height[t])
                x[18] = 1.0 if _fingerprint_eq(fingerprint[s], fingerprint[t]) else 0.0
                sfi = tx_first_input[s]
                sfi2 = tx_first_input[s + 1] if s + 1 < n_tx else n_inputs_total
                sfo = tx_first_output[s]
                sfo2 = tx_first_output[s + 1] if s + 1 < n_tx else n_outputs_total
                x[19] = 1.0 if sfo2 - sfo >= 3 else 0.0
                x[20] = np.log2(max(1, sfi2 - sfi))
                sib = 0.0
                for i in range(sfi, sfi2):
                    so = in_spent_output[i]
                    if so >= fo and so < fo2 and so != o:
                        sib = 1.0
                x[21] = sib
            cand_out[row] = o
            cand_tx[row] = t
            row += 1


@njit(cache=True, nogil=True)
def pick_per_tx(offsets, n_cand, p, cand_out, best_out, best_p, second_p):
    """Per tx (n_cand > 0): the output with the highest probability, it and the runner-up."""
    for k in range(n_cand.shape[0]):
        best_out[k] = -1
        best_p[k] = 0.0
        second_p[k] = 0.0
        if n_cand[k] == 0:
            continue
        b = -1.0
        s = -1.0
        bo = -1
        for r in range(offsets[k], offsets[k] + n_cand[k]):
            if p[r] > b:
                s = b
                b = p[r]
                bo = cand_out[r]
            elif p[r] > s:
                s = p[r]
        best_out[k] = bo
        best_p[k] = b
        second_p[k] = max(s, 0.0)


@njit(cache=True, nogil=True)
def compress_roots(parent):
    """Make every parent entry its root (full path compression, in place)."""
    for x in range(parent.shape[0]):
        r = np.int64(x)
        while np.int64(parent[r]) != r:
            r = np.int64(parent[r])
        y = np.int64(x)
        while np.int64(parent[y]) != r:
            nxt = np.int64(parent[y])
            parent[y] = np.uint32(r)
            y = nxt


@njit(cache=True, nogil=True)
def rule_choice(coinjoin, votes, rule, out_address, fresh, fresh_base, hot, chosen):
    """The output the rule-based change policy merges per tx (-1 none), as apply_merges does.

    `votes` is `Analysis.votes` as a tuple and `rule` is `Policy.change_rule()` (see
    `kernels.choose_change`)."""
    for k in range(coinjoin.shape[0]):
        chosen[k] = -1
        if coinjoin[k] != 0:
            continue
        chosen[k], _ = kernels.choose_change(k, votes, rule, out_address, fresh, fresh_base, hot)


# ----------------------------------------------------------------------------- model
def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


def fit_logistic(
    X: np.ndarray, y: np.ndarray, ridge: float = 1e-3, iterations: int = 50
) -> np.ndarray:
    """Logistic regression by Newton's method (IRLS) with a small L2 penalty (not on column 0).

    Deterministic: the same rows give the same coefficients.
    """
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    n, f = X.shape
    w = np.zeros(f)
    penalty = np.full(f, ridge * max(n, 1))
    penalty[0] = 0.0
    for _ in range(iterations):
        p = sigmoid(X @ w)
        grad = X.T @ (p - y) + penalty * w
        weights = np.maximum(p * (1.0 - p), 1e-9)
        hessian = (X * weights[:, None]).T @ X + np.diag(penalty) + 1e-9 * np.eye(f)
        step = np.linalg.solve(hessian, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w


def choose_threshold(
    best_p: np.ndarray,
    second_p: np.ndarray,
    correct: np.ndarray,
    margin: float,
    target: float = TARGET_PRECISION,
    min_fires: int = MIN_HELDOUT_FIRES,
) -> tuple[float, float, int]:
    """Lowest probability threshold whose held-out decisions are right >= target of the time.

    Considers held-out txs with p(best) - p(second) >= margin, from the most confident down;
    returns (threshold, estimated precision, held-out fires); threshold 2.0 (off) when fewer
    than `min_fires` decisions reach the target.
    """
    ok = (best_p - second_p) >= margin
    order = np.argsort(-best_p[ok], kind="stable")
    p_sorted = best_p[ok][order]
    right = correct[ok][order].astype(np.float64)
    if p_sorted.shape[0] == 0:
        return 2.0, 0.0, 0
    precision = np.cumsum(right) / np.arange(1, right.shape[0] + 1)
    # Only cut between distinct probabilities (a threshold keeps every tie).
    last_of_tie = np.ones(p_sorted.shape[0], np.bool_)
    last_of_tie[:-1] = p_sorted[1:] != p_sorted[:-1]
    good = np.flatnonzero((precision >= target) & last_of_tie & (p_sorted >= 0.5))
    if good.shape[0] == 0 or good[-1] + 1 < min_fires:
        return 2.0, float(precision[-1]), 0
    k = int(good[-1])
    return float(p_sorted[k]), float(precision[k]), k + 1


def heldout_mask(txs: np.ndarray) -> np.ndarray:
    h = (txs.astype(np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    return (h % np.uint64(HOLDOUT_MOD)) == 0


# ----------------------------------------------------------------------------- orchestration
def read_fingerprints(
    store: Any, t0: int, t1: int, step: int = 1 << 20, scratch: Scratch | None = None
) -> np.ndarray:
    """Wallet fingerprint per tx in [t0, t1): u1 = version class | locktime>0 | nSequence class.

    Bits 0-1: version (1, 2, other→3, 0 for 0); bit 2: locktime > 0; bits 3-4: the first
    input's nSequence (0xffffffff → 0, 0xfffffffe → 1, 0xfffffffd → 2, else 3). Read from the
    store's txs and inputs tables (the graph arrays do not keep them), in slices of `step` txs
    (a slice's columns and temporaries take ~100 B per tx: 0.1 GB at 2^20, not 1.7 GB at 2^24;
    at 5 M txs RssAnon rose 214 MB over the read at 2^20, 90 MB at 2^18, 1.4x the time).
    `scratch` (core.scratch): the result file-backed (an investigation holds it to the end).
    """
    out = scratch_array(scratch, max(t1 - t0, 0), np.uint8)
    for a in range(t0, t1, step):
        b = min(t1, a + step)
        txs = store.sql(
            "SELECT tx_id, version, locktime FROM txs_raw WHERE tx_id >= ? AND tx_id < ?",
            [a, b],
        )
        ids = txs.column("tx_id").to_numpy() - t0
        version = txs.column("version").to_numpy()
        locktime = txs.column("locktime").to_numpy()
        vcls = np.where(version == 1, 1, np.where(version == 2, 2, np.where(version == 0, 0, 3)))
        out[ids] = (vcls | ((locktime > 0).astype(np.int64) << 2)).astype(np.uint8)
        ins = store.sql(
            "SELECT tx_id, sequence FROM inputs_raw WHERE vin = 0 AND tx_id >= ? AND tx_id < ?",
            [a, b],
        )
        ids = ins.column("tx_id").to_numpy() - t0
        seq = ins.column("sequence").to_numpy()
        scls = np.where(
            seq == 0xFFFFFFFF,
            0,
            np.where(seq == 0xFFFFFFFE, 1, np.where(seq == 0xFFFFFFFD, 2, 3)),
        )
        out[ids] |= (scls << 3).astype(np.uint8)
    return out


@dataclass
class Candidates:
    """Feature rows of the candidate outputs of the eligible txs of a range."""

    n_cand: np.ndarray  # per tx of the range
    offsets: np.ndarray  # per tx: first row
    X: np.ndarray  # rows × F_ALL, float32
    out: np.ndarray  # output id per row
    tx: np.ndarray  # tx id per row


def range_candidates(
    arrays: ChainGraph,
    t0: int,
    t1: int,
    coinjoin: np.ndarray,
    fresh: np.ndarray,
    want: np.ndarray,
    spent_by: np.ndarray,
    tx_height: np.ndarray,
    fingerprint: np.ndarray,
    window: int,
) -> Candidates:
    m = t1 - t0
    n_cand = np.zeros(m, np.int64)
    count_candidates(
        t0,
        t1,
        arrays.tx_first_input,
        arrays.tx_first_output,
        arrays.n_inputs,
        arrays.n_outputs,
        arrays.input_spent_output,
        arrays.output_value,
        arrays.output_address,
        arrays.output_script_type,
        coinjoin,
        want,
        n_cand,
    )
    offsets = np.zeros(m, np.int64)
    if m:
        offsets[1:] = np.cumsum(n_cand)[:-1]
    rows = int(n_cand.sum())
    X = np.zeros((rows, F_ALL), np.float32)
    cand_out = np.empty(rows, np.int64)
    cand_tx = np.empty(rows, np.int64)
    o0 = int(arrays.tx_first_output[t0]) if t0 < arrays.n_txs else arrays.n_outputs
    fill_features(
        t0,
        t1,
        arrays.tx_first_input,
        arrays.tx_first_output,
        arrays.n_inputs,
        arrays.n_outputs,
        arrays.n_txs,
        arrays.input_spent_output,
        arrays.output_value,
        arrays.output_address,
        arrays.output_script_type,
        spent_by,
        tx_height,
        fingerprint,
        fresh,
        o0,
        window,
        n_cand,
        offsets,
        X,
        cand_out,
        cand_tx,
    )
    return Candidates(n_cand, offsets, X, cand_out, cand_tx)


def self_labels(
    arrays: ChainGraph, root: np.ndarray, t0: int, t1: int, analysis: Analysis
) -> tuple[np.ndarray, np.ndarray]:
    """label_txs over [t0, t1) with a range's Analysis: (label, how) (see label_txs)."""
    label = np.empty(t1 - t0, np.int64)
    how = np.empty(t1 - t0, np.int8)
    label_txs(
        t0,
        t1,
        arrays.tx_first_input,
        arrays.tx_first_output,
        arrays.n_inputs,
        arrays.n_outputs,
        arrays.input_spent_output,
        arrays.input_address,
        arrays.output_value,
        arrays.output_address,
        arrays.output_script_type,
        analysis.coinjoin,
        analysis.fresh,
        int(arrays.tx_first_output[t0]),
        root,
        label,
        how,
    )
    return label, how


def multi_input_roots(arrays: ChainGraph, policy: Any, n_addresses: int) -> np.ndarray:
    """Root (u4) per address after the multi-input rule alone over the whole chain."""
    from chainsleuth.cluster.rules import Policy

    mi = Policy(
        "multi_input",
        large_cluster=policy.large_cluster,
        growth_factor=policy.growth_factor,
    )
    unions = UnionFind.singletons(n_addresses)
    step = CHUNK_TXS
    for t0 in range(0, arrays.n_txs, step):
        process_range(arrays, unions, mi, t0, min(arrays.n_txs, t0 + step))
    compress_roots(unions.parent)
    return unions.parent


def training_rows(
    arrays: ChainGraph,
    root: np.ndarray,
    spent_by: np.ndarray,
    tx_height: np.ndarray,
    fingerprint: np.ndarray,
    window: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """(X, y, row tx, row output, counts) of the self-labelled txs, candidates of each."""
    n_tx = arrays.n_txs
    stride = max(1, -(-n_tx // (4 * MAX_TRAIN_TXS)))
    xs, ys, ts, os_ = [], [], [], []
    counts = {
        "eligible": 0,
        "labelled": 0,
        "self_change": 0,
        "reused": 0,
        "fresh": 0,
        "sampled": 0,
    }
    max_address = -1
    step = CHUNK_TXS
    for t0 in range(0, n_tx, step):
        t1 = min(n_tx, t0 + step)
        analysis, max_address = analyze_range(arrays, t0, t1, max_address, want_votes=False)
        label, how = self_labels(arrays, root, t0, t1, analysis)
        counts["eligible"] += int((label >= -1).sum())
        counts["labelled"] += int((label >= 0).sum())
        for code, key in ((1, "self_change"), (2, "reused"), (3, "fresh")):
            counts[key] += int((how == code).sum())
        want = label >= 0
        if stride > 1:
            want &= (np.arange(t0, t1) % stride) == 0
        counts["sampled"] += int(want.sum())
        c = range_candidates(
            arrays,
            t0,
            t1,
            analysis.coinjoin,
            analysis.fresh,
            want,
            spent_by,
            tx_height,
            fingerprint,
            window,
        )
        row_label = np.repeat(label, c.n_cand)
        xs.append(c.X)
        ys.append(c.out == row_label)
        ts.append(c.tx)
        os_.append(c.out)
    if not xs:
        empty = np.zeros(0, np.int64)
        return np.zeros((0, F_ALL), np.float32), np.zeros(0, np.bool_), empty, empty, counts
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ts), np.concatenate(os_), counts


def per_tx_best(
    tx: np.ndarray, out: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tx, best output, p best, p second) per distinct tx of rows grouped by tx."""
    starts = np.flatnonzero(np.r_[True, tx[1:] != tx[:-1]]) if tx.shape[0] else np.zeros(0, int)
    n_cand = np.diff(np.r_[starts, tx.shape[0]]).astype(np.int64)
    best_out = np.empty(starts.shape[0], np.int64)
    best_p = np.empty(starts.shape[0])
    second_p = np.empty(starts.shape[0])
    pick_per_tx(starts.astype(np.int64), n_cand, p, out, best_out, best_p, second_p)
    return tx[starts], best_out, best_p, second_p


def train_model(
    arrays: ChainGraph,
    policy: Any,
    n_addresses: int,
    spent_by: np.ndarray,
    tx_height: np.ndarray,
    fingerprint: np.ndarray,
    window: int,
    features: tuple[str, ...] = DEFAULT_FEATURES,
) -> ChangeModel:
    """Self-label the chain, fit the coefficients on 4/5, pick the threshold on the other 1/5."""
    root = multi_input_roots(arrays, policy, n_addresses)
    X, y, tx, out, counts = training_rows(arrays, root, spent_by, tx_height, fingerprint, window)
    del root
    cols = np.array([ALL_FEATURES.index(f) for f in features], np.int64)
    Xs = X[:, cols].astype(np.float64)
    held = heldout_mask(tx)
    coef = (
        fit_logistic(Xs[~held], y[~held])
        if (~held).any() and y[~held].any()
        else np.zeros(cols.shape[0])
    )
    p = sigmoid(Xs[held] @ coef)
    h_tx, h_best, h_p1, h_p2 = per_tx_best(tx[held], out[held], p)
    truth_out = out[held][y[held]]
    truth_tx = tx[held][y[held]]
    correct = h_best == truth_out[np.searchsorted(truth_tx, h_tx)] if h_tx.shape[0] else h_best
    threshold, est_precision, fires = choose_threshold(h_p1, h_p2, correct, MARGIN)
    stats: dict[str, Any] = dict(counts)
    stats.update(
        {
            "train_txs": int(np.unique(tx[~held]).shape[0]),
            "heldout_txs": int(h_tx.shape[0]),
            "heldout_fires": fires,
            "heldout_precision": round(est_precision, 5),
            "heldout_recall": round(fires / max(h_tx.shape[0], 1), 5),
        }
    )
    return ChangeModel(list(features), [float(c) for c in coef], threshold, MARGIN, window, stats)


def rule_gate(policy: Any, votes: list[np.ndarray], best_out: np.ndarray) -> np.ndarray:
    """Per tx: whether the policy's change rules let the classifier's pick be merged.

    Where the policy names `learned_needs` rules (conservative_learned), the classifier
    is one vote, never the only one: one of those value rules must pick the same output, and no
    change rule of the policy (vetoes included) may pick another. Self-labels are nearly all
    self-change to a reused address, while the rule fires only on fresh outputs, so held-out
    self-labelled precision says little about the shapes it fires on; on the simulator's hard
    worlds its picks that a rule contradicted were almost all wrong (docs/clustering.md).
    Other policies (`learned`, for measurement) are not gated.
    """
    from chainsleuth.cluster.rules import CHANGE_BITS

    any_mask = policy.learned_mask()
    if not any_mask:
        return np.ones(best_out.shape[0], np.bool_)
    enabled = policy.change_mask() | policy.veto_mask()
    support = np.zeros(best_out.shape[0], np.bool_)
    against = np.zeros(best_out.shape[0], np.bool_)
    for name, v in zip(
        ("fresh_address", "script_type", "round_amount", "optimal_change"), votes, strict=True
    ):
        bit = CHANGE_BITS[name]
        if any_mask & bit:
            support |= v == best_out
        if enabled & bit:
            against |= (v >= 0) & (v != best_out)
    return support & ~against & (best_out >= 0)


@dataclass
class Decisions:
    """Learned change merges to apply: tx, output, and the position to apply them at."""

    tx: np.ndarray
    out: np.ndarray
    due: np.ndarray
    pending_from: int  # first tx not decided yet (its look-ahead window is not complete)
    pending_max_address: int  # highest address id paid before pending_from

    @classmethod
    def none(cls, pending_from: int = 0, pending_max_address: int = -1) -> Decisions:
        e = np.zeros(0, np.int64)
        return cls(e, e, e, pending_from, pending_max_address)

    def slice(self, t0: int, t1: int) -> Decisions:
        a, b = np.searchsorted(self.due, [t0, t1])
        return Decisions(
            self.tx[a:b],
            self.out[a:b],
            self.due[a:b],
            self.pending_from,
            self.pending_max_address,
        )


def decide(
    arrays: ChainGraph,
    model: ChangeModel,
    policy: Any,
    spent_by: np.ndarray,
    tx_height: np.ndarray,
    fingerprint: np.ndarray,
    pending_from: int,
    pending_max_address: int,
) -> Decisions:
    """Learned change decisions for txs [pending_from, n) whose look-ahead window is complete.

    A tx is decided when the chain has a tx above height(T) + window; its merge is due at the
    first such tx. The rule does not fire where the policy's rule-based change already merged
    an output of T (agreeing or not), on a non-fresh output, below the threshold/margin, or
    where the policy's rules gate it (`rule_gate`).
    """
    n_tx = arrays.n_txs
    window = model.window
    if n_tx == 0:
        return Decisions.none(pending_from, pending_max_address)
    tip = int(tx_height[n_tx - 1])
    limit = int(np.searchsorted(tx_height[:n_tx], tip - window, side="left"))
    limit = max(limit, pending_from)
    # txs below `limit` have height < tip - window: some tx above height + window exists.
    txs, outs = [], []
    cols = model.columns()
    coef = np.asarray(model.coef)
    max_address = pending_max_address
    step = CHUNK_TXS
    batch_spent = batch_spenders_before(arrays, pending_from)
    for t0 in range(pending_from, limit, step):
        t1 = min(limit, t0 + step)
        analysis, max_address = analyze_range(arrays, t0, t1, max_address, batch_spent=batch_spent)
        if not model.enabled:
            continue
        rule = np.empty(t1 - t0, np.int64)
        rule_choice(
            analysis.coinjoin,
            tuple(analysis.votes),
            policy.change_rule(),
            arrays.output_address,
            analysis.fresh,
            int(arrays.tx_first_output[t0]),
            analysis.hot,
            rule,
        )
        c = range_candidates(
            arrays,
            t0,
            t1,
            analysis.coinjoin,
            analysis.fresh,
            rule < 0,
            spent_by,
            tx_height,
            fingerprint,
            window,
        )
        p = sigmoid(c.X[:, cols].astype(np.float64) @ coef)
        best_out = np.empty(t1 - t0, np.int64)
        best_p = np.empty(t1 - t0)
        second_p = np.empty(t1 - t0)
        pick_per_tx(c.offsets, c.n_cand, p, c.out, best_out, best_p, second_p)
        o0 = int(arrays.tx_first_output[t0])
        ok = best_out >= 0
        fresh_best = np.zeros(t1 - t0, np.bool_)
        fresh_best[ok] = analysis.fresh[best_out[ok] - o0]
        fire = ok & fresh_best & (best_p >= model.threshold) & (best_p - second_p >= model.margin)
        fire &= rule_gate(policy, analysis.votes, best_out)
        k = np.flatnonzero(fire)
        txs.append(t0 + k)
        outs.append(best_out[k])
    tx = np.concatenate(txs) if txs else np.zeros(0, np.int64)
    out = np.concatenate(outs) if outs else np.zeros(0, np.int64)
    due = np.searchsorted(tx_height[:n_tx], tx_height[tx] + window, side="right").astype(np.int64)
    return Decisions(tx.astype(np.int64), out, due, limit, int(max_address))
