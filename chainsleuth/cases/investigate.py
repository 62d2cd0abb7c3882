"""Investigate a service from its seized deposit addresses (docs/investigations.md).

`investigate(data_dir, seeds_csv, out_dir)` maps the seed addresses to address ids, takes the
service's own clusters from them, traces every deposit output backward to the attributed
clusters (the tags stage) or CoinJoins (the cluster stage) that funded it, traces the service's
spent deposits forward to where the money left, and writes `leads.csv`, `subpoenas.csv`,
`cashouts.csv` and `case.json` into `out_dir`. The CSVs are a function of the store, the
clustering, the tags, the seeds, the prices and the parameters only: re-running gives the same
bytes.

    >>> investigate(data, Path("seeds.csv"), Path("case"), policy="haircut")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from chainsleuth import __version__
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.store.layout import NONE32
from chainsleuth.store.store import Store

DEFAULT_PRICES = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "btc-usd-prices"
    / "btc_usd_daily.csv"
)
#: Tag categories whose clusters end a trace as a named source/destination (VASPs and mixers).
#: Any attributed cluster ends the walk; these are the ones a subpoena can go to.
EXCHANGE_CATEGORIES = frozenset(
    {"exchange", "otc_broker", "wallet_service", "atm", "payment_processor"}
)
#: Confidence of one hop under each policy (multiplied per extra hop, see `_confidence`).
POLICY_BASE = {"fifo": 0.95, "haircut": 0.9, "poison": 0.6}
HOP_DECAY = 0.9
COINJOIN_CAP = 0.25

LEAD_COLUMNS = [
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
    "price_note",
    "hops",
    "policy",
    "confidence",
    "path",
]
SUBPOENA_COLUMNS = [
    "exchange",
    "exchange_total_sat",
    "funding_txid",
    "source_address",
    "block_height",
    "block_time",
    "amount_sat",
    "amount_usd",
    "price_note",
    "n_deposits",
    "deposit_addresses",
]
CASHOUT_COLUMNS = [
    "destination_address",
    "destination_entity",
    "destination_category",
    "destination_cluster",
    "txid",
    "block_height",
    "block_time",
    "amount_sat",
    "traced_sat",
    "amount_usd",
    "price_note",
    "hops",
]


@dataclass(frozen=True)
class InvestigationSummary:
    out_dir: Path
    n_seeds: int
    n_seeds_in_store: int
    n_deposit_outputs: int
    n_deposits_with_exchange_lead: int
    n_leads: int
    n_subpoena_rows: int
    n_cashouts: int
    service_clusters: int
    exchanges: dict[str, int]  # exchange -> customers (funding withdrawals) to request
    cashouts_by_entity: dict[str, int]  # destination entity -> satoshis


# ------------------------------------------------------------------------------- inputs
def read_seed_addresses(seeds_csv: Path) -> list[str]:
    """The `address` column of a seeds CSV, stripped, without blanks or repeats (sorted)."""
    with open(seeds_csv, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "address" not in reader.fieldnames:
            raise ChainsleuthError(f"{seeds_csv} has no column `address`")
        return sorted({r["address"].strip() for r in reader if (r["address"] or "").strip()})


def load_prices(prices_csv: Path) -> dict[str, float]:
    """{"YYYY-MM-DD": daily close in USD} from `btc_usd_daily.csv` (columns date, close_usd)."""
    prices: dict[str, float] = {}
    with open(prices_csv, newline="") as f:
        for r in csv.DictReader(f):
            prices[r["date"]] = float(r["close_usd"])
    return prices


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _seed_ids(store: Store, addresses: list[str]) -> np.ndarray:
    """Address ids of the seed addresses found in the store (sorted, unique)."""
    con = store.connection().cursor()
    con.register("cs_seed_list", pa.table({"address": pa.array(addresses, pa.string())}))
    ids = con.sql(
        "SELECT a.address_id FROM cs_seed_list s JOIN address_list_raw a ON a.address = s.address"
    ).fetchnumpy()["address_id"]
    con.unregister("cs_seed_list")
    return np.unique(np.asarray(ids, np.int64))


def _coinjoins(data_dir: Path, n_txs: int) -> tuple[np.ndarray, dict[int, str]]:
    """Bool per tx (flagged by the cluster stage) and {tx id: rule (the mixer kind)}."""
    flags = np.zeros(n_txs, np.bool_)
    rules: dict[int, str] = {}
    from chainsleuth.cluster.engine import clusters_dir, read_manifest

    manifest = read_manifest(data_dir) or {}
    for name in manifest.get("files", {}).get("coinjoins", []):
        table = pq.read_table(clusters_dir(data_dir) / name, columns=["tx_id", "rule"])
        tx_ids = table.column("tx_id").to_numpy().astype(np.int64)
        for t, rule in zip(tx_ids.tolist(), table.column("rule").to_pylist(), strict=True):
            if 0 <= t < n_txs:
                flags[t] = True
                rules[t] = str(rule)
    return flags, rules


class _Chain:
    """Store lookups the writers need: tx heights/times, txids, output addresses."""

    def __init__(self, store: Store, prices: dict[str, float]) -> None:
        from chainsleuth.trace.cli import _addresses

        self.store = store
        self.prices = prices
        self._addresses = _addresses
        self.tx_height = np.asarray(store.array("tx_height")).astype(np.int64)
        rows = store.sql(
            "SELECT height, epoch(time)::BIGINT AS t FROM blocks ORDER BY height"
        ).to_pydict()
        self.block_time = dict(zip(rows["height"], rows["t"], strict=True))
        self.output_address = np.asarray(store.array("output_address"))
        self.output_value = np.asarray(store.array("output_value"))
        self.tx_first_output = np.asarray(store.array("tx_first_output"))
        self.spent_by = store.spent_by_tx()
        self.txid_rows = np.asarray(store.array("tx_txid"))
        self._cache: dict[int, str] = {}

    def txid(self, tx: int) -> str:
        return bytes(self.txid_rows[tx][::-1]).hex()

    def address(self, output: int) -> str:
        """Address string of an output ("" when it has none), cached per address id."""
        address_id = int(self.output_address[output])
        name = self._cache.get(address_id)
        if name is None:
            name = self._addresses(self.store, np.array([address_id]))[0] or ""
            self._cache[address_id] = name
        return name

    def when(self, tx: int) -> tuple[int, str, str]:
        """(height, ISO time, date) of a tx's block."""
        height = int(self.tx_height[tx])
        t = dt.datetime.fromtimestamp(self.block_time[height], dt.UTC)
        return height, t.strftime("%Y-%m-%dT%H:%M:%SZ"), t.strftime("%Y-%m-%d")

    def usd(self, amount_sat: int, date: str) -> tuple[str, str]:
        """(amount_usd, price_note): empty and "missing_price" on a day without a close."""
        close = self.prices.get(date)
        if close is None:
            return "", "missing_price"
        return f"{amount_sat / 1e8 * close:.2f}", ""

    def outputs_of(self, tx: int) -> np.ndarray:
        hi = (
            int(self.tx_first_output[tx + 1])
            if tx + 1 < self.tx_first_output.shape[0]
            else self.output_value.shape[0]
        )
        return np.arange(int(self.tx_first_output[tx]), hi, dtype=np.int64)


def _confidence(policy: str, hops: int, share: float, coinjoin: bool) -> float:
    value = POLICY_BASE[policy] * HOP_DECAY ** max(hops - 1, 0) * min(max(share, 0.0), 1.0)
    if coinjoin:
        value = min(value, COINJOIN_CAP)
    return round(value, 4)


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    data = buf.getvalue().encode()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------ the case
def investigate(
    data_dir: Path,
    seeds_csv: Path,
    out_dir: Path,
    policy: str = "haircut",
    max_hops: int = 6,
    prices_csv: Path | None = None,
) -> InvestigationSummary:
    """Run the case: leads (who funded the deposits), subpoenas (per exchange), cash-outs."""
    from chainsleuth.cluster.engine import Clusters
    from chainsleuth.trace.engine import KINDS, POLICIES, trace_back, trace_forward
    from chainsleuth.trace.exposure import cluster_attribution

    if policy not in POLICIES:
        raise ChainsleuthError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if max_hops < 1:
        raise ChainsleuthError("max_hops must be at least 1")
    data_dir, seeds_csv, out_dir = Path(data_dir), Path(seeds_csv), Path(out_dir)
    prices_path = Path(prices_csv) if prices_csv is not None else DEFAULT_PRICES
    if not prices_path.exists():
        raise ChainsleuthError(f"no price file at {prices_path}")
    store = Store.open(data_dir)
    chain = _Chain(store, load_prices(prices_path))
    addresses = read_seed_addresses(seeds_csv)
    seed_ids = _seed_ids(store, addresses)
    clusters = Clusters(data_dir)
    cluster_of = np.asarray(clusters.cluster_of, np.int64)
    n_addresses = cluster_of.shape[0]
    service_clusters = np.unique(cluster_of[seed_ids])
    in_service = np.zeros(n_addresses, np.bool_)
    in_service[np.isin(cluster_of, service_clusters)] = True
    attribution = {
        c: v for c, v in cluster_attribution(data_dir).items() if c not in set(service_clusters)
    }
    stop = np.zeros(max(n_addresses, 1), np.bool_)
    attributed_ids = np.array(sorted(c for c in attribution if 0 <= c < n_addresses), np.int64)
    stop[attributed_ids] = True
    is_coinjoin, mixer = _coinjoins(data_dir, store.counts["txs"])

    # address id per output, with the "no address" marker mapped to -1
    out_addr = chain.output_address.astype(np.int64)
    out_addr[out_addr == int(NONE32)] = -1
    out_cluster = np.where(out_addr >= 0, cluster_of[np.maximum(out_addr, 0)], -1)
    is_seed_addr = np.zeros(n_addresses, np.bool_)
    is_seed_addr[seed_ids] = True
    pays_seed = (out_addr >= 0) & is_seed_addr[np.maximum(out_addr, 0)]
    seed_outputs = np.flatnonzero(pays_seed).astype(np.int64)

    # internal moves (the service paying its own deposit address) are not customers
    creating = np.searchsorted(chain.tx_first_output, seed_outputs, side="right") - 1
    input_first = np.asarray(store.array("tx_first_input"))
    input_addr = np.asarray(store.array("input_address")).astype(np.int64)
    n_inputs = input_addr.shape[0]
    input_in_service = np.zeros(n_inputs, np.bool_)
    ok = input_addr != int(NONE32)
    input_in_service[ok] = in_service[input_addr[ok]]
    internal_tx = np.zeros(store.counts["txs"], np.bool_)
    if n_inputs:
        tx_of_input = np.searchsorted(input_first, np.arange(n_inputs), side="right") - 1
        internal_tx[tx_of_input[input_in_service]] = True
    deposits = seed_outputs[~internal_tx[creating]]

    leads = _leads(
        chain,
        trace_back(
            data_dir,
            deposits,
            policy=policy,
            max_hops=max_hops,
            stop_clusters=stop,
            is_coinjoin=is_coinjoin,
            cluster_of=cluster_of,
        ),
        KINDS,
        out_cluster,
        attribution,
        mixer,
        policy,
    )
    subpoenas = _subpoenas(leads)

    spent_seed = seed_outputs[chain.spent_by[seed_outputs] >= 0]
    forward = trace_forward(
        data_dir,
        spent_seed,
        policy=policy,
        max_hops=max_hops,
        stop_clusters=stop,
        is_coinjoin=is_coinjoin,
        cluster_of=cluster_of,
    )
    service_mask = np.zeros(max(n_addresses, 1), np.bool_)
    service_mask[service_clusters] = True
    cashouts = _cashouts(chain, forward, KINDS, out_cluster, attribution, mixer, service_mask)

    out_dir.mkdir(parents=True, exist_ok=True)
    digests = {
        "leads.csv": _write_csv(out_dir / "leads.csv", LEAD_COLUMNS, leads),
        "subpoenas.csv": _write_csv(out_dir / "subpoenas.csv", SUBPOENA_COLUMNS, subpoenas),
        "cashouts.csv": _write_csv(out_dir / "cashouts.csv", CASHOUT_COLUMNS, cashouts),
    }
    tip = store.tip
    tags_manifest = data_dir / "tags" / "manifest.json"
    case = {
        "format": 1,
        "chainsleuth_version": __version__,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "inputs": {
            "seeds": {"path": str(seeds_csv.resolve()), "sha256": _sha256(seeds_csv)},
            "prices": {"path": str(prices_path.resolve()), "sha256": _sha256(prices_path)},
        },
        "store": {
            "data_dir": str(data_dir.resolve()),
            "tip_height": None if tip is None else tip[0],
            "tip_hash": None if tip is None else tip[1],
            "counts": store.counts,
            "clustering": {
                "policy": clusters.manifest.get("policy"),
                "generation": clusters.manifest.get("generation"),
            },
            "tags_manifest_sha256": _sha256(tags_manifest) if tags_manifest.exists() else None,
        },
        "parameters": {
            "policy": policy,
            "max_hops": max_hops,
            "stop_clusters": "every attributed cluster (tags stage) outside the service",
            "exchange_categories": sorted(EXCHANGE_CATEGORIES),
            "coinjoins": "cluster stage (clusters/manifest.json files.coinjoins) stop the walk",
            "confidence": {
                "policy_base": POLICY_BASE,
                "hop_decay": HOP_DECAY,
                "coinjoin_cap": COINJOIN_CAP,
            },
        },
        "service": {
            "seed_addresses": len(addresses),
            "seed_addresses_in_store": int(seed_ids.shape[0]),
            "clusters": int(service_clusters.shape[0]),
            "deposit_outputs": int(deposits.shape[0]),
            "internal_outputs_skipped": int(seed_outputs.shape[0] - deposits.shape[0]),
        },
        "outputs": digests,
    }
    (out_dir / "case.json").write_text(json.dumps(case, indent=2, sort_keys=True) + "\n")

    exchanges: dict[str, int] = {}
    for r in subpoenas:
        exchanges[r["exchange"]] = exchanges.get(r["exchange"], 0) + 1
    by_entity: dict[str, int] = {}
    for r in cashouts:
        by_entity[r["destination_entity"]] = by_entity.get(r["destination_entity"], 0) + int(
            r["amount_sat"]
        )
    named = {r["deposit_address"] for r in leads if r["source_category"] in EXCHANGE_CATEGORIES}
    return InvestigationSummary(
        out_dir=out_dir,
        n_seeds=len(addresses),
        n_seeds_in_store=int(seed_ids.shape[0]),
        n_deposit_outputs=int(deposits.shape[0]),
        n_deposits_with_exchange_lead=len(named),
        n_leads=len(leads),
        n_subpoena_rows=len(subpoenas),
        n_cashouts=len(cashouts),
        service_clusters=int(service_clusters.shape[0]),
        exchanges=exchanges,
        cashouts_by_entity=by_entity,
    )


def _path_output(chain: _Chain, path: list[int], seed_output: int) -> int:
    """The output of the path's last tx (nearest the source) that the walk came through."""
    if len(path) <= 1:
        return seed_output
    outs = chain.outputs_of(path[-1])
    on_path = outs[chain.spent_by[outs] == path[-2]]
    if on_path.shape[0] == 0:
        return int(outs[0])
    return int(on_path[np.argmax(chain.output_value[on_path])])


def _leads(
    chain: _Chain,
    result: Any,
    kinds: tuple[str, ...],
    out_cluster: np.ndarray,
    attribution: dict[int, tuple[str | None, str]],
    mixer: dict[int, str],
    policy: str,
) -> list[dict[str, Any]]:
    """One row per (deposit address, funding source), amounts summed over paths."""
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    deposit_value: dict[str, int] = {}
    seed_outputs = result.seeds
    for s in range(seed_outputs.shape[0]):
        addr = chain.address(int(seed_outputs[s]))
        deposit_value[addr] = deposit_value.get(addr, 0) + int(chain.output_value[seed_outputs[s]])
    for row in range(len(result)):
        kind = kinds[int(result.kind[row])]
        seed_output = int(seed_outputs[int(result.seed[row])])
        deposit = chain.address(seed_output)
        path = [int(t) for t in result.path(row).tolist()]
        output = int(result.output[row])
        amount = int(result.amount[row])
        cluster = int(out_cluster[output])
        if kind == "cluster" and cluster in attribution:
            entity, category = attribution[cluster]
            entity = entity or ""
            funding = path[-1] if path else int(result.tx[row])
            source_address = chain.address(_path_output(chain, path, seed_output))
            key = (deposit, category, entity, str(cluster), chain.txid(funding), source_address)
        elif kind == "coinjoin":
            funding = int(result.tx[row])
            entity, category = mixer.get(funding, "coinjoin"), "coinjoin"
            cluster = -1
            source_address = chain.address(output)
            path = [*path, funding]
            key = (deposit, category, entity, "", chain.txid(funding), source_address)
        else:  # coinbase, max hops, unspent, limit: no attributed source
            category = "coinbase" if kind == "coinbase" else "unattributed"
            key = (deposit, category, "", "", "", "")
            funding, cluster, source_address, entity = -1, -1, "", ""
        g = groups.get(key)
        if g is None:
            g = groups[key] = {
                "deposit_address": deposit,
                "source_entity": entity,
                "source_category": category,
                "source_cluster": "" if cluster < 0 else cluster,
                "source_address": source_address,
                "funding_tx": funding,
                "amount_sat": 0,
                "hops": len(path),
                "paths": set(),
            }
        g["amount_sat"] += amount
        g["hops"] = min(g["hops"], len(path))
        if funding >= 0:
            g["paths"].add(";".join(chain.txid(t) for t in reversed(path)))
    rows = []
    for g in groups.values():
        funding = g.pop("funding_tx")
        paths = sorted(g.pop("paths"))
        if funding >= 0:
            height, when, date = chain.when(funding)
            usd, note = chain.usd(g["amount_sat"], date)
            g.update(
                funding_txid=chain.txid(funding),
                block_height=height,
                block_time=when,
                amount_usd=usd,
                price_note=note,
            )
        else:
            g.update(funding_txid="", block_height="", block_time="", amount_usd="", price_note="")
        share = g["amount_sat"] / max(deposit_value.get(g["deposit_address"], 0), 1)
        named = g["source_category"] in EXCHANGE_CATEGORIES or g["source_category"] == "coinjoin"
        g["confidence"] = (
            _confidence(policy, g["hops"], share, g["source_category"] == "coinjoin")
            if named
            else 0.0
        )
        g["policy"] = policy
        g["path"] = "|".join(paths)
        rows.append(g)
    rows.sort(
        key=lambda r: (
            r["deposit_address"],
            -r["amount_sat"],
            r["source_category"],
            r["source_entity"],
            r["funding_txid"],
            r["source_address"],
        )
    )
    return rows


def _subpoenas(leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per exchange, the withdrawals (customers) to request, by total paid to the service."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for lead in leads:
        if lead["source_category"] not in EXCHANGE_CATEGORIES:
            continue
        key = (lead["source_entity"], lead["funding_txid"], lead["source_address"])
        r = rows.get(key)
        if r is None:
            r = rows[key] = {
                "exchange": lead["source_entity"],
                "funding_txid": lead["funding_txid"],
                "source_address": lead["source_address"],
                "block_height": lead["block_height"],
                "block_time": lead["block_time"],
                "amount_sat": 0,
                "usd": 0.0,
                "missing": False,
                "deposits": set(),
            }
        r["amount_sat"] += lead["amount_sat"]
        if lead["amount_usd"] == "":
            r["missing"] = True
        else:
            r["usd"] += float(lead["amount_usd"])
        r["deposits"].add(lead["deposit_address"])
    totals: dict[str, int] = {}
    for r in rows.values():
        totals[r["exchange"]] = totals.get(r["exchange"], 0) + r["amount_sat"]
    out = []
    for r in rows.values():
        deposits = sorted(r.pop("deposits"))
        missing = r.pop("missing")
        usd = r.pop("usd")
        r.update(
            exchange_total_sat=totals[r["exchange"]],
            amount_usd="" if missing else f"{usd:.2f}",
            price_note="missing_price" if missing else "",
            n_deposits=len(deposits),
            deposit_addresses=";".join(deposits),
        )
        out.append(r)
    out.sort(
        key=lambda r: (
            -r["exchange_total_sat"],
            r["exchange"],
            -r["amount_sat"],
            r["funding_txid"],
            r["source_address"],
        )
    )
    return out


def _cashouts(
    chain: _Chain,
    result: Any,
    kinds: tuple[str, ...],
    out_cluster: np.ndarray,
    attribution: dict[int, tuple[str | None, str]],
    mixer: dict[int, str],
    in_service_cluster: np.ndarray,
) -> list[dict[str, Any]]:
    """Where the service's money reached an attributed cluster (or a CoinJoin), per output.

    The destination is the output the exchange credits: when the walk reached the attributed
    cluster through a tx that spends an output outside the service (an exchange deposit
    address swept into a tagged hot wallet), that output; otherwise the attributed output.
    """
    groups: dict[int, dict[str, Any]] = {}
    for row in range(len(result)):
        kind = kinds[int(result.kind[row])]
        output = int(result.output[row])
        cluster = int(out_cluster[output])
        if kind == "cluster" and cluster in attribution:
            entity, category = attribution[cluster]
            entity = entity or ""
        elif kind == "coinjoin":
            entity, category = mixer.get(int(result.tx[row]), "coinjoin"), "coinjoin"
        else:
            continue
        path = [int(t) for t in result.path(row).tolist()]
        destination, tx, hops = output, int(result.tx[row]), int(result.hops[row])
        if kind == "cluster" and len(path) >= 2:
            outs = chain.outputs_of(path[-2])
            on_path = outs[chain.spent_by[outs] == path[-1]]
            if on_path.shape[0]:
                before = int(on_path[np.argmax(chain.output_value[on_path])])
                c = int(out_cluster[before])
                if c < 0 or not in_service_cluster[c]:
                    destination, tx, hops = before, path[-2], len(path) - 1
        g = groups.get(destination)
        if g is None:
            height, when, date = chain.when(tx)
            g = groups[destination] = {
                "destination_address": chain.address(destination),
                "destination_entity": entity,
                "destination_category": category,
                "destination_cluster": cluster if cluster >= 0 else "",
                "txid": chain.txid(tx),
                "block_height": height,
                "block_time": when,
                "amount_sat": int(chain.output_value[destination]),
                "traced_sat": 0,
                "date": date,
                "hops": hops,
            }
        g["traced_sat"] += int(result.amount[row])
        g["hops"] = min(g["hops"], hops)
    rows = []
    for g in groups.values():
        usd, note = chain.usd(g["amount_sat"], g.pop("date"))
        g.update(amount_usd=usd, price_note=note)
        rows.append(g)
    rows.sort(key=lambda r: (r["block_height"], r["txid"], r["destination_address"]))
    return rows
