"""The case's look-alike warning (`cases.lookalikes`, issue 11; docs/design/cases.md "Look-alike
exchanges"): tagged exchanges that no habit the style rules read tells apart are grouped, with
the habits read for each side by side, and exchanges whose wallet showed no habit are listed
apart. Small chains built by hand (every tx, output and value spelled out), as in
test_candidate_exchanges.py, and hand-set styles for the grouping."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainsleuth.cases.investigate import _lend_by_style
from chainsleuth.cases.lookalikes import lookalike_exchanges, lookalike_line
from chainsleuth.cases.rows import UNIDENTIFIED_SERVICE
from chainsleuth.trace import services
from tests.trace.test_more_habits import DEDUCTED, ROUND, PayChain, Tx

NAMES = ("arcadia", "borealis", "cobalt", "dunmore")


class _Chain(PayChain):
    """A `PayChain` whose store also has each input's address (`blind_styles` reads it)."""

    def store(self) -> Any:
        store = super().store()
        paid = np.array([a for t in self.txs for a, _ in t.outputs], np.int64)
        store.graph.input_address = paid[store.graph.input_spent_output].astype(np.uint32)
        return store


def _lend(
    amounts: tuple[int, ...], blind: tuple[str, ...] = (), merchant: bool = False
) -> tuple[np.ndarray, dict[str, Any], dict]:
    """Wallets alike on hot type, fingerprint, change last and fresh change, each paying 9
    batches of 6 payees of `amounts[w]`: all but the last tagged exchanges (`NAMES`, or the
    first a merchant), the last an untagged service. `blind`: more tagged exchanges whose tags
    fall on clusters that never transact. Returns `_lend_by_style`'s clusters named, its
    look-alike section and the attribution after it."""
    c = _Chain()
    n = len(amounts)
    funder = c.add(Tx([], [(c.fresh(), n * 100_000_000)]))
    hot = [c.fresh() for _ in range(n)]
    coins = c.add(Tx(funder, [(a, 100_000_000) for a in hot]))
    wallets = [[h] for h in hot]
    for w, amount in enumerate(amounts):
        c.pay(coins[w], wallets[w], 9, amount)
    cluster_of = np.arange(c.next_address)
    for w, members in enumerate(wallets):
        cluster_of[members] = 1_000 + w
    attribution: dict[int, tuple[str | None, str]] = {
        1_000 + w: (NAMES[w], "merchant" if merchant and w == 0 else "exchange")
        for w in range(n - 1)
    }
    attribution[1_000 + n - 1] = ("cluster:7", UNIDENTIFIED_SERVICE)
    for i, name in enumerate(blind):
        attribution[5_000 + i] = (name, "exchange")  # a tag on a cluster with no tx
    lookalikes: dict[str, Any] = {}
    fingerprint = np.ones(len(c.txs), np.int64)
    named = _lend_by_style(
        c.store(), c.shapes(cluster_of), cluster_of, attribution, fingerprint, None, lookalikes
    )
    return named, lookalikes, attribution


def test_exchanges_alike_on_every_read_habit_form_a_group_with_their_habits_read() -> None:
    # arcadia and borealis send round amounts like the service; cobalt deducts its fee
    named, section, _ = _lend((ROUND, ROUND, DEDUCTED, ROUND))
    assert named.tolist() == []  # the service fits both: the style rule names neither
    assert [g["exchanges"] for g in section["groups"]] == [["arcadia", "borealis"]]
    group = section["groups"][0]
    # no sweep on these chains: the deposit type is read for neither; nor the output order (6
    # equal payments and the change: too few distinct values) or the fee rate (no sizes)
    both = ["arcadia", "borealis"]
    assert group["not_read"] == {"deposit_type": both, "output_order": both, "fee_rate": both}
    assert group["alike_on"] == [
        "hot_type", "fingerprint", "change_position", "change_address", "round_amounts"
    ]  # fmt: skip
    assert section["unreadable"] == []
    arcadia, cobalt = section["exchanges"]["arcadia"], section["exchanges"]["cobalt"]
    assert arcadia["hot_type"] == {"value": "p2wpkh", "read": True, "txs": 9}
    assert arcadia["change_position"] == {"value": "last", "read": True, "txs": 8}
    assert arcadia["round_amounts"]["value"] == "round"
    assert cobalt["round_amounts"] == {"value": "not round", "read": True, "txs": 55}
    assert arcadia["deposit_type"] == {"value": "not known", "read": False, "txs": 0}
    warning = section["warning"]
    assert "arcadia and borealis look alike" in warning and "cobalt" not in warning
    assert "deposit script type not read for arcadia and borealis" in warning


def test_exchanges_a_read_habit_tells_apart_give_no_warning() -> None:
    named, section, attribution = _lend((ROUND, DEDUCTED, ROUND))
    assert named.tolist() == [1_002] and attribution[1_002] == ("arcadia", "exchange")
    assert section["groups"] == [] and section["unreadable"] == []
    assert section["warning"] == ""
    assert sorted(section["exchanges"]) == ["arcadia", "borealis"]
    assert lookalike_line([], []) == ""


def test_a_tag_that_shows_nothing_is_listed_apart_and_blocks_every_style_name() -> None:
    # without it the service is arcadia's (the one round-amount exchange) ...
    named, _, _ = _lend((ROUND, DEDUCTED, DEDUCTED, ROUND))
    assert named.tolist() == [1_003]
    # ... with it, nothing is named: what the warning says
    named, section, _ = _lend((ROUND, DEDUCTED, DEDUCTED, ROUND), blind=("ember",))
    assert named.tolist() == []
    assert section["unreadable"] == ["ember"]
    assert [g["exchanges"] for g in section["groups"]] == [["borealis", "cobalt"]]
    assert all(not h["read"] for h in section["exchanges"]["ember"].values())
    assert "ember showed none of these habits" in section["warning"]
    line = lookalike_line([g["exchanges"] for g in section["groups"]], section["unreadable"])
    assert "borealis+cobalt" in line and "no habit read: ember" in line


def test_only_exchanges_are_compared() -> None:
    # arcadia is a merchant here: alike with borealis, but not an exchange to warn of
    _, section, _ = _lend((ROUND, ROUND, DEDUCTED, ROUND), merchant=True)
    assert sorted(section["exchanges"]) == ["borealis", "cobalt"]
    assert section["groups"] == []


def _styles(rows: list[tuple[int, int, int, int, int]]) -> services.WalletStyles:
    """Rows of (hot type, fingerprint, deposit type, change last, change elsewhere)."""
    a = np.array(rows, np.int64)
    return services.WalletStyles(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4],
                                 np.zeros(len(rows), np.bool_))  # fmt: skip


def test_groups_are_the_maximal_sets_alike_pair_by_pair() -> None:
    p2sh, p2wpkh, unseen = 3, 4, services.STYLE_UNSEEN
    s = _styles([
        (p2sh, 1, p2wpkh, 5, 0),  # 0 a
        (p2sh, unseen, unseen, 5, 0),  # 1 b: alike with a and with c
        (p2sh, 2, p2wpkh, 5, 0),  # 2 c: another fingerprint than a
        (p2wpkh, 1, p2wpkh, 5, 0),  # 3 d: another hot type than all
        (unseen, unseen, unseen, 0, 0),  # 4 e: shows nothing
    ])  # fmt: skip
    section = lookalike_exchanges(s, np.arange(5), ["a", "b", "c", "d", "e"])
    assert [g["exchanges"] for g in section["groups"]] == [["a", "b"], ["b", "c"]]
    assert section["groups"][0]["not_read"]["fingerprint"] == ["b"]
    assert section["unreadable"] == ["e"]
    # counts not kept by hand-set styles: -1, not a made-up 0
    assert section["exchanges"]["a"]["hot_type"]["txs"] == -1
    assert section["exchanges"]["a"]["fingerprint"]["value"] == "v1, locktime 0, nSequence final"
    # names sorted whatever the order given
    again = lookalike_exchanges(s, np.array([4, 3, 2, 1, 0]), ["e", "d", "c", "b", "a"])
    assert again == section


def test_no_exchange_or_no_styles_is_an_empty_section() -> None:
    empty = lookalike_exchanges(None, np.zeros(0, np.int64), [])
    assert empty["groups"] == [] and empty["unreadable"] == [] and empty["warning"] == ""
    assert empty["habits"] == list(services.STYLE_HABITS)


# ------------------------------------------------------------ against a simulated world's truth
#: How the truth's habits (world.json `exchange_habits`) read on the chain, habit by habit.
TRUTH_READS = {
    "hot_type": lambda h: h["wallet_stype"],
    "deposit_type": lambda h: h["deposit_stype"],
    "change_position": lambda h: "last" if h["change_last"] else "elsewhere",
    "change_address": lambda h: "fresh" if h["fresh_change"] else "reused",
    "round_amounts": lambda h: "not round" if h["deducts_fee"] else "round",
}


def check_against_truth(world: Path, case: Path) -> dict[str, Any]:
    """Assert that case.json's `lookalike_exchanges` agrees with the simulator's truth: every
    habit read for a tagged exchange is its true habit, every pair the warning groups is a
    pair of style twins by the truth (`bench.accuracy_matrix.style_twins`), and every pair of
    true twins is grouped or has an exchange that showed no habit. Returns the section."""
    from bench.accuracy_matrix import style_twins

    habits = json.loads((world / "world.json").read_text())["exchange_habits"]
    section = json.loads((case / "case.json").read_text())["lookalike_exchanges"]
    assert set(section["exchanges"]) <= set(habits)
    wrong = [
        (name, habit, got["value"])
        for name, read in section["exchanges"].items()
        for habit, got in read.items()
        if got["read"] and habit in TRUTH_READS and got["value"] != TRUTH_READS[habit](habits[name])
    ]
    assert wrong == []
    pairs = {frozenset(p) for g in style_twins(habits) for p in itertools.combinations(g, 2)}
    grouped = {
        frozenset(p) for g in section["groups"] for p in itertools.combinations(g["exchanges"], 2)
    }
    assert grouped <= pairs
    assert all(p in grouped or p & set(section["unreadable"]) for p in pairs)
    return section


def test_the_summary_line_names_the_groups(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from rich.console import Console

    from chainsleuth.cases.demo import print_summary
    from chainsleuth.cases.investigate import CASHOUT_COLUMNS, InvestigationSummary

    case = tmp_path
    (case / "cashouts.csv").write_text(",".join(CASHOUT_COLUMNS) + "\n")

    def summary(groups: list[list[str]], unreadable: list[str]) -> str:
        print_summary(
            InvestigationSummary(case, 1, 1, 1, 0, 0, 0, 0, 1, {}, {}, lookalike_exchanges=groups,
                                 unreadable_exchanges=unreadable),
            Console(width=100, file=sys.stdout),
        )  # fmt: skip
        return capsys.readouterr().out

    out = summary([["arcadia", "cobalt"]], ["borealis"])
    line = [x for x in out.splitlines() if x.startswith("Warning")]
    assert len(line) == 1
    assert "(arcadia+cobalt; no habit read: borealis)" in line[0]
    assert "Warning" not in summary([], [])


def test_each_group_counts_the_deposits_whose_leads_could_be_any_of_it() -> None:
    import pyarrow as pa

    from chainsleuth.cases.lookalikes import count_unnamed_leads

    s = _styles([(3, 1, 4, 5, 0), (3, 1, 4, 5, 0), (4, 1, 4, 5, 0)])
    section = lookalike_exchanges(s, np.arange(3), ["arcadia", "borealis", "cobalt"])
    leads = pa.table(
        {
            "deposit_address": ["d1", "d1", "d2", "d3", "d4", "d5"],
            "candidate_exchanges": [
                "arcadia;borealis", "arcadia;borealis", "arcadia;borealis;cobalt",
                "arcadia;cobalt", "", None,
            ],
            "amount_sat": [10, 20, 30, 40, 50, 60],
        }
    )  # fmt: skip
    counted = count_unnamed_leads(section, leads)
    # d1 (two rows) and d2 list both of the group; d3 lists one of it only
    assert counted["groups"][0]["unnamed_deposits"] == 2
    assert counted["groups"][0]["unnamed_sat"] == 60
    assert "2 deposit addresses lead to unidentified services" in counted["warning"]
    assert "unnamed_deposits" not in section["groups"][0]  # the section given is not changed
    empty = lookalike_exchanges(None, np.zeros(0, np.int64), [])
    assert count_unnamed_leads(empty, leads) == empty
