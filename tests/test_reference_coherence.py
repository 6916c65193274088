"""Hand-computed scenarios that pin the protocol rules of docs/coherence.md (MSI, MESI, MOESI) down
on the reference model, and invariants checked after every piece of generated traces.

Every expected number below was worked out by hand from the rulebooks and the readings listed in
the docstring of tests/reference.py (C0-C10); the comments walk through the steps. A copy's state
is written per copy: M (exclusive, dirty), E (exclusive, clean), O (dirty, not exclusive), S
(clean, not exclusive), I (absent). Latencies: L1 1, L2 10, L3 30, memory 100, c2c 40, upgrade 20.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memsim.engine.counters import CACHE_COUNTERS, H_C2C, H_INVALIDATIONS, H_UPGRADES, K_CYCLES, M_READS, M_WRITES
from memsim.machine import Cache, Coherence, Machine

from reference import Simulator, make_events, simulate_with_state
from strategies import access_events, cache_specs, coherences, machine_and_events

LS = 64
C2C, UPGRADE, MEMORY = 40, 20, 100
PROTOCOLS = ("msi", "mesi", "moesi")
X, Y, Z = 0, 1, 2


def cache(name, sets=1, ways=2, latency=1, **kw) -> Cache:
    return Cache(name=name, sets=sets, ways=ways, latency=latency, **kw)


def machine(*levels, cores=2, line_size=LS, protocol="mesi", conflict_shadow=True) -> Machine:
    return Machine(
        name="test",
        cores=cores,
        line_size=line_size,
        levels=tuple(lv if isinstance(lv, tuple) else (lv,) for lv in levels),
        memory_latency=MEMORY,
        coherence=Coherence(protocol=protocol, c2c_latency=C2C, upgrade_latency=UPGRADE),
        conflict_shadow=conflict_shadow,
    )


def run(m: Machine, rows):
    """Rows are (op, core, line) for one-byte accesses at the start of a line, or
    (op, core, addr, size)."""
    full = [(op, core, rest[0] * LS, 1) if len(rest) == 1 else (op, core, *rest) for op, core, *rest in rows]
    return simulate_with_state(m, make_events(full))


def coherence(counters) -> dict[str, int]:
    return {
        "invalidations": int(counters.coherence[H_INVALIDATIONS]),
        "upgrades": int(counters.coherence[H_UPGRADES]),
        "c2c": int(counters.coherence[H_C2C]),
    }


def coh(invalidations=0, upgrades=0, c2c=0) -> dict[str, int]:
    return {"invalidations": invalidations, "upgrades": upgrades, "c2c": c2c}


def stat(counters, k, name) -> int:
    return int(counters.cache[k, CACHE_COUNTERS.index(name)])


def memory(counters) -> tuple[int, int]:
    return int(counters.memory[M_READS]), int(counters.memory[M_WRITES])


def cycles(counters) -> list[int]:
    return counters.core[:, K_CYCLES].tolist()


def copy(sim, name, number, line) -> str:
    """The state of one copy: M, E, O, S or I."""
    slot = sim.instance(name, number).slot(line)
    if slot is None:
        return "I"
    return {(True, True): "M", (True, False): "E", (False, True): "O", (False, False): "S"}[
        (slot.exclusive, slot.dirty)
    ]


def copies(sim, name, line) -> list[str]:
    """The state of ``line`` in every instance of cache ``name``."""
    n = sum(1 for inst in sim.instances if inst.name == name)
    return [copy(sim, name, i, line) for i in range(n)]


# 2 cores: private L1s, one L2 shared by both (not tracked)
def two_cores(protocol="mesi", l1_ways=2):
    return machine(cache("L1", ways=l1_ways), cache("L2", ways=4, latency=10, shared_by=2), protocol=protocol)


# --- ping-pong -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("offsets", [(0, 0), (0, 32)], ids=["same bytes", "different halves"])
def test_write_ping_pong_is_a_c2c_transfer_per_write_after_the_first(protocol, offsets):
    a, b = offsets
    rows = [("write", 0, a, 4), ("write", 1, b, 4), ("write", 0, a, 4), ("write", 1, b, 4), ("write", 0, a, 4)]
    counters, sim = run(two_cores(protocol), rows)
    # 1st: all miss, memory (100); L1#0 M. Each later write: L1 miss, L2 hit (not tracked: no
    # upgrade), the other L1 holds the line dirty: c2c (40), then it is invalidated (no write-back)
    assert coherence(counters) == coh(invalidations=4, c2c=4)
    assert cycles(counters) == [100 + 40 + 40, 40 + 40]
    assert memory(counters) == (1, 0)
    assert copies(sim, "L1", X) == ["M", "I"]
    assert all(stat(counters, k, "writebacks") == 0 for k in range(3))
    assert sim.instance("L2").contents() == [[(X, False)]]  # stale: nothing was written back
    assert [stat(counters, 2, n) for n in ("accesses", "hits", "misses", "writebacks_in")] == [5, 4, 1, 0]


# --- read sharing and upgrades -------------------------------------------------------------


@pytest.mark.parametrize("protocol, after_read, upgrades, cost", [
    ("msi", "S", 1, 100 + UPGRADE),  # MSI: a read never makes a copy exclusive: S -> M upgrade
    ("mesi", "E", 0, 100 + 1),  # alone: E, and the write is a silent E -> M hit
    ("moesi", "E", 0, 100 + 1),
])
def test_read_then_write_by_one_core_alone(protocol, after_read, upgrades, cost):
    m = two_cores(protocol)
    _, sim = run(m, [("read", 0, X)])
    assert copies(sim, "L1", X) == [after_read, "I"]
    counters, sim = run(m, [("read", 0, X), ("write", 0, X)])
    assert coherence(counters) == coh(upgrades=upgrades)
    assert cycles(counters) == [cost, 0]
    assert copies(sim, "L1", X) == ["M", "I"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_two_readers_then_a_write_is_an_upgrade_with_an_invalidation(protocol):
    m = two_cores(protocol)
    # read 1: L2 hit (10), no owner; the downgrade makes L1#0 S (it was E under MESI/MOESI)
    _, sim = run(m, [("read", 0, X), ("read", 1, X)])
    assert copies(sim, "L1", X) == ["S", "S"]
    counters, sim = run(m, [("read", 0, X), ("read", 1, X), ("write", 0, X)])
    assert coherence(counters) == coh(invalidations=1, upgrades=1)
    assert cycles(counters) == [100 + UPGRADE, 10]
    assert copies(sim, "L1", X) == ["M", "I"]


@pytest.mark.parametrize("protocol", ["msi", "mesi"])
def test_read_after_a_remote_write_msi_mesi(protocol):
    m = two_cores(protocol)
    rows = [("write", 0, X), ("read", 1, X)]
    counters, sim = run(m, rows)
    # read 1: L1#1 miss, L2 hit; L1#0 owns X and leads to L2: c2c (40). L1#0 writes back
    # (writebacks 1, not an eviction); the write-back arrives at L2, which holds X: dirty there.
    assert coherence(counters) == coh(c2c=1)
    assert cycles(counters) == [100, C2C]
    assert copies(sim, "L1", X) == ["S", "S"]
    assert sim.instance("L2").contents() == [[(X, True)]]
    assert stat(counters, 0, "writebacks") == 1 and stat(counters, 0, "evictions") == 0
    assert stat(counters, 2, "writebacks_in") == 1
    assert memory(counters) == (1, 0)

    # the writer's next write: L1#0 hit, S: an upgrade, and L1#1 is invalidated
    counters, sim = run(m, rows + [("write", 0, X)])
    assert coherence(counters) == coh(invalidations=1, upgrades=1, c2c=1)
    assert cycles(counters) == [100 + UPGRADE, C2C]
    assert copies(sim, "L1", X) == ["M", "I"]


def test_read_after_a_remote_write_moesi_keeps_the_owner_dirty():
    m = two_cores("moesi")
    rows = [("write", 0, X), ("read", 1, X)]
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(c2c=1)
    assert copies(sim, "L1", X) == ["O", "S"]
    assert sim.instance("L2").contents() == [[(X, False)]]
    assert all(stat(counters, k, "writebacks") == 0 for k in range(3))
    assert stat(counters, 2, "writebacks_in") == 0
    # O -> M is an upgrade too
    counters, sim = run(m, rows + [("write", 0, X)])
    assert coherence(counters) == coh(invalidations=1, upgrades=1, c2c=1)
    assert copies(sim, "L1", X) == ["M", "I"]


@pytest.mark.parametrize("protocol", ["mesi", "moesi"])
def test_three_readers_of_a_dirty_line_private_l1s_only(protocol):
    m = machine(cache("L1"), cores=3, protocol=protocol)
    rows = [("write", 0, X), ("read", 1, X), ("read", 2, X)]
    counters, sim = run(m, rows)
    if protocol == "moesi":
        # both reads miss to memory and find L1#0 dirty: two c2c transfers from the O copy; the
        # fills still count memory reads (X is memory, C4)
        assert coherence(counters) == coh(c2c=2)
        assert cycles(counters) == [100, C2C, C2C]
        assert memory(counters) == (3, 0)
        assert copies(sim, "L1", X) == ["O", "S", "S"]
        # core 1 writes: L1#1 hit S: an upgrade, which takes precedence over the O elsewhere (no
        # transfer); L1#0 (dirty, dropped without a write-back) and L1#2 are invalidated
        counters, sim = run(m, rows + [("write", 1, X)])
        assert coherence(counters) == coh(invalidations=2, upgrades=1, c2c=2)
        assert memory(counters) == (3, 0)
        assert copies(sim, "L1", X) == ["I", "M", "I"]
    else:
        # the first read: c2c, L1#0 writes back to memory (no cache below it); the second read
        # finds no owner: plain memory latency
        assert coherence(counters) == coh(c2c=1)
        assert cycles(counters) == [100, C2C, 100]
        assert memory(counters) == (3, 1)
        assert stat(counters, 0, "writebacks") == 1
        assert copies(sim, "L1", X) == ["S", "S", "S"]


def test_eviction_of_a_sharer_keeps_the_others_shared():
    m = two_cores("mesi", l1_ways=1)
    rows = [
        ("read", 0, X),
        ("read", 1, X),  # both S
        ("read", 1, Y),  # L1#1 evicts X (silently)
        ("read", 0, X),  # L1#0 hit: a local read changes nothing (C1): still S
        ("write", 0, X),  # L1#0 hit, S: an upgrade; nobody else holds X: no invalidation
    ]
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(upgrades=1)
    assert cycles(counters) == [100 + 1 + UPGRADE, 10 + 100]
    assert copies(sim, "L1", X) == ["M", "I"]


@pytest.mark.parametrize("protocol, state, upgrades", [("msi", "S", 1), ("mesi", "E", 0), ("moesi", "E", 0)])
def test_a_non_local_read_of_a_line_nobody_else_holds_grants_e(protocol, state, upgrades):
    m = two_cores(protocol, l1_ways=1)
    rows = [
        ("read", 0, X),
        ("read", 1, X),
        ("read", 1, Y),  # L1#1 evicts X
        ("read", 0, Z),  # L1#0 evicts X
        ("read", 0, X),  # L1#0 miss, L2 hit: non-local, and nobody else holds X (C6)
    ]
    _, sim = run(m, rows)
    assert copies(sim, "L1", X) == [state, "I"]
    counters, _ = run(m, rows + [("write", 0, X)])
    assert coherence(counters) == coh(upgrades=upgrades)


# --- writes that are neither upgrades nor transfers ----------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_write_served_below_the_tracked_caches_invalidates_only(protocol):
    counters, sim = run(two_cores(protocol), [("read", 0, X), ("write", 1, X)])
    # write 1: L1#1 miss, L2 hit: L2 is not tracked, so no upgrade; L1#0 is clean: no transfer
    assert coherence(counters) == coh(invalidations=1)
    assert cycles(counters) == [100, 10]
    assert copies(sim, "L1", X) == ["I", "M"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_lines_in_no_tracked_cache(protocol):
    m = machine(cache("L1", write_allocate=False), protocol=protocol)
    rows = [
        ("write", 0, X),  # no cache allocates: a memory write, nothing to do for coherence
        ("write", 1, X),  # same
        ("read", 0, X),  # L1#0 <- X (E under MESI/MOESI, S under MSI)
        ("write", 1, X),  # L1#1 miss, memory; L1#0 clean: no transfer; invalidated; memory write
    ]
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(invalidations=1)
    assert memory(counters) == (1, 3)
    assert cycles(counters) == [200, 200]
    assert copies(sim, "L1", X) == ["I", "I"]


def test_straddling_write_costs_its_slowest_piece_upgrade_or_transfer():
    m = two_cores("msi")
    rows = [
        ("write", 1, 1),  # line 1: L1#1 M
        ("read", 0, 0),  # line 0: L1#0 S (MSI)
        # [60, 68): line 0 is an upgrade (20); line 1 misses L1#0, L2 hit, L1#1 owns it: c2c (40)
        # and L1#1 is invalidated. The access costs max(20, 40).
        ("write", 0, 60, 8),
    ]
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(invalidations=1, upgrades=1, c2c=1)
    assert cycles(counters) == [100 + C2C, 100]
    assert copies(sim, "L1", 0) == ["M", "I"] and copies(sim, "L1", 1) == ["M", "I"]


# --- write-through private L1 over a private write-back L2 ---------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_write_through_l1_the_owner_is_the_private_l2(protocol):
    m = machine(cache("L1", write="through"), cache("L2", latency=10), protocol=protocol)
    # instances: L1#0 k0, L1#1 k1, L2#0 k2, L2#1 k3
    rows = [("write", 0, X)]
    counters, sim = run(m, rows)
    # all miss; L2#0 and L1#0 install; the store goes to L1#0 (write-through: stays clean) and is
    # forwarded to L2#0 (writebacks_in), which becomes dirty; both copies exclusive (W4)
    assert copies(sim, "L1", X) == ["E", "I"] and copies(sim, "L2", X) == ["M", "I"]
    assert stat(counters, 2, "writebacks_in") == 1

    rows.append(("read", 1, X))
    counters, sim = run(m, rows)
    # read 1: both of core 1's caches miss, memory; L2#0 owns X: c2c (40)
    assert coherence(counters) == coh(c2c=1)
    assert cycles(counters) == [100, C2C]
    if protocol == "moesi":
        assert copies(sim, "L2", X) == ["O", "S"] and copies(sim, "L1", X) == ["S", "S"]
        assert memory(counters) == (2, 0)
        assert stat(counters, 2, "writebacks") == 0
    else:
        # L2#0 (the topmost dirty cache of core 0) writes back; below it is memory
        assert copies(sim, "L2", X) == ["S", "S"] and copies(sim, "L1", X) == ["S", "S"]
        assert memory(counters) == (2, 1)
        assert stat(counters, 2, "writebacks") == 1

    rows.append(("write", 0, X))
    counters, sim = run(m, rows)
    # write 0: L1#0 hit, not exclusive: an upgrade (a write-through tracked cache takes part);
    # core 1 loses L1#1 and L2#1: one participant, one invalidation. Forwarded to L2#0 again.
    assert coherence(counters) == coh(invalidations=1, upgrades=1, c2c=1)
    assert cycles(counters) == [100 + UPGRADE, C2C]
    assert copies(sim, "L1", X) == ["E", "I"] and copies(sim, "L2", X) == ["M", "I"]
    assert stat(counters, 2, "writebacks_in") == 2


# --- a group-shared L2 ---------------------------------------------------------------------


def four_cores(protocol="mesi", l2_ways=4):
    # L1#0-3 k0-3, L2#0 (cores 0, 1) k4, L2#1 (cores 2, 3) k5, L3 (all, not tracked) k6
    return machine(
        cache("L1"),
        cache("L2", ways=l2_ways, latency=10, shared_by=2),
        cache("L3", ways=8, latency=30, shared_by=4),
        cores=4,
        protocol=protocol,
    )


def test_group_shared_l2_mesi():
    m = four_cores("mesi")
    rows = [("write", 1, X)]  # memory; L1#1 M, L2#0 E (a group cache on core 1's path), L3 holds X
    _, sim = run(m, rows)
    assert copies(sim, "L1", X) == ["I", "M", "I", "I"] and copies(sim, "L2", X) == ["E", "I"]

    # read 0: L1#0 miss, L2#0 hit: X = L2#0, not a shared_by 1 cache: non-local. L1#1 owns X and
    # leads to L2#0: c2c; L1#1 writes back into L2#0 (dirty). Core 0 is not alone (L1#1 holds
    # X): every copy on its paths is shared, L2#0 included (C6), so L2#0 is dirty and shared.
    rows.append(("read", 0, X))
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(c2c=1)
    assert copies(sim, "L1", X) == ["S", "S", "I", "I"] and copies(sim, "L2", X) == ["O", "I"]
    assert stat(counters, 1, "writebacks") == 1 and stat(counters, 4, "writebacks_in") == 1

    rows.append(("write", 0, X))  # L1#0 hit, S: upgrade; core 1 invalidated; L1#0 and L2#0 M
    # read 2: L1#2, L2#1 miss, L3 hit. Owners outside P(2) leading to L3: L1#0 and L2#0 (one
    # transfer). L1#0, the topmost, writes back into L2#0; L2#0, still dirty, then writes back
    # into L3 (C3: until no owner is left).
    rows.append(("read", 2, X))
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(invalidations=1, upgrades=1, c2c=2)
    assert copies(sim, "L1", X) == ["S", "I", "S", "I"] and copies(sim, "L2", X) == ["S", "S"]
    assert sim.instance("L3").contents() == [[(X, True)]]
    assert [stat(counters, k, "writebacks") for k in range(7)] == [1, 1, 0, 0, 1, 0, 0]
    assert [stat(counters, k, "writebacks_in") for k in range(7)] == [0, 0, 0, 0, 2, 0, 1]

    # write 1: L1#1 miss, L2#0 hit, not exclusive: an upgrade although core 1's L1 missed (C7);
    # core 0 (L1#0), core 2 (L1#2) and L2#1 are invalidated
    rows.append(("write", 1, X))
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(invalidations=4, upgrades=2, c2c=2)
    assert copies(sim, "L1", X) == ["I", "M", "I", "I"] and copies(sim, "L2", X) == ["E", "I"]
    assert cycles(counters) == [C2C + UPGRADE, 100 + UPGRADE, C2C, 0]
    assert memory(counters) == (1, 0)
    assert [stat(counters, 4, n) for n in ("accesses", "hits", "misses")] == [3, 2, 1]


def test_group_shared_l2_moesi():
    rows = [("write", 1, X), ("read", 0, X), ("write", 0, X), ("read", 2, X), ("write", 1, X)]
    m = four_cores("moesi")
    counters, sim = run(m, rows[:2])
    # read 0: c2c, L1#1 stays dirty (O); L2#0 stays clean and is shared now
    assert copies(sim, "L1", X) == ["S", "O", "I", "I"] and copies(sim, "L2", X) == ["S", "I"]
    counters, sim = run(m, rows[:4])
    # write 0: upgrade, drops L1#1's O copy; read 2: the owner is L1#0 only (L2#0 is clean)
    assert copies(sim, "L1", X) == ["O", "I", "S", "I"] and copies(sim, "L2", X) == ["S", "S"]
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(invalidations=4, upgrades=2, c2c=2)
    assert not counters.cache[:, CACHE_COUNTERS.index("writebacks")].any()
    assert sim.instance("L3").contents() == [[(X, False)]]


def test_group_cache_is_not_exclusive_while_its_cores_share():
    m = four_cores("mesi")
    rows = [
        ("write", 1, X),  # L1#1 M, L2#0 E
        ("read", 0, X),  # c2c; L1#1 writes back into L2#0: L2#0 O, L1#0 S, L1#1 S
        ("read", 1, Y),  # memory; L1#1 [X, Y]
        ("read", 1, Z),  # memory; L1#1 evicts X (clean: dropped)
        # L1#1 miss, L2#0 hit, not exclusive: an upgrade (no transfer: W1 comes first, and
        # L1#0 is clean anyway); L1#0 is invalidated.
        ("write", 1, X),
    ]
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(invalidations=1, upgrades=1, c2c=1)
    assert cycles(counters) == [C2C, 100 + 100 + 100 + UPGRADE, 0, 0]
    assert copies(sim, "L1", X) == ["I", "M", "I", "I"] and copies(sim, "L2", X) == ["M", "I"]
    assert memory(counters) == (3, 0)


def test_a_downgrade_write_back_can_land_above_the_server_on_the_readers_path():
    m = four_cores("mesi", l2_ways=1)
    m = dataclasses.replace(m, levels=m.levels[:2])  # no L3: below the L2s is memory
    rows = [
        ("write", 0, X),  # L2#0 <- X, L1#0 <- X (M)
        ("read", 0, Y),  # L2#0 (1 way) evicts X (clean: dropped), takes Y; L1#0 [X*, Y]
        # read 1: L1#1 and L2#0 miss: X = memory. L1#0 owns X: c2c; its write-back arrives at
        # L2#0 (below core 0's caches), which installs X dirty, evicting Y. L2#0 is on core 1's
        # path: the fill finds X there (C4): L1#1 installs from L2#0, memory counts no read.
        ("read", 1, X),
    ]
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(c2c=1)
    assert copies(sim, "L1", X) == ["S", "S", "I", "I"] and copies(sim, "L2", X) == ["O", "I"]
    assert memory(counters) == (2, 0)
    l2 = ("accesses", "hits", "misses", "evictions", "writebacks_in")
    assert [stat(counters, 4, n) for n in l2] == [3, 0, 3, 2, 1]
    # read 2 (the other group): memory; L2#0 owns X and writes it back to memory
    counters, sim = run(m, rows + [("read", 2, X)])
    assert coherence(counters) == coh(c2c=2)
    assert copies(sim, "L2", X) == ["S", "S"]
    assert memory(counters) == (3, 1)
    assert stat(counters, 4, "writebacks") == 1


def test_downgrade_write_backs_cascade_into_an_exclusive_server():
    # L1#0-3 k0-3 (2 ways), L2#0 k4, L2#1 k5 (pairs, 1 way), L3 k6 (all, exclusive, 4 ways)
    m = machine(
        cache("L1"),
        cache("L2", ways=1, latency=10, shared_by=2),
        cache("L3", ways=4, latency=30, shared_by=4, inclusion="exclusive"),
        cores=4,
    )
    W = 1
    rows = [
        ("write", 0, X),  # memory; L2#0 <- X, L1#0 <- X (M)
        ("read", 0, W),  # memory; L2#0 evicts X (clean) into L3 (fill 1); L1#0 [X*, W]
        # read 2: L1#2, L2#1 miss, L3 hit. L1#0 owns X: c2c. L1#0 writes back into L2#0, which
        # installs X dirty and evicts W into L3 (fill 2: L3 [X, W]); L2#0 is dirty now and leads
        # to L3: it writes back too, into L3, which marks X dirty (C3). Then X moves up out of L3,
        # dirty, into L2#1 (not alone: shared, so L2#1 is O); L1#2 <- X.
        ("read", 2, X),
    ]
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(c2c=1)
    assert [stat(counters, k, "writebacks") for k in range(7)] == [1, 0, 0, 0, 1, 0, 0]
    assert [stat(counters, k, "writebacks_in") for k in range(7)] == [0, 0, 0, 0, 1, 0, 1]
    assert copies(sim, "L1", X) == ["S", "I", "S", "I"] and copies(sim, "L2", X) == ["S", "O"]
    assert sim.instance("L3").ways() == [[None, (W, False), None, None]]
    rows += [
        ("read", 3, 2),  # memory; L2#1 evicts X* (writeback) into L3's free way 0 (fill 3)
        ("read", 3, W),  # L3 hit: W moves up into L2#1, which evicts line 2 into L3 (fill 4)
        ("read", 3, X),  # L3 hit (no owner left): X moves up dirty; L2#1 evicts W into L3 (fill 5)
    ]
    counters, sim = run(m, rows)
    assert [stat(counters, 6, n) for n in ("accesses", "hits", "misses", "fills")] == [6, 3, 3, 5]
    assert memory(counters) == (3, 0)
    assert cycles(counters) == [200, 0, C2C, 100 + 30 + 30]
    assert stat(counters, 5, "writebacks") == 1
    assert copies(sim, "L2", X) == ["S", "O"]


# --- instruction caches --------------------------------------------------------------------


def split_two_cores(protocol):
    # L1i#0 k0, L1i#1 k1, L1d#0 k2, L1d#1 k3, L2 (shared by both, not tracked) k4
    return machine(
        (cache("L1i", serves="instructions"), cache("L1d", serves="data")),
        cache("L2", ways=4, latency=10, shared_by=2),
        protocol=protocol,
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_instruction_caches_take_part(protocol):
    m = split_two_cores(protocol)
    rows = [("ifetch", 0, X)]
    _, sim = run(m, rows)
    assert copies(sim, "L1i", X) == ["S" if protocol == "msi" else "E", "I"]

    # write 0: L1d#0 miss, L2 hit (not tracked): no upgrade even under MSI, where L1i#0 holds X
    # shared (C7); the core's own L1i keeps its copy, which becomes exclusive (W4)
    rows.append(("write", 0, X))
    counters, sim = run(m, rows)
    assert coherence(counters) == coh()
    assert copies(sim, "L1i", X) == ["E", "I"] and copies(sim, "L1d", X) == ["M", "I"]

    # ifetch 1: L1i#1 miss, L2 hit; L1d#0 owns X: c2c
    rows.append(("ifetch", 1, X))
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(c2c=1)
    assert cycles(counters) == [100 + 10, C2C]
    assert copies(sim, "L1i", X) == ["S", "S"]
    assert copies(sim, "L1d", X) == ["O" if protocol == "moesi" else "S", "I"]
    assert stat(counters, 2, "writebacks") == (0 if protocol == "moesi" else 1)

    # write 1: L1d#1 miss, L2 hit: no upgrade; under MOESI L1d#0 still owns X: a transfer.
    # Core 0 loses L1i#0 and L1d#0: one invalidation. Core 1's L1i#1 stays, exclusive.
    rows.append(("write", 1, X))
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(invalidations=1, c2c=2 if protocol == "moesi" else 1)
    assert copies(sim, "L1i", X) == ["I", "E"] and copies(sim, "L1d", X) == ["I", "M"]


# --- exclusive levels and eviction-driven installs -----------------------------------------


def exclusive_l2(protocol):
    # L1#0 k0, L1#1 k1 (1 way each), L2 shared by both, exclusive (not tracked) k2
    return machine(cache("L1", ways=1), cache("L2", ways=4, latency=10, shared_by=2, inclusion="exclusive"),
                   protocol=protocol)


def test_msi_dirty_line_moving_up_out_of_an_exclusive_level_is_m():
    m = exclusive_l2("msi")
    rows = [
        ("write", 0, X),  # L1#0 M
        ("read", 0, Y),  # L1#0 evicts X (writeback) -> victim fill into L2, dirty; L1#0 <- Y (S)
        # L1#0 miss, L2 hit: X moves up dirty into L1#0 (L1#0 evicts Y into L2). Nobody else
        # holds X: M even under MSI (C6); L2 cannot keep the exclusive bit
        ("read", 0, X),
        ("write", 0, X),  # L1#0 hit, exclusive: no upgrade
    ]
    counters, sim = run(m, rows)
    assert coherence(counters) == coh()
    assert copies(sim, "L1", X) == ["M", "I"]
    assert cycles(counters) == [100 + 100 + 10 + 1, 0]
    assert stat(counters, 2, "fills") == 2
    assert memory(counters) == (2, 0)


def test_dirty_line_moving_up_to_another_core_makes_it_the_owner():
    m = exclusive_l2("msi")
    rows = [
        ("write", 0, X),
        ("read", 0, Y),  # X* goes to L2
        ("read", 1, X),  # L2 hit: X moves up dirty into L1#1; alone: M
        # read 0: L1#0 (holds Y) and L2 miss: memory. L1#1 owns X: c2c; it writes back: the
        # write-back arrives at L2 (exclusive, lacks X): forwarded to memory. L1#0 evicts Y into L2.
        ("read", 0, X),
    ]
    counters, sim = run(m, rows)
    assert coherence(counters) == coh(c2c=1)
    assert copies(sim, "L1", X) == ["S", "S"]
    assert cycles(counters) == [100 + 100 + C2C, 10]
    assert memory(counters) == (3, 1)
    assert [stat(counters, 2, n) for n in ("writebacks_in", "fills")] == [1, 2]
    assert stat(counters, 1, "writebacks") == 1


def test_msi_victim_installed_in_the_private_l2_keeps_the_participants_state():
    # L1#0 k0, L1#1 k1, L2#0 k2, L2#1 k3; one way everywhere
    m = machine(cache("L1", ways=1), cache("L2", ways=1, latency=10), protocol="msi")
    rows = [
        ("write", 0, X),  # L2#0 <- X (E), L1#0 <- X (M)
        # L1#0, L2#0 miss: memory. L2#0 evicts X (clean, dropped) and takes Y; L1#0 evicts X*:
        # its write-back arrives at L2#0, which installs X dirty with the victim's exclusive bit
        # (C8), evicting Y; L1#0 <- Y (S: MSI)
        ("read", 0, Y),
        ("read", 0, X),  # local: L1#0 miss, L2#0 hit; L1#0 takes L2#0's bit (C1): E
        ("write", 0, X),  # L1#0 hit, exclusive: no upgrade
    ]
    counters, sim = run(m, rows)
    assert coherence(counters) == coh()
    assert copies(sim, "L1", X) == ["M", "I"] and copies(sim, "L2", X) == ["M", "I"]
    assert cycles(counters) == [100 + 100 + 10 + 1, 0]
    assert [stat(counters, 2, n) for n in ("evictions", "writebacks_in")] == [2, 1]

    # read 1: memory; L1#0 and L2#0 (one participant) own X: one transfer; the participant's dirty
    # copies become clean and the topmost, L1#0, counts the one write-back, which goes below L2#0:
    # memory
    counters, sim = run(m, rows + [("read", 1, X)])
    assert coherence(counters) == coh(c2c=1)
    assert copies(sim, "L1", X) == ["S", "S"] and copies(sim, "L2", X) == ["S", "S"]
    assert stat(counters, 0, "writebacks") == 2 and stat(counters, 2, "writebacks") == 0
    assert memory(counters) == (3, 1)
    assert cycles(counters)[1] == C2C


# --- single core: no tracked cache, the protocol changes nothing ---------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(machine_and_events(max_cores=1))
def test_single_core_counters_do_not_depend_on_the_protocol(case):
    m, events = case
    results = [
        simulate_with_state(dataclasses.replace(m, coherence=Coherence(p, 7, 3)), events)[0] for p in PROTOCOLS
    ]
    for r in results:
        assert not r.coherence.any()
        for a, b in zip(results[0].as_dict().values(), r.as_dict().values()):
            assert np.array_equal(a, b)


# --- invariants after every piece ----------------------------------------------------------


def check_state(sim: Simulator, where) -> None:
    cores = range(sim.machine.cores)
    lines = {line for inst in sim.instances for line in inst.lines()}
    for inst in sim.instances:
        if not inst.tracked:
            assert not any(e for s in inst.states() for _, _, e in s), (where, inst, "untracked exclusive")
    for line in lines:
        holders = sim.holders(line)
        held = {inst.k for inst, _ in holders}
        # one exclusive bit per participant
        bits: dict[object, set[bool]] = {}
        for inst, slot in holders:
            bits.setdefault(sim.participant[inst.k], set()).add(slot.exclusive)
        assert all(len(b) == 1 for b in bits.values()), (where, line, "participant bits differ")
        exclusive = [inst for inst, slot in holders if slot.exclusive]
        # an exclusive copy: every tracked copy of the line is on one core's paths ...
        if exclusive:
            assert any(held <= sim.on_paths[c] for c in cores), (where, line, "exclusive copy shared")
        # ... so a private exclusive copy means no other core's private caches hold the line
        for inst in exclusive:
            if inst.spec.shared_by == 1:
                others = {h.first_core for h, _ in holders if h.spec.shared_by == 1}
                assert others == {inst.first_core}, (where, line, inst, "private exclusive copy shared")
        # MSI, MESI: all dirty copies lie on one core's paths
        if sim.protocol != "moesi":
            dirty = {inst.k for inst, slot in holders if slot.dirty}
            assert not dirty or any(dirty <= sim.on_paths[c] for c in cores), (where, line, "dirty copies apart")


class Checked(Simulator):
    """The reference model, checking the protocol's invariants after every piece."""

    def piece(self, core, kind, is_write, line):
        path = self.paths[core][kind]
        mine = self.on_paths[core]
        x = next((inst for inst in path if inst.holds(line)), None)
        latency = x.spec.latency if x is not None else self.machine.memory_latency
        local = x is not None and x.spec.shared_by == 1
        before = (self.invalidations, self.upgrades, self.c2c_transfers)
        cost = super().piece(core, kind, is_write, line)
        where = (core, kind, is_write, line, x)
        d_inv, d_upg, d_c2c = (a - b for a, b in zip((self.invalidations, self.upgrades, self.c2c_transfers), before))
        assert d_upg + d_c2c <= 1, where
        c = self.machine.coherence
        assert cost == (c.upgrade_latency if d_upg else c.c2c_latency if d_c2c else latency), where
        holders = self.holders(line)
        if is_write:
            assert all(inst.k in mine and slot.exclusive for inst, slot in holders), where
            assert not d_upg or (x is not None and x.tracked)
        else:
            assert d_upg == 0 and d_inv == 0, where
            assert not (local and d_c2c), where
            if not local:
                outside = [(inst, slot) for inst, slot in holders if inst.k not in mine]
                assert not any(slot.exclusive for _, slot in outside), where
                if self.protocol != "moesi":
                    assert not any(
                        slot.dirty and (x is None or x in inst.chain()) for inst, slot in outside
                    ), (where, "owner left dirty")
                if self.protocol != "msi" and not outside:
                    assert all(slot.exclusive for _, slot in holders), (where, "alone but not exclusive")
        check_state(self, where)
        return cost


@st.composite
def cluster_machines(draw) -> Machine:
    """4 cores: private L1s (maybe split), L2s shared by pairs, maybe an L3 for all."""
    split = draw(st.booleans())
    if split:
        l1 = (draw(cache_specs("L1i", 0, 1, "instructions")), draw(cache_specs("L1d", 0, 1, "data")))
    else:
        l1 = (draw(cache_specs("L1", 0, 1)),)
    levels = [l1, (draw(cache_specs("L2", 1, 2)),)]
    if draw(st.booleans()):
        levels.append((draw(cache_specs("L3", 2, 4)),))
    return Machine(
        name="cluster",
        cores=4,
        line_size=32,
        levels=tuple(levels),
        memory_latency=100,
        seed=draw(st.integers(0, 99)),
        coherence=draw(coherences()),
    )


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=400, **SETTINGS)
@given(machine_and_events())
def test_protocol_invariants_after_every_piece(case):
    m, events = case
    Checked(m).run(events)


@settings(max_examples=300, **SETTINGS)
@given(st.data())
def test_protocol_invariants_on_clusters(data):
    m = data.draw(cluster_machines(), label="machine")
    events = data.draw(access_events(m, max_events=80), label="events")
    Checked(m).run(events)


def test_checked_model_counts_like_the_model():
    # the checking subclass must not change anything
    m = four_cores("moesi")
    rows = [("write", 1, X), ("read", 0, X), ("write", 0, X), ("read", 2, X), ("write", 1, X), ("ifetch", 3, X)]
    ev = make_events([(op, core, line * LS, 1) for op, core, line in rows])
    a = simulate_with_state(m, ev)[0]
    b = Checked(m).run(ev).counters()
    for x, y in zip(a.as_dict().values(), b.as_dict().values()):
        assert np.array_equal(x, y)
