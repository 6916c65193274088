"""Machines built in code are checked for the shape the engine needs before it builds arrays."""
from __future__ import annotations

import pytest

from memsim.formats.machine_file import load_preset, preset_names
from memsim.machine import Cache, Machine
from memsim.models.hierarchy import build


def machine(*levels, cores=2, line_size=64) -> Machine:
    return Machine(name="m", cores=cores, line_size=line_size, levels=levels, memory_latency=100)


L1I = Cache("L1i", 2, 2, 1, serves="instructions")
L1D = Cache("L1d", 2, 2, 1, serves="data")
L2 = Cache("L2", 4, 4, 10, shared_by=2)


@pytest.mark.parametrize("name", preset_names())
def test_presets_build(name):
    assert build(load_preset(name)).config.shape[0] > 0


@pytest.mark.parametrize(
    "levels, kw, message",
    [
        (((L1D, L1I), (L2,)), {}, "serves"),
        (((L1I,), (L2,)), {}, "serves"),
        (((L2,), (L1I, L1D)), {}, "serves"),
        (((L1I, Cache("L1d", 2, 2, 1, serves="data", shared_by=2)), (L2,)), {}, "same shared_by"),
        (((Cache("L1", 2, 2, 1, shared_by=2),), (Cache("L2", 2, 2, 1),)), {}, "multiple"),
        (((Cache("L1", 2, 2, 1, shared_by=3),),), {}, "divide"),
        (((Cache("L1", 2, 3, 1, replacement="plru"),),), {}, "power-of-two way"),
        (((Cache("L1", 1, 128, 1, replacement="plru"),),), {}, "up to 64"),
        (((Cache("L1", 2, 2, 1, inclusion="exclusive"),),), {}, "first level"),
        (((Cache("L1", 2, 2, 1),),), {"line_size": 48}, "line_size"),
    ],
)
def test_malformed_machines_are_rejected(levels, kw, message):
    with pytest.raises(ValueError, match=message):
        build(machine(*levels, **kw))


def test_split_then_unified_builds_the_paths():
    h = build(machine((L1I, L1D), (L2,)))
    # instructions and data paths of each core meet at the one shared L2 instance
    assert h.path.shape == (2, 2, 2)
    assert len({int(x) for x in h.path[:, :, 1].ravel()}) == 1
