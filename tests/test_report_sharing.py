"""The false-sharing report and the miss classes in the results, JSON and tables, built from
hand-made counter arrays (docs/report.md, docs/coherence.md "The false-sharing report")."""
from __future__ import annotations

import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
from rich.console import Console

from memsim.engine.counters import (
    CORE_SHARING_COLUMNS,
    MISS_CLASSES,
    S_C2C,
    S_FALSE,
    S_FALSE_AT_MISS,
    S_LINE,
    S_STALL,
    S_TRUE,
    S_TRUE_AT_MISS,
    SC_READS,
    SC_WRITES,
    SHARING_COLUMNS,
    Counters,
    core_sharing_width,
    mask_words,
    sharing_width,
)
from memsim.models.goalloc.model import Placements
from memsim.models.goalloc.sizeclasses import CLASS_SIZES, GENERATIONS
from memsim.report.sharing import Heap, build_sharing, mask_ranges, pad_request
from memsim.trace.events import Lifetimes

GREENTEA, CLASSIC, HEADERS = GENERATIONS["greentea"], GENERATIONS["classic"], GENERATIONS["headers"]


# ---- hand-built inputs ------------------------------------------------------------------------


def mask(line_size: int, *ranges: tuple[int, int]) -> np.ndarray:
    """int64 mask words with the bytes of ``ranges`` set (bit b of word k = byte 64k + b)."""
    words = np.zeros(mask_words(line_size), np.uint64)
    for lo, hi in ranges:
        for b in range(lo, hi):
            words[b // 64] |= np.uint64(1) << np.uint64(b % 64)
    return words.view(np.int64)


def row(line_number: int, cores: int = 2, line_size: int = 64, fs: int = 0, ts: int = 0, stall: int = 0,
        c2c: int = 0, fs_at: int = 0, ts_at: int = 0, **per_core) -> np.ndarray:
    """A sharing row; per_core: core0=(reads, writes, read ranges, write ranges), ..."""
    r = np.zeros(sharing_width(cores, line_size), np.int64)
    r[[S_LINE, S_FALSE, S_TRUE, S_FALSE_AT_MISS, S_TRUE_AT_MISS, S_C2C, S_STALL]] = (
        line_number, fs, ts, fs_at, ts_at, c2c, stall)
    words = mask_words(line_size)
    for name, (reads, writes, read_ranges, write_ranges) in per_core.items():
        base = len(SHARING_COLUMNS) + int(name.removeprefix("core")) * core_sharing_width(line_size)
        r[base + SC_READS], r[base + SC_WRITES] = reads, writes
        masks = base + len(CORE_SHARING_COLUMNS)
        r[masks:masks + words] = mask(line_size, *read_ranges)
        r[masks + words:masks + 2 * words] = mask(line_size, *write_ranges)
    return r


def table(*rows: np.ndarray) -> np.ndarray:
    """Rows sorted by line number, as the engine hands them over."""
    stacked = np.array(rows)
    return stacked[np.argsort(stacked[:, S_LINE])]


class Names:
    """The trace's naming side: ids, sites and the alloc event's id as written."""

    def __init__(self, objects: list[tuple[str, str | None]]):
        self.objects = objects

    def object_name(self, i: int) -> str:
        return self.objects[i][0]

    def object_site(self, i: int) -> str | None:
        return self.objects[i][1]

    def allocation_of(self, i: int):
        return SimpleNamespace(id=self.objects[i][0].rstrip("0123456789") + "{i}")


def heap(objects: list[dict], n_events: int = 100, generation: int = GREENTEA) -> Heap:
    """objects: dicts with id, site, addr, size, and optional core (allocating P), born, died,
    pointers."""
    n = len(objects)
    col = lambda key, default=0: np.array([o.get(key, default) for o in objects], np.int64)  # noqa: E731
    zeros = np.zeros(n, np.int64)
    placed = Placements(
        allocated=np.ones(n, bool), addr=col("addr"), size=col("size"), size_class=zeros,
        pointers=np.array([o.get("pointers", False) for o in objects], bool), slot_size=zeros, slot_base=zeros,
        span_base=zeros, span_pages=zeros, span_objects=zeros,
    )
    lifetimes = Lifetimes(born=col("born", 0) if any("born" in o for o in objects) else np.arange(n),
                          died=col("died", n_events), alloc_core=col("core"))
    return Heap(placed, lifetimes, Names([(o["id"], o.get("site")) for o in objects]), generation)


def ping_pong(line_number: int, a: tuple[int, int], b: tuple[int, int], **kw) -> np.ndarray:
    """Cores 0 and 1 each rmw their own bytes of one line 10 times."""
    kw.setdefault("fs", 18)
    kw.setdefault("stall", 1000)
    return row(line_number, core0=(10, 10, [a], [a]), core1=(10, 10, [b], [b]), **kw)


# ---- masks to ranges ----------------------------------------------------------------------------


@pytest.mark.parametrize("line_size, ranges", [
    (64, [(0, 8), (63, 64)]),  # bit 63 is the sign bit of the int64 word
    (64, [(0, 64)]),
    (128, [(63, 65)]),  # one range across the two words
    (128, [(0, 1), (64, 72), (127, 128)]),
    (32, [(8, 16), (31, 32)]),
    (64, []),
])
def test_masks_become_half_open_ranges(line_size, ranges):
    assert mask_ranges(mask(line_size, *ranges), line_size) == tuple(ranges)


def test_bit_63_of_the_second_word_is_the_last_byte_of_a_128_byte_line():
    words = np.array([0, -(2**63)], np.int64)
    assert mask_ranges(words, 128) == ((127, 128),)


# ---- sorting, the cut, what is kept ----------------------------------------------------------


def test_lines_sorted_by_stall_cycles_then_address_and_cut_by_top():
    sharing = table(
        ping_pong(5, (0, 8), (8, 16), stall=10),
        ping_pong(9, (0, 8), (8, 16), stall=30),
        ping_pong(2, (0, 8), (8, 16), stall=30),
        row(7, core0=(1, 1, [], [(0, 8)]), stall=999),  # coherence activity but no coherence miss
    )
    every = build_sharing(sharing, 64, 2, top=0)
    assert [ln.line for ln in every.lines] == [2 * 64, 9 * 64, 5 * 64]
    assert every.total_lines == 3
    cut = build_sharing(sharing, 64, 2, top=2)
    assert [ln.line for ln in cut.lines] == [2 * 64, 9 * 64] and cut.total_lines == 3


def test_only_cores_that_touched_the_line_are_listed_with_their_bytes():
    sharing = table(row(1, cores=4, fs=4, core1=(3, 0, [(0, 4)], []), core3=(2, 2, [(8, 16)], [(8, 12)])))
    (ln,) = build_sharing(sharing, 64, 4, top=20).lines
    assert [(c.core, c.reads, c.writes, c.read_bytes, c.write_bytes) for c in ln.cores] == [
        (1, 3, 0, ((0, 4),), ()), (3, 2, 2, ((8, 16),), ((8, 12),))]


def test_counters_of_a_line_are_copied():
    sharing = table(ping_pong(3, (0, 8), (8, 16), fs=18, ts=2, fs_at=17, ts_at=3, c2c=19, stall=1234))
    (ln,) = build_sharing(sharing, 64, 2, top=20).lines
    assert (ln.false_sharing_misses, ln.true_sharing_misses, ln.false_sharing_misses_at_miss,
            ln.true_sharing_misses_at_miss, ln.c2c_transfers, ln.stall_cycles) == (18, 2, 17, 3, 19, 1234)


def test_no_coherence_misses_no_report():
    report = build_sharing(np.zeros((0, sharing_width(2, 64)), np.int64), 64, 2, top=20)
    assert report.lines == () and report.by_site == () and report.total_lines == 0


# ---- objects on lines -------------------------------------------------------------------------


def test_an_object_straddling_two_lines_is_on_both_with_its_part():
    h = heap([{"id": "big", "site": "a.go:1", "addr": 0x1030, "size": 40}])
    sharing = table(ping_pong(0x1000 // 64, (48, 56), (56, 64)), ping_pong(0x1040 // 64, (0, 8), (8, 16)))
    lines = {ln.line: ln for ln in build_sharing(sharing, 64, 2, top=0, heap=h).lines}
    (first,) = lines[0x1000].objects
    (second,) = lines[0x1040].objects
    assert (first.offset, first.size, first.object_offset) == (48, 16, 0)
    assert (second.offset, second.size, second.object_offset) == (0, 24, 16)


def test_objects_on_a_line_at_different_times_are_all_listed_in_address_then_allocation_order():
    h = heap([
        {"id": "late", "site": "b.go:2", "addr": 0x1000, "size": 16, "born": 50, "died": 100},
        {"id": "early", "site": "a.go:1", "addr": 0x1000, "size": 16, "born": 10, "died": 40},
        {"id": "next", "site": "a.go:1", "addr": 0x1010, "size": 16, "born": 5},
        {"id": "elsewhere", "site": "a.go:1", "addr": 0x2000, "size": 16, "born": 6},
    ], n_events=100)
    (ln,) = build_sharing(table(ping_pong(0x1000 // 64, (0, 8), (16, 24))), 64, 2, top=20, heap=h,
                          n_events=100).lines
    assert [o.id for o in ln.objects] == ["early", "late", "next"]
    assert [(o.alloc_event, o.free_event) for o in ln.objects] == [(10, 40), (50, None), (5, None)]


# ---- the roll-up by site ----------------------------------------------------------------------


def test_by_site_counts_each_line_once_under_its_set_of_sites():
    h = heap([
        {"id": "a0", "site": "a.go:1", "addr": 0x1000, "size": 8},
        {"id": "a1", "site": "a.go:1", "addr": 0x1008, "size": 8},  # line 0x1000: {a}
        {"id": "a2", "site": "a.go:1", "addr": 0x2000, "size": 8},
        {"id": "b0", "site": "b.go:2", "addr": 0x2008, "size": 8},  # line 0x2000: {a, b}
        {"id": "b1", "site": "b.go:2", "addr": 0x3000, "size": 8},
        {"id": "a3", "site": "a.go:1", "addr": 0x3008, "size": 8},  # line 0x3000: {a, b}
        {"id": "n0", "site": None, "addr": 0x4000, "size": 8},
        {"id": "n1", "site": None, "addr": 0x4008, "size": 8},  # line 0x4000: no site
    ])
    sharing = table(
        ping_pong(0x1000 // 64, (0, 8), (8, 16), fs=10, stall=100),
        ping_pong(0x2000 // 64, (0, 8), (8, 16), fs=20, stall=200),
        ping_pong(0x3000 // 64, (0, 8), (8, 16), fs=30, ts=1, stall=300),
        ping_pong(0x4000 // 64, (0, 8), (8, 16), fs=5, stall=50),
        ping_pong(0x9000 // 64, (0, 8), (8, 16), fs=7, stall=1000),  # raw addresses: no row
    )
    report = build_sharing(sharing, 64, 2, top=1, heap=h)
    assert len(report.lines) == 1  # --top cuts the lines, not the roll-up
    assert [(r.sites, r.lines, r.false_sharing_misses, r.true_sharing_misses, r.stall_cycles)
            for r in report.by_site] == [
        (("a.go:1", "b.go:2"), 2, 50, 1, 500),
        (("a.go:1",), 1, 10, 0, 100),
        (("id:n{i}",), 1, 5, 0, 50),
    ]
    assert sum(r.lines for r in report.by_site) == 4  # every line with objects, once


# ---- the fix ------------------------------------------------------------------------------------


def fix_of(objects: list[dict], a: tuple[int, int] = (0, 8), b: tuple[int, int] = (8, 16)) -> str:
    """The fix for cores 0 and 1 ping-ponging bytes ``a`` and ``b`` of the first object's line."""
    sharing = table(ping_pong(objects[0]["addr"] // 64, a, b))
    (ln,) = build_sharing(sharing, 64, 2, top=20, heap=heap(objects)).lines
    return ln.fix


def test_fix_two_objects_of_different_sites_written_by_different_cores():
    fix = fix_of([
        {"id": "hits", "site": "stats.go:14", "addr": 0x1000, "size": 8, "core": 0},
        {"id": "misses", "site": "stats.go:15", "addr": 0x1008, "size": 24, "core": 1},
    ])
    assert fix == (
        "core 0 writes [0, 8), core 1 writes [8, 16) of different objects (`hits`, `misses`) on one line: "
        "pad `stats.go:14` objects (8 B) to 64 B (size class 6, 64-byte slots start on a line); "
        "`stats.go:15` objects (24 B) to 64 B (size class 6, 64-byte slots start on a line), so each gets a "
        "line of its own")


def test_fix_object_allocated_on_another_p_than_the_core_using_it():
    fix = fix_of([
        {"id": "c0", "site": "w.go:3", "addr": 0x1000, "size": 8, "core": 0},
        {"id": "c1", "site": "w.go:3", "addr": 0x1008, "size": 8, "core": 0},
    ])
    assert fix.startswith(
        "`c1` (used by core 1, allocated on P 0): allocate it on the P that uses it, so it comes from that P's "
        "own span instead of sharing a line with other cores' data")
    assert fix.endswith("or pad `w.go:3` objects (8 B) to 64 B (size class 6, 64-byte slots start on a line)")


def test_fix_one_object_whose_fields_are_written_by_two_cores():
    assert fix_of([{"id": "stats", "site": "s.go:9", "addr": 0x2000, "size": 32, "core": 0}]) == (
        "one object, `stats` (32 B), is shared field by field (core 0 writes [0, 8), core 1 writes [8, 16) of "
        "the object): split the hot field at offset 8 out into an object of its own, or insert 56 bytes of padding "
        "after byte 7 so each starts a new 64-byte line, and pad the object (then 88 B) to 128 B (size class 10, "
        "128-byte slots start on a line)")


def test_fix_fields_speaks_in_object_offsets_when_the_object_starts_mid_line():
    fix = fix_of([{"id": "st", "site": "s.go:9", "addr": 0x2010, "size": 48, "core": 0}], (16, 24), (40, 48))
    assert "core 0 writes [0, 8), core 1 writes [24, 32) of the object" in fix
    assert "split the hot field at offset 24 out into an object of its own" in fix
    assert "insert 40 bytes of padding after byte 23" in fix


def test_fix_fields_of_three_cores_pads_each_later_field_to_its_own_line():
    sharing = table(row(0x2000 // 64, cores=3, fs=9, core0=(1, 1, [(0, 8)], [(0, 8)]),
                        core1=(1, 1, [(8, 16)], [(8, 16)]), core2=(1, 1, [(40, 48)], [(40, 48)])))
    h = heap([{"id": "st", "site": "s.go:9", "addr": 0x2000, "size": 48, "core": 0}])
    (ln,) = build_sharing(sharing, 64, 3, top=20, heap=h).lines
    # offset 8 moves to 64 (56 bytes of padding), so offset 40 is then at 96 and needs 32 more
    assert ("split the hot fields at offsets 8, 40 out into objects of their own, or insert 56 bytes of padding after "
            "byte 7 and 32 bytes of padding after byte 39 so each starts a new 64-byte line, and pad the object "
            "(then 136 B) to 192 B") in ln.fix


def test_fix_true_sharing_says_padding_will_not_help():
    h = heap([{"id": "total", "site": "t.go:1", "addr": 0x3000, "size": 8}])
    sharing = table(row(0x3000 // 64, ts=18, fs=2, core0=(10, 10, [(0, 8)], [(0, 8)]),
                        core1=(10, 10, [(0, 8)], [(0, 8)])))
    (ln,) = build_sharing(sharing, 64, 2, top=20, heap=h).lines
    assert ln.fix.startswith("mostly true sharing (18 true vs 2 false): cores 0 and 1 use the same bytes [0, 8), "
                             "so padding will not help")
    assert "per-P shards" in ln.fix


def test_fix_true_sharing_from_one_writer_to_a_reader_is_a_hand_off():
    sharing = table(row(0x40, ts=9, core0=(0, 10, [], [(0, 8)]), core1=(10, 0, [(0, 8)], [])))
    (ln,) = build_sharing(sharing, 64, 2, top=20).lines
    assert ln.fix == ("mostly true sharing (9 true vs 0 false): cores 0 and 1 use the same bytes [0, 8), so padding "
                      "will not help; the line carries data from core 0 to core 1: hand it over in batches (publish "
                      "or poll the shared value once per several items) so the line moves less often")


def test_fix_raw_addresses_names_offsets_and_cores():
    (ln,) = build_sharing(table(ping_pong(0x1000 // 64, (0, 8), (8, 16))), 64, 2, top=20).lines
    assert ln.objects == ()
    assert ln.fix == ("core 0 writes [0, 8), core 1 writes [8, 16) of line 0x1000: put each core's data on its own "
                      "64-byte line (e.g. a 64-byte stride between the cores' data)")


def test_fix_reader_against_writer_names_what_each_core_does():
    sharing = table(row(0x40, fs=9, core0=(0, 10, [], [(0, 4)]), core1=(10, 0, [(32, 40)], [])))
    (ln,) = build_sharing(sharing, 64, 2, top=20).lines
    assert ln.fix.startswith("core 0 writes [0, 4), core 1 reads [32, 40) of line 0x1000")


@pytest.mark.parametrize("size, pointers, generation, line_size, expected", [
    (8, False, GREENTEA, 64, (64, 6, 64)),  # tiny objects leave their shared block
    (64, False, GREENTEA, 64, (64, 6, 64)),
    (65, False, GREENTEA, 64, (128, 10, 128)),
    (600, False, GREENTEA, 64, (640, CLASS_SIZES.index(640), 640)),
    (600, True, HEADERS, 64, (632, CLASS_SIZES.index(640), 640)),  # the 8-byte malloc header shares the slot
    (600, True, CLASSIC, 64, (640, CLASS_SIZES.index(640), 640)),  # no headers before Go 1.22
    (520, False, GREENTEA, 128, (640, CLASS_SIZES.index(640), 640)),  # 576 B slots are not whole 128 B lines
    (40000, False, GREENTEA, 64, None),  # large: a span of its own already
])
def test_pad_request_lands_in_a_class_of_whole_lines(size, pointers, generation, line_size, expected):
    assert pad_request(size, pointers, generation, line_size) == expected


# ---- results, JSON and tables -------------------------------------------------------------------


def run_result(sharing_report=None, classes=True):
    from memsim.formats.machine_file import load_preset, machine_to_dict
    from memsim.models.hierarchy import build
    from memsim.report.results import TraceInfo, build_result

    machine = load_preset("teaching")
    hierarchy = build(machine)
    n_specs = len(machine.caches)
    counters = Counters.zeros(len(hierarchy.instances), machine.cores, n_specs)
    counters.core[0] = (100, 1000)
    counters.core[1] = (100, 1000)
    counters.coherence[:] = (19, 0, 18, 17, 1, 16, 2)
    if classes:
        for k, inst in enumerate(hierarchy.instances):
            counters.cache_classes[k] = (1 + k, 2, 3, 4)
            counters.cache[k, 2] = 10 + k  # misses
        counters.core_classes[0, 0] = (1, 0, 0, 9)
        counters.core_classes[1, 0] = (2, 2, 3, 4)
        counters.core_level[0, 0] = (90, 10)
        counters.core_level[1, 0] = (89, 11)
    kwargs = {"sharing": sharing_report} if sharing_report is not None else {}
    return hierarchy, build_result(hierarchy, counters, TraceInfo("t", 200, "00"), machine_to_dict(machine), False,
                                   **kwargs)


def test_misses_by_class_per_level_instance_and_core():
    hierarchy, result = run_result()
    from memsim.report.jsondoc import run_document

    doc = run_document(result)
    first = [k for k, inst in enumerate(hierarchy.instances) if inst.spec == 0]
    level = doc["levels"][0]
    assert level["misses_by_class"] == {
        "cold": sum(1 + k for k in first), "capacity": 2 * len(first), "conflict": 3 * len(first),
        "coherence": 4 * len(first)}
    assert [i["misses_by_class"]["cold"] for i in level["instances"]] == [1 + k for k in first]
    assert doc["cores"][1]["levels"][0] == {"name": level["name"], "hits": 89, "misses": 11,
                                            "misses_by_class": {"cold": 2, "capacity": 2, "conflict": 3,
                                                                "coherence": 4}}
    assert list(level["misses_by_class"]) == list(MISS_CLASSES)
    assert doc["coherence"] == {
        "invalidations": 19, "upgrades": 0, "c2c_transfers": 18, "false_sharing_misses": 17,
        "true_sharing_misses": 1, "false_sharing_misses_at_miss": 16, "true_sharing_misses_at_miss": 2}


def sample_report(top: int = 20):
    h = heap([
        {"id": "hits", "site": "stats.go:14", "addr": 0x1000, "size": 8, "core": 0},
        {"id": "misses", "site": "stats.go:15", "addr": 0x1008, "size": 8, "core": 1},
    ])
    sharing = table(ping_pong(0x1000 // 64, (0, 8), (8, 16), stall=700, c2c=18),
                    ping_pong(0x9000 // 64, (0, 4), (4, 8), stall=70))
    return build_sharing(sharing, 64, 2, top=top, heap=h)


def test_json_false_sharing_shape():
    from memsim.report.jsondoc import dumps, run_document

    _, result = run_result(sample_report(top=1))
    doc = json.loads(dumps(run_document(result)))
    assert doc["false_sharing_lines"] == 2
    (line,) = doc["false_sharing"]
    assert list(line) == ["line", "false_sharing_misses", "true_sharing_misses", "false_sharing_misses_at_miss",
                          "true_sharing_misses_at_miss", "c2c_transfers", "stall_cycles", "objects", "cores", "fix"]
    assert line["line"] == 0x1000 and line["stall_cycles"] == 700
    assert line["objects"][1] == {"id": "misses", "site": "stats.go:15", "offset": 8, "size": 8, "object_offset": 0,
                                  "alloc_core": 1, "alloc_event": 1, "free_event": None}
    assert line["cores"][0] == {"core": 0, "reads": 10, "writes": 10, "read_bytes": [[0, 8]], "write_bytes": [[0, 8]]}
    assert line["fix"].startswith("core 0 writes [0, 8), core 1 writes [8, 16) of different objects")
    assert doc["false_sharing_by_site"] == [{"sites": ["stats.go:14", "stats.go:15"], "lines": 1,
                                             "false_sharing_misses": 18, "true_sharing_misses": 0,
                                             "stall_cycles": 700}]
    assert list(doc).index("false_sharing") == list(doc).index("coherence") + 2


def render(result) -> str:
    from memsim.report.terminal import print_run

    out = io.StringIO()
    print_run(result, Console(file=out, width=160, highlight=False, color_system=None))
    return out.getvalue()


def test_terminal_shows_classes_sharing_totals_lines_fixes_and_sites():
    _, result = run_result(sample_report(top=1))
    text = render(result)
    assert "Misses by class" in text and "coherence" in text
    assert "17 false sharing, 1 true sharing" in text and "at the miss: 16 false, 2 true" in text
    assert "the top 1 of 2 lines" in text
    assert "#1 line 0x1000" in text and "700 stall cycles" in text
    assert "`hits`" in text and "stats.go:14" in text and "10 writes [0, 8)" in text
    assert "fix: core 0 writes [0, 8), core 1 writes [8, 16)" in " ".join(text.split())
    assert "stats.go:14 + stats.go:15" in text
    assert "pad `stats.go:14` and `stats.go:15` objects (8 B) to 64 B" in " ".join(text.split())
    assert "0x2400" not in text  # the cut line


def test_terminal_without_coherence_misses_says_so_and_hides_empty_classes():
    _, result = run_result(classes=False)
    text = render(result)
    assert "False sharing: no coherence misses" in text
    assert "Misses by class" not in text
