"""Turn a ``Machine`` into the flat arrays the replay kernel works on.

Every cache instance gets one row of ``config`` (columns ``F_*``) and a slice of the per-slot
state arrays. Topology is precomputed here once, so the kernel only follows indices: each core's
path per kind, each instance's next cache below, and two kinds of lists in ``links`` (rows of
instance, coherence participant): the caches above each instance (``config[:, L_ABOVE_*]``), and
for each core the caches a write of that core invalidates, grouped by coherence participant
(``core_config[:, L_INVALIDATE_*]``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memsim import aligned
from memsim.machine import Machine

POLICY_CODES = {"lru": 0, "plru": 1, "fifo": 2, "random": 3, "srrip": 4}
INCLUSION_CODES = {"nine": 0, "inclusive": 1, "exclusive": 2}
KIND_DATA, KIND_INSTRUCTIONS = 0, 1

# columns of Hierarchy.config
(
    F_SETS,
    F_WAYS,
    F_SLOT_BASE,
    F_SET_BASE,
    F_POLICY,
    F_RRPV_MAX,
    F_WRITE_BACK,
    F_WRITE_ALLOCATE,
    F_INCLUSION,
    F_LATENCY,
    F_NEXT,
    F_SPEC,
    F_SET_MASK,
    L_ABOVE_START,
    L_ABOVE_END,
    F_PARTICIPANT,
    F_FIRST_CORE,
    F_CORE_COUNT,
    F_SHADOW_BASE,
    F_SHADOW_MASK,
) = range(20)
N_FIELDS = 20
UNTRACKED = -1  # F_PARTICIPANT of a cache shared by all cores: no coherence protocol there
# columns of Hierarchy.core_config: the core's range of links, then from K_OTHERS one word per 32
# instances with bit i % 32 set for every tracked instance i that does not serve the core (the
# history's "has held" bits, memsim.engine.tables, are tested against it)
L_INVALIDATE_START, L_INVALIDATE_END, K_OTHERS = 0, 1, 2

SPLITMIX_SEED_STRIDE = 1_000_003  # instance k's random stream starts at seed * stride + k


@dataclass(frozen=True)
class Instance:
    spec: int  # index into Machine.caches
    index: int  # instance number within the spec
    level: int
    cores: tuple[int, ...]


@dataclass
class Hierarchy:
    machine: Machine
    instances: list[Instance]
    config: np.ndarray  # int64 [n_instances, N_FIELDS]
    path: np.ndarray  # int64 [cores, 2 kinds, levels]: instance serving that core, kind and level
    core_config: np.ndarray  # int64 [cores, K_OTHERS + words]: L_INVALIDATE_* ranges of links, K_OTHERS masks
    links: np.ndarray  # int64 [n_links, 2]: instance, coherence participant
    n_slots: int
    n_sets: int
    n_shadow_buckets: int  # hash buckets of all the conflict shadows (F_SHADOW_BASE/F_SHADOW_MASK)

    def new_state(self) -> "CacheState":
        shadow = self.machine.conflict_shadow
        seeds = np.array(
            [(self.machine.seed * SPLITMIX_SEED_STRIDE + k) % 2**64 for k in range(len(self.instances))],
            dtype=np.uint64,
        )
        return CacheState(
            slots=aligned.full(self.n_slots, -1, np.int64),
            rrpv=np.zeros(self.n_slots, np.int64),
            plru=np.zeros(self.n_sets, np.uint64),
            rng=seeds,
            # no shadow, no memory for it
            shadow_nodes=np.full((self.n_slots if shadow else 0, 3), -1, np.int64),
            shadow_lists=np.tile(np.array([-1, -1, 0], np.int64), (len(self.instances), 1)),
            shadow_buckets=np.full(self.n_shadow_buckets if shadow else 0, -1, np.int64),
        )


@dataclass
class CacheState:
    slots: np.ndarray  # int64 per slot: line << STATE_BITS | state, -1 = invalid (see engine/kernel.py)
    rrpv: np.ndarray  # int64 per slot: SRRIP re-reference prediction values
    plru: np.ndarray  # uint64 per set: tree-PLRU bits
    rng: np.ndarray  # uint64 per instance: SplitMix64 state
    # The conflict shadows (docs/coherence.md, "Miss classes"): per slot a list node (line, newer,
    # older) of its instance's fully associative LRU list; per instance (newest, oldest, count);
    # hash buckets mapping a line to its node, -1 = empty.
    shadow_nodes: np.ndarray
    shadow_lists: np.ndarray
    shadow_buckets: np.ndarray


def check_structure(machine: Machine) -> None:
    """Raise ValueError unless the machine has the shape docs/engine.md requires.

    Machine files are checked with positions by ``formats.machine_file``; this guards machines
    built in code (tests, benchmarks, sweeps), which would otherwise replay something undefined.
    """
    problems = []
    unified_seen = False
    above_shared_by = 1
    for lvl, level in enumerate(machine.levels):
        serves = tuple(c.serves for c in level)
        if serves == ("all",):
            unified_seen = True
        elif serves != ("instructions", "data") or unified_seen:
            problems.append(f"level {lvl + 1} serves {serves}: a level is one cache serving all, or "
                            "(instructions, data) above every unified level")
        if len({c.shared_by for c in level}) != 1:
            problems.append(f"level {lvl + 1}: both halves of a split level need the same shared_by")
        for c in level:
            if c.sets < 1 or c.ways < 1 or c.shared_by < 1 or machine.cores % c.shared_by:
                problems.append(f"{c.name}: sets, ways and shared_by must be >= 1, shared_by divide cores")
            elif c.shared_by % above_shared_by:
                problems.append(f"{c.name}: shared_by {c.shared_by} is not a multiple of the level above")
            if c.replacement == "plru" and (c.ways & (c.ways - 1) or c.ways > 64):
                problems.append(f"{c.name}: plru needs a power-of-two way count up to 64, not {c.ways}")
            if lvl == 0 and c.inclusion == "exclusive":
                problems.append(f"{c.name}: the first level cannot be exclusive")
        above_shared_by = max(c.shared_by for c in level)
    if machine.line_size < 1 or machine.line_size & (machine.line_size - 1):
        problems.append(f"line_size {machine.line_size} is not a power of two")
    if problems:
        raise ValueError(f"machine {machine.name!r} is malformed: " + "; ".join(problems))


def build(machine: Machine) -> Hierarchy:
    check_structure(machine)
    specs = machine.caches
    spec_level = [lvl for lvl, level in enumerate(machine.levels) for _ in level]
    instances: list[Instance] = []
    first_instance: list[int] = []
    for s, cache in enumerate(specs):
        first_instance.append(len(instances))
        for i in range(machine.cores // cache.shared_by):
            cores = tuple(range(i * cache.shared_by, (i + 1) * cache.shared_by))
            instances.append(Instance(s, i, spec_level[s], cores))

    def instance_of(spec: int, core: int) -> int:
        return first_instance[spec] + core // specs[spec].shared_by

    n_levels = len(machine.levels)
    path = np.zeros((machine.cores, 2, n_levels), np.int64)
    spec_index = 0
    for lvl, level in enumerate(machine.levels):
        for kind in (KIND_DATA, KIND_INSTRUCTIONS):
            wanted = "instructions" if kind == KIND_INSTRUCTIONS else "data"
            s = next(spec_index + j for j, c in enumerate(level) if c.serves in ("all", wanted))
            for core in range(machine.cores):
                path[core, kind, lvl] = instance_of(s, core)
        spec_index += len(level)

    def participant_of(k: int) -> int:
        """Coherence participant (docs/engine.md): all shared_by=1 caches of a core are one
        (numbered by the core); each group-shared instance is one of its own."""
        shared_by = specs[instances[k].spec].shared_by
        if shared_by == machine.cores:
            return UNTRACKED
        return instances[k].cores[0] if shared_by == 1 else machine.cores + k

    config = np.zeros((len(instances), N_FIELDS), np.int64)
    slot_base = set_base = shadow_base = 0
    next_of = {}
    for k, inst in enumerate(instances):
        cache = specs[inst.spec]
        kind = KIND_INSTRUCTIONS if cache.serves == "instructions" else KIND_DATA
        below = int(path[inst.cores[0], kind, inst.level + 1]) if inst.level + 1 < n_levels else -1
        next_of[k] = below
        config[k] = 0
        config[k, F_SETS] = cache.sets
        config[k, F_WAYS] = cache.ways
        config[k, F_SLOT_BASE] = slot_base
        config[k, F_SET_BASE] = set_base
        config[k, F_POLICY] = POLICY_CODES[cache.replacement]
        config[k, F_RRPV_MAX] = (1 << cache.rrpv_bits) - 1
        config[k, F_WRITE_BACK] = cache.write == "back"
        config[k, F_WRITE_ALLOCATE] = cache.write_allocate
        config[k, F_INCLUSION] = INCLUSION_CODES[cache.inclusion]
        config[k, F_LATENCY] = cache.latency
        config[k, F_NEXT] = below
        config[k, F_SPEC] = inst.spec
        config[k, F_SET_MASK] = cache.sets - 1 if cache.sets & (cache.sets - 1) == 0 else -1
        config[k, F_PARTICIPANT] = participant_of(k)
        config[k, F_FIRST_CORE] = inst.cores[0]
        config[k, F_CORE_COUNT] = len(inst.cores)
        buckets = 1 << (2 * cache.sets * cache.ways - 1).bit_length()  # a power of two, at most half full
        config[k, F_SHADOW_BASE] = shadow_base
        config[k, F_SHADOW_MASK] = buckets - 1
        slot_base += cache.sets * cache.ways
        set_base += cache.sets
        shadow_base += buckets

    links: list[tuple[int, int]] = []
    above_lists: list[list[int]] = [[] for _ in instances]
    for k in range(len(instances)):
        below = next_of[k]
        while below >= 0:
            above_lists[below].append(k)
            below = next_of[below]
    for k, above in enumerate(above_lists):
        config[k, L_ABOVE_START] = len(links)
        links += [(a, -1) for a in sorted(above)]
        config[k, L_ABOVE_END] = len(links)

    # Every tracked cache that does not serve a core, grouped by participant, top level first.
    core_config = np.zeros((machine.cores, K_OTHERS + (len(instances) + 31) // 32), np.int64)
    for core in range(machine.cores):
        entries = sorted(
            (participant_of(k), k) for k, inst in enumerate(instances)
            if participant_of(k) != UNTRACKED and core not in inst.cores
        )
        core_config[core, L_INVALIDATE_START] = len(links)
        links += [(k, participant) for participant, k in entries]
        core_config[core, L_INVALIDATE_END] = len(links)
        for _, k in entries:
            core_config[core, K_OTHERS + k // 32] |= 1 << (k % 32)

    return Hierarchy(
        machine=machine,
        instances=instances,
        config=config,
        path=path,
        core_config=core_config,
        links=np.array(links, dtype=np.int64).reshape(-1, 2),
        n_slots=slot_base,
        n_sets=set_base,
        n_shadow_buckets=shadow_base,
    )
