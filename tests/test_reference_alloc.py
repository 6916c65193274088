"""Hand-computed scenarios that pin the rules of docs/allocator.md down on the allocator reference.

Every expected number below was worked out by hand from the rulebook and the facts sheet (section
numbers § refer to it); the comments walk through the steps. None was copied from a run of the
model. ``B`` is the heap base and ``P`` a page; the first span of a run is always at page 0.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from alloc_strategies import alloc_cases
from reference_alloc import (
    HEAP_BASE,
    SIZE_CLASSES,
    ZERO_BASE,
    generation,
    objects_per_span,
    simulate,
    simulate_with_state,
)

B = HEAP_BASE
P = 8192
KiB, MiB = 1 << 10, 1 << 20
ONE_OF_EACH = ("1.21", "1.25", "1.27")  # classic, headers, greentea
ALL_VERSIONS = ("1.15", "1.21", "1.22", "1.25", "1.26", "1.27", "1.30")

# The facts sheet's table (§2.4): class -> (bytes/obj, pages, objs classic, objs 1.26+ noscan,
# objs 1.26+ scan, objs 1.22-1.25 scan). Copied from the table, not computed.
TABLE = {
    1: (8, 1, 1024, 1024, 1008, 1008), 2: (16, 1, 512, 504, 496, 504),
    3: (24, 1, 341, 336, 330, 336), 4: (32, 1, 256, 252, 248, 252),
    5: (48, 1, 170, 168, 165, 168), 6: (64, 1, 128, 126, 124, 126),
    7: (80, 1, 102, 100, 99, 100), 8: (96, 1, 85, 84, 82, 84),
    9: (112, 1, 73, 72, 70, 72), 10: (128, 1, 64, 63, 62, 63),
    11: (144, 1, 56, 56, 55, 56), 12: (160, 1, 51, 50, 49, 50),
    13: (176, 1, 46, 45, 45, 45), 14: (192, 1, 42, 42, 41, 42),
    15: (208, 1, 39, 38, 38, 38), 16: (224, 1, 36, 36, 35, 36),
    17: (240, 1, 34, 33, 33, 33), 18: (256, 1, 32, 31, 31, 31),
    19: (288, 1, 28, 28, 27, 28), 20: (320, 1, 25, 25, 24, 25),
    21: (352, 1, 23, 22, 22, 22), 22: (384, 1, 21, 21, 20, 21),
    23: (416, 1, 19, 19, 19, 19), 24: (448, 1, 18, 18, 17, 18),
    25: (480, 1, 17, 16, 16, 16), 26: (512, 1, 16, 15, 15, 15),
    27: (576, 1, 14, 14, 14, 14), 28: (640, 1, 12, 12, 12, 12),
    29: (704, 1, 11, 11, 11, 11), 30: (768, 1, 10, 10, 10, 10),
    31: (896, 1, 9, 9, 9, 9), 32: (1024, 1, 8, 8, 8, 8),
    33: (1152, 1, 7, 7, 7, 7), 34: (1280, 1, 6, 6, 6, 6),
    35: (1408, 2, 11, 11, 11, 11), 36: (1536, 1, 5, 5, 5, 5),
    37: (1792, 2, 9, 9, 9, 9), 38: (2048, 1, 4, 4, 4, 4),
    39: (2304, 2, 7, 7, 7, 7), 40: (2688, 1, 3, 3, 3, 3),
    41: (3072, 3, 8, 8, 8, 8), 42: (3200, 2, 5, 5, 5, 5),
    43: (3456, 3, 7, 7, 7, 7), 44: (4096, 1, 2, 2, 2, 2),
    45: (4864, 3, 5, 5, 5, 5), 46: (5376, 2, 3, 3, 3, 3),
    47: (6144, 3, 4, 4, 4, 4), 48: (6528, 4, 5, 5, 5, 5),
    49: (6784, 5, 6, 6, 6, 6), 50: (6912, 6, 7, 7, 7, 7),
    51: (8192, 1, 1, 1, 1, 1), 52: (9472, 7, 6, 6, 6, 6),
    53: (9728, 6, 5, 5, 5, 5), 54: (10240, 5, 4, 4, 4, 4),
    55: (10880, 4, 3, 3, 3, 3), 56: (12288, 3, 2, 2, 2, 2),
    57: (13568, 5, 3, 3, 3, 3), 58: (14336, 7, 4, 4, 4, 4),
    59: (16384, 2, 1, 1, 1, 1), 60: (18432, 9, 4, 4, 4, 4),
    61: (19072, 7, 3, 3, 3, 3), 62: (20480, 5, 2, 2, 2, 2),
    63: (21760, 8, 3, 3, 3, 3), 64: (24576, 3, 1, 1, 1, 1),
    65: (27264, 10, 3, 3, 3, 3), 66: (28672, 7, 2, 2, 2, 2),
    67: (32768, 4, 1, 1, 1, 1),
}


def expected_objects(version: str, c: int, scan: bool) -> int:
    _, _, classic, gt_noscan, gt_scan, hd_scan = TABLE[c]
    gen = generation(version)
    if gen == "classic":
        return classic
    if gen == "headers":
        return hd_scan if scan else classic
    return gt_scan if scan else gt_noscan


# --- helpers -----------------------------------------------------------------------------------


def allocs(sizes, pointers=False, p=0, start=0) -> list[tuple]:
    return [("alloc", start + i, size, pointers, p) for i, size in enumerate(sizes)]


def addrs(res, objs=None) -> list[int]:
    objs = sorted(res.objects) if objs is None else objs
    return [res.objects[o]["addr"] for o in objs]


def tiers(tiny=0, mcache=0, mcentral=0, mheap=0, os=0) -> dict[str, int]:
    return {"tiny": tiny, "mcache": mcache, "mcentral": mcentral, "mheap": mheap, "os": os}


# --- the table and the version switch ----------------------------------------------------------


def test_embedded_table_matches_the_facts_sheet():
    assert len(SIZE_CLASSES) == 68 and SIZE_CLASSES[0] == (0, 0)
    for c, (size, pages, classic, *_rest) in TABLE.items():
        assert SIZE_CLASSES[c] == (size, pages)
        assert classic == pages * P // size  # the "classic" column is bytes/span / bytes/obj
    sizes = [s for s, _ in SIZE_CLASSES[1:]]
    assert sizes == sorted(set(sizes)) and sizes[-1] == 32768
    assert all(pages <= 10 for _, pages in SIZE_CLASSES)
    assert all(pages == 1 for size, pages in SIZE_CLASSES[1:] if size <= 512)


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize("scan", [False, True])
def test_objects_per_span_formula_matches_every_column(version, scan):
    for c in TABLE:
        assert objects_per_span(generation(version), c, scan) == expected_objects(version, c, scan), c


@pytest.mark.parametrize(
    "version, gen",
    [("1.15", "classic"), ("1.21", "classic"), ("1.21.13", "classic"), ("1.22", "headers"),
     ("1.25", "headers"), ("1.26", "greentea"), ("1.27", "greentea"), ("1.27.3", "greentea"),
     ("1.40", "greentea")],
)
def test_generations(version, gen):
    assert generation(version) == gen


@pytest.mark.parametrize("version", ["1.14", "1.9", "2.0", "go1.22", "1", "1.x", "", "1.22rc1"])
def test_bad_versions(version):
    with pytest.raises(ValueError):
        simulate(version, 1, [])


# --- objects per span, for every class in every generation -------------------------------------


@pytest.mark.parametrize("version", ONE_OF_EACH)
@pytest.mark.parametrize("scan", [False, True])
def test_one_object_of_every_class(version, scan):
    gen = generation(version)
    ops, expect = [], []
    for c, (size, pages, *_rest) in TABLE.items():
        if not scan and size < 16:
            continue  # an 8-byte noscan request is tiny
        request = size - 8 if gen != "classic" and scan and size > 512 else size
        if gen != "classic":
            request = min(request, 32760)  # the small-object limit
        ops.append(("alloc", len(ops), request, scan, 0))
        expect.append((c, size, pages, expected_objects(version, c, scan)))
    res = simulate(version, 1, ops)
    for obj, (c, size, pages, nelems) in enumerate(expect):
        info = res.objects[obj]
        assert (info["size_class"], info["slot_size"], info["span_pages"], info["span_objects"]) == (
            c, size, pages, nelems,
        ), c
        # the first object of a fresh span sits in slot 0
        assert info["slot_base"] == info["span_base"]
        header = 8 if gen != "classic" and scan and size > 512 else 0
        assert info["addr"] == info["slot_base"] + header


@pytest.mark.parametrize(
    "version, size, scan, nelems",
    [
        ("1.27", 16, False, 504), ("1.21", 16, False, 512), ("1.25", 16, False, 512),
        ("1.25", 8, True, 1008), ("1.27", 8, True, 1008), ("1.21", 8, True, 1024),
        ("1.27", 16, True, 496), ("1.25", 16, True, 504),
        ("1.27", 512, False, 15), ("1.21", 512, False, 16), ("1.27", 512, True, 15),
        ("1.27", 144, False, 56), ("1.27", 144, True, 55),
    ],
)
def test_objects_per_span_examples(version, size, scan, nelems):
    # §2.3's measured examples, straight from the allocation
    assert simulate(version, 1, allocs([size], scan)).objects[0]["span_objects"] == nelems


def test_tiny_blocks_live_in_504_slot_spans_on_greentea():
    # 1-byte objects: 16 per block, blocks in class-2 noscan spans (504 slots on 1.26+)
    res = simulate("1.27", 1, allocs([1] * 17))
    info = res.objects[16]
    assert info["size_class"] == 2 and info["slot_size"] == 16 and info["span_objects"] == 504
    assert info["slot_base"] == B + 16 and info["addr"] == B + 16


# --- malloc headers and size-class boundaries --------------------------------------------------


@pytest.mark.parametrize(
    "size, scan, cls_headers, cls_classic",
    [
        (520, True, 27, 27),  # 528 -> 576 with a header; 520 -> 576 without
        (520, False, 27, 27),
        (512, True, 26, 26),  # the header cut-off is exclusive
        (513, True, 27, 27),
        (1016, True, 32, 32),  # 1024 exactly with the header
        (1017, True, 33, 32),
        (1024, True, 33, 32),  # 1152 with a header
        (1024, False, 32, 32),
        (8192, True, 52, 51),  # 9472 B class, 7 pages, 6 per span
        (24576, True, 65, 64),
        (32760, True, 67, 67),
    ],
)
def test_malloc_headers(size, scan, cls_headers, cls_classic):
    for version, cls in (("1.22", cls_headers), ("1.25", cls_headers), ("1.26", cls_headers),
                         ("1.27", cls_headers), ("1.21", cls_classic), ("1.15", cls_classic)):
        info = simulate(version, 1, allocs([size], scan)).objects[0]
        header = 8 if scan and size > 512 and generation(version) != "classic" else 0
        assert info["size_class"] == cls, version
        assert info["slot_size"] == SIZE_CLASSES[cls][0]
        assert info["slot_base"] == B and info["addr"] == B + header, version


def test_header_object_in_later_slots_and_its_waste():
    # three scan 520 B objects on 1.27: slots of 576 B, each address 8 past its slot
    res = simulate("1.27", 1, allocs([520] * 3, True))
    assert addrs(res) == [B + 8, B + 576 + 8, B + 1152 + 8]
    sc = res.stats["size_classes"][27]
    assert sc["live_bytes"] == 3 * 576 and sc["internal_waste"] == 3 * (576 - 520)
    assert sc["tail_waste"] == 8192 - 14 * 576  # 128
    # and 8192 B scan lands in the 9472 B class: 7 pages, 6 per span
    info = simulate("1.26", 1, allocs([8192], True)).objects[0]
    assert (info["slot_size"], info["span_pages"], info["span_objects"], info["addr"]) == (9472, 7, 6, B + 8)


@pytest.mark.parametrize("scan", [False, True])
def test_small_large_limit(scan):
    # 32761..32768 B: class 67 on 1.21, large (4 pages, class 0) on 1.22+
    for size in (32761, 32768):
        old = simulate("1.21", 1, allocs([size], scan)).objects[0]
        assert (old["size_class"], old["slot_size"], old["span_pages"], old["span_objects"]) == (67, 32768, 4, 1)
        assert old["addr"] == B
        for version in ("1.22", "1.25", "1.27"):
            new = simulate(version, 1, allocs([size], scan)).objects[0]
            assert (new["size_class"], new["slot_size"], new["span_pages"], new["span_objects"]) == (0, 32768, 4, 1)
            assert new["addr"] == new["slot_base"] == new["span_base"] == B  # no header on large
    for version in ("1.21", "1.27"):
        # 32760: class 67 everywhere; 32769: 5-page large everywhere
        info = simulate(version, 1, allocs([32760, 32769], scan)).objects
        assert info[0]["size_class"] == 67
        assert (info[1]["size_class"], info[1]["slot_size"], info[1]["span_pages"]) == (0, 5 * P, 5)


@pytest.mark.parametrize("version", ONE_OF_EACH)
def test_size_class_boundaries(version):
    gen = generation(version)
    ops, expect = [], []

    def add(size, scan, cls):
        ops.append(("alloc", len(ops), size, scan, 0))
        expect.append(cls)

    limit = 32768 if gen == "classic" else 32760
    for c in range(1, 68):
        size = SIZE_CLASSES[c][0]
        above = c + 1 if c < 67 else 0  # the class of one byte more
        if size >= 16:  # noscan (smaller requests are tiny)
            add(min(size, limit), False, c)
            add(min(size, limit) + 1, False, above)
        if gen != "classic" and size > 512:  # scan with a header: size + 8 is looked up
            add(size - 8, True, c)
            add(size - 7, True, above)
        else:
            add(size, True, c)
            add(size + 1, True, above)
    add(1, True, 1)
    add(9, True, 2)
    add(15, False, 2)  # tiny block
    add(16, False, 2)  # not tiny: a class-2 slot of its own
    add(17, False, 3)
    res = simulate(version, 1, ops)
    assert [res.objects[i]["size_class"] for i in range(len(ops))] == expect


# --- the tiny allocator (§4) -------------------------------------------------------------------


@pytest.mark.parametrize("version", ONE_OF_EACH)
@pytest.mark.parametrize(
    "sizes, offsets, frees",
    [
        ([3, 12], [0, 4], 1),  # 12 aligned to 4
        ([1, 6, 1, 10], [0, 2, 8, 16], 2),  # 10 aligned to 10 > 6 left: new block, old stays
        ([12, 8, 1], [0, 16, 24], 1),  # 8 in a new block B, which becomes current (8 < 12)
        ([4, 14, 1], [0, 16, 4], 1),  # 14 alone in B; A stays current (14 >= 4); 1 at A+4
        ([15, 15, 15, 1], [0, 16, 32, 15], 1),  # three blocks; the 1 goes to the first at +15
    ],
)
def test_tiny_packing(version, sizes, offsets, frees):
    res = simulate(version, 1, allocs(sizes))
    assert addrs(res) == [B + off for off in offsets]
    st = res.stats
    blocks = len(sizes) - frees
    assert (st["mallocs"], st["frees"], st["heap_objects"]) == (len(sizes), frees, blocks)
    assert st["heap_alloc"] == st["total_alloc"] == 16 * blocks
    assert st["tiers"] == tiers(tiny=frees, os=1, mcache=blocks - 1)
    for obj, off in enumerate(offsets):
        assert res.objects[obj]["slot_base"] == B + off // 16 * 16
        assert (res.objects[obj]["size_class"], res.objects[obj]["slot_size"]) == (2, 16)


def test_tiny_padding_is_internal_waste():
    # [1, 6, 1, 10]: block A holds 1+6+1 = 8 bytes, block B holds 10: 8 + 6 bytes of waste
    res = simulate("1.21", 1, allocs([1, 6, 1, 10]))
    assert res.stats["size_classes"][2]["internal_waste"] == 14


@pytest.mark.parametrize("version, tail", [("1.21", 0), ("1.25", 0), ("1.27", 8192 - 504 * 16)])
def test_forty_one_byte_allocations(version, tail):
    # §4: Mallocs +40, Frees +37, HeapObjects +3, HeapAlloc +48; blocks are consecutive slots
    res = simulate(version, 1, allocs([1] * 40))
    st = res.stats
    assert (st["mallocs"], st["frees"], st["heap_objects"], st["heap_alloc"]) == (40, 37, 3, 48)
    assert st["total_alloc"] == 48
    assert addrs(res) == [B + i for i in range(40)]
    assert st["tiers"] == tiers(tiny=37, mcache=2, os=1)
    assert st["size_classes"] == {
        2: {"allocs": 3, "frees": 0, "live_objects": 3, "live_bytes": 48, "internal_waste": 8, "tail_waste": tail}
    }


def test_tiny_and_16_byte_objects_share_a_span():
    # §2.2: tiny blocks and 16 B noscan objects interleave in one span class
    res = simulate("1.27", 1, allocs([4, 16, 4, 16]))
    assert addrs(res) == [B, B + 16, B + 4, B + 32]
    assert res.stats["size_classes"][2]["allocs"] == 3


def test_tiny_block_freed_only_when_all_its_objects_are():
    ops = allocs([1, 1])  # objs 0, 1 share block A (slot 0)
    ops += [("free", 0), ("gc",)]  # obj 1 keeps the block
    ops += [("alloc", 2, 1, False, 0)]  # tiny block was forgotten: new slot, the lowest free one (1)
    ops += [("free", 1), ("gc",)]  # now A is freed
    ops += [("alloc", 3, 16, False, 0)]  # a 16 B noscan object takes slot 0 again
    res, heap = simulate_with_state("1.21", 1, ops)
    assert addrs(res) == [B, B + 1, B + 16, B]
    st = res.stats
    # mallocs 4; frees: 1 (tiny fit) + 1 (block A swept)
    assert (st["mallocs"], st["frees"], st["heap_objects"], st["heap_alloc"]) == (4, 2, 2, 32)
    assert st["tiers"] == tiers(tiny=1, os=1, mcentral=2)
    assert st["size_classes"][2] == {
        "allocs": 3, "frees": 1, "live_objects": 2, "live_bytes": 32, "internal_waste": 15, "tail_waste": 0,
    }


def test_tiny_state_after_gc():
    # after a gc the block is forgotten even though it had room left
    ops = allocs([1]) + [("gc",)] + [("alloc", 1, 1, False, 0)]
    assert addrs(simulate("1.27", 1, ops)) == [B, B + 16]


# --- the page heap -----------------------------------------------------------------------------


def test_consecutive_one_page_spans_are_adjacent():
    # 8192 B noscan = class 51, 1 page, 1 object. The first span: the page cache is empty and the
    # heap has no free page, so first fit grows the heap (tier os) and takes page 0. The second
    # refills the cache with the window 0..63 (pages 1..63) and takes page 1, and so on.
    res = simulate("1.27", 1, allocs([8192] * 3))
    assert addrs(res) == [B, B + P, B + 2 * P]
    st = res.stats
    assert st["tiers"] == tiers(os=1, mheap=2)
    assert st["heap_sys"] == 4 * MiB and st["heap_inuse"] == 3 * P
    assert st["heap_idle"] == 4 * MiB - 3 * P
    assert st["heap_released"] == 4 * MiB - 3 * P  # cached pages were never used by a span


def test_sixteen_page_span_by_first_fit():
    ops = allocs([8192, 8192])  # pages 0, 1; the cache holds 2..63
    ops += [("alloc", 2, 16 * P, False, 0)]  # 16 pages: first fit outside the cache: 64..79
    ops += [("alloc", 3, 15 * P, False, 0)]  # 15 pages: from the cache, lowest run: 2..16
    ops += [("alloc", 4, 8192, False, 0)]  # 1 page: lowest cached page: 17
    ops += [("alloc", 5, 16 * P + 1, False, 0)]  # 17 pages: first fit: 80..96
    res = simulate("1.25", 1, ops)
    assert addrs(res) == [B, B + P, B + 64 * P, B + 2 * P, B + 17 * P, B + 80 * P]
    assert res.objects[5]["span_pages"] == 17 and res.objects[3]["span_pages"] == 15
    assert res.stats["tiers"] == tiers(os=1, mheap=5)


def test_page_cache_windows_are_64_page_aligned():
    ops = allocs([8192])  # page 0 by first fit (the heap was empty: the cache stayed empty)
    ops += [("alloc", 1, 20 * P, False, 0)]  # 20 pages, first fit: 1..20
    ops += allocs([8192] * 44, start=2)  # the cache refills: aligned window 0..63 -> pages 21..63
    # ... 43 of them fill 21..63; the 44th refills with the window 64..127 and takes page 64
    res = simulate("1.21", 1, ops)
    assert res.objects[1]["addr"] == B + P
    assert addrs(res, range(2, 46)) == [B + page * P for page in list(range(21, 64)) + [64]]


def test_page_cache_without_a_long_enough_run_falls_back_to_first_fit():
    ops = allocs([8192] * 56)  # pages 0..55; the cache keeps 56..63 (8 pages)
    ops += [("alloc", 56, 9 * P, False, 0)]  # 9 pages: no run of 9 in the cache: first fit 64..72
    ops += [("alloc", 57, 8 * P, False, 0)]  # 8 pages: from the cache: 56..63
    ops += [("alloc", 58, 8192, False, 0)]  # the cache is empty: window 64..127, lowest free 73
    res = simulate("1.27", 1, ops)
    assert addrs(res, [56, 57, 58]) == [B + 64 * P, B + 56 * P, B + 73 * P]


def test_first_allocation_grows_one_chunk():
    st = simulate("1.27", 1, allocs([1])).stats
    assert (st["heap_sys"], st["heap_inuse"], st["heap_idle"]) == (4 * MiB, P, 4 * MiB - P)
    assert st["heap_released"] == 4 * MiB - P


def test_growth_may_start_below_the_new_chunk():
    # page 0 is used; pages 1..511 (511 free) cannot hold 512 pages: the heap grows one chunk
    # and first fit takes pages 1..512
    res = simulate("1.27", 1, allocs([8192, 4 * MiB]))
    assert addrs(res) == [B, B + P]
    st = res.stats
    assert st["heap_sys"] == 8 * MiB and st["tiers"] == tiers(os=2)
    assert st["heap_inuse"] == 513 * P and st["heap_released"] == (1024 - 513) * P


def test_growth_by_several_chunks():
    # 5 MiB = 640 pages: ceil(640 / 512) = 2 chunks
    st = simulate("1.22", 1, allocs([5 * MiB])).stats
    assert st["heap_sys"] == 8 * MiB and st["heap_released"] == (1024 - 640) * P
    assert st["heap_alloc"] == st["heap_inuse"] == 5 * MiB


def test_one_mib_objects_fill_chunks():
    # 128 pages each, first fit: four per chunk, the fifth grows the heap
    res = simulate("1.27", 1, allocs([MiB] * 5))
    assert addrs(res) == [B + i * 128 * P for i in range(5)]
    st = res.stats
    assert st["tiers"] == tiers(os=2, mheap=3) and st["heap_sys"] == 8 * MiB
    assert st["size_classes"] == {
        0: {"allocs": 5, "frees": 0, "live_objects": 5, "live_bytes": 5 * MiB, "internal_waste": 0, "tail_waste": 0}
    }


def test_large_objects_reuse_the_lowest_freed_ranges():
    # §7: eight 1 MiB objects (pages 0..1023), drop every other one, gc: four new 1 MiB objects
    # land exactly in the four freed ranges, lowest address first
    ops = allocs([MiB] * 8)
    ops += [("free", i) for i in (0, 2, 4, 6)] + [("gc",)]
    ops += allocs([MiB] * 4, start=8)
    res = simulate("1.27", 1, ops)
    assert addrs(res, range(8, 12)) == [B, B + 256 * P, B + 512 * P, B + 768 * P]
    st = res.stats
    assert (st["frees"], st["heap_objects"], st["heap_sys"], st["heap_idle"]) == (4, 8, 8 * MiB, 0)
    assert st["heap_released"] == 0
    assert st["tiers"] == tiers(os=2, mheap=10)


def test_freed_pages_are_idle_but_not_released():
    ops = allocs([MiB + 1]) + [("free", 0), ("gc",)]  # 129 pages, then back to the heap
    st = simulate("1.27", 1, ops).stats
    assert (st["heap_inuse"], st["heap_idle"], st["heap_released"]) == (0, 4 * MiB, 4 * MiB - 129 * P)
    assert (st["heap_alloc"], st["total_alloc"], st["heap_objects"]) == (0, 129 * P, 0)
    assert st["size_classes"][0] == {
        "allocs": 1, "frees": 1, "live_objects": 0, "live_bytes": 0, "internal_waste": 0, "tail_waste": 0,
    }


def test_large_internal_waste():
    st = simulate("1.27", 1, allocs([40000, 40000], True)).stats  # 5 pages each
    assert st["size_classes"][0]["internal_waste"] == 2 * (5 * P - 40000)
    assert st["heap_alloc"] == 10 * P


# --- frees and collections ---------------------------------------------------------------------


def test_frees_are_reclaimed_only_by_a_collection():
    ops = allocs([64, 64]) + [("free", 0)] + [("alloc", 2, 64, False, 0)]
    res = simulate("1.27", 1, ops)
    assert addrs(res) == [B, B + 64, B + 128]
    assert res.stats["frees"] == 0 and res.stats["heap_alloc"] == 3 * 64


def test_reuse_lowest_free_slot_first():
    # ten 64 B objects in one span (slots 0..9); free slots 3, 7, 1; gc. The mcache's span is
    # swept and queued as partial; the next allocation takes it back (tier mcentral) and the
    # allocations fill slots 1, 3, 7, then 10, 11.
    ops = allocs([64] * 10) + [("free", 3), ("free", 7), ("free", 1), ("gc",)]
    ops += allocs([64] * 5, start=10)
    res = simulate("1.21", 1, ops)
    assert addrs(res, range(10, 15)) == [B + 64 * i for i in (1, 3, 7, 10, 11)]
    st = res.stats
    assert (st["mallocs"], st["frees"], st["heap_objects"], st["heap_alloc"]) == (15, 3, 12, 12 * 64)
    assert st["total_alloc"] == 15 * 64 and st["num_gc"] == 1
    assert st["tiers"] == tiers(os=1, mcache=13, mcentral=1)
    assert st["size_classes"][6] == {
        "allocs": 15, "frees": 3, "live_objects": 12, "live_bytes": 768, "internal_waste": 0, "tail_waste": 0,
    }


def test_span_order_after_gc_mcache_span_first():
    # §8's measured example: 64 B objects (128 per span on 1.21) fill span0 (page 0) and span1
    # (page 1); span2 (page 2) is partial in the mcache. One object is freed in each; after the gc
    # the queue is [span2 (flushed in step 2), span0, span1 (the old full list)].
    ops = allocs([64] * 300) + [("free", 5), ("free", 130), ("free", 260), ("gc",)]
    ops += allocs([64] * 88, start=300)
    res = simulate("1.21", 1, ops)
    got = addrs(res, range(300, 388))
    assert got[0] == B + 2 * P + 4 * 64  # span2's freed slot 4
    assert got[1:85] == [B + 2 * P + 64 * i for i in range(44, 128)]  # then its never-used slots
    assert got[85] == B + 5 * 64  # span0's slot 5
    assert got[86] == B + P + 2 * 64  # span1's slot 2
    assert got[87] == B + 3 * P  # a new span from the page cache


def test_span_order_after_gc_old_full_before_old_partial():
    # The rulebook's step 3: the old full list is swept (and queued) before the old partial list.
    # 64 B objects on 1.21, 128 per span:
    ops = allocs([64] * 385)  # span0..span2 full (pages 0..2), span3 (page 3) has slot 0
    ops += [("free", 0), ("free", 128), ("free", 129), ("gc",)]
    # gc1: step 2 queues span3 (partial); step 3: old full span0 -> partial, span1 -> partial,
    # span2 -> full. Partial: [span3, span0, span1]; full: [span2].
    ops += [("alloc", 385, 64, False, 0)]  # span3 back from mcentral, slot 1
    ops += [("free", 256), ("free", 384), ("gc",)]  # span2 (on the full list) and span3 (mcache)
    # gc2: step 2: span3 -> partial [span3]; step 3: old full [span2] -> partial (slot 0 free);
    # old partial [span0, span1] -> still partial. Partial: [span3, span2, span0, span1].
    ops += allocs([64] * 132, start=386)
    res = simulate("1.21", 1, ops)
    assert res.objects[385]["addr"] == B + 3 * P + 64
    got = addrs(res, range(386, 518))
    assert got[0] == B + 3 * P  # span3 slot 0
    assert got[1:127] == [B + 3 * P + 64 * i for i in range(2, 128)]
    assert got[127] == B + 2 * P  # span2 slot 0 (old full)
    assert got[128] == B  # span0 slot 0 (old partial)
    assert got[129:131] == [B + P, B + P + 64]  # span1 slots 0, 1
    assert got[131] == B + 4 * P  # a new span
    st = res.stats
    assert st["num_gc"] == 2 and st["frees"] == 5
    assert st["tiers"]["mcentral"] == 1 + 4  # gc1: span3; gc2: span3, span2, span0, span1


def test_full_spans_queue_in_the_order_they_became_full():
    # 64 B objects on 1.21: span0 and span1 go to the full list in that order; span2 is full but
    # still in the mcache. One object is freed in span1, then one in span0. The gc queues span2
    # on the full list (step 2: nothing freed), then sweeps the old full list in queue order:
    # partial = [span0, span1], whatever the order of the frees.
    ops = allocs([64] * 384) + [("free", 200), ("free", 10), ("gc",)]
    ops += allocs([64] * 3, start=384)
    res = simulate("1.21", 1, ops)
    assert addrs(res, [384, 385, 386]) == [B + 10 * 64, B + P + 72 * 64, B + 3 * P]
    assert res.stats["tiers"]["mcentral"] == 2


def test_mcache_span_that_fills_goes_to_the_full_list_at_gc():
    # span1 is full but still cached at the gc; after the sweep it is queued first (step 2)
    ops = allocs([64] * 256) + [("free", 200), ("free", 10), ("gc",)]
    ops += allocs([64] * 3, start=256)
    res = simulate("1.21", 1, ops)
    assert addrs(res, [256, 257, 258]) == [B + P + 72 * 64, B + 10 * 64, B + 2 * P]


def test_empty_spans_return_to_the_page_heap():
    ops = allocs([64] * 3) + [("free", 0), ("free", 1), ("free", 2), ("gc",)]
    ops += allocs([8192], start=3)
    res = simulate("1.27", 1, ops)
    st = res.stats
    assert st["heap_inuse"] == P and st["frees"] == 3
    # page 0 is free again, but the 1-page span comes from the page cache (window 0..63, which
    # the P had not filled yet: the first span came by first fit): the cache refills now with
    # the lowest free page, page 0
    assert res.objects[3]["addr"] == B
    assert st["size_classes"][6] == {
        "allocs": 3, "frees": 3, "live_objects": 0, "live_bytes": 0, "internal_waste": 0, "tail_waste": 0,
    }


def test_cached_pages_are_not_reused_by_first_fit_elsewhere():
    # the page cache's pages stop being free for everyone else
    ops = allocs([64, 8192])  # page 0 (first fit), page 1 (cache 1..63)
    ops += [("alloc", 2, 16 * P, False, 0)]  # first fit skips 2..63: page 64
    res = simulate("1.27", 1, ops)
    assert addrs(res) == [B, B + P, B + 64 * P]


# --- GOGC ---------------------------------------------------------------------------------------


def test_gogc_minimum_heap():
    # gogc 100: goal max(0, 4 MiB). Four 1 MiB objects bring the heap to 4 MiB: a collection.
    res, heap = simulate_with_state("1.27", 1, allocs([MiB] * 8), gogc=100)
    assert heap.gc_points == [3, 7]  # after the 4th and the 8th allocation
    st = res.stats
    assert st["num_gc"] == 2 and st["heap_goal"] == 16 * MiB  # live 8 MiB + 100 %
    assert st["frees"] == 0


def test_gogc_with_frees():
    ops = allocs([MiB] * 3) + [("free", 0), ("free", 1)]
    ops += allocs([MiB], start=3)  # heap 4 MiB (freed, not swept): gc; live 2 MiB, goal 4 MiB
    ops += allocs([MiB], start=4)  # first fit into pages 0..127; heap 3 MiB
    ops += allocs([MiB], start=5)  # pages 128..255; heap 4 MiB >= goal: gc; live 4 MiB
    res, heap = simulate_with_state("1.27", 1, ops, gogc=100)
    assert heap.gc_points == [5, 7]
    assert addrs(res, [4, 5]) == [B, B + 128 * P]
    st = res.stats
    assert (st["num_gc"], st["frees"], st["heap_goal"], st["heap_alloc"]) == (2, 2, 8 * MiB, 4 * MiB)


def test_gogc_50_and_off():
    _, heap = simulate_with_state("1.27", 1, allocs([MiB] * 3), gogc=50)
    # goal 2 MiB: a gc after the 2nd; live 2 MiB, goal 3 MiB: a gc after the 3rd
    assert heap.gc_points == [1, 2]
    res = simulate("1.27", 1, allocs([MiB] * 9))
    assert res.stats["num_gc"] == 0 and res.stats["heap_goal"] == 0
    assert simulate("1.27", 1, [], gogc=100).stats["heap_goal"] == 4 * MiB


def test_gogc_integer_goal():
    # gogc 1: minimum goal 4 MiB * 1 // 100 = 41943. 8192 B objects: the 6th brings the heap to
    # 49152 >= 41943. Then live 49152: goal max(49152 + 491, 41943) = 49643, which the 7th
    # allocation (57344) reaches; and so on.
    res, heap = simulate_with_state("1.21", 1, allocs([8192] * 8), gogc=1)
    assert heap.gc_points == [5, 6, 7]
    assert res.stats["heap_goal"] == 65536 + 655


def test_gogc_zero_collects_after_every_allocation():
    res, heap = simulate_with_state("1.27", 1, allocs([1, 1, 1]), gogc=0)
    assert heap.gc_points == [0, 1, 2]
    # each collection forgets the tiny block, so every 1-byte object gets a block of its own
    assert addrs(res) == [B, B + 16, B + 32]
    assert res.stats["heap_goal"] == 48


def test_collection_counts_with_gc_events_and_gogc():
    ops = allocs([64]) + [("gc",), ("gc",)]
    assert simulate("1.27", 1, ops, gogc=100).stats["num_gc"] == 2


# --- multiple Ps --------------------------------------------------------------------------------


def test_each_p_has_its_own_spans_and_page_cache():
    ops = [("alloc", 0, 64, False, 0), ("alloc", 1, 64, False, 1), ("alloc", 2, 64, False, 0),
           ("alloc", 3, 64, False, 1)]
    # P0: page 0 by first fit (os); P1: its cache takes the window 0..63 (pages 1..63): page 1
    res = simulate("1.27", 2, ops)
    assert addrs(res) == [B, B + P, B + 64, B + P + 64]
    assert res.stats["tiers"] == tiers(os=1, mheap=1, mcache=2)
    # P0's next span: its cache refills with the window 64..127
    ops = [("alloc", 0, 8192, False, 0), ("alloc", 1, 8192, False, 1), ("alloc", 2, 8192, False, 0),
           ("alloc", 3, 8192, False, 1)]
    assert addrs(simulate("1.27", 2, ops)) == [B, B + P, B + 64 * P, B + 2 * P]


def test_each_p_has_its_own_tiny_block():
    ops = [("alloc", i, 1, False, i % 2) for i in range(4)]
    res = simulate("1.27", 2, ops)
    assert addrs(res) == [B, B + P, B + 1, B + P + 1]
    assert res.stats["mallocs"] == 4 and res.stats["frees"] == 2


def test_mcaches_are_flushed_in_p_order():
    ops = [("alloc", 0, 64, False, 0), ("alloc", 1, 64, False, 1), ("gc",),
           ("alloc", 2, 64, False, 1), ("alloc", 3, 64, False, 0)]
    # after the gc the partial queue is [P0's span, P1's span]: P1 refills first and takes P0's
    res = simulate("1.27", 2, ops)
    assert addrs(res, [2, 3]) == [B + 64, B + P + 64]
    assert res.stats["tiers"]["mcentral"] == 2


def test_three_ps_page_cache_windows():
    # P2 is the third to refill: window 128..191
    ops = [("alloc", 0, 64, False, 0), ("alloc", 1, 64, False, 1), ("alloc", 2, 64, False, 2),
           ("alloc", 3, 8192, False, 0)]
    # P0: page 0 (first fit, its cache stayed empty); P1: window 0..63 -> page 1;
    # P2: window 64..127 -> page 64; P0's 8192 B span: window 128..191 -> page 128
    assert addrs(simulate("1.27", 3, ops)) == [B, B + P, B + 64 * P, B + 128 * P]


# --- zero-size objects and misuse ---------------------------------------------------------------


def test_zero_size_objects():
    ops = allocs([0, 0], True) + [("free", 0)] + allocs([0], start=2)
    res = simulate("1.27", 1, ops)
    zero = {"addr": ZERO_BASE, "size_class": 0, "slot_size": 0, "slot_base": 0, "span_base": 0,
            "span_pages": 0, "span_objects": 0}
    assert all(res.objects[i] == zero for i in range(3))
    st = res.stats
    assert (st["mallocs"], st["frees"], st["heap_sys"], st["total_alloc"]) == (0, 0, 0, 0)
    assert st["tiers"] == tiers() and st["size_classes"] == {}


@pytest.mark.parametrize(
    "ops, procs, gogc",
    [
        ([("free", 0)], 1, None),  # never allocated
        (allocs([8]) + [("free", 0), ("free", 0)], 1, None),  # freed twice
        (allocs([0]) + [("free", 0), ("free", 0)], 1, None),  # zero-size freed twice
        ([("alloc", 0, 8, False, 0), ("alloc", 0, 8, False, 0)], 1, None),  # allocated twice
        (allocs([8]) + [("free", 0), ("gc",), ("alloc", 0, 8, False, 0)], 1, None),  # reused id
        ([("alloc", 0, 8, False, 2)], 2, None),  # no P 2
        ([("alloc", 0, -1, False, 0)], 1, None),
        ([("alloc", -1, 8, False, 0)], 1, None),
        ([("alloc", 0, 8, False)], 1, None),
        ([("realloc", 0)], 1, None),
        ([("gc", 1)], 1, None),
        ([], 0, None),
        ([], 1, -1),
    ],
)
def test_misuse_raises(ops, procs, gogc):
    with pytest.raises(ValueError):
        simulate("1.27", procs, ops, gogc)


def test_ops_are_not_modified_and_runs_are_deterministic():
    ops = allocs([1, 700, 40000], True) + [("free", 1), ("gc",)] + allocs([3, 33], start=3)
    frozen = list(ops)
    assert simulate("1.24", 2, ops) == simulate("1.24", 2, ops)
    assert ops == frozen


# --- invariants on generated traces -------------------------------------------------------------


def check_invariants(case, res, heap) -> None:
    version, procs, ops, gogc = case
    st = res.stats
    gen = generation(version)
    # MemStats identities
    assert st["heap_objects"] == st["mallocs"] - st["frees"]
    assert st["heap_sys"] == st["heap_inuse"] + st["heap_idle"]
    assert st["heap_alloc"] <= st["heap_inuse"]
    assert 0 <= st["heap_released"] <= st["heap_idle"]
    assert st["heap_sys"] % (4 * MiB) == 0 and st["heap_inuse"] % P == 0
    assert st["heap_alloc"] <= st["total_alloc"]
    classes = st["size_classes"]
    slot_allocs = sum(c["allocs"] for c in classes.values())
    assert sum(st["tiers"].values()) == st["mallocs"]
    assert st["mallocs"] == slot_allocs + st["tiers"]["tiny"]
    assert st["frees"] == sum(c["frees"] for c in classes.values()) + st["tiers"]["tiny"]
    assert st["heap_alloc"] == sum(c["live_bytes"] for c in classes.values())
    for c, row in classes.items():
        assert row["allocs"] > 0 and row["live_objects"] == row["allocs"] - row["frees"]
        assert row["internal_waste"] >= 0 and row["tail_waste"] >= 0
    n_gc_ops = sum(op[0] == "gc" for op in ops)
    assert st["num_gc"] == len(heap.gc_points) >= n_gc_ops
    if gogc is None:
        assert st["num_gc"] == n_gc_ops and st["heap_goal"] == 0

    # placement of every object
    alloc_at, free_at, size_of, scan_of = {}, {}, {}, {}
    for i, op in enumerate(ops):
        if op[0] == "alloc":
            alloc_at[op[1]], size_of[op[1]], scan_of[op[1]] = i, op[2], op[3]
        elif op[0] == "free":
            free_at[op[1]] = i
    assert set(res.objects) == set(alloc_at)
    heap_end = HEAP_BASE + st["heap_sys"]
    for obj, info in res.objects.items():
        size = size_of[obj]
        if size == 0:
            assert info["addr"] == ZERO_BASE and info["slot_size"] == info["span_base"] == 0
            continue
        slot, span = info["slot_base"], info["span_base"]
        assert slot <= info["addr"] and info["addr"] + size <= slot + info["slot_size"]
        assert (span - HEAP_BASE) % P == 0 and HEAP_BASE <= span
        assert span + info["span_pages"] * P <= heap_end
        assert (slot - span) % info["slot_size"] == 0
        assert 0 <= (slot - span) // info["slot_size"] < info["span_objects"]
        assert info["span_objects"] * info["slot_size"] <= info["span_pages"] * P
        if info["size_class"] == 0:
            assert info["span_objects"] == 1 and info["slot_size"] == info["span_pages"] * P
            assert info["addr"] == span and info["span_pages"] == -(-size // P)
        else:
            assert (info["slot_size"], info["span_pages"]) == SIZE_CLASSES[info["size_class"]]
            header = gen != "classic" and scan_of[obj] and size > 512
            tiny = not scan_of[obj] and size < 16
            if tiny:
                assert info["size_class"] == 2 and info["addr"] - slot < 16
            else:
                assert info["addr"] == slot + (8 if header else 0)

    # no two objects overlap unless the older was freed and a collection ran before the newer
    # was allocated (memory is reclaimed only by a sweep)
    def collected_between(a: int, b: int) -> bool:
        return any(a <= g < b for g in heap.gc_points)

    placed = sorted((info["addr"], obj) for obj, info in res.objects.items() if size_of[obj] > 0)
    for i, (addr, obj) in enumerate(placed):
        end = addr + size_of[obj]
        for addr2, obj2 in placed[i + 1:]:
            if addr2 >= end:
                break
            old, new = sorted((obj, obj2), key=alloc_at.get)
            assert old in free_at and free_at[old] < alloc_at[new], (old, new)
            assert collected_between(free_at[old], alloc_at[new]), (old, new)

    # within one span and one collection epoch, new slots are handed out in ascending order
    last_index: dict[tuple[int, int], int] = {}
    seen_slots: set[tuple[int, int]] = set()
    for obj in sorted(alloc_at, key=alloc_at.get):
        info = res.objects[obj]
        if size_of[obj] == 0:
            continue
        epoch = sum(g < alloc_at[obj] for g in heap.gc_points)
        if (info["slot_base"], epoch) in seen_slots:
            continue  # a tiny object in an existing block
        seen_slots.add((info["slot_base"], epoch))
        index = (info["slot_base"] - info["span_base"]) // info["slot_size"]
        key = (info["span_base"], epoch)
        assert index > last_index.get(key, -1), obj
        last_index[key] = index

    # spans in use are disjoint and inside the heap (checked from the model's own state too)
    heap.check_consistency()
    spans = sorted((s.base, s.end) for s in heap.spans)
    assert all(e1 <= b2 for (_, e1), (b2, _) in zip(spans, spans[1:]))
    assert all(HEAP_BASE <= b and e <= heap_end for b, e in spans)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(alloc_cases())
def test_invariants_on_generated_traces(case):
    res, heap = simulate_with_state(*case)
    check_invariants(case, res, heap)
