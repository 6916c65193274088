"""Differential tests: the jitted engine must match the pure-Python reference model exactly.

Every counter array (per cache instance, per core, per core and level, memory, coherence) is
compared element for element on generated machines and traces, whole and fed in chunks.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memsim.engine.replay import replay_counters
from memsim.machine import Cache, Machine
from memsim.trace.events import NO_OBJECT, OP_IFETCH, OP_READ, OP_RMW, OP_WRITE, Events

from reference import describe_difference, simulate
from strategies import machine_and_events


FIELDS = ("cache", "core", "core_level", "memory", "coherence", "cache_classes", "core_classes", "sharing")
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_same(machine: Machine, events: Events, got, want) -> None:
    for name in FIELDS:
        g, w = getattr(got, name), getattr(want, name)
        if g.shape != w.shape or g.dtype != w.dtype or not np.array_equal(g, w):
            raise AssertionError(
                f"engine and reference differ on {machine}\n"
                f"events (op, core, addr, size): {rows(events)}\n" + describe_difference(machine, got, want)
            )


def rows(events: Events) -> list[tuple[int, int, int, int]]:
    return list(zip(events.op.tolist(), events.core.tolist(), events.addr.tolist(), events.size.tolist()))


@pytest.fixture(scope="module", autouse=True)
def warm_up_the_jit():
    """Compile the kernels once outside the hypothesis examples: the debug mode's, and the ones a
    one-core and a two-core machine get."""
    ev = Events.empty(1)
    ev.obj[:] = NO_OBJECT
    ev.size[:] = 1
    for cores in (1, 2):
        m = Machine(name="warm", cores=cores, line_size=64, levels=((Cache("L1", 1, 1, 1),),), memory_latency=10)
        replay_counters(m, ev)
    replay_counters(m, ev, check=True)


@settings(max_examples=300, **SETTINGS)
@given(machine_and_events())
def test_engine_matches_reference(case):
    """Through the kernel of the debug mode (which checks the invariants after every piece), then
    through the one the machine gets outside it (compiled without what the machine cannot need)."""
    machine, events = case
    want = simulate(machine, events)
    assert_same(machine, events, replay_counters(machine, events, check=True), want)
    assert_same(machine, events, replay_counters(machine, events), want)


@settings(max_examples=120, **SETTINGS)
@given(machine_and_events(), st.data())
def test_chunked_replay_matches_reference(case, data):
    machine, events = case
    chunk_size = data.draw(st.integers(1, max(len(events), 1) + 1), label="chunk_size")
    got = replay_counters(machine, events, chunk_size=chunk_size, check=data.draw(st.booleans(), label="check"))
    assert_same(machine, events, got, simulate(machine, events))


def long_trace(machine: Machine, n: int, lines: int, seed: int) -> Events:
    """A longer random trace (numpy rng) over a few dozen lines, for deeper cache states."""
    rng = np.random.default_rng(seed)
    ls = machine.line_size
    ev = Events.empty(n)
    ev.obj[:] = NO_OBJECT
    ev.op[:] = rng.choice([OP_READ, OP_READ, OP_WRITE, OP_RMW, OP_IFETCH], n)
    ev.core[:] = rng.integers(0, machine.cores, n)
    ev.addr[:] = rng.integers(0, lines, n) * ls + rng.integers(0, ls, n)
    ev.size[:] = rng.choice([0, 1, 4, 8, ls, 2 * ls], n)
    return ev


def C(name, sets, ways, latency, **kw):
    return Cache(name=name, sets=sets, ways=ways, latency=latency, **kw)


LONG_MACHINES = {
    "4 cores, split L1, L2 by pairs, inclusive L3": Machine(
        name="a", cores=4, line_size=32, memory_latency=200, seed=3,
        levels=(
            (C("L1i", 2, 2, 1, serves="instructions", replacement="plru"), C("L1d", 3, 2, 2, serves="data", replacement="lru")),
            (C("L2", 4, 3, 10, shared_by=2, replacement="srrip", rrpv_bits=2),),
            (C("L3", 5, 4, 40, shared_by=4, inclusion="inclusive", replacement="random"),),
        ),
    ),
    "2 cores, write-through L1, exclusive shared L2": Machine(
        name="b", cores=2, line_size=64, memory_latency=150, seed=11,
        levels=(
            (C("L1", 2, 2, 1, write="through", write_allocate=False, replacement="fifo"),),
            (C("L2", 3, 4, 12, shared_by=2, inclusion="exclusive", replacement="lru"),),
        ),
    ),
    "4 cores, inclusive L2 over exclusive L3": Machine(
        name="c", cores=4, line_size=16, memory_latency=100, seed=0,
        levels=(
            (C("L1", 1, 2, 1, replacement="random"),),
            (C("L2", 2, 2, 8, inclusion="inclusive", replacement="plru"),),
            (C("L3", 3, 4, 30, shared_by=4, inclusion="exclusive", replacement="srrip", rrpv_bits=3),),
        ),
    ),
    "4 cores, 4-way plru everywhere, coherence and back-invalidations": Machine(
        name="d", cores=4, line_size=64, memory_latency=120, seed=5,
        levels=(
            (C("L1", 2, 4, 1, replacement="plru"),),
            (C("L2", 3, 4, 9, shared_by=2, inclusion="inclusive", replacement="plru"),),
            (C("L3", 2, 8, 25, shared_by=4, inclusion="inclusive", replacement="plru"),),
        ),
    ),
}


@pytest.mark.parametrize("name", list(LONG_MACHINES))
@pytest.mark.parametrize("chunk_size", [None, 97])
@pytest.mark.parametrize("check", [True, False])
def test_long_traces_match_reference(name, chunk_size, check):
    machine = LONG_MACHINES[name]
    events = long_trace(machine, 3000, lines=60, seed=len(name))
    got = replay_counters(machine, events, chunk_size=chunk_size, check=check)
    assert_same(machine, events, got, simulate(machine, events))


def test_tables_grow_in_the_middle_of_a_chunk():
    """Over 256 history pages of lines (the history's first room) and 256 lines with coherence
    activity (the first sharing rows) in one chunk: the kernel stops, the tables grow, the replay
    goes on."""
    from memsim.engine.replay import Replay
    from memsim.engine.tables import FIRST_HISTORY_PAGES, FIRST_SHARING_ROWS, I_HIST_LIMIT, I_HIST_USED, PAGE_LINES

    machine = Machine(name="big", cores=4, line_size=16, memory_latency=100, levels=(
        (C("L1", 128, 4, 1),), (C("L2", 256, 4, 8, shared_by=2),), (C("L3", 256, 8, 30, shared_by=4),)))
    limit = int(Replay(machine).tables.info[I_HIST_LIMIT])
    assert limit == FIRST_HISTORY_PAGES  # so that the trace below outgrows it
    events = long_trace(machine, 40_000, lines=(limit + 30) * PAGE_LINES, seed=7)
    run = Replay(machine, check=True)
    run.feed(events)
    assert run.tables.info[I_HIST_USED] > limit
    got = run.counters
    assert len(got.sharing) > FIRST_SHARING_ROWS
    assert_same(machine, events, got, simulate(machine, events))


def test_msi_line_moving_up_dirty_is_exclusive_in_the_whole_participant():
    """Under MSI a dirty line moving up out of an exclusive level into a lone reader's private
    caches arrives as M in all of them (reference C6), L1 included. The engine once marked only the
    cache right above the exclusive level; its invariant checks caught it on this trace (an ifetch
    straddling two lines, the first filled into L1 and L2 out of the exclusive L3), where the
    difference did not show in any counter."""
    from dataclasses import replace

    machine = LONG_MACHINES["4 cores, inclusive L2 over exclusive L3"]
    machine = replace(machine, coherence=replace(machine.coherence, protocol="msi"))
    events = long_trace(machine, 40, lines=400, seed=2)
    assert_same(machine, events, replay_counters(machine, events, check=True), simulate(machine, events))
