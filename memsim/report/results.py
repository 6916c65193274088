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
    MISS_CLASSES,
    Counters,
)
from memsim.models.goalloc.model import AllocatorStats
from memsim.models.hierarchy import Hierarchy
from memsim.report.sharing import NO_SHARING, SharingReport

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
    misses_by_class: dict[str, int]  # MISS_CLASSES


@dataclass(frozen=True)
class LevelResult:
    name: str
    latency: int
    counts: dict[str, int]  # CACHE_COUNTERS, summed over instances
    misses_by_class: dict[str, int]  # MISS_CLASSES, summed over instances
    instances: tuple[InstanceResult, ...]

    @property
    def miss_rate(self) -> float:
        return rate(self.counts["misses"], self.counts["accesses"])


@dataclass(frozen=True)
class CoreLevel:
    name: str
    hits: int
    misses: int
    misses_by_class: dict[str, int]  # MISS_CLASSES


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
    sharing: SharingReport = NO_SHARING

    @property
    def accesses(self) -> int:
        return sum(c.accesses for c in self.cores)

    def per_thousand(self, count: int) -> float:
        """Misses (or any count) per 1,000 core accesses."""
        return round(1000 * count / self.accesses, 6) if self.accesses else 0.0


def build_result(hierarchy: Hierarchy, counters: Counters, trace: TraceInfo, machine: dict, partial: bool,
                 allocator: AllocatorResult | None = None, sharing: SharingReport = NO_SHARING) -> RunResult:
    specs = hierarchy.machine.caches
    levels = []
    for s, spec in enumerate(specs):
        rows = [(k, inst) for k, inst in enumerate(hierarchy.instances) if inst.spec == s]
        instances = tuple(
            InstanceResult(inst.index, inst.cores, _named(counters.cache[k]), _classes(counters.cache_classes[k]))
            for k, inst in rows
        )
        ks = [k for k, _ in rows]
        levels.append(LevelResult(spec.name, spec.latency, _named(counters.cache[ks].sum(axis=0)),
                                  _classes(counters.cache_classes[ks].sum(axis=0)), instances))
    cores = tuple(
        CoreResult(
            core=core,
            accesses=int(counters.core[core, K_ACCESSES]),
            cycles=int(counters.core[core, K_CYCLES]),
            levels=tuple(
                CoreLevel(spec.name, int(counters.core_level[core, s, HM_HITS]), int(counters.core_level[core, s, HM_MISSES]),
                          _classes(counters.core_classes[core, s]))
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
        coherence=_named(counters.coherence, COHERENCE_COUNTERS),
        allocator=allocator,
        sharing=sharing,
    )


def _named(row, names: tuple[str, ...] = CACHE_COUNTERS) -> dict[str, int]:
    return {name: int(row[i]) for i, name in enumerate(names)}


def _classes(row) -> dict[str, int]:
    return _named(row, MISS_CLASSES)
