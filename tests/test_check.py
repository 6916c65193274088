"""`memsim check`: baselines, comparison rules, --update, --junit and config errors, on small
corpora copied from traces/."""
from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from memsim.check import ALLOWED, REGRESSION, TOLERATED, Config, Rule, verdict
from memsim.cli import main

ROOT = Path(__file__).resolve().parent.parent
TRACES = ("padded-counters.yaml", "go-worker-counters.yaml")  # the smallest: raw addresses, and the Go allocator
PADDED, GO = TRACES


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A corpus of two traces with baselines, made once; tests work on copies."""
    corpus = tmp_path_factory.mktemp("recorded")
    for name in TRACES:
        shutil.copy(ROOT / "traces" / name, corpus)
    result = invoke("check", corpus, "--update")
    assert result.exit_code == 0, result.output
    return corpus


@pytest.fixture
def corpus(recorded, tmp_path) -> Path:
    return Path(shutil.copytree(recorded, tmp_path / "corpus"))


def baseline(corpus: Path, trace: str) -> Path:
    return corpus / "baselines" / f"{trace}.json"


def edit_baseline(corpus: Path, trace: str, **metrics) -> dict:
    """Set metrics of a baseline (as if memsim had computed them before); the original metrics."""
    path = baseline(corpus, trace)
    doc = json.loads(path.read_text())
    original = dict(doc["metrics"])
    doc["metrics"].update({key.replace("__", "."): value for key, value in metrics.items()})
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return original


def config(corpus: Path, text: str) -> None:
    (corpus / "check.yaml").write_text(text)


def snapshot(corpus: Path) -> dict[str, bytes]:
    return {str(p.relative_to(corpus)): p.read_bytes() for p in sorted(corpus.rglob("*")) if p.is_file()}


def test_the_baseline_format(recorded):
    doc = json.loads(baseline(recorded, GO).read_text())
    assert list(doc) == ["memsim", "trace", "machine", "metrics"] and doc["memsim"] == 1
    assert doc["trace"]["file"] == GO and doc["trace"]["name"] == "go worker counters (tiny-packed)"
    assert doc["trace"]["events"] == 40004 and len(doc["trace"]["sha256"]) == 64
    assert doc["machine"]["name"] == "example-4c"
    assert list(doc["metrics"])[:4] == ["events", "accesses", "cycles", "amat"]
    assert doc["metrics"]["allocator.mallocs"] == 4
    assert baseline(recorded, GO).read_text().endswith("}\n")


def test_exact_pass(corpus):
    before = snapshot(corpus)
    result = invoke("check", corpus)
    assert result.exit_code == 0, result.output
    assert result.stdout == "2 traces: 2 passed, 0 failed, 0 errors\n"  # nothing per unchanged metric
    assert snapshot(corpus) == before  # a check writes nothing


def test_a_changed_metric_fails_and_is_shown(corpus):
    now = edit_baseline(corpus, PADDED, cycles=20000)["cycles"]
    before = snapshot(corpus)
    result = invoke("check", corpus)
    assert result.exit_code == 1
    (row,) = [line for line in result.stdout.splitlines() if " cycles " in line]
    assert "20,000" in row and f"{now:,}" in row and f"+{now - 20000:,}" in row and "regression" in row
    assert f"+{100 * (now - 20000) / 20000:.2f}%" in row
    assert "2 traces: 1 passed, 1 failed, 0 errors; 1 metric changed (1 regressed" in result.stdout
    assert snapshot(corpus) == before


def test_a_metric_missing_on_either_side_is_a_regression(corpus):
    path = baseline(corpus, PADDED)
    doc = json.loads(path.read_text())
    del doc["metrics"]["L1.hits"]
    doc["metrics"]["L1.bogus"] = 3
    path.write_text(json.dumps(doc))
    result = invoke("check", corpus)
    assert result.exit_code == 1
    assert "new metric" in result.stdout and "gone" in result.stdout and "2 regressed" in result.stdout


def test_tolerance_within_passes_beyond_fails(corpus):
    now = edit_baseline(corpus, PADDED, cycles=20000)["cycles"]
    assert now - 20000 == 198  # 0.99 %
    config(corpus, "memsim: 1\nmetrics:\n  cycles: {relative: 0.0099}\n")
    result = invoke("check", corpus)
    assert result.exit_code == 0, result.output
    assert "within tolerance" in result.stdout
    config(corpus, "memsim: 1\nmetrics:\n  cycles: {relative: 0.0098}\n")
    assert invoke("check", corpus).exit_code == 1
    config(corpus, f"memsim: 1\nmetrics:\n  cycles: {{absolute: {now - 20000}}}\n")
    assert invoke("check", corpus).exit_code == 0
    config(corpus, f"memsim: 1\ndefault: {{absolute: {now - 20001}}}\n")
    assert invoke("check", corpus).exit_code == 1


def test_allowed_direction_passes_one_way_only(corpus):
    now = edit_baseline(corpus, PADDED, cycles=30000)["cycles"]  # fewer cycles now
    config(corpus, "memsim: 1\nmetrics:\n  cycles: {allow: decrease}\n")
    result = invoke("check", corpus)
    assert result.exit_code == 0 and "allowed" in result.stdout
    edit_baseline(corpus, PADDED, cycles=now - 1)  # one more cycle now
    result = invoke("check", corpus)
    assert result.exit_code == 1 and "regression" in result.stdout


def test_glob_and_per_trace_rules(corpus):
    edit_baseline(corpus, PADDED, L1__hits=1, L1__accesses=1)
    edit_baseline(corpus, GO, L1d__misses=1)
    config(corpus, f"""\
memsim: 1
metrics:
  "L1*": {{allow: both}}
  L1.accesses: {{}}          # exact beats the glob: no change allowed
traces:
  {GO}:
    metrics:
      "*.misses": {{allow: increase}}
""")
    result = invoke("check", corpus)
    assert result.exit_code == 1
    verdicts = {line.split()[1]: line.split("│")[-2].strip() for line in result.stdout.splitlines()
                if line.startswith("│   ")}
    assert verdicts == {"L1.hits": ALLOWED, "L1.accesses": REGRESSION, "L1d.misses": ALLOWED}


def test_rule_resolution():
    trace_rule, exact, long_glob, short_glob = (Rule("L1d.*"), Rule("L1d.misses"), Rule("L1d.miss*"), Rule("*.misses"))
    cfg = Config(Rule("", relative=0.5), (short_glob, long_glob, exact), {"a.yaml": (trace_rule,)})
    assert cfg.rule("b.yaml", "L1d.misses") is exact
    assert cfg.rule("b.yaml", "L1d.misses_cold") is long_glob  # the longer glob
    assert cfg.rule("b.yaml", "L2.misses") is short_glob
    assert cfg.rule("b.yaml", "cycles") is cfg.default
    assert cfg.rule("a.yaml", "L1d.misses") is trace_rule  # a trace's own rules come first
    assert cfg.rule("a.yaml", "L2.misses") is short_glob
    both = Rule("x", relative=0.1, absolute=5)
    assert verdict(both, 100, 10) == TOLERATED and verdict(both, 100, -11) == REGRESSION  # the larger bound
    assert verdict(both, 10, 5) == TOLERATED and verdict(both, 10, 6) == REGRESSION
    assert verdict(Rule("x", absolute=0.000001), 0.5, 0.000001) == TOLERATED


def test_missing_baseline(corpus):
    baseline(corpus, GO).unlink()
    result = invoke("check", corpus)
    assert result.exit_code == 1
    assert f"{GO}: no baseline" in result.stdout and "--update` records one" in result.stdout


def test_changed_trace(corpus):
    with open(corpus / PADDED, "a") as f:
        f.write("# a comment changes the file, not the metrics\n")
    result = invoke("check", corpus)
    assert result.exit_code == 1
    assert f"{PADDED}: the trace changed since its baseline was made" in result.stdout
    assert "metric" not in result.stdout.split("\n")[0]  # the metrics did not change: no table


def test_changed_machine(corpus):
    path = baseline(corpus, PADDED)
    doc = json.loads(path.read_text())
    doc["machine"]["levels"][0]["latency"] += 1
    path.write_text(json.dumps(doc))
    result = invoke("check", corpus)
    assert result.exit_code == 1
    latency = doc["machine"]["levels"][0]["latency"]
    assert f"its machine differs from the baseline's (levels[0].latency: {latency} -> {latency - 1})" in result.stdout


def test_deleted_trace(corpus):
    (corpus / GO).unlink()
    result = invoke("check", corpus)
    assert result.exit_code == 1 and f"its trace {corpus / GO} is gone" in result.stdout
    result = invoke("check", corpus, "--update")
    assert result.exit_code == 0 and "removed" in result.stdout
    assert not baseline(corpus, GO).exists()
    assert invoke("check", corpus).exit_code == 0


def test_update_writes_baselines_that_pass_byte_identical(tmp_path):
    corpora = []
    for where in ("one", "two/deeper"):
        corpus = tmp_path / where
        corpus.mkdir(parents=True)
        for name in TRACES:
            shutil.copy(ROOT / "traces" / name, corpus)
        assert invoke("check", corpus).exit_code == 1
        assert not (corpus / "baselines").exists()  # nothing written without --update
        result = invoke("check", corpus, "--update")
        assert result.exit_code == 0 and result.stdout.count("(new)") == 2
        corpora.append(snapshot(corpus))
        assert invoke("check", corpus).exit_code == 0
        result = invoke("check", corpus, "--update")
        assert "up to date" in result.stdout and snapshot(corpus) == corpora[-1]
    assert corpora[0] == corpora[1]  # no path, nothing of the moment in a baseline


def test_update_rewrites_only_what_changed(corpus):
    edit_baseline(corpus, PADDED, cycles=1)
    untouched = baseline(corpus, GO).stat().st_mtime_ns
    result = invoke("check", corpus, "--update")
    assert result.exit_code == 0
    assert f"wrote {baseline(corpus, PADDED)} (metrics changed)" in result.stdout and GO not in result.stdout
    assert baseline(corpus, GO).stat().st_mtime_ns == untouched
    assert invoke("check", corpus).exit_code == 0


def test_an_unreadable_baseline_is_an_error_that_update_mends(corpus):
    baseline(corpus, PADDED).write_text('{"memsim": 1,\n  "trace": }\n')
    result = invoke("check", corpus)
    assert result.exit_code == 1
    assert f"error {PADDED}: {baseline(corpus, PADDED)}:2:12: the baseline is not valid JSON" in result.stdout
    result = invoke("check", corpus, "--update")
    assert result.exit_code == 0 and "(unreadable)" in result.stdout
    assert invoke("check", corpus).exit_code == 0


def test_update_keeps_the_baseline_of_a_trace_that_does_not_run(corpus):
    kept = baseline(corpus, PADDED).read_bytes()
    (corpus / PADDED).write_text("memsim: 1\nevents: 3\n")
    result = invoke("check", corpus, "--update")
    assert result.exit_code == 1 and f"error {PADDED}: did not run: " in result.stdout
    assert baseline(corpus, PADDED).read_bytes() == kept


def test_junit(corpus):
    edit_baseline(corpus, PADDED, cycles=1, L1__hits=2)
    (corpus / "broken.yaml").write_text("memsim: 1\nevents:\n  - read: {core: 0, adr: 0, size: 8}\n")
    target = corpus / "junit.xml"
    result = invoke("check", corpus, "--junit", target)
    assert result.exit_code == 1
    assert "broken.yaml: did not run: " in result.stdout and "broken.yaml:3:" in result.stdout
    suite = ET.parse(target).getroot()
    assert suite.tag == "testsuite" and suite.get("name") == "memsim check"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = {case.get("name"): case for case in suite}
    assert list(cases) == ["broken.yaml", GO, PADDED]
    assert "broken.yaml:3:" in cases["broken.yaml"].find("error").get("message")
    assert cases[GO].find("failure") is None and cases[GO].find("error") is None
    failure = cases[PADDED].find("failure")
    assert "2 metrics regressed: cycles, L1.hits" in failure.get("message")
    assert "cycles: 1 -> " in failure.text


def test_update_and_junit_together_is_a_usage_error(corpus):
    result = invoke("check", corpus, "--update", "--junit", corpus / "j.xml")
    assert result.exit_code == 2 and "--junit" in result.stderr


@pytest.mark.parametrize("text, position, message", [
    ("memsim: 1\nmetrics:\n  cycles: {relativ: 0.1}\n", "3:12", "unknown key 'metrics.cycles.relativ' (did you mean "
                                                                  "'relative'?); allowed: relative, absolute, allow"),
    ("memsim: 1\nmetrics:\n  cycles: {allow: up}\n", "3:19",
     "must be one of the allowed values, found the string 'up'; allowed: none, increase, decrease, both"),
    ("memsim: 1\ndefault: {relative: -1}\n", "2:21", "default.relative must be 0 or more, found -1"),
    ("memsim: 1\ntraces:\n  padded.yaml: {metrics: {}}\n", "3:3",
     f"'padded.yaml' is not a trace of this corpus (did you mean '{PADDED}'?)"),
    ("metrics: {}\n", "1:1", "missing key 'memsim'"),
    ("memsim: 2\n", "1:9", "format version 2 is not supported"),
    ("memsim: 1\nmetrics: [cycles]\n", "2:10", "metrics must be a mapping"),
])
def test_bad_config(corpus, text, position, message):
    config(corpus, text)
    result = invoke("check", corpus)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {corpus / 'check.yaml'}:{position}: ") and message in result.stderr


def test_a_rule_that_matches_nothing_is_warned_about(corpus):
    config(corpus, "memsim: 1\nmetrics:\n  L1D.misses: {relative: 0.1}\n")
    result = invoke("check", corpus)
    assert result.exit_code == 0
    assert "check.yaml:3:3: 'L1D.misses' matches no metric" in result.stderr


def test_an_empty_corpus_is_a_user_error(tmp_path):
    result = invoke("check", tmp_path)
    assert result.exit_code == 2 and "no traces here" in result.stderr
