"""The store's graph arrays as one frozen, typed view: what every stage walks.

`Store.graph` (ranges and whole-chain passes) and `Store.random_graph` (a few scattered rows:
lookups) are a `ChainGraph`: one attribute per array of `layout.ARRAYS`, memory-mapped
read-only and cut to the committed rows, plus the counts. Nothing is copied: an attribute is an
`np.ndarray` view of the map, so its bytes per item are those written down in `layout.ARRAYS`,
and the two views differ only in the kernel's read-ahead hint (`layout.random_access`).

Example::

    g = Store.open(Path("chainsleuth-data")).graph
    g.output_value[g.tx_first_output[0]]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chainsleuth.store import layout

__all__ = ["ChainGraph", "owned_rows"]


@dataclass(frozen=True, eq=False)  # compared and hashed by identity (arrays have no truth)
class ChainGraph:
    """The committed graph arrays of one store generation (see layout.ARRAYS for each one's
    dtype, meaning and bytes per item), and the counts they are cut to."""

    n_blocks: int
    n_txs: int
    n_inputs: int
    n_outputs: int
    n_addresses: int
    block_hash: np.ndarray
    block_time: np.ndarray
    block_first_tx: np.ndarray
    block_first_address: np.ndarray
    block_location: np.ndarray
    tx_txid: np.ndarray
    tx_first_output: np.ndarray
    tx_first_input: np.ndarray
    tx_height: np.ndarray
    tx_offset: np.ndarray
    output_value: np.ndarray
    output_script_type: np.ndarray
    output_address: np.ndarray
    output_spent_by_tx: np.ndarray
    input_address: np.ndarray
    input_spent_output: np.ndarray
    address_key: np.ndarray

    @classmethod
    def open(cls, data_dir: Path, counts: dict[str, int], random: bool = False) -> ChainGraph:
        """Map every array of the store at `data_dir` up to `counts` (the manifest's).

        `random`: the caller reads a few scattered rows (see layout.random_access).
        """
        arrays = {
            name: np.asarray(layout.open_array(data_dir, name, counts[spec.count], random=random))
            for name, spec in layout.ARRAYS.items()
        }
        return cls(
            n_blocks=counts["blocks"],
            n_txs=counts["txs"],
            n_inputs=counts["inputs"],
            n_outputs=counts["outputs"],
            n_addresses=counts["addresses"],
            **arrays,
        )


#: The array attributes (tests check they are exactly layout.ARRAYS' names).
ARRAY_FIELDS = tuple(f.name for f in dataclasses.fields(ChainGraph) if not f.name.startswith("n_"))


def owned_rows(first: np.ndarray, total: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row ids of the rows owned by each of `ids` (a tx's outputs or inputs, given the
    first-row array and the number of rows) and, per row, the index into `ids` of its owner.
    Reads `first` at `ids` and `ids + 1` only (16 B per row and 8 B per id in memory)."""
    ids = np.asarray(ids, np.int64)
    lo = np.asarray(first[ids]).astype(np.int64)
    nxt = ids + 1
    hi = np.where(nxt < first.shape[0], first[np.minimum(nxt, max(first.shape[0] - 1, 0))], total)
    hi = hi.astype(np.int64)
    lengths = hi - lo
    owner = np.repeat(np.arange(ids.shape[0], dtype=np.int64), lengths)
    starts = np.repeat(lo - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    rows = starts + np.arange(owner.shape[0], dtype=np.int64)
    return rows, owner
