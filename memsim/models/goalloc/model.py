"""The Go allocator model's Python side: owns the state arrays, feeds chunks to the kernel, grows
the arrays when the kernel asks, and turns the state into typed results."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memsim.models.goalloc import kernel as k
from memsim.models.goalloc.sizeclasses import (
    CLASS_SIZES,
    GENERATIONS,
    N_CLASSES,
    N_SPAN_CLASSES,
    PAGE_SHIFT,
    PAGE_SIZE,
    class_arrays,
    size_to_class_table,
    small_limit,
)
from memsim.trace.events import Events

TIERS = ("tiny", "mcache", "mcentral", "mheap", "os")
BY_SIZE_CLASSES = 61  # runtime.MemStats.BySize has 61 entries
MAX_OBJECTS = 1 << 26  # objects of one trace (40 bytes of state each: 2.5 GiB at most)
ERRORS = {
    k.ERR_DUPLICATE: "object {id} is allocated a second time (ids are unique in a trace)",
    k.ERR_NOT_ALLOCATED: "object {id} is used before it is allocated",
    k.ERR_FREED: "object {id} is used after it was freed",
    k.ERR_OUT_OF_BOUNDS: "the access falls outside object {id}",
    k.ERR_FREE_UNALLOCATED: "object {id} is freed before it is allocated",
    k.ERR_DOUBLE_FREE: "object {id} is freed twice",
}


class AllocatorError(Exception):
    """An event broke a rule of the trace: ``kind`` is one of kernel.ERR_*, ``event`` its index
    within the chunk that was placed."""

    def __init__(self, kind: int, event: int, obj: int):
        super().__init__(ERRORS[kind])
        self.kind, self.event, self.obj = kind, event, obj

    def message(self, object_name: str) -> str:
        return ERRORS[self.kind].format(id=object_name)


@dataclass(frozen=True)
class Placements:
    """Where each object went (struct of arrays indexed by object; docs/allocator.md). Objects of
    size 0 have the zero-size address and zeros elsewhere; a large object's slot is its span."""

    allocated: np.ndarray  # bool: the object was allocated (it may have been freed since)
    addr: np.ndarray
    size: np.ndarray
    size_class: np.ndarray  # 0: large (or size 0)
    pointers: np.ndarray  # bool: a scan object
    slot_size: np.ndarray
    slot_base: np.ndarray
    span_base: np.ndarray
    span_pages: np.ndarray
    span_objects: np.ndarray


@dataclass(frozen=True)
class SizeClassStats:
    size_class: int  # 0: large objects
    slot_size: int  # 0 for large objects (each has its own span)
    allocs: int
    frees: int
    live_objects: int
    live_bytes: int
    internal_waste: int
    tail_waste: int


@dataclass(frozen=True)
class AllocatorStats:
    mallocs: int
    frees: int
    heap_objects: int
    heap_alloc: int
    total_alloc: int
    heap_sys: int
    heap_inuse: int
    heap_idle: int
    heap_released: int
    num_gc: int
    heap_goal: int
    tiers: dict[str, int]
    size_classes: tuple[SizeClassStats, ...]
    by_size: tuple[dict[str, int], ...]  # runtime.MemStats.BySize: classes 0-60 only, {size, mallocs, frees}


class GoAllocator:
    """One Go heap with ``procs`` Ps; ``place`` replays the allocation side of event chunks."""

    def __init__(self, generation: str, procs: int, n_objects: int, gogc: int | None = None):
        self.generation = GENERATIONS[generation]
        self.classes = class_arrays(self.generation)
        self.size_to_class = size_to_class_table()
        self.spans = np.zeros((64, k.SP_FIELDS), np.int64)
        self.free_ids = np.full(k.BUCKETS, -1, np.int64)
        self.slot_count = np.zeros(1 << 14, np.int16)
        self.slot_used = np.zeros(1 << 14, np.int32)
        self.pages = np.full(k.CHUNK_PAGES, k.FREE_PAGE, np.int32)
        self.touched = np.zeros(k.CHUNK_PAGES, np.uint8)
        self.summary = np.zeros((1, 3), np.int64)  # chunks the heap has not grown to are never read
        self.lists = np.full((N_SPAN_CLASSES, 4), -1, np.int64)
        self.mcache = np.full((procs, N_SPAN_CLASSES), -1, np.int64)
        self.procs = np.zeros((procs, k.PR_FIELDS), np.int64)
        self.procs[:, k.PR_TINY_SLOT] = -1
        self.objects = np.zeros((n_objects, k.OB_FIELDS), np.int64)
        self.stats = np.zeros(k.ST_FIELDS, np.int64)
        self.stats[k.ST_GOGC] = -1 if gogc is None else gogc
        self.stats[k.ST_GOAL] = 0 if gogc is None else k.heap_goal(0, gogc)
        self.stats[k.ST_GENERATION] = self.generation
        self.stats[k.ST_SMALL_LIMIT] = small_limit(self.generation)
        self.class_stats = np.zeros((N_SPAN_CLASSES, k.CS_FIELDS), np.int64)
        self._old_tails = np.zeros((N_SPAN_CLASSES, 2), np.int64)

    def place(self, events: Events) -> np.ndarray:
        """Allocate, free and collect as the chunk says; return every event's absolute address
        (accesses to objects resolved, raw addresses copied). Raises AllocatorError."""
        out = np.empty(len(events), np.int64)
        start = 0
        while True:
            status, start = k.place_chunk(
                events.op, events.core, events.size, events.obj, events.addr, events.flags, start, out,
                self.classes, self.size_to_class, self.spans, self.free_ids, self.slot_count, self.slot_used,
                self.pages, self.summary, self.touched, self.lists, self.mcache, self.procs, self.objects, self.stats,
                self.class_stats, self._old_tails,
            )
            if status == k.DONE:
                return out
            if status != k.NEED_ROOM:
                raise AllocatorError(status, start, int(events.obj[start]))
            self._make_room(int(events.size[start]))

    def _make_room(self, request: int) -> None:
        """Double whichever array might overflow on the next allocation of ``request`` bytes."""
        if self.stats[k.ST_SPAN_IDS] >= len(self.spans):
            self.spans = _grown(self.spans, 2 * len(self.spans), 0)
        if self.stats[k.ST_SLOT_WORDS] + k.MAX_SPAN_OBJECTS > len(self.slot_count):
            size = 2 * len(self.slot_count)
            self.slot_count = _grown(self.slot_count, size, 0)
            self.slot_used = _grown(self.slot_used, size, 0)
        need = self.stats[k.ST_HEAP_PAGES] + k.growth_pages(request)
        if need > len(self.pages):
            size = max(need, 2 * len(self.pages))
            size = -(-size // k.CHUNK_PAGES) * k.CHUNK_PAGES
            self.pages = _grown(self.pages, size, k.FREE_PAGE)
            self.touched = _grown(self.touched, size, 0)
            self.summary = _grown(self.summary, size // k.CHUNK_PAGES, 0)

    def placements(self) -> Placements:
        ob = self.objects
        state = ob[:, k.OB_STATE]
        span_class = state >> 2
        size_class = span_class >> 1
        has_span = ob[:, k.OB_SLOT] >= 0
        large = has_span & (size_class == 0)
        span_base = np.where(has_span, k.HEAP_BASE + (ob[:, k.OB_SPAN_PAGE] << PAGE_SHIFT), 0)
        large_pages = -(-ob[:, k.OB_SIZE] // PAGE_SIZE)
        slot_size = np.where(large, large_pages * PAGE_SIZE, np.where(has_span, self.classes[span_class, 0], 0))
        slot_index = np.where(has_span, (ob[:, k.OB_ADDR] - span_base) // np.maximum(slot_size, 1), 0)
        return Placements(
            allocated=state & 3 != k.NEVER,
            addr=ob[:, k.OB_ADDR].copy(),
            size=ob[:, k.OB_SIZE].copy(),
            size_class=size_class,
            pointers=has_span & (span_class & 1 == 0),
            slot_size=slot_size,
            slot_base=span_base + slot_index * slot_size,
            span_base=span_base,
            span_pages=np.where(large, large_pages, np.where(has_span, self.classes[span_class, 1], 0)),
            span_objects=np.where(large, 1, np.where(has_span, self.classes[span_class, 2], 0)),
        )

    def stats_result(self) -> AllocatorStats:
        s = self.stats
        heap_sys = int(s[k.ST_HEAP_PAGES]) * PAGE_SIZE
        heap_inuse = int(s[k.ST_INUSE_PAGES]) * PAGE_SIZE
        return AllocatorStats(
            mallocs=int(s[k.ST_MALLOCS]),
            frees=int(s[k.ST_FREES]),
            heap_objects=int(s[k.ST_MALLOCS] - s[k.ST_FREES]),
            heap_alloc=int(s[k.ST_HEAP_ALLOC]),
            total_alloc=int(s[k.ST_TOTAL_ALLOC]),
            heap_sys=heap_sys,
            heap_inuse=heap_inuse,
            heap_idle=heap_sys - heap_inuse,
            heap_released=int(s[k.ST_HEAP_PAGES] - s[k.ST_TOUCHED_PAGES]) * PAGE_SIZE,
            num_gc=int(s[k.ST_NUM_GC]),
            heap_goal=int(s[k.ST_GOAL]),
            tiers={name: int(s[column]) for name, column in zip(TIERS, k.TIER_COLUMNS)},
            size_classes=self._size_classes(),
            by_size=self._by_size(),
        )

    def _by_size(self) -> tuple[dict[str, int], ...]:
        """Go's BySize: slot allocations and frees of the first 61 classes (large objects and
        classes 61-67 are not in it; tiny blocks count in class 2, their packed objects do not)."""
        per_class = self.class_stats.reshape(N_CLASSES, 2, k.CS_FIELDS).sum(axis=1)
        per_class[0] = 0  # entry 0 is Go's unused class 0, not the large objects memsim keeps there
        return tuple(
            {"size": CLASS_SIZES[c], "mallocs": int(per_class[c, k.CS_ALLOCS]), "frees": int(per_class[c, k.CS_FREES])}
            for c in range(BY_SIZE_CLASSES)
        )

    def _size_classes(self) -> tuple[SizeClassStats, ...]:
        rows = []
        per_class = self.class_stats.reshape(N_CLASSES, 2, k.CS_FIELDS)  # [class, scan/noscan, column]
        for c in range(N_CLASSES):
            both = per_class[c].sum(axis=0)
            if both[k.CS_ALLOCS] == 0:
                continue
            live_bytes = int(both[k.CS_LIVE_BYTES])
            tail = sum(  # per span: the bytes after the last slot, tail reserve included (large: none)
                int(per_class[c, noscan, k.CS_SPANS])
                * int(self.classes[2 * c + noscan, 1] * PAGE_SIZE - self.classes[2 * c + noscan, 2] * CLASS_SIZES[c])
                for noscan in (0, 1)
            )
            rows.append(SizeClassStats(
                size_class=c, slot_size=CLASS_SIZES[c], allocs=int(both[k.CS_ALLOCS]), frees=int(both[k.CS_FREES]),
                live_objects=int(both[k.CS_LIVE]), live_bytes=live_bytes,
                internal_waste=live_bytes - int(both[k.CS_USED]), tail_waste=tail,
            ))
        return tuple(rows)


def _grown(array: np.ndarray, rows: int, fill) -> np.ndarray:
    out = np.full((rows,) + array.shape[1:], fill, array.dtype)
    out[: len(array)] = array
    return out
