"""Read a store: SQL views over its parquet files, and lookups over its memory-mapped arrays.

`Store` is what notebook users, the CLI and later stages open. It never writes. The SQL views
(`blocks`, `txs`, `outputs`, `inputs`, `addresses`) are a public interface: their documented
columns keep their names. Only files listed in the manifest are read, so a reader never sees a
half-finished ingest.

Example::

    store = Store.open(Path("chainsleuth-data"))
    store.sql("SELECT count(*) FROM txs").to_pylist()
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from chainsleuth.core.address import AddressError, decode_address, encode_address
from chainsleuth.core.errors import AddressNotSeenError, ChainsleuthError, StoreError
from chainsleuth.core.network import network_by_name
from chainsleuth.core.pages import prefetch_rows
from chainsleuth.core.script_types import SCRIPT_TYPE_NAMES, ScriptType
from chainsleuth.parse.address_kernels import encode_key_rows
from chainsleuth.store import computed as computed_columns
from chainsleuth.store import layout, points
from chainsleuth.store.columns import hex_column
from chainsleuth.store.graph import ChainGraph
from chainsleuth.store.layout import ARRAYS, NONE32
from chainsleuth.store.lookup import LookupIndex, address_id_of_key

#: What a default store leaves out of its parquet files and the views compute from the arrays
#: (store/computed.py): SQL over one raw table's columns, per table and column. A file value,
#: where there is one (`--keep-scripts`, a non-standard script), is taken as it is.
COMPUTED = {
    "txs": {
        "txid": "coalesce(txid, cs_txid(tx_id))",
        "fee": "coalesce(fee, cs_tx_fee(tx_id))",
        "input_value": "coalesce(input_value, cs_tx_input_value(tx_id))",
        "output_value": "coalesce(output_value, cs_tx_output_value(tx_id))",
        # BIP141: weight = 3 x stripped size + total size; vsize = weight / 4, rounded up
        "vsize": "coalesce(vsize, (3 * base_size + size + 3) // 4)",
        "weight": "coalesce(weight, 3 * base_size + size)",
    },
    "outputs": {
        "txid": "coalesce(txid, cs_txid(tx_id))",
        "value": "coalesce(value, cs_output_value(output_id))",
        "script_pubkey": "coalesce(script_pubkey, cs_script(address_id))",
    },
    "inputs": {
        "txid": "coalesce(txid, cs_txid(tx_id))",
        "prev_txid": "coalesce(prev_txid, cs_output_txid(spent_output_id))",
        "prev_vout": "coalesce(prev_vout, cs_output_vout(spent_output_id))",
        "value": "coalesce(value, cs_output_value(spent_output_id))",
    },
}


def computed(table: str, column: str, alias: str = "") -> str:
    """`table.column` as the views read it (`alias.`-prefixed raw columns), named `column`."""
    expr = COMPUTED[table][column]
    if alias:
        expr = re.sub(r"\b([A-Za-z_]\w*)\b(?!\()", lambda m: f"{alias}.{m.group(1)}", expr)
    return f"{expr} AS {column}"


# The views. Columns named in the public contract come first; the rest are extras.
VIEWS = {
    "blocks": """
        SELECT height, hash, prev_hash, time, tx_count, size, weight, stripped_size, version,
               merkle_root, bits, nonce, fees, coinbase_value, bip34_height, first_tx_id
        FROM blocks_raw""",
    "txs": """
        SELECT {txs_txid}, block_height, block_time, n_inputs, n_outputs, {txs_fee}, size,
               {txs_vsize}, {txs_weight}, is_coinbase, is_segwit, signals_rbf, version, locktime,
               {txs_input_value}, {txs_output_value}, base_size, index_in_block, tx_id,
               first_input_id, first_output_id
        FROM txs_raw""",
    "outputs": """
        SELECT {o_txid}, o.vout, {o_value}, o.script_type, a.address,
               coalesce(s.txid, cs_txid(s.tx_id)) AS spent_by_txid,
               s.vin AS spent_by_vin, s.block_height AS spent_height, o.block_height,
               o.address_type, o.address_derived, o.multisig_m, o.multisig_n, {o_script_pubkey},
               o.output_id, o.tx_id, o.address_id
        FROM outputs_raw o
        LEFT JOIN address_list_raw a ON a.address_id = o.address_id
        LEFT JOIN (SELECT spent_output_id, txid, tx_id, vin, block_height FROM inputs_raw
                   WHERE spent_output_id IS NOT NULL) s
          ON s.spent_output_id = o.output_id""",
    # script_sig and witness are NULL unless the store was ingested with --keep-scripts
    # (`tx TXID --raw` reads them from the node; docs/design/store.md)
    "inputs": """
        SELECT {i_txid}, i.vin, {i_prev_txid}, {i_prev_vout}, {i_value}, a.address, i.block_height,
               i.sequence, i.is_coinbase, i.script_sig, i.witness, i.spent_output_id,
               i.input_id, i.tx_id, i.address_id
        FROM inputs_raw i
        LEFT JOIN address_list_raw a ON a.address_id = i.address_id""",
    "addresses": """
        SELECT a.address, a.address_type AS script_type, t.n_txs, t.received, t.sent,
               t.received - t.sent AS balance, t.first_seen_height, t.last_seen_height,
               a.address_id
        FROM (
            SELECT address_id, count(DISTINCT tx_id) AS n_txs,
                   sum(received)::BIGINT AS received, sum(sent)::BIGINT AS sent,
                   min(block_height) AS first_seen_height, max(block_height) AS last_seen_height
            FROM (
                SELECT address_id, tx_id, {outputs_value}, 0 AS sent, block_height
                FROM outputs_raw WHERE address_id IS NOT NULL
                UNION ALL
                SELECT address_id, tx_id, 0, {inputs_value}, block_height
                FROM inputs_raw WHERE address_id IS NOT NULL
            ) GROUP BY address_id
        ) t JOIN address_list_raw a USING (address_id)""",
}
VIEWS = {
    name: query.format(
        txs_txid=computed("txs", "txid"),
        txs_fee=computed("txs", "fee"),
        txs_vsize=computed("txs", "vsize"),
        txs_weight=computed("txs", "weight"),
        txs_input_value=computed("txs", "input_value"),
        txs_output_value=computed("txs", "output_value"),
        o_txid=computed("outputs", "txid", "o"),
        o_value=computed("outputs", "value", "o"),
        outputs_value=COMPUTED["outputs"]["value"] + " AS received",
        o_script_pubkey=computed("outputs", "script_pubkey", "o"),
        i_txid=computed("inputs", "txid", "i"),
        i_prev_txid=computed("inputs", "prev_txid", "i"),
        i_prev_vout=computed("inputs", "prev_vout", "i"),
        i_value=computed("inputs", "value", "i"),
        inputs_value=computed("inputs", "value"),
    )
    for name, query in VIEWS.items()
}


#: The views (and their raw tables) that need an ingested chain.
CHAIN_VIEWS = frozenset(VIEWS) | frozenset(f"{t}_raw" for t in layout.TABLES)

#: The views each later stage publishes, so a query on one that is not there can say which
#: command fills it.
STAGE_VIEWS = {
    "tags": frozenset(
        {"tags", "tags_raw", "actors", "actors_raw", "cluster_tags", "tagpacks", "tag_address_ids"}
    ),
    "clusters": frozenset(
        {
            "clusters",
            "cluster_coinjoins",
            "cluster_quarantine",
            "cluster_merges",
            "cluster_merges_raw",
        }
    ),
}

#: What fills each part of a data directory.
FILL_COMMAND = {
    "chain": "chainsleuth --data {dir} ingest --blocks-dir ~/.bitcoin/blocks (or --rpc URL)",
    "tags": "chainsleuth --data {dir} tags import PATH...",
    "clusters": "chainsleuth --data {dir} cluster",
    "prices": "chainsleuth --data {dir} prices import FILE.csv",
}

_MISSING_TABLE = re.compile(r"Table with name (\w+) does not exist")
_EXPLAIN = re.compile(r"^\s*explain\s+(analy[sz]e\s+)?", re.IGNORECASE)


def _one_line(message: str) -> str:
    """DuckDB's message on one line (its hints and the caret under the query included)."""
    return " ".join(x.strip() for x in message.splitlines() if x.strip().strip("^"))


def data_dir_contents(data_dir: Path) -> dict[str, bool]:
    """Which parts a data directory holds: the chain (ingest), tags, clusters, imported prices."""
    d = Path(data_dir)
    return {
        "chain": (d / "manifest.json").exists(),
        "tags": (d / "tags" / "manifest.json").exists(),
        "clusters": (d / "clusters" / "manifest.json").exists(),
        "prices": (d / "prices" / "btc_usd_daily.csv").exists(),
    }


def _held(contents: dict[str, bool]) -> str:
    parts = [name for name, there in contents.items() if there]
    return ", ".join(parts) if parts else "nothing"


def no_store_error(data_dir: Path) -> StoreError:
    return StoreError(
        f"no chainsleuth store at {data_dir} (nothing ingested or imported there yet: run "
        f"`{FILL_COMMAND['chain'].format(dir=data_dir)}` first, or pass --data / set "
        "CHAINSLEUTH_DATA)"
    )


def no_chain_error(data_dir: Path, needed_by: str | None = None) -> StoreError:
    """One line: the chain has not been ingested into `data_dir`, and the command to run."""
    need = f"; {needed_by} needs it" if needed_by else ""
    return StoreError(
        f"the chain has not been ingested into {data_dir} (it holds "
        f"{_held(data_dir_contents(data_dir))}){need}: run "
        f"`{FILL_COMMAND['chain'].format(dir=data_dir)}` first"
    )


@dataclass(frozen=True)
class AddressSummary:
    address: str
    script_type: str
    address_id: int
    received: int
    sent: int
    balance: int
    n_txs: int
    n_outputs: int
    n_unspent: int
    first_seen_height: int
    last_seen_height: int


class Store:
    """A read-only view of a chainsleuth store at one manifest generation."""

    def __init__(self, data_dir: Path, manifest: dict[str, Any], has_chain: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.manifest = manifest
        self.counts: dict[str, int] = manifest["counts"]
        self.network = network_by_name(manifest["network"])
        self.has_chain = has_chain
        self._con: duckdb.DuckDBPyConnection | None = None
        self._locked = False  # user_sql has turned file access off on the connection
        self._lookup: LookupIndex | None = None
        self._bare: duckdb.DuckDBPyConnection | None = None  # for at_height: no views

    @classmethod
    def open(cls, data_dir: Path) -> Store:
        """The store with its chain; a StoreError saying what to run when none was ingested."""
        manifest = layout.read_manifest(Path(data_dir))
        if manifest is None:
            if any(data_dir_contents(data_dir).values()):
                raise no_chain_error(Path(data_dir))
            raise no_store_error(Path(data_dir))
        return cls(Path(data_dir), manifest)

    @classmethod
    def open_any(cls, data_dir: Path) -> Store:
        """Whatever the directory holds: the chain, tags, clusters, in any combination.

        Without a chain (`has_chain` False) the chain views are not defined, and `sql` on one of
        them says the chain has not been ingested and which command ingests it.
        """
        manifest = layout.read_manifest(Path(data_dir))
        if manifest is not None:
            return cls(Path(data_dir), manifest)
        if not any(data_dir_contents(data_dir).values()):
            raise no_store_error(Path(data_dir))
        return cls(Path(data_dir), layout.empty_manifest("main"), has_chain=False)

    def close(self) -> None:
        """Close the DuckDB connections this Store opened (a long-running server closes them
        before it stops, so no DuckDB state outlives it in the process); reopened on use."""
        for con in (self._con, self._bare):
            if con is not None:
                con.close()
        self._con = self._bare = None
        self._locked = False

    @property
    def tip(self) -> tuple[int, str] | None:
        tip = self.manifest["tip"]
        return None if tip is None else (int(tip["height"]), str(tip["hash"]))

    # ------------------------------------------------------------------------- SQL
    def connection(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with the store's views defined (read-only data)."""
        if self._con is None:
            con = duckdb.connect(":memory:")
            listed = layout.read_files(self.data_dir, self.manifest) if self.has_chain else {}
            for table in layout.TABLES if self.has_chain else ():
                files = [str(self.data_dir / f["path"]) for f in listed[table]]
                if not files:  # nothing committed yet: empty views with the documented columns
                    con.register(f"{table}_raw", layout.SCHEMAS[table].empty_table())
                    continue
                listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                con.execute(
                    f"CREATE VIEW {table}_raw AS SELECT * FROM read_parquet([{listing}], "
                    "hive_partitioning = false, union_by_name = true)"
                )
            if self.has_chain:
                computed_columns.register(con, self.data_dir, self.counts)
            for name, query in VIEWS.items() if self.has_chain else ():
                con.execute(f"CREATE VIEW {name} AS {query}")
            for stage_manifest in sorted(self.data_dir.glob("*/manifest.json")):
                self._add_stage_views(con, stage_manifest)
            self._con = con
        return self._con

    def _add_stage_views(self, con: duckdb.DuckDBPyConnection, manifest_path: Path) -> None:
        """Views published by later stages (clusters, tags, ...) through their own manifests.

        A stage directory `DATA/<stage>/manifest.json` may hold
        `{"views": {"name": {"files": ["relative/to/stage.parquet", ...]}
                    | {"sql": "SELECT ..."}}}`; file views come first, then SQL views in
        the order listed, so a SQL view can join the core views and the stage's tables.
        """
        stage = json.loads(manifest_path.read_text())
        views = stage.get("views", {})
        for name, spec in views.items():
            if "files" in spec:
                files = [str(manifest_path.parent / f) for f in spec["files"]]
                if not files:
                    continue
                listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                con.execute(
                    f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{listing}], "
                    "hive_partitioning = false, union_by_name = true)"
                )
        for name, spec in views.items():
            if "sql" in spec:
                con.execute(f"CREATE OR REPLACE VIEW {name} AS {spec['sql']}")

    def sql(self, query: str, params: list[Any] | None = None) -> pa.Table:
        """Run a query over the views and return an Arrow table.

        A query on a view whose part of the data directory is missing (the chain, tags,
        clusters) is a StoreError naming the command that fills it.
        """
        try:
            return self.connection().sql(query, params=params).to_arrow_table()
        except duckdb.CatalogException as e:
            missing = self._missing_part(str(e))
            if missing is None:
                raise
            raise missing from None

    def user_sql(
        self, query: str, max_rows: int | None = None, timeout_s: float | None = None
    ) -> pa.Table:
        """Run an analyst's query, read-only: SELECT (and EXPLAIN of one) over the views.

        Two locks, because either alone leaves a hole: every statement must be a query
        (`COPY`, `ATTACH`, `INSTALL`, `SET`, `CREATE`, ... are refused before anything runs),
        and DuckDB's `enable_external_access` is turned off with only the data directory
        allowed (the views read its parquet files), so a query cannot read other files
        (`read_csv('/etc/passwd')`). Configuration is then locked. Exports: `sql --format csv`.

        Budgets (the API's SQL): `max_rows` keeps the first rows only (the result then has
        `max_rows + 1` rows at most, so a caller can tell it was cut); `timeout_s` interrupts
        the query (a StoreError) when it runs longer.
        """
        try:
            statements = duckdb.extract_statements(query)
        except duckdb.Error as e:
            raise StoreError(f"SQL error: {_one_line(str(e))}") from None
        for statement in statements:
            kind = statement.type
            if kind == duckdb.StatementType.EXPLAIN:
                inner = _EXPLAIN.sub("", statement.query, count=1)
                kinds = [x.type for x in duckdb.extract_statements(inner)]
                kind = kinds[0] if len(kinds) == 1 else kind
            if kind != duckdb.StatementType.SELECT:
                name = statement.query.split(None, 1)[0].upper() if statement.query.split() else ""
                raise StoreError(
                    f"sql is read-only: {name or kind.name} statements are not run (only "
                    "SELECT queries over the views; `--format csv` exports a result)"
                )
        con = self.connection()
        if not self._locked:
            allowed = sorted({str(self.data_dir.absolute()), str(self.data_dir.resolve())})
            listing = ", ".join("'" + (d + "/").replace("'", "''") + "'" for d in allowed)
            con.execute(f"SET allowed_directories = [{listing}]")
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
            self._locked = True
        timer = None
        if timeout_s is not None:
            import threading

            timer = threading.Timer(timeout_s, con.interrupt)
            timer.start()
        try:
            if max_rows is None:
                return self.sql(query)
            relation = con.sql(query)
            batch_rows = min(max_rows + 1, 100_000)
            if hasattr(relation, "to_arrow_reader"):  # DuckDB >= 1.4 names it so
                reader = relation.to_arrow_reader(batch_rows)
            else:
                reader = relation.fetch_record_batch(batch_rows)
            batches, rows = [], 0
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows > max_rows:
                    break
            table = pa.Table.from_batches(batches, schema=reader.schema)
            return table.slice(0, max_rows + 1)
        except duckdb.InterruptException:
            raise StoreError(f"SQL query stopped at its time budget of {timeout_s} s") from None
        except duckdb.CatalogException as e:
            missing = self._missing_part(str(e))
            if missing is None:
                raise
            raise missing from None
        except duckdb.PermissionException as e:
            raise StoreError(
                f"sql is read-only and reads only the data directory's views: {_one_line(str(e))}"
            ) from None
        finally:
            if timer is not None:
                timer.cancel()

    def _missing_part(self, message: str) -> StoreError | None:
        found = _MISSING_TABLE.search(message)
        if found is None:
            return None
        name = found.group(1)
        if name in CHAIN_VIEWS and not self.has_chain:
            return no_chain_error(self.data_dir, f"`{name}`")
        for part, names in STAGE_VIEWS.items():
            if name in names and not data_dir_contents(self.data_dir)[part]:
                return StoreError(
                    f"`{name}` is not in {self.data_dir}: no {part} there yet (it holds "
                    f"{_held(data_dir_contents(self.data_dir))}); run "
                    f"`{FILL_COMMAND[part].format(dir=self.data_dir)}` first"
                )
        return None

    # ------------------------------------------------------------------------ arrays
    def array(self, name: str, random: bool = False) -> np.ndarray:
        """A committed graph array, memory-mapped read-only (see layout.ARRAYS for names).
        The stages read the typed `graph` / `random_graph` instead; this one is for a notebook
        that wants one array by name.

        `random`: only a few scattered rows will be read (a lookup): no read-around.
        """
        return layout.open_array(
            self.data_dir, name, self.counts[ARRAYS[name].count], random=random
        )

    @cached_property
    def graph(self) -> ChainGraph:
        """Every graph array, memory-mapped, for ranges and whole-chain passes (graph.py)."""
        return ChainGraph.open(self.data_dir, self.counts)

    @cached_property
    def random_graph(self) -> ChainGraph:
        """The same arrays mapped for a few scattered reads (lookups): no read-around."""
        return ChainGraph.open(self.data_dir, self.counts, random=True)

    def txids(self, tx_ids: Any) -> pa.Array:
        """Display txids (hex, reversed byte order) of tx ids, as Arrow strings; null for a
        negative id ("no tx"). Vectorized: no Python object per row."""
        ids = np.asarray(tx_ids, np.int64).reshape(-1)
        known = ids >= 0
        rows = np.zeros((ids.shape[0], 32), np.uint8)
        rows[known] = self.graph.tx_txid[ids[known]]
        return hex_column(rows, valid=None if known.all() else known)

    def addresses(self, address_ids: Any) -> pa.Array:
        """Address strings of address ids, as Arrow strings; null for `NONE32` or a negative
        id (an output with no address). Encoded from the key rows (no table scan)."""
        ids = np.asarray(address_ids, np.int64).reshape(-1)
        known = (ids >= 0) & (ids != int(NONE32))
        if known.all():
            return encode_key_rows(self.graph.address_key[ids], self.network.code)
        encoded = encode_key_rows(self.graph.address_key[ids[known]], self.network.code)
        positions = np.full(ids.shape[0], -1, np.int64)
        positions[known] = np.arange(len(encoded), dtype=np.int64)
        return encoded.take(pa.array(positions, mask=~known))

    def address_id(self, address: str, *, what: str = "not a valid address") -> int:
        """The dense id of `address`; a one-line error when it is not an address (a
        `ChainsleuthError` whose message starts with `what`) or the store has never seen it
        (`AddressNotSeenError`, the one such error)."""
        try:
            found = self.address_id_of(address)
        except AddressError as e:
            raise ChainsleuthError(f"{what}: {address!r} ({e})") from None
        if found is None:
            raise AddressNotSeenError(address)
        return int(found)

    def spent_by_tx(self) -> np.ndarray:
        """Spending tx id per output (-1 unspent), ignoring marks of uncommitted writes.
        A copy of the whole array (8 B per output): for some outputs, use `spent_by`."""
        raw = self.graph.output_spent_by_tx.astype(np.int64)
        raw[(raw == int(NONE32)) | (raw >= self.counts["txs"])] = -1
        return raw

    def tx_vsizes(self, tx_ids: np.ndarray) -> np.ndarray:
        """The vsize (BIP141, as the `txs` view: weight / 4 rounded up) of each of `tx_ids`
        (sorted, distinct), int64; read from txs_raw's sizes at those rows, one query per
        2^16 ids (a list parameter of a few hundred KB, not one of the whole set)."""
        ids = np.asarray(tx_ids, np.int64)
        out = np.zeros(ids.shape[0], np.int64)
        for a in range(0, ids.shape[0], 1 << 16):
            part = ids[a : a + (1 << 16)]
            got = self.sql(
                "SELECT tx_id, (3 * base_size + size + 3) // 4 AS vsize FROM txs_raw "
                "WHERE tx_id IN (SELECT unnest(?::BIGINT[]))",
                [part.tolist()],
            )
            at = np.searchsorted(ids, got.column("tx_id").to_numpy())
            out[at] = got.column("vsize").to_numpy()
        return out

    def rows(self, name: str, ids: Any) -> np.ndarray:
        """The rows `ids` of a graph array (a copy), read at those rows alone: the random map's
        pages that hold them are asked for together (`MADV_WILLNEED` per run of adjacent
        pages, core/pages.py), so a cold read costs their pages, not a read-around window
        (8 MB on the bench VM) each."""
        array = getattr(self.random_graph, name)
        at = np.asarray(ids, np.int64)
        prefetch_rows(array, at)
        return np.asarray(array[at])

    def spent_by(self, outputs: np.ndarray) -> np.ndarray:
        """Spending tx id of each of `outputs` (output ids; -1 unspent), read at those alone."""
        raw = self.rows("output_spent_by_tx", outputs)
        raw = raw.astype(np.int64)
        raw[(raw == int(NONE32)) | (raw >= self.counts["txs"])] = -1
        return raw

    def lookup_index(self) -> LookupIndex:
        """The address -> outputs and txid -> tx index (lookup.py), opened once per Store."""
        if self._lookup is None:
            self._lookup = LookupIndex.open(self.data_dir, self.manifest)
        return self._lookup

    def tx_id_of(self, txid_hex: str) -> int | None:
        """Dense id of a txid (display hex), the latest for a BIP30 duplicate: O(1) reads."""
        return self.lookup_index().tx_id_of(bytes.fromhex(txid_hex)[::-1])

    def address_id_of(self, address: str) -> int | None:
        """Dense id of an address (exact key comparison; a few reads through the saved index)."""
        kind, payload, networks = decode_address(address)  # AddressError if malformed
        if self.network.name not in networks:
            raise StoreError(f"{address} is not a {self.network.name} address")
        key = np.zeros(ARRAYS["address_key"].width, np.uint8)
        key[0] = int(kind)
        key[1] = len(payload)
        key[2 : 2 + len(payload)] = np.frombuffer(payload, np.uint8)
        return address_id_of_key(self.data_dir, self.manifest, key)

    def address_of(self, address_id: int) -> str:
        """The address string of an address id (encoded from its key row: no table scan)."""
        row = np.asarray(self.random_graph.address_key[int(address_id)])
        kind, length = int(row[0]), int(row[1])
        return encode_address(ScriptType(kind), bytes(row[2 : 2 + length]), self.network)

    def _point_connection(self) -> duckdb.DuckDBPyConnection:
        """A connection without the views, its computed-column functions set up for a few rows
        at a time (arrays mapped for scattered reads, outputs' txs through the lookup index's
        fenced search: computed._Arrays)."""
        if self._bare is None:
            self._bare = duckdb.connect(":memory:")
            computed_columns.register(
                self._bare, self.data_dir, self.counts, self.lookup_index().txs_of_outputs
            )
        return self._bare

    def at_height(
        self, table: str, height: int, columns: str, where: str, params: list[Any]
    ) -> pa.Table:
        """`SELECT columns ... WHERE where` over only the parquet files of `table` that hold
        `height` (raw columns, no views).

        Files are per (table, height range, ingest batch), so this reads a few files' footers
        and row groups instead of the whole table's, on a connection without the views (whose
        definition lists every file of the store); the files come from a binary search of the
        file log, not from reading it whole (layout.files_at_height). `point_rows` reads less
        where the filter is one key value.
        """
        files = [
            str(self.data_dir / f["path"])
            for f in layout.files_at_height(self.data_dir, self.manifest, table, height)
        ]
        if not files:
            first = layout.first_file(self.data_dir, self.manifest, table)
            if first is None:
                return layout.SCHEMAS[table].empty_table().select([])
            files = [str(self.data_dir / first["path"])]
            where = "false"
        listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        query = (
            f"SELECT {columns} FROM read_parquet([{listing}], hive_partitioning = false, "
            f"union_by_name = true) WHERE {where}"
        )
        con = self._point_connection()
        return con.sql(query, params=params if where != "false" else None).to_arrow_table()

    def point_rows(
        self, table: str, height: int, key: str, value: int, columns: str, order_by: str = ""
    ) -> pa.Table:
        """`SELECT columns ... WHERE key = value [ORDER BY order_by]` over the raw rows of
        `table` (no views), for a key that is sorted within the files (`tx_id`, ids): what
        `at_height` answers, reading only the row groups that can hold the value, of only the
        files that hold `height`, with the kernel's read-ahead off (store/points.py). The
        columns are computed by the same SQL over those rows, so the result is the same.
        """
        schema = layout.SCHEMAS[table]
        words = set(re.findall(r"\b[A-Za-z_]\w*\b", f"{columns} {order_by}"))
        needed = [n for n in schema.names if n in words or n == key]  # the columns the SQL names
        found = [
            points.read_key_rows(self.data_dir / f["path"], key, int(value), needed)
            for f in layout.files_at_height(self.data_dir, self.manifest, table, height)
        ]
        rows = points.concat(found) if found else schema.empty_table().select(needed)
        con = self._point_connection()
        name = "_point_rows"
        con.register(name, rows)
        try:
            order = f" ORDER BY {order_by}" if order_by else ""
            return con.sql(f"SELECT {columns} FROM {name}{order}").to_arrow_table()
        finally:
            con.unregister(name)

    def outputs_of_address(self, address_id: int) -> np.ndarray:
        """Output ids paying `address_id`, ascending: O(the answer) through the lookup index."""
        return self.lookup_index().outputs_of_address(int(address_id))

    def address_summary(self, address: str) -> AddressSummary | None:
        """Totals for one address, from the arrays: O(its outputs) through the lookup index."""
        address_id = self.address_id_of(address)
        if address_id is None:
            return None
        outs = self.outputs_of_address(address_id)
        values = np.asarray(self.random_graph.output_value[outs], np.int64)
        spent_by = self.random_graph.output_spent_by_tx[outs].astype(np.int64)
        spent_by[(spent_by == int(NONE32)) | (spent_by >= self.counts["txs"])] = -1
        creating = self.lookup_index().txs_of_outputs(outs)  # 2-3 pages each (a fence)
        txs = np.union1d(creating, spent_by[spent_by >= 0])
        heights = np.asarray(self.random_graph.tx_height[txs])
        kind = int(self.random_graph.address_key[address_id, 0])
        received = int(values.sum())
        sent = int(values[spent_by >= 0].sum())
        return AddressSummary(
            address=address,
            script_type=SCRIPT_TYPE_NAMES[kind],
            address_id=address_id,
            received=received,
            sent=sent,
            balance=received - sent,
            n_txs=int(txs.shape[0]),
            n_outputs=int(outs.shape[0]),
            n_unspent=int((spent_by < 0).sum()),
            first_seen_height=int(heights.min()),
            last_seen_height=int(heights.max()),
        )
