"""The deposit-spending fragments a tagged exchange's co-spending habit is read over
(`cases.investigate._cospend_kin`, issue 11, docs/design/trace.md "Co-spending as a habit"):
the clusters of a change chain whose tags carry one exchange name, and no others."""

from __future__ import annotations

import numpy as np

from chainsleuth.cases.investigate import _cospend_kin

COBALT, DUNMORE = ("cobalt", "exchange"), ("dunmore", "exchange")


def test_a_chain_with_one_exchange_tag_lends_its_fragments_to_that_name() -> None:
    # chain 0: tagged cobalt at 10, fragments 11 and 12; chain 1: two names (13 cobalt, 14
    # dunmore) and 15; chain 2: no exchange tag (16 a mixer's, 17); 18 in the seized service
    nodes = np.array([10, 11, 12, 13, 14, 15, 16, 17, 18], np.int64)
    chain = np.array([0, 0, 0, 1, 1, 1, 2, 2, 0], np.int64)
    tags = {10: COBALT, 13: COBALT, 14: DUNMORE, 16: ("wasabi", "mixer")}
    service = np.zeros(20, np.bool_)
    service[18] = True
    kin = _cospend_kin((nodes, chain), tags, service)
    assert kin == {10: COBALT, 11: COBALT, 12: COBALT}


def test_no_chains_no_fragments() -> None:
    none = np.zeros(0, np.int64)
    assert _cospend_kin((none, none), {10: COBALT}, np.zeros(20, np.bool_)) == {}
