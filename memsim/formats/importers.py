"""Foreign memory traces — Valgrind lackey, DineroIV din, CSV — streamed into the event table.

Every record becomes one access to a raw address (``obj`` = NO_OBJECT, ``flags`` 0, ``site`` -1,
``src`` 0). Files are read in blocks and parsed by a small jitted kernel (one loop over the lines,
a line reader per format), so memory stays bounded whatever the file size; a file whose first two
bytes are the gzip magic (1f 8b) is decompressed on the fly, whatever its name. Lines end with LF
or CR LF (the last one may lack it); a "blank" is a space, a tab or a CR. A line longer than 64 KiB
is malformed (lackey: skipped when it does not start like a record).

**lackey** — the log of ``valgrind --tool=lackey --trace-mem=yes`` (Valgrind prints it to
``--log-file`` or to stderr). A record is a line that starts with one of the four prefixes lackey
writes, then a hexadecimal address (no ``0x``, 1 to 16 significant digits), a comma and a decimal
size, then nothing but blanks::

    I  04000b40,3        instruction fetch  -> ifetch
     L 1ffefffd78,8      load               -> read
     S 1ffefffd70,8      store              -> write
     M 0421f5c8,4        modify             -> rmw (a load and a store of the same bytes)

Every line that does not start with ``"I  "``, ``" L "``, ``" S "`` or ``" M "`` — Valgrind's
``==pid==`` banners, blank lines, the program's own output — is skipped (``skipped_lines``); a line
that starts with one of them but does not parse is malformed. Lackey prints no thread: core 0.

**din** — DineroIV's two text forms (``-informat d`` and ``-informat D`` in Dinero IV's sources);
the form is decided by the first record and reported in ``ImportStats.variant``; a later line in the
other form is malformed. Blanks may lead a line; blank lines are skipped; after the last field the
rest of a line is a comment.

- ``classic`` (Dinero III's din): ``LABEL ADDRESS``, a one-digit label, a blank, a hexadecimal
  address (an optional ``0x``). Labels: 0 read, 1 write, 2 instruction fetch; 3 and 4 are Dinero
  III's escape records (an access of unknown type, a cache flush) and 5 Dinero IV's invalidate —
  skipped without reading the rest of their line, memsim having nothing to replay for them. A
  classic record names no size: as in Dinero IV's
  reader, it is the 4-byte word holding the address (the address rounded down to a multiple of 4,
  size 4), so a din trace gives the accesses Dinero simulates.
- ``extended`` (Dinero IV's own): ``TYPE ADDRESS SIZE``, a one-letter type (either case), a blank,
  a hexadecimal address and a **hexadecimal** size, each with an optional ``0x``. Types: ``r`` read,
  ``w`` write, ``i`` instruction fetch, ``m`` miscellaneous (Dinero IV: a read that triggers no
  prefetch; memsim has no prefetcher, so a read); ``c`` copy-back and ``v`` invalidate are skipped
  without reading the rest of their line. The size is required, as in Dinero IV.

din names no core: core 0.

**csv** — a header line, then one record per line. The header (the first non-blank line; a UTF-8
byte-order mark is ignored) names the columns, in any order, case-insensitively: ``op``, ``addr``
and ``size`` are required, ``core`` is optional (absent: core 0); any other name is an error. Each
record has exactly one field per column, separated by commas; a field may be surrounded by blanks
and by double quotes (no commas or quotes inside). ``op`` is ``read``, ``write``, ``rmw`` or
``ifetch`` (any case); numbers are decimal or ``0x``-hexadecimal. Blank lines are skipped.

Numbers, in every format: size >= 1; addr + size <= 2^63 - 1 (``MAX_ADDRESS``); 0 <= core < 2^31.

Malformed lines raise ``UserError`` at ``display:line:column`` (column of the offending field, in
characters, from 1) saying what was found and what is allowed; with ``skip_bad_lines`` they are
skipped, counted in ``ImportStats.bad_lines``, and the first one is kept, formatted, in
``first_bad``. A file that yields no record at all is an error.
"""
from __future__ import annotations

import dataclasses
import gzip
import queue
import threading
import zlib
from contextlib import ExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from memsim.errors import UserError
from memsim.formats.yamlpos import suggest
from memsim.trace.events import COLUMNS, MAX_ADDRESS, NO_OBJECT, OP_IFETCH, OP_READ, OP_RMW, OP_WRITE, Events

FORMATS = ("lackey", "din", "csv")  # the project's YAML is handled elsewhere
_LACKEY, _DIN, _CSV = range(len(FORMATS))  # how the kernel is told the format: its index in FORMATS
EXTENSIONS = {".lackey": "lackey", ".lackey.txt": "lackey", ".din": "din", ".csv": "csv"}

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
BLANKS = " \t\r"
BLOCK_BYTES = 4 << 20  # per-block Python work vanishes next to the parsing; a few blocks are all an import holds
MAX_LINE_BYTES = 64 << 10  # bounds the memory held for one line (a file without newlines is not a trace)

# The kernel's status vector: progress, counters and the malformed line to report. Kept in one
# int64 array that lives for the whole file, so a kernel call costs no allocation.
S_POS, S_LINE, S_SKIPPED, S_BAD, S_STOP, S_CODE, S_ERR_LINE, S_ERR_POS, S_ERR_COL = range(9)
S_ERR_ADDR, S_ERR_SIZE, S_ERR_FIELD, S_MAX_CORE, S_VARIANT, S_FIRST_RECORD_LINE, N_STATUS = range(9, 16)

# Why a line is malformed (S_CODE).
(E_ADDR, E_ADDR_BIG, E_COMMA, E_SIZE, E_SIZE_BIG, E_SIZE_ZERO, E_END_BIG, E_TRAILING, E_LABEL, E_MIXED,
 E_OP, E_NUMBER, E_CORE_BIG, E_QUOTE, E_FEW_FIELDS, E_MANY_FIELDS, E_LONG) = range(1, 18)

DIN_CLASSIC, DIN_EXTENDED = 1, 2  # S_VARIANT; 0 until the first record
DIN_VARIANTS = {DIN_CLASSIC: "classic", DIN_EXTENDED: "extended"}

CSV_CORE, CSV_OP, CSV_ADDR, CSV_SIZE = range(4)  # what a CSV column holds
CSV_COLUMNS = ("core", "op", "addr", "size")
CSV_REQUIRED = ("op", "addr", "size")

LACKEY_PREFIXES = (b"I  ", b" L ", b" S ", b" M ")
MAX_CORE = 2**31 - 1
_DEC_LIMIT = MAX_ADDRESS // 10  # a decimal number above this cannot take another digit
_HEX_LIMIT = 1 << 59  # nor a hexadecimal one at or above this


def detect_format(path: Path) -> str | None:
    """The format named by the file's extension (ignoring a trailing ``.gz``), or None."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    for extension, fmt in EXTENSIONS.items():
        if name.endswith(extension):
            return fmt
    return None


@dataclass
class ImportStats:
    """Filled in while the records stream; complete when the iterator is exhausted."""

    records: int = 0  # events produced
    skipped_lines: int = 0  # lines the format says are not records (banners, blank lines, escape records)
    bad_lines: int = 0  # malformed lines skipped because skip_bad_lines=True
    first_bad: str | None = None  # "file:line:column: message" of the first of them
    variant: str | None = None  # din: "classic" or "extended"; others None
    cores: int = 1  # 1 + the largest core number seen
    # Bytes of the file read so far, as stored (compressed, for a gzip file): the file's size once
    # the iterator is exhausted. It moves as each block is read, ahead of the records parsed, and
    # is what a progress bar follows. Not compared: a plain file and its gzip give equal stats.
    bytes_read: int = dataclasses.field(default=0, compare=False)


def read_records(path: Path, fmt: str, *, skip_bad_lines: bool = False, chunk_events: int = 1 << 20,
                 display: str | None = None, stats: ImportStats | None = None,
                 block_bytes: int = BLOCK_BYTES) -> Iterator[Events]:
    """Stream ``path`` in format ``fmt`` as chunks of at most ``chunk_events`` access events.

    ``display`` names the file in messages (default: the path as given). ``block_bytes`` is how much
    is read and parsed at a time; any value gives the same events (the tests make it tiny).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown trace format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if chunk_events < 1 or block_bytes < 1:
        raise ValueError("chunk_events and block_bytes must be at least 1")
    source = _Source(fmt, display if display is not None else str(path), skip_bad_lines,
                     stats if stats is not None else ImportStats())
    with ExitStack() as stack:
        file, stream = _open(Path(path), source.display, stack)
        yield from source.scan(file, stream, chunk_events, block_bytes)


def _open(path: Path, display: str, stack: ExitStack) -> tuple[BinaryIO, BinaryIO]:
    """The file, and the stream of its text: the file itself, or a decompressor reading it."""
    try:
        file = stack.enter_context(open(path, "rb"))
    except OSError as e:
        raise UserError(f"cannot read the trace: {e.strerror}", display) from None
    if file.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)] == GZIP_MAGIC:
        return file, stack.enter_context(gzip.GzipFile(fileobj=file, mode="rb"))
    return file, file


class _Source:
    """One file being imported: its format, its status vector and how its problems are told."""

    def __init__(self, fmt: str, display: str, skip_bad_lines: bool, stats: ImportStats):
        self.fmt = fmt
        self.display = display
        self.skip = skip_bad_lines
        self.stats = stats
        for field in fields(stats):  # a stats object handed to a second read starts afresh
            setattr(stats, field.name, field.default)
        self.status = np.zeros(N_STATUS, np.int64)
        self.status[S_LINE] = 1
        self.csv_names: list[str] = []  # the CSV header's column names, in file order

    # -- reading -------------------------------------------------------------------------------

    def scan(self, file: BinaryIO, stream: BinaryIO, chunk_events: int, block_bytes: int) -> Iterator[Events]:
        """``stream`` is the text of ``file`` (the same object, or a decompressor reading it)."""
        kernels = _kernels()
        roles = self._read_csv_header(stream) if self.fmt == "csv" else np.zeros(0, np.int64)
        reader = _ReadAhead(file, stream, block_bytes, self.display)
        try:
            yield from self._parse(reader, kernels["lines"][FORMATS.index(self.fmt)], kernels["last_newline"], roles,
                                   chunk_events, block_bytes)
        finally:
            reader.close()
        if self.stats.records == 0:
            raise UserError(self._no_records(), self.display)

    def _parse(self, reader: _ReadAhead, kernel, last_newline, roles: np.ndarray, chunk_events: int,
               block_bytes: int) -> Iterator[Events]:
        st = self.status
        buf = np.empty(block_bytes + MAX_LINE_BYTES + 1, np.uint8)  # + 1: the newline a last line may lack
        view = memoryview(buf)
        held = 0  # bytes of an unfinished line kept at the front of buf
        dropping = False  # inside an overlong line, reading on to its end
        chunk = _Chunk(chunk_events)
        while True:
            block, self.stats.bytes_read = reader.next_block()
            at_end = len(block) < block_bytes
            end = held + len(block)
            buf[held:end] = np.frombuffer(block, np.uint8)
            start = 0
            if dropping:
                newline = _find_newline(buf, 0, end)
                if newline < 0:
                    if at_end:
                        st[S_LINE] += 1
                        break
                    continue
                dropping = False
                st[S_LINE] += 1
                start = newline + 1
            if at_end and end > start and buf[end - 1] != ord("\n"):
                buf[end] = ord("\n")
                end += 1
            last = last_newline(buf, start, end)
            complete = last + 1 if last >= start else start  # the kernel parses whole lines only
            pos = start
            while True:
                chunk.n = kernel(buf, pos, complete, chunk.op, chunk.core, chunk.size, chunk.addr, chunk.n, self.skip,
                                 st, roles)
                pos = int(st[S_POS])
                self._check(view, end)
                if chunk.n < chunk_events:
                    break
                yield self._emit(chunk)
                chunk = _Chunk(chunk_events)
            held = end - pos
            if held > MAX_LINE_BYTES:
                self._overlong(bytes(view[pos:pos + 3]))
                dropping, held = True, 0
            else:
                buf[:held] = buf[pos:end]
            if at_end:
                break
        if chunk.n:
            yield self._emit(chunk)

    def _emit(self, chunk: _Chunk) -> Events:
        events = chunk.events()
        self.stats.records += len(events)
        return events

    def _check(self, view: memoryview, end: int) -> None:
        """Bring the stats up to date after a kernel call; raise the malformed line it stopped at."""
        st, stats = self.status, self.stats
        stats.skipped_lines = int(st[S_SKIPPED])
        stats.bad_lines = int(st[S_BAD])
        stats.cores = int(st[S_MAX_CORE]) + 1
        stats.variant = DIN_VARIANTS.get(int(st[S_VARIANT])) if self.fmt == "din" else None
        if st[S_STOP]:
            raise UserError(*self._malformed(view, end))
        if stats.bad_lines and stats.first_bad is None:  # the first one was found by this very call
            message, where = self._malformed(view, end)
            stats.first_bad = f"{where}: {message}"

    def _overlong(self, head: bytes) -> None:
        """The unfinished line in the buffer is already too long to be a record."""
        st = self.status
        if self.fmt == "lackey" and not head.startswith(LACKEY_PREFIXES):
            st[S_SKIPPED] += 1
            self.stats.skipped_lines = int(st[S_SKIPPED])
            return
        message, where = self._explain(E_LONG, ""), f"{self.display}:{st[S_LINE]}:1"
        if not self.skip:
            raise UserError(message, where)
        st[S_BAD] += 1
        self.stats.bad_lines = int(st[S_BAD])
        if self.stats.first_bad is None:
            self.stats.first_bad = f"{where}: {message}"

    def _read_csv_header(self, stream: BinaryIO) -> np.ndarray:
        """Read up to the header line; return what each column holds (CSV_CORE ...)."""
        st = self.status
        line = 0
        while True:
            try:
                raw = stream.readline(MAX_LINE_BYTES + 1)
            except (OSError, EOFError, zlib.error) as e:
                raise UserError(f"cannot read the trace: {e}", self.display) from None
            line += 1
            if not raw:
                raise UserError("the file is empty: a CSV trace starts with a header line naming its columns "
                                f"({', '.join(CSV_COLUMNS)})", self.display)
            if line == 1 and raw.startswith(UTF8_BOM):
                raw = raw[len(UTF8_BOM):]
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise UserError(f"the header line is longer than {MAX_LINE_BYTES // 1024} KiB",
                                f"{self.display}:{line}:1")
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if text.strip(BLANKS):
                break
            st[S_SKIPPED] += 1
        st[S_LINE] = line + 1
        roles = []
        column = 0
        for field in text.split(","):
            name = field.strip(BLANKS).strip('"').strip(BLANKS).lower()
            indent = len(field) - len(field.lstrip(BLANKS))
            where = f"{self.display}:{line}:{column + indent + 1}"
            if name not in CSV_COLUMNS:
                shown = f"column {name!r}" if name else "an empty column name"
                raise UserError(f"the header names {shown}{suggest(name, CSV_COLUMNS)}", where)
            if name in self.csv_names:
                raise UserError(f"the header names column {name!r} twice", where)
            self.csv_names.append(name)
            roles.append(CSV_COLUMNS.index(name))
            column += len(field) + 1
        missing = [name for name in CSV_REQUIRED if name not in self.csv_names]
        if missing:
            raise UserError(
                f"the header has no {' or '.join(repr(m) for m in missing)} column: a CSV trace needs op, addr "
                f"and size (core is optional, default 0); found {', '.join(self.csv_names)}",
                f"{self.display}:{line}:1")
        return np.array(roles, np.int64)

    # -- messages ------------------------------------------------------------------------------

    def _malformed(self, view: memoryview, end: int) -> tuple[str, str]:
        """The message and ``file:line:column`` of the line the status vector points at."""
        st = self.status
        start = int(st[S_ERR_POS])
        raw = bytes(view[start:end])
        raw = raw[: raw.find(b"\n")].rstrip(b"\r")
        column = int(st[S_ERR_COL])
        text = raw.decode("utf-8", "replace")
        char_column = len(raw[:column].decode("utf-8", "replace")) + 1
        message = self._explain(int(st[S_CODE]), text[char_column - 1:])
        return message, f"{self.display}:{st[S_ERR_LINE]}:{char_column}"

    def _explain(self, code: int, rest: str) -> str:
        """Say what is wrong with a line, ``rest`` being the line from the offending column on."""
        st = self.status
        found = _found(rest, "," if self.fmt == "csv" else ", \t")
        column = CSV_COLUMNS[st[S_ERR_FIELD]] if self.fmt == "csv" else ""
        example = {"lackey": "a lackey record reads e.g. ' L 1ffefffd78,8'",
                   "din": "a din record reads e.g. '0 7fff5a3c' or 'r 7fff5a3c 8'",
                   "csv": f"the header names {len(self.csv_names)} columns: {', '.join(self.csv_names)}"}[self.fmt]
        hexadecimal = "a hexadecimal number" + (" without 0x" if self.fmt == "lackey" else " (0x optional)")
        largest = f"memsim's largest address 2^63-1 (0x{MAX_ADDRESS:x})"
        if code == E_ADDR:
            return f"expected an address, {hexadecimal}; found {found} ({example})"
        if code == E_ADDR_BIG:
            return f"the address {found} is past {largest}"
        if code == E_COMMA:
            return f"expected ',' between the address and the size, found {found} ({example})"
        if code == E_SIZE:
            if self.fmt == "lackey":
                return f"expected a size, a decimal number; found {found} ({example})"
            return f"expected a size, {hexadecimal}, which an extended din record needs; found {found} ({example})"
        if code == E_SIZE_BIG:
            return f"the size {found} is past {largest}"
        if code == E_SIZE_ZERO:
            return "the size is 0: an access touches at least 1 byte"
        if code == E_END_BIG:
            return f"the access of {st[S_ERR_SIZE]} byte(s) at 0x{st[S_ERR_ADDR]:x} ends past {largest}"
        if code == E_TRAILING:
            return f"unexpected text after the size: {found} ({example})"
        if code == E_LABEL:
            classic = "a label 0 (read), 1 (write), 2 (instruction fetch) or 3-5 (escape records, skipped)"
            extended = "a type r (read), w (write), i (instruction fetch), m (read), c or v (skipped)"
            allowed = {0: f"{classic}, or {extended}", DIN_CLASSIC: classic, DIN_EXTENDED: extended}
            return f"expected {allowed[int(st[S_VARIANT])]}, then a blank; found {found}"
        if code == E_MIXED:
            forms = {DIN_CLASSIC: "classic form (numeric labels, e.g. '0 7fff5a3c')",
                     DIN_EXTENDED: "extended form (letter types, e.g. 'r 7fff5a3c 8')"}
            first = int(st[S_VARIANT])
            return (f"this record is in din's {forms[DIN_CLASSIC + DIN_EXTENDED - first]}, but the file's first "
                    f"record (line {st[S_FIRST_RECORD_LINE]}) is in the {forms[first]}; a file uses one form")
        if code == E_OP:
            return f"op must be read, write, rmw or ifetch; found {found}"
        if code == E_NUMBER:
            return f"{column} must be a non-negative integer, decimal or 0x-hexadecimal; found {found}"
        if code == E_CORE_BIG:
            return f"the core {found} is too large: cores go from 0 to 2^31-1"
        if code == E_QUOTE:
            return f"expected the closing '\"' of the {column} field, found {repr(rest[0]) if rest else found}"
        if code == E_FEW_FIELDS:
            return f"the line ends after {st[S_ERR_FIELD]} field(s); {example}"
        if code == E_MANY_FIELDS:
            return f"the line has more fields than the header; {example}"
        assert code == E_LONG, code
        return f"the line is longer than {MAX_LINE_BYTES // 1024} KiB: it is no {self.fmt} record"

    def _no_records(self) -> str:
        stats = self.stats
        counts = f"{stats.skipped_lines} line(s) skipped as not records"
        if stats.bad_lines:
            counts += f", {stats.bad_lines} malformed (first: {stats.first_bad})"
        hint = {"lackey": "is this the log of 'valgrind --tool=lackey --trace-mem=yes'?",
                "din": "a din record is e.g. '0 7fff5a3c' or 'r 7fff5a3c 8'",
                "csv": "records follow the header, one per line"}[self.fmt]
        return f"the file holds no {self.fmt} record ({counts}); {hint}"


class _ReadAhead:
    """Reads (and decompresses) the next blocks of ``stream``, the text of ``file``, on a thread
    while the kernel parses the current one: zlib and the kernel release the GIL, so the two
    overlap on two cores. At most ``DEPTH`` blocks wait, so memory stays bounded."""

    DEPTH = 2

    def __init__(self, file: BinaryIO, stream: BinaryIO, block_bytes: int, display: str):
        self._queue: queue.Queue = queue.Queue(self.DEPTH)
        self._stop = threading.Event()
        self._display = display
        self._thread = threading.Thread(target=self._run, args=(file, stream, block_bytes), daemon=True)
        self._thread.start()

    def _run(self, file: BinaryIO, stream: BinaryIO, block_bytes: int) -> None:
        try:
            while not self._stop.is_set():
                block = stream.read(block_bytes)
                # where the file stands now, asked here: this thread is the one moving it
                self._put((block, file.tell()))
                if len(block) < block_bytes:
                    return
        except Exception as e:  # raised in the parsing thread, where the caller can catch it
            self._put(e)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                pass

    def next_block(self) -> tuple[bytes, int]:
        """The next block, and how many bytes of the file had been read once it was."""
        item = self._queue.get()
        if isinstance(item, (OSError, EOFError, zlib.error)):
            raise UserError(f"cannot read the trace: {item}", self._display) from None
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class _Chunk:
    """The columns one kernel call fills; fresh arrays per chunk, as the consumer may keep them."""

    def __init__(self, capacity: int):
        self.op = np.empty(capacity, COLUMNS["op"])
        self.core = np.empty(capacity, COLUMNS["core"])
        self.size = np.empty(capacity, COLUMNS["size"])
        self.addr = np.empty(capacity, COLUMNS["addr"])
        self.n = 0

    def events(self) -> Events:
        n = self.n
        return Events(op=self.op[:n], core=self.core[:n], size=self.size[:n],
                      obj=np.full(n, NO_OBJECT, COLUMNS["obj"]), addr=self.addr[:n],
                      flags=np.zeros(n, COLUMNS["flags"]), site=np.full(n, -1, COLUMNS["site"]),
                      src=np.zeros(n, COLUMNS["src"]))


def _found(rest: str, stops: str) -> str:
    """How an error message shows the text at the offending column: up to the first of ``stops``."""
    if not rest:
        return "the end of the line"
    token = rest
    for stop in stops:
        token = token.split(stop, 1)[0]
    token = token.rstrip(BLANKS)
    if not token:
        return "an empty field" if rest[0] == "," else repr(rest[0])
    return repr(token if len(token) <= 24 else token[:24] + "...")


def _find_newline(buf: np.ndarray, start: int, end: int) -> int:
    hits = np.flatnonzero(buf[start:end] == ord("\n"))
    return start + int(hits[0]) if len(hits) else -1


# -- kernels ------------------------------------------------------------------------------------
# Plain functions jitted on first use (numba is slow to import). The kernel parses the lines of
# buf[pos:end], which ends with a newline, into the chunk's columns from index n until the chunk is
# full, and returns the new n; the status vector carries the position and line reached, the
# counters, and the malformed line that stopped it. Every line ends with a newline, which is
# neither a blank nor a digit, so the scans stop at it without checking ``end``: one pass per line.

_SPACE, _TAB, _CR, _NL, _COMMA, _QUOTE = 32, 9, 13, 10, 44, 34
_HEX_VALUE = np.full(256, -1, np.int64)  # a table: branching on digit or letter mispredicts
_HEX_VALUE[np.frombuffer(b"0123456789abcdefABCDEF", np.uint8)] = list(range(16)) + list(range(10, 16))


def _last_newline(buf, start, end):
    """The index of the last newline in buf[start:end], or -1."""
    i = end - 1
    while i >= start and buf[i] != _NL:
        i -= 1
    return i


def _is_blank(c):
    return c == _SPACE or c == _TAB or c == _CR


def _skip_blanks(buf, i):
    while _is_blank(buf[i]):
        i += 1
    return i


def _line_end(buf, i):
    while buf[i] != _NL:
        i += 1
    return i


def _skip_0x(buf, i):
    if buf[i] == 48 and (buf[i + 1] | 32) == 120:
        return i + 2
    return i


def _hex_digits(buf, i):
    """The hexadecimal number at buf[i:]: (value, index after its digits, too large for memsim)."""
    value = 0
    too_big = False
    digit = _HEX_VALUE[buf[i]]
    while digit >= 0:
        if value >= _HEX_LIMIT:
            too_big = True
        else:
            value = value * 16 + digit
        i += 1
        digit = _HEX_VALUE[buf[i]]
    return value, i, too_big


def _decimal_digits(buf, i):
    """The decimal number at buf[i:]: (value, index after its digits, too large for memsim)."""
    value = 0
    too_big = False
    while 48 <= buf[i] <= 57:
        digit = int(buf[i]) - 48  # int: NumPy would keep the uint8 of buf (without the JIT)
        if value > _DEC_LIMIT or (value == _DEC_LIMIT and digit > MAX_ADDRESS % 10):
            too_big = True
        else:
            value = value * 10 + digit
        i += 1
    return value, i, too_big


def _reject(st, skip, code, line, line_start, column, addr, size, field):
    """Note a malformed line; True when the kernel must stop at it (skip_bad_lines is off)."""
    if not skip or st[S_BAD] == 0:
        st[S_CODE] = code
        st[S_ERR_LINE] = line
        st[S_ERR_POS] = line_start
        st[S_ERR_COL] = column
        st[S_ERR_ADDR] = addr
        st[S_ERR_SIZE] = size
        st[S_ERR_FIELD] = field
    if not skip:
        st[S_STOP] = 1
        st[S_POS] = line_start
        st[S_LINE] = line
        return True
    st[S_BAD] += 1
    return False


def _parse_lines(fmt, buf, pos, end, op, core, size, addr, n, skip, st, roles):
    """The kernel's loop: every format's lines go through it, each line read by the format's line
    reader (``fmt``: _LACKEY, _DIN or _CSV; ``roles``, the CSV columns, is empty for the others).
    Each format has its own kernel (``_parse_lackey`` ...), this loop inlined with ``fmt`` a
    constant: the other formats' readers are left out when it compiles."""
    line = st[S_LINE]
    while n < len(op) and pos < end:
        if fmt == _LACKEY:
            kind, code, column, field, number, a, nbytes, i = _lackey_line(buf, pos)
        elif fmt == _DIN:
            kind, code, column, field, number, a, nbytes, i = _din_line(buf, pos, st, line)
        else:
            kind, code, column, field, number, a, nbytes, i = _csv_line(buf, pos, roles)
        eol = _line_end(buf, i)
        if eol - pos > MAX_LINE_BYTES and kind != _NOT_A_RECORD_HOWEVER_LONG:
            code, column = E_LONG, 0
        if code != 0:
            if _reject(st, skip, code, line, pos, column, a, nbytes, field):
                return n
        elif kind < 0:
            st[S_SKIPPED] += 1
        else:
            op[n] = kind
            core[n] = number
            size[n] = nbytes
            addr[n] = a
            st[S_MAX_CORE] = max(st[S_MAX_CORE], number)
            n += 1
        pos = eol + 1
        line += 1
    st[S_POS] = pos
    st[S_LINE] = line
    return n


def _parse_lackey(buf, pos, end, op, core, size, addr, n, skip, st, roles):
    return _parse_lines(_LACKEY, buf, pos, end, op, core, size, addr, n, skip, st, roles)


def _parse_din(buf, pos, end, op, core, size, addr, n, skip, st, roles):
    return _parse_lines(_DIN, buf, pos, end, op, core, size, addr, n, skip, st, roles)


def _parse_csv(buf, pos, end, op, core, size, addr, n, skip, st, roles):
    return _parse_lines(_CSV, buf, pos, end, op, core, size, addr, n, skip, st, roles)


# A line reader reads the line at buf[pos] and returns (kind, code, column, field, core, addr,
# size, i): ``kind`` is the record's op, or _NOT_A_RECORD(_HOWEVER_LONG) for a line the format
# skips; ``code`` is 0, or why the line is malformed, ``column`` (bytes from the line's start) and
# ``field`` (the CSV column's role) saying where; ``core``, ``addr`` and ``size`` are the record's;
# ``i`` is a place on the line from which its end is found.
_NOT_A_RECORD = -1  # skipped, as the format says (blank lines, escape records); a long one is malformed
_NOT_A_RECORD_HOWEVER_LONG = -2  # lackey: a line that does not start like a record is someone else's output


def _lackey_line(buf, pos):
    kind = _NOT_A_RECORD_HOWEVER_LONG
    if buf[pos] == 73:  # "I  "
        if buf[pos + 1] == _SPACE and buf[pos + 2] == _SPACE:
            kind = OP_IFETCH
    elif buf[pos] == _SPACE:
        c = buf[pos + 1]
        if c == 76 or c == 83 or c == 77:  # " L ", " S ", " M "
            if buf[pos + 2] == _SPACE:
                kind = OP_READ if c == 76 else (OP_WRITE if c == 83 else OP_RMW)
    if kind < 0:
        return kind, 0, 0, 0, 0, 0, 0, pos
    code = 0
    column = 3
    nbytes = 0
    a, i, too_big = _hex_digits(buf, pos + 3)
    if i == pos + 3:
        code = E_ADDR
    elif too_big:
        code = E_ADDR_BIG
    elif buf[i] != _COMMA:
        code, column = E_COMMA, i - pos
    else:
        column = i + 1 - pos
        nbytes, j, too_big = _decimal_digits(buf, i + 1)
        if j == i + 1:
            code = E_SIZE
        elif too_big:
            code = E_SIZE_BIG
        elif nbytes == 0:
            code = E_SIZE_ZERO
        elif a > MAX_ADDRESS - nbytes:
            code = E_END_BIG
        else:
            i = _skip_blanks(buf, j)
            if buf[i] != _NL:
                code, column = E_TRAILING, i - pos
    return kind, code, column, 0, 0, a, nbytes, i


def _din_line(buf, pos, st, line):
    """``line`` is the line's number: the first record's is kept, for the message about a file
    that mixes din's two forms."""
    i = _skip_blanks(buf, pos)
    if buf[i] == _NL:
        return _NOT_A_RECORD, 0, 0, 0, 0, 0, 0, i
    c = buf[i]
    lower = c | 32
    form = 0  # 0: neither form's label
    kind = _NOT_A_RECORD  # unless a label names an access: the others are escape records
    if 48 <= c <= 57:
        form = DIN_CLASSIC
        if c == 48:
            kind = OP_READ
        elif c == 49:
            kind = OP_WRITE
        elif c == 50:
            kind = OP_IFETCH
        elif c > 53:  # labels 3-5 are escape records, 6-9 nothing
            form = 0
    elif lower == 114 or lower == 109:  # r, m
        form, kind = DIN_EXTENDED, OP_READ
    elif lower == 119:  # w
        form, kind = DIN_EXTENDED, OP_WRITE
    elif lower == 105:  # i
        form, kind = DIN_EXTENDED, OP_IFETCH
    elif lower == 99 or lower == 118:  # c, v
        form = DIN_EXTENDED
    code = 0
    column = i - pos
    a = 0
    nbytes = 0
    if form == 0 or not (_is_blank(buf[i + 1]) or buf[i + 1] == _NL):
        code = E_LABEL
    elif st[S_VARIANT] == 0:
        st[S_VARIANT] = form
        st[S_FIRST_RECORD_LINE] = line
    elif st[S_VARIANT] != form:
        code = E_MIXED
    if code == 0 and kind >= 0:
        i = _skip_blanks(buf, i + 1)
        column = i - pos
        # the address and the size are read alike, but a helper for both costs 10% of the speed
        digits = _skip_0x(buf, i)
        a, i, too_big = _hex_digits(buf, digits)
        if i == digits or not (_is_blank(buf[i]) or buf[i] == _NL):
            code = E_ADDR
        elif too_big:
            code = E_ADDR_BIG
        elif form == DIN_CLASSIC:
            a -= a % 4
            nbytes = 4
        else:
            i = _skip_blanks(buf, i)
            column = i - pos
            digits = _skip_0x(buf, i)
            nbytes, i, too_big = _hex_digits(buf, digits)
            if i == digits or not (_is_blank(buf[i]) or buf[i] == _NL):
                code = E_SIZE
            elif too_big:
                code = E_SIZE_BIG
            elif nbytes == 0:
                code = E_SIZE_ZERO
        if code == 0 and a > MAX_ADDRESS - nbytes:
            code = E_END_BIG
    return kind, code, column, 0, 0, a, nbytes, i


def _csv_op(buf, start, stop):
    """The op named by buf[start:stop] (any case), or -1."""
    length = stop - start
    if length == 4 and (buf[start] | 32) == 114 and (buf[start + 1] | 32) == 101 \
            and (buf[start + 2] | 32) == 97 and (buf[start + 3] | 32) == 100:
        return OP_READ
    if length == 5 and (buf[start] | 32) == 119 and (buf[start + 1] | 32) == 114 \
            and (buf[start + 2] | 32) == 105 and (buf[start + 3] | 32) == 116 and (buf[start + 4] | 32) == 101:
        return OP_WRITE
    if length == 3 and (buf[start] | 32) == 114 and (buf[start + 1] | 32) == 109 and (buf[start + 2] | 32) == 119:
        return OP_RMW
    if length == 6 and (buf[start] | 32) == 105 and (buf[start + 1] | 32) == 102 \
            and (buf[start + 2] | 32) == 101 and (buf[start + 3] | 32) == 116 \
            and (buf[start + 4] | 32) == 99 and (buf[start + 5] | 32) == 104:
        return OP_IFETCH
    return -1


def _csv_line(buf, pos, roles):
    """``roles``: what each column of the header holds (CSV_OP ...)."""
    i = _skip_blanks(buf, pos)
    if buf[i] == _NL:
        return _NOT_A_RECORD, 0, 0, 0, 0, 0, 0, i
    n_fields = len(roles)
    code = 0
    column = 0
    role = 0
    a = nbytes = number = kind = 0
    size_column = core_column = 0
    f = 0
    while f < n_fields:
        role = roles[f]
        i = _skip_blanks(buf, i)
        quoted = buf[i] == _QUOTE
        if quoted:
            i += 1
        column = i - pos
        too_big = False
        if role == CSV_OP:
            start = i
            while buf[i] != _COMMA and buf[i] != _QUOTE and buf[i] != _NL and not _is_blank(buf[i]):
                i += 1
            value = _csv_op(buf, start, i)
            valid = value >= 0
        else:
            digits = _skip_0x(buf, i)
            if digits > i:
                value, i, too_big = _hex_digits(buf, digits)
            else:
                value, i, too_big = _decimal_digits(buf, digits)
            valid = i > digits
        if valid and quoted:
            if buf[i] != _QUOTE:
                code, column = E_QUOTE, i - pos
                break
            i += 1
        i = _skip_blanks(buf, i)
        last = f == n_fields - 1
        if not valid or (buf[i] != _COMMA and buf[i] != _NL):
            code = E_OP if role == CSV_OP else E_NUMBER
        elif buf[i] == _NL and not last:
            code, column, role = E_FEW_FIELDS, i - pos, f + 1  # role: how many fields the line has
        elif buf[i] == _COMMA and last:
            code, column = E_MANY_FIELDS, i - pos
        elif too_big:
            code = E_ADDR_BIG if role == CSV_ADDR else (E_SIZE_BIG if role == CSV_SIZE else E_CORE_BIG)
        if code != 0:
            break
        if role == CSV_OP:
            kind = value
        elif role == CSV_ADDR:
            a = value
        elif role == CSV_SIZE:
            nbytes, size_column = value, column
        else:
            number, core_column = value, column
        i += 1
        f += 1
    if code == 0:
        i -= 1  # back onto the newline
        if number > MAX_CORE:
            code, column, role = E_CORE_BIG, core_column, CSV_CORE
        elif nbytes == 0:
            code, column, role = E_SIZE_ZERO, size_column, CSV_SIZE
        elif a > MAX_ADDRESS - nbytes:
            code, column, role = E_END_BIG, size_column, CSV_SIZE
    return kind, code, column, role, number, a, nbytes, i


_KERNELS: dict | None = None
_HELPERS = (_last_newline, _is_blank, _skip_blanks, _line_end, _skip_0x, _hex_digits, _decimal_digits, _reject,
            _csv_op)
_LINE_READERS = (_lackey_line, _din_line, _csv_line)
_FORMAT_KERNELS = (_parse_lackey, _parse_din, _parse_csv)  # in the order of FORMATS


def _kernels() -> dict:
    """The jitted kernels (``"lines"``, one per format, in the order of FORMATS) and
    ``"last_newline"``, each compiled or loaded from Numba's cache on its first call."""
    global _KERNELS
    if _KERNELS is None:
        import numba

        from memsim.numba_cache import share_scopes_when_inlining

        share_scopes_when_inlining()
        jit = numba.njit(cache=True, nogil=True, error_model="numpy")  # nogil: parse while _ReadAhead reads
        # Numba finds a kernel's callees in the module's globals when it compiles the kernel, so
        # the helpers are replaced by their jitted selves first; those only kernels call get no
        # Python wrapper (Numba would build one for each, at compile time).
        callee = numba.njit(cache=True, nogil=True, error_model="numpy", no_cpython_wrapper=True)
        for helper in _HELPERS:
            globals()[helper.__name__] = (jit if helper is _last_newline else callee)(helper)
        # Inlined into the kernel's loop by Numba: called, the line readers made parsing 10-40%
        # slower than a loop written out per format; inlined, 4% (lackey, CSV) to 15% (din).
        for reader in (*_LINE_READERS, _parse_lines):
            globals()[reader.__name__] = numba.njit(inline="always")(reader)
        _KERNELS = {"lines": tuple(jit(kernel) for kernel in _FORMAT_KERNELS), "last_newline": globals()["_last_newline"]}
    return _KERNELS
