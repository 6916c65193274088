"""The engine's debug mode checks the protocol invariants after every piece, and notices when
they break (here by corrupting the state behind the kernel's back)."""
from __future__ import annotations

import numpy as np
import pytest

from memsim.engine.replay import InvariantError, Replay
from memsim.engine.tables import HIST_BITS, I_HIST_PAGES, I_HIST_USED
from memsim.machine import Cache, Machine
from memsim.trace.events import NO_OBJECT, OP_READ, OP_WRITE, Events

EXCLUSIVE_COPY = 2  # the kernel's state bits (memsim.engine.kernel), spelled out to keep numba out of the import
STATE_BITS = 4

MACHINE = Machine(name="two", cores=2, line_size=64, memory_latency=100,
                  levels=((Cache("L1", 4, 2, 1),), (Cache("L2", 16, 4, 10, shared_by=2),)))


def events(*rows: tuple[int, int, int]) -> Events:
    ev = Events.empty(len(rows))
    ev.obj[:] = NO_OBJECT
    ev.size[:] = 8
    for i, (op, core, addr) in enumerate(rows):
        ev.op[i], ev.core[i], ev.addr[i] = op, core, addr
    return ev


def shared_line() -> Replay:
    """Cores 0 and 1 both hold line 0 shared in their L1s."""
    run = Replay(MACHINE, check=True)
    run.feed(events((OP_READ, 0, 0), (OP_READ, 1, 0)))
    return run


def l1_slot(run: Replay, core: int) -> int:
    instance = run.hierarchy.path[core, 0, 0]
    base = run.hierarchy.config[instance, 2]  # F_SLOT_BASE
    slots = run.state.slots[base: base + 8]
    return base + int(np.flatnonzero(slots >> STATE_BITS == 0)[0])


def test_a_healthy_run_passes():
    run = shared_line()
    run.feed(events((OP_WRITE, 0, 0), (OP_READ, 1, 8), (OP_WRITE, 1, 16)))
    assert run.counters.coherence[0] == 2  # two invalidations, no complaint


def test_an_exclusive_copy_beside_another_copy_is_caught():
    run = shared_line()
    run.state.slots[l1_slot(run, 0)] |= EXCLUSIVE_COPY  # core 0 now believes it alone holds the line
    with pytest.raises(InvariantError, match="exclusive while another core's caches hold the line"):
        run.feed(events((OP_READ, 0, 0)))


def test_a_copy_the_history_does_not_know_is_caught():
    run = shared_line()
    tables = run.tables
    assert tables.info[I_HIST_USED] == 1  # one page, the first: line 0's record is its first
    tables.history[tables.info[I_HIST_PAGES] + HIST_BITS] = 0  # no cache has ever held line 0, says the history
    with pytest.raises(InvariantError, match="history says it never held it"):
        run.feed(events((OP_READ, 1, 0)))
