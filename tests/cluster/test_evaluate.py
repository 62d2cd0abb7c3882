"""Scoring a clustering against ground truth."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from chainsleuth.cluster.evaluate import score


def _pairwise_by_brute_force(pred: list[int], truth: list[int]) -> tuple[float, float]:
    pairs = list(itertools.combinations(range(len(pred)), 2))
    linked = {p for p in pairs if pred[p[0]] == pred[p[1]]}
    true = {p for p in pairs if truth[p[0]] == truth[p[1]]}
    precision = len(linked & true) / len(linked) if linked else 1.0
    recall = len(linked & true) / len(true) if true else 1.0
    return precision, recall


def test_perfect_clustering_scores_one() -> None:
    s = score(np.array([3, 3, 7]), np.array([1, 1, 2]))
    assert (s.pairwise_precision, s.pairwise_recall, s.bcubed_f1) == (1.0, 1.0, 1.0)


def test_merging_two_owners_lowers_precision_not_recall() -> None:
    s = score(np.array([0, 0, 0, 0]), np.array([1, 1, 2, 2]))
    assert s.pairwise_precision == 2 / 6 and s.pairwise_recall == 1.0
    assert s.bcubed_precision == 0.5 and s.bcubed_recall == 1.0


def test_singletons_have_full_precision_and_no_recall() -> None:
    s = score(np.arange(4), np.array([1, 1, 1, 1]))
    assert s.pairwise_precision == 1.0 and s.pairwise_recall == 0.0
    assert s.bcubed_recall == 0.25


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=25))
def test_pairwise_scores_equal_a_brute_force_count(labels: list[tuple[int, int]]) -> None:
    pred, truth = [p for p, _ in labels], [t for _, t in labels]
    s = score(np.array(pred), np.array(truth))
    precision, recall = _pairwise_by_brute_force(pred, truth)
    assert abs(s.pairwise_precision - precision) < 1e-12
    assert abs(s.pairwise_recall - recall) < 1e-12
