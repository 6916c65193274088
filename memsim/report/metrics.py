"""Headline metrics: one flat, ordered mapping of a run's main numbers, named by dotted keys.

The columns of a sweep's results and what ``memsim check`` compares with its baselines. Counts are
integers; ``amat`` and ``*.miss_rate`` are floats rounded as in the JSON report. A trace of raw
addresses has no ``allocator.*`` keys. The keys are documented in docs/metrics.md.
"""
from __future__ import annotations

from memsim.engine.counters import MISS_CLASSES
from memsim.report.results import RunResult, rate

LEVEL_KEYS = ("accesses", "hits", "misses", "miss_rate", "evictions", "writebacks", "writebacks_in", "fills",
              "back_invalidations")
ALLOCATOR_KEYS = ("heap_alloc", "total_alloc", "heap_sys", "heap_inuse", "heap_idle", "heap_released", "heap_objects",
                  "mallocs", "frees", "num_gc")


def headline(result: RunResult) -> dict[str, int | float]:
    metrics: dict[str, int | float] = {
        "events": result.trace.events,
        "accesses": result.accesses,
        "cycles": sum(core.cycles for core in result.cores),
    }
    metrics["amat"] = rate(metrics["cycles"], result.accesses)
    for level in result.levels:
        for key in LEVEL_KEYS:
            metrics[f"{level.name}.{key}"] = level.miss_rate if key == "miss_rate" else level.counts[key]
        for cls in MISS_CLASSES:
            metrics[f"{level.name}.misses_{cls}"] = level.misses_by_class[cls]
    for key, value in result.memory.items():
        metrics[f"memory.{key}"] = value
    for key, value in result.coherence.items():
        metrics[f"coherence.{key}"] = value
    metrics["false_sharing_lines"] = result.sharing.total_lines
    if result.allocator is not None:
        stats = result.allocator.stats
        for key in ALLOCATOR_KEYS:
            metrics[f"allocator.{key}"] = getattr(stats, key)
        for tier, count in stats.tiers.items():
            metrics[f"allocator.tier_{tier}"] = count
    return metrics

