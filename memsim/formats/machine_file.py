"""Machine files: YAML (or an inline mapping in a trace) -> a validated, frozen ``Machine``.

Every value is read through ``yamlpos`` so a mistake is reported as ``file:line:column``, with the
key path (``levels[1].size``) and what is allowed. Nothing is silently adjusted: geometry that
cannot be simulated is an error. The format is documented in docs/machine-format.md; the
structural rules come from docs/engine.md ("The hierarchy").
"""
from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from pathlib import Path
from typing import Any

from memsim.errors import UserError
from memsim.formats import yamlpos
from memsim.formats.yamlpos import type_name, where
from memsim.machine import (
    COUNTINGS,
    INCLUSIONS,
    PROTOCOLS,
    REPLACEMENTS,
    SERVES,
    WRITE_POLICIES,
    Cache,
    Coherence,
    Machine,
    cachegrind_misfits,
    describe_misfit,
)

FORMAT_VERSION = 1
DEFAULT_MACHINE = "intel-golden-cove"  # the preset a trace without `machine:` runs on

MACHINE_KEYS = (
    "memsim", "name", "source", "cores", "line_size", "frequency_ghz", "seed",
    "levels", "memory", "coherence", "counting", "conflict_shadow",
)
CACHE_KEYS = (
    "name", "size", "assoc", "sets", "ways", "latency", "replacement", "rrpv_bits", "write",
    "write_allocate", "shared_by", "inclusion", "serves",
)
MEMORY_KEYS = ("latency",)
COHERENCE_KEYS = ("protocol", "c2c_latency", "upgrade_latency")

# Limits of what the engine can sensibly hold; beyond them a run would exhaust memory or crawl.
MAX_CORES = 1024
MAX_LINE_SIZE = 1 << 20
MAX_WAYS = 1 << 16  # a lookup scans every way of a set
MAX_PLRU_WAYS = 64  # the kernel packs a set's PLRU tree (ways - 1 bits) into one int64
MAX_TOTAL_LINES = 1 << 28  # tag + state + replacement arrays over all cache instances
MAX_SEED = (1 << 32) - 1
RRPV_BITS = (1, 8)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


class _Reader:
    """Reads one machine mapping; ``label`` stands in for positions a plain dict lacks."""

    def __init__(self, label: str):
        self.label = label

    def at(self, container: Any, key: Any = None) -> str:
        return where(container, key) or where(container) or self.label

    def key_at(self, mapping: Any, key: str) -> str:
        marks = getattr(mapping, "key_marks", {})
        return str(marks[key]) if key in marks else self.at(mapping)

    def mapping(self, value: Any, path: str, at: str, allowed, required=()) -> dict:
        if not isinstance(value, dict):
            raise UserError(f"{path} must be a mapping, found {type_name(value)}", at)
        self.check_keys(value, path, allowed, required)
        return value

    def check_keys(self, mapping: dict, path: str, allowed, required=()) -> None:
        for key in mapping:
            if key not in allowed:
                raise UserError(
                    f"unknown key {_join(path, key)!r}{_suggest(key, allowed)}",
                    self.key_at(mapping, key),
                )
        for key in required:
            if key not in mapping:
                raise UserError(f"missing key {_join(path, key)!r}", self.at(mapping))

    def get(self, mapping: dict, key: str, path: str, read, default: Any = ..., **kw: Any) -> Any:
        if key not in mapping:
            if default is ...:
                raise UserError(f"missing key {_join(path, key)!r}", self.at(mapping))
            return default
        return read(mapping[key], _join(path, key), self.at(mapping, key), **kw)


def _suggest(word: Any, allowed) -> str:
    """yamlpos.suggest, plus a unique prefix match (`c2c` -> `c2c_latency`) difflib misses."""
    allowed = list(allowed)
    if yamlpos.closest(word, allowed) is None:
        longer = [a for a in allowed if a.startswith(str(word))]
        if len(longer) == 1:
            return f" (did you mean {longer[0]!r}?); allowed: {', '.join(allowed)}"
    return yamlpos.suggest(word, allowed)


def _cycles(value: Any, what: str, at: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        found = str(value) if isinstance(value, int) and not isinstance(value, bool) else type_name(value)
        raise UserError(f"{what} must be a whole number of cycles (an integer >= 0), found {found}", at)
    return value


def _name(value: Any, what: str, at: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{what} must be a non-empty string, found {type_name(value)}", at)
    return value


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _version(m: dict, path: str, r: _Reader, required: bool) -> None:
    if "memsim" not in m:
        if required:
            raise UserError(
                f"missing key {_join(path, 'memsim')!r}: a machine file starts with `memsim: 1` "
                "(the format version)",
                r.at(m),
            )
        return
    v, at = m["memsim"], r.at(m, "memsim")
    if isinstance(v, bool) or not isinstance(v, int):
        raise UserError(f"{_join(path, 'memsim')} (the format version) must be the integer 1, found {type_name(v)}", at)
    if v != FORMAT_VERSION:
        raise UserError(f"format version {v} is not supported; this memsim reads version {FORMAT_VERSION}", at)


def _shared_by(value: Any, what: str, at: str, cores: int) -> int:
    divisors = [d for d in range(1, cores + 1) if cores % d == 0]
    shown = ", ".join(map(str, divisors[:12])) + (", ..." if len(divisors) > 12 else "")
    allowed = f"allowed: `all` or a divisor of cores ({cores}): {shown}"
    if value == "all":
        return cores
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{what} must be the number of cores per instance, found {type_name(value)}; {allowed}", at)
    if value < 1 or cores % value:
        raise UserError(f"{what} is {value}, which does not divide cores ({cores}); {allowed}", at)
    return value


def _assoc(value: Any, what: str, at: str) -> int | str:
    if value == "full":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(
            f"{what} must be a number of ways (an integer >= 1) or `full`, found {type_name(value)}", at
        )
    return value


def _geometry(c: dict, path: str, line_size: int, r: _Reader) -> tuple[int, int]:
    """(sets, ways) from `size` + `assoc` or `sets` + `ways`."""
    by_size = [k for k in ("size", "assoc") if k in c]
    by_sets = [k for k in ("sets", "ways") if k in c]
    if by_size and by_sets:
        raise UserError(
            f"{path}: give either size + assoc or sets + ways, not both "
            f"(found {', '.join(by_size + by_sets)})",
            r.key_at(c, by_sets[0]),
        )
    if not by_size and not by_sets:
        raise UserError(
            f"{path}: missing the cache geometry; give size + assoc (e.g. size: 32KiB, assoc: 8, "
            "or assoc: full) or sets + ways",
            r.at(c),
        )
    if by_sets:
        sets = r.get(c, "sets", path, yamlpos.as_int, minimum=1)
        ways = r.get(c, "ways", path, yamlpos.as_int, minimum=1)
    else:
        size = r.get(c, "size", path, yamlpos.as_size)
        assoc = r.get(c, "assoc", path, _assoc)
        at = r.at(c, "size")
        if assoc == "full":
            if size % line_size:
                raise UserError(
                    f"{path}.size ({size} bytes) is not a whole number of lines: size / line_size = "
                    f"{size} / {line_size} = {size / line_size:g}; it must be a multiple of {line_size}",
                    at,
                )
            sets, ways = 1, size // line_size
        else:
            per_set = assoc * line_size
            if size % per_set:
                raise UserError(
                    f"{path}.size ({size} bytes) does not divide into whole sets: "
                    f"size / (assoc * line_size) = {size} / ({assoc} * {line_size}) = {size / per_set:g}; "
                    f"the size must be a multiple of {per_set} bytes",
                    at,
                )
            sets, ways = size // per_set, assoc
    if ways > MAX_WAYS:
        key = "ways" if by_sets else "assoc"
        raise UserError(
            f"{path} has {ways} ways, too many to simulate (every lookup scans a whole set); "
            f"the limit is {MAX_WAYS}",
            r.at(c, key),
        )
    return sets, ways


def _cache(c: Any, path: str, at: str, cores: int, line_size: int, in_split: bool, r: _Reader) -> tuple[Cache, str | None]:
    """One cache spec; also returns the `serves` the file gave (None when omitted)."""
    c = r.mapping(c, path, at, CACHE_KEYS)
    name = r.get(c, "name", path, _name)
    sets, ways = _geometry(c, path, line_size, r)
    latency = r.get(c, "latency", path, _cycles)
    replacement = r.get(c, "replacement", path, yamlpos.as_choice, "lru", choices=REPLACEMENTS)
    if replacement == "plru" and (not _power_of_two(ways) or ways > MAX_PLRU_WAYS):
        raise UserError(
            f"{path}.replacement: plru needs a power-of-two number of ways, at most {MAX_PLRU_WAYS} "
            f"(the tree is packed into a 64-bit integer); this cache has {ways} ways. "
            f"Use lru, fifo, random or srrip, or change the associativity",
            r.at(c, "replacement"),
        )
    if "rrpv_bits" in c and replacement != "srrip":
        raise UserError(
            f"{path}.rrpv_bits applies only to replacement: srrip (this cache uses {replacement})",
            r.key_at(c, "rrpv_bits"),
        )
    rrpv_bits = r.get(c, "rrpv_bits", path, yamlpos.as_int, 2, minimum=RRPV_BITS[0], maximum=RRPV_BITS[1])
    write = r.get(c, "write", path, yamlpos.as_choice, "back", choices=WRITE_POLICIES)
    write_allocate = r.get(c, "write_allocate", path, yamlpos.as_bool, True)
    shared_by = r.get(c, "shared_by", path, _shared_by, 1, cores=cores)
    inclusion = r.get(c, "inclusion", path, yamlpos.as_choice, "nine", choices=INCLUSIONS)
    serves = r.get(c, "serves", path, yamlpos.as_choice, None, choices=SERVES)
    if in_split and serves == "all":
        raise UserError(
            f"{path}.serves: a cache inside split serves instructions or data, not all", r.at(c, "serves")
        )
    if not in_split and serves not in (None, "all"):
        raise UserError(
            f"{path}.serves: {serves} is only allowed inside a split level "
            "(`- split: [{...serves: instructions}, {...serves: data}]`); a unified level serves all",
            r.at(c, "serves"),
        )
    cache = Cache(
        name=name, sets=sets, ways=ways, latency=latency, replacement=replacement,
        rrpv_bits=rrpv_bits, write=write, write_allocate=write_allocate, shared_by=shared_by,
        inclusion=inclusion, serves=serves or "all",
    )
    return cache, serves


def _split(item: dict, path: str, cores: int, line_size: int, r: _Reader) -> tuple[list, list, list]:
    """A split level: caches ordered (instructions, data), with their mappings and key paths."""
    r.check_keys(item, path, ("split",))
    spath, pair = f"{path}.split", item["split"]
    at = r.at(item, "split")
    if not isinstance(pair, list) or len(pair) != 2:
        found = f"{len(pair)} items" if isinstance(pair, list) else type_name(pair)
        raise UserError(
            f"{spath} must be a list of exactly two caches (one serves instructions, one serves data), "
            f"found {found}",
            at,
        )
    parsed = [_cache(c, f"{spath}[{j}]", r.at(pair, j), cores, line_size, True, r) for j, c in enumerate(pair)]
    given = [serves for _, serves in parsed]
    if given[0] is None and given[1] is None:
        given = ["instructions", "data"]  # the documented order: [instruction cache, data cache]
    elif given[0] is None or given[1] is None:
        known = given[0] or given[1]
        other = "data" if known == "instructions" else "instructions"
        given = [g or other for g in given]
    elif given[0] == given[1]:
        raise UserError(
            f"{spath}: the two caches of a split level must serve instructions and data, one each; "
            f"both serve {given[0]}",
            r.at(pair[1], "serves"),
        )
    caches = [dataclasses.replace(c, serves=s) for (c, _), s in zip(parsed, given)]
    order = [0, 1] if given[0] == "instructions" else [1, 0]
    return [caches[k] for k in order], [pair[k] for k in order], [f"{spath}[{k}]" for k in order]


def _levels(value: Any, path: str, at: str, cores: int, line_size: int, r: _Reader) -> tuple[tuple, list, list]:
    """The levels, with the mapping each cache came from and its key path (per level)."""
    if not isinstance(value, list) or not value:
        found = "an empty list" if isinstance(value, list) else type_name(value)
        raise UserError(f"{path} must be a non-empty list of caches (top level first), found {found}", at)
    levels: list[tuple[Cache, ...]] = []
    sources: list[list[dict]] = []  # the mapping each cache came from, for positions below
    paths: list[list[str]] = []
    for i, item in enumerate(value):
        ipath, iat = f"{path}[{i}]", r.at(value, i)
        if isinstance(item, dict) and "split" in item:
            caches, maps, cpaths = _split(item, ipath, cores, line_size, r)
        else:
            cache, _ = _cache(item, ipath, iat, cores, line_size, False, r)
            caches, maps, cpaths = [cache], [item], [ipath]
        levels.append(tuple(caches))
        sources.append(maps)
        paths.append(cpaths)
    _check_structure(levels, sources, paths, path, value, cores, r)
    return tuple(levels), sources, paths


def _check_structure(levels, sources, paths, path, value, cores, r: _Reader) -> None:
    """The rules of docs/engine.md "The hierarchy", which make the caches a tree."""
    seen: dict[str, str] = {}
    for i, level in enumerate(levels):
        for cache, src, cpath in zip(level, sources[i], paths[i]):
            if cache.name in seen:
                raise UserError(
                    f"{cpath}.name: duplicate cache name {cache.name!r} ({seen[cache.name]} has it too); "
                    "cache names must be unique",
                    r.at(src, "name"),
                )
            seen[cache.name] = cpath
    for i, level in enumerate(levels):
        if len(level) == 2:
            unified = [j for j in range(i) if len(levels[j]) == 1]
            if unified:
                j = unified[0]
                raise UserError(
                    f"{path}[{i}] is split but {path}[{j}] ({levels[j][0].name}) above it is unified; "
                    "split levels must come first: once a level is unified, every level below it is unified",
                    r.at(value, i),
                )
    for cache, src, cpath in zip(levels[0], sources[0], paths[0]):
        if cache.inclusion == "exclusive":
            raise UserError(
                f"{cpath}.inclusion: the first level cannot be exclusive (an exclusive cache only takes "
                "the victims of the level above it); allowed here: nine, inclusive",
                r.at(src, "inclusion"),
            )
    for i in range(1, len(levels)):
        for cache, src, cpath in zip(levels[i], sources[i], paths[i]):
            for j in range(i):
                for above, apath in zip(levels[j], paths[j]):
                    if cache.shared_by % above.shared_by:
                        raise UserError(
                            f"{cpath}.shared_by ({cache.shared_by}) must be a multiple of the shared_by of "
                            f"every cache above it, so that the caches form a tree; {apath} "
                            f"({above.name}) has shared_by {above.shared_by}",
                            r.at(src, "shared_by"),
                        )
    per_cache = [(cores // c.shared_by * c.sets * c.ways, c.name) for level in levels for c in level]
    total = sum(n for n, _ in per_cache)
    if total > MAX_TOTAL_LINES:
        biggest, name = max(per_cache)
        raise UserError(
            f"{path}: the caches hold {total:,} lines in total over all their instances ({name}: "
            f"{biggest:,}), too many to simulate; the limit is {MAX_TOTAL_LINES:,} (2^28) lines",
            r.at(value),
        )


def _memory(value: Any, path: str, at: str, r: _Reader) -> int:
    m = r.mapping(value, path, at, MEMORY_KEYS, required=("latency",))
    return r.get(m, "latency", path, _cycles)


def _coherence(m: dict, path: str, levels, memory_latency: int, r: _Reader) -> Coherence:
    # c2c and upgrades default to plausible costs rather than 0, so false sharing is never free.
    defaults = {"c2c_latency": memory_latency, "upgrade_latency": levels[-1][0].latency}
    if "coherence" not in m:
        return Coherence(protocol="mesi", **defaults)
    cpath = _join(path, "coherence")
    c = r.mapping(m["coherence"], cpath, r.at(m, "coherence"), COHERENCE_KEYS)
    return Coherence(
        protocol=r.get(c, "protocol", cpath, yamlpos.as_choice, "mesi", choices=PROTOCOLS),
        c2c_latency=r.get(c, "c2c_latency", cpath, _cycles, defaults["c2c_latency"]),
        upgrade_latency=r.get(c, "upgrade_latency", cpath, _cycles, defaults["upgrade_latency"]),
    )


def _counting(value: Any, what: str, at: str) -> str:
    return yamlpos.as_choice(value, what, at, COUNTINGS)


CANNOT_MODEL = "counting: cachegrind reproduces Cachegrind exactly and cannot model this (docs/cachegrind.md)"


def _check_counting(machine: Machine, m: dict, path: str, sources: list, paths: list, r: _Reader) -> None:
    """The first thing ``counting: cachegrind`` cannot model, with its key path and position."""
    if machine.counting != "cachegrind":
        return
    misfits = cachegrind_misfits(machine)
    if not misfits:
        return
    misfit = misfits[0]
    if misfit.level is None:
        key_path, at = _join(path, misfit.key), r.at(m, misfit.key) if misfit.key in m else r.at(m)
    elif misfit.cache is None:
        key_path, at = f"{_join(path, 'levels')}[{misfit.level}]", r.at(m["levels"], misfit.level)
    else:
        src = sources[misfit.level][misfit.cache]
        name = machine.levels[misfit.level][misfit.cache].name
        key = "size" if misfit.key == "sets" and "sets" not in src else misfit.key  # size + assoc given
        key_path = f"{paths[misfit.level][misfit.cache]}.{key} ({name})"
        at = r.at(src, key) if key in src else r.at(src)
    raise UserError(f"{key_path}: {misfit.message}; {CANNOT_MODEL}", at)


def with_counting(machine: Machine, counting: str, where: str) -> Machine:
    """``machine`` with another counting (a command-line override), validated as a machine file's
    `counting:` would be; ``where`` names the option in messages."""
    counting = _counting(counting, "counting", where)
    if counting == "cachegrind":
        misfits = cachegrind_misfits(machine)
        if misfits:
            raise UserError(
                f"machine {machine.name!r}: {describe_misfit(machine, misfits[0])}; {CANNOT_MODEL}", where
            )
    return dataclasses.replace(machine, counting=counting)


def machine_from_mapping(m: Any, file_label: str, *, require_version: bool = True, path: str = "") -> Machine:
    """Validate a machine mapping (a machine file's content, or a trace's inline `machine:`).

    ``require_version``: a machine file must say ``memsim: 1``; an inline mapping may omit it.
    ``path`` prefixes key paths in messages (``machine`` for an inline mapping).
    """
    r = _Reader(file_label)
    if m is None:
        raise UserError("the machine description is empty; expected a mapping starting with `memsim: 1`", file_label)
    if not isinstance(m, dict):
        raise UserError(
            f"{path or 'a machine file'} must be a mapping (memsim: 1, name: ..., cores: ..., levels: ...), "
            f"found {type_name(m)}",
            r.at(m),
        )
    _version(m, path, r, require_version)
    r.check_keys(m, path, MACHINE_KEYS)
    for key in ("name", "cores", "levels", "memory"):
        if key not in m:
            raise UserError(f"missing key {_join(path, key)!r}", r.at(m))
    name = r.get(m, "name", path, _name)
    source = r.get(m, "source", path, yamlpos.as_str, "")
    cores = r.get(m, "cores", path, yamlpos.as_int, minimum=1, maximum=MAX_CORES)
    line_size = r.get(m, "line_size", path, yamlpos.as_int, 64, minimum=1, maximum=MAX_LINE_SIZE)
    if not _power_of_two(line_size):
        below = 1 << (line_size.bit_length() - 1)
        raise UserError(
            f"{_join(path, 'line_size')} must be a power of two (e.g. 32, 64, 128), found {line_size} "
            f"(nearest: {below} or {below * 2})",
            r.at(m, "line_size"),
        )
    frequency = r.get(m, "frequency_ghz", path, yamlpos.as_number, 3.0)
    seed = r.get(m, "seed", path, yamlpos.as_int, 0, minimum=0, maximum=MAX_SEED)
    counting = r.get(m, "counting", path, _counting, "memsim")
    conflict_shadow = r.get(m, "conflict_shadow", path, yamlpos.as_bool, True)
    levels, sources, paths = _levels(m["levels"], _join(path, "levels"), r.at(m, "levels"), cores, line_size, r)
    memory_latency = _memory(m["memory"], _join(path, "memory"), r.at(m, "memory"), r)
    coherence = _coherence(m, path, levels, memory_latency, r)
    machine = Machine(
        name=name, cores=cores, line_size=line_size, levels=levels, memory_latency=memory_latency,
        frequency_ghz=frequency, seed=seed, coherence=coherence, counting=counting, source=source,
        conflict_shadow=conflict_shadow,
    )
    _check_counting(machine, m, path, sources, paths, r)
    return machine


def load_machine_file(path: str | Path, display: str | None = None) -> Machine:
    """Read and validate a machine file; ``display`` is its name in messages (default: as given)."""
    label = display or str(path)
    return machine_from_mapping(yamlpos.load(path, label), label)


def preset_names() -> list[str]:
    """The machine presets shipped in configs/ (the package ``memsim.configs``), sorted."""
    root = resources.files("memsim.configs")
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


@functools.lru_cache(maxsize=None)
def _preset(name: str) -> Machine:
    label = f"configs/{name}.yaml"
    text = resources.files("memsim.configs").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return machine_from_mapping(yamlpos.parse(text, label), label)


def load_preset(name: str, at: str | None = None) -> Machine:
    """A preset by name; ``at`` is where the name was written (for the unknown-name error)."""
    names = preset_names()
    if name not in names:
        raise UserError(
            f"unknown machine preset {name!r}{yamlpos.suggest(name, names)} "
            "(or give a path to a machine file ending in .yaml)",
            at,
        )
    return _preset(name)


def resolve_machine(spec: Any, base_dir: str | Path, at: str | None) -> Machine:
    """A trace's `machine:` value: a preset name, a path relative to ``base_dir``, or a mapping."""
    if isinstance(spec, dict):
        return machine_from_mapping(spec, at or "machine", require_version=False, path="machine")
    if isinstance(spec, str) and spec.strip():
        if spec.endswith((".yaml", ".yml")) or "/" in spec or "\\" in spec:
            file = Path(base_dir) / spec
            if not file.is_file():
                raise UserError(f"machine file {spec!r} not found (looked for {file})", at)
            return load_machine_file(file)
        return load_preset(spec, at)
    raise UserError(
        "machine must be a preset name, a path to a machine file (.yaml), or a mapping; "
        f"found {type_name(spec)}; presets: {', '.join(preset_names())}",
        at,
    )


def _cache_dict(c: Cache, m: Machine) -> dict:
    return {
        "name": c.name,
        "serves": c.serves,
        "size": c.size(m.line_size),
        "sets": c.sets,
        "ways": c.ways,
        "assoc": c.ways,
        "line_size": m.line_size,
        "latency": c.latency,
        "replacement": c.replacement,
        "rrpv_bits": c.rrpv_bits,
        "write": c.write,
        "write_allocate": c.write_allocate,
        "shared_by": c.shared_by,
        "instances": m.cores // c.shared_by,
        "inclusion": c.inclusion,
    }


def machine_mapping(machine: Machine) -> dict:
    """``machine`` as a machine file's content that ``machine_from_mapping`` reads back to it, in
    the form a sweep edits (docs/sweep.md): each cache by ``size`` + ``assoc`` (``full`` for one
    set) and a cache shared by every core as ``shared_by: all``, so that changing ``line_size`` keeps
    the capacities and changing ``cores`` keeps what is private and what is shared."""

    def cache(c: Cache, in_split: bool) -> dict:
        entry = {"name": c.name, "size": c.size(machine.line_size), "assoc": "full" if c.sets == 1 else c.ways,
                 "latency": c.latency, "replacement": c.replacement, "write": c.write,
                 "write_allocate": c.write_allocate,
                 "shared_by": "all" if c.shared_by == machine.cores else c.shared_by, "inclusion": c.inclusion}
        if c.replacement == "srrip":
            entry["rrpv_bits"] = c.rrpv_bits
        if in_split:
            entry["serves"] = c.serves
        return entry

    return {
        "memsim": 1, "name": machine.name, "source": machine.source, "cores": machine.cores,
        "line_size": machine.line_size, "frequency_ghz": machine.frequency_ghz, "seed": machine.seed,
        "counting": machine.counting, "conflict_shadow": machine.conflict_shadow,
        "levels": [{"split": [cache(c, True) for c in level]} if len(level) == 2 else cache(level[0], False)
                   for level in machine.levels],
        "memory": {"latency": machine.memory_latency},
        "coherence": {"protocol": machine.coherence.protocol, "c2c_latency": machine.coherence.c2c_latency,
                      "upgrade_latency": machine.coherence.upgrade_latency},
    }


def machine_to_dict(machine: Machine) -> dict:
    """The resolved machine as echoed in JSON reports: every field explicit, fixed key order."""
    return {
        "name": machine.name,
        "cores": machine.cores,
        "line_size": machine.line_size,
        "frequency_ghz": machine.frequency_ghz,
        "seed": machine.seed,
        "counting": machine.counting,
        "conflict_shadow": machine.conflict_shadow,
        "levels": [
            {"split": [_cache_dict(c, machine) for c in level]} if len(level) == 2 else _cache_dict(level[0], machine)
            for level in machine.levels
        ],
        "memory": {"latency": machine.memory_latency},
        "coherence": {
            "protocol": machine.coherence.protocol,
            "c2c_latency": machine.coherence.c2c_latency,
            "upgrade_latency": machine.coherence.upgrade_latency,
        },
        "source": machine.source,
    }
