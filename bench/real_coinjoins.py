"""The CoinJoin rules on the real mainnet blocks of the shared data (issue 11).

`python -m bench.real_coinjoins [--all]` parses every bare block in
`../shared/data/mainnet-blocks/raw/`, lays each out as the clusterer's arrays (the spent
outputs come from the Floresta prevout files where the data has them; elsewhere an input's
script type and address are read from its scriptSig and witness: a P2WPKH or P2PKH input shows
its public key, a P2SH one its redeem script, a P2TR key-path spend nothing, so it counts as its
own address) and runs `cluster.kernels.analyze_txs` on them. It prints every transaction with
three or more equal payees and three or more inputs (`--all`), or only those a CoinJoin rule
flags, with the shape the rules read. Run it from a checkout to measure that checkout's rules.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chainsleuth.cluster import kernels
from chainsleuth.cluster.rules import BY_CODE
from chainsleuth.core.script_types import ScriptType
from chainsleuth.parse.blocks import classify_script_list
from chainsleuth.parse.serialize import Tx, TxIn, parse_block, script_pushes

RAW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mainnet-blocks" / "raw"


def output_type(script: bytes) -> ScriptType:
    """The ingest's own classification of one output script."""
    return ScriptType(int(classify_script_list([script])[0][0]))


def input_type_and_key(txin: TxIn) -> tuple[ScriptType, bytes]:
    """What an input spends, read from its scriptSig and witness (no prevout): its script
    type and a key that is the same for two inputs of one address (the outpoint where the
    spend does not show one)."""
    outpoint = txin.prev_txid + txin.prev_vout.to_bytes(4, "little")
    wit, sig = txin.witness, txin.script_sig
    if wit and not sig:
        if len(wit) == 2 and len(wit[1]) == 33:
            return ScriptType.P2WPKH, wit[1]
        if len(wit) == 1 and len(wit[0]) in (64, 65):
            return ScriptType.P2TR, outpoint
        return ScriptType.P2WSH, wit[-1]
    items = script_pushes(sig, strict=False)
    if wit and len(items) == 1:
        return ScriptType.P2SH, items[0]
    if len(items) == 2 and len(items[1]) in (33, 65):
        return ScriptType.P2PKH, items[1]
    if len(items) >= 2 and items[0] == b"":
        return ScriptType.P2SH, items[-1]
    if len(items) == 1:
        return ScriptType.P2PK, outpoint
    return ScriptType.NONSTANDARD, outpoint


@dataclass
class Laid:
    """One block as the clusterer's arrays: outputs of the block, then one pseudo-output per
    non-coinbase input standing for the coin it spends."""

    txs: list[Tx]
    tx_first_input: np.ndarray
    tx_first_output: np.ndarray
    in_spent_output: np.ndarray
    in_address: np.ndarray
    out_value: np.ndarray
    out_address: np.ndarray
    out_script_type: np.ndarray


def lay_out(path: Path) -> Laid:
    block, _ = parse_block(path.read_bytes())
    txs = list(block.txs)
    prev_file = path.with_name(path.stem + ".spent_utxos.json")
    prevouts = json.loads(prev_file.read_text()) if prev_file.exists() else None
    keys: dict[bytes, int] = {}

    def key_id(k: bytes) -> int:
        return keys.setdefault(k, len(keys))

    first_in, first_out, values, types, addrs = [], [], [], [], []
    for tx in txs:
        first_out.append(len(values))
        for o in tx.outputs:
            values.append(o.value)
            types.append(int(output_type(o.script_pubkey)))
            addrs.append(key_id(b"o" + o.script_pubkey))
    n_block_outputs = len(values)
    spent, in_addr = [], []
    p = 0
    for t, tx in enumerate(txs):
        first_in.append(len(spent))
        for txin in tx.inputs:
            if t == 0:
                spent.append(-1)
                in_addr.append(-1)
                continue
            if prevouts is not None:
                rec = prevouts[p]["txout"]
                script = bytes.fromhex(rec["script_pubkey"])
                stype, key, value = output_type(script), b"o" + script, int(rec["value"])
            else:
                stype, raw = input_type_and_key(txin)
                key, value = b"i" + raw, 0
            p += 1
            spent.append(len(values))
            values.append(value)
            types.append(int(stype))
            addrs.append(-1)
            in_addr.append(key_id(key))
    del n_block_outputs
    return Laid(
        txs,
        np.asarray(first_in, np.int64),
        np.asarray(first_out, np.int64),
        np.asarray(spent, np.int64),
        np.asarray(in_addr, np.int64),
        np.asarray(values, np.int64),
        np.asarray(addrs, np.int64),
        np.asarray(types, np.uint8),
    )


def coinjoin_codes(laid: Laid) -> np.ndarray:
    """The CoinJoin rule code of every tx of the block (0: none), by the clusterer's kernel."""
    n = len(laid.txs)
    coinjoin = np.zeros(n, np.int16)
    empty = np.zeros(0, np.int64)
    kernels.analyze_txs(
        0,
        n,
        laid.tx_first_input,
        laid.tx_first_output,
        laid.in_spent_output.shape[0],
        int(laid.tx_first_output[-1]) + len(laid.txs[-1].outputs),
        laid.in_spent_output,
        laid.in_address,
        laid.out_value,
        laid.out_address,
        laid.out_script_type,
        np.zeros(0, np.bool_),
        0,
        coinjoin,
        np.zeros(n, np.bool_),
        empty,
        empty,
        empty,
        empty,
        False,
    )
    return coinjoin


def shape(laid: Laid, t: int) -> dict[str, object]:
    tx = laid.txs[t]
    pay = [o for o in tx.outputs if o.value > 0 and output_type(o.script_pubkey) != 9]
    counts = Counter(o.value for o in pay)
    mode_v, mode_c = counts.most_common(1)[0] if counts else (0, 0)
    i0 = int(laid.tx_first_input[t])
    ins = range(i0, i0 + len(tx.inputs))
    return {
        "txid": tx.txid_hex(),
        "n_in": len(tx.inputs),
        "distinct_in": len({int(laid.in_address[i]) for i in ins}),
        "n_pay": len(pay),
        "mode_v": mode_v,
        "mode_c": mode_c,
        "repeated": sum(c for c in counts.values() if c >= 2),
        "in_types": sorted(
            {str(ScriptType(int(laid.out_script_type[laid.in_spent_output[i]]))) for i in ins}
        ),
        "pay_types": dict(Counter(str(output_type(o.script_pubkey)) for o in pay)),
        "equal_types": sorted(
            {str(output_type(o.script_pubkey)) for o in pay if o.value == mode_v}
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--all", action="store_true", help="every tx with 3+ equal payees")
    args = ap.parse_args()
    print("kernel:", kernels.__file__)
    for path in sorted(RAW.glob("*.bin")):
        laid = lay_out(path)
        codes = coinjoin_codes(laid)
        for t in range(1, len(laid.txs)):
            s = shape(laid, t)
            if codes[t] or (args.all and s["mode_c"] >= 3 and s["n_in"] >= 3):
                rule = BY_CODE[int(codes[t])].name if codes[t] else "-"
                print(path.stem, rule, json.dumps(s))


if __name__ == "__main__":
    main()
