"""Slow, obviously-correct pure-Python reference model of the cache-hierarchy rules.

This module implements ``docs/engine.md`` literally and independently of the jitted engine
(``memsim/engine/kernel.py``); the differential tests compare every counter of the two. It is
written for clarity, not speed: one object per cache instance, one list of ``Slot`` per set.

Points a reader might miss are spelled out in the rulebook: ``fills`` are victim fills only,
back-invalidations are counted by the cache above, size-0 accesses have no pieces, dropping a line
never touches replacement state. One more, which no trace can observe: while an evicted line's
cascade runs, the evicting cache's slot still holds that line ("only then is the new line
written"); only an inclusive cache back-invalidates, and an inclusive write-allocate cache holds
every line above it, so it never installs a line arriving from above inside another cascade.

Events rows whose op is not an access (alloc, free, gc) are ignored; ``obj`` is ignored and
``addr`` is taken as the raw address.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memsim.engine.counters import (
    CACHE_COUNTERS,
    H_INVALIDATIONS,
    HM_HITS,
    HM_MISSES,
    K_ACCESSES,
    K_CYCLES,
    M_READS,
    M_WRITES,
    Counters,
)
from memsim.machine import Cache, Machine
from memsim.trace.events import NO_OBJECT, OP_IFETCH, OP_READ, OP_RMW, OP_WRITE, Events

MASK64 = (1 << 64) - 1
INSTRUCTIONS, DATA = "instructions", "data"


class SplitMix64:
    """The SplitMix64 generator (Steele, Lea, Flood 2014), all arithmetic mod 2**64."""

    def __init__(self, seed: int):
        self.state = seed & MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


@dataclass
class Slot:
    line: int | None = None  # None = invalid (the engine's tag -1)
    dirty: bool = False

    @property
    def valid(self) -> bool:
        return self.line is not None


class CacheInstance:
    """One instance of one cache spec, with its sets, replacement state and counters."""

    def __init__(self, k: int, spec_index: int, level: int, spec: Cache, number: int, machine: Machine):
        self.k = k  # global instance number
        self.spec_index = spec_index  # position in machine.caches
        self.level = level
        self.spec = spec
        self.number = number  # instance number within the spec
        self.first_core = number * spec.shared_by
        self.cores = range(self.first_core, self.first_core + spec.shared_by)
        self.shared_by_all = spec.shared_by == machine.cores
        self.next: CacheInstance | None = None  # filled in by the hierarchy
        self.above: list[CacheInstance] = []
        self.counters = dict.fromkeys(CACHE_COUNTERS, 0)

        ways = spec.ways
        self.sets = [[Slot() for _ in range(ways)] for _ in range(spec.sets)]
        self.now = 0  # lru / fifo stamp clock
        self.stamps = [[0] * ways for _ in range(spec.sets)]
        self.plru_bits = [[0] * max(ways, 1) for _ in range(spec.sets)]  # node n at index n (1..ways-1)
        self.rrpv_max = (1 << spec.rrpv_bits) - 1
        self.rrpv = [[0] * ways for _ in range(spec.sets)]
        self.rng = SplitMix64((machine.seed * 1_000_003 + k) & MASK64)

    # --- descriptive -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def exclusive(self) -> bool:
        return self.spec.inclusion == "exclusive"

    @property
    def inclusive(self) -> bool:
        return self.spec.inclusion == "inclusive"

    @property
    def write_back(self) -> bool:
        return self.spec.write == "back"

    def serves_core(self, core: int) -> bool:
        return core in self.cores

    def __repr__(self) -> str:
        return f"<{self.name}#{self.number} k={self.k}>"

    # --- lookup -----------------------------------------------------------------------------

    def set_index(self, line: int) -> int:
        return line % self.spec.sets

    def find(self, line: int) -> tuple[int, int] | None:
        """(set, way) of the line if present."""
        s = self.set_index(line)
        for way, slot in enumerate(self.sets[s]):
            if slot.line == line:
                return s, way
        return None

    def holds(self, line: int) -> bool:
        return self.find(line) is not None

    def slot(self, line: int) -> Slot | None:
        where = self.find(line)
        return None if where is None else self.sets[where[0]][where[1]]

    def drop(self, line: int) -> Slot | None:
        """Invalidate the line's slot; returns a copy of what it held (None if absent)."""
        where = self.find(line)
        if where is None:
            return None
        slot = self.sets[where[0]][where[1]]
        old = Slot(slot.line, slot.dirty)
        slot.line, slot.dirty = None, False
        return old

    # --- replacement ------------------------------------------------------------------------

    def _stamp(self, s: int, way: int) -> None:
        self.now += 1
        self.stamps[s][way] = self.now

    def _plru_touch(self, s: int, way: int) -> None:
        bits = self.plru_bits[s]
        node = way + self.spec.ways  # leaf
        while node > 1:
            parent = node // 2
            came_from_left = node == 2 * parent
            # bit 0 means "the victim is on the left": point away from the touched way
            bits[parent] = 1 if came_from_left else 0
            node = parent

    def _plru_victim(self, s: int) -> int:
        bits = self.plru_bits[s]
        ways = self.spec.ways
        node = 1
        while node < ways:
            node = 2 * node + bits[node]
        return node - ways

    def touch_on_hit(self, s: int, way: int) -> None:
        policy = self.spec.replacement
        if policy == "lru":
            self._stamp(s, way)
        elif policy == "plru":
            self._plru_touch(s, way)
        elif policy == "srrip":
            self.rrpv[s][way] = 0
        # fifo, random: nothing

    def touch_on_fill(self, s: int, way: int) -> None:
        policy = self.spec.replacement
        if policy in ("lru", "fifo"):
            self._stamp(s, way)
        elif policy == "plru":
            self._plru_touch(s, way)
        elif policy == "srrip":
            self.rrpv[s][way] = self.rrpv_max - 1
        # random: nothing

    def choose_victim(self, s: int) -> int:
        slots = self.sets[s]
        for way, slot in enumerate(slots):
            if not slot.valid:
                return way
        policy = self.spec.replacement
        ways = self.spec.ways
        if policy in ("lru", "fifo"):
            stamps = self.stamps[s]
            return min(range(ways), key=lambda w: (stamps[w], w))
        if policy == "random":
            return self.rng.next() % ways
        if policy == "plru":
            return self._plru_victim(s)
        if policy == "srrip":
            rrpv = self.rrpv[s]
            while self.rrpv_max not in rrpv:
                for w in range(ways):
                    rrpv[w] += 1
            return rrpv.index(self.rrpv_max)
        raise ValueError(f"unknown replacement policy {policy!r}")

    # --- state for tests --------------------------------------------------------------------

    def contents(self) -> list[list[tuple[int, bool]]]:
        """Per set, the valid lines in way order as (line, dirty)."""
        return [[(slot.line, slot.dirty) for slot in ways if slot.valid] for ways in self.sets]

    def ways(self) -> list[list[tuple[int, bool] | None]]:
        """Per set, every way: (line, dirty) or None if invalid."""
        return [[(slot.line, slot.dirty) if slot.valid else None for slot in ways] for ways in self.sets]

    def lines(self) -> set[int]:
        return {line for s in self.contents() for line, _ in s}

    def dirty_lines(self) -> set[int]:
        return {line for s in self.contents() for line, dirty in s if dirty}


class Simulator:
    """The whole machine: cache instances, paths, memory and per-core counters."""

    def __init__(self, machine: Machine):
        self.machine = machine
        cores = machine.cores
        self.instances: list[CacheInstance] = []
        by_spec: list[list[CacheInstance]] = []
        spec_index = 0
        for level, caches in enumerate(machine.levels):
            for spec in caches:
                if spec.shared_by <= 0 or cores % spec.shared_by:
                    raise ValueError(f"{spec.name}: shared_by {spec.shared_by} does not divide {cores} cores")
                group = []
                for number in range(cores // spec.shared_by):
                    inst = CacheInstance(len(self.instances), spec_index, level, spec, number, machine)
                    self.instances.append(inst)
                    group.append(inst)
                by_spec.append(group)
                spec_index += 1
        self.by_spec = by_spec

        # paths: paths[core][kind] = one instance per level, top first
        specs = machine.caches
        self.paths: list[dict[str, list[CacheInstance]]] = []
        for core in range(cores):
            paths = {}
            for kind in (INSTRUCTIONS, DATA):
                path = []
                for si, spec in enumerate(specs):
                    if spec.serves in ("all", kind):
                        path.append(by_spec[si][core // spec.shared_by])
                assert len(path) == len(machine.levels), "each level must serve both kinds"
                paths[kind] = path
            self.paths.append(paths)

        # the tree: next cache = the one below on any path through the instance
        for core in range(cores):
            for path in self.paths[core].values():
                for upper, lower in zip(path, path[1:]):
                    if upper.next is None:
                        upper.next = lower
                    elif upper.next is not lower:
                        raise ValueError(f"{upper} has two next caches: not a tree")
        for inst in self.instances:
            node = inst.next
            while node is not None:
                node.above.append(inst)
                node = node.next

        # coherence participants
        self.participant: dict[int, object] = {}
        for inst in self.instances:
            if inst.shared_by_all:
                continue
            if inst.spec.shared_by == 1:
                self.participant[inst.k] = ("core", inst.first_core)
            else:
                self.participant[inst.k] = ("instance", inst.k)

        self.memory_reads = 0
        self.memory_writes = 0
        self.invalidations = 0
        self.core_accesses = [0] * cores
        self.core_cycles = [0] * cores
        self.core_level = [[[0, 0] for _ in specs] for _ in range(cores)]

    # --- lookup helpers for tests -----------------------------------------------------------

    def instance(self, name: str, number: int = 0) -> CacheInstance:
        for inst in self.instances:
            if inst.name == name and inst.number == number:
                return inst
        raise KeyError((name, number))

    def state(self) -> list[list[list[tuple[int, bool]]]]:
        """Per instance (engine order), per set, the valid (line, dirty) pairs in way order."""
        return [inst.contents() for inst in self.instances]

    # --- running ----------------------------------------------------------------------------

    def run(self, events: Events) -> "Simulator":
        ops = events.op.tolist()
        cores = events.core.tolist()
        addrs = events.addr.tolist()
        sizes = events.size.tolist()
        for op, core, addr, size in zip(ops, cores, addrs, sizes):
            if op in (OP_READ, OP_WRITE, OP_RMW, OP_IFETCH):
                self.access(core, op, addr, size)
        return self

    def access(self, core: int, op: int, addr: int, size: int) -> None:
        if not 0 <= core < self.machine.cores:
            raise ValueError(f"core {core} out of range")
        is_write = op in (OP_WRITE, OP_RMW)
        kind = INSTRUCTIONS if op == OP_IFETCH else DATA
        ls = self.machine.line_size
        cost = 0
        if size > 0:
            first, last = addr // ls, (addr + size - 1) // ls
            for line in range(first, last + 1):
                cost = max(cost, self.piece(core, kind, is_write, line))
        self.core_accesses[core] += 1
        self.core_cycles[core] += cost

    def piece(self, core: int, kind: str, is_write: bool, line: int) -> int:
        path = self.paths[core][kind]

        # 1. coherence (write-invalidate)
        if is_write:
            losers = set()
            for inst in self.instances:
                if inst.shared_by_all or inst.serves_core(core):
                    continue
                if inst.drop(line) is not None:
                    losers.add(self.participant[inst.k])
            self.invalidations += len(losers)

        # 2. lookup
        server = len(path)  # index into path; len(path) = memory
        for i, inst in enumerate(path):
            inst.counters["accesses"] += 1
            where = inst.find(line)
            if where is not None:
                inst.counters["hits"] += 1
                self.core_level[core][inst.spec_index][HM_HITS] += 1
                inst.touch_on_hit(*where)
                server = i
                break
            inst.counters["misses"] += 1
            self.core_level[core][inst.spec_index][HM_MISSES] += 1

        def will_install(inst: CacheInstance) -> bool:
            return not inst.exclusive and not (is_write and not inst.spec.write_allocate)

        # 3. move out of an exclusive level
        carried_dirty = False
        if server < len(path) and path[server].exclusive and server >= 1 and will_install(path[server - 1]):
            carried_dirty = path[server].drop(line).dirty

        # 4. fill, upward from just above the server
        installed = False
        for i in range(server - 1, -1, -1):
            inst = path[i]
            if not will_install(inst):
                continue
            assert not inst.holds(line), "a cache that missed cannot have gained the line"
            self.install(inst, line, carried_dirty if i == server - 1 else False)
            installed = True
        if server == len(path) and installed:
            self.memory_reads += 1

        # 5. write
        if is_write:
            holder = next((inst for inst in path if inst.holds(line)), None)
            if holder is None:
                self.memory_writes += 1
            elif holder.write_back:
                holder.slot(line).dirty = True
            else:
                self.write_back_arrives(holder.next, line)

        # 6. cost
        return path[server].spec.latency if server < len(path) else self.machine.memory_latency

    # --- installing and evicting ------------------------------------------------------------

    def install(self, inst: CacheInstance, line: int, dirty: bool) -> None:
        s = inst.set_index(line)
        way = inst.choose_victim(s)
        slot = inst.sets[s][way]
        if slot.valid:
            self.evict(inst, slot.line, slot.dirty)
        slot.line, slot.dirty = line, dirty
        inst.touch_on_fill(s, way)

    def evict(self, inst: CacheInstance, line: int, dirty: bool) -> None:
        inst.counters["evictions"] += 1
        if inst.inclusive:
            for upper in inst.above:
                old = upper.drop(line)
                if old is not None:
                    upper.counters["back_invalidations"] += 1
                    dirty = dirty or old.dirty
        if dirty:
            inst.counters["writebacks"] += 1
        below = inst.next
        if below is None:
            if dirty:
                self.memory_writes += 1
        elif below.exclusive:
            self.victim_fill(below, line, dirty)
        elif dirty:
            self.write_back_arrives(below, line)
        # a clean victim above a non-exclusive cache is simply dropped

    def write_back_arrives(self, inst: CacheInstance | None, line: int) -> None:
        """A dirty victim or a forwarded store arrives at ``inst`` (None = memory)."""
        if inst is None:
            self.memory_writes += 1
            return
        inst.counters["writebacks_in"] += 1
        slot = inst.slot(line)
        if slot is not None:
            if inst.write_back:
                slot.dirty = True
            else:
                self.write_back_arrives(inst.next, line)
        elif inst.write_back and inst.spec.write_allocate and not inst.exclusive:
            self.install(inst, line, True)
        else:
            self.write_back_arrives(inst.next, line)

    def victim_fill(self, inst: CacheInstance, line: int, dirty: bool) -> None:
        slot = inst.slot(line)
        if slot is not None:
            slot.dirty = slot.dirty or dirty
            return
        inst.counters["fills"] += 1
        self.install(inst, line, dirty)

    # --- results ----------------------------------------------------------------------------

    def counters(self) -> Counters:
        m = self.machine
        out = Counters.zeros(len(self.instances), m.cores, len(m.caches))
        for inst in self.instances:
            for j, name in enumerate(CACHE_COUNTERS):
                out.cache[inst.k, j] = inst.counters[name]
        for core in range(m.cores):
            out.core[core, K_ACCESSES] = self.core_accesses[core]
            out.core[core, K_CYCLES] = self.core_cycles[core]
            for si in range(len(m.caches)):
                out.core_level[core, si, HM_HITS] = self.core_level[core][si][HM_HITS]
                out.core_level[core, si, HM_MISSES] = self.core_level[core][si][HM_MISSES]
        out.memory[M_READS] = self.memory_reads
        out.memory[M_WRITES] = self.memory_writes
        out.coherence[H_INVALIDATIONS] = self.invalidations
        return out


def simulate_with_state(machine: Machine, events: Events) -> tuple[Counters, Simulator]:
    """Replay and return the counters and the simulator (its caches hold the final contents)."""
    sim = Simulator(machine).run(events)
    return sim.counters(), sim


def simulate(machine: Machine, events: Events) -> Counters:
    return simulate_with_state(machine, events)[0]


# --- building events -----------------------------------------------------------------------


def make_events(rows) -> Events:
    """Events from ``(op, core, addr, size)`` rows (op as OP_* or a name: read/write/rmw/ifetch)."""
    from memsim.trace.events import ACCESS_OPS

    rows = list(rows)
    ev = Events.empty(len(rows))
    for i, (op, core, addr, size) in enumerate(rows):
        ev.op[i] = ACCESS_OPS[op] if isinstance(op, str) else op
        ev.core[i] = core
        ev.addr[i] = addr
        ev.size[i] = size
        ev.obj[i] = NO_OBJECT
    return ev


def counters_equal(a: Counters, b: Counters) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.as_dict().values(), b.as_dict().values()))


def describe_difference(machine: Machine, got: Counters, want: Counters) -> str:
    """A readable account of which counters differ (for assertion messages)."""
    lines = []
    for key in ("cache", "core", "core_level", "memory", "coherence"):
        g, w = getattr(got, key), getattr(want, key)
        if g.shape != w.shape:
            lines.append(f"{key}: engine shape {g.shape}, reference shape {w.shape}")
        elif key == "cache":
            names = [f"{spec.name}#{i}" for spec in machine.caches for i in range(machine.cores // spec.shared_by)]
            for k, name in enumerate(names):
                for j, cname in enumerate(CACHE_COUNTERS):
                    if g[k, j] != w[k, j]:
                        lines.append(f"cache {name}.{cname}: engine {g[k, j]}, reference {w[k, j]}")
        elif not np.array_equal(g, w):
            lines.append(f"{key}: engine {g.tolist()}, reference {w.tolist()}")
    return "\n".join(lines)


__all__ = [
    "SplitMix64",
    "Simulator",
    "CacheInstance",
    "simulate",
    "simulate_with_state",
    "make_events",
    "counters_equal",
    "describe_difference",
]
