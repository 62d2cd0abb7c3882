"""Issue 13 items 3 and 4 on one kept store, before/after in one session: cold and warm
`address` lookups (on the store as given), then cold and warm one-block cluster updates.

The store (clustered, as `bench.scale --stages ingest cluster --keep` leaves it) is copied to
a scratch folder, which this run changes (blocks appended) and removes at the end, so the same
store can be measured by two checkouts:

    python -m bench.tip_flat STORE BLOCKS --work /tmp/x [--code /tmp/before] [--updates 5]

`--code DIR` imports `chainsleuth` from another checkout (e.g. `git archive 7e262a1 | tar -x
-C /tmp/before`); the measuring code is this checkout's either way. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("store", type=Path, help="a clustered store, only read (copied)")
    p.add_argument("blocks", type=Path, help="the chain's blocks (the store's is a prefix)")
    p.add_argument("--work", type=Path, required=True, help="scratch folder (removed)")
    p.add_argument("--code", type=Path, help="a checkout whose chainsleuth is measured")
    p.add_argument("--updates", type=int, default=5, help="cold updates, then as many warm")
    p.add_argument("--lookups", type=int, default=100, help="cold, then warm, lookups")
    args = p.parse_args()
    if args.code is not None:
        sys.path.insert(0, str(args.code.resolve()))
    import chainsleuth
    from bench.cluster_update_bench import tip_updates
    from bench.common import log
    from bench.scale import cold_warm_lookups

    data = args.work / "data"
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    t0 = time.perf_counter()
    subprocess.run(["cp", "-a", str(args.store), str(data)], check=True)
    subprocess.run(["sync"], check=True)
    log(f"copied {args.store} in {time.perf_counter() - t0:.0f} s; code {chainsleuth.__file__}")
    try:
        # lookups first, on the store as ingest and cluster left it (what bench.scale times)
        look = cold_warm_lookups(str(data), args.lookups, 1)
        upd = tip_updates(
            args.blocks, data, blocks=args.updates, warm_blocks=args.updates, republish=False
        )
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    print(json.dumps({"code": chainsleuth.__file__, "update": upd, "lookups": look}, indent=1))


if __name__ == "__main__":
    main()
