"""Slow, obviously-correct pure-Python reference model of memsim's Go allocator rules.

This module implements ``docs/allocator.md`` literally and independently of the jitted model
(``memsim/models/goalloc/``, which it neither reads nor imports); the differential tests compare
every address and counter of the two. It is written for clarity, not speed: one ``Span`` object
per span with a list of slots, one ``Proc`` per P with its mcache, tiny block and page cache, one
pair of FIFO queues per span class for the mcentral, and a page map that says for every page of
the heap whether it is free, held by a page cache or part of a span. The size-class table is a
private copy of the facts sheet's table (§2.4), so that the model's table is checked against it.

API (shared with the jitted model)::

    simulate(version, procs, ops, gogc=None) -> AllocResult

``ops`` are ``("alloc", obj, size, pointers, p)``, ``("free", obj)`` and ``("gc",)``.
``simulate_with_state`` also returns the ``Heap`` (spans, page map, collection points) for tests.

Readings of points the rulebook leaves open (each chosen to be closest to the real runtime per the
facts sheet; they should be made explicit in the rulebook):

1. GOGC trigger: after every allocation of a non-zero size (a tiny allocation that fits in the
   current block included, although it cannot change the heap), a collection runs if
   ``heap_alloc >= heap_goal``. Zero-size allocations count nothing, so they trigger nothing.
   ``gogc`` must be ``None`` (off) or ``>= 0``; a negative value is a ``ValueError`` rather
   than Go's "negative means off".
2. ``heap_goal`` is reported from the current ``live`` (0 before the first collection), so with
   ``gogc`` set and no collection yet it is ``4 MiB * gogc // 100``.
3. Large spans are queued on their mcentral's (span class 0 or 1) full list, as the runtime does
   (§7); only their sweep (step 3) ever looks at them, and the order in which they are swept does
   not change anything observable.
4. ``heap_released`` counts pages of the heap that have never been part of a span (whether free or
   held by a page cache). Pages returned by a sweep stay "used": idle, but not released.
5. ``internal_waste`` of a tiny block is ``16 -`` the sum of the sizes of every object placed in
   it (dead-but-unswept objects included, as for every other slot: a slot is "allocated" until
   swept). ``tail_waste`` uses one formula for every class: ``pages * 8192 - nelems * slot_size``
   summed over the class's spans in use (scan and noscan together), so it is 0 for class 0.
6. Freeing a zero-size object is allowed (it was allocated) and does nothing; freeing it twice is
   an error like any double free. An object id may never be allocated twice, even after a free.
7. ``version`` is ``"1.N"`` or ``"1.N.P"`` with ``N >= 15``; ``N > 27`` is greentea.
8. The page cache's window is aligned to 64 pages in absolute page numbers; the heap base
   ``0xc000000000`` is itself 64-page (and 4 MiB) aligned, so this is the same as aligning
   relative to the heap start.
9. Misuse is checked on every op, zero-size allocations included (a P out of range, a negative
   size or id, a malformed op are ``ValueError``). Ids need not arrive in increasing order; only
   reuse is refused. ``pointers`` is taken as ``bool(pointers)``.

The collection follows the rulebook's steps literally: mcaches are flushed P by P (each cached
span swept, then queued), then every span class in increasing order sweeps its old full list and
then its old partial list. This matches the runtime's synchronous order (``gcSweep`` in
``gcForceBlockMode``: ``prepareForSweep`` for every P, then ``sweepone`` until done, whose
``nextSpanForSweep`` visits each span class's full-unswept set before its partial-unswept set).
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

PAGE_SIZE = 8192
HEAP_BASE = 0xC000000000
ZERO_BASE = 0x5A4E00  # stands in for runtime.zerobase
CHUNK_PAGES = 512  # the heap grows by 4 MiB chunks
PAGE_CACHE_PAGES = 64  # a page cache window
PAGE_CACHE_SPAN_LIMIT = 16  # spans of fewer pages come from the page cache
TINY_BLOCK = 16
TINY_SIZE_CLASS = 2
TINY_SPAN_CLASS = TINY_SIZE_CLASS * 2 + 1  # class 2, noscan
MALLOC_HEADER = 8
HEADER_THRESHOLD = 512  # scan objects strictly larger than this get a header (headers, greentea)
TAIL_RESERVE = 128
MIN_HEAP = 4 << 20
NUM_SPAN_CLASSES = 136

assert HEAP_BASE % (CHUNK_PAGES * PAGE_SIZE) == 0

# (bytes per object, pages per span) of every size class, from the facts sheet §2.4.
# Index = class; class 0 stands for "large" and has no size of its own.
SIZE_CLASSES: tuple[tuple[int, int], ...] = (
    (0, 0),
    (8, 1), (16, 1), (24, 1), (32, 1), (48, 1), (64, 1), (80, 1), (96, 1),
    (112, 1), (128, 1), (144, 1), (160, 1), (176, 1), (192, 1), (208, 1), (224, 1),
    (240, 1), (256, 1), (288, 1), (320, 1), (352, 1), (384, 1), (416, 1), (448, 1),
    (480, 1), (512, 1), (576, 1), (640, 1), (704, 1), (768, 1), (896, 1), (1024, 1),
    (1152, 1), (1280, 1), (1408, 2), (1536, 1), (1792, 2), (2048, 1), (2304, 2), (2688, 1),
    (3072, 3), (3200, 2), (3456, 3), (4096, 1), (4864, 3), (5376, 2), (6144, 3), (6528, 4),
    (6784, 5), (6912, 6), (8192, 1), (9472, 7), (9728, 6), (10240, 5), (10880, 4), (12288, 3),
    (13568, 5), (14336, 7), (16384, 2), (18432, 9), (19072, 7), (20480, 5), (21760, 8),
    (24576, 3), (27264, 10), (28672, 7), (32768, 4),
)
assert len(SIZE_CLASSES) == 68

CLASSIC, HEADERS, GREENTEA = "classic", "headers", "greentea"
TIERS = ("tiny", "mcache", "mcentral", "mheap", "os")


def class_size(c: int) -> int:
    return SIZE_CLASSES[c][0]


def class_pages(c: int) -> int:
    return SIZE_CLASSES[c][1]


def generation(version: str) -> str:
    """The generation of a Go version string "1.N" or "1.N.P"."""
    if not isinstance(version, str):
        raise ValueError(f"version must be a string like '1.22', not {version!r}")
    m = re.fullmatch(r"1\.(\d+)(?:\.\d+)?", version.strip())
    if m is None:
        raise ValueError(f"bad Go version {version!r}: expected '1.N' or '1.N.P'")
    minor = int(m.group(1))
    if minor < 15:
        raise ValueError(f"Go version {version!r} is not modelled (1.15 and later only)")
    if minor <= 21:
        return CLASSIC
    if minor <= 25:
        return HEADERS
    return GREENTEA


def small_limit(gen: str) -> int:
    return 32768 if gen == CLASSIC else 32760


def has_header(gen: str, size: int, scan: bool) -> bool:
    """Whether a small object gets an 8-byte malloc header."""
    return gen != CLASSIC and scan and size > HEADER_THRESHOLD


def size_class_for(n: int) -> int:
    """The smallest class whose size is at least n (n <= 32768)."""
    for c in range(1, len(SIZE_CLASSES)):
        if class_size(c) >= n:
            return c
    raise ValueError(f"no size class holds {n} bytes")


def tail_reserve(gen: str, c: int, scan: bool) -> int:
    """Bytes reserved at the end of a span of class c (§2.3)."""
    size = class_size(c)
    reserve = 0
    if gen != CLASSIC and scan and size <= 512:
        reserve += TAIL_RESERVE  # pointer bitmap in the span
    if gen == GREENTEA and 16 <= size <= 512:
        reserve += TAIL_RESERVE  # inline mark bits
    return reserve


def objects_per_span(gen: str, c: int, scan: bool) -> int:
    return (class_pages(c) * PAGE_SIZE - tail_reserve(gen, c, scan)) // class_size(c)


def page_addr(page: int) -> int:
    return HEAP_BASE + page * PAGE_SIZE


# --- the heap's pieces --------------------------------------------------------------------------


@dataclass(eq=False)
class Obj:
    id: int
    size: int
    scan: bool
    p: int
    addr: int = 0
    dead: bool = False
    slot: "Slot | None" = None  # None for size 0


@dataclass(eq=False)
class Slot:
    span: "Span"
    index: int
    objects: list[Obj] = field(default_factory=list)

    @property
    def base(self) -> int:
        return self.span.base + self.index * self.span.elem_size

    def all_dead(self) -> bool:
        return all(o.dead for o in self.objects)


class Span:
    """A run of pages holding nelems slots of elem_size bytes (one slot for a large object)."""

    def __init__(self, first_page: int, npages: int, span_class: int, size_class: int, elem_size: int, nelems: int):
        assert nelems >= 1 and nelems * elem_size <= npages * PAGE_SIZE
        self.first_page = first_page
        self.npages = npages
        self.span_class = span_class
        self.size_class = size_class  # 0 = large
        self.elem_size = elem_size
        self.nelems = nelems
        self.slots: list[Slot | None] = [None] * nelems  # None = free

    @property
    def base(self) -> int:
        return page_addr(self.first_page)

    @property
    def end(self) -> int:
        return self.base + self.npages * PAGE_SIZE

    @property
    def large(self) -> bool:
        return self.size_class == 0

    def lowest_free(self) -> int | None:
        for i, slot in enumerate(self.slots):
            if slot is None:
                return i
        return None

    def allocated(self) -> int:
        return sum(slot is not None for slot in self.slots)

    def full(self) -> bool:
        return self.allocated() == self.nelems

    def __repr__(self) -> str:
        return f"<Span sc={self.span_class} pages={self.first_page}+{self.npages} {self.allocated()}/{self.nelems}>"


class PageCache:
    """A P's page cache: a 64-page-aligned window and the set of its pages the P owns."""

    def __init__(self):
        self.window: int | None = None  # first page of the window
        self.pages: set[int] = set()

    def lowest_run(self, n: int) -> int | None:
        for start in sorted(self.pages):
            if all(start + k in self.pages for k in range(n)):
                return start
        return None


FREE, CACHED, IN_SPAN = "free", "cached", "span"


class PageHeap:
    """The page map: for every page of the heap, free, held by a page cache, or in a span."""

    def __init__(self):
        self.state: list[str] = []
        self.used: list[bool] = []  # has the page ever been part of a span

    @property
    def npages(self) -> int:
        return len(self.state)

    def grow(self, chunks: int) -> None:
        self.state += [FREE] * (chunks * CHUNK_PAGES)
        self.used += [False] * (chunks * CHUNK_PAGES)

    def lowest_free_page(self) -> int | None:
        for i, s in enumerate(self.state):
            if s == FREE:
                return i
        return None

    def first_fit(self, n: int) -> int | None:
        run = 0
        for i, s in enumerate(self.state):
            run = run + 1 if s == FREE else 0
            if run == n:
                return i - n + 1
        return None

    def refill(self, cache: PageCache) -> None:
        assert not cache.pages
        low = self.lowest_free_page()
        if low is None:
            return
        cache.window = low - low % PAGE_CACHE_PAGES
        for i in range(cache.window, min(cache.window + PAGE_CACHE_PAGES, self.npages)):
            if self.state[i] == FREE:
                self.state[i] = CACHED
                cache.pages.add(i)

    def take(self, first: int, n: int) -> None:
        for i in range(first, first + n):
            self.state[i] = IN_SPAN
            self.used[i] = True

    def alloc(self, cache: PageCache, n: int) -> tuple[int, bool]:
        """Place a span of n pages: (first page, whether the heap grew)."""
        if n < PAGE_CACHE_SPAN_LIMIT:
            if not cache.pages:
                self.refill(cache)
            start = cache.lowest_run(n)
            if start is not None:
                for i in range(start, start + n):
                    assert self.state[i] == CACHED
                    cache.pages.remove(i)
                self.take(start, n)
                return start, False
        start = self.first_fit(n)
        grew = False
        if start is None:
            self.grow(-(-n // CHUNK_PAGES))
            grew = True
            start = self.first_fit(n)
            assert start is not None
        self.take(start, n)
        return start, grew

    def release(self, first: int, n: int) -> None:
        for i in range(first, first + n):
            assert self.state[i] == IN_SPAN
            self.state[i] = FREE


class MCentral:
    """The two FIFO queues of one span class."""

    def __init__(self):
        self.partial: deque[Span] = deque()
        self.full: deque[Span] = deque()


class Proc:
    """One P: its mcache (one span per span class), tiny block and page cache."""

    def __init__(self, number: int):
        self.number = number
        self.mcache: dict[int, Span] = {}
        self.tiny: Slot | None = None
        self.tiny_offset = 0
        self.page_cache = PageCache()


@dataclass
class AllocResult:
    objects: dict[int, dict]
    stats: dict


class Heap:
    """The whole allocator state for one run."""

    def __init__(self, version: str, procs: int, gogc: int | None = None):
        self.gen = generation(version)
        if not isinstance(procs, int) or isinstance(procs, bool) or procs < 1:
            raise ValueError(f"procs must be a positive integer, not {procs!r}")
        if gogc is not None and (not isinstance(gogc, int) or isinstance(gogc, bool) or gogc < 0):
            raise ValueError(f"gogc must be None (off) or a non-negative integer, not {gogc!r}")
        self.version = version
        self.gogc = gogc
        self.procs = [Proc(i) for i in range(procs)]
        self.pages = PageHeap()
        self.central = [MCentral() for _ in range(NUM_SPAN_CLASSES)]
        self.spans: set[Span] = set()  # spans in use
        self.objects: dict[int, Obj] = {}
        self.live = 0  # heap_alloc after the last collection's sweep
        self.gc_points: list[int] = []  # op index after which each collection ran
        self.op_index = -1

        self.mallocs = 0
        self.frees = 0
        self.heap_alloc = 0
        self.total_alloc = 0
        self.num_gc = 0
        self.tiers = dict.fromkeys(TIERS, 0)
        self.class_allocs: dict[int, int] = {}
        self.class_frees: dict[int, int] = {}

    # --- running --------------------------------------------------------------------------

    def run(self, ops) -> "Heap":
        for i, op in enumerate(ops):
            self.op_index = i
            self.step(op)
        return self

    def step(self, op) -> None:
        if not isinstance(op, (tuple, list)) or not op:
            raise ValueError(f"bad op {op!r}")
        kind = op[0]
        if kind == "alloc":
            if len(op) != 5:
                raise ValueError(f"alloc op needs (\"alloc\", obj, size, pointers, p): {op!r}")
            _, obj, size, pointers, p = op
            self.alloc(obj, size, bool(pointers), p)
        elif kind == "free":
            if len(op) != 2:
                raise ValueError(f"free op needs (\"free\", obj): {op!r}")
            self.free(op[1])
        elif kind == "gc":
            if len(op) != 1:
                raise ValueError(f"gc op takes no arguments: {op!r}")
            self.collect()
        else:
            raise ValueError(f"unknown op {kind!r} in {op!r}")

    # --- allocation -----------------------------------------------------------------------

    def alloc(self, obj_id: int, size: int, scan: bool, p: int) -> None:
        if not isinstance(obj_id, int) or isinstance(obj_id, bool) or obj_id < 0:
            raise ValueError(f"object id must be a non-negative integer, not {obj_id!r}")
        if obj_id in self.objects:
            raise ValueError(f"object {obj_id} is allocated twice")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"object {obj_id}: size must be a non-negative integer, not {size!r}")
        if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p < len(self.procs):
            raise ValueError(f"object {obj_id}: P {p!r} out of range(0, {len(self.procs)})")
        obj = Obj(obj_id, size, scan, p)
        self.objects[obj_id] = obj
        proc = self.procs[p]

        if size == 0:  # rule 1: zerobase, counts nothing
            obj.addr = ZERO_BASE
            return

        self.mallocs += 1
        if not scan and size < TINY_BLOCK:  # rule 2
            tier = self.alloc_tiny(proc, obj)
        elif size <= small_limit(self.gen):  # rule 3
            header = has_header(self.gen, size, scan)
            c = size_class_for(size + MALLOC_HEADER if header else size)
            slot, tier = self.alloc_slot(proc, c * 2 + (0 if scan else 1))
            slot.objects.append(obj)
            obj.slot = slot
            obj.addr = slot.base + (MALLOC_HEADER if header else 0)
        else:  # rule 4
            tier = self.alloc_large(proc, obj)
        self.tiers[tier] += 1

        if self.gogc is not None and self.heap_alloc >= self.heap_goal():
            self.collect()

    def alloc_tiny(self, proc: Proc, obj: Obj) -> str:
        size = obj.size
        off = proc.tiny_offset
        if size % 8 == 0:
            off = -(-off // 8) * 8
        elif size % 4 == 0:
            off = -(-off // 4) * 4
        elif size % 2 == 0:
            off = -(-off // 2) * 2
        if proc.tiny is not None and off + size <= TINY_BLOCK:
            slot = proc.tiny
            obj.addr = slot.base + off
            proc.tiny_offset = off + size
            self.frees += 1  # counted as a malloc and a free at once (§4)
            tier = "tiny"
        else:
            slot, tier = self.alloc_slot(proc, TINY_SPAN_CLASS)
            obj.addr = slot.base
            if proc.tiny is None or size < proc.tiny_offset:
                proc.tiny = slot
                proc.tiny_offset = size
        slot.objects.append(obj)
        obj.slot = slot
        return tier

    def alloc_slot(self, proc: Proc, span_class: int) -> tuple[Slot, str]:
        """Take the lowest free slot of the P's span of this span class, refilling if needed."""
        span = proc.mcache.get(span_class)
        if span is not None and not span.full():
            tier = "mcache"
        else:
            central = self.central[span_class]
            if span is not None:
                central.full.append(span)
            if central.partial:
                span = central.partial.popleft()
                tier = "mcentral"
            else:
                span, grew = self.new_small_span(proc, span_class)
                tier = "os" if grew else "mheap"
            proc.mcache[span_class] = span
        index = span.lowest_free()
        assert index is not None
        slot = Slot(span, index)
        span.slots[index] = slot
        self.count_slot_alloc(span)
        return slot, tier

    def new_small_span(self, proc: Proc, span_class: int) -> tuple[Span, bool]:
        c, scan = span_class // 2, span_class % 2 == 0
        npages = class_pages(c)
        first, grew = self.pages.alloc(proc.page_cache, npages)
        span = Span(first, npages, span_class, c, class_size(c), objects_per_span(self.gen, c, scan))
        self.spans.add(span)
        return span, grew

    def alloc_large(self, proc: Proc, obj: Obj) -> str:
        npages = -(-obj.size // PAGE_SIZE)
        first, grew = self.pages.alloc(proc.page_cache, npages)
        span_class = 0 * 2 + (0 if obj.scan else 1)
        span = Span(first, npages, span_class, 0, npages * PAGE_SIZE, 1)
        self.spans.add(span)
        self.central[span_class].full.append(span)
        slot = Slot(span, 0, [obj])
        span.slots[0] = slot
        obj.slot = slot
        obj.addr = span.base
        self.count_slot_alloc(span)
        return "os" if grew else "mheap"

    def count_slot_alloc(self, span: Span) -> None:
        self.heap_alloc += span.elem_size
        self.total_alloc += span.elem_size
        self.class_allocs[span.size_class] = self.class_allocs.get(span.size_class, 0) + 1

    # --- frees and collections ------------------------------------------------------------

    def free(self, obj_id: int) -> None:
        obj = self.objects.get(obj_id) if isinstance(obj_id, int) else None
        if obj is None:
            raise ValueError(f"free of object {obj_id!r}, which was never allocated")
        if obj.dead:
            raise ValueError(f"object {obj_id} is freed twice")
        obj.dead = True

    def heap_goal(self) -> int:
        assert self.gogc is not None
        return max(self.live + self.live * self.gogc // 100, MIN_HEAP * self.gogc // 100)

    def collect(self) -> None:
        # 1. count
        self.num_gc += 1
        self.gc_points.append(self.op_index)
        old = [(list(c.full), list(c.partial)) for c in self.central]
        for c in self.central:
            c.full.clear()
            c.partial.clear()
        # 2. flush every mcache, P by P, span class by span class
        for proc in self.procs:
            for span_class in sorted(proc.mcache):
                self.sweep_and_queue(proc.mcache[span_class])
            proc.mcache.clear()
            proc.tiny = None
            proc.tiny_offset = 0
        # 3. sweep every span class: the old full list, then the old partial list
        for span_class in range(NUM_SPAN_CLASSES):
            full, partial = old[span_class]
            for span in full + partial:
                self.sweep_and_queue(span)
        self.live = self.heap_alloc

    def sweep_and_queue(self, span: Span) -> None:
        for i, slot in enumerate(span.slots):
            if slot is not None and slot.all_dead():
                span.slots[i] = None
                self.frees += 1
                self.heap_alloc -= span.elem_size
                self.class_frees[span.size_class] = self.class_frees.get(span.size_class, 0) + 1
        if span.allocated() == 0:
            self.pages.release(span.first_page, span.npages)
            self.spans.remove(span)
        elif span.full():
            self.central[span.span_class].full.append(span)
        else:
            self.central[span.span_class].partial.append(span)

    # --- results --------------------------------------------------------------------------

    def check_consistency(self) -> None:
        """Every span in use is in exactly one place; the page map agrees with the spans."""
        places = [s for proc in self.procs for s in proc.mcache.values()]
        for c in self.central:
            places += list(c.full) + list(c.partial)
        assert len(places) == len(set(places)) and set(places) == self.spans, "span bookkeeping"
        in_span = [False] * self.pages.npages
        for span in self.spans:
            for i in range(span.first_page, span.first_page + span.npages):
                assert not in_span[i], "two spans share a page"
                in_span[i] = True
            assert span.allocated() > 0, "an empty span is kept"
        cached = [False] * self.pages.npages
        for proc in self.procs:
            for i in proc.page_cache.pages:
                assert not cached[i]
                cached[i] = True
        for i, state in enumerate(self.pages.state):
            assert (state == IN_SPAN) == in_span[i] and (state == CACHED) == cached[i]
        assert self.heap_alloc == sum(s.allocated() * s.elem_size for s in self.spans)

    def object_info(self, obj: Obj) -> dict:
        if obj.slot is None:
            return {
                "addr": obj.addr,
                "size_class": 0,
                "slot_size": 0,
                "slot_base": 0,
                "span_base": 0,
                "span_pages": 0,
                "span_objects": 0,
            }
        span = obj.slot.span
        return {
            "addr": obj.addr,
            "size_class": span.size_class,
            "slot_size": span.elem_size,
            "slot_base": obj.slot.base,
            "span_base": span.base,
            "span_pages": span.npages,
            "span_objects": span.nelems,
        }

    def stats(self) -> dict:
        self.check_consistency()
        heap_sys = self.pages.npages * PAGE_SIZE
        heap_inuse = sum(s.npages for s in self.spans) * PAGE_SIZE
        released = sum(1 for used in self.pages.used if not used) * PAGE_SIZE
        size_classes = {}
        for c in sorted(self.class_allocs):
            live_objects = live_bytes = internal = tail = 0
            for span in self.spans:
                if span.size_class != c:
                    continue
                tail += span.npages * PAGE_SIZE - span.nelems * span.elem_size
                for slot in span.slots:
                    if slot is not None:
                        live_objects += 1
                        live_bytes += span.elem_size
                        internal += span.elem_size - sum(o.size for o in slot.objects)
            size_classes[c] = {
                "allocs": self.class_allocs[c],
                "frees": self.class_frees.get(c, 0),
                "live_objects": live_objects,
                "live_bytes": live_bytes,
                "internal_waste": internal,
                "tail_waste": tail,
            }
            assert live_objects == size_classes[c]["allocs"] - size_classes[c]["frees"]
        return {
            "mallocs": self.mallocs,
            "frees": self.frees,
            "heap_objects": self.mallocs - self.frees,
            "heap_alloc": self.heap_alloc,
            "total_alloc": self.total_alloc,
            "heap_inuse": heap_inuse,
            "heap_sys": heap_sys,
            "heap_idle": heap_sys - heap_inuse,
            "heap_released": released,
            "num_gc": self.num_gc,
            "heap_goal": 0 if self.gogc is None else self.heap_goal(),
            "tiers": dict(self.tiers),
            "size_classes": size_classes,
        }

    def result(self) -> AllocResult:
        objects = {i: self.object_info(self.objects[i]) for i in sorted(self.objects)}
        return AllocResult(objects=objects, stats=self.stats())


def simulate_with_state(version: str, procs: int, ops, gogc: int | None = None) -> tuple[AllocResult, Heap]:
    heap = Heap(version, procs, gogc).run(ops)
    return heap.result(), heap


def simulate(version: str, procs: int, ops, gogc: int | None = None) -> AllocResult:
    return simulate_with_state(version, procs, ops, gogc)[0]


__all__ = [
    "AllocResult",
    "Heap",
    "SIZE_CLASSES",
    "HEAP_BASE",
    "ZERO_BASE",
    "PAGE_SIZE",
    "generation",
    "objects_per_span",
    "size_class_for",
    "tail_reserve",
    "simulate",
    "simulate_with_state",
]
