"""Object ids: `{i}` numbering through nested repeats and parallel threads, object numbering,
clashes between ids, and chunking invariance of object rows."""
from __future__ import annotations

import numpy as np
import pytest

from memsim.errors import UserError
from memsim.formats import trace_file
from memsim.formats.trace_file import load_trace
from memsim.trace.events import COLUMNS, OP_ALLOC, OP_FREE, OP_READ, OP_WRITE
from memsim.trace.rng import splitmix64_scalar

GO = "memsim: 1\nallocator: go\nevents:\n"


def load(tmp_path, events: str, **kw):
    path = tmp_path / "t.yaml"
    path.write_text(GO + events)
    return load_trace(path, **kw)


def named(trace, events, op=None) -> list[str]:
    """The ids of the objects the events name (of the rows with ``op``, if given)."""
    keep = events.op == op if op is not None else events.obj >= 0
    return [trace.object_name(k) for k in events.obj[keep].tolist()]


# -- {i} numbering ------------------------------------------------------------------------------


def test_counter_runs_on_across_outer_passes(tmp_path):
    text = """\
  - repeat:
      times: 2
      do:
        - repeat:
            times: 3
            do:
              - alloc: {id: "n{i}", size: 16, core: 0}
              - write: {core: 0, obj: "n{i}", offset: 8, size: 8}
"""
    trace = load(tmp_path, text)
    ev = trace.events()
    assert named(trace, ev) == [f"n{k}" for k in range(6) for _ in "aw"]
    assert ev.obj.tolist() == [k for k in range(6) for _ in "aw"]  # objects are numbered like the counter
    assert trace.n_objects == 6 and [(a.id, a.first, a.count) for a in trace.allocations] == [("n{i}", 0, 6)]


def test_each_level_counts_its_own_passes(tmp_path):
    """`{i}` is the innermost repeat's counter: an event of the outer body counts the outer passes."""
    text = """\
  - repeat:
      times: 2
      do:
        - alloc: {id: "outer{i}", size: 8, core: 0}
        - repeat:
            times: 3
            do: [{alloc: {id: "inner{i}", size: 8, core: 0}}]
        - free: {id: "outer{i}"}
"""
    trace = load(tmp_path, text)
    want = ["outer0", "inner0", "inner1", "inner2", "outer0", "outer1", "inner3", "inner4", "inner5", "outer1"]
    assert named(trace, trace.events()) == want
    assert [(a.id, a.first, a.count) for a in trace.allocations] == [("outer{i}", 0, 2), ("inner{i}", 2, 6)]


def test_outside_any_repeat_the_counter_is_0(tmp_path):
    trace = load(tmp_path, '  - alloc: {id: "top{i}", size: 8, core: 0}\n  - read: {core: 1, obj: top0, size: 8}\n')
    assert named(trace, trace.events()) == ["top0", "top0"]


def test_a_thread_repeat_is_a_repeat(tmp_path):
    """Thread passes count like a repeat's, across passes of a repeat around the parallel."""
    text = """\
  - repeat:
      times: 2
      do:
        - parallel:
            threads:
              - core: 0
                repeat: 3
                do: [{alloc: {id: "a{i}", size: 8}}]
              - core: 1
                do: [{alloc: {id: "b{i}", size: 8}}, {free: {id: "b{i}"}}]
"""
    trace = load(tmp_path, text)
    ev = trace.events()
    # round-robin: a, b, a, free b, a  per pass of the outer repeat
    assert list(zip(ev.core.tolist(), named(trace, ev))) == [
        (0, "a0"), (1, "b0"), (0, "a1"), (0, "b0"), (0, "a2"),
        (0, "a3"), (1, "b1"), (0, "a4"), (0, "b1"), (0, "a5"),
    ]


def test_generators_use_their_occurrence(tmp_path):
    """A sweep or random of count n: all n accesses of one pass name the same object."""
    text = """\
  - repeat:
      times: 3
      do:
        - alloc: {id: "buf{i}", size: 64, core: 0}
        - sweep: {core: 0, op: read, obj: "buf{i}", offset: 8, stride: 16, count: 4, size: 8}
        - random: {core: 1, op: write, obj: "buf{i}", range: 64, count: 2, size: 8, seed: 9}
"""
    trace = load(tmp_path, text)
    ev = trace.events()
    reads, writes = ev.op == OP_READ, ev.op == OP_WRITE
    assert named(trace, ev, OP_READ) == [f"buf{k}" for k in range(3) for _ in range(4)]
    assert ev.addr[reads].tolist() == [8, 24, 40, 56] * 3
    assert named(trace, ev, OP_WRITE) == [f"buf{k}" for k in range(3) for _ in range(2)]
    assert ev.addr[writes].tolist() == [8 * (splitmix64_scalar(9, g) % 8) for g in range(6)]  # the stream continues


def test_plain_ids_name_objects_of_templates(tmp_path):
    text = """\
  - repeat: {times: 4, do: [{alloc: {id: "x{i}", size: 8, core: 0}}]}
  - alloc: {id: "x{i}y", size: 8, core: 0}
  - read: {core: 0, obj: x3, size: 8}
  - read: {core: 0, obj: x0y, size: 8}
  - free: {id: x2}
"""
    trace = load(tmp_path, text)
    ev = trace.events()
    assert ev.obj.tolist()[5:] == [3, 4, 2]
    assert named(trace, ev)[5:] == ["x3", "x0y", "x2"]


def test_references_in_other_threads_and_later_repeats(tmp_path):
    """The same template in another repeat with the same counter range names the same objects."""
    text = """\
  - repeat:
      times: 2
      do:
        - repeat: {times: 3, do: [{alloc: {id: "n{i}", size: 8, core: 0}}]}
        - repeat: {times: 3, do: [{read: {core: 1, obj: "n{i}", size: 8}}]}
  - parallel:
      threads:
        - {core: 2, repeat: 6, do: [{free: {id: "n{i}"}}]}
"""
    trace = load(tmp_path, text)
    ev = trace.events()
    assert named(trace, ev, OP_READ) == ["n0", "n1", "n2", "n3", "n4", "n5"]
    assert named(trace, ev, OP_FREE) == [f"n{k}" for k in range(6)]


def test_huge_trace_of_objects_is_lazy(tmp_path):
    text = """\
  - repeat:
      times: 1000000000
      do:
        - alloc: {id: "o{i}", size: 24, core: 0, pointers: true}
        - write: {core: 0, obj: "o{i}", offset: 16, size: 8}
        - free: {id: "o{i}"}
"""
    trace = load(tmp_path, text)
    assert trace.n_events == 3 * 10**9 and trace.n_objects == 10**9
    g = np.array([0, 4, 3 * 10**9 - 2], np.int64)
    ev = trace.root.events_at(g)
    assert ev.obj.tolist() == [0, 1, 10**9 - 1] and ev.op.tolist() == [OP_ALLOC, OP_WRITE, OP_WRITE]
    assert trace.object_name(10**9 - 1) == "o999999999"
    assert trace.position_of_event(3 * 10**9 - 1) == f"{tmp_path / 't.yaml'}:9:11"


TEMPLATED = """\
  - alloc: {id: shared, size: 256, core: 0, site: "s.go:1"}
  - repeat:
      times: 3
      do:
        - repeat:
            times: 2
            do:
              - alloc: {id: "leaf{i}", size: 64, core: 1, site: "leaf.go:9"}
              - parallel:
                  schedule: random
                  seed: 4
                  threads:
                    - {core: 0, repeat: 2, do: [{rmw: {obj: shared, offset: 8, size: 8}}]}
                    - {core: 1, do: [{sweep: {op: write, obj: "leaf{i}", count: 3, size: 8}}]}
                    - core: 2
                      do: [{random: {op: read, obj: "leaf{i}", offset: 8, range: 56, count: 2, size: 8, seed: 1}}]
              - free: {id: "leaf{i}"}
        - gc: {}
"""


@pytest.mark.parametrize("limit", [0, 3, 1 << 14])
def test_chunking_never_changes_object_rows(tmp_path, limit):
    trace = load(tmp_path, TEMPLATED, table_limit=limit)
    whole = trace.events()
    assert trace.n_objects == 7 and named(trace, whole, OP_ALLOC) == ["shared"] + [f"leaf{k}" for k in range(6)]
    for size in (1, 5, 64):
        parts = list(trace.chunks(size))
        for name in COLUMNS:
            assert np.concatenate([getattr(p, name) for p in parts]).tolist() == getattr(whole, name).tolist()


# -- clashes ------------------------------------------------------------------------------------

UNIQUE = "; ids are unique in a trace (a freed id is not reused)"
CLASHES = [
    # (events, line:column of the later id, message)
    ("  - alloc: {id: x, size: 8, core: 0}\n  - alloc: {id: x, size: 8, core: 1}\n", "5:17",
     "events[1].alloc.id 'x' is already allocated at {path}:4:5"),
    ('  - repeat: {times: 2, do: [{alloc: {id: "x{i}", size: 8, core: 0}}]}\n'
     '  - repeat: {times: 0, do: [{alloc: {id: "x{i}", size: 8, core: 0}}]}\n', "5:42",
     "events[1].repeat.do[0].alloc.id 'x{i}' is already allocated at {path}:4:29"),
    ('  - repeat: {times: 4, do: [{alloc: {id: "x{i}", size: 8, core: 0}}]}\n'
     "  - alloc: {id: x3, size: 8, core: 0}\n", "5:17",
     "events[1].alloc.id 'x3' is also allocated by 'x{i}' at {path}:4:29 (with {i} = 3)"),
    ("  - alloc: {id: x3, size: 8, core: 0}\n"
     '  - repeat: {times: 4, do: [{alloc: {id: "x{i}", size: 8, core: 0}}]}\n', "5:42",
     "events[1].repeat.do[0].alloc.id 'x{i}' allocates 'x3' (with {i} = 3), which is already allocated at {path}:4:5"),
    ('  - repeat: {times: 20, do: [{alloc: {id: "a{i}", size: 8, core: 0}}]}\n'
     '  - repeat: {times: 5, do: [{alloc: {id: "a1{i}", size: 8, core: 0}}]}\n', "5:42",
     "events[1].repeat.do[0].alloc.id 'a1{i}' allocates 'a10' (with {i} = 0), which 'a{i}' at {path}:4:30 also "
     "allocates (with {i} = 10)"),
    ('  - repeat: {times: 3, do: [{alloc: {id: "v{i}_", size: 8, core: 0}}]}\n'
     '  - repeat: {times: 3, do: [{alloc: {id: "v1{i}", size: 8, core: 0}}]}\n'
     '  - repeat: {times: 30, do: [{alloc: {id: "v{i}", size: 8, core: 0}}]}\n', "6:43",
     "events[2].repeat.do[0].alloc.id 'v{i}' allocates 'v10' (with {i} = 10), which 'v1{i}' at {path}:5:29 also "
     "allocates (with {i} = 0)"),
]


@pytest.mark.parametrize("text, position, message", CLASHES, ids=[m[:60] for _, _, m in CLASHES])
def test_clashes(tmp_path, text, position, message):
    with pytest.raises(UserError) as err:
        load(tmp_path, text)
    path = tmp_path / "t.yaml"
    assert (err.value.where, err.value.message) == (f"{path}:{position}", message.replace("{path}", str(path)) + UNIQUE)


def test_templates_that_cannot_clash(tmp_path):
    text = """\
  - repeat:
      times: 100
      do:
        - alloc: {id: "a{i}", size: 8, core: 0}
        - alloc: {id: "b{i}", size: 8, core: 0}
        - alloc: {id: "a{i}b", size: 8, core: 0}
        - alloc: {id: "a1{i}", size: 8, core: 0}
  - alloc: {id: x3, size: 8, core: 0}
  - alloc: {id: a0100, size: 8, core: 0}
  - alloc: {id: a100, size: 8, core: 0}
"""
    with pytest.raises(UserError, match="'a1{i}' allocates 'a10' \\(with {i} = 0\\)"):
        load(tmp_path, text)
    # without a1{i}: a{i} stops at a99, a leading zero is not a counter, x is not a template
    trace = load(tmp_path, text.replace('        - alloc: {id: "a1{i}", size: 8, core: 0}\n', ""))
    assert trace.n_objects == 303


def test_clashes_beyond_the_search_limit(tmp_path, monkeypatch):
    """Two large templates are not compared name by name; a plain id naming a shared object is
    still reported."""
    monkeypatch.setattr(trace_file, "CLASH_SEARCH_LIMIT", 10)
    text = """\
  - repeat:
      times: 20
      do:
        - alloc: {id: "a{i}", size: 8, core: 0}
        - alloc: {id: "a1{i}", size: 8, core: 0}
"""
    assert load(tmp_path, text).n_objects == 40  # a10 twice, unnoticed
    with pytest.raises(UserError) as err:
        load(tmp_path, text + "  - read: {core: 0, obj: a12, size: 8}\n")
    path = tmp_path / "t.yaml"
    assert (err.value.where, err.value.message) == (
        f"{path}:9:26",
        f"events[1].read.obj 'a12' is allocated twice: by 'a{{i}}' at {path}:7:11 (with {{i}} = 12) and by 'a1{{i}}' "
        f"at {path}:8:11 (with {{i}} = 2)" + UNIQUE,
    )


# -- counter ranges -------------------------------------------------------------------------------

RANGES = [
    ('  - repeat: {times: 6, do: [{alloc: {id: "n{i}", size: 8, core: 0}}]}\n'
     '  - repeat: {times: 10, do: [{read: {core: 0, obj: "n{i}", size: 8}}]}\n', "5:52",
     "events[1].repeat.do[0].read.obj 'n{i}' reaches 'n9' ({i} counts to 9 here), but the alloc at {path}:4:29 "
     "allocates it only for {i} = 0..5"),
    ('  - alloc: {id: "n{i}", size: 8, core: 0}\n'
     '  - repeat: {times: 2, do: [{free: {id: "n{i}"}}]}\n', "5:41",
     "events[1].repeat.do[0].free.id 'n{i}' reaches 'n1' ({i} counts to 1 here), but the alloc at {path}:4:5 "
     "allocates it only for {i} = 0"),
    ('  - repeat: {times: 0, do: [{alloc: {id: "n{i}", size: 8, core: 0}}]}\n'
     '  - read: {core: 0, obj: "n{i}", size: 8}\n', "5:26",
     "events[1].read.obj 'n{i}' reaches 'n0' ({i} counts to 0 here), but the alloc at {path}:4:29 allocates it for "
     "no {i} (it never runs)"),
    ('  - repeat: {times: 3, do: [{alloc: {id: "n{i}", size: 8, core: 0}}]}\n'
     '  - read: {core: 0, obj: n3, size: 8}\n', "5:26",
     "events[1].read.obj 'n3' is never allocated: the alloc at {path}:4:29 allocates 'n{i}' only for {i} = 0..2"),
    ('  - repeat: {times: 3, do: [{alloc: {id: "n{i}", size: 8, core: 0}}]}\n'
     '  - read: {core: 0, obj: n01, size: 8}\n', "5:26", "events[1].read.obj 'n01' is never allocated"),
    ('  - repeat: {times: 3, do: [{alloc: {id: "n{i}", size: 8, core: 0}}]}\n'
     '  - read: {core: 0, obj: "m{i}", size: 8}\n', "5:26",
     "events[1].read.obj 'm{i}' has '{i}', but no alloc has the id 'm{i}' (an id with '{i}' names the objects of the "
     "alloc with the same id) (did you mean 'n{i}'?)"),
]


@pytest.mark.parametrize("text, position, message", RANGES, ids=[m[:60] for _, _, m in RANGES])
def test_counter_ranges_and_unknown_ids(tmp_path, text, position, message):
    with pytest.raises(UserError) as err:
        load(tmp_path, text)
    path = tmp_path / "t.yaml"
    assert (err.value.where, err.value.message) == (f"{path}:{position}", message.replace("{path}", str(path)))


def test_a_shorter_counter_range_is_fine(tmp_path):
    """Reading fewer objects than were allocated, or a template that never runs, is no error."""
    text = """\
  - repeat: {times: 6, do: [{alloc: {id: "n{i}", size: 8, core: 0}}]}
  - repeat: {times: 2, do: [{read: {core: 0, obj: "n{i}", size: 8}}]}
  - repeat: {times: 0, do: [{read: {core: 0, obj: "n{i}", size: 8}}]}
"""
    trace = load(tmp_path, text)
    assert named(trace, trace.events(), OP_READ) == ["n0", "n1"]
