"""Trace files (YAML, format version 1) -> ``Trace`` (a lazily expanding program).

See docs/trace-format.md for the format. Every error is a ``UserError`` naming file:line:column,
the key path, what was found and what is allowed.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from memsim.errors import UserError
from memsim.formats import yamlpos as y
from memsim.trace.events import ACCESS_OPS, MAX_ADDRESS
from memsim.trace.program import (
    SCHEDULES,
    TABLE_LIMIT,
    Access,
    Node,
    Parallel,
    Random,
    Repeat,
    Sequence,
    Sweep,
    Trace,
    compact,
)
from memsim.trace.rng import MAX_SEED

FORMAT_VERSION = 1
MAX_EVENTS = 2**62  # global indices (and index + 1) must stay inside int64
MAX_CORE = 2**31 - 1

TOP_KEYS = ("memsim", "name", "machine", "allocator", "events", "events_file")
EVENTS = ("read", "write", "rmw", "ifetch", "sweep", "random", "repeat", "parallel", "alloc", "free", "gc")
ADDR_KEYS = ("obj", "offset")  # object-relative addressing: Go allocator work
LATER = "not supported by this version of memsim"


def load_trace(path: str | Path, display: str | None = None, table_limit: int = TABLE_LIMIT) -> Trace:
    """Read and validate a trace file. ``display`` is the file name used in messages;
    ``table_limit`` (see ``program.compact``) only changes speed, never events (0 = no tables)."""
    path = Path(path)
    name_in_messages = display or str(path)
    doc = y.load(path, name_in_messages)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if doc is None:
        raise UserError("the trace file is empty; expected a mapping with 'memsim: 1' and 'events'", name_in_messages)
    y.expect_mapping(doc, "a trace file", y.where(doc) or name_in_messages)
    _check_version(doc)
    if "events_file" in doc:
        raise UserError(
            f"'events_file' is {LATER}: binary traces arrive with the binary trace format; "
            "list the events under 'events:'",
            str(doc.key_marks["events_file"]),
        )
    if "events" not in doc and ("levels" in doc or "cores" in doc):
        raise UserError("this looks like a machine file, not a trace (it has no 'events')", y.where(doc))
    y.check_keys(doc, "", TOP_KEYS, required=("events",))

    name = y.field(doc, "name", "", y.as_str, default=path.stem)
    allocator = _allocator(doc)
    parser = _Parser()
    root = parser.events(doc, "events", "events", None)
    _check_count(root, "the trace", y.where(doc, "events"))
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


def _allocator(doc: y.YMap) -> str:
    """Absent means `none` for now (only raw-address traces exist yet)."""
    if "allocator" not in doc:
        return "none"
    value, at = doc["allocator"], y.where(doc, "allocator")
    if isinstance(value, dict):
        y.check_keys(value, "allocator", ("model", "version", "gogc"), required=("model",))
        model = y.as_choice(value["model"], "allocator.model", y.where(value, "model"), ("none", "go"))
        at = y.where(value, "model")
    else:
        model = y.as_choice(value, "allocator", at, ("none", "go"))
    if model == "go":
        raise UserError(
            f"allocator 'go' is {LATER}: it arrives with the Go allocator model; use 'allocator: none' "
            "with raw addresses",
            at,
        )
    if isinstance(value, dict) and len(value) > 1:
        extra = next(k for k in value if k != "model")
        raise UserError(f"allocator.{extra} applies only to the go model", str(value.key_marks[extra]))
    return model


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
    def __init__(self) -> None:
        self.sources: list[str] = []
        self.core_uses: list[tuple[int, str]] = []

    def events(self, parent: y.YMap, key: str, path: str, core: int | None) -> Sequence:
        """The non-empty event list ``parent[key]``."""
        items, at = parent[key], y.where(parent, key)
        if not isinstance(items, list):
            raise UserError(f"{path} must be a list of events, found {y.type_name(items)}", at)
        if not items:
            raise UserError(f"{path} must list at least one event", at)
        return Sequence([self.event(items, i, f"{path}[{i}]", core) for i in range(len(items))])

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
        if name in ("alloc", "free", "gc"):
            raise UserError(
                f"'{name}' events are {LATER}: they arrive with the Go allocator model; this version "
                "supports read, write, rmw, ifetch, sweep, random, repeat and parallel with raw addresses",
                name_at,
            )
        path = f"{path}.{name}"
        body = y.expect_mapping(item[name], path, y.where(item, name))
        src = len(self.sources)
        self.sources.append(at)
        node = getattr(self, "_" + ("access" if name in ACCESS_OPS else name))(body, path, core, src, name)
        _check_count(node, path, at)
        return node

    # -- fields ---------------------------------------------------------------------------------

    def _keys(self, body: y.YMap, path: str, allowed: tuple, required: tuple, addressed: bool = False) -> None:
        """Unknown and missing keys; ``addressed`` events recognise (and reject) obj/offset."""
        y.check_keys(body, path, allowed + (ADDR_KEYS if addressed else ()))
        for key in ADDR_KEYS if addressed else ():
            if key in body:
                raise UserError(
                    f"'{path}.{key}' is {LATER}: object-relative addresses ('obj', 'offset') arrive with "
                    "the Go allocator model; give a raw 'addr'",
                    str(body.key_marks[key]),
                )
        y.check_keys(body, path, allowed, required)

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

    def _span(self, body: y.YMap, path: str, lo: int, hi: int, key: str) -> None:
        """Every byte touched lies in [lo, hi) with 0 <= lo and hi <= MAX_ADDRESS."""
        at = y.where(body, key)
        if lo < 0:
            raise UserError(f"{path} reaches below address 0 (lowest access at {lo})", at)
        if hi > MAX_ADDRESS:
            raise UserError(f"{path} reaches past the largest address 2^63-1 (it ends at {hi})", at)

    # -- events ---------------------------------------------------------------------------------

    def _access(self, body, path, core, src, name):
        self._keys(body, path, ("core", "addr", "size"), ("addr", "size"), addressed=True)
        core = self._core(body, path, core)
        addr = y.field(body, "addr", path, y.as_size, minimum=0)
        size = y.field(body, "size", path, y.as_size)
        self._span(body, path, addr, addr + size, "size")
        return Access(ACCESS_OPS[name], core, addr, size, src)

    def _op(self, body, path):
        return ACCESS_OPS[y.field(body, "op", path, y.as_choice, choices=tuple(ACCESS_OPS))]

    def _sweep(self, body, path, core, src, name):
        keys = ("core", "op", "addr", "stride", "count", "size")
        self._keys(body, path, keys, ("op", "addr", "count", "size"), addressed=True)
        core = self._core(body, path, core)
        op = self._op(body, path)
        addr = y.field(body, "addr", path, y.as_size, minimum=0)
        size = y.field(body, "size", path, y.as_size)
        stride = y.field(body, "stride", path, _as_stride, default=size)
        count = y.field(body, "count", path, y.as_int, minimum=0)
        last = addr + max(count - 1, 0) * stride
        self._span(body, path, min(addr, last), max(addr, last) + size, "stride" if "stride" in body else "count")
        return Sweep(op, core, addr, stride, count, size, src)

    def _random(self, body, path, core, src, name):
        keys = ("core", "op", "addr", "range", "count", "size", "align", "seed")
        self._keys(body, path, keys, ("op", "addr", "range", "count", "size", "seed"), addressed=True)
        core = self._core(body, path, core)
        op = self._op(body, path)
        addr = y.field(body, "addr", path, y.as_size, minimum=0)
        size = y.field(body, "size", path, y.as_size)
        span = y.field(body, "range", path, y.as_size)
        align = y.field(body, "align", path, y.as_size, default=size)
        count = y.field(body, "count", path, y.as_int, minimum=0)
        seed = y.field(body, "seed", path, y.as_int, minimum=0, maximum=MAX_SEED)
        if span < size:
            raise UserError(
                f"{path}.range ({span}) is smaller than {path}.size ({size}): no access fits", y.where(body, "range")
            )
        self._span(body, path, addr, addr + span, "range")
        return Random(op, core, addr, span, count, size, align, seed, src)

    def _repeat(self, body, path, core, src, name):
        self._keys(body, path, ("times", "do"), ("times", "do"))
        times = y.field(body, "times", path, y.as_int, minimum=0)
        return Repeat(times, self.events(body, "do", f"{path}.do", core))

    def _parallel(self, body, path, core, src, name):
        self._keys(body, path, ("schedule", "seed", "chunk", "threads"), ("threads",))
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
            nodes.append(Repeat(times, self.events(thread, "do", f"{tpath}.do", tcore)))
            _check_count(nodes[-1], tpath, y.where(threads, i))
        return Parallel(nodes, schedule, chunk, seed)
