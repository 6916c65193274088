"""Binary traces: round trips, every kind of damage (exit 2, one line, the file named), the
`events_file:` key, and bounded memory while streaming."""
from __future__ import annotations

import hashlib
import json
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from memsim.cli import main
from memsim.formats import binary
from memsim.formats.binary import PREAMBLE, STORED_COLUMNS, write_events, write_trace
from memsim.formats.trace_file import load_trace
from memsim.trace.events import COLUMNS, Events

ROOT = Path(__file__).resolve().parent.parent
TRACES = sorted((ROOT / "traces").glob("*.yaml"))
GO_TRACE = ROOT / "traces" / "go-handoff-structs.yaml"

OBJECTS = """\
memsim: 1
name: templates, sites, frees
allocator: {model: go, version: "1.22", gogc: 100}
events:
  - repeat:
      times: 3
      do:
        - alloc: {id: "node{i}", size: 48, core: 0, pointers: true, site: "list.go:7"}
        - write: {core: 0, obj: "node{i}", offset: 8, size: 8}
  - alloc: {id: blob, size: 100000, core: 1, site: "blob.go:3"}
  - alloc: {id: tiny, size: 8, core: 1}
  - parallel:
      threads:
        - {core: 0, repeat: 500, do: [ {rmw: {obj: tiny, size: 8}} ]}
        - {core: 1, repeat: 500, do: [ {sweep: {op: read, obj: blob, stride: 64, count: 7, size: 8}} ]}
  - free: {id: node1}
  - gc: {}
  - read: {core: 1, addr: 0x1000, size: 4}
"""


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_user_error(result, name: str) -> str:
    """Exit 2 with one line on stderr naming the file, and no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert name in lines[0] and "Traceback" not in result.output
    return lines[0]


def same_events(a: Events, b: Events) -> None:
    for name in STORED_COLUMNS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def run_json(trace: Path, tmp_path: Path, *extra) -> dict:
    out = tmp_path / f"{trace.name}.json"
    result = invoke("run", trace, "--machine", "example-4c", "--json", out, "-q", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def without_hash(doc: dict) -> dict:
    assert len(doc["trace"].pop("sha256")) == 64
    return doc


@pytest.fixture(scope="module")
def go_binary(tmp_path_factory) -> Path:
    """The Go trace above, in blocks of 1000 events (so every trace spans several)."""
    folder = tmp_path_factory.mktemp("bin")
    (folder / "objects.yaml").write_text(OBJECTS)
    target = folder / "objects.mstrace"
    write_trace(load_trace(folder / "objects.yaml"), target, block_rows=1000)
    return target


# -- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_every_example_trace_round_trips(path, tmp_path):
    yaml = load_trace(path)
    target = tmp_path / "t.mstrace"
    assert write_trace(yaml, target, block_rows=3000) == yaml.n_events
    stored = load_trace(target)
    assert (stored.name, stored.n_events, stored.n_objects) == (yaml.name, yaml.n_events, yaml.n_objects)
    assert stored.allocator == yaml.allocator and stored.sites == yaml.sites
    assert [stored.object_name(i) for i in range(stored.n_objects)] == [yaml.object_name(i) for i in range(yaml.n_objects)]
    for mine, theirs in zip(stored.chunks(1 << 16), yaml.chunks(1 << 16)):
        same_events(mine, theirs)


def test_objects_sites_and_allocator_are_kept(go_binary):
    yaml, stored = load_trace(go_binary.with_suffix(".yaml")), load_trace(go_binary)
    assert stored.allocator.version == "1.22" and stored.allocator.gogc == 100
    names = [stored.object_name(i) for i in range(stored.n_objects)]
    assert names == ["node0", "node1", "node2", "blob", "tiny"]
    assert [stored.object_site(i) for i in range(5)] == ["list.go:7"] * 3 + ["blob.go:3", None]
    np.testing.assert_array_equal(stored.objects.size, [48, 48, 48, 100000, 8])
    np.testing.assert_array_equal(stored.objects.flags, [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(stored.objects.born, [0, 2, 4, 6, 7])
    same_events(stored.events(), yaml.events())


def test_scattered_requests_across_blocks(go_binary):
    yaml, stored = load_trace(go_binary.with_suffix(".yaml")), load_trace(go_binary)
    picks = np.array([0, 1, 999, 1000, 1001, 2999, 3000, yaml.n_events - 1])
    same_events(stored.root.events_at(picks), yaml.root.events_at(picks))
    same_events(stored.events(990, 2010), yaml.events(990, 2010))  # a range over three blocks


def test_a_chunk_inside_a_block_is_a_view_of_the_map(go_binary):
    chunk = load_trace(go_binary).events(10, 500)
    assert not chunk.addr.flags.owndata and chunk.addr.flags.c_contiguous


@pytest.mark.parametrize("path", [GO_TRACE, ROOT / "traces" / "working-set.yaml"], ids=lambda p: p.stem)
def test_run_gives_the_same_report(path, tmp_path):
    target = tmp_path / f"{path.stem}.mstrace"
    assert invoke("convert", path, "-o", target, "-q").exit_code == 0
    mine, theirs = run_json(target, tmp_path), run_json(path, tmp_path)
    assert mine["trace"]["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert without_hash(mine) == without_hash(theirs)


def test_layout_gives_the_same_objects(go_binary, tmp_path):
    outputs = []
    for trace in (go_binary, go_binary.with_suffix(".yaml")):
        result = invoke("layout", trace, "--machine", "example-4c", "--json", "-")
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.output))
    assert outputs[0] == outputs[1] and len(outputs[0]["objects"]) == 5


def test_core_beyond_the_machine_names_the_event(go_binary, tmp_path):
    machine = tmp_path / "one.yaml"
    machine.write_text("memsim: 1\nname: one\ncores: 1\nline_size: 64\nlevels: [{name: L1, sets: 4, ways: 2, "
                       "latency: 1}]\nmemory: {latency: 10}\n")
    line = assert_user_error(invoke("run", go_binary, "--machine", machine), go_binary.name)
    assert "core 1 is out of range: the machine has 1 cores" in line and ": event 6:" in line


# -- damage: every problem is exit 2, one line, naming the file ------------------------------------


def reseal(path: Path) -> None:
    """Recompute every checksum, so a changed value is caught by the value checks, not the CRCs."""
    data = bytearray(path.read_bytes())
    _, _, rows, n, footer_at, footer_len, _, _ = PREAMBLE.unpack(data[: PREAMBLE.size])
    at, crcs = PREAMBLE.size, []
    for k in range(-(-n // rows)):
        length = binary._block_bytes(min(rows, n - k * rows))
        crcs.append(zlib.crc32(data[at : at + length]))
        at += length
    head = struct.unpack("<QQQQ", data[footer_at : footer_at + 32])
    crc_at = footer_at + 32 + binary._padded(head[3])
    data[crc_at : crc_at + 4 * len(crcs)] = np.array(crcs, np.uint32).tobytes()
    struct.pack_into("<I", data, 40, zlib.crc32(data[footer_at : footer_at + footer_len]))
    struct.pack_into("<I", data, 60, zlib.crc32(data[:60]))
    path.write_bytes(bytes(data))


def column_at(path: Path, name: str, event: int) -> int:
    """The byte offset of ``name`` of ``event`` in a file of one block."""
    n = PREAMBLE.unpack(path.read_bytes()[: PREAMBLE.size])[3]
    at = PREAMBLE.size
    for column in STORED_COLUMNS:
        if column == name:
            return at + event * np.dtype(COLUMNS[name]).itemsize
        at += binary._padded(n * np.dtype(COLUMNS[column]).itemsize)
    raise KeyError(name)


@pytest.fixture
def damaged(go_binary, tmp_path):
    """A fresh copy of a small Go binary trace in one block, to damage."""
    target = tmp_path / "d.mstrace"
    write_trace(load_trace(go_binary.with_suffix(".yaml")), target)
    return target


def test_wrong_magic(damaged):
    damaged.write_bytes(b"GIF89a" + damaged.read_bytes()[6:])
    line = assert_user_error(invoke("run", damaged), "d.mstrace")
    assert "not a memsim binary trace" in line


def test_unknown_version(damaged):
    data = bytearray(damaged.read_bytes())
    struct.pack_into("<I", data, 8, 2)
    damaged.write_bytes(bytes(data))
    line = assert_user_error(invoke("run", damaged), "d.mstrace")
    assert "binary trace format version 2 is not supported: this version of memsim reads format version 1" in line


def test_every_truncation_is_reported(damaged, go_binary):
    data = damaged.read_bytes()
    cuts = sorted(set(range(0, len(data), 331)) | set(range(70)) | set(range(len(data) - 100, len(data))))
    for cut in cuts:
        damaged.write_bytes(data[:cut])
        line = assert_user_error(invoke("run", damaged), "d.mstrace")
        assert "truncated" in line or "not a memsim binary trace" in line, (cut, line)


def test_every_flipped_byte_is_reported(damaged):
    data = damaged.read_bytes()
    for at in sorted(set(range(0, len(data), 173)) | set(range(64)) | set(range(len(data) - 200, len(data)))):
        flipped = bytearray(data)
        flipped[at] ^= 0x10
        damaged.write_bytes(bytes(flipped))
        assert_user_error(invoke("run", damaged, "-q"), "d.mstrace")


def test_trailing_bytes(damaged):
    damaged.write_bytes(damaged.read_bytes() + b"\0" * 8)
    assert "8 bytes after its end" in assert_user_error(invoke("run", damaged), "d.mstrace")


@pytest.mark.parametrize("column, event, value, message", [
    ("op", 1, 9, "event 1 (unknown op): op is 9, expected an op code 0-6"),
    ("size", 1, -8, "event 1 (write): size is -8, expected at least 1 for an access"),
    ("obj", 1, 17, "event 1 (write): obj is 17, expected -1 (a raw address) or an object number 0-4"),
    ("obj", 0, 1, "event 0 (alloc): obj is 1, expected an object whose alloc the footer places at this event"),
    ("core", 1, 5, "event 1 (write): core is 5, expected one of the cores the footer lists (0, 1)"),
    ("core", 1, -1, "event 1 (write): core is -1, expected a core number >= 0"),
    ("core", 0, 2, "event 0 (alloc): core is 2, expected one of the cores the footer lists (0, 1)"),
    ("addr", 1, 44, "event 1 (write): addr is 44, expected an offset inside the object"),
    ("flags", 1, 1, "event 1 (write): flags is 1, expected 0 except for an alloc"),
    ("site", 1, 0, "event 1 (write): site is 0, expected -1 except for an alloc"),
    ("size", 0, 64, "event 0 (alloc): size is 64, expected the object's size"),
    ("obj", 4009, 0, "event 4009 (gc): obj is 0, expected -1 for a gc"),
])
def test_bad_values_name_the_event(damaged, column, event, value, message):
    data = bytearray(damaged.read_bytes())
    kind = np.dtype(COLUMNS[column])
    at = column_at(damaged, column, event)
    data[at : at + kind.itemsize] = np.array([value], kind).tobytes()
    damaged.write_bytes(bytes(data))
    reseal(damaged)
    line = assert_user_error(invoke("run", damaged, "-q"), "d.mstrace")
    assert message in line


def test_footer_numbers_that_disagree(damaged):
    """The alloc of object 1 moved to an event that is a write: a block holds fewer allocs than
    the footer places in it."""
    data = bytearray(damaged.read_bytes())
    footer_at = PREAMBLE.unpack(data[: PREAMBLE.size])[4]
    head = struct.unpack("<QQQQ", data[footer_at : footer_at + 32])
    n_cores = head[2]
    born_at = footer_at + 32 + binary._padded(head[3]) + 8 + 16 * n_cores + 8 * head[0]
    assert struct.unpack_from("<q", data, born_at + 8)[0] == 2
    struct.pack_into("<q", data, born_at + 8, 3)
    damaged.write_bytes(bytes(data))
    reseal(damaged)
    line = assert_user_error(invoke("run", damaged, "-q"), "d.mstrace")
    assert "event 2 (alloc): obj is 1, expected an object whose alloc the footer places at this event" in line


def test_a_corrupt_block_is_named(go_binary, tmp_path):
    data = bytearray(go_binary.read_bytes())
    at = PREAMBLE.size + 2 * binary._block_bytes(1000) + 5000  # inside block 2
    data[at] ^= 1
    target = tmp_path / "c.mstrace"
    target.write_bytes(bytes(data))
    line = assert_user_error(invoke("run", target), "c.mstrace")
    assert "block 2 (events 2000-2999) is corrupt (its checksum does not match)" in line


# -- events_file ----------------------------------------------------------------------------------


def events_file_trace(folder: Path, body: str) -> Path:
    path = folder / "t.yaml"
    path.write_text("memsim: 1\n" + body)
    return path


def test_events_file_replays_like_the_yaml(go_binary, tmp_path):
    folder = go_binary.parent
    trace = folder / "with-events-file.yaml"
    trace.write_text(f"memsim: 1\nname: from the binary file\nevents_file: {go_binary.name}\n")
    loaded = load_trace(trace)
    assert loaded.name == "from the binary file" and loaded.allocator.gogc == 100
    both = hashlib.sha256(trace.read_bytes() + go_binary.read_bytes()).hexdigest()
    assert loaded.sha256 == both
    mine, theirs = run_json(trace, tmp_path), run_json(go_binary.with_suffix(".yaml"), tmp_path)
    assert mine["trace"]["name"] == "from the binary file"
    mine["trace"]["name"] = theirs["trace"]["name"]
    assert without_hash(mine) == without_hash(theirs)


def test_events_file_missing(tmp_path):
    trace = events_file_trace(tmp_path, "events_file: nowhere.mstrace\n")
    line = assert_user_error(invoke("run", trace), "t.yaml:2:1:")
    assert "events_file 'nowhere.mstrace' does not exist (the path is relative to this trace file)" in line


def test_events_file_and_events(go_binary):
    trace = events_file_trace(go_binary.parent, f"events:\n  - gc: {{}}\nevents_file: {go_binary.name}\n")
    line = assert_user_error(invoke("run", trace), "t.yaml:4:1:")
    assert "the events are given twice" in line


def test_events_file_not_binary(tmp_path):
    (tmp_path / "other.yaml").write_text("memsim: 1\nevents: []\n")
    trace = events_file_trace(tmp_path, "events_file: other.yaml\n")
    line = assert_user_error(invoke("run", trace), "t.yaml:2:1:")
    assert "is not a memsim binary trace" in line and "memsim convert" in line


def test_events_file_objects_need_the_go_allocator(go_binary):
    trace = events_file_trace(go_binary.parent, f"allocator: none\nevents_file: {go_binary.name}\n")
    line = assert_user_error(invoke("run", trace), "t.yaml:2:12:")
    assert "has 5 objects, which need the Go allocator" in line


def test_events_file_damage_names_the_binary_file(go_binary, tmp_path):
    (tmp_path / "b.mstrace").write_bytes(go_binary.read_bytes()[:100])
    trace = events_file_trace(tmp_path, "events_file: b.mstrace\n")
    assert "truncated" in assert_user_error(invoke("run", trace), "b.mstrace")


# -- bounded memory -------------------------------------------------------------------------------


def raw_chunks(n: int, chunk: int):
    for start in range(0, n, chunk):
        events = Events.empty(min(chunk, n - start))
        events.size[:], events.obj[:], events.site[:] = 8, -1, -1
        events.addr[:] = np.arange(start, start + len(events)) * 64
        yield events


def test_writing_and_reading_stream_in_bounded_memory(tmp_path):
    """2 x 10^6 events (68 MB on disk) in blocks and chunks of 2^16 events (2.2 MB): neither
    writing nor reading ever holds more than a few blocks."""
    n, rows = 2_000_000, 1 << 16
    target = tmp_path / "big.mstrace"
    tracemalloc.start()
    try:
        assert write_events(target, "generated", raw_chunks(n, rows), "big", block_rows=rows) == n
        _, written_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        trace = load_trace(target)
        seen = 0
        for chunk in trace.chunks(rows):
            seen += len(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == n and target.stat().st_size > 60e6
    assert written_peak < 16e6 and read_peak < 16e6, (written_peak, read_peak)
