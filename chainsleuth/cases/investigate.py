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
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from chainsleuth import __version__
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.core.files import sha256_file as _sha256
from chainsleuth.store.layout import NONE32
from chainsleuth.store.store import Store
from chainsleuth.trace.exposure import coinjoin_flags as _coinjoins
from chainsleuth.trace.exposure import one_wallet_txs

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
#: Hops walked back from a deposit: peel chains of 10 payments and exchanges' chains of batched
#: withdrawals (each spending the last one's change) are common; 15 finds 98% of the simulated
#: world's sources (docs/investigations.md) and costs little, because shares below MIN_FRACTION
#: are not followed.
DEFAULT_MAX_HOPS = 15
#: Confidence of one hop under each policy (multiplied per extra hop, see `_confidence`).
POLICY_BASE = {"fifo": 0.95, "haircut": 0.9, "poison": 0.6}
HOP_DECAY = 0.9
COINJOIN_CAP = 0.25
#: Confidence kept per batched withdrawal the funding tx is moved past (kernels.lead_sources).
CUSTODY_DECAY = 0.98
#: A tx with at least this many outputs is taken for a batch when moving a lead's funding tx
#: along an exchange's chain of withdrawals (each spending the last one's change). 3 = two
#: payees and change; on the simulated worlds 3 names the exchange's withdrawal to the customer
#: for 54 of 61 leads of the chaining exchange on the small world (4 and 6: 49 and 31), and no
#: lead of the other exchanges changes (docs/investigations.md).
BATCH_MIN_OUTPUTS = 3
#: Paths listed per lead (the largest by amount); `n_paths` counts them all.
MAX_PATHS = 3
#: Row order of leads.csv: per deposit address, the largest source first.
LEAD_ORDER = [
    ("deposit_address", "ascending"),
    ("amount_sat", "descending"),
    ("source_category", "ascending"),
    ("source_entity", "ascending"),
    ("funding_txid", "ascending"),
    ("source_address", "ascending"),
]
_TYPES = {
    "source_cluster": pa.int64(),
    "block_height": pa.int64(),
    "amount_sat": pa.int64(),
    "traced_sat": pa.int64(),
    "hops": pa.int64(),
    "n_paths": pa.int64(),
    "destination_cluster": pa.int64(),
    "amount_usd": pa.float64(),
    "confidence": pa.float64(),
}


def _schema(columns: list[str]) -> pa.Schema:
    return pa.schema([(c, _TYPES.get(c, pa.string())) for c in columns])


#: Trace bounds of an investigation: shares below MIN_FRACTION of a deposit are not followed
#: (a haircut through a 200-input sweep would otherwise split one deposit into millions of
#: dust-sized pieces), each seed's walk holds at most MAX_ENTRIES_PER_SEED entries, and seeds
#: are traced CHUNK_SEEDS at a time within CHUNK_ENTRIES entries (about 1 GB).
MIN_FRACTION = 0.01
MAX_ENTRIES_PER_SEED = 5_000
CHUNK_SEEDS = 65_536
CHUNK_ENTRIES = 20_000_000
TRACE_THREADS = 4
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
ISO = "%Y-%m-%dT%H:%M:%SZ"

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
    "n_paths",
    "custody_path",
    "through_coinjoin",
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
    untraced_sat: int = 0  # shares below MIN_FRACTION, not followed
    report_html: Path | None = None
    report_pdf: Path | None = None


# ------------------------------------------------------------------------------- inputs
def _read_seeds(seeds_csv: Path) -> pa.Array:
    """The `address` column of a seeds CSV, stripped, without blanks or repeats (sorted).

    Read with Arrow's CSV reader (a million seeds in well under a second); a malformed file
    is a ChainsleuthError naming the file and what Arrow found wrong (with the row).
    """
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    seeds_csv = Path(seeds_csv)
    try:
        with open(seeds_csv, newline="") as f:
            header = next(csv.reader(f), [])
    except OSError as e:
        raise ChainsleuthError(f"cannot read {seeds_csv}: {e}") from None
    if "address" not in [h.strip() for h in header]:
        raise ChainsleuthError(f"{seeds_csv} has no column `address`")
    names = [h.strip() for h in header]
    try:
        table = pacsv.read_csv(
            seeds_csv,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            convert_options=pacsv.ConvertOptions(
                include_columns=["address"], column_types={"address": pa.string()}
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError) as e:
        raise ChainsleuthError(f"{seeds_csv}: not a readable CSV ({e})") from None
    column = pc.utf8_trim_whitespace(table.column("address").fill_null(""))
    column = pc.filter(column, pc.not_equal(column, ""))
    unique = pc.unique(column)
    return unique.take(pc.sort_indices(unique))


def read_seed_addresses(seeds_csv: Path) -> list[str]:
    """The `address` column of a seeds CSV, stripped, without blanks or repeats (sorted)."""
    return [str(a) for a in _read_seeds(seeds_csv).to_pylist()]


def load_prices(prices_csv: Path) -> dict[str, float]:
    """{"YYYY-MM-DD": daily close in USD} from `btc_usd_daily.csv` (columns date, close_usd)."""
    prices: dict[str, float] = {}
    with open(prices_csv, newline="") as f:
        for r in csv.DictReader(f):
            prices[r["date"]] = float(r["close_usd"])
    return prices


def _seed_ids(store: Store, addresses: list[str] | pa.Array) -> np.ndarray:
    """Address ids of the seed addresses found in the store (sorted, unique)."""
    con = store.connection().cursor()
    column = addresses if isinstance(addresses, pa.Array) else pa.array(addresses, pa.string())
    con.register("cs_seed_list", pa.table({"address": column}))
    ids = con.sql(
        "SELECT a.address_id FROM cs_seed_list s JOIN address_list_raw a ON a.address = s.address"
    ).fetchnumpy()["address_id"]
    con.unregister("cs_seed_list")
    return np.unique(np.asarray(ids, np.int64))


class _Chain:
    """Store arrays and lookups the writers need, vectorized over many txs or addresses."""

    def __init__(self, store: Store, prices: dict[str, float]) -> None:
        self.store = store
        self.tx_height = np.asarray(store.array("tx_height"))
        rows = store.sql("SELECT height, epoch(time)::BIGINT AS t FROM blocks ORDER BY height")
        heights = rows.column("height").to_numpy().astype(np.int64)
        self.block_epoch = np.zeros(int(heights.max(initial=-1)) + 1, np.int64)
        self.block_epoch[heights] = rows.column("t").to_numpy().astype(np.int64)
        # daily closes by UTC day number (epoch // 86400); NaN where the file has no row
        days = np.array(
            [dt.date.fromisoformat(d).toordinal() - EPOCH_ORDINAL for d in prices], np.int64
        )
        self.price_day0 = int(days.min(initial=0))
        self.close = np.full(int(days.max(initial=-1)) - self.price_day0 + 1, np.nan)
        self.close[days - self.price_day0] = np.array(list(prices.values()), np.float64)
        self.output_address = np.asarray(store.array("output_address"))
        self.output_value = np.asarray(store.array("output_value"))
        self.output_script_type = np.asarray(store.array("output_script_type"))
        self.tx_first_output = np.asarray(store.array("tx_first_output"))
        self.txid_rows = np.asarray(store.array("tx_txid"))

    def txids(self, tx_ids: np.ndarray) -> pa.Array:
        """Display txids (hex strings; "" for -1) of tx ids, as an Arrow string array."""
        tx_ids = np.asarray(tx_ids, np.int64)
        unique, inverse = np.unique(tx_ids, return_inverse=True)
        known = unique >= 0
        hexed = np.full(unique.shape[0], b"", "S64")
        # one hex() over all the (reversed) txids, cut into 64-character rows by a dtype view
        text = self.txid_rows[unique[known]][:, ::-1].tobytes().hex().encode()
        hexed[known] = np.frombuffer(text, "S64")
        names = pa.array(hexed, pa.binary()).cast(pa.string())
        return names.take(pa.array(inverse.reshape(-1)))

    def addresses_of_outputs(self, outputs: np.ndarray) -> pa.Array:
        """Address strings ("" without an address or for -1) of output ids (Arrow strings)."""
        from chainsleuth.parse.address_kernels import encode_address_keys

        outputs = np.asarray(outputs, np.int64)
        ids = np.full(outputs.shape[0], int(NONE32), np.int64)
        has = outputs >= 0
        ids[has] = self.output_address[outputs[has]]
        unique, inverse = np.unique(ids, return_inverse=True)
        known = unique != int(NONE32)
        rows = np.asarray(self.store.array("address_key"))[unique[known]]
        encoded = encode_address_keys(
            np.ascontiguousarray(rows[:, 0]),
            np.ascontiguousarray(rows[:, 2:]),
            np.ascontiguousarray(rows[:, 1]),
            self.store.network.code,
        )
        names = pa.concat_arrays(
            [
                encoded.cast(pa.string()).fill_null(""),
                pa.array([""] * int((~known).sum()), pa.string()),
            ]
        )
        # unique is sorted and NONE32 is the largest id, so the unknown one comes last
        return names.take(pa.array(inverse.reshape(-1)))

    def when(self, tx_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(height, ISO UTC time strings, UTC day numbers) of the txs' blocks."""
        heights = self.tx_height[np.asarray(tx_ids, np.int64)].astype(np.int64)
        epoch = self.block_epoch[heights]
        unique, inverse = np.unique(epoch, return_inverse=True)
        iso = np.array(
            [dt.datetime.fromtimestamp(int(t), dt.UTC).strftime(ISO) for t in unique.tolist()],
            object,
        )
        return heights, iso[inverse], epoch // 86400

    def usd(self, amount_sat: np.ndarray, day: np.ndarray) -> np.ndarray:
        """USD at the day's close, rounded to cents; NaN on a day the price file lacks."""
        index = np.asarray(day, np.int64) - self.price_day0
        ok = (index >= 0) & (index < self.close.shape[0])
        close = np.full(index.shape[0], np.nan)
        close[ok] = self.close[index[ok]]
        usd: np.ndarray = np.round(np.asarray(amount_sat, np.float64) / 1e8 * close, 2)
        return usd

    def n_outputs(self, tx_ids: np.ndarray) -> np.ndarray:
        tx_ids = np.asarray(tx_ids, np.int64)
        ends = np.append(self.tx_first_output[1:], self.output_value.shape[0]).astype(np.int64)
        return ends[tx_ids] - self.tx_first_output[tx_ids].astype(np.int64)


# ------------------------------------------------------------------------------ the case
@dataclass
class CaseSetup:
    """Everything a case derives from the store, clustering, tags and seeds before it traces
    (`prepare_case`); `deposits` are grouped by address, `options` go to the traces."""

    store: Store
    chain: _Chain
    clusters: Any
    addresses: pa.Array
    seed_ids: np.ndarray
    cluster_of: np.ndarray
    service_clusters: np.ndarray
    seed_clusters: np.ndarray
    wallet_clusters: np.ndarray
    service_mask: np.ndarray
    attribution: dict[int, tuple[str | None, str]]
    mixer: dict[int, str]
    one_wallet: np.ndarray
    out_addr: np.ndarray
    out_cluster: np.ndarray
    seed_outputs: np.ndarray
    deposits: np.ndarray
    options: dict[str, Any]


def prepare_case(
    data_dir: Path,
    seeds_csv: Path,
    prices_path: Path,
    policy: str = "haircut",
    max_hops: int = DEFAULT_MAX_HOPS,
    walk_coinjoins: bool = False,
) -> CaseSetup:
    """The service (seed clusters and wallet), stops, CoinJoins and deposit outputs of a case."""
    from chainsleuth.cluster.engine import Clusters
    from chainsleuth.trace.exposure import cluster_attribution

    store = Store.open(data_dir)
    chain = _Chain(store, load_prices(prices_path))
    addresses = _read_seeds(seeds_csv)
    seed_ids = _seed_ids(store, addresses)
    clusters = Clusters(data_dir)
    cluster_of = np.asarray(clusters.cluster_of, np.int64)
    n_addresses = cluster_of.shape[0]
    service_clusters, seed_clusters, wallet_clusters = _service_clusters(
        store, chain, cluster_of, seed_ids
    )
    service_mask = np.zeros(max(n_addresses, 1), np.bool_)
    service_mask[service_clusters] = True
    in_service = service_mask[cluster_of]
    attribution = {
        c: v
        for c, v in cluster_attribution(data_dir).items()
        if 0 <= c < n_addresses and not service_mask[c]
    }
    stop = np.zeros(max(n_addresses, 1), np.bool_)
    stop[np.array(sorted(attribution), np.int64)] = True
    is_coinjoin, mixer = _coinjoins(data_dir, store.counts["txs"])
    # one wallet cannot mix with itself: a flagged tx whose inputs share a cluster is walked
    one_wallet = is_coinjoin & one_wallet_txs(store, cluster_of)
    is_coinjoin &= ~one_wallet

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
    input_first = np.asarray(store.array("tx_first_input")).astype(np.int64)
    input_addr = np.asarray(store.array("input_address")).astype(np.int64)
    n_inputs = input_addr.shape[0]
    input_in_service = np.zeros(n_inputs, np.bool_)
    ok = input_addr != int(NONE32)
    input_in_service[ok] = in_service[input_addr[ok]]
    internal_tx = np.zeros(store.counts["txs"], np.bool_)
    if n_inputs:
        per_tx = np.add.reduceat(input_in_service.astype(np.int64), input_first)
        internal_tx[:] = per_tx > 0
    deposits = seed_outputs[~internal_tx[creating]]
    # grouped by address, so each chunk of the trace holds every output of its addresses
    deposits = deposits[np.lexsort((deposits, out_addr[deposits]))]
    options: dict[str, Any] = {
        "policy": policy,
        "max_hops": max_hops,
        "stop_clusters": stop,
        "is_coinjoin": is_coinjoin,
        "cluster_of": cluster_of,
        "max_entries_per_seed": MAX_ENTRIES_PER_SEED,
        "min_fraction": MIN_FRACTION,
        "walk_coinjoins": walk_coinjoins,
    }
    return CaseSetup(
        store=store,
        chain=chain,
        clusters=clusters,
        addresses=addresses,
        seed_ids=seed_ids,
        cluster_of=cluster_of,
        service_clusters=service_clusters,
        seed_clusters=seed_clusters,
        wallet_clusters=wallet_clusters,
        service_mask=service_mask,
        attribution=attribution,
        mixer=mixer,
        one_wallet=one_wallet,
        out_addr=out_addr,
        out_cluster=out_cluster,
        seed_outputs=seed_outputs,
        deposits=deposits,
        options=options,
    )


def investigate(
    data_dir: Path,
    seeds_csv: Path,
    out_dir: Path,
    policy: str = "haircut",
    max_hops: int = DEFAULT_MAX_HOPS,
    prices_csv: Path | None = None,
    report: bool = True,
    pdf: bool = True,
    walk_coinjoins: bool = False,
) -> InvestigationSummary:
    """Run the case: leads (who funded the deposits), subpoenas (per exchange), cash-outs."""
    from chainsleuth.trace.engine import POLICIES, trace_back, trace_forward

    if policy not in POLICIES:
        raise ChainsleuthError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if max_hops < 1:
        raise ChainsleuthError("max_hops must be at least 1")
    data_dir, seeds_csv, out_dir = Path(data_dir), Path(seeds_csv), Path(out_dir)
    prices_path = Path(prices_csv) if prices_csv is not None else DEFAULT_PRICES
    if not prices_path.exists():
        raise ChainsleuthError(f"no price file at {prices_path}")
    setup = prepare_case(data_dir, seeds_csv, prices_path, policy, max_hops, walk_coinjoins)
    store, chain, clusters, addresses = setup.store, setup.chain, setup.clusters, setup.addresses
    seed_ids, attribution, mixer = setup.seed_ids, setup.attribution, setup.mixer
    service_clusters, service_mask = setup.service_clusters, setup.service_mask
    seed_clusters, wallet_clusters, one_wallet = (
        setup.seed_clusters,
        setup.wallet_clusters,
        setup.one_wallet,
    )
    out_addr, out_cluster = setup.out_addr, setup.out_cluster
    seed_outputs, deposits, options = setup.seed_outputs, setup.deposits, setup.options
    parts, untraced = [], 0
    for result in _in_chunks(
        partial(trace_back, data_dir), deposits, out_addr[deposits], **options
    ):
        parts.append(_leads(chain, result, out_cluster, attribution, mixer, policy, max_hops))
        untraced += int(result.dropped.sum())
    leads = (pa.concat_tables(parts) if parts else _schema(LEAD_COLUMNS).empty_table()).sort_by(
        LEAD_ORDER
    )
    del parts
    subpoenas = _subpoenas(leads)

    spent_seed = seed_outputs[store.spent_by_tx()[seed_outputs] >= 0]
    cash_parts = [
        _cashout_rows(result, out_cluster, attribution, service_mask)
        for result in _in_chunks(
            partial(trace_forward, data_dir),
            spent_seed,
            np.arange(spent_seed.shape[0]),
            **options,
        )
    ]
    cashouts = _cashouts(chain, cash_parts, attribution, mixer)
    del cash_parts

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
            "coinjoins": "cluster stage (clusters/manifest.json files.coinjoins) "
            + ("walked through, leads beyond marked" if walk_coinjoins else "stop the walk"),
            "walk_coinjoins": walk_coinjoins,
            "one_wallet_coinjoins_walked": int(one_wallet.sum()),
            "confidence": {
                "policy_base": POLICY_BASE,
                "hop_decay": HOP_DECAY,
                "custody_decay": CUSTODY_DECAY,
                "coinjoin_cap": COINJOIN_CAP,
            },
            "batch_min_outputs": BATCH_MIN_OUTPUTS,
            "max_paths_per_lead": MAX_PATHS,
            "service_wallet": "clusters receiving two or more one-output sweeps of the seeds",
        },
        "service": {
            "seed_addresses": len(addresses),
            "seed_addresses_in_store": int(seed_ids.shape[0]),
            "clusters": int(service_clusters.shape[0]),
            "seed_clusters": int(seed_clusters.shape[0]),
            "wallet_clusters": [int(c) for c in wallet_clusters[:100]],
            "deposit_outputs": int(deposits.shape[0]),
            "internal_outputs_skipped": int(seed_outputs.shape[0] - deposits.shape[0]),
            "untraced_sat": untraced,
        },
        "outputs": digests,
    }
    case_json = out_dir / "case.json"
    case_json.with_suffix(".json.tmp").write_text(json.dumps(case, indent=2, sort_keys=True) + "\n")
    os.replace(case_json.with_suffix(".json.tmp"), case_json)
    html = pdf_path = None
    if report:
        from chainsleuth.cases.report import write_report

        paths = write_report(out_dir, pdf=pdf)
        html, pdf_path = paths.html, paths.pdf

    exchanges: dict[str, int] = {}
    for name in subpoenas.column("exchange").to_pylist():  # sorted by total paid
        exchanges[name] = exchanges.get(name, 0) + 1
    by_entity: dict[str, int] = {}
    for name, sat in zip(
        cashouts.column("destination_entity").to_pylist(),
        cashouts.column("amount_sat").to_pylist(),
        strict=True,
    ):
        by_entity[name] = by_entity.get(name, 0) + int(sat)
    categories = np.asarray(leads.column("source_category").to_numpy(zero_copy_only=False))
    named = np.isin(categories, sorted(EXCHANGE_CATEGORIES))
    deposits_named = np.unique(
        np.asarray(leads.column("deposit_address").to_numpy(zero_copy_only=False))[named]
    )
    return InvestigationSummary(
        out_dir=out_dir,
        n_seeds=len(addresses),
        n_seeds_in_store=int(seed_ids.shape[0]),
        n_deposit_outputs=int(deposits.shape[0]),
        n_deposits_with_exchange_lead=int(deposits_named.shape[0]),
        n_leads=leads.num_rows,
        n_subpoena_rows=subpoenas.num_rows,
        n_cashouts=cashouts.num_rows,
        service_clusters=int(service_clusters.shape[0]),
        exchanges=exchanges,
        cashouts_by_entity=by_entity,
        untraced_sat=untraced,
        report_html=html,
        report_pdf=pdf_path,
    )


def _service_clusters(
    store: Store, chain: _Chain, cluster_of: np.ndarray, seed_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(service clusters, seed clusters, service-wallet clusters) as sorted cluster ids.

    The seed clusters hold the deposit addresses. The service's wallet is where it sweeps them:
    a tx spending only seed-cluster outputs into one output is a sweep, and a cluster that
    receives two or more sweeps is the service's own (a one-off send-all to an exchange is not
    taken for the service; the service reuses its wallet addresses, an exchange deposit address
    is used once).
    """
    seed_clusters = np.unique(cluster_of[seed_ids])
    in_seed = np.zeros(cluster_of.shape[0], np.bool_)
    in_seed[np.isin(cluster_of, seed_clusters)] = True
    input_address = np.asarray(store.array("input_address")).astype(np.int64)
    tx_first_input = np.asarray(store.array("tx_first_input")).astype(np.int64)
    n_txs = tx_first_input.shape[0]
    spends_seed = np.zeros(input_address.shape[0], np.bool_)
    ok = input_address != int(NONE32)
    spends_seed[ok] = in_seed[input_address[ok]]
    n_inputs = np.diff(np.append(tx_first_input, input_address.shape[0]))
    # per tx: do all of its inputs spend seed-cluster outputs (coinbases have one, unowned)
    seed_inputs = np.zeros(n_txs, np.int64)
    if n_txs and spends_seed.shape[0]:
        seed_inputs = np.add.reduceat(spends_seed.astype(np.int64), tx_first_input)
    seed_inputs[n_inputs == 0] = 0
    sweeps = np.flatnonzero(
        (seed_inputs == n_inputs) & (n_inputs > 0) & (chain.n_outputs(np.arange(n_txs)) == 1)
    )
    target = chain.output_address[chain.tx_first_output[sweeps].astype(np.int64)].astype(np.int64)
    target = target[target != int(NONE32)]
    clusters, counts = np.unique(cluster_of[target], return_counts=True)
    wallet = np.setdiff1d(clusters[counts >= 2], seed_clusters)
    return np.union1d(seed_clusters, wallet), seed_clusters, wallet


def _groups(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort rows by `keys` (last key most significant... as np.lexsort) and find the groups.

    Returns (order, starts, group of each sorted row): rows order[starts[g]:starts[g+1]] share
    every key.
    """
    order = np.lexsort(keys)
    n = order.shape[0]
    change = np.zeros(n, np.bool_)
    if n:
        change[0] = True
        for k in keys:
            ks = k[order]
            change[1:] |= ks[1:] != ks[:-1]
    starts = np.flatnonzero(change)
    return order, starts, np.cumsum(change) - 1


SOURCE_ATTRIBUTED, SOURCE_COINJOIN, SOURCE_COINBASE, SOURCE_UNATTRIBUTED = 0, 1, 2, 3


def _leads(
    chain: _Chain,
    result: Any,
    out_cluster: np.ndarray,
    attribution: dict[int, tuple[str | None, str]],
    mixer: dict[int, str],
    policy: str,
    max_hops: int,
) -> pa.Table:
    """One row per (deposit address, funding source), amounts summed over paths."""
    from chainsleuth.cases import kernels as case_kernels
    from chainsleuth.trace import kernels as trace_kernels

    seed_outputs = result.seeds
    deposit_addr = chain.output_address[seed_outputs].astype(np.int64)
    funding, source, hops, key, custody = case_kernels.lead_sources(
        result.entry,
        result.kind,
        result.tx,
        result.entry_parent,
        result.entry_tx,
        result.entry_output,
        result.entry_hops,
        chain.tx_first_output,
        chain.output_value.shape[0],
        chain.output_script_type,
        BATCH_MIN_OUTPUTS,
        trace_kernels.KIND_CLUSTER,
        trace_kernels.KIND_COINJOIN,
    )
    kind = result.kind
    cluster = out_cluster[result.output]
    attributed = np.zeros(cluster.shape[0], np.bool_)
    attributed_ids = np.array(sorted(attribution), np.int64)
    attributed[cluster >= 0] = np.isin(cluster[cluster >= 0], attributed_ids)
    source_kind = np.full(kind.shape[0], SOURCE_UNATTRIBUTED, np.int64)
    source_kind[(kind == trace_kernels.KIND_CLUSTER) & attributed] = SOURCE_ATTRIBUTED
    source_kind[kind == trace_kernels.KIND_COINJOIN] = SOURCE_COINJOIN
    source_kind[kind == trace_kernels.KIND_COINBASE] = SOURCE_COINBASE
    named = source_kind <= SOURCE_COINJOIN
    source_cluster = np.where(source_kind == SOURCE_ATTRIBUTED, cluster, -1)
    funding = np.where(named, funding, -1)
    source = np.where(named, source, -1)
    key = np.where(named, key, -1)
    source_addr = np.full(kind.shape[0], -1, np.int64)
    source_addr[source >= 0] = chain.output_address[source[source >= 0]]
    deposit = deposit_addr[result.seed]
    amount = result.amount.astype(np.int64)

    # groups: (deposit address, source kind, cluster, funding tx, source address)
    order, starts, _ = _groups(source_addr, funding, source_cluster, source_kind, deposit)
    g_amount = _sum_groups(amount[order], starts)
    g_hops = np.minimum.reduceat(hops[order], starts) if starts.shape[0] else hops[:0]
    first = order[starts]
    # paths: per (group, path key) the amount; each lead lists its largest MAX_PATHS paths
    n_groups = starts.shape[0]
    group_of_row = np.empty(order.shape[0], np.int64)
    group_of_row[order] = np.repeat(np.arange(n_groups), np.diff(np.append(starts, order.shape[0])))
    rows = np.flatnonzero(funding >= 0)
    p_order, p_starts, _ = _groups(key[rows], group_of_row[rows])
    p_first = rows[p_order[p_starts]]  # one row of each (group, path)
    p_amount = _sum_groups(amount[rows[p_order]], p_starts)
    p_group = group_of_row[p_first]
    n_paths = np.bincount(p_group, minlength=n_groups)
    ranked = np.lexsort((key[p_first], -p_amount, p_group))  # by group, then largest first
    rank = np.arange(ranked.shape[0]) - np.searchsorted(p_group[ranked], p_group[ranked])
    kept = ranked[rank < MAX_PATHS]
    top = ranked[rank == 0]
    texts = _join_txids(
        chain,
        case_kernels.path_txs(
            funding[p_first[kept]],
            key[p_first[kept]],
            max_hops + 2,
            result.entry_parent,
            result.entry_tx,
        ),
    )
    # kept is ordered by group, largest path first: one run of path texts per group
    g_path = _join_lists(_run_offsets(p_group[kept], n_groups), texts, "|")
    # the exchange's own txs the funding tx was moved past, on each lead's largest path
    top_rows = p_first[top]
    g_custody_n = np.zeros(n_groups, np.int64)
    g_custody_n[p_group[top]] = custody[top_rows]
    g_custody = _join_lists(
        _run_offsets(p_group[top], n_groups),
        _join_txids(
            chain,
            case_kernels.custody_txs(
                result.entry[top_rows],
                custody[top_rows],
                int(custody.max(initial=0)),
                result.entry_parent,
                result.entry_tx,
            ),
        ),
        "",
    )

    g_kind = source_kind[first]
    g_cluster = source_cluster[first]
    g_funding = funding[first]
    g_deposit = deposit[first]
    known = np.unique(deposit_addr)
    received = np.bincount(
        np.searchsorted(known, deposit_addr),
        weights=chain.output_value[seed_outputs].astype(np.float64),
        minlength=known.shape[0],
    )
    share = g_amount / np.maximum(received[np.searchsorted(known, g_deposit)], 1.0)
    entity = np.full(starts.shape[0], "", object)
    category = np.full(starts.shape[0], "unattributed", object)
    category[g_kind == SOURCE_COINBASE] = "coinbase"
    category[g_kind == SOURCE_COINJOIN] = "coinjoin"
    # names per distinct cluster / CoinJoin, then spread to the leads
    mixed = np.flatnonzero(g_kind == SOURCE_COINJOIN)
    cjs, where = np.unique(g_funding[mixed], return_inverse=True)
    entity[mixed] = np.array([mixer.get(int(t), "coinjoin") for t in cjs], object)[where]
    tagged = np.flatnonzero(g_kind == SOURCE_ATTRIBUTED)
    clusters, where = np.unique(g_cluster[tagged], return_inverse=True)
    names = [attribution[int(c)] for c in clusters]
    entity[tagged] = np.array([n or "" for n, _ in names], object)[where]
    category[tagged] = np.array([c for _, c in names], object)[where]
    exchange_like = np.isin(category, list(EXCHANGE_CATEGORIES)) | (g_kind == SOURCE_COINJOIN)
    confidence = (
        POLICY_BASE[policy]
        * HOP_DECAY ** np.maximum(g_hops.astype(np.int64) - 1, 0)
        * CUSTODY_DECAY**g_custody_n
        * np.clip(share, 0.0, 1.0)
    )
    # a source named beyond a CoinJoin (walk_coinjoins) is no surer than the CoinJoin itself
    through = (result.flags & trace_kernels.FLAG_LOW_CONFIDENCE) != 0
    g_through = np.maximum.reduceat(through[order], starts) if n_groups else np.zeros(0, np.bool_)
    confidence = np.where(
        (g_kind == SOURCE_COINJOIN) | g_through, np.minimum(confidence, COINJOIN_CAP), confidence
    )
    confidence = np.where(exchange_like, np.round(confidence, 4), 0.0)
    heights = np.full(starts.shape[0], -1, np.int64)
    times = np.full(starts.shape[0], "", object)
    usd = np.full(starts.shape[0], np.nan)
    funded = np.flatnonzero(g_funding >= 0)
    h, t, day = chain.when(g_funding[funded])
    heights[funded], times[funded] = h, t
    usd[funded] = chain.usd(g_amount[funded], day)
    table = pa.table(
        {
            "deposit_address": chain.addresses_of_outputs(seed_outputs[result.seed[first]]),
            "source_entity": entity,
            "source_category": category,
            "source_cluster": pa.array(g_cluster, mask=g_cluster < 0),
            "source_address": chain.addresses_of_outputs(source[first]),
            "funding_txid": chain.txids(g_funding),
            "block_height": pa.array(heights, mask=heights < 0),
            "block_time": times,
            "amount_sat": g_amount,
            "amount_usd": pa.array(usd, mask=np.isnan(usd)),
            "price_note": np.where((g_funding >= 0) & np.isnan(usd), "missing_price", ""),
            "hops": g_hops.astype(np.int64),
            "policy": np.full(starts.shape[0], policy, object),
            "confidence": confidence,
            "path": g_path,
            "n_paths": n_paths,
            "custody_path": g_custody,
            "through_coinjoin": np.where(g_through, "true", "false"),
        },
        schema=_schema(LEAD_COLUMNS),
    )
    return table


def _join_txids(chain: _Chain, paths: np.ndarray, separator: str = ";") -> pa.Array:
    """`separator`-joined txids of each row of a tx id matrix, -1-padded at the end."""
    lengths = (paths >= 0).sum(axis=1) if paths.ndim == 2 else np.zeros(0, np.int64)
    offsets = np.zeros(lengths.shape[0] + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    names = chain.txids(paths[paths >= 0]) if paths.size else pa.array([], pa.string())
    return _join_lists(offsets, names, separator)


def _run_offsets(group: np.ndarray, n_groups: int) -> np.ndarray:
    """List offsets for values sorted by group: group g owns offsets[g]:offsets[g + 1]."""
    offsets = np.zeros(n_groups + 1, np.int32)
    np.cumsum(np.bincount(group, minlength=n_groups), out=offsets[1:])
    return offsets


def _join_lists(offsets: np.ndarray, values: pa.Array, separator: str) -> pa.Array:
    """Join runs of strings: row i is values[offsets[i]:offsets[i+1]] joined by separator."""
    import pyarrow.compute as pc

    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)
    joined: pa.Array = pc.binary_join(lists, separator)
    return joined


def _sum_groups(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum of each group of sorted values (groups start at `starts`)."""
    if starts.shape[0] == 0:
        return np.zeros(0, np.int64)
    summed: np.ndarray = np.add.reduceat(values.astype(np.int64), starts)
    return summed


def _subpoenas(leads: pa.Table) -> pa.Table:
    """Per exchange, the withdrawals (customers) to request, by total paid to the service."""
    import duckdb

    con = duckdb.connect()
    con.register("leads", leads)
    categories = ", ".join(f"'{c}'" for c in sorted(EXCHANGE_CATEGORIES))
    table = con.sql(
        f"""
        WITH rows AS (
            SELECT source_entity AS exchange, funding_txid, source_address,
                   min(block_height) AS block_height, min(block_time) AS block_time,
                   sum(amount_sat)::BIGINT AS amount_sat,
                   round(sum(amount_usd), 2) AS amount_usd,
                   bool_or(amount_usd IS NULL) AS missing,
                   count(DISTINCT deposit_address) AS n_deposits,
                   string_agg(DISTINCT deposit_address, ';' ORDER BY deposit_address)
                       AS deposit_addresses
            FROM leads WHERE source_category IN ({categories})
            GROUP BY source_entity, funding_txid, source_address
        )
        SELECT exchange, (sum(amount_sat) OVER (PARTITION BY exchange))::BIGINT
                   AS exchange_total_sat,
               funding_txid, source_address, block_height, block_time, amount_sat,
               CASE WHEN missing THEN NULL ELSE amount_usd END AS amount_usd,
               CASE WHEN missing THEN 'missing_price' ELSE '' END AS price_note,
               n_deposits, deposit_addresses
        FROM rows
        ORDER BY exchange_total_sat DESC, exchange, amount_sat DESC, funding_txid,
                 source_address
        """
    ).arrow()
    con.close()
    return table if isinstance(table, pa.Table) else table.read_all()


def _cashout_rows(
    result: Any,
    out_cluster: np.ndarray,
    attribution: dict[int, tuple[str | None, str]],
    in_service_cluster: np.ndarray,
) -> dict[str, np.ndarray]:
    """Rows of a forward trace that reached an attributed cluster (or a CoinJoin), with their
    destination: the output the exchange credits. When the walk reached the attributed cluster
    through a tx that spends an output outside the service (an exchange deposit address swept
    into a tagged hot wallet), that output; otherwise the attributed output itself."""
    from chainsleuth.trace import kernels as trace_kernels

    kind = result.kind
    cluster = out_cluster[result.output]
    attributed_ids = np.array(sorted(attribution), np.int64)
    is_cluster = (kind == trace_kernels.KIND_CLUSTER) & np.isin(cluster, attributed_ids)
    rows = np.flatnonzero(is_cluster | (kind == trace_kernels.KIND_COINJOIN))
    destination = result.output[rows].astype(np.int64)
    tx = result.tx[rows].astype(np.int64)
    hops = result.hops[rows].astype(np.int64)
    # one step back: the output the walk came through into the attributed cluster's tx
    parent = result.entry_parent[result.entry[rows]]
    back = is_cluster[rows] & (hops >= 2) & (parent >= 0)
    before = np.where(back, result.entry_output[np.maximum(parent, 0)], -1)
    before_cluster = np.where(before >= 0, out_cluster[np.maximum(before, 0)], -1)
    outside = back & ((before_cluster < 0) | ~in_service_cluster[np.maximum(before_cluster, 0)])
    return {
        "destination": np.where(outside, before, destination),
        "tx": np.where(outside, result.entry_tx[np.maximum(parent, 0)], tx),
        "hops": np.where(outside, hops - 1, hops),
        "traced": result.amount[rows].astype(np.int64),
        "coinjoin": kind[rows] == trace_kernels.KIND_COINJOIN,
        "cluster": cluster[rows],
    }


def _cashouts(
    chain: _Chain,
    parts: list[dict[str, np.ndarray]],
    attribution: dict[int, tuple[str | None, str]],
    mixer: dict[int, str],
) -> pa.Table:
    """One row per destination output, summed over the trace rows of every chunk."""
    rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    if not rows:
        rows = {k: np.zeros(0, np.int64) for k in ("destination", "tx", "hops", "traced")}
        rows["coinjoin"] = np.zeros(0, np.bool_)
        rows["cluster"] = np.zeros(0, np.int64)
    order, starts, _ = _groups(rows["destination"])
    first = order[starts]
    d = rows["destination"][first]
    d_tx = rows["tx"][first]
    traced = _sum_groups(rows["traced"][order], starts)
    hops = rows["hops"][order]
    d_hops = np.minimum.reduceat(hops, starts) if starts.shape[0] else hops[:0]
    d_cluster = rows["cluster"][first]
    n = starts.shape[0]
    entity = np.full(n, "", object)
    category = np.full(n, "", object)
    for i, coinjoin in enumerate(rows["coinjoin"][first].tolist()):
        if coinjoin:
            entity[i], category[i] = mixer.get(int(d_tx[i]), "coinjoin"), "coinjoin"
        else:
            name, cat = attribution[int(d_cluster[i])]
            entity[i], category[i] = name or "", cat
    heights, times, day = chain.when(d_tx)
    value = chain.output_value[d].astype(np.int64)
    usd = chain.usd(value, day)
    table = pa.table(
        {
            "destination_address": chain.addresses_of_outputs(d),
            "destination_entity": entity,
            "destination_category": category,
            "destination_cluster": pa.array(d_cluster, mask=d_cluster < 0),
            "txid": chain.txids(d_tx),
            "block_height": heights,
            "block_time": times,
            "amount_sat": value,
            "traced_sat": traced,
            "amount_usd": pa.array(usd, mask=np.isnan(usd)),
            "price_note": np.where(np.isnan(usd), "missing_price", ""),
            "hops": d_hops,
        },
        schema=_schema(CASHOUT_COLUMNS),
    )
    return table.sort_by(
        [("block_height", "ascending"), ("txid", "ascending"), ("destination_address", "ascending")]
    )


def _in_chunks(trace: Any, seeds: np.ndarray, group: np.ndarray, **options: Any) -> Iterator[Any]:
    """Trace `seeds` a chunk at a time, never splitting a group (seeds sorted by group).

    A chunk holds at most CHUNK_SEEDS seeds; a chunk whose walk hits the trace's `max_entries`
    is split in two and traced again, so no result is cut short by the other seeds of its chunk
    (each seed's own walk is capped by MAX_ENTRIES_PER_SEED). The walks run on one thread per
    core (the numba kernel releases the GIL); memory stays near that many chunks' frontiers
    (CHUNK_ENTRIES × 49 B each) whatever the number of seeds. Results come in any order.
    """
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    bounds = np.flatnonzero(np.diff(group)) + 1  # where a new group starts
    cuts = [0]
    for b in bounds.tolist():
        if b - cuts[-1] >= CHUNK_SEEDS:
            cuts.append(b)
    cuts.append(seeds.shape[0])
    pending = [(cuts[i], cuts[i + 1]) for i in range(len(cuts) - 1) if cuts[i + 1] > cuts[i]]
    pending.reverse()
    workers = max(1, min(os.cpu_count() or 1, TRACE_THREADS))
    running: dict[Future[Any], tuple[int, int]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while pending or running:
            while pending and len(running) < workers:
                lo, hi = pending.pop()
                job = pool.submit(trace, seeds[lo:hi], max_entries=CHUNK_ENTRIES, **options)
                running[job] = (lo, hi)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for job in done:
                lo, hi = running.pop(job)
                result = job.result()
                inside = bounds[(bounds > lo) & (bounds < hi)]
                if result.hit_limit and inside.shape[0]:
                    mid = int(inside[inside.shape[0] // 2])
                    pending.extend([(mid, hi), (lo, mid)])
                    continue
                yield result


#: How each column is written: floats with fixed decimals, so a CSV is a function of its data.
_FORMATS = {"amount_usd": "%.2f", "confidence": "%.4f"}


def _write_csv(path: Path, columns: list[str], table: pa.Table) -> str:
    """Write the table's `columns` as CSV atomically (DuckDB's writer: quotes only where
    needed, nulls and empty strings as empty cells); returns the file's sha256."""
    import duckdb

    select = []
    for name in columns:
        column = f'"{name}"'
        if name in _FORMATS:
            select.append(f"printf('{_FORMATS[name]}', {column}) AS {column}")
        elif pa.types.is_string(table.schema.field(name).type):
            select.append(f"nullif({column}, '') AS {column}")  # "" would be written as ""
        else:
            select.append(column)
    tmp = path.with_name(path.name + ".tmp")
    con = duckdb.connect()
    try:
        con.register("case_rows", table.select(columns))
        target = str(tmp).replace("'", "''")
        con.execute(
            f"COPY (SELECT {', '.join(select)} FROM case_rows) TO '{target}' "
            "(FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"')"
        )
    finally:
        con.close()
    os.replace(tmp, path)
    return _sha256(path)
