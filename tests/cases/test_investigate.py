"""The investigation on the small simulated world, scored against its truth files.

Measured (seed 1, small, haircut, max_hops 15; docs/investigations.md): precision 1.000 for
every path kind; recall direct 0.952, own_wallet 0.970, peel_chain 0.952, coinjoin 0.077 (by
design: a CoinJoin stops the trail); 21 of 21 cash-outs found and nothing else; the funding
txid is the truth's withdrawal for 249 of 256 named deposits. The asserts keep a margin.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from chainsleuth.cases.investigate import (
    CASHOUT_COLUMNS,
    DEFAULT_MAX_HOPS,
    DEFAULT_PRICES,
    LEAD_COLUMNS,
    investigate,
)
from chainsleuth.core.files import sha256_file as _sha256
from tests.conftest import stage_app


@pytest.fixture(scope="module")
def world(
    small_world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, Path]:
    """(world, store, case): the session's small world (read-only) and its case, run here."""
    world_dir, store = small_world
    case = tmp_path_factory.mktemp("case") / "case"
    investigate(store, world_dir / "seeds" / "deposits.csv", case, report=False)
    return world_dir, store, case


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _scores(world: Path, case: Path) -> dict[str, dict[str, int]]:
    """Per path kind: paid deposits with a funding exchange, how many the largest lead names
    as an exchange, and how many of those name the right one."""
    leads: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in _rows(case / "leads.csv"):
        leads[r["deposit_address"]].append(r)
    scores: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "named": 0, "correct": 0})
    for t in _rows(world / "truth" / "deposits.csv"):
        if t["paid"] != "true" or not t["funding_exchange"]:
            continue
        s = scores[t["path_kind"]]
        s["n"] += 1
        top = max(
            leads.get(t["deposit_address"], []), key=lambda r: int(r["amount_sat"]), default=None
        )
        if top is not None and top["source_category"] == "exchange":
            s["named"] += 1
            s["correct"] += top["source_entity"] == t["funding_exchange"]
    return dict(scores)


def test_columns(world: tuple[Path, Path, Path]) -> None:
    _, _, case = world
    with open(case / "leads.csv") as f:
        assert f.readline().strip().split(",") == LEAD_COLUMNS
    with open(case / "cashouts.csv") as f:
        assert f.readline().strip().split(",") == CASHOUT_COLUMNS
    required = [
        "deposit_address",
        "source_entity",
        "source_category",
        "source_cluster",
        "source_address",
        "funding_txid",
        "block_height",
        "block_time",
        "amount_sat",
        "amount_usd",
        "hops",
        "policy",
        "confidence",
        "path",
    ]
    assert set(required) <= set(LEAD_COLUMNS)


def test_lead_precision_recall(world: tuple[Path, Path, Path]) -> None:
    w, _, case = world
    scores = _scores(w, case)
    named = sum(s["named"] for s in scores.values())
    correct = sum(s["correct"] for s in scores.values())
    assert correct / named >= 0.97  # measured 1.000
    recall = {k: s["correct"] / s["n"] for k, s in scores.items()}
    assert recall["direct"] >= 0.90  # measured 0.952
    assert recall["own_wallet"] >= 0.92  # measured 0.970
    assert recall["peel_chain"] >= 0.90  # measured 0.952
    assert recall["coinjoin"] <= 0.2  # measured 0.077: the trail stops at the CoinJoin


def test_coinjoin_not_attributed_with_full_confidence(world: tuple[Path, Path, Path]) -> None:
    w, _, case = world
    payments: dict[str, list[dict[str, str]]] = defaultdict(list)
    for p in _rows(w / "truth" / "payments.csv"):
        payments[p["deposit_address"]].append(p)
    leads: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in _rows(case / "leads.csv"):
        leads[r["deposit_address"]].append(r)
    mixed = [
        d
        for d, ps in payments.items()
        if all(p["path_kind"] == "coinjoin" and p["coinjoin_broke_trail"] == "true" for p in ps)
    ]
    assert len(mixed) > 50
    said_coinjoin = 0
    for d in mixed:
        for r in leads[d]:
            if r["source_category"] == "exchange":
                assert float(r["confidence"]) < 0.5, r
            if r["source_category"] == "coinjoin":
                assert float(r["confidence"]) <= 0.25
        said_coinjoin += any(r["source_category"] == "coinjoin" for r in leads[d])
    assert said_coinjoin / len(mixed) >= 0.9


def test_cashouts_found(world: tuple[Path, Path, Path]) -> None:
    w, _, case = world
    truth = {(r["txid"], r["destination_address"]): r for r in _rows(w / "truth" / "cashouts.csv")}
    found = {(r["txid"], r["destination_address"]): r for r in _rows(case / "cashouts.csv")}
    assert truth and set(truth) == set(found)  # measured: 21 of 21, nothing else
    for key, t in truth.items():
        assert found[key]["destination_entity"] == t["destination_exchange"]
        # the destination's whole value, and the service's traced money in it (issue 11)
        assert found[key]["output_value_sat"] == t["amount_sat"]
        amount = int(found[key]["amount_sat"])
        assert 0.95 * int(t["amount_sat"]) <= amount <= int(t["amount_sat"])  # measured >= 0.978
        assert float(found[key]["service_share"]) >= 0.95
        assert float(found[key]["confidence"]) >= 0.5
        assert found[key]["block_time"] == t["block_time"]


def test_subpoenas_sorted_and_consistent(world: tuple[Path, Path, Path]) -> None:
    _, _, case = world
    rows = _rows(case / "subpoenas.csv")
    assert rows
    # surest first (issue 11), then by the exchange's total paid to the service
    keys = [(-float(r["confidence"]), -int(r["exchange_total_sat"])) for r in rows]
    assert keys == sorted(keys)
    leads = _rows(case / "leads.csv")
    pairs = {
        (r["funding_txid"], r["source_address"])
        for r in leads
        if r["source_category"] == "exchange"
    }
    assert {(r["funding_txid"], r["source_address"]) for r in rows} == pairs
    # name_basis (last column): the weakest of the row's leads' (style, chain, tag)
    rank = {"tag": 0, "chain": 1, "style": 2}
    weakest: dict[tuple[str, str, str], int] = {}
    for r in leads:
        if r["source_category"] == "exchange":
            key = (r["source_entity"], r["funding_txid"], r["source_address"])
            weakest[key] = max(weakest.get(key, 0), rank.get(r["name_basis"], 0))
    assert list(rows[0])[-1] == "name_basis"
    for r in rows:
        key = (r["exchange"], r["funding_txid"], r["source_address"])
        assert rank[r["name_basis"]] == weakest[key]


def test_rerun_is_byte_identical(world: tuple[Path, Path, Path], tmp_path: Path) -> None:
    w, store, case = world
    investigate(store, w / "seeds" / "deposits.csv", tmp_path / "again", report=False)
    for name in ("leads.csv", "subpoenas.csv", "cashouts.csv"):
        assert (case / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    meta = json.loads((case / "case.json").read_text())
    assert meta["store"]["tip_height"] == 420
    assert len(meta["inputs"]["seeds"]["sha256"]) == 64
    prices = meta["inputs"]["prices"]
    assert prices["series"] == "shipped" and Path(prices["path"]) == DEFAULT_PRICES.resolve()
    assert prices["sha256"] == _sha256(DEFAULT_PRICES)
    assert (prices["first_date"], prices["last_date"]) == ("2010-07-18", "2026-06-15")
    assert (
        meta["parameters"]["policy"] == "haircut"
        and meta["parameters"]["max_hops"] == DEFAULT_MAX_HOPS
    )


def test_missing_price_day_is_marked(world: tuple[Path, Path, Path], tmp_path: Path) -> None:
    w, store, case = world
    leads = _rows(case / "leads.csv")
    day = next(r["block_time"][:10] for r in leads if r["funding_txid"])
    prices = tmp_path / "prices.csv"
    with open(DEFAULT_PRICES) as src, open(prices, "w") as dst:
        dst.writelines(line for line in src if not line.startswith(day + ","))
    investigate(
        store, w / "seeds" / "deposits.csv", tmp_path / "gap", prices_csv=prices, report=False
    )
    gap = [r for r in _rows(tmp_path / "gap" / "leads.csv") if r["block_time"][:10] == day]
    assert gap
    for r in gap:
        assert r["amount_usd"] == "" and r["price_note"] == "missing_price"
    priced = [r for r in _rows(tmp_path / "gap" / "leads.csv") if r["funding_txid"]]
    assert any(r["amount_usd"] for r in priced)


def test_price_series_used_and_recorded(world: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """--prices FILE over the data directory's imported series over the shipped one."""
    from chainsleuth.prices import import_prices, imported_prices_path

    w, shared, case = world
    store = tmp_path / "store"  # a private copy: importing prices writes into the data dir
    shutil.copytree(shared, store)
    leads = _rows(case / "leads.csv")
    day = next(r["block_time"][:10] for r in leads if r["funding_txid"])
    own = tmp_path / "own.csv"  # every close doubled, one day left out
    with open(DEFAULT_PRICES, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["date"] != day]
    own.write_text(
        "date,close_usd\n" + "".join(f"{r['date']},{float(r['close_usd']) * 2}\n" for r in rows)
    )
    seeds = w / "seeds" / "deposits.csv"
    try:
        import_prices(store, own)
        investigate(store, seeds, tmp_path / "imported", report=False)
        given = tmp_path / "given"
        investigate(store, seeds, given, prices_csv=DEFAULT_PRICES, report=False)
    finally:
        imported_prices_path(store).unlink()
        (imported_prices_path(store).parent / "import.json").unlink()
    meta = json.loads((tmp_path / "imported" / "case.json").read_text())["inputs"]["prices"]
    assert meta["series"] == "imported"
    assert Path(meta["path"]) == imported_prices_path(store).resolve()
    assert meta["days"] == len(rows) and meta["last_date"] == "2026-06-15"
    by_key = {
        (r["deposit_address"], r["funding_txid"], r["source_address"]): r
        for r in _rows(case / "leads.csv")
    }
    checked = 0
    for r in _rows(tmp_path / "imported" / "leads.csv"):
        shipped = by_key[(r["deposit_address"], r["funding_txid"], r["source_address"])]
        if r["block_time"][:10] == day and r["funding_txid"]:
            assert (r["amount_usd"], r["price_note"]) == ("", "missing_price")
        elif r["amount_usd"] and shipped["amount_usd"]:
            assert abs(float(r["amount_usd"]) - 2 * float(shipped["amount_usd"])) <= 0.02
            checked += 1
    assert checked > 10
    meta = json.loads((given / "case.json").read_text())["inputs"]["prices"]
    assert meta["series"] == "file" and meta["sha256"] == _sha256(DEFAULT_PRICES)
    assert (given / "leads.csv").read_bytes() == (case / "leads.csv").read_bytes()


def test_cli_command(world: tuple[Path, Path, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from chainsleuth.cases.cli import register
    from chainsleuth.core.console import CliState

    w, store, _ = world
    app = stage_app(register)

    seeds = str(w / "seeds" / "deposits.csv")
    args = ["investigate", "--seeds", seeds, "-o", str(tmp_path / "c"), "--policy", "fifo"]
    result = CliRunner().invoke(app, [*args, "--max-hops", "4", "--no-pdf"], obj=CliState(store))
    assert result.exit_code == 0, result.output
    # the summary counts cash-outs at the report's cut (0.5 when no --min-confidence is given)
    rows = _rows(tmp_path / "c" / "cashouts.csv")
    at_cut = sum(float(r["confidence"]) >= 0.5 for r in rows)
    assert f"{at_cut:,} cash-outs at confidence ≥ 0.5" in " ".join(result.output.split())
    below = len(rows) - at_cut
    assert (f"({below:,} below it" in result.output) == (below > 0)
    assert "Report:" in result.output and (tmp_path / "c" / "report.html").exists()
    assert not (tmp_path / "c" / "report.pdf").exists()
    meta = json.loads((tmp_path / "c" / "case.json").read_text())
    assert meta["parameters"]["policy"] == "fifo" and meta["parameters"]["max_hops"] == 4
    # the look-alike warning's one line is there exactly when case.json warns
    warns = bool(meta["lookalike_exchanges"]["warning"])
    assert ("Warning: tagged exchanges" in result.output) == warns


def test_funding_txid_is_the_withdrawal_that_paid_the_customer(
    world: tuple[Path, Path, Path],
) -> None:
    """What the exchange needs: the withdrawal it made to its customer. An exchange that sends
    a batch's change to a fresh address chains its withdrawals (each spends the last one's
    change); the lead's funding tx is moved along that chain to the customer's withdrawal
    (`custody_path` lists the moves). Exchanges whose change goes back to a reused hot address
    need no move: that address is in the tagged cluster."""
    w, _, case = world
    habits = json.loads((w / "world.json").read_text())["exchange_habits"]
    chains = any(h["fresh_change"] for h in habits.values())
    funding: dict[str, set[str]] = defaultdict(set)
    for p in _rows(w / "truth" / "payments.csv"):
        funding[p["deposit_address"]].add(p["funding_txid"])
    leads: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in _rows(case / "leads.csv"):
        if r["source_category"] == "exchange":
            leads[r["deposit_address"]].append(r)
    named = right = moved = 0
    for t in _rows(w / "truth" / "deposits.csv"):
        if t["path_kind"] == "coinjoin" or not leads.get(t["deposit_address"]):
            continue
        top = max(leads[t["deposit_address"]], key=lambda r: int(r["amount_sat"]))
        named += 1
        right += top["funding_txid"] in funding[t["deposit_address"]]
        moved += bool(top["custody_path"])
    assert named > 200
    assert right / named >= 0.95  # measured 249 / 256 (index-walked habits)
    # the session's world (easy small 1) drew reused change for all four exchanges since
    # habits are drawn per exchange (2026-12-07): no chain to move along, so no move
    assert moved > 0 if chains else moved == 0


def test_chunked_tracing_gives_the_same_files(
    world: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seeds are traced in chunks (and a chunk over its entry budget is split): the chunking
    must not change a byte of the output."""
    import chainsleuth.cases.investigate as module

    w, store, case = world
    monkeypatch.setattr(module, "CHUNK_SEEDS", 40)
    monkeypatch.setattr(module, "CHUNK_ENTRIES", 3_000)
    monkeypatch.setattr(module, "TRACE_THREADS", 2)
    investigate(store, w / "seeds" / "deposits.csv", tmp_path / "chunked", report=False)
    for name in ("leads.csv", "subpoenas.csv", "cashouts.csv"):
        assert (case / name).read_bytes() == (tmp_path / "chunked" / name).read_bytes()


def test_service_wallet_is_part_of_the_service(world: tuple[Path, Path, Path]) -> None:
    w, _, case = world
    meta = json.loads((case / "case.json").read_text())
    assert meta["service"]["wallet_clusters"], "the service's sweep wallet was not found"
    wallet = {
        r["address"] for r in _rows(w / "truth" / "addresses.csv") if r["role"] == "service_wallet"
    }
    # no cash-out names the service's own wallet as a destination
    assert not wallet & {r["destination_address"] for r in _rows(case / "cashouts.csv")}


def test_trace_lookup_stops_at_exchanges_and_coinjoins(world: tuple[Path, Path, Path]) -> None:
    """`chainsleuth trace ADDR`: ends at the attributed exchange (named) or at the CoinJoin
    (with its mixer); --walk-coinjoins goes through and marks what lies beyond."""
    import numpy as np

    from chainsleuth.core.errors import ChainsleuthError
    from chainsleuth.trace.rows import trace_rows

    w, store, _ = world
    deposits = _rows(w / "truth" / "deposits.csv")
    direct = next(t for t in deposits if t["path_kind"] == "direct" and t["n_payments"] == "1")
    rows = trace_rows(store, direct["deposit_address"], max_hops=15)
    assert [(r["kind"], r["entity"], r["category"]) for r in rows] == [
        ("cluster", direct["funding_exchange"], "exchange")
    ]
    assert rows[0]["path"] == [direct["funding_txid"]]
    mixed = next(
        t
        for t in deposits
        if t["coinjoin_kind"] == "whirlpool"
        and t["coinjoin_broke_trail"] == "true"
        and t["n_payments"] == "1"
    )
    stopped = trace_rows(store, mixed["deposit_address"], max_hops=15)
    assert {r["kind"] for r in stopped} == {"coinjoin"}
    assert all(r["category"] == "coinjoin" and r["entity"] for r in stopped)
    walked = trace_rows(store, mixed["deposit_address"], max_hops=15, walk_coinjoins=True)
    assert "coinjoin" not in {r["kind"] for r in walked}
    assert all(r["low_confidence"] for r in walked)
    raw = trace_rows(store, direct["deposit_address"], max_hops=2, stops=False)
    assert all(r["entity"] is None for r in raw)
    # the same start as TXID:VOUT (the withdrawal's output paying the deposit) and as the
    # deposit's cluster id (all its addresses' receiving outputs)
    from chainsleuth.store.store import Store

    st = Store.open(store)
    first = int(np.asarray(st.array("tx_first_output"))[st.tx_id_of(direct["funding_txid"])])
    vout = rows[0]["seed_output_id"] - first
    one = trace_rows(store, f"{direct['funding_txid']}:{vout}", max_hops=15)
    assert [(r["kind"], r["entity"]) for r in one] == [("cluster", direct["funding_exchange"])]
    cluster = (
        st.sql(f"SELECT cluster_id FROM clusters WHERE address = '{direct['deposit_address']}'")
        .column(0)[0]
        .as_py()
    )
    of_cluster = trace_rows(store, str(cluster), max_hops=15)
    assert rows[0]["seed_output_id"] in {r["seed_output_id"] for r in of_cluster}
    with pytest.raises(ChainsleuthError, match="no output"):
        trace_rows(store, f"{direct['funding_txid']}:999999")
    # a window opening after the payment's block: the deposit's value was already there
    late = str(int(direct["first_payment_height"]) + 1)
    windowed = trace_rows(store, direct["deposit_address"], max_hops=15, since=late)
    assert {r["kind"] for r in windowed} == {"time_window"} and windowed[0]["hops"] == 0


def test_walking_through_coinjoins_names_exchanges_at_low_confidence(
    world: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    w, store, _ = world
    investigate(
        store, w / "seeds" / "deposits.csv", tmp_path / "walk", report=False, walk_coinjoins=True
    )
    leads: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in _rows(tmp_path / "walk" / "leads.csv"):
        leads[r["deposit_address"]].append(r)
    mixed = [
        t
        for t in _rows(w / "truth" / "deposits.csv")
        if t["path_kind"] == "coinjoin" and t["coinjoin_broke_trail"] == "true"
    ]
    beyond = [
        r for t in mixed for r in leads[t["deposit_address"]] if r["through_coinjoin"] == "true"
    ]
    assert beyond, "no lead went through a CoinJoin"
    assert all(float(r["confidence"]) <= 0.25 for r in beyond)
    assert all(r["source_category"] != "coinjoin" for r in beyond)
    meta = json.loads((tmp_path / "walk" / "case.json").read_text())
    assert meta["parameters"]["walk_coinjoins"] is True


def test_easy_world_meets_the_issue_targets(world: tuple[Path, Path, Path]) -> None:
    """Issue 11's targets, scored as a subpoena would use the case (cases.evaluate): on the
    easy profile they hold (measured: precision 1.000, recall 0.961, worst exchange 0.913,
    cash-outs 21 of 21 with the total at 0.99); the hard profile's figures are in
    tests/cases/test_hard_world.py and docs/investigations.md."""
    from chainsleuth.cases.evaluate import score_case

    w, _, case = world
    s = score_case(w, case)
    assert s.lead_precision >= 0.98
    assert s.lead_recall >= 0.90
    assert s.worst_exchange_recall() >= 0.90
    assert s.cashout_recall >= 0.90 and s.cashout_precision >= 0.90
    assert 0.9 <= s.cashout_total_ratio <= 1.1
    assert s.coinjoin_attributed_above_cap == 0 and s.unpaid_attributed == 0


def test_no_lookalike_warning_where_the_exchanges_differ(world: tuple[Path, Path, Path]) -> None:
    """`lookalike_exchanges` (cases.lookalikes): on this world no two exchanges are alike on
    every habit the style rules read (the truth's `exchange_habits`), and the warning, read
    from the chain alone, agrees: every habit it read is the true one and it groups none."""
    from tests.cases.test_lookalikes import check_against_truth

    w, _, case = world
    section = check_against_truth(w, case)
    assert section["groups"] == [] and section["unreadable"] == [] and section["warning"] == ""
    # each exchange's hot type was read, from its batches
    assert section["exchanges"] and all(
        e["hot_type"]["read"] and e["hot_type"]["txs"] > 0 for e in section["exchanges"].values()
    )
