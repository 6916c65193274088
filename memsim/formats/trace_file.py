"""Trace files (YAML, format version 1, or a binary trace) -> ``Trace``.

A YAML trace becomes a lazily expanding program; its events may instead come from a binary file
(``events_file:``), and a binary file may be given directly (recognised by its magic bytes). See
docs/trace-format.md and docs/binary-format.md. Every error is a ``UserError`` naming
file:line:column, the key path, what was found and what is allowed.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memsim.errors import UserError
from memsim.formats import yamlpos as y
from memsim.formats.binary import BINARY_SUFFIX, StoredTrace, is_binary, read_binary
from memsim.models.goversions import NEWEST, resolve_version
from memsim.trace.events import (
    ACCESS_OPS,
    FLAG_POINTERS,
    MAX_ADDRESS,
    MAX_OBJECT_SIZE,
    OP_ALLOC,
    OP_FREE,
    OP_GC,
)
from memsim.trace.program import (
    SCHEDULES,
    TABLE_LIMIT,
    Allocation,
    AllocatorSpec,
    Node,
    Parallel,
    Random,
    Repeat,
    Sequence,
    Single,
    Sweep,
    Target,
    Trace,
    compact,
)
from memsim.trace.rng import MAX_SEED

FORMAT_VERSION = 1
MAX_EVENTS = 2**62  # global indices (and index + 1) must stay inside int64
MAX_CORE = 2**31 - 1
MAX_GOGC = 2**31 - 1  # Go reads GOGC into an int32
CLASH_SEARCH_LIMIT = 10**6  # two id templates are compared name by name up to this many names

TOP_KEYS = ("memsim", "name", "machine", "allocator", "events", "events_file")
EVENTS = ("read", "write", "rmw", "ifetch", "sweep", "random", "repeat", "parallel", "alloc", "free", "gc")
OBJECT_EVENTS = ("alloc", "free", "gc")  # these need the Go allocator
ADDR_KEYS = ("obj", "offset")  # an addressed event gives either `addr`, or `obj` and `offset`
MODELS = ("none", "go")


def load_trace(path: str | Path, display: str | None = None, table_limit: int = TABLE_LIMIT) -> Trace:
    """Read and validate a trace file: YAML, or a binary trace. ``display`` is the file name used
    in messages; ``table_limit`` (see ``program.compact``) only changes speed, never events (0 = no
    tables)."""
    path = Path(path)
    name_in_messages = display or str(path)
    if is_binary(path) or path.suffix == BINARY_SUFFIX:  # the suffix too, so a damaged magic is told as such
        stored = read_binary(path, name_in_messages, hasher := hashlib.sha256())
        return _stored_trace(stored, name_in_messages, hasher.hexdigest(), name=stored.name,
                             allocator=_stored_allocator(stored, name_in_messages))
    doc = y.load(path, name_in_messages)
    hasher = hashlib.sha256(path.read_bytes())
    if doc is None:
        raise UserError("the trace file is empty; expected a mapping with 'memsim: 1' and 'events'", name_in_messages)
    y.expect_mapping(doc, "a trace file", y.where(doc) or name_in_messages)
    _check_version(doc)
    if "events" not in doc and "events_file" not in doc and ("levels" in doc or "cores" in doc):
        raise UserError("this looks like a machine file, not a trace (it has no 'events')", y.where(doc))
    if "events" in doc and "events_file" in doc:
        raise UserError("the events are given twice: use 'events' (listed here) or 'events_file' (a binary trace), "
                        "not both", str(doc.key_marks["events_file"]))
    if "events_file" in doc:
        y.check_keys(doc, "", TOP_KEYS, required=("events_file",))
        return _with_events_file(doc, path, name_in_messages, hasher)
    y.check_keys(doc, "", TOP_KEYS, required=("events",))

    name = y.field(doc, "name", "", y.as_str, default=path.stem)
    sha = hasher.hexdigest()
    allocator = _allocator(doc)
    parser = _Parser(allocator.model, y.where(doc, "allocator") if "allocator" in doc else None)
    root = parser.events(doc, "events", "events", None)
    _check_count(root, "the trace", y.where(doc, "events"))
    allocations = parser.objects.resolve()
    return Trace(
        name=name,
        root=compact(root, table_limit),
        path=name_in_messages,
        machine_spec=doc.get("machine"),
        machine_where=y.where(doc, "machine") if "machine" in doc else None,
        base_dir=path.parent,
        allocator=allocator,
        sha256=sha,
        sources=parser.sources,
        core_uses=parser.core_uses,
        allocations=allocations,
        sites=list(parser.objects.sites),
    )


def _with_events_file(doc: y.YMap, path: Path, display: str, hasher) -> Trace:
    """A YAML trace whose events are the binary trace named by ``events_file`` (relative to the
    YAML); the YAML's name and allocator, when given, win over the binary file's."""
    relative = y.field(doc, "events_file", "", y.as_str)
    at = str(doc.key_marks["events_file"])
    events_path = path.parent / relative
    events_display = str(Path(display).parent / relative)
    if not events_path.is_file():
        why = "is a directory" if events_path.is_dir() else "does not exist"
        raise UserError(f"events_file {relative!r} {why} (the path is relative to this trace file)", at)
    if not is_binary(events_path):
        raise UserError(f"events_file {relative!r} is not a memsim binary trace (it does not start with the magic "
                        "bytes); convert a trace into one with `memsim convert`", at)
    stored = read_binary(events_path, events_display, hasher)
    allocator = _allocator(doc) if "allocator" in doc else _stored_allocator(stored, events_display)
    if allocator.model != "go" and len(stored.objects):
        raise UserError(f"events_file {relative!r} has {len(stored.objects)} objects, which need the Go allocator: "
                        "use 'allocator: go'", y.where(doc, "allocator") if "allocator" in doc else at)
    return _stored_trace(
        stored, events_display, hasher.hexdigest(), name=y.field(doc, "name", "", y.as_str, default=stored.name),
        base_dir=path.parent, allocator=allocator, path=display, machine_spec=doc.get("machine"),
        machine_where=y.where(doc, "machine") if "machine" in doc else None,
    )


def _stored_allocator(stored: StoredTrace, where: str) -> AllocatorSpec:
    """The allocator a binary trace was written for."""
    meta = stored.allocator
    if meta.get("model") == "none":
        return AllocatorSpec()
    if meta.get("model") != "go":
        raise UserError(f"the file's allocator model {meta.get('model')!r} is not known to this version of memsim "
                        f"(known: {', '.join(MODELS)})", where)
    try:
        go = resolve_version(str(meta.get("version")))
    except ValueError as e:
        raise UserError(f"the file's allocator: {e}", where) from None
    gogc = meta.get("gogc")
    if gogc is not None and (isinstance(gogc, bool) or not isinstance(gogc, int) or not 1 <= gogc <= MAX_GOGC):
        raise UserError(f"the file's allocator gogc {gogc!r} is not a percentage from 1 to {MAX_GOGC}", where)
    warning = f"{where}: {go.warning}" if go.warning else None
    return AllocatorSpec("go", go.version, go.generation, gogc, warning)


def _stored_trace(stored: StoredTrace, events_display: str, sha256: str, *, name: str,
                  allocator: AllocatorSpec, base_dir: Path = Path("."), path: str | None = None, machine_spec: Any = None,
                  machine_where: str | None = None) -> Trace:
    return Trace(
        name=name,
        root=stored.root,
        path=path or events_display,
        machine_spec=machine_spec,
        machine_where=machine_where,
        base_dir=base_dir,
        allocator=allocator,
        sha256=sha256,
        core_uses=[(core, f"{events_display}: event {first}") for core, first in stored.cores],
        sites=stored.sites,
        objects=stored.objects,
        events_file=events_display,
    )


def _check_version(doc: y.YMap) -> None:
    if "memsim" not in doc:
        raise UserError("missing key 'memsim': a trace file starts with 'memsim: 1' (the format version)", y.where(doc))
    version = y.as_int(doc["memsim"], "memsim (the format version)", y.where(doc, "memsim"))
    if version != FORMAT_VERSION:
        raise UserError(
            f"trace format version {version} is not supported: this version of memsim reads format "
            f"version {FORMAT_VERSION}",
            y.where(doc, "memsim"),
        )


def _allocator(doc: y.YMap) -> AllocatorSpec:
    """`none`, `go`, or `{model, version, gogc}`; absent means none (raw addresses only)."""
    if "allocator" not in doc:
        return AllocatorSpec()
    value, at = doc["allocator"], y.where(doc, "allocator")
    if isinstance(value, dict):
        y.check_keys(value, "allocator", ("model", "version", "gogc"), required=("model",))
        model = y.as_choice(value["model"], "allocator.model", y.where(value, "model"), MODELS)
    else:
        model, value = y.as_choice(value, "allocator", at, MODELS), {}
    if model == "none":
        if len(value) > 1:
            extra = next(k for k in value if k != "model")
            raise UserError(f"allocator.{extra} applies only to the go model", str(value.key_marks[extra]))
        return AllocatorSpec()
    version_at = y.where(value, "version")
    try:
        go = resolve_version(value.get("version", NEWEST))
    except ValueError as e:
        raise UserError(str(e), version_at) from None
    gogc = y.field(value, "gogc", "allocator", _as_gogc, default=None)
    warning = f"{version_at}: {go.warning}" if go.warning else None
    return AllocatorSpec("go", go.version, go.generation, gogc, warning)


def _as_gogc(value: Any, what: str, at: str | None) -> int | None:
    """GOGC: a percentage >= 1, or off (None). YAML reads a bare `off` as false."""
    if value is False or value == "off":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{what} must be an integer percentage (at least 1) or off, found {y.type_name(value)}", at)
    return y.as_int(value, what, at, minimum=1, maximum=MAX_GOGC)


def _check_count(node: Node, what: str, at: str | None) -> None:
    if node.n > MAX_EVENTS:
        raise UserError(f"{what} expands to {node.n} events, more than memsim can index (2^62)", at)


def _as_stride(value: Any, what: str, at: str | None) -> int:
    """A signed byte count: an integer, or a size with a unit and an optional leading '-'."""
    if isinstance(value, str) and value.strip().startswith("-"):
        size = y.parse_size(value.strip()[1:])
        if size is not None:
            return -size
    size = y.parse_size(value)
    if size is None:
        raise UserError(
            f"{what} must be a signed number of bytes (an integer, or a size such as 4KiB or -64), "
            f"found {y.type_name(value)}",
            at,
        )
    return size


class _Parser:
    def __init__(self, model: str, allocator_at: str | None) -> None:
        self.model, self.allocator_at = model, allocator_at
        self.sources: list[str] = []
        self.core_uses: list[tuple[int, str]] = []
        self.objects = _Objects()
        self.passes = 1  # how many times the event being parsed runs: the product of its enclosing repeats' times

    def events(self, parent: y.YMap, key: str, path: str, core: int | None) -> Sequence:
        """The non-empty event list ``parent[key]``."""
        items, at = parent[key], y.where(parent, key)
        if not isinstance(items, list):
            raise UserError(f"{path} must be a list of events, found {y.type_name(items)}", at)
        if not items:
            raise UserError(f"{path} must list at least one event", at)
        return Sequence([self.event(items, i, f"{path}[{i}]", core) for i in range(len(items))])

    def repeated(self, times: int, parent: y.YMap, key: str, path: str, core: int | None) -> Repeat:
        """``parent[key]``, an event list run ``times`` times."""
        outer = self.passes
        self.passes *= times
        body = self.events(parent, key, path, core)
        self.passes = outer
        return Repeat(times, body)

    def event(self, items: y.YList, i: int, path: str, core: int | None) -> Node:
        item, at = items[i], y.where(items, i)
        if not isinstance(item, dict):
            raise UserError(
                f"{path} must be an event (a mapping with one key, e.g. 'read: {{...}}'), found {y.type_name(item)}",
                at,
            )
        if len(item) != 1:
            if not item:
                raise UserError(f"{path} is empty: expected one event such as 'read: {{...}}'", at)
            second = list(item)[1]
            raise UserError(
                f"{path} has {len(item)} keys ({', '.join(map(str, item))}); an event is a mapping with "
                "exactly one key, its name (is a '-' missing?)",
                str(item.key_marks[second]),
            )
        (name,) = item
        name_at = str(item.key_marks[name])
        if name not in EVENTS:
            raise UserError(f"unknown event {name!r} at {path}{y.suggest(name, EVENTS)}", name_at)
        path = f"{path}.{name}"
        if name in OBJECT_EVENTS:
            self._needs_go(path, name_at)
        body = y.expect_mapping(item[name], path, y.where(item, name))
        src = len(self.sources)
        self.sources.append(at)
        node = getattr(self, "_" + ("access" if name in ACCESS_OPS else name))(body, path, core, src, name)
        _check_count(node, path, at)
        return node

    # -- fields ---------------------------------------------------------------------------------

    def _needs_go(self, path: str, at: str) -> None:
        if self.model != "go":
            why = f"the allocator at {self.allocator_at} is none" if self.allocator_at else (
                "without an 'allocator' key the allocator is none")
            raise UserError(f"{path} needs the Go allocator: add 'allocator: go' to the trace ({why})", at)

    def _core(self, body: y.YMap, path: str, inherited: int | None) -> int:
        if "core" not in body:
            if inherited is None:
                raise UserError(
                    f"missing key '{path}.core' (only what is inside a parallel thread may omit it and take "
                    "the thread's core)",
                    y.where(body),
                )
            return inherited
        at = y.where(body, "core")
        core = y.as_int(body["core"], f"{path}.core", at, minimum=0, maximum=MAX_CORE)
        self.core_uses.append((core, at))
        return core

    def _id(self, body: y.YMap, key: str, path: str) -> _Named:
        """The object id ``body[key]``; its ``{i}`` (if any) is this event's pass counter."""
        text = y.field(body, key, path, y.as_str)
        at = y.where(body, key)
        if not text:
            raise UserError(f"{path}.{key} must not be empty", at)
        rest = text.replace("{i}", "", 1)
        if "{" in rest or "}" in rest:
            raise UserError(
                f"{path}.{key} {text!r} may contain '{{i}}' (the repeat counter) once, and no other braces", at
            )
        return _Named(text, f"{path}.{key}", at, self.passes, Target(per_occurrence="{i}" in text))

    def _place(self, body: y.YMap, path: str, lo: int, hi: int, key: str) -> tuple[int, Target]:
        """Where an addressed event starts, and its object. Its bytes are ``[start + lo, start + hi)``,
        ``start`` being a raw ``addr``, or ``offset`` (default 0) inside object ``obj``; ``key`` is
        the field that sets the far end (errors about the extent point there)."""
        end_at = y.where(body, key)
        if "obj" not in body:
            if "offset" in body:
                raise UserError(
                    f"'{path}.offset' applies only with '{path}.obj' (an offset inside an object); a raw address "
                    "goes in 'addr'",
                    str(body.key_marks["offset"]),
                )
            if "addr" not in body:
                raise UserError(f"missing key '{path}.addr' (or 'obj', to access an object)", y.where(body))
            addr = y.field(body, "addr", path, y.as_size, minimum=0)
            if addr + lo < 0:
                raise UserError(f"{path} reaches below address 0 (lowest access at {addr + lo})", end_at)
            if addr + hi > MAX_ADDRESS:
                raise UserError(f"{path} reaches past the largest address 2^63-1 (it ends at {addr + hi})", end_at)
            return addr, Target()
        obj_at = str(body.key_marks["obj"])
        if "addr" in body:
            raise UserError(f"{path} has both 'addr' and 'obj': give a raw address or an object, not both", obj_at)
        self._needs_go(f"{path}.obj", obj_at)
        named = self._id(body, "obj", path)
        offset = y.field(body, "offset", path, y.as_size, default=0, minimum=0)
        if offset + lo < 0:
            raise UserError(
                f"{path} reaches below the start of object {named.text!r} (lowest access at offset {offset + lo})",
                end_at,
            )
        self.objects.uses.append((named, path, offset + hi, end_at))
        return offset, named.target

    def _op(self, body, path):
        return ACCESS_OPS[y.field(body, "op", path, y.as_choice, choices=tuple(ACCESS_OPS))]

    # -- events ---------------------------------------------------------------------------------

    def _access(self, body, path, core, src, name):
        y.check_keys(body, path, ("core", "addr", "size") + ADDR_KEYS, ("size",))
        core = self._core(body, path, core)
        size = y.field(body, "size", path, y.as_size)
        start, target = self._place(body, path, 0, size, "size")
        return Single(ACCESS_OPS[name], core, size, start, src, target)

    def _sweep(self, body, path, core, src, name):
        keys = ("core", "op", "addr", "stride", "count", "size")
        y.check_keys(body, path, keys + ADDR_KEYS, ("op", "count", "size"))
        core = self._core(body, path, core)
        op = self._op(body, path)
        size = y.field(body, "size", path, y.as_size)
        stride = y.field(body, "stride", path, _as_stride, default=size)
        count = y.field(body, "count", path, y.as_int, minimum=0)
        last = max(count - 1, 0) * stride  # the last access, relative to the first
        far = "stride" if "stride" in body else "count"
        start, target = self._place(body, path, min(0, last), max(0, last) + size, far)
        return Sweep(op, core, start, stride, count, size, src, target)

    def _random(self, body, path, core, src, name):
        keys = ("core", "op", "addr", "range", "count", "size", "align", "seed")
        y.check_keys(body, path, keys + ADDR_KEYS, ("op", "range", "count", "size", "seed"))
        core = self._core(body, path, core)
        op = self._op(body, path)
        size = y.field(body, "size", path, y.as_size)
        span = y.field(body, "range", path, y.as_size)
        align = y.field(body, "align", path, y.as_size, default=size)
        count = y.field(body, "count", path, y.as_int, minimum=0)
        seed = y.field(body, "seed", path, y.as_int, minimum=0, maximum=MAX_SEED)
        if span < size:
            raise UserError(
                f"{path}.range ({span}) is smaller than {path}.size ({size}): no access fits", y.where(body, "range")
            )
        start, target = self._place(body, path, 0, span, "range")
        return Random(op, core, start, span, count, size, align, seed, src, target)

    def _alloc(self, body, path, core, src, name):
        y.check_keys(body, path, ("id", "size", "core", "pointers", "site", "label"), ("id", "size"))
        named = self._id(body, "id", path)
        _once(named, "allocated", "put '{i}' in the id to allocate one object per pass")
        core = self._core(body, path, core)
        size = y.field(body, "size", path, y.as_size, minimum=0)
        if size > MAX_OBJECT_SIZE:
            raise UserError(f"{path}.size must be at most 2^40 (1 TiB), found {size}", y.where(body, "size"))
        pointers = y.field(body, "pointers", path, y.as_bool, default=False)
        site_name = y.field(body, "site", path, y.as_str, default=None)
        label = y.field(body, "label", path, y.as_str, default=None)
        site = -1 if site_name is None else self.objects.sites.setdefault(site_name, len(self.objects.sites))
        self.objects.allocs.append((named, dict(size=size, pointers=pointers, site=site, label=label,
                                                where=self.sources[src])))
        return Single(OP_ALLOC, core, size, 0, src, named.target, FLAG_POINTERS if pointers else 0, site)

    def _free(self, body, path, core, src, name):
        y.check_keys(body, path, ("id",), ("id",))
        named = self._id(body, "id", path)
        _once(named, "freed", "an object can be freed only once")
        self.objects.uses.append((named, path, None, None))
        return Single(OP_FREE, 0, 0, 0, src, named.target)

    def _gc(self, body, path, core, src, name):
        if body:
            raise UserError(f"{path} takes no fields (write 'gc: {{}}')", str(body.key_marks[next(iter(body))]))
        return Single(OP_GC, 0, 0, 0, src)

    def _repeat(self, body, path, core, src, name):
        y.check_keys(body, path, ("times", "do"), ("times", "do"))
        times = y.field(body, "times", path, y.as_int, minimum=0)
        return self.repeated(times, body, "do", f"{path}.do", core)

    def _parallel(self, body, path, core, src, name):
        y.check_keys(body, path, ("schedule", "seed", "chunk", "threads"), ("threads",))
        schedule = y.field(body, "schedule", path, y.as_choice, default="round-robin", choices=SCHEDULES)
        sched_at = y.where(body, "schedule")
        needs = {"random": "seed", "chunk": "chunk"}
        for key in ("seed", "chunk"):
            if key in body and needs.get(schedule) != key:
                raise UserError(
                    f"'{path}.{key}' applies only to 'schedule: {'random' if key == 'seed' else 'chunk'}' "
                    f"(the schedule here is {schedule})",
                    str(body.key_marks[key]),
                )
        if schedule in needs and needs[schedule] not in body:
            raise UserError(f"'schedule: {schedule}' needs a sibling key '{path}.{needs[schedule]}'", sched_at)
        seed = y.field(body, "seed", path, y.as_int, default=0, minimum=0, maximum=MAX_SEED)
        chunk = y.field(body, "chunk", path, y.as_int, default=1, minimum=1)
        threads, at = body["threads"], y.where(body, "threads")
        if not isinstance(threads, list) or not threads:
            found = "an empty list" if threads == [] else y.type_name(threads)
            raise UserError(f"{path}.threads must be a non-empty list of {{core, repeat, do}}, found {found}", at)
        nodes = []
        for i, thread in enumerate(threads):
            tpath = f"{path}.threads[{i}]"
            thread = y.expect_mapping(thread, tpath, y.where(threads, i))
            y.check_keys(thread, tpath, ("core", "repeat", "do"), ("do",))
            tcore = self._core(thread, tpath, core)
            times = y.field(thread, "repeat", tpath, y.as_int, default=1, minimum=0)
            nodes.append(self.repeated(times, thread, "do", f"{tpath}.do", tcore))
            _check_count(nodes[-1], tpath, y.where(threads, i))
        return Parallel(nodes, schedule, chunk, seed)


# -- object ids ---------------------------------------------------------------------------------
# An alloc with a plain id owns one object; an alloc whose id has {i} owns one object per pass of
# its innermost repeat (program.py: its occurrences), object `first + i` being the one named with
# counter i. Ids are matched as strings: a plain id may name an object of a template ('x3' is
# object 3 of 'x{i}'), and an id with {i} names the objects of the alloc with the same template.

_COUNTER = re.compile(r"0|[1-9][0-9]*")  # how {i} is written: decimal, no leading zeros
UNIQUE = "ids are unique in a trace (a freed id is not reused)"


@dataclass
class _Named:
    """An object id written in the file (an alloc's, a free's or an access's ``obj``)."""

    text: str  # as written, with at most one {i}
    path: str  # its key path, e.g. events[2].read.obj
    at: str  # its file:line:column
    passes: int  # how many times its event runs: the product of the enclosing repeats' times
    target: Target  # its event's object, filled in by _Objects.resolve


def _once(named: _Named, done: str, hint: str) -> None:
    """An event that runs more than once may not name one fixed object (allocate or free it twice)."""
    if "{i}" not in named.text and named.passes > 1:
        raise UserError(
            f"{named.path} {named.text!r} is {done} {named.passes} times (once per pass of the enclosing "
            f"repeats); {hint}",
            named.at,
        )


def _counter(name: str, owner: Allocation, any_count: bool = False) -> int | None:
    """The {i} for which the allocation ``owner`` (whose id has {i}) produces ``name``, if any;
    with ``any_count``, also a counter the alloc does not reach."""
    prefix, suffix = owner.id.split("{i}")
    digits = name[len(prefix) : len(name) - len(suffix)]
    if len(name) > len(prefix) + len(suffix) and name.startswith(prefix) and name.endswith(suffix):
        if _COUNTER.fullmatch(digits) and (any_count or int(digits) < owner.count):
            return int(digits)
    return None


def _shared_name(a: Allocation, b: Allocation) -> tuple[str, int, int] | None:
    """A name both templated allocations produce, with its {i} in a and in b; None when there is
    none, or when deciding would take more than CLASH_SEARCH_LIMIT comparisons (then a clash goes
    unnoticed unless a plain id names the object: see _Objects.resolve)."""
    (pa, sa), (pb, sb) = a.id.split("{i}"), b.id.split("{i}")
    if not (pa.startswith(pb) or pb.startswith(pa)) or not (sa.endswith(sb) or sb.endswith(sa)):
        return None
    small, large = (a, b) if a.count <= b.count else (b, a)
    if small.count > CLASH_SEARCH_LIMIT:
        return None
    for c in range(small.count):
        other = _counter(small.name(c), large)
        if other is not None:
            return (small.name(c), c, other) if small is a else (small.name(c), other, c)
    return None


def _clash(new: Allocation, old: Allocation) -> str | None:
    """How ``new`` collides with the earlier allocation ``old`` (None if they share no name)."""
    if new.id == old.id:
        return f"is already allocated at {old.where}"
    if "{i}" not in new.id:
        c = _counter(new.id, old) if "{i}" in old.id else None
        return None if c is None else f"is also allocated by {old.id!r} at {old.where} (with {{i}} = {c})"
    if "{i}" not in old.id:
        c = _counter(old.id, new)
        return None if c is None else (
            f"allocates {old.id!r} (with {{i}} = {c}), which is already allocated at {old.where}")
    shared = _shared_name(new, old)
    if shared is None:
        return None
    name, c_new, c_old = shared
    return (f"allocates {name!r} (with {{i}} = {c_new}), which {old.id!r} at {old.where} also allocates "
            f"(with {{i}} = {c_old})")


def _counted(count: int) -> str:
    """For which {i} an alloc that runs ``count`` times allocates."""
    if count == 0:
        return "for no {i} (it never runs)"
    return "only for {i} = 0" if count == 1 else f"only for {{i}} = 0..{count - 1}"


class _Objects:
    """The ids met while parsing. ``resolve`` numbers the objects and points every event at its
    object once every alloc is known (an id may be used before its alloc in file order: in another
    thread, say)."""

    def __init__(self) -> None:
        self.allocs: list[tuple[_Named, dict]] = []  # (id, the other Allocation fields)
        # (id, event path, end offset, its position); a free has no end
        self.uses: list[tuple[_Named, str, int | None, str | None]] = []
        self.sites: dict[str, int] = {}  # site -> its index, in file order

    def resolve(self) -> list[Allocation]:
        allocations: list[Allocation] = []
        by_id: dict[str, Allocation] = {}
        templated: list[Allocation] = []
        for named, fields in self.allocs:
            first = allocations[-1].first + allocations[-1].count if allocations else 0
            new = Allocation(named.text, first, named.passes if "{i}" in named.text else 1, **fields)
            # two plain ids clash only when equal, so a plain id is compared with its twin and the
            # templates; the earliest allocation it clashes with is reported
            if "{i}" in new.id:
                olds = allocations
            elif new.id in by_id:
                olds = sorted(templated + [by_id[new.id]], key=lambda a: a.first)
            else:
                olds = templated
            for old in olds:
                clash = _clash(new, old)
                if clash:
                    raise UserError(f"{named.path} {named.text!r} {clash}; {UNIQUE}", named.at)
            named.target.first = first
            allocations.append(new)
            by_id.setdefault(new.id, new)
            if "{i}" in new.id:
                templated.append(new)
        for named, path, end, end_at in self.uses:
            owner, counter = _owner(named, by_id, templated)
            named.target.first = owner.first + counter
            if end is not None and end > owner.size:
                raise UserError(
                    f"{path} reaches past the end of object {named.text!r} "
                    f"({owner.size} bytes, allocated at {owner.where}): it ends at offset {end}",
                    end_at,
                )
        return allocations



def _owner(named: _Named, by_id: dict[str, Allocation], templated: list[Allocation]) -> tuple[Allocation, int]:
    """The allocation whose objects ``named`` names, and the {i} of the object (0 for an id with
    {i}: its event adds its own counter)."""
    if "{i}" in named.text:
        owner = by_id.get(named.text)
        if owner is None:
            raise UserError(
                f"{named.path} {named.text!r} has '{{i}}', but no alloc has the id {named.text!r} (an id with "
                f"'{{i}}' names the objects of the alloc with the same id){_did_you_mean(named.text, by_id)}",
                named.at,
            )
        if named.passes > owner.count:
            raise UserError(
                f"{named.path} {named.text!r} reaches {owner.name(named.passes - 1)!r} ({{i}} counts to "
                f"{named.passes - 1} here), but the alloc at {owner.where} allocates it {_counted(owner.count)}",
                named.at,
            )
        return owner, 0
    if named.text in by_id:
        return by_id[named.text], 0
    found = [(a, c) for a in templated if (c := _counter(named.text, a)) is not None]
    if not found:
        short = next((a for a in templated if _counter(named.text, a, any_count=True) is not None), None)
        why = (f": the alloc at {short.where} allocates {short.id!r} {_counted(short.count)}" if short
               else _did_you_mean(named.text, by_id))
        raise UserError(f"{named.path} {named.text!r} is never allocated{why}", named.at)
    if len(found) > 1:  # a clash too large for _shared_name to find
        (a, ca), (b, cb) = found[:2]
        raise UserError(
            f"{named.path} {named.text!r} is allocated twice: by {a.id!r} at {a.where} (with {{i}} = {ca}) "
            f"and by {b.id!r} at {b.where} (with {{i}} = {cb}); {UNIQUE}",
            named.at,
        )
    return found[0]


def _did_you_mean(text: str, ids) -> str:
    near = y.closest(text, ids)
    return f" (did you mean {near!r}?)" if near else ""
