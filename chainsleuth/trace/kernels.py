"""Numba kernels of the tracer: one breadth-first walk over a frontier of (output, slice, hops).

`trace_kernel` is called by `chainsleuth.trace.engine` with the store's memory-mapped arrays. A
frontier entry is one traced amount sitting in one output: the output id, the slice of its value
that is traced (offset and amount, satoshis; FIFO needs the offset, the other policies keep
offset 0), its hop count, the entry it came from (a parent pointer, so paths are rebuilt
afterwards without a list per path) and the tx walked through to reach it. The entry arrays are
the queue itself: the walk appends children and advances a head index, so every visited entry
stays available for path rebuilding.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from chainsleuth.store.layout import NONE32

NONE = int(NONE32)  # "no id" in the store's uint32 arrays, as a plain int for numba

POLICY_POISON = 0
POLICY_HAIRCUT = 1
POLICY_FIFO = 2

# Row kinds; the index into engine.KINDS.
KIND_CLUSTER = 0
KIND_COINBASE = 1
KIND_COINJOIN = 2
KIND_MAX_HOPS = 3
KIND_UNSPENT = 4
KIND_LIMIT = 5
KIND_SEED_LIMIT = 6
KIND_WINDOW = 7

STOP_AT_CREATOR = -2  # a row's tx is its output's creating tx (engine fills it in)

FLAG_POISON = 1
FLAG_LOW_CONFIDENCE = 2  # the path walked through a CoinJoin
FLAG_MIX_CHANGE = 4  # the path walked back through a CoinJoin's change to its one input


@njit(cache=True, nogil=True)
def _grow(a, n):
    out = np.empty(max(2 * a.shape[0], n), a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True, inline="always")
def _share(amount, part, total):
    """round(amount * part / total) without int64 overflow (float64: exact to 2^53 sat)."""
    if total <= 0:
        return np.int64(0)
    return np.int64(np.rint(np.float64(amount) * (np.float64(part) / np.float64(total))))


#: Frontier entries handled per block of a level: each block is sorted by output id so the
#: walk reads the store's arrays in order (about 60 B of scratch per entry, 16 MB a block).
BLOCK = 1 << 18
_INDEX_BITS = 31  # a sort key is (output id << 31) | index in the block (output ids < 2^32)
_RADIX_BITS = 11  # bits of the output id sorted per pass of the radix sort (3 passes at 2^32)
# pass 1's record per entry of a block (int64 columns; 8 of them: one 64 B row)
_REC = 8
_R_KIND = 0
_R_STOP_TX = 1
_R_TX = 2
_R_FAN = 3
_R_OFF = 4
_R_TOTAL = 5
_R_POS = 6
# backward: >= 0 the input a CoinJoin's change is linked to (its only child); _LINK_NONE; or
# _LINK_COINJOIN: the tx is a CoinJoin walked through (walk_coinjoins), read in pass 2's flags
_R_LINK = 7
_LINK_NONE = -1
_LINK_COINJOIN = -2


_AHEAD = 32  # entries: how far ahead the walk prefetches (16 and 8 measured slower)
_WORK_KEYS = 4  # int64 scratch per entry of a block: sort key, sort buffer, tx, address
_WORK_CHILDREN = 4  # int64 scratch per child: output id, value, sort key, sort buffer


def empty_work():
    """Empty work arrays for `trace_kernel` (it grows the first three, its scratch, and returns
    them), then empty entry and row arrays (`empty_entries`)."""
    return (
        np.empty(0, np.int64),
        np.empty((0, _REC), np.int64),
        np.empty(0, np.int64),
        *empty_entries(0),
    )


def empty_entries(cap: int) -> tuple[np.ndarray, ...]:
    """Unwritten entry and row arrays of room `cap` for `trace_kernel` (output, offset, amount,
    parent, tx, seed, hops, flags; row entry, kind, tx): np.empty, so no page is touched until
    the walk writes it. The walk writes into them when they have its room (else it makes its
    own) and returns views of them, so a caller that hands the same arrays to its next walk,
    once nothing views them, writes pages already faulted in (`engine.pooled_entries`)."""
    return (
        np.empty(cap, np.int64),
        np.empty(cap, np.int64),
        np.empty(cap, np.int64),
        np.empty(cap, np.int64),
        np.empty(cap, np.int64),
        np.empty(cap, np.int32),
        np.empty(cap, np.int32),
        np.empty(cap, np.uint8),
        np.empty(cap, np.int64),
        np.empty(cap, np.uint8),
        np.empty(cap, np.int64),
    )


def entry_room(n_seeds: int, max_entries: int) -> int:
    """The entry (and row) room a walk of `n_seeds` starts with (`trace_kernel`)."""
    return max(16, min(_CAP_PER_SEED * n_seeds, max_entries + 16))


#: Entries (and rows) a walk has room for per seed before its arrays grow. Only written pages
#: are faulted in, so a larger room costs address space, not memory; the walk returns views of
#: its arrays (no copy: the pages past the last entry were never touched).
_CAP_PER_SEED = 16


@intrinsic
def _prefetch(typingctx, array, index):
    """A hint to bring array[index]'s cache line in (llvm.prefetch, read, high locality): no
    load, no fault, no bounds check, nothing returned."""
    if not isinstance(array, types.Array):
        return None
    sig = types.void(array, types.intp)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic(
            "llvm.prefetch", [i8p], ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        )
        ptr = builder.bitcast(builder.gep(data, [args[1]]), i8p)
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def _sort_keys(keys, tmp, count, m, top):
    """keys[:m] sorted by their output id (the bits above _INDEX_BITS; the largest is `top`),
    stably: a least-significant-digit radix sort, _RADIX_BITS per pass, ping-ponging between
    `keys` and `tmp` (both overwritten). Returns the one holding the result. About 6 ns a key
    where numba's quicksort took 60-70 (2^16-2^18 keys, 23-bit output ids)."""
    bits = 0
    while (np.int64(1) << bits) <= top:
        bits += 1
    passes = (bits + _RADIX_BITS - 1) // _RADIX_BITS
    if passes == 0:
        return keys
    width = (bits + passes - 1) // passes
    digit_mask = (np.int64(1) << width) - 1
    src = keys
    dst = tmp
    for p in range(passes):
        shift = _INDEX_BITS + p * width
        for d in range(digit_mask + 1):
            count[d] = 0
        for i in range(m):
            count[(src[i] >> shift) & digit_mask] += 1
        total = np.int64(0)
        for d in range(digit_mask + 1):
            c = count[d]
            count[d] = total
            total += c
        for i in range(m):
            key = src[i]
            d = (key >> shift) & digit_mask
            dst[count[d]] = key
            count[d] += 1
        src, dst = dst, src
    return src


@njit(cache=True, nogil=True)
def _gather(output_value, s_child, s_value, n_s, keys, tmp, count):
    """s_value[j] = output_value[s_child[j]] for j < n_s, read in ascending output id: the
    (child << 31 | j) keys radix-sorted, then one pass in that order (the array's pages and
    lines in order, where reading in j order jumps across the whole array per child)."""
    if n_s >= np.int64(1) << _INDEX_BITS:  # j would not fit the key: read in place
        for j in range(n_s):
            s_value[j] = output_value[s_child[j]]
        return
    top = np.int64(0)
    for j in range(n_s):
        c = s_child[j]
        keys[j] = (c << _INDEX_BITS) | j
        top = max(top, c)
    order = _sort_keys(keys, tmp, count, n_s, top)
    index_mask = (np.int64(1) << _INDEX_BITS) - 1
    for q in range(n_s):
        if q + _AHEAD < n_s:  # the lines a sparse level's children share are few: fetch ahead
            _prefetch(output_value, order[q + _AHEAD] >> _INDEX_BITS)
        key = order[q]
        s_value[key & index_mask] = output_value[key >> _INDEX_BITS]


#: Outputs per step of the creating-tx fence (`creator_fence`): at least 2^5 = 32 (0.125 B per
#: output), more where that would pass FENCE_MAX_BYTES (`fence_shift`).
FENCE_SHIFT = 5
FENCE_MAX_BYTES = 64 << 20


def fence_shift(n_outputs: int) -> int:
    """The fence's step for a chain of `n_outputs`: 2^5 outputs, or the smallest power of two
    that keeps the fence within FENCE_MAX_BYTES (mainnet, 3.1 G outputs: 2^8, 48 MB)."""
    shift = FENCE_SHIFT
    while (n_outputs >> shift) * 4 > FENCE_MAX_BYTES:
        shift += 1
    return shift


@njit(cache=True, nogil=True)
def creator_fence(tx_first_output, n_outputs, shift):
    """The creating tx of every 2^shift-th output: fence[j] = the largest t with
    tx_first_output[t] <= j << shift, for j up to one past the last output's step (uint32, 4 B
    per 2^shift outputs). The creating tx of output o then lies in [fence[o >> shift],
    fence[(o >> shift) + 1]]: within 2^shift txs (every tx has an output), a line or two of
    `tx_first_output`, found without the previous entry's answer (`creators_of`). One pass
    over `tx_first_output`. shift 0 is the full output -> tx map."""
    n_txs = tx_first_output.shape[0]
    n_f = ((max(n_outputs, 1) - 1) >> shift) + 2
    fence = np.empty(n_f, np.uint32)
    t = 0
    for j in range(n_f):
        o = np.int64(j) << shift
        while t + 1 < n_txs and tx_first_output[t + 1] <= o:
            t += 1
        fence[j] = t
    return fence


@njit(cache=True, nogil=True)
def creators_of(tx_first_output, fence, shift, outputs):
    """The creating tx of each of `outputs` (int64; `searchsorted(tx_first_output, o, "right")
    - 1`) through `creator_fence`: the count of the fenced txs' first outputs <= o, with no
    branch per step and no dependence on another output's answer. The trace kernel writes
    the same loop out (a call passing arrays costs numba reference counts)."""
    out = np.empty(outputs.shape[0], np.int64)
    for q in range(outputs.shape[0]):
        o = outputs[q]
        j = o >> shift
        lo = np.int64(fence[j])
        hi = np.int64(fence[j + 1])
        t = lo
        for u in range(lo + 1, hi + 1):
            t += tx_first_output[u] <= o
        out[q] = t
    return out


@njit(cache=True, nogil=True, inline="always")
def _pays_stop(output, output_address, cluster_of, stop_cluster, n_cluster_of):
    """Whether `output` pays an address of a stop cluster (an address beyond `cluster_of`,
    ingested after the clustering, is its own cluster): the kernel's stop check, for one."""
    a = np.int64(output_address[output])
    if a == NONE:
        return False
    c = np.int64(cluster_of[a]) if a < n_cluster_of else a
    return 0 <= c < stop_cluster.shape[0] and stop_cluster[c]


@njit(cache=True, nogil=True)
def trace_kernel(
    backward,
    policy,
    seeds,
    seed_amounts,
    max_hops,
    seed_min_amount,
    max_entries,
    max_entries_per_seed,
    walk_coinjoins,
    tx_first_input,
    tx_first_output,
    input_spent_output,
    output_value,
    output_address,
    output_spent_by_tx,
    stop_cluster,
    cluster_of,
    is_coinjoin,
    tx_height,
    min_height,
    max_height,
    fence,
    fence_shift,
    link_output,
    link_input,
    out_row,
    in_value,
    work_keys,
    work_rec,
    work_children,
    given_output,
    given_offset,
    given_amount,
    given_parent,
    given_tx,
    given_seed,
    given_hops,
    given_flags,
    given_r_entry,
    given_r_kind,
    given_r_tx,
    block_entries=BLOCK,
):
    """Walk from `seeds` and return (entry arrays..., row arrays..., dropped, work arrays...); see
    the module docstring. The entry and row arrays are views of larger ones (not copied).

    fence, fence_shift: `creator_fence(tx_first_output, n_outputs, fence_shift)` (backward;
    forward reads none). link_output, link_input: a CoinJoin's change outputs (sorted) and the
    one input each was paid from (`trace.mix_change`): backward, an entry in such an output
    walks on through that input alone (FLAG_MIX_CHANGE) where the CoinJoin would stop it;
    empty arrays link nothing. work_keys, work_rec, work_children: scratch (`empty_work()`, or the
    work arrays a previous call returned), returned grown when a block needed more.

    stop_cluster: bool per cluster id (empty: no stop clusters); cluster_of: cluster id per
    address id. is_coinjoin: bool per tx. output_spent_by_tx: uint32 per output, NONE or >=
    n_txs when unspent. seed_min_amount: per seed, the smallest amount followed (smaller shares
    are dropped and summed in `dropped`). max_entries caps the whole walk (kind LIMIT),
    max_entries_per_seed each seed's part of it (kind SEED_LIMIT), so one exploding seed cannot
    starve the others. A tx outside [min_height, max_height] (tx_height per tx) is not walked
    through (kind WINDOW): backward, value that was already there before the window; forward,
    value still held at its end.

    The frontier is a FIFO queue, so it is walked level by level (hop by hop) in blocks of
    `block_entries` entries (BLOCK; the tests make it small). Each block is read in two passes: (1) in ascending output id, where each
    entry's tx, stop check and inputs (or outputs) are looked up and copied to scratch, so the
    memory-mapped arrays are read in order (the creating tx is found through `fence`, the
    `creator_fence` at `fence_shift`); (2) in queue order, where the limits are applied and the children appended exactly as
    a one-entry-at-a-time walk would (same entries, rows and order: the limits depend on it).
    """
    n_txs = tx_first_output.shape[0]
    n_inputs = input_spent_output.shape[0]
    n_outputs = output_value.shape[0]
    # Room for _CAP_PER_SEED entries a seed, and as many rows, from the start: pages never
    # written are never faulted in, so the room costs address space only, where growing by
    # doubling wrote (and faulted) every entry again in a new array at each step.
    # The given arrays (`empty_entries`) are written when they have the room, so pages a
    # previous walk faulted in are written again instead of new ones faulted in and zeroed.
    cap = max(16, min(_CAP_PER_SEED * seeds.shape[0], max_entries + 16))
    given = given_output.shape[0] >= cap
    e_output = given_output if given else np.empty(cap, np.int64)
    fifo = policy == POLICY_FIFO
    # the slice's offset: FIFO's only
    e_offset = given_offset if given and fifo else np.empty(cap if fifo else 1, np.int64)
    e_amount = given_amount if given else np.empty(cap, np.int64)
    e_parent = given_parent if given else np.empty(cap, np.int64)
    e_tx = given_tx if given else np.empty(cap, np.int64)
    e_seed = given_seed if given else np.empty(cap, np.int32)
    e_hops = given_hops if given else np.empty(cap, np.int32)
    e_flags = given_flags if given else np.empty(cap, np.uint8)
    n = 0
    per_seed = np.zeros(seeds.shape[0], np.int64)
    dropped = np.zeros(seeds.shape[0], np.int64)
    for s in range(seeds.shape[0]):
        e_output[n] = seeds[s]
        if fifo:
            e_offset[n] = 0
        e_amount[n] = seed_amounts[s]
        e_parent[n] = -1
        e_tx[n] = -1
        e_seed[n] = s
        e_hops[n] = 0
        e_flags[n] = 0
        n += 1
    r_entry = given_r_entry if given else np.empty(cap, np.int64)
    r_kind = given_r_kind if given else np.empty(cap, np.uint8)
    r_tx = given_r_tx if given else np.empty(cap, np.int64)
    nr = 0
    check_stop = stop_cluster.shape[0] > 0
    n_links = link_output.shape[0] if backward else 0
    n_stop_cluster = stop_cluster.shape[0]
    n_cluster_of = cluster_of.shape[0]
    # heights are below 2^31: (-1, 2^31), the engine's "no window", reads no tx_height
    window = min_height > 0 or max_height < (1 << 31)
    # per entry of a block (pass 1 -> pass 2): one record row each, so pass 1's writes (in
    # output order) and pass 2's reads (in queue order) touch one cache line per entry
    # The scratch comes from the caller's work arrays (`empty_work`; the engine keeps them per
    # thread from one call to the next, so a walk in many chunks faults its scratch pages in
    # once, not once a chunk) and is returned, grown when a block needed more.
    block = min(block_entries, max(n, 1))
    count = np.empty(1 << _RADIX_BITS, np.int64)
    if work_rec.shape[0] < block:
        work_keys = np.empty(_WORK_KEYS * block, np.int64)
        work_rec = np.empty((block, _REC), np.int64)
    room = work_rec.shape[0]
    # per entry of a block: its sort key (and the sort's buffer), and in ascending output id
    # its tx and its address (then its stop flag, 0 or 1, in the same slot)
    keys = work_keys[:room]
    keys_tmp = work_keys[room : 2 * room]
    p_tx = work_keys[2 * room : 3 * room]
    p_addr = work_keys[3 * room : 4 * room]
    rec = work_rec
    # children of a block's expanding entries: output id and value, in pass 1's order, and
    # (backward) their sort keys and the sort's buffer
    if work_children.shape[0] < _WORK_CHILDREN * 4 * block:
        work_children = np.empty(_WORK_CHILDREN * 4 * block, np.int64)
    c_room = work_children.shape[0] // _WORK_CHILDREN
    s_child = work_children[:c_room]
    s_value = work_children[c_room : 2 * c_room]
    c_keys = work_children[2 * c_room : 3 * c_room]
    c_tmp = work_children[3 * c_room : 4 * c_room]
    index_mask = (np.int64(1) << _INDEX_BITS) - 1
    use_row = out_row.shape[0] > 0
    use_inval = in_value.shape[0] > 0
    level_lo = 0
    while level_lo < n:
        level_hi = n
        hops = e_hops[level_lo]  # a level is one hop count (the queue is FIFO)
        for b0 in range(level_lo, level_hi, block_entries):
            b1 = min(level_hi, b0 + block_entries)
            m = b1 - b0
            if m > rec.shape[0]:
                work_keys = np.empty(_WORK_KEYS * m, np.int64)
                work_rec = np.empty((m, _REC), np.int64)
                keys = work_keys[:m]
                keys_tmp = work_keys[m : 2 * m]
                p_tx = work_keys[2 * m : 3 * m]
                p_addr = work_keys[3 * m : 4 * m]
                rec = work_rec
            top = np.int64(0)
            for k in range(m):
                o = e_output[b0 + k]
                keys[k] = (o << _INDEX_BITS) | k
                top = max(top, o)
            order = _sort_keys(keys, keys_tmp, count, m, top)
            # pass 1, ascending output id: the reads of the store's arrays. First each
            # entry's tx and stop flag, each in a loop of its own (a short loop over one array
            # keeps many cache misses in flight and its stream in the prefetcher's sight).
            # Written out here, not called: a call passing arrays costs numba an atomic
            # reference count increment and decrement per array and call.
            if backward:
                # the creating tx: the largest t with tx_first_output[t] <= o, counted
                # among the few txs between the fence's two marks around o (`creators_of`,
                # written out): each entry's search stands alone, so the CPU overlaps the
                # misses of many entries (a gallop from the previous answer chained them)
                if use_row:
                    for q in range(m):
                        r = out_row[order[q] >> _INDEX_BITS]
                        p_tx[q] = np.int64(r & 0xFFFFFFFF)
                        p_addr[q] = np.int64(r >> 32)
                else:
                    # and, where the stop check needs it, the address in the same loop: the
                    # entry _AHEAD on has its `tx_first_output` line and its address fetched
                    # while this one is searched (measured on the 2.27 M-tx world, 1M seeds:
                    # with the fetches in the stop and gather loops, 10 % less kernel time;
                    # docs/benchmarks-item6-rounds.md, sixth round)
                    want_addr = hops > 0 and check_stop
                    for q in range(m):
                        if q + _AHEAD < m:
                            oa = order[q + _AHEAD] >> _INDEX_BITS
                            _prefetch(tx_first_output, np.int64(fence[oa >> fence_shift]) + 1)
                            if want_addr:
                                _prefetch(output_address, oa)
                        o = order[q] >> _INDEX_BITS
                        j = o >> fence_shift
                        lo = np.int64(fence[j])
                        hi = np.int64(fence[j + 1])
                        t = lo
                        for u in range(lo + 1, hi + 1):
                            t += tx_first_output[u] <= o
                        p_tx[q] = t
                        if want_addr:
                            p_addr[q] = output_address[o]
            else:
                # the spending tx, or -1 while unspent
                for q in range(m):
                    raw = np.int64(output_spent_by_tx[order[q] >> _INDEX_BITS])
                    p_tx[q] = -1 if (raw == NONE or raw >= n_txs) else raw
            # does the output pay an address of a stop cluster (not checked at the seeds)? An
            # address beyond `cluster_of` (ingested after the clustering) is its own cluster.
            stops_here = hops > 0 and check_stop
            if stops_here:
                if not backward:
                    for q in range(m):
                        p_addr[q] = output_address[order[q] >> _INDEX_BITS]
                for q in range(m):
                    if q + _AHEAD < m:  # the stop flag's line, fetched ahead
                        aa = p_addr[q + _AHEAD]
                        if aa != NONE and aa < n_stop_cluster:
                            _prefetch(stop_cluster, aa)
                    a = p_addr[q]
                    stop = False
                    if a != NONE:
                        c = np.int64(cluster_of[a]) if a < n_cluster_of else a
                        stop = 0 <= c < n_stop_cluster and stop_cluster[c]
                    p_addr[q] = 1 if stop else 0
            # pass 1, ascending output id: the random reads
            # The children are copied to s_child / s_value; when they do not fit, the pass
            # only counts them, the scratch grows (outside the loop: an array reassigned in
            # it costs numba an atomic reference count update per iteration) and it reruns.
            while True:
                fits = True
                n_s = 0
                for q in range(m):
                    # the next entries' tx rows and inputs, fetched ahead (this loop is long:
                    # the CPU does not look far enough ahead to overlap its misses by itself)
                    if q + _AHEAD < m:
                        ta = p_tx[q + _AHEAD]
                        if ta >= 0:
                            _prefetch(tx_first_input, ta)
                            _prefetch(is_coinjoin, ta)
                    if q + _AHEAD // 2 < m:
                        ta = p_tx[q + _AHEAD // 2]
                        if ta >= 0:
                            ia = np.int64(tx_first_input[ta])
                            _prefetch(input_spent_output, ia)
                            if use_inval:
                                _prefetch(in_value, ia)
                    key = order[q]
                    k = key & index_mask
                    o = key >> _INDEX_BITS
                    kind = -1
                    # a row's tx is its output's creating tx unless set below: backward that is t;
                    # forward the caller searches for it (STOP_AT_CREATOR), once for the rows
                    t = p_tx[q]
                    stop_tx = t if backward else STOP_AT_CREATOR
                    stop = stops_here and p_addr[q] != 0
                    rec[k, _R_LINK] = _LINK_NONE
                    if stop:
                        kind = KIND_CLUSTER
                    elif t < 0:
                        kind = KIND_UNSPENT
                    else:
                        i_lo = tx_first_input[t]
                        i_hi = tx_first_input[t + 1] if t + 1 < n_txs else n_inputs
                        if i_hi > i_lo and input_spent_output[i_lo] < 0:
                            if backward:
                                kind = KIND_COINBASE
                        elif is_coinjoin[t] and not walk_coinjoins:
                            # a change linked to its one input walks on through it alone
                            # (binary search, written out: see the module's note on calls)
                            a_lo = np.int64(0)
                            a_hi = np.int64(n_links)
                            while a_lo < a_hi:
                                mid = (a_lo + a_hi) >> 1
                                if link_output[mid] < o:
                                    a_lo = mid + 1
                                else:
                                    a_hi = mid
                            if a_lo < n_links and link_output[a_lo] == o:
                                rec[k, _R_LINK] = link_input[a_lo]
                            else:
                                kind = KIND_COINJOIN
                                stop_tx = t
                        if (
                            kind < 0
                            and window
                            and (tx_height[t] < min_height or tx_height[t] > max_height)
                        ):
                            kind = KIND_WINDOW
                            stop_tx = t
                        if kind < 0 and hops >= max_hops:
                            kind = KIND_MAX_HOPS
                        if kind < 0:
                            # the tx's outputs: forward's children, and FIFO's value line
                            # backward (backward haircut and poison need neither: with the
                            # trace rows nothing else reads this tx's `tx_first_output`)
                            o_lo = np.int64(0)
                            o_hi = np.int64(0)
                            if not backward or policy == POLICY_FIFO:
                                o_lo = tx_first_output[t]
                                o_hi = tx_first_output[t + 1] if t + 1 < n_txs else n_outputs
                            c_lo, c_hi = (i_lo, i_hi) if backward else (o_lo, o_hi)
                            linked = rec[k, _R_LINK] >= 0
                            if linked:
                                c_lo = rec[k, _R_LINK]
                                c_hi = c_lo + 1
                            fan = c_hi - c_lo
                            if n_s + fan > s_child.shape[0]:
                                fits = False
                            if not fits:
                                n_s += fan  # counted only; this pass reruns
                                rec[k, _R_KIND] = kind
                                rec[k, _R_STOP_TX] = stop_tx
                                continue
                            # The traced slice, in the value space of the side it enters the tx
                            # from: haircut needs the input total, FIFO the slice's position.
                            # Backward the children's values (the total) are gathered after
                            # this pass, in output order; forward they are the tx's outputs.
                            total_in = np.int64(0)
                            if backward:
                                for c in range(c_lo, c_hi):
                                    s_child[n_s + c - c_lo] = input_spent_output[c]
                                if use_inval:
                                    for c in range(c_lo, c_hi):
                                        s_value[n_s + c - c_lo] = in_value[c]
                            else:
                                for c in range(c_lo, c_hi):
                                    s_child[n_s + c - c_lo] = c
                                    s_value[n_s + c - c_lo] = output_value[c]
                                if policy == POLICY_HAIRCUT:
                                    for i in range(i_lo, i_hi):
                                        total_in += output_value[input_spent_output[i]]
                            pos = np.int64(0)
                            # a linked change's slice maps onto its one input from its start
                            if policy == POLICY_FIFO and not linked:
                                if backward:
                                    for j in range(o_lo, o):
                                        pos += output_value[j]
                                else:
                                    for i in range(i_lo, i_hi):
                                        if input_spent_output[i] == o:
                                            break
                                        pos += output_value[input_spent_output[i]]
                            rec[k, _R_TX] = t
                            rec[k, _R_FAN] = fan
                            rec[k, _R_OFF] = n_s
                            rec[k, _R_TOTAL] = total_in
                            rec[k, _R_POS] = pos
                            if not linked and is_coinjoin[t]:
                                rec[k, _R_LINK] = _LINK_COINJOIN
                            n_s += fan
                    rec[k, _R_KIND] = kind
                    rec[k, _R_STOP_TX] = stop_tx
                if fits:
                    break
                # the pass reruns and rewrites them all: new room, nothing copied
                c_room = max(n_s, 2 * s_child.shape[0])
                work_children = np.empty(_WORK_CHILDREN * c_room, np.int64)
                s_child = work_children[:c_room]
                s_value = work_children[c_room : 2 * c_room]
                c_keys = work_children[2 * c_room : 3 * c_room]
                c_tmp = work_children[3 * c_room : 4 * c_room]
            if backward and not use_inval:
                # the children's values, read in ascending output id (they are the spent
                # outputs of the block's txs' inputs: scattered over the whole chain)
                _gather(output_value, s_child, s_value, n_s, c_keys, c_tmp, count)
            # pass 2, queue order: limits, shares and the children appended. Room for every
            # child (at most n_s) and row (at most m) is made here, once per block: an array
            # reassigned inside the loop would cost numba a reference count update (an atomic,
            # shared by the threads) per iteration.
            if n + n_s > e_output.shape[0]:
                e_output = _grow(e_output, n + n_s)
                if fifo:
                    e_offset = _grow(e_offset, n + n_s)
                e_amount = _grow(e_amount, n + n_s)
                e_parent = _grow(e_parent, n + n_s)
                e_tx = _grow(e_tx, n + n_s)
                e_seed = _grow(e_seed, n + n_s)
                e_hops = _grow(e_hops, n + n_s)
                e_flags = _grow(e_flags, n + n_s)
            if nr + m > r_entry.shape[0]:
                r_entry = _grow(r_entry, nr + m)
                r_kind = _grow(r_kind, nr + m)
                r_tx = _grow(r_tx, nr + m)
            for k in range(m):
                e = b0 + k
                kind = rec[k, _R_KIND]
                stop_tx = rec[k, _R_STOP_TX]
                if kind < 0:
                    t = rec[k, _R_TX]
                    fan = rec[k, _R_FAN]
                    base = rec[k, _R_OFF]
                    total_in = rec[k, _R_TOTAL]
                    if backward and policy == POLICY_HAIRCUT:
                        for c in range(fan):
                            total_in += s_value[base + c]
                    lo = rec[k, _R_POS] + (e_offset[e] if fifo else 0)
                    hi = lo + e_amount[e]
                    flags = e_flags[e]
                    if policy == POLICY_POISON:
                        flags |= FLAG_POISON
                    if rec[k, _R_LINK] >= 0:
                        flags |= FLAG_MIX_CHANGE
                    elif rec[k, _R_LINK] == _LINK_COINJOIN:
                        flags |= FLAG_LOW_CONFIDENCE
                    owner = e_seed[e]
                    if n + fan > max_entries:
                        kind = KIND_LIMIT
                    elif per_seed[owner] + fan > max_entries_per_seed:
                        kind = KIND_SEED_LIMIT
                    else:
                        cursor = np.int64(0)
                        for c in range(fan):
                            child = s_child[base + c]
                            v = s_value[base + c]
                            off = np.int64(0)
                            if policy == POLICY_FIFO:
                                a = max(lo, cursor)
                                b = min(hi, cursor + v)
                                amt = b - a
                                off = a - cursor
                            elif policy == POLICY_HAIRCUT:
                                amt = _share(e_amount[e], v, total_in)
                            elif backward:
                                amt = e_amount[e]
                            else:
                                amt = v
                            cursor += v
                            if amt <= 0:
                                continue
                            if amt < seed_min_amount[owner] and not (
                                backward
                                and check_stop
                                and _pays_stop(
                                    child, output_address, cluster_of, stop_cluster, n_cluster_of
                                )
                            ):
                                # a share below the floor is dropped, unless it comes from a
                                # stop cluster's coin: a 200-input batch of an exchange splits
                                # a deposit's funding into 200 shares below 1%, and every one
                                # of them would have stopped at that exchange one hop on
                                dropped[owner] += amt
                                continue
                            per_seed[owner] += 1
                            e_output[n] = child
                            if fifo:
                                e_offset[n] = off
                            e_amount[n] = amt
                            e_parent[n] = e
                            e_tx[n] = t
                            e_seed[n] = owner
                            e_hops[n] = hops + 1
                            e_flags[n] = flags
                            n += 1
                if kind >= 0:
                    r_entry[nr] = e
                    r_kind[nr] = kind
                    r_tx[nr] = stop_tx
                    nr += 1
        level_lo = level_hi
    return (
        e_output[:n],
        e_amount[:n],
        e_parent[:n],
        e_tx[:n],
        e_seed[:n],
        e_hops[:n],
        e_flags[:n],
        r_entry[:nr],
        r_kind[:nr],
        r_tx[:nr],
        dropped,
        work_keys,
        work_rec,
        work_children,
    )


@njit(cache=True, nogil=True)
def path_of(entry, e_parent, e_tx):
    """Tx ids walked from the seed to `entry`, in walk order."""
    depth = 0
    e = entry
    while e_parent[e] >= 0:
        depth += 1
        e = e_parent[e]
    out = np.empty(depth, np.int64)
    e = entry
    k = depth - 1
    while e_parent[e] >= 0:
        out[k] = e_tx[e]
        k -= 1
        e = e_parent[e]
    return out
