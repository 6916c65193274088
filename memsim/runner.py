"""One run of one trace: open it, resolve its machine and allocator, replay it, build the typed
result. Shared by ``memsim run``, ``memsim sweep`` and ``memsim check``; printing stays with them."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from memsim.errors import UserError
from memsim.machine import Machine

CHUNK_EVENTS = 1 << 20


def open_trace(path: Path, fmt: str | None, skip_bad_lines: bool):
    """A binary trace (by its magic), a lackey/din/csv trace streamed as it is read (by ``fmt``
    or the extension), else a YAML trace."""
    from memsim.formats import importers
    from memsim.formats.binary import is_binary
    from memsim.formats.trace_file import load_trace

    if fmt is None and not is_binary(path):
        fmt = importers.detect_format(path)
    if fmt is None:
        if skip_bad_lines:
            raise UserError("applies only to lackey, din and CSV traces", "--skip-bad-lines")
        try:
            return load_trace(path)
        except UserError as e:
            if path.suffix.lower() in (".yaml", ".yml", ".mstrace"):
                raise
            # a foreign trace under a name that does not say its format reads as bad YAML: say so
            raise UserError(f"{e.message}; memsim read this file as a YAML trace because its name does not say "
                            "otherwise: give --from lackey|din|csv, or name it .lackey, .din or .csv", e.where) from None
    check_format(fmt, importers.FORMATS)
    return _streamed(path, fmt, skip_bad_lines)


def _streamed(path: Path, fmt: str, skip_bad_lines: bool):
    """A lackey/din/csv trace read as it replays; its hash is that of the file's bytes."""
    import hashlib

    from memsim.formats.importers import ImportStats, read_records
    from memsim.trace.program import StreamedTrace

    try:
        with open(path, "rb") as f:
            sha256 = hashlib.file_digest(f, "sha256").hexdigest()  # streamed in blocks, never the whole file
    except OSError as e:
        raise UserError(f"cannot read the trace: {e.strerror}", str(path)) from None
    stats = ImportStats()

    def read(chunk_size: int):
        return read_records(path, fmt, skip_bad_lines=skip_bad_lines, chunk_events=chunk_size, display=str(path),
                            stats=stats)

    return StreamedTrace(path.name, str(path), sha256, path, read, stats)


def check_format(fmt: str, known: tuple[str, ...]) -> None:
    if fmt not in known:
        raise UserError(f"unknown trace format {fmt!r}; known: {', '.join(known)}", "--from")


def trace_machine(loaded, machine: str | None) -> Machine:
    """The machine a trace runs on: ``machine`` (a preset or file, as ``--machine`` gives it) first,
    then the trace's own, then the default."""
    from memsim.formats.machine_file import DEFAULT_MACHINE, resolve_machine

    if machine is not None:
        return resolve_machine(machine, Path.cwd(), "--machine")
    if loaded.machine_spec is not None:
        return resolve_machine(loaded.machine_spec, loaded.base_dir, loaded.machine_where)
    return resolve_machine(DEFAULT_MACHINE, Path.cwd(), None)


def new_allocator(loaded, machine: Machine, spec=None):
    """A fresh Go allocator for the trace on ``machine`` (``spec``: the allocator spec to use
    instead of the trace's own), or None for a trace of raw addresses."""
    from memsim.models.goalloc.model import MAX_OBJECTS, GoAllocator

    loaded.check_cores(machine.cores)
    spec = spec or loaded.allocator
    if spec.model != "go":
        return None
    if loaded.n_objects > MAX_OBJECTS:
        if loaded.allocations:
            biggest = max(loaded.allocations, key=lambda a: a.count)
            alone, where = f" ({biggest.id!r} alone {biggest.count:,})", biggest.where
        else:
            alone, where = "", loaded.events_file
        raise UserError(
            f"the trace allocates {loaded.n_objects:,} objects{alone}; memsim keeps {MAX_OBJECTS:,} at most "
            "(40 bytes of state each)", where,
        )
    return GoAllocator(spec.generation, machine.cores, loaded.n_objects, spec.gogc)


def place_or_explain(loaded, feed: Callable[[], None]) -> None:
    """Run ``feed()``; a rule the allocator finds broken becomes a UserError at the event's position,
    and an event the engine cannot replay (its message names the event) names the trace file."""
    from memsim.models.goalloc.model import AllocatorError

    try:
        feed()
    except AllocatorError as e:
        raise UserError(e.message(repr(loaded.object_name(e.obj))), loaded.position_of_event(e.event)) from None
    except UserError as e:
        e.where = e.where or loaded.path
        raise


def replay_trace(loaded, machine: Machine, allocator, top: int, advance: Callable[[int], None] | None = None,
                 allocator_spec=None):
    """Replay the whole trace and build its ``RunResult``; ``advance(n_events)`` after each chunk.
    Ctrl-C stops it cleanly: the result so far, marked partial."""
    from memsim.engine.replay import Replay
    from memsim.formats.machine_file import machine_to_dict
    from memsim.models.goalloc.sizeclasses import GENERATIONS
    from memsim.report.results import AllocatorResult, TraceInfo, build_result
    from memsim.report.sharing import Heap, build_sharing
    from memsim.trace.events import Lifetimes

    replay = Replay(machine, allocator)
    lifetimes = Lifetimes.start(loaded.n_objects, loaded.n_events)
    partial, start = False, 0
    try:
        for chunk in loaded.chunks(CHUNK_EVENTS):
            lifetimes.observe(chunk, start)  # first: an interrupted chunk's objects still get their P
            place_or_explain(loaded, lambda: replay.feed(chunk))
            start += len(chunk)
            if advance is not None:
                advance(len(chunk))
    except KeyboardInterrupt:
        partial = True
    allocator_result = heap = None
    if allocator is not None:
        spec = allocator_spec or loaded.allocator
        allocator_result = AllocatorResult(spec.model, spec.version, spec.generation, allocator.stats_result())
        heap = Heap(allocator.placements(), lifetimes, loaded, GENERATIONS[spec.generation])
    counters = replay.counters  # a copy with the open sharing lifetimes counted: make it once
    sharing = build_sharing(counters.sharing, machine.line_size, machine.cores, top, heap, loaded.n_events)
    return build_result(
        replay.hierarchy, counters, TraceInfo(loaded.name, loaded.n_events, loaded.sha256),
        machine_to_dict(machine), partial, allocator_result, sharing,
    )
