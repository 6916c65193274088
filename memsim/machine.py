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
COUNTINGS = ("memsim", "cachegrind")  # docs/engine.md; docs/cachegrind.md


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


CACHEGRIND_MIN_LINE_SIZE = 16  # cg_arch.c rejects smaller lines (an instruction could cover three)


@dataclass(frozen=True)
class Misfit:
    """Why a machine cannot be counted the Cachegrind way: where (``level``, and ``cache``, the
    index within the level; None for the machine or the whole level), the key at fault, and why."""

    level: int | None
    cache: int | None
    key: str
    message: str


def cachegrind_misfits(machine: Machine) -> list[Misfit]:
    """What ``counting: cachegrind`` cannot reproduce exactly in this machine (docs/cachegrind.md,
    "Machines"): Cachegrind simulates a split first level and unified levels below it, each a
    write-allocate true-LRU cache with a power-of-two set count, lines of at least 16 bytes, and
    no cache of a single line (cachegrind/cg_arch.c, check_cache)."""
    misfits = []
    if machine.line_size < CACHEGRIND_MIN_LINE_SIZE:
        misfits.append(Misfit(None, None, "line_size", (
            f"Cachegrind needs lines of at least {CACHEGRIND_MIN_LINE_SIZE} bytes, found {machine.line_size}")))
    if len(machine.levels[0]) != 2:
        misfits.append(Misfit(0, None, "split", (
            "Cachegrind's first level is split into an instruction and a data cache "
            "(`- split: [{...serves: instructions}, {...serves: data}]`)")))
    if len(machine.levels) < 2:
        misfits.append(Misfit(None, None, "levels", (
            "Cachegrind has a unified last level below the split first level; add one")))
    for i, level in enumerate(machine.levels):
        if i > 0 and len(level) == 2:
            misfits.append(Misfit(i, None, "split", (
                "Cachegrind splits only the first level; the levels below it are unified")))
        for j, cache in enumerate(level):
            misfits += [Misfit(i, j, key, why) for key, why in _cachegrind_cache_misfits(cache)]
    return misfits


def describe_misfit(machine: Machine, misfit: Misfit) -> str:
    """``levels[1].replacement (L2): why`` (split halves numbered instructions first)."""
    if misfit.level is None:
        return f"{misfit.key}: {misfit.message}"
    if misfit.cache is None:
        return f"levels[{misfit.level}]: {misfit.message}"
    level = machine.levels[misfit.level]
    path = f"levels[{misfit.level}]" + (f".split[{misfit.cache}]" if len(level) == 2 else "")
    return f"{path}.{misfit.key} ({level[misfit.cache].name}): {misfit.message}"


def _cachegrind_cache_misfits(cache: Cache) -> list[tuple[str, str]]:
    """(key, why) for each setting of one cache that Cachegrind's caches cannot have."""
    found = []
    if cache.replacement != "lru":
        found.append(("replacement", f"Cachegrind's caches are true LRU, this one is {cache.replacement}"))
    if not cache.write_allocate:
        found.append(("write_allocate", "Cachegrind's caches allocate on a write miss (write_allocate: true)"))
    if cache.write != "back":
        found.append(("write", "Cachegrind counts no write traffic, so it has no write-through caches (write: back)"))
    if cache.inclusion != "nine":
        found.append(("inclusion", f"Cachegrind's levels are independent (nine), this one is {cache.inclusion}"))
    if cache.sets & (cache.sets - 1):
        found.append(("sets", f"Cachegrind simulates power-of-two set counts only, this cache has {cache.sets}"))
    elif cache.sets * cache.ways == 1:
        found.append(("sets", "Cachegrind rejects a cache of a single line (size <= line size)"))
    return found
