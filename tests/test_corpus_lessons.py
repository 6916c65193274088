"""The corpus traces that teach memory-access and Go allocator lessons show the effect their header
comment describes, with the numbers the comment quotes.

Each trace is replayed through the command line (`memsim run --json -`, `memsim layout --json -`),
once per module. Variants (a trace with one round, without its long-lived object, ...) are
written to a temporary folder from the corpus file's text, so the comparison is with the very
trace the corpus holds."""
from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from memsim.cli import main
from memsim.report.metrics import headline
from memsim.runner import new_allocator, open_trace, replay_trace, trace_machine

TRACES = Path(__file__).resolve().parent.parent / "traces"
PAGE = 8192


def json_of(command: str, path: Path) -> dict:
    result = CliRunner().invoke(main, [command, str(path), "--json", "-"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def report(path: Path) -> dict:
    return json_of("run", path)


def layout(path: Path) -> dict[str, dict]:
    return {o["id"]: o for o in json_of("layout", path)["objects"]}


def core_level(doc: dict, core: int, level: str) -> dict:
    (row,) = [lv for lv in doc["cores"][core]["levels"] if lv["name"] == level]
    return row


def variant(tmp_path: Path, name: str, old: str, new: str, count: int = 1) -> Path:
    """The corpus trace `name` with `old` replaced by `new` (exactly `count` times)."""
    text = (TRACES / f"{name}.yaml").read_text()
    assert text.count(old) == count, f"{old!r} occurs {text.count(old)} times in {name}.yaml"
    path = tmp_path / f"{name}-variant.yaml"
    path.write_text(text.replace(old, new))
    return path


# --- pointer-chase-vs-scan ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def chase():
    return report(TRACES / "pointer-chase-vs-scan.yaml")


def test_chase_and_scan_do_the_same_number_of_loads(chase):
    assert [c["accesses"] for c in chase["cores"][:2]] == [262_144, 262_144]
    assert all(c["accesses"] == 0 for c in chase["cores"][2:])


def test_the_scan_misses_l1d_once_per_line(chase):
    scan = core_level(chase, 0, "L1d")
    assert scan["misses"] == 32_768 and scan["hits"] == 7 * 32_768
    # 2 MiB does not fit the 1.25 MiB L2: every line the scan asks L2 for comes from below
    assert core_level(chase, 0, "L2")["misses"] == 32_768


def test_the_chase_misses_l1d_and_l2_far_more_often(chase):
    loads = 262_144
    scan_l1 = core_level(chase, 0, "L1d")["misses"] / loads
    chase_l1 = core_level(chase, 1, "L1d")["misses"] / loads
    assert scan_l1 == 0.125
    assert chase_l1 > 0.95 and chase_l1 >= 7 * scan_l1
    (l1d,) = [lv for lv in chase["levels"] if lv["name"] == "L1d"]
    assert l1d["instances"][1]["miss_rate"] >= 4 * l1d["instances"][0]["miss_rate"]
    # per load, L2 misses: 12.5% for the scan, about 41% for the chase
    scan_l2 = core_level(chase, 0, "L2")["misses"] / loads
    chase_l2 = core_level(chase, 1, "L2")["misses"] / loads
    assert chase_l2 >= 3 * scan_l2
    # the chase's extra misses are capacity misses, not first touches
    assert core_level(chase, 1, "L1d")["misses_by_class"]["capacity"] > 200_000


def test_both_read_every_line_of_their_array_from_memory_once(chase):
    assert core_level(chase, 0, "L3")["misses"] == 32_768
    assert 32_700 <= core_level(chase, 1, "L3")["misses"] <= 32_768
    assert chase["memory"]["reads"] == core_level(chase, 0, "L3")["misses"] + core_level(chase, 1, "L3")["misses"]
    # serial latencies: the chase costs more per load even though L3 serves most of its misses
    assert chase["cores"][1]["amat"] > chase["cores"][0]["amat"]


# --- go-size-class-waste -----------------------------------------------------------------------

WASTE = TRACES / "go-size-class-waste.yaml"


@pytest.fixture(scope="module")
def waste():
    return report(WASTE), layout(WASTE)


def test_sizes_just_above_a_class_waste_slot_bytes(waste):
    doc, _ = waste
    classes = {row["size_class"]: row for row in doc["allocator"]["size_classes"]}
    assert sorted(classes) == [4, 5, 32, 33]
    # 33 B in 48 B slots, 1025 B in 1152 B slots: the rounding is internal waste
    assert (classes[5]["slot_size"], classes[5]["live_objects"]) == (48, 504)
    assert classes[5]["internal_waste"] == 504 * (48 - 33)
    assert (classes[33]["slot_size"], classes[33]["live_objects"]) == (1152, 56)
    assert classes[33]["internal_waste"] == 56 * (1152 - 1025)
    # the exact fits waste nothing inside their slots
    assert classes[4]["internal_waste"] == 0 and classes[32]["internal_waste"] == 0
    # tail waste: 128 B left over after 7 slots of 1152 B in each of 8 spans; 1024 B slots fill
    # their spans; classes 4 and 5 keep Green Tea's 128 B of inline mark bits per span
    assert classes[33]["tail_waste"] == 8 * (PAGE - 7 * 1152) == 1024
    assert classes[32]["tail_waste"] == 0
    assert classes[5]["tail_waste"] == 3 * 128 and classes[4]["tail_waste"] == 2 * 128


def test_one_byte_more_takes_more_spans(waste):
    doc, objects = waste
    spans = defaultdict(set)
    for o in objects.values():
        spans[o["site"]].add(o["span_base"])
    assert {site: len(bases) for site, bases in spans.items()} == {
        "keys.go:20": 3, "keys.go:31": 2, "frame.go:44": 8, "frame.go:52": 7}
    alloc = doc["allocator"]
    assert alloc["heap_inuse"] == 20 * PAGE
    assert alloc["heap_alloc"] == 504 * 48 + 504 * 32 + 56 * 1152 + 56 * 1024
    assert alloc["tiers"] == {"tiny": 0, "mcache": 1_100, "mcentral": 0, "mheap": 19, "os": 1}
    assert objects["pubkey1"]["size_class"] == 5 and objects["digest1"]["size_class"] == 4
    assert objects["frame1"]["slot_size"] == 1152 and objects["page1"]["slot_size"] == 1024


def test_rounded_slots_cost_cache_lines(waste):
    doc, objects = waste
    # half of the 33 B keys straddle a line: 756 pieces over 378 lines, against 252 lines
    assert sum(len(o["lines"]) > 1 for o in objects.values() if o["site"] == "keys.go:20") == 252
    (l1d,) = [lv for lv in doc["levels"] if lv["name"] == "L1d"]
    assert [i["accesses"] for i in l1d["instances"][:4]] == [756, 504, 952, 896]
    assert [core_level(doc, c, "L1d")["misses"] for c in range(4)] == [378, 252, 952, 896]


# --- go-large-objects --------------------------------------------------------------------------

LARGE = TRACES / "go-large-objects.yaml"


@pytest.fixture(scope="module")
def large():
    return report(LARGE), layout(LARGE)


def test_large_objects_are_served_by_the_page_heap(large):
    doc, _ = large
    alloc = doc["allocator"]
    assert alloc["tiers"] == {"tiny": 0, "mcache": 0, "mcentral": 0, "mheap": 17, "os": 2}
    assert alloc["heap_sys"] == 12 * 1024 * 1024  # the first chunk, then two more for the image
    expected = 16 * 64 * 1024 + 32 * 1024 + 5 * PAGE + 6 * 1024 * 1024
    assert alloc["heap_alloc"] == alloc["heap_inuse"] == expected == 7_413_760
    (row,) = alloc["size_classes"]
    assert (row["size_class"], row["live_objects"]) == (0, 19)
    assert row["internal_waste"] == 5 * PAGE - 40_000


def test_large_objects_are_page_aligned_spans_of_their_own(large):
    _, objects = large
    assert len(objects) == 19
    for o in objects.values():
        assert o["size_class"] == 0 and o["span_objects"] == 1
        assert o["addr"] % PAGE == 0 and o["addr"] == o["span_base"] == o["slot_base"]
        assert o["span_pages"] == math.ceil(o["size"] / PAGE)
    # 32 KiB is over Go 1.27's small limit (32,760 B)
    assert objects["scratch"]["span_pages"] == 4
    heap = 0xC000000000
    assert [objects[f"buf{i}"]["addr"] for i in range(16)] == [heap + i * 64 * 1024 for i in range(16)]
    assert objects["image"]["addr"] == heap + 0x180000


def test_page_aligned_headers_conflict_in_l1d(large):
    doc, _ = large
    l1d = core_level(doc, 0, "L1d")
    assert l1d["misses"] == 1_600
    assert l1d["misses_by_class"] == {"cold": 16, "capacity": 0, "conflict": 1_584, "coherence": 0}
    assert core_level(doc, 0, "L2")["hits"] == 1_584


def test_twelve_page_aligned_headers_fit_the_set(tmp_path):
    lines = "".join(f"            - read: {{obj: buf{k}, size: 8}}\n" for k in range(12, 16))
    doc = report(variant(tmp_path, "go-large-objects", lines, ""))
    assert core_level(doc, 0, "L1d")["misses"] == 12 and doc["cores"][0]["accesses"] == 1_200


# --- go-reuse-after-gc -------------------------------------------------------------------------

REUSE = TRACES / "go-reuse-after-gc.yaml"


def replay(path: Path) -> dict:
    loaded = open_trace(path, None, False)
    machine = trace_machine(loaded, None)
    return headline(replay_trace(loaded, machine, new_allocator(loaded, machine), top=20))


@pytest.fixture(scope="module")
def reuse():
    return replay(REUSE), layout(REUSE)


def test_freed_slots_are_reused_in_place(reuse):
    _, objects = reuse
    for k in range(100):
        addrs = {objects[f"req{k + 100 * r}"]["addr"] for r in range(10)}
        assert len(addrs) == 1, f"req{k} moved between rounds: {sorted(map(hex, addrs))}"
    assert objects["req0"]["addr"] == 0xC000000040 and objects["req99"]["addr"] == 0xC000001900
    # the long-lived object keeps its slot, which no request ever takes
    assert objects["srv"]["addr"] == 0xC000000000
    assert len({o["addr"] for o in objects.values()}) == 101
    assert len({o["span_base"] for o in objects.values()}) == 1


def test_heap_stays_one_span_while_total_alloc_grows(reuse, tmp_path):
    metrics, _ = reuse
    assert metrics["allocator.num_gc"] == 10
    assert metrics["allocator.total_alloc"] == 1_001 * 64
    assert metrics["allocator.heap_inuse"] == PAGE and metrics["allocator.heap_alloc"] == 64
    assert metrics["allocator.tier_mheap"] == 0 and metrics["allocator.tier_os"] == 1
    assert metrics["allocator.tier_mcentral"] == 9
    one = replay(variant(tmp_path, "go-reuse-after-gc", "times: 10\n", "times: 1\n"))
    assert one["allocator.heap_inuse"] == PAGE
    assert one["allocator.total_alloc"] == 101 * 64
    assert metrics["allocator.total_alloc"] - one["allocator.total_alloc"] == 9 * 6_400


def test_reused_slots_are_warm_in_l1d(reuse):
    metrics, _ = reuse
    assert metrics["accesses"] == 1_001
    assert metrics["L1d.misses"] == metrics["L1d.misses_cold"] == 101
    assert metrics["L1d.hits"] == 900


def test_without_a_survivor_the_span_goes_back_and_slots_move(tmp_path):
    path = variant(tmp_path, "go-reuse-after-gc", "  - alloc: {id: srv, size: 64, core: 0, pointers: true, site: \"server.go:20\"}\n", "")
    path.write_text(path.read_text().replace("  - write: {core: 0, obj: srv, size: 64}\n", ""))
    metrics = replay(path)
    objects = layout(path)
    assert objects["req200"]["addr"] == 0xC000002000 and objects["req300"]["addr"] == 0xC000004000
    assert len({objects[f"req{100 * r}"]["addr"] for r in range(10)}) == 9
    assert metrics["allocator.tier_mheap"] == 9
    assert (metrics["accesses"], metrics["L1d.misses"]) == (1_000, 900)
