"""Trace files: metadata, validation, and every error with its file:line:column."""
from __future__ import annotations

import hashlib

import pytest

from memsim.errors import UserError
from memsim.formats.trace_file import load_trace
from memsim.trace.program import AllocatorSpec

OK_EVENT = "  - read: {core: 0, addr: 0, size: 8}\n"


def write(tmp_path, text, name="t.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_metadata(tmp_path):
    text = "memsim: 1\nmachine: example-4c\nevents:\n" + OK_EVENT
    path = write(tmp_path, text, "my-trace.yaml")
    trace = load_trace(path)
    assert trace.name == "my-trace"  # default: the file stem
    assert trace.machine_spec == "example-4c" and trace.machine_where == f"{path}:2:10"
    assert trace.base_dir == tmp_path
    assert trace.allocator == AllocatorSpec("none")  # absent means none
    assert (trace.n_objects, trace.allocations, trace.sites) == (0, [], [])
    assert trace.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert trace.n_events == 1 and trace.sources == [f"{path}:4:5"]
    assert trace.core_uses == [(0, f"{path}:4:18")]
    assert load_trace(path, display="shown.yaml").sources == ["shown.yaml:4:5"]


def test_name_allocator_and_inline_machine(tmp_path):
    text = "memsim: 1\nname: counters\nallocator: {model: none}\nmachine: {cores: 2}\nevents:\n" + OK_EVENT
    trace = load_trace(write(tmp_path, text))
    assert (trace.name, trace.allocator, trace.machine_spec) == ("counters", AllocatorSpec("none"), {"cores": 2})
    trace = load_trace(write(tmp_path, "memsim: 1\nallocator: none\nevents:\n" + OK_EVENT))
    assert (trace.allocator, trace.machine_spec, trace.machine_where) == (AllocatorSpec("none"), None, None)


def test_sizes_addresses_and_strides_accept_units(tmp_path):
    text = """memsim: 1
events:
  - read: {core: 0, addr: 0x1000, size: 1.5KiB}
  - sweep: {core: 0, op: write, addr: 1MiB, stride: -4KiB, count: 3, size: 8}
  - random: {core: 0, op: read, addr: 0, range: 1GiB, count: 1, size: 64, align: 4KiB, seed: 18446744073709551615}
"""
    ev = load_trace(write(tmp_path, text)).events()
    assert ev.addr.tolist()[:4] == [0x1000, 1 << 20, (1 << 20) - 4096, (1 << 20) - 8192]
    assert ev.size.tolist() == [1536, 8, 8, 8, 64]
    assert ev.addr[4] % 4096 == 0


def test_core_uses_and_check_cores(tmp_path):
    text = """memsim: 1
events:
  - read: {core: 1, addr: 0, size: 8}
  - parallel:
      threads:
        - core: 5
          do: [{read: {addr: 0, size: 8}}, {write: {core: 2, addr: 0, size: 8}}]
        - core: 7
          repeat: 0
          do: [{read: {addr: 0, size: 8}}]
"""
    path = write(tmp_path, text)
    trace = load_trace(path)
    assert trace.core_uses == [(1, f"{path}:3:18"), (5, f"{path}:6:17"), (2, f"{path}:7:59"), (7, f"{path}:8:17")]
    trace.check_cores(8)
    with pytest.raises(UserError) as err:
        trace.check_cores(4)
    assert str(err.value) == f"{path}:6:17: core 5 is out of range: the machine has 4 cores (0-3)"


ERRORS = [
    # (file text, line:column, message)
    ("events: []\n", "1:1", "missing key 'memsim': a trace file starts with 'memsim: 1' (the format version)"),
    ("memsim: 2\nevents: []\n", "1:9",
     "trace format version 2 is not supported: this version of memsim reads format version 1"),
    ("memsim: one\n", "1:9", "memsim (the format version) must be an integer, found the string 'one'"),
    ("- memsim: 1\n", "1:1", "a trace file must be a mapping, found a list"),
    ("memsim: 1\n", "1:1", "missing key 'events'"),
    ("memsim: 1\ncores: 4\nlevels: []\n", "1:1", "this looks like a machine file, not a trace (it has no 'events')"),
    ("memsim: 1\ncolour: red\nevents:\n" + OK_EVENT, "2:1",
     "unknown key 'colour'; allowed: memsim, name, machine, allocator, events, events_file"),
    ("memsim: 1\nname: 5\nevents:\n" + OK_EVENT, "2:7", "name must be a string, found the number 5"),
    ("memsim: 1\nevents: []\n", "2:9", "events must list at least one event"),
    ("memsim: 1\nevents: {read: {}}\n", "2:9", "events must be a list of events, found a mapping"),
    ("memsim: 1\nevents:\n  - 5\n", "3:5",
     "events[0] must be an event (a mapping with one key, e.g. 'read: {...}'), found the number 5"),
    ("memsim: 1\nevents:\n  - {}\n", "3:5", "events[0] is empty: expected one event such as 'read: {...}'"),
    ("memsim: 1\nevents:\n  - read: {core: 0, addr: 0, size: 8}\n    write: {core: 0, addr: 0, size: 8}\n", "4:5",
     "events[0] has 2 keys (read, write); an event is a mapping with exactly one key, its name (is a '-' missing?)"),
    ("memsim: 1\nevents:\n  - raed: {core: 0, addr: 0, size: 8}\n", "3:5",
     "unknown event 'raed' at events[0] (did you mean 'read'?); allowed: read, write, rmw, ifetch, sweep, random, "
     "repeat, parallel, alloc, free, gc"),
    ("memsim: 1\nevents:\n  - read: 5\n", "3:11", "events[0].read must be a mapping, found the number 5"),
    ("memsim: 1\nevents:\n  - read: {core: 0, addr: 0, szie: 8}\n", "3:30",
     "unknown key 'events[0].read.szie' (did you mean 'size'?); allowed: core, addr, size, obj, offset"),
    ("memsim: 1\nevents:\n  - read: {core: 0, addr: 0}\n", "3:11", "missing key 'events[0].read.size'"),
    ("memsim: 1\nevents:\n  - read: {core: 0, size: 8}\n", "3:11",
     "missing key 'events[0].read.addr' (or 'obj', to access an object)"),
    ("memsim: 1\nevents:\n  - sweep: {core: 0, op: read, addr: 0, offset: 0, count: 1, size: 8}\n", "3:41",
     "'events[0].sweep.offset' applies only with 'events[0].sweep.obj' (an offset inside an object); a raw address "
     "goes in 'addr'"),
    ("memsim: 1\nevents:\n  - read: {addr: 0, size: 1}\n", "3:11",
     "missing key 'events[0].read.core' (only what is inside a parallel thread may omit it and take the thread's "
     "core)"),
    ("memsim: 1\nevents:\n  - read: {core: -1, addr: 0, size: 1}\n", "3:18",
     "events[0].read.core must be at least 0, found -1"),
    ("memsim: 1\nevents:\n  - read: {core: 0, addr: 0, size: 0}\n", "3:36",
     "events[0].read.size must be at least 1, found 0"),
    ("memsim: 1\nevents:\n  - read: {core: 0, addr: 0, size: 1.3}\n", "3:36",
     "events[0].read.size must be a size in bytes (an integer, or a number with KiB/MiB/GiB, e.g. 32KiB), "
     "found the number 1.3"),
    ("memsim: 1\nevents:\n  - read: {core: 0, addr: -8, size: 8}\n", "3:27",
     "events[0].read.addr must be at least 0, found -8"),
    ("memsim: 1\nevents:\n  - read: {core: 0, addr: 9223372036854775800, size: 8}\n", "3:54",
     "events[0].read reaches past the largest address 2^63-1 (it ends at 9223372036854775808)"),
    # allocator (the Go allocator's own errors are in test_trace_alloc.py)
    ("memsim: 1\nallocator: {model: none, gogc: 100}\nevents:\n" + OK_EVENT, "2:26",
     "allocator.gogc applies only to the go model"),
    ("memsim: 1\nallocator: jemalloc\nevents:\n" + OK_EVENT, "2:12",
     "allocator must be one of the allowed values, found the string 'jemalloc'; allowed: none, go"),
    ("memsim: 1\nevents_file: big.mstrace\n", "2:1",
     "events_file 'big.mstrace' does not exist (the path is relative to this trace file)"),
    # generators
    ("memsim: 1\nevents:\n  - sweep: {core: 0, op: reed, addr: 64, count: 3, size: 8}\n", "3:26",
     "events[0].sweep.op must be one of the allowed values, found the string 'reed' (did you mean 'read'?); "
     "allowed: read, write, rmw, ifetch"),
    ("memsim: 1\nevents:\n  - sweep: {core: 0, op: read, addr: 64, count: -3, size: 8}\n", "3:49",
     "events[0].sweep.count must be at least 0, found -3"),
    ("memsim: 1\nevents:\n  - sweep: {core: 0, op: read, addr: 64, stride: -64, count: 3, size: 8}\n", "3:50",
     "events[0].sweep reaches below address 0 (lowest access at -64)"),
    ("memsim: 1\nevents:\n  - sweep: {core: 0, op: read, addr: 0, count: 2, size: 4611686018427387904}\n", "3:48",
     "events[0].sweep reaches past the largest address 2^63-1 (it ends at 9223372036854775808)"),
    ("memsim: 1\nevents:\n  - sweep: {core: 0, op: read, addr: 0, stride: four, count: 1, size: 8}\n", "3:49",
     "events[0].sweep.stride must be a signed number of bytes (an integer, or a size such as 4KiB or -64), "
     "found the string 'four'"),
    ("memsim: 1\nevents:\n  - random: {core: 0, op: read, addr: 0, range: 4, count: 3, size: 8, seed: 1}\n", "3:49",
     "events[0].random.range (4) is smaller than events[0].random.size (8): no access fits"),
    ("memsim: 1\nevents:\n  - random: {core: 0, op: read, addr: 0, range: 64, count: 3, size: 8}\n", "3:13",
     "missing key 'events[0].random.seed'"),
    ("memsim: 1\nevents:\n  - random: {core: 0, op: read, addr: 0, range: 64, count: 3, size: 8, seed: -1}\n",
     "3:78", "events[0].random.seed must be at least 0, found -1"),
    ("memsim: 1\nevents:\n  - random: {core: 0, op: read, addr: 0, range: 64, count: 3, size: 8, seed: 1, align: 0}\n",
     "3:88", "events[0].random.align must be at least 1, found 0"),
    # repeat
    ("memsim: 1\nevents:\n  - repeat: {times: -1, do: [{read: {core: 0, addr: 0, size: 1}}]}\n", "3:21",
     "events[0].repeat.times must be at least 0, found -1"),
    ("memsim: 1\nevents:\n  - repeat: {times: 2}\n", "3:13", "missing key 'events[0].repeat.do'"),
    ("memsim: 1\nevents:\n  - repeat: {times: 2, do: []}\n", "3:28",
     "events[0].repeat.do must list at least one event"),
    ("memsim: 1\nevents:\n  - repeat: {times: 2, do: [{rea: {}}]}\n", "3:30",
     "unknown event 'rea' at events[0].repeat.do[0] (did you mean 'read'?)"),
    ("memsim: 1\nevents:\n  - repeat:\n      times: 4611686018427387904\n"
     "      do: [{read: {core: 0, addr: 0, size: 1}}, {read: {core: 0, addr: 0, size: 1}}]\n", "3:5",
     "events[0].repeat expands to 9223372036854775808 events, more than memsim can index (2^62)"),
    # parallel
    ("memsim: 1\nevents:\n  - parallel:\n      schedule: chunk\n      chunk: 0\n"
     "      threads: [{core: 0, do: [{read: {addr: 0, size: 1}}]}]\n", "5:14",
     "events[0].parallel.chunk must be at least 1, found 0"),
    ("memsim: 1\nevents:\n  - parallel:\n      schedule: chunk\n"
     "      threads: [{core: 0, do: [{read: {addr: 0, size: 1}}]}]\n", "4:17",
     "'schedule: chunk' needs a sibling key 'events[0].parallel.chunk'"),
    ("memsim: 1\nevents:\n  - parallel:\n      schedule: round-robbin\n"
     "      threads: [{core: 0, do: [{read: {addr: 0, size: 1}}]}]\n", "4:17",
     "events[0].parallel.schedule must be one of the allowed values, found the string 'round-robbin' "
     "(did you mean 'round-robin'?); allowed: round-robin, random, chunk"),
    ("memsim: 1\nevents:\n  - parallel:\n      seed: 3\n      threads: [{core: 0, do: [{read: {addr: 0, size: 1}}]}]\n",
     "4:7", "'events[0].parallel.seed' applies only to 'schedule: random' (the schedule here is round-robin)"),
    ("memsim: 1\nevents:\n  - parallel:\n      schedule: random\n      seed: 1\n      chunk: 2\n"
     "      threads: [{core: 0, do: [{read: {addr: 0, size: 1}}]}]\n", "6:7",
     "'events[0].parallel.chunk' applies only to 'schedule: chunk' (the schedule here is random)"),
    ("memsim: 1\nevents:\n  - parallel:\n      schedule: random\n"
     "      threads: [{core: 0, do: [{read: {addr: 0, size: 1}}]}]\n", "4:17",
     "'schedule: random' needs a sibling key 'events[0].parallel.seed'"),
    ("memsim: 1\nevents:\n  - parallel:\n      threads: []\n", "4:16",
     "events[0].parallel.threads must be a non-empty list of {core, repeat, do}, found an empty list"),
    ("memsim: 1\nevents:\n  - parallel:\n      threads: [5]\n", "4:17",
     "events[0].parallel.threads[0] must be a mapping, found the number 5"),
    ("memsim: 1\nevents:\n  - parallel:\n      threads: [{do: [{read: {addr: 0, size: 1}}]}]\n", "4:17",
     "missing key 'events[0].parallel.threads[0].core' (only what is inside a parallel thread may omit it"),
    ("memsim: 1\nevents:\n  - parallel:\n      threads: [{core: 0, repaet: 2, do: [{read: {addr: 0, size: 1}}]}]\n",
     "4:27", "unknown key 'events[0].parallel.threads[0].repaet' (did you mean 'repeat'?); allowed: core, repeat, do"),
    ("memsim: 1\nevents:\n  - parallel:\n      threads: [{core: 0, repeat: -2, do: [{read: {addr: 0, size: 1}}]}]\n",
     "4:35", "events[0].parallel.threads[0].repeat must be at least 0, found -2"),
    ("memsim: 1\nevents:\n  - parallel:\n      threads: [{core: 0, do: [{read: {addr: 0, sise: 1}}]}]\n",
     "4:49", "unknown key 'events[0].parallel.threads[0].do[0].read.sise' (did you mean 'size'?)"),
    # YAML itself
    ("memsim: 1\nevents:\n  - read: {core: 0, addr: 0, size: 1\n", "4:1",
     "YAML syntax error: expected ',' or '}', but got '<stream end>'"),
    ("memsim: 1\nmemsim: 1\nevents:\n" + OK_EVENT, "2:1", "duplicate key 'memsim'"),
]


@pytest.mark.parametrize("text, position, message", ERRORS, ids=[m[:50] for _, _, m in ERRORS])
def test_errors(tmp_path, text, position, message):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_trace(path)
    assert err.value.where == f"{path}:{position}"
    assert err.value.message.startswith(message)


def test_file_level_errors(tmp_path):
    with pytest.raises(UserError, match="the trace file is empty"):
        load_trace(write(tmp_path, "\n"))
    with pytest.raises(UserError) as err:
        load_trace(tmp_path / "missing.yaml")
    assert str(err.value) == f"{tmp_path / 'missing.yaml'}: file not found"
