"""The size-class table against the runtime's generator rules and the facts sheet's measurements."""
from __future__ import annotations

import pytest

from memsim.models.goalloc.sizeclasses import (
    CLASS_PAGES,
    CLASS_SIZES,
    CLASSIC,
    GREENTEA,
    HEADERS,
    MAX_SMALL_SIZE,
    PAGE_SIZE,
    class_of,
    objects_per_span,
    size_to_class_table,
)


def generated_classes() -> list[tuple[int, int]]:
    """(size, pages) per class, by the rules of the runtime's mksizeclasses.go."""
    classes = [(0, 0)]
    align = 8
    size = align
    while size <= MAX_SMALL_SIZE:
        if size & (size - 1) == 0:
            align = 256 if size >= 2048 else size // 8 if size >= 128 else 16 if size >= 32 else align
        alloc = PAGE_SIZE
        while alloc % size > alloc // 8:
            alloc += PAGE_SIZE
        pages = alloc // PAGE_SIZE
        prev_size, prev_pages = classes[-1]
        if len(classes) > 1 and pages == prev_pages and alloc // size == alloc // prev_size:
            classes[-1] = (size, pages)
        else:
            classes.append((size, pages))
        size += align
    grown = [classes[0]]
    for size, pages in classes[1:]:
        span = pages * PAGE_SIZE
        grown.append((max(size, (span // (span // size)) & ~127), pages))
    return grown


def test_table_is_what_the_generator_makes():
    assert generated_classes() == list(zip(CLASS_SIZES, CLASS_PAGES))
    assert len(CLASS_SIZES) == 68


def test_size_lookup_gives_the_smallest_class_that_fits():
    table = size_to_class_table()
    for n in range(1, MAX_SMALL_SIZE + 1):
        c = table[(n + 7) >> 3] if n <= 1024 else table[128 + ((n - 1024 + 127) >> 7)]
        assert CLASS_SIZES[c] >= n > CLASS_SIZES[c - 1], n
        assert c == class_of(n)


# (class, classic, headers noscan, headers scan, greentea noscan, greentea scan): facts sheet §2.4,
# measured on the real runtime where the sheet says so.
OBJECTS = [
    (1, 1024, 1024, 1008, 1024, 1008),
    (2, 512, 512, 504, 504, 496),
    (3, 341, 341, 336, 336, 330),
    (5, 170, 170, 168, 168, 165),
    (10, 64, 64, 63, 63, 62),
    (11, 56, 56, 56, 56, 55),
    (13, 46, 46, 45, 45, 45),
    (23, 19, 19, 19, 19, 19),
    (26, 16, 16, 15, 15, 15),
    (27, 14, 14, 14, 14, 14),
    (52, 6, 6, 6, 6, 6),
    (67, 1, 1, 1, 1, 1),
]


@pytest.mark.parametrize("row", OBJECTS, ids=lambda r: f"class{r[0]}")
def test_objects_per_span_per_generation(row):
    c, classic, headers_noscan, headers_scan, greentea_noscan, greentea_scan = row
    assert objects_per_span(CLASSIC, c, False) == objects_per_span(CLASSIC, c, True) == classic
    assert objects_per_span(HEADERS, c, False) == headers_noscan
    assert objects_per_span(HEADERS, c, True) == headers_scan
    assert objects_per_span(GREENTEA, c, False) == greentea_noscan
    assert objects_per_span(GREENTEA, c, True) == greentea_scan
