"""A slow, plainly written model of Valgrind Cachegrind's cache simulation (docs/cachegrind.md).

Written from the behaviour of Valgrind 3.19's cachegrind/cg_sim.c and cg_main.c, not from memsim's
kernel (memsim/engine/cachegrind.py): the tests hold the two to identical counters.

What it copies from Cachegrind:

- Every cache is a list of sets; a set is a list of ``ways`` tags, most recently used first. Every
  tag starts at 0 (``cachesim_initcache`` zeroes them) and a tag is the whole line number, so line 0
  is found in set 0 of every cache before anything was fetched.
- A reference to one line: found -> move it to the front (a hit); not found -> put it at the
  front and drop the last tag (a miss).
- A reference to ``size`` bytes at ``addr`` looks up its first line and, when it ends in the next
  line, that one too (always both), and misses if either missed. One that covers more than two
  lines stops Cachegrind ("item straddles more than two cache sets").
- An instruction fetch looks up I1, a data access D1; only when that missed, the next level, with
  the same bytes. A modify (``rmw``) is one read. A data access larger than the line is cut to the
  line's length, from its first byte (cg_main.c does this for the large accesses of dirty helpers
  and CAS; smaller ones never need it).

What it adds to fill memsim's counters: each core looks up the caches on its own path (instance
``core // shared_by`` of each cache), nothing keeps copies coherent; an access costs the latency
of the level that hit, or the memory latency (counted as a memory read); an eviction is a line
that stops being held (for the zero tags of set 0: when the last of them is dropped); a size-0
access is counted for its core and looks nothing up.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from memsim.machine import Machine
from memsim.trace.events import OP_IFETCH, OP_READ, OP_RMW, OP_WRITE


class StraddleError(Exception):
    """An access covers more than two lines: Cachegrind panics on it."""

    def __init__(self, event: int):
        super().__init__(f"event {event} covers more than two lines")
        self.event = event


class Cache:
    def __init__(self, sets: int, ways: int, line_size: int):
        self.sets = sets
        self.line_size = line_size
        self.tags = [[0] * ways for _ in range(sets)]
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def reference_line_is_miss(self, line: int) -> bool:
        set_index = line % self.sets
        tags = self.tags[set_index]
        if line in tags:
            tags.remove(line)  # the first occurrence, as Cachegrind's scan finds it
            tags.insert(0, line)
            return False
        dropped = tags.pop()
        if dropped != 0 or (set_index == 0 and 0 not in tags):
            self.evictions += 1
        tags.insert(0, line)
        return True

    def reference_is_miss(self, addr: int, size: int, event: int) -> bool:
        first = addr // self.line_size
        last = (addr + size - 1) // self.line_size
        if first == last:
            return self.reference_line_is_miss(first)
        if first + 1 == last:
            first_missed = self.reference_line_is_miss(first)
            last_missed = self.reference_line_is_miss(last)
            return first_missed or last_missed
        raise StraddleError(event)


@dataclass
class Summary:
    """Cachegrind's own totals (the `summary:` line of cachegrind.out)."""

    Ir: int = 0
    I1mr: int = 0
    ILmr: int = 0
    Dr: int = 0
    D1mr: int = 0
    DLmr: int = 0
    Dw: int = 0
    D1mw: int = 0
    DLmw: int = 0


@dataclass
class Model:
    machine: Machine
    caches: list[Cache] = field(default_factory=list)  # every instance, in memsim's instance order
    first_instance: list[int] = field(default_factory=list)  # per cache spec
    core_accesses: list[int] = field(default_factory=list)
    core_cycles: list[int] = field(default_factory=list)
    core_hits: list[list[int]] = field(default_factory=list)  # [core][spec]
    core_misses: list[list[int]] = field(default_factory=list)
    memory_reads: int = 0
    summary: Summary = field(default_factory=Summary)
    events: int = 0

    def __post_init__(self):
        m = self.machine
        for spec in m.caches:
            self.first_instance.append(len(self.caches))
            for _ in range(m.cores // spec.shared_by):
                self.caches.append(Cache(spec.sets, spec.ways, m.line_size))
        self.core_accesses = [0] * m.cores
        self.core_cycles = [0] * m.cores
        self.core_hits = [[0] * len(m.caches) for _ in range(m.cores)]
        self.core_misses = [[0] * len(m.caches) for _ in range(m.cores)]

    def specs_on_path(self, is_ifetch: bool) -> list[int]:
        """The cache spec the access looks up on each level."""
        specs, index = [], 0
        for level in self.machine.levels:
            if len(level) == 1:
                specs.append(index)
            else:
                specs.append(index if is_ifetch == (level[0].serves == "instructions") else index + 1)
            index += len(level)
        return specs

    def access(self, op: int, core: int, addr: int, size: int) -> None:
        event = self.events
        self.events += 1
        if op not in (OP_READ, OP_WRITE, OP_RMW, OP_IFETCH):
            return
        is_ifetch = op == OP_IFETCH
        if not is_ifetch:
            size = min(size, self.machine.line_size)
        self.core_accesses[core] += 1
        if is_ifetch:
            self.summary.Ir += 1
        elif op == OP_WRITE:
            self.summary.Dw += 1
        else:
            self.summary.Dr += 1
        if size == 0:
            return
        missed_levels = 0
        cost = self.machine.memory_latency
        for spec in self.specs_on_path(is_ifetch):
            cache_spec = self.machine.caches[spec]
            cache = self.caches[self.first_instance[spec] + core // cache_spec.shared_by]
            if cache.reference_is_miss(addr, size, event):
                cache.misses += 1
                self.core_misses[core][spec] += 1
                missed_levels += 1
            else:
                cache.hits += 1
                self.core_hits[core][spec] += 1
                cost = cache_spec.latency
                break
        else:
            self.memory_reads += 1
        self.core_cycles[core] += cost
        self.count_summary(op, missed_levels, len(self.machine.levels))

    def count_summary(self, op: int, missed_levels: int, levels: int) -> None:
        first_missed = missed_levels >= 1
        last_missed = missed_levels == levels
        s = self.summary
        if op == OP_IFETCH:
            s.I1mr += first_missed
            s.ILmr += last_missed
        elif op == OP_WRITE:
            s.D1mw += first_missed
            s.DLmw += last_missed
        else:
            s.D1mr += first_missed
            s.DLmr += last_missed


def run(machine: Machine, accesses) -> Model:
    """Replay ``(op, core, addr, size)`` tuples; raises StraddleError like Cachegrind panics."""
    model = Model(machine)
    for op, core, addr, size in accesses:
        model.access(op, core, addr, size)
    return model
