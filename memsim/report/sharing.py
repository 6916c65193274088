"""The false-sharing report (docs/coherence.md, "The false-sharing report"; docs/report.md): the
lines with coherence misses, the objects on them, which bytes each core touched, a roll-up by
allocation site, and one concrete fix per line.

Built from the engine's sharing table (``Counters.sharing``, one row per line with coherence
activity) and, when the trace has an allocator, from where the allocator put every object.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from memsim.engine.counters import (
    CORE_SHARING_COLUMNS,
    S_C2C,
    S_FALSE,
    S_FALSE_AT_MISS,
    S_LINE,
    S_STALL,
    S_TRUE,
    S_TRUE_AT_MISS,
    SC_READS,
    SC_WRITES,
    SHARING_COLUMNS,
    core_sharing_width,
    mask_words,
)
from memsim.models.goalloc.model import Placements
from memsim.models.goalloc.sizeclasses import (
    CLASS_SIZES,
    HEADER_SIZE,
    HEADERS,
    MAX_HEADERLESS_SCAN,
    N_CLASSES,
    small_limit,
)
from memsim.trace.events import Lifetimes

Ranges = tuple[tuple[int, int], ...]  # half-open [lo, hi) byte ranges within a line, ascending


@dataclass(frozen=True)
class LineObject:
    """The part of one allocated object that lies in a line."""

    id: str
    site: str | None
    offset: int  # where the part starts in the line
    size: int  # bytes of the object in the line
    object_offset: int  # where the part starts in the object
    alloc_core: int  # the P that allocated it
    alloc_event: int  # event index of its alloc
    free_event: int | None  # event index of its free; None when never freed


@dataclass(frozen=True)
class LineCore:
    core: int
    reads: int  # read, ifetch and rmw pieces on the line
    writes: int  # write and rmw pieces
    read_bytes: Ranges
    write_bytes: Ranges


@dataclass(frozen=True)
class SharedLine:
    line: int  # the line's address
    false_sharing_misses: int
    true_sharing_misses: int
    false_sharing_misses_at_miss: int
    true_sharing_misses_at_miss: int
    c2c_transfers: int
    stall_cycles: int
    objects: tuple[LineObject, ...]  # address order, then allocation order
    cores: tuple[LineCore, ...]  # only the cores that touched the line
    fix: str


@dataclass(frozen=True)
class SiteRow:
    """The lines whose objects come from exactly this set of sites (each line in one row)."""

    sites: tuple[str, ...]
    lines: int
    false_sharing_misses: int
    true_sharing_misses: int
    stall_cycles: int


@dataclass(frozen=True)
class SharingReport:
    lines: tuple[SharedLine, ...]  # most stall cycles first, cut by --top
    by_site: tuple[SiteRow, ...]  # most stall cycles first, never cut
    total_lines: int  # lines with coherence misses, before the cut


NO_SHARING = SharingReport((), (), 0)


class ObjectNames(Protocol):
    """What the report needs from a loaded trace (``memsim.trace.program.Trace``)."""

    def object_name(self, index: int) -> str: ...
    def object_site(self, index: int) -> str | None: ...
    def allocation_of(self, index: int): ...  # an Allocation: its ``id`` as written, with {i}


@dataclass(frozen=True)
class Heap:
    """Where the allocator put every object, when each lived, and their names."""

    placed: Placements
    lifetimes: Lifetimes
    names: ObjectNames
    generation: int  # the Go layout generation (memsim.models.goalloc.sizeclasses.GENERATIONS)

    def site_key(self, i: int) -> str:
        """An object's entry in the roll-up: its site; without one, its alloc event's id as
        written (``id:counter{i}``), which plays the part of a site: one place that allocates."""
        site = self.names.object_site(i)
        return site if site is not None else f"id:{self.names.allocation_of(i).id}"


# ---- the sharing table ------------------------------------------------------------------------


def mask_ranges(words: np.ndarray, line_size: int) -> Ranges:
    """A byte mask (int64 words, bit b of word k = byte 64 * k + b) as half-open ranges."""
    return bit_ranges(_bits(words, line_size))


def bit_ranges(bits: np.ndarray) -> Ranges:
    edges = np.flatnonzero(np.diff(np.concatenate(([0], bits.astype(np.int8), [0]))))
    return tuple((int(lo), int(hi)) for lo, hi in zip(edges[::2], edges[1::2]))


def _bits(words: np.ndarray, line_size: int) -> np.ndarray:
    raw = np.ascontiguousarray(words, dtype="<i8").view(np.uint8)
    return np.unpackbits(raw, bitorder="little")[:line_size].astype(bool)


def _core_bits(row: np.ndarray, cores: int, line_size: int) -> tuple[np.ndarray, np.ndarray]:
    """counts [cores, 2] (reads, writes) and bits [cores, 2, line_size] (read bytes, write bytes)."""
    words, width = mask_words(line_size), core_sharing_width(line_size)
    counts = np.zeros((cores, 2), np.int64)
    bits = np.zeros((cores, 2, line_size), bool)
    for c in range(cores):
        base = len(SHARING_COLUMNS) + c * width
        counts[c] = row[base + SC_READS], row[base + SC_WRITES]
        masks = base + len(CORE_SHARING_COLUMNS)
        bits[c, 0] = _bits(row[masks:masks + words], line_size)
        bits[c, 1] = _bits(row[masks + words:masks + 2 * words], line_size)
    return counts, bits


# ---- objects on lines ---------------------------------------------------------------------------


def _objects_on(lines: np.ndarray, heap: Heap, shift: int) -> list[np.ndarray]:
    """For each line number (ascending), the objects with a byte in it, in address then
    allocation order. An interval-stabbing join: each object covers a run of the queried lines,
    found with two binary searches, so the cost follows the answer, not lines x objects."""
    placed = heap.placed
    objects = np.flatnonzero(placed.allocated & (placed.size > 0))
    objects = objects[np.lexsort((heap.lifetimes.born[objects], placed.addr[objects]))]
    first = placed.addr[objects] >> shift
    last = (placed.addr[objects] + placed.size[objects] - 1) >> shift
    lo = np.searchsorted(lines, first, "left")
    counts = np.searchsorted(lines, last, "right") - lo
    owner = np.repeat(objects, counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    which = np.repeat(lo, counts) + offsets
    # a stable sort by line keeps each line's objects in address, then allocation, order
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(len(lines) + 1))
    return [owner[order[bounds[q]:bounds[q + 1]]] for q in range(len(lines))]


def _line_object(i: int, line: int, line_size: int, heap: Heap, n_events: int) -> LineObject:
    addr, size = int(heap.placed.addr[i]), int(heap.placed.size[i])
    lo, hi = max(addr, line), min(addr + size, line + line_size)
    died = int(heap.lifetimes.died[i])
    return LineObject(
        id=heap.names.object_name(i), site=heap.names.object_site(i), offset=lo - line, size=hi - lo,
        object_offset=lo - addr, alloc_core=int(heap.lifetimes.alloc_core[i]),
        alloc_event=int(heap.lifetimes.born[i]), free_event=died if died < n_events else None,
    )


# ---- the report -----------------------------------------------------------------------------


def build_sharing(sharing: np.ndarray, line_size: int, cores: int, top: int, heap: Heap | None = None,
                  n_events: int = 0) -> SharingReport:
    """The report over ``sharing`` (rows sorted by line number, the layout of
    memsim.engine.counters). ``top`` cuts the lines (0: all); ``n_events`` tells a free at the end
    of the run apart from "never freed" (Lifetimes.died)."""
    rows = sharing[sharing[:, S_FALSE] + sharing[:, S_TRUE] > 0]
    if not len(rows):
        return NO_SHARING
    shift = line_size.bit_length() - 1
    numbers = rows[:, S_LINE]
    on_line = _objects_on(numbers, heap, shift) if heap is not None else [np.zeros(0, np.int64)] * len(rows)
    ranked = np.lexsort((numbers, -rows[:, S_STALL]))
    shown = ranked[:top] if top else ranked
    lines = tuple(_shared_line(rows[r], on_line[r], line_size, cores, heap, n_events) for r in shown)
    by_site = _by_site(rows, on_line, heap) if heap is not None else ()
    return SharingReport(lines, by_site, len(rows))


def _shared_line(row: np.ndarray, objects: np.ndarray, line_size: int, cores: int, heap: Heap | None,
                 n_events: int) -> SharedLine:
    line = int(row[S_LINE]) * line_size
    counts, bits = _core_bits(row, cores, line_size)
    touched = [c for c in range(cores) if counts[c].any() or bits[c].any()]
    line_cores = tuple(
        LineCore(c, int(counts[c, 0]), int(counts[c, 1]), bit_ranges(bits[c, 0]), bit_ranges(bits[c, 1]))
        for c in touched
    )
    line_objects = tuple(_line_object(int(i), line, line_size, heap, n_events) for i in objects)
    facts = _Facts(line, line_size, int(row[S_FALSE]), int(row[S_TRUE]), touched, bits, objects, line_objects, heap)
    return SharedLine(
        line=line,
        false_sharing_misses=int(row[S_FALSE]),
        true_sharing_misses=int(row[S_TRUE]),
        false_sharing_misses_at_miss=int(row[S_FALSE_AT_MISS]),
        true_sharing_misses_at_miss=int(row[S_TRUE_AT_MISS]),
        c2c_transfers=int(row[S_C2C]),
        stall_cycles=int(row[S_STALL]),
        objects=line_objects,
        cores=line_cores,
        fix=fix_for(facts),
    )


def _by_site(rows: np.ndarray, on_line: list[np.ndarray], heap: Heap) -> tuple[SiteRow, ...]:
    """Each line with objects counts once, under the sorted set of its objects' sites; lines of
    raw addresses (no object) have no site and no row."""
    totals: dict[tuple[str, ...], list[int]] = {}
    for row, objects in zip(rows, on_line):
        if not len(objects):
            continue
        sites = tuple(sorted({heap.site_key(int(i)) for i in objects}))
        t = totals.setdefault(sites, [0, 0, 0, 0])
        t[0] += 1
        t[1] += int(row[S_FALSE])
        t[2] += int(row[S_TRUE])
        t[3] += int(row[S_STALL])
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1][3], kv[0]))
    return tuple(SiteRow(sites, *t) for sites, t in ranked)


# ---- the fix ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    """What the fix sentence is chosen from."""

    line: int
    line_size: int
    false: int
    true: int
    cores: list[int]  # the cores that touched the line
    bits: np.ndarray  # [cores, 2, line_size]: read bytes, write bytes
    objects: np.ndarray  # object indices, as in ``described``
    described: tuple[LineObject, ...]
    heap: Heap | None

    def used(self, c: int) -> np.ndarray:
        return self.bits[c, 0] | self.bits[c, 1]

    def users(self, k: int) -> list[int]:
        """The cores that touched bytes of the k-th object on the line."""
        o = self.described[k]
        return [c for c in self.cores if self.used(c)[o.offset:o.offset + o.size].any()]

    @property
    def used_objects(self) -> list[int]:
        return [k for k in range(len(self.described)) if self.users(k)]


def _verb(f: _Facts, c: int) -> tuple[str, np.ndarray]:
    """'writes' and the core's written bytes when it wrote any, else 'reads' and its read bytes."""
    return ("writes", f.bits[c, 1]) if f.bits[c, 1].any() else ("reads", f.bits[c, 0])


def show_ranges(ranges: Ranges, shift: int = 0) -> str:
    """'[0, 8) [16, 24)', moved by ``shift``; '-' when empty."""
    return " ".join(f"[{lo + shift}, {hi + shift})" for lo, hi in ranges) or "-"


def _who(f: _Facts, shift: int = 0, mask: slice = slice(None)) -> str:
    """'core 0 writes [0, 8), core 1 writes [8, 16)' over the bytes in ``mask``, moved by ``shift``."""
    parts = []
    for c in f.cores:
        verb, bits = _verb(f, c)
        inside = np.zeros_like(bits)
        inside[mask] = bits[mask]
        if inside.any():
            parts.append(f"core {c} {verb} {show_ranges(bit_ranges(inside), shift)}")
    return ", ".join(parts)


def _cores_text(cores: list[int]) -> str:
    names = [str(c) for c in cores]
    if len(names) < 2:
        return "core " + names[0] if names else "no core"
    return "cores " + ", ".join(names[:-1]) + " and " + names[-1]


def pad_request(size: int, pointers: bool, generation: int, line_size: int) -> tuple[int, int, int] | None:
    """(request, size class, slot size) of the smallest request >= ``size`` whose Go size class has
    slots a whole number of lines long: spans start on page boundaries, so such slots start on a
    line and no other object shares their lines. The request fills its slot (less the malloc
    header of a big pointerful object). None for large objects, which have spans of their own."""
    for c in range(1, N_CLASSES):
        slot = CLASS_SIZES[c]
        header = HEADER_SIZE if pointers and generation >= HEADERS and slot - HEADER_SIZE > MAX_HEADERLESS_SCAN else 0
        request = slot - header
        if slot % line_size == 0 and size <= request <= small_limit(generation):
            return request, c, slot
    return None


def _padding(f: _Facts, i: int, size: int) -> str | None:
    """'to 64 B (size class 6, 64-byte slots start on a line)' for object ``i`` grown to ``size``
    bytes; None for a large object, which has its span to itself already."""
    heap = f.heap
    padded = pad_request(size, bool(heap.placed.pointers[i]), heap.generation, f.line_size)
    if padded is None:
        return None
    request, size_class, slot = padded
    return f"to {request} B (size class {size_class}, {slot}-byte slots start on a line)"


def _pad_text(f: _Facts, members: list[int]) -> str:
    """'pad `a.go:1` and `b.go:2` objects (8 B) to 64 B (...)': the sites of the objects
    ``members`` (indices into ``f.described``), those with the same size and advice together."""
    advice: dict[tuple[int, str], list[str]] = {}
    for k in members:
        i = int(f.objects[k])
        size = int(f.heap.placed.size[i])
        phrase = _padding(f, i, size)
        if phrase is None:
            continue
        keys = advice.setdefault((size, phrase), [])
        if (key := f.heap.site_key(i)) not in keys:
            keys.append(key)
    parts = [f"{' and '.join(f'`{key}`' for key in keys)} objects ({size} B) {phrase}"
             for (size, phrase), keys in advice.items()]
    return "pad " + "; ".join(parts) if parts else ""


# What to do about true sharing, by how many cores write the shared bytes: several writers
# contend for one datum; a single writer hands data to readers (a flag, an index, a queue slot).
_TRUE_SHARING_ADVICE = {
    "writers": "give each core its own copy (e.g. per-P shards combined at the end) or batch the updates so the "
               "line moves less often",
    "hand-off": "the line carries data from {writer} to {readers}: hand it over in batches (publish or poll the "
                "shared value once per several items) so the line moves less often",
}


def _fix_true(f: _Facts) -> str:
    # bytes used by two or more cores, at least one of which wrote them
    users = np.array([f.used(c) for c in f.cores])
    writes = np.array([f.bits[c, 1] for c in f.cores])
    both = (users.sum(axis=0) >= 2) & writes.any(axis=0)
    sharers = [c for c in f.cores if (f.used(c) & both).any()]
    writers = [c for c in sharers if (f.bits[c, 1] & both).any()]
    where = f"{_cores_text(sharers)} use the same bytes {show_ranges(bit_ranges(both))}" if both.any() \
        else "the cores use the same bytes"
    advice = _TRUE_SHARING_ADVICE["hand-off" if len(writers) == 1 else "writers"].format(
        writer=_cores_text(writers), readers=_cores_text([c for c in sharers if c not in writers]))
    return f"mostly true sharing ({f.true:,} true vs {f.false:,} false): {where}, so padding will not help; {advice}"


def _fix_raw(f: _Facts) -> str:
    return (f"{_who(f)} of line {f.line:#x}: put each core's data on its own {f.line_size}-byte line "
            f"(e.g. a {f.line_size}-byte stride between the cores' data)")


def _fix_fields(f: _Facts) -> str:
    (k,) = f.used_objects
    o, i = f.described[k], int(f.objects[k])
    part = slice(o.offset, o.offset + o.size)
    shift = o.object_offset - o.offset  # line byte -> object byte
    # where each core's bytes start in the object, first to last: the later starts are the fields
    # to move to a new line, each padded forward to the next line boundary
    starts = sorted({int(np.flatnonzero(f.used(c)[part])[0]) + o.object_offset
                     for c in f.users(k)})[1:]
    pads, moved = [], 0
    for start in starts:
        gap = -(start + moved) % f.line_size
        moved += gap
        if gap:
            pads.append(f"{gap} bytes of padding after byte {start - 1}")
    at = (f"fields at offsets {', '.join(map(str, starts))} out into objects of their own" if len(starts) > 1
          else f"field at offset {starts[0] if starts else o.object_offset} out into an object of its own")
    size = int(f.heap.placed.size[i])
    align = _padding(f, i, size + moved)
    align = f"pad the object (then {size + moved} B) {align}" if align else "align the object to a line"
    layout = (f"insert {' and '.join(pads)} so each starts a new {f.line_size}-byte line, and "
              if pads else f"the fields already start on {f.line_size}-byte boundaries of the object; ")
    return (f"one object, `{o.id}` ({size} B), is shared field by field ({_who(f, shift, part)} of the object): split "
            f"the hot {at}, or {layout}{align}")


def _fix_p(f: _Facts) -> str:
    moved = _misplaced(f)
    items = ", ".join(f"`{f.described[k].id}` (used by core {user}, allocated on P {f.described[k].alloc_core})"
                      for k, user in moved)
    pad = _pad_text(f, f.used_objects)
    return (f"{items}: allocate {'it' if len(moved) == 1 else 'each'} on the P that uses it, so it comes from that "
            "P's own span instead of sharing a line with other cores' data" + (f"; or {pad}" if pad else ""))


def _fix_pad(f: _Facts) -> str:
    pad = _pad_text(f, f.used_objects) or f"put each core's data on its own {f.line_size}-byte line"
    names = ", ".join(f"`{f.described[k].id}`" for k in f.used_objects)
    return f"{_who(f)} of different objects ({names}) on one line: {pad}, so each gets a line of its own"


def _misplaced(f: _Facts) -> list[tuple[int, int]]:
    """(object, core) for each object on the line used by one core only, not the P that allocated it."""
    return [(k, users[0]) for k in f.used_objects
            if len(users := f.users(k)) == 1 and users[0] != f.described[k].alloc_core]


# The first rule that holds picks the sentence.
FIX_RULES: tuple[tuple[str, Callable[[_Facts], bool], Callable[[_Facts], str]], ...] = (
    ("true sharing", lambda f: f.true > f.false, _fix_true),
    ("raw addresses", lambda f: not f.used_objects, _fix_raw),
    ("fields of one object", lambda f: len(f.used_objects) == 1 and len(f.cores) > 1, _fix_fields),
    ("allocated on another P", lambda f: bool(_misplaced(f)), _fix_p),
    ("neighbouring objects", lambda f: True, _fix_pad),
)


def fix_for(f: _Facts) -> str:
    return next(text(f) for _, holds, text in FIX_RULES if holds(f))
