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

# misses by class (docs/coherence.md, "Miss classes"), per cache instance: cache_classes[instance, MC_*],
# and per core and spec: core_classes[core, spec, MC_*]
MISS_CLASSES = ("cold", "capacity", "conflict", "coherence")
MC_COLD, MC_CAPACITY, MC_CONFLICT, MC_COHERENCE = range(len(MISS_CLASSES))

MEMORY_COUNTERS = ("reads", "writes")
M_READS, M_WRITES = range(len(MEMORY_COUNTERS))

COHERENCE_COUNTERS = (
    "invalidations",
    "upgrades",
    "c2c_transfers",
    "false_sharing_misses",
    "true_sharing_misses",
    "false_sharing_misses_at_miss",
    "true_sharing_misses_at_miss",
)
(
    H_INVALIDATIONS,
    H_UPGRADES,
    H_C2C,
    H_FALSE_SHARING,
    H_TRUE_SHARING,
    H_FALSE_SHARING_AT_MISS,
    H_TRUE_SHARING_AT_MISS,
) = range(len(COHERENCE_COUNTERS))

# One row per line with coherence activity (docs/coherence.md, "The sharing table"): these
# columns, then per core CORE_SHARING_COLUMNS followed by the core's read and write byte masks
# (``mask_words(line_size)`` int64 words each, bit b of word w = byte 64 * w + b of the line).
SHARING_COLUMNS = ("line", "false_sharing_misses", "true_sharing_misses", "false_sharing_misses_at_miss",
                   "true_sharing_misses_at_miss", "c2c_transfers", "stall_cycles")
S_LINE, S_FALSE, S_TRUE, S_FALSE_AT_MISS, S_TRUE_AT_MISS, S_C2C, S_STALL = range(len(SHARING_COLUMNS))
CORE_SHARING_COLUMNS = ("reads", "writes")
SC_READS, SC_WRITES = range(len(CORE_SHARING_COLUMNS))


def mask_words(line_size: int) -> int:
    """int64 words in a byte mask of one line."""
    return max(1, line_size // 64)


def core_sharing_width(line_size: int) -> int:
    """Columns per core in a sharing row: the counts, then the read mask, then the write mask."""
    return len(CORE_SHARING_COLUMNS) + 2 * mask_words(line_size)


def sharing_width(cores: int, line_size: int) -> int:
    return len(SHARING_COLUMNS) + cores * core_sharing_width(line_size)


@dataclass
class Counters:
    """Every counter of one replay. Instances are ordered as ``Machine.caches`` (top level first,
    instructions before data in a split level), then by instance number within a spec."""

    cache: np.ndarray  # int64 [n_instances, len(CACHE_COUNTERS)]
    core: np.ndarray  # int64 [cores, len(CORE_COUNTERS)]
    core_level: np.ndarray  # int64 [cores, n_specs, 2]
    memory: np.ndarray  # int64 [len(MEMORY_COUNTERS)]
    coherence: np.ndarray  # int64 [len(COHERENCE_COUNTERS)]
    cache_classes: np.ndarray  # int64 [n_instances, len(MISS_CLASSES)]
    core_classes: np.ndarray  # int64 [cores, n_specs, len(MISS_CLASSES)]
    sharing: np.ndarray  # int64 [lines with coherence activity, sharing_width], sorted by line

    @classmethod
    def zeros(cls, n_instances: int, cores: int, n_specs: int, line_size: int = 64) -> "Counters":
        return cls(
            cache=np.zeros((n_instances, len(CACHE_COUNTERS)), np.int64),
            core=np.zeros((cores, len(CORE_COUNTERS)), np.int64),
            core_level=np.zeros((cores, n_specs, 2), np.int64),
            memory=np.zeros(len(MEMORY_COUNTERS), np.int64),
            coherence=np.zeros(len(COHERENCE_COUNTERS), np.int64),
            cache_classes=np.zeros((n_instances, len(MISS_CLASSES)), np.int64),
            core_classes=np.zeros((cores, n_specs, len(MISS_CLASSES)), np.int64),
            sharing=np.zeros((0, sharing_width(cores, line_size)), np.int64),
        )

    def as_dict(self) -> dict[str, np.ndarray]:
        return {
            "cache": self.cache,
            "core": self.core,
            "core_level": self.core_level,
            "memory": self.memory,
            "coherence": self.coherence,
            "cache_classes": self.cache_classes,
            "core_classes": self.core_classes,
            "sharing": self.sharing,
        }
