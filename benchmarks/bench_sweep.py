#!/usr/bin/env python
"""Wall time of a 3 x 3 x 3 ``memsim sweep`` of one trace of 10^7 accesses, with ``--jobs 1`` and
``--jobs 2`` (and more when asked), side by side in one run; the result files must be identical.

Trace: one core scanning 8 MiB with 8-byte loads (stride 8), ten times over, plus a pass with a
4 KiB + 64 B stride: 10^7 accesses from a few YAML lines. Machine: the `amd-zen4-ccx` preset;
swept: `levels.L1d.size` 16/32/64 KiB, `levels.L2.size` 512 KiB/1 MiB/2 MiB, `line_size` 32/64/128.
The Numba cache is warmed first (a one-run sweep), so no compile is timed: a sweep's own warm-up
(the first run of each kind runs before the workers start) is. Each timing is the whole `memsim
sweep` command in a subprocess.

    python benchmarks/bench_sweep.py [--jobs 1 2] [--repeat 1] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_replay import machine_info

ROOT = Path(__file__).resolve().parent.parent
TRACE = """\
memsim: 1
name: scan 8 MiB ten times, then a conflicting stride
machine: amd-zen4-ccx
allocator: none
events:
  - repeat:
      times: 10
      do:
        - sweep: {core: 0, op: read, addr: 0x10000000, stride: 8, count: 980000, size: 8}
  - sweep: {core: 0, op: read, addr: 0x40000000, stride: 4160, count: 200000, size: 8}
"""
SETTINGS = ["--set", "levels.L1d.size=16KiB,32KiB,64KiB", "--set", "levels.L2.size=512KiB,1MiB,2MiB",
            "--set", "line_size=32,64,128"]


def sweep(trace: Path, out: Path, jobs: int, settings: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "memsim", "sweep", str(trace), *settings, "-o", str(out), "-j", str(jobs),
                    "-q"], check=True, cwd=ROOT)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="--jobs values to time (default 1 2)")
    ap.add_argument("--repeat", type=int, default=1, help="timings per --jobs value, best of (default 1)")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    info = machine_info()
    print(f"CPU: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable); memsim git {info['git']}")
    with tempfile.TemporaryDirectory(prefix="memsim-bench-sweep-") as folder:
        trace = Path(folder) / "scan.yaml"
        trace.write_text(TRACE)
        sweep(trace, Path(folder) / "warm.csv", 1, ["--set", "line_size=64"])  # compile outside the timings
        seconds: dict[int, list[float]] = {}
        outputs = {}
        for _ in range(args.repeat):
            for jobs in args.jobs:
                out = Path(folder) / f"jobs{jobs}-{len(seconds.get(jobs, []))}.csv"
                seconds.setdefault(jobs, []).append(sweep(trace, out, jobs, SETTINGS))
                outputs.setdefault(jobs, out.read_text())
        identical = len(set(outputs.values())) == 1
        base = min(seconds[args.jobs[0]])
        print(f"27 runs of 10^7 accesses; results identical across --jobs: {'yes' if identical else 'NO'}")
        for jobs in args.jobs:
            best = min(seconds[jobs])
            print(f"--jobs {jobs}: {best:6.1f} s (best of {len(seconds[jobs])})  speed-up over --jobs "
                  f"{args.jobs[0]}: {base / best:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "seconds": seconds, "identical": identical}, indent=2)
                                   + "\n")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
