"""Cachegrind counting (``counting: cachegrind``, docs/cachegrind.md): Valgrind Cachegrind's cache
model, filling the same counter arrays as the main kernel so every report works unchanged.

The rules, from Valgrind 3.19's cachegrind/cg_sim.c and cg_main.c: true LRU sets and nothing else
per line (no dirty bits, no write-backs, no coherence); an access is one lookup per level, the next
level looked up only when this one missed; an access that covers two lines looks both up at each
level and misses once if either missed; a data access longer than a line is cut to one line; a
modify is one read. Memsim counts *accesses* per level here, not pieces.

A set is ``ways`` words of ``slots`` (the instance's slice, as in memsim.models.hierarchy), each the
line number it holds or EMPTY, most recently used first and empty words last: the order is the
LRU state, as in cg_sim.c's tag arrays. Cachegrind starts every tag at 0 and keeps the whole line
number as the tag, so line 0 is present in set 0 of every cache from the start, and its other
zero tags are never looked up before being pushed out: they behave as empty ways. The replay
therefore starts with line 0 at the front of each instance's set 0 and every other word empty.

This module compiles only when a machine uses this counting; like memsim.engine.kernel it is built
without Numba's reference counting (nothing here allocates).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from memsim.engine.counters import C_EVICTIONS, C_HITS, C_MISSES, HM_HITS, HM_MISSES, K_ACCESSES, \
    K_CYCLES, M_READS, Counters
from memsim.errors import UserError
from memsim.machine import cachegrind_misfits, describe_misfit
from memsim.models.hierarchy import F_LATENCY, F_SET_MASK, F_SLOT_BASE, F_SPEC, F_WAYS, KIND_DATA, \
    KIND_INSTRUCTIONS, CacheState, Hierarchy
from memsim.trace.events import OP_IFETCH, OP_READ, OP_RMW, OP_WRITE

EMPTY = -1

jit = njit(cache=True, nogil=True, _nrt=False, error_model="numpy")


@jit
def _to_front(slots, base, slot, line):
    """Make ``line`` the most recently used word of its set, over the word at ``slot``."""
    while slot > base:
        slots[slot] = slots[slot - 1]
        slot -= 1
    slots[base] = line


@jit
def _line_missed(cfg, slots, counts, instance, line):
    """Look one line up in one cache instance (cg_sim.c's set reference); True on a miss."""
    ways = cfg[instance, F_WAYS]
    base = cfg[instance, F_SLOT_BASE] + (line & cfg[instance, F_SET_MASK]) * ways
    for slot in range(base, base + ways):
        word = slots[slot]
        if word == line:
            _to_front(slots, base, slot, line)
            return False
        if word == EMPTY:
            _to_front(slots, base, slot, line)
            return True
    counts[instance, C_EVICTIONS] += 1  # the least recently used line leaves
    _to_front(slots, base, base + ways - 1, line)
    return True


@jit
def replay_cachegrind(op, core, size, addr, cfg, path, slots, counts, core_level, memory, core_counts, line_shift,
                      memory_latency):
    """Replay one chunk of the event table under Cachegrind's rules; every argument is a plain array
    or integer, and state and counters are updated in place. Returns how many events it replayed:
    all of them, unless an access covers more than two lines (Cachegrind stops there; it can only
    be an instruction fetch, data being cut to one line), which is then the event it returns."""
    line_size = np.int64(1) << line_shift
    n_levels = path.shape[2]
    for e in range(op.shape[0]):
        o = op[e]
        if o != OP_READ and o != OP_WRITE and o != OP_RMW and o != OP_IFETCH:
            continue
        c = core[e]
        n_bytes = size[e]
        kind = KIND_INSTRUCTIONS if o == OP_IFETCH else KIND_DATA
        if kind == KIND_DATA and n_bytes > line_size:
            n_bytes = line_size  # cg_main.c cuts large data accesses to the minimum line size
        first = addr[e] >> line_shift
        last = (addr[e] + n_bytes - 1) >> line_shift
        if n_bytes > 0 and last > first + 1:
            return e
        core_counts[c, K_ACCESSES] += 1
        if n_bytes == 0:
            continue
        cost = memory_latency
        served = False
        for level in range(n_levels):
            instance = path[c, kind, level]
            missed = _line_missed(cfg, slots, counts, instance, first)
            if last != first:
                missed = _line_missed(cfg, slots, counts, instance, last) or missed  # both lines, always
            spec = cfg[instance, F_SPEC]
            if not missed:
                counts[instance, C_HITS] += 1
                core_level[c, spec, HM_HITS] += 1
                cost = cfg[instance, F_LATENCY]
                served = True
                break
            counts[instance, C_MISSES] += 1
            core_level[c, spec, HM_MISSES] += 1
        if not served:
            memory[M_READS] += 1
        core_counts[c, K_CYCLES] += cost
    return op.shape[0]


def start(hierarchy: Hierarchy, state: CacheState) -> None:
    """Put line 0 where Cachegrind's zeroed tags put it: first in set 0 of every cache instance."""
    machine = hierarchy.machine
    misfits = cachegrind_misfits(machine)
    if misfits:
        raise ValueError(f"machine {machine.name!r} cannot use counting: cachegrind: "
                         + "; ".join(describe_misfit(machine, m) for m in misfits))
    state.slots[hierarchy.config[:, F_SLOT_BASE]] = 0


def feed(hierarchy: Hierarchy, state: CacheState, counters: Counters, columns: list[np.ndarray],
         first_event: int) -> None:
    """Replay one chunk (contiguous op, core, size and absolute address columns) whose first event
    is ``first_event`` of the trace; a replay starts with ``first_event`` 0."""
    if first_event == 0:
        start(hierarchy, state)
    machine = hierarchy.machine
    done = replay_cachegrind(*columns, hierarchy.config, hierarchy.path, state.slots, counters.cache,
                             counters.core_level, counters.memory, counters.core,
                             machine.line_size.bit_length() - 1, machine.memory_latency)
    if done < len(columns[0]):
        _, _, size, addr = columns
        raise UserError(
            f"event {first_event + done}: an instruction fetch of {int(size[done])} bytes at "
            f"{int(addr[done]):#x} covers more than two {machine.line_size}-byte lines; Cachegrind stops on "
            "such an access (\"item straddles more than two cache sets\"), so counting: cachegrind cannot "
            "replay it"
        )
