"""Requests to rule exchanges in or out: `requests.csv`, for deposits whose best lead is a
wallet two or more tagged exchanges fit alike ("style twins").

When the walk back from a deposit ends at an untagged exchange-like wallet whose habits several
tagged exchanges share, the case names none of them: the lead is an `unidentified_service` row
with `candidate_exchanges` (`trace.services.style_candidates`) and no confidence for any, and
subpoenas.csv leaves the deposit out. What an investigator can still do is ask each candidate
"did your wallet make this withdrawal (funding tx), and to whom?". On the simulated twin worlds
the true funder is in the set for 699 of 702 such missed deposits (docs/accuracy-log.md,
"Style twins without signing habits"), so asking the set reaches it.

`request_table(leads, cut)` lists those questions, one row per (exchange, deposit address):

- a deposit is asked about when no exchange lead of it reaches `cut` (the case's subpoena cut:
  it is not in the subpoenas an investigator acts on) and its largest lead that is not a
  CoinJoin's is an `unidentified_service` row with two or more candidates (a CoinJoin's row
  never tells who funded the deposit's other money, as in `bench.recall_misses`);
- each row names the exchange, the deposit, the amount that reached the deposit from the set's
  wallet, the withdrawal to ask about (`funding_txid`, `source_address`, time), the wallet's
  cluster, the other candidates and the set's size, and `request` = `rule_in_or_out`: it is a
  question to each candidate, never an attribution (no confidence, no exchange named);
- exchanges are ordered by how many deposits they could answer for (one letter to an exchange
  covers all its rows), then by the amount; `ask_order` is the exchange's place among the
  deposit's candidates in that order (1 = ask first when asking one at a time).

With style names off (`investigate`'s `style_names` False: TagPacks that miss exchanges) a
wallet that fits exactly one tagged exchange is named by none, and its leads carry that one
exchange as `candidate_exchanges` (`trace.services.style_candidates`' `min_candidates`): its
deposits get one row each, `set_size` 1 and `request` = `rule_in_or_out_style_only`
(`REQUEST_KIND_STYLE_ONLY`): the wallet's style alone points at the exchange, which can rule the
deposit in or out as cheaply as any. With style names on no set has one exchange, so the file
is as before.

Reads the leads table only (stages talk through files); one DuckDB query, no Python object per
row. Called by `cases.investigate`; docs/design/cases.md "Requests to rule exchanges in or out".
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from chainsleuth.cases.rows import EXCHANGE_CATEGORIES, UNIDENTIFIED_SERVICE

__all__ = [
    "REQUEST_COLUMNS",
    "REQUEST_KIND",
    "REQUEST_KIND_STYLE_ONLY",
    "request_summary",
    "request_table",
]

#: What every row of requests.csv is: a question to the exchange that rules it in or out as the
#: funder, not a lead naming it (the `request` column's value).
REQUEST_KIND = "rule_in_or_out"

#: The `request` value of a row whose set has one exchange (style names off): the same question,
#: asked because the wallet's style fits that exchange alone (no tag, no other evidence).
REQUEST_KIND_STYLE_ONLY = "rule_in_or_out_style_only"

REQUEST_COLUMNS = [
    "exchange",
    "exchange_rank",
    "exchange_deposits",
    "exchange_total_sat",
    "deposit_address",
    "amount_sat",
    "ask_order",
    "set_size",
    "other_candidates",
    "funding_txid",
    "source_address",
    "block_height",
    "block_time",
    "wallet_cluster",
    "request",
]

_SCHEMA = pa.schema(
    [
        (c, pa.int64())
        if c
        in (
            "exchange_rank",
            "exchange_deposits",
            "exchange_total_sat",
            "amount_sat",
            "ask_order",
            "set_size",
            "block_height",
            "wallet_cluster",
        )
        else (c, pa.string())
        for c in REQUEST_COLUMNS
    ]
)


def request_table(leads: pa.Table, cut: float) -> pa.Table:
    """requests.csv's rows from the case's leads (leads.csv's columns), `cut` the confidence at
    which an exchange lead counts as naming the deposit (the subpoena cut). Ordered by exchange
    (most deposits first, then most satoshis, then name), then by amount, largest first."""
    import duckdb

    if leads.num_rows == 0:
        return _SCHEMA.empty_table()
    con = duckdb.connect()
    con.register("leads", leads)  # DuckDB reads only the columns the query names
    categories = ", ".join(f"'{c}'" for c in sorted(EXCHANGE_CATEGORIES))
    table = con.sql(
        f"""
        WITH named AS (
            SELECT DISTINCT deposit_address FROM leads
            WHERE source_category IN ({categories}) AND confidence >= {float(cut)!r}
        ),
        top AS (
            -- the deposit's largest lead that is not a CoinJoin's, in leads.csv's order
            SELECT *, row_number() OVER (
                PARTITION BY deposit_address
                ORDER BY amount_sat DESC, source_category, source_entity, funding_txid,
                         source_address) AS r
            FROM leads WHERE source_category <> 'coinjoin'
        ),
        asked AS (
            SELECT t.* FROM top t
            WHERE r = 1 AND source_category = '{UNIDENTIFIED_SERVICE}'
              AND coalesce(candidate_exchanges, '') <> ''
              AND deposit_address NOT IN (SELECT deposit_address FROM named)
        ),
        pairs AS (
            SELECT a.*, unnest(string_split(candidate_exchanges, ';')) AS exchange,
                   len(string_split(candidate_exchanges, ';')) AS set_size
            FROM asked a
        ),
        per_exchange AS (
            SELECT exchange, count(*) AS n, sum(amount_sat)::BIGINT AS sat FROM pairs
            GROUP BY exchange
        ),
        ranked AS (
            SELECT exchange, n, sat,
                   row_number() OVER (ORDER BY n DESC, sat DESC, exchange) AS exchange_rank
            FROM per_exchange
        ),
        joined AS (
            SELECT p.*, k.exchange_rank, k.n AS exchange_deposits, k.sat AS exchange_total_sat,
                   row_number() OVER (PARTITION BY p.deposit_address
                                      ORDER BY k.exchange_rank) AS ask_order
            FROM pairs p JOIN ranked k USING (exchange)
        )
        SELECT exchange, exchange_rank::BIGINT AS exchange_rank,
               exchange_deposits::BIGINT AS exchange_deposits, exchange_total_sat,
               deposit_address, amount_sat::BIGINT AS amount_sat,
               ask_order::BIGINT AS ask_order, set_size::BIGINT AS set_size,
               array_to_string(list_filter(string_split(candidate_exchanges, ';'),
                                           lambda c: c <> exchange), ';') AS other_candidates,
               funding_txid, source_address, block_height::BIGINT AS block_height, block_time,
               source_cluster::BIGINT AS wallet_cluster,
               CASE WHEN set_size = 1 THEN '{REQUEST_KIND_STYLE_ONLY}' ELSE '{REQUEST_KIND}'
               END AS request
        FROM joined
        ORDER BY exchange_rank, amount_sat DESC, deposit_address
        """
    ).arrow()
    con.close()
    table = table if isinstance(table, pa.Table) else table.read_all()
    return table.cast(_SCHEMA)


def request_summary(requests: pa.Table) -> dict[str, Any]:
    """case.json's `candidate_requests`: the file, what its rows are, and its counts: rows,
    deposit addresses asked about, their satoshis (each deposit's amount once), requests per
    deposit, and per exchange (in the file's order) the deposits it could answer for."""
    import pyarrow.compute as pc

    first = requests.filter(pc.equal(requests.column("ask_order"), 1))
    per = (
        requests.group_by(["exchange_rank", "exchange"])
        .aggregate([("exchange_deposits", "max"), ("exchange_total_sat", "max")])
        .sort_by("exchange_rank")
    )
    exchanges = [
        {"exchange": name, "deposits": int(n), "sat": int(sat)}
        for name, n, sat in zip(
            per.column("exchange").to_pylist(),
            per.column("exchange_deposits_max").to_pylist(),
            per.column("exchange_total_sat_max").to_pylist(),
            strict=True,
        )
    ]
    n_deposits = first.num_rows  # one row per deposit has ask_order 1
    single = int(pc.sum(pc.equal(first.column("set_size"), 1)).as_py() or 0)
    out: dict[str, Any] = {
        "file": "requests.csv",
        "what": "one row per (exchange, deposit address) whose best lead is a wallet the "
        "listed exchanges fit alike: a request to rule the exchange in or out as the funder, "
        "not an attribution",
        "rows": requests.num_rows,
        "deposits": n_deposits,
        "sat": int(pc.sum(first.column("amount_sat")).as_py() or 0),
        "requests_per_deposit": round(requests.num_rows / n_deposits, 4) if n_deposits else 0.0,
        "exchanges": exchanges,
    }
    if single:
        # only with style names off (a set of one); absent otherwise, so case.json is as before
        out["style_only_deposits"] = single
        out["style_only_what"] = (
            f"deposits asked of one exchange (request {REQUEST_KIND_STYLE_ONLY}): style names "
            "are off and the wallet's style fits that tagged exchange alone"
        )
    return out
