"""`trace.services.style_matches`: an untagged service takes a name only when one tagged
wallet alone shares its habits (issue 11, docs/investigations.md "Wallet styles")."""

from __future__ import annotations

import numpy as np

from chainsleuth.trace.services import STYLE_UNSEEN, WalletStyles, style_matches

P2PKH, P2SH, P2WPKH = 2, 3, 4  # any distinct codes


def _styles(rows: list[tuple[int, int, int, int, int, bool]]) -> WalletStyles:
    """Rows of (hot type, fingerprint, deposit type, change last, change elsewhere, coinbase)."""
    a = np.array([r[:5] for r in rows], np.int64)
    return WalletStyles(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4],
                        np.array([r[5] for r in rows], np.bool_))  # fmt: skip


def test_one_compatible_named_wallet_lends_its_name() -> None:
    s = _styles(
        [
            (P2SH, 1, P2PKH, 9, 0, False),  # 0: named, change last
            (P2SH, 1, P2SH, 0, 9, False),  # 1: named, shuffles its outputs
            (P2PKH, 1, P2SH, 1, 9, False),  # 2: named, another hot type
            (P2SH, 1, STYLE_UNSEEN, 4, 0, False),  # 3: change last -> 0
            (P2SH, 1, STYLE_UNSEEN, 0, 1, False),  # 4: change elsewhere once -> 1
            (P2SH, 1, P2SH, 0, 0, False),  # 5: position unseen, deposits P2SH -> 1
            (P2SH, 1, STYLE_UNSEEN, 1, 0, False),  # 6: one batch, change last: not known
            (P2WPKH, 1, P2SH, 0, 3, False),  # 7: no named wallet has this hot type
            (P2SH, 1, STYLE_UNSEEN, 5, 0, True),  # 8: received coinbase: a pool
            (P2SH, 2, STYLE_UNSEEN, 5, 0, False),  # 9: another fingerprint
        ]
    )
    got = style_matches(s, np.array([0, 1, 2]), np.arange(3, 10))
    assert got.tolist() == [0, 1, 1, -1, -1, -1, -1]


def test_a_named_wallet_whose_habits_are_not_seen_blocks_every_match() -> None:
    s = _styles(
        [
            (P2SH, 1, P2PKH, 9, 0, False),  # named, change last
            (STYLE_UNSEEN, STYLE_UNSEEN, STYLE_UNSEEN, 0, 0, False),  # named: tags on cold only
            (P2SH, 1, STYLE_UNSEEN, 4, 0, False),  # would match the first alone
        ]
    )
    assert style_matches(s, np.array([0, 1]), np.array([2])).tolist() == [-1]
    # its deposit type seen and different: it no longer blocks a candidate that shows its own
    s2 = _styles(
        [
            (P2SH, 1, P2PKH, 9, 0, False),
            (STYLE_UNSEEN, STYLE_UNSEEN, P2WPKH, 0, 0, False),
            (P2SH, 1, P2PKH, 4, 0, False),
        ]
    )
    assert style_matches(s2, np.array([0, 1]), np.array([2])).tolist() == [0]


def test_two_named_wallets_of_one_style_lend_neither() -> None:
    s = _styles(
        [
            (P2SH, 1, P2PKH, 9, 0, False),
            (P2SH, 1, P2PKH, 7, 0, False),
            (P2SH, 1, P2PKH, 4, 0, False),
        ]
    )
    assert style_matches(s, np.array([0, 1]), np.array([2])).tolist() == [-1]
