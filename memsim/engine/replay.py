"""Python side of the replay: build the state arrays, feed the kernel chunk by chunk, collect counters."""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from memsim.engine.counters import C_ACCESSES, C_HITS, C_MISSES, Counters
from memsim.machine import PROTOCOLS, Machine
from memsim.models.goalloc.model import AllocatorError, GoAllocator
from memsim.models.hierarchy import Hierarchy, build
from memsim.trace.events import Events


class Replay:
    """The state of one replay: feed it chunks of events, read its counters at any time.

    With an allocator, each chunk first goes through it (objects get their addresses, accesses to
    objects their absolute addresses), then through the cache hierarchy."""

    def __init__(self, machine: Machine, allocator: GoAllocator | None = None):
        self.allocator = allocator
        self.hierarchy: Hierarchy = build(machine)
        self.state = self.hierarchy.new_state()
        self.counters = Counters.zeros(len(self.hierarchy.instances), machine.cores, len(machine.caches))
        self.events = 0
        self._line_shift = machine.line_size.bit_length() - 1
        self._chain = np.zeros((len(machine.levels) + 1, 5), np.int64)

    def feed(self, events: Events) -> None:
        from memsim.engine.kernel import replay_chunk  # numba loads only when a replay runs

        addr = events.addr
        if self.allocator is not None:
            try:
                addr = self.allocator.place(events)
            except AllocatorError as e:
                e.event += self.events  # the index in the whole trace
                raise
        h, s, k = self.hierarchy, self.state, self.counters
        coherence = h.machine.coherence
        replay_chunk(
            np.ascontiguousarray(events.op), np.ascontiguousarray(events.core),
            np.ascontiguousarray(events.size), np.ascontiguousarray(addr),
            h.config.ravel(), h.path, h.core_config, h.links, s.slots, s.rrpv, s.plru, s.rng,
            k.cache, k.core_level, k.memory, k.coherence, k.core,
            self._chain, self._line_shift, h.machine.memory_latency, PROTOCOLS.index(coherence.protocol),
            coherence.c2c_latency, coherence.upgrade_latency,
        )
        # The kernel counts hits and misses; a lookup is one or the other (design.md).
        k.cache[:, C_ACCESSES] = k.cache[:, C_HITS] + k.cache[:, C_MISSES]
        self.events += len(events)


def replay(machine: Machine, chunks: Iterable[Events], on_chunk: Callable[[int], None] | None = None) -> Replay:
    """Replay every chunk; ``on_chunk(n_events)`` is called after each (progress reporting)."""
    run = Replay(machine)
    for chunk in chunks:
        run.feed(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
    return run


def replay_counters(machine: Machine, events: Events, chunk_size: int | None = None) -> Counters:
    """Replay an in-memory event table (in chunks of ``chunk_size`` when given) and return its counters."""
    step = chunk_size or max(len(events), 1)
    chunks = (events.take(slice(i, i + step)) for i in range(0, len(events), step))
    return replay(machine, chunks).counters
