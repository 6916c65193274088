"""Hand-computed scenarios that pin down miss classes, true/false sharing and the sharing table
(docs/coherence.md, "Miss classes", "True and false sharing", "The sharing table") on the reference
model, and properties that hold on generated traces.

Every expected number below was worked out by hand from the rulebooks and the readings C0-C10 and
D1-D14 in the docstring of tests/reference.py; the comments walk through the steps. Latencies: L1 1,
L2 10, L3 30, memory 100, c2c 40, upgrade 20. A core's state on a line is written "lost W={..}",
"undecided" (open-undecided) or "open-true"; byte sets are offsets within the line.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from memsim.engine.counters import (
    CACHE_COUNTERS,
    H_C2C,
    H_FALSE_SHARING,
    H_FALSE_SHARING_AT_MISS,
    H_INVALIDATIONS,
    H_TRUE_SHARING,
    H_TRUE_SHARING_AT_MISS,
    H_UPGRADES,
    HM_MISSES,
    K_CYCLES,
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
    core_sharing_width,
    mask_words,
    sharing_width,
)
from memsim.machine import Machine

from reference import Simulator, byte_mask_words, counters_equal, describe_difference, make_events, simulate
from strategies import machine_and_events
from test_reference_coherence import cache, machine
MASK64 = (1 << 64) - 1
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def private_l1_l2(protocol="mesi", line_size=64, **l1) -> Machine:
    """2 cores, each with a private L1 (1 set, 2 ways) and a private L2 (1 set, 4 ways)."""
    return machine(cache("L1", **l1), cache("L2", ways=4, latency=10), protocol=protocol, line_size=line_size)


def private_l1_shared_l2(protocol="mesi", **l1) -> Machine:
    """2 cores, private L1s, one L2 shared by both (not tracked)."""
    return machine(cache("L1", **l1), cache("L2", ways=4, latency=10, shared_by=2), protocol=protocol)


def four_cores_in_pairs() -> Machine:
    """4 cores, private L1s, L2s shared by pairs (L2#0: cores 0-1, L2#1: cores 2-3), an L3 for all."""
    return machine(
        cache("L1"), cache("L2", ways=4, latency=10, shared_by=2), cache("L3", ways=8, latency=30, shared_by=4),
        cores=4,
    )


def run(m: Machine, rows):
    """Rows are (op, core, addr, size)."""
    sim = Simulator(m).run(make_events(rows))
    return sim.counters(), sim


def verdicts(counters) -> dict[str, int]:
    return {
        "false": int(counters.coherence[H_FALSE_SHARING]),
        "true": int(counters.coherence[H_TRUE_SHARING]),
        "false_at_miss": int(counters.coherence[H_FALSE_SHARING_AT_MISS]),
        "true_at_miss": int(counters.coherence[H_TRUE_SHARING_AT_MISS]),
    }


def v(false=0, true=0, false_at_miss=0, true_at_miss=0) -> dict[str, int]:
    return {"false": false, "true": true, "false_at_miss": false_at_miss, "true_at_miss": true_at_miss}


def classes(counters, k) -> dict[str, int]:
    """Misses by class of cache instance ``k``, zeros left out."""
    names = ("cold", "capacity", "conflict", "coherence")
    return {n: int(counters.cache_classes[k, j]) for j, n in enumerate(names) if counters.cache_classes[k, j]}


def unsigned(words) -> int:
    """Mask words (int64) as one Python int: bit b = byte b of the line."""
    return sum((int(w) & MASK64) << (64 * k) for k, w in enumerate(words))


def bits(*byte_ranges) -> int:
    out = 0
    for r in byte_ranges:
        for b in r if isinstance(r, range) else (r,):
            out |= 1 << b
    return out


def row(counters, line: int, cores: int, line_size: int) -> dict:
    """The sharing row of ``line`` as a dict; per core a tuple (reads, writes, read mask, write mask)."""
    table = counters.sharing
    found = [r for r in table if r[S_LINE] == line]
    assert len(found) == 1, table
    r = found[0]
    words = mask_words(line_size)
    out = {
        "false": int(r[S_FALSE]),
        "true": int(r[S_TRUE]),
        "false_at_miss": int(r[S_FALSE_AT_MISS]),
        "true_at_miss": int(r[S_TRUE_AT_MISS]),
        "c2c": int(r[S_C2C]),
        "stall": int(r[S_STALL]),
        "cores": [],
    }
    for core in range(cores):
        base = len(SHARING_COLUMNS) + core * core_sharing_width(line_size)
        out["cores"].append(
            (
                int(r[base + SC_READS]),
                int(r[base + SC_WRITES]),
                unsigned(r[base + 2 : base + 2 + words]),
                unsigned(r[base + 2 + words : base + 2 + 2 * words]),
            )
        )
    return out


def lines_with_rows(counters) -> list[int]:
    return counters.sharing[:, S_LINE].tolist()


# --- ping-pong -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ("msi", "mesi", "moesi"))
@pytest.mark.parametrize("n", (1, 2, 5, 50))
def test_write_ping_pong_on_different_halves_is_false_sharing(protocol, n):
    # Core 0 writes bytes 0-31, core 1 bytes 32-63 of line 0, in turn, n times each.
    # 1st write (core 0): cold in L1#0 and L2#0, memory (100); L1#0 M.
    # 2nd write (core 1): cold in L1#1 and L2#1, memory; L1#0 is dirty: c2c (40); L1#0 and L2#0
    #   dropped -> invalidated; core 0 loses its copy: lost W={32..63}. The row of line 0 starts
    #   here (core 0 lost a copy, and a transfer), this write included.
    # Every later write of core c: L1 and L2 miss, both invalidated -> coherence (twice, one piece:
    #   one coherence miss of c); bytes of c don't overlap W (the other half) -> at-miss false,
    #   undecided; c2c (40); the other core loses its copy: its undecided lifetime ends -> false,
    #   lost W = c's half.
    # So 2n-2 coherence misses, each at-miss false; their lifetimes end at the next loss, the last
    # one (of the last writer) at the end of the run: 2n-2 false.
    rows = [("write", 0, 0, 32), ("write", 1, 32, 32)] * n
    counters, _ = run(private_l1_l2(protocol), rows)
    assert verdicts(counters) == v(false=2 * n - 2, false_at_miss=2 * n - 2)
    assert counters.coherence[H_C2C] == 2 * n - 1
    assert counters.coherence[H_INVALIDATIONS] == 2 * n - 1
    assert counters.coherence[H_UPGRADES] == 0
    # instances: L1#0, L1#1, L2#0, L2#1; each: 1 cold, then n-1 coherence misses
    for k in range(4):
        assert classes(counters, k) == ({"cold": 1, "coherence": n - 1} if n > 1 else {"cold": 1})
    assert counters.core_classes[:, :, MC_COHERENCE].tolist() == [[n - 1, n - 1], [n - 1, n - 1]]
    assert counters.core[:, K_CYCLES].tolist() == [100 + 40 * (n - 1), 40 * n]
    # one row: every write from core 1's first on (core 0's first is before the row); c2c on
    # each of them; stall (40 - L1 latency 1) on the 2n-2 coherence misses
    assert lines_with_rows(counters) == [0]
    assert row(counters, 0, 2, 64) == {
        **v(false=2 * n - 2, false_at_miss=2 * n - 2),
        "c2c": 2 * n - 1,
        "stall": 39 * (2 * n - 2),
        "cores": [
            (0, n - 1, 0, bits(range(0, 32)) if n > 1 else 0),
            (0, n, 0, bits(range(32, 64))),
        ],
    }


@pytest.mark.parametrize("n", (1, 2, 5, 50))
def test_shared_counter_incremented_in_turn_is_true_sharing(n):
    # Same as the ping-pong, but both cores rmw bytes 0-7: every coherence miss finds its bytes
    # in W (the other core's rmw) -> at-miss true, open-true; ended by the next loss or the run.
    rows = [("rmw", 0, 0, 8), ("rmw", 1, 0, 8)] * n
    counters, _ = run(private_l1_l2(), rows)
    assert verdicts(counters) == v(true=2 * n - 2, true_at_miss=2 * n - 2)
    # an rmw is a read and a write of its bytes, counted once each
    assert row(counters, 0, 2, 64)["cores"] == [
        (n - 1, n - 1, bits(range(8)) if n > 1 else 0, bits(range(8)) if n > 1 else 0),
        (n, n, bits(range(8)), bits(range(8))),
    ]


def test_a_coherence_miss_in_l1_and_l2_is_one_verdict_but_counts_in_both_levels():
    # ping-pong with n = 2 (see above): the 3rd write (core 0) misses L1#0 and L2#0, both
    # invalidated: coherence in both instances and at both levels for core 0, but one piece and one
    # at-miss verdict; the 4th (core 1) likewise.
    rows = [("write", 0, 0, 4), ("write", 1, 32, 4)] * 2
    counters, _ = run(private_l1_l2(), rows)
    assert counters.cache_classes[:, MC_COHERENCE].tolist() == [1, 1, 1, 1]  # L1#0 L1#1 L2#0 L2#1
    assert counters.core_classes[0].tolist() == [[1, 0, 0, 1], [1, 0, 0, 1]]  # L1, L2: cold, coherence
    assert verdicts(counters) == v(false=2, false_at_miss=2)


# --- cold, capacity, conflict --------------------------------------------------------------


@pytest.mark.parametrize("shadow", (True, False))
def test_two_lines_fighting_over_one_direct_mapped_set_are_conflict_misses(shadow):
    # L1: 2 sets x 1 way (2 lines); lines 0 and 2 both go to set 0. L2: 1 set x 4 ways.
    # read 0: L1 cold, L2 cold. shadow(L1) = [0]
    # read 2: L1 cold (evicts 0), L2 cold. shadow = [0, 2]
    # read 0: L1 miss, held, in the shadow -> conflict; L2 hit. shadow = [2, 0]
    # read 2: likewise conflict. Without the shadow both are capacity.
    m = machine(cache("L1", sets=2, ways=1), cache("L2", ways=4, latency=10), cores=1, conflict_shadow=shadow)
    counters, _ = run(m, [("read", 0, line * 64, 1) for line in (0, 2, 0, 2)])
    assert classes(counters, 0) == ({"cold": 2, "conflict": 2} if shadow else {"cold": 2, "capacity": 2})
    assert classes(counters, 1) == {"cold": 2}
    want = [[2, 0, 2, 0], [2, 0, 0, 0]] if shadow else [[2, 2, 0, 0], [2, 0, 0, 0]]
    assert counters.core_classes[0].tolist() == want


def test_a_working_set_larger_than_the_cache_cycled_in_lru_order_gives_capacity_misses():
    # fully associative L1 of 2 lines, lines 0 1 2 0 1 2: 3 cold misses, then each line was
    # pushed out of the (equally sized, LRU) shadow by the two others: 3 capacity misses
    m = machine(cache("L1", sets=1, ways=2), cores=1)
    counters, _ = run(m, [("read", 0, line * 64, 1) for line in (0, 1, 2, 0, 1, 2)])
    assert classes(counters, 0) == {"cold": 3, "capacity": 3}


def test_hits_also_refresh_the_shadow():
    # L1: 2 sets x 1 way; set 0 takes lines 0 and 2, set 1 line 1. Shadow of 2 lines.
    # 0: cold, shadow [0]; 1: cold, [0, 1]; 2: cold (evicts 0), [1, 2]
    # 0: miss, held, not in shadow -> capacity, [2, 0] (L1 set 0: 0)
    # 1: hit, shadow [0, 1]
    # 2: miss, held, not in shadow (the hit on 1 pushed it out) -> capacity
    # (were hits not in the shadow, it would still hold 2 here: conflict)
    m = machine(cache("L1", sets=2, ways=1), cores=1)
    counters, _ = run(m, [("read", 0, line * 64, 1) for line in (0, 1, 2, 0, 1, 2)])
    assert classes(counters, 0) == {"cold": 3, "capacity": 2}
    assert counters.cache[0, CACHE_COUNTERS.index("hits")] == 1


def test_a_miss_after_a_back_invalidation_is_capacity_or_conflict():
    # L1 (1 set, 2 ways) under an inclusive L2 of 1 line: reading line 1 makes the L2 evict line
    # 0 and back-invalidate it from L1. Reading 0 again: L1 miss, history held (a
    # back-invalidation leaves it held), the L1's shadow of 2 lines still holds 0 -> conflict;
    # L2 miss, held, its shadow of 1 line holds 1 -> capacity.
    m = machine(cache("L1", ways=2), cache("L2", ways=1, latency=10, inclusion="inclusive"), cores=1)
    counters, _ = run(m, [("read", 0, line * 64, 1) for line in (0, 1, 0)])
    assert counters.cache[0, CACHE_COUNTERS.index("back_invalidations")] == 2  # 0, then 1
    assert classes(counters, 0) == {"cold": 2, "conflict": 1}
    assert classes(counters, 1) == {"cold": 2, "capacity": 1}


# --- group caches --------------------------------------------------------------------------


def test_a_core_loses_its_copy_through_a_group_cache():
    # 4 cores, private L1s, L2s shared by pairs (L2#0: cores 0-1, L2#1: cores 2-3), an L3 for all.
    # Instances: L1#0-3 (k 0-3), L2#0-1 (k 4-5), L3 (k 6).
    # 1. core 0 writes bytes 0-3: cold in L1#0, L2#0, L3; memory. L1#0 M, L2#0 E.
    # 2. core 2 writes bytes 8-11: cold in L1#2, L2#1; L3 hit (not tracked: no upgrade); L1#0 dirty:
    #    c2c (40); L1#0 and L2#0 dropped (2 invalidations). Cores 0 (L1#0, L2#0) and 1 (L2#0)
    #    lose their copy: lost W={8..11}. Row of line 0 from here.
    # 3. core 1 reads byte 16: L1#1 cold (never held), L2#0 coherence (invalidated), L3 hit: a
    #    coherence miss of core 1. {16} vs W: at-miss false, undecided. L1#2 dirty above L3: c2c
    #    (40); it writes back (to L2#1, then L2#1 to L3). Stall 40 - 1 = 39.
    # 4. core 0 reads byte 0: L1#0 coherence (invalidated), L2#0 hit (filled in 3): a coherence miss
    #    of core 0, at-miss false ({0} vs {8..11}), undecided. No dirty copy: costs 10. Stall 9.
    # 5. core 1 reads byte 8: L1#1 hit; not a miss; {8} in W -> open-true.
    # End: core 0 undecided -> false, core 1 open-true -> true. Core 3 stays lost (no lifetime).
    m = four_cores_in_pairs()
    rows = [("write", 0, 0, 4), ("write", 2, 8, 4), ("read", 1, 16, 1), ("read", 0, 0, 1), ("read", 1, 8, 1)]
    counters, _ = run(m, rows)
    assert verdicts(counters) == v(false=1, true=1, false_at_miss=2)
    assert counters.coherence[H_INVALIDATIONS] == 2
    assert [classes(counters, k) for k in range(7)] == [
        {"cold": 1, "coherence": 1},  # L1#0
        {"cold": 1},  # L1#1
        {"cold": 1},  # L1#2
        {},  # L1#3
        {"cold": 1, "coherence": 1},  # L2#0
        {"cold": 1},  # L2#1
        {"cold": 1},  # L3
    ]
    # per core and spec (L1, L2, L3): cold, capacity, conflict, coherence
    assert counters.core_classes[0].tolist() == [[1, 0, 0, 1], [1, 0, 0, 0], [1, 0, 0, 0]]
    assert counters.core_classes[1].tolist() == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert counters.core_classes[2].tolist() == [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert row(counters, 0, 4, 64) == {
        **v(false=1, true=1, false_at_miss=2),
        "c2c": 2,
        "stall": 39 + 9,
        "cores": [(1, 0, bits(0), 0), (2, 0, bits(8, 16), 0), (0, 1, 0, bits(range(8, 12))), (0, 0, 0, 0)],
    }


# --- lifetimes -----------------------------------------------------------------------------


def test_a_lifetime_becomes_true_after_its_miss():
    # 1. core 1 reads byte 32: cold.
    # 2. core 0 writes bytes 0-3: cold, memory; core 1's clean copies dropped: core 1 lost
    #    W={0..3}; row (a loss).
    # 3. core 1 reads byte 32: L1#1 and L2#1 coherence -> a coherence miss, at-miss false ({32}),
    #    undecided; L1#0 dirty: c2c (40), stall 39.
    # 4. core 1 reads byte 2: L1#1 hit; {2} in W -> open-true.
    # End: lifetime true, while the at-miss verdict said false.
    rows = [("read", 1, 32, 1), ("write", 0, 0, 4), ("read", 1, 32, 1), ("read", 1, 2, 1)]
    counters, _ = run(private_l1_l2(), rows)
    assert verdicts(counters) == v(true=1, false_at_miss=1)
    assert row(counters, 0, 2, 64) == {
        **v(true=1, false_at_miss=1),
        "c2c": 1,
        "stall": 39,
        "cores": [(0, 1, 0, bits(range(4))), (2, 0, bits(2, 32), 0)],
    }


@pytest.mark.parametrize("byte, lifetime", [(40, "false"), (2, "true")])
def test_eviction_does_not_end_a_lifetime_and_w_stops_at_the_miss(byte, lifetime):
    # 2 cores, private L1s of one line (1 set, 1 way), an L2 shared by both (not tracked).
    # 1. core 1 reads byte 32 of line 0: L1#1 cold, L2 cold; memory.
    # 2. core 0 writes bytes 0-3: L1#0 cold, L2 hit (not tracked: no upgrade, copies elsewhere
    #    clean: no c2c); L1#1 dropped: core 1 lost W={0..3}. Row.
    # 3. core 1 reads byte 32: L1#1 coherence -> at-miss false, undecided; L1#0 dirty: c2c (40),
    #    written back to L2; L1#0 becomes S. Stall 40 - 1 = 39.
    # 4. core 1 reads line 1: L1#1 cold, evicts line 0 (silently: core 1 keeps its lifetime).
    # 5. core 0 writes byte 40 of line 0: L1#0 hit, S: an upgrade (20), stall 19. No copy to drop
    #    (L1#1 evicted it): nobody loses, and core 1 is not in mode lost: W stays {0..3}.
    # 6. core 1 reads ``byte`` of line 0: L1#1 miss, held (evicted, not invalidated), its 1-line
    #    shadow holds line 1 -> capacity; L2 hit; L1#0 dirty: c2c (40), no stall (not a coherence
    #    miss). Rule 4: byte 40 (written by core 0 after the miss) is not in W: still undecided;
    #    byte 2 is: open-true.
    # End: one lifetime, open: counted now.
    rows = [
        ("read", 1, 32, 1), ("write", 0, 0, 4), ("read", 1, 32, 1), ("read", 1, 64, 1),
        ("write", 0, 40, 1), ("read", 1, byte, 1),
    ]
    counters, _ = run(private_l1_shared_l2(ways=1), rows)
    assert verdicts(counters) == v(false_at_miss=1, **{lifetime: 1})
    assert counters.coherence[:3].tolist() == [1, 1, 2]  # invalidations, upgrades, c2c
    assert classes(counters, 1) == {"cold": 2, "coherence": 1, "capacity": 1}
    assert classes(counters, 2) == {"cold": 2}
    assert lines_with_rows(counters) == [0]
    assert row(counters, 0, 2, 64) == {
        **v(false_at_miss=1, **{lifetime: 1}),
        "c2c": 2,
        "stall": 39 + 19,
        "cores": [(0, 2, 0, bits(range(4), 40)), (2, 0, bits(32, byte), 0)],
    }


def test_an_upgrade_touches_bytes_but_gets_no_verdict():
    # private L1s, shared L2 (not tracked).
    # 1. core 0 reads byte 0: cold.
    # 2. core 1 writes byte 8: L1#1 cold, L2 hit; L1#0 clean: no c2c; dropped: core 0 lost W={8}.
    # 3. core 0 reads byte 0: coherence miss, at-miss false, undecided; c2c (40), stall 39.
    # 4. core 0 writes byte 8: L1#0 hit, S: upgrade (20), stall 19; not a miss, no verdict; rule 4:
    #    {8} in W -> open-true. Then rule 1: L1#1 dropped, core 1 lost W={8} (no lifetime).
    # End: core 0's lifetime true; one at-miss verdict (false).
    rows = [("read", 0, 0, 1), ("write", 1, 8, 1), ("read", 0, 0, 1), ("write", 0, 8, 1)]
    counters, _ = run(private_l1_shared_l2(), rows)
    assert verdicts(counters) == v(true=1, false_at_miss=1)
    assert counters.coherence[:3].tolist() == [2, 1, 1]
    assert row(counters, 0, 2, 64) == {
        **v(true=1, false_at_miss=1),
        "c2c": 1,
        "stall": 39 + 19,
        "cores": [(1, 1, bits(0), bits(8)), (0, 1, 0, bits(8))],
    }


def test_w_gathers_the_writes_of_others_while_the_core_is_lost():
    # 1. core 1 reads byte 0: cold.
    # 2. core 0 writes bytes 0-3: core 1's copies dropped: lost W={0..3}.
    # 3. core 0 writes bytes 8-11: L1#0 hit (M): nothing dropped; rule 2: W={0..3, 8..11}.
    # 4. core 1 reads byte 8: a coherence miss, {8} in W: at-miss true, open-true (to the end).
    rows = [("read", 1, 0, 1), ("write", 0, 0, 4), ("write", 0, 8, 4), ("read", 1, 8, 1)]
    counters, _ = run(private_l1_l2(), rows)
    assert verdicts(counters) == v(true=1, true_at_miss=1)
    assert counters.coherence[:3].tolist() == [1, 0, 1]


def test_losing_again_while_lost_replaces_w():
    # 4 cores in pairs.
    # 1. core 0 reads byte 0: cold; L1#0, L2#0 E.
    # 2. core 2 writes bytes 0-3: L3 hit; clean copies elsewhere: no c2c; L1#0, L2#0 dropped
    #    (2 invalidations): cores 0 and 1 lost W={0..3}.
    # 3. core 0 reads byte 32: L1#0, L2#0 coherence: a coherence miss, at-miss false, undecided;
    #    L1#2 dirty: c2c, written back (L2#1, then L3); L1#2 and L2#1 become S; L2#0, L1#0 filled.
    # 4. core 3 writes byte 40: L1#3 cold, L2#1 hit, not exclusive: an upgrade; L1#0, L2#0 and L1#2
    #    dropped (3 invalidations). Core 0 loses: its lifetime ends (false), W={40}; core 1, still
    #    lost, loses again: W := {40} (not {0..3, 40}); core 2 lost W={40}.
    # 5. core 1 reads byte 0: L1#1 cold, L2#0 coherence: a coherence miss; {0} vs W={40}: at-miss
    #    false, undecided (counted at the end); L1#3 dirty: c2c.
    rows = [("read", 0, 0, 1), ("write", 2, 0, 4), ("read", 0, 32, 1), ("write", 3, 40, 1), ("read", 1, 0, 1)]
    counters, _ = run(four_cores_in_pairs(), rows)
    assert counters.coherence[:3].tolist() == [5, 1, 2]
    assert verdicts(counters) == v(false=2, false_at_miss=2)
    assert row(counters, 0, 4, 64)["stall"] == 39 + 19 + 39


def test_a_second_coherence_miss_without_a_new_loss_ends_the_lifetime_and_reuses_w():
    # L1s without write-allocate over private L2s (D5).
    # 1. core 1 reads byte 0: cold in L1#1, L2#1.
    # 2. core 0 writes byte 8: cold; L1#0 does not allocate, L2#0 installs and is made dirty;
    #    core 1's copies dropped: core 1 lost W={8}. Row.
    # 3. core 1 writes byte 0: L1#1 and L2#1 coherence: a coherence miss, at-miss false, undecided;
    #    L2#0 dirty: c2c (40), stall 39; L2#0 dropped: core 0 lost W={0}. L2#1 installs, L1#1
    #    does not (no write-allocate): L1#1 stays invalidated.
    # 4. core 1 reads byte 8: L1#1 coherence again (L2#1 hit, 10): a coherence miss; the open
    #    lifetime ends (false); W is still {8}: at-miss true, open-true. Stall 10 - 1 = 9.
    # End: open-true -> true.
    rows = [("read", 1, 0, 1), ("write", 0, 8, 1), ("write", 1, 0, 1), ("read", 1, 8, 1)]
    counters, _ = run(private_l1_l2(write_allocate=False), rows)
    assert verdicts(counters) == v(false=1, true=1, false_at_miss=1, true_at_miss=1)
    assert classes(counters, 1) == {"cold": 1, "coherence": 2}  # L1#1
    assert classes(counters, 3) == {"cold": 1, "coherence": 1}  # L2#1
    assert row(counters, 0, 2, 64) == {
        **v(false=1, true=1, false_at_miss=1, true_at_miss=1),
        "c2c": 1,
        "stall": 39 + 9,
        "cores": [(0, 1, 0, bits(8)), (1, 1, bits(8), bits(0))],
    }


def test_open_lifetimes_are_counted_whenever_counters_are_made_and_the_run_goes_on():
    # ping-pong, n = 2: the 3rd write opens core 0's lifetime, ended by the 4th (false), which
    # opens core 1's. After 3 writes: core 0's lifetime is open and counted (false 1); after 4:
    # core 0's ended (1) + core 1's open (1) = 2, not 3.
    m = private_l1_l2()
    rows = [("write", 0, 0, 4), ("write", 1, 32, 4)] * 2
    sim = Simulator(m)
    sim.run(make_events(rows[:3]))
    first = sim.counters()
    assert verdicts(first) == v(false=1, false_at_miss=1)
    assert verdicts(sim.counters()) == v(false=1, false_at_miss=1)  # making them changes nothing
    sim.run(make_events(rows[3:]))
    whole = simulate(m, make_events(rows))
    assert counters_equal(sim.counters(), whole), describe_difference(m, sim.counters(), whole)
    assert verdicts(whole) == v(false=2, false_at_miss=2)


# --- the sharing table ---------------------------------------------------------------------


def test_an_upgrade_before_the_line_has_a_row_is_not_in_it():
    # MSI: core 0 reads line 0 alone (S: MSI never grants exclusivity on a read), then writes
    # it: an upgrade (20) that drops nothing, so no row. Core 1's read then finds L1#0 dirty: c2c,
    # the row starts with that read (a cold miss, no stall).
    rows = [("read", 0, 0, 1), ("write", 0, 0, 1)]
    counters, _ = run(private_l1_l2("msi"), rows)
    assert counters.coherence[H_UPGRADES] == 1
    assert counters.sharing.shape == (0, sharing_width(2, 64))
    counters, _ = run(private_l1_l2("msi"), rows + [("read", 1, 4, 2)])
    assert row(counters, 0, 2, 64) == {**v(), "c2c": 1, "stall": 0, "cores": [(0, 0, 0, 0), (1, 0, bits(4, 5), 0)]}


def test_sharing_rows_with_128_byte_lines_use_two_mask_words():
    # line size 128, private L1s and L2s. Bytes are offsets within the line.
    # 1. core 0 writes bytes 0-7: cold, memory (before the row).
    # 2. core 1 writes bytes 120-127: cold; L1#0 dirty: c2c; core 0 lost W={120..127}. Row.
    # 3. core 0 reads bytes 60-67: coherence miss, at-miss false, undecided; L1#1 dirty: c2c (40),
    #    stall 39; L1#1 writes back to memory (MESI), core 1's copies become S.
    # 4. core 1 rmw bytes 127-128: two pieces. Line 0, byte 127: L1#1 hit, S: upgrade (20), stall
    #    19; core 0 loses: its lifetime ends (false); lost W={127}. Line 1, byte 0: cold, memory
    #    (100): the access costs 100, the stall counts the piece's own 20. Line 1 gets no row.
    # 5. core 0 reads byte 127: coherence miss, {127} in W: at-miss true, open-true; c2c, stall 39.
    # End: core 0 open-true -> true.
    m = private_l1_l2(line_size=128)
    rows = [("write", 0, 0, 8), ("write", 1, 120, 8), ("read", 0, 60, 8), ("rmw", 1, 127, 2), ("read", 0, 127, 1)]
    counters, _ = run(m, rows)
    assert verdicts(counters) == v(false=1, true=1, false_at_miss=1, true_at_miss=1)
    assert counters.core[:, K_CYCLES].tolist() == [100 + 40 + 40, 40 + 100]
    assert lines_with_rows(counters) == [0]
    assert counters.sharing.shape == (1, 7 + 2 * (2 + 2 * 2))
    assert row(counters, 0, 2, 128) == {
        **v(false=1, true=1, false_at_miss=1, true_at_miss=1),
        "c2c": 3,
        "stall": 39 + 19 + 39,
        "cores": [(2, 0, bits(range(60, 68), 127), 0), (1, 2, bits(127), bits(range(120, 128)))],
    }
    # the raw int64 words: core 0's read mask is word 0 = bytes 60-63 (bits 60-63, negative),
    # word 1 = bytes 64-67 and 127 (bits 0-3 and 63, negative); core 1's write mask is word 0 = 0,
    # word 1 = bits 56-63
    raw = counters.sharing[0].tolist()
    assert raw[7:13] == [2, 0, (0xF << 60) - (1 << 64), 0xF + (1 << 63) - (1 << 64), 0, 0]
    assert raw[13:19] == [1, 2, 0, -(1 << 63), 0, (0xFF << 56) - (1 << 64)]


def test_sharing_rows_with_32_byte_lines_use_the_low_bits_of_one_word():
    # line size 32.
    # 1. core 0 writes bytes 0-3 of line 0 (before the row).
    # 2. core 1 writes bytes 28-31: c2c, core 0 lost W={28..31}. Row.
    # 3. core 0 reads addr 30, 4 bytes: line 0 bytes 30-31 (coherence miss, overlap: at-miss true,
    #    open-true; c2c, stall 39) and line 1 bytes 0-1 (cold; no row).
    rows = [("write", 0, 0, 4), ("write", 1, 28, 4), ("read", 0, 30, 4)]
    counters, _ = run(machine(cache("L1"), cache("L2", ways=4, latency=10), line_size=32), rows)
    assert verdicts(counters) == v(true=1, true_at_miss=1)
    assert counters.sharing.shape == (1, 7 + 2 * (2 + 2))
    assert counters.sharing[0].tolist() == [0, 0, 1, 0, 1, 2, 39, 1, 0, 0xC0000000, 0, 0, 1, 0, 0xF0000000]


def test_rows_are_sorted_by_line():
    # line 5 gets its row first (core 1 writes it after core 0 read it), then line 2
    rows = [("read", 0, 5 * 64, 1), ("read", 0, 2 * 64, 1), ("write", 1, 5 * 64, 1), ("write", 1, 2 * 64, 1)]
    counters, _ = run(machine(cache("L1", ways=4), cache("L2", ways=4, latency=10)), rows)
    assert lines_with_rows(counters) == [2, 5]


def test_byte_mask_words():
    assert byte_mask_words({0, 63}, 1) == [1 - (1 << 63) + 0]  # bit 0 + bit 63 (negative)
    assert byte_mask_words({64, 127}, 2) == [0, 1 - (1 << 63)]
    assert byte_mask_words(set(range(64)), 1) == [-1]


# --- properties on generated traces --------------------------------------------------------


def check_properties(m: Machine, counters) -> None:
    misses = CACHE_COUNTERS.index("misses")
    # every miss is exactly one class, per instance and per core and spec
    assert counters.cache_classes.sum(axis=1).tolist() == counters.cache[:, misses].tolist()
    assert counters.core_classes.sum(axis=2).tolist() == counters.core_level[:, :, HM_MISSES].tolist()
    # caches shared by all cores are never invalidated
    k = 0
    for spec in m.caches:
        for _ in range(m.cores // spec.shared_by):
            if spec.shared_by == m.cores:
                assert counters.cache_classes[k, MC_COHERENCE] == 0
            k += 1
    if not m.conflict_shadow:
        assert not counters.cache_classes[:, MC_CONFLICT].any()
    # every coherence miss opens one lifetime, which ends exactly once (D8)
    c = counters.coherence
    assert c[H_FALSE_SHARING] + c[H_TRUE_SHARING] == c[H_FALSE_SHARING_AT_MISS] + c[H_TRUE_SHARING_AT_MISS]
    # the rows hold every verdict and every transfer
    t = counters.sharing
    assert t.shape[1] == sharing_width(m.cores, m.line_size)
    assert t[:, S_FALSE].sum() == c[H_FALSE_SHARING] and t[:, S_TRUE].sum() == c[H_TRUE_SHARING]
    assert t[:, S_FALSE_AT_MISS].sum() == c[H_FALSE_SHARING_AT_MISS]
    assert t[:, S_TRUE_AT_MISS].sum() == c[H_TRUE_SHARING_AT_MISS]
    assert t[:, S_C2C].sum() == c[H_C2C]
    lines = t[:, S_LINE].tolist()
    assert lines == sorted(set(lines))
    assert (t[:, S_STALL] >= 0).all()
    words = mask_words(m.line_size)
    for r in t:
        for core in range(m.cores):
            base = len(SHARING_COLUMNS) + core * core_sharing_width(m.line_size)
            read_mask = unsigned(r[base + 2 : base + 2 + words])
            write_mask = unsigned(r[base + 2 + words : base + 2 + 2 * words])
            assert (r[base + SC_READS] > 0) == (read_mask != 0)
            assert (r[base + SC_WRITES] > 0) == (write_mask != 0)
            assert read_mask >> m.line_size == 0 and write_mask >> m.line_size == 0


@settings(max_examples=300, **SETTINGS)
@given(machine_and_events())
def test_classes_add_up_and_rows_hold_every_verdict(case):
    m, events = case
    check_properties(m, simulate(m, events))


@settings(max_examples=150, **SETTINGS)
@given(machine_and_events())
def test_without_the_shadow_conflict_misses_count_as_capacity_and_nothing_else_changes(case):
    m, events = case
    with_shadow = simulate(m, events)
    m2 = dataclasses.replace(m, conflict_shadow=False)
    without = simulate(m2, events)
    check_properties(m2, without)
    for key in ("cache", "core", "core_level", "memory", "coherence", "sharing"):
        assert np.array_equal(getattr(with_shadow, key), getattr(without, key)), key
    for a, b in ((with_shadow.cache_classes, without.cache_classes), (with_shadow.core_classes, without.core_classes)):
        assert np.array_equal(a[..., MC_COLD], b[..., MC_COLD])
        assert np.array_equal(a[..., MC_COHERENCE], b[..., MC_COHERENCE])
        assert np.array_equal(a[..., MC_CAPACITY] + a[..., MC_CONFLICT], b[..., MC_CAPACITY])


@settings(max_examples=100, **SETTINGS)
@given(machine_and_events())
def test_counters_can_be_made_midway_without_changing_the_run(case):
    m, events = case
    half = len(events) // 2
    sim = Simulator(m)
    sim.run(events.take(np.arange(half)))
    sim.counters()
    sim.run(events.take(np.arange(half, len(events))))
    whole = simulate(m, events)
    assert counters_equal(sim.counters(), whole), describe_difference(m, sim.counters(), whole)
