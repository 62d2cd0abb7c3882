"""The one reader of the clustering (`Clusters`): vectorized questions over many ids, addresses
beyond the clustering as their own clusters, and singletons when there is no clustering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainsleuth.cluster.engine import Clusters, clusters_generation
from chainsleuth.core.errors import ChainsleuthError

# addresses 0..5 clustered: {0, 2, 3} -> 0, {1, 4} -> 1, {5} -> 5; 6 and 7 came later
CLUSTER_OF = np.array([0, 1, 0, 0, 1, 5], np.int64)


def test_clusters_of_member_mask_and_sizes_over_many_ids() -> None:
    clusters = Clusters.from_array(CLUSTER_OF, generation=3)
    assert clusters.clusters_of(np.array([3, 4, -1, 7])).tolist() == [0, 1, -1, 7]
    assert np.flatnonzero(clusters.member_mask(np.array([0, 7]), 8)).tolist() == [0, 2, 3, 7]
    assert clusters.sizes(np.array([1, 0, 5, 6]), 8).tolist() == [2, 3, 1, 1]
    assert clusters.member_mask(np.array([], np.int64), 8).sum() == 0
    assert clusters.resolve_cluster(4) == 1
    assert clusters.members(2).tolist() == [0, 2, 3]


def test_without_a_clustering_every_address_is_its_own_cluster(tmp_path: Path) -> None:
    assert clusters_generation(tmp_path) is None
    with pytest.raises(ChainsleuthError, match="no clustering yet"):
        Clusters(tmp_path)
    clusters = Clusters.or_singletons(tmp_path)
    assert clusters.generation is None
    assert clusters.clusters_of(np.array([0, 9, -1])).tolist() == [0, 9, -1]
    assert clusters.sizes(np.array([0, 9]), 10).tolist() == [1, 1]
    assert np.flatnonzero(clusters.member_mask(np.array([2, 4]), 10)).tolist() == [2, 4]
    assert clusters.merges().num_rows == 0
    assert clusters.coinjoins(["tx_id", "rule"]).column_names == ["tx_id", "rule"]
