"""Ground truth and case inputs of a simulated world: CSVs, the seed list, TagPacks, world.json.

Later stages are scored against these files (clustering against owners, change heuristics
against `change_vouts`, CoinJoin detection against transaction kinds, tracing against the
payment trails), and the ingest tests compare the store with `balances.csv` and `world.json`.
`seeds/` and `tags/` are what an investigator would hold at the start of the case: the seized
list of the service's deposit addresses, and public attribution tags for a few exchange
addresses. Every format is documented in docs/simulator.md. Called by `chainsleuth.simulate.run`.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import yaml

from chainsleuth.core.network import Network
from chainsleuth.core.script_types import SCRIPT_TYPE_NAMES
from chainsleuth.simulate.encode import encode_keys
from chainsleuth.simulate.keys import ROLES

if TYPE_CHECKING:
    from chainsleuth.simulate.chain import ChainBuilder
    from chainsleuth.simulate.economy.model import Exchange
    from chainsleuth.simulate.economy.world import World

__all__ = ["write_truth", "twin_exchanges", "untagged_exchanges", "TAG_LASTMOD"]

TAG_LASTMOD = "2020-01-01"  # fixed, so that tag files are reproducible
_SOFTWARE = ("core", "electrum", "mobile", "service", "coordinator")
_CHANGE = ("fresh", "reuse", "match_payment_type")
#: the label of the stream that draws the untagged exchanges (PCG64 seeded with [seed, this]):
#: a stream of its own, so drawing them moves no other draw of the world or of its tags
_UNTAGGED_STREAM = 0x756E746167  # b"untag"


def twin_exchanges(exchanges: list[Exchange]) -> list[list[str]]:
    """Pairs of exchanges identical on every habit they act on (world.json `twin_exchanges`):
    their wallets look alike on chain, and only tags and clustering tell them apart."""
    records = [(e.name, e.habit_record()) for e in exchanges]
    return [[a, b] for i, (a, ha) in enumerate(records) for b, hb in records[i + 1 :] if ha == hb]


def untagged_exchanges(names: list[str], k: int, seed: int) -> list[str]:
    """The `k` exchanges of `names` that the world's TagPack leaves with no tag (profile knob
    `untagged_exchanges`), in `names` order: drawn from the stream [seed, _UNTAGGED_STREAM]
    alone. At least one exchange stays tagged, or no lead could name any."""
    if k == 0:
        return []
    if k >= len(names):
        raise ValueError(
            f"untagged_exchanges {k} leaves none of the world's {len(names)} exchanges tagged"
        )
    rng = np.random.Generator(np.random.PCG64([seed, _UNTAGGED_STREAM]))
    picked = set(rng.choice(len(names), size=k, replace=False).tolist())
    return [n for i, n in enumerate(names) if i in picked]


def _software(soft: int) -> str:
    """A wallet's software as truth/wallets.csv names it: an exchange's drawn signer (past
    `SOFTWARE`, profile knob `exchange_software`) is the service kind's ("service")."""
    return _SOFTWARE[soft] if soft < len(_SOFTWARE) else "service"


def _iso(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b(x: bool) -> str:
    return "true" if x else "false"


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _write_table(path: Path, table: pa.Table) -> None:
    # values here never hold commas or quotes; write them bare, like the csv-module files
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=1 << 16)
    with path.open("wb") as fh:
        fh.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, fh, opts)


def write_truth(
    out: Path, world: World, chain: ChainBuilder, *, seed: int, scale: str, xor: bool,
    network: Network,
) -> dict[str, Path]:  # fmt: skip
    """Write truth/, seeds/, tags/ and world.json for a finished world; returns their paths."""
    book = world.book
    n = len(book)
    stypes = np.frombuffer(book.stype, np.uint8)
    payloads = np.frombuffer(bytes(book.payload), np.uint8).reshape(n, 32)
    addresses = encode_keys(stypes, payloads, network)
    addr_list: list[str] | None = None

    def addr(aid: int) -> str:
        nonlocal addr_list
        if addr_list is None:
            addr_list = addresses.to_pylist()
        return addr_list[aid]  # type: ignore[return-value]

    truth = out / "truth"
    paths: dict[str, Path] = {}

    # wallets and addresses ---------------------------------------------------------------
    wallets = world.wallets
    exchanges = world.exchanges
    _write_csv(
        truth / "wallets.csv",
        ["wallet_id", "wallet_kind", "entity", "script_type", "reuses_addresses", "software",
         "change_habit", "home_exchange"],
        [
            [w.wid, w.kind, w.entity, SCRIPT_TYPE_NAMES[w.stype], _b(w.reuse), _software(w.soft),
             _CHANGE[w.change], exchanges[w.home].name if w.home >= 0 else ""]
            for w in wallets
        ],
    )  # fmt: skip
    paths["wallets"] = truth / "wallets.csv"
    owner = np.frombuffer(book.owner, np.int32)
    account = np.frombuffer(book.account, np.int32)
    wid = pa.array([w.wid for w in wallets])
    kind = pa.array([w.kind for w in wallets])
    entity = pa.array([w.entity for w in wallets])
    acct_idx = pa.array(np.where(account >= 0, account, 0), mask=account < 0)
    table = pa.table(
        {
            "address": addresses,
            "script_type": pa.array(SCRIPT_TYPE_NAMES).take(pa.array(stypes)),
            "wallet_id": wid.take(pa.array(owner)),
            "wallet_kind": kind.take(pa.array(owner)),
            "entity": entity.take(pa.array(owner)),
            "role": pa.array(ROLES).take(pa.array(np.frombuffer(book.role, np.uint8))),
            "account": wid.take(acct_idx),
        }
    )
    _write_table(truth / "addresses.csv", table)
    paths["addresses"] = truth / "addresses.csv"

    # balances: every address paid on the main chain ---------------------------------------
    n_out = np.frombuffer(book.n_outputs, np.int32)
    used = np.flatnonzero(n_out > 0)
    received = np.frombuffer(book.received, np.int64)[used]
    sent = np.frombuffer(book.sent, np.int64)[used]
    _write_table(
        truth / "balances.csv",
        pa.table(
            {
                "address": addresses.take(pa.array(used)),
                "received_sat": received,
                "sent_sat": sent,
                "balance_sat": received - sent,
                "n_outputs": n_out[used],
            }
        ),
    )
    paths["balances"] = truth / "balances.csv"

    # the service: deposits, payments, cash-outs -------------------------------------------
    r_of = {a.aid: r for r, a in enumerate(world.deposit_addrs)}
    by_deposit: dict[int, list[Any]] = {}
    pay_rows = []
    for p in world.payments:
        by_deposit.setdefault(p.deposit_aid, []).append(p)
        pay_rows.append(
            [p.txid, p.vout, addr(p.deposit_aid), world.registrant_ids[r_of[p.deposit_aid]],
             p.user_wallet, p.amount, p.height, p.funding_exchange, p.funding_txid, p.hops,
             p.path_kind, p.coinjoin_kind, _b(p.broke_trail), ";".join(p.path_txids)]
        )  # fmt: skip
    _write_csv(
        truth / "payments.csv",
        ["txid", "vout", "deposit_address", "user_id", "payer_wallet_id", "amount_sat",
         "block_height", "funding_exchange", "funding_txid", "hops", "path_kind", "coinjoin_kind",
         "coinjoin_broke_trail", "path_txids"],
        pay_rows,
    )  # fmt: skip
    paths["payments"] = truth / "payments.csv"
    dep_rows = []
    for r, a in enumerate(world.deposit_addrs):
        ps = by_deposit.get(a.aid, [])
        payer = world.payer_of.get(r)
        if ps:
            f = ps[0]
            dep_rows.append(
                [addr(a.aid), world.registrant_ids[r], payer.wid if payer else "", "true", len(ps),
                 sum(p.amount for p in ps), f.txid, f.height, f.funding_exchange, f.funding_txid,
                 f.hops, f.path_kind, f.coinjoin_kind, _b(f.broke_trail)]
            )  # fmt: skip
        else:
            dep_rows.append(
                [addr(a.aid), world.registrant_ids[r], payer.wid if payer else "", "false", 0, 0,
                 "", "", "", "", "", "", "", ""]
            )  # fmt: skip
    _write_csv(
        truth / "deposits.csv",
        ["deposit_address", "user_id", "payer_wallet_id", "paid", "n_payments", "amount_sat",
         "first_payment_txid", "first_payment_height", "funding_exchange", "funding_txid", "hops",
         "path_kind", "coinjoin_kind", "coinjoin_broke_trail"],
        dep_rows,
    )  # fmt: skip
    paths["deposits"] = truth / "deposits.csv"
    _write_csv(
        truth / "cashouts.csv",
        ["txid", "vout", "destination_address", "destination_exchange", "amount_sat",
         "block_height", "block_time", "hops"],
        [[c.txid, c.vout, addr(c.aid), c.exchange, c.amount, c.height, _iso(c.time), c.hops]
         for c in world.cashouts],
    )  # fmt: skip
    paths["cashouts"] = truth / "cashouts.csv"

    # blocks as stored -------------------------------------------------------------------
    records = chain.records
    order_of = {r.hash: r.order for r in records}
    before_parent = [
        r.hash for r in records if r.height > 0 and order_of.get(r.prev_hash, -1) > r.order
    ]
    _write_csv(
        truth / "blocks.csv",
        ["hash", "height", "prev_hash", "time", "n_txs", "main_chain", "file", "offset",
         "storage_order"],
        [[r.hash, r.height, r.prev_hash, r.time, r.n_txs, _b(r.main), f"blk{r.file:05d}.dat",
          r.offset, r.order] for r in sorted(records, key=lambda r: r.order)],
    )  # fmt: skip
    paths["blocks"] = truth / "blocks.csv"
    paths["txs"] = truth / "txs.csv"

    # case inputs ------------------------------------------------------------------------
    _write_csv(
        out / "seeds" / "deposits.csv", ["address"], [[addr(a.aid)] for a in world.deposit_addrs]
    )
    paths["seeds"] = out / "seeds" / "deposits.csv"
    paths["tags"] = out / "tags" / "exchanges.yaml"
    untagged = untagged_exchanges(
        [e.name for e in exchanges], world.profile.untagged_exchanges, seed
    )
    _write_tags(out / "tags", world, addr, seed, set(untagged))
    if untagged:
        # only where the knob is on, so that every other world's truth/ stays file for file
        _write_csv(truth / "untagged_exchanges.csv", ["exchange"], [[n] for n in untagged])
        paths["untagged_exchanges"] = truth / "untagged_exchanges.csv"
    paths["tags_coinjoin"] = out / "tags" / "coinjoin.yaml"

    # summary ----------------------------------------------------------------------------
    main = [r for r in records if r.main]
    counts = dict(sorted(world.counts.items()))
    counts["genesis"] = 1
    service_received = sum(p.amount for p in world.payments)
    summary = {
        "format": 1,
        "generator": "chainsleuth.simulate",
        "seed": seed,
        "scale": scale,
        "network": network.name,
        "xor": xor,
        "profile": world.profile.name,
        "profile_knobs": world.profile.knobs(),
        "exchanges_never_reusing": [e.name for e in exchanges if e.no_reuse],
        "exchange_habits": {e.name: e.habit_record() for e in exchanges},
        "twin_exchanges": twin_exchanges(exchanges),
        **({"untagged_exchanges": untagged} if untagged else {}),
        "tip_height": chain.tip_height,
        "tip_hash": chain.tip_hash,
        "n_blocks": len(main),
        "n_blocks_stored": len(records),
        "n_txs": chain.n_main_txs,
        "n_txs_by_kind": counts,
        "stale_hashes": chain.stale_hashes,
        "stored_before_parent": before_parent,
        "blk_files": [p.name for p in chain.writer.paths],
        "blk_max_file_size": chain.writer.max_file_size,
        "first_block_time": _iso(main[1].time if len(main) > 1 else main[0].time),
        "last_block_time": _iso(main[-1].time),
        "subsidy": "50 BTC halving every 210,000 blocks (mainnet schedule, not regtest's 150)",
        "n_addresses": n,
        "n_addresses_used": int(len(used)),
        "wallets_by_kind": dict(sorted(Counter(w.kind for w in wallets).items())),
        "exchanges": [e.name for e in exchanges],
        "service": {
            "deposit_addresses": len(world.deposit_addrs),
            "paid_deposit_addresses": len(by_deposit),
            "payments": len(world.payments),
            "payments_by_path": dict(sorted(Counter(p.path_kind for p in world.payments).items())),
            "received_sat": service_received,
            "cashouts": len(world.cashouts),
            "cashed_out_sat": sum(c.amount for c in world.cashouts),
        },
        "supply_sat": int(np.frombuffer(book.received, np.int64).sum()
                          - np.frombuffer(book.sent, np.int64).sum()),
    }  # fmt: skip
    (out / "world.json").write_text(json.dumps(summary, indent=2) + "\n")
    paths["world"] = out / "world.json"
    paths["blocks_dir"] = out / "blocks"
    return paths


def _tag(address: str, label: str, category: str, actor: str, confidence: str) -> dict[str, str]:
    return {
        "address": address,
        "label": label,
        "category": category,
        "actor": actor,
        "confidence": confidence,
        "tag_type": "actor",
    }


def _write_tags(tags: Path, world: World, addr: Any, seed: int, untagged: set[str]) -> None:
    """A few public tags per exchange (as GraphSense's public packs have), and the coordinators.
    The exchanges of `untagged` get none: their tags are drawn as the others' (so every other
    exchange gets the tags it gets with every exchange tagged) and left out."""
    rng = np.random.Generator(np.random.PCG64(seed + 404))
    payer_idx = {w.idx for w in world.payer_of.values()} | {world.admin.idx}
    entries = []
    lo, hi = world.profile.tags_per_exchange
    for ex in world.exchanges if hi > 0 else []:
        # a few addresses anywhere in the exchange's wallet: half its own side, half deposits
        title = ex.name.capitalize() + " Exchange"
        own = _exchange_own(world, ex)
        deposits = _exchange_deposits(world, ex, payer_idx)
        k = int(rng.integers(lo, hi + 1))
        n_own = min(len(own), (k + 1) // 2)
        picked = rng.choice(own, size=n_own, replace=False).tolist() if n_own else []
        n_dep = min(len(deposits), k - n_own)
        picked += rng.choice(deposits, size=n_dep, replace=False).tolist() if n_dep else []
        for aid in sorted(picked) if ex.name not in untagged else []:
            entries.append(_tag(addr(aid), f"{title} wallet", "exchange", ex.name, "forensic"))
    for ex in world.exchanges if hi == 0 else []:
        title = ex.name.capitalize() + " Exchange"
        mine: list[dict[str, str]] = []
        mine.append(
            _tag(addr(ex.hot[0].aid), f"{title} hot wallet", "exchange", ex.name, "service_data")
        )
        mine.append(
            _tag(addr(ex.cold.aid), f"{title} cold wallet", "exchange", ex.name, "service_data")
        )
        # deposit addresses an analyst paid into herself: ordinary users' deposits only
        deposits = _exchange_deposits(world, ex, payer_idx)
        k = min(len(deposits), int(rng.integers(1, 4)))
        for aid in sorted(rng.choice(deposits, size=k, replace=False).tolist()) if k else []:
            mine.append(
                _tag(
                    addr(aid), f"{title} deposit address", "exchange", ex.name, "manual_transaction"
                )
            )
        entries += mine if ex.name not in untagged else []
    pack = {
        "title": "Simulated exchanges (chainsleuth world)",
        "creator": "chainsleuth simulator",
        "description": (
            "A handful of public attribution tags per exchange of a simulated world, like the public "
            f"GraphSense packs: reserve wallets and a few deposit addresses. Seed {seed}."
        ),
        "source": "https://github.com/chainsleuth/chainsleuth/blob/main/docs/simulator.md",
        "currency": "BTC",
        "network": "BTC",
        "lastmod": TAG_LASTMOD,
        "is_public": True,
        "tags": entries,
    }
    (tags / "exchanges.yaml").write_text(yaml.safe_dump(pack, sort_keys=False, width=100))
    cj = [
        _tag(addr(world.wasabi_fee_addr.aid), "Wasabi coordinator fee address", "coinjoin", "wasabi",
             "forensic"),
    ] + [
        _tag(addr(p.fee_addr.aid), f"Whirlpool {p.denom / 1e8:g} BTC pool fee address", "coinjoin",
             "samourai", "forensic")
        for p in world.whirlpool
    ]  # fmt: skip
    pack = {
        "title": "Simulated CoinJoin coordinators (chainsleuth world)",
        "creator": "chainsleuth simulator",
        "description": "Coordinator fee addresses of the simulated Wasabi and Whirlpool services.",
        "source": "https://github.com/chainsleuth/chainsleuth/blob/main/docs/simulator.md",
        "currency": "BTC",
        "network": "BTC",
        "lastmod": TAG_LASTMOD,
        "is_public": True,
        "tags": cj,
    }
    (tags / "coinjoin.yaml").write_text(yaml.safe_dump(pack, sort_keys=False, width=100))


def _exchange_own(world: World, ex: Exchange) -> list[int]:
    """The exchange's own used addresses: hot, cold and change (not customer deposits)."""
    book = world.book
    owner = np.frombuffer(book.owner, np.int32)
    role = np.frombuffer(book.role, np.uint8)
    n_out = np.frombuffer(book.n_outputs, np.int32)
    own_roles = np.array([ROLES.index(r) for r in ("hot", "cold", "change")], np.uint8)
    mask = (owner == ex.wallet.idx) & np.isin(role, own_roles) & (n_out > 0)
    return np.flatnonzero(mask).tolist()


def _exchange_deposits(world: World, ex: Exchange, excluded: set[int]) -> list[int]:
    book = world.book
    owner = np.frombuffer(book.owner, np.int32)
    role = np.frombuffer(book.role, np.uint8)
    n_out = np.frombuffer(book.n_outputs, np.int32)
    account = np.frombuffer(book.account, np.int32)
    mask = (owner == ex.wallet.idx) & (role == ROLES.index("deposit")) & (n_out > 0)
    mask &= ~np.isin(account, np.array(sorted(excluded), np.int32))
    return np.flatnonzero(mask).tolist()
