"""Binary traces (``.mstrace``, format version 1): the event table on disk.

docs/binary-format.md gives the layout byte by byte. In short: a 64-byte preamble (magic, version,
rows per block, event count, where the footer is, checksums), the events in blocks of
``block_rows`` rows with each column (events.COLUMNS but ``src``) contiguous inside its block,
then a footer: the trace's name and allocator, a CRC-32 per block, the cores used, the objects
(size, flags, site, the index of their alloc event, id) and the sites.

The writer streams: it fills one block at a time, writes the footer and then the preamble at the
end, into a temporary file beside the target that replaces the target only once complete. The
reader checks the preamble, the file's length and every checksum in the one pass of plain reads
that hashes the file (reads do not count against the process's memory, a map's pages do), then
maps the file. A block's values are checked, vectorized, the first time it is handed out, and
the pages of the block read before are given back, so a replay holds about one block in memory
whatever the file's size.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterable

import numpy as np

from memsim.atomic import atomic_file
from memsim.errors import UserError
from memsim.trace.events import (
    COLUMNS,
    FLAG_POINTERS,
    MAX_ADDRESS,
    MAX_OBJECT_SIZE,
    NO_OBJECT,
    OP_ALLOC,
    OP_FREE,
    OP_GC,
    OP_IFETCH,
    Events,
)
from memsim.trace.program import ObjectTable, Stored, Trace

BINARY_SUFFIX = ".mstrace"
MAGIC = b"\x89MSTRACE"  # the high first byte catches 7-bit transfers, as PNG's does
FORMAT_VERSION = 1
BLOCK_ROWS = 1 << 20
MAX_BLOCK_ROWS = 1 << 22  # a block is checked in one go: its temporaries are a few times its size
MAX_EVENTS = 2**62  # global event indices stay inside int64 (as for YAML traces)
STORED_COLUMNS = tuple(name for name in COLUMNS if name != "src")  # src names YAML lines: none here
OP_NAMES = ("read", "write", "rmw", "ifetch", "alloc", "free", "gc")

# magic, version, block_rows, events, footer offset, footer length, footer CRC, 16 reserved, preamble CRC
PREAMBLE = struct.Struct("<8sIIQQQI16xI")
FOOTER_HEAD = struct.Struct("<QQQQ")  # objects, sites, cores, metadata bytes
READ_PIECE = 4 << 20  # hashing reads: big enough for full speed, small enough not to matter


def _padded(n: int) -> int:
    """Sections start at multiples of 8 bytes, so every column can be mapped as aligned."""
    return n + (-n % 8)


def _block_bytes(rows: int) -> int:
    return sum(_padded(rows * np.dtype(COLUMNS[name]).itemsize) for name in STORED_COLUMNS)


def _block_rows(n_events: int, block_rows: int, k: int) -> int:
    return min(block_rows, n_events - k * block_rows)


def _n_blocks(n_events: int, block_rows: int) -> int:
    return -(-n_events // block_rows)


def _data_bytes(n_events: int, block_rows: int) -> int:
    full, rest = divmod(n_events, block_rows)
    return full * _block_bytes(block_rows) + _block_bytes(rest)


def is_binary(path: Path) -> bool:
    """Whether ``path`` starts with the magic bytes of a binary trace."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


# -- the checks every block passes, when it is written and when it is read ------------------------


@dataclass
class _Limits:
    """What a block's values are checked against. The object arrays have one entry more than there
    are objects: rows naming no valid object look that entry up, and their rules ignore it."""

    object_size: np.ndarray
    object_flags: np.ndarray
    object_site: np.ndarray
    object_born: np.ndarray | None  # None while writing: the writer is still deciding it
    n_sites: int
    cores: np.ndarray | None  # sorted; None while writing

    @classmethod
    def of(cls, size, flags, site, born, n_sites, cores) -> "_Limits":
        def extended(a, dtype):
            return np.concatenate([np.asarray(a, dtype), np.zeros(1, dtype)])

        return cls(extended(size, np.int64), extended(flags, np.uint8), extended(site, np.int32),
                   None if born is None else extended(born, np.int64), n_sites, cores)

    @property
    def n_objects(self) -> int:
        return len(self.object_size) - 1


def _check_block(columns: dict[str, np.ndarray], first: int, limits: _Limits, where: str) -> None:
    """UserError at the first row of this block (event ``first`` onwards) that no valid trace has:
    the table in events.py, objects and sites that exist, accesses inside their object, allocs
    that agree with the footer's objects."""
    op, core, size, obj, addr, flags, site = (columns[name] for name in STORED_COLUMNS)
    problems: list[tuple[int, int, str]] = []  # (row, rule order, message)

    def rule(bad: np.ndarray, rows: np.ndarray | None, column: str, values: np.ndarray, expected: str) -> None:
        """``bad`` flags rows of ``values``, which are the block's rows ``rows`` (None: all of them)."""
        if bad.any():
            i = int(bad.argmax())
            row = i if rows is None else int(rows[i])
            problems.append((row, len(problems), f"{column} is {values[i]}, expected {expected}"))

    known = (op >= 0) & (op <= OP_GC)
    rule(~known, None, "op", op, "an op code 0-6 (read, write, rmw, ifetch, alloc, free, gc)")
    n, numbers = limits.n_objects, _object_numbers(limits.n_objects)
    accesses = known & (op <= OP_IFETCH)
    only_accesses = accesses.all()  # the usual block of an imported trace: no other kind of row to look at
    # the cores index the allocator's and the caches' arrays: a core the machine was not checked against must not pass
    owned = None if only_accesses else np.flatnonzero(accesses | (op == OP_ALLOC))
    _check_cores(rule, owned, core if owned is None else core[owned], limits)
    if only_accesses:
        _check_accesses(rule, None, size, obj, addr, limits)
    else:
        rows = np.flatnonzero(accesses)
        _check_accesses(rule, rows, size[rows], obj[rows], addr[rows], limits)
        allocs = np.flatnonzero(op == OP_ALLOC)
        if len(allocs):
            o = obj[allocs]
            valid = (o >= 0) & (o < n)
            ref = np.where(valid, o, n)
            rule(~valid, allocs, "obj", o, numbers)
            rule(valid & (size[allocs] != limits.object_size[ref]), allocs, "size", size[allocs],
                 "the object's size")
            rule(addr[allocs] != 0, allocs, "addr", addr[allocs], "0 for an alloc")
            rule(valid & (flags[allocs] != limits.object_flags[ref]), allocs, "flags", flags[allocs],
                 "the object's flags")
            rule(valid & (site[allocs] != limits.object_site[ref]), allocs, "site", site[allocs],
                 "the object's site")
            if limits.object_born is not None:
                rule(valid & (limits.object_born[ref] != first + allocs), allocs, "obj", o,
                     "an object whose alloc the footer places at this event")
        others = np.flatnonzero((op == OP_FREE) | (op == OP_GC))
        if len(others):
            o, is_free = obj[others], op[others] == OP_FREE
            rule(is_free & ((o < 0) | (o >= n)), others, "obj", o, numbers)
            rule(~is_free & (o != NO_OBJECT), others, "obj", o, "-1 for a gc")
            for column, values in (("core", core), ("size", size), ("addr", addr)):
                rule(values[others] != 0, others, column, values[others], "0 for a free or a gc")
    not_alloc = known & (op != OP_ALLOC)
    rule(not_alloc & (flags != 0), None, "flags", flags, "0 except for an alloc")
    rule(not_alloc & (site != -1), None, "site", site, "-1 except for an alloc")
    if problems:
        row, _, message = min(problems)
        what = OP_NAMES[op[row]] if 0 <= op[row] <= OP_GC else "unknown op"
        raise UserError(f"event {first + row} ({what}): {message}", where)


def _check_cores(rule, rows, core, limits: _Limits) -> None:
    """``core``: the cores of the accesses and allocs, the block's rows ``rows``."""
    rule(core < 0, rows, "core", core, "a core number >= 0")
    if limits.cores is not None and len(core):
        cores = limits.cores
        # usually every core from 0 to the highest is used: then a bound is the whole membership test
        every = len(cores) and cores[-1] == len(cores) - 1
        listed = core <= cores[-1] if every else np.isin(core, cores)
        rule(~listed, rows, "core", core, f"one of the cores the footer lists ({_listing(cores)})")


def _check_accesses(rule, rows, size, obj, addr, limits: _Limits) -> None:
    n = limits.n_objects
    rule(size < 1, rows, "size", size, "at least 1 for an access")
    raw = obj == NO_OBJECT
    if raw.all():
        # size >= 1 keeps MAX_ADDRESS - size from wrapping; a row with a bad size is reported first
        rule((addr < 0) | (addr > MAX_ADDRESS - size), rows, "addr", addr, "an address with addr + size <= 2^63 - 1")
        return
    valid = (obj >= 0) & (obj < n)
    rule(~raw & ~valid, rows, "obj", obj, f"-1 (a raw address) or {_object_numbers(n)}")
    rule(raw & ((addr < 0) | (addr > MAX_ADDRESS - size)), rows, "addr", addr,
         "an address with addr + size <= 2^63 - 1")
    extent = limits.object_size[np.where(valid, obj, n)]
    rule(valid & ((addr < 0) | (addr > extent - size)), rows, "addr", addr,
         "an offset inside the object (offset + size <= the object's size)")


def _object_numbers(n: int) -> str:
    return f"an object number 0-{n - 1} (the trace has {n} objects)" if n else "no object (the trace has none)"


def _listing(values: np.ndarray, shown: int = 8) -> str:
    text = ", ".join(str(v) for v in values[:shown])
    return text + (", ..." if len(values) > shown else "")


# -- reading ---------------------------------------------------------------------------------------


@dataclass
class StoredTrace:
    """What a binary trace holds. ``allocator`` is as written ({"model": "none"}, or
    {"model": "go", "version": "1.27", "gogc": None}); ``cores`` lists (core, its first event)
    in ascending core order."""

    name: str
    allocator: dict[str, Any]
    root: Stored
    objects: ObjectTable
    sites: list[str]
    cores: list[tuple[int, int]]


@dataclass(frozen=True)
class _Preamble:
    block_rows: int
    n_events: int
    footer_offset: int
    footer_length: int
    footer_crc: int


def read_binary(path: Path, display: str, hasher) -> StoredTrace:
    """Open the binary trace ``path`` (``display`` names it in messages), feeding all its bytes to
    ``hasher`` (a hashlib object). Every problem is a UserError naming the file."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UserError(f"cannot read the binary trace: {e.strerror}", display) from None
    with f:
        file_size = os.fstat(f.fileno()).st_size
        head = f.read(PREAMBLE.size)
        preamble = _preamble(head, file_size, display)
        hasher.update(head)
        block_crcs, footer_crc = _hash_pass(f, preamble, hasher, display)
        if footer_crc != preamble.footer_crc:
            raise UserError("the footer is corrupt (its checksum does not match)", display)
        # copy-on-write: the arrays handed out are writable like any others, and the file stays as it is
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    footer = _Footer(mapped, preamble, display)
    for k, (stored, computed) in enumerate(zip(footer.block_crcs, block_crcs)):
        if stored != computed:
            first = k * preamble.block_rows
            last = first + _block_rows(preamble.n_events, preamble.block_rows, k) - 1
            raise UserError(f"block {k} (events {first}-{last}) is corrupt (its checksum does not match)", display)
    blocks = _Blocks(mapped, preamble, footer, display)
    root = Stored(preamble.n_events, preamble.block_rows, blocks.block)
    cores = list(zip(footer.cores.tolist(), footer.core_first.tolist()))
    return StoredTrace(footer.meta["name"], footer.meta["allocator"], root, footer.objects, footer.sites, cores)


def _preamble(head: bytes, file_size: int, where: str) -> _Preamble:
    if head[: len(MAGIC)] != MAGIC[: len(head)] or not head:
        raise UserError("not a memsim binary trace (it does not start with the magic bytes \\x89MSTRACE)", where)
    if len(head) < PREAMBLE.size:
        raise UserError(f"truncated: the file ends after {len(head)} bytes, inside the {PREAMBLE.size}-byte preamble",
                        where)
    _, version, block_rows, n_events, footer_offset, footer_length, footer_crc, crc = PREAMBLE.unpack(head)
    if version != FORMAT_VERSION:  # magic and version keep their place in every version, so this is safe to read
        raise UserError(f"binary trace format version {version} is not supported: this version of memsim reads "
                        f"format version {FORMAT_VERSION}", where)
    if zlib.crc32(head[: PREAMBLE.size - 4]) != crc:
        raise UserError("the preamble is corrupt (its checksum does not match)", where)
    if not 1 <= block_rows <= MAX_BLOCK_ROWS:
        raise UserError(f"the preamble gives {block_rows} events per block; memsim reads 1 to {MAX_BLOCK_ROWS}", where)
    if n_events > MAX_EVENTS:
        raise UserError(f"the preamble gives {n_events} events, more than memsim can index (2^62)", where)
    if footer_offset != PREAMBLE.size + _data_bytes(n_events, block_rows):
        raise UserError(f"the preamble is inconsistent: {n_events} events in blocks of {block_rows} end at byte "
                        f"{PREAMBLE.size + _data_bytes(n_events, block_rows)}, but the footer is said to start at "
                        f"{footer_offset}", where)
    expected = footer_offset + footer_length
    if file_size < expected:
        raise UserError(f"truncated: the file has {file_size} bytes, its preamble describes {expected}", where)
    if file_size > expected:
        raise UserError(f"the file has {file_size - expected} bytes after its end ({expected} bytes, per its "
                        "preamble)", where)
    return _Preamble(block_rows, n_events, footer_offset, footer_length, footer_crc)


def _hash_pass(f, preamble: _Preamble, hasher, where: str) -> tuple[list[int], int]:
    """Read the rest of the file once, from the end of the preamble: feed it to ``hasher``, and
    return the CRC-32 of every block and of the footer. The hash runs on a second thread, beside
    the reads and the CRCs (both let go of the GIL), in two alternating buffers."""
    n, rows = preamble.n_events, preamble.block_rows
    lengths = [_block_bytes(_block_rows(n, rows, k)) for k in range(_n_blocks(n, rows))] + [preamble.footer_length]
    buffers = [memoryview(bytearray(READ_PIECE)) for _ in range(2)]
    hashing: list = [None, None]  # the pending hash of each buffer: it must be done before the buffer is refilled
    crcs, turn = [], 0
    with ThreadPoolExecutor(1) as hasher_thread:  # one thread: the pieces are hashed in order
        for length in lengths:
            crc = 0
            while length:
                turn = 1 - turn
                if hashing[turn] is not None:
                    hashing[turn].result()
                piece = buffers[turn][: min(length, READ_PIECE)]
                got = f.readinto(piece)
                if not got:
                    raise UserError("truncated while being read (was the file changed?)", where)
                hashing[turn] = hasher_thread.submit(hasher.update, piece[:got])
                crc = zlib.crc32(piece[:got], crc)
                length -= got
            crcs.append(crc)
    return crcs[:-1], crcs[-1]


class _Footer:
    """The footer's sections, as arrays over the map (see docs/binary-format.md)."""

    def __init__(self, mapped, preamble: _Preamble, where: str):
        self.mapped, self.where = mapped, where
        self.at, self.end = preamble.footer_offset, preamble.footer_offset + preamble.footer_length
        head = self._take(np.uint64, FOOTER_HEAD.size // 8)
        n_objects, n_sites, n_cores, meta_length = (int(x) for x in head)
        self.meta = self._meta(bytes(self._take(np.uint8, meta_length)))
        self.block_crcs = self._take(np.uint32, _n_blocks(preamble.n_events, preamble.block_rows)).tolist()
        self.cores = self._take(np.int64, n_cores)
        self.core_first = self._take(np.int64, n_cores)
        size, born = self._take(np.int64, n_objects), self._take(np.int64, n_objects)
        site, flags = self._take(np.int32, n_objects), self._take(np.uint8, n_objects)
        site_offsets = self._take(np.int64, n_sites + 1)
        self._offsets(site_offsets, "site")
        site_bytes = bytes(self._take(np.uint8, int(site_offsets[-1])))
        self.sites = [site_bytes[a:b].decode("utf-8", "replace") for a, b in zip(site_offsets[:-1], site_offsets[1:])]
        # the ids' offsets close the footer: the writer learns the ids' length only as it writes them
        ids_at = self.at
        self.at = self.end - 8 * (n_objects + 1)
        if self.at < ids_at:
            self._corrupt("its object ids do not fit")
        id_offsets = self._take(np.int64, n_objects + 1)
        self._offsets(id_offsets, "object id")
        if ids_at + _padded(int(id_offsets[-1])) != self.end - 8 * (n_objects + 1):
            self._corrupt("its object ids and their offsets disagree")
        id_bytes = np.frombuffer(mapped, np.uint8, int(id_offsets[-1]), ids_at)
        self.objects = ObjectTable(size, flags, site, born, id_offsets, id_bytes)
        self._check(preamble, n_sites)

    def _take(self, dtype, count: int) -> np.ndarray:
        length = np.dtype(dtype).itemsize * count
        if self.at + length > self.end:
            self._corrupt("its sections run past its end")
        array = np.frombuffer(self.mapped, dtype, count, self.at) if count else np.zeros(0, dtype)
        self.at += _padded(length)
        return array

    def _meta(self, text: bytes) -> dict[str, Any]:
        try:
            meta = json.loads(text)
        except ValueError:
            self._corrupt("its metadata is not JSON")
        allocator = meta.get("allocator") if isinstance(meta, dict) else None
        if not isinstance(allocator, dict) or not isinstance(meta.get("name"), str):
            self._corrupt("its metadata lacks the trace's name or allocator")
        return meta

    def _offsets(self, offsets: np.ndarray, what: str) -> None:
        if offsets[0] != 0 or (np.diff(offsets) < 0).any():
            self._corrupt(f"its {what} offsets do not ascend from 0")

    def _check(self, preamble: _Preamble, n_sites: int) -> None:
        n, objects = preamble.n_events, self.objects
        if (np.diff(self.cores) <= 0).any() or (self.cores < 0).any():
            self._corrupt("its cores are not distinct ascending core numbers")
        if ((self.core_first < 0) | (self.core_first >= n)).any():
            self._corrupt("it places a core's first event outside the trace")
        if ((objects.size < 0) | (objects.size > MAX_OBJECT_SIZE)).any():
            self._corrupt("it gives an object a size outside 0 to 2^40")
        if (objects.flags & ~np.uint8(FLAG_POINTERS)).any():
            self._corrupt("it gives an object flags other than 'pointers'")
        if ((objects.site < -1) | (objects.site >= n_sites)).any():
            self._corrupt("it gives an object a site that does not exist")
        born = objects.born[objects.born >= 0]
        if (objects.born < -1).any() or (born >= n).any() or len(np.unique(born)) != len(born):
            self._corrupt("it places object allocs outside the trace or two at one event")

    def _corrupt(self, why: str):
        raise UserError(f"the footer is corrupt: {why}", self.where)


class _Blocks:
    """Hands out blocks of the map as event columns, checking each block's values the first time."""

    def __init__(self, mapped, preamble: _Preamble, footer: _Footer, where: str):
        self.mapped, self.where = mapped, where
        self.n_events, self.rows = preamble.n_events, preamble.block_rows
        objects = footer.objects
        self.limits = _Limits.of(objects.size, objects.flags, objects.site, objects.born, len(footer.sites),
                                 footer.cores)
        self.allocs = np.bincount(objects.born[objects.born >= 0] // self.rows,
                                  minlength=_n_blocks(self.n_events, self.rows))
        self.checked = np.zeros(_n_blocks(self.n_events, self.rows), bool)
        self.current: int | None = None

    def _span(self, k: int) -> tuple[int, int]:
        start = PREAMBLE.size + k * _block_bytes(self.rows)
        return start, start + _block_bytes(_block_rows(self.n_events, self.rows, k))

    def block(self, k: int) -> Events:
        rows = _block_rows(self.n_events, self.rows, k)
        at, _ = self._span(k)
        columns = {}
        for name in STORED_COLUMNS:
            columns[name] = np.frombuffer(self.mapped, COLUMNS[name], rows, at)
            at += _padded(rows * np.dtype(COLUMNS[name]).itemsize)
        columns["src"] = np.zeros(rows, COLUMNS["src"])
        if not self.checked[k]:
            where = f"{self.where}: block {k}"
            _check_block(columns, k * self.rows, self.limits, self.where)
            allocs = int(np.count_nonzero(columns["op"] == OP_ALLOC))
            if allocs != self.allocs[k]:
                raise UserError(f"it holds {allocs} allocs, the footer places {self.allocs[k]} in it", where)
            self.checked[k] = True
        if self.current is not None and self.current != k:
            self._release(self.current)
        self.current = k
        return Events(**columns)

    def _release(self, k: int) -> None:
        """Give back the pages of block ``k`` (they are read again from the file if it is needed again)."""
        start, stop = self._span(k)
        start += -start % mmap.PAGESIZE
        stop -= stop % mmap.PAGESIZE
        if stop > start:
            self.mapped.madvise(mmap.MADV_DONTNEED, start, stop - start)


# -- writing ---------------------------------------------------------------------------------------


class BinaryWriter:
    """Writes a binary trace into ``file`` (open for writing in binary, at its start; ``target``
    names it in messages) from chunks of events of any size (``write``), then ``finish``. The
    objects' sizes, flags and sites are known up front (``object_*``, one entry per object); their
    alloc events are found as the events pass. ``display`` names the input in messages about bad
    events. ``write_events`` gives it a temporary file that replaces the target only once finished."""

    def __init__(self, file: BinaryIO, target: Path, display: str, *, object_size=(), object_flags=(),
                 object_site=(), sites: list[str] = (), block_rows: int = BLOCK_ROWS):
        self.file, self.target, self.display = file, target, display
        self.sites, self.block_rows = list(sites), block_rows
        self.limits = _Limits.of(object_size, object_flags, object_site, None, len(self.sites), None)
        self.born = np.full(self.limits.n_objects, -1, np.int64)
        self.core_first: dict[int, int] = {}
        self.buffer = {name: np.empty(block_rows, COLUMNS[name]) for name in STORED_COLUMNS}
        self.filled = self.n_events = 0
        self.block_crcs: list[int] = []
        self._put(bytes(PREAMBLE.size))  # the preamble is written last, once its numbers are known

    def _put(self, data, crc: int = 0) -> int:
        """Write ``data``; return the CRC-32 continued from ``crc``."""
        try:
            self.file.write(data)
        except OSError as e:
            raise UserError(f"cannot write: {e.strerror}", str(self.target)) from None
        return zlib.crc32(data, crc)

    def _put_padded(self, array: np.ndarray, crc: int) -> int:
        data = memoryview(np.ascontiguousarray(array)).cast("B")
        return self._put(bytes(-len(data) % 8), self._put(data, crc))

    def write(self, events: Events) -> None:
        done = 0
        while done < len(events):
            take = min(self.block_rows - self.filled, len(events) - done)
            for name in STORED_COLUMNS:
                self.buffer[name][self.filled : self.filled + take] = getattr(events, name)[done : done + take]
            self.filled += take
            done += take
            if self.filled == self.block_rows:
                self._flush()

    def _flush(self) -> None:
        columns = {name: column[: self.filled] for name, column in self.buffer.items()}
        first = self.n_events
        _check_block(columns, first, self.limits, self.display)
        self._note_allocs(columns, first)
        self._note_cores(columns, first)
        crc = 0
        for name in STORED_COLUMNS:
            crc = self._put_padded(columns[name], crc)
        self.block_crcs.append(crc)
        self.n_events += self.filled
        self.filled = 0
        if self.n_events > MAX_EVENTS:
            raise UserError("the trace has more events than memsim can index (2^62)", self.display)

    def _note_allocs(self, columns, first: int) -> None:
        rows = np.flatnonzero(columns["op"] == OP_ALLOC)
        if not len(rows):
            return
        objects = columns["obj"][rows]
        order = np.argsort(objects, kind="stable")
        again = np.flatnonzero(np.diff(objects[order]) == 0)
        earlier = np.flatnonzero(self.born[objects] >= 0)
        if len(again) or len(earlier):
            pairs = [(int(rows[order[i + 1]]), int(rows[order[i]])) for i in again[:1]]
            pairs += [(int(rows[i]), None) for i in earlier[:1]]
            row, before = min(pairs)
            obj = int(columns["obj"][row])
            before = first + before if before is not None else int(self.born[obj])
            raise UserError(f"event {first + row} (alloc): object {obj} is allocated again (first at event {before})",
                            self.display)
        self.born[objects] = first + rows

    def _note_cores(self, columns, first: int) -> None:
        op, core = columns["op"], columns["core"]
        owned = (op != OP_FREE) & (op != OP_GC)
        used = core[owned]
        if not len(used):
            return
        top = int(used.max())
        present = np.flatnonzero(np.bincount(used)) if top < 1 << 16 else np.unique(used)
        for c in present.tolist():
            if c not in self.core_first:
                self.core_first[c] = first + int(np.argmax(owned & (core == c)))

    def finish(self, name: str, allocator: dict[str, Any], object_ids: Iterable[str]) -> None:
        """Write the footer and the preamble. ``object_ids`` gives one id per object, in object
        order (it is read once, as it is written)."""
        if self.filled:
            self._flush()
        footer_offset = self.file.tell()
        meta = json.dumps({"name": name, "allocator": allocator}, sort_keys=True).encode()
        cores = sorted(self.core_first)
        crc = self._put(FOOTER_HEAD.pack(self.limits.n_objects, len(self.sites), len(cores), len(meta)))
        crc = self._put_padded(np.frombuffer(meta, np.uint8), crc)
        crc = self._put_padded(np.array(self.block_crcs, np.uint32), crc)
        crc = self._put_padded(np.array(cores, np.int64), crc)
        crc = self._put_padded(np.array([self.core_first[c] for c in cores], np.int64), crc)
        for column in (self.limits.object_size, self.born, self.limits.object_site, self.limits.object_flags):
            crc = self._put_padded(column[: self.limits.n_objects], crc)
        crc = self._put_strings(self.sites, crc)
        crc = self._put_strings(object_ids, crc, self.limits.n_objects)
        footer_length = self.file.tell() - footer_offset
        head = PREAMBLE.pack(MAGIC, FORMAT_VERSION, self.block_rows, self.n_events, footer_offset, footer_length, crc,
                             0)[:-4]
        try:
            self.file.seek(0)
        except OSError as e:
            raise UserError(f"cannot write: {e.strerror}", str(self.target)) from None
        self._put(head + struct.pack("<I", zlib.crc32(head)))

    def _put_strings(self, strings: Iterable[str], crc: int, count: int | None = None) -> int:
        """A string table: for the sites, offsets then bytes; for the object ids (``count`` of them,
        streamed), bytes then offsets (the footer's last section)."""
        if count is None:
            encoded = [s.encode() for s in strings]
            crc = self._put_padded(np.concatenate([[0], np.cumsum([len(e) for e in encoded], dtype=np.int64)]), crc)
            return self._put_padded(np.frombuffer(b"".join(encoded), np.uint8), crc)
        lengths = np.zeros(count + 1, np.int64)
        written = 0
        batch: list[bytes] = []
        for written, text in enumerate(strings, 1):
            if written > count:
                raise ValueError(f"more object ids than the {count} objects")
            batch.append(text.encode())
            lengths[written] = len(batch[-1])
            if len(batch) == 1 << 16:
                crc = self._put(b"".join(batch), crc)
                batch.clear()
        if written != count:
            raise ValueError(f"{written} object ids for {count} objects")
        crc = self._put(b"".join(batch), crc)
        total = int(lengths.sum())
        crc = self._put(bytes(-total % 8), crc)
        return self._put_padded(np.cumsum(lengths), crc)


def write_events(target: Path, display: str, chunks: Iterable[Events], name: str, *,
                 allocator: dict[str, Any] | None = None, objects: tuple = ((), (), ()), sites: list[str] = (),
                 object_ids: Iterable[str] = (), block_rows: int = BLOCK_ROWS) -> int:
    """Stream ``chunks`` into a binary trace at ``target``; return the number of events written.
    ``objects`` is (size, flags, site), arrays with one entry per object; ``object_ids`` their ids
    (read only once the events are written, so a generator stays cheap)."""
    size, flags, site = objects
    with atomic_file(target, "wb") as file:  # an error or Ctrl-C midway leaves an existing target as it was
        writer = BinaryWriter(file, Path(target), display, object_size=size, object_flags=flags, object_site=site,
                              sites=sites, block_rows=block_rows)
        for chunk in chunks:
            writer.write(chunk)
        writer.finish(name, allocator or {"model": "none"}, object_ids)
    return writer.n_events


def write_trace(trace: Trace, target: Path, chunks: Iterable[Events] | None = None,
                block_rows: int = BLOCK_ROWS) -> int:
    """Expand a loaded trace into a binary trace (objects, sites and allocator kept); ``chunks``,
    when given, are the trace's chunks as the caller iterates them (for progress)."""
    spec = trace.allocator
    allocator = {"model": "go", "version": spec.version, "gogc": spec.gogc} if spec.model == "go" else None
    if trace.objects is not None:
        table = trace.objects
        objects = (table.size, table.flags, table.site)
        ids = (table.name(i) for i in range(len(table)))
    else:
        counts = [a.count for a in trace.allocations]
        objects = (np.repeat([a.size for a in trace.allocations], counts).astype(np.int64),
                   np.repeat([FLAG_POINTERS if a.pointers else 0 for a in trace.allocations], counts).astype(np.uint8),
                   np.repeat([a.site for a in trace.allocations], counts).astype(np.int32))
        ids = (a.name(c) for a in trace.allocations for c in range(a.count))
    return write_events(target, trace.path, trace.chunks() if chunks is None else chunks, trace.name,
                        allocator=allocator, objects=objects, sites=trace.sites, object_ids=ids,
                        block_rows=block_rows)
