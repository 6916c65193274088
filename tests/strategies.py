"""Hypothesis strategies: small machines and access traces that make caches conflict often.

Machines respect the structural rules of ``docs/engine.md``: 1-4 cores, 1-3 levels, leading levels
may be split into an instruction and a data cache (both halves share one ``shared_by``), once a
level is unified every level below is, ``shared_by`` divides the core count and is a multiple of
the ``shared_by`` of every level above, the first level is never exclusive, plru
caches have a power-of-two way count; the coherence protocol (msi, mesi, moesi) and its c2c and
upgrade latencies are drawn too. Geometries are tiny
(1-8 sets, not always a power of two; 1-8 ways) so sets fill and evict constantly.

Traces draw lines from a small pool so lines collide, with offsets and sizes that straddle line
boundaries, every access op, and cores within range.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from memsim.machine import INCLUSIONS, PROTOCOLS, REPLACEMENTS, Cache, Coherence, Machine
from memsim.trace.events import NO_OBJECT, OP_IFETCH, OP_READ, OP_RMW, OP_WRITE, Events

LINE_SIZES = (16, 32, 64)
SETS = st.sampled_from((1, 1, 2, 2, 3, 4, 5, 6, 8))
WAYS = st.sampled_from((1, 2, 2, 3, 4, 4, 8))


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def cache_specs(draw, name: str, level: int, shared_by: int, serves: str = "all") -> Cache:
    inclusions = INCLUSIONS if level > 0 else tuple(i for i in INCLUSIONS if i != "exclusive")
    ways = draw(WAYS)
    policies = REPLACEMENTS if ways & (ways - 1) == 0 else tuple(p for p in REPLACEMENTS if p != "plru")
    return Cache(
        name=name,
        sets=draw(SETS),
        ways=ways,
        latency=draw(st.integers(1, 12)) * (level + 1),
        replacement=draw(st.sampled_from(policies)),
        rrpv_bits=draw(st.integers(1, 3)),
        write=draw(st.sampled_from(("back", "back", "through"))),
        write_allocate=draw(st.booleans() | st.just(True)),
        shared_by=shared_by,
        inclusion=draw(st.sampled_from(inclusions)),
        serves=serves,
    )


@st.composite
def machines(draw, max_cores: int = 4, max_levels: int = 3) -> Machine:
    cores = draw(st.integers(1, max_cores))
    n_levels = draw(st.integers(1, max_levels))
    n_split = draw(st.sampled_from([0, 0, 1, 1, 2, n_levels]))
    n_split = min(n_split, n_levels)
    levels = []
    shared_by = 1
    for level in range(n_levels):
        shared_by = draw(st.sampled_from([d for d in divisors(cores) if d % shared_by == 0]))
        if level < n_split:
            levels.append(
                (
                    draw(cache_specs(f"L{level + 1}i", level, shared_by, "instructions")),
                    draw(cache_specs(f"L{level + 1}d", level, shared_by, "data")),
                )
            )
        else:
            levels.append((draw(cache_specs(f"L{level + 1}", level, shared_by)),))
    return Machine(
        name="hypothesis",
        cores=cores,
        line_size=draw(st.sampled_from(LINE_SIZES)),
        levels=tuple(levels),
        memory_latency=draw(st.integers(20, 300)),
        seed=draw(st.integers(0, 2**32 - 1) | st.sampled_from([0, 1, 42])),
        coherence=draw(coherences()),
    )


@st.composite
def coherences(draw) -> Coherence:
    """A protocol and its two costs (0 allowed: a free transfer or upgrade)."""
    return Coherence(
        protocol=draw(st.sampled_from(PROTOCOLS)),
        c2c_latency=draw(st.integers(0, 250)),
        upgrade_latency=draw(st.integers(0, 60)),
    )


OPS = st.sampled_from((OP_READ, OP_READ, OP_READ, OP_WRITE, OP_WRITE, OP_RMW, OP_IFETCH, OP_IFETCH))


@st.composite
def access_events(draw, machine: Machine, max_events: int = 60) -> Events:
    """A trace of accesses for ``machine``: a few lines, reused, straddled and shared by cores."""
    ls = machine.line_size
    n = draw(st.integers(0, max_events))
    pool = draw(st.integers(1, 24))  # distinct lines in play
    base_line = draw(st.sampled_from((0, 0, 0, 1000, 2**34 // ls)))
    sizes = st.sampled_from((0, 1, 1, 2, 4, 4, 8, 8, ls - 1, ls, ls + 1, 2 * ls, 2 * ls + 3)) | st.integers(1, 3 * ls)
    ev = Events.empty(n)
    ev.obj[:] = NO_OBJECT
    for i in range(n):
        line = base_line + draw(st.integers(0, pool - 1))
        offset = draw(st.sampled_from((0, ls - 1, ls - 2, ls // 2)) | st.integers(0, ls - 1))
        ev.op[i] = draw(OPS)
        ev.core[i] = draw(st.integers(0, machine.cores - 1))
        ev.addr[i] = line * ls + offset
        ev.size[i] = draw(sizes)
    return ev


@st.composite
def machine_and_events(draw, max_cores: int = 4, max_levels: int = 3, max_events: int = 60):
    machine = draw(machines(max_cores=max_cores, max_levels=max_levels))
    events = draw(access_events(machine, max_events=max_events))
    return machine, events


def chunks(events: Events, size: int) -> list[Events]:
    """Split a trace into consecutive chunks of ``size`` rows (the last may be shorter)."""
    return [events.take(np.arange(i, min(i + size, len(events)))) for i in range(0, len(events), size)]
