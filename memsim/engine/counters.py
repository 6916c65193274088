"""Counter layouts shared by the jitted engine, the result objects and the reference model.

Counters are plain int64 arrays indexed by these named positions; rates are derived only when a
report is made.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# per cache instance: counts[instance, CACHE_*]
CACHE_COUNTERS = (
    "accesses",
    "hits",
    "misses",
    "evictions",
    "writebacks",
    "writebacks_in",
    "fills",
    "back_invalidations",
)
(
    C_ACCESSES,
    C_HITS,
    C_MISSES,
    C_EVICTIONS,
    C_WRITEBACKS,
    C_WRITEBACKS_IN,
    C_FILLS,
    C_BACK_INVALIDATIONS,
) = range(len(CACHE_COUNTERS))

# per core: core[core, CORE_*]
CORE_COUNTERS = ("accesses", "cycles")
K_ACCESSES, K_CYCLES = range(len(CORE_COUNTERS))

# per core and cache spec (a level, or one half of a split level): core_level[core, spec, HM_*]
HM_HITS, HM_MISSES = 0, 1

MEMORY_COUNTERS = ("reads", "writes")
M_READS, M_WRITES = range(len(MEMORY_COUNTERS))

COHERENCE_COUNTERS = ("invalidations", "upgrades", "c2c_transfers")
H_INVALIDATIONS, H_UPGRADES, H_C2C = range(len(COHERENCE_COUNTERS))


@dataclass
class Counters:
    """Every counter of one replay. Instances are ordered as ``Machine.caches`` (top level first,
    instructions before data in a split level), then by instance number within a spec."""

    cache: np.ndarray  # int64 [n_instances, len(CACHE_COUNTERS)]
    core: np.ndarray  # int64 [cores, len(CORE_COUNTERS)]
    core_level: np.ndarray  # int64 [cores, n_specs, 2]
    memory: np.ndarray  # int64 [len(MEMORY_COUNTERS)]
    coherence: np.ndarray  # int64 [len(COHERENCE_COUNTERS)]

    @classmethod
    def zeros(cls, n_instances: int, cores: int, n_specs: int) -> "Counters":
        return cls(
            cache=np.zeros((n_instances, len(CACHE_COUNTERS)), np.int64),
            core=np.zeros((cores, len(CORE_COUNTERS)), np.int64),
            core_level=np.zeros((cores, n_specs, 2), np.int64),
            memory=np.zeros(len(MEMORY_COUNTERS), np.int64),
            coherence=np.zeros(len(COHERENCE_COUNTERS), np.int64),
        )

    def as_dict(self) -> dict[str, np.ndarray]:
        return {
            "cache": self.cache,
            "core": self.core,
            "core_level": self.core_level,
            "memory": self.memory,
            "coherence": self.coherence,
        }
