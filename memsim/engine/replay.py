"""Python side of the replay: build the state arrays, feed the kernel chunk by chunk, collect counters."""
from __future__ import annotations

import copy
from typing import Callable, Iterable

import numpy as np

from memsim.engine.counters import C_ACCESSES, C_HITS, C_MISSES, Counters
from memsim.engine.tables import I_ERROR, I_ERROR_LINE, INVARIANTS, Tables
from memsim.machine import PROTOCOLS, Machine
from memsim.models.goalloc.model import AllocatorError, GoAllocator
from memsim.models.hierarchy import F_WRITE_BACK, L_INVALIDATE_END, L_INVALIDATE_START, Hierarchy, build
from memsim.trace.events import Events


class InvariantError(AssertionError):
    """The debug mode found a protocol invariant broken: a bug in the engine, never in the input."""


class Replay:
    """The state of one replay: feed it chunks of events, read its counters at any time.

    With an allocator, each chunk first goes through it (objects get their addresses, accesses to
    objects their absolute addresses), then through the cache hierarchy. ``check`` turns on the
    debug mode: the protocol invariants are checked after every piece (slow)."""

    def __init__(self, machine: Machine, allocator: GoAllocator | None = None, check: bool = False):
        self.allocator = allocator
        self.hierarchy: Hierarchy = build(machine)
        self.state = self.hierarchy.new_state()
        n_instances = len(self.hierarchy.instances)
        self._counters = Counters.zeros(n_instances, machine.cores, len(machine.caches), machine.line_size)
        self.tables = Tables(n_instances, self.hierarchy.n_slots, machine.cores, machine.line_size,
                             machine.conflict_shadow, check)
        self.events = 0
        self._line_shift = machine.line_size.bit_length() - 1
        self._chain = np.zeros((len(machine.levels) + 1, 5), np.int64)
        self._kernel_name = _kernel_name(self.hierarchy, check)

    def feed(self, events: Events) -> None:
        addr = events.addr
        if self.allocator is not None:
            try:
                addr = self.allocator.place(events)
            except AllocatorError as e:
                e.event += self.events  # the index in the whole trace
                raise
        h = self.hierarchy
        columns = [np.ascontiguousarray(a) for a in (events.op, events.core, events.size, addr)]
        if h.machine.counting == "cachegrind":
            from memsim.engine import cachegrind  # compiled only for machines that count this way

            cachegrind.feed(h, self.state, self._counters, columns, self.events)
        else:
            self._replay(columns)
        # The kernels count hits and misses; a lookup is one or the other (design.md).
        k = self._counters
        k.cache[:, C_ACCESSES] = k.cache[:, C_HITS] + k.cache[:, C_MISSES]
        self.events += len(events)

    def _replay(self, columns: list[np.ndarray]) -> None:
        """One chunk (op, core, size and absolute address columns) through memsim's counting."""
        from memsim.engine import kernel  # numba loads only when a replay runs

        h, s, k, t = self.hierarchy, self.state, self._counters, self.tables
        replay_chunk = getattr(kernel, self._kernel_name)
        coherence = h.machine.coherence
        # the most line pieces one event of this chunk can have (size s: at most 1 + ceil((s - 1) / line))
        line_size = 1 << self._line_shift
        per_event = (int(columns[2].max(initial=1)) + 2 * line_size - 2) // line_size
        start = 0
        while start < len(columns[0]):
            t.make_room(per_event)
            done = start + replay_chunk(
                *(a[start:] for a in columns),
                (h.config.ravel(), h.path, h.core_config, h.links), (s.slots, s.rrpv, s.plru, s.rng),
                (k.cache, k.core_level, k.memory, k.coherence, k.core), self._chain,
                (t.history, t.info, t.sharing, k.cache_classes, k.core_classes,
                 s.shadow_nodes, s.shadow_lists, s.shadow_buckets),
                (self._line_shift, h.machine.memory_latency, PROTOCOLS.index(coherence.protocol),
                 coherence.c2c_latency, coherence.upgrade_latency), per_event,
            )
            if t.info[I_ERROR]:
                raise InvariantError(
                    f"event {self.events + done}: {INVARIANTS[t.info[I_ERROR] - 1]} "
                    f"(line {int(t.info[I_ERROR_LINE]) << self._line_shift:#x}) on {h.machine.name}"
                )
            start = done

    @property
    def counters(self) -> Counters:
        """Every counter so far, with the sharing lifetimes still open counted as if the run ended
        here (docs/coherence.md, rule 5); the replay can go on afterwards."""
        counters = copy.deepcopy(self._counters)
        counters.sharing = self.tables.public_sharing(counters.coherence)
        return counters


def kernel_name(machine: Machine) -> str:
    """The replay kernel a replay of ``machine`` compiles (outside the debug mode)."""
    return _kernel_name(build(machine), False)


def _kernel_name(h: Hierarchy, check: bool) -> str:
    """The replay kernel this machine needs, the one compiled with least code (docs/engine.md)."""
    if check or not h.config[:, F_WRITE_BACK].all():
        return "replay_chunk"
    shared = (h.core_config[:, L_INVALIDATE_END] > h.core_config[:, L_INVALIDATE_START]).any()
    return "replay_chunk_coherent" if shared else "replay_chunk_private"


def replay(machine: Machine, chunks: Iterable[Events], on_chunk: Callable[[int], None] | None = None,
           check: bool = False) -> Replay:
    """Replay every chunk; ``on_chunk(n_events)`` is called after each (progress reporting)."""
    run = Replay(machine, check=check)
    for chunk in chunks:
        run.feed(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
    return run


def replay_counters(machine: Machine, events: Events, chunk_size: int | None = None, check: bool = False) -> Counters:
    """Replay an in-memory event table (in chunks of ``chunk_size`` when given) and return its counters."""
    step = chunk_size or max(len(events), 1)
    chunks = (events.take(slice(i, i + step)) for i in range(0, len(events), step))
    return replay(machine, chunks, check=check).counters
