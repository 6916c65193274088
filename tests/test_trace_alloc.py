"""The allocation side of trace files: `allocator:` and Go versions, the alloc/free/gc/obj rows of the
event table, and every error with its file:line:column."""
from __future__ import annotations

import pytest

from memsim.errors import UserError
from memsim.formats.trace_file import load_trace
from memsim.models.goversions import KNOWN, NEWEST, OLDEST, GoVersion, resolve_version
from memsim.trace.events import FLAG_POINTERS, OP_ALLOC, OP_FREE, OP_GC, OP_READ, OP_RMW, OP_WRITE
from memsim.trace.program import AllocatorSpec, Allocation

GO = "memsim: 1\nallocator: go\nevents:\n"
ALLOC = "  - alloc: {id: x, size: 16, core: 0}\n"


def write(tmp_path, text, name="t.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def columns(events, *names):
    return list(zip(*[getattr(events, name).tolist() for name in names]))


# -- Go versions --------------------------------------------------------------------------------


def test_known_versions():
    assert KNOWN[0] == OLDEST == "1.15" and KNOWN[-1] == NEWEST == "1.27"
    assert KNOWN == tuple(f"1.{m}" for m in range(15, 28))


@pytest.mark.parametrize("text, version, generation", [
    ("1.15", "1.15", "classic"), ("1.19", "1.19", "classic"), ("1.21", "1.21", "classic"),
    ("1.22", "1.22", "headers"), ("1.25", "1.25", "headers"),
    ("1.26", "1.26", "greentea"), ("1.27", "1.27", "greentea"),
    ("1.22.3", "1.22", "headers"), ("1.21.0", "1.21", "classic"), ("1.15.15", "1.15", "classic"),
])
def test_resolve_version(text, version, generation):
    assert resolve_version(text) == GoVersion(version, generation, None)


def test_newer_versions_take_the_newest_rules_with_a_warning():
    assert resolve_version("1.30") == GoVersion(
        "1.27", "greentea", "Go 1.30 is newer than the newest known (1.27): using 1.27's rules")
    assert resolve_version("1.28.1").warning == "Go 1.28.1 is newer than the newest known (1.27): using 1.27's rules"


@pytest.mark.parametrize("value, message", [
    (1.2, 'the Go version must be a quoted string, found the number 1.2 (an unquoted 1.20 is read as 1.2): '
          'write version: "1.20"'),
    (1.22, 'the Go version must be a quoted string, found the number 1.22: write version: "1.22"'),
    (1, 'the Go version must be a quoted string such as "1.27", found 1'),
    (None, 'the Go version must be a quoted string such as "1.27", found None'),
    ("1.14", "Go 1.14 is older than the oldest supported version (1.15)"),
    ("1.4.2", "Go 1.4.2 is older than the oldest supported version (1.15)"),
    ("go1.2x", "'go1.2x' is not a Go version: expected a release such as \"1.27\" or \"1.22.3\""),
    ("go1.22", "'go1.22' is not a Go version"),
    ("1.22rc1", "'1.22rc1' is not a Go version"),
    ("1.022", "'1.022' is not a Go version"),
    ("2.0", "'2.0' is not a Go version"),
    ("", "'' is not a Go version"),
])
def test_bad_versions(value, message):
    with pytest.raises(ValueError) as err:
        resolve_version(value)
    assert str(err.value).startswith(message)


# -- allocator: ---------------------------------------------------------------------------------


@pytest.mark.parametrize("written, spec", [
    ("go", AllocatorSpec("go", NEWEST, "greentea", None, None)),
    ("{model: go}", AllocatorSpec("go", NEWEST, "greentea", None, None)),
    ('{model: go, version: "1.22.3", gogc: 100}', AllocatorSpec("go", "1.22", "headers", 100, None)),
    ('{model: go, version: "1.19", gogc: off}', AllocatorSpec("go", "1.19", "classic", None, None)),
    ('{model: go, gogc: "off"}', AllocatorSpec("go", NEWEST, "greentea", None, None)),
    ("{model: go, gogc: 1}", AllocatorSpec("go", NEWEST, "greentea", 1, None)),
    ("{model: go, gogc: 2147483647}", AllocatorSpec("go", NEWEST, "greentea", 2**31 - 1, None)),
    ("none", AllocatorSpec("none")),
    ("{model: none}", AllocatorSpec("none", None, None, None, None)),
])
def test_allocator_spec(tmp_path, written, spec):
    event = ALLOC if spec.model == "go" else "  - read: {core: 0, addr: 0, size: 8}\n"
    assert load_trace(write(tmp_path, f"memsim: 1\nallocator: {written}\nevents:\n" + event)).allocator == spec


def test_allocator_warning_names_the_version_key(tmp_path):
    path = write(tmp_path, 'memsim: 1\nallocator: {model: go, version: "1.30"}\nevents:\n' + ALLOC)
    spec = load_trace(path).allocator
    assert (spec.version, spec.generation) == ("1.27", "greentea")
    assert spec.warning == f"{path}:2:33: Go 1.30 is newer than the newest known (1.27): using 1.27's rules"


ALLOCATOR_ERRORS = [
    ("allocator: {model: go, version: 1.20}", "2:33",
     'the Go version must be a quoted string, found the number 1.2 (an unquoted 1.20 is read as 1.2): '
     'write version: "1.20"'),
    ('allocator: {model: go, version: "1.14"}', "2:33", "Go 1.14 is older than the oldest supported version (1.15)"),
    ('allocator: {model: go, version: "go1.2x"}', "2:33",
     "'go1.2x' is not a Go version: expected a release such as \"1.27\" or \"1.22.3\""),
    ("allocator: {model: go, gogc: 0}", "2:30", "allocator.gogc must be at least 1, found 0"),
    ("allocator: {model: go, gogc: 2147483648}", "2:30", "allocator.gogc must be at most 2147483647, found 2147483648"),
    ("allocator: {model: go, gogc: on}", "2:30",
     "allocator.gogc must be an integer percentage (at least 1) or off, found the boolean true"),
    ("allocator: {model: go, gogc: 1.5}", "2:30",
     "allocator.gogc must be an integer percentage (at least 1) or off, found the number 1.5"),
    ("allocator: {model: go, gcpercent: 100}", "2:24",
     "unknown key 'allocator.gcpercent'; allowed: model, version, gogc"),
    ('allocator: {version: "1.22"}', "2:12", "missing key 'allocator.model'"),
    ("allocator: {model: jemalloc}", "2:20",
     "allocator.model must be one of the allowed values, found the string 'jemalloc'; allowed: none, go"),
    ('allocator: {model: none, version: "1.22"}', "2:26", "allocator.version applies only to the go model"),
    ("allocator: goo", "2:12",
     "allocator must be one of the allowed values, found the string 'goo' (did you mean 'go'?); allowed: none, go"),
]


@pytest.mark.parametrize("line, position, message", ALLOCATOR_ERRORS, ids=[m[:50] for _, _, m in ALLOCATOR_ERRORS])
def test_allocator_errors(tmp_path, line, position, message):
    path = write(tmp_path, f"memsim: 1\n{line}\nevents:\n" + ALLOC)
    with pytest.raises(UserError) as err:
        load_trace(path)
    assert (err.value.where, err.value.message) == (f"{path}:{position}", message)


# -- the event table --------------------------------------------------------------------------


def test_rows_of_alloc_free_gc_and_object_accesses(tmp_path):
    text = GO + """\
  - alloc: {id: counters, size: 32, core: 2, pointers: true, site: "stats.go:14", label: hot}
  - alloc: {id: empty, size: 0, core: 1}
  - alloc: {id: buf, size: 1KiB, core: 3, site: "buf.go:7"}
  - alloc: {id: more, size: 8, core: 0, pointers: false, site: "stats.go:14"}
  - write: {core: 1, obj: counters, offset: 8, size: 8}
  - read: {core: 0, obj: counters, size: 4}
  - rmw: {core: 3, addr: 0x1000, size: 8}
  - sweep: {core: 2, op: read, obj: buf, offset: 1000, stride: -300, count: 4, size: 24}
  - random: {core: 1, op: write, obj: buf, offset: 512, range: 512, count: 3, size: 8, seed: 7}
  - free: {id: counters}
  - gc: {}
"""
    trace = load_trace(write(tmp_path, text))
    ev = trace.events()
    names = ("op", "core", "size", "obj", "addr", "flags", "site", "src")
    want = [
        (OP_ALLOC, 2, 32, 0, 0, FLAG_POINTERS, 0, 0),
        (OP_ALLOC, 1, 0, 1, 0, 0, -1, 1),
        (OP_ALLOC, 3, 1024, 2, 0, 0, 1, 2),
        (OP_ALLOC, 0, 8, 3, 0, 0, 0, 3),  # the same site string shares its index
        (OP_WRITE, 1, 8, 0, 8, 0, -1, 4),
        (OP_READ, 0, 4, 0, 0, 0, -1, 5),
        (OP_RMW, 3, 8, -1, 0x1000, 0, -1, 6),
    ] + [(OP_READ, 2, 24, 2, offset, 0, -1, 7) for offset in (1000, 700, 400, 100)]
    assert columns(ev, *names)[:11] == want
    rand = columns(ev, *names)[11:14]
    assert [r[:4] + r[5:] for r in rand] == [(OP_WRITE, 1, 8, 2, 0, -1, 8)] * 3
    assert all(512 <= r[4] <= 1016 and r[4] % 8 == 0 for r in rand)  # offset + align * slot
    assert columns(ev, *names)[14:] == [(OP_FREE, 0, 0, 0, 0, 0, -1, 9), (OP_GC, 0, 0, -1, 0, 0, -1, 10)]
    assert trace.sites == ["stats.go:14", "buf.go:7"]
    assert trace.n_objects == 4
    assert [trace.object_name(k) for k in range(4)] == ["counters", "empty", "buf", "more"]
    assert [trace.object_site(k) for k in range(4)] == ["stats.go:14", None, "buf.go:7", "stats.go:14"]
    assert trace.allocation_of(0) == Allocation("counters", 0, 1, 32, True, 0, "hot", f"{tmp_path / 't.yaml'}:4:5")


def test_random_on_an_object_draws_like_random_on_an_address(tmp_path):
    body = "op: read, range: 256, count: 50, size: 8, align: 4, seed: 3"
    on_obj = load_trace(write(tmp_path, GO + f"  - alloc: {{id: x, size: 300, core: 0}}\n"
                                             f"  - random: {{core: 0, obj: x, offset: 40, {body}}}\n"))
    raw = load_trace(write(tmp_path, f"memsim: 1\nevents:\n  - random: {{core: 0, addr: 40, {body}}}\n", "raw.yaml"))
    assert on_obj.events().addr.tolist()[1:] == raw.events().addr.tolist()


def test_free_and_gc_use_no_core(tmp_path):
    text = GO + """\
  - parallel:
      threads:
        - core: 3
          do: [{alloc: {id: x, size: 8}}, {free: {id: x}}, {gc: {}}]
"""
    path = write(tmp_path, text)
    trace = load_trace(path)
    assert columns(trace.events(), "op", "core") == [(OP_ALLOC, 3), (OP_FREE, 0), (OP_GC, 0)]
    assert trace.core_uses == [(3, f"{path}:6:17")]
    trace.check_cores(4)
    with pytest.raises(UserError, match="core 3 is out of range"):
        trace.check_cores(3)


def test_position_of_event(tmp_path):
    text = GO + """\
  - alloc: {id: "n{i}", size: 8, core: 0}
  - repeat:
      times: 3
      do:
        - alloc: {id: "m{i}", size: 64, core: 0}
        - sweep: {core: 1, op: read, obj: "m{i}", count: 2, size: 8}
  - gc: {}
"""
    path = write(tmp_path, text)
    trace = load_trace(path)
    assert trace.n_events == 11
    lines = [trace.position_of_event(k) for k in range(trace.n_events)]
    assert lines == [f"{path}:{p}" for p in ["4:5"] + ["8:11", "9:11", "9:11"] * 3 + ["10:5"]]
    with pytest.raises(IndexError, match="event 11 does not exist: the trace has 11 events"):
        trace.position_of_event(11)
    with pytest.raises(IndexError, match="object 4 does not exist: the trace has 4 objects"):
        trace.object_name(4)


def test_ids_may_be_used_before_their_alloc_in_file_order(tmp_path):
    text = GO + """\
  - parallel:
      threads:
        - {core: 0, do: [{read: {obj: late, offset: 4, size: 4}}]}
        - {core: 1, do: [{alloc: {id: late, size: 8}}]}
"""
    trace = load_trace(write(tmp_path, text))
    assert columns(trace.events(), "op", "obj", "addr") == [(OP_READ, 0, 4), (OP_ALLOC, 0, 0)]


def test_the_largest_object_and_its_last_byte(tmp_path):
    text = GO + "  - alloc: {id: big, size: 1TiB, core: 0}\n  - read: {core: 0, obj: big, offset: %d, size: 1}\n"
    assert load_trace(write(tmp_path, text % (2**40 - 1))).events().addr.tolist() == [0, 2**40 - 1]
    with pytest.raises(UserError) as err:
        load_trace(write(tmp_path, text % 2**40))
    assert err.value.message.startswith("events[1].read reaches past the end of object 'big' (1099511627776 bytes")


# -- errors -------------------------------------------------------------------------------------

ERRORS = [
    # (file text after the header, line:column, message); the header is GO (3 lines) unless the text starts "memsim"
    ("memsim: 1\nevents:\n" + ALLOC, "3:5",
     "events[0].alloc needs the Go allocator: add 'allocator: go' to the trace (without an 'allocator' key the "
     "allocator is none)"),
    ("memsim: 1\nallocator: none\nevents:\n  - free: {id: x}\n", "4:5",
     "events[0].free needs the Go allocator: add 'allocator: go' to the trace (the allocator at {path}:2:12 is none)"),
    ("memsim: 1\nallocator: {model: none}\nevents:\n  - gc: {}\n", "4:5",
     "events[0].gc needs the Go allocator: add 'allocator: go' to the trace (the allocator at {path}:2:12 is none)"),
    ("memsim: 1\nevents:\n  - read: {core: 0, obj: x, offset: 0, size: 8}\n", "3:21",
     "events[0].read.obj needs the Go allocator: add 'allocator: go' to the trace (without an 'allocator' key the "
     "allocator is none)"),
    ("memsim: 1\nevents:\n  - parallel: {threads: [{core: 0, do: [{sweep: {op: read, obj: x, count: 1, size: 8}}]}]}\n",
     "3:60", "events[0].parallel.threads[0].do[0].sweep.obj needs the Go allocator"),
    # addressing
    (ALLOC + "  - read: {core: 0, addr: 0, obj: x, size: 8}\n", "5:30",
     "events[1].read has both 'addr' and 'obj': give a raw address or an object, not both"),
    (ALLOC + "  - read: {core: 0, obj: x, offset: -8, size: 8}\n", "5:37",
     "events[1].read.offset must be at least 0, found -8"),
    (ALLOC + "  - read: {core: 0, obj: x, offset: 12, size: 8}\n", "5:47",
     "events[1].read reaches past the end of object 'x' (16 bytes, allocated at {path}:4:5): it ends at offset 20"),
    (ALLOC + "  - sweep: {core: 0, op: read, obj: x, count: 3, size: 8}\n", "5:47",
     "events[1].sweep reaches past the end of object 'x' (16 bytes, allocated at {path}:4:5): it ends at offset 24"),
    (ALLOC + "  - sweep: {core: 0, op: read, obj: x, offset: 8, stride: -8, count: 3, size: 8}\n", "5:59",
     "events[1].sweep reaches below the start of object 'x' (lowest access at offset -8)"),
    (ALLOC + "  - random: {core: 0, op: read, obj: x, offset: 4, range: 16, count: 3, size: 4, seed: 1}\n", "5:59",
     "events[1].random reaches past the end of object 'x' (16 bytes, allocated at {path}:4:5): it ends at offset 20"),
    ("  - alloc: {id: z, size: 0, core: 0}\n  - read: {core: 0, obj: z, size: 1}\n", "5:35",
     "events[1].read reaches past the end of object 'z' (0 bytes, allocated at {path}:4:5): it ends at offset 1"),
    (ALLOC + "  - read: {core: 0, obj: x, size: 0}\n", "5:35", "events[1].read.size must be at least 1, found 0"),
    # alloc fields
    ("  - alloc: {id: x, size: -1, core: 0}\n", "4:26", "events[0].alloc.size must be at least 0, found -1"),
    ("  - alloc: {id: x, size: 2TiB, core: 0}\n", "4:26",
     "events[0].alloc.size must be at most 2^40 (1 TiB), found 2199023255552"),
    ("  - alloc: {id: x, size: 8}\n", "4:12",
     "missing key 'events[0].alloc.core' (only what is inside a parallel thread may omit it"),
    ("  - alloc: {size: 8, core: 0}\n", "4:12", "missing key 'events[0].alloc.id'"),
    ("  - alloc: {id: x, size: 8, core: 0, pointer: true}\n", "4:38",
     "unknown key 'events[0].alloc.pointer' (did you mean 'pointers'?); allowed: id, size, core, pointers, site, "
     "label"),
    ("  - alloc: {id: x, size: 8, core: 0, pointers: yes please}\n", "4:48",
     "events[0].alloc.pointers must be true or false, found the string 'yes please'"),
    ("  - alloc: {id: x, size: 8, core: 0, site: 14}\n", "4:44",
     "events[0].alloc.site must be a string, found the number 14"),
    ("  - alloc: {id: x, size: 8, core: 0, label: [a]}\n", "4:45",
     "events[0].alloc.label must be a string, found a list"),
    ("  - alloc: {id: 7, size: 8, core: 0}\n", "4:17", "events[0].alloc.id must be a string, found the number 7"),
    ("  - alloc: {id: '', size: 8, core: 0}\n", "4:17", "events[0].alloc.id must not be empty"),
    ("  - alloc: {id: 'x{j}', size: 8, core: 0}\n", "4:17",
     "events[0].alloc.id 'x{j}' may contain '{i}' (the repeat counter) once, and no other braces"),
    ("  - alloc: {id: 'x{i}{i}', size: 8, core: 0}\n", "4:17", "events[0].alloc.id 'x{i}{i}' may contain '{i}'"),
    ("  - alloc: {id: 'x{i', size: 8, core: 0}\n", "4:17", "events[0].alloc.id 'x{i' may contain '{i}'"),
    (ALLOC + "  - read: {core: 0, obj: 'x}', size: 1}\n", "5:26", "events[1].read.obj 'x}' may contain '{i}'"),
    # free and gc
    ("  - free: {id: x, core: 0}\n", "4:19", "unknown key 'events[0].free.core'; allowed: id"),
    ("  - free: {}\n", "4:11", "missing key 'events[0].free.id'"),
    ("  - gc: {now: true}\n", "4:10", "events[0].gc takes no fields (write 'gc: {}')"),
    ("  - gc:\n", "4:8", "events[0].gc must be a mapping, found nothing (null)"),
    # ids that name nothing
    ("  - alloc: {id: counters, size: 16, core: 0}\n  - read: {core: 0, obj: countres, size: 8}\n", "5:26",
     "events[1].read.obj 'countres' is never allocated (did you mean 'counters'?)"),
    ("  - free: {id: ghost}\n", "4:16", "events[0].free.id 'ghost' is never allocated"),
    (ALLOC + "  - repeat: {times: 2, do: [{free: {id: 'y{i}'}}]}\n", "5:41",
     "events[1].repeat.do[0].free.id 'y{i}' has '{i}', but no alloc has the id 'y{i}' (an id with '{i}' names the "
     "objects of the alloc with the same id)"),
    # once-only ids inside repeats
    ("  - repeat:\n      times: 4\n      do:\n        - alloc: {id: buf, size: 8, core: 0}\n", "7:23",
     "events[0].repeat.do[0].alloc.id 'buf' is allocated 4 times (once per pass of the enclosing repeats); put '{i}' "
     "in the id to allocate one object per pass"),
    ("  - parallel: {threads: [{core: 0, repeat: 2, do: [{alloc: {id: buf, size: 8}}]}]}\n", "4:65",
     "events[0].parallel.threads[0].do[0].alloc.id 'buf' is allocated 2 times"),
    (ALLOC + "  - repeat: {times: 3, do: [{free: {id: x}}]}\n", "5:41",
     "events[1].repeat.do[0].free.id 'x' is freed 3 times (once per pass of the enclosing repeats); an object can be "
     "freed only once"),
]


@pytest.mark.parametrize("text, position, message", ERRORS, ids=[m[:60] for _, _, m in ERRORS])
def test_errors(tmp_path, text, position, message):
    path = tmp_path / "t.yaml"
    path.write_text(text if text.startswith("memsim") else GO + text)
    with pytest.raises(UserError) as err:
        load_trace(path)
    assert err.value.where == f"{path}:{position}"
    assert err.value.message.startswith(message.replace("{path}", str(path)))


def test_plain_ids_in_repeats_that_run_at_most_once(tmp_path):
    text = GO + """\
  - repeat: {times: 1, do: [{alloc: {id: a, size: 8, core: 0}}, {free: {id: a}}]}
  - repeat: {times: 0, do: [{alloc: {id: b, size: 8, core: 0}}, {free: {id: b}}]}
"""
    trace = load_trace(write(tmp_path, text))
    assert columns(trace.events(), "op", "obj") == [(OP_ALLOC, 0), (OP_FREE, 0)]
    assert trace.n_objects == 2 and trace.object_name(1) == "b"  # reserved although it never runs
