"""``memsim check``: re-run a corpus of traces and compare their headline metrics with stored
baselines, so CI catches a change in what memsim reports before it ships.

A corpus is a folder of traces; each trace's baseline is ``baselines/<trace file>.json`` beside
them, and ``check.yaml`` may give tolerances. Checking never writes a file; ``update_baselines``
does, only for what changed. The formats and rules are documented in docs/check.md.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memsim.errors import EXIT_REGRESSION, UserError
from memsim.formats import yamlpos as y

CONFIG_NAME = "check.yaml"
BASELINES = "baselines"
TRACE_SUFFIXES = (".yaml", ".mstrace")
FORMAT_VERSION = 1  # of the baseline files and of check.yaml
ALLOW = ("none", "increase", "decrease", "both")
RULE_KEYS = ("relative", "absolute", "allow")
SHOWN_DIFFERENCES = 3  # a changed machine names this many of its changed fields

# Verdicts, of a changed metric and of a trace.
REGRESSION, ALLOWED, TOLERATED = "regression", "allowed", "within tolerance"
PASSED, FAILED, ERROR = "passed", "failed", "error"
GONE = "trace gone"  # what fails a baseline whose trace is gone; --update removes it
NOT_RUN = "did not run"  # what fails a trace that did not run; --update keeps its baseline


# --- the corpus config (check.yaml) -------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """How much a metric may change: by ``relative`` (a fraction of its baseline value) or
    ``absolute``, whichever allows more; any change in the ``allow`` direction passes. What a rule
    does not say is 0 or none: it inherits nothing from other rules."""

    pattern: str  # a metric name, where `*` matches any run of characters ("" for the default)
    relative: float = 0.0
    absolute: float = 0.0
    allow: str = "none"
    where: str | None = None  # its key's position in check.yaml

    def matches(self, metric: str) -> bool:
        return re.fullmatch(".*".join(map(re.escape, self.pattern.split("*"))), metric) is not None

    @property
    def specificity(self) -> tuple[bool, int]:
        """Exact names beat globs; then the longer pattern wins."""
        return "*" not in self.pattern, len(self.pattern)


EXACT = Rule("")


@dataclass(frozen=True)
class Config:
    default: Rule = EXACT
    metrics: tuple[Rule, ...] = ()
    traces: dict[str, tuple[Rule, ...]] = field(default_factory=dict)  # trace file name -> its own rules

    def rule(self, trace: str, metric: str) -> Rule:
        """The trace's own rules first; only when none matches, the corpus's; then the default.
        Within one list the most specific match wins (ties: the one written first)."""
        for rules in (self.traces.get(trace, ()), self.metrics):
            matching = [r for r in rules if r.matches(metric)]
            if matching:
                return max(matching, key=lambda r: r.specificity)  # max keeps the first of equals
        return self.default


def load_config(path: Path, trace_names: list[str]) -> Config:
    """``check.yaml`` validated, or the exact default when there is none. Mistakes are UserErrors
    at file:line:column with what is allowed."""
    if not path.exists():
        return Config()
    doc = y.load(path)
    if doc is None:
        raise UserError(f"the check config is empty; expected `memsim: {FORMAT_VERSION}` and `default`, `metrics` "
                        "or `traces`", str(path))
    y.expect_mapping(doc, "the check config", y.where(doc) or str(path))
    y.check_keys(doc, "", ("memsim", "default", "metrics", "traces"), required=("memsim",))
    version = y.as_int(doc["memsim"], "memsim (the format version)", y.where(doc, "memsim"))
    if version != FORMAT_VERSION:
        raise UserError(f"check config format version {version} is not supported: this memsim reads version "
                        f"{FORMAT_VERSION}", y.where(doc, "memsim"))
    default = _rule(doc["default"], "", "default", y.where(doc, "default")) if "default" in doc else EXACT
    traces = {}
    if "traces" in doc:
        per_trace = y.expect_mapping(doc["traces"], "traces", y.where(doc, "traces"))
        for name, entry in per_trace.items():
            if name not in trace_names:
                raise UserError(f"traces: {name!r} is not a trace of this corpus{y.suggest(name, trace_names)}",
                                str(per_trace.key_marks[name]))
            entry = y.expect_mapping(entry, f"traces.{name}", y.where(per_trace, name))
            y.check_keys(entry, f"traces.{name}", ("metrics",), required=("metrics",))
            traces[name] = _rules(entry, "metrics", f"traces.{name}.metrics")
    return Config(default, _rules(doc, "metrics", "metrics") if "metrics" in doc else (), traces)


def _rules(parent: y.YMap, key: str, path: str) -> tuple[Rule, ...]:
    mapping = y.expect_mapping(parent[key], path, y.where(parent, key))
    rules = []
    for pattern, value in mapping.items():
        at = str(mapping.key_marks[pattern])
        if not isinstance(pattern, str) or not pattern:
            raise UserError(f"{path}: a metric name or pattern (e.g. L1d.misses or \"*.miss_rate\", see "
                            f"docs/metrics.md) must be a non-empty string, found {y.type_name(pattern)}", at)
        rules.append(_rule(value, pattern, f"{path}.{pattern}", y.where(mapping, pattern), at))
    return tuple(rules)


def _rule(value: Any, pattern: str, path: str, at: str | None, key_at: str | None = None) -> Rule:
    rule = y.expect_mapping(value, f"{path} (a rule: {', '.join(RULE_KEYS)})", at)
    y.check_keys(rule, path, RULE_KEYS)
    return Rule(
        pattern,
        y.field(rule, "relative", path, _non_negative, default=0.0),
        y.field(rule, "absolute", path, _non_negative, default=0.0),
        y.field(rule, "allow", path, y.as_choice, default="none", choices=ALLOW),
        key_at or at,
    )


def _non_negative(value: Any, what: str, at: str | None) -> float:
    number = y.as_number(value, what, at, positive=False)
    if number < 0:
        raise UserError(f"{what} must be 0 or more, found {value}", at)
    return number


def unused_rules(config: Config, metrics_of: dict[str, set[str]]) -> list[str]:
    """Warnings for rules that match no metric (a typo would otherwise silently not apply):
    the corpus's rules against every trace's metrics, a trace's rules against its own."""
    everything = set().union(*metrics_of.values())
    scoped = [(r, everything) for r in config.metrics]
    scoped += [(r, metrics_of.get(trace, set())) for trace, rules in config.traces.items() for r in rules]
    return [f"{rule.where}: {rule.pattern!r} matches no metric, so it applies to nothing (the names are in "
            "docs/metrics.md)" for rule, metrics in scoped if not any(map(rule.matches, metrics))]


# --- baselines ------------------------------------------------------------------------------------

def baseline_document(file: str, result) -> dict:
    """What a baseline records: the trace and machine the metrics were made from, and the metrics."""
    from memsim.report.metrics import headline

    return {
        "memsim": FORMAT_VERSION,
        "trace": {"file": file, "name": result.trace.name, "events": result.trace.events,
                  "sha256": result.trace.sha256},
        "machine": result.machine,
        "metrics": headline(result),
    }


def read_baseline(path: Path) -> dict:
    where = str(path)
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"the baseline is not valid JSON: {e.msg}", f"{where}:{e.lineno}:{e.colno}") from None
    except UnicodeDecodeError as e:
        raise UserError(f"the baseline is not UTF-8 text (byte {e.start})", where) from None
    except OSError as e:
        raise UserError(f"cannot read the baseline: {e.strerror}", where) from None
    if not isinstance(doc, dict) or doc.get("memsim") != FORMAT_VERSION:
        raise UserError(f"not a memsim baseline of format version {FORMAT_VERSION} (key 'memsim')", where)
    trace, machine, metrics = doc.get("trace"), doc.get("machine"), doc.get("metrics")
    if not (isinstance(trace, dict) and isinstance(trace.get("sha256"), str) and isinstance(machine, dict)
            and isinstance(metrics, dict) and all(_is_number(v) for v in metrics.values())):
        raise UserError("a baseline needs 'trace' (with 'sha256'), 'machine' (a mapping) and 'metrics' (numbers by "
                        "name); see docs/check.md", where)
    return doc


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- comparing ------------------------------------------------------------------------------------

def _difference(before: int | float | None, after: int | float | None) -> int | float | None:
    if before is None or after is None:
        return None
    delta = after - before
    # rates are rounded to 6 decimals: rounding their float difference keeps a change of 0.000001
    # from landing a hair above an absolute tolerance of 0.000001
    return round(delta, 12) if isinstance(delta, float) else delta


@dataclass(frozen=True)
class Change:
    """A metric that differs from its baseline; None on the side where it is missing."""

    metric: str
    baseline: int | float | None
    now: int | float | None
    verdict: str  # REGRESSION, ALLOWED or TOLERATED

    @property
    def delta(self) -> int | float | None:
        return _difference(self.baseline, self.now)


@dataclass(frozen=True)
class Problem:
    """Why a trace fails other than by its metrics: ``what`` in a few words, ``message`` in full."""

    what: str
    message: str


@dataclass
class Outcome:
    """One trace of the corpus, or one baseline whose trace is gone."""

    file: str  # the trace's file name
    baseline: Path
    status: str = PASSED  # PASSED, FAILED, or ERROR: it did not run or its baseline cannot be read
    problems: list[Problem] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    text: str | None = None  # the baseline it gives now (None: it did not run, or it is gone)
    metric_names: set[str] = field(default_factory=set)  # in the baseline or now
    seconds: float = 0.0
    warning: str | None = None  # the trace's own warning (e.g. a Go version newer than memsim knows)

    def fail(self, status: str, what: str, message: str) -> None:
        self.problems.append(Problem(what, message))
        if self.status != ERROR:
            self.status = status


@dataclass
class Report:
    corpus: Path
    outcomes: list[Outcome]
    warnings: list[str]

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if any(o.status != PASSED for o in self.outcomes) else 0

    @property
    def update_exit_code(self) -> int:
        """``--update`` fails only when a trace did not run: its baseline could not be recorded."""
        return EXIT_REGRESSION if any(p.what == NOT_RUN for o in self.outcomes for p in o.problems) else 0


def verdict(rule: Rule, baseline: int | float | None, delta: int | float | None) -> str:
    if delta is None:  # a metric that appeared or vanished: memsim's metrics changed, no rule can judge it
        return REGRESSION
    if rule.allow == "both" or (rule.allow == "increase" and delta > 0) or (rule.allow == "decrease" and delta < 0):
        return ALLOWED
    if abs(delta) <= max(rule.absolute, rule.relative * abs(baseline)):
        return TOLERATED
    return REGRESSION


def compare(file: str, old: dict[str, int | float], new: dict[str, int | float], config: Config) -> list[Change]:
    """Every metric whose value differs, in the order of the current metrics (then those only the
    baseline has)."""
    changes = []
    for metric in list(new) + [m for m in old if m not in new]:
        before, after = old.get(metric), new.get(metric)
        if before != after:
            rule = config.rule(file, metric)
            changes.append(Change(metric, before, after, verdict(rule, before, _difference(before, after))))
    return changes


def machine_differences(old: Any, new: Any, path: str = "") -> list[str]:
    """The fields of two machine echoes that differ, as ``path: old -> new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(old) + [k for k in new if k not in old]
        return [d for k in keys for d in machine_differences(old.get(k), new.get(k), f"{path}.{k}" if path else k)]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in machine_differences(a, b, f"{path}[{i}]")]
    if old == new and type(old) is type(new):
        return []
    if isinstance(old, (dict, list)) or isinstance(new, (dict, list)):
        return [f"{path} changed"]
    return [f"{path}: {json.dumps(old)} -> {json.dumps(new)}"]


# --- the check --------------------------------------------------------------------------------------

def trace_files(corpus: Path) -> list[Path]:
    return sorted((p for p in corpus.iterdir()
                   if p.suffix in TRACE_SUFFIXES and p.name != CONFIG_NAME and p.is_file()), key=lambda p: p.name)


def check_corpus(corpus: Path, progress: bool = True) -> Report:
    """Run every trace of ``corpus`` and compare it with its baseline. Writes nothing. A trace that
    does not run is an error of that trace; a bad ``check.yaml`` or an empty corpus is a UserError.
    Ctrl-C raises KeyboardInterrupt. ``progress``: a bar over the traces when stderr is a terminal."""
    from memsim.report.progress import count_progress

    traces = trace_files(corpus)
    baseline_dir = corpus / BASELINES
    orphans = sorted(p for p in baseline_dir.glob("*.json") if not (corpus / p.name[: -len(".json")]).is_file()) \
        if baseline_dir.is_dir() else []
    if not traces and not orphans:
        raise UserError(f"no traces here (a corpus's traces are its {' and '.join('*' + s for s in TRACE_SUFFIXES)} "
                        "files)", str(corpus))
    config = load_config(corpus / CONFIG_NAME, [p.name for p in traces])
    outcomes = []
    with count_progress(len(traces), progress, "checking") as advance:
        for path in traces:
            outcomes.append(_check_trace(path, baseline_dir / f"{path.name}.json", config))
            advance(1)
    for baseline in orphans:
        gone = Outcome(baseline.name[: -len(".json")], baseline)
        gone.fail(FAILED, GONE, f"its trace {corpus / gone.file} is gone: delete {baseline}, or "
                                "`memsim check --update` removes it")
        outcomes.append(gone)
    outcomes.sort(key=lambda o: o.file)
    warnings = [o.warning for o in outcomes if o.warning]
    return Report(corpus, outcomes, warnings + unused_rules(config, {o.file: o.metric_names for o in outcomes}))


def _check_trace(path: Path, baseline: Path, config: Config) -> Outcome:
    from memsim.report.jsondoc import dumps

    outcome, old = Outcome(path.name, baseline), None
    if not baseline.exists():
        outcome.fail(FAILED, "new", f"no baseline ({baseline}): `memsim check --update` records one")
    else:
        try:
            old = read_baseline(baseline)
            outcome.metric_names = set(old["metrics"])
        except UserError as e:
            outcome.fail(ERROR, "unreadable", f"{e}; `memsim check --update` rewrites it")
    start = time.perf_counter()
    try:
        result, outcome.warning = _run(path)
    except UserError as e:
        outcome.fail(ERROR, NOT_RUN, f"{NOT_RUN}: {e}")
        return outcome
    finally:
        outcome.seconds = time.perf_counter() - start
    outcome.text = dumps(baseline_document(path.name, result))
    now = json.loads(outcome.text)  # as it would be read back, so both sides are alike (lists, floats)
    outcome.metric_names |= set(now["metrics"])
    if old is None:
        return outcome
    if old["trace"]["sha256"] != now["trace"]["sha256"]:
        outcome.fail(FAILED, "trace changed", f"the trace changed since its baseline was made (sha256 "
                     f"{old['trace']['sha256'][:12]}… -> {now['trace']['sha256'][:12]}…): `memsim check --update` "
                     "records the new one")
    differences = machine_differences(old["machine"], now["machine"])
    if differences:
        shown = "; ".join(differences[:SHOWN_DIFFERENCES])
        more = f"; and {len(differences) - SHOWN_DIFFERENCES} more" if len(differences) > SHOWN_DIFFERENCES else ""
        outcome.fail(FAILED, "machine changed", f"its machine differs from the baseline's ({shown}{more}): "
                     "`memsim check --update` records the new one")
    outcome.changes = compare(path.name, old["metrics"], now["metrics"], config)
    if any(c.verdict == REGRESSION for c in outcome.changes) and outcome.status == PASSED:
        outcome.status = FAILED
    return outcome


def _run(path: Path):
    """The trace's RunResult on its own machine (as `memsim run` runs it), and its warning."""
    from memsim.runner import new_allocator, open_trace, replay_trace, trace_machine

    loaded = open_trace(path, None, False)
    machine = trace_machine(loaded, None)
    result = replay_trace(loaded, machine, new_allocator(loaded, machine), 0)
    if result.partial:  # replay_trace stops cleanly on Ctrl-C; the check stops altogether
        raise KeyboardInterrupt
    return result, loaded.allocator.warning


def update_baselines(report: Report) -> list[str]:
    """Write the baselines that differ from what the traces give now (each atomically) and remove
    those whose trace is gone; says what it did, a line each. A trace that did not run keeps its
    baseline."""
    from memsim.atomic import atomic_file

    done = []
    for outcome in report.outcomes:
        whats = [p.what for p in outcome.problems]
        if GONE in whats:
            outcome.baseline.unlink(missing_ok=True)
            done.append(f"removed {outcome.baseline} (its trace is gone)")
            continue
        if outcome.text is None:  # it did not run: its baseline stays
            continue
        if outcome.baseline.is_file() and outcome.baseline.read_bytes() == outcome.text.encode():
            continue
        if outcome.changes:
            whats.append("metrics changed")
        outcome.baseline.parent.mkdir(exist_ok=True)
        with atomic_file(outcome.baseline) as file:
            file.write(outcome.text)
        done.append(f"wrote {outcome.baseline} ({', '.join(whats) or 'rewritten in the current format'})")
    return done


# --- presenting -------------------------------------------------------------------------------------

def _value(value: int | float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.6f}" if isinstance(value, float) else f"{value:,}"


def _delta(change: Change) -> tuple[str, str]:
    """The change and the change in percent of the baseline."""
    if change.baseline is None:
        return "new metric", "—"
    if change.now is None:
        return "gone", "—"
    delta = change.delta
    shown = f"{delta:+,.6f}" if isinstance(delta, float) else f"{delta:+,}"
    if not change.baseline:
        return shown, "—"
    percent = f"{100 * delta / change.baseline:+.2f}%"
    return shown, percent if percent[1:] != "0.00%" else f"{percent[0]}<0.01%"  # never a change of "-0.00%"


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def summary(report: Report) -> str:
    changes = [c for o in report.outcomes for c in o.changes]
    text = (f"{_plural(len(report.outcomes), 'trace')}: {report.count(PASSED):,} passed, "
            f"{report.count(FAILED):,} failed, {_plural(report.count(ERROR), 'error')}")
    if changes:
        counts = ", ".join(f"{sum(c.verdict == v for c in changes):,} {label}"
                           for v, label in ((REGRESSION, "regressed"), (ALLOWED, "allowed"), (TOLERATED, TOLERATED)))
        text += f"; {_plural(len(changes), 'metric')} changed ({counts})"
    return text


VERDICT_STYLES = {REGRESSION: "bold red", ALLOWED: "green", TOLERATED: "yellow"}


def print_report(report: Report, console, update: bool = False) -> None:
    """The table of changed metrics, then why traces failed, then the summary line. For
    ``update`` only the traces that did not run are named, and there is no summary: the caller
    says what it wrote."""
    from rich.markup import escape
    from rich.table import Table

    changed = [o for o in report.outcomes if o.changes]
    if changed:
        table = Table(title=f"Metrics that differ from the baselines in {escape(str(report.corpus))}",
                      title_justify="left")
        # the trace heads its metrics rather than filling a column of its own: both names are
        # long, and a table over 120 columns would cut them
        table.add_column("trace / metric", no_wrap=True)
        for header in ("baseline", "now", "change", "change %"):
            table.add_column(header, justify="right")
        table.add_column("verdict", no_wrap=True)
        for outcome in changed:
            table.add_row(f"[bold]{escape(outcome.file)}[/]")
            for change in outcome.changes:
                table.add_row(f"  {change.metric}", _value(change.baseline), _value(change.now), *_delta(change),
                              f"[{VERDICT_STYLES[change.verdict]}]{change.verdict}[/]")
            table.add_section()
        console.print(table)
    for outcome in report.outcomes:
        for problem in outcome.problems:
            if not update or problem.what == NOT_RUN:
                label = "error" if outcome.status == ERROR else "failed"
                console.print(f"[bold red]{label}[/] {escape(outcome.file)}: {escape(problem.message)}", soft_wrap=True)
    if not update:
        console.print(summary(report))


def _change_lines(outcome: Outcome) -> list[str]:
    return [f"{c.metric}: {_value(c.baseline)} -> {_value(c.now)} ({', '.join(_delta(c))}): {c.verdict}"
            for c in outcome.changes]


def junit_xml(report: Report) -> str:
    """A JUnit XML document: one testsuite, a testcase per trace; a <failure> says what regressed,
    an <error> why the trace did not run; changes that passed go to the testcase's <system-out>."""
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", {
        "name": "memsim check", "tests": str(len(report.outcomes)), "failures": str(report.count(FAILED)),
        "errors": str(report.count(ERROR)), "skipped": "0",
        "time": f"{sum(o.seconds for o in report.outcomes):.3f}",
    })
    for outcome in report.outcomes:
        case = ET.SubElement(suite, "testcase", {"classname": f"memsim check.{report.corpus.resolve().name}",
                                                 "name": outcome.file, "time": f"{outcome.seconds:.3f}"})
        problems, changes = [p.message for p in outcome.problems], _change_lines(outcome)
        if outcome.status == PASSED:
            if changes:
                ET.SubElement(case, "system-out").text = "\n".join(changes)
            continue
        regressed = [c.metric for c in outcome.changes if c.verdict == REGRESSION]
        said = problems + ([f"{_plural(len(regressed), 'metric')} regressed: {', '.join(regressed)}"]
                        if regressed else [])
        tag, kind = ("error", "error") if outcome.status == ERROR else ("failure", "regression")
        ET.SubElement(case, tag, {"message": "; ".join(said), "type": kind}).text = "\n".join(problems + changes)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
