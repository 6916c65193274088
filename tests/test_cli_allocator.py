"""The allocator through the command line: run's allocator section, layout, sizeclasses, and
the rules a trace can break while it replays (exit 2 at the event's position)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from memsim.cli import main

HEAP = 0xC000000000

MACHINE = """\
machine:
  name: m
  cores: 2
  line_size: 64
  levels:
    - {name: L1, sets: 4, ways: 2, latency: 1}
  memory: {latency: 100}
"""


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def trace(tmp_path: Path, events: str, allocator: str = '{model: go, version: "1.27"}') -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(f"memsim: 1\nname: t\n{MACHINE}allocator: {allocator}\nevents:\n{events}")
    return path


def json_of(*args) -> dict:
    result = invoke(*args, "--json", "-")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


COUNTERS = """\
  - alloc: {id: a, size: 8, core: 0, site: "stats.go:14"}
  - alloc: {id: b, size: 8, core: 0, site: "stats.go:14"}
  - alloc: {id: big, size: 40000, core: 1, pointers: true}
  - parallel:
      threads:
        - {core: 0, repeat: 50, do: [{rmw: {obj: a, size: 8}}]}
        - {core: 1, repeat: 50, do: [{rmw: {obj: b, size: 8}}]}
  - write: {core: 1, obj: big, offset: 39992, size: 8}
  - free: {id: a}
  - gc: {}
"""


def test_run_reports_the_allocator(tmp_path):
    doc = json_of("run", trace(tmp_path, COUNTERS))
    alloc = doc["allocator"]
    assert (alloc["model"], alloc["version"], alloc["generation"]) == ("go", "1.27", "greentea")
    # a and b share one tiny block (b counts as malloc + free at once); big is a 5-page span
    assert alloc["mallocs"] == 3 and alloc["num_gc"] == 1
    assert alloc["tiers"] == {"tiny": 1, "mcache": 0, "mcentral": 0, "mheap": 1, "os": 1}
    classes = {row["size_class"]: row for row in alloc["size_classes"]}
    assert classes[0]["live_bytes"] == 5 * 8192 and classes[0]["internal_waste"] == 5 * 8192 - 40000
    assert classes[2]["live_objects"] == 1  # the block stays: b still lives in it
    assert alloc["heap_objects"] == alloc["mallocs"] - alloc["frees"]
    assert doc["coherence"]["invalidations"] == 99  # the two counters ping-pong in one line
    assert "Go allocator" in invoke("run", trace(tmp_path, COUNTERS)).output


def test_raw_address_traces_report_no_allocator(tmp_path):
    doc = json_of("run", trace(tmp_path, "  - read: {core: 0, addr: 0, size: 8}\n", allocator="none"))
    assert doc["allocator"] == {"model": "none"}


def test_layout_json(tmp_path):
    objects = {o["id"]: o for o in json_of("layout", trace(tmp_path, COUNTERS))["objects"]}
    a, b, big = objects["a"], objects["b"], objects["big"]
    assert (a["addr"], b["addr"]) == (HEAP, HEAP + 8)
    assert a["shares_lines_with"] == ["b"] and b["shares_lines_with"] == ["a"]
    assert (a["size_class"], a["slot_size"], a["span_objects"], a["site"]) == (2, 16, 504, "stats.go:14")
    assert (big["size_class"], big["span_pages"], big["span_objects"]) == (0, 5, 1)
    assert big["addr"] == big["span_base"] == big["page"] and big["addr"] % 8192 == 0
    assert len(big["lines"]) == -(-40000 // 64) and big["lines"][0] == big["addr"]
    assert big["shares_lines_with"] == []


def test_layout_table(tmp_path):
    result = invoke("layout", trace(tmp_path, COUNTERS))
    assert result.exit_code == 0
    assert "0xc000000008" in result.output and "stats.go:14" in result.output


def test_layout_needs_the_go_allocator(tmp_path):
    result = invoke("layout", trace(tmp_path, "  - read: {core: 0, addr: 0, size: 8}\n", allocator="none"))
    assert result.exit_code == 2
    assert "layout needs a trace with `allocator: go`" in result.output


@pytest.mark.parametrize(
    "events, bad_event, message",
    [
        ("  - alloc: {id: a, size: 8, core: 0}\n  - free: {id: a}\n  - read: {core: 0, obj: a, size: 1}\n",
         3, "object 'a' is used after it was freed"),
        ("  - alloc: {id: a, size: 8, core: 0}\n  - free: {id: a}\n  - free: {id: a}\n",
         3, "object 'a' is freed twice"),
        ("  - free: {id: a}\n  - alloc: {id: a, size: 8, core: 0}\n",
         1, "object 'a' is freed before it is allocated"),
        ("  - read: {core: 0, obj: a, size: 1}\n  - alloc: {id: a, size: 8, core: 0}\n",
         1, "object 'a' is used before it is allocated"),
    ],
)
def test_rules_broken_during_replay_name_the_event(tmp_path, events, bad_event, message):
    path = trace(tmp_path, events)
    first_event_line = 12
    for command in ("run", "layout"):
        result = invoke(command, path)
        assert result.exit_code == 2
        assert f"error: {path}:{first_event_line + bad_event - 1}:5: {message}" in result.output


def test_sizeclasses_table_and_json():
    result = invoke("sizeclasses")
    assert result.exit_code == 0 and "Go 1.27 size classes" in result.output
    doc = json_of("sizeclasses", "--go-version", "1.21.5")
    assert doc["go_version"] == "1.21" and doc["generation"] == "classic" and doc["small_limit"] == 32768
    row = doc["size_classes"][1]
    assert (row["slot_size"], row["objects_noscan"], row["objects_scan"]) == (16, 512, 512)
    assert len(doc["size_classes"]) == 67


def test_sizeclasses_rejects_a_bad_version():
    result = invoke("sizeclasses", "--go-version", "1.9")
    assert result.exit_code == 2 and "--go-version: Go 1.9 is older than the oldest supported" in result.output


def test_sizeclasses_warns_about_a_newer_version():
    result = CliRunner().invoke(main, ["sizeclasses", "--go-version", "1.40", "--json", "-"])
    assert result.exit_code == 0
    assert "newer than the newest known" in result.stderr and json.loads(result.stdout)["go_version"] == "1.27"
