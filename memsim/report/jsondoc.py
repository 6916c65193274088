"""The versioned JSON report (design.md, "Report"): the same content as the terminal report."""
from __future__ import annotations

import json
from dataclasses import asdict

from memsim.models.goalloc.sizeclasses import PAGE_SIZE, ClassRow
from memsim.report.layout import ObjectLayout
from memsim.report.results import SCHEMA_VERSION, AllocatorResult, RunResult, rate

INSTANCE_KEYS = ("accesses", "hits", "misses", "evictions", "writebacks", "writebacks_in", "fills", "back_invalidations")


def run_document(result: RunResult) -> dict:
    return {
        "memsim": SCHEMA_VERSION,
        "partial": result.partial,
        "trace": {"name": result.trace.name, "events": result.trace.events, "sha256": result.trace.sha256},
        "machine": result.machine,
        "levels": [
            {
                "name": level.name,
                **level.counts,
                "misses_by_class": dict(level.misses_by_class),
                "miss_rate": level.miss_rate,
                "misses_per_1k_accesses": result.per_thousand(level.counts["misses"]),
                "instances": [
                    {
                        "instance": inst.instance,
                        "cores": list(inst.cores),
                        **{key: inst.counts[key] for key in INSTANCE_KEYS},
                        "misses_by_class": dict(inst.misses_by_class),
                        "miss_rate": rate(inst.counts["misses"], inst.counts["accesses"]),
                    }
                    for inst in level.instances
                ],
            }
            for level in result.levels
        ],
        "cores": [
            {
                "core": core.core,
                "accesses": core.accesses,
                "cycles": core.cycles,
                "amat": core.amat,
                "levels": [
                    {"name": lv.name, "hits": lv.hits, "misses": lv.misses, "misses_by_class": dict(lv.misses_by_class)}
                    for lv in core.levels
                ],
            }
            for core in result.cores
        ],
        "memory": dict(result.memory),
        "coherence": dict(result.coherence),
        "false_sharing_lines": result.sharing.total_lines,
        "false_sharing": [asdict(line) for line in result.sharing.lines],
        "false_sharing_by_site": [asdict(row) for row in result.sharing.by_site],
        "allocator": allocator_section(result.allocator),
    }


def allocator_section(allocator: AllocatorResult | None) -> dict:
    if allocator is None:
        return {"model": "none"}
    stats = asdict(allocator.stats)
    return {"model": allocator.model, "version": allocator.version, "generation": allocator.generation, **stats}


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2) + "\n"


def sizeclasses_document(version: str, generation: str, small_limit: int, rows: list[ClassRow]) -> dict:
    return {
        "memsim": SCHEMA_VERSION,
        "go_version": version,
        "generation": generation,
        "page_size": PAGE_SIZE,
        "small_limit": small_limit,
        "size_classes": [
            {
                "size_class": r.size_class, "slot_size": r.size, "pages": r.pages, "span_bytes": r.span_bytes,
                "objects_noscan": r.objects_noscan, "objects_scan": r.objects_scan,
                "tail_waste_noscan": r.tail_waste(False), "tail_waste_scan": r.tail_waste(True),
                "max_internal_waste": r.max_internal_waste,
            }
            for r in rows
        ],
    }


def layout_document(objects: list[ObjectLayout]) -> dict:
    return {"memsim": SCHEMA_VERSION, "objects": [asdict(o) for o in objects]}
