"""Which change links (`change_spend`, `change_return`) name a label wrongly, and what the
batch's other outputs show (issue 11, precision on `hard_swswitch`).

For each world cached by `bench.accuracy_matrix`, `cases.investigate._lend_by_change` is run
as `prepare_case` runs it, instrumented: every link of every round (before the exactly-one-name
check) is listed with its kind, its batch, the output read as the batch's change, the tx that
spent it, the label it would name and the name, and scored from the truth (the label's majority
owner by `truth/addresses.csv`, over the label's clusters at that round). Per link the batch's
*other* outputs are read too (`own_*`): is one of them spent by the batch payer's own wallet
(a cluster of the payer's label, or of the payer's name for a named payer), by a batch
(`own_batch`) or by any tx (`own_any`)? A wallet that spends another output of its batch as its
own showed which output its change was.

    python -m bench.change_link_checks hard_swswitch-small-7 hard-small-1 ...

Reads the truth (bench code only). Writes nothing unless --json.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.attribution_bound import OUT, world_parser


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def links(
    name: str,
    root: Path = OUT,
    features: Callable[[Any, int, int], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Every change link of every round of `_lend_by_change` on the world, with its features
    and its truth. `features(setup, batch tx, spending tx)`: more fields per link (the case's
    `CaseSetup`; `bench.change_link_signs`)."""
    from chainsleuth.cases import investigate as inv
    from chainsleuth.trace import services as sv

    base = root / name
    owner_of = {
        r["address"]: r["entity"] or r["wallet_id"]
        for r in _rows(base / "world" / "truth" / "addresses.csv")
    }
    tx_truth = {r["txid"]: r for r in _rows(base / "world" / "truth" / "txs.csv")}
    found: list[dict[str, Any]] = []
    keep = sv.change_spend_evidence
    state: dict[str, Any] = {}

    def spy(store: Any, shapes: Any, named: np.ndarray, candidates: np.ndarray,
            largest_only: bool = True, **kw: Any) -> Any:  # fmt: skip
        out = keep(store, shapes, named, candidates, largest_only, **kw)
        state.setdefault("calls", []).append((store, shapes, named, candidates, out))
        return out

    keep_lend = inv._lend_by_change
    keep_misfits = inv._change_position_misfits

    def misfits(*args: Any) -> Any:
        # called for the change spends, then the change returns, after each round's pair of
        # `change_spend_evidence` calls: the n-th call after a pair belongs to call L - 2 + n
        out = keep_misfits(*args)
        n_calls = len(state.get("calls", []))
        done = state.setdefault("misfit_at", {})
        k = sum(1 for i in done if i >= n_calls - 2)
        done[n_calls - 2 + k] = out
        return out

    def lend(store: Any, shapes: Any, attribution: dict, *args: Any, **kw: Any) -> Any:
        state["att"] = attribution
        state["rounds"] = []
        orig = dict(attribution)
        state["orig"] = orig
        # one snapshot of the attribution per round: the spy sees calls in pairs
        inv.change_spend_evidence = spy  # type: ignore[assignment]
        inv._change_position_misfits = misfits  # type: ignore[assignment]
        try:
            return keep_lend(store, shapes, attribution, *args, **kw)
        finally:
            inv.change_spend_evidence = keep  # type: ignore[assignment]
            inv._change_position_misfits = keep_misfits  # type: ignore[assignment]

    inv._lend_by_change = lend  # type: ignore[assignment]
    try:
        setup = inv.prepare_case(base / "store", base / "world" / "seeds" / "deposits.csv")
    finally:
        inv._lend_by_change = keep_lend
    store = setup.store
    cl = np.asarray(setup.cluster_of[:], np.int64)
    orig: dict[int, tuple[str | None, str]] = state["orig"]
    # the label of each cluster before any change link (labels keep their clusters; a named
    # label's clusters all take one name), truth owner per label
    by_label: dict[Any, list[int]] = defaultdict(list)
    for c, v in orig.items():
        by_label[v].append(c)
    all_cl = np.array(sorted(orig), np.int64)
    member = np.flatnonzero(np.isin(cl, all_cl))
    tally: dict[int, Counter[str]] = defaultdict(Counter)
    for a, x in zip(member.tolist(), store.addresses(member).to_pylist(), strict=True):
        tally[int(cl[a])][owner_of.get(x, "?")] += 1
    lab_owner: dict[Any, str] = {}
    for lab, cs in by_label.items():
        t: Counter[str] = Counter()
        for c in cs:
            t.update(tally.get(c, Counter()))
        lab_owner[lab] = t.most_common(1)[0][0] if t else "?"
    final = setup.attribution
    # how the named side of a link got its name: the rule that named its cluster (what a
    # change-carried name rests on)
    origin_of = (
        ("change", setup.change_clusters),
        ("style", setup.styled_clusters),
        ("entity", setup.entity_clusters),
        ("linked", setup.linked_clusters),
    )

    def origin(c: int) -> str:
        for what, cs in origin_of:
            pos = np.searchsorted(cs, c)
            if pos < cs.shape[0] and cs[pos] == c:
                return what
        return "tag"

    calls = state.get("calls", [])
    for i, (_st, shapes, _payers, _takers, out) in enumerate(calls):
        rnd, kind = i // 2, ("change_spend", "change_return")[i % 2]
        payer_c, spender_c, batch, spend = (a.tolist() for a in out)
        fo = np.asarray(shapes.first_output, np.int64)
        n_out = shapes.output_address.shape[0]
        spent_by = shapes.spent_by
        misfit = state.get("misfit_at", {}).get(i)
        for j, (x, p, b, s) in enumerate(zip(payer_c, spender_c, batch, spend, strict=True)):
            # the label named and the name: change_spend names the spender's label after the
            # payer's name, change_return the payer's label after the spender's name
            lab_c, name_c = (p, x) if kind == "change_spend" else (x, p)
            o0 = int(fo[b])
            o1 = int(fo[b + 1]) if b + 1 < fo.shape[0] else n_out
            payer_group = orig[x] if kind == "change_return" else None
            own_any = own_batch = own_cluster = 0
            for o in range(o0, o1):
                sb = int(spent_by[o])
                if sb < 0 or sb == s:
                    continue
                y = int(shapes.spender[sb])
                if y < 0:
                    continue
                if kind == "change_return":
                    same = orig.get(y) == payer_group
                else:
                    # a named payer's own: any cluster of its name (the name at that round is
                    # not kept; the final attribution's name is an upper bound)
                    same = final.get(y, (None, ""))[0] == final.get(x, (None, ""))[0]
                if same:
                    own_any += 1
                    own_batch += bool(shapes.batch[sb])
                    own_cluster += y == x
            txb, txs = store.txids(np.array([b, s], np.int64)).to_pylist()
            lab = orig[lab_c]
            nm = final.get(name_c, orig.get(name_c))
            found.append(
                {
                    "world": name,
                    "round": rnd,
                    "kind": kind,
                    "label": lab[0],
                    "name": nm[0] if nm else None,
                    "right": lab_owner.get(lab) == (nm[0] if nm else None),
                    "owner": lab_owner.get(lab),
                    "batch": txb,
                    "batch_kind": tx_truth[txb]["kind"] + "/" + tx_truth[txb]["wallet_id"],
                    "spend_kind": tx_truth[txs]["kind"] + "/" + tx_truth[txs]["wallet_id"],
                    "own_any": own_any,
                    "own_batch": own_batch,
                    "own_cluster": own_cluster,
                    "spend": txs,
                    "name_origin": origin(name_c),
                    "name_right": (tally.get(name_c) or Counter({"?": 1})).most_common(1)[0][0]
                    == (nm[0] if nm else None),
                    # dropped by `_change_position_misfits` (None: not read)
                    "position_misfit": None if misfit is None else bool(misfit[j]),
                    **(features(setup, b, s) if features is not None else {}),
                }
            )
    return found


def report(
    doc: str | None,
    key: Callable[[dict[str, Any]], str],
    features: Callable[[Any, int, int], dict[str, Any]] | None = None,
) -> None:
    """The per-world scripts' run: every link of each world named on the command line (with
    `features`), each wrong one printed, counts per world and over all by `key` (what follows
    the link's kind and right/WRONG), and --json the links. A world under another root than
    the accuracy worlds' (`bench.untagged_exchange`'s variants) is named <root>/<world>."""
    a = world_parser(doc).parse_args()
    every: list[dict[str, Any]] = []
    total: Counter[str] = Counter()
    for w in a.worlds:
        found = links(w, a.root, features)
        c: Counter[str] = Counter()
        for f in found:
            if a.root.name != OUT.name:
                f["world"] = f"{a.root.name}/{w}"
            c[f"{f['kind']} {'right' if f['right'] else 'WRONG'} {key(f)}"] += 1
            if not f["right"]:
                print("  wrong:", json.dumps(f), flush=True)
        every += found
        total.update(c)
        print(w, dict(sorted(c.items())), flush=True)
    print("all:")
    for k, v in sorted(total.items()):
        print(f"{v:7d} {k}")
    if a.json:
        a.json.write_text(json.dumps(every, indent=1))


def main() -> None:
    report(
        __doc__, lambda f: f"own_batch={int(f['own_batch'] > 0)} own_any={int(f['own_any'] > 0)}"
    )


if __name__ == "__main__":
    main()
