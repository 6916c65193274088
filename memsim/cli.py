"""The ``memsim`` command: thin commands that parse options, call the library and print.

Heavy modules (numpy, numba, the engine) are imported inside the commands so ``memsim --help``
answers at once.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from memsim.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, UserError

CHUNK_EVENTS = 1 << 20


class MemsimGroup(click.Group):
    """Turns a ``UserError`` from any command into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(EXIT_USER_ERROR)


def json_option(f):
    return click.option(
        "--json", "json_target", metavar="FILE|-",
        help="Also write the report as JSON to FILE (written atomically), or to stdout with '-' "
             "(then the tables go to stderr).",
    )(f)


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, help="No progress bar and no tables (JSON only, if asked).")(f)


@click.group(cls=MemsimGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="memsim")
def main() -> None:
    """Replay allocation and memory-access traces through a cache hierarchy and report what each
    access cost, per level, per cache and per core."""


@main.command()
@click.argument("trace", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--machine", "-m", metavar="PRESET|FILE",
              help="Machine to run on instead of the trace's own: a preset name (see `memsim machines`) "
                   "or a machine YAML file.")
@json_option
@quiet_option
@click.option("--top", default=20, show_default=True, type=click.IntRange(min=0), metavar="N",
              help="Show the N lines with the most false-sharing stall cycles (0: all), in the tables and the JSON.")
def run(trace: Path, machine: str | None, json_target: str | None, quiet: bool, top: int) -> None:
    """Replay TRACE (a memsim YAML trace) and print the report."""
    from memsim.engine.replay import Replay
    from memsim.formats.machine_file import machine_to_dict
    from memsim.models.goalloc.sizeclasses import GENERATIONS
    from memsim.report import jsondoc, terminal
    from memsim.report.output import write_text
    from memsim.report.progress import replay_progress
    from memsim.report.results import AllocatorResult, TraceInfo, build_result
    from memsim.report.sharing import Heap, build_sharing
    from memsim.trace.events import Lifetimes

    loaded, resolved, allocator = _load(trace, machine)
    console = report_console(stderr=json_target == "-")
    replay = Replay(resolved, allocator)
    lifetimes = Lifetimes.start(loaded.n_objects, loaded.n_events)
    partial, start = False, 0
    with replay_progress(loaded.n_events, enabled=not quiet) as advance:
        try:
            for chunk in loaded.chunks(CHUNK_EVENTS):
                lifetimes.observe(chunk, start)  # first: an interrupted chunk's objects still get their P
                _place_or_explain(loaded, lambda: replay.feed(chunk))
                start += len(chunk)
                advance(len(chunk))
        except KeyboardInterrupt:
            partial = True
    allocator_result = heap = None
    if allocator is not None:
        spec = loaded.allocator
        allocator_result = AllocatorResult(spec.model, spec.version, spec.generation, allocator.stats_result())
        heap = Heap(allocator.placements(), lifetimes, loaded, GENERATIONS[spec.generation])
    counters = replay.counters  # a copy with the open sharing lifetimes counted: make it once
    sharing = build_sharing(counters.sharing, resolved.line_size, resolved.cores, top, heap, loaded.n_events)
    result = build_result(
        replay.hierarchy, counters, TraceInfo(loaded.name, loaded.n_events, loaded.sha256),
        machine_to_dict(resolved), partial, allocator_result, sharing,
    )
    if not quiet:
        terminal.print_run(result, console)
    if json_target:
        write_text(json_target, jsondoc.dumps(jsondoc.run_document(result)))
    if partial:
        sys.exit(EXIT_INTERRUPTED)


@main.command()
@click.argument("trace", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--machine", "-m", metavar="PRESET|FILE",
              help="Machine whose line size and cores to use instead of the trace's own.")
@json_option
def layout(trace: Path, machine: str | None, json_target: str | None) -> None:
    """Show where the Go allocator put every object of TRACE and which objects share cache lines."""
    from memsim.report import jsondoc, terminal
    from memsim.report.layout import build_layout
    from memsim.report.output import write_text
    from memsim.trace.events import Lifetimes

    loaded, resolved, allocator = _load(trace, machine)
    if allocator is None:
        raise UserError("layout needs a trace with `allocator: go` (this one uses raw addresses only)", str(trace))
    lifetimes = Lifetimes.start(loaded.n_objects, loaded.n_events)
    start = 0
    for chunk in loaded.chunks(CHUNK_EVENTS):
        _place_or_explain(loaded, lambda: allocator.place(chunk))
        lifetimes.observe(chunk, start)
        start += len(chunk)
    objects = build_layout(allocator.placements(), lifetimes.born, lifetimes.died, resolved.line_size,
                           loaded.object_name, loaded.object_site)
    if json_target:
        write_text(json_target, jsondoc.dumps(jsondoc.layout_document(objects)))
        if json_target == "-":
            return
    terminal.print_layout(loaded.name, resolved.line_size, objects, report_console())


@main.command()
@json_option
def machines(json_target: str | None) -> None:
    """List the machine presets, with where their numbers come from."""
    from memsim.formats.machine_file import DEFAULT_MACHINE, load_preset, machine_to_dict, preset_names
    from memsim.report import terminal
    from memsim.report.jsondoc import dumps
    from memsim.report.output import write_text

    presets = [load_preset(name) for name in preset_names()]
    if json_target:
        write_text(json_target, dumps({"default": DEFAULT_MACHINE, "machines": [machine_to_dict(m) for m in presets]}))
        if json_target == "-":
            return
    terminal.print_machines(presets, DEFAULT_MACHINE, report_console())


@main.command()
@click.option("--go-version", "go_version", metavar="VERSION", default=None,
              help="Go release whose layout rules to show, e.g. 1.21 (default: the newest known).")
@json_option
def sizeclasses(go_version: str | None, json_target: str | None) -> None:
    """Print the Go allocator's size classes: slot sizes, span pages, objects per span, waste."""
    from memsim.models.goalloc.sizeclasses import GENERATIONS, small_limit, table
    from memsim.models.goversions import NEWEST, resolve_version
    from memsim.report import terminal
    from memsim.report.jsondoc import dumps, sizeclasses_document
    from memsim.report.output import write_text

    try:
        version = resolve_version(go_version or NEWEST)
    except ValueError as e:
        raise UserError(str(e), "--go-version") from None
    if version.warning:
        click.echo(f"warning: {version.warning}", err=True)
    rows = table(GENERATIONS[version.generation])
    limit = small_limit(GENERATIONS[version.generation])
    if json_target:
        write_text(json_target, dumps(sizeclasses_document(version.version, version.generation, limit, rows)))
        if json_target == "-":
            return
    terminal.print_sizeclasses(version.version, version.generation, limit, rows, report_console())


def _load(trace: Path, machine: str | None):
    """The trace, the machine it runs on (``--machine`` first, then the trace's, then the default),
    and a fresh Go allocator when the trace asks for one."""
    from memsim.formats.machine_file import DEFAULT_MACHINE, resolve_machine
    from memsim.formats.trace_file import load_trace
    from memsim.models.goalloc.model import MAX_OBJECTS, GoAllocator

    loaded = load_trace(trace)
    if machine is not None:
        resolved = resolve_machine(machine, Path.cwd(), "--machine")
    elif loaded.machine_spec is not None:
        resolved = resolve_machine(loaded.machine_spec, loaded.base_dir, loaded.machine_where)
    else:
        resolved = resolve_machine(DEFAULT_MACHINE, Path.cwd(), None)
    loaded.check_cores(resolved.cores)
    spec = loaded.allocator
    if spec.warning:
        click.echo(f"warning: {spec.warning}", err=True)
    if spec.model != "go":
        return loaded, resolved, None
    if loaded.n_objects > MAX_OBJECTS:
        biggest = max(loaded.allocations, key=lambda a: a.count)
        raise UserError(
            f"the trace allocates {loaded.n_objects:,} objects ({biggest.id!r} alone {biggest.count:,}); memsim keeps "
            f"{MAX_OBJECTS:,} at most (40 bytes of state each)", biggest.where,
        )
    return loaded, resolved, GoAllocator(spec.generation, resolved.cores, loaded.n_objects, spec.gogc)


def _place_or_explain(loaded, feed) -> None:
    """Run ``feed()``; a rule the allocator finds broken becomes a UserError at the event's position."""
    from memsim.models.goalloc.model import AllocatorError

    try:
        feed()
    except AllocatorError as e:
        raise UserError(e.message(repr(loaded.object_name(e.obj))), loaded.position_of_event(e.event)) from None


def report_console(stderr: bool = False):
    """A rich console; when the output is not a terminal (a log, a pipe) it is 120 columns wide
    rather than rich's 80, so tables are not squeezed."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, highlight=False, width=None if stream.isatty() else 120)

