"""Two per-batch-cluster reads of `service_entities`' links, scored by the truth (issue 11).

`trace.services.service_entities` joins a tx's input cluster to that of the batch spending the
only output of the tx a batch spends ("its change"). A wallet that spends its customers'
deposits straight in its batches makes such links to every payer (`bench.entity_links`). Per
batch cluster `b`, over the links into it made by txs that are not batches (`own`):

- timing (issue11-entities): at least `--timing-min` own links, at least `--timing-share` of
  them spent 1-2 blocks after they were paid ("spent as soon as it confirmed");
- send-all (this branch): at least `--sendall-min` own links, at least `--sendall-share` of
  them made by a tx of one payee and fewer than `SWEEP_MIN_INPUTS` inputs. A tx of one output
  that is no sweep has no change: its output is a payment of the whole coin, so a batch that
  spends such outputs spends what others paid it (deposits). It catches the co-spenders the
  timing read misses, those that wait many blocks before they spend a deposit.

A cluster either read flags loses every link into it. Prints one JSON line per world: the
links joining one owner and two (each cluster's majority owner by the truth), and per read
(timing alone, send-all alone, both) the same-owner links it drops and the two-owner links it
leaves. docs/accuracy-log.md "Co-spender status inherited by the split entities".

    python -m bench.link_reads --root /work/main/bench-output/accuracy hard_cospend-small-3

Reads the truth (bench code only). Writes nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.attribution_bound import OUT
from bench.entity_links import _PERSON, service_links, world_clusters


def flagged(
    sh: Any,
    b: np.ndarray,
    made: np.ndarray,
    gap: np.ndarray,
    *,
    timing: tuple[int, float] | None = (2, 0.6),
    sendall: tuple[int, float] | None = (5, 0.1),
) -> np.ndarray:
    """Per link (`b`: the batch's cluster, `made`: the tx that made the linking output, `gap`:
    blocks from `made` to the batch), whether a read flags its batch cluster."""
    from chainsleuth.trace.services import SWEEP_MIN_INPUTS

    ids, at = np.unique(b, return_inverse=True)
    own = ~np.asarray(sh.batch[made], np.bool_)
    n = np.bincount(at[own], minlength=ids.shape[0])
    bad = np.zeros(ids.shape[0], np.bool_)
    if timing is not None:
        quick = own & (gap >= 1) & (gap <= 2)
        n_quick = np.bincount(at[quick], minlength=ids.shape[0])
        bad |= (n >= timing[0]) & (n_quick >= timing[1] * n)
    if sendall is not None:
        one = own & (np.asarray(sh.n_payees[made]) == 1)
        one &= np.asarray(sh.n_inputs[made]) < SWEEP_MIN_INPUTS
        n_one = np.bincount(at[one], minlength=ids.shape[0])
        bad |= (n >= sendall[0]) & (n_one > 0) & (n_one >= sendall[1] * n)
    result: np.ndarray = bad[at]
    return result


def measure(
    name: str, root: Path, timing: tuple[int, float], sendall: tuple[int, float]
) -> dict[str, Any]:
    """World `name`'s links and what each read drops of them."""
    _base, store, _cl, sh, majority = world_clusters(name, root)

    def owner(c: int) -> str:
        o = majority[c]
        return "person" if o.startswith(_PERSON) else o

    a, b, made, spend = service_links(sh)
    height = np.asarray(store.graph.tx_height, np.int64)
    gap = height[spend] - height[made]
    same = np.array([owner(x) == owner(y) for x, y in zip(a.tolist(), b.tolist(), strict=True)])
    out: dict[str, Any] = {
        "world": name,
        "same_owner": int(same.sum()),
        "two_owner": int((~same).sum()),
    }
    for read, kw in (
        ("timing", {"timing": timing, "sendall": None}),
        ("sendall", {"timing": None, "sendall": sendall}),
        ("both", {"timing": timing, "sendall": sendall}),
    ):
        d = flagged(sh, b, made, gap, **kw)  # type: ignore[arg-type]
        out[read] = {
            "same_dropped": int((same & d).sum()),
            "two_owner_left": int((~same & ~d).sum()),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("worlds", nargs="+")
    p.add_argument("--root", type=Path, default=OUT)
    p.add_argument("--timing-min", type=int, default=2)
    p.add_argument("--timing-share", type=float, default=0.6)
    p.add_argument("--sendall-min", type=int, default=5)
    p.add_argument("--sendall-share", type=float, default=0.1)
    args = p.parse_args()
    for name in args.worlds:
        r = measure(
            name,
            args.root,
            (args.timing_min, args.timing_share),
            (args.sendall_min, args.sendall_share),
        )
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
