"""Expansion of trace programs: exact event lists, schedules, streams, and chunking invariance
(with objects: allocs, frees and accesses whose ids carry the `{i}` pass counter)."""
from __future__ import annotations

import copy
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memsim.formats.trace_file import load_trace
from memsim.trace.events import ACCESS_OPS, COLUMNS, FLAG_POINTERS, OP_ALLOC, OP_FREE, OP_GC, OP_READ, OP_RMW, OP_WRITE
from memsim.trace.rng import splitmix64, splitmix64_scalar

R, W, M = OP_READ, OP_WRITE, OP_RMW


def load(tmp_path: Path, text: str, **kw):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return load_trace(path, **kw)


def rows(events) -> list[tuple]:
    return list(zip(*[getattr(events, name).tolist() for name in COLUMNS]))


def named_rows(trace, events) -> list[tuple]:
    """``rows`` with each object index replaced by the object's id (as the reference names them)."""
    obj = list(COLUMNS).index("obj")
    return [r[:obj] + ((trace.object_name(r[obj]) if r[obj] >= 0 else -1),) + r[obj + 1 :] for r in rows(events)]


def brief(events) -> list[tuple]:
    """(op, core, addr, size) per event."""
    return list(zip(events.op.tolist(), events.core.tolist(), events.addr.tolist(), events.size.tolist()))


def both(tmp_path, text):
    """The events with and without precomputed tables (they must agree)."""
    a, b = load(tmp_path, text).events(), load(tmp_path, text, table_limit=0).events()
    assert rows(a) == rows(b)
    return a


# -- reference: expands the YAML mapping directly, one event at a time ---------------------------


def reference(doc: dict) -> list[tuple]:
    """The event rows, objects named by their ids (`{i}` filled in)."""
    src, sites = {}, []

    def number(events):  # sources are numbered in file order, an event before its children
        for ev in events:
            ((name, body),) = ev.items()
            src[id(ev)] = len(src)
            if name == "alloc" and "site" in body and body["site"] not in sites:
                sites.append(body["site"])
            if name == "repeat":
                number(body["do"])
            if name == "parallel":
                for thread in body["threads"]:
                    number(thread["do"])

    number(doc["events"])
    drawn = defaultdict(int)  # per random event / random schedule: stream positions used so far
    passes = defaultdict(int)  # per repeat / thread: passes made so far, over all its expansions

    def expand(events, core, counter):  # counter: the innermost repeat's pass number, the `{i}`
        out = []
        for ev in events:
            ((name, b),) = ev.items()
            c = b.get("core", core)
            obj = b["obj"].replace("{i}", str(counter)) if "obj" in b else -1
            start = b.get("offset", 0) if "obj" in b else b.get("addr")

            def row(op, addr):
                return (op, c, b["size"], obj, addr, 0, -1, src[id(ev)])

            if name in ACCESS_OPS:
                out.append(row(ACCESS_OPS[name], start))
            elif name == "sweep":
                stride = b.get("stride", b["size"])
                out += [row(ACCESS_OPS[b["op"]], start + i * stride) for i in range(b["count"])]
            elif name == "random":
                align = b.get("align", b["size"])
                slots = (b["range"] - b["size"]) // align + 1
                for _ in range(b["count"]):
                    u = splitmix64_scalar(b["seed"], drawn[id(ev)])
                    drawn[id(ev)] += 1
                    out.append(row(ACCESS_OPS[b["op"]], start + align * (u % slots)))
            elif name == "alloc":
                flags = FLAG_POINTERS if b.get("pointers") else 0
                site = sites.index(b["site"]) if "site" in b else -1
                out.append((OP_ALLOC, c, b["size"], b["id"].replace("{i}", str(counter)), 0, flags, site, src[id(ev)]))
            elif name == "free":
                out.append((OP_FREE, 0, 0, b["id"].replace("{i}", str(counter)), 0, 0, -1, src[id(ev)]))
            elif name == "gc":
                out.append((OP_GC, 0, 0, -1, 0, 0, -1, src[id(ev)]))
            elif name == "repeat":
                out += repeated(ev, b["times"], b["do"], core)
            elif name == "parallel":
                lists = [repeated(th, th.get("repeat", 1), th["do"], th.get("core", core)) for th in b["threads"]]
                out += schedule(lists, b.get("schedule", "round-robin"), b.get("chunk", 1), b.get("seed"), id(ev))
        return out

    def repeated(key, times, events, core):
        out = []
        for _ in range(times):
            out += expand(events, core, passes[id(key)])
            passes[id(key)] += 1
        return out

    def schedule(lists, kind, chunk, seed, key):
        taken = [0] * len(lists)
        live = [t for t in range(len(lists)) if lists[t]]
        out = []
        while live:
            if kind == "random":
                u = splitmix64_scalar(seed, drawn[key])
                drawn[key] += 1
                turns = [(live[u % len(live)], 1)]
            else:
                turns = [(t, chunk if kind == "chunk" else 1) for t in live]
            for t, k in turns:
                part = lists[t][taken[t] : taken[t] + k]
                out += part
                taken[t] += len(part)
            live = [t for t in live if taken[t] < len(lists[t])]
        return out

    return expand(doc["events"], None, 0)


# -- exact small cases --------------------------------------------------------------------------

THREADS = """
      threads:
        - core: 0
          do: [{sweep: {op: read, addr: 0, count: 5, size: 4}}]
        - core: 1
          do: [{write: {addr: 100, size: 4}}]
        - core: 2
          repeat: 3
          do: [{rmw: {addr: 200, size: 8}}]
"""
A = [(R, 0, a, 4) for a in (0, 4, 8, 12, 16)]
B = [(W, 1, 100, 4)]
C = [(M, 2, 200, 8)] * 3


def test_round_robin_unequal_threads(tmp_path):
    ev = both(tmp_path, "memsim: 1\nevents:\n  - parallel:" + THREADS)
    assert brief(ev) == [A[0], B[0], C[0], A[1], C[1], A[2], C[2], A[3], A[4]]


def test_chunk_schedule_unequal_threads(tmp_path):
    ev = both(tmp_path, "memsim: 1\nevents:\n  - parallel:\n      schedule: chunk\n      chunk: 2" + THREADS)
    # round 0: two from each; round 1: A2 A3, C2 (C's last turn is short), B is gone; round 2: A4
    assert brief(ev) == [A[0], A[1], B[0], C[0], C[1], A[2], A[3], C[2], A[4]]


def test_random_schedule_unequal_threads(tmp_path):
    ev = both(tmp_path, "memsim: 1\nevents:\n  - parallel:\n      schedule: random\n      seed: 5" + THREADS)
    # step s takes live thread number splitmix64(5, s) % (live count), in thread order
    draws = [splitmix64_scalar(5, s) for s in range(4)]
    assert [u % 3 for u in draws[:2]] == [2, 1]  # C0, B0: B is gone
    assert [u % 2 for u in draws[2:]] == [1, 1]  # of (A, C): C1, C2: C is gone, only A is left
    assert brief(ev) == [C[0], B[0], C[1], C[2]] + A


def test_random_schedule_continues_across_occurrences(tmp_path):
    text = """memsim: 1
events:
  - repeat:
      times: 3
      do:
        - parallel:
            schedule: random
            seed: 11
            threads:
              - {core: 0, do: [{read: {addr: 0, size: 1}}, {read: {addr: 1, size: 1}}]}
              - {core: 1, do: [{read: {addr: 2, size: 1}}]}
"""
    got = [c for (_, c, _, _) in brief(both(tmp_path, text))]
    want = []
    for o in range(3):  # occurrence o, step s draws stream position o*3 + s
        left = [2, 1]
        for s in range(3):
            live = [t for t in (0, 1) if left[t]]
            t = live[splitmix64_scalar(11, o * 3 + s) % len(live)]
            left[t] -= 1
            want.append(t)
    assert got == want
    assert len(set(map(tuple, np.reshape(got, (3, 3))))) > 1  # not the same interleaving every time


def test_nested_repeats(tmp_path):
    text = """memsim: 1
events:
  - repeat:
      times: 2
      do:
        - read: {core: 0, addr: 0, size: 8}
        - repeat:
            times: 3
            do:
              - write: {core: 1, addr: 64, size: 8}
              - sweep: {core: 2, op: rmw, addr: 128, stride: -64, count: 2, size: 8}
  - read: {core: 3, addr: 4096, size: 8}
"""
    inner = [(W, 1, 64, 8), (M, 2, 128, 8), (M, 2, 64, 8)]
    assert brief(both(tmp_path, text)) == ([(R, 0, 0, 8)] + inner * 3) * 2 + [(R, 3, 4096, 8)]


def test_random_stream_continues_across_repeat_passes(tmp_path):
    one = "      - random: {core: 0, op: read, addr: 1000, range: 64, count: %d, size: 8, align: 4, seed: 42}\n"
    repeated = load(tmp_path, "memsim: 1\nevents:\n  - repeat:\n      times: 3\n      do:\n  " + one % 2).events()
    (tmp_path / "x").mkdir()
    single = load(tmp_path / "x", "memsim: 1\nevents:\n" + (one % 6)[4:]).events()
    want = [1000 + 4 * (splitmix64_scalar(42, g) % 15) for g in range(6)]  # slots = (64-8)//4 + 1
    assert repeated.addr.tolist() == want == single.addr.tolist()
    assert len(set(want)) > 2


def test_random_accesses_stay_inside_range_and_aligned(tmp_path):
    body = "{core: 0, op: write, addr: 100, range: 1000, count: 5000, size: 24, align: 8, seed: 1}"
    ev = load(tmp_path, f"memsim: 1\nevents:\n  - random: {body}\n").events()
    assert ev.addr.min() >= 100 and (ev.addr + 24).max() <= 1100
    assert ((ev.addr - 100) % 8 == 0).all()
    assert set(((ev.addr - 100) // 8).tolist()) == set(range((1000 - 24) // 8 + 1))


def test_threads_inherit_core_and_columns(tmp_path):
    text = """memsim: 1
events:
  - parallel:
      threads:
        - core: 3
          repeat: 2
          do:
            - read: {addr: 8, size: 8}
            - write: {core: 1, addr: 16, size: 8}
            - parallel:
                threads:
                  - do: [{ifetch: {addr: 0, size: 4}}]
"""
    trace = load(tmp_path, text)
    # sources: parallel (3:5), read (8:15), write (9:15), inner parallel (10:15), ifetch (12:26)
    assert trace.sources == [f"{tmp_path / 't.yaml'}:{p}" for p in ("3:5", "8:15", "9:15", "10:15", "12:26")]
    assert rows(trace.events()) == [
        (R, 3, 8, -1, 8, 0, -1, 1), (W, 1, 8, -1, 16, 0, -1, 2), (3, 3, 4, -1, 0, 0, -1, 4),
    ] * 2


def test_empty_expansions(tmp_path):
    text = """memsim: 1
events:
  - repeat: {times: 0, do: [{read: {core: 0, addr: 0, size: 1}}]}
  - sweep: {core: 0, op: read, addr: 0, count: 0, size: 1}
  - parallel:
      threads:
        - {core: 0, repeat: 0, do: [{read: {addr: 0, size: 1}}]}
        - {core: 1, do: [{read: {addr: 1, size: 1}}, {read: {addr: 2, size: 1}}]}
"""
    trace = load(tmp_path, text)
    assert trace.n_events == 2 and brief(trace.events()) == [(R, 1, 1, 1), (R, 1, 2, 1)]
    empty = load(tmp_path, "memsim: 1\nevents: [{repeat: {times: 0, do: [{read: {core: 0, addr: 0, size: 1}}]}}]\n")
    assert empty.n_events == 0 and list(empty.chunks()) == []


def test_huge_trace_is_lazy(tmp_path):
    text = """memsim: 1
events:
  - repeat:
      times: 1000000000
      do:
        - sweep: {core: 0, op: read, addr: 0, stride: 64, count: 1000, size: 8}
        - random: {core: 1, op: write, addr: 0, range: 1MiB, count: 1, size: 8, seed: 3}
"""
    trace = load(tmp_path, text)
    assert trace.n_events == 1001 * 10**9
    g = np.array([0, 999, 1000, 1001 * 10**9 - 1], np.int64)
    ev = trace.root.events_at(g)
    slots = (2**20 - 8) // 8 + 1
    first, last = (8 * (splitmix64_scalar(3, g) % slots) for g in (0, 10**9 - 1))
    assert brief(ev) == [(R, 0, 0, 8), (R, 0, 999 * 64, 8), (W, 1, first, 8), (W, 1, last, 8)]


# -- chunking never changes the events (and the reference agrees) --------------------------------

OPS = list(ACCESS_OPS)


@st.composite
def event(draw, depth: int, in_thread: bool):
    kinds = ["access", "sweep", "random"] + (["repeat", "parallel"] if depth > 0 else [])
    kind = draw(st.sampled_from(kinds))
    core = {} if in_thread and draw(st.booleans()) else {"core": draw(st.integers(0, 3))}
    size = draw(st.integers(1, 16))
    if kind == "access":
        return {draw(st.sampled_from(OPS)): {**core, "addr": draw(st.integers(0, 1 << 20)), "size": size}}
    if kind == "sweep":
        body = {**core, "op": draw(st.sampled_from(OPS)), "addr": 1 << 12, "count": draw(st.integers(0, 6))}
        body["size"] = size
        if draw(st.booleans()):
            body["stride"] = draw(st.integers(-64, 64))
        return {"sweep": body}
    if kind == "random":
        body = {**core, "op": draw(st.sampled_from(OPS)), "addr": draw(st.integers(0, 4096)), "size": size}
        body["range"] = size + draw(st.integers(0, 200))
        body["count"], body["seed"] = draw(st.integers(0, 6)), draw(st.integers(0, 2**64 - 1))
        if draw(st.booleans()):
            body["align"] = draw(st.integers(1, 32))
        return {"random": body}
    if kind == "repeat":
        return {"repeat": {"times": draw(st.integers(0, 3)), "do": draw(event_list(depth - 1, in_thread))}}
    body = {"schedule": draw(st.sampled_from(["round-robin", "chunk", "random"]))}
    if body["schedule"] == "chunk":
        body["chunk"] = draw(st.integers(1, 4))
    if body["schedule"] == "random":
        body["seed"] = draw(st.integers(0, 2**64 - 1))
    threads = []
    for _ in range(draw(st.integers(1, 4))):
        thread = {"core": draw(st.integers(0, 3)), "do": draw(event_list(depth - 1, True))}
        if draw(st.booleans()):
            thread["repeat"] = draw(st.integers(0, 3))
        threads.append(thread)
    body["threads"] = threads
    return {"parallel": body}


@st.composite
def object_block(draw, in_thread: bool):
    """An alloc and accesses to its object (the id's `{i}` is the pass counter they share, being
    siblings), maybe a free and a gc. The id "@" is named by ``name_objects``."""

    def core():
        return {} if in_thread and draw(st.booleans()) else {"core": draw(st.integers(0, 3))}

    size = draw(st.integers(64, 256))
    alloc = {**core(), "id": "@", "size": size}
    if draw(st.booleans()):
        alloc["pointers"] = True
    if draw(st.booleans()):
        alloc["site"] = draw(st.sampled_from(["a.go:1", "b.go:2"]))
    block = [{"alloc": alloc}]
    for _ in range(draw(st.integers(0, 3))):
        kind, n = draw(st.sampled_from(["access", "sweep", "random"])), draw(st.integers(1, 8))
        body = {**core(), "obj": "@", "size": n}
        if kind == "access":
            body["offset"] = draw(st.integers(0, size - n))
            block.append({draw(st.sampled_from(OPS)): body})
            continue
        body |= {"op": draw(st.sampled_from(OPS)), "count": draw(st.integers(0, 4))}
        if kind == "sweep":  # |stride| <= 8 and count <= 4: the accesses span at most 24 + 8 < 64 bytes
            body["stride"] = draw(st.integers(-8, 8))
            last = max(body["count"] - 1, 0) * body["stride"]
            body["offset"] = draw(st.integers(-min(0, last), size - n - max(0, last)))
        else:
            body["offset"] = draw(st.integers(0, size - n))
            body["range"] = draw(st.integers(n, size - body["offset"]))
            body["seed"] = draw(st.integers(0, 2**64 - 1))
        block.append({kind: body})
    if draw(st.booleans()):
        block.append({"free": {"id": "@"}})
    if draw(st.booleans()):
        block.append({"gc": {}})
    return block


def event_list(depth: int, in_thread: bool, max_size: int = 3):
    blocks = st.one_of(event(depth, in_thread).map(lambda e: [e]), object_block(in_thread))
    return st.lists(blocks, min_size=1, max_size=max_size).map(lambda bs: [e for b in bs for e in b])


def name_objects(doc: dict) -> dict:
    """Give every object block's alloc a unique id with `{i}`, and its accesses and free the same."""
    count = 0

    def walk(events):
        nonlocal count
        current = None
        for ev in events:
            ((name, body),) = ev.items()
            if name == "alloc":
                current, count = f"o{count}_{{i}}", count + 1
                body["id"] = current
            for key in ("obj", "id"):
                if body.get(key) == "@":
                    body[key] = current
            if name == "repeat":
                walk(body["do"])
            if name == "parallel":
                for thread in body["threads"]:
                    walk(thread["do"])

    walk(doc["events"])
    return doc


programs = event_list(3, False, max_size=4).map(
    lambda evs: name_objects({"memsim": 1, "allocator": "go", "events": copy.deepcopy(evs)})
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=programs, limit=st.sampled_from([0, 3, 1 << 14]), data=st.data())
def test_chunks_match_reference(doc, limit, data):
    want = reference(doc)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        trace = load_trace(path, table_limit=limit)
        assert trace.n_events == len(want)
        for size in (1, 7, 64, max(len(want), 1)):
            parts = list(trace.chunks(size))
            assert all(len(p) == size for p in parts[:-1])
            got = [r for p in parts for r in named_rows(trace, p)]
            assert got == want, size
        if want:  # any sorted subset, asked for out of order (the random schedule's cursor rewinds)
            subset = np.array(sorted(data.draw(st.sets(st.integers(0, len(want) - 1), min_size=1))), np.int64)
            for piece in reversed(np.array_split(subset, 3)):
                if len(piece):
                    assert named_rows(trace, trace.root.events_at(piece)) == [want[i] for i in piece]


# -- SplitMix64 --------------------------------------------------------------------------------


def test_splitmix64_reference_values():
    # Vigna's splitmix64.c from state 0: the first five next() outputs
    want = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F, 0xF88BB8A8724C81EC, 0x1B39896A51A8749B]
    assert [splitmix64_scalar(0, g) for g in range(5)] == want
    assert splitmix64(0, np.arange(5)).tolist() == want
    assert splitmix64(0, np.arange(5)).dtype == np.uint64


@given(seed=st.integers(0, 2**64 - 1), g=st.lists(st.integers(0, 2**63 - 2), min_size=1, max_size=20))
def test_splitmix64_vector_matches_scalar(seed, g):
    assert splitmix64(seed, np.array(g, np.int64)).tolist() == [splitmix64_scalar(seed, x) for x in g]


@pytest.mark.parametrize("schedule", ["round-robin", "chunk"])
def test_closed_form_schedules_on_many_threads(schedule):
    """Many threads with repeated and distinct lengths, against the reference scheduler."""
    from memsim.trace.program import Parallel, Sweep

    rng = np.random.default_rng(0)
    lengths = [int(x) for x in rng.integers(0, 12, 40)]
    threads = [Sweep(0, t, 1000 * t, 1, n, 1, t) for t, n in enumerate(lengths)]
    node = Parallel(threads, schedule, chunk=3)
    got = [(c, a) for (_, c, a, _) in brief(node.events_at(np.arange(2 * node.n, dtype=np.int64)))]
    sweeps = [{"sweep": {"op": "read", "addr": 1000 * t, "stride": 1, "count": n, "size": 1}}
              for t, n in enumerate(lengths)]
    doc_threads = [{"core": t, "do": [sweep]} for t, sweep in enumerate(sweeps)]
    body = {"schedule": schedule, "threads": doc_threads}
    if schedule == "chunk":
        body["chunk"] = 3
    want = [(r[1], r[4]) for r in reference({"events": [{"parallel": body}]})]
    assert got == want * 2
