"""The resolved machine: validated, frozen description of a cache hierarchy.

Parsing and validation live in ``memsim.formats.machine_file``; the engine turns a
``Machine`` into flat arrays in ``memsim.models.hierarchy``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

REPLACEMENTS = ("lru", "plru", "fifo", "random", "srrip")
WRITE_POLICIES = ("back", "through")
INCLUSIONS = ("nine", "inclusive", "exclusive")
SERVES = ("all", "instructions", "data")
PROTOCOLS = ("msi", "mesi", "moesi")
COUNTINGS = ("memsim",)


@dataclass(frozen=True)
class Cache:
    """One cache of a level (a level is one cache, or two when split into I/D)."""

    name: str
    sets: int
    ways: int
    latency: int
    replacement: str = "lru"
    rrpv_bits: int = 2
    write: str = "back"
    write_allocate: bool = True
    shared_by: int = 1  # cores per instance; equals Machine.cores for `all`
    inclusion: str = "nine"
    serves: str = "all"

    def size(self, line_size: int) -> int:
        return self.sets * self.ways * line_size


@dataclass(frozen=True)
class Coherence:
    protocol: str = "mesi"
    c2c_latency: int = 0
    upgrade_latency: int = 0


@dataclass(frozen=True)
class Machine:
    name: str
    cores: int
    line_size: int
    levels: tuple[tuple[Cache, ...], ...]  # per level: one cache, or (instructions, data)
    memory_latency: int
    frequency_ghz: float = 3.0
    seed: int = 0
    coherence: Coherence = field(default_factory=Coherence)
    counting: str = "memsim"
    conflict_shadow: bool = True  # tell capacity from conflict misses (docs/coherence.md, "Miss classes")
    source: str = ""  # where the numbers come from (presets cite their sources)

    @property
    def caches(self) -> tuple[Cache, ...]:
        """Every cache spec, top level first, instructions before data in a split level."""
        return tuple(c for level in self.levels for c in level)
