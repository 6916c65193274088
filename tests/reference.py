"""Slow, obviously-correct pure-Python reference model of the cache-hierarchy rules.

This module implements ``docs/engine.md`` and ``docs/coherence.md`` (the protocol rules, and "Miss
classes", "True and false sharing" and "The sharing table") literally and independently of the
jitted engine (``memsim/engine/kernel.py``); the differential tests compare every counter of the
two. It is
written for clarity, not speed: one object per cache instance, one list of ``Slot`` per set.

Points a reader might miss are spelled out in the rulebook: ``fills`` are victim fills only,
back-invalidations are counted by the cache above, size-0 accesses have no pieces, dropping a line
never touches replacement state. One more, which no trace can observe: while an evicted line's
cascade runs, the evicting cache's slot still holds that line ("only then is the new line
written"); only an inclusive cache back-invalidates, and an inclusive write-allocate cache holds
every line above it, so it never installs a line arriving from above inside another cascade.

Events rows whose op is not an access (alloc, free, gc) are ignored; ``obj`` is ignored and
``addr`` is taken as the raw address.

Coherence (``machine.coherence``: msi, mesi or moesi)
-----------------------------------------------------

Words as in the rulebooks: a cache is *tracked* when it is not shared by all cores; tracked caches
fall into *participants* (the ``shared_by: 1`` caches of one core; each group-shared instance);
``P(c)`` is the set of caches on core ``c``'s two paths; ``X`` is the cache that serves the piece
(first on the path holding the line) or memory. A cache's *chain* is the caches below it, nearest
first. Every slot has a dirty bit and an exclusive bit; a cache shared by all cores never sets the
exclusive bit. Where docs/coherence.md is silent or ambiguous, this model reads it as follows.

C0. Order. A piece does the lookup (engine step 2) first, which finds ``X``; then the coherence
    rules below; then engine steps 3 (move out of an exclusive level), 4 (fill), 5 (write), 6
    (cost). Lookup only touches P(c) and invalidation only other caches, so doing the
    invalidation after the lookup counts the same as engine step 1 did.

C1. Local reads. A read is *local* when ``X`` is a ``shared_by: 1`` cache (necessarily one of
    core c's). A local read has no coherence effect at all: no transfer, no downgrade, no change
    of any exclusive bit; the copies it installs (all in c's own participant, above X) take X's
    exclusive bit, and a line moving up out of an exclusive X carries X's bit with its dirty bit.
    All other reads (X a group cache, a cache shared by all, or memory) are *non-local*. So a read
    hit in the core's own caches never makes its S copy exclusive, even when every other sharer
    has since evicted its copy (the page's "evictions are silent", applied to reads too: the
    literal "copies found on P(c) get the exclusive bit" is applied to non-local reads only).

C2. Owner. A tracked cache *owns* the line when its copy is dirty; the dirty bit is taken
    literally, so a write-through cache holding a line that moved up dirty out of an exclusive
    level owns it too. A participant owns the line when one of its caches does.

C3. Read transfer (non-local reads). The owners are the tracked caches outside P(c) holding the
    line dirty whose chain contains X (any chain when X is memory). If there is one: count one
    ``c2c_transfer`` (once, however many owners), and the piece costs ``c2c_latency``.
    Under MSI and MESI the owners then write back, repeatedly until no owner (by this
    definition) is left: take the topmost owning cache T (smallest level, then smallest instance
    number); every dirty copy of the line in T's participant becomes clean (also ones not leading
    to X); T counts a ``writeback`` (once for the participant); a write-back arrives (engine
    "What arrives from above": writebacks_in, install or mark or forward, memory write) at the
    next cache below the lowest cache of T's participant on T's chain, or memory. The write-back
    can make a group cache below the owner dirty (installing or marking the line there); when that
    cache is itself outside P(c) and leads to X it is an owner now and writes back in its turn.
    So after an MSI/MESI read no tracked cache outside P(c) leading to X holds the line dirty,
    and each participant writes back at most once per piece (topmost first: a write-back only
    goes down). Owners that do not lead to X keep their dirty bit (they are downgraded, C5).
    Under MOESI nothing is written back: the owners stay dirty.

C4. Where a downgrade's write-back lands. It can land in a cache on the reader's path above X
    that missed in the lookup (a group cache between the reader and X): it installs there dirty.
    The fill then finds the data there: for engine steps 3-4 and the memory-read rule the piece
    continues as if the topmost cache on the path now holding the line had served it (the fill
    starts just above it, caches between it and X do not install, and memory counts no read);
    its lookup miss and the piece's cost (c2c_latency) stay. Otherwise memory reads are counted as
    in docs/engine.md: when X is memory and some cache installs the line in the fill, also when a
    c2c transfer supplied the data (the transfer changes the cost, not the memory counters). If a
    write-back's cascade evicted the line from X itself, step 3 moves nothing and the fill still
    happens. A group cache on P(c) that a write-back reaches (installing or marking) holds the
    line dirty while the line is shared, under every protocol (the group owns it; its exclusive
    bit follows C6); C3 writes it back on a later read from outside the group.

C5. Downgrade (non-local reads, after C3, whether or not anything was transferred): every
    tracked copy outside P(c) loses its exclusive bit.

C6. Exclusive bits after a non-local read's fill. Let *alone* mean: no tracked cache outside P(c)
    holds the line (after C3, C5 and the fill). Every tracked copy on P(c) holding the line
    (installed or found) gets exclusive = alone and (protocol is MESI or MOESI, or its participant
    held the line exclusive before the piece, or the line moved up into the participant out of an
    exclusive X carrying an exclusive or a dirty bit). Not alone: every copy on P(c) loses its
    exclusive bit, group caches included, even when the only other copies are in private caches
    under that group cache (an exclusive bit always means "every tracked copy is on one core's
    paths"; a group cache is not exclusive "for its cluster"). So MESI/MOESI give E to a reader
    that is alone, found copies included (say the core's own L1i copy); under MSI a read never
    grants exclusivity, but an exclusive participant stays so, and a line moving up dirty or
    exclusive out of an exclusive level to a reader that is alone arrives as M (a cache shared by
    all cores cannot keep the exclusive bit, and a dirty copy that nobody else holds is M). A dirty
    line moving up to a reader that is not alone is dirty and not exclusive under every protocol:
    this and C4 are the ways a copy can be dirty and shared (O-like) under MSI and MESI; rules C3
    and W1 treat it as an owned, non-exclusive copy.

C7. Writes. W1: the piece is an upgrade when X is a tracked cache whose copy is not exclusive,
    whatever X is: also a group cache under private caches of the core that missed, an
    exclusive-level cache, a write-through cache. W2, otherwise: a ``c2c_transfer`` when any
    tracked cache outside P(c) holds the line dirty (no path condition, as the page says). So a
    write served by a cache shared by all cores or by memory is neither an upgrade nor a transfer
    when the copies elsewhere are clean (invalidations only), even when the core's own L1i holds
    the line. An upgrade drops an owner's copies (an O elsewhere, MOESI) without a write-back and
    counts no transfer. W3: invalidation as docs/engine.md step 1. W4: after engine step 5 (so
    that a copy a forwarded store installs below a write-through cache counts too), every tracked
    copy on P(c) holding the line becomes exclusive: all of c's participant and every group cache
    on c's paths.

C8. Installs outside these steps. An evicted line carries its exclusive bit (an inclusive cache
    ORs in the bits of the copies it back-invalidates, as it does dirty bits); a write-back
    install or victim fill of it takes that bit, and a cache that already holds the line ORs the
    bit in (as a victim fill merges the dirty bit). So a dirty victim installed into a private L2
    keeps the participant's state, and a group cache taking the victim of an exclusive copy
    becomes exclusive (every copy is still on that one core's paths). Forwarded stores and
    downgrade write-backs carry no exclusive bit (W4 sets it for a write; a downgraded copy is not
    exclusive). Evictions never change other copies (silent).

C9. A line that no tracked cache holds: a write is neither an upgrade nor a transfer and
    invalidates nothing; a read transfers nothing. Instruction caches are tracked like data
    caches and an ifetch is a read; a core's own L1i is on P(c), so the core's writes never
    invalidate it and make its copy exclusive (W4). Write-through tracked caches take part like
    any other; their copies are normally clean, so the owner of a line written through a
    write-through L1 is the write-back cache below it (a private L2, or a group cache).

C10. Cost. ``c2c_latency`` (a transfer) or ``upgrade_latency`` (an upgrade) replaces the latency
    of X (or memory) for the piece; a piece is never both.

What this keeps, checked after every piece by tests/test_reference_coherence.py: all copies of
one participant have the same exclusive bit; when some tracked copy of a line is exclusive, all
tracked copies of it (exclusive ones included) lie on one core's paths, so a core's private
exclusive copy means that no other core's private caches hold the line and that only group caches
on that core's paths do; under MSI and MESI all dirty tracked copies of a line lie on one core's
paths.

Miss classes, true and false sharing, the sharing table
-------------------------------------------------------

Each cache instance keeps ``history`` (line -> held / invalidated; absent = never) and ``shadow``
(an OrderedDict used as a fully associative LRU of sets*ways lines). ``piece`` records what the
sharing rules need in a ``PieceFacts``; ``access`` then applies rules 1-5 and the table per piece
(``share``). Where the page is silent or ambiguous, this model reads it as follows.

D1. Order. Misses are classified during the lookup, with the history and shadow as they were
    before this piece's own changes (the lookup comes first in this model, C0; the invalidation
    only touches caches outside P(c), so it cannot change the history of a cache on the path).
    The sharing rules run after the whole piece (fill, write, cost), because they need its cost,
    its transfer and the cores that lost a copy; they touch no cache state.

D2. History. ``install`` is the only place that writes a line into a slot, so it alone sets
    *held*: fills on a miss (including the cache above an exclusive level the line moves up
    into), write-back installs of dirty victims, of forwarded stores and of downgrade write-backs
    (C3/C4), victim fills into exclusive caches. Marking or merging a copy already present changes
    nothing. *invalidated* is set only by the write invalidation (C7 W3: write, rmw, upgrade, and
    the owner's copies a dirty intervention takes). Evictions, back-invalidations and moving up out
    of an exclusive level leave the history as it was (held). Caches shared by all cores are never
    invalidated, so they never classify coherence.

D3. Shadow. Every instance has one, caches shared by all cores included. It is touched by every
    lookup at the instance (hit or miss, after the miss is classified), in lookup order, and by
    nothing else. With ``conflict_shadow: false`` it is not kept and every miss that is neither
    cold nor coherence is capacity.

D4. Losing a copy. The cores that lose their copy to a write piece (write, rmw; upgrades and dirty
    interventions included) are all the cores served by any instance its invalidation dropped
    (``instance.cores``), whether or not that core ever touched the line, and even when the core
    still reaches the line through a cache it shares with the writer (say its L1 copy is dropped
    and the group L2 above both keeps it). A dropped L1i counts like a dropped L1d. Reads never
    make a core lose a copy.

D5. ``W`` is only ever replaced by rule 1 (W := the piece's bytes, also when the core was already
    in mode lost: what it gathered before is forgotten) and grown by rule 2 (mode lost only). A
    coherence miss does not clear it, so a second coherence miss without a new loss (rule 5, e.g.
    a write-no-allocate L1 whose history stays invalidated) compares its bytes with the same W,
    frozen at the first coherence miss.

D6. Rule 3 applies in any mode (an open lifetime ends, a lost mode just opens one); rule 4 applies
    to every piece of the core that is not a coherence miss of it (hits, cold/capacity/conflict
    misses, upgrades, writes) and only changes open-undecided. A core in mode lost whose next
    piece is not a coherence miss (e.g. only its L1d copy was dropped and it ifetches the line from
    a cache shared by all into its L1i) opens no lifetime and stays lost, W still growing.

D7. Rules 1-2 run only for write pieces, for every core other than the piece's, in core order
    (independent of each other). Rule 1 for a core takes precedence over rule 2 for it.

D8. A piece is a coherence miss of its core when any cache on its lookup classified coherence;
    then it counts exactly one at-miss verdict and opens one lifetime, whatever number of levels
    classified it coherence. Every lifetime ends exactly once, so lifetime verdicts (with the open
    ones) always add up to the at-miss verdicts.

D9. Bytes are offsets within the line (0..line_size-1) of the part of the access inside the piece's
    line. An rmw is one piece: reads += 1 and writes += 1, its bytes in both masks.

D10. Rows. A row is created at the end of a piece that made some core lose a copy (D4) or counted
    a ``c2c_transfer`` (read C3 or write W2), and that whole piece is recorded in it (its reads,
    writes, bytes, transfer, stall and the verdicts it produced). Pieces on the line before that
    are recorded nowhere: in particular an upgrade (or a coherence-free stall) before the row exists
    is lost, e.g. MSI: a core reads a line alone, then writes it (an upgrade that invalidates
    nothing), and only later another core's read makes a transfer and a row.

D11. Stall cycles: for a recorded piece that is a coherence miss of its core or an upgrade (or
    both: a coherence miss in the L1 then an upgrade at a group L2 counts once), max(0, the
    piece's own cost - the latency of the first cache on the piece's path); the piece's own cost,
    not the access's (the slowest piece). The cost is c2c_latency / upgrade_latency / the serving
    cache's or memory's latency, after C4 (a write-back landing on the path does not change it).

D12. ``c2c_transfers`` of a row counts every recorded piece that counted a transfer; since the
    first transfer on a line creates the row, the rows' transfers add up to the total.

D13. End of the run. ``counters()`` counts the lifetimes still open (rule 5), in the totals and in
    the rows, without closing them: it can be called at any time (an interrupted run, or between
    chunks) and the replay can continue, later lifetimes ending normally.

D14. Per-core classes (``core_classes[core, spec]``) count the misses of that core's lookups at the
    instance of that spec on its path, like ``core_level``.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from memsim.engine.counters import (
    CACHE_COUNTERS,
    H_C2C,
    H_FALSE_SHARING,
    H_FALSE_SHARING_AT_MISS,
    H_INVALIDATIONS,
    H_TRUE_SHARING,
    H_TRUE_SHARING_AT_MISS,
    H_UPGRADES,
    HM_HITS,
    HM_MISSES,
    K_ACCESSES,
    K_CYCLES,
    M_READS,
    M_WRITES,
    MC_CAPACITY,
    MC_COHERENCE,
    MC_COLD,
    MC_CONFLICT,
    MISS_CLASSES,
    S_C2C,
    S_FALSE,
    S_FALSE_AT_MISS,
    S_LINE,
    S_STALL,
    S_TRUE,
    S_TRUE_AT_MISS,
    SC_READS,
    SC_WRITES,
    SHARING_COLUMNS,
    Counters,
    core_sharing_width,
    mask_words,
    sharing_width,
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
    exclusive: bool = False  # always False in an untracked cache (shared by all cores)

    @property
    def valid(self) -> bool:
        return self.line is not None


# history of a line in a cache instance ("Miss classes"); absent from the dict = never
HELD, INVALIDATED = "held", "invalidated"
# sharing mode of a (line, core) ("True and false sharing")
NONE, LOST, OPEN_UNDECIDED, OPEN_TRUE = "none", "lost", "open-undecided", "open-true"
VERDICTS = ("false", "true", "false_at_miss", "true_at_miss")


@dataclass
class PieceFacts:
    """What ``Simulator.piece`` found out about one piece, for the sharing rules (D1)."""

    first_latency: int  # latency of the first cache on the piece's path
    classes: list = field(default_factory=list)  # (instance, class) per lookup miss, top first
    upgrade: bool = False
    c2c: bool = False
    losers: set = field(default_factory=set)  # cores that lost their copy to this piece (D4)
    cost: int = 0

    @property
    def coherence_miss(self) -> bool:
        return any(cls == MC_COHERENCE for _, cls in self.classes)


@dataclass
class Sharer:
    """The state of one core on one line: mode and W (bytes others wrote since it lost its copy)."""

    mode: str = NONE
    written: set = field(default_factory=set)


class Row:
    """A sharing-table row (one line): verdicts, transfers, stall cycles, per-core reads/writes."""

    def __init__(self, cores: int):
        self.verdicts = dict.fromkeys(VERDICTS, 0)
        self.c2c = 0
        self.stall = 0
        self.reads = [0] * cores
        self.writes = [0] * cores
        self.read_bytes = [set() for _ in range(cores)]
        self.write_bytes = [set() for _ in range(cores)]


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
        self.tracked = not self.shared_by_all
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
        # "Miss classes": history per line (absent = never) and the fully associative LRU shadow
        self.history: dict[int, str] = {}
        self.shadow: OrderedDict[int, None] = OrderedDict()
        self.shadow_lines = spec.sets * spec.ways
        self.classes = [0] * len(MISS_CLASSES)

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
        old = Slot(slot.line, slot.dirty, slot.exclusive)
        slot.line, slot.dirty, slot.exclusive = None, False, False
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

    def states(self) -> list[list[tuple[int, bool, bool]]]:
        """Per set, the valid lines in way order as (line, dirty, exclusive)."""
        return [[(slot.line, slot.dirty, slot.exclusive) for slot in ways if slot.valid] for ways in self.sets]

    def chain(self) -> list["CacheInstance"]:
        """The caches below this one, nearest first (its path's way to memory)."""
        out, node = [], self.next
        while node is not None:
            out.append(node)
            node = node.next
        return out

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

        # coherence participants (docs/engine.md step 1): the shared_by 1 caches of one core, or
        # one instance shared by a group; caches shared by all cores are not tracked
        self.participant: dict[int, object] = {}
        self.members: dict[object, list[CacheInstance]] = {}
        for inst in self.instances:
            if not inst.tracked:
                continue
            if inst.spec.shared_by == 1:
                p = ("core", inst.first_core)
            else:
                p = ("instance", inst.k)
            self.participant[inst.k] = p
            self.members.setdefault(p, []).append(inst)
        # P(c): the instances on core c's two paths
        self.on_paths: list[set[int]] = [
            {inst.k for path in self.paths[core].values() for inst in path} for core in range(cores)
        ]
        self.protocol = machine.coherence.protocol
        if self.protocol not in ("msi", "mesi", "moesi"):
            raise ValueError(f"unknown coherence protocol {self.protocol!r}")

        self.memory_reads = 0
        self.memory_writes = 0
        self.invalidations = 0
        self.upgrades = 0
        self.c2c_transfers = 0
        self.core_accesses = [0] * cores
        self.core_cycles = [0] * cores
        self.core_level = [[[0, 0] for _ in specs] for _ in range(cores)]
        # writebacks counted by downgrades (not evictions), per instance: for invariant tests only
        self.downgrade_writebacks = [0] * len(self.instances)

        # miss classes per core and spec; true and false sharing (docs/coherence.md)
        self.core_classes = [[[0] * len(MISS_CLASSES) for _ in specs] for _ in range(cores)]
        self.sharers: dict[tuple[int, int], Sharer] = {}  # (line, core) -> state; absent = none
        self.rows: dict[int, Row] = {}  # line -> its sharing-table row
        self.verdicts = dict.fromkeys(VERDICTS, 0)  # verdicts counted so far (open lifetimes not)
        self.last_piece: PieceFacts | None = None

    # --- lookup helpers for tests -----------------------------------------------------------

    def instance(self, name: str, number: int = 0) -> CacheInstance:
        for inst in self.instances:
            if inst.name == name and inst.number == number:
                return inst
        raise KeyError((name, number))

    def state(self) -> list[list[list[tuple[int, bool]]]]:
        """Per instance (engine order), per set, the valid (line, dirty) pairs in way order."""
        return [inst.contents() for inst in self.instances]

    def holders(self, line: int) -> list[tuple[CacheInstance, Slot]]:
        """Every tracked cache holding ``line``, with its slot (engine instance order)."""
        out = []
        for inst in self.instances:
            if inst.tracked:
                slot = inst.slot(line)
                if slot is not None:
                    out.append((inst, slot))
        return out

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
                # the piece's bytes: offsets within the line of the part of the access inside it
                lo = max(addr, line * ls) - line * ls
                hi = min(addr + size, (line + 1) * ls) - line * ls
                self.share(core, op, line, set(range(lo, hi)), self.last_piece)
        self.core_accesses[core] += 1
        self.core_cycles[core] += cost

    def piece(self, core: int, kind: str, is_write: bool, line: int) -> int:
        path = self.paths[core][kind]
        mine = self.on_paths[core]  # P(c)
        coherence = self.machine.coherence
        facts = PieceFacts(first_latency=path[0].spec.latency)

        # the exclusive bit of each participant on P(c) that holds the line before the piece
        before: dict[object, bool] = {}
        for inst, slot in self.holders(line):
            if inst.k in mine:
                p = self.participant[inst.k]
                before[p] = before.get(p, False) or slot.exclusive

        # lookup
        server = len(path)  # index into path; len(path) = memory
        for i, inst in enumerate(path):
            inst.counters["accesses"] += 1
            where = inst.find(line)
            if where is not None:
                inst.counters["hits"] += 1
                self.core_level[core][inst.spec_index][HM_HITS] += 1
                inst.touch_on_hit(*where)
                self.shadow_touch(inst, line)
                server = i
                break
            inst.counters["misses"] += 1
            self.core_level[core][inst.spec_index][HM_MISSES] += 1
            cls = self.classify(inst, line)  # history and shadow as the lookup reaches inst
            inst.classes[cls] += 1
            self.core_classes[core][inst.spec_index][cls] += 1
            facts.classes.append((inst, cls))
            self.shadow_touch(inst, line)
        x = path[server] if server < len(path) else None  # the serving cache, None = memory
        cost = x.spec.latency if x is not None else self.machine.memory_latency

        # coherence, before the fill (C0). A local piece is served by a shared_by 1 cache (of
        # this core); the copies it installs take that cache's (the participant's) bit (C1).
        local = x is not None and x.spec.shared_by == 1
        local_bit = local and x.slot(line).exclusive
        if is_write:
            others = [(inst, slot) for inst, slot in self.holders(line) if inst.k not in mine]
            if x is not None and x.tracked and not x.slot(line).exclusive:
                self.upgrades += 1  # C7 W1: an upgrade
                cost = coherence.upgrade_latency
                facts.upgrade = True
            elif any(slot.dirty for _, slot in others):
                self.c2c_transfers += 1  # C7 W2: the owner hands the data over
                cost = coherence.c2c_latency
                facts.c2c = True
            losers = set()  # C7 W3: invalidation
            for inst, _ in others:
                inst.drop(line)
                inst.history[line] = INVALIDATED  # D2
                facts.losers.update(inst.cores)  # D4: every core the dropped cache serves
                losers.add(self.participant[inst.k])
            self.invalidations += len(losers)
        elif not local:
            owners = [
                inst
                for inst, slot in self.holders(line)
                if inst.k not in mine and slot.dirty and (x is None or x in inst.chain())
            ]
            if owners:  # C3: cache-to-cache transfer
                self.c2c_transfers += 1
                cost = coherence.c2c_latency
                facts.c2c = True
                if self.protocol != "moesi" and self.write_back_owners(core, x, path[:server], line):
                    # C4: the write-back landed on the path above the server: the fill finds it
                    # there, as if that cache had served the piece
                    server = next(i for i, inst in enumerate(path) if inst.holds(line))
                    x = path[server]
            for inst, slot in self.holders(line):  # C5: downgrades
                if inst.k not in mine:
                    slot.exclusive = False

        def will_install(inst: CacheInstance) -> bool:
            return not inst.exclusive and not (is_write and not inst.spec.write_allocate)

        # move out of an exclusive level (only if the server still holds the line: a write-back
        # cascade of a downgrade may, in principle, have evicted it; C4)
        carried_dirty = carried_exclusive = False
        moved_into = None
        if x is not None and x.exclusive and server >= 1 and will_install(path[server - 1]) and x.holds(line):
            old = x.drop(line)
            carried_dirty, carried_exclusive = old.dirty, old.exclusive
            moved_into = path[server - 1]

        # fill, upward from just above the server; on a local piece the installed copies take the
        # participant's bit (the server's), otherwise they are set below (C6, C7 W4)
        installed = False
        for i in range(server - 1, -1, -1):
            inst = path[i]
            if inst.exclusive or (is_write and not inst.spec.write_allocate):
                continue
            assert not inst.holds(line), "a cache that missed cannot have gained the line"
            if inst is moved_into:
                self.install(inst, line, carried_dirty, carried_exclusive if local else False)
            else:
                self.install(inst, line, False, local_bit)
            installed = True
        if server == len(path) and installed:
            self.memory_reads += 1

        # write
        if is_write:
            holder = next((inst for inst in path if inst.holds(line)), None)
            if holder is None:
                self.memory_writes += 1
            elif holder.write_back:
                holder.slot(line).dirty = True
            else:
                self.write_back_arrives(holder.next, line, False)
            for inst, slot in self.holders(line):  # C7 W4: the writer's copies become exclusive
                if inst.k in mine:
                    slot.exclusive = True
        elif not local:
            # C6: the exclusive bit of each participant on P(c) that holds the line
            alone = all(inst.k in mine for inst, _ in self.holders(line))
            moved_p = self.participant.get(moved_into.k) if moved_into is not None else None
            for inst, slot in self.holders(line):
                if inst.k not in mine:
                    continue
                p = self.participant[inst.k]
                slot.exclusive = alone and (
                    self.protocol != "msi"
                    or before.get(p, False)
                    or (p == moved_p and (carried_exclusive or carried_dirty))
                )

        facts.cost = cost
        self.last_piece = facts
        return cost

    # --- miss classes and sharing (docs/coherence.md) ---------------------------------------

    def classify(self, inst: CacheInstance, line: int) -> int:
        """The class of a lookup miss at ``inst``, from its history and shadow before this lookup."""
        history = inst.history.get(line)
        if history is None:
            return MC_COLD
        if history == INVALIDATED:
            return MC_COHERENCE
        if self.machine.conflict_shadow and line in inst.shadow:
            return MC_CONFLICT
        return MC_CAPACITY

    def shadow_touch(self, inst: CacheInstance, line: int) -> None:
        """A lookup at ``inst`` (hit or miss) makes ``line`` the shadow's most recent line (D3)."""
        if not self.machine.conflict_shadow:
            return
        inst.shadow.pop(line, None)
        inst.shadow[line] = None
        if len(inst.shadow) > inst.shadow_lines:
            inst.shadow.popitem(last=False)

    def sharer(self, line: int, core: int) -> Sharer:
        return self.sharers.setdefault((line, core), Sharer())

    @staticmethod
    def end_lifetime(sharer: Sharer, verdicts: dict) -> None:
        """Rule 5: an open lifetime counts its verdict (the caller then sets the new mode)."""
        if sharer.mode == OPEN_TRUE:
            verdicts["true"] += 1
        elif sharer.mode == OPEN_UNDECIDED:
            verdicts["false"] += 1

    def share(self, core: int, op: int, line: int, touched: set[int], facts: PieceFacts) -> None:
        """Rules 1-5 of "True and false sharing" and the sharing table, for one piece of ``core``
        on ``line`` touching the byte offsets ``touched``, after ``piece`` handled it."""
        is_write = op in (OP_WRITE, OP_RMW)
        verdicts = dict.fromkeys(VERDICTS, 0)  # what this piece counts

        # rule 3 or 4 for the piece's core
        me = self.sharer(line, core)
        if facts.coherence_miss:
            self.end_lifetime(me, verdicts)
            overlap = bool(touched & me.written)  # D5: W as the last rule 1/2 left it
            verdicts["true_at_miss" if overlap else "false_at_miss"] += 1
            me.mode = OPEN_TRUE if overlap else OPEN_UNDECIDED
        elif me.mode == OPEN_UNDECIDED and touched & me.written:
            me.mode = OPEN_TRUE

        # rules 1-2 for the other cores (only write pieces make others lose or grow W)
        if is_write:
            for other in range(self.machine.cores):
                if other == core:
                    continue
                them = self.sharer(line, other)
                if other in facts.losers:
                    self.end_lifetime(them, verdicts)
                    them.mode = LOST
                    them.written = set(touched)
                elif them.mode == LOST:
                    them.written |= touched

        for key, n in verdicts.items():
            self.verdicts[key] += n

        # the sharing table: a row from the first piece that makes a core lose its copy or is
        # served by a transfer, that piece included (D10)
        if facts.losers or facts.c2c:
            self.rows.setdefault(line, Row(self.machine.cores))
        row = self.rows.get(line)
        if row is None:
            assert not any(verdicts.values()), "a verdict on a line without a row"
            return
        for key, n in verdicts.items():
            row.verdicts[key] += n
        row.c2c += facts.c2c
        if facts.coherence_miss or facts.upgrade:
            row.stall += max(0, facts.cost - facts.first_latency)
        if op in (OP_READ, OP_IFETCH, OP_RMW):
            row.reads[core] += 1
            row.read_bytes[core] |= touched
        if is_write:
            row.writes[core] += 1
            row.write_bytes[core] |= touched

    def open_verdicts(self) -> dict[int, dict]:
        """Rule 5 at the end of the run: per line, the verdicts of the lifetimes still open.
        Nothing is changed: the counters can be produced at any time (D13)."""
        per_line: dict[int, dict] = {}
        for (line, _core), sharer in self.sharers.items():
            self.end_lifetime(sharer, per_line.setdefault(line, dict.fromkeys(VERDICTS, 0)))
        return per_line

    def sharing_table(self) -> np.ndarray:
        """The sharing rows, sorted by line, as the int64 array of memsim/engine/counters.py
        (verdicts include the lifetimes still open)."""
        cores, ls = self.machine.cores, self.machine.line_size
        words = mask_words(ls)
        open_per_line = self.open_verdicts()
        table = np.zeros((len(self.rows), sharing_width(cores, ls)), np.int64)
        for r, line in enumerate(sorted(self.rows)):
            row = self.rows[line]
            verdicts = dict(row.verdicts)
            for key, n in open_per_line.get(line, {}).items():
                verdicts[key] += n
            table[r, S_LINE] = line
            table[r, S_FALSE] = verdicts["false"]
            table[r, S_TRUE] = verdicts["true"]
            table[r, S_FALSE_AT_MISS] = verdicts["false_at_miss"]
            table[r, S_TRUE_AT_MISS] = verdicts["true_at_miss"]
            table[r, S_C2C] = row.c2c
            table[r, S_STALL] = row.stall
            for core in range(cores):
                base = len(SHARING_COLUMNS) + core * core_sharing_width(ls)
                table[r, base + SC_READS] = row.reads[core]
                table[r, base + SC_WRITES] = row.writes[core]
                masks = byte_mask_words(row.read_bytes[core], words) + byte_mask_words(row.write_bytes[core], words)
                table[r, base + 2 : base + 2 + 2 * words] = masks
        return table

    def write_back_owners(self, core: int, x: CacheInstance | None, above: list[CacheInstance], line: int) -> bool:
        """MSI/MESI read (C3): owners outside P(c) whose chain leads to ``x`` write the line back,
        topmost dirty cache first, until none is left. Returns whether a write-back put the line
        in one of the caches ``above`` the server on the path (all of which missed it; C4)."""
        while True:
            dirty = [
                inst
                for inst, slot in self.holders(line)
                if inst.k not in self.on_paths[core] and slot.dirty and (x is None or x in inst.chain())
            ]
            if not dirty:
                break
            top = min(dirty, key=lambda inst: (inst.level, inst.k))
            p = self.participant[top.k]
            for member in self.members[p]:
                slot = member.slot(line)
                if slot is not None:
                    slot.dirty = False
            top.counters["writebacks"] += 1
            self.downgrade_writebacks[top.k] += 1
            lowest = top
            while lowest.next is not None and self.participant.get(lowest.next.k) == p:
                lowest = lowest.next
            self.write_back_arrives(lowest.next, line, False)
        return any(inst.holds(line) for inst in above)

    # --- installing and evicting ------------------------------------------------------------

    def install(self, inst: CacheInstance, line: int, dirty: bool, exclusive: bool) -> None:
        s = inst.set_index(line)
        way = inst.choose_victim(s)
        slot = inst.sets[s][way]
        if slot.valid:
            self.evict(inst, slot.line, slot.dirty, slot.exclusive)
        slot.line, slot.dirty, slot.exclusive = line, dirty, exclusive and inst.tracked
        inst.touch_on_fill(s, way)
        inst.history[line] = HELD  # D2: every write of the line into a slot

    def evict(self, inst: CacheInstance, line: int, dirty: bool, exclusive: bool) -> None:
        inst.counters["evictions"] += 1
        if inst.inclusive:
            for upper in inst.above:
                old = upper.drop(line)
                if old is not None:
                    upper.counters["back_invalidations"] += 1
                    dirty = dirty or old.dirty
                    exclusive = exclusive or old.exclusive
        if dirty:
            inst.counters["writebacks"] += 1
        below = inst.next
        if below is None:
            if dirty:
                self.memory_writes += 1
        elif below.exclusive:
            self.victim_fill(below, line, dirty, exclusive)
        elif dirty:
            self.write_back_arrives(below, line, exclusive)
        # a clean victim above a non-exclusive cache is simply dropped

    def write_back_arrives(self, inst: CacheInstance | None, line: int, exclusive: bool) -> None:
        """A dirty victim, a forwarded store or a downgrade's write-back arrives at ``inst``
        (None = memory). ``exclusive`` is the exclusive bit of the copy it comes from (False for
        stores and downgrades); a copy that takes it in merges it (OR)."""
        if inst is None:
            self.memory_writes += 1
            return
        inst.counters["writebacks_in"] += 1
        slot = inst.slot(line)
        if slot is not None:
            slot.exclusive = (slot.exclusive or exclusive) and inst.tracked
            if inst.write_back:
                slot.dirty = True
            else:
                self.write_back_arrives(inst.next, line, exclusive)
        elif inst.write_back and inst.spec.write_allocate and not inst.exclusive:
            self.install(inst, line, True, exclusive)
        else:
            self.write_back_arrives(inst.next, line, exclusive)

    def victim_fill(self, inst: CacheInstance, line: int, dirty: bool, exclusive: bool) -> None:
        slot = inst.slot(line)
        if slot is not None:
            slot.dirty = slot.dirty or dirty
            slot.exclusive = (slot.exclusive or exclusive) and inst.tracked
            return
        inst.counters["fills"] += 1
        self.install(inst, line, dirty, exclusive)

    # --- results ----------------------------------------------------------------------------

    def counters(self) -> Counters:
        m = self.machine
        out = Counters.zeros(len(self.instances), m.cores, len(m.caches), m.line_size)
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
        out.coherence[H_UPGRADES] = self.upgrades
        out.coherence[H_C2C] = self.c2c_transfers
        verdicts = dict(self.verdicts)
        for per_line in self.open_verdicts().values():  # rule 5: lifetimes still open count now
            for key, n in per_line.items():
                verdicts[key] += n
        out.coherence[H_FALSE_SHARING] = verdicts["false"]
        out.coherence[H_TRUE_SHARING] = verdicts["true"]
        out.coherence[H_FALSE_SHARING_AT_MISS] = verdicts["false_at_miss"]
        out.coherence[H_TRUE_SHARING_AT_MISS] = verdicts["true_at_miss"]
        for inst in self.instances:
            out.cache_classes[inst.k, :] = inst.classes
        for core in range(m.cores):
            for si in range(len(m.caches)):
                out.core_classes[core, si, :] = self.core_classes[core][si]
        out.sharing = self.sharing_table()
        return out


def byte_mask_words(offsets: set[int], words: int) -> list[int]:
    """A set of byte offsets as ``words`` int64 mask words: bit b of word k = byte 64*k + b.
    Built as Python ints, then reinterpreted as signed 64-bit (bit 63 makes a word negative)."""
    out = []
    for k in range(words):
        value = sum(1 << (b - 64 * k) for b in offsets if 64 * k <= b < 64 * (k + 1))
        out.append(int(np.array([value], dtype=np.uint64).view(np.int64)[0]))
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
    da, db = a.as_dict(), b.as_dict()
    return da.keys() == db.keys() and all(np.array_equal(da[key], db[key]) for key in da)


def describe_difference(machine: Machine, got: Counters, want: Counters) -> str:
    """A readable account of which counters differ (for assertion messages)."""
    lines = []
    names = [f"{spec.name}#{i}" for spec in machine.caches for i in range(machine.cores // spec.shared_by)]
    for key in want.as_dict():
        g, w = getattr(got, key), getattr(want, key)
        if g.shape != w.shape:
            lines.append(f"{key}: engine shape {g.shape}, reference shape {w.shape}")
            if key == "sharing" and g.ndim == 2 and g.shape[1] and w.shape[1]:
                lines.append(f"sharing lines: engine {g[:, 0].tolist()}, reference {w[:, 0].tolist()}")
        elif key in ("cache", "cache_classes"):
            columns = CACHE_COUNTERS if key == "cache" else MISS_CLASSES
            for k, name in enumerate(names):
                for j, cname in enumerate(columns):
                    if g[k, j] != w[k, j]:
                        lines.append(f"{key} {name}.{cname}: engine {g[k, j]}, reference {w[k, j]}")
        elif key == "sharing":
            for r in range(g.shape[0]):
                if not np.array_equal(g[r], w[r]):
                    lines.append(f"sharing row {r} (line {w[r, 0]}): engine {g[r].tolist()}, reference {w[r].tolist()}")
        elif not np.array_equal(g, w):
            lines.append(f"{key}: engine {g.tolist()}, reference {w.tolist()}")
    return "\n".join(lines)


__all__ = [
    "SplitMix64",
    "Simulator",
    "CacheInstance",
    "simulate",
    "simulate_with_state",
    "byte_mask_words",
    "make_events",
    "counters_equal",
    "describe_difference",
]
