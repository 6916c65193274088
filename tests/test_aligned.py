"""The kernel's big arrays start on a host cache line (memsim/aligned.py)."""
import numpy as np
import pytest

from memsim import aligned
from memsim.engine.tables import Tables
from memsim.machine import Cache, Machine
from memsim.models.hierarchy import build


@pytest.mark.parametrize("n", [1, 7, 100_000])
@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.uint64])
def test_zeros_and_full_start_on_a_host_line(n, dtype):
    z = aligned.zeros(n, dtype)
    f = aligned.full(n, 3, dtype)
    for array in (z, f):
        assert array.dtype == dtype and array.shape == (n,)
        assert array.ctypes.data % aligned.HOST_LINE == 0
    assert not z.any() and (f == 3).all()


def test_slots_and_history_are_aligned():
    machine = Machine(name="m", cores=2, line_size=64,
                      levels=((Cache(name="L1", sets=64, ways=8, latency=4),),
                              (Cache(name="L2", sets=1024, ways=16, latency=12),)), memory_latency=100)
    h = build(machine)
    assert h.new_state().slots.ctypes.data % aligned.HOST_LINE == 0
    tables = Tables(len(h.instances), h.n_slots, machine.cores, machine.line_size, False, False)
    assert tables.history.ctypes.data % aligned.HOST_LINE == 0
    tables.make_room(10 * len(tables.history))  # grown: a new array, aligned too
    assert tables.history.ctypes.data % aligned.HOST_LINE == 0
