"""The versioned JSON report (design.md, "Report"): the same content as the terminal report."""
from __future__ import annotations

import json

from memsim.report.results import SCHEMA_VERSION, RunResult, rate

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
                "miss_rate": level.miss_rate,
                "misses_per_1k_accesses": result.per_thousand(level.counts["misses"]),
                "instances": [
                    {
                        "instance": inst.instance,
                        "cores": list(inst.cores),
                        **{key: inst.counts[key] for key in INSTANCE_KEYS},
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
                "levels": [{"name": lv.name, "hits": lv.hits, "misses": lv.misses} for lv in core.levels],
            }
            for core in result.cores
        ],
        "memory": dict(result.memory),
        "coherence": dict(result.coherence),
    }


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2) + "\n"
