"""Headline metrics: one flat, ordered mapping of a run's main numbers, named by dotted keys.

The columns of a sweep's results and what ``memsim check`` compares with its baselines. Counts are
integers; ``amat`` and ``*.miss_rate`` are floats rounded as in the JSON report. A trace of raw
addresses has no ``allocator.*`` keys. The keys are documented in docs/metrics.md.
"""
from __future__ import annotations

from memsim.engine.counters import COHERENCE_COUNTERS, MEMORY_COUNTERS, MISS_CLASSES
from memsim.models.goalloc.model import TIERS
from memsim.report.results import RunResult, rate

LEVEL_KEYS = ("accesses", "hits", "misses", "miss_rate", "evictions", "writebacks", "writebacks_in", "fills",
              "back_invalidations")
ALLOCATOR_KEYS = ("heap_alloc", "total_alloc", "heap_sys", "heap_inuse", "heap_idle", "heap_released", "heap_objects",
                  "mallocs", "frees", "num_gc")


def metric_names(caches: list[str], allocator: bool) -> list[str]:
    """The keys ``headline`` gives, in its order, for a machine with these caches (top level
    first) and, with ``allocator``, a Go heap."""
    names = ["events", "accesses", "cycles", "amat"]
    for cache in caches:
        names += [f"{cache}.{key}" for key in LEVEL_KEYS] + [f"{cache}.misses_{cls}" for cls in MISS_CLASSES]
    names += [f"memory.{key}" for key in MEMORY_COUNTERS] + [f"coherence.{key}" for key in COHERENCE_COUNTERS]
    names.append("false_sharing_lines")
    if allocator:
        names += [f"allocator.{key}" for key in ALLOCATOR_KEYS] + [f"allocator.tier_{tier}" for tier in TIERS]
    return names


def headline(result: RunResult) -> dict[str, int | float]:
    values: dict[str, int | float] = {
        "events": result.trace.events,
        "accesses": result.accesses,
        "cycles": sum(core.cycles for core in result.cores),
    }
    values["amat"] = rate(values["cycles"], result.accesses)
    for level in result.levels:
        for key in LEVEL_KEYS:
            values[f"{level.name}.{key}"] = level.miss_rate if key == "miss_rate" else level.counts[key]
        for cls in MISS_CLASSES:
            values[f"{level.name}.misses_{cls}"] = level.misses_by_class[cls]
    values.update({f"memory.{key}": value for key, value in result.memory.items()})
    values.update({f"coherence.{key}": value for key, value in result.coherence.items()})
    values["false_sharing_lines"] = result.sharing.total_lines
    if result.allocator is not None:
        stats = result.allocator.stats
        values.update({f"allocator.{key}": getattr(stats, key) for key in ALLOCATOR_KEYS})
        values.update({f"allocator.tier_{tier}": stats.tiers[tier] for tier in TIERS})
    names = metric_names([level.name for level in result.levels], result.allocator is not None)
    return {name: values[name] for name in names}
