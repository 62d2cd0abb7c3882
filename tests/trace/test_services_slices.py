"""The service heuristics over the whole chain, computed a slice of txs at a time (issue 13,
memory), equal the same computed in one slice; the lazy per-output columns read like the
dense arrays they stand for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainsleuth.cases.investigate import OutputIds
from chainsleuth.cluster.engine import Clusters
from chainsleuth.store.layout import NONE32
from chainsleuth.store.store import Store
from chainsleuth.trace import services
from chainsleuth.trace.exposure import coinjoin_flags, one_wallet_txs


def _all(data: Path) -> dict[str, object]:
    store = Store.open(data)
    cluster_of = np.asarray(Clusters(data).cluster_of)
    is_coinjoin, _ = coinjoin_flags(data, store.counts["txs"])
    shapes = services.tx_shapes(store, cluster_of, is_coinjoin)
    assert shapes is not None
    stats = services.service_stats(shapes, cluster_of)
    small = services.small_batch_links(store, shapes)
    return {
        "batches": (stats.batches.ids, stats.batches.counts),
        "sweeps": (stats.sweeps_in.ids, stats.sweeps_in.counts),
        "small": small,
        "entities": services.service_entities(shapes, small),
        "hot": services.hot_change_links(shapes, cluster_of, stats),
        "sendall": services.sendall_receivers(shapes, cluster_of),
        # any clusters will do as tags here: the slices must find the same links
        "funders": services.funder_links(shapes, cluster_of, np.unique(cluster_of)[::7]),
        "shapes": tuple(
            np.asarray(getattr(shapes, f))
            for f in ("n_inputs", "n_payees", "spender", "batch", "small_batch", "plain")
        ),
        **_styles(store, shapes, cluster_of, stats),
    }


def _styles(
    store: Store, shapes: services.TxShapes, cluster_of: np.ndarray, stats: services.ServiceStats
) -> dict[str, object]:
    """Wallet styles of the clusters that pay payouts of 3+ payees (those that pay batches
    too show their hot type there, the rest are blind), a group of one to three clusters
    each, and the blind styles with every other group named."""
    from chainsleuth.cluster.learned import read_fingerprints

    clusters = np.unique(np.asarray(shapes.spender)[np.asarray(shapes.small_batch)])
    clusters = clusters[clusters >= 0]
    group = services.ClusterGroups.of(clusters, np.arange(clusters.shape[0]) // 3)
    fingerprint = read_fingerprints(store, 0, store.counts["txs"])
    styles = services.wallet_styles(store, shapes, cluster_of, group, fingerprint)
    named = np.arange(0, group.n_groups, 2)
    blind = services.blind_styles(store, shapes, cluster_of, styles, group, named, fingerprint)
    assert styles.periods is not None  # the simulated chain spans several half-years
    return {"styles": _flat(styles), "blind": _flat(blind)}


def _flat(styles: services.WalletStyles) -> tuple[np.ndarray, ...]:
    """Every array of `styles`, and of its per-period read (`PeriodStyles`) after them."""
    out = [np.asarray(v) for k, v in vars(styles).items() if k != "periods"]
    if styles.periods is not None:
        out += [np.asarray(v) for k, v in vars(styles.periods.styles).items() if k != "periods"]
        out.append(np.array([styles.periods.n_periods, styles.periods.first]))
    return tuple(out)


def _same(a: object, b: object) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def test_slices_give_the_same_services(
    small_world: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = small_world[1]
    whole = _all(data)
    assert whole["batches"][0].shape[0] > 0  # type: ignore[index]
    assert whole["entities"][0].shape[0] > 0  # type: ignore[index]
    hot, blind_hot = whole["styles"][0], whole["blind"][0]  # type: ignore[index]
    assert (hot >= 0).any() and (hot == services.STYLE_UNSEEN).any()
    assert (blind_hot != hot).any()  # some blind named group was read from its payouts
    assert (whole["styles"][3] > 0).any()  # type: ignore[index]  # change seen last
    monkeypatch.setattr(services, "TX_SLICE", 777)
    monkeypatch.setattr(services, "SLICE", 1000)
    sliced = _all(data)
    for key, value in whole.items():
        assert _same(value, sliced[key]), key


def test_lazy_columns_read_like_dense_arrays(small_world: tuple[Path, Path]) -> None:
    data = small_world[1]
    store = Store.open(data)
    cluster_of = np.asarray(Clusters(data).cluster_of)
    shapes = services.tx_shapes(store, cluster_of)
    assert shapes is not None
    n_out = store.counts["outputs"]
    address = np.asarray(store.graph.output_address).astype(np.int64)
    value = np.asarray(store.graph.output_value)
    made = np.searchsorted(np.asarray(store.graph.tx_first_output), np.arange(n_out), "right") - 1
    payable = (address != int(NONE32)) & (value > 0)
    rng = np.random.default_rng(5)
    picks = rng.integers(0, n_out, 500)
    assert np.array_equal(shapes.made_by[:], made)
    assert np.array_equal(shapes.made_by[picks], made[picks])
    assert np.array_equal(shapes.made_by[payable], made[payable])
    assert np.array_equal(shapes.payable[10:2000], payable[10:2000])
    assert np.array_equal(
        shapes.n_payees, np.minimum(np.bincount(made[payable], minlength=made[-1] + 1), 255)
    )
    dense_addr = np.where(address == int(NONE32), -1, address)
    dense_cluster = np.where(dense_addr >= 0, cluster_of[np.maximum(dense_addr, 0)], -1)
    assert np.array_equal(OutputIds(store.graph.output_address)[picks], dense_addr[picks])
    lazy = OutputIds(store.graph.output_address, cluster_of)
    assert np.array_equal(lazy[picks], dense_cluster[picks])
    assert np.array_equal(np.asarray(lazy), dense_cluster)
    none_output = int(np.flatnonzero(dense_addr < 0)[0])
    assert lazy[none_output] == -1 and isinstance(lazy[none_output], np.integer)


def test_one_wallet_for_some_txs_equals_all_of_them(small_world: tuple[Path, Path]) -> None:
    data = small_world[1]
    store = Store.open(data)
    cluster_of = np.asarray(Clusters(data).cluster_of)
    every = one_wallet_txs(store, cluster_of)
    assert every.any()
    only = np.random.default_rng(3).random(store.counts["txs"]) < 0.3
    only[np.flatnonzero(every)[:5]] = True
    assert np.array_equal(one_wallet_txs(store, cluster_of, only=only), every & only)


def test_file_backed_shapes_and_flags_equal_the_in_memory_ones(
    small_world: tuple[Path, Path], tmp_path: Path
) -> None:
    """`scratch` moves the per-tx and per-address arrays into files; every value is the same."""
    from chainsleuth.cluster.learned import read_fingerprints
    from chainsleuth.core.scratch import Scratch
    from chainsleuth.trace.engine import address_stops

    data = small_world[1]
    store = Store.open(data)
    cluster_of = np.asarray(Clusters(data).cluster_of)
    n_txs = store.counts["txs"]
    scratch = Scratch(tmp_path, min_bytes=0)  # every array in a file, however small
    fields = ("n_inputs", "n_payees", "spender", "batch", "small_batch", "plain", "coinjoin")
    flags, _ = coinjoin_flags(data, n_txs)
    flags_f, _ = coinjoin_flags(data, n_txs, scratch)
    assert np.array_equal(flags, flags_f)
    mem = services.tx_shapes(store, cluster_of, flags)
    filed = services.tx_shapes(store, cluster_of, flags_f, scratch)
    assert mem is not None and filed is not None
    for f in fields:
        a, b = getattr(mem, f), getattr(filed, f)
        assert not b.flags.owndata, f  # a view of its file's mapping
        assert a.dtype == b.dtype and np.array_equal(a, b), f
    assert mem.batch.any() and (mem.spender >= 0).any()
    fp = read_fingerprints(store, 0, n_txs, 1000)
    assert np.array_equal(fp, read_fingerprints(store, 0, n_txs, 1000, scratch))
    assert np.array_equal(
        services.small_batch_links(store, mem)[0],
        services.small_batch_links(store, filed, read_fingerprints(store, 0, n_txs, 1000, scratch))[
            0
        ],
    )
    stops = np.unique(cluster_of)[::5]
    for outside in (False, True):
        a = address_stops(stops, cluster_of, stop_sorted=True, outside=outside).mask
        b = address_stops(stops, cluster_of, True, outside, scratch).mask
        assert a.any() and np.array_equal(a, b)
    only = np.ones(n_txs, np.bool_)
    assert np.array_equal(
        one_wallet_txs(store, cluster_of, only=only),
        one_wallet_txs(store, cluster_of, only=only, scratch=scratch),
    )
    assert scratch.mapped_bytes >= 10 * n_txs
    assert list(tmp_path.iterdir()) == []


def test_hot_links_are_the_same_in_either_spender_width(small_world: tuple[Path, Path]) -> None:
    """`hot_change_links` gathers its links in the spender column's width (int32 below 2^31
    addresses, issue 13 memory) and returns int64 pairs equal to those of a wide column."""
    import dataclasses

    data = small_world[1]
    store = Store.open(data)
    cluster_of = np.asarray(Clusters(data).cluster_of)
    is_coinjoin, _ = coinjoin_flags(data, store.counts["txs"])
    shapes = services.tx_shapes(store, cluster_of, is_coinjoin)
    assert shapes is not None and shapes.spender.dtype == np.int32
    stats = services.service_stats(shapes, cluster_of)
    narrow = services.hot_change_links(shapes, cluster_of, stats)
    wide = dataclasses.replace(shapes, spender=np.asarray(shapes.spender).astype(np.int64))
    expected = services.hot_change_links(wide, cluster_of, stats)
    assert narrow[0].shape[0] > 0
    for got, want in zip(narrow, expected, strict=True):
        assert got.dtype == np.int64 and np.array_equal(got, want)
