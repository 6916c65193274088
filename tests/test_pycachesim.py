"""Cross-check against pycachesim (https://github.com/RRZE-HPC/pycachesim, module ``cachesim``).

pycachesim is an independent C implementation of the same kind of cache: set-associative, lines of
``cl_size`` bytes, line ``L`` in set ``L mod sets`` (any set count, not only powers of two), LRU or
FIFO per set. Its default hierarchy (the one its README builds: each level ``load_from`` and
``store_to`` the next, no ``victims_to``) is non-inclusive, like memsim's ``nine``: a miss walks
down, every missing level installs the line on the way back up, clean victims are dropped. On
load-only traces both simulators must then give exactly the same hits and misses per level.

Counting that is compared: pycachesim's ``load(addrs, length)`` loads every line of
``[addr, addr+length)`` and counts one hit or miss per line (``HIT_count``/``MISS_count`` of each
level's backend); memsim splits an access into one piece per line and its caches count pieces.
pycachesim's ``LOAD_count`` counts calls, not lines, and its ``EVICT_count`` only dirty or
victim-cache evictions, so neither is compared. Memory reads must equal the last level's misses.

pycachesim's scalar ``load(addr, length)`` parses the address as a C ``unsigned int`` (its
``Cache_load`` uses the format ``"I"``): addresses are silently truncated to 32 bits. The list form
(``iterload``, ``PyLong_AsLong``) takes 64-bit addresses, so this file only uses the list form.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

cachesim = pytest.importorskip("cachesim")

from memsim.engine.counters import C_ACCESSES, C_HITS, C_MISSES, HM_HITS, HM_MISSES, M_READS  # noqa: E402
from memsim.engine.replay import replay_counters  # noqa: E402
from memsim.machine import Cache, Machine  # noqa: E402
from memsim.trace.events import NO_OBJECT, OP_READ, Events  # noqa: E402

POLICIES = {"lru": "LRU", "fifo": "FIFO"}
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

Geometry = tuple[tuple[int, int], ...]  # (sets, ways) per level, top first


# ----------------------------------------------------------------------------------------------
# building both simulators


def memsim_machine(geometry: Geometry, policy: str, line_size: int) -> Machine:
    levels = tuple(
        (Cache(name=f"L{i + 1}", sets=sets, ways=ways, latency=4 * (i + 1), replacement=policy),)
        for i, (sets, ways) in enumerate(geometry)
    )
    return Machine(name="xcheck", cores=1, line_size=line_size, levels=levels, memory_latency=200)


def pycachesim_hierarchy(geometry: Geometry, policy: str, line_size: int):
    """Build the hierarchy as pycachesim's README does: from the last level up, each level
    ``load_from`` and ``store_to`` the one below it, memory below the last, no victim caches."""
    mem = cachesim.MainMemory()
    below = None
    levels = []
    for i in reversed(range(len(geometry))):
        sets, ways = geometry[i]
        cache = cachesim.Cache(f"L{i + 1}", sets, ways, line_size, POLICIES[policy], store_to=below, load_from=below)
        if below is None:
            mem.load_to(cache)
            mem.store_from(cache)
        levels.append(cache)
        below = cache
    levels.reverse()
    return cachesim.CacheSimulator(levels[0], mem), levels


def load_events(addr: np.ndarray, size: np.ndarray) -> Events:
    ev = Events.empty(len(addr))
    ev.op[:] = OP_READ
    ev.obj[:] = NO_OBJECT
    ev.addr[:] = addr
    ev.size[:] = size
    return ev


# ----------------------------------------------------------------------------------------------
# running both and comparing


def pycachesim_counts(geometry: Geometry, policy: str, line_size: int, addr, size) -> dict:
    cs, levels = pycachesim_hierarchy(geometry, policy, line_size)
    # one list call per run of equal sizes: iterload walks the list in C, and keeps 64-bit addresses
    pairs = zip(np.asarray(addr).tolist(), np.asarray(size).tolist())
    for length, run in itertools.groupby(pairs, key=lambda p: p[1]):
        cs.load([a for a, _ in run], length=length)
    stats = list(cs.stats())  # one dict per level, then main memory
    return {
        "hits": [s["HIT_count"] for s in stats[:-1]],
        "misses": [s["MISS_count"] for s in stats[:-1]],
        "memory_reads": stats[-1]["LOAD_count"],
    }


def memsim_counts(geometry: Geometry, policy: str, line_size: int, addr, size, chunk_size=None) -> dict:
    k = replay_counters(memsim_machine(geometry, policy, line_size), load_events(addr, size), chunk_size=chunk_size)
    # single core: one instance per level, instances ordered as the levels
    assert np.array_equal(k.cache[:, C_ACCESSES], k.cache[:, C_HITS] + k.cache[:, C_MISSES])
    assert np.array_equal(k.core_level[0, :, HM_HITS], k.cache[:, C_HITS])
    assert np.array_equal(k.core_level[0, :, HM_MISSES], k.cache[:, C_MISSES])
    return {
        "hits": k.cache[:, C_HITS].tolist(),
        "misses": k.cache[:, C_MISSES].tolist(),
        "memory_reads": int(k.memory[M_READS]),
    }


def pieces(addr, size, line_size: int) -> int:
    addr, size = np.asarray(addr, np.int64), np.asarray(size, np.int64)
    return int(((addr + size - 1) // line_size - addr // line_size + 1).sum())


def check(geometry: Geometry, policy: str, line_size: int, addr, size, chunk_size=None) -> dict:
    want = pycachesim_counts(geometry, policy, line_size, addr, size)
    got = memsim_counts(geometry, policy, line_size, addr, size, chunk_size)
    assert got == want, (
        f"memsim and pycachesim differ on {policy} {geometry} line {line_size}, {len(addr)} loads\n"
        f"  memsim:     {got}\n  pycachesim: {want}\n"
        f"  first loads (addr, size): {list(zip(np.asarray(addr)[:12].tolist(), np.asarray(size)[:12].tolist()))}"
    )
    # the top level sees every per-line piece once
    assert got["hits"][0] + got["misses"][0] == pieces(addr, size, line_size)
    return got


# ----------------------------------------------------------------------------------------------
# traces (numpy, seeded)

LINE = 64


def capacity(geometry: Geometry, line_size: int = LINE) -> int:
    return max(sets * ways for sets, ways in geometry) * line_size


def random_loads(geometry: Geometry, n: int, seed: int, line_size: int = LINE):
    """(a) uniform random 8-byte loads over four times the largest cache."""
    rng = np.random.default_rng(seed)
    span = 4 * capacity(geometry, line_size)
    return rng.integers(0, span // 8, n) * 8, np.full(n, 8)


def stream_loads(geometry: Geometry, n: int, seed: int, line_size: int = LINE):
    """(b) a sequential stream of 8-byte loads (``n`` is ignored: the length follows the caches): twice
    over half the largest cache (hits on the second pass), then twice over 1.5 times it (LRU and
    FIFO both thrash on the second pass)."""
    cap = capacity(geometry, line_size)
    small = np.arange(0, cap // 2, 8)
    big = np.arange(0, cap + cap // 2, 8) + (1 << 33)  # above 2**32: no 32-bit truncation anywhere
    addr = np.concatenate([small, small, big, big])
    return addr, np.full(len(addr), 8)


def strided_loads(geometry: Geometry, n: int, seed: int, line_size: int = LINE):
    """(c) conflicting strides: at each level's set stride (sets * line), cycle over a few more (and
    a few fewer) lines than that level has ways, so the lines fight over one set."""
    rng = np.random.default_rng(seed)
    parts = []
    for sets, ways in geometry:
        stride = sets * line_size
        for k in (ways - 1, ways, ways + 1, 2 * ways + 1):
            k = max(k, 1)
            base = int(rng.integers(0, 1 << 20)) * line_size
            ring = base + stride * np.arange(k)
            parts.append(np.tile(ring, max(1, n // (4 * len(geometry) * k))))
    # plus a power-of-two stride (conflicts in power-of-two-set caches, spreads in the others)
    parts.append(np.tile(np.arange(48) * 4096, 20))
    addr = np.concatenate(parts)
    return addr, np.full(len(addr), 8)


def straddling_loads(geometry: Geometry, n: int, seed: int, line_size: int = LINE):
    """(d) unaligned loads whose sizes do not divide the line: many cover two or more lines."""
    rng = np.random.default_rng(seed)
    span = 2 * capacity(geometry, line_size)
    addr = rng.integers(0, span, n)
    size = rng.choice([3, 7, 12, 24, 60, 65, 100, 2 * line_size + 5], n)
    # and runs of equal sizes stepping across line ends
    addr[: n // 4] = (np.arange(n // 4) * 37) % span
    size[: n // 4] = 13
    return addr, size


PATTERNS = {"random": random_loads, "stream": stream_loads, "strided": strided_loads, "straddling": straddling_loads}

GEOMETRIES = {
    "L1": ((64, 8),),
    "L1-npot": ((48, 4),),  # 48 sets: not a power of two
    "L1-direct": ((128, 1),),
    "L1-full": ((1, 32),),  # fully associative
    "L1L2L3": ((64, 8), (256, 8), (1024, 16)),
    "L1L2L3-npot": ((24, 4), (96, 8), (384, 12)),
}


# ----------------------------------------------------------------------------------------------
# tests


@pytest.fixture(scope="module", autouse=True)
def warm_up_the_jit():
    """Compile the kernel once, outside hypothesis' timing."""
    memsim_counts(((1, 1),), "lru", LINE, np.array([0]), np.array([1]))


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("geometry", GEOMETRIES.values(), ids=GEOMETRIES.keys())
@pytest.mark.parametrize("pattern", PATTERNS.values(), ids=PATTERNS.keys())
def test_same_hits_and_misses(pattern, geometry, policy):
    addr, size = pattern(geometry, 20_000, seed=len(geometry) * 7 + sum(s for s, _ in geometry))
    got = check(geometry, policy, LINE, addr, size)
    # the trace must exercise the caches: some hits and some misses at the top level
    assert got["hits"][0] > 0 and got["misses"][0] > 0


def test_lru_and_fifo_differ_here():
    """A trace on which LRU and FIFO give different counts, so a policy mix-up cannot go unseen."""
    geometry = ((4, 2),)
    addr = np.array([0, 256, 0, 512, 0, 256, 512, 0] * 10)
    size = np.full(len(addr), 8)
    lru, fifo = check(geometry, "lru", LINE, addr, size), check(geometry, "fifo", LINE, addr, size)
    assert lru != fifo


def test_straddle_counts_every_line():
    """Hand-checked: one load over 3 lines, then a load at the end of the first line that reaches into
    the second; line size 64, one level of 2 sets x 2 ways."""
    addr, size = np.array([60, 63, 190]), np.array([70, 2, 3])
    # lines: [0, 1, 2] miss miss miss; [0, 1] hit hit; [2, 3] hit miss
    got = check(((2, 2),), "lru", LINE, addr, size)
    assert got == {"hits": [3], "misses": [4], "memory_reads": 4}


def test_chunked_replay_gives_the_same_counts():
    geometry = GEOMETRIES["L1L2L3-npot"]
    addr, size = straddling_loads(geometry, 5_000, seed=3)
    check(geometry, "lru", LINE, addr, size, chunk_size=777)


@st.composite
def geometries(draw, max_levels: int = 3):
    levels = draw(st.integers(1, max_levels))
    return tuple((draw(st.integers(1, 40)), draw(st.integers(1, 12))) for _ in range(levels))


@settings(max_examples=400, **SETTINGS)
@given(
    geometry=geometries(),
    policy=st.sampled_from(sorted(POLICIES)),
    line_size=st.sampled_from([8, 16, 32, 64, 128]),
    data=st.data(),
)
def test_random_small_traces(geometry, policy, line_size, data):
    """Shrinkable traces: a few dozen lines, sizes up to three lines, any alignment."""
    lines = 3 * capacity(geometry, line_size) // line_size + 2
    loads = data.draw(
        st.lists(
            st.tuples(st.integers(0, lines), st.integers(0, line_size - 1), st.integers(1, 3 * line_size)),
            min_size=1,
            max_size=300,
        ),
        label="loads (line, offset, size)",
    )
    addr = np.array([line * line_size + off for line, off, _ in loads], np.int64)
    size = np.array([s for _, _, s in loads], np.int64)
    check(geometry, policy, line_size, addr, size)


@settings(max_examples=150, **SETTINGS)
@given(
    geometry=geometries(),
    policy=st.sampled_from(sorted(POLICIES)),
    line_size=st.sampled_from([16, 64, 256]),
    mix=st.lists(st.sampled_from(sorted(PATTERNS)), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 4_000),
)
def test_random_geometries_long_traces(geometry, policy, line_size, mix, seed, n):
    """Random geometries with longer traces built from the four patterns, concatenated."""
    parts = [PATTERNS[name](geometry, n, seed + i, line_size) for i, name in enumerate(mix)]
    addr = np.concatenate([a for a, _ in parts])
    size = np.concatenate([s for _, s in parts])
    check(geometry, policy, line_size, addr, size)
