"""The ``memsim`` command: thin commands that parse options, call the library and print.

Heavy modules (numpy, numba, the engine) are imported inside the commands so ``memsim --help``
answers at once.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from memsim.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, UserError
from memsim.runner import CHUNK_EVENTS


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


def import_options(yaml: bool = False):
    """How a foreign trace (lackey, din, csv) is read; shared by the commands that read one.
    ``yaml``: the command also takes ``--from yaml``."""
    formats, extensions = ("lackey, din, csv or yaml", ", or .yaml/.yml") if yaml else ("lackey, din or csv", "")

    def decorate(f):
        f = click.option("--skip-bad-lines", is_flag=True,
                         help="Skip malformed lines of a lackey, din or CSV trace (they are counted and the first "
                              "is shown) instead of stopping at the first one.")(f)
        return click.option("--from", "fmt", metavar="FORMAT",
                            help=f"Read the trace in this format whatever its name: {formats} (default: from the "
                                 f"extension: .lackey, .din, .csv, each perhaps with .gz{extensions}).")(f)

    return decorate


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
@import_options()
@click.option("--counting", type=click.Choice(["memsim", "cachegrind"]), default=None,
              help="Counting rules, instead of the machine's own `counting:` (cachegrind: Valgrind Cachegrind's "
                   "numbers exactly, on machines it can model; see docs/cachegrind.md).")
def run(trace: Path, machine: str | None, json_target: str | None, quiet: bool, top: int, fmt: str | None,
        skip_bad_lines: bool, counting: str | None) -> None:
    """Replay TRACE and print the report. TRACE is a memsim YAML trace, a binary trace (.mstrace,
    see `memsim convert`), or a lackey, din or CSV trace, which is read as it replays."""
    from memsim.report import jsondoc, terminal
    from memsim.report.output import write_text
    from memsim.runner import replay_trace
    from memsim.trace.program import StreamedTrace

    loaded, resolved, allocator = _load(trace, machine, fmt, skip_bad_lines)
    if counting is not None:
        from memsim.formats.machine_file import with_counting

        resolved = with_counting(resolved, counting, "--counting")
    console = report_console(stderr=json_target == "-")
    with _progress(loaded, "replaying", enabled=not quiet) as advance:
        result = replay_trace(loaded, resolved, allocator, top, advance)
    if not quiet and isinstance(loaded, StreamedTrace):
        click.echo(_import_summary(loaded.stats, loaded.path), err=True)
    if not quiet:
        terminal.print_run(result, console)
    if json_target:
        write_text(json_target, jsondoc.dumps(jsondoc.run_document(result)))
    if result.partial:
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
    from memsim.runner import place_or_explain
    from memsim.trace.events import Lifetimes

    loaded, resolved, allocator = _load(trace, machine)
    if allocator is None:
        raise UserError("layout needs a trace with `allocator: go` (this one uses raw addresses only)", str(trace))
    lifetimes = Lifetimes.start(loaded.n_objects, loaded.n_events)
    start = 0
    for chunk in loaded.chunks(CHUNK_EVENTS):
        place_or_explain(loaded, lambda: allocator.place(chunk))
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
@click.argument("traces", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--set", "settings", multiple=True, metavar="KEY=V1,V2,...",
              help="Sweep a machine or allocator field by dotted key: levels.L1d.size=32KiB,48KiB, line_size=32,64, "
                   "cores=2,4, coherence.protocol=mesi,moesi, allocator.version=1.21,1.27. Repeat for a grid.")
@click.option("--sweep", "sweep_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="A sweep file with grid and zip lists of values (docs/sweep.md), instead of or with --set.")
@click.option("--machine", "-m", metavar="PRESET|FILE", help="Machine to start from instead of each trace's own.")
@click.option("--output", "-o", "target", default="sweep.csv", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.csv",
              help="Results, a line per run; a JSON-lines file beside it (.jsonl) holds the same.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, metavar="N",
              help="Runs at once, in worker processes [default: the cores this process may use].")
@click.option("--scheduler", metavar="ADDRESS", help="Run on the Dask cluster at ADDRESS (pip install 'memsim[dask]').")
@click.option("--resume", is_flag=True, help="Continue the sweep whose results are in --output: skip runs recorded there.")
@click.option("--plot", "plot_target", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png|svg",
              help="Plot --metric against one or two swept settings (pip install 'memsim[plot]').")
@click.option("--metric", default="amat", show_default=True, metavar="NAME",
              help="The metric to plot (docs/metrics.md), e.g. L1d.miss_rate, cycles.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
def sweep(traces: tuple[Path, ...], settings: tuple[str, ...], sweep_file: Path | None, machine: str | None,
          target: Path, jobs: int | None, scheduler: str | None, resume: bool, plot_target: Path | None, metric: str,
          quiet: bool) -> None:
    """Run every TRACE on every combination of settings; write each run's headline metrics
    (docs/metrics.md) to a CSV file and a JSON-lines file as it finishes."""
    from memsim import sweep as sw
    from memsim.report.progress import count_progress

    grid = [sw.parse_set(text) for text in settings]
    zipped = []
    if sweep_file is not None:
        file_grid, zipped = sw.load_sweep_file(sweep_file)
        grid += file_grid
    plan = sw.plan(grid, zipped)
    names = [str(t) for t in traces]
    tasks = sw.tasks_for(names, machine, plan)
    survey = sw.survey(tasks)
    files = sw.ResultFiles(target, plan.keys, survey.columns, resume)
    todo = sw.without(tasks, files.recorded)
    files.expect(t.run for t in todo)
    by_run = {t.run: t for t in todo}
    errors = 0
    try:
        with count_progress(len(todo), enabled=not quiet, label="runs") as advance:
            def done(row: dict) -> None:
                nonlocal errors
                files.add(by_run[row["run"]], row)
                errors += row["status"] == "error"
                advance(1)

            sw.execute(todo, survey.kinds, jobs or _usable_cores(), scheduler, done)
    except KeyboardInterrupt:
        click.echo(f"interrupted: {len(tasks) - len(todo) + files.next} of {len(tasks)} runs are in {target}; "
                   "--resume continues the sweep", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if not quiet:
        skipped = f", {_count(len(tasks) - len(todo), 'run')} recorded before" if resume else ""
        click.echo(f"{_count(len(todo), 'run')} ({errors} with errors){skipped} -> {target}, "
                   f"{files.jsonl_path}", err=True)
    if plot_target is not None:
        from memsim.report.plot import plot_sweep

        plot_sweep(sw.read_results(target), plan.keys, plan.values, names, metric, plot_target)
        if not quiet:
            click.echo(f"plot of {metric} -> {plot_target}", err=True)


def _usable_cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@main.command()
@click.argument("corpus", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--update", is_flag=True,
              help="Record this run as the baselines: rewrite those that change (each atomically) and remove "
                   "those whose trace is gone.")
@click.option("--junit", "junit_target", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also write the result as JUnit XML for CI systems, a testcase per trace (written atomically).")
def check(corpus: Path, update: bool, junit_target: Path | None) -> None:
    """Re-run every trace in CORPUS (its *.yaml and *.mstrace files) and compare its headline metrics
    with its baseline in CORPUS/baselines/, within the tolerances of CORPUS/check.yaml; exit 1 when
    a trace regressed or did not run (docs/check.md)."""
    from memsim import check as ck
    from memsim.report.output import write_text

    if update and junit_target is not None:
        raise UserError("--junit reports a check and --update records baselines: give one of them", "--junit")
    try:
        report = ck.check_corpus(corpus)
    except KeyboardInterrupt:
        click.echo("interrupted: nothing written", err=True)
        sys.exit(EXIT_INTERRUPTED)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    ck.print_report(report, report_console(), update)
    if update:
        done = ck.update_baselines(report)
        for line in done or [f"the baselines in {corpus} are up to date"]:
            click.echo(line)
        sys.exit(report.update_exit_code)
    if junit_target is not None:
        write_text(str(junit_target), ck.junit_xml(report))
    sys.exit(report.exit_code)


@main.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "-o", "target", required=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="The binary trace to write (.mstrace); it appears only once complete.")
@import_options(yaml=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
def convert(source: Path, target: Path, fmt: str | None, skip_bad_lines: bool, quiet: bool) -> None:
    """Convert SOURCE (a lackey, din or CSV trace, or a memsim YAML trace) into a binary trace that
    `memsim run` replays, or that a YAML trace names with `events_file:`."""
    from memsim.formats import importers
    from memsim.formats.binary import write_events, write_trace
    from memsim.formats.trace_file import load_trace
    from memsim.report.progress import file_progress, replay_progress
    from memsim.runner import check_format

    fmt = fmt or ("yaml" if source.suffix.lower() in (".yaml", ".yml") else importers.detect_format(source))
    if fmt is None:
        raise UserError(
            f"cannot tell the format from the file name: known extensions are {', '.join(importers.EXTENSIONS)} "
            "(each also with .gz), .yaml and .yml; or give --from lackey|din|csv|yaml", str(source))
    check_format(fmt, importers.FORMATS + ("yaml",))
    try:
        if fmt == "yaml":
            if skip_bad_lines:
                raise UserError("applies only to lackey, din and CSV traces", "--skip-bad-lines")
            loaded = load_trace(source)
            with replay_progress(loaded.n_events, not quiet, "converting") as advance:
                events = write_trace(loaded, target, _advancing(loaded.chunks(CHUNK_EVENTS), advance))
            summary = f"{source}: {_count(events, 'event')}, {_count(loaded.n_objects, 'object')}"
        else:
            stats = importers.ImportStats()
            records = importers.read_records(source, fmt, skip_bad_lines=skip_bad_lines, chunk_events=CHUNK_EVENTS,
                                             display=str(source), stats=stats)
            with file_progress(source, lambda: stats.bytes_read, not quiet, "converting") as advance:
                write_events(target, str(source), _advancing(records, advance), source.name)
            summary = _import_summary(stats, str(source))
    except KeyboardInterrupt:
        click.echo("interrupted: nothing written", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if not quiet:
        click.echo(f"{summary} -> {target}", err=True)


def _advancing(chunks, advance):
    """``chunks``, calling ``advance(len(chunk))`` after each is used."""
    for chunk in chunks:
        yield chunk
        advance(len(chunk))


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


def _load(trace: Path, machine: str | None, fmt: str | None = None, skip_bad_lines: bool = False):
    """The trace, the machine it runs on (``--machine`` first, then the trace's, then the default),
    and a fresh Go allocator when the trace asks for one."""
    from memsim.runner import new_allocator, open_trace, trace_machine

    loaded = open_trace(trace, fmt, skip_bad_lines)
    resolved = trace_machine(loaded, machine)
    if loaded.allocator.warning:
        click.echo(f"warning: {loaded.allocator.warning}", err=True)
    return loaded, resolved, new_allocator(loaded, resolved)


def _progress(loaded, label: str, enabled: bool):
    """A bar over the events, or over the file's bytes when the event count is known only at the end."""
    from memsim.report.progress import file_progress, replay_progress
    from memsim.trace.program import StreamedTrace

    if isinstance(loaded, StreamedTrace):
        return file_progress(loaded.source, lambda: loaded.stats.bytes_read, enabled, label)
    return replay_progress(loaded.n_events, enabled, label)


def _import_summary(stats, source: str) -> str:
    """What was read from a foreign trace, for stderr."""
    variant = f" ({stats.variant} form)" if stats.variant else ""
    text = (f"{source}{variant}: {_count(stats.records, 'event')}, {_count(stats.skipped_lines, 'line')} skipped "
            "as not records")
    if stats.bad_lines:
        text += f", {_count(stats.bad_lines, 'line')} malformed and skipped (the first: {stats.first_bad})"
    return text


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def report_console(stderr: bool = False):
    """A rich console; when the output is not a terminal (a log, a pipe) it is 120 columns wide
    rather than rich's 80, so tables are not squeezed."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, highlight=False, width=None if stream.isatty() else 120)

