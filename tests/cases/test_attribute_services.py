"""`cases.investigate._attribute_services` tests every node and hot link at once (issue 13,
memory): it must name the same clusters, with the same names, in the same order, as one
Python loop over them (the code before, kept here as the reference)."""

from __future__ import annotations

import numpy as np

from chainsleuth.cases.investigate import UNIDENTIFIED_SERVICE, _attribute_services
from chainsleuth.trace.services import ClusterCounts, ClusterSet, ServiceStats

Name = tuple[str | None, str]


def _loops(
    attribution: dict[int, Name],
    stats: ServiceStats,
    entities: tuple[np.ndarray, np.ndarray],
    service_mask: np.ndarray,
    hot_links: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    nodes, entity = entities
    outside = ~service_mask[nodes]
    nodes, entity = nodes[outside], entity[outside]
    names: dict[int, set[Name]] = {}
    for c, e in zip(nodes.tolist(), entity.tolist(), strict=True):
        if c in attribution:
            names.setdefault(e, set()).add(attribution[c])
    linked = []
    for c, e in zip(nodes.tolist(), entity.tolist(), strict=True):
        named = names.get(e)
        if c not in attribution and named is not None and len(named) == 1:
            attribution[c] = next(iter(named))
            linked.append(c)
    like = stats.service_like()
    like = like[~service_mask[like]]
    entity_of = dict(zip(nodes.tolist(), entity.tolist(), strict=True))
    service_entity = {entity_of.get(c, c) for c in like.tolist() if c not in attribution}
    for c in like.tolist():
        if c not in attribution:
            attribution[c] = (f"cluster:{entity_of.get(c, c)}", UNIDENTIFIED_SERVICE)
    via_entity = list(linked)
    for c, e in zip(nodes.tolist(), entity.tolist(), strict=True):
        if c not in attribution and e in service_entity and names.get(e) is None:
            attribution[c] = (f"cluster:{e}", UNIDENTIFIED_SERVICE)
            via_entity.append(c)
    lent: dict[int, set[Name]] = {}
    for a, b in zip(hot_links[0].tolist(), hot_links[1].tolist(), strict=True):
        if a not in attribution and not service_mask[a] and b in attribution:
            lent.setdefault(a, set()).add(attribution[b])
    for a, got in lent.items():
        if len(got) == 1:
            attribution[a] = next(iter(got))
            via_entity.append(a)
            if attribution[a][1] != UNIDENTIFIED_SERVICE:
                linked.append(a)
    return np.array(sorted(linked), np.int64), np.array(sorted(via_entity), np.int64)


def test_vectorized_attribution_equals_the_loops() -> None:
    rng = np.random.default_rng(13)
    n = 4_000
    for trial in range(5):
        nodes = np.sort(rng.choice(n, 900, replace=False))
        # entities: components labelled by a member (a few dozen, some of one node)
        entity = nodes[rng.integers(0, 60, nodes.shape[0]) * 15 % nodes.shape[0]]
        tags = rng.choice(n, 200, replace=False)
        names = [("Exa", "exchange"), ("Exb", "exchange"), ("Mix", "mixer"), (None, "gambling")]
        attribution = {
            int(c): names[int(k)] for c, k in zip(tags, rng.integers(0, 4, 200), strict=True)
        }
        stats = ServiceStats(
            ClusterCounts(rng.integers(0, n, 700), n), ClusterCounts(np.zeros(0, np.int64), n)
        )
        service = np.zeros(n, np.bool_)
        service[rng.choice(n, 150, replace=False)] = True
        hot = (rng.integers(0, n, 20_000), rng.integers(0, n, 20_000))
        expected = dict(attribution)
        want = _loops(expected, stats, (nodes, entity), service, hot)
        got_attribution = dict(attribution)
        got = _attribute_services(
            got_attribution, stats, (nodes, entity), ClusterSet(np.flatnonzero(service), n), hot
        )
        assert list(got_attribution.items()) == list(expected.items()), trial
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), trial
        # every way of naming took part
        assert len(want[0]) and len(want[1]) > len(want[0])
        assert sum(v[1] == UNIDENTIFIED_SERVICE for v in expected.values()) > 0


def test_a_piece_of_a_two_name_entity_that_holds_a_deposit_spender_lends_no_name() -> None:
    # clusters 0-9; the deposit-spender cut split main's entity {1..6} (tags 1 Exa, 4 Exb)
    # into {1, 2, 3} and {4, 5, 6}; cluster 5 is a deposit spender. Entity {7, 8} (tag 7 Exa)
    # was never part of a two-name entity.
    n = 10
    nodes = np.array([1, 2, 3, 4, 5, 6, 7, 8], np.int64)
    entity = np.array([1, 1, 1, 4, 4, 4, 7, 7], np.int64)
    stats = ServiceStats(
        ClusterCounts(np.zeros(0, np.int64), n), ClusterCounts(np.zeros(0, np.int64), n)
    )
    service = np.zeros(n, np.bool_)
    split = (np.array([1, 2, 3, 4, 5, 6], np.int64), np.array([5], np.int64))

    def run(with_split: bool) -> dict[int, Name]:
        attribution: dict[int, Name] = {1: ("Exa", "exchange"), 4: ("Exb", "exchange")}
        attribution[7] = ("Exa", "exchange")
        _attribute_services(
            attribution, stats, (nodes, entity), service, None, None, None,
            split if with_split else None,
        )  # fmt: skip
        return attribution

    plain = run(False)
    assert plain[5] == plain[6] == ("Exb", "exchange")
    wary = run(True)
    # the piece holding the spender lends nothing; the clean piece and the entity outside
    # the split lend as before
    assert 5 not in wary and 6 not in wary
    assert wary[2] == wary[3] == ("Exa", "exchange")
    assert wary[8] == ("Exa", "exchange")
