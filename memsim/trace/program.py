"""Trace programs: a tree of nodes that expands lazily, chunk by chunk, into the event table.

Every node knows its expanded length ``n``. A node that sits inside enclosing repeats (or parallel
threads with ``repeat``) is expanded many times; its *infinite sequence* is the concatenation of its
expansions number 0, 1, 2, ... (its *occurrences*), and global index ``g`` means position
``g % n`` of occurrence ``g // n``. ``events_at(g)`` evaluates any sorted array of global indices at
once, so an event's values depend only on where it is in the expansion, never on chunking, and no
Python runs per event: only per node per chunk.

Each node passes its children global indices of *their* infinite sequences:

- ``Repeat(times, body)``: occurrence o, pass p, position j is body occurrence ``o*times + p`` at j,
  i.e. body global index ``g`` itself.
- ``Sequence``: child k of occurrence o is child occurrence o, so ``o*n_k + (i - offset_k)``.
- ``Parallel``: thread t's position j of occurrence o is ``o*n_t + j`` of the thread node.

Sorted requests stay sorted (per child), and consecutive requests to the root give each node
consecutive requests in its own index space, which the random schedule's cursor relies on.

It follows that a leaf's occurrence number is the pass counter of its innermost enclosing repeat
(a parallel thread's ``repeat`` is one too), counted on across the passes of the enclosing repeats:
Sequence and Parallel pass occurrence o to their children as occurrence o, and Repeat turns
occurrence o, pass p into body occurrence ``o*times + p``. Outside any repeat it is 0. That counter
is the ``{i}`` of an object id, so an event whose id has ``{i}`` names object ``first + occurrence``
(see ``Target``), and an ``alloc`` with ``{i}`` owns one object per occurrence: the product of its
enclosing repeats' ``times``.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from memsim.errors import UserError
from memsim.trace.events import COLUMNS, NO_OBJECT, Events
from memsim.trace.rng import splitmix64

SCHEDULES = ("round-robin", "random", "chunk")
TABLE_LIMIT = 1 << 14  # periodic subtrees up to this many events are precomputed once (see compact)


def _fill(m: int, op: int, core: int, size: int, addr: Any, src: int, obj: Any = NO_OBJECT, flags: int = 0,
          site: int = -1) -> Events:
    """``m`` rows; ``addr`` and ``obj`` are scalars or arrays of length ``m``."""
    return Events(
        op=np.full(m, op, np.int8),
        core=np.full(m, core, np.int32),
        size=np.full(m, size, np.int64),
        obj=obj if isinstance(obj, np.ndarray) else np.full(m, obj, np.int64),
        addr=addr if isinstance(addr, np.ndarray) else np.full(m, addr, np.int64),
        flags=np.full(m, flags, np.uint8),
        site=np.full(m, site, np.int32),
        src=np.full(m, src, np.int32),
    )


@dataclass
class Target:
    """The object an event names: none (a raw address), object ``first``, or, for an id with
    ``{i}``, object ``first + occurrence`` (see the module docstring). The parser fills ``first`` in
    once it has seen every ``alloc``."""

    first: int = NO_OBJECT
    per_occurrence: bool = False

    def at(self, g: np.ndarray, n: int) -> Any:
        """The object of global indices ``g`` of a node of ``n`` events (occurrence ``g // n``)."""
        return self.first + g // n if self.per_occurrence else self.first


class Node:
    n: int
    periodic: bool  # events_at(g) depends on g % n only (so it can be tabulated)

    def events_at(self, g: np.ndarray) -> Events:
        raise NotImplementedError


@dataclass
class Single(Node):
    """One event: a ``read``/``write``/``rmw``/``ifetch`` (at a raw address, or at offset ``addr`` of
    an object), an ``alloc``, a ``free`` or a ``gc``. Its occurrence is ``g`` itself (n = 1)."""

    op: int
    core: int
    size: int
    addr: int
    src: int
    target: Target = field(default_factory=Target)
    flags: int = 0
    site: int = -1
    n: int = 1

    @property
    def periodic(self):
        return not self.target.per_occurrence

    def events_at(self, g):
        return _fill(len(g), self.op, self.core, self.size, self.addr, self.src, self.target.at(g, 1), self.flags,
                     self.site)


@dataclass
class Sweep(Node):
    """``count`` accesses at ``addr + i*stride`` (``addr`` is an offset when there is a target)."""

    op: int
    core: int
    addr: int
    stride: int
    count: int
    size: int
    src: int
    target: Target = field(default_factory=Target)

    @property
    def n(self):
        return self.count

    @property
    def periodic(self):
        return not self.target.per_occurrence

    def events_at(self, g):
        addr = self.addr + (g % self.count) * self.stride
        return _fill(len(g), self.op, self.core, self.size, addr, self.src, self.target.at(g, self.count))


@dataclass
class Random(Node):
    """``count`` uniform accesses in ``[addr, addr+range)``; the stream position is ``g`` itself, so
    each pass of an enclosing repeat continues the stream instead of replaying it."""

    op: int
    core: int
    addr: int
    range: int
    count: int
    size: int
    align: int
    seed: int
    src: int
    target: Target = field(default_factory=Target)
    periodic: bool = False

    @property
    def n(self):
        return self.count

    @property
    def slots(self) -> int:
        return (self.range - self.size) // self.align + 1

    def events_at(self, g):
        k = (splitmix64(self.seed, g) % np.uint64(self.slots)).astype(np.int64)
        addr = self.addr + self.align * k
        return _fill(len(g), self.op, self.core, self.size, addr, self.src, self.target.at(g, self.count))


@dataclass
class Table(Node):
    """A periodic subtree evaluated once: row ``g % n`` is the event."""

    table: Events
    periodic: bool = True

    @property
    def n(self):
        return len(self.table)

    def events_at(self, g):
        return self.table.take(g % self.n)


@dataclass
class Repeat(Node):
    times: int
    body: Node

    @property
    def n(self):
        return self.times * self.body.n

    @property
    def periodic(self):
        return self.body.periodic

    def events_at(self, g):
        return self.body.events_at(g)


def _gather(children: list[Node], which: np.ndarray, child_g: np.ndarray) -> Events:
    """Event e comes from ``children[which[e]].events_at(child_g[e])``; one call per child present."""
    counts = np.bincount(which, minlength=len(children))
    present = np.flatnonzero(counts)
    if len(present) == 1:
        return children[present[0]].events_at(child_g)
    out = Events(**{name: np.empty(len(which), dtype) for name, dtype in COLUMNS.items()})
    if len(present) <= 8:  # a few passes of (which == k) beat a sort
        subsets = (np.flatnonzero(which == k) for k in present)
    else:  # int16 keys get numpy's radix sort
        order = np.argsort(which.astype(np.int16 if len(children) < 1 << 15 else np.int64), kind="stable")
        ends = np.cumsum(counts)
        subsets = (order[ends[k] - counts[k] : ends[k]] for k in present)
    for k, idx in zip(present, subsets):
        part = children[k].events_at(child_g[idx])
        for name in COLUMNS:
            getattr(out, name)[idx] = getattr(part, name)
    return out


class Sequence(Node):
    """A ``do`` list (or the top-level ``events``): the children one after the other."""

    def __init__(self, children: list[Node]):
        self.children = [c for c in children if c.n > 0]
        self.lengths = np.array([c.n for c in self.children], np.int64)
        self.ends = np.cumsum(self.lengths)
        self.n = int(sum(c.n for c in self.children))
        self.periodic = all(c.periodic for c in self.children)

    def events_at(self, g):
        if len(self.children) == 1:
            return self.children[0].events_at(g)
        o, i = np.divmod(g, self.n)
        k = np.searchsorted(self.ends, i, side="right")
        child_g = o * self.lengths[k] + (i - (self.ends[k] - self.lengths[k]))
        return _gather(self.children, k, child_g)


class Parallel(Node):
    """Threads interleaved by a schedule; a finished thread drops out.

    round-robin and chunk have closed forms (see ``_round_tables``); the random schedule is
    sequential and runs in a small jitted kernel with a cursor.
    """

    def __init__(self, threads: list[Node], schedule: str = "round-robin", chunk: int = 1, seed: int = 0):
        self.threads = [t for t in threads if t.n > 0]
        self.lengths = np.array([t.n for t in self.threads], np.int64)
        self.n = int(sum(t.n for t in self.threads))
        self.schedule, self.seed = schedule, seed
        # a turn never takes more than a whole thread, so a larger chunk changes nothing (and would overflow)
        self.chunk = 1 if schedule == "round-robin" else min(chunk, max(self.lengths, default=1))
        self.periodic = schedule != "random" and all(t.periodic for t in self.threads)
        self._cursor = None
        if self.threads and schedule != "random":
            self._round_tables()

    def events_at(self, g):
        o, s = np.divmod(g, self.n)
        t, j = self._random_steps(o, s) if self.schedule == "random" else self._closed_form(s)
        return _gather(self.threads, t, o * self.lengths[t] + j)

    # -- round-robin / chunk --------------------------------------------------------------------
    # Thread t has T_t = ceil(L_t / c) turns; round r gives a turn to every thread with T_t > r, in
    # thread order, c events each except a thread's last turn. Before round r,
    # E(r) = sum_t min(L_t, r*c) events were taken, which is linear in r between consecutive
    # distinct turn counts u_0 < u_1 < ...: segment k (rounds u_{k-1} <= r < u_k) has the same
    # live threads in every round, all taking c events except in its last round u_k - 1, where the
    # threads with T_t == u_k may take fewer. Memory: one entry per (segment, live thread), at most
    # threads x distinct turn counts.
    def _round_tables(self):
        c, L = self.chunk, self.lengths
        turns = (L + c - 1) // c
        u = np.unique(turns)
        start = np.concatenate([[0], u[:-1]])
        live = [np.flatnonzero(turns >= uk) for uk in u]
        self.seg_live = np.array([len(x) for x in live], np.int64)
        self.seg_start, self.seg_last = start, u - 1
        done = np.array([L[turns < uk].sum() for uk in u], np.int64)
        self.seg_e0 = done + self.seg_live * c * start  # E(start_k) <= n, so no overflow
        # events per whole round; capped at n + 1, which divides the same way and cannot overflow
        self.seg_round = np.array([min(int(x) * c, self.n + 1) for x in self.seg_live], np.int64)
        self.live_ids = np.concatenate(live)
        self.live_off = np.concatenate([[0], np.cumsum(self.seg_live)[:-1]])
        # the last round of each segment, laid out on one axis: segment k's keys are base_k + q
        width = np.concatenate([np.minimum(c, L[x] - (uk - 1) * c) for x, uk in zip(live, u)])
        self.last_ends = np.cumsum(width)
        self.last_starts = self.last_ends - width
        self.last_base = self.last_starts[self.live_off]

    def _closed_form(self, s):
        c = self.chunk
        k = np.searchsorted(self.seg_e0, s, side="right") - 1
        if len(k) and k[0] == k[-1] and (k == k[0]).all():  # usually: then per-segment values are scalars
            k = k[0]
        per_round = self.seg_round[k]
        r = self.seg_start[k] + (s - self.seg_e0[k]) // per_round
        q = s - (self.seg_e0[k] + per_round * (r - self.seg_start[k]))
        if c == 1:
            t, pos = self.live_ids[self.live_off[k] + q], np.zeros_like(q)
        else:
            rank, pos = np.divmod(q, c)
            t = self.live_ids[self.live_off[k] + rank]
        last = np.flatnonzero(r == self.seg_last[k])  # rounds where some turns may be short
        if len(last):
            key = (self.last_base[k] + q)[last]
            f = np.searchsorted(self.last_ends, key, side="right")
            t[last] = self.live_ids[f]
            pos[last] = key - self.last_starts[f]
        return t, r * c + pos

    # -- random ---------------------------------------------------------------------------------
    # The cursor (occurrence, next step, events taken per thread, live thread list) is O(threads)
    # memory. Requests that continue where the last one stopped cost only their own steps; a
    # request before the cursor replays its occurrence from step 0.
    def _random_steps(self, o, s):
        if self._cursor is None:
            nt = len(self.threads)
            self._cursor = (np.array([-1, 0, 0], np.int64), np.zeros(nt, np.int64), np.zeros(nt, np.int64))
        t = np.empty(len(s), np.int64)
        j = np.empty(len(s), np.int64)
        state, taken, live = self._cursor
        _random_kernel()(o, s, self.lengths, np.uint64(self.seed), self.n, state, taken, live, t, j)
        return t, j


def _random_steps_py(o, s, lengths, seed, n, state, taken, live, out_t, out_j):
    """For each request (o[e], s[e]) (sorted): which thread takes step s[e] of occurrence o[e], and
    its position there. Step s of occurrence o draws u = splitmix64(seed, o*n + s) and takes the
    (u mod live)-th live thread in thread order. ``state`` = [occurrence, next step, live count]."""
    golden = np.uint64(0x9E3779B97F4A7C15)
    m1, m2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
    cur_o, cur_s, nlive = state[0], state[1], state[2]
    for e in range(len(s)):
        if o[e] != cur_o or s[e] < cur_s:
            cur_o, cur_s, nlive = o[e], 0, len(lengths)
            for t in range(len(lengths)):
                taken[t] = 0
                live[t] = t
        while cur_s <= s[e]:
            z = seed + np.uint64(cur_o * n + cur_s + 1) * golden
            z = (z ^ (z >> np.uint64(30))) * m1
            z = (z ^ (z >> np.uint64(27))) * m2
            z = z ^ (z >> np.uint64(31))
            idx = np.int64(z % np.uint64(nlive))
            t = live[idx]
            if cur_s == s[e]:
                out_t[e] = t
                out_j[e] = taken[t]
            taken[t] += 1
            if taken[t] == lengths[t]:
                for x in range(idx, nlive - 1):
                    live[x] = live[x + 1]
                nlive -= 1
            cur_s += 1
    state[0], state[1], state[2] = cur_o, cur_s, nlive


_KERNEL = None


def _random_kernel():
    """The jitted stepper, compiled on first use (numba is slow to import)."""
    global _KERNEL
    if _KERNEL is None:
        import numba

        _KERNEL = numba.njit(cache=True)(_random_steps_py)
    return _KERNEL


class Stored(Node):
    """Events read from storage (a binary trace's memory map) in blocks of ``block_rows`` rows:
    ``block(k)`` gives block k (only the last may be shorter) as arrays that are checked before
    they are handed out. A request for consecutive events inside one block is answered with slices
    of those arrays, so a chunk costs no copy; other requests gather what they need. Only ever the
    root of a trace, so global indices are below ``n``."""

    periodic = False

    def __init__(self, n: int, block_rows: int, block: Callable[[int], Events]):
        self.n, self.block_rows, self.block = n, block_rows, block

    def events_at(self, g):
        if not len(g):
            return Events.empty()
        first, last = int(g[0]), int(g[-1])
        if last - first == len(g) - 1:  # sorted requests without gaps: a range
            return self._range(first, last + 1)
        k = g // self.block_rows
        starts = np.flatnonzero(np.diff(k, prepend=-1))
        parts = [self.block(int(k[a])).take(g[a:b] - int(k[a]) * self.block_rows)
                 for a, b in zip(starts, list(starts[1:]) + [len(g)])]
        return _concatenate(parts)

    def _range(self, start: int, stop: int) -> Events:
        B = self.block_rows
        parts = []
        for k in range(start // B, (stop - 1) // B + 1):
            lo, hi = max(start, k * B) - k * B, min(stop, (k + 1) * B) - k * B
            block = self.block(k)
            parts.append(block.take(slice(lo, hi)))  # views, no copy
        return _concatenate(parts)


def _concatenate(parts: list[Events]) -> Events:
    if len(parts) == 1:
        return parts[0]
    return Events(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in COLUMNS})


def compact(node: Node, limit: int = TABLE_LIMIT) -> Node:
    """Replace periodic subtrees of at most ``limit`` events by a precomputed ``Table``.

    Pure speed: a table row is exactly what the subtree gives for that position.
    """
    if node.periodic and 1 < node.n <= limit and not isinstance(node, Table):
        return Table(node.events_at(np.arange(node.n, dtype=np.int64)))
    if isinstance(node, Repeat):
        node.body = compact(node.body, limit)
    elif isinstance(node, Sequence):
        node.children = [compact(c, limit) for c in node.children]
    elif isinstance(node, Parallel):
        node.threads = [compact(t, limit) for t in node.threads]
    return node


@dataclass(frozen=True)
class AllocatorSpec:
    """The trace's ``allocator:``. For the go model, ``version`` is the minor version whose rules
    apply and ``generation`` its generation (``memsim.models.goversions``); ``gogc`` None is off.
    ``warning`` (starting with file:line:column) is for the command to print."""

    model: str = "none"
    version: str | None = None
    generation: str | None = None
    gogc: int | None = None
    warning: str | None = None


@dataclass(frozen=True)
class Allocation:
    """One ``alloc`` event of the file and the objects it owns, ``first .. first + count - 1``: one
    object for a plain id, or one per value of the ``{i}`` counter (object ``first + i``)."""

    id: str  # as written, perhaps with {i}
    first: int
    count: int
    size: int
    pointers: bool
    site: int  # index into Trace.sites, -1 when the alloc names no site
    label: str | None
    where: str  # file:line:column of the alloc event

    def name(self, counter: int) -> str:
        return self.id.replace("{i}", str(counter))


@dataclass
class ObjectTable:
    """Objects listed one by one, as a binary trace stores them (a YAML trace lists its alloc
    events instead, see ``Allocation``). Object i's id is UTF-8 ``id_bytes[id_offsets[i]:
    id_offsets[i + 1]]``; ``site`` indexes ``Trace.sites`` (-1: none); ``born`` is the index of
    the object's alloc event, -1 when it is never allocated."""

    size: np.ndarray
    flags: np.ndarray
    site: np.ndarray
    born: np.ndarray
    id_offsets: np.ndarray
    id_bytes: np.ndarray

    def __len__(self) -> int:
        return len(self.size)

    def name(self, index: int) -> str:
        # checksummed ids are what the writer encoded; a foreign writer's bad bytes still read
        return bytes(self.id_bytes[self.id_offsets[index] : self.id_offsets[index + 1]]).decode(errors="replace")


@dataclass
class Trace:
    """A loaded trace: metadata plus the program that expands into its events."""

    name: str
    root: Node
    path: str = ""
    machine_spec: Any = None  # the raw `machine:` value (resolved by machine_file.resolve_machine)
    machine_where: str | None = None  # file:line:column of that value
    base_dir: Path = Path(".")  # relative machine paths are relative to this
    allocator: AllocatorSpec = AllocatorSpec()
    sha256: str = ""
    sources: list[str] = field(default_factory=list)  # src column -> file:line:column of the event
    core_uses: list[tuple[int, str]] = field(default_factory=list)  # every core written, in file order
    allocations: list[Allocation] = field(default_factory=list)  # in file order, so `first` ascends
    sites: list[str] = field(default_factory=list)  # site column -> the alloc's `site`, in file order
    objects: ObjectTable | None = None  # a binary trace's objects (then ``allocations`` is empty)
    events_file: str | None = None  # the binary file the events come from (then ``sources`` is empty)

    @property
    def n_events(self) -> int:
        return self.root.n

    @cached_property
    def n_objects(self) -> int:
        if self.objects is not None:
            return len(self.objects)
        return sum(a.count for a in self.allocations)

    @cached_property
    def _firsts(self) -> list[int]:
        return [a.first for a in self.allocations]

    def allocation_of(self, index: int) -> Allocation:
        """The alloc event that owns object ``index`` (0 <= index < n_objects)."""
        if not 0 <= index < self.n_objects:
            raise IndexError(f"object {index} does not exist: the trace has {self.n_objects} objects")
        return self.allocations[bisect.bisect_right(self._firsts, index) - 1]

    def object_name(self, index: int) -> str:
        """The id of object ``index``, with its ``{i}`` filled in."""
        if self.objects is not None:
            return self.objects.name(index)
        owner = self.allocation_of(index)
        return owner.name(index - owner.first)

    def object_site(self, index: int) -> str | None:
        site = int(self.objects.site[index]) if self.objects is not None else self.allocation_of(index).site
        return self.sites[site] if site >= 0 else None

    def position_of_event(self, index: int) -> str:
        """file:line:column of the YAML event that produced event ``index`` (for problems found
        during replay)."""
        if not 0 <= index < self.n_events:
            raise IndexError(f"event {index} does not exist: the trace has {self.n_events} events")
        if self.events_file is not None:
            return f"{self.events_file}: event {index}"
        return self.sources[int(self.events(index, index + 1).src[0])]

    def events(self, start: int = 0, stop: int | None = None) -> Events:
        """Events ``start..stop`` (materialized: only for small ranges)."""
        stop = self.n_events if stop is None else min(stop, self.n_events)
        if stop <= start:
            return Events.empty()
        return self.root.events_at(np.arange(start, stop, dtype=np.int64))

    def chunks(self, chunk_size: int = 1 << 20) -> Iterator[Events]:
        for start in range(0, self.n_events, chunk_size):
            yield self.events(start, start + chunk_size)

    def check_cores(self, n_cores: int) -> None:
        """UserError at the first core index the machine does not have (``free`` and ``gc`` name no
        core, so only accesses, allocs and threads count)."""
        for core, at in self.core_uses:
            if core >= n_cores:
                raise UserError(
                    f"core {core} is out of range: the machine has {n_cores} cores (0-{n_cores - 1})", at
                )


class StreamedTrace(Trace):
    """A trace replayed straight from a file of raw accesses as it is read (``memsim run
    app.lackey``): ``read(chunk_size)`` yields its chunks. It has no objects, no source positions
    and no random access; ``n_events`` counts the events delivered so far, so it is the trace's
    length once ``chunks`` is exhausted. ``source`` is the file; ``stats`` what the reader reports
    about it, complete at the end (its ``bytes_read``, how much of ``source`` has been read, moves
    progress bars as it goes)."""

    def __init__(self, name: str, path: str, sha256: str, source: Path, read: Callable[[int], Iterator[Events]],
                 stats: Any = None):
        super().__init__(name=name, root=Sequence([]), path=path, sha256=sha256)
        self.source, self.read, self.stats = source, read, stats
        self.delivered = 0
        self.n_cores: int | None = None

    @property
    def n_events(self) -> int:
        return self.delivered

    def chunks(self, chunk_size: int = 1 << 20) -> Iterator[Events]:
        for chunk in self.read(chunk_size):
            if self.n_cores is not None and len(chunk):
                beyond = np.flatnonzero(chunk.core >= self.n_cores)
                if len(beyond):
                    core = int(chunk.core[beyond[0]])
                    raise UserError(
                        f"core {core} is out of range: the machine has {self.n_cores} cores (0-{self.n_cores - 1})",
                        f"{self.path}: event {self.delivered + int(beyond[0])}",
                    )
            self.delivered += len(chunk)
            yield chunk

    def check_cores(self, n_cores: int) -> None:
        """The cores are known only as the file is read: ``chunks`` checks each one."""
        self.n_cores = n_cores
