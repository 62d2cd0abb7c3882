"""Issue 11 on the hard simulated profile (small scale, seed 2): what holds today.

Measured on this world (docs/investigations.md, `python -m bench.accuracy_matrix`): lead
precision at confidence >= 0.5 is 0.982 (0.934-0.988 over the hard seeds and scales: the rest
mostly deposits an untagged exchange forwarded straight to a buyer), no CoinJoin-only deposit
above 0.25, no unpaid deposit named, cash-out precision 1.000 and recall 0.923. Lead recall is
below the issue's targets (0.809 here, 0.359 before wallet styles lent names); the docs say
so and why. These tests hold what is
measured, and the service-entity links that lend an exchange's tag to its untagged clusters
must keep to one owner.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.accuracy_matrix import build_case
from chainsleuth.cases.evaluate import lead_outcomes, score_case

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Its own world, not the session's small one: these are the hard profile's figures (seed 2),
    # built by the accuracy bench's own `build_case` so that test and bench measure one thing.
    root = tmp_path_factory.mktemp("hard-case")
    build_case(root, "hard", "small", 2)
    return root


def test_leads_at_half_confidence_are_right(hard: Path) -> None:
    s = score_case(hard / "world", hard / "case")
    assert s.named > 30
    assert s.lead_precision >= 0.98  # measured 0.992 (issue 11's target: 0.98)
    # measured 0.809; 0.359 before untagged services were named after their wallet style
    assert s.lead_recall >= 0.75
    assert s.coinjoin_only_deposits > 0 and s.coinjoin_attributed_above_cap == 0
    assert s.unpaid_attributed == 0


def test_cashouts_reported_are_cashouts(hard: Path) -> None:
    s = score_case(hard / "world", hard / "case")
    assert s.cashouts_reported > 0
    assert s.cashout_precision >= 0.9  # measured 1.000
    assert s.cashout_recall >= 0.85  # measured 0.923 (0.808 before sweeps stepped back)
    assert s.cashout_total_ratio <= 1.1  # traced amounts: never the destination's whole value


def test_untagged_services_are_reported_not_walked_through(hard: Path) -> None:
    with open(hard / "case" / "services.csv", newline="") as f:
        services = list(csv.DictReader(f))
    assert services and all(int(r["batches"]) >= 0 for r in services)
    with open(hard / "case" / "leads.csv", newline="") as f:
        leads = list(csv.DictReader(f))
    unidentified = [r for r in leads if r["source_category"] == "unidentified_service"]
    assert unidentified and all(float(r["confidence"]) == 0.0 for r in unidentified)
    assert {int(r["source_cluster"]) for r in unidentified} <= {
        int(r["cluster_id"]) for r in services
    }


def test_service_entity_links_join_one_owner(hard: Path) -> None:
    from chainsleuth.cluster.engine import Clusters
    from chainsleuth.store.store import Store
    from chainsleuth.trace.exposure import coinjoin_flags
    from chainsleuth.trace.services import service_entities, tx_shapes

    store = Store.open(hard / "store")
    cluster_of = np.asarray(Clusters(hard / "store").cluster_of, np.int64)
    is_coinjoin, _ = coinjoin_flags(hard / "store", store.counts["txs"])
    nodes, entity = service_entities(tx_shapes(store, cluster_of, is_coinjoin))
    assert nodes.shape[0] > 100
    with open(hard / "world" / "truth" / "addresses.csv", newline="") as f:
        owner = {r["address"]: r["wallet_id"] for r in csv.DictReader(f)}
    ids = store.sql("SELECT address_id, address FROM address_list_raw").to_pydict()
    owner_of = np.empty(cluster_of.shape[0], object)
    owner_of[np.asarray(ids["address_id"])] = [owner.get(a, "unknown") for a in ids["address"]]
    # addresses of each entity by owner; the base clustering has a few false merges of its own
    # on this profile (a customer's address in an exchange's cluster), which an entity inherits
    in_entity = dict(zip(nodes.tolist(), entity.tolist(), strict=True))
    members = np.flatnonzero(np.isin(cluster_of, nodes))
    per: dict[int, Counter[str]] = defaultdict(Counter)
    for a in members.tolist():
        per[in_entity[int(cluster_of[a])]][owner_of[a]] += 1
    stray = sum(sum(c.values()) - c.most_common(1)[0][1] for c in per.values())
    assert stray <= 0.01 * members.shape[0]  # strays come from the base clusters


def test_hot_change_links_name_their_owner(hard: Path) -> None:
    """A one-input, two-payee tx paying a hot wallet's cluster is that service's own spend."""
    from chainsleuth.cluster.engine import Clusters
    from chainsleuth.store.store import Store
    from chainsleuth.trace.exposure import coinjoin_flags
    from chainsleuth.trace.services import hot_change_links, service_stats, tx_shapes

    store = Store.open(hard / "store")
    cluster_of = np.asarray(Clusters(hard / "store").cluster_of, np.int64)
    is_coinjoin, _ = coinjoin_flags(hard / "store", store.counts["txs"])
    shapes = tx_shapes(store, cluster_of, is_coinjoin)
    a, b = hot_change_links(shapes, cluster_of, service_stats(shapes, cluster_of))
    assert a.shape[0] > 100
    with open(hard / "world" / "truth" / "addresses.csv", newline="") as f:
        owner = {r["address"]: r["entity"] or r["wallet_id"] for r in csv.DictReader(f)}
    ids = store.sql("SELECT address_id, address FROM address_list_raw").to_pydict()
    owner_of = np.empty(cluster_of.shape[0], object)
    owner_of[np.asarray(ids["address_id"])] = [owner.get(x, "unknown") for x in ids["address"]]
    # each cluster's main owner (the base clusters carry a few false merges of their own)
    main: dict[int, str] = {}
    for c in np.unique(np.concatenate([a, b])).tolist():
        main[c] = Counter(owner_of[cluster_of == c].tolist()).most_common(1)[0][0]
    wrong = sum(main[x] != main[y] for x, y in zip(a.tolist(), b.tolist(), strict=True))
    assert wrong <= 0.03 * a.shape[0]  # measured 8 of 339


def test_hold_days_is_the_longest_wait_on_the_path_and_lowers_confidence(hard: Path) -> None:
    """`hold_days` is the longest time between two consecutive txs of the lead's largest path
    (recomputed here from the store's block times), a longer hold never raises confidence, and
    an exchange lead held longer than LONG_HOLD_DAYS says so in its caution and sits below
    the cut where its path shows or cannot show a change of hands (rows.long_hold_capped)."""
    from chainsleuth.cases.confidence import calibration
    from chainsleuth.cases.rows import (
        FORWARD_CAUTIONS,
        LONG_HOLD_CAP,
        LONG_HOLD_DAYS,
        LONG_HOLD_MAX_HOPS,
        LONG_HOLD_MIN_HOPS,
        OWN_FORWARD,
    )
    from chainsleuth.store.store import Store

    store = Store.open(hard / "store")
    tx_height = np.asarray(store.array("tx_height"))
    rows = store.sql("SELECT height, epoch(time)::BIGINT AS t FROM blocks")
    epoch = dict(zip(rows.column("height").to_pylist(), rows.column("t").to_pylist(), strict=True))
    with open(hard / "case" / "leads.csv", newline="") as f:
        leads = [r for r in csv.DictReader(f) if r["path"]]
    held = Counter()
    for r in leads[:400]:
        txs = r["path"].split("|")[0].split(";")
        times = [epoch[int(tx_height[store.tx_id_of(t)])] for t in txs]
        gaps = [abs(b - a) for a, b in zip(times, times[1:], strict=False)]
        want = max(gaps, default=0) / 86400
        assert float(r["hold_days"]) == pytest.approx(want, abs=0.006), r["deposit_address"]
        held[want > 7] += 1
    assert held[True] > 0 and held[False] > 0  # the world has both
    exchange = [r for r in leads if r["source_category"] == "exchange"]
    long_held = [r for r in exchange if float(r["hold_days"]) > LONG_HOLD_DAYS]
    assert long_held, "the hard world has exchange leads held for over a month"
    lifted = []
    for r in exchange:
        is_long = float(r["hold_days"]) > LONG_HOLD_DAYS
        caution = set(r["caution"].split(";"))
        if OWN_FORWARD in caution:
            # the hold is read from the named exchange's own forward on (rows.own_forward_at):
            # hold_days stays the whole path's, the caution the shorter path's
            is_long = is_long and "long_hold" in caution
        assert ("long_hold" in caution) == is_long
        short_path = LONG_HOLD_MIN_HOPS <= int(r["hops"]) <= LONG_HOLD_MAX_HOPS
        if is_long and (caution & FORWARD_CAUTIONS or not short_path):
            assert float(r["confidence"]) <= LONG_HOLD_CAP < 0.5
        elif is_long and float(r["confidence"]) >= 0.5:
            lifted.append(r)
    # a long hold on a path of three or four txs with no sign of a change of hands ships the
    # model's value: those at the cut or above name an exchange that funded the deposit
    outcomes = lead_outcomes(hard / "world", hard / "case")
    right = {(o["deposit_address"], o["exchange"]) for o in outcomes if o["correct"]}
    for r in lifted:
        assert (r["deposit_address"], r["source_entity"]) in right, r["deposit_address"]
    c = calibration()
    one = np.ones(3)
    # (holds of two and ten months on a long path with a small share, which keep even the
    # shortest hold below the calibration's ceiling whatever the fit)
    p = c.lead("haircut", 40 * one, 1e-4 * one, 0 * one, 0 * one, np.array([0.0, 60.0, 300.0]))
    assert p[0] > p[1] > p[2]


def test_wallet_styles_name_their_owner(hard: Path) -> None:
    """Untagged services named after a tagged wallet's style (`attributed_via` = wallet_style)
    are that exchange's: every address of the clusters named so, by the truth's owner."""
    from chainsleuth.cases.investigate import prepare_case
    from chainsleuth.store.store import Store

    setup = prepare_case(hard / "store", hard / "world" / "seeds" / "deposits.csv")
    styled = setup.styled_clusters
    assert styled.shape[0] > 100  # measured 515
    with open(hard / "world" / "truth" / "addresses.csv", newline="") as f:
        owner = {r["address"]: r["entity"] or r["wallet_id"] for r in csv.DictReader(f)}
    store = Store.open(hard / "store")
    members = np.flatnonzero(np.isin(setup.cluster_of, styled))
    addresses = store.addresses(members).to_pylist()
    named = [setup.attribution[int(setup.cluster_of[a])][0] for a in members.tolist()]
    wrong = sum(owner.get(x) != n for x, n in zip(addresses, named, strict=True))
    assert wrong <= 0.005 * members.shape[0]  # measured 2 of 2,145 (strays of the base clusters)
    with open(hard / "case" / "leads.csv", newline="") as f:
        via = Counter(
            r["attributed_via"] for r in csv.DictReader(f) if r["source_category"] == "exchange"
        )
    assert via["wallet_style"] > 0 and via["tag"] > 0


def test_style_names_off_names_no_wallet_by_style(hard: Path) -> None:
    """`style_names=False` (`--no-style-names`): no cluster is named through its wallet style,
    and the hard world's case.json counts the deciding leads that rest on such a name."""
    from chainsleuth.cases.investigate import prepare_case
    from tests.cases.test_style_names import _closed_world_from_leads

    setup = prepare_case(
        hard / "store", hard / "world" / "seeds" / "deposits.csv", style_names=False
    )
    assert setup.styled_clusters.shape[0] == 0
    closed = json.loads((hard / "case" / "case.json").read_text())["closed_world"]
    assert closed["style_names"] is True
    assert closed == {"style_names": True, **_closed_world_from_leads(hard / "case")}
    assert closed["deciding_leads"] > closed["leads_resting_on_style"] > 0


def _exchange_lead_paths(hard: Path) -> tuple[Any, list[dict[str, str]], np.ndarray]:
    """The store, the case's exchange leads with a path, and their largest paths as a tx id
    matrix (funding tx first, -1-padded)."""
    from chainsleuth.store.store import Store

    store = Store.open(hard / "store")
    with open(hard / "case" / "leads.csv", newline="") as f:
        leads = [r for r in csv.DictReader(f) if r["path"] and r["source_category"] == "exchange"]
    paths = [[store.tx_id_of(t) for t in r["path"].split("|")[0].split(";")] for r in leads]
    width = max(len(p) for p in paths)
    matrix = np.array([p + [-1] * (width - len(p)) for p in paths], np.int64)
    return store, leads, matrix


def test_forward_signs_hold_leads_below_the_cut(hard: Path) -> None:
    """Exchange leads whose largest path shows an exchange's forward (`forward_signs`,
    recomputed here from the store) carry it in `caution` and sit below FORWARD_CAP; the
    others do not carry it."""
    from chainsleuth.cases.rows import FORWARD_CAP, forward_signs

    store, leads, matrix = _exchange_lead_paths(hard)
    switched, send_all = forward_signs(store.graph, matrix)
    flagged = own_forward = 0
    for r, s, a in zip(leads, switched.tolist(), send_all.tolist(), strict=True):
        reasons = r["caution"].split(";")
        if "own_forward" in reasons:
            # read from the named exchange's own forward on (rows.own_forward_at): a sign of
            # the whole path may be gone, none added
            s, a = s and "switched_type" in reasons, a and "send_all_hop" in reasons
            own_forward += 1
        assert ("switched_type" in reasons) == s and ("send_all_hop" in reasons) == a
        if s or a:
            flagged += 1
            assert float(r["confidence"]) <= FORWARD_CAP < 0.5
    assert flagged > 0  # the hard world has such leads
    assert own_forward > 0  # some read from their exchange's own forward on (matrix: 6 rows)


def test_fingerprint_changes_hold_leads_below_the_cut(hard: Path) -> None:
    """Exchange leads whose largest path after the funding tx carries two wallet fingerprints
    (`fingerprint_change`, recomputed here from the store) say so in `caution` and sit below
    FORWARD_CAP; the others do not say so. Measured on this world (hard small 2): lead recall
    0.840 -> 0.833, precision 0.992 unchanged; on hard small 1-7 it held back 8 wrong deciding
    leads (docs/accuracy-log.md "Fingerprint changes and change-spend majorities")."""
    from chainsleuth.cases.rows import FORWARD_CAP, fingerprint_change
    from chainsleuth.cluster.engine import Clusters
    from chainsleuth.cluster.learned import read_fingerprints
    from chainsleuth.trace.exposure import coinjoin_flags, one_wallet_txs

    store, leads, matrix = _exchange_lead_paths(hard)
    # the CoinJoins the case stops at (one-wallet ones are walked as that wallet's txs): their
    # fingerprint is the round's, left out of the sign (a change walked back, trace.mix_change)
    mix_tx, _ = coinjoin_flags(hard / "store", store.counts["txs"])
    cluster_of = np.asarray(Clusters(hard / "store").cluster_of, np.int64)
    mix_tx &= ~one_wallet_txs(store, cluster_of, only=mix_tx)
    fingerprint = read_fingerprints(store, 0, store.counts["txs"])
    changed = fingerprint_change(fingerprint, matrix, mix_tx)
    for r, c in zip(leads, changed.tolist(), strict=True):
        reasons = r["caution"].split(";")
        if "own_forward" in reasons:
            c = c and "fingerprint_change" in reasons  # gone or kept, never added
        assert ("fingerprint_change" in reasons) == c
        if c:
            assert float(r["confidence"]) <= FORWARD_CAP < 0.5
    assert changed.sum() > 0


def test_deposits_paid_from_a_coinjoins_change_are_named_right(hard: Path) -> None:
    """A deposit paid from a CoinJoin's change that amounts tie to one input is walked back
    through that input (`trace.mix_change`): on this world (hard small 2) such leads at >= 0.5
    exist and every one names the exchange that funded the payer; before, each of those
    deposits ended at the mixer (lead recall 0.871 -> 0.888, precision 0.992 unchanged)."""
    outcomes = lead_outcomes(hard / "world", hard / "case", 0.5)
    through = [o for o in outcomes if "coinjoin_change" in o["caution"].split(";")]
    assert len(through) >= 3  # measured 6
    assert all(o["correct"] for o in through)


def test_handoff_signs_hold_leads_below_the_cut(hard: Path) -> None:
    """Exchange leads whose largest path shows a hand-off on an intermediate tx
    (`handoff_signs`; the two read from the graph alone are recomputed here from the store)
    say so in `caution` and sit below FORWARD_CAP; payout_on_path caps what it flags too. On
    the hard and realistic small worlds 1-10 they removed 5 of 15 wrong deciding leads for one
    right one (docs/accuracy-log.md "Hand-offs on the path")."""
    from chainsleuth.cases.rows import FORWARD_CAP, HANDOFF_SIGNS, handoff_signs

    store, leads, matrix = _exchange_lead_paths(hard)
    signs = handoff_signs(store.graph, matrix)
    flagged = 0
    for k, r in enumerate(leads):
        reasons = r["caution"].split(";")
        for name in ("round_payment", "peeled_off"):
            sign = bool(signs[name][k])
            if "own_forward" in reasons:
                sign = sign and name in reasons  # gone or kept, never added
            assert (name in reasons) == sign
        if any(name in reasons for name in HANDOFF_SIGNS):
            flagged += 1
            assert float(r["confidence"]) <= FORWARD_CAP < 0.5
    assert flagged > 0


def test_unnamed_services_list_their_candidate_exchanges(hard: Path) -> None:
    """`candidate_exchanges` (docs/accuracy-log.md "Candidate exchanges"): 2+ names, sorted,
    on unidentified_service rows only; the funder of the deposit is among them (the truth's
    trail-holding payments). Measured on this world: 6 rows, the funder in the set in 6."""
    from chainsleuth.cases.evaluate import _holds, _truth

    payments, _ = _truth(hard / "world")
    with open(hard / "case" / "leads.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert "candidate_exchanges" in rows[0]
    listed = [r for r in rows if r["candidate_exchanges"]]
    assert listed
    assert all(r["source_category"] == "unidentified_service" for r in listed)
    sets = [r["candidate_exchanges"].split(";") for r in listed]
    assert all(len(s) >= 2 and s == sorted(s) for s in sets)
    funded = sum(
        bool({p["funding_exchange"] for p in payments.get(r["deposit_address"], []) if _holds(p)}
             & set(s))
        for r, s in zip(listed, sets, strict=True)
    )  # fmt: skip
    assert funded >= 0.9 * len(listed)


def test_no_lookalike_warning_on_a_world_without_style_twins(hard: Path) -> None:
    """Hard small 2 has no two exchanges alike on every habit the style rules read (the
    truth); the case's `lookalike_exchanges`, read from the chain, warns of none, and every
    habit it read is the true one (tests/cases/test_lookalikes.py `check_against_truth`)."""
    from tests.cases.test_lookalikes import check_against_truth

    section = check_against_truth(hard / "world", hard / "case")
    assert section["groups"] == [] and section["warning"] == ""
