"""The replay kernel: every access of a chunk of the event table through the cache hierarchy.

The rules are docs/engine.md, step by step; the pure-Python reference model in the tests follows
the same page independently. All state is flat arrays built by memsim.models.hierarchy; the
kernel and its callees live in this one module so Numba's cache stays consistent.

Layout. A cache instance owns ``ways`` consecutive words of ``slots`` per set. A word is
``line << STATE_BITS | state`` (-1 = invalid). For LRU and FIFO the order of the words inside a
set *is* the replacement state: valid lines first, newest (LRU: most recently used) at the
front, invalid words at the back, so a lookup stops at the first invalid word and the victim is
always the last word. The other policies keep a line in its way and hold their state aside
(``plru`` bits per set, ``rrpv`` per slot, a SplitMix64 state per instance in ``rng``).

Everything is compiled without Numba's reference counting (``_nrt=False``): nothing here
allocates, and counting references on each array handed between helpers cost more than the
simulation itself. Small hot helpers are inlined for the same reason, by LLVM (``jit_inline``:
each is typed and compiled once; Numba's own inliner re-types a callee at every call site and
took twice the compile time). Only the loop and the piece are inlined by Numba (``jit_pruned``):
their callers pass constants that turn code off, and Numba prunes those branches before typing.
"""
from __future__ import annotations

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from memsim.engine.counters import (
    C_BACK_INVALIDATIONS,
    C_EVICTIONS,
    C_FILLS,
    C_HITS,
    C_MISSES,
    C_WRITEBACKS,
    C_WRITEBACKS_IN,
    H_C2C,
    H_FALSE_SHARING,
    H_FALSE_SHARING_AT_MISS,
    H_INVALIDATIONS,
    H_TRUE_SHARING,
    H_TRUE_SHARING_AT_MISS,
    H_UPGRADES,
    HM_HITS,
    HM_MISSES,
    MC_CAPACITY,
    MC_COHERENCE,
    MC_COLD,
    MC_CONFLICT,
    S_C2C,
    S_FALSE,
    S_FALSE_AT_MISS,
    S_LINE,
    S_STALL,
    S_TRUE,
    S_TRUE_AT_MISS,
    SC_READS,
    SC_WRITES,
    SHARING_COLUMNS,
    K_ACCESSES,
    K_CYCLES,
    M_READS,
    M_WRITES,
)
from memsim.engine.tables import (
    EMPTY,
    HIST_BITS,
    HIST_ROW,
    I_CHECK,
    I_ERROR,
    I_ERROR_LINE,
    I_HIST_LIMIT,
    I_HIST_MASK,
    I_HIST_PAGES,
    I_HIST_USED,
    I_HIST_WIDTH,
    I_MASK_WORDS,
    I_PUBLIC_WIDTH,
    I_ROWS_USED,
    I_SHADOW,
    MODE_LOST,
    MODE_OPEN_TRUE,
    MODE_OPEN_UNDECIDED,
    NO_ROW,
    PAGE_MASK,
    PAGE_SHIFT,
)
from memsim.models.hierarchy import (
    F_CORE_COUNT,
    F_FIRST_CORE,
    F_INCLUSION,
    N_FIELDS,
    F_LATENCY,
    F_NEXT,
    F_PARTICIPANT,
    F_POLICY,
    F_RRPV_MAX,
    F_SET_BASE,
    F_SET_MASK,
    F_SETS,
    F_SHADOW_BASE,
    F_SHADOW_MASK,
    F_SLOT_BASE,
    F_SPEC,
    F_WAYS,
    F_WRITE_ALLOCATE,
    F_WRITE_BACK,
    K_OTHERS,
    KIND_DATA,
    KIND_INSTRUCTIONS,
    L_ABOVE_END,
    L_ABOVE_START,
    L_INVALIDATE_END,
    L_INVALIDATE_START,
    UNTRACKED,
)
from memsim.machine import PROTOCOLS
from memsim.numba_cache import share_scopes_when_inlining
from memsim.trace.events import OP_IFETCH, OP_READ, OP_RMW, OP_WRITE

share_scopes_when_inlining()  # before anything here compiles

LRU, PLRU, FIFO, RANDOM, SRRIP = 0, 1, 2, 3, 4
NINE, INCLUSIVE, EXCLUSIVE = 0, 1, 2
CLEAN, DIRTY = 0, 1
EXCLUSIVE_COPY = 2  # state bit of a tracked copy: no other participant holds the line (docs/coherence.md)
WATCH = 4  # state bit of a first-level copy of a line with a sharing row: its hits must be recorded
COPY_BITS = DIRTY | EXCLUSIVE_COPY  # what a copy carries when it moves between caches
MSI, MESI, MOESI = (PROTOCOLS.index(name) for name in ("msi", "mesi", "moesi"))  # codes: index in PROTOCOLS
STATE_BITS = 4  # dirty and exclusive bits, and room to spare
STATE_MASK = (1 << STATE_BITS) - 1
INVALID = -1

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
HASH_MULTIPLIER = 0x9E3779B97F4A7C15 - (1 << 64)  # the same constant as an int64
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)

PREFETCH_AHEAD = 8  # events; measured best on the random-access benchmark (4..32 all help)

# forceinline=False said outright: a callee compiled while Numba compiles an inlined function
# would otherwise inherit its forceinline, and the rare paths must stay calls (less code in the loop).
# Only the entry points (jit_entry) are called from Python: the others get no Python wrapper, which
# Numba would otherwise build for each of them (about 5 % of the first run's compile time).
jit = njit(cache=True, _nrt=False, error_model="numpy", forceinline=False, no_cpython_wrapper=True)
jit_inline = njit(cache=True, _nrt=False, error_model="numpy", forceinline=True, no_cpython_wrapper=True)
jit_pruned = njit(cache=True, _nrt=False, error_model="numpy", inline="always")
jit_entry = njit(cache=True, _nrt=False, error_model="numpy", forceinline=False)

_PREFETCH = "llvm.prefetch.p0" if llvm_binding.llvm_version_info[0] >= 17 else "llvm.prefetch.p0i8"


@intrinsic
def _prefetch(typingctx, array, index):
    """Hint the host CPU to load ``array[index]`` into its caches (a no-op for correctness)."""

    def codegen(context, builder, signature, args):
        ary = context.make_array(array)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array, ary, [args[1]])
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        hint = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), _PREFETCH
        )
        builder.call(hint, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


@intrinsic
def _word(typingctx, array, index):
    """``array[index]`` for an index known to be in range and not negative (no wraparound code:
    this is the innermost loop of every lookup)."""

    def codegen(context, builder, signature, args):
        ary = context.make_array(array)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array, ary, [args[1]], wraparound=False)
        return builder.load(pointer)

    return array.dtype(array, index), codegen


@intrinsic
def _put(typingctx, array, index, value):
    """``array[index] = value`` for an index known to be in range and not negative."""

    def codegen(context, builder, signature, args):
        ary = context.make_array(array)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array, ary, [args[1]], wraparound=False)
        builder.store(context.cast(builder, args[2], signature.args[2], array.dtype), pointer)
        return context.get_dummy_value()

    return types.void(array, index, value), codegen


def _load_field(context, builder, signature, args, field):
    """Code for ``_cfg(args[0], args[1], field)``."""
    cfg, c = args[0], context.cast(builder, args[1], signature.args[1], types.int64)
    ary = context.make_array(signature.args[0])(context, builder, cfg)
    index = builder.add(builder.mul(c, ir.IntType(64)(N_FIELDS)), field)
    return builder.load(cgutils.get_item_pointer(context, builder, signature.args[0], ary, [index], wraparound=False))


@intrinsic
def _cfg(typingctx, cfg, c, field):
    """Field ``field`` (an ``F_*``/``L_*`` column) of instance ``c``: ``cfg`` is the flattened
    ``Hierarchy.config``, read without negative-index handling. An intrinsic, not an inlined
    function: it is used hundreds of times, and each inlined copy costs compile time."""

    def codegen(context, builder, signature, args):
        field = context.cast(builder, args[2], signature.args[2], types.int64)
        return _load_field(context, builder, signature, args, field)

    return cfg.dtype(cfg, c, field), codegen


@intrinsic
def _ordered(typingctx, cfg, c):
    """Whether instance ``c`` keeps its sets in replacement order (LRU, FIFO); an intrinsic like
    ``_cfg``."""

    def codegen(context, builder, signature, args):
        policy = _load_field(context, builder, signature, args, ir.IntType(64)(F_POLICY))
        return builder.or_(builder.icmp_signed("==", policy, policy.type(LRU)),
                           builder.icmp_signed("==", policy, policy.type(FIFO)))

    return types.boolean(cfg, c), codegen


@intrinsic
def _set_base(typingctx, cfg, c, line):
    """First slot of the set of ``line`` in instance ``c``; an intrinsic like ``_cfg``. The set is
    ``line & mask`` for a power-of-two number of sets (no division), else ``line % sets`` as in
    Python (a line of an address at or above 2**63 is negative)."""

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        line_value = context.cast(builder, args[2], signature.args[2], types.int64)
        mask = _load_field(context, builder, signature, args, i64(F_SET_MASK))
        with builder.if_else(builder.icmp_signed(">=", mask, i64(0))) as (power_of_two, other):
            with power_of_two:
                by_mask = builder.and_(line_value, mask)
                from_mask = builder.block
            with other:
                sets = _load_field(context, builder, signature, args, i64(F_SETS))
                remainder = builder.srem(line_value, sets)
                by_division = builder.select(builder.icmp_signed("<", remainder, i64(0)),
                                             builder.add(remainder, sets), remainder)
                from_division = builder.block
        index = builder.phi(i64)
        index.add_incoming(by_mask, from_mask)
        index.add_incoming(by_division, from_division)
        ways = _load_field(context, builder, signature, args, i64(F_WAYS))
        return builder.add(_load_field(context, builder, signature, args, i64(F_SLOT_BASE)), builder.mul(index, ways))

    return types.int64(cfg, c, line), codegen


@jit_inline
def _find(cfg, slots, c, base, line):
    """Slot of ``line`` in the set starting at ``base``, or -1."""
    key = line << STATE_BITS
    ordered = _ordered(cfg, c)
    for slot in range(base, base + _cfg(cfg, c, F_WAYS)):
        word = _word(slots, slot)
        if word & ~STATE_MASK == key:
            return slot
        if word == INVALID and ordered:
            return -1
    return -1


@jit_inline
def _plru_touch(cfg, plru, c, base, slot):
    ways = _cfg(cfg, c, F_WAYS)
    set_index = _cfg(cfg, c, F_SET_BASE) + (base - _cfg(cfg, c, F_SLOT_BASE)) // ways
    bits = plru[set_index]
    node = slot - base + ways
    while node > 1:
        parent = node >> 1
        mask = np.uint64(1) << np.uint64(parent)
        if node & 1:  # came from the right child: the victim is now on the left
            bits &= ~mask
        else:
            bits |= mask
        node = parent
    plru[set_index] = bits


@jit_inline
def _on_hit(cfg, slots, rrpv, plru, c, base, slot):
    """Replacement update on a hit; returns where the line is now."""
    policy = _cfg(cfg, c, F_POLICY)
    if policy == LRU:
        word = slots[slot]
        _shift_down(slots, base, slot)
        slots[base] = word
        return base
    if policy == PLRU:
        _plru_touch(cfg, plru, c, base, slot)
    elif policy == SRRIP:
        rrpv[slot] = 0
    return slot


@intrinsic
def _move(typingctx, array, to, start, count):
    """Copy ``count`` words of ``array`` from ``start`` to ``to``; the ranges may overlap (one
    memmove: shifting a 16-way set word by word cost more than the rest of a lookup)."""

    def codegen(context, builder, signature, args):
        ary = context.make_array(array)(context, builder, args[0])
        target = cgutils.get_item_pointer(context, builder, array, ary, [args[1]], wraparound=False)
        source = cgutils.get_item_pointer(context, builder, array, ary, [args[2]], wraparound=False)
        item_size = context.get_abi_sizeof(context.get_data_type(array.dtype))
        cgutils.raw_memmove(builder, target, source, builder.mul(args[3], args[3].type(item_size)), 1)
        return context.get_dummy_value()

    return types.void(array, to, start, count), codegen


@jit_inline
def _shift_down(slots, base, slot):
    """Move the words of ``base .. slot-1`` one place towards the back, over ``slot``."""
    if slot > base:  # most hits are on the front word already: no call at all
        _move(slots, base + 1, base, slot - base)


@jit_inline
def _remove(cfg, slots, c, base, slot):
    """Invalidate a slot (ordered sets keep their invalid words at the back)."""
    if _ordered(cfg, c):
        last = base + _cfg(cfg, c, F_WAYS) - 1
        _move(slots, slot, slot + 1, last - slot)
        slots[last] = INVALID
    else:
        slots[slot] = INVALID


@jit
def _splitmix_next(rng, c):
    rng[c] += GOLDEN
    z = rng[c]
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


@jit_inline
def _victim(cfg, slots, rrpv, plru, rng, c, base):
    """The slot a new line goes to: an invalid way first, else the policy's choice."""
    ways = _cfg(cfg, c, F_WAYS)
    if _ordered(cfg, c):
        return base + ways - 1
    for slot in range(base, base + ways):
        if slots[slot] == INVALID:
            return slot
    policy = _cfg(cfg, c, F_POLICY)
    if policy == RANDOM:
        return base + np.int64(_splitmix_next(rng, c) % np.uint64(ways))
    if policy == PLRU:
        bits = plru[_cfg(cfg, c, F_SET_BASE) + (base - _cfg(cfg, c, F_SLOT_BASE)) // ways]
        node = 1
        while node < ways:
            node = 2 * node + np.int64((bits >> np.uint64(node)) & np.uint64(1))
        return base + node - ways
    # SRRIP: the first way at the distant RRPV, aging the whole set until one is
    rrpv_max = _cfg(cfg, c, F_RRPV_MAX)
    while True:
        for slot in range(base, base + ways):
            if rrpv[slot] >= rrpv_max:
                return slot
        for slot in range(base, base + ways):
            rrpv[slot] += 1


@jit_inline
def _place(cfg, slots, rrpv, plru, c, base, slot, victim_line, word):
    """Write a new line's word where ``_victim`` chose, after the victim's eviction is done."""
    if _ordered(cfg, c):
        # The eviction cascade may have reordered the set: drop the victim if it is still there,
        # then put the new line at the front; the last word is invalid by then.
        if victim_line >= 0 and slots[slot] >> STATE_BITS != victim_line:
            held = _find(cfg, slots, c, base, victim_line)
            if held >= 0:
                _remove(cfg, slots, c, base, held)
        _shift_down(slots, base, base + _cfg(cfg, c, F_WAYS) - 1)
        slots[base] = word
        return
    slots[slot] = word
    policy = _cfg(cfg, c, F_POLICY)
    if policy == PLRU:
        _plru_touch(cfg, plru, c, base, slot)
    elif policy == SRRIP:
        rrpv[slot] = _cfg(cfg, c, F_RRPV_MAX) - 1


# ---- Line history: miss classes (docs/coherence.md, "Miss classes") -------------------------------

NEVER, HELD, INVALIDATED = 0, 1, 2


@jit_inline
def _bucket(line, mask):
    """Neighbouring lines get neighbouring buckets (8 to a block: a stream of misses walks the
    table in order), and blocks are spread by a multiplicative hash."""
    h = (line >> 3) * HASH_MULTIPLIER
    return (((h ^ (h >> 29)) << 3) | (line & 7)) & mask


@jit_inline
def _page_bucket(history, info, page):
    """The page table bucket (at the front of ``history``) holding ``page``, or the free bucket
    where it would go. The replay loop keeps the table at most half full, so the probe ends."""
    mask = info[I_HIST_MASK]
    b = _bucket(page, mask)
    while True:
        key = _word(history, 2 * b)
        if key == page + 1 or key == EMPTY:
            return b
        b = (b + 1) & mask


@jit_inline
def _history_record(history, info, line):
    """Offset of ``line``'s record in the history. A page seen for the first time is added, all
    zeros: no cache has held any of its lines, none has a sharing row."""
    page = line >> PAGE_SHIFT
    b = _page_bucket(history, info, page)
    if _word(history, 2 * b) == EMPTY:
        history[2 * b] = page + 1
        history[2 * b + 1] = info[I_HIST_USED]
        info[I_HIST_USED] += 1
    return _record(info, _word(history, 2 * b + 1), line)


@jit_inline
def _record(info, page_index, line):
    """Offset of ``line``'s record in the history, its page being page ``page_index``."""
    return info[I_HIST_PAGES] + ((page_index << PAGE_SHIFT) + (line & PAGE_MASK)) * info[I_HIST_WIDTH]


@jit_inline
def _sharing_row(history, at):
    """The sharing row of the line whose history record is at ``at``, or NO_ROW (the record holds
    the row + 1, so that a new page of zeros means no row)."""
    return history[at + HIST_ROW] - 1


@jit_inline
def _history_of(history, at, c):
    word = history[at + HIST_BITS + (c >> 5)]
    bit = c & 31
    if (word >> (32 + bit)) & 1:
        return INVALIDATED
    return HELD if (word >> bit) & 1 else NEVER


@jit_inline
def _mark_held(history, info, c, line, at):
    """Cache ``c`` now holds ``line`` (``at``: its history record, or -1 to look it up)."""
    if at < 0:
        at = _history_record(history, info, line)
    w = at + HIST_BITS + (c >> 5)
    bit = c & 31
    bits = (history[w] | (np.int64(1) << bit)) & ~(np.int64(1) << (32 + bit))
    if bits != history[w]:  # most fills are of lines the cache held before: no store, no dirty host line
        history[w] = bits


@jit_inline
def _others_may_hold(history, at, core_cfg, core):
    """False when no tracked cache outside the core's paths has ever held the line (so none holds
    it now, and the other participants need not be searched); ``at`` -1: not known."""
    if at < 0:
        return True
    for w in range(core_cfg.shape[1] - K_OTHERS):
        if history[at + HIST_BITS + w] & core_cfg[core, K_OTHERS + w]:
            return True
    return False


@jit_inline
def _mark_invalidated(history, at, c):
    history[at + HIST_BITS + (c >> 5)] |= np.int64(1) << (32 + (c & 31))


@jit_entry
def rehash_pages(old, new, old_buckets, new_mask):
    """Enter every page of the page table at the front of ``old`` into the (larger, empty) one at
    the front of ``new``."""
    for b in range(old_buckets):
        key = old[2 * b]
        if key == EMPTY:
            continue
        n = _bucket(key - 1, new_mask)
        while new[2 * n] != EMPTY:
            n = (n + 1) & new_mask
        new[2 * n] = key
        new[2 * n + 1] = old[2 * b + 1]


# ---- Conflict shadows: one fully associative LRU list per cache instance ------------------------
# nodes[n] = (line, newer node, older node); lists[c] = (newest, oldest, count); the hash buckets
# of instance c (F_SHADOW_BASE, F_SHADOW_MASK) map a line to its node. Instance c's nodes are its
# slot numbers, so the shadow never holds more lines than the cache.

@jit
def _shadow_unlink(nodes, lists, c, n):
    newer = nodes[n, 1]
    older = nodes[n, 2]
    if newer >= 0:
        nodes[newer, 2] = older
    else:
        lists[c, 0] = older
    if older >= 0:
        nodes[older, 1] = newer
    else:
        lists[c, 1] = newer


@jit
def _shadow_push(nodes, lists, c, n):
    newest = lists[c, 0]
    nodes[n, 1] = -1
    nodes[n, 2] = newest
    if newest >= 0:
        nodes[newest, 1] = n
    else:
        lists[c, 1] = n
    lists[c, 0] = n


@jit
def _shadow_forget(nodes, buckets, base, mask, n):
    """Remove node ``n`` from the buckets (linear probing: later entries of the run move back)."""
    i = _bucket(nodes[n, 0], mask)
    while buckets[base + i] != n:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        m = buckets[base + j]
        if m < 0:
            break
        home = _bucket(nodes[m, 0], mask)
        if (j > i and (home <= i or home > j)) or (j < i and home <= i and home > j):
            buckets[base + i] = m
            i = j
    buckets[base + i] = -1


@jit
def _shadow_touch(cfg, nodes, lists, buckets, c, line):
    """A lookup of ``line`` at instance ``c``: make it the shadow's newest line. Returns whether
    the shadow held it before."""
    base = _cfg(cfg, c, F_SHADOW_BASE)
    mask = _cfg(cfg, c, F_SHADOW_MASK)
    b = _bucket(line, mask)
    while True:
        n = buckets[base + b]
        if n < 0:
            break
        if nodes[n, 0] == line:
            if lists[c, 0] != n:
                _shadow_unlink(nodes, lists, c, n)
                _shadow_push(nodes, lists, c, n)
            return True
        b = (b + 1) & mask
    if lists[c, 2] < _cfg(cfg, c, F_SETS) * _cfg(cfg, c, F_WAYS):
        n = _cfg(cfg, c, F_SLOT_BASE) + lists[c, 2]
        lists[c, 2] += 1
    else:
        n = lists[c, 1]
        _shadow_unlink(nodes, lists, c, n)
        _shadow_forget(nodes, buckets, base, mask, n)
    nodes[n, 0] = line
    _shadow_push(nodes, lists, c, n)
    b = _bucket(line, mask)
    while buckets[base + b] >= 0:
        b = (b + 1) & mask
    buckets[base + b] = n
    return False


# ---- Sharing rows and Dubois lifetimes (docs/coherence.md, "True and false sharing") -------------

@jit
def _word_bits(k, lo, hi):
    """The bits of mask word ``k`` that bytes ``lo .. hi-1`` of a line cover."""
    a = max(lo - 64 * k, 0)
    b = min(hi - 64 * k, 64)
    if b <= a:
        return np.int64(0)
    if b - a == 64:
        return np.int64(-1)
    return ((np.int64(1) << (b - a)) - 1) << a


@jit
def _add_bytes(sharing, row, col, lo, hi):
    for k in range(lo >> 6, ((hi - 1) >> 6) + 1):
        sharing[row, col + k] |= _word_bits(k, lo, hi)


@jit
def _overlaps(sharing, row, col, lo, hi):
    for k in range(lo >> 6, ((hi - 1) >> 6) + 1):
        if sharing[row, col + k] & _word_bits(k, lo, hi):
            return True
    return False


@jit
def _core_column(info, core):
    """First public column of ``core`` in a sharing row: reads, writes, read mask, write mask."""
    return len(SHARING_COLUMNS) + core * (2 + 2 * info[I_MASK_WORDS])


@jit
def _mode_column(info, core):
    """The core's private Dubois state in a sharing row: mode, then the written-bytes mask."""
    return info[I_PUBLIC_WIDTH] + core * (1 + info[I_MASK_WORDS])


@jit
def _ensure_row(history, info, sharing, at, line):
    """The sharing row of ``line`` (its history record at ``at``), created empty if it has none."""
    row = _sharing_row(history, at)
    if row != NO_ROW:
        return row
    row = info[I_ROWS_USED]
    info[I_ROWS_USED] += 1
    for k in range(sharing.shape[1]):
        sharing[row, k] = 0
    sharing[row, S_LINE] = line
    history[at + HIST_ROW] = row + 1
    return row


@jit
def _end_lifetime(sharing, info, coherence, row, core):
    mode = sharing[row, _mode_column(info, core)]
    if mode == MODE_OPEN_TRUE:
        sharing[row, S_TRUE] += 1
        coherence[H_TRUE_SHARING] += 1
    elif mode == MODE_OPEN_UNDECIDED:
        sharing[row, S_FALSE] += 1
        coherence[H_FALSE_SHARING] += 1


@jit
def _lose_copy(sharing, info, coherence, row, core, lo, hi):
    """Rule 1: ``core`` lost its copy to a write of bytes ``lo .. hi-1`` by another core."""
    _end_lifetime(sharing, info, coherence, row, core)
    col = _mode_column(info, core)
    sharing[row, col] = MODE_LOST
    for k in range(info[I_MASK_WORDS]):
        sharing[row, col + 1 + k] = 0
    _add_bytes(sharing, row, col + 1, lo, hi)


@jit
def _record_write(sharing, info, row, writer, n_cores, lo, hi):
    """Rule 2: the cores that lost their copy and have not missed since see these bytes written."""
    for core in range(n_cores):
        col = _mode_column(info, core)
        if core != writer and sharing[row, col] == MODE_LOST:
            _add_bytes(sharing, row, col + 1, lo, hi)


@jit
def _record_piece(sharing, info, coherence, row, core, lo, hi, reads, writes, coherence_miss, stall, transferred):
    """A piece of ``core`` on a line with a sharing row: its bytes, its Dubois rules 3-4, its stall
    cycles and transfer."""
    col = _core_column(info, core)
    words = info[I_MASK_WORDS]
    if reads:
        sharing[row, col + SC_READS] += 1
        _add_bytes(sharing, row, col + 2, lo, hi)
    if writes:
        sharing[row, col + SC_WRITES] += 1
        _add_bytes(sharing, row, col + 2 + words, lo, hi)
    mode_col = _mode_column(info, core)
    if coherence_miss:
        _end_lifetime(sharing, info, coherence, row, core)
        true_sharing = _overlaps(sharing, row, mode_col + 1, lo, hi)
        if true_sharing:
            sharing[row, S_TRUE_AT_MISS] += 1
            coherence[H_TRUE_SHARING_AT_MISS] += 1
            sharing[row, mode_col] = MODE_OPEN_TRUE
        else:
            sharing[row, S_FALSE_AT_MISS] += 1
            coherence[H_FALSE_SHARING_AT_MISS] += 1
            sharing[row, mode_col] = MODE_OPEN_UNDECIDED
    elif sharing[row, mode_col] == MODE_OPEN_UNDECIDED and _overlaps(sharing, row, mode_col + 1, lo, hi):
        sharing[row, mode_col] = MODE_OPEN_TRUE
    sharing[row, S_STALL] += stall
    if transferred:
        sharing[row, S_C2C] += 1


@jit
def _watch(cfg, slots, path, core, kind, line):
    """Mark the core's first-level copy of a line with a sharing row, so that its hits leave the
    fast path and are recorded (a hit at the first level looks the line up only when marked)."""
    top = path[core, kind, 0]
    slot = _find(cfg, slots, top, _set_base(cfg, top, line), line)
    if slot >= 0:
        slots[slot] |= WATCH


@jit
def _back_invalidate(cfg, slots, counts, links, c, line):
    """Drop ``line`` from every cache above ``c``; returns the dropped copies' state bits, OR-ed."""
    bits = 0
    for k in range(_cfg(cfg, c, L_ABOVE_START), _cfg(cfg, c, L_ABOVE_END)):
        a = links[k, 0]
        base = _set_base(cfg, a, line)
        slot = _find(cfg, slots, a, base, line)
        if slot >= 0:
            bits |= slots[slot] & COPY_BITS
            _remove(cfg, slots, a, base, slot)
            counts[a, C_BACK_INVALIDATIONS] += 1
    return bits


@jit
def _deliver_writeback(cfg, slots, counts, memory, r, line, bits):
    """A write-back or forwarded store arrives at ``r`` (memory if -1) with state ``bits`` (dirty,
    and the exclusive bit an evicted copy carries).

    Returns the instance that must install the line, or -1 when it was absorbed."""
    while r >= 0:
        counts[r, C_WRITEBACKS_IN] += 1
        slot = _find(cfg, slots, r, _set_base(cfg, r, line), line)
        if slot >= 0:
            if _cfg(cfg, r, F_WRITE_BACK):
                slots[slot] |= _kept(cfg, r, bits)
                return -1
        elif _cfg(cfg, r, F_WRITE_BACK) and _cfg(cfg, r, F_WRITE_ALLOCATE) and _cfg(cfg, r, F_INCLUSION) != EXCLUSIVE:
            return r
        r = _cfg(cfg, r, F_NEXT)
    memory[M_WRITES] += 1
    return -1


@jit_inline
def _kept(cfg, c, bits):
    """The state bits cache ``c`` keeps: a cache shared by all cores has no exclusive bit."""
    bits &= COPY_BITS
    if bits & EXCLUSIVE_COPY and _cfg(cfg, c, F_PARTICIPANT) == UNTRACKED:
        return bits & ~EXCLUSIVE_COPY
    return bits


@jit_inline
def _evicts_quietly(cfg, c, victim_word):
    """True when evicting ``victim_word`` from ``c`` changes nothing but ``c`` itself: an empty
    slot, or a clean line that no inclusion rule and no exclusive level below cares about."""
    if victim_word == INVALID:
        return True
    below = _cfg(cfg, c, F_NEXT)
    return ((victim_word & DIRTY) == 0 and _cfg(cfg, c, F_INCLUSION) != INCLUSIVE
            and (below < 0 or _cfg(cfg, below, F_INCLUSION) != EXCLUSIVE))


@jit_inline
def _install(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, history, info, c, line, state, at):
    """Install ``line`` in ``c``. The victim's eviction may install it below, whose victim may go
    further down: a chain, at most one cache per level. Each cache of the chain chooses its victim
    first and is written only after everything below it is done (docs/engine.md); ``chain`` holds
    the pending writes, a row per level: cache, set base, slot, victim line, word. ``at`` is the
    history record of ``line`` when the caller knows it, else -1."""
    n = 0
    while True:
        base = _set_base(cfg, c, line)
        slot = _victim(cfg, slots, rrpv, plru, rng, c, base)
        victim_word = slots[slot]
        victim_line = victim_word >> STATE_BITS if victim_word != INVALID else -1
        word = (line << STATE_BITS) | _kept(cfg, c, state)
        if n == 0 and _evicts_quietly(cfg, c, victim_word):
            # The common case, with no chain: nothing below is touched.
            if victim_word != INVALID:
                counts[c, C_EVICTIONS] += 1
            _place(cfg, slots, rrpv, plru, c, base, slot, victim_line, word)
            _mark_held(history, info, c, line, at)
            return
        chain[n, 0] = c
        chain[n, 1] = base
        chain[n, 2] = slot
        chain[n, 3] = victim_line
        chain[n, 4] = word
        n += 1
        if victim_word == INVALID:
            break
        victim = victim_word >> STATE_BITS
        victim_bits = victim_word & COPY_BITS
        counts[c, C_EVICTIONS] += 1
        if _cfg(cfg, c, F_INCLUSION) == INCLUSIVE:
            victim_bits |= _back_invalidate(cfg, slots, counts, links, c, victim)
        victim_dirty = (victim_bits & DIRTY) != 0
        if victim_dirty:
            counts[c, C_WRITEBACKS] += 1
        r = _cfg(cfg, c, F_NEXT)
        if r < 0:
            if victim_dirty:
                memory[M_WRITES] += 1
            break
        if _cfg(cfg, r, F_INCLUSION) == EXCLUSIVE:
            held = _find(cfg, slots, r, _set_base(cfg, r, victim), victim)
            if held >= 0:
                slots[held] |= _kept(cfg, r, victim_bits)
                break
            counts[r, C_FILLS] += 1
            c, line, state = r, victim, victim_bits
            continue
        if not victim_dirty:
            break
        r = _deliver_writeback(cfg, slots, counts, memory, r, victim, victim_bits)
        if r < 0:
            break
        c, line, state = r, victim, victim_bits
    for k in range(n - 1, -1, -1):
        _place(cfg, slots, rrpv, plru, chain[k, 0], chain[k, 1], chain[k, 2], chain[k, 3], chain[k, 4])
        _mark_held(history, info, chain[k, 0], chain[k, 4] >> STATE_BITS, at if k == 0 else np.int64(-1))


@jit
def _install_out_of_line(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, history, info, c, line, state):
    """``_install`` as a real call, for the rare paths (keeps the hot loop's code small)."""
    _install(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, history, info, c, line, state, np.int64(-1))


@jit_inline
def _allocates(cfg, c, is_write):
    return _cfg(cfg, c, F_INCLUSION) != EXCLUSIVE and (not is_write or _cfg(cfg, c, F_WRITE_ALLOCATE) != 0)


@jit
def _invalidate_others(cfg, slots, coherence, core_cfg, links, history, info, sharing, at, core, line, lo, hi):
    """Write-invalidate: drop every copy in tracked caches that do not serve ``core``; count each
    coherence participant that lost one once (links are grouped by participant). The caches that
    lost a copy remember it, and so do the cores they serve (a sharing row is made for the line
    if it has none). Returns whether a dropped copy was dirty (its owner hands the data over: a
    cache-to-cache transfer), and the line's history record (``at``, found if it was -1 and a copy
    was dropped)."""
    last_counted = -1
    dirty = False
    for k in range(core_cfg[core, L_INVALIDATE_START], core_cfg[core, L_INVALIDATE_END]):
        c = links[k, 0]
        base = _set_base(cfg, c, line)
        slot = _find(cfg, slots, c, base, line)
        if slot >= 0:
            dirty |= (slots[slot] & DIRTY) != 0
            _remove(cfg, slots, c, base, slot)
            if links[k, 1] != last_counted:
                coherence[H_INVALIDATIONS] += 1
                last_counted = links[k, 1]
            if at < 0:
                at = _history_record(history, info, line)
            _mark_invalidated(history, at, c)
            row = _ensure_row(history, info, sharing, at, line)
            first = _cfg(cfg, c, F_FIRST_CORE)
            for loser in range(first, first + _cfg(cfg, c, F_CORE_COUNT)):
                _lose_copy(sharing, info, coherence, row, loser, lo, hi)
    return dirty, at


@jit
def _share(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, history, info, core_cfg, core, served, line,
           protocol):
    """The other participants' side of a read served by ``served`` (-1: memory) outside the
    core's private caches (docs/coherence.md, "Read"): their copies stop being exclusive, and a
    dirty one above ``served`` supplies the data, written back first unless the protocol is MOESI.
    Returns (transferred, alone): whether an owner supplied the data, whether nobody else holds it."""
    transferred = False
    alone = True
    written_back = -1  # the participant whose data went down already
    for k in range(core_cfg[core, L_INVALIDATE_START], core_cfg[core, L_INVALIDATE_END]):
        y = links[k, 0]
        slot = _find(cfg, slots, y, _set_base(cfg, y, line), line)
        if slot < 0:
            continue
        alone = False
        slots[slot] &= ~EXCLUSIVE_COPY
        if slots[slot] & DIRTY and (served < 0 or _leads_to(cfg, y, served)):
            transferred = True
            if protocol != MOESI:
                slots[slot] &= ~DIRTY
                if links[k, 1] != written_back:
                    written_back = links[k, 1]
                    counts[y, C_WRITEBACKS] += 1
                    r = _cfg(cfg, y, F_NEXT)
                    while r >= 0 and _cfg(cfg, r, F_PARTICIPANT) == written_back:
                        r = _cfg(cfg, r, F_NEXT)
                    r = _deliver_writeback(cfg, slots, counts, memory, r, line, np.int64(DIRTY))
                    if r >= 0:
                        _install_out_of_line(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, history,
                                             info, r, line, np.int64(DIRTY))
    return transferred, alone


@jit
def _private_exclusive(cfg, slots, path, core, line):
    """Whether one of the core's private caches (either path) holds the line exclusive."""
    for k in range(2):
        for d in range(path.shape[2]):
            c = path[core, k, d]
            if _cfg(cfg, c, F_PARTICIPANT) != core:
                break
            slot = _find(cfg, slots, c, _set_base(cfg, c, line), line)
            if slot >= 0 and slots[slot] & EXCLUSIVE_COPY:
                return True
    return False


@jit_inline
def _leads_to(cfg, y, x):
    """Whether ``x`` is below ``y`` (on the way from ``y`` to memory)."""
    r = _cfg(cfg, y, F_NEXT)
    while r >= 0 and r != x:
        r = _cfg(cfg, r, F_NEXT)
    return r == x


@jit_pruned
def _piece(cfg, path, core_cfg, links, slots, rrpv, plru, rng, counts, core_level, memory, coherence, chain, tables,
           memory_latency, protocol, c2c_latency, upgrade_latency, core, kind, line, is_write, reads, lo, hi, shared,
           write_through):
    """One line piece of an access (docs/engine.md, "One access"; docs/coherence.md), covering
    bytes ``lo .. hi-1`` of its line; returns its cost in cycles. ``shared`` and ``write_through``
    are constants where it is inlined: some core may have other participants' caches to search;
    some cache may write through. When False, the code for them (and for the sharing rows only the
    first creates) is left out of the compiled kernel."""
    history, info, sharing, cache_classes, core_classes, shadow_nodes, shadow_lists, shadow_buckets = tables
    n_levels = path.shape[2]
    served = n_levels
    at = np.int64(-1)  # the line's history record, looked up at the first miss
    coherence_miss = np.bool_(False)  # not a literal: _record_piece is compiled for one type
    shadow = info[I_SHADOW] != 0
    for d in range(n_levels):
        c = path[core, kind, d]
        spec = _cfg(cfg, c, F_SPEC)
        base = _set_base(cfg, c, line)
        slot = _find(cfg, slots, c, base, line)
        in_shadow = shadow and _shadow_touch(cfg, shadow_nodes, shadow_lists, shadow_buckets, c, line)
        if slot >= 0:
            counts[c, C_HITS] += 1
            core_level[core, spec, HM_HITS] += 1
            if shared and d == 0 and slots[slot] & WATCH:
                at = _history_record(history, info, line)
            slot = _on_hit(cfg, slots, rrpv, plru, c, base, slot)
            served = d
            break
        counts[c, C_MISSES] += 1
        core_level[core, spec, HM_MISSES] += 1
        if at < 0:
            at = _history_record(history, info, line)
        past = _history_of(history, at, c)
        miss_class = MC_COLD if past == NEVER else (
            MC_COHERENCE if past == INVALIDATED else (MC_CONFLICT if in_shadow else MC_CAPACITY))
        cache_classes[c, miss_class] += 1
        core_classes[core, spec, miss_class] += 1
        coherence_miss |= miss_class == MC_COHERENCE
    server = path[core, kind, served] if served < n_levels else -1
    cost = _cfg(cfg, server, F_LATENCY) if server >= 0 else memory_latency
    participant = _cfg(cfg, server, F_PARTICIPANT) if server >= 0 else UNTRACKED
    private = 0 <= participant < path.shape[0]
    has_others = core_cfg[core, L_INVALIDATE_END] > core_cfg[core, L_INVALIDATE_START]
    row_before = _sharing_row(history, at) if shared and at >= 0 else NO_ROW

    exclusive = 0  # the exclusive bit of the core's copies after this piece
    alone = True  # no tracked cache outside the core's paths holds the line
    private_was_exclusive = False  # MSI: the core's private caches held the line exclusive before
    upgraded = transferred = False
    if is_write:
        exclusive = EXCLUSIVE_COPY
        held_exclusive = participant != UNTRACKED and (slots[slot] & EXCLUSIVE_COPY) != 0
        if participant != UNTRACKED and not held_exclusive:
            upgraded = True
            coherence[H_UPGRADES] += 1
            cost = upgrade_latency
        if shared and row_before >= 0:
            _record_write(sharing, info, row_before, core, path.shape[0], lo, hi)
        # an exclusive copy in the core's own caches means nobody else holds the line
        if shared and has_others and not (private and held_exclusive) and _others_may_hold(history, at, core_cfg,
                                                                                            core):
            dirty, at = _invalidate_others(cfg, slots, coherence, core_cfg, links, history, info, sharing, at, core,
                                           line, lo, hi)
            if dirty and not upgraded:
                transferred = True
                coherence[H_C2C] += 1
                cost = c2c_latency
    elif private:
        exclusive = slots[slot] & EXCLUSIVE_COPY
    elif shared and has_others:
        if _others_may_hold(history, at, core_cfg, core):
            transferred, alone = _share(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, history, info,
                                        core_cfg, core, server, line, protocol)
            if transferred:
                coherence[H_C2C] += 1
                cost = c2c_latency
                if protocol != MOESI:
                    # The owner's write-back may have landed on the path above the server (fill from
                    # there), and its cascade may have moved or evicted the server's copy: look again.
                    slot = -1
                    for d in range(min(served + 1, n_levels)):
                        c = path[core, kind, d]
                        base = _set_base(cfg, c, line)
                        slot = _find(cfg, slots, c, base, line)
                        if slot >= 0:
                            served = d
                            break
        if alone and protocol != MSI:
            exclusive = EXCLUSIVE_COPY
        elif alone:
            private_was_exclusive = _private_exclusive(cfg, slots, path, core, line)
    elif protocol != MSI:
        exclusive = EXCLUSIVE_COPY

    carried = CLEAN  # the state a line moving up out of an exclusive level takes with it
    receiver = UNTRACKED  # the participant it moves up into
    if served > 0 and served < n_levels and slot >= 0:
        c = path[core, kind, served]
        if _cfg(cfg, c, F_INCLUSION) == EXCLUSIVE and _allocates(cfg, path[core, kind, served - 1], is_write):
            carried = slots[slot] & COPY_BITS
            receiver = _cfg(cfg, path[core, kind, served - 1], F_PARTICIPANT)
            _remove(cfg, slots, c, base, slot)
    filled = False
    for d in range(served - 1, -1, -1):
        c = path[core, kind, d]
        if _allocates(cfg, c, is_write):
            _install(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, history, info, c, line,
                     (carried if d == served - 1 else CLEAN) | (exclusive if is_write or private else 0), at)
            filled = True
    if served == n_levels and filled:
        memory[M_READS] += 1

    if is_write:
        written = False
        for d in range(n_levels):
            c = path[core, kind, d]
            slot = _find(cfg, slots, c, _set_base(cfg, c, line), line)
            if slot >= 0:
                if write_through and not _cfg(cfg, c, F_WRITE_BACK):
                    r = _deliver_writeback(cfg, slots, counts, memory, _cfg(cfg, c, F_NEXT), line,
                                           np.int64(DIRTY))
                    if r >= 0:
                        _install_out_of_line(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, history,
                                             info, r, line, np.int64(DIRTY))
                else:
                    slots[slot] |= DIRTY
                written = True
                break
        if not written:
            memory[M_WRITES] += 1
    if (is_write or not private) and _cfg(cfg, path[core, kind, 0], F_PARTICIPANT) != UNTRACKED:
        # every tracked copy on the core's two paths takes the piece's exclusive bit (a core whose
        # first level is shared by all cores has no tracked cache at all)
        for k in range(2):
            for d in range(n_levels):
                c = path[core, k, d]
                if _cfg(cfg, c, F_PARTICIPANT) == UNTRACKED:
                    break
                if k != kind and c == path[core, kind, d]:
                    continue  # a unified level: done on the piece's own path
                slot = _find(cfg, slots, c, _set_base(cfg, c, line), line)
                if slot < 0:
                    continue
                bits = exclusive
                own_participant = _cfg(cfg, c, F_PARTICIPANT) == core
                if (not is_write and protocol == MSI and alone and (
                        (private_was_exclusive if own_participant else slots[slot] & EXCLUSIVE_COPY)
                        or (carried & (DIRTY | EXCLUSIVE_COPY) and _cfg(cfg, c, F_PARTICIPANT) == receiver))):
                    # MSI grants no exclusivity on a read, but a participant that had it keeps it, and
                    # a dirty line moving up out of an exclusive level into a lone reader's participant
                    # arrives there as M (docs/coherence.md)
                    bits = EXCLUSIVE_COPY
                slots[slot] = (slots[slot] & ~EXCLUSIVE_COPY) | bits

    if shared and at >= 0:
        if transferred:
            _ensure_row(history, info, sharing, at, line)
        row = _sharing_row(history, at)
        if row >= 0:
            stall = 0
            if coherence_miss or upgraded:
                stall = max(cost - _cfg(cfg, path[core, kind, 0], F_LATENCY), 0)
            _record_piece(sharing, info, coherence, row, core, lo, hi, reads, is_write, coherence_miss, stall,
                          transferred)
            if row_before < 0:  # a new row: every first-level copy must leave the fast path now
                for k in range(path.shape[0]):
                    for path_kind in range(2):  # KIND_DATA, KIND_INSTRUCTIONS
                        _watch(cfg, slots, path, k, path_kind, line)
            else:
                _watch(cfg, slots, path, core, kind, line)
    return cost


# ---- Invariant checks (the debug mode: ``check`` in memsim.engine.replay) -------------------------

@jit
def _invariants_hold(cfg, path, slots, history, info, protocol, line, writer):
    """Whether the protocol invariants hold for ``line`` after a piece (``writer``: the core of a
    write piece, else -1); if not, ``info`` records the first broken one (``INVARIANTS``)."""
    n_instances = cfg.shape[0] // N_FIELDS
    n_cores = path.shape[0]
    all_low, all_high = 0, n_cores  # the cores whose paths hold every tracked copy
    dirty_low, dirty_high = 0, n_cores  # the same for the dirty tracked copies
    any_exclusive = any_dirty = False
    broken = 0
    for c in range(n_instances):
        slot = _find(cfg, slots, c, _set_base(cfg, c, line), line)
        if slot < 0:
            continue
        word = slots[slot]
        at = _history_record(history, info, line)
        if _history_of(history, at, c) != HELD:
            broken = 5
        participant = _cfg(cfg, c, F_PARTICIPANT)
        if participant == UNTRACKED:
            continue
        low = _cfg(cfg, c, F_FIRST_CORE)
        high = low + _cfg(cfg, c, F_CORE_COUNT)
        all_low, all_high = max(all_low, low), min(all_high, high)
        any_exclusive |= (word & EXCLUSIVE_COPY) != 0
        if word & DIRTY:
            any_dirty = True
            dirty_low, dirty_high = max(dirty_low, low), min(dirty_high, high)
        if writer >= 0 and not low <= writer < high:
            broken = 3
        for other in range(c):
            if _cfg(cfg, other, F_PARTICIPANT) != participant:
                continue
            held = _find(cfg, slots, other, _set_base(cfg, other, line), line)
            if held >= 0 and (slots[held] ^ word) & EXCLUSIVE_COPY:
                broken = 2
    if any_exclusive and all_low >= all_high:
        broken = 1
    if any_dirty and protocol != MOESI and dirty_low >= dirty_high:
        broken = 4
    if broken and info[I_ERROR] == 0:
        info[I_ERROR] = broken
        info[I_ERROR_LINE] = line
    return broken == 0


@jit_inline
def _holds(cfg, slots, c, line):
    """Whether instance ``c`` holds ``line``: every way compared, no early exit (no branch to
    mispredict; the compiler can compare several words at once)."""
    key = line << STATE_BITS
    base = _set_base(cfg, c, line)
    found = False
    for slot in range(base, base + _cfg(cfg, c, F_WAYS)):
        found |= (_word(slots, slot) & ~STATE_MASK) == key
    return found


@jit_inline
def _prefetch_sets(cfg, path, slots, history, info, op, core, addr, line_shift, e):
    """The simulated sets a coming access will look up are scattered over the host's memory:
    asking for them a few events early overlaps those host cache misses with useful work."""
    if op[e] > OP_IFETCH:
        return
    line = addr[e] >> line_shift
    if line == addr[e - 1] >> line_shift:  # same line as the access before: already on its way
        return
    kind = KIND_INSTRUCTIONS if op[e] == OP_IFETCH else KIND_DATA
    top = path[core[e], kind, 0]
    if _holds(cfg, slots, top, line):
        return  # it will most likely hit there: fetching the levels below would only crowd the host's caches
    for d in range(1, path.shape[2]):
        c = path[core[e], kind, d]
        base = _set_base(cfg, c, line)
        _prefetch(slots, base)
        _prefetch(slots, base + _cfg(cfg, c, F_WAYS) - 1)
    b = _page_bucket(history, info, line >> PAGE_SHIFT)
    if _word(history, 2 * b) != EMPTY:
        _prefetch(history, _record(info, _word(history, 2 * b + 1), line))


@jit_entry
def replay_chunk(op, core, size, addr, hierarchy, state, counters, chain, tables, params, per_event):
    """Replay one chunk of the event table, for any machine, in the debug mode too (``_replay``)."""
    return _replay(op, core, size, addr, hierarchy, state, counters, chain, tables, params, per_event, True, True,
                   True)


@jit_entry
def replay_chunk_coherent(op, core, size, addr, hierarchy, state, counters, chain, tables, params, per_event):
    """``replay_chunk`` for machines where every cache writes back, outside the debug mode."""
    return _replay(op, core, size, addr, hierarchy, state, counters, chain, tables, params, per_event, True, False,
                   False)


@jit_entry
def replay_chunk_private(op, core, size, addr, hierarchy, state, counters, chain, tables, params, per_event):
    """``replay_chunk`` for machines where no core has other participants' caches to search (one
    core) and every cache writes back, outside the debug mode: a smaller kernel, compiled sooner."""
    return _replay(op, core, size, addr, hierarchy, state, counters, chain, tables, params, per_event, False, False,
                   False)


@jit_pruned
def _replay(op, core, size, addr, hierarchy, state, counters, chain, tables, params, per_event, shared, check,
            write_through):
    """Replay one chunk of the event table. Every argument is a plain array, integer or tuple of
    them; state and counter arrays are updated in place. ``hierarchy`` is (config raveled, path,
    core config, links) of memsim.models.hierarchy; ``state`` (slots, rrpv, plru, rng); ``counters``
    (cache, core-level, memory, coherence, core) of memsim.engine.counters; ``chain`` int64
    scratch space of shape (levels + 1, 5); ``tables`` (history, info, sharing, cache classes, core
    classes, shadow nodes, shadow lists, shadow buckets) of memsim.engine.tables and
    memsim.models.hierarchy; ``params`` (line shift, memory latency, protocol, c2c latency,
    upgrade latency). ``shared``, ``check`` and ``write_through`` are constants of each entry
    point: code they turn off is not compiled into it (``_piece``; the invariant checks).

    Each piece adds at most one history page and one sharing row, and no event has more than
    ``per_event`` pieces: the caller starts the kernel with room for one such event, and the kernel
    stops after an event that leaves less (memsim.engine.tables). Returns how many events it
    replayed: all of them, unless it stopped for room or an invariant check failed (``info[I_ERROR]``
    says which).

    Pieces that hit an LRU/FIFO top-level set of a private (or all-shared) cache and change
    nothing but that set (``_fast_hit``) take a fast path that only counts (not with the conflict
    shadows on, which see every lookup, nor for a line with a sharing row, whose accesses are
    recorded). Those counts, and each core's accesses and cycles, are kept in locals
    while the same core keeps accessing the same top-level cache, and added to the counter arrays
    when that changes (and at the end of the chunk): incrementing the same memory word on every
    event would make each event wait for the previous one's store."""
    cfg, path, core_cfg, links = hierarchy
    slots, rrpv, plru, rng = state
    counts, core_level, memory, coherence, core_counts = counters
    line_shift, memory_latency, protocol, c2c_latency, upgrade_latency = params
    history, info, sharing = tables[0], tables[1], tables[2]
    fast_path = info[I_SHADOW] == 0
    # the core and top-level cache of the current run of events, and its counts (int64, not literals:
    # a callee gets compiled again for each new argument type)
    run_core = run_top = np.int64(-1)
    run_accesses = run_cycles = run_fast_hits = np.int64(0)
    top_ordered = top_lru = top_writable = False
    top_base = top_mask = top_ways = top_latency = 0
    line_size = np.int64(1) << line_shift
    n_events = op.shape[0]
    for e in range(n_events):
        if e + PREFETCH_AHEAD < n_events:
            _prefetch_sets(cfg, path, slots, history, info, op, core, addr, line_shift, e + PREFETCH_AHEAD)
        o = op[e]
        if o != OP_READ and o != OP_WRITE and o != OP_RMW and o != OP_IFETCH:
            continue
        first = addr[e] >> line_shift
        last = (addr[e] + size[e] - 1) >> line_shift
        if size[e] == 0:
            last = first - 1  # touches no line, wherever it points
        c = np.int64(core[e])  # one integer type for every callee: each new one would be compiled again
        kind = KIND_INSTRUCTIONS if o == OP_IFETCH else KIND_DATA
        is_write = o == OP_WRITE or o == OP_RMW
        top = path[c, kind, 0]
        if c != run_core or top != run_top:
            _flush_run(cfg, counts, core_level, core_counts, run_core, run_top, run_accesses, run_cycles,
                       run_fast_hits)
            run_core, run_top = c, top
            run_accesses = run_cycles = run_fast_hits = np.int64(0)
            # a read hit in a group-shared cache may make the group's copy exclusive again: no fast path
            top_ordered = fast_path and _ordered(cfg, top) and _cfg(cfg, top, F_PARTICIPANT) < path.shape[0]
            top_lru = _cfg(cfg, top, F_POLICY) == LRU
            # a write hit on an exclusive copy is local only in a tracked, write-back first level
            top_writable = _cfg(cfg, top, F_PARTICIPANT) >= 0 and _cfg(cfg, top, F_WRITE_BACK) != 0
            top_base = _cfg(cfg, top, F_SLOT_BASE)
            top_mask = _cfg(cfg, top, F_SET_MASK)
            top_ways = _cfg(cfg, top, F_WAYS)
            top_latency = _cfg(cfg, top, F_LATENCY)
        cost = 0
        slow = False
        for line in range(first, last + 1):
            if top_ordered and top_mask >= 0 and _fast_hit(slots, top_base + (line & top_mask) * top_ways, top_ways,
                                                            line, is_write, top_lru, top_writable):
                run_fast_hits += 1
                cost = max(cost, top_latency)
                continue
            start = line << line_shift
            lo = max(addr[e], start) - start
            hi = min(addr[e] + size[e], start + line_size) - start
            slow = True
            piece_cost = _piece(cfg, path, core_cfg, links, slots, rrpv, plru, rng, counts, core_level, memory,
                                coherence, chain, tables, memory_latency, protocol, c2c_latency, upgrade_latency, c,
                                kind, line, is_write, o != OP_WRITE, lo, hi, shared, write_through)
            cost = max(cost, piece_cost)
            if check and info[I_CHECK] and not _invariants_hold(cfg, path, slots, history, info, protocol, line,
                                                     c if is_write else -1):
                run_accesses += 1
                run_cycles += cost
                _flush_run(cfg, counts, core_level, core_counts, run_core, run_top, run_accesses, run_cycles,
                           run_fast_hits)
                return e
        run_accesses += 1
        run_cycles += cost
        if slow and (info[I_HIST_LIMIT] - info[I_HIST_USED] < per_event
                     or sharing.shape[0] - info[I_ROWS_USED] < per_event):
            _flush_run(cfg, counts, core_level, core_counts, run_core, run_top, run_accesses, run_cycles,
                       run_fast_hits)
            return e + 1
    _flush_run(cfg, counts, core_level, core_counts, run_core, run_top, run_accesses, run_cycles, run_fast_hits)
    return n_events


@jit_inline
def _fast_hit(slots, base, ways, line, is_write, lru, writable):
    """Serve a piece that hits an LRU or FIFO first-level set of a private (or all-shared) cache
    and changes nothing but that set: a read, or a write to an exclusive copy of a write-back
    cache (its other copies are exclusive too, nobody else holds the line: the write only marks
    it dirty). Returns False, changing nothing, for anything else: a miss, a write needing the
    protocol, a line with a sharing row (WATCH)."""
    key = line << STATE_BITS
    for slot in range(base, base + ways):
        word = _word(slots, slot)
        if word & ~STATE_MASK == key:
            if word & WATCH or (is_write and not (writable and word & EXCLUSIVE_COPY)):
                return False
            if is_write:
                word |= DIRTY
            if lru:
                _shift_down(slots, base, slot)
                _put(slots, base, word)
            else:
                _put(slots, slot, word)
            return True
        if word == INVALID:
            return False
    return False


@jit_inline
def _flush_run(cfg, counts, core_level, core_counts, core, top, accesses, cycles, fast_hits):
    if core < 0:
        return
    core_counts[core, K_ACCESSES] += accesses
    core_counts[core, K_CYCLES] += cycles
    counts[top, C_HITS] += fast_hits
    core_level[core, _cfg(cfg, top, F_SPEC), HM_HITS] += fast_hits
