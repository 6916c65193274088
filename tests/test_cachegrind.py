"""`counting: cachegrind` (docs/cachegrind.md): the kernel against the plain model of Cachegrind's
rules in reference_cachegrind.py, hand-computed cases, machine-file checks, and real Valgrind:
small C programs from tests/programs run under Lackey (the trace) and Cachegrind (the counts).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memsim.engine.counters import (
    C_ACCESSES,
    C_EVICTIONS,
    C_HITS,
    C_MISSES,
    C_WRITEBACKS,
    HM_HITS,
    HM_MISSES,
    K_ACCESSES,
    K_CYCLES,
    M_READS,
    M_WRITES,
    Counters,
)
from memsim.engine.replay import Replay, replay, replay_counters
from memsim.errors import UserError
from memsim.formats.importers import read_records
from memsim.formats.machine_file import load_preset, machine_from_mapping, machine_to_dict, with_counting
from memsim.machine import Cache, Machine, cachegrind_misfits
from memsim.trace.events import NO_OBJECT, OP_GC, OP_IFETCH, OP_READ, OP_RMW, OP_WRITE, Events

from reference_cachegrind import StraddleError, run as run_reference

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROGRAMS = Path(__file__).parent / "programs"

Row = tuple[int, int, int, int]  # op, core, addr, size


def events_of(rows: list[Row]) -> Events:
    ev = Events.empty(len(rows))
    ev.obj[:] = NO_OBJECT
    for i, (op, core, addr, size) in enumerate(rows):
        ev.op[i], ev.core[i], ev.addr[i], ev.size[i] = op, core, addr, size
    return ev


def rows_of(events: Events) -> list[Row]:
    return list(zip(events.op.tolist(), events.core.tolist(), events.addr.tolist(), events.size.tolist()))


# ----------------------------------------------------------------------------------------------
# the kernel against the reference model


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def cachegrind_caches(draw, name: str, level: int, shared_by: int, serves: str = "all") -> Cache:
    sets = draw(st.sampled_from((1, 2, 2, 4, 8)))
    ways = draw(st.integers(2 if sets == 1 else 1, 4))  # Cachegrind has no single-line cache
    return Cache(name=name, sets=sets, ways=ways, latency=draw(st.integers(1, 9)) * (level + 1),
                 shared_by=shared_by, serves=serves)


@st.composite
def cachegrind_machines(draw) -> Machine:
    """What counting: cachegrind accepts: a split first level, 1-3 unified LRU levels below it,
    power-of-two sets, any tree of shared_by over 1-3 cores."""
    cores = draw(st.integers(1, 3))
    shared_by = draw(st.sampled_from(divisors(cores)))
    levels = [(draw(cachegrind_caches("I1", 0, shared_by, "instructions")),
               draw(cachegrind_caches("D1", 0, shared_by, "data")))]
    for level in range(1, draw(st.integers(2, 4))):
        shared_by = draw(st.sampled_from([d for d in divisors(cores) if d % shared_by == 0]))
        levels.append((draw(cachegrind_caches(f"L{level + 1}", level, shared_by)),))
    return Machine(name="hypothesis", cores=cores, line_size=draw(st.sampled_from((16, 32, 64))),
                   levels=tuple(levels), memory_latency=draw(st.integers(20, 300)), counting="cachegrind")


@st.composite
def cachegrind_events(draw, machine: Machine, max_events: int = 80) -> Events:
    """Accesses to a few lines (line 0 among them, which Cachegrind's zeroed tags hold from the
    start), at offsets that straddle lines, data sizes up to three lines (cut to one), and now
    and then an instruction fetch over three lines (Cachegrind stops there)."""
    ls = machine.line_size
    pool = draw(st.integers(1, 20))
    base_line = draw(st.sampled_from((0, 0, 5, 2**34 // ls)))
    data_sizes = st.sampled_from((0, 1, 4, 8, ls - 1, ls, ls + 1, 2 * ls + 3)) | st.integers(1, 3 * ls)
    fetch_sizes = st.integers(1, ls + 1) | st.sampled_from((0, 2 * ls + 2))
    rows = []
    for _ in range(draw(st.integers(0, max_events))):
        op = draw(st.sampled_from((OP_READ, OP_READ, OP_WRITE, OP_RMW, OP_IFETCH, OP_IFETCH, OP_GC)))
        addr = (base_line + draw(st.integers(0, pool - 1))) * ls + draw(
            st.sampled_from((0, ls - 1, ls - 4)) | st.integers(0, ls - 1))
        size = draw(fetch_sizes if op == OP_IFETCH else data_sizes)
        rows.append((op, draw(st.integers(0, machine.cores - 1)), addr, size))
    return events_of(rows)


def expected_counters(machine: Machine, rows: list[Row]) -> Counters:
    """The reference model's counts in memsim's counter arrays."""
    model = run_reference(machine, rows)
    want = Counters.zeros(len(model.caches), machine.cores, len(machine.caches), machine.line_size)
    for k, cache in enumerate(model.caches):
        want.cache[k, C_ACCESSES] = cache.hits + cache.misses
        want.cache[k, C_HITS] = cache.hits
        want.cache[k, C_MISSES] = cache.misses
        want.cache[k, C_EVICTIONS] = cache.evictions
    want.core[:, K_ACCESSES] = model.core_accesses
    want.core[:, K_CYCLES] = model.core_cycles
    want.core_level[:, :, HM_HITS] = model.core_hits
    want.core_level[:, :, HM_MISSES] = model.core_misses
    want.memory[M_READS] = model.memory_reads
    return want


def assert_same_counters(machine: Machine, rows: list[Row], got: Counters, want: Counters) -> None:
    for name, array in want.as_dict().items():
        assert np.array_equal(getattr(got, name), array), (
            f"{name} differs on {machine}\nevents: {rows}\ngot:\n{getattr(got, name)}\nwant:\n{array}")


@settings(max_examples=400, **SETTINGS)
@given(st.data())
def test_kernel_matches_reference(data):
    machine = data.draw(cachegrind_machines(), label="machine")
    events = data.draw(cachegrind_events(machine), label="events")
    rows = rows_of(events)
    assert not cachegrind_misfits(machine)
    try:
        want = expected_counters(machine, rows)
    except StraddleError as e:
        with pytest.raises(UserError, match=f"^event {e.event}: an instruction fetch"):
            replay_counters(machine, events)
        return
    assert_same_counters(machine, rows, replay_counters(machine, events), want)


@settings(max_examples=150, **SETTINGS)
@given(st.data())
def test_chunked_replay_matches_reference(data):
    machine = data.draw(cachegrind_machines(), label="machine")
    events = data.draw(cachegrind_events(machine), label="events")
    rows = rows_of(events)
    try:
        want = expected_counters(machine, rows)
    except StraddleError:
        return
    chunk = data.draw(st.integers(1, max(len(events), 1)), label="chunk")
    assert_same_counters(machine, rows, replay_counters(machine, events, chunk_size=chunk), want)


# ----------------------------------------------------------------------------------------------
# hand-computed cases


I1, D1, LL = 0, 1, 2  # instance rows of the one-core machine below
L = 64  # its line size


def tiny(d1_sets: int = 4, d1_ways: int = 2, ll_sets: int = 8, ll_ways: int = 2, cores: int = 1,
         ll_shared_by: int = 1) -> Machine:
    return Machine(
        name="tiny", cores=cores, line_size=L, memory_latency=100, counting="cachegrind",
        levels=(
            (Cache("I1", 4, 2, 1, serves="instructions"), Cache("D1", d1_sets, d1_ways, 2, serves="data")),
            (Cache("LL", ll_sets, ll_ways, 10, shared_by=ll_shared_by),),
        ),
    )


def counts(machine: Machine, rows: list[Row]) -> Counters:
    return replay_counters(machine, events_of(rows))


def hits_misses(k: Counters, instance: int) -> tuple[int, int]:
    return int(k.cache[instance, C_HITS]), int(k.cache[instance, C_MISSES])


def test_a_straddling_access_is_one_access_that_misses_once():
    line = 1000
    k = counts(tiny(), [(OP_READ, 0, line * L + 60, 8)])  # lines 1000 and 1001, both missing
    assert hits_misses(k, D1) == (0, 1) and hits_misses(k, LL) == (0, 1)
    assert k.memory[M_READS] == 1 and k.core[0, K_ACCESSES] == 1 and k.core[0, K_CYCLES] == 100
    k = counts(tiny(), [(OP_READ, 0, line * L + 60, 8)] * 2)
    assert hits_misses(k, D1) == (1, 1)  # both lines are there now: one hit


def test_one_line_missing_of_two_is_one_miss_and_the_next_level_looks_both_up():
    line = 1000
    k = counts(tiny(), [(OP_READ, 0, line * L, 8), (OP_READ, 0, line * L + 60, 8)])
    # D1: line 1000 hits, 1001 misses -> one miss; LL the same -> one miss, served by memory
    assert hits_misses(k, D1) == (0, 2) and hits_misses(k, LL) == (0, 2)
    k = counts(tiny(), [(OP_READ, 0, (line + 1) * L, 8), (OP_IFETCH, 0, line * L + 62, 4),
                        (OP_READ, 0, line * L + 60, 8)])
    # the fetch misses LL once (1000 missing, 1001 there) and brings 1000 into LL, not D1: the
    # straddling read misses D1 once and hits LL
    assert hits_misses(k, D1) == (0, 2) and hits_misses(k, LL) == (1, 2)
    assert k.core[0, K_CYCLES] == 100 + 100 + 10


def test_a_data_access_longer_than_a_line_is_cut_to_one_line():
    line = 1000
    # 200 bytes from offset 32 are cut to 64: lines 1000 and 1001, not 1002 or 1003
    k = counts(tiny(), [(OP_WRITE, 0, line * L + 32, 200), (OP_READ, 0, (line + 1) * L + 8, 8),
                        (OP_READ, 0, (line + 2) * L, 8)])
    assert hits_misses(k, D1) == (1, 2) and hits_misses(k, LL) == (0, 2)
    assert k.cache[D1, C_ACCESSES] == 3 and k.memory[M_READS] == 2


def test_an_instruction_fetch_over_three_lines_stops_the_replay():
    with pytest.raises(UserError, match=r"^event 1: an instruction fetch of 130 bytes at 0xfa3f covers more than "
                                        r"two 64-byte lines; Cachegrind stops"):
        counts(tiny(), [(OP_READ, 0, 4096, 8), (OP_IFETCH, 0, 1000 * L + 63, 130)])
    k = counts(tiny(), [(OP_IFETCH, 0, 1000 * L + 63, 65)])  # 65 bytes from the last byte: two lines
    assert hits_misses(k, I1) == (0, 1)


def test_a_modify_is_one_access_and_nothing_is_ever_written_back():
    line = 1001
    k = counts(tiny(d1_sets=2, d1_ways=1, ll_sets=2, ll_ways=1),  # lines 1001 and 1003 share set 1
               [(OP_RMW, 0, line * L, 8), (OP_WRITE, 0, (line + 2) * L, 8), (OP_READ, 0, line * L, 8)])
    assert hits_misses(k, D1) == (0, 3) and k.cache[D1, C_EVICTIONS] == 2
    assert (k.cache[:, C_WRITEBACKS] == 0).all() and k.memory[M_WRITES] == 0
    assert k.memory[M_READS] == 3 and k.core[0, K_ACCESSES] == 3


def test_lru_order_and_the_next_level_only_after_a_miss():
    a, b, c = (1001 + 4 * i for i in range(3))  # three lines of D1's set 1 (set 0 holds line 0)
    k = counts(tiny(), [(OP_READ, 0, x * L, 8) for x in (a, b, a, c, a, b)])
    # a b miss, a hits, c evicts b (least recently used), a hits, b misses and evicts c
    assert hits_misses(k, D1) == (2, 4) and k.cache[D1, C_EVICTIONS] == 2
    assert hits_misses(k, LL) == (1, 3) and k.cache[LL, C_ACCESSES] == 4  # b is still in LL's set 5


def test_line_zero_is_there_from_the_start():
    """cg_sim.c zeroes every tag, and a tag is the line number: line 0 hits before it was fetched,
    in every cache, until the set has filled with other lines."""
    k = counts(tiny(d1_sets=1, d1_ways=2), [(OP_IFETCH, 0, 0, 4), (OP_READ, 0, 8, 8), (OP_READ, 0, L, 8),
                                           (OP_READ, 0, 8, 8), (OP_READ, 0, 2 * L, 8), (OP_READ, 0, 3 * L, 8),
                                           (OP_READ, 0, 8, 8)])
    assert hits_misses(k, I1) == (1, 0)
    # 0 hit, 1 miss, 0 hit, 2 miss (evicts 1), 3 miss (evicts 0), 0 miss
    assert hits_misses(k, D1) == (2, 4) and k.cache[D1, C_EVICTIONS] == 3


def test_each_core_uses_its_own_caches_without_coherence():
    x = 1000 * L
    k = counts(tiny(cores=2, ll_shared_by=2), [(OP_READ, 0, x, 8), (OP_READ, 1, x, 8), (OP_WRITE, 0, x, 8),
                                               (OP_READ, 1, x, 8)])
    d1_core0, d1_core1, shared_ll = 2, 3, 4  # I1 of cores 0 and 1, then their D1s, then LL
    assert hits_misses(k, d1_core0) == (1, 1) and hits_misses(k, d1_core1) == (1, 1)
    assert hits_misses(k, shared_ll) == (1, 1)  # core 1's first miss finds core 0's line in LL
    assert k.core_level[1, 1].tolist() == [1, 1] and k.core_level[1, 2].tolist() == [1, 0]
    assert k.coherence.sum() == 0


# ----------------------------------------------------------------------------------------------
# machine files


def machine_text(levels: str, extra: str = "") -> str:
    return f"memsim: 1\nname: t\ncores: 2\ncounting: cachegrind\n{extra}levels:\n{levels}memory: {{latency: 100}}\n"


SPLIT = ("  - split:\n      - {name: I1, size: 32KiB, assoc: 8, latency: 1}\n"
         "      - {name: D1, size: 32KiB, assoc: 8, latency: 1}\n")


def load_text(tmp_path, text: str) -> Machine:
    from memsim.formats.machine_file import load_machine_file

    path = tmp_path / "m.yaml"
    path.write_text(text)
    return load_machine_file(path, "m.yaml")


def test_a_machine_file_may_count_the_cachegrind_way(tmp_path):
    m = load_text(tmp_path, machine_text(SPLIT + "  - {name: L2, size: 1MiB, assoc: 16, latency: 10, shared_by: 2}\n"
                                         "  - {name: L3, sets: 4096, ways: 16, latency: 40, shared_by: all}\n"))
    assert m.counting == "cachegrind" and machine_to_dict(m)["counting"] == "cachegrind"
    assert load_preset("cachegrind").counting == "cachegrind"


@pytest.mark.parametrize("levels, extra, position, message", [
    (SPLIT + "  - {name: LL, size: 1MiB, assoc: 16, latency: 10, replacement: fifo}\n", "", "9:65",
     "levels[1].replacement (LL): Cachegrind's caches are true LRU, this one is fifo; counting: cachegrind "
     "reproduces Cachegrind exactly and cannot model this"),
    (SPLIT + "  - {name: LL, size: 1.5MiB, assoc: 16, latency: 10}\n", "", "9:22",
     "levels[1].size (LL): Cachegrind simulates power-of-two set counts only, this cache has 1536"),
    (SPLIT + "  - {name: LL, sets: 3, ways: 4, latency: 10}\n", "", "9:22",
     "levels[1].sets (LL): Cachegrind simulates power-of-two set counts only, this cache has 3"),
    (SPLIT + "  - {name: LL, size: 1MiB, assoc: 16, latency: 10, inclusion: inclusive}\n", "", "9:63",
     "levels[1].inclusion (LL): Cachegrind's levels are independent (nine), this one is inclusive"),
    (SPLIT.replace("latency: 1}\n", "latency: 1, write_allocate: false}\n", 1)
     + "  - {name: LL, size: 1MiB, assoc: 16, latency: 10}\n", "", "7:71",
     "levels[0].split[0].write_allocate (I1): Cachegrind's caches allocate on a write miss"),
    (SPLIT + "  - {name: LL, size: 1MiB, assoc: 16, latency: 10, write: through}\n", "", "9:59",
     "levels[1].write (LL): Cachegrind counts no write traffic, so it has no write-through caches"),
    ("  - {name: L1, size: 32KiB, assoc: 8, latency: 1}\n  - {name: LL, size: 1MiB, assoc: 16, latency: 10}\n", "",
     "6:5", "levels[0]: Cachegrind's first level is split into an instruction and a data cache"),
    (SPLIT, "", "6:3", "levels: Cachegrind has a unified last level below the split first level; add one"),
    (SPLIT + SPLIT.replace("I1", "I2").replace("D1", "D2") + "  - {name: LL, size: 1MiB, assoc: 16, latency: 10}\n",
     "", "9:5",
     "levels[1]: Cachegrind splits only the first level"),
    (SPLIT + "  - {name: LL, size: 1MiB, assoc: 16, latency: 10}\n", "line_size: 8\n", "5:12",
     "line_size: Cachegrind needs lines of at least 16 bytes, found 8"),
    (SPLIT + "  - {name: LL, size: 64, assoc: 1, latency: 10}\n", "", "9:22",
     "levels[1].size (LL): Cachegrind rejects a cache of a single line (size <= line size)"),
])
def test_a_machine_cachegrind_cannot_simulate_is_rejected(tmp_path, levels, extra, position, message):
    with pytest.raises(UserError) as info:
        load_text(tmp_path, machine_text(levels, extra))
    assert info.value.where == f"m.yaml:{position}"
    assert info.value.message.startswith(message)


def test_with_counting_switches_a_machine_and_checks_it():
    firestorm = load_preset("apple-m1-firestorm")
    switched = with_counting(firestorm, "cachegrind", "--counting")
    assert switched == dataclasses.replace(firestorm, counting="cachegrind")
    assert with_counting(switched, "memsim", "--counting") == firestorm
    with pytest.raises(UserError) as info:
        with_counting(load_preset("intel-golden-cove"), "cachegrind", "--counting")
    assert info.value.where == "--counting"
    assert info.value.message.startswith(
        "machine 'intel-golden-cove': levels[2].sets (L3): Cachegrind simulates power-of-two set counts only, "
        "this cache has 40960; counting: cachegrind reproduces Cachegrind exactly")
    with pytest.raises(UserError, match="counting must be one of the allowed values.*did you mean 'cachegrind'"):
        with_counting(firestorm, "cachgrind", "--counting")


def test_a_machine_built_in_code_is_checked_before_replaying():
    machine = dataclasses.replace(tiny(), levels=((Cache("L1", 4, 2, 1),), (Cache("LL", 8, 2, 10),)))
    with pytest.raises(ValueError, match="cannot use counting: cachegrind: levels\\[0\\]: Cachegrind's first"):
        Replay(machine).feed(events_of([(OP_READ, 0, 0, 8)]))


# ----------------------------------------------------------------------------------------------
# against real Valgrind


VALGRIND = shutil.which("valgrind")
GCC = shutil.which("gcc")
needs_valgrind = pytest.mark.skipif(not (VALGRIND and GCC), reason="needs valgrind and gcc")

# (program, argv) pairs, and machines to count them on: the preset (Cachegrind's own defaults) and
# one small enough that the matrices overflow D1 and LL.
RUNS = [("matmul", "rows"), ("matmul", "cols"), ("straddle", "")]


def run_name(program: str, arg: str) -> str:
    return f"{program}-{arg}" if arg else program


SMALL = {
    "memsim": 1, "name": "small", "cores": 1, "line_size": 64, "counting": "cachegrind",
    "levels": [
        {"split": [{"name": "I1", "size": 4096, "assoc": 2, "latency": 1},
                   {"name": "D1", "size": 4096, "assoc": 2, "latency": 1}]},
        {"name": "LL", "size": 16384, "assoc": 4, "latency": 11},
    ],
    "memory": {"latency": 211},
}
MACHINES = {"cachegrind": load_preset("cachegrind"), "small": machine_from_mapping(SMALL, "SMALL")}


def cachegrind_options(machine: Machine) -> list[str]:
    (i1, d1), (ll,) = machine.levels
    return [f"--{name}={c.size(machine.line_size)},{c.ways},{machine.line_size}"
            for name, c in (("I1", i1), ("D1", d1), ("LL", ll))]


def cachegrind_summary(path: Path) -> dict[str, int]:
    """The totals of a cachegrind.out file: its `summary:` line, named by its `events:` line."""
    lines = path.read_text().splitlines()
    names = next(line for line in lines if line.startswith("events:")).split()[1:]
    totals = next(line for line in lines if line.startswith("summary:")).split()[1:]
    return dict(zip(names, map(int, totals)))


@pytest.fixture(scope="module")
def valgrind_folder(tmp_path_factory) -> Path:
    """The folder where every program was run under Lackey and under Cachegrind on every machine
    (all at once). Both tools get the same static binary, argv, environment and working
    directory: the program then executes the same instructions at the same addresses under both
    (a static binary has no dynamic loader whose work could depend on the tool)."""
    folder = tmp_path_factory.mktemp("valgrind")
    env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}
    for name in {program for program, _ in RUNS}:
        build = subprocess.run([GCC, "-O1", "-static", "-o", str(folder / name), str(PROGRAMS / f"{name}.c")],
                               capture_output=True, text=True)
        if build.returncode:
            pytest.skip(f"gcc cannot build a static {name}.c here: {build.stderr.strip()[-300:]}")
    commands = []
    for program, arg in RUNS:
        argv = [str(folder / program)] + ([arg] if arg else [])
        run = run_name(program, arg)
        commands.append([VALGRIND, "--tool=lackey", "--trace-mem=yes", f"--log-file={folder / run}.lackey", *argv])
        commands += [[VALGRIND, "--tool=cachegrind", "--cache-sim=yes", *cachegrind_options(machine),
                      f"--cachegrind-out-file={folder / run}.{machine_name}.cg", *argv]
                     for machine_name, machine in MACHINES.items()]
    running = [subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True) for command in commands]
    for command, process in zip(commands, running):
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, f"{' '.join(command)} failed:\n{err}"
    return folder


@needs_valgrind
@pytest.mark.parametrize("run", [run_name(*r) for r in RUNS])
@pytest.mark.parametrize("machine_name", list(MACHINES))
def test_replaying_lackey_gives_cachegrinds_counts(valgrind_folder, run, machine_name):
    folder = valgrind_folder
    machine = MACHINES[machine_name]
    want = cachegrind_summary(folder / f"{run}.{machine_name}.cg")
    k = replay(machine, read_records(folder / f"{run}.lackey", "lackey")).counters
    i1, d1, ll = 0, 1, 2
    got = {
        "I refs": k.cache[i1, C_ACCESSES], "I1 misses": k.cache[i1, C_MISSES],
        "D refs": k.cache[d1, C_ACCESSES], "D1 misses": k.cache[d1, C_MISSES],
        "LL refs": k.cache[ll, C_ACCESSES], "LL misses": k.cache[ll, C_MISSES], "memory reads": k.memory[M_READS],
    }
    cachegrind = {
        "I refs": want["Ir"], "I1 misses": want["I1mr"],
        "D refs": want["Dr"] + want["Dw"], "D1 misses": want["D1mr"] + want["D1mw"],
        "LL refs": want["I1mr"] + want["D1mr"] + want["D1mw"],
        "LL misses": want["ILmr"] + want["DLmr"] + want["DLmw"],
        "memory reads": want["ILmr"] + want["DLmr"] + want["DLmw"],
    }
    assert {name: int(v) for name, v in got.items()} == cachegrind


@needs_valgrind
@pytest.mark.parametrize("machine_name", list(MACHINES))
def test_the_reference_model_gives_cachegrinds_full_summary(valgrind_folder, machine_name):
    """The reference splits misses as Cachegrind does (reads, writes; a modify counts as a read):
    all nine totals must agree on the program full of straddles, modifies and a cut access."""
    folder = valgrind_folder
    rows = [row for chunk in read_records(folder / "straddle.lackey", "lackey") for row in rows_of(chunk)]
    assert sum(op == OP_RMW for op, *_ in rows) > 2000 and max(size for *_, size in rows) > 64
    model = run_reference(MACHINES[machine_name], rows)
    assert dataclasses.asdict(model.summary) == cachegrind_summary(folder / f"straddle.{machine_name}.cg")
