"""Hand-computed scenarios that pin the rules of docs/engine.md down on the reference model.

Every expected number below was worked out by hand from the rulebook (the comments walk through
the steps); none was copied from a run of the model.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from memsim.engine.counters import (
    CACHE_COUNTERS,
    H_INVALIDATIONS,
    HM_HITS,
    HM_MISSES,
    K_ACCESSES,
    K_CYCLES,
    M_READS,
    M_WRITES,
)
from memsim.machine import Cache, Coherence, Machine
from memsim.trace.events import OP_ALLOC, OP_FREE, OP_GC, OP_IFETCH, OP_READ, OP_RMW, OP_WRITE

from reference import SplitMix64, make_events, simulate, simulate_with_state
from strategies import machine_and_events

LS = 64


def cache(name, sets=1, ways=2, latency=1, **kw) -> Cache:
    return Cache(name=name, sets=sets, ways=ways, latency=latency, **kw)


def machine(*levels, cores=1, line_size=LS, memory_latency=100, seed=0, coherence=None) -> Machine:
    return Machine(
        name="test",
        cores=cores,
        line_size=line_size,
        levels=tuple(lv if isinstance(lv, tuple) else (lv,) for lv in levels),
        memory_latency=memory_latency,
        seed=seed,
        coherence=coherence or Coherence(),
    )


def run(m: Machine, rows, line_size=LS):
    """Rows are (op, core, line) for one-byte accesses at the start of a line, or
    (op, core, addr, size) for raw accesses."""
    full = [(op, core, rest[0] * line_size, 1) if len(rest) == 1 else (op, core, *rest) for op, core, *rest in rows]
    return simulate_with_state(m, make_events(full))


def stats(counters, k) -> dict[str, int]:
    return {name: int(counters.cache[k, j]) for j, name in enumerate(CACHE_COUNTERS)}


def expect(**kw) -> dict[str, int]:
    out = dict.fromkeys(CACHE_COUNTERS, 0)
    out.update(kw)
    return out


def memory(counters) -> tuple[int, int]:
    return int(counters.memory[M_READS]), int(counters.memory[M_WRITES])


def ways(sim, name, number=0, s=0):
    """Way contents of one set: line number, with a '*' suffix when dirty, or None."""
    out = []
    for item in sim.instance(name, number).ways()[s]:
        out.append(None if item is None else (f"{item[0]}*" if item[1] else item[0]))
    return out


# --- SplitMix64 -----------------------------------------------------------------------------


def test_splitmix64_known_outputs():
    rng = SplitMix64(0)
    assert [rng.next() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def splitmix_stream(seed):
    """An independent SplitMix64 (no shared code with the model) for expected values."""
    state = seed % 2**64
    while True:
        state = (state + 0x9E3779B97F4A7C15) % 2**64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        yield z ^ (z >> 31)


# --- replacement ----------------------------------------------------------------------------

A, B, C, D, E, F, G, H = range(8)

# Fill A B C D into ways 0-3, hit B, A, C, then miss E, then miss F.
VICTIM_ORDER_ROWS = [("read", 0, x) for x in (A, B, C, D, B, A, C, E, F)]


@pytest.mark.parametrize(
    "policy, after",
    [
        # lru stamps A1 B2 C3 D4, hits B5 A6 C7: E evicts D (w3, stamp 4); E8; F evicts B (5)
        ("lru", [A, F, C, E]),
        # fifo stamps only on fill: E evicts A (w0); E5; F evicts B (2)
        ("fifo", [E, F, C, D]),
        # plru: after the touches bits n1=0 n2=1 n3=1 -> left, right -> w1 (B); touching w1 sets
        # n2=0 n1=1 -> right, n3=1 -> w3 (D)
        ("plru", [A, E, C, F]),
        # srrip (2 bits, fill 2): A B C D = 2; hits -> B A C = 0; E: age once -> D=3 -> w3;
        # E=2: age once -> E=3 (A B C = 2) -> w3 again
        ("srrip", [A, B, C, F]),
    ],
)
def test_victim_order_per_policy(policy, after):
    m = machine(cache("L1", ways=4, replacement=policy))
    counters, sim = run(m, VICTIM_ORDER_ROWS)
    assert ways(sim, "L1") == after
    assert stats(counters, 0) == expect(accesses=9, hits=3, misses=6, evictions=2)


def test_random_victims_follow_the_instance_stream_and_draw_only_when_full():
    # 2 cores, private random L1s (instances 0 and 1), shared L2 (instance 2). seed 7.
    seed = 7
    m = machine(
        cache("L1", ways=2, replacement="random"),
        cache("L2", ways=8, shared_by=2, latency=5),
        cores=2,
        seed=seed,
    )
    s0 = splitmix_stream(seed * 1_000_003 + 0)
    s1 = splitmix_stream(seed * 1_000_003 + 1)
    rows = [
        ("read", 1, 0),  # core 1: ways [0, -]   (no draw: a way is invalid)
        ("read", 1, 1),  # [0, 1]
        ("read", 0, 10),  # core 0: [10, -]
        ("read", 0, 11),  # [10, 11]
        ("read", 1, 2),  # core 1 full: draw 1 of stream 1
        ("read", 0, 12),  # core 0 full: draw 1 of stream 0
        ("read", 1, 3),  # draw 2 of stream 1
    ]
    _, sim = run(m, rows)

    core1 = [0, 1]
    core1[next(s1) % 2] = 2
    core1[next(s1) % 2] = 3
    core0 = [10, 11]
    core0[next(s0) % 2] = 12
    assert ways(sim, "L1", 1) == core1
    assert ways(sim, "L1", 0) == core0

    # core 0 writes a line core 1 holds: core 1's way becomes invalid, so its next miss takes that
    # way without drawing; the miss after that uses draw 3 of stream 1.
    victim_line = core1[0]
    rows2 = rows + [("write", 0, victim_line), ("read", 1, 4), ("read", 1, 5)]
    _, sim = run(m, rows2)
    core1_after = [4, core1[1]]
    core1_after[next(s1) % 2] = 5
    assert ways(sim, "L1", 1) == core1_after


def test_srrip_aging():
    # 2-bit RRPV, fill = 2, hit = 0, victim = lowest way at 3 after aging all ways.
    # A B C D fill [2 2 2 2]; hit B [2 0 2 2]; E: age -> [3 1 3 3] evicts A (w0), E=2 -> [2 1 3 3];
    # F evicts C (w2, already 3, no aging) -> [2 1 2 3]; G evicts D (w3) -> [2 1 2 2];
    # H: age -> [3 2 3 3] evicts E (w0).
    m = machine(cache("L1", ways=4, replacement="srrip", rrpv_bits=2))
    counters, sim = run(m, [("read", 0, x) for x in (A, B, C, D, B, E, F, G, H)])
    assert ways(sim, "L1") == [H, B, F, G]
    assert stats(counters, 0) == expect(accesses=9, hits=1, misses=8, evictions=4)


def test_plru_hits_move_the_tree():
    # Same fills as above, then hits on w1, w0, w2: LRU would evict D (oldest), tree PLRU
    # evicts B: n1=0 (left) then n2=1 (right) -> w1.
    rows = [("read", 0, x) for x in (A, B, C, D, B, A, C, E)]
    _, lru = run(machine(cache("L1", ways=4, replacement="lru")), rows)
    _, plru = run(machine(cache("L1", ways=4, replacement="plru")), rows)
    assert ways(lru, "L1") == [A, B, C, E]
    assert ways(plru, "L1") == [A, E, C, D]


# --- inclusion ------------------------------------------------------------------------------


def three_levels(l3_ways):
    return machine(
        cache("L1", ways=2, latency=1),
        cache("L2", ways=2, latency=10, inclusion="inclusive"),
        cache("L3", ways=l3_ways, latency=30, inclusion="inclusive"),
    )


def test_inclusive_back_invalidation_with_dirty_merge():
    rows = [
        ("write", 0, A),  # all miss; fill L3, L2, L1; A dirty in L1
        ("read", 0, B),  # all miss; fill
        ("read", 0, A),  # L1 hit (L1 stamps A1 B2 A3)
        # C: L3 has a free way. L2 (stamps A1 B2) evicts A: back-invalidates the dirty L1 copy,
        # so A is dirty: L2 writeback, arrives at L3 (holds A) which marks it dirty. L2 <- C in
        # w0; L1 has a free way now (A dropped) and takes C without evicting.
        ("read", 0, C),
        # D: L3 (stamps A1 B2 C3) evicts dirty A -> writeback -> memory write. L2 (C3 B2) evicts
        # B, back-invalidating it in L1; B is clean, dropped. L1 takes D in B's way.
        ("read", 0, D),
    ]
    counters, sim = run(three_levels(3), rows)
    assert stats(counters, 0) == expect(accesses=5, hits=1, misses=4, back_invalidations=2)
    assert stats(counters, 1) == expect(accesses=4, misses=4, evictions=2, writebacks=1)
    assert stats(counters, 2) == expect(accesses=4, misses=4, evictions=1, writebacks=1, writebacks_in=1)
    assert memory(counters) == (4, 1)
    assert ways(sim, "L1") == [C, D]
    assert ways(sim, "L2") == [C, D]
    assert ways(sim, "L3") == [D, B, C]
    assert counters.core[0].tolist() == [5, 100 + 100 + 1 + 100 + 100]


def test_fill_goes_upward_from_just_above_the_server():
    # A, B everywhere; A hits in L1. C misses everywhere. L3 fills first and evicts A (its
    # oldest), back-invalidating A in L2 and L1; then L2 and L1 take C into A's freed ways.
    # (Filling top-down, L1 would first have evicted B.)
    counters, sim = run(three_levels(2), [("read", 0, x) for x in (A, B, A, C)])
    assert [ways(sim, n) for n in ("L1", "L2", "L3")] == [[C, B]] * 3
    assert stats(counters, 0) == expect(accesses=4, hits=1, misses=3, back_invalidations=1)
    assert stats(counters, 1) == expect(accesses=3, misses=3, back_invalidations=1)
    assert stats(counters, 2) == expect(accesses=3, misses=3, evictions=1)
    assert memory(counters) == (3, 0)


# --- exclusive ------------------------------------------------------------------------------


def test_exclusive_l2_victim_fills_and_move_up_with_dirty_bit():
    m = machine(cache("L1", ways=2, latency=1), cache("L2", ways=2, latency=10, inclusion="exclusive"))
    rows = [
        ("read", 0, A),  # L1 <- A (L2 exclusive: does not fill)
        ("write", 0, B),  # L1 <- B, dirty
        ("read", 0, C),  # L1 evicts A (clean) -> victim fill into L2 w0
        ("read", 0, D),  # L1 evicts B* -> L1 writeback, victim fill B* into L2 w1
        # B: L2 hit; B leaves L2 (w1 invalid) carrying its dirty bit; L1 evicts C -> victim fill
        # into L2's free w1; L1 takes B, dirty.
        ("read", 0, B),
        ("read", 0, E),  # L1 evicts D -> L2 full (A1, C4): evicts A (clean, dropped), D in w0
        ("read", 0, F),  # L1 evicts B* -> L1 writeback; L2 (D5, C4) evicts C; B* in w1
        ("read", 0, G),  # L1 evicts E -> L2 (D5, B6) evicts D; E in w0
        ("read", 0, H),  # L1 evicts F -> L2 (E7, B6) evicts B*: writeback to memory; F in w1
    ]
    counters, sim = run(m, rows)
    assert stats(counters, 0) == expect(accesses=9, misses=9, evictions=7, writebacks=2)
    assert stats(counters, 1) == expect(accesses=9, hits=1, misses=8, evictions=4, writebacks=1, fills=7)
    assert memory(counters) == (8, 1)
    assert ways(sim, "L1") == [H, G]
    assert ways(sim, "L2") == [E, F]
    assert counters.core[0, K_CYCLES] == 8 * 100 + 10

    # stop after the move-up: B carries its dirty bit into L1, C took B's old way in L2
    _, sim = run(m, rows[:5])
    assert ways(sim, "L1") == ["1*", D]
    assert ways(sim, "L2") == [A, C]


def test_exclusive_shared_l2_merges_dirty_bit_of_a_victim_it_already_holds():
    # MOESI, so that core 1's read leaves core 0's copy dirty (O): under MSI/MESI it would be
    # written back (docs/coherence.md) and the victim below would arrive clean.
    m = machine(
        cache("L1", ways=1),
        cache("L2", ways=4, latency=10, shared_by=2, inclusion="exclusive"),
        cores=2,
        coherence=Coherence(protocol="moesi"),
    )
    X, Y, Z = 0, 1, 2
    rows = [
        ("write", 0, X),  # L1#0 <- X*, no one else holds X
        # L2 misses (X is only in L1#0): memory -> L1#1 <- X; L1#0 owns X: a c2c transfer, and
        # L1#0 keeps X dirty (O)
        ("read", 1, X),
        ("read", 1, Y),  # L1#1 evicts X (clean) -> victim fill: L2 w0 <- X (fill 1)
        ("read", 0, Z),  # L1#0 evicts X* -> writeback; L2 holds X: merges dirty, no fill
    ]
    counters, sim = run(m, rows)
    assert ways(sim, "L2") == ["0*", None, None, None]
    assert stats(counters, 2) == expect(accesses=4, misses=4, fills=1)
    assert stats(counters, 0)["writebacks"] == 1
    assert memory(counters) == (4, 0)
    assert counters.coherence.tolist()[:3] == [0, 0, 1]  # invalidations, upgrades, c2c transfers

    # core 1 writes X: L2 hit, X moves up dirty into L1#1, whose victim Y fills L2's freed w0
    counters, sim = run(m, rows + [("write", 1, X)])
    assert ways(sim, "L2") == [Y, None, None, None]
    assert ways(sim, "L1", 1) == ["0*"]
    assert stats(counters, 2) == expect(accesses=5, hits=1, misses=4, fills=2)


def test_exclusive_server_keeps_line_when_the_cache_above_does_not_allocate():
    m = machine(
        cache("L1", ways=2, write_allocate=False),
        cache("L2", ways=2, latency=10, inclusion="exclusive"),
    )
    rows = [
        ("read", 0, A),
        ("read", 0, B),
        ("read", 0, C),  # L1 evicts A -> L2
        ("write", 0, A),  # L2 hit; L1 does not allocate writes: A stays in L2 and becomes dirty
        ("write", 0, D),  # misses everywhere; nobody installs: no memory read, a memory write
    ]
    counters, sim = run(m, rows)
    assert ways(sim, "L1") == [C, B]
    assert ways(sim, "L2") == ["0*", None]
    assert memory(counters) == (3, 1)
    assert counters.core[0, K_CYCLES] == 100 * 3 + 10 + 100


# --- write policies -------------------------------------------------------------------------


def test_write_through_no_write_allocate_l1_over_write_back_l2():
    m = machine(
        cache("L1", ways=2, write="through", write_allocate=False),
        cache("L2", ways=2, latency=10),
    )
    rows = [
        ("write", 0, A),  # L2 installs (write-allocate), L1 does not; L2 is topmost: A dirty
        ("read", 0, A),  # L1 miss, L2 hit; L1 <- A (clean)
        ("write", 0, A),  # L1 hit: stays clean, store forwarded: L2 writebacks_in, already dirty
        ("rmw", 0, A),  # same
        ("write", 0, B),  # L2 <- B*, memory read
        ("read", 0, C),  # L2 (A: fill1 hit2, B3) evicts A* -> memory write; L1 <- C in w1
        # A: L1 hit, forwarded; L2 lacks A, write-back + write-allocate: installs A dirty,
        # evicting B* (stamp 3 < C 4) -> memory write
        ("write", 0, A),
    ]
    counters, sim = run(m, rows)
    assert stats(counters, 0) == expect(accesses=7, hits=3, misses=4)
    assert stats(counters, 1) == expect(accesses=4, hits=1, misses=3, evictions=2, writebacks=2, writebacks_in=3)
    assert memory(counters) == (3, 2)
    assert ways(sim, "L1") == [A, C]
    assert ways(sim, "L2") == [C, "0*"]


def test_single_write_through_no_allocate_cache():
    m = machine(cache("L1", ways=2, write="through", write_allocate=False))
    counters, sim = run(m, [("write", 0, A), ("read", 0, A), ("write", 0, A)])
    # write miss: nothing installs -> no read, the write ends at memory; read installs (read);
    # write hit: forwarded past the last level -> memory write
    assert memory(counters) == (1, 2)
    assert stats(counters, 0) == expect(accesses=3, hits=1, misses=2)
    assert ways(sim, "L1") == [A, None]


def test_store_forwarded_through_two_write_through_levels():
    m = machine(
        cache("L1", ways=1, write="through"),
        cache("L2", ways=1, write="through", write_allocate=False, latency=10),
    )
    counters, sim = run(m, [("write", 0, A)])
    # L1 installs (allocates), L2 does not; store forwarded to L2 (counted), which lacks the line
    # and is write-through: forwarded on to memory
    assert memory(counters) == (1, 1)
    assert stats(counters, 1) == expect(accesses=1, misses=1, writebacks_in=1)
    assert ways(sim, "L1") == [A]
    assert ways(sim, "L2") == [None]


def test_write_back_arrival_installs_dirty_and_cascades():
    m = machine(cache("L1", ways=2), cache("L2", ways=1, latency=10))
    rows = [
        ("write", 0, A),  # L2 <- A, L1 <- A*
        ("read", 0, B),  # L2 evicts A (clean, dropped: L2 is not inclusive); L1 <- B
        # C: L2 evicts B; L1 evicts A* -> write-back arrives at L2, which lacks A and installs it
        # dirty, evicting the C it has just installed.
        ("read", 0, C),
    ]
    counters, sim = run(m, rows)
    assert stats(counters, 0) == expect(accesses=3, misses=3, evictions=1, writebacks=1)
    assert stats(counters, 1) == expect(accesses=3, misses=3, evictions=3, writebacks_in=1)
    assert ways(sim, "L1") == [C, B]
    assert ways(sim, "L2") == ["0*"]
    assert memory(counters) == (3, 0)

    counters, sim = run(m, rows + [("read", 0, D)])  # L2 evicts A* to memory; L1 evicts B
    assert memory(counters) == (4, 1)
    assert ways(sim, "L1") == [C, D]
    assert ways(sim, "L2") == [D]


def test_memory_reads_and_writes_single_level():
    m = machine(cache("L1", ways=1))
    rows = [
        ("write", 0, A),  # read A, dirty
        ("read", 0, B),  # evict A* -> write; read B
        ("read", 0, B),  # hit
        ("rmw", 0, B),  # hit, dirty
        ("read", 0, A),  # evict B* -> write; read A
    ]
    counters, sim = run(m, rows)
    assert memory(counters) == (3, 2)
    assert stats(counters, 0) == expect(accesses=5, hits=2, misses=3, evictions=2, writebacks=2)
    assert ways(sim, "L1") == [A]

    no_alloc = machine(cache("L1", ways=1, write_allocate=False))
    counters, _ = run(no_alloc, [("write", 0, A), ("rmw", 0, A), ("read", 0, A), ("write", 0, A)])
    # two writes end at memory, the read installs, the last write hits and makes it dirty
    assert memory(counters) == (1, 2)


# --- pieces and costs -----------------------------------------------------------------------


def test_straddling_accesses_split_into_pieces_and_cost_the_slowest():
    m = machine(cache("L1", ways=2, latency=2), cache("L2", ways=8, latency=10), memory_latency=100)
    rows = [
        ("read", 0, 0, 1),  # line 0: memory
        ("read", 0, 64, 1),  # line 1: memory
        ("read", 0, 128, 1),  # line 2: memory; L1 evicts 0 -> L1 [2, 1]
        # [60, 68): line 0 from L2 (L1 evicts 1), then line 1 from L2 (L1 evicts 2): cost 10
        ("read", 0, 60, 8),
        # [120, 136): line 1 L1 hit (2), line 2 from L2 (10) evicting 0: cost 10
        ("read", 0, 120, 16),
        # [190, 200): line 2 L1 hit, line 3 memory: cost 100 (the max, not the sum)
        ("read", 0, 190, 10),
        # [0, 130): lines 0, 1, 2 all from L2; the third piece evicts dirty line 0 into L2
        ("write", 0, 0, 130),
    ]
    counters, sim = run(m, rows)
    assert counters.core[0].tolist() == [7, 100 * 3 + 10 + 10 + 100 + 10]
    assert stats(counters, 0) == expect(accesses=12, hits=2, misses=10, evictions=8, writebacks=1)
    assert stats(counters, 1) == expect(accesses=10, hits=6, misses=4, writebacks_in=1)
    assert counters.core_level[0].tolist() == [[2, 10], [6, 4]]
    assert memory(counters) == (4, 0)
    assert ways(sim, "L1") == ["1*", "2*"]
    assert ways(sim, "L2") == ["0*", 1, 2, 3, None, None, None, None]


def test_zero_size_access_counts_the_access_but_no_piece():
    m = machine(cache("L1"))
    counters, _ = run(m, [("read", 0, 0, 0)])
    assert counters.core[0].tolist() == [1, 0]
    assert stats(counters, 0)["accesses"] == 0


# --- coherence ------------------------------------------------------------------------------


def test_split_l1_participant_counts_once_and_own_icache_is_kept():
    m = machine(
        (cache("L1i", serves="instructions"), cache("L1d", serves="data")),
        cache("L2", ways=4, latency=10, shared_by=2),
        cores=2,
    )
    X = 0
    rows = [
        ("ifetch", 0, X),  # L1i#0, L2
        ("ifetch", 1, X),  # L1i#1 (L2 hit)
        ("read", 1, X),  # L1d#1
        ("write", 0, X),  # drops L1i#1 and L1d#1: one participant (core 1); L1i#0 keeps X
        ("write", 1, X),  # drops L1i#0 and the dirty L1d#0 copy (no writeback): core 0
        ("write", 1, X),  # nobody else holds X: no invalidation
    ]
    counters, sim = run(m, rows)
    assert counters.coherence[H_INVALIDATIONS] == 2
    assert memory(counters) == (1, 0)
    assert ways(sim, "L1i", 0) == [None, None]
    assert ways(sim, "L1i", 1) == [None, None]
    assert ways(sim, "L1d", 0) == [None, None]
    assert ways(sim, "L1d", 1) == ["0*", None]
    assert ways(sim, "L2") == [X, None, None, None]
    assert all(stats(counters, k)["writebacks"] == 0 for k in range(5))

    counters, sim = run(m, rows[:4])
    assert ways(sim, "L1i", 0) == [X, None]
    assert ways(sim, "L1d", 0) == ["0*", None]
    assert counters.coherence[H_INVALIDATIONS] == 1


def test_four_core_ping_pong_with_a_cache_shared_by_two():
    m = machine(
        cache("L1", ways=2),
        cache("L2", ways=2, latency=10, shared_by=2),
        cache("L3", ways=4, latency=30, shared_by=4),
        cores=4,
    )
    X = 0
    rows = [
        ("read", 3, X),  # L1#3, L2#1, L3
        ("read", 2, X),  # L1#2 (L2#1 hit)
        ("write", 0, X),  # drops L1#2 (core 2), L1#3 (core 3), L2#1: +3; L3 hit -> L2#0, L1#0
        ("write", 1, X),  # drops L1#0 (core 0); L2#0 serves core 1: +1; L2#0 hit
        ("write", 0, X),  # drops L1#1 (core 1): +1; L2#0 hit
        ("write", 2, X),  # drops L1#0 (core 0) and L2#0: +2; L3 hit
    ]
    counters, sim = run(m, rows)
    assert counters.coherence[H_INVALIDATIONS] == 7
    assert memory(counters) == (1, 0)
    l1 = [ways(sim, "L1", i) for i in range(4)]
    assert l1 == [[None, None], [None, None], ["0*", None], [None, None]]
    assert [ways(sim, "L2", i) for i in range(2)] == [[None, None], [X, None]]
    assert ways(sim, "L3") == [X, None, None, None]
    assert stats(counters, 6) == expect(accesses=3, hits=2, misses=1)  # L3
    # per core and level: core 0 missed L1 twice, L2#0 once (step 3) and hit it once (step 5)
    assert counters.core_level[0].tolist() == [[0, 2], [1, 1], [1, 0]]
    assert counters.core_level[1].tolist() == [[0, 1], [1, 0], [0, 0]]
    assert counters.core_level[2].tolist() == [[0, 2], [1, 1], [1, 0]]
    assert counters.core_level[3].tolist() == [[0, 1], [0, 1], [0, 1]]


def test_reads_never_invalidate_and_single_core_never_invalidates():
    m = machine(cache("L1"), cache("L2", ways=4, shared_by=2), cores=2)
    counters, _ = run(m, [("read", 0, A), ("read", 1, A), ("read", 0, A), ("read", 1, A)])
    assert counters.coherence[H_INVALIDATIONS] == 0
    assert stats(counters, 0)["hits"] == 1 and stats(counters, 1)["hits"] == 1

    one = machine(cache("L1"))
    counters, _ = run(one, [("read", 0, A), ("write", 0, A)])
    assert counters.coherence[H_INVALIDATIONS] == 0


# --- geometry -------------------------------------------------------------------------------


def test_sets_need_not_be_a_power_of_two_and_tags_are_whole_lines():
    m = machine(cache("L1", sets=3, ways=1), line_size=16)
    big = 2**34 + 1  # 2**34 = 1 (mod 3): set 2
    lines = [0, 1, 2, 3, 4, 2, big]
    counters, sim = run(m, [("read", 0, x) for x in lines], line_size=16)
    # 3 -> set 0 evicts 0; 4 -> set 1 evicts 1; 2 hits; big -> set 2 evicts 2
    assert sim.instance("L1").contents() == [[(3, False)], [(4, False)], [(big, False)]]
    assert stats(counters, 0) == expect(accesses=7, hits=1, misses=6, evictions=3)


def test_line_numbers_use_the_machine_line_size():
    m = machine(cache("L1", sets=2, ways=1), line_size=32)
    counters, sim = run(m, [("read", 0, 0, 1), ("read", 0, 31, 1), ("read", 0, 32, 1), ("read", 0, 63, 2)])
    # 0 and 31 are line 0; 32 is line 1; [63, 65) is lines 1 and 2 (2 evicts 0 in set 0)
    assert stats(counters, 0) == expect(accesses=5, hits=2, misses=3, evictions=1)
    assert sim.instance("L1").contents() == [[(2, False)], [(1, False)]]


# --- events ---------------------------------------------------------------------------------


def test_instruction_fetches_use_the_instruction_path_and_other_ops_are_ignored():
    m = machine((cache("L1i", serves="instructions"), cache("L1d", serves="data")), cache("L2", ways=4, latency=10))
    rows = [(OP_IFETCH, 0, 0, 4), (OP_READ, 0, 64, 4), (OP_WRITE, 0, 128, 4), (OP_RMW, 0, 0, 4)]
    counters, sim = simulate_with_state(m, make_events(rows))
    noisy = rows[:1] + [(OP_ALLOC, 0, 5000, 64), (OP_FREE, 0, 0, 0)] + rows[1:] + [(OP_GC, 0, 0, 0)]
    counters2 = simulate(m, make_events(noisy))
    for a, b in zip(counters.as_dict().values(), counters2.as_dict().values()):
        assert np.array_equal(a, b)
    assert ways(sim, "L1i") == [0, None]
    # rmw of line 0 is a data access: L1d misses, L2 hits; L1d evicts line 1 (LRU) and holds
    # line 0 dirty, like a write
    assert ways(sim, "L1d") == ["0*", "2*"]
    assert ways(sim, "L2") == [0, 1, 2, None]
    assert memory(counters) == (3, 0)
    assert counters.core[0, K_ACCESSES] == 4
    assert counters.core_level[0].tolist() == [[0, 1], [0, 3], [1, 3]]


# --- counter shapes and properties on generated cases --------------------------------------


def test_counter_shapes_follow_the_machine():
    m = machine(
        (cache("L1i", serves="instructions"), cache("L1d", serves="data")),
        cache("L2", shared_by=2),
        cache("L3", shared_by=4),
        cores=4,
    )
    counters = simulate(m, make_events([]))
    assert counters.cache.shape == (4 + 4 + 2 + 1, len(CACHE_COUNTERS))
    assert counters.core.shape == (4, 2)
    assert counters.core_level.shape == (4, 4, 2)
    assert counters.cache.dtype == np.int64


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(machine_and_events())
def test_reference_invariants(case):
    m, events = case
    counters, sim = simulate_with_state(m, events)
    cache = counters.cache
    assert (cache >= 0).all()
    assert np.array_equal(cache[:, 0], cache[:, 1] + cache[:, 2])  # accesses = hits + misses
    # writebacks <= evictions, but for the write-backs of MSI/MESI downgrades (docs/coherence.md)
    assert (cache[:, 4] <= cache[:, 3] + np.array(sim.downgrade_writebacks, dtype=np.int64)).all()
    if m.coherence.protocol == "moesi":
        assert not any(sim.downgrade_writebacks)
    # per-core/per-spec hits and misses add up to the spec's instances
    k = 0
    for si, spec in enumerate(m.caches):
        n = m.cores // spec.shared_by
        assert counters.core_level[:, si, HM_HITS].sum() == cache[k : k + n, 1].sum()
        assert counters.core_level[:, si, HM_MISSES].sum() == cache[k : k + n, 2].sum()
        k += n
    assert counters.core[:, K_ACCESSES].sum() == len(events)
    # the first level sees every piece
    ls = m.line_size
    pieces = sum((int(a) + int(s) - 1) // ls - int(a) // ls + 1 for a, s in zip(events.addr, events.size) if s > 0)
    first = m.levels[0]
    assert cache[: sum(m.cores // c.shared_by for c in first), 0].sum() == pieces
    # no line appears twice in a cache, and every line sits in its own set
    for inst in sim.instances:
        for s, contents in enumerate(inst.contents()):
            lines = [line for line, _ in contents]
            assert len(lines) == len(set(lines))
            assert all(line % inst.spec.sets == s for line in lines)
