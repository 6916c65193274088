"""``memsim sweep``: every trace on every combination of machine and allocator settings
(docs/sweep.md). A combination sets fields by dotted key (``levels.L1d.size``, ``cores``,
``allocator.version``) on the trace's own machine and allocator; each run's headline metrics
(docs/metrics.md) become one line of a CSV file and one of a JSON-lines file.

The runs go to worker processes here, or to a Dask cluster. Lines are written as runs finish but
in the order of the runs, so that the same sweep always writes the same files, and a sweep that
crashed or was interrupted continues where it stopped (``resume``).
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import yaml

from memsim.errors import UserError
from memsim.formats import yamlpos as y

ALLOCATOR_FIELDS = ("model", "version", "gogc")
# fields whose values stay text whatever they look like (a Go version "1.20" is not the number 1.2)
TEXT_FIELDS = {"name", "source", "replacement", "write", "inclusion", "serves", "protocol", "counting", "model",
               "version"}
RUN_COLUMNS = ("run", "trace")
STATUS_COLUMNS = ("status", "error")


@dataclass(frozen=True)
class Parameter:
    key: str  # dotted: levels.L1d.size, line_size, coherence.protocol, allocator.version
    values: tuple[str, ...]  # as written
    where: str  # where it was given, for messages


@dataclass(frozen=True)
class Plan:
    """The combinations of a sweep, in order: the grid's product, then the zipped lists within each."""

    keys: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]  # each key's values, as given
    combinations: tuple[tuple[str, ...], ...]


def parse_set(text: str) -> Parameter:
    """``KEY=V1,V2,...`` as given to ``--set``."""
    key, sep, values = text.partition("=")
    key, listed = key.strip(), tuple(v.strip() for v in values.split(","))
    if not sep or not key or not all(listed):
        raise UserError(f"expected KEY=VALUE[,VALUE...] (e.g. levels.L1d.size=32KiB,48KiB), found {text!r}", "--set")
    return Parameter(key, listed, f"--set {key}")


def load_sweep_file(path: Path) -> tuple[list[Parameter], list[Parameter]]:
    """The ``grid`` and ``zip`` parameters of a sweep file (docs/sweep.md)."""
    doc = y.load(path)
    y.expect_mapping(doc, "a sweep file", y.where(doc) or str(path))
    y.check_keys(doc, "", ("memsim", "grid", "zip"), required=("memsim",))
    if doc["memsim"] != 1:
        raise UserError(f"sweep file format version {doc['memsim']!r} is not supported; this memsim reads version 1",
                        y.where(doc, "memsim"))
    lists = []
    for section in ("grid", "zip"):
        params = []
        if section in doc:
            mapping = y.expect_mapping(doc[section], section, y.where(doc, section))
            for key, values in mapping.items():
                at = y.where(mapping, key)
                if not isinstance(values, list) or not values:
                    raise UserError(f"{section}.{key} must be a non-empty list of values, found {y.type_name(values)}",
                                    at)
                params.append(Parameter(str(key), tuple(_text(v, f"{section}.{key}", y.where(values, i) or at, key)
                                                        for i, v in enumerate(values)), at))
        lists.append(params)
    if not lists[0] and not lists[1]:
        raise UserError("the sweep file sets nothing: give `grid:` or `zip:` with lists of values", str(path))
    if lists[1] and len({len(p.values) for p in lists[1]}) > 1:
        lengths = ", ".join(f"{p.key}: {len(p.values)}" for p in lists[1])
        raise UserError(f"the lists under zip must have the same length, found {lengths}", lists[1][0].where)
    return lists[0], lists[1]


def _text(value, what: str, at: str, key: str) -> str:
    """A value of a sweep file as the text ``--set`` would give. YAML reads an unquoted 1.20 as the
    number 1.2: a Go version must be quoted, as in a trace file."""
    if isinstance(value, (dict, list)) or value is None:
        raise UserError(f"{what} values must be scalars, found {y.type_name(value)}", at)
    if isinstance(value, float) and key == "allocator.version":
        from memsim.models.goversions import resolve_version

        try:
            resolve_version(value)
        except ValueError as e:
            raise UserError(str(e), at) from None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def plan(grid: list[Parameter], zipped: list[Parameter]) -> Plan:
    params = grid + zipped
    seen: dict[str, Parameter] = {}
    for p in params:
        if p.key in seen:
            raise UserError(f"{p.key} is swept twice (also at {seen[p.key].where})", p.where)
        seen[p.key] = p
    if not params:
        raise UserError("nothing to sweep: give --set KEY=V1,V2,... or --sweep FILE", "memsim sweep")
    zipped_rows = list(zip(*(p.values for p in zipped))) or [()]
    combinations = tuple(g + z for g in itertools.product(*(p.values for p in grid)) for z in zipped_rows)
    return Plan(tuple(p.key for p in params), tuple(p.values for p in params), combinations)


# ---- One combination on one trace -----------------------------------------------------------------

def configure(loaded, machine, keys: tuple[str, ...], values: tuple[str, ...]):
    """The machine and allocator spec of one run: ``machine`` (the trace's, resolved) and the
    trace's allocator with each ``keys[i]`` set to ``values[i]``. A value the machine file format
    rejects is a UserError naming the key."""
    from memsim.formats.machine_file import machine_from_mapping, machine_mapping

    mapping = machine_mapping(machine)
    allocator = {}
    for key, value in zip(keys, values):
        parts = key.split(".")
        if parts[0] == "allocator":
            if len(parts) != 2 or parts[1] not in ALLOCATOR_FIELDS:
                raise UserError(f"unknown key {key!r}; the allocator's are "
                                f"{', '.join('allocator.' + f for f in ALLOCATOR_FIELDS)}", f"--set {key}")
            allocator[parts[1]] = _typed(parts[1], value)
        else:
            _set(mapping, parts, key, _typed(parts[-1], value))
    described = ", ".join(f"{k}={v}" for k, v in zip(keys, values) if not k.startswith("allocator."))
    machine = machine_from_mapping(mapping, f"the machine with {described}") if described else machine
    return machine, _allocator_spec(loaded.allocator, allocator)


def _typed(field: str, value: str):
    """``value`` typed by the field it sets, as YAML would read it in a machine file."""
    if field in TEXT_FIELDS:
        return value
    try:
        return yaml.safe_load(io.StringIO(value))
    except yaml.YAMLError:
        return value


def _set(mapping: dict, parts: list[str], key: str, value) -> None:
    """Set ``levels.<cache name>.<field>`` (or ``levels.<index>.<field>`` for a unified level), or
    a top-level or nested field (``cores``, ``coherence.protocol``) of a machine mapping."""
    where = f"--set {key}"
    target = mapping
    if parts[0] == "levels":
        if len(parts) != 3:
            raise UserError(f"expected levels.<cache>.<field> (e.g. levels.L1d.size), found {key!r}", where)
        target = _cache(mapping, parts[1], where)
        parts = parts[2:]
        if parts[0] in ("sets", "ways"):  # the geometry given the other way: size and assoc give way
            target.pop("size", None)
            target.pop("assoc", None)
        elif parts[0] in ("size", "assoc"):
            target.pop("sets", None)
            target.pop("ways", None)
    for depth, part in enumerate(parts[:-1]):
        target = target.get(part)
        if not isinstance(target, dict):
            raise UserError(f"unknown key {key!r}: {'.'.join(parts[: depth + 1])} is not a section of the machine",
                            where)
    target[parts[-1]] = value  # an unknown field is told by the machine's validation, with suggestions


def _cache(mapping: dict, name: str, where: str) -> dict:
    caches = [c for level in mapping["levels"] for c in (level["split"] if "split" in level else [level])]
    for c in caches:
        if c["name"] == name:
            return c
    if name.isdigit() and int(name) < len(mapping["levels"]) and "split" not in mapping["levels"][int(name)]:
        return mapping["levels"][int(name)]
    raise UserError(f"no cache named {name!r} in machine {mapping['name']!r}; its caches: "
                    f"{', '.join(c['name'] for c in caches)}", where)


def _allocator_spec(spec, changes: dict):
    """The trace's allocator spec with ``changes`` (model, version, gogc) applied."""
    from memsim.models.goversions import NEWEST, resolve_version
    from memsim.trace.program import AllocatorSpec

    if not changes:
        return spec
    model = changes.get("model", spec.model)
    if model not in ("go", "none"):
        raise UserError(f"allocator.model must be go or none, found {model!r}", "--set allocator.model")
    if model == "none":
        return AllocatorSpec()
    try:
        go = resolve_version(changes.get("version", spec.version or NEWEST))
    except ValueError as e:
        raise UserError(str(e), "--set allocator.version") from None
    gogc = changes.get("gogc", spec.gogc)
    if "gogc" in changes:
        if gogc is False or gogc == "off":  # YAML reads a bare off as false
            gogc = None
        elif isinstance(gogc, bool) or not isinstance(gogc, int) or gogc < 1:
            raise UserError(f"allocator.gogc must be an integer percentage (at least 1) or off, found {gogc!r}",
                            "--set allocator.gogc")
    return AllocatorSpec("go", go.version, go.generation, gogc, go.warning)


# ---- Runs -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    run: int  # the run's number: (trace index) * combinations + combination index
    trace: str  # as given
    machine: str | None  # --machine, else the trace's own
    keys: tuple[str, ...]
    values: tuple[str, ...]


_TRACE_CACHE: dict[str, object] = {}  # the last trace a worker opened: most of its runs share it


def open_cached(path: str):
    from memsim.runner import open_trace

    if path not in _TRACE_CACHE:
        _TRACE_CACHE.clear()
        _TRACE_CACHE[path] = open_trace(Path(path), None, False)
    return _TRACE_CACHE[path]


def resolve(task: Task):
    """The trace, machine and allocator spec of a run (UserError for settings it cannot have)."""
    from memsim.runner import trace_machine

    loaded = open_cached(task.trace)
    machine, spec = configure(loaded, trace_machine(loaded, task.machine), task.keys, task.values)
    return loaded, machine, spec


def run_task(task: Task) -> dict:
    """One run, in whatever process runs it: ``{"run", "status", "error", "metrics"}``. A setting
    or trace the run rejects makes an error row, not a failed sweep. Ctrl-C propagates."""
    from memsim.report.metrics import headline
    from memsim.runner import new_allocator, open_trace, replay_trace
    from memsim.trace.program import StreamedTrace

    try:
        loaded, machine, spec = resolve(task)
        if isinstance(loaded, StreamedTrace):  # it counts what it reads: a second read would add to the first
            loaded = open_trace(Path(task.trace), None, False)
        allocator = new_allocator(loaded, machine, spec)
        result = replay_trace(loaded, machine, allocator, top=1, allocator_spec=spec)
    except UserError as e:
        return {"run": task.run, "status": "error", "error": str(e), "metrics": {}}
    if result.partial:  # Ctrl-C in the middle: the run is not a result
        raise KeyboardInterrupt
    return {"run": task.run, "status": "ok", "error": "", "metrics": headline(result)}


@dataclass(frozen=True)
class Survey:
    """What the runs of a sweep need, found before any runs: the metric columns of the results
    (every headline metric any run can have, in the order of the first run that has it), and
    each run's kind: runs of one kind compile the same kernels."""

    columns: list[str]
    kinds: dict[int, tuple]


def survey(tasks: list[Task]) -> Survey:
    from memsim.engine.replay import kernel_name
    from memsim.report.metrics import metric_names

    columns: dict[str, None] = {}
    kinds = {}
    for task in tasks:
        try:
            loaded, machine, spec = resolve(task)
        except UserError:  # an error row: no columns, nothing to compile
            kinds[task.run] = ("error",)
            continue
        columns.update(dict.fromkeys(metric_names([c.name for c in machine.caches], spec.model == "go")))
        kinds[task.run] = (type(loaded).__name__, kernel_name(machine), machine.counting, spec.model)
    return Survey(list(columns), kinds)


def execute(tasks: list[Task], kinds: dict[int, tuple], jobs: int, scheduler: str | None,
            done: Callable[[dict], None]) -> None:
    """Run every task, calling ``done(row)`` as each finishes (in the calling process).

    The first run of each kind (``survey``) runs here first, so that each kernel is compiled
    once into Numba's cache, which the workers then load, rather than compiled by every worker at
    once. The rest go to ``jobs`` worker processes, or to the Dask cluster at ``scheduler``."""
    first: dict[tuple, Task] = {}
    for task in tasks:
        first.setdefault(kinds[task.run], task)
    warm = set(t.run for t in first.values()) if jobs > 1 or scheduler else {t.run for t in tasks}
    for task in tasks:
        if task.run in warm:
            done(run_task(task))
    rest = [t for t in tasks if t.run not in warm]
    if not rest:
        return
    if scheduler:
        _on_dask(rest, scheduler, done)
    else:
        _on_processes(rest, jobs, done)


def _on_processes(tasks: list[Task], jobs: int, done: Callable[[dict], None]) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: a forked child would inherit this process's Numba and LLVM state. A worker
    # inherits the environment, NUMBA_CACHE_DIR (memsim.numba_cache sets it) included: the cache
    # the first runs just filled.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_task, t) for t in tasks]
        try:
            for future in as_completed(futures):
                done(future.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _on_dask(tasks: list[Task], scheduler: str, done: Callable[[dict], None]) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UserError("--scheduler needs Dask: pip install 'memsim[dask]'", "--scheduler") from None
    try:
        client = Client(scheduler, timeout=30)
    except (OSError, TimeoutError) as e:
        raise UserError(f"cannot reach the Dask scheduler: {e}", "--scheduler") from None
    with client:
        futures = client.map(run_task, tasks, pure=False)
        try:
            for future in as_completed(futures):
                done(future.result())
        except BaseException:
            client.cancel(futures)
            raise


# ---- Result files -----------------------------------------------------------------------------------

class ResultFiles:
    """The CSV and JSON-lines results of a sweep, appended a complete line per run, in run order.

    With ``resume``, lines already there are kept (a half-written last line, left by a crash, is
    dropped first) and their runs are not run again; without it, an existing file is an error:
    nothing a user has is overwritten."""

    def __init__(self, csv_path: Path, keys: tuple[str, ...], metrics: list[str], resume: bool):
        self.csv_path, self.jsonl_path = csv_path, csv_path.with_suffix(".jsonl")
        self.keys, self.metrics = keys, metrics
        self.columns = [*RUN_COLUMNS, *keys, *STATUS_COLUMNS, *metrics]
        self.recorded: set[int] = set()
        exists = [p for p in (self.csv_path, self.jsonl_path) if p.exists()]
        if exists and not resume:
            raise UserError("exists: give --resume to continue that sweep, or another -o", str(exists[0]))
        if resume and self.csv_path.exists():
            self._read_back()
        else:
            self._start()
        self.pending: dict[int, tuple[list, dict]] = {}

    def _start(self) -> None:
        try:
            with open(self.csv_path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f, lineterminator="\n").writerow(self.columns)
            self.jsonl_path.write_text("", encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot write the results: {e.strerror}", str(self.csv_path)) from None

    def _read_back(self) -> None:
        for path in (self.csv_path, self.jsonl_path):
            _drop_partial_line(path)
        with open(self.csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if not rows or rows[0] != self.columns:
            raise UserError("was written by a different sweep (other traces, settings or metrics): its columns "
                            "differ; give another -o", str(self.csv_path))
        runs = {int(r[0]) for r in rows[1:]}
        lines = self.jsonl_path.read_text(encoding="utf-8").splitlines() if self.jsonl_path.exists() else []
        documented = {json.loads(line)["run"] for line in lines}
        self.recorded = runs & documented
        if runs != documented:  # a crash between the two appends: keep the runs both files have
            self._rewrite([r for r in rows[1:] if int(r[0]) in self.recorded],
                          [line for line in lines if json.loads(line)["run"] in self.recorded])

    def _rewrite(self, rows: list[list[str]], lines: list[str]) -> None:
        from memsim.atomic import atomic_file

        with atomic_file(self.csv_path) as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(self.columns)
            writer.writerows(rows)
        with atomic_file(self.jsonl_path) as f:
            f.writelines(line + "\n" for line in lines)

    def expect(self, runs: Iterable[int]) -> None:
        """The runs still to come, in the order their lines are written."""
        self.order = sorted(runs)
        self.next = 0

    def add(self, task: Task, row: dict) -> None:
        """Record a finished run; its lines are written once every earlier run's are."""
        metrics = row["metrics"]
        cells = [task.run, task.trace, *task.values, row["status"], row["error"],
                 *(_cell(metrics.get(m)) for m in self.metrics)]
        document = {"run": task.run, "trace": task.trace, "settings": dict(zip(task.keys, task.values)),
                    "status": row["status"], "error": row["error"] or None, "metrics": metrics}
        self.pending[task.run] = (cells, document)
        while self.next < len(self.order) and self.order[self.next] in self.pending:
            cells, document = self.pending.pop(self.order[self.next])
            self._append(cells, document)
            self.next += 1

    def _append(self, cells: list, document: dict) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(cells)
        for path, text in ((self.csv_path, buffer.getvalue()), (self.jsonl_path, json.dumps(document) + "\n")):
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)  # one write per line: a crash leaves at most a partial last line
                f.flush()
                os.fsync(f.fileno())


def _cell(value) -> str:
    return "" if value is None else str(value)


def _drop_partial_line(path: Path) -> None:
    """Cut what follows the last newline: a line a crash left half-written."""
    if not path.exists():
        return
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        with open(path, "r+b") as f:
            f.truncate(end)


def read_results(csv_path: Path) -> list[dict[str, str]]:
    with open(csv_path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def tasks_for(traces: list[str], machine: str | None, sweep: Plan) -> list[Task]:
    return [Task(t * len(sweep.combinations) + c, trace, machine, sweep.keys, values)
            for t, trace in enumerate(traces) for c, values in enumerate(sweep.combinations)]


def without(tasks: list[Task], recorded: set[int]) -> list[Task]:
    return [t for t in tasks if t.run not in recorded]

