"""The wallet-habit readers of `trace.services` on the real mainnet blocks of the shared data
(issue 11).

`python -m bench.real_habits` parses every bare block and blk file in
`../shared/data/mainnet-blocks/` (txs seen twice counted once) and reads, for every non-coinbase
tx of 3+ outputs (a batch's shape), what `wallet_styles` reads: output order (sorted = values
never fall and rise `STYLE_ORDER_RISES`+ times, unsorted = they fall once), the wallet
fingerprint class (version, locktime set, first nSequence) and, where the data has the spent
outputs (blocks 367,891 and 866,342), the fee rate by `whole_fee_rates`, with the exact-size
(no slack) and 2 vB/input reads beside it and the count chance alone would make whole. Then it
groups those txs by the GraphSense exchange tag of an input address (inputs' addresses from the
prevouts, elsewhere from the P2PKH/P2WPKH/P2SH spend's pushed key or script) and prints each
tagged exchange's habits.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.real_coinjoins import input_type_and_key, output_type
from chainsleuth.core.address import encode_address, hash160
from chainsleuth.core.network import MAIN
from chainsleuth.core.script_types import ScriptType
from chainsleuth.parse.serialize import parse_block
from chainsleuth.trace import services
from chainsleuth.trace.services import STYLE_ORDER_RISES, whole_fee_rates

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BLOCKS = DATA / "mainnet-blocks"
PACKS = DATA / "graphsense-tagpacks" / "packs"


def blocks() -> list[bytes]:
    out = []
    for path in sorted((BLOCKS / "raw").glob("*.bin")):
        out.append(path.read_bytes())
    for path in sorted((BLOCKS / "blk").glob("*/*.dat")):
        if path.name.startswith("rev"):
            continue
        data, pos = path.read_bytes(), 0
        while pos + 8 <= len(data) and data[pos : pos + 4] != bytes(4):
            n = int.from_bytes(data[pos + 4 : pos + 8], "little")
            out.append(data[pos + 8 : pos + 8 + n])
            pos += 8 + n
    return out


def script_address(script: bytes) -> str | None:
    t = output_type(script)
    payload = {
        ScriptType.P2PKH: script[3:23],
        ScriptType.P2SH: script[2:22],
        ScriptType.P2WPKH: script[2:22],
        ScriptType.P2WSH: script[2:34],
        ScriptType.P2TR: script[2:34],
    }.get(t)
    return None if payload is None else encode_address(t, payload, MAIN)


def spend_address(txin) -> str | None:  # type: ignore[no-untyped-def]
    t, key = input_type_and_key(txin)
    if t in (ScriptType.P2PKH, ScriptType.P2WPKH) and len(key) in (33, 65):
        return encode_address(t, hash160(key), MAIN)
    if t == ScriptType.P2SH:
        return encode_address(t, hash160(key), MAIN)
    return None


def exchange_tags() -> dict[str, str]:
    """address -> exchange (actor, else label) of every tag whose category (its own or its
    pack's) is exchange: a line scan of the packs (`- address:` starts a tag)."""
    out: dict[str, str] = {}
    field = re.compile(r"^(\s*-?\s*)(address|actor|label|category):\s*(.*?)\s*$")
    for path in sorted(PACKS.glob("*.yaml")):
        header: dict[str, str] = {}
        tag: dict[str, str] | None = None
        tags: list[dict[str, str]] = []
        for line in path.read_text(errors="replace").splitlines():
            m = field.match(line)
            if not m:
                continue
            lead, key, value = m.groups()
            value = value.strip("'\"")
            if key == "address" and "-" in lead:
                tag = {"address": value}
                tags.append(tag)
            elif tag is not None and lead.strip() == "" and lead:
                tag[key] = value
            elif not lead:
                header[key] = value
        for t in tags:
            merged = {**header, **t}
            if merged.get("category") == "exchange":
                out[t["address"]] = merged.get("actor") or merged.get("label") or path.stem
    return out


def exact_rule(fee: np.ndarray, vsize: np.ndarray, n_in: np.ndarray) -> np.ndarray:
    """The rule as merged with issue11-twins: fee a whole multiple of the floor rate, paid for
    at most 1 vB per input over the vsize."""
    rate = np.maximum(fee // np.maximum(vsize, 1), 1)
    return (fee % rate == 0) & (fee // rate <= vsize + n_in)


def fp_class(version: int, locktime: int, sequence: int) -> str:
    seq = {0xFFFFFFFF: "final", 0xFFFFFFFE: "fffe", 0xFFFFFFFD: "rbf"}.get(sequence, "other")
    return f"v{version if version in (1, 2) else 'x'}/lt{'1' if locktime else '0'}/{seq}"


def batch_rows(tags: dict[str, str]) -> list[dict]:
    """One row per distinct non-coinbase tx of 3+ outputs of the shared real blocks: its block's
    height and time, order read, fingerprint class, fee and vsize (where the prevouts are held),
    and the exchange tag of an input address (`tags`: `exchange_tags()`), else None."""
    prevouts = {}
    for h in (367891, 866342):
        prevouts[h] = json.loads((BLOCKS / "raw" / f"{h:07d}.spent_utxos.json").read_text())
    seen: set[bytes] = set()
    rows = []  # per batch-shaped tx
    for raw in blocks():
        block, _ = parse_block(raw)
        txs = list(block.txs)
        height = None
        cb = txs[0].inputs[0].script_sig
        if block.header.version >= 2 and len(cb) > 1 and 1 <= cb[0] <= 4:
            height = int.from_bytes(cb[1 : 1 + cb[0]], "little")
        pv = prevouts.get(height) if height is not None else None
        p = 0
        for k, tx in enumerate(txs):
            if k == 0:
                continue
            n_in = len(tx.inputs)
            spent = pv[p : p + n_in] if pv is not None else None
            p += n_in
            txid = tx.txid()
            if txid in seen or len(tx.outputs) < 3:
                continue
            seen.add(txid)
            values = np.array([o.value for o in tx.outputs], np.int64)
            d = np.diff(values)
            falls, rises = int((d < 0).sum()), int((d > 0).sum())
            order = "unsorted" if falls else ("sorted" if rises >= STYLE_ORDER_RISES else "-")
            bip69 = sorted((o.value, o.script_pubkey) for o in tx.outputs) == [
                (o.value, o.script_pubkey) for o in tx.outputs
            ]
            if spent is not None:
                addrs = [script_address(bytes.fromhex(s["txout"]["script_pubkey"])) for s in spent]
                fee = sum(int(s["txout"]["value"]) for s in spent) - int(values.sum())
            else:
                addrs = [spend_address(i) for i in tx.inputs]
                fee = -1
            entity = next((tags[a] for a in addrs if a in tags), None)
            rows.append(
                dict(
                    height=height,
                    time=block.header.time,
                    txid=txid[::-1].hex(),
                    n_in=n_in,
                    n_out=len(tx.outputs),
                    order=order,
                    bip69=bip69,
                    fp=fp_class(tx.version, tx.locktime, tx.inputs[0].sequence),
                    fee=fee,
                    vsize=tx.vsize() if fee >= 0 else 0,
                    entity=entity,
                )
            )
    return rows


def entity_styles(rows: list[dict], months: int) -> tuple[list[str], services.WalletStyles]:
    """The tagged exchanges' batch-shaped txs among `rows` as `trace.services.WalletStyles`, one
    group per exchange (sorted names): the fingerprint class, the output order and the fee rate
    (where readable) counted as `wallet_styles` counts them, pooled over the blocks and, with
    `months` > 0, per calendar window of `months` months (`PeriodStyles`). The other habits are
    not read here (no hot type: the inputs' types are not all known without prevouts)."""
    tagged = [r for r in rows if r["entity"]]
    names = sorted({r["entity"] for r in tagged})
    classes = sorted({r["fp"] for r in tagged})
    group = np.array([names.index(r["entity"]) for r in tagged], np.int64)
    fp = np.array([classes.index(r["fp"]) for r in tagged], np.int64)
    window = services.block_periods(np.array([r["time"] for r in tagged], np.int64), max(months, 1))
    first = int(window.min())
    n_periods = int(window.max()) - first + 1

    def styles(key: np.ndarray, n: int) -> services.WalletStyles:
        def count(mask: list[bool]) -> np.ndarray:
            return np.bincount(key[np.array(mask, np.bool_)], minlength=n).astype(np.int64)

        fed = [r for r in tagged if r["fee"] >= 0]
        counted, whole = services.whole_fee_rates(
            np.array([r["fee"] for r in fed], np.int64),
            np.array([r["vsize"] for r in fed], np.int64),
            np.array([r["n_in"] for r in fed], np.int64),
        )
        fee_key = key[np.array([r["fee"] >= 0 for r in tagged], np.bool_)]
        unseen = np.full(n, services.STYLE_UNSEEN, np.int64)
        zero = np.zeros(n, np.int64)
        lo = np.full(n, np.iinfo(np.int64).max, np.int64)
        hi = np.full(n, -1, np.int64)
        np.minimum.at(lo, key, fp)
        np.maximum.at(hi, key, fp)
        one = np.where(hi < 0, services.STYLE_UNSEEN, np.where(lo == hi, hi, services.STYLE_MIXED))
        return services.WalletStyles(
            hot=unseen, fingerprint=one, deposit=unseen.copy(), change_last=zero,
            change_elsewhere=zero.copy(), coinbase=np.zeros(n, np.bool_),
            batches=np.bincount(key, minlength=n).astype(np.int64), deposit_reads=zero.copy(),
            sorted_batches=count([r["order"] == "sorted" for r in tagged]),
            unsorted_batches=count([r["order"] == "unsorted" for r in tagged]),
            whole_fees=np.bincount(fee_key[whole], minlength=n).astype(np.int64),
            fractional_fees=np.bincount(fee_key[counted & ~whole], minlength=n).astype(np.int64),
        )  # fmt: skip

    pooled = styles(group, len(names))
    if months <= 0 or n_periods <= 1:
        return names, pooled
    per = styles(group * n_periods + window - first, len(names) * n_periods)
    periods = services.PeriodStyles(per, n_periods, months, first)  # fmt: skip
    return names, replace(pooled, periods=periods)


def period_table(rows: list[dict], months: int) -> None:
    """Per tagged exchange: the fingerprint, order and fee habits pooled over the blocks and per
    calendar window of `months` months (named thresholds / a candidate's), and whether its
    signing software changed (`_period_habits`)."""
    names, s = entity_styles(rows, months)
    groups = np.arange(len(names))
    fp, order, fee = (services.STYLE_HABITS.index(h) for h in ("fingerprint", "output_order",
                                                               "fee_rate"))  # fmt: skip
    named, seen = services.style_habits(s, groups), services.style_habits(s, groups, seen=True)
    classes = sorted({r["fp"] for r in rows if r["entity"]})
    print(f"tagged exchanges' habits, pooled vs per {months}-month window (fingerprint class; order"
          " 1 sorted 0 unsorted -1 unknown, named / candidate thresholds; fee 1 whole 0 fractional)")  # fmt: skip

    def fp_name(v: int) -> str:
        return classes[v] if v >= 0 else {-1: "unseen", -2: "MIXED"}[v]

    for g, name in enumerate(names):
        print(f"  {name}: pooled fp {fp_name(int(named[fp][g]))}, order {int(named[order][g])} / "
              f"{int(seen[order][g])}, fee {int(named[fee][g])} / {int(seen[fee][g])}")  # fmt: skip
        if s.periods is None:
            continue
        k = s.periods.n_periods
        active = s.periods.active(np.array([g]))[0]
        _h, changed = services._period_habits(s, np.array([g]), False)
        rows_g = g * k + np.flatnonzero(active)
        wn = services.style_habits(s.periods.styles, rows_g)
        ws = services.style_habits(s.periods.styles, rows_g, seen=True)
        for j, w in enumerate(np.flatnonzero(active).tolist()):
            half = s.periods.first + w
            print(f"    {(half * months) // 12 + 1970} window {(half * months) % 12 // months + 1}: "
                  f"batches {int(np.asarray(s.periods.styles.batches)[rows_g[j]])}, fp "
                  f"{fp_name(int(wn[fp][j]))}, order {int(wn[order][j])} / {int(ws[order][j])}, "
                  f"fee {int(wn[fee][j])} / {int(ws[fee][j])}")  # fmt: skip
        print(f"    software changed (per-period read used): {bool(changed[0])}")


def main() -> None:
    tags = exchange_tags()
    print(f"exchange-tagged addresses in the packs: {len(tags)}")
    rows = batch_rows(tags)
    n = len(rows)
    print(f"batch-shaped txs (3+ outputs, distinct): {n}")
    oc = Counter(r["order"] for r in rows)
    print("output order read:", dict(oc), f"sorted share {oc['sorted'] / n:.3f}")
    sorted_rows = [r for r in rows if r["order"] == "sorted"]
    print(
        "  of those read sorted, full BIP69 (value, script):",
        sum(r["bip69"] for r in sorted_rows),
        "/",
        len(sorted_rows),
        "; full BIP69 among all:",
        sum(r["bip69"] for r in rows),
    )
    print("fingerprint classes:", Counter(r["fp"] for r in rows).most_common())
    for h in (574200, 702861, 866342):
        print(f"  block {h}:", Counter(r["fp"] for r in rows if r["height"] == h).most_common())
    feed = [r for r in rows if r["fee"] >= 0]
    fee = np.array([r["fee"] for r in feed], np.int64)
    vsize = np.array([r["vsize"] for r in feed], np.int64)
    n_in = np.array([r["n_in"] for r in feed], np.int64)
    counted, whole = whole_fee_rates(fee, vsize, n_in)
    _, exact = whole_fee_rates(fee, vsize, np.zeros_like(n_in))
    _, wide = whole_fee_rates(fee, vsize, 2 * n_in)
    chance = float(np.minimum(1.0, (n_in + 1) / np.maximum(vsize, 1))[counted].sum())
    for h in (367891, 866342):
        m = np.array([r["height"] == h for r in feed]) & counted
        print(
            f"fee rate, block {h}: batch-shaped txs {sum(r['height'] == h for r in feed)}, "
            f"counted (>=2 sat/vB) {int(m.sum())}, whole (reader, slack n_in) {int(whole[m].sum())}"
            f", exact (no slack) {int(exact[m].sum())}, slack 2 x n_in {int(wide[m].sum())}, "
            f"chance expectation (n_in+1)/vsize "
            f"{float(np.minimum(1.0, (n_in + 1) / np.maximum(vsize, 1))[m].sum()):.1f}"
        )
        rate = fee[m] / vsize[m]
        if rate.size:
            frac = rate - np.floor(rate)
            print(
                f"  rate sat/vB quartiles {np.percentile(rate, [25, 50, 75]).round(2).tolist()}, "
                f"fractional part < 0.05: {int((frac < 0.05).sum())}, > 0.95: "
                f"{int((frac > 0.95).sum())}, fee a multiple of 1000 sat: "
                f"{int((fee[m] % 1000 == 0).sum())}"
            )
    print(f"total chance expectation {chance:.1f}")
    # chance by simulation: the same txs at a uniformly random fee within their floor rate
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(200):
        fake = (fee // np.maximum(vsize, 1)) * vsize + rng.integers(0, np.maximum(vsize, 1))
        c2, w2 = whole_fee_rates(fake, vsize, n_in)
        hits.append((int(w2[counted].sum()), int(exact_rule(fake, vsize, n_in)[counted].sum())))
    print(
        f"whole by chance (random fee in the same sat/vB step, 200 draws): mean "
        f"{np.mean([h[0] for h in hits]):.1f} of {int(counted.sum())} (whole multiple + 1 vB/input"
        f" rule alone: {np.mean([h[1] for h in hits]):.1f}); observed: reader "
        f"{int(whole[counted].sum())}, whole multiple + 1 vB/input rule alone "
        f"{int(exact_rule(fee, vsize, n_in)[counted].sum())}"
    )
    by_entity: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["entity"]:
            by_entity[r["entity"]].append(r)
    print(f"tagged exchanges spending batch-shaped txs: {len(by_entity)}")
    for name, rs in sorted(by_entity.items(), key=lambda kv: -len(kv[1])):
        fed = [r for r in rs if r["fee"] >= 0]
        if fed:
            c, w = whole_fee_rates(
                np.array([r["fee"] for r in fed]),
                np.array([r["vsize"] for r in fed]),
                np.array([r["n_in"] for r in fed]),
            )
            fee_read = f"fee counted {int(c.sum())} whole {int(w.sum())}"
            rates = [round(r["fee"] / r["vsize"], 3) for r in fed]
        else:
            fee_read, rates = "fee n/a (no prevouts)", []
        print(
            f"  {name}: {len(rs)} txs, blocks {sorted({r['height'] for r in rs})}, order "
            f"{dict(Counter(r['order'] for r in rs))}, fp {dict(Counter(r['fp'] for r in rs))},"
            f" {fee_read}, rates {rates[:12]}"
        )
        for r in rs:
            print(
                f"    {r['height']} {r['txid'][:16]} in {r['n_in']} out {r['n_out']} "
                f"{r['order']} bip69={r['bip69']} {r['fp']}"
            )

    period_table(rows, services.STYLE_PERIOD_MONTHS)
    period_table(rows, 12)


if __name__ == "__main__":
    main()
