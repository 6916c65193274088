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
simulation itself. Small hot helpers are inlined for the same reason.
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
    H_INVALIDATIONS,
    H_UPGRADES,
    HM_HITS,
    HM_MISSES,
    K_ACCESSES,
    K_CYCLES,
    M_READS,
    M_WRITES,
)
from memsim.models.hierarchy import (
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
    F_SLOT_BASE,
    F_SPEC,
    F_WAYS,
    F_WRITE_ALLOCATE,
    F_WRITE_BACK,
    KIND_DATA,
    KIND_INSTRUCTIONS,
    L_ABOVE_END,
    L_ABOVE_START,
    L_INVALIDATE_END,
    L_INVALIDATE_START,
    UNTRACKED,
)
from memsim.machine import PROTOCOLS
from memsim.trace.events import OP_IFETCH, OP_READ, OP_RMW, OP_WRITE

LRU, PLRU, FIFO, RANDOM, SRRIP = 0, 1, 2, 3, 4
NINE, INCLUSIVE, EXCLUSIVE = 0, 1, 2
CLEAN, DIRTY = 0, 1
EXCLUSIVE_COPY = 2  # state bit of a tracked copy: no other participant holds the line (docs/coherence.md)
MSI, MESI, MOESI = (PROTOCOLS.index(name) for name in ("msi", "mesi", "moesi"))  # codes: index in PROTOCOLS
STATE_BITS = 4  # dirty and exclusive bits, and room to spare
STATE_MASK = (1 << STATE_BITS) - 1
INVALID = -1

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)

PREFETCH_AHEAD = 8  # events; measured best on the random-access benchmark (4..32 all help)

jit = njit(cache=True, _nrt=False, error_model="numpy")
jit_inline = njit(cache=True, _nrt=False, error_model="numpy", inline="always")

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


@jit_inline
def _cfg(cfg, c, field):
    """Field ``field`` (an ``F_*``/``L_*`` column) of instance ``c``: ``cfg`` is the flattened
    ``Hierarchy.config``, read without negative-index handling."""
    return _word(cfg, c * N_FIELDS + field)


@jit_inline
def _set_base(cfg, c, line):
    """First slot of the set of ``line`` in instance ``c``."""
    mask = _cfg(cfg, c, F_SET_MASK)
    index = line & mask if mask >= 0 else line % _cfg(cfg, c, F_SETS)  # power-of-two sets spare a division
    return _cfg(cfg, c, F_SLOT_BASE) + index * _cfg(cfg, c, F_WAYS)


@jit_inline
def _ordered(cfg, c):
    policy = _cfg(cfg, c, F_POLICY)
    return policy == LRU or policy == FIFO


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


@jit_inline
def _shift_down(slots, base, slot):
    """Move the words of ``base .. slot-1`` one place towards the back, over ``slot``."""
    while slot > base:
        _put(slots, slot, _word(slots, slot - 1))
        slot -= 1


@jit_inline
def _remove(cfg, slots, c, base, slot):
    """Invalidate a slot (ordered sets keep their invalid words at the back)."""
    if _ordered(cfg, c):
        last = base + _cfg(cfg, c, F_WAYS) - 1
        while slot < last:
            _put(slots, slot, _word(slots, slot + 1))
            slot += 1
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


@jit
def _back_invalidate(cfg, slots, counts, links, c, line):
    """Drop ``line`` from every cache above ``c``; returns the dropped copies' state bits, OR-ed."""
    bits = 0
    for k in range(_cfg(cfg, c, L_ABOVE_START), _cfg(cfg, c, L_ABOVE_END)):
        a = links[k, 0]
        base = _set_base(cfg, a, line)
        slot = _find(cfg, slots, a, base, line)
        if slot >= 0:
            bits |= slots[slot] & STATE_MASK
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
def _install(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, c, line, state):
    """Install ``line`` in ``c``. The victim's eviction may install it below, whose victim may go
    further down: a chain, at most one cache per level. Each cache of the chain chooses its victim
    first and is written only after everything below it is done (docs/engine.md); ``chain`` holds
    the pending writes, a row per level: cache, set base, slot, victim line, word."""
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
        victim_bits = victim_word & STATE_MASK
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


@jit
def _install_out_of_line(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, c, line, state):
    """``_install`` as a real call, for the rare paths (keeps the hot loop's code small)."""
    _install(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, c, line, state)


@jit_inline
def _allocates(cfg, c, is_write):
    return _cfg(cfg, c, F_INCLUSION) != EXCLUSIVE and (not is_write or _cfg(cfg, c, F_WRITE_ALLOCATE) != 0)


@jit
def _invalidate_others(cfg, slots, coherence, core_cfg, links, core, line):
    """Write-invalidate: drop every copy in tracked caches that do not serve ``core``; count each
    coherence participant that lost one once (links are grouped by participant). Returns whether
    a dropped copy was dirty (its owner hands the data over: a cache-to-cache transfer)."""
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
    return dirty


@jit
def _share(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, core_cfg, core, served, line, protocol):
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
                    r = _deliver_writeback(cfg, slots, counts, memory, r, line, DIRTY)
                    if r >= 0:
                        _install_out_of_line(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, r, line,
                                             DIRTY)
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


@jit_inline
def _piece(cfg, path, core_cfg, links, slots, rrpv, plru, rng, counts, core_level, memory, coherence, chain,
           memory_latency, protocol, c2c_latency, upgrade_latency, core, kind, line, is_write):
    """One line piece of an access (docs/engine.md, "One access"; docs/coherence.md); returns
    its cost in cycles."""
    n_levels = path.shape[2]
    served = n_levels
    for d in range(n_levels):
        c = path[core, kind, d]
        spec = _cfg(cfg, c, F_SPEC)
        base = _set_base(cfg, c, line)
        slot = _find(cfg, slots, c, base, line)
        if slot >= 0:
            counts[c, C_HITS] += 1
            core_level[core, spec, HM_HITS] += 1
            slot = _on_hit(cfg, slots, rrpv, plru, c, base, slot)
            served = d
            break
        counts[c, C_MISSES] += 1
        core_level[core, spec, HM_MISSES] += 1
    server = path[core, kind, served] if served < n_levels else -1
    cost = _cfg(cfg, server, F_LATENCY) if server >= 0 else memory_latency
    participant = _cfg(cfg, server, F_PARTICIPANT) if server >= 0 else UNTRACKED
    private = 0 <= participant < path.shape[0]
    has_others = core_cfg[core, L_INVALIDATE_END] > core_cfg[core, L_INVALIDATE_START]

    exclusive = 0  # the exclusive bit of the core's copies after this piece
    alone = True  # no tracked cache outside the core's paths holds the line
    private_was_exclusive = False  # MSI: the core's private caches held the line exclusive before
    if is_write:
        exclusive = EXCLUSIVE_COPY
        if participant != UNTRACKED and not slots[slot] & EXCLUSIVE_COPY:
            coherence[H_UPGRADES] += 1
            cost = upgrade_latency
            if has_others:
                _invalidate_others(cfg, slots, coherence, core_cfg, links, core, line)
        elif has_others and _invalidate_others(cfg, slots, coherence, core_cfg, links, core, line):
            coherence[H_C2C] += 1
            cost = c2c_latency
    elif private:
        exclusive = slots[slot] & EXCLUSIVE_COPY
    elif has_others:
        transferred, alone = _share(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, core_cfg, core, server,
                                    line, protocol)
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
    if served > 0 and served < n_levels and slot >= 0:
        c = path[core, kind, served]
        if _cfg(cfg, c, F_INCLUSION) == EXCLUSIVE and _allocates(cfg, path[core, kind, served - 1], is_write):
            carried = slots[slot] & STATE_MASK
            _remove(cfg, slots, c, base, slot)
    filled = False
    for d in range(served - 1, -1, -1):
        c = path[core, kind, d]
        if _allocates(cfg, c, is_write):
            _install(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, c, line,
                     (carried if d == served - 1 else CLEAN) | (exclusive if is_write or private else 0))
            filled = True
    if served == n_levels and filled:
        memory[M_READS] += 1

    if is_write:
        written = False
        for d in range(n_levels):
            c = path[core, kind, d]
            slot = _find(cfg, slots, c, _set_base(cfg, c, line), line)
            if slot >= 0:
                if _cfg(cfg, c, F_WRITE_BACK):
                    slots[slot] |= DIRTY
                else:
                    r = _deliver_writeback(cfg, slots, counts, memory, _cfg(cfg, c, F_NEXT), line, DIRTY)
                    if r >= 0:
                        _install_out_of_line(cfg, slots, rrpv, plru, rng, counts, memory, links, chain, r, line,
                                             DIRTY)
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
                        or (k == kind and d == served - 1 and carried & (DIRTY | EXCLUSIVE_COPY)))):
                    # MSI grants no exclusivity on a read, but a participant that had it keeps it, and
                    # a dirty line moving up out of an exclusive level to a lone reader arrives as M
                    bits = EXCLUSIVE_COPY
                slots[slot] = (slots[slot] & ~EXCLUSIVE_COPY) | bits
    return cost


@jit_inline
def _prefetch_sets(cfg, path, slots, op, core, addr, line_shift, e):
    """The simulated sets a coming access will look up are scattered over the host's memory:
    asking for them a few events early overlaps those host cache misses with useful work."""
    if op[e] > OP_IFETCH:
        return
    line = addr[e] >> line_shift
    if line == addr[e - 1] >> line_shift:  # same line as the access before: already on its way
        return
    kind = KIND_INSTRUCTIONS if op[e] == OP_IFETCH else KIND_DATA
    for d in range(1, path.shape[2]):
        c = path[core[e], kind, d]
        base = _set_base(cfg, c, line)
        _prefetch(slots, base)
        _prefetch(slots, base + _cfg(cfg, c, F_WAYS) - 1)


@jit
def replay_chunk(op, core, size, addr, cfg, path, core_cfg, links, slots, rrpv, plru, rng, counts, core_level,
                 memory, coherence, core_counts, chain, line_shift, memory_latency, protocol, c2c_latency,
                 upgrade_latency):
    """Replay one chunk of the event table. Every argument is a plain array or integer; state and
    counter arrays are updated in place. ``chain`` is int64 scratch space of shape (levels + 1, 5).

    Reads that find their line at the front of an LRU/FIFO top-level set of a private (or
    all-shared) cache change no state: they take a fast path that only counts. Those counts, and
    each core's accesses and cycles, are kept in locals while the same core keeps accessing the
    same top-level cache, and added to the counter arrays when that changes (and at the end of the
    chunk): incrementing the same memory word on every event would make each event wait for the
    previous one's store."""
    run_core = -1  # the core and top-level cache of the current run of events
    run_top = -1
    run_accesses = 0
    run_cycles = 0
    run_fast_hits = 0
    top_ordered = False
    top_base = top_mask = top_ways = top_latency = 0
    n_events = op.shape[0]
    for e in range(n_events):
        if e + PREFETCH_AHEAD < n_events:
            _prefetch_sets(cfg, path, slots, op, core, addr, line_shift, e + PREFETCH_AHEAD)
        o = op[e]
        if o != OP_READ and o != OP_WRITE and o != OP_RMW and o != OP_IFETCH:
            continue
        c = core[e]
        kind = KIND_INSTRUCTIONS if o == OP_IFETCH else KIND_DATA
        is_write = o == OP_WRITE or o == OP_RMW
        top = path[c, kind, 0]
        if c != run_core or top != run_top:
            _flush_run(cfg, counts, core_level, core_counts, run_core, run_top, run_accesses, run_cycles,
                       run_fast_hits)
            run_core, run_top = c, top
            run_accesses = run_cycles = run_fast_hits = 0
            # a read hit in a group-shared cache may make the group's copy exclusive again: no fast path
            top_ordered = _ordered(cfg, top) and _cfg(cfg, top, F_PARTICIPANT) < path.shape[0]
            top_base = _cfg(cfg, top, F_SLOT_BASE)
            top_mask = _cfg(cfg, top, F_SET_MASK)
            top_ways = _cfg(cfg, top, F_WAYS)
            top_latency = _cfg(cfg, top, F_LATENCY)
        first = addr[e] >> line_shift
        last = (addr[e] + size[e] - 1) >> line_shift
        if size[e] == 0:
            last = first - 1  # touches no line, wherever it points
        cost = 0
        for line in range(first, last + 1):
            if top_ordered and not is_write and top_mask >= 0:
                if _word(slots, top_base + (line & top_mask) * top_ways) >> STATE_BITS == line:
                    run_fast_hits += 1
                    cost = max(cost, top_latency)
                    continue
            piece_cost = _piece(cfg, path, core_cfg, links, slots, rrpv, plru, rng, counts, core_level, memory,
                                coherence, chain, memory_latency, protocol, c2c_latency, upgrade_latency, c, kind,
                                line, is_write)
            cost = max(cost, piece_cost)
        run_accesses += 1
        run_cycles += cost
    _flush_run(cfg, counts, core_level, core_counts, run_core, run_top, run_accesses, run_cycles, run_fast_hits)


@jit_inline
def _flush_run(cfg, counts, core_level, core_counts, core, top, accesses, cycles, fast_hits):
    if core < 0:
        return
    core_counts[core, K_ACCESSES] += accesses
    core_counts[core, K_CYCLES] += cycles
    counts[top, C_HITS] += fast_hits
    core_level[core, _cfg(cfg, top, F_SPEC), HM_HITS] += fast_hits
