"""Simulator profiles (issue 11): each adversarial knob does what it says, and `easy` is the
original world."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from chainsleuth.simulate.profiles import Profile, profile, profile_names


def test_named_profiles_and_unknown() -> None:
    assert profile_names()[:3] == ["easy", "realistic", "hard"]
    easy, hard = profile("easy"), profile("hard")
    assert all(
        v in (0, 0.0, [0, 0])
        for k, v in easy.knobs().items()
        if k not in ("name", "exchange_habits")
    )
    assert {profile(n).exchange_habits for n in profile_names()} == {"drawn"}
    assert hard.exchange_fresh_share > 0 and hard.send_all_share > 0
    assert profile(hard) is hard
    with pytest.raises(ValueError, match="unknown profile"):
        profile("nightmare")


@pytest.fixture(scope="module")
def hard_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from chainsleuth.simulate import simulate

    out = tmp_path_factory.mktemp("hard") / "world"
    simulate(out, seed=2, scale="small", profile="hard")
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_hard_world_records_its_knobs(hard_world: Path) -> None:
    meta = json.loads((hard_world / "world.json").read_text())
    assert meta["profile"] == "hard"
    assert meta["profile_knobs"]["send_all_share"] == profile("hard").send_all_share
    n_fresh = round(profile("hard").exchange_fresh_share * len(meta["exchanges"]))
    assert len(meta["exchanges_never_reusing"]) == n_fresh >= 1


def test_exchanges_that_never_reuse_an_address(hard_world: Path) -> None:
    never = set(json.loads((hard_world / "world.json").read_text())["exchanges_never_reusing"])
    addresses = {r["address"]: r for r in _rows(hard_world / "truth" / "addresses.csv")}
    reused: Counter[str] = Counter()
    paid: Counter[str] = Counter()
    for b in _rows(hard_world / "truth" / "balances.csv"):
        a = addresses[b["address"]]
        if a["wallet_kind"] == "exchange" and a["role"] in ("hot", "cold", "change"):
            paid[a["entity"]] += 1
            reused[a["entity"]] += int(b["n_outputs"]) > 1
    # both kinds are there to check (asserted, not assumed: the loop alone checks nothing then)
    assert never & set(paid) and set(paid) - never
    for name in paid:
        if name in never:
            assert paid[name] > 20 and reused[name] == 0, name
        else:
            assert reused[name] > 0, name


def test_hard_world_has_each_property(hard_world: Path) -> None:
    kinds = Counter(r["kind"] for r in _rows(hard_world / "truth" / "txs.csv"))
    assert kinds["exchange_forward"] > 50  # deposits forwarded straight to buyers
    paths = Counter(r["path_kind"] for r in _rows(hard_world / "truth" / "payments.csv"))
    assert paths["tx0_change"] > 0
    # tags: 3-5 per exchange, anywhere in its wallet
    tags = yaml.safe_load((hard_world / "tags" / "exchanges.yaml").read_text())["tags"]
    per = Counter(t["actor"] for t in tags)
    assert per and all(3 <= n <= 5 for n in per.values())


def test_one_knob_alone_changes_the_world(tmp_path: Path) -> None:
    from chainsleuth.simulate import simulate

    simulate(tmp_path / "easy", seed=3, scale="small")
    simulate(tmp_path / "sendall", seed=3, scale="small",
             profile=Profile(name="sendall", send_all_share=0.5))  # fmt: skip
    easy = Counter(r["kind"] for r in _rows(tmp_path / "easy" / "truth" / "txs.csv"))
    knob = Counter(r["kind"] for r in _rows(tmp_path / "sendall" / "truth" / "txs.csv"))
    assert easy["exchange_forward"] == knob["exchange_forward"] == 0
    change = {r["txid"]: r["change_vouts"] for r in _rows(tmp_path / "sendall" / "truth" / "txs.csv")
              if r["kind"] == "payment"}  # fmt: skip
    no_change = sum(1 for v in change.values() if v == "")
    assert no_change > 0.3 * len(change)


def test_exchange_habits_drawn_each_on_its_own() -> None:
    """Habits are drawn per exchange from the seed, not walked with the exchange's index (where
    exchanges 0 and 4 were twins on every habit); `by_index` keeps the older worlds."""
    from chainsleuth.simulate.economy.base import WorldBase
    from chainsleuth.simulate.economy.model import SCALES, Habits

    def habits(seed: int, mode: str) -> list[Habits]:
        world = WorldBase(seed, SCALES["medium"], profile=Profile(name="p", exchange_habits=mode))
        return [ex.habits for ex in world.exchanges]

    assert habits(5, "by_index") == [Habits.by_index(n) for n in range(5)]
    assert Habits.by_index(0) == Habits.by_index(4)
    drawn = {seed: habits(seed, "drawn") for seed in range(1, 13)}
    assert drawn[1] == habits(1, "drawn")  # a function of the seed
    assert sum(h[0] == h[4] for h in drawn.values()) < 3  # not twins by construction
    # each habit varies on its own: fee deduction no longer fixes the batch interval
    pairs = {(h.deducts_fee, h.batch_every) for hs in drawn.values() for h in hs}
    assert pairs == {(False, 1), (False, 2), (True, 1), (True, 2)}
    with pytest.raises(ValueError, match="exchange_habits"):
        Profile(name="bad", exchange_habits="alphabetical")


def test_world_records_habits_and_twins(hard_world: Path) -> None:
    from chainsleuth.simulate.economy.model import Exchange
    from chainsleuth.simulate.truth import twin_exchanges

    meta = json.loads((hard_world / "world.json").read_text())
    habits = meta["exchange_habits"]
    assert list(habits) == meta["exchanges"]
    assert [n for n, h in habits.items() if h["never_reuse"]] == meta["exchanges_never_reusing"]
    assert all(h["fresh_change"] for h in habits.values() if h["never_reuse"])
    expected = [[a, b] for i, a in enumerate(habits) for b in list(habits)[i + 1 :]
                if habits[a] == habits[b]]  # fmt: skip
    assert meta["twin_exchanges"] == expected
    # the twin finder itself, on two exchanges made identical
    from chainsleuth.simulate.economy.base import WorldBase
    from chainsleuth.simulate.economy.model import SCALES

    by_index = Profile(name="p", exchange_habits="by_index")
    ex: list[Exchange] = WorldBase(1, SCALES["medium"], profile=by_index).exchanges
    assert twin_exchanges(ex) == [["arcadia", "ember"]]
    assert twin_exchanges(ex[:4]) == []


def test_exchange_software_is_off_by_default_and_drawn_on_its_own() -> None:
    """`exchange_software`: "service" (default) gives every exchange one signer and leaves
    world.json's knobs as before; "drawn" gives each its own signer, output order and fee-rate
    habit from a stream of their own (the habits stay the seed's)."""
    from chainsleuth.simulate.economy.base import WorldBase
    from chainsleuth.simulate.economy.model import SCALES, SERVICE, SOFTWARE

    assert "exchange_software" not in profile("hard").knobs()
    assert profile("hard_sw").knobs()["exchange_software"] == "drawn"
    plain = WorldBase(9, SCALES["small"], profile=profile("hard"))
    drawn = WorldBase(9, SCALES["small"], profile=profile("hard_sw"))
    assert all(ex.software is None and ex.wallet.soft == SERVICE for ex in plain.exchanges)
    assert [ex.habits for ex in drawn.exchanges] == [ex.habits for ex in plain.exchanges]
    assert all(drawn.software[ex.wallet.soft] == ex.software.spec() for ex in drawn.exchanges)  # type: ignore[union-attr]
    assert drawn.software[: len(SOFTWARE)] == list(SOFTWARE)
    # over seeds every value set is drawn
    sw = [ex.software for s in range(1, 30)
          for ex in WorldBase(s, SCALES["small"], profile=profile("hard_sw")).exchanges]  # fmt: skip
    assert {x.signer for x in sw if x} == {
        "in_house_v1", "in_house_v2", "core_like", "core_rbf", "rbf_no_locktime"
    }  # fmt: skip
    assert {x.bip69 for x in sw if x} == {True, False}
    assert {x.whole_fee_rate for x in sw if x} == {True, False}
    with pytest.raises(ValueError, match="exchange_software"):
        Profile(name="bad", exchange_software="alphabetical")


def test_drawn_software_shows_on_the_exchanges_txs(tmp_path: Path) -> None:
    """Every tx an exchange with drawn software makes carries its signer's version, locktime
    and nSequence; a BIP69 exchange's outputs are sorted by value; one paying whole sat/vB pays
    withdrawals whose fee is a whole multiple of the tx's vsize. Read back from the blk files."""
    from chainsleuth.simulate.run import simulate
    from tests.simulate.conftest import read_chain, read_csv

    simulate(tmp_path, seed=9, scale="small", profile="hard_sw")
    meta = json.loads((tmp_path / "world.json").read_text())
    habits = {f"exchange-{n}": h for n, h in meta["exchange_habits"].items()}
    rows = read_csv(tmp_path / "truth" / "txs.csv")
    kind = {r["txid"]: (r["kind"], r["wallet_id"], r["change_vouts"]) for r in rows}
    chain = read_chain(tmp_path / "blocks")
    values = {}
    for _h, tx in chain.main_txs():
        for vout, o in enumerate(tx.outputs):
            values[(tx.txid(), vout)] = o.value
    seen: dict[str, int] = {w: 0 for w in habits}
    for height, tx in chain.main_txs():
        what, wid, change = kind.get(tx.txid()[::-1].hex(), ("", "", ""))
        h = habits.get(wid)
        if h is None or not what.startswith("exchange_"):
            continue
        seen[wid] += 1
        assert tx.version == h["tx_version"]
        assert tx.locktime == (height - 1 if h["locktime_at_tip"] else 0)
        assert {i.sequence for i in tx.inputs} == {h["sequence"]}
        out = [o.value for o in tx.outputs]
        if h["bip69"]:
            assert out == sorted(out)
        # (a withdrawal without change pays what is left: not a rate)
        if h["whole_fee_rate"] and what == "exchange_withdrawal" and change:
            fee = sum(values[(i.prev_txid, i.prev_vout)] for i in tx.inputs) - sum(out)
            assert fee % tx.vsize() == 0
    assert all(n > 20 for n in seen.values()), seen
    drawn = {(h["bip69"], h["whole_fee_rate"]) for h in habits.values()}
    assert (True, True) in drawn and (False, True) in drawn  # seed 9 draws both


def test_software_switch_is_off_by_default_and_switches_every_drawn_exchange(
    tmp_path: Path,
) -> None:
    """`exchange_software_switch`: 0 in every profile but `hard_swswitch` and left out of their
    world.json knobs; there every exchange signs with its drawn software below the switch
    height and with other software (another signer, the other output order) from it on, the
    world below it being `hard_sw`'s. Read back from the blk files."""
    from chainsleuth.simulate.run import simulate
    from tests.simulate.conftest import read_chain, read_csv

    for name in profile_names():
        if name != "hard_swswitch":
            assert "exchange_software_switch" not in profile(name).knobs()
    assert profile("hard_swswitch").knobs()["exchange_software_switch"] == 0.5
    with pytest.raises(ValueError, match="exchange_software_switch"):
        Profile(name="bad", exchange_software_switch=0.5)  # needs drawn software
    simulate(tmp_path / "sw", seed=3, scale="small", profile="hard_sw")
    simulate(tmp_path / "switch", seed=3, scale="small", profile="hard_swswitch")
    meta = json.loads((tmp_path / "switch" / "world.json").read_text())
    habits = {f"exchange-{n}": h for n, h in meta["exchange_habits"].items()}
    at = {h["switched_at"] for h in habits.values()}
    assert at == {210}
    assert all(h["signer_after"] != h["signer"] and h["bip69_after"] != h["bip69"]
               for h in habits.values())  # fmt: skip
    before = {tx.txid() for h, tx in read_chain(tmp_path / "sw" / "blocks").main_txs() if h < 210}
    rows = read_csv(tmp_path / "switch" / "truth" / "txs.csv")
    kind = {r["txid"]: (r["kind"], r["wallet_id"]) for r in rows}
    seen = Counter()
    for height, tx in read_chain(tmp_path / "switch" / "blocks").main_txs():
        if height < 210:
            assert tx.txid() in before  # hard_sw's world, tx for tx
        what, wid = kind.get(tx.txid()[::-1].hex(), ("", ""))
        h = habits.get(wid)
        if h is None or not what.startswith("exchange_"):
            continue
        late = "_after" if height >= 210 else ""
        seen[late] += 1
        assert tx.version == h["tx_version" + late]
        assert tx.locktime == (height - 1 if h["locktime_at_tip" + late] else 0)
        assert {i.sequence for i in tx.inputs} == {h["sequence" + late]}
        out = [o.value for o in tx.outputs]
        if h["bip69" + late]:
            assert out == sorted(out)
    assert seen[""] > 100 and seen["_after"] > 100, seen


def test_the_simulate_command_offers_every_named_profile() -> None:
    # the CLI's choices are read from profiles.yaml, so hard_sw and realistic_sw are choices
    from typer.testing import CliRunner

    from chainsleuth.cli import app

    args = ["simulate", "--out", "/nonexistent", "--profile", "nightmare"]
    out = CliRunner().invoke(app, args, env={"COLUMNS": "240"})  # no name wrapped
    assert out.exit_code != 0
    for name in profile_names():
        assert name in out.output


def _forward_rests_unspent(world: Path, data: Path) -> tuple[int, int]:
    """(forward remainders unspent at the tip, forwards) of an ingested world: the truth's
    change vout of every `exchange_forward`, read in the store."""
    from chainsleuth.store import ingest
    from chainsleuth.store.layout import NONE32
    from chainsleuth.store.store import Store

    ingest.ingest_blocks_dir(world / "blocks", data)
    store = Store.open(data)
    g = store.graph
    n, unspent = 0, 0
    for r in _rows(world / "truth" / "txs.csv"):
        if r["kind"] != "exchange_forward" or not r["change_vouts"]:
            continue
        t = store.tx_id_of(r["txid"])
        assert t is not None
        s = int(g.output_spent_by_tx[int(g.tx_first_output[t]) + int(r["change_vouts"])])
        n += 1
        unspent += s == int(NONE32) or s >= g.n_txs
    store.close()
    return unspent, n


def test_forward_rests_spent_by_the_next_batch(tmp_path: Path) -> None:
    """`forward_rest_spent_share` (off in every named profile): at 0 the world is as before
    (and world.json's knobs leave it out); at 1 the next batched withdrawal spends each forward's
    remainder, which the hot wallet's own coin selection (the smallest coin covering a batch)
    leaves waiting (docs/accuracy-log.md "Cash-outs: the misses are forward remainders the
    simulated hot wallets never spend")."""
    from dataclasses import replace

    from chainsleuth.simulate import simulate

    assert "forward_rest_spent_share" not in profile("hard").knobs()
    spent = replace(profile("hard"), name="hard_rests", forward_rest_spent_share=1.0)
    assert spent.knobs()["forward_rest_spent_share"] == 1.0
    simulate(tmp_path / "hard", seed=5, scale="small", profile="hard")
    simulate(tmp_path / "rests", seed=5, scale="small", profile=spent)
    before, n_before = _forward_rests_unspent(tmp_path / "hard", tmp_path / "hard-store")
    after, n_after = _forward_rests_unspent(tmp_path / "rests", tmp_path / "rests-store")
    assert n_before > 300 and n_after > 300
    # measured on seed 5: 679 of 927 unspent at 0; 4 of 927 at 1 (forwards after the last batch)
    assert before > 0.5 * n_before
    assert after < 0.05 * n_after


def test_exchanges_cospending_deposits(tmp_path: Path) -> None:
    """`exchange_deposit_cospend_share`: 0 in every profile but `hard_cospend` and
    `hard_cospend_multi` (and left out of their world.json knobs, so older worlds stay byte for
    byte); there half of the exchanges
    (drawn per exchange, marked `cospends_deposits` in world.json's habits) spend their
    deposits in their batched withdrawals and never sweep them (docs/accuracy-log.md
    "Exchanges that spend deposits in their payouts")."""
    from chainsleuth.simulate import simulate

    for name in profile_names():
        if name not in ("hard_cospend", "hard_cospend_multi"):
            assert "exchange_deposit_cospend_share" not in profile(name).knobs()
    assert profile("hard_cospend").knobs()["exchange_deposit_cospend_share"] == 0.5
    assert profile("hard_cospend_multi").knobs()["exchange_deposit_cospend_share"] == 0.5
    with pytest.raises(ValueError, match="exchange_deposit_cospend_share"):
        Profile(name="bad", exchange_deposit_cospend_share=1.5)
    world = tmp_path / "w"
    simulate(world, seed=2, scale="small", profile="hard_cospend")
    meta = json.loads((world / "world.json").read_text())
    cospend = {e for e, h in meta["exchange_habits"].items() if h.get("cospends_deposits")}
    assert len(cospend) == 2
    sweeps: Counter[str] = Counter()
    with open(world / "truth" / "txs.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["kind"] == "exchange_sweep":
                sweeps[row["wallet_id"].removeprefix("exchange-")] += 1
    # measured on seed 2: 46 and 52 sweeps by the two sweeping exchanges, none by the others
    assert all(sweeps[e] == 0 for e in cospend)
    assert all(sweeps[e] > 10 for e in meta["exchange_habits"] if e not in cospend)


def test_untagged_exchanges_leave_k_exchanges_without_a_tag_and_the_chain_as_it_was(
    hard_world: Path, tmp_path: Path
) -> None:
    """`untagged_exchanges`: 0 in every profile but `hard_untagged` and `realistic_untagged`
    (1) and `hard_untagged2` and `realistic_untagged2` (2), and left out of their world.json
    knobs; at k the TagPack tags k exchanges fewer, those
    named in truth/untagged_exchanges.csv and world.json, while the blocks, the other truth
    files, the seeds and every other exchange's tags are the hard world's, byte for byte."""
    from chainsleuth.simulate import simulate

    for name in profile_names():
        base, untagged, k = name.partition("_untagged")
        if not untagged:
            assert "untagged_exchanges" not in profile(name).knobs()
        else:
            assert profile(name).knobs()["untagged_exchanges"] == int(k or 1)
            # the base profile's chain: every other knob the same
            knobs = profile(name).knobs()
            knobs.pop("untagged_exchanges")
            assert knobs == {**profile(base).knobs(), "name": name}
    assert {"hard_untagged2", "realistic_untagged2"} <= set(profile_names())
    assert not (hard_world / "truth" / "untagged_exchanges.csv").exists()
    with pytest.raises(ValueError, match="untagged_exchanges"):
        Profile(name="bad", untagged_exchanges=-1)
    with pytest.raises(ValueError, match="none of the small scale's 4 exchanges"):
        simulate(tmp_path / "none", seed=2, scale="small",
                 profile=Profile(name="bad", untagged_exchanges=4))  # fmt: skip
    two = profile("hard_untagged2")
    world = tmp_path / "w"
    simulate(world, seed=2, scale="small", profile=two)  # hard_world's seed
    untagged = [r["exchange"] for r in _rows(world / "truth" / "untagged_exchanges.csv")]
    meta = json.loads((world / "world.json").read_text())
    assert len(untagged) == 2 and meta["untagged_exchanges"] == untagged
    assert meta["profile_knobs"]["untagged_exchanges"] == 2
    before = yaml.safe_load((hard_world / "tags" / "exchanges.yaml").read_text())["tags"]
    after = yaml.safe_load((world / "tags" / "exchanges.yaml").read_text())["tags"]
    assert {t["actor"] for t in before} == set(meta["exchanges"])
    assert {t["actor"] for t in after} == set(meta["exchanges"]) - set(untagged)
    assert after == [t for t in before if t["actor"] not in untagged]
    for sub in ("blocks", "truth", "seeds"):
        files = sorted(
            p.relative_to(hard_world) for p in (hard_world / sub).rglob("*") if p.is_file()
        )
        assert files, sub
        for rel in files:
            assert (world / rel).read_bytes() == (hard_world / rel).read_bytes(), rel
    assert (world / "tags" / "coinjoin.yaml").read_bytes() == (
        hard_world / "tags" / "coinjoin.yaml"
    ).read_bytes()


def _deposit_exchanges_per_account(world: Path) -> dict[str, set[str]]:
    """account wallet -> the exchanges whose deposit addresses it holds (truth/addresses.csv)."""
    held: dict[str, set[str]] = {}
    for row in _rows(world / "truth" / "addresses.csv"):
        if row["role"] == "deposit" and row["account"]:
            held.setdefault(row["account"], set()).add(row["entity"])
    return held


def test_multi_exchange_customers_split_their_deposits(world_dir: Path, tmp_path: Path) -> None:
    """`multi_exchange_customer_share`: 0 in every profile but `hard_cospend_multi` (and left
    out of world.json's knobs there); at 0 no one draws other exchanges, and the people of the
    easy world (no cross-exchange moves) each deposit at one exchange; at 0.4 about that share
    of the people hold one or two more accounts and their deposits land at several exchanges."""
    from dataclasses import replace

    from chainsleuth.simulate import simulate
    from chainsleuth.simulate.economy.base import DEPOSITING_KINDS
    from chainsleuth.simulate.economy.model import SCALES
    from chainsleuth.simulate.economy.world import World

    for name in profile_names():
        if name != "hard_cospend_multi":
            assert "multi_exchange_customer_share" not in profile(name).knobs()
    assert profile("hard_cospend_multi").knobs()["multi_exchange_customer_share"] == 0.4
    with pytest.raises(ValueError, match="multi_exchange_customer_share"):
        Profile(name="bad", multi_exchange_customer_share=-0.1)

    assert World(2, SCALES["small"], profile=profile("hard_cospend")).deposit_homes == {}
    multi = World(2, SCALES["small"], profile=profile("hard_cospend_multi"))
    people = [w for w in multi.wallets if w.kind in DEPOSITING_KINDS and w.home >= 0]
    share = len(multi.deposit_homes) / len(people)
    assert 0.35 < share < 0.45, share
    for idx, homes in multi.deposit_homes.items():
        assert homes[0] == multi.wallets[idx].home and len(set(homes)) == len(homes) in (2, 3)

    # the easy world (no cross-exchange moves): each person's deposits sit at one exchange
    kinds = tuple(f"{k}-" for k in DEPOSITING_KINDS)
    single = _deposit_exchanges_per_account(world_dir)
    assert single and all(len(v) == 1 for k, v in single.items() if k.startswith(kinds))
    easy_multi = replace(profile("easy"), name="easy_multi", multi_exchange_customer_share=0.4)
    world = tmp_path / "w"
    simulate(world, seed=1, scale="small", profile=easy_multi)
    held = _deposit_exchanges_per_account(world)
    spread = [len(v) >= 2 for k, v in held.items() if k.startswith(kinds)]
    # measured on seed 1: 455 of the 1,857 people with a deposit (0.245) hold them at 2+ exchanges
    assert sum(spread) / len(spread) > 0.15, sum(spread) / len(spread)
