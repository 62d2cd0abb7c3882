"""Signs that tell a real change link from a payment into another service's deposit that
service then spends (issue 11: one exchange left untagged).

`_lend_by_change` reads a named batch's largest output spent by an unnamed wallet as that
wallet spending its own change. With one exchange untagged, a batch's largest output can be a
withdrawal into the untagged exchange's deposit address that the exchange forwards
(`exchange_forward`: the deposit pays a withdrawal, the rest back to its hot wallet), and the
untagged wallet takes the payer's name. With every exchange tagged the spender is named and the
rule never asks. This lists every change link of every round (`bench.change_link_checks.links`,
truth by the label's majority owner) with what the chain shows of the batch and the spending
tx, so that each candidate sign can be counted on right and wrong links alike:

- `fp_same`: the batch and the spending tx carry the same wallet fingerprint (version,
  locktime > 0, nSequence class: `cluster.learned.read_fingerprints`). One wallet's software
  makes both when the output was its change.
- `type_back`: an output of the spending tx has the spent output's script type.
- `pay_share`: the spending tx's largest output over the spent output's value.
- `o_last` / `b_last_other`: the linked output is the batch's last / the batch's last output is
  another one.
- `dt`: blocks between the batch and the spend.

    python -m bench.change_link_signs hard-small-1 ... [--root DIR] [--json OUT]
    python -m bench.change_link_signs --root /work/main/bench-output/untagged/hard-small-13 dunmore

Reads the truth (bench code only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.change_link_checks import report

#: The signs counted per link (True: the link looks like one wallet's change).
SIGNS = ("position_misfit", "fp_same", "type_back", "o_last")


def features(setup: Any, b: int, s: int) -> dict[str, Any]:
    """What the chain shows of the batch `b` and the spending tx `s` of one link."""
    g = setup.store.graph
    fo = g.tx_first_output
    fi = g.tx_first_input
    n_txs = fo.shape[0]
    no = g.output_address.shape[0]
    ni = g.input_address.shape[0]
    o0, o1 = int(fo[b]), int(fo[b + 1]) if b + 1 < n_txs else no
    s0, s1 = int(fo[s]), int(fo[s + 1]) if s + 1 < n_txs else no
    i0, i1 = int(fi[s]), int(fi[s + 1]) if s + 1 < n_txs else ni
    spent = np.asarray(g.input_spent_output[i0:i1], np.int64)
    mine = [o for o in spent.tolist() if o0 <= o < o1]
    o = mine[0] if mine else -1
    types = np.asarray(g.output_script_type[s0:s1])
    vals = np.asarray(g.output_value[s0:s1], np.int64)
    fp = setup.tx_fingerprint
    o_type = int(g.output_script_type[o]) if o >= 0 else -1
    o_val = int(g.output_value[o]) if o >= 0 else 0
    return {
        "fp_same": bool(fp[b] == fp[s]),
        "fp_b": int(fp[b]),
        "fp_s": int(fp[s]),
        "type_back": bool((types == o_type).any()),
        "s_inputs": i1 - i0,
        "s_outputs": s1 - s0,
        "pay_share": round(float(vals.max()) / max(o_val, 1), 3) if vals.shape[0] else 0.0,
        "o_pos": o - o0,
        "o_last": o == o1 - 1,
        "b_outputs": o1 - o0,
        "dt": int(g.tx_height[s]) - int(g.tx_height[b]),
    }


def _key(f: dict[str, Any]) -> str:
    return " ".join(f"{k}={f[k] if f[k] is None else int(f[k])}" for k in SIGNS)


def main() -> None:
    report(__doc__, _key, features)


if __name__ == "__main__":
    main()
