"""Headline metrics (docs/metrics.md) agree with the full report they summarize."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from memsim.cli import main
from memsim.report.metrics import headline
from memsim.runner import new_allocator, open_trace, replay_trace, trace_machine


def run(path: str):
    loaded = open_trace(Path(path), None, False)
    machine = trace_machine(loaded, None)
    return replay_trace(loaded, machine, new_allocator(loaded, machine), top=20)


def test_headline_matches_the_json_report(tmp_path):
    trace = "traces/go-worker-counters.yaml"
    metrics = headline(run(trace))
    out = tmp_path / "r.json"
    assert CliRunner().invoke(main, ["run", trace, "--json", str(out), "-q"]).exit_code == 0
    doc = json.loads(out.read_text())
    assert metrics["events"] == doc["trace"]["events"]
    assert metrics["accesses"] == sum(c["accesses"] for c in doc["cores"])
    assert metrics["cycles"] == sum(c["cycles"] for c in doc["cores"])
    for level in doc["levels"]:
        for key in ("accesses", "hits", "misses", "miss_rate", "evictions", "writebacks"):
            assert metrics[f"{level['name']}.{key}"] == level[key]
        for cls, n in level["misses_by_class"].items():
            assert metrics[f"{level['name']}.misses_{cls}"] == n
    for key, n in doc["coherence"].items():
        assert metrics[f"coherence.{key}"] == n
    assert metrics["coherence.false_sharing_misses"] > 0
    assert metrics["allocator.mallocs"] == doc["allocator"]["mallocs"] > 0
    assert metrics["allocator.tier_tiny"] == doc["allocator"]["tiers"]["tiny"]
    assert all(isinstance(v, (int, float)) for v in metrics.values())


def test_a_raw_address_trace_has_no_allocator_keys():
    metrics = headline(run("traces/false-sharing-counters.yaml"))
    assert not any(key.startswith("allocator.") for key in metrics)
    assert metrics["amat"] == round(metrics["cycles"] / metrics["accesses"], 6)
