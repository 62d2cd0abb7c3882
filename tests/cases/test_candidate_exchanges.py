"""The leads' `candidate_exchanges` (issue 11, docs/accuracy-log.md "Candidate exchanges"): an
untagged service whose wallet style two or more tagged exchanges share stays unnamed, and its
leads list those exchanges as whom to ask, never as the lead's exchange
(`trace.services.style_candidates`, `cases.investigate._lend_by_style`). Small chains built by
hand: every tx, output and value is spelled out."""

from __future__ import annotations

import numpy as np

from chainsleuth.cases.investigate import _lend_by_style
from chainsleuth.cases.rows import LEAD_COLUMNS, UNIDENTIFIED_SERVICE, _candidate_exchanges
from chainsleuth.trace import services
from tests.trace.test_more_habits import DEDUCTED, ROUND, PayChain, Tx

NAMES = ("arcadia", "borealis", "cobalt")


def _lend(
    amounts: tuple[int, int, int, int], lend: bool = True, habits: dict | None = None
) -> tuple[np.ndarray, dict, dict]:
    """Four wallets alike on hot type, fingerprint, change last and fresh change, each paying 9
    batches of 6 payees of `amounts[w]`: 0-2 tagged exchanges (arcadia, borealis, cobalt), 3 an
    untagged service. Returns `_lend_by_style`'s clusters named, its candidate sets and the
    attribution after it (`lend`, `habits`: its `lend` and `exchange_habits`)."""
    c = PayChain()
    funder = c.add(Tx([], [(c.fresh(), 400_000_000)]))
    hot = [c.fresh() for _ in range(4)]
    coins = c.add(Tx(funder, [(a, 100_000_000) for a in hot]))
    wallets = [[h] for h in hot]
    for w, amount in enumerate(amounts):
        c.pay(coins[w], wallets[w], 9, amount)
    cluster_of = np.arange(c.next_address)
    for w, members in enumerate(wallets):
        cluster_of[members] = 1_000 + w
    attribution: dict[int, tuple[str | None, str]] = {
        1_000 + w: (n, "exchange") for w, n in enumerate(NAMES)
    }
    attribution[1_003] = ("cluster:7", UNIDENTIFIED_SERVICE)
    candidates: dict[tuple[str | None, str], str] = {}
    fingerprint = np.ones(len(c.txs), np.int64)
    named = _lend_by_style(
        c.store(), c.shapes(cluster_of), cluster_of, attribution, fingerprint, candidates,
        exchange_habits=habits, lend=lend,
    )  # fmt: skip
    return named, candidates, attribution


def test_a_service_compatible_with_two_exchanges_lists_both_and_takes_neither_name() -> None:
    # arcadia and borealis send round amounts like the service; cobalt deducts its fee
    named, candidates, attribution = _lend((ROUND, ROUND, DEDUCTED, ROUND))
    assert named.tolist() == []
    assert attribution[1_003] == ("cluster:7", UNIDENTIFIED_SERVICE)
    assert candidates == {("cluster:7", UNIDENTIFIED_SERVICE): "arcadia;borealis"}


def test_no_set_when_every_exchange_or_only_one_is_compatible() -> None:
    # all three alike: the set would narrow nothing
    named, candidates, _ = _lend((ROUND, ROUND, ROUND, ROUND))
    assert named.tolist() == [] and candidates == {}
    # one alike: the style rule names it, and no set is left
    named, candidates, attribution = _lend((ROUND, DEDUCTED, DEDUCTED, ROUND))
    assert named.tolist() == [1_003] and attribution[1_003] == ("arcadia", "exchange")
    assert candidates == {}


def _styles(rows: list[tuple[int, int, int, int, int, bool]]) -> services.WalletStyles:
    """Rows of (hot type, fingerprint, deposit type, change last, change elsewhere, coinbase)."""
    a = np.array([r[:5] for r in rows], np.int64)
    return services.WalletStyles(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4],
                                 np.array([r[5] for r in rows], np.bool_))  # fmt: skip


def test_style_candidates_lists_exchanges_only_and_never_for_a_pool() -> None:
    p2sh, p2wpkh = 3, 4
    s = _styles([
        (p2sh, 1, p2wpkh, 5, 0, False),  # 0 exchange
        (p2sh, 1, p2wpkh, 5, 0, False),  # 1 exchange
        (p2sh, 1, p2wpkh, 5, 0, False),  # 2 a named merchant (not listed)
        (p2wpkh, 1, p2wpkh, 5, 0, False),  # 3 exchange of another hot type
        (p2sh, 1, p2wpkh, 3, 0, False),  # 4 candidate: 0, 1 (and 2, not listed)
        (p2sh, 1, p2wpkh, 3, 0, True),  # 5 the same, received a coinbase
        (p2sh, 1, services.STYLE_UNSEEN, 0, 0, False),  # 6 hot type shown only: 0, 1
    ])  # fmt: skip
    named = np.array([0, 1, 2, 3])
    listed = np.array([True, True, False, True])
    got = services.style_candidates(s, named, np.array([4, 5, 6]), listed)
    assert got.tolist() == [
        [True, True, False, False],
        [False, False, False, False],
        [True, True, False, False],
    ]


def test_the_lead_column_is_empty_on_attributed_rows() -> None:
    assert "candidate_exchanges" in LEAD_COLUMNS
    sets = {("cluster:7", UNIDENTIFIED_SERVICE): "arcadia;borealis"}
    entity = np.array(["cluster:7", "arcadia", "cluster:8", "coinjoin", "cluster:7"], object)
    category = np.array(
        [UNIDENTIFIED_SERVICE, "exchange", UNIDENTIFIED_SERVICE, "coinjoin", UNIDENTIFIED_SERVICE],
        object,
    )
    attributed = np.array([True, True, True, False, True])
    got = _candidate_exchanges(entity, category, attributed, sets)
    assert got.tolist() == ["arcadia;borealis", "", "", "", "arcadia;borealis"]
    assert _candidate_exchanges(entity, category, attributed, None).tolist() == [""] * 5
