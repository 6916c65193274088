"""The jitted Go allocator: replays alloc/free/gc events and resolves object-relative accesses.

It implements docs/allocator.md over flat arrays. ``place_chunk`` walks a chunk of the event
table once: allocations, frees and collections update the allocator state, and every access gets
its absolute address in ``out_addr`` (raw addresses are copied), which the cache kernel then
replays. All state lives in the arrays below, owned by ``memsim.models.goalloc.model``:

- ``spans`` int64 [capacity, SP_*]: one row per span id. Ids are recycled, and each id keeps its
  range of slot words (``SP_REGION``, ``2**SP_BUCKET`` words), so a recycled id needs no new slots.
- ``slot_count`` int16 per slot word: ``FREE_SLOT``, or how many live objects the allocated slot
  holds (several for a tiny block; 0 once they are all freed, until a sweep frees the slot);
  ``slot_used`` int32: the bytes the objects in the slot asked for.
- ``pages`` int32 per heap page: the span id using it, ``FREE_PAGE`` or ``CACHED_PAGE`` (owned by
  a P's page cache); ``touched`` uint8: some span has used the page; ``summary`` int64
  [chunks, SU_*]: free pages at the start, longest free run and free pages at the end of each
  4 MiB chunk, kept up to date with ``pages`` for the first-fit search.
- ``lists`` int64 [N_SPAN_CLASSES, 4]: head and tail of each mcentral's partial and full queues
  (linked through ``SP_NEXT``); ``free_ids`` int64 [BUCKETS]: recycled span ids per slot bucket.
- ``mcache`` int64 [procs, N_SPAN_CLASSES]: each P's span per span class (-1: none);
  ``procs`` int64 [procs, PR_*]: tiny block and page cache of each P.
- ``objects`` int64 [n_objects, OB_*]; ``stats`` int64 [ST_*]; ``class_stats`` int64
  [N_SPAN_CLASSES, CS_*].

``place_chunk`` stops early, returning ``(NEED_ROOM, e)``, when an array might overflow at event
``e``; the caller grows the arrays and calls again from ``e``. An event that breaks a rule of the
trace returns ``(ERR_*, e)``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from memsim.models.goalloc.sizeclasses import (
    HEADER_SIZE,
    HEADERS,
    MAX_HEADERLESS_SCAN,
    N_SPAN_CLASSES,
    PAGE_SHIFT,
    PAGE_SIZE,
    TINY_CLASS,
    TINY_SIZE,
)
from memsim.numba_cache import share_scopes_when_inlining
from memsim.trace.events import FLAG_POINTERS, OP_ALLOC, OP_FREE, OP_GC, OP_IFETCH

HEAP_BASE = 0xC000000000
ZERO_BASE = 0x5A4E00  # stands in for runtime.zerobase: every size-0 object lives here
CHUNK_PAGES = 512  # the heap grows by 4 MiB
CACHE_PAGES = 64  # a P's page cache window
CACHE_MAX_SPAN = 16  # spans of fewer pages come from the page cache
MIN_HEAP = 4 << 20  # the pacer's minimum heap at GOGC=100
TINY_SPAN_CLASS = 2 * TINY_CLASS + 1  # tiny blocks are 16-byte noscan slots
BUCKETS = 11  # slot regions of 2**0 .. 2**10 words
MAX_SPAN_OBJECTS = 1 << (BUCKETS - 1)  # the runtime's limit too

FREE_SLOT = -1
FREE_PAGE = -1
CACHED_PAGE = -2

# spans columns
SP_START, SP_PAGES, SP_CLASS, SP_NELEMS, SP_SIZE, SP_FREEINDEX, SP_ALLOCATED, SP_DEAD, SP_REGION, SP_BUCKET, \
    SP_NEXT = range(11)
SP_FIELDS = 11  # SP_DEAD: allocated slots whose objects are all freed (the next sweep frees them)
# lists columns
L_PARTIAL_HEAD, L_PARTIAL_TAIL, L_FULL_HEAD, L_FULL_TAIL = range(4)
# summary columns, per chunk of pages
SU_START, SU_LONGEST, SU_END = range(3)
STALE = -1  # in SU_LONGEST: pages of the chunk were freed since it was summarized
# procs columns
PR_TINY_ADDR, PR_TINY_OFFSET, PR_TINY_SLOT, PR_TINY_SPAN_PAGE, PR_CACHE_BASE, PR_CACHE_BITS = range(6)
PR_FIELDS = 6
# objects columns; OB_STATE holds the object's state and span class: state | span_class << 2
OB_ADDR, OB_SIZE, OB_SLOT, OB_SPAN_PAGE, OB_STATE = range(5)
OB_FIELDS = 5
NEVER, LIVE, FREED = 0, 1, 2
# stats
(ST_MALLOCS, ST_FREES, ST_HEAP_ALLOC, ST_TOTAL_ALLOC, ST_INUSE_PAGES, ST_HEAP_PAGES, ST_TOUCHED_PAGES,
 ST_NUM_GC, ST_GOAL, ST_TIER_TINY, ST_TIER_MCACHE, ST_TIER_MCENTRAL, ST_TIER_MHEAP, ST_TIER_OS,
 ST_SPAN_IDS, ST_SLOT_WORDS, ST_GOGC, ST_GENERATION, ST_SMALL_LIMIT) = range(19)
ST_FIELDS = 19
TIER_COLUMNS = (ST_TIER_TINY, ST_TIER_MCACHE, ST_TIER_MCENTRAL, ST_TIER_MHEAP, ST_TIER_OS)
# class_stats columns, per span class
CS_ALLOCS, CS_FREES, CS_LIVE, CS_LIVE_BYTES, CS_USED, CS_SPANS = range(6)
CS_FIELDS = 6

# place_chunk results
(DONE, NEED_ROOM, ERR_DUPLICATE, ERR_NOT_ALLOCATED, ERR_FREED, ERR_OUT_OF_BOUNDS, ERR_FREE_UNALLOCATED,
 ERR_DOUBLE_FREE) = range(8)

# No reference counting of the arrays handed between helpers, and the helpers on every
# allocation's path inlined: both cost more than the allocation itself otherwise.
jit = njit(cache=True, _nrt=False, error_model="numpy")
jit_inline = njit(cache=True, _nrt=False, error_model="numpy", inline="always")
share_scopes_when_inlining()  # before anything here compiles


@jit
def place_chunk(op, core, size, obj, addr, flags, start, out_addr, classes, size_to_class, spans, free_ids,
                slot_count, slot_used, pages, summary, touched, lists, mcache, procs, objects, stats, class_stats,
                old_tails):
    """Replay events ``start ..`` of one chunk; see the module docstring for the arrays."""
    n = op.shape[0]
    for e in range(start, n):
        o = op[e]
        if o <= OP_IFETCH:
            if obj[e] < 0:
                out_addr[e] = addr[e]
                continue
            k = obj[e]
            state = objects[k, OB_STATE] & 3
            if state != LIVE:
                return (ERR_NOT_ALLOCATED if state == NEVER else ERR_FREED), e
            if addr[e] < 0 or addr[e] + size[e] > objects[k, OB_SIZE]:
                return ERR_OUT_OF_BOUNDS, e
            out_addr[e] = objects[k, OB_ADDR] + addr[e]
        elif o == OP_ALLOC:
            k = obj[e]
            if objects[k, OB_STATE] & 3 != NEVER:
                return ERR_DUPLICATE, e
            if not _room_for(size[e], spans, slot_count, pages, stats):
                return NEED_ROOM, e
            _allocate(core[e], size[e], flags[e] & FLAG_POINTERS == 0, k, classes, size_to_class, spans, free_ids,
                      slot_count, slot_used, pages, summary, touched, lists, mcache, procs, objects, stats, class_stats)
            if stats[ST_GOGC] >= 0 and size[e] > 0 and stats[ST_HEAP_ALLOC] >= stats[ST_GOAL]:
                _collect(spans, free_ids, slot_count, slot_used, pages, summary, lists, mcache, procs, stats, class_stats,
                         old_tails)
        elif o == OP_FREE:
            k = obj[e]
            state = objects[k, OB_STATE] & 3
            if state != LIVE:
                return (ERR_FREE_UNALLOCATED if state == NEVER else ERR_DOUBLE_FREE), e
            objects[k, OB_STATE] += FREED - LIVE
            slot = objects[k, OB_SLOT]
            if slot >= 0:
                slot_count[slot] -= 1
                if slot_count[slot] == 0:
                    spans[pages[objects[k, OB_SPAN_PAGE]], SP_DEAD] += 1
        elif o == OP_GC:
            _collect(spans, free_ids, slot_count, slot_used, pages, summary, lists, mcache, procs, stats, class_stats,
                     old_tails)
    return DONE, n


@jit_inline
def _room_for(request, spans, slot_count, pages, stats):
    """Whether one allocation of ``request`` bytes surely fits in the arrays (at most one new span id,
    one new slot region, and a heap growth of the pages it needs rounded up to a chunk)."""
    return (stats[ST_SPAN_IDS] < spans.shape[0] and stats[ST_SLOT_WORDS] + MAX_SPAN_OBJECTS <= slot_count.shape[0]
            and stats[ST_HEAP_PAGES] + growth_pages(request) <= pages.shape[0])


@jit_inline
def growth_pages(request):
    """The most the heap can grow for one allocation of ``request`` bytes: its span (at least the
    largest size-class span, 10 pages) rounded up to whole chunks."""
    span_pages = max((request + PAGE_SIZE - 1) >> PAGE_SHIFT, 10)
    return (span_pages + CHUNK_PAGES - 1) // CHUNK_PAGES * CHUNK_PAGES


@jit_inline
def heap_goal(live, gogc):
    """GOGC's heap goal for ``live`` bytes after a sweep, at least the pacer's minimum heap."""
    return max(live + live * gogc // 100, MIN_HEAP * gogc // 100)


@jit_inline
def _allocate(p, request, noscan, k, classes, size_to_class, spans, free_ids, slot_count, slot_used, pages, summary,
              touched, lists, mcache, procs, objects, stats, class_stats):
    objects[k, OB_SIZE] = request
    if request == 0:
        objects[k, OB_ADDR] = ZERO_BASE
        objects[k, OB_SLOT] = -1
        objects[k, OB_SPAN_PAGE] = -1
        objects[k, OB_STATE] = LIVE
        return
    stats[ST_MALLOCS] += 1
    if noscan and request < TINY_SIZE:
        _allocate_tiny(p, request, k, classes, spans, free_ids, slot_count, slot_used, pages, summary, touched, lists,
                       mcache, procs, objects, stats, class_stats)
        return
    header = 0
    if request > stats[ST_SMALL_LIMIT]:
        span_class = 1 if noscan else 0
        npages = (request + PAGE_SIZE - 1) >> PAGE_SHIFT
        first, grew = _allocate_pages(p, npages, pages, summary, procs, stats)
        s = _new_span(first, npages, span_class, 1, npages * PAGE_SIZE, spans, free_ids, slot_count, pages,
                      touched, stats, class_stats)
        _push(lists, spans, span_class, L_FULL_HEAD, s)
        spans[s, SP_ALLOCATED] = 1
        slot = spans[s, SP_REGION]
        stats[ST_TIER_OS if grew else ST_TIER_MHEAP] += 1
    else:
        if not noscan and stats[ST_GENERATION] >= HEADERS and request > MAX_HEADERLESS_SCAN:
            header = HEADER_SIZE
        span_class = 2 * _class_of(request + header, size_to_class) + noscan
        s, slot = _allocate_small(p, span_class, classes, spans, free_ids, slot_count, pages, summary, touched, lists,
                                  mcache, procs, stats, class_stats)
    _fill_slot(k, s, slot, request, header, spans, slot_count, slot_used, objects, stats, class_stats)


@jit_inline
def _allocate_tiny(p, request, k, classes, spans, free_ids, slot_count, slot_used, pages, summary, touched, lists, mcache,
                   procs, objects, stats, class_stats):
    offset = procs[p, PR_TINY_OFFSET]
    if request % 8 == 0:
        offset = (offset + 7) & ~7
    elif request % 4 == 0:
        offset = (offset + 3) & ~3
    elif request % 2 == 0:
        offset = (offset + 1) & ~1
    if procs[p, PR_TINY_ADDR] != 0 and offset + request <= TINY_SIZE:
        slot = procs[p, PR_TINY_SLOT]
        if slot_count[slot] == 0:  # every object in the block was freed; this one revives it
            spans[pages[procs[p, PR_TINY_SPAN_PAGE]], SP_DEAD] -= 1
        slot_count[slot] += 1
        slot_used[slot] += request
        class_stats[TINY_SPAN_CLASS, CS_USED] += request
        objects[k, OB_ADDR] = procs[p, PR_TINY_ADDR] + offset
        objects[k, OB_SLOT] = slot
        objects[k, OB_SPAN_PAGE] = procs[p, PR_TINY_SPAN_PAGE]
        objects[k, OB_STATE] = LIVE | TINY_SPAN_CLASS << 2
        procs[p, PR_TINY_OFFSET] = offset + request
        stats[ST_FREES] += 1  # Go counts a tiny allocation inside a block as freed at once
        stats[ST_TIER_TINY] += 1
        return
    s, slot = _allocate_small(p, TINY_SPAN_CLASS, classes, spans, free_ids, slot_count, pages, summary, touched, lists,
                              mcache, procs, stats, class_stats)
    _fill_slot(k, s, slot, request, 0, spans, slot_count, slot_used, objects, stats, class_stats)
    if procs[p, PR_TINY_ADDR] == 0 or request < procs[p, PR_TINY_OFFSET]:
        procs[p, PR_TINY_ADDR] = objects[k, OB_ADDR]
        procs[p, PR_TINY_OFFSET] = request
        procs[p, PR_TINY_SLOT] = slot
        procs[p, PR_TINY_SPAN_PAGE] = spans[s, SP_START]


@jit_inline
def _class_of(request, size_to_class):
    if request <= 1024:
        return size_to_class[(request + 7) >> 3]
    return size_to_class[128 + ((request - 1024 + 127) >> 7)]


@jit_inline
def _fill_slot(k, s, slot, request, header, spans, slot_count, slot_used, objects, stats, class_stats):
    """Put object ``k`` into the (just allocated, empty) slot word ``slot`` of span ``s``."""
    span_class = spans[s, SP_CLASS]
    index = slot - spans[s, SP_REGION]
    slot_count[slot] = 1
    slot_used[slot] = request
    objects[k, OB_ADDR] = _page_address(spans[s, SP_START]) + index * spans[s, SP_SIZE] + header
    objects[k, OB_SLOT] = slot
    objects[k, OB_SPAN_PAGE] = spans[s, SP_START]
    objects[k, OB_STATE] = LIVE | span_class << 2
    stats[ST_HEAP_ALLOC] += spans[s, SP_SIZE]
    stats[ST_TOTAL_ALLOC] += spans[s, SP_SIZE]
    class_stats[span_class, CS_ALLOCS] += 1
    class_stats[span_class, CS_LIVE] += 1
    class_stats[span_class, CS_LIVE_BYTES] += spans[s, SP_SIZE]
    class_stats[span_class, CS_USED] += request


@jit_inline
def _page_address(page):
    return HEAP_BASE + (page << PAGE_SHIFT)


@jit_inline
def _allocate_small(p, span_class, classes, spans, free_ids, slot_count, pages, summary, touched, lists, mcache, procs, stats,
                    class_stats):
    """The lowest free slot of the P's span for ``span_class``, refilling it first if it is full.
    Returns (span id, slot word) and counts the tier."""
    s = mcache[p, span_class]
    if s >= 0 and spans[s, SP_ALLOCATED] < spans[s, SP_NELEMS]:
        stats[ST_TIER_MCACHE] += 1
    else:
        if s >= 0:
            _push(lists, spans, span_class, L_FULL_HEAD, s)
        s = _pop(lists, spans, span_class, L_PARTIAL_HEAD)
        if s >= 0:
            stats[ST_TIER_MCENTRAL] += 1
        else:
            npages = classes[span_class, 1]
            first, grew = _allocate_pages(p, npages, pages, summary, procs, stats)
            s = _new_span(first, npages, span_class, classes[span_class, 2], classes[span_class, 0], spans, free_ids,
                          slot_count, pages, touched, stats, class_stats)
            stats[ST_TIER_OS if grew else ST_TIER_MHEAP] += 1
        mcache[p, span_class] = s
    region = spans[s, SP_REGION]
    i = spans[s, SP_FREEINDEX]
    while slot_count[region + i] != FREE_SLOT:
        i += 1
    spans[s, SP_FREEINDEX] = i + 1
    spans[s, SP_ALLOCATED] += 1
    return s, region + i


@jit_inline
def _push(lists, spans, span_class, which, s):
    """Queue span ``s`` at the tail of a list (``which`` = the list's head column)."""
    spans[s, SP_NEXT] = -1
    tail = lists[span_class, which + 1]
    if tail >= 0:
        spans[tail, SP_NEXT] = s
    else:
        lists[span_class, which] = s
    lists[span_class, which + 1] = s


@jit_inline
def _pop(lists, spans, span_class, which):
    s = lists[span_class, which]
    if s >= 0:
        lists[span_class, which] = spans[s, SP_NEXT]
        if spans[s, SP_NEXT] < 0:
            lists[span_class, which + 1] = -1
    return s


@jit
def _new_span(first, npages, span_class, nelems, elem_size, spans, free_ids, slot_count, pages, touched, stats,
              class_stats):
    bucket = 0
    while (1 << bucket) < nelems:
        bucket += 1
    s = free_ids[bucket]
    if s >= 0:
        free_ids[bucket] = spans[s, SP_NEXT]
    else:
        s = stats[ST_SPAN_IDS]
        stats[ST_SPAN_IDS] += 1
        spans[s, SP_REGION] = stats[ST_SLOT_WORDS]
        spans[s, SP_BUCKET] = bucket
        stats[ST_SLOT_WORDS] += 1 << bucket
    spans[s, SP_START] = first
    spans[s, SP_PAGES] = npages
    spans[s, SP_CLASS] = span_class
    spans[s, SP_NELEMS] = nelems
    spans[s, SP_SIZE] = elem_size
    spans[s, SP_FREEINDEX] = 0
    spans[s, SP_ALLOCATED] = 0
    spans[s, SP_DEAD] = 0
    spans[s, SP_NEXT] = -1
    region = spans[s, SP_REGION]
    for i in range(nelems):
        slot_count[region + i] = FREE_SLOT
    for page in range(first, first + npages):
        pages[page] = s
        if not touched[page]:
            touched[page] = 1
            stats[ST_TOUCHED_PAGES] += 1
    stats[ST_INUSE_PAGES] += npages
    class_stats[span_class, CS_SPANS] += 1
    return s


@jit
def _free_span(s, spans, free_ids, pages, summary, stats, class_stats):
    """Give the span's pages back. Only sweeps free spans, so the chunks are marked for
    summarizing once at the end of the collection rather than summarized here."""
    first = spans[s, SP_START]
    last = first + spans[s, SP_PAGES] - 1
    for page in range(first, last + 1):
        pages[page] = FREE_PAGE
    for chunk in range(first // CHUNK_PAGES, last // CHUNK_PAGES + 1):
        summary[chunk, SU_LONGEST] = STALE
    stats[ST_INUSE_PAGES] -= spans[s, SP_PAGES]
    class_stats[spans[s, SP_CLASS], CS_SPANS] -= 1
    bucket = spans[s, SP_BUCKET]
    spans[s, SP_NEXT] = free_ids[bucket]
    free_ids[bucket] = s


@jit
def _allocate_pages(p, npages, pages, summary, procs, stats):
    """First page of ``npages`` pages for a new span, and whether the heap grew for them."""
    if npages < CACHE_MAX_SPAN:
        if procs[p, PR_CACHE_BITS] == 0:
            _refill_page_cache(p, pages, summary, procs, stats)
        bits = np.uint64(procs[p, PR_CACHE_BITS])
        if bits != 0:
            run = np.uint64((1 << npages) - 1)
            for i in range(CACHE_PAGES - npages + 1):
                if (bits >> np.uint64(i)) & run == run:
                    procs[p, PR_CACHE_BITS] = np.int64(bits & ~(run << np.uint64(i)))
                    return procs[p, PR_CACHE_BASE] + i, False
    grew = False
    first = _first_fit(npages, pages, summary, stats)
    if first < 0:
        _grow(npages, pages, summary, stats)
        grew = True
        first = _first_fit(npages, pages, summary, stats)
    _set_pages(first, npages, CACHED_PAGE, pages, summary)  # taken; _new_span writes the span id
    return first, grew


@jit
def _refill_page_cache(p, pages, summary, procs, stats):
    """Give the P every free page of the 64-page window around the lowest free page."""
    first = _first_fit(1, pages, summary, stats)
    if first < 0:
        return
    base = first - first % CACHE_PAGES
    bits = np.uint64(0)
    for i in range(CACHE_PAGES):
        if pages[base + i] == FREE_PAGE:
            pages[base + i] = CACHED_PAGE
            bits |= np.uint64(1) << np.uint64(i)
    _summarize(base // CHUNK_PAGES, pages, summary)
    procs[p, PR_CACHE_BASE] = base
    procs[p, PR_CACHE_BITS] = np.int64(bits)


@jit
def _first_fit(npages, pages, summary, stats):
    """The lowest first page of ``npages`` free pages, or -1. Chunk summaries let it skip chunks
    without such a run, and find runs that cross chunk boundaries."""
    run = 0  # free pages just below the current chunk
    for chunk in range(stats[ST_HEAP_PAGES] // CHUNK_PAGES):
        base = chunk * CHUNK_PAGES
        if run + summary[chunk, SU_START] >= npages:
            return base - run
        if summary[chunk, SU_LONGEST] >= npages:
            length = 0
            for page in range(base, base + CHUNK_PAGES):
                length = length + 1 if pages[page] == FREE_PAGE else 0
                if length == npages:
                    return page - npages + 1
        run = run + CHUNK_PAGES if summary[chunk, SU_START] == CHUNK_PAGES else summary[chunk, SU_END]
    return -1


@jit
def _set_pages(first, npages, value, pages, summary):
    for page in range(first, first + npages):
        pages[page] = value
    for chunk in range(first // CHUNK_PAGES, (first + npages - 1) // CHUNK_PAGES + 1):
        _summarize(chunk, pages, summary)


@jit
def _summarize(chunk, pages, summary):
    """Free pages at the start of the chunk, its longest free run, and free pages at its end."""
    base = chunk * CHUNK_PAGES
    start = -1
    longest = length = 0
    for page in range(base, base + CHUNK_PAGES):
        if pages[page] == FREE_PAGE:
            length += 1
            longest = max(longest, length)
        else:
            if start < 0:
                start = page - base
            length = 0
    summary[chunk, SU_START] = CHUNK_PAGES if start < 0 else start
    summary[chunk, SU_LONGEST] = longest
    summary[chunk, SU_END] = length


@jit
def _grow(npages, pages, summary, stats):
    add = (npages + CHUNK_PAGES - 1) // CHUNK_PAGES * CHUNK_PAGES
    start = stats[ST_HEAP_PAGES]
    stats[ST_HEAP_PAGES] = start + add
    _set_pages(start, add, FREE_PAGE, pages, summary)


@jit
def _collect(spans, free_ids, slot_count, slot_used, pages, summary, lists, mcache, procs, stats, class_stats, old_tails):
    """A whole collection: flush every mcache, then sweep every mcentral queue (docs/allocator.md)."""
    stats[ST_NUM_GC] += 1
    for span_class in range(N_SPAN_CLASSES):
        old_tails[span_class, 0] = lists[span_class, L_FULL_TAIL]
        old_tails[span_class, 1] = lists[span_class, L_PARTIAL_TAIL]
    for p in range(mcache.shape[0]):
        for span_class in range(N_SPAN_CLASSES):
            s = mcache[p, span_class]
            if s >= 0:
                mcache[p, span_class] = -1
                _sweep_and_queue(s, spans, free_ids, slot_count, slot_used, pages, summary, lists, stats, class_stats)
        procs[p, PR_TINY_ADDR] = 0
        procs[p, PR_TINY_OFFSET] = 0
        procs[p, PR_TINY_SLOT] = -1
    for span_class in range(N_SPAN_CLASSES):
        for column, which in ((0, L_FULL_HEAD), (1, L_PARTIAL_HEAD)):
            last = old_tails[span_class, column]
            while last >= 0:  # the queue's spans up to the old tail were there before the flush
                s = _pop(lists, spans, span_class, which)
                _sweep_and_queue(s, spans, free_ids, slot_count, slot_used, pages, summary, lists, stats, class_stats)
                if s == last:
                    break
    for chunk in range(stats[ST_HEAP_PAGES] // CHUNK_PAGES):
        if summary[chunk, SU_LONGEST] == STALE:
            _summarize(chunk, pages, summary)
    gogc = stats[ST_GOGC]
    if gogc >= 0:
        stats[ST_GOAL] = heap_goal(stats[ST_HEAP_ALLOC], gogc)


@jit
def _sweep_and_queue(s, spans, free_ids, slot_count, slot_used, pages, summary, lists, stats, class_stats):
    """Free the span's dead slots, then queue it as partial or full, or give its pages back."""
    span_class = spans[s, SP_CLASS]
    region = spans[s, SP_REGION]
    size = spans[s, SP_SIZE]
    freed = spans[s, SP_DEAD]
    spans[s, SP_DEAD] = 0
    used = 0
    left = freed
    slot = region
    while left > 0:  # spans without freed objects, most of a long-lived heap, cost nothing here
        if slot_count[slot] == 0:
            slot_count[slot] = FREE_SLOT
            used += slot_used[slot]
            slot_used[slot] = 0
            left -= 1
        slot += 1
    spans[s, SP_ALLOCATED] -= freed
    stats[ST_FREES] += freed
    stats[ST_HEAP_ALLOC] -= freed * size
    class_stats[span_class, CS_FREES] += freed
    class_stats[span_class, CS_LIVE] -= freed
    class_stats[span_class, CS_LIVE_BYTES] -= freed * size
    class_stats[span_class, CS_USED] -= used
    spans[s, SP_FREEINDEX] = 0
    if spans[s, SP_ALLOCATED] == 0:
        _free_span(s, spans, free_ids, pages, summary, stats, class_stats)
    elif spans[s, SP_ALLOCATED] == spans[s, SP_NELEMS]:
        _push(lists, spans, span_class, L_FULL_HEAD, s)
    else:
        _push(lists, spans, span_class, L_PARTIAL_HEAD, s)
