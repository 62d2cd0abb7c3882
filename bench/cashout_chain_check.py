"""Do withdrawal chains confirm rule 6's forwards? (docs/accuracy-log.md "Cash-outs: what the
misses are, and forwards into other script types", "Tried and not kept").

For every rule-6 payee listed by `bench.cashout_forward_signs` (its JSON files, given as
arguments), follow each output of the payee's spend down one-input spends of 3+ payees along
outputs of the same script type, up to DEPTH txs, and mark it when a 6+-payee payout (rule 4's
test) is reached, or, with `term`, also a batch of 2+ inputs and 3+ payees. Prints marks per
population and truth label. Bench code: the labels are the truth's.

    python -m bench.cashout_chain_check DEPTH [term] SIGNS_JSON ...
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path("bench-output/accuracy")


class _Chain:
    """The store's arrays a walk down withdrawal chains reads."""

    def __init__(self, store: Any) -> None:
        from chainsleuth.store.layout import NONE32

        g = store.graph
        self.n_txs, self.none = g.n_txs, int(NONE32)
        self.fi = np.asarray(g.tx_first_input, np.int64)
        self.fo = np.asarray(g.tx_first_output, np.int64)
        self.spent_by = np.asarray(g.output_spent_by_tx).astype(np.int64)
        self.otype = np.asarray(g.output_script_type)
        self.value = np.asarray(g.output_value, np.int64)
        self.addr = np.asarray(g.output_address).astype(np.int64)
        self.n_in = np.diff(np.append(self.fi, g.input_spent_output.shape[0]))
        self.n_out = np.diff(np.append(self.fo, g.output_value.shape[0]))

    def spender(self, o: int) -> int:
        s = int(self.spent_by[o])
        return -1 if s == self.none or s < 0 or s >= self.n_txs else s

    def payees(self, t: int) -> list[int]:
        first = int(self.fo[t])
        return [
            o
            for o in range(first, first + int(self.n_out[t]))
            if self.addr[o] != self.none and self.value[o] > 0
        ]

    def payout(self, t: int) -> bool:
        p = self.payees(t)
        if len(p) < 6:
            return False
        most = max(collections.Counter(int(self.value[o]) for o in p).values())
        return most <= 0.25 * len(p)

    def reaches(self, o: int, depth: int, term: bool) -> bool:
        s = self.spender(o)
        if s < 0:
            return False
        if self.payout(s) or (term and self.n_in[s] >= 2 and len(self.payees(s)) >= 3):
            return True
        if depth <= 1:
            return False
        p = self.payees(s)
        if len(p) < 3 or self.n_in[s] != 1:
            return False  # a small batch paid from this coin alone
        same = [x for x in p if self.otype[x] == self.otype[o]]
        return any(self.reaches(x, depth - 1, term) for x in same)


def main(argv: list[str]) -> int:
    from chainsleuth.store.store import Store

    depth = int(argv[0])
    term = len(argv) > 1 and argv[1] == "term"
    rows: list[dict[str, Any]] = []
    for name in argv[2 if term else 1 :]:
        with open(name) as f:
            rows += json.load(f)
    by_world: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        by_world[r["world"]].append(r)
    marks: collections.Counter[tuple[str, bool, bool]] = collections.Counter()
    for world, rs in by_world.items():
        store = Store.open(ROOT / world / "store")
        chain = _Chain(store)
        for r in rs:
            s = chain.spender(int(r["payee"]))
            pair = (int(chain.fo[s]), int(chain.fo[s]) + 1)
            hit = any(chain.reaches(o, depth, term) for o in pair)
            marks[(r["population"], bool(r["exchange"]), hit)] += 1
        store.close()
    for pop in ("service", "people", "deposits"):
        for label in (True, False):
            n = marks[(pop, label, True)] + marks[(pop, label, False)]
            if n:
                print(
                    f"{pop} | exchange address {label} | marked {marks[(pop, label, True)]} of {n}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
