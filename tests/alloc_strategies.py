"""Hypothesis strategies: allocation traces for the Go allocator model and its reference.

A case is an ``AllocCase(version, procs, ops, gogc)``, a named tuple, so ``simulate(*case)`` runs
it. Traces are built to hit the rules' edges often:

* sizes concentrate on tiny sizes (1-15), on size-class boundaries (each class size and its
  neighbours, including the "size + 8" malloc-header boundary just below a class), on the
  small/large limits (32760-32769), on the 16-page page-cache limit, and include a few large
  objects of up to ~4.5 MiB so the heap grows by more than one chunk now and then;
* scan and noscan objects, zero-size objects, 1-4 Ps, every generation;
* frees of random live objects (zero-size ones included), ``gc`` events, and sometimes a ``gogc``
  small enough to trigger collections (0 means a collection after every allocation).

Object ids are dense from 0 in allocation order; every free names a live object.
"""
from __future__ import annotations

from typing import NamedTuple

from hypothesis import strategies as st

# the class sizes of the facts sheet's table (§2.4), kept separate from the reference's copy
CLASS_SIZES = (
    8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320,
    352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792,
    2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472,
    9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264,
    28672, 32768,
)
PAGE = 8192

VERSIONS = ("1.15", "1.19", "1.21", "1.22", "1.24", "1.25", "1.26", "1.27", "1.28")

BOUNDARY_SIZES = tuple(
    sorted({n for s in CLASS_SIZES for n in (s - 8, s - 7, s - 1, s, s + 1) if n > 0})
)
LIMIT_SIZES = tuple(range(32759, 32770))
PAGE_SIZES = (
    15 * PAGE - 1, 15 * PAGE, 15 * PAGE + 1, 16 * PAGE, 16 * PAGE + 1,  # page cache limit
    2 * PAGE + 1, 5 * PAGE, 9 * PAGE,
)
HUGE_SIZES = (64 * PAGE, 1 << 20, (1 << 20) + 1, 511 * PAGE, 512 * PAGE, 513 * PAGE, (4 << 20) + (1 << 19))



@st.composite
def sizes(draw) -> int:
    """A request size; hypothesis dedups repeated one_of branches, so weights are explicit."""
    roll = draw(st.integers(0, 99))
    if roll < 30:
        return draw(st.integers(1, 15))  # tiny when noscan
    if roll < 60:
        return draw(st.sampled_from(BOUNDARY_SIZES))
    if roll < 75:
        return draw(st.integers(16, 4096))
    if roll < 83:
        return draw(st.sampled_from(LIMIT_SIZES))
    if roll < 91:
        return draw(st.sampled_from(PAGE_SIZES))
    if roll < 97:
        return 0
    return draw(st.sampled_from(HUGE_SIZES))


class AllocCase(NamedTuple):
    version: str
    procs: int
    ops: list
    gogc: int | None


@st.composite
def alloc_cases(draw, max_ops: int = 80, max_procs: int = 4) -> AllocCase:
    version = draw(st.sampled_from(VERSIONS))
    procs = draw(st.integers(1, max_procs))
    gogc = draw(st.none() | st.none() | st.sampled_from((0, 1, 2, 5, 25, 100)))
    n_ops = draw(st.integers(0, max_ops))
    scan_bias = draw(st.sampled_from((0.0, 0.3, 0.5, 0.8)))
    ops: list[tuple] = []
    live: list[int] = []
    next_obj = 0
    for _ in range(n_ops):
        roll = draw(st.integers(0, 99))
        if roll < 70 or not live and roll < 95:
            size = draw(sizes())
            pointers = draw(st.floats(0, 1)) < scan_bias
            p = draw(st.integers(0, procs - 1))
            ops.append(("alloc", next_obj, size, pointers, p))
            live.append(next_obj)
            next_obj += 1
        elif roll < 95:
            victim = live.pop(draw(st.integers(0, len(live) - 1)))
            ops.append(("free", victim))
        else:
            ops.append(("gc",))
    return AllocCase(version, procs, ops, gogc)


__all__ = ["AllocCase", "alloc_cases", "CLASS_SIZES", "VERSIONS", "BOUNDARY_SIZES", "sizes"]
