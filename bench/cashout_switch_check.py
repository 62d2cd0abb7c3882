"""Chain-wide: how many one-input, two-output spends (rule 6's shape in `cases.cashouts`) each
reading of a script-type switch marks, among people's coins and among exchanges' forwards, by
the world's truth (docs/investigations.md "Cash-outs: forwards into other script types").

Readings: `lead` (rows.forward_signs' switched_type, the leads' cap), `v1` (two outputs of two
other types, no native change beside a native payee), `v2` (v1 from a P2PKH or P2SH coin only:
rule 6a as shipped, `cases.cashouts._switched_type`, also printed as `shipped`), `v3` (v2 with no
P2WPKH output), `6b` (rule 6b as shipped, `cases.cashouts._exchange_habits_fit`: from a P2PKH or
P2SH coin, neither output of its type, a tagged exchange's deposit type, hot type and batch
fingerprint fit, locktime 0 and nSequence final; the exchanges' habits read from the cached
case's `lookalike_exchanges`, beside WORLD_DIR), `6b P2PKH/P2SH payees` (6b from those
payees only) and `6b no pair` (6b without the exchange-pair condition: the fingerprint
alone). People's spends are counted twice: all, and of coins no flagged CoinJoin made (a
case's payee is paid by the service; a CoinJoin's output is rule 5's). Bench code: it reads the truth, the package never does.

    python -m bench.cashout_switch_check WORLD_DIR STORE_DIR [WORLD_DIR STORE_DIR ...]
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PRE = (2, 3)  # P2PKH, P2SH (core.script_types.ScriptType codes)
NATIVE = (4, 5)  # P2WPKH, P2WSH
LINEAGE = (2, 3, 4, 5)


def variants(d: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Each reading's marks, per spend (payee type `d`, output types `a`, `b`)."""
    known = np.isin(d, LINEAGE) & np.isin(a, LINEAGE) & np.isin(b, LINEAGE)
    base = known & (a != d) & (b != d) & (a != b)
    native = ((a == 4) & np.isin(b, NATIVE)) | ((b == 4) & np.isin(a, NATIVE))
    v1 = base & ~(np.isin(d, PRE) & native)
    v2 = v1 & np.isin(d, PRE)
    v3 = v2 & (a != 4) & (b != 4)
    alike_native = (a == b) & np.isin(a, (4, 5, 6)) & np.isin(d, PRE)
    lead = (a != d) & (b != d) & ~alike_native
    return {"lead": lead, "v1": v1, "v2": v2, "v3": v3}


def _column(path: Path, key: str, value: str) -> dict[str, str]:
    with open(path, newline="") as f:
        return {r[key]: r[value] for r in csv.DictReader(f)}


@dataclass(frozen=True)
class Spends:
    """Chain-wide, every tx of rule 6's shape (one input, two outputs with addresses): the tx,
    the coin it spends, and by the world's truth whether the coin is a person's (not an
    exchange's, a pool's, the service's, a mixer's or a coordinator's) and whether the tx is an
    exchange's forward. `first_out` and `out_type` are the store's per-tx first output and
    per-output script type."""

    tx: np.ndarray
    coin: np.ndarray
    people: np.ndarray
    forward: np.ndarray
    first_out: np.ndarray
    out_type: np.ndarray


def one_in_two_spends(world: Path, store: Any) -> Spends:
    """`Spends` of an open store and its world's truth (also tests/cases/test_cashouts.py)."""
    from chainsleuth.cases.cashouts import _one_in_two_payees
    from chainsleuth.cases.rows import ChainLookups
    from chainsleuth.store.layout import NONE32

    g = store.graph
    first_in = np.asarray(g.tx_first_input, np.int64)
    first_out = np.asarray(g.tx_first_output, np.int64)
    spent_output = np.asarray(g.input_spent_output, np.int64)
    out_addr = g.output_address.astype(np.int64)
    out_addr[out_addr == int(NONE32)] = -1
    ends_in = np.append(first_in[1:], spent_output.shape[0])
    ends_out = np.append(first_out[1:], g.output_value.shape[0])
    every = np.arange(first_in.shape[0], dtype=np.int64)
    tx = np.flatnonzero(_one_in_two_payees(every, first_in, ends_in, first_out, ends_out, out_addr))
    coin = spent_output[first_in[tx]]
    owner = _column(world / "truth" / "addresses.csv", "address", "wallet_kind")
    tx_kind = _column(world / "truth" / "txs.csv", "txid", "kind")
    addresses = ChainLookups(store, {}).addresses_of_outputs(coin).to_pylist()
    kinds = np.array([owner.get(str(a), "") for a in addresses])
    tk = np.array([tx_kind.get(str(x)) for x in store.txids(tx).to_pylist()])
    people = ~np.isin(kinds, ["exchange", "pool", "service", "mixer", "coordinator", ""])
    ot = np.asarray(g.output_script_type).astype(np.int64)
    return Spends(tx, coin, people, tk == "exchange_forward", first_out, ot)


def check(world: Path, data: Path) -> None:
    from bench.cashout_forward_signs import _exchange_habits
    from chainsleuth.cases.cashouts import _exchange_habits_fit, _switched_type
    from chainsleuth.cluster.learned import read_fingerprints
    from chainsleuth.store.store import Store

    store = Store.open(data)
    sp = one_in_two_spends(world, store)
    tx, coin, people, forward = sp.tx, sp.coin, sp.people, sp.forward
    first_out, ot = sp.first_out, sp.out_type
    d, a, b = ot[coin], ot[first_out[tx]], ot[first_out[tx] + 1]
    marks = variants(d, a, b)
    marks["shipped"] = _switched_type(coin, tx, first_out, ot)
    case = json.loads((world.parent / "case" / "case.json").read_text())
    habits = _exchange_habits(case.get("lookalike_exchanges") or {})
    three = np.array(
        [[h["deposit_type"], h["hot_type"], h["fingerprint"]] for h in habits], np.int64
    ).reshape(-1, 3)
    three = three[(three >= 0).all(axis=1)]
    fp = read_fingerprints(store, 0, int(store.graph.n_txs))
    marks["6b"] = _exchange_habits_fit(coin, tx, first_out, ot, fp, three)
    # the fingerprint alone: any payee type, any of the exchanges' fingerprints
    f = fp[tx].astype(np.int64)
    neither = np.isin(d, LINEAGE) & np.isin(a, LINEAGE) & np.isin(b, LINEAGE) & (a != d) & (b != d)
    plain = np.isin(f, three[:, 2]) & ((f & 0b11100) == 0)
    marks["6b P2PKH/P2SH payees"] = marks["6b"] & np.isin(d, PRE)
    marks["6b no pair"] = neither & plain
    marks["6a or 6b"] = marks["shipped"] | marks["6b"]
    from chainsleuth.trace.exposure import coinjoin_flags

    is_coinjoin, _ = coinjoin_flags(data, int(store.graph.n_txs))
    made = np.searchsorted(first_out, coin, side="right") - 1
    own = people & ~np.asarray(is_coinjoin)[made]
    for name, m in marks.items():
        print(
            f"{world.parent.name} | {name} | people's spends {int(people.sum())}, marked "
            f"{int((m & people).sum())} (of coins no CoinJoin made: {int((m & own).sum())}) "
            f"| forwards {int(forward.sum())}, marked "
            f"{int((m & forward).sum())} | others marked {int((m & ~people & ~forward).sum())}"
        )
    store.close()


def main(argv: list[str]) -> int:
    for world, data in zip(argv[::2], argv[1::2], strict=True):
        check(Path(world), Path(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
