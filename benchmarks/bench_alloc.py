#!/usr/bin/env python
"""Allocation throughput of memsim's Go allocator model.

An event table built directly (no YAML): ``--n`` allocations of mixed sizes (a third tiny, most
small across the size classes, 0.2 % large), pointerful or not, spread over 4 Ps; every allocation
is followed by one 8-byte write to it; 90 % of the objects die young (freed 500-1,500
allocations later), the rest live to the end; a collection runs every ``--gc-every``
allocations. Timed: the allocator pass alone (``GoAllocator.place``, which also resolves every
access's address), and the whole replay through a 3-level cache hierarchy. Compilation is done
by a warm-up run first and not timed. Best of ``--repeat``.

    python benchmarks/bench_alloc.py [--n 10000000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from memsim.engine.replay import Replay
from memsim.machine import Cache, Machine
from memsim.models.goalloc.model import GoAllocator
from memsim.trace.events import FLAG_POINTERS, NO_OBJECT, OP_ALLOC, OP_FREE, OP_GC, OP_WRITE, Events

PROCS = 4


def make_events(n: int, gc_every: int, seed: int = 1) -> Events:
    rng = np.random.default_rng(seed)
    kind = rng.random(n)
    sizes = np.where(kind < 0.33, rng.integers(1, 16, n),
                     np.where(kind < 0.998, rng.integers(16, 2048, n), rng.integers(32 * 1024, 128 * 1024, n)))
    pointers = (rng.random(n) < 0.5) & (sizes >= 16)
    free_at = np.where(rng.random(n) < 0.9, np.arange(n) + rng.integers(500, 1500, n), n + 1)
    # rows: alloc i, write i, and the frees and collections that fall after allocation i
    frees = np.sort(np.flatnonzero(free_at < n))
    free_after = free_at[frees]
    order = np.argsort(free_after, kind="stable")
    frees, free_after = frees[order], free_after[order]
    gcs = np.arange(gc_every - 1, n, gc_every)
    total = 2 * n + len(frees) + len(gcs)
    ev = Events.empty(total)
    ev.obj[:] = NO_OBJECT
    # place every row by a sort key: allocation i at 3i, its write 3i+1, frees/gcs after it 3i+2
    key = np.concatenate([3 * np.arange(n), 3 * np.arange(n) + 1, 3 * free_after + 2, 3 * gcs + 2])
    kinds = np.concatenate([np.full(n, OP_ALLOC), np.full(n, OP_WRITE), np.full(len(frees), OP_FREE),
                            np.full(len(gcs), OP_GC)])
    objs = np.concatenate([np.arange(n), np.arange(n), frees, np.full(len(gcs), NO_OBJECT)])
    rows = np.argsort(key, kind="stable")
    ev.op[:] = kinds[rows]
    ev.obj[:] = objs[rows]
    is_alloc = ev.op == OP_ALLOC
    is_write = ev.op == OP_WRITE
    ev.size[is_alloc] = sizes[ev.obj[is_alloc]]
    ev.flags[is_alloc] = np.where(pointers[ev.obj[is_alloc]], FLAG_POINTERS, 0)
    ev.core[is_alloc | is_write] = (ev.obj[is_alloc | is_write] % PROCS).astype(np.int32)
    ev.size[is_write] = np.minimum(8, sizes[ev.obj[is_write]])
    return ev


def machine() -> Machine:
    kib = 1024
    levels = (
        (Cache("L1", 32 * kib // (8 * 64), 8, 4),),
        (Cache("L2", 1024 * kib // (16 * 64), 16, 14),),
        (Cache("L3", 8192 * kib // (16 * 64), 16, 50, shared_by=PROCS),),
    )
    return Machine(name="bench", cores=PROCS, line_size=64, levels=levels, memory_latency=200)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="allocations (default 10^7)")
    parser.add_argument("--gc-every", type=int, default=200_000, help="allocations between collections")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    events = make_events(args.n, args.gc_every)
    warm = make_events(10_000, 1_000)
    GoAllocator("greentea", PROCS, 10_000).place(warm)
    Replay(machine(), GoAllocator("greentea", PROCS, 10_000)).feed(warm)

    place, whole = [], []
    for _ in range(args.repeat):
        allocator = GoAllocator("greentea", PROCS, args.n)
        start = time.perf_counter()
        allocator.place(events)
        place.append(time.perf_counter() - start)
        replay = Replay(machine(), GoAllocator("greentea", PROCS, args.n))
        start = time.perf_counter()
        replay.feed(events)
        whole.append(time.perf_counter() - start)
    stats = allocator.stats_result()
    print(f"{args.n:,} allocations, {len(events):,} events ({stats.num_gc} GCs, {stats.frees:,} frees, "
          f"heap {stats.heap_sys >> 20} MiB mapped), best of {args.repeat}")
    print(f"allocator pass:           {args.n / min(place) / 1e6:6.2f} M allocations/s ({min(place):.2f} s)")
    print(f"allocator + caches replay: {args.n / min(whole) / 1e6:6.2f} M allocations/s ({min(whole):.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
