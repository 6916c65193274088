"""The jitted Go allocator model against the pure-Python reference, on generated traces: every
object's placement and every counter must be equal."""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from memsim.models.goalloc.model import GoAllocator
from memsim.models.goversions import resolve_version

from alloc_events import events_of
from alloc_strategies import alloc_cases
from reference_alloc import simulate

PLACEMENT_FIELDS = ("addr", "size_class", "slot_size", "slot_base", "span_base", "span_pages", "span_objects")


def model_result(version: str, procs: int, ops: list[tuple], gogc: int | None, chunk: int | None = None):
    n_objects = sum(op[0] == "alloc" for op in ops)
    model = GoAllocator(resolve_version(version).generation, procs, n_objects, gogc)
    events = events_of(ops)
    step = chunk or max(len(events), 1)
    for start in range(0, len(events), step):
        model.place(events.take(slice(start, start + step)))
    placed = model.placements()
    objects = {
        int(i): {field: int(getattr(placed, field)[i]) for field in PLACEMENT_FIELDS}
        for i in np.flatnonzero(placed.allocated)
    }
    stats = asdict(model.stats_result())
    stats["size_classes"] = {row.pop("size_class"): row for row in stats["size_classes"]}
    for row in stats["size_classes"].values():
        row.pop("slot_size")
    return objects, stats


def assert_same(case, chunk=None):
    want = simulate(*case)
    objects, stats = model_result(*case, chunk=chunk)
    assert objects == want.objects, f"placements differ for {case}"
    by_size = stats.pop("by_size")
    assert stats == want.stats, f"stats differ for {case}"
    # MemStats.BySize: the first 61 classes' slot counts, nothing for large objects
    classes = want.stats["size_classes"]
    assert [(row["mallocs"], row["frees"]) for row in by_size] == [
        (0, 0) if c == 0 or c not in classes else (classes[c]["allocs"], classes[c]["frees"]) for c in range(61)
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(alloc_cases())
def test_model_matches_reference(case):
    assert_same(case)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(alloc_cases(max_ops=200))
def test_model_matches_reference_in_small_chunks(case):
    assert_same(case, chunk=7)


@pytest.mark.parametrize("version", ["1.21", "1.24", "1.27"])
def test_long_churn_matches_reference(version):
    """Thousands of operations over 4 Ps: spans fill, empty, go back to the page heap and return."""
    rng = np.random.default_rng(7)
    ops, live, next_obj = [], [], 0
    for step in range(6000):
        roll = rng.random()
        if roll < 0.6 or not live:
            size = int(rng.choice([rng.integers(1, 16), rng.integers(16, 600), rng.integers(600, 40000)], p=[0.4, 0.5, 0.1]))
            ops.append(("alloc", next_obj, size, bool(rng.random() < 0.5), int(rng.integers(0, 4))))
            live.append(next_obj)
            next_obj += 1
        elif roll < 0.995:
            ops.append(("free", live.pop(int(rng.integers(0, len(live))))))
        else:
            ops.append(("gc",))
    assert_same((version, 4, ops, None))
    assert_same((version, 4, ops, 50), chunk=1000)
