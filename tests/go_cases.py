"""Named allocation sequences to compare memsim's Go allocator model with the real Go runtime.

Each :class:`GoCase` has a ``name``, a one-line ``what`` (what it checks) and ``ops`` in the format
of ``goruntime.run_go``: ``("alloc", size, pointers)``, ``("free", k)`` (k = index among the
allocs), ``("gc",)``. Pointerful sizes are multiples of 8. ``BUILDS`` names the Go builds to run
them on (``env_extra`` for ``run_go``). ``CASES_BY_NAME`` maps names to cases.

Typical use::

    real = run_go(case.ops, BUILDS["default"])  # fresh_spans: every class starts at slot 0
    model = results_from_addrs(case.ops, model_addresses(case.ops))
    assert robust_view(observe(model, real.layout), case.ops) == robust_view(observe(real), case.ops)

Only what ``goruntime.robust_view`` keeps is reproduced exactly by the real runtime (see
goruntime's docstring); tests/test_go_runtime.py checks that for every case here on every build.
Some cases' numbers depend on the build (e.g. ``reuse_64`` frees slots of a different span when
a span holds 128 objects instead of 126), so compare each build with the model set up the same way.
"""
from __future__ import annotations

from typing import NamedTuple

PAGE = 8192

# Size classes of Go 1.19-1.27 (bytes per slot), class 1 to 67.
CLASS_SIZES = (
    8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352,
    384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048,
    2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728,
    10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672,
    32768,
)

BUILDS: dict[str, dict[str, str]] = {
    "default": {},  # Go 1.27: Green Tea inline mark bits, malloc headers, random heap base
    "nogreenteagc": {"GOEXPERIMENT": "nogreenteagc"},  # the Go 1.22-1.25 span layout
    "norandomizedheapbase64": {"GOEXPERIMENT": "norandomizedheapbase64"},  # heap at 0xc000000000
}


class GoCase(NamedTuple):
    name: str
    what: str
    ops: list[tuple]


def A(size: int, pointers: bool = False) -> tuple:
    return ("alloc", size, pointers)


def allocs(sizes, pointers: bool = False, repeat: int = 1) -> list[tuple]:
    return [A(s, pointers) for s in sizes for _ in range(repeat)]


def frees(ks) -> list[tuple]:
    return [("free", k) for k in ks]


GC = ("gc",)


def _noscan_boundaries() -> list[tuple]:
    ops = []
    for c in CLASS_SIZES:  # c fills class c exactly; c+1 is the next class (or large after 32768)
        ops += allocs([c, c + 1], repeat=2)
    return ops


def _scan_boundaries() -> list[tuple]:
    ops = []
    for c in CLASS_SIZES:  # up to 512 B no header; above, size+8 picks the class
        sizes = [c, c + 8] if c <= 512 else [c - 8, c]
        ops += allocs(sizes, pointers=True, repeat=2)
    return ops


def _interleaved(rounds: int) -> list[tuple]:
    mix = [A(24), A(48, True), A(8, True), A(1000), A(5), A(24, True), A(696, True), A(3), A(16),
           A(2048), A(13000), A(40000)]
    return mix * rounds


CASES: list[GoCase] = [
    # --- tiny allocator (facts sheet 4); at the start of a run the runtime has no usable tiny block
    GoCase("tiny_3_12", "the 12 is aligned to 4 by its size: offset 4 in the same block", allocs([3, 12])),
    GoCase("tiny_1_6_1_10", "offsets 0, 2, 8, then the 10 needs a new block", allocs([1, 6, 1, 10])),
    GoCase("tiny_12_8_1", "the 8 opens block B, which has more room and becomes current; the 1 goes to B+8",
           allocs([12, 8, 1])),
    GoCase("tiny_4_14_1", "the 14 goes alone into block B; A stays current and the 1 lands at A+4",
           allocs([4, 14, 1])),
    GoCase("tiny_15x3_1", "three blocks; the 1 goes to the first block at +15", allocs([15, 15, 15, 1])),
    GoCase("tiny_40x1", "16 one-byte objects per block, 3 blocks", allocs([1], repeat=40)),
    GoCase("tiny_alignments", "sizes 1..15 up and down: alignment by size (8, 4, 2, 1) and block changes",
           allocs(range(1, 16)) + allocs(range(15, 0, -1))),
    GoCase("tiny_after_gc", "the facts sheet sequences, each after a GC (which forgets the current block)",
           [GC] + allocs([3, 12]) + [GC] + allocs([1, 6, 1, 10]) + [GC] + allocs([12, 8, 1]) + [GC]
           + allocs([4, 14, 1]) + [GC] + allocs([15, 15, 15, 1])),
    GoCase("tiny_and_16_share_span", "tiny blocks and 16-byte pointer-free objects take slots of one span",
           allocs([4, 16, 4, 16, 12, 16, 8, 8, 8])),
    GoCase("tiny_16_is_not_tiny", "a 16-byte pointer-free object takes its own slot, never a tiny block",
           allocs([1, 16, 1, 16, 15])),
    GoCase("tiny_forgotten_at_gc", "a GC drops the current tiny block: the next 1 B opens a new block",
           allocs([1]) + [GC] + allocs([1, 1])),
    GoCase("tiny_block_freed_when_all_dead", "a block is reused only when all its objects are dead",
           allocs([4, 4, 4, 4, 8, 8]) + frees([0, 1, 2, 3, 4]) + [GC] + allocs([16, 16, 16])),
    GoCase("zero_size", "size 0 returns &runtime.zerobase and allocates nothing",
           allocs([0, 24, 0, 24]) + allocs([0], pointers=True)),

    # --- size classes (facts sheet 2, 3)
    GoCase("noscan_class_boundaries", "every class size c and c+1, pointer-free, two each: slot sizes",
           _noscan_boundaries()),
    GoCase("scan_class_boundaries", "every class boundary for pointerful objects, two each (headers above 512 B)",
           _scan_boundaries()),
    GoCase("noscan_sizes_in_one_class", "17..24 B share the 24 B class and its span",
           allocs([17, 18, 20, 24, 19, 23, 21, 22])),

    # --- malloc headers (facts sheet 6)
    GoCase("header_520", "pointerful 520 B -> 576 B slot, address = slot + 8", allocs([520], True, repeat=3)),
    GoCase("header_512_none", "pointerful 512 B: no header, 512 B slot (bitmap in the span tail)",
           allocs([512], True, repeat=3)),
    GoCase("header_cases", "pointerful 504/512/520/1016/1024/8192/24576/32752/32760: class of size+8 above 512",
           allocs([504, 512, 520, 1016, 1024, 8192, 24576, 32752, 32760], True, repeat=2)),
    GoCase("header_noscan_never", "pointer-free 520/1024/8192 B: no header, class of the size itself",
           allocs([520, 1024, 8192], repeat=2)),

    # --- large objects (facts sheet 7)
    GoCase("large_limit", "32760 B small (class 67), 32761 B large: both one 4-page span, page aligned",
           allocs([32760, 32761, 32768, 32769])),
    GoCase("large_limit_scan", "pointerful 32760 B has a header (class 67); 32768 B is large, no header",
           allocs([32760, 32768, 32776], True)),
    GoCase("one_page_objects", "8192 B (class 51) and 8184+8 B pointerful: one object per 1-page span",
           allocs([8192], repeat=3) + allocs([8184], True, repeat=2)),
    GoCase("large_15_16_17_pages", "15 pages from the page cache, 16 and 17 pages from first fit, adjacent",
           allocs([15 * PAGE, 16 * PAGE, 17 * PAGE, 16 * PAGE, 17 * PAGE + 1, 15 * PAGE])),
    GoCase("large_megabytes", "1 MiB objects: 128 pages each, contiguous", allocs([1 << 20], repeat=4)),
    GoCase("large_reuse", "free every other 1 MiB object, GC: new ones land in the freed ranges, lowest first",
           allocs([1 << 20], repeat=8) + frees([0, 2, 4, 6]) + [GC] + allocs([1 << 20], repeat=4)),

    # --- filling spans (facts sheet 2.3, 5.1)
    GoCase("fill_64_noscan", "126 per span on 1.27 (128 nogreenteagc): fill two spans and go on",
           allocs([64], repeat=2 * 128 + 5)),
    GoCase("fill_16_scan", "496 per span on 1.27 (504 nogreenteagc)", allocs([16], True, repeat=2 * 504 + 5)),
    GoCase("fill_16_noscan", "504 per span on 1.27 (512 nogreenteagc)", allocs([16], repeat=2 * 512 + 5)),
    GoCase("fill_8_scan", "1008 per span (bitmap reserve only)", allocs([8], True, repeat=2 * 1008 + 5)),
    GoCase("fill_tiny_blocks", "8-byte pointer-free objects: two per block, 504 blocks per span on 1.27",
           allocs([8], repeat=2 * 2 * 512 + 5)),
    GoCase("fill_512", "15 per span pointer-free and pointerful (16 nogreenteagc pointer-free)",
           allocs([512], repeat=40) + allocs([512], True, repeat=40)),
    GoCase("fill_1408", "2-page spans of 11", allocs([1408], repeat=30)),
    GoCase("fill_3072", "3-page spans of 8", allocs([3072], repeat=20)),
    GoCase("fill_27264", "10-page spans of 3 (24576 B pointerful needs 27264 B)",
           allocs([27264], repeat=7) + allocs([24576], True, repeat=7)),

    # --- free, GC, reuse (facts sheet 5.2, 8)
    GoCase("reuse_64", "after GC: the mcache's partial span first (freed, then never-used slots), then the full spans",
           allocs([64], repeat=2 * 126 + 10) + frees([5, 7, 8, 40, 130, 131, 200, 250, 253, 255]) + [GC]
           + allocs([64], repeat=130)),
    GoCase("reuse_ascending", "freed slots of one span come back lowest index first, whatever the free order",
           allocs([80], repeat=60) + frees([50, 3, 30, 10, 20, 40]) + [GC] + allocs([80], repeat=8)),
    GoCase("reuse_needs_gc", "a free without a GC frees nothing: the next alloc takes a new slot",
           allocs([96], repeat=5) + frees([1, 2]) + allocs([96], repeat=3)),
    GoCase("reuse_empty_span", "a span whose objects all die goes back to the heap",
           allocs([2048], repeat=8) + frees(range(8)) + [GC] + allocs([2048], repeat=4)),
    GoCase("reuse_scan_header", "pointerful 1024 B (1152 B slots, header): the mcache's span first even when full",
           allocs([1024], True, repeat=14) + frees([2, 9, 4]) + [GC] + allocs([1024], True, repeat=4)),
    GoCase("reuse_two_gcs", "objects freed across two GCs; reuse after each",
           allocs([48], repeat=40) + frees([1, 2]) + [GC] + allocs([48], repeat=3) + frees([10, 41]) + [GC]
           + allocs([48], repeat=3)),

    # --- mixed classes
    GoCase("mixed_interleaved", "12 classes interleaved (tiny, small, scan, header, large): each class on its own",
           _interleaved(30)),
    GoCase("mixed_free_gc", "interleaved classes with frees and a GC in the middle",
           _interleaved(20) + frees(range(0, 240, 3)) + [GC] + _interleaved(10)),
]

CASES_BY_NAME: dict[str, GoCase] = {case.name: case for case in CASES}
assert len(CASES_BY_NAME) == len(CASES), "case names must be unique"

__all__ = ["BUILDS", "CASES", "CASES_BY_NAME", "CLASS_SIZES", "GoCase"]
