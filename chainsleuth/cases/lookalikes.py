"""Tagged exchanges the wallet-style rule cannot tell apart: the case's look-alike warning.

An untagged exchange wallet is named after the one tagged exchange whose wallet habits it alone
shares (`trace.services.style_matches`). When two or three tagged exchanges show the same value
of every habit the rule reads, no fragment can be named after any of them: their customers'
deposits lead to `unidentified_service` rows (at best with `candidate_exchanges`), and recall
on those exchanges collapses (hard and realistic small 9: 0.329 and 0.516,
docs/accuracy-log.md "The two new worst worlds"). Nothing on the chain separates them, so
the case says so once, with the habits side by side: `lookalike_exchanges` in case.json, a
warning box and table in the report, one line in the CLI's summary. Read from the chain only
(the styles `cases.investigate._lend_by_style` read for each tagged exchange), never from a
simulator's truth. Called by `cases.investigate`; docs/design/cases.md "Look-alike exchanges".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from chainsleuth.cases.columns import string_equals
from chainsleuth.cases.rows import DEFAULT_CASHOUT_CUT
from chainsleuth.core.script_types import SCRIPT_TYPE_NAMES
from chainsleuth.trace.services import (
    STYLE_HABITS,
    STYLE_MIXED,
    WalletStyles,
    style_habits,
    style_lookalikes,
    style_reads,
)

__all__ = [
    "HABIT_LABELS",
    "LOOKALIKE_MAX_GROUPS",
    "count_unnamed_leads",
    "lookalike_exchanges",
    "lookalike_line",
]

#: How each habit of `STYLE_HABITS` is named to a reader, and what its count counts.
HABIT_LABELS: dict[str, tuple[str, str]] = {
    "hot_type": ("hot wallet script type", "batches"),
    "fingerprint": ("batch fingerprint (version, locktime, nSequence)", "batches"),
    "change_position": ("change position", "batches with change found"),
    "deposit_type": ("deposit script type", "sweeps"),
    "change_address": ("change address", "batches with change found"),
    "round_amounts": ("round amounts (fee not deducted)", "payments"),
    "output_order": ("output order (BIP69: sorted by value)", "batches"),
    "fee_rate": ("fee rate (whole sat/vB)", "batches and sweeps above 1 sat/vB"),
}

#: Groups listed at most: a group is a maximal set of mutually alike exchanges, and a chain with
#: many partly read tags could have many (each group is enumerated; the rest are counted).
LOOKALIKE_MAX_GROUPS = 50

_WORDS = {
    "change_position": {1: "last", 0: "elsewhere"},
    "change_address": {1: "fresh", 0: "reused"},
    "round_amounts": {1: "round", 0: "not round"},
    "output_order": {1: "sorted (BIP69)", 0: "not sorted"},
    "fee_rate": {1: "whole sat/vB", 0: "fractional"},
}


def _fingerprint_text(code: int) -> str:
    """`cluster.learned.read_fingerprints`'s code in words: version, locktime, first nSequence."""
    version = {0: "v0", 1: "v1", 2: "v2"}.get(code & 3, "v other")
    locktime = "locktime set" if code & 4 else "locktime 0"
    sequence = ("final", "0xfffffffe", "RBF", "other")[(code >> 3) & 3]
    return f"{version}, {locktime}, nSequence {sequence}"


def _value_text(habit: str, value: int) -> str:
    if value == STYLE_MIXED:
        return "mixed"
    if value < 0:
        return "not known"
    if habit in ("hot_type", "deposit_type"):
        return SCRIPT_TYPE_NAMES[value] if value < len(SCRIPT_TYPE_NAMES) else str(value)
    if habit == "fingerprint":
        return _fingerprint_text(value)
    return _WORDS[habit].get(value, str(value))


def _maximal_groups(alike: np.ndarray, limit: int) -> tuple[list[list[int]], bool]:
    """Maximal sets of 2+ rows all alike with each other (Bron-Kerbosch with a pivot), at most
    `limit`; and whether more were left out. `alike`: symmetric bool, a handful of rows."""
    n = alike.shape[0]
    adjacent = [set(np.flatnonzero(alike[i]).tolist()) - {i} for i in range(n)]
    found: list[list[int]] = []
    more = False

    def grow(r: set[int], p: set[int], x: set[int]) -> None:
        nonlocal more
        if more:
            return
        if not p and not x:
            if len(r) > 1:
                if len(found) == limit:
                    more = True
                    return
                found.append(sorted(r))
            return
        pivot = max(p | x, key=lambda u: len(adjacent[u] & p))
        for v in sorted(p - adjacent[pivot]):
            grow(r | {v}, p & adjacent[v], x & adjacent[v])
            p = p - {v}
            x = x | {v}

    grow(set(), set(range(n)), set())
    return sorted(found), more


def lookalike_exchanges(
    styles: WalletStyles | None, named: np.ndarray, names: list[str]
) -> dict[str, Any]:
    """case.json's `lookalike_exchanges`: the habits the style rules read for each tagged
    exchange, the groups of exchanges no read habit tells apart, and the exchanges whose
    wallet showed no habit at all.

    `styles`: the wallet styles `_lend_by_style` last compared (None: none read); `named`:
    the exchanges' groups in it; `names`: their names, in the same order. A group is a maximal
    set of two or more exchanges each pair of which `trace.services.style_lookalikes` finds
    alike; with each, the habits every member showed (`alike_on`) and, per habit some member
    did not show, who (`not_read`). An exchange that showed no habit (`unreadable`) is alike
    with every other and would join every group, so it is listed apart: while it is, the style
    rule names no fragment at all (its compatibility with every fragment leaves none with one
    candidate)."""
    out: dict[str, Any] = {
        "habits": list(STYLE_HABITS),
        "groups": [],
        "groups_left_out": 0,
        "unreadable": [],
        "exchanges": {},
        "warning": "",
    }
    if styles is None or named.shape[0] == 0:
        return out
    order = np.argsort(np.array(names, dtype=object), kind="stable")
    named = np.asarray(named, np.int64)[order]
    names = [names[i] for i in order.tolist()]
    habits = style_habits(styles, named)
    reads = style_reads(styles, named)
    alike, shows = style_lookalikes(styles, named)
    for i, name in enumerate(names):
        out["exchanges"][name] = {
            habit: {
                "value": _value_text(habit, int(habits[h][i])),
                "read": int(habits[h][i]) >= 0,
                "txs": int(reads[h][i]),
            }
            for h, habit in enumerate(STYLE_HABITS)
        }
    readable = np.flatnonzero(shows)
    groups, more = _maximal_groups(alike[np.ix_(readable, readable)], LOOKALIKE_MAX_GROUPS)
    for group in groups:
        members = readable[group]
        shown = [habits[h][members] >= 0 for h in range(len(STYLE_HABITS))]
        out["groups"].append(
            {
                "exchanges": [names[i] for i in members.tolist()],
                "alike_on": [hb for h, hb in enumerate(STYLE_HABITS) if shown[h].all()],
                "not_read": {
                    hb: [names[i] for i in members[~shown[h]].tolist()]
                    for h, hb in enumerate(STYLE_HABITS)
                    if not shown[h].all()
                },
            }
        )
    out["groups_left_out"] = int(more)
    out["unreadable"] = [names[i] for i in np.flatnonzero(~shows).tolist()]
    out["warning"] = _warning(out)
    return out


def count_unnamed_leads(section: dict[str, Any], leads: pa.Table) -> dict[str, Any]:
    """`section` (`lookalike_exchanges`) with, per group, what it costs this case: the deposit
    addresses with a lead to an unidentified service whose `candidate_exchanges` list two or
    more of the group (`unnamed_deposits`) and those rows' `amount_sat` (`unnamed_sat`); the
    warning's words say so. Reads the leads' columns once; one set test per distinct
    candidate set, not per row."""
    groups = section.get("groups") or []
    if not groups:
        return section
    column = leads.column("candidate_exchanges")
    # the rows with a candidate set (leads to unidentified services), found on the Arrow
    # column: Python strings only for those rows, not for every lead
    rows = np.flatnonzero(~string_equals(column.fill_null(""), ""))
    picked = pa.array(rows, pa.int64())
    sets = np.asarray(column.take(picked).to_numpy(zero_copy_only=False), dtype=object)
    distinct, inverse = np.unique(sets.astype(str), return_inverse=True)
    deposit = np.asarray(
        leads.column("deposit_address").take(picked).to_numpy(zero_copy_only=False)
    )
    amount = np.asarray(
        leads.column("amount_sat").take(picked).to_numpy(zero_copy_only=False), np.int64
    )
    named = [set(d.split(";")) for d in distinct.tolist()]
    out = dict(section)
    out["groups"] = []
    for g in groups:
        members = set(g["exchanges"])
        hits = np.array([len(members & n) >= 2 for n in named], np.bool_)
        take = hits[inverse] if rows.shape[0] else np.zeros(0, np.bool_)
        out["groups"].append(
            {
                **g,
                "unnamed_deposits": int(np.unique(deposit[take]).shape[0]),
                "unnamed_sat": int(amount[take].sum()),
            }
        )
    out["warning"] = _warning(out)
    return out


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _warning(section: dict[str, Any]) -> str:
    """The warning's words for a reader ('' when there is nothing to warn of)."""
    parts = []
    for g in section["groups"]:
        unread = "".join(
            f"; {HABIT_LABELS[h][0]} not read for {_and(who)}" for h, who in g["not_read"].items()
        )
        counted = ""
        if "unnamed_deposits" in g:
            n = g["unnamed_deposits"]
            counted = (
                f" In this case {n:,} deposit address{'es' if n != 1 else ''} "
                f"lead{'s' if n == 1 else ''} to unidentified services that could be any of "
                "them (candidate_exchanges in leads.csv)."
            )
        parts.append(
            f"Tagged exchanges {_and(g['exchanges'])} look alike on every wallet habit the "
            f"attribution rules read{unread}. Leads to an unidentified service may belong to "
            f"any of them, and the wallet-style rule cannot name their customers' deposits."
            + counted
        )
    if section["unreadable"]:
        who = section["unreadable"]
        parts.append(
            f"The tagged wallet{'s' if len(who) > 1 else ''} of {_and(who)} showed none of these "
            "habits (too little of the wallet is tagged or seen): it cannot be told from any "
            "exchange, and while it cannot, the wallet-style rule names no unidentified service."
        )
    return " ".join(parts)


def lookalike_line(groups: list[list[str]], unreadable: list[str]) -> str:
    """The CLI summary's one line ('' when there is nothing to warn of): `groups` and
    `unreadable` as in `lookalike_exchanges`."""
    said = ["+".join(g) for g in groups]
    if unreadable:
        said.append("no habit read: " + ", ".join(unreadable))
    if not said:
        return ""
    return (
        "Warning: tagged exchanges the wallet-style rule cannot tell apart ("
        + "; ".join(said)
        + "): leads to unidentified services may belong to any of them (case.json "
        "lookalike_exchanges, and the report)"
    )


def closed_world_line(resting: int, deciding: int = 0, carried: int = 0) -> str:
    """The CLI summary's and the report's one line on the wallet-style rule's closed-world
    assumption ('' when no deciding lead rests on it): `resting`, `deciding` and `carried` as
    in case.json's `closed_world` (`leads_resting_on_style`, `deciding_leads`,
    `leads_resting_on_style_carried`; 0: not known, a case.json from before the key)."""
    if resting <= 0:
        return ""
    # the deciding leads: per deposit its largest exchange lead at the cut (what a subpoena uses)
    of, which = (
        (
            f" of {deciding:,} subpoena-grade",
            f" (each deposit's largest exchange lead at confidence ≥ {DEFAULT_CASHOUT_CUT:g})",
        )
        if deciding > 0
        else ("", "")
    )
    through = f", {carried:,} of them through change links" if carried > 0 else ""
    return (
        f"{resting:,}{of} leads{which} rest on wallet style (name_basis style{through}): they "
        "assume the TagPacks tag every exchange active in the case; run with --no-style-names if not"
    )
