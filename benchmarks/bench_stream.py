#!/usr/bin/env python
"""Traces at scale: a big binary trace replayed in bounded memory, and the importers' speed.

1. Writes ``--events`` (default 10^8) random 8-byte reads over 64 MiB into a binary trace, block by
   block (never the whole table in memory), then times ``memsim run`` on it in a subprocess
   (machine ``--machine``, default the one-level machine below) and reports its wall time and peak
   RSS (the child's ``ru_maxrss``). The requirement: peak RSS under 1 GiB.
2. Writes ``--lines`` (default 10^7) lackey records, plain and gzip, and times
   ``importers.read_records`` over each (best of ``--repeat``, after a warm-up that compiles the
   parser): lines per second.

    python benchmarks/bench_stream.py [--events 100000000] [--lines 10000000] [--dir DIR]

The files go to ``--dir`` (default a temporary folder, removed at the end); the binary trace of
10^8 events takes 3.4 GB.
"""
from __future__ import annotations

import argparse
import gzip
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ONE_LEVEL = """\
memsim: 1
name: one-level
cores: 1
line_size: 64
levels:
  - {name: L1, size: 32KiB, assoc: 8, latency: 4}
memory: {latency: 200}
conflict_shadow: false
"""
BLOCK = 1 << 20


def random_reads(n: int):
    from memsim.trace.events import NO_OBJECT, OP_READ, Events

    rng = np.random.default_rng(1)
    for start in range(0, n, BLOCK):
        m = min(BLOCK, n - start)
        chunk = Events.empty(m)
        chunk.op[:] = OP_READ
        chunk.size[:] = 8
        chunk.obj[:] = NO_OBJECT
        chunk.site[:] = -1
        chunk.addr[:] = rng.integers(0, 8 << 20, m) * 8
        yield chunk


def bench_binary(folder: Path, n: int, machine: str | None) -> None:
    from memsim.formats.binary import write_events

    trace = folder / "big.mstrace"
    t0 = time.perf_counter()
    write_events(trace, str(trace), random_reads(n), "random reads")
    print(f"wrote {n:,} events ({trace.stat().st_size / 1e9:.1f} GB) in {time.perf_counter() - t0:.1f} s")
    if machine is None:
        machine = str(folder / "one-level.yaml")
        Path(machine).write_text(ONE_LEVEL)
    command = [sys.executable, "-m", "memsim", "run", str(trace), "--machine", machine, "-q",
               "--json", str(folder / "out.json")]
    subprocess.run(command[:4] + ["--help"], check=True, capture_output=True)  # imports warm, nothing else
    t0 = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"memsim run: {wall:.1f} s wall, peak RSS {peak_mib:,.0f} MiB ({n / wall / 1e6:.1f} M events/s, "
          "hashing and checking the file included)")


def bench_importer(folder: Path, n: int, repeat: int) -> None:
    from memsim.formats.importers import read_records

    rng = np.random.default_rng(2)
    kinds = np.array(["I  ", " L ", " S ", " M "])[rng.integers(0, 4, n)]
    addresses = rng.integers(0x400000, 0x7FFFFFFFF, n)
    text = "".join(f"{k}{a:08x},{s}\n" for k, a, s in zip(kinds, addresses, rng.integers(1, 9, n)))
    plain = folder / "t.lackey"
    plain.write_text(text)
    packed = folder / "t.lackey.gz"
    with gzip.open(packed, "wt", compresslevel=1) as f:
        f.write(text)
    for path in (plain, packed):
        sum(len(c) for c in read_records(path, "lackey", display=path.name))  # compile or load the parser
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            records = sum(len(c) for c in read_records(path, "lackey", display=path.name))
            best = min(best, time.perf_counter() - t0)
        assert records == n
        print(f"lackey {path.name}: {n / best / 1e6:.1f} M lines/s (best of {repeat})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--machine", help="machine preset or file for the run (default: one level, 32 KiB)")
    parser.add_argument("--dir", type=Path, help="where the files go (default: a temporary folder, removed)")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="memsim-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
        bench_binary(folder, args.events, args.machine)
        bench_importer(folder, args.lines, args.repeat)
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
