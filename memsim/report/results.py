"""Typed results of a run, built from the engine's counter arrays. Printers consume these; rates
are derived here and nowhere else."""
from __future__ import annotations

from dataclasses import dataclass

from memsim.engine.counters import (
    CACHE_COUNTERS,
    COHERENCE_COUNTERS,
    HM_HITS,
    HM_MISSES,
    K_ACCESSES,
    K_CYCLES,
    M_READS,
    M_WRITES,
    Counters,
)
from memsim.models.goalloc.model import AllocatorStats
from memsim.models.hierarchy import Hierarchy

SCHEMA_VERSION = 1


def rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


@dataclass(frozen=True)
class TraceInfo:
    name: str
    events: int
    sha256: str


@dataclass(frozen=True)
class InstanceResult:
    instance: int
    cores: tuple[int, ...]
    counts: dict[str, int]  # CACHE_COUNTERS


@dataclass(frozen=True)
class LevelResult:
    name: str
    latency: int
    counts: dict[str, int]  # CACHE_COUNTERS, summed over instances
    instances: tuple[InstanceResult, ...]

    @property
    def miss_rate(self) -> float:
        return rate(self.counts["misses"], self.counts["accesses"])


@dataclass(frozen=True)
class CoreLevel:
    name: str
    hits: int
    misses: int


@dataclass(frozen=True)
class CoreResult:
    core: int
    accesses: int
    cycles: int
    levels: tuple[CoreLevel, ...]

    @property
    def amat(self) -> float:
        return rate(self.cycles, self.accesses)


@dataclass(frozen=True)
class AllocatorResult:
    model: str  # "go"
    version: str  # the Go release whose rules ran, e.g. "1.27"
    generation: str  # classic, headers or greentea (docs/allocator.md)
    stats: AllocatorStats


@dataclass(frozen=True)
class RunResult:
    trace: TraceInfo
    machine: dict
    partial: bool
    levels: tuple[LevelResult, ...]
    cores: tuple[CoreResult, ...]
    memory: dict[str, int]
    coherence: dict[str, int]
    allocator: AllocatorResult | None = None  # None: raw addresses only

    @property
    def accesses(self) -> int:
        return sum(c.accesses for c in self.cores)

    def per_thousand(self, count: int) -> float:
        """Misses (or any count) per 1,000 core accesses."""
        return round(1000 * count / self.accesses, 6) if self.accesses else 0.0


def build_result(hierarchy: Hierarchy, counters: Counters, trace: TraceInfo, machine: dict, partial: bool,
                 allocator: AllocatorResult | None = None) -> RunResult:
    specs = hierarchy.machine.caches
    levels = []
    for s, spec in enumerate(specs):
        rows = [(k, inst) for k, inst in enumerate(hierarchy.instances) if inst.spec == s]
        instances = tuple(
            InstanceResult(inst.index, inst.cores, _named(counters.cache[k])) for k, inst in rows
        )
        total = counters.cache[[k for k, _ in rows]].sum(axis=0)
        levels.append(LevelResult(spec.name, spec.latency, _named(total), instances))
    cores = tuple(
        CoreResult(
            core=core,
            accesses=int(counters.core[core, K_ACCESSES]),
            cycles=int(counters.core[core, K_CYCLES]),
            levels=tuple(
                CoreLevel(spec.name, int(counters.core_level[core, s, HM_HITS]), int(counters.core_level[core, s, HM_MISSES]))
                for s, spec in enumerate(specs)
            ),
        )
        for core in range(hierarchy.machine.cores)
    )
    return RunResult(
        trace=trace,
        machine=machine,
        partial=partial,
        levels=tuple(levels),
        cores=cores,
        memory={"reads": int(counters.memory[M_READS]), "writes": int(counters.memory[M_WRITES])},
        coherence={name: int(counters.coherence[i]) for i, name in enumerate(COHERENCE_COUNTERS)},
        allocator=allocator,
    )


def _named(row) -> dict[str, int]:
    return {name: int(row[i]) for i, name in enumerate(CACHE_COUNTERS)}
