#!/usr/bin/env python
"""Replay throughput of memsim against pycachesim, side by side in one process.

Machine: one core, L1 32 KiB 8-way, L2 1 MiB 16-way, L3 8 MiB 16-way, LRU, 64-byte lines,
non-inclusive (pycachesim's default hierarchy). Traces: ``--n`` 8-byte loads,
(a) uniform random over 16 MiB (8-byte aligned), (b) a sequential stream.

memsim: ``Replay.feed`` on the whole event table (after a warm-up feed, so compilation is not timed).
pycachesim: one ``cs.load(addresses, length=8)`` call over a Python list built beforehand: that goes
to the backend's ``iterload``, which walks the list in C. Only the replay is timed, never the
building of the trace, the list or the simulator. Each repetition times both, one after the other;
the best of ``--repeat`` is reported. Per-level miss counts must agree (exit 1 if not). Beside them, a
bare LRU loop (``bare_lru``): the same lookups and updates with none of memsim's bookkeeping, the
floor any replay built this way stands on.

Also measured: ``memsim run`` wall time in a subprocess on two cache-only traces (``bench_cli``; warm
Numba cache: one run first, then best of 3), and the same run with ``NUMBA_CACHE_DIR`` pointed at a
fresh temporary directory (the cold first run, compile included).

    python benchmarks/bench_replay.py [--n 10000000] [--repeat 3] [--json FILE]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TRACE = ROOT / "traces" / "false-sharing-counters.yaml"
LINE = 64
KIB, MIB = 1024, 1024 * 1024
# (name, size in bytes, ways)
LEVELS = (("L1", 32 * KIB, 8), ("L2", 1 * MIB, 16), ("L3", 8 * MIB, 16))


def memsim_machine():
    from memsim.machine import Cache, Machine

    levels = tuple(
        (Cache(name=name, sets=size // (ways * LINE), ways=ways, latency=4 * (i + 1), replacement="lru"),)
        for i, (name, size, ways) in enumerate(LEVELS)
    )
    return Machine(name="bench", cores=1, line_size=LINE, levels=levels, memory_latency=200, conflict_shadow=False)


def pycachesim_simulator():
    from cachesim import Cache, CacheSimulator, MainMemory

    mem = MainMemory()
    below = None
    caches = []
    for name, size, ways in reversed(LEVELS):
        cache = Cache(name, size // (ways * LINE), ways, LINE, "LRU", store_to=below, load_from=below)
        if below is None:
            mem.load_to(cache)
            mem.store_from(cache)
        caches.append(cache)
        below = cache
    return CacheSimulator(below, mem), caches[::-1]


def addresses(pattern: str, n: int) -> np.ndarray:
    if pattern == "random":
        return np.random.default_rng(12345).integers(0, 16 * MIB // 8, n, dtype=np.int64) * 8
    if pattern == "stream":
        return np.arange(n, dtype=np.int64) * 8
    raise ValueError(pattern)


def load_events(addr: np.ndarray):
    from memsim.trace.events import NO_OBJECT, OP_READ, Events

    ev = Events.empty(len(addr))
    ev.op[:] = OP_READ
    ev.obj[:] = NO_OBJECT
    ev.site[:] = -1  # no allocation site (only allocs have one)
    ev.size[:] = 8
    ev.addr[:] = addr
    return ev


def timed_feed(machine, events):
    """(seconds, replay) of one ``Replay(machine).feed(events)``, the garbage collector off."""
    from memsim.engine.replay import Replay

    run = Replay(machine)
    gc.disable()
    t0 = time.perf_counter()
    run.feed(events)
    dt = time.perf_counter() - t0
    gc.enable()
    return dt, run


def time_memsim(machine, events) -> tuple[float, list[int]]:
    from memsim.engine.counters import C_MISSES

    dt, run = timed_feed(machine, events)
    return dt, run.counters.cache[:, C_MISSES].tolist()


def time_pycachesim(addr_list: list[int]) -> tuple[float, list[int]]:
    cs, caches = pycachesim_simulator()
    gc.disable()
    t0 = time.perf_counter()
    cs.load(addr_list, length=8)
    dt = time.perf_counter() - t0
    gc.enable()
    return dt, [c.backend.MISS_count for c in caches]


def bare_lru():
    """A three-level LRU loop with nothing else: no counters but misses, no states, no history, no
    miss classes, no coherence; sets kept in order and shifted by memmove with the sets of the
    levels below prefetched, as memsim does. It is the floor under memsim's replay: what the LRU
    updates alone cost in Numba on this machine."""
    from numba import njit

    from memsim.engine.kernel import _move, _prefetch

    @njit(inline="always", boundscheck=False)
    def lookup(slots, base, ways, line):
        for slot in range(base, base + ways):
            if slots[slot] == line:
                _move(slots, base + 1, base, slot - base)
                slots[base] = line
                return True
            if slots[slot] == -1:
                break
        _move(slots, base + 1, base, ways - 1)
        slots[base] = line
        return False

    @njit(boundscheck=False)
    def run(addr, slots, bases, set_masks, ways, misses, ahead):
        n = addr.shape[0]
        for e in range(n):
            if e + ahead < n:
                coming = addr[e + ahead] >> 6
                for d in range(1, 3):
                    base = bases[d] + (coming & set_masks[d]) * ways[d]
                    _prefetch(slots, base)
                    _prefetch(slots, base + ways[d] - 1)
            line = addr[e] >> 6
            for d in range(3):
                if lookup(slots, bases[d] + (line & set_masks[d]) * ways[d], ways[d], line):
                    break
                misses[d] += 1

    return run


def time_bare_lru(run, addr: np.ndarray) -> tuple[float, list[int]]:
    from memsim import aligned

    sets = [size // (ways * LINE) for _, size, ways in LEVELS]
    ways = np.array([w for _, _, w in LEVELS], np.int64)
    bases = np.concatenate([[0], np.cumsum(np.array(sets) * ways)[:-1]]).astype(np.int64)
    slots = aligned.full(int(np.dot(sets, ways)), -1, np.int64)
    misses = np.zeros(3, np.int64)
    gc.disable()
    t0 = time.perf_counter()
    run(addr, slots, bases, np.array(sets, np.int64) - 1, ways, misses, 8)
    dt = time.perf_counter() - t0
    gc.enable()
    return dt, misses.tolist()


def bench_pattern(pattern: str, n: int, repeat: int) -> dict:
    machine = memsim_machine()
    addr = addresses(pattern, n)
    events = load_events(addr)
    addr_list = addr.tolist()
    bare = bare_lru()
    time_bare_lru(bare, addr[:1000])  # compile
    t_memsim, t_pcs, t_bare = [], [], []
    misses_memsim = misses_pcs = None
    agree = True
    for _ in range(repeat):
        dt, m = time_memsim(machine, events)
        t_memsim.append(dt)
        dt, p = time_pycachesim(addr_list)
        t_pcs.append(dt)
        dt, b = time_bare_lru(bare, addr)
        t_bare.append(dt)
        agree &= m == p == b and (misses_memsim is None or (m == misses_memsim and p == misses_pcs))
        misses_memsim, misses_pcs = m, p
    best_m, best_p, best_b = min(t_memsim), min(t_pcs), min(t_bare)
    return {
        "pattern": pattern,
        "accesses": n,
        "memsim_seconds": t_memsim,
        "pycachesim_seconds": t_pcs,
        "memsim_maccess_per_s": n / best_m / 1e6,
        "pycachesim_maccess_per_s": n / best_p / 1e6,
        "bare_lru_seconds": t_bare,
        "bare_lru_maccess_per_s": n / best_b / 1e6,
        "speedup": best_p / best_m,
        "bare_lru_speedup": best_p / best_b,
        "memsim_misses": misses_memsim,
        "pycachesim_misses": misses_pcs,
        "misses_agree": agree,
    }


def memsim_run(args: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "memsim", "run", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    return time.perf_counter() - t0


def cold_and_warm(label: str, args: list[str], repeat: int, shown: list[str] | None = None) -> dict:
    """Wall time of ``memsim run ARGS``: warm (one run first, then best of ``repeat``) and cold
    (``NUMBA_CACHE_DIR`` pointed at a fresh temporary directory: every kernel it needs compiles)."""
    memsim_run(args)  # warm the Numba cache (and the OS file cache)
    warm = [memsim_run(args) for _ in range(repeat)]
    with tempfile.TemporaryDirectory(prefix="memsim-cold-numba-") as fresh:
        cold = memsim_run(args, dict(os.environ, NUMBA_CACHE_DIR=fresh))
    return {"trace": label, "command": ["memsim", "run", *(shown or args)], "warm_seconds": warm, "warm_best": min(warm),
            "cold_seconds": cold, "compile_seconds": cold - min(warm)}


def bench_cli(repeat: int = 3) -> list[dict]:
    """The first and later ``memsim run`` of two cache-only traces: a YAML trace of raw addresses on
    a two-core machine (trace expansion and the full replay kernel), and a binary trace of 10^5
    random loads on a one-core write-back machine (the private replay kernel only)."""
    from memsim.formats.binary import write_events

    rows = [cold_and_warm("raw addresses, two cores", [str(TRACE.relative_to(ROOT))], repeat)]
    with tempfile.TemporaryDirectory(prefix="memsim-bench-") as folder:
        binary = Path(folder) / "random-loads.mstrace"
        write_events(binary, binary.name, [load_events(addresses("random", 100_000))], "random-loads")
        machine = ["--machine", "cachegrind", "--counting", "memsim"]
        rows.append(cold_and_warm("10^5 random loads, one core", [str(binary), *machine], repeat,
                                  shown=[binary.name, *machine]))
    return rows


def git_state() -> str | None:
    """The commit the numbers belong to, with ``+dirty`` when memsim's files have local changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "memsim"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": metadata.version("numba"),
        "pycachesim": metadata.version("pycachesim"),
        "memsim": metadata.version("memsim"),
        "git": git_state(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="loads per pattern (default 10^7)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions, best of (default 3)")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    ap.add_argument("--no-cli", action="store_true", help="skip the `memsim run` wall-time measurements")
    args = ap.parse_args(argv)

    info = machine_info()
    print(f"CPU: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
          f"load average {', '.join(f'{x:.2f}' for x in info['load_average'] or [])}")
    print(f"Python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, "
          f"pycachesim {info['pycachesim']}, memsim {info['memsim']} (git {info['git']})")
    geometry = ", ".join(f"{name} {size // KIB} KiB/{ways}-way" for name, size, ways in LEVELS)
    print(f"Machine: 1 core, {geometry}, LRU, {LINE} B lines, non-inclusive; "
          f"{args.n:,} 8-byte loads per pattern, best of {args.repeat}")

    # compile the kernel outside the timings
    from memsim.engine.replay import Replay

    t0 = time.perf_counter()
    Replay(memsim_machine()).feed(load_events(addresses("random", 1000)))
    print(f"memsim warm-up feed (loads the compiled kernel, or compiles it): {time.perf_counter() - t0:.2f} s\n")

    rows = []
    for pattern in ("random", "stream"):
        rows.append(bench_pattern(pattern, args.n, args.repeat))
        gc.collect()

    head = (f"{'pattern':<8} {'memsim M acc/s':>15} {'pycachesim M acc/s':>19} {'ratio':>7} {'bare LRU M acc/s':>17} "
            f"{'ratio':>7}  misses agree (L1/L2/L3)")
    print(head)
    print("-" * len(head))
    for r in rows:
        misses = "/".join(str(m) for m in r["memsim_misses"])
        verdict = "yes" if r["misses_agree"] else f"NO: pycachesim {'/'.join(map(str, r['pycachesim_misses']))}"
        print(f"{r['pattern']:<8} {r['memsim_maccess_per_s']:>15.1f} {r['pycachesim_maccess_per_s']:>19.1f} "
              f"{r['speedup']:>6.2f}x {r['bare_lru_maccess_per_s']:>17.1f} {r['bare_lru_speedup']:>6.2f}x  "
              f"{verdict} ({misses})")
    print("(bare LRU: the LRU updates alone, the floor under memsim's replay; ratios are to pycachesim)")

    cli = None
    if not args.no_cli:
        cli = bench_cli()
        print()
        for run in cli:
            print(f"`{' '.join(run['command'])}` ({run['trace']}): {run['warm_best']:.2f} s warm (best of "
                  f"{len(run['warm_seconds'])}), {run['cold_seconds']:.2f} s cold (fresh NUMBA_CACHE_DIR; compile "
                  f"~{run['compile_seconds']:.1f} s)")

    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "n": args.n, "repeat": args.repeat,
                                               "patterns": rows, "memsim_run": cli}, indent=2) + "\n")
    ok = all(r["misses_agree"] for r in rows)
    if not ok:
        print("\nper-level miss counts disagree", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
