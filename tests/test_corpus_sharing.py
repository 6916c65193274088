"""The corpus traces that teach coherence give exactly the verdicts worked out for them.

The expected numbers were derived before the engine classified anything, with a separate
throwaway model of private caches without evictions (docs/coherence.md's rules applied to each
trace's loop by hand: a ping-pong of N rounds over two cores gives 2N - 2 coherence misses)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from memsim.cli import main

TRACES = Path(__file__).resolve().parent.parent / "traces"

# trace: (false sharing, true sharing, false at the miss, true at the miss)
EXPECTED = {
    "false-sharing-counters": (19_998, 0, 19_998, 0),
    "padded-counters": (0, 0, 0, 0),
    "true-sharing-counter": (0, 19_998, 0, 19_998),
    "read-mostly-table": (0, 0, 0, 0),
    "producer-consumer-ring": (0, 7_151, 0, 7_151),
    # the packed ring puts the indices on the data's lines: 400 misses touch only bytes nobody
    # wrote (false at the miss), then read freshly written data in the same lifetime (true)
    "producer-consumer-ring-packed": (12_000, 7_151, 12_400, 6_751),
    "go-worker-counters": (39_996, 0, 39_996, 0),
    "go-padded-worker-counters": (0, 0, 0, 0),
    "go-shared-counter": (0, 39_996, 0, 39_996),
    "go-handoff-structs": (39_998, 0, 39_998, 0),
    "go-handoff-structs-local": (0, 0, 0, 0),
    "go-tiny-neighbours": (9_999, 1, 9_999, 1),
}


def report(name: str, *options: str) -> dict:
    result = CliRunner().invoke(main, ["run", str(TRACES / f"{name}.yaml"), "--quiet", "--json", "-", *options],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sharing_verdicts(name):
    doc = report(name)
    c = doc["coherence"]
    got = (c["false_sharing_misses"], c["true_sharing_misses"], c["false_sharing_misses_at_miss"],
           c["true_sharing_misses_at_miss"])
    assert got == EXPECTED[name]
    # every verdict belongs to a reported line, and the lines add up to the totals
    lines = report(name, "--top", "0")["false_sharing"]
    assert sum(line["false_sharing_misses"] for line in lines) == got[0]
    assert sum(line["true_sharing_misses"] for line in lines) == got[1]
    # the first data level sees every coherence miss once per piece
    assert doc["levels"][1 if doc["levels"][0]["name"] == "L1i" else 0]["misses_by_class"]["coherence"] == sum(got[:2])


def test_packed_worker_counters_name_the_objects_and_the_fix():
    (line,) = report("go-worker-counters")["false_sharing"]
    assert [(o["id"], o["offset"], o["size"]) for o in line["objects"]] == [
        ("counter0", 0, 8), ("counter1", 8, 8), ("counter2", 16, 8), ("counter3", 24, 8)]
    assert [(c["core"], c["write_bytes"]) for c in line["cores"]] == [
        (0, [[0, 8]]), (1, [[8, 16]]), (2, [[16, 24]]), (3, [[24, 32]])]
    assert "allocate each on the P that uses it" in line["fix"]
    assert "to 64 B" in line["fix"]


def test_raw_counters_fix_speaks_of_offsets_and_cores():
    (line,) = report("false-sharing-counters")["false_sharing"]
    assert line["objects"] == []
    assert line["fix"].startswith("core 0 writes [0, 8), core 1 writes [8, 16) of line 0x1000")


def test_read_mostly_table_has_no_coherence_misses_once_warm():
    doc = report("read-mostly-table")
    assert doc["false_sharing"] == [] and doc["coherence"]["invalidations"] == 0
