"""Score a clustering against ground truth: pairwise precision/recall and B-cubed.

Used by the tests and `docs/clustering.md` (simulated worlds know every address's owner), and
by researchers with their own labelled data. Works on two label arrays over the same items.

Pairwise: a pair of addresses is predicted linked when they share a cluster and truly linked
when they share an owner. B-cubed (Bagga & Baldwin 1998; Amigó et al. 2009) averages, over
addresses, the share of an address's cluster that has its owner (precision) and the share of
its owner's addresses that are in its cluster (recall); it is not dominated by huge clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scores:
    pairwise_precision: float
    pairwise_recall: float
    bcubed_precision: float
    bcubed_recall: float
    clusters: int
    largest_cluster: int

    @property
    def bcubed_f1(self) -> float:
        p, r = self.bcubed_precision, self.bcubed_recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _pairs(counts: np.ndarray) -> float:
    c = counts.astype(np.float64)
    return float((c * (c - 1) / 2).sum())


def score(predicted: np.ndarray, truth: np.ndarray) -> Scores:
    """Compare cluster labels with true owner labels (same length, any integer labels).

    `score(np.array([0, 0, 1]), np.array([5, 5, 5])).pairwise_precision == 1.0`
    """
    predicted = np.asarray(predicted, dtype=np.int64)
    truth = np.asarray(truth, dtype=np.int64)
    if predicted.shape != truth.shape:
        raise ValueError("predicted and truth labels must have the same length")
    n = predicted.shape[0]
    if n == 0:
        return Scores(1.0, 1.0, 1.0, 1.0, 0, 0)
    _, p_idx, p_counts = np.unique(predicted, return_inverse=True, return_counts=True)
    _, t_idx, t_counts = np.unique(truth, return_inverse=True, return_counts=True)
    cell = p_idx * np.int64(t_counts.shape[0]) + t_idx
    _, c_idx, c_counts = np.unique(cell, return_inverse=True, return_counts=True)
    together = _pairs(c_counts)
    predicted_pairs = _pairs(p_counts)
    true_pairs = _pairs(t_counts)
    overlap = c_counts[c_idx].astype(np.float64)
    return Scores(
        pairwise_precision=together / predicted_pairs if predicted_pairs else 1.0,
        pairwise_recall=together / true_pairs if true_pairs else 1.0,
        bcubed_precision=float((overlap / p_counts[p_idx]).mean()),
        bcubed_recall=float((overlap / t_counts[t_idx]).mean()),
        clusters=int(p_counts.shape[0]),
        largest_cluster=int(p_counts.max()),
    )


def two_exchange_clusters(predicted: np.ndarray, owners: np.ndarray, exchange: np.ndarray) -> int:
    """How many predicted clusters hold addresses of two or more exchanges (a false link).

    `exchange` marks the items whose true owner is an exchange; `owners` tells the exchanges
    apart.
    """
    if not exchange.any():
        return 0
    pairs = np.unique(np.stack([predicted[exchange], owners[exchange]]), axis=1)
    return int((np.unique(pairs[0], return_counts=True)[1] >= 2).sum())
