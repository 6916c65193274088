#!/usr/bin/env python
"""Replay throughput with coherence and sharing classification on: four cores, MESI.

Machine: 4 cores, each with a private L1 32 KiB 8-way (4 cycles) and L2 1 MiB 16-way (14), a
shared L3 8 MiB 16-way (50), 64-byte lines, LRU, memory 200 cycles, MESI (c2c 70, upgrade 30):
the engine issue's three levels, with the first two private.

Workloads (``--n`` accesses, 8 bytes each, the cores taking turns in bursts of 16 events, a fixed
seed; ``MIXES``): *typical*, where most accesses hit the first level as in real programs (a private
8 KiB stack, a private 2 MiB array streamed through, a shared 256 KiB table read at random), and
*harsh*, where a quarter of the accesses read a shared 16 MiB table at random. Both end with 4 %
loads and 1 % stores of a per-core 8-byte counter, the four counters packed into one line (false
sharing). Only ``Replay.feed`` is timed (after a warm-up feed, so no compilation); the best of
``--repeat``.

Reported: accesses per second with the conflict shadow off and on, the false- and true-sharing
misses (the same in both runs: the shadow only splits capacity from conflict), and the memory the
classification holds per line it tracks (history records; sharing rows for lines with coherence
activity).

    python benchmarks/bench_coherence.py [--n 10000000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_replay import machine_info, timed_feed  # noqa: E402  (a sibling script, not a package)

LINE = 64
KIB, MIB = 1024, 1024 * 1024
CORES = 4
BURST = 16


def machine(shadow: bool):
    from memsim.machine import Cache, Coherence, Machine

    def cache(name, size, ways, latency, shared_by=1):
        return Cache(name=name, sets=size // (ways * LINE), ways=ways, latency=latency, shared_by=shared_by)

    levels = ((cache("L1", 32 * KIB, 8, 4),), (cache("L2", 1 * MIB, 16, 14),), (cache("L3", 8 * MIB, 16, 50, CORES),))
    return Machine(name="bench-4c", cores=CORES, line_size=LINE, levels=levels, memory_latency=200,
                   coherence=Coherence("mesi", c2c_latency=70, upgrade_latency=30), conflict_shadow=shadow)


# Each core's accesses, by share: (share, op, region); regions as in ``addresses``.
MIXES = {
    # most accesses hit the first level, as in real programs
    "typical": ((0.60, "read", "stack"), (0.20, "read", "array"), (0.08, "write", "array"),
                (0.07, "read", "table"), (0.04, "read", "counter"), (0.01, "write", "counter")),
    # a quarter of the accesses miss the first two levels
    "harsh": ((0.60, "read", "array"), (0.10, "write", "array"), (0.25, "read", "big-table"),
              (0.04, "read", "counter"), (0.01, "write", "counter")),
}


def addresses(region: str, core: np.ndarray, position: np.ndarray, rng) -> np.ndarray:
    """8-byte-aligned addresses of ``region``, each region in its own 4 GiB of the address space."""
    n = len(core)
    core = core.astype(np.int64)
    if region == "stack":  # private, 8 KiB, random: stays in L1
        return (1 << 32) + core * MIB + rng.integers(0, 8 * KIB // 8, n) * 8
    if region == "array":  # private, streamed through, 2 MiB (typical) per core
        return (2 << 32) + core * 64 * MIB + (position * 8) % (2 * MIB)
    if region == "table":  # shared, read at random, 256 KiB
        return (3 << 32) + rng.integers(0, 256 * KIB // 8, n) * 8
    if region == "big-table":  # shared, read at random, 16 MiB
        return (4 << 32) + rng.integers(0, 16 * MIB // 8, n) * 8
    if region == "counter":  # the cores' counters, 8 bytes each, packed into one line
        return (5 << 32) + core * 8
    raise ValueError(region)


def workload(mix: str, n: int):
    from memsim.trace.events import NO_OBJECT, OP_READ, OP_WRITE, Events

    rng = np.random.default_rng(2026)
    ev = Events.empty(n)
    ev.obj[:] = NO_OBJECT
    ev.size[:] = 8
    ev.core[:] = (np.arange(n) // BURST) % CORES
    position = np.arange(n) // (BURST * CORES) * BURST + np.arange(n) % BURST  # each core's own count
    parts = MIXES[mix]
    which = rng.choice(len(parts), n, p=[share for share, _, _ in parts])
    for k, (_, op, region) in enumerate(parts):
        chosen = which == k
        ev.op[chosen] = OP_WRITE if op == "write" else OP_READ
        ev.addr[chosen] = addresses(region, ev.core[chosen], position[chosen], rng)
    return ev


def timed(m, events, repeat: int):
    """The best time of ``repeat`` replays, and the last replay."""
    runs = [timed_feed(m, events) for _ in range(repeat)]
    return min(dt for dt, _ in runs), runs[-1][1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="accesses (default 10^7)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions, best of (default 3)")
    args = ap.parse_args(argv)

    from memsim.engine.counters import COHERENCE_COUNTERS
    from memsim.engine.replay import Replay
    from memsim.engine.tables import I_HIST_USED, I_ROWS_USED, PAGE_LINES

    info = machine_info()
    print(f"CPU: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
          f"load average {', '.join(f'{x:.2f}' for x in info['load_average'] or [])}; memsim git {info['git']}")
    Replay(machine(True)).feed(workload("typical", 1000))  # compile (or load) the kernel outside the timings
    for mix in MIXES:
        events = workload(mix, args.n)
        for shadow in (False, True):
            seconds, run = timed(machine(shadow), events, args.repeat)
            counters = run.counters
            coherence = dict(zip(COHERENCE_COUNTERS, counters.coherence.tolist()))
            l1_misses = counters.cache[:CORES, 2].sum()
            print(f"{mix:<8} conflict shadow {'on ' if shadow else 'off'}: {args.n / seconds / 1e6:6.1f} M accesses/s "
                  f"({seconds:.2f} s, best of {args.repeat}); L1 miss rate {l1_misses / args.n:.1%}; false/true "
                  f"sharing misses {coherence['false_sharing_misses']:,}/{coherence['true_sharing_misses']:,}, "
                  f"c2c {coherence['c2c_transfers']:,}")
    tables = run.tables
    lines = tables.tracked_lines()
    pages = int(tables.info[I_HIST_USED])
    history_bytes = pages * PAGE_LINES * 8 * tables.history_width
    rows = int(tables.info[I_ROWS_USED])
    print(f"classification memory: {lines:,} lines tracked in {pages:,} history pages, {history_bytes / MIB:.1f} MiB "
          f"({history_bytes / lines:.0f} B per tracked line, {8 * tables.history_width} B per record); "
          f"{rows} sharing rows of {8 * tables.sharing.shape[1]} B")
    shadow_state = Replay(machine(True)).state
    shadow_bytes = shadow_state.shadow_nodes.nbytes + shadow_state.shadow_buckets.nbytes
    cache_lines = len(shadow_state.slots)
    print(f"conflict shadows: {shadow_bytes / MIB:.1f} MiB for {cache_lines:,} simulated cache lines "
          f"({shadow_bytes / cache_lines:.0f} B per cache line)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
