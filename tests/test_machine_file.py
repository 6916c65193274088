"""Machine files: every validation error (message and file:line:column) and the happy paths."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from memsim.errors import UserError
from memsim.formats import yamlpos
from memsim.formats.machine_file import (
    DEFAULT_MACHINE,
    load_machine_file,
    load_preset,
    machine_from_mapping,
    machine_to_dict,
    preset_names,
    resolve_machine,
)
from memsim.machine import Cache, Coherence, Machine

PRESETS = ["amd-zen4-ccx", "apple-m1-firestorm", "cachegrind", "example-4c", "intel-golden-cove", "teaching"]
CONFIGS = Path(__file__).resolve().parent.parent / "configs"

L1 = "  - {name: L1, size: 32KiB, assoc: 8, latency: 4}"
L2 = "  - {name: L2, size: 256KiB, assoc: 8, latency: 12, shared_by: all}"


def text(levels: str = L1 + "\n" + L2, extra: str = "", cores: int = 4, head: str = "memsim: 1\n") -> str:
    return f"{head}name: t\ncores: {cores}\n{extra}levels:\n{levels}\nmemory: {{latency: 100}}\n"


def pos(source: str, needle: str, before: str = "") -> str:
    """line:column (1-based) of ``needle`` where it follows ``before`` (both must be unique)."""
    assert source.count(before + needle) == 1, f"ambiguous or missing: {before + needle!r}"
    offset = source.index(before + needle) + len(before)
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return f"{line}:{column}"


def write(tmp_path: Path, source: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def fails(tmp_path: Path, source: str, where: str, *fragments: str) -> UserError:
    """Loading ``source`` raises a UserError at ``where`` whose message contains every fragment."""
    path = write(tmp_path, source)
    with pytest.raises(UserError) as info:
        load_machine_file(path)
    err = info.value
    assert err.where == f"{path}:{where}", err
    for fragment in fragments:
        assert fragment in err.message, err.message
    return err


def load(tmp_path: Path, source: str) -> Machine:
    return load_machine_file(write(tmp_path, source))


# --- format version, file shape -----------------------------------------------------------------


def test_version_2_is_rejected(tmp_path):
    s = text(head="memsim: 2\n")
    fails(tmp_path, s, pos(s, "2", "memsim: "), "format version 2 is not supported; this memsim reads version 1")


def test_version_must_be_an_integer(tmp_path):
    s = text(head='memsim: "1"\n')
    fails(tmp_path, s, pos(s, '"1"'), "memsim (the format version) must be the integer 1, found the string '1'")


def test_version_required_in_a_file(tmp_path):
    s = text(head="")
    fails(tmp_path, s, "1:1", "missing key 'memsim'", "memsim: 1")


def test_file_that_is_a_list(tmp_path):
    fails(tmp_path, "- L1\n- L2\n", "1:1", "a machine file must be a mapping", "found a list")


def test_empty_file(tmp_path):
    path = write(tmp_path, "# nothing\n")
    with pytest.raises(UserError) as info:
        load_machine_file(path)
    assert info.value.where == str(path)
    assert "empty" in info.value.message and "memsim: 1" in info.value.message


def test_missing_file(tmp_path):
    with pytest.raises(UserError) as info:
        load_machine_file(tmp_path / "nope.yaml")
    assert info.value.where == str(tmp_path / "nope.yaml")
    assert info.value.message == "file not found"


# --- top-level keys -------------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_closest(tmp_path):
    s = text(extra="line_sise: 64\n")
    fails(tmp_path, s, pos(s, "line_sise"), "unknown key 'line_sise' (did you mean 'line_size'?); allowed: memsim, name")


def test_missing_name(tmp_path):
    s = text().replace("name: t\n", "")
    fails(tmp_path, s, "1:1", "missing key 'name'")


def test_missing_levels(tmp_path):
    s = "memsim: 1\nname: t\ncores: 2\nmemory: {latency: 1}\n"
    fails(tmp_path, s, "1:1", "missing key 'levels'")


def test_missing_memory(tmp_path):
    s = text().replace("memory: {latency: 100}\n", "")
    fails(tmp_path, s, "1:1", "missing key 'memory'")


def test_memory_latency_missing(tmp_path):
    s = text().replace("memory: {latency: 100}", "memory: {}")
    fails(tmp_path, s, pos(s, "{}"), "missing key 'memory.latency'")


def test_memory_unknown_key(tmp_path):
    s = text().replace("memory: {latency: 100}", "memory: {latency: 100, bandwidth: 3}")
    fails(tmp_path, s, pos(s, "bandwidth"), "unknown key 'memory.bandwidth'", "allowed: latency")


def test_cores_zero(tmp_path):
    s = text(cores=0)
    fails(tmp_path, s, pos(s, "0", "cores: "), "cores must be at least 1, found 0")


def test_cores_not_an_integer(tmp_path):
    s = text().replace("cores: 4", "cores: four")
    fails(tmp_path, s, pos(s, "four"), "cores must be an integer, found the string 'four'")


def test_cores_too_many(tmp_path):
    s = text(cores=5000, levels=L1)
    fails(tmp_path, s, pos(s, "5000"), "cores must be at most 1024, found 5000")


@pytest.mark.parametrize("value", [48, 0, 96])
def test_line_size_not_a_power_of_two(tmp_path, value):
    s = text(extra=f"line_size: {value}\n")
    fragment = "line_size must be at least 1" if value == 0 else f"line_size must be a power of two (e.g. 32, 64, 128), found {value}"
    fails(tmp_path, s, pos(s, str(value), "line_size: "), fragment)


def test_frequency_must_be_positive(tmp_path):
    s = text(extra="frequency_ghz: 0\n")
    fails(tmp_path, s, pos(s, "0", "frequency_ghz: "), "frequency_ghz must be positive, found 0")


def test_seed_must_be_non_negative(tmp_path):
    s = text(extra="seed: -3\n")
    fails(tmp_path, s, pos(s, "-3"), "seed must be at least 0, found -3")


def test_counting_cachegrind_needs_a_split_first_level(tmp_path):
    s = text(extra="counting: cachegrind\n")
    fails(tmp_path, s, pos(s, "{name: L1"), "levels[0]: Cachegrind's first level is split into an instruction and a data cache")


def test_counting_unknown(tmp_path):
    s = text(extra="counting: memsym\n")
    fails(tmp_path, s, pos(s, "memsym"), "counting must be one of the allowed values", "(did you mean 'memsim'?); allowed: memsim, cachegrind")


def test_source_must_be_text(tmp_path):
    s = text(extra="source: [a, b]\n")
    fails(tmp_path, s, pos(s, "[a, b]"), "source must be a string, found a list")


# --- levels: shape --------------------------------------------------------------------------------


def test_levels_empty(tmp_path):
    s = text(levels="").replace("levels:\n\n", "levels: []\n")
    fails(tmp_path, s, pos(s, "[]"), "levels must be a non-empty list of caches", "found an empty list")


def test_level_not_a_mapping(tmp_path):
    s = text(levels="  - L1")
    fails(tmp_path, s, pos(s, "L1", "- "), "levels[0] must be a mapping, found the string 'L1'")


def test_unknown_cache_key_suggests_closest(tmp_path):
    s = text(levels="  - {name: L1, sise: 32KiB, assoc: 8, latency: 4}")
    fails(tmp_path, s, pos(s, "sise"), "unknown key 'levels[0].sise' (did you mean 'size'?); allowed: name, size, assoc")


def test_cache_name_missing(tmp_path):
    s = text(levels="  - {size: 32KiB, assoc: 8, latency: 4}")
    fails(tmp_path, s, pos(s, "{size"), "missing key 'levels[0].name'")


def test_cache_latency_missing(tmp_path):
    s = text(levels="  - {name: L1, size: 32KiB, assoc: 8}")
    fails(tmp_path, s, pos(s, "{name"), "missing key 'levels[0].latency'")


@pytest.mark.parametrize("value,found", [("-1", "-1"), ("fast", "the string 'fast'"), ("1.5", "the number 1.5")])
def test_latency_must_be_a_non_negative_integer(tmp_path, value, found):
    s = text(levels=f"  - {{name: L1, size: 32KiB, assoc: 8, latency: {value}}}")
    fails(tmp_path, s, pos(s, value, "latency: "), f"levels[0].latency must be a whole number of cycles (an integer >= 0), found {found}")


def test_memory_latency_negative(tmp_path):
    s = text().replace("memory: {latency: 100}", "memory: {latency: -5}")
    fails(tmp_path, s, pos(s, "-5"), "memory.latency must be a whole number of cycles")


# --- geometry -------------------------------------------------------------------------------------


def test_size_not_whole_sets_shows_the_arithmetic(tmp_path):
    s = text(levels="  - {name: L1, size: 48KiB, assoc: 10, latency: 4}")
    fails(
        tmp_path, s, pos(s, "48KiB"),
        "levels[0].size (49152 bytes) does not divide into whole sets: "
        "size / (assoc * line_size) = 49152 / (10 * 64) = 76.8; the size must be a multiple of 640 bytes",
    )


def test_fully_associative_size_not_whole_lines(tmp_path):
    s = text(levels="  - {name: L1, size: 100, assoc: full, latency: 4}")
    fails(tmp_path, s, pos(s, "100", "size: "), "size / line_size = 100 / 64 = 1.5625; it must be a multiple of 64")


def test_size_with_bad_unit(tmp_path):
    s = text(levels="  - {name: L1, size: 32KB, assoc: 8, latency: 4}")
    fails(tmp_path, s, pos(s, "32KB"), "levels[0].size must be a size in bytes", "KiB/MiB/GiB")


def test_assoc_bad_value(tmp_path):
    s = text(levels="  - {name: L1, size: 32KiB, assoc: fully, latency: 4}")
    fails(tmp_path, s, pos(s, "fully"), "levels[0].assoc must be a number of ways (an integer >= 1) or `full`")


def test_size_and_sets_both_given(tmp_path):
    s = text(levels="  - {name: L1, size: 32KiB, assoc: 8, sets: 64, ways: 8, latency: 4}")
    fails(tmp_path, s, pos(s, "sets"), "levels[0]: give either size + assoc or sets + ways, not both (found size, assoc, sets, ways)")


def test_neither_size_nor_sets(tmp_path):
    s = text(levels="  - {name: L1, latency: 4}")
    fails(tmp_path, s, pos(s, "{name"), "levels[0]: missing the cache geometry; give size + assoc", "or sets + ways")


def test_size_without_assoc(tmp_path):
    s = text(levels="  - {name: L1, size: 32KiB, latency: 4}")
    fails(tmp_path, s, pos(s, "{name"), "missing key 'levels[0].assoc'")


def test_ways_zero(tmp_path):
    s = text(levels="  - {name: L1, sets: 64, ways: 0, latency: 4}")
    fails(tmp_path, s, pos(s, "0", "ways: "), "levels[0].ways must be at least 1, found 0")


def test_too_many_ways(tmp_path):
    s = text(levels="  - {name: F, sets: 1, ways: 70000, latency: 1}", cores=1)
    fails(tmp_path, s, pos(s, "70000"), "levels[0] has 70000 ways, too many to simulate", "the limit is 65536")


def test_too_many_lines_in_total(tmp_path):
    s = text(levels="  - {name: L1, size: 1GiB, assoc: 8, latency: 4}\n  - {name: L2, size: 64GiB, assoc: 16, latency: 9, shared_by: all}")
    fails(
        tmp_path, s, pos(s, "- {name: L1"),
        "levels: the caches hold 1,140,850,688 lines in total over all their instances (L2: 1,073,741,824), "
        "too many to simulate; the limit is 268,435,456 (2^28) lines",
    )


# --- replacement ----------------------------------------------------------------------------------


def test_plru_needs_power_of_two_ways(tmp_path):
    s = text(levels="  - {name: L1, sets: 64, ways: 12, latency: 4, replacement: plru}")
    fails(tmp_path, s, pos(s, "plru"), "plru needs a power-of-two number of ways, at most 64", "this cache has 12 ways")


def test_plru_at_most_64_ways(tmp_path):
    s = text(levels="  - {name: L1, size: 16KiB, assoc: full, latency: 4, replacement: plru}")
    fails(tmp_path, s, pos(s, "plru"), "at most 64 (the tree is packed into a 64-bit integer); this cache has 256 ways")


def test_replacement_unknown(tmp_path):
    s = text(levels="  - {name: L1, size: 32KiB, assoc: 8, latency: 4, replacement: lfu}")
    fails(tmp_path, s, pos(s, "lfu"), "levels[0].replacement must be one of the allowed values", "allowed: lru, plru, fifo, random, srrip")


def test_rrpv_bits_only_for_srrip(tmp_path):
    s = text(levels="  - {name: L1, size: 32KiB, assoc: 8, latency: 4, rrpv_bits: 3}")
    fails(tmp_path, s, pos(s, "rrpv_bits"), "levels[0].rrpv_bits applies only to replacement: srrip (this cache uses lru)")


def test_rrpv_bits_range(tmp_path):
    s = text(levels="  - {name: L1, size: 32KiB, assoc: 8, latency: 4, replacement: srrip, rrpv_bits: 9}")
    fails(tmp_path, s, pos(s, "9", "rrpv_bits: "), "levels[0].rrpv_bits must be at most 8, found 9")


# --- other cache fields ---------------------------------------------------------------------------


def test_write_policy_unknown(tmp_path):
    s = text(levels="  - {name: L1, size: 32KiB, assoc: 8, latency: 4, write: around}")
    fails(tmp_path, s, pos(s, "around"), "levels[0].write must be one of the allowed values", "allowed: back, through")


def test_write_allocate_not_bool(tmp_path):
    s = text(levels="  - {name: L1, size: 32KiB, assoc: 8, latency: 4, write_allocate: sometimes}")
    fails(tmp_path, s, pos(s, "sometimes"), "levels[0].write_allocate must be true or false")


def test_inclusion_unknown(tmp_path):
    s = text(levels=L1 + "\n  - {name: L2, size: 256KiB, assoc: 8, latency: 12, inclusion: inclusiv}")
    fails(tmp_path, s, pos(s, "inclusiv}"), "(did you mean 'inclusive'?); allowed: nine, inclusive, exclusive")


@pytest.mark.parametrize("value", ["3", "0", "8"])
def test_shared_by_must_divide_cores(tmp_path, value):
    s = text(levels=L1 + f"\n  - {{name: L2, size: 256KiB, assoc: 8, latency: 12, shared_by: {value}}}")
    fails(tmp_path, s, pos(s, value + "}", "shared_by: "), f"levels[1].shared_by is {value}, which does not divide cores (4); allowed: `all` or a divisor of cores (4): 1, 2, 4")


def test_shared_by_wrong_type(tmp_path):
    s = text(levels=L1 + "\n  - {name: L2, size: 256KiB, assoc: 8, latency: 12, shared_by: everyone}")
    fails(tmp_path, s, pos(s, "everyone"), "levels[1].shared_by must be the number of cores per instance, found the string 'everyone'", "allowed: `all`")


def test_serves_outside_split(tmp_path):
    s = text(levels="  - {name: L1, size: 32KiB, assoc: 8, latency: 4, serves: data}")
    fails(tmp_path, s, pos(s, "data"), "levels[0].serves: data is only allowed inside a split level")


def test_duplicate_cache_names(tmp_path):
    s = text(levels=L1 + "\n  - {name: L1, size: 256KiB, assoc: 8, latency: 12}")
    fails(tmp_path, s, pos(s, "L1, size: 256KiB"), "levels[1].name: duplicate cache name 'L1' (levels[0] has it too); cache names must be unique")


def test_duplicate_names_inside_a_split(tmp_path):
    s = text(levels="  - split:\n      - {name: L1, size: 1KiB, assoc: 2, latency: 1}\n      - {name: L1, size: 2KiB, assoc: 2, latency: 1}")
    fails(tmp_path, s, pos(s, "L1, size: 2KiB"), "levels[0].split[1].name: duplicate cache name 'L1'")


# --- split levels ---------------------------------------------------------------------------------

SPLIT = "  - split:\n      - {name: L1i, size: 32KiB, assoc: 8, latency: 4%s}\n      - {name: L1d, size: 48KiB, assoc: 12, latency: 5%s}"


def test_split_needs_exactly_two(tmp_path):
    s = text(levels="  - split: [{name: A, size: 1KiB, assoc: 2, latency: 1}]")
    fails(tmp_path, s, pos(s, "[{"), "levels[0].split must be a list of exactly two caches (one serves instructions, one serves data), found 1 items")


def test_split_not_a_list(tmp_path):
    s = text(levels="  - split: {name: A}")
    fails(tmp_path, s, pos(s, "{name: A}"), "levels[0].split must be a list of exactly two caches", "found a mapping")


def test_split_with_extra_key(tmp_path):
    s = text(levels=(SPLIT % ("", "")).replace("  - split:", "  - name: L1\n    split:"))
    fails(tmp_path, s, pos(s, "name: L1\n"), "unknown key 'levels[0].name'", "allowed: split")


def test_split_both_serve_data(tmp_path):
    s = text(levels=SPLIT % (", serves: data", ", serves: data"))
    fails(tmp_path, s, pos(s, "data}", "latency: 5, serves: "), "levels[0].split: the two caches of a split level must serve instructions and data, one each; both serve data")


def test_split_serves_all(tmp_path):
    s = text(levels=SPLIT % (", serves: all", ""))
    fails(tmp_path, s, pos(s, "all"), "levels[0].split[0].serves: a cache inside split serves instructions or data, not all")


def test_split_cache_error_names_its_path(tmp_path):
    s = text(levels="  - split:\n      - {name: L1i, size: 32KiB, assoc: 8, latency: 4}\n      - {name: L1d, size: 48KiB, assoc: 7, latency: 5}")
    fails(tmp_path, s, pos(s, "48KiB"), "levels[0].split[1].size (49152 bytes) does not divide into whole sets")


def test_unified_level_above_split(tmp_path):
    s = text(levels=L1 + "\n  - split:\n      - {name: I2, size: 256KiB, assoc: 8, latency: 9}\n      - {name: D2, size: 256KiB, assoc: 8, latency: 9}")
    fails(tmp_path, s, pos(s, "split:"), "levels[1] is split but levels[0] (L1) above it is unified; split levels must come first")


# --- structure ------------------------------------------------------------------------------------


def test_first_level_exclusive(tmp_path):
    s = text(levels="  - {name: L1, size: 32KiB, assoc: 8, latency: 4, inclusion: exclusive}\n" + L2)
    fails(tmp_path, s, pos(s, "exclusive"), "levels[0].inclusion: the first level cannot be exclusive", "allowed here: nine, inclusive")


def test_first_level_exclusive_in_split(tmp_path):
    s = text(levels=SPLIT % ("", ", inclusion: exclusive"))
    fails(tmp_path, s, pos(s, "exclusive"), "levels[0].split[1].inclusion: the first level cannot be exclusive")


def test_shared_by_must_form_a_tree(tmp_path):
    s = text(levels="  - {name: L1, size: 32KiB, assoc: 8, latency: 4, shared_by: 2}\n  - {name: L2, size: 256KiB, assoc: 8, latency: 12, shared_by: 1}")
    fails(
        tmp_path, s, pos(s, "1}"),
        "levels[1].shared_by (1) must be a multiple of the shared_by of every cache above it, so that the caches "
        "form a tree; levels[0] (L1) has shared_by 2",
    )


def test_tree_rule_with_default_shared_by_points_at_the_cache(tmp_path):
    s = text(levels="  - {name: L1, size: 32KiB, assoc: 8, latency: 4, shared_by: 2}\n  - {name: L2, size: 256KiB, assoc: 8, latency: 12}")
    fails(tmp_path, s, pos(s, "{name: L2"), "levels[1].shared_by (1) must be a multiple")


def test_tree_rule_checks_every_level_above(tmp_path):
    # L2 (shared_by 2) is a multiple of L1 (1) but L3 (shared_by 3 of 6) is not a multiple of L2.
    s = text(
        cores=6,
        levels=L1 + "\n  - {name: L2, size: 256KiB, assoc: 8, latency: 12, shared_by: 2}"
        "\n  - {name: L3, size: 1MiB, assoc: 8, latency: 40, shared_by: 3}",
    )
    fails(tmp_path, s, pos(s, "3}"), "levels[2].shared_by (3) must be a multiple", "levels[1] (L2) has shared_by 2")


# --- coherence ------------------------------------------------------------------------------------


def test_coherence_protocol_unknown(tmp_path):
    s = text(extra="coherence: {protocol: mosi}\n")
    fails(tmp_path, s, pos(s, "mosi"), "coherence.protocol must be one of the allowed values", "allowed: msi, mesi, moesi")


def test_coherence_unknown_key(tmp_path):
    s = text(extra="coherence: {protocol: mesi, c2c: 40}\n")
    fails(tmp_path, s, pos(s, "c2c:"), "unknown key 'coherence.c2c' (did you mean 'c2c_latency'?)")


def test_coherence_latency_negative(tmp_path):
    s = text(extra="coherence: {upgrade_latency: -1}\n")
    fails(tmp_path, s, pos(s, "-1"), "coherence.upgrade_latency must be a whole number of cycles")


# --- happy paths ----------------------------------------------------------------------------------


def test_defaults(tmp_path):
    m = load(tmp_path, text())
    assert m == Machine(
        name="t", cores=4, line_size=64, memory_latency=100, frequency_ghz=3.0, seed=0, counting="memsim", source="",
        levels=(
            (Cache(name="L1", sets=64, ways=8, latency=4),),
            (Cache(name="L2", sets=512, ways=8, latency=12, shared_by=4),),
        ),
        # c2c defaults to the memory latency, upgrades to the last level's latency
        coherence=Coherence(protocol="mesi", c2c_latency=100, upgrade_latency=12),
    )


def test_every_field(tmp_path):
    s = text(
        cores=8,
        extra="line_size: 128\nfrequency_ghz: 2.5\nseed: 7\ncounting: memsim\nsource: a note\n"
        "coherence: {protocol: moesi, c2c_latency: 60, upgrade_latency: 25}\n",
        levels="  - {name: A, sets: 16, ways: 4, latency: 2, replacement: srrip, rrpv_bits: 3, write: through,"
        " write_allocate: false, shared_by: 2, inclusion: inclusive}\n"
        "  - {name: B, size: 1MiB, assoc: 16, latency: 30, replacement: plru, shared_by: 8, inclusion: exclusive}",
    )
    m = load(tmp_path, s)
    assert m.levels == (
        (Cache("A", 16, 4, 2, "srrip", 3, "through", False, 2, "inclusive", "all"),),
        (Cache("B", 512, 16, 30, "plru", 2, "back", True, 8, "exclusive", "all"),),
    )
    assert (m.cores, m.line_size, m.frequency_ghz, m.seed, m.source) == (8, 128, 2.5, 7, "a note")
    assert m.coherence == Coherence("moesi", 60, 25)


def test_fully_associative(tmp_path):
    m = load(tmp_path, text(levels="  - {name: F, size: 2KiB, assoc: full, latency: 3}"))
    assert (m.levels[0][0].sets, m.levels[0][0].ways) == (1, 32)


def test_non_power_of_two_sets(tmp_path):
    m = load(tmp_path, text(levels="  - {name: L3, size: 30MiB, assoc: 12, latency: 60, shared_by: all}"))
    assert (m.levels[0][0].sets, m.levels[0][0].ways) == (40960, 12)
    m = load(tmp_path, text(levels="  - {name: L1, sets: 3, ways: 5, latency: 1}"))
    assert m.levels[0][0].size(64) == 960


def test_fractional_units(tmp_path):
    m = load(tmp_path, text(levels="  - {name: L2, size: 1.25MiB, assoc: 10, latency: 15}"))
    assert m.levels[0][0].size(64) == 1310720
    assert m.levels[0][0].sets == 2048


def test_shared_by_all_is_stored_as_cores(tmp_path):
    m = load(tmp_path, text(cores=6, levels="  - {name: L1, size: 32KiB, assoc: 8, latency: 4, shared_by: all}"))
    assert m.levels[0][0].shared_by == 6


def test_split_orders_instructions_first_and_infers_serves(tmp_path):
    s = text(levels="  - split:\n      - {name: L1d, size: 48KiB, assoc: 12, latency: 5, serves: data}\n"
             "      - {name: L1i, size: 32KiB, assoc: 8, latency: 4}\n" + L2)
    m = load(tmp_path, s)
    assert [(c.name, c.serves) for c in m.levels[0]] == [("L1i", "instructions"), ("L1d", "data")]
    assert [c.name for c in m.caches] == ["L1i", "L1d", "L2"]


def test_split_without_serves_is_instructions_then_data(tmp_path):
    m = load(tmp_path, text(levels=SPLIT % ("", "")))
    assert [(c.name, c.serves) for c in m.levels[0]] == [("L1i", "instructions"), ("L1d", "data")]


def test_two_split_levels(tmp_path):
    s = text(levels=SPLIT % ("", "") + "\n  - split:\n      - {name: L2i, size: 256KiB, assoc: 8, latency: 9}\n"
             "      - {name: L2d, size: 256KiB, assoc: 8, latency: 9}\n" + L2.replace("L2", "L3"))
    m = load(tmp_path, s)
    assert [len(level) for level in m.levels] == [2, 2, 1]


def test_exclusive_below_the_first_level(tmp_path):
    m = load(tmp_path, text(levels=L1 + "\n  - {name: L2, size: 256KiB, assoc: 8, latency: 12, inclusion: exclusive}"))
    assert m.levels[1][0].inclusion == "exclusive"


# --- presets --------------------------------------------------------------------------------------


def test_preset_names():
    assert preset_names() == PRESETS
    assert DEFAULT_MACHINE == "intel-golden-cove"


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_and_cites_sources(name):
    m = load_preset(name)
    assert m.name == name
    assert len(m.source) > 40
    assert (CONFIGS / f"{name}.yaml").read_text().startswith("#")  # a comment says what machine it is
    assert load_machine_file(CONFIGS / f"{name}.yaml") == m


def geometry(m: Machine) -> list:
    return [(c.name, c.size(m.line_size), c.sets, c.ways, c.latency, c.shared_by, c.inclusion, c.serves) for c in m.caches]


def test_intel_golden_cove():
    m = load_preset("intel-golden-cove")
    assert (m.cores, m.line_size, m.coherence.protocol) == (8, 64, "mesi")
    assert geometry(m) == [
        ("L1i", 32768, 64, 8, 5, 1, "nine", "instructions"),
        ("L1d", 49152, 64, 12, 5, 1, "nine", "data"),
        ("L2", 1310720, 2048, 10, 15, 1, "nine", "all"),
        ("L3", 31457280, 40960, 12, 65, 8, "nine", "all"),
    ]


def test_amd_zen4_ccx():
    m = load_preset("amd-zen4-ccx")
    assert (m.cores, m.line_size, m.coherence.protocol) == (8, 64, "moesi")
    assert geometry(m) == [
        ("L1i", 32768, 64, 8, 4, 1, "nine", "instructions"),
        ("L1d", 32768, 64, 8, 4, 1, "nine", "data"),
        ("L2", 1048576, 2048, 8, 14, 1, "inclusive", "all"),
        ("L3", 33554432, 32768, 16, 50, 8, "exclusive", "all"),
    ]


def test_apple_m1_firestorm():
    m = load_preset("apple-m1-firestorm")
    assert (m.cores, m.line_size) == (4, 128)
    assert geometry(m) == [
        ("L1i", 196608, 256, 6, 3, 1, "nine", "instructions"),
        ("L1d", 131072, 128, 8, 3, 1, "nine", "data"),
        ("L2", 12582912, 8192, 12, 18, 4, "nine", "all"),
    ]


def test_teaching():
    m = load_preset("teaching")
    assert (m.cores, m.line_size, m.memory_latency) == (2, 64, 100)
    assert geometry(m) == [("L1", 512, 4, 2, 1, 1, "nine", "all"), ("L2", 2048, 8, 4, 10, 2, "nine", "all")]


def test_unknown_preset():
    with pytest.raises(UserError) as info:
        load_preset("intel-golden-cave", at="t.yaml:3:10")
    assert info.value.where == "t.yaml:3:10"
    assert info.value.message == (
        "unknown machine preset 'intel-golden-cave' (did you mean 'intel-golden-cove'?); allowed: "
        + ", ".join(PRESETS) + " (or give a path to a machine file ending in .yaml)"
    )


# --- resolve_machine ------------------------------------------------------------------------------


def test_resolve_preset_name(tmp_path):
    assert resolve_machine("teaching", tmp_path, "t.yaml:2:10") == load_preset("teaching")


@pytest.mark.parametrize("rel", ["m.yaml", "m.yml", "sub/m.yaml", "sub/machine"])
def test_resolve_relative_path(tmp_path, rel):
    (tmp_path / "sub").mkdir()
    write(tmp_path, text(), rel)
    assert resolve_machine(rel, tmp_path, "t.yaml:2:10").name == "t"


def test_resolve_missing_path(tmp_path):
    with pytest.raises(UserError) as info:
        resolve_machine("gone.yaml", tmp_path, "t.yaml:2:10")
    assert info.value.where == "t.yaml:2:10"
    assert info.value.message == f"machine file 'gone.yaml' not found (looked for {tmp_path / 'gone.yaml'})"


def test_resolve_error_inside_referenced_file_names_that_file(tmp_path):
    s = text(cores=0)
    write(tmp_path, s)
    with pytest.raises(UserError) as info:
        resolve_machine("m.yaml", tmp_path, "t.yaml:2:10")
    assert info.value.where == f"{tmp_path / 'm.yaml'}:{pos(s, '0', 'cores: ')}"


def test_resolve_wrong_type(tmp_path):
    with pytest.raises(UserError) as info:
        resolve_machine(12, tmp_path, "t.yaml:2:10")
    assert info.value.where == "t.yaml:2:10"
    assert "machine must be a preset name, a path to a machine file (.yaml), or a mapping; found the number 12" in info.value.message


TRACE = """memsim: 1
name: tr
machine:
  name: inline
  cores: 2
  levels:
    - {name: L1, size: 1KiB, assoc: 3, latency: 1}
  memory: {latency: 50}
events: []
"""


def test_resolve_inline_mapping_without_version(tmp_path):
    trace = yamlpos.parse(TRACE.replace("assoc: 3", "assoc: 2"), "tr.yaml")
    m = resolve_machine(trace["machine"], tmp_path, yamlpos.where(trace, "machine"))
    assert (m.name, m.cores, m.levels[0][0].sets) == ("inline", 2, 8)


def test_resolve_inline_mapping_error_names_trace_position(tmp_path):
    trace = yamlpos.parse(TRACE, "tr.yaml")
    with pytest.raises(UserError) as info:
        resolve_machine(trace["machine"], tmp_path, yamlpos.where(trace, "machine"))
    assert info.value.where == f"tr.yaml:{pos(TRACE, '1KiB')}"
    assert info.value.message.startswith("machine.levels[0].size (1024 bytes) does not divide into whole sets")


def test_resolve_inline_mapping_with_wrong_version(tmp_path):
    source = TRACE.replace("  name: inline", "  memsim: 3\n  name: inline")
    trace = yamlpos.parse(source, "tr.yaml")
    with pytest.raises(UserError) as info:
        resolve_machine(trace["machine"], tmp_path, yamlpos.where(trace, "machine"))
    assert info.value.where == f"tr.yaml:{pos(source, '3', 'memsim: ')}"
    assert info.value.message == "format version 3 is not supported; this memsim reads version 1"


# --- machine_to_dict ------------------------------------------------------------------------------


def test_machine_to_dict_teaching_exact():
    d = machine_to_dict(load_preset("teaching"))
    common = {"line_size": 64, "replacement": "lru", "rrpv_bits": 2, "write": "back", "write_allocate": True, "inclusion": "nine"}
    assert d == {
        "name": "teaching",
        "cores": 2,
        "line_size": 64,
        "frequency_ghz": 1.0,
        "seed": 0,
        "counting": "memsim",
        "conflict_shadow": True,
        "levels": [
            {"name": "L1", "serves": "all", "size": 512, "sets": 4, "ways": 2, "assoc": 2, "latency": 1,
             "shared_by": 1, "instances": 2, **common},
            {"name": "L2", "serves": "all", "size": 2048, "sets": 8, "ways": 4, "assoc": 4, "latency": 10,
             "shared_by": 2, "instances": 1, **common},
        ],
        "memory": {"latency": 100},
        "coherence": {"protocol": "mesi", "c2c_latency": 20, "upgrade_latency": 10},
        "source": load_preset("teaching").source,
    }
    assert list(d) == ["name", "cores", "line_size", "frequency_ghz", "seed", "counting", "conflict_shadow", "levels", "memory", "coherence", "source"]
    assert list(d["levels"][0]) == [
        "name", "serves", "size", "sets", "ways", "assoc", "line_size", "latency", "replacement", "rrpv_bits",
        "write", "write_allocate", "shared_by", "instances", "inclusion",
    ]


def test_machine_to_dict_split_level():
    d = machine_to_dict(load_preset("intel-golden-cove"))
    assert [c["name"] for c in d["levels"][0]["split"]] == ["L1i", "L1d"]
    assert [c["serves"] for c in d["levels"][0]["split"]] == ["instructions", "data"]
    assert d["levels"][2]["shared_by"] == 8 and d["levels"][2]["instances"] == 1


@pytest.mark.parametrize("name", PRESETS)
def test_machine_to_dict_round_trip(name):
    m = load_preset(name)
    d = machine_to_dict(m)
    dumped = json.dumps(d)
    assert json.loads(dumped) == d
    assert json.dumps(machine_to_dict(load_preset(name))) == dumped
    # the echo, minus derived fields and rrpv_bits of non-srrip caches, reads back as the same machine
    for level in d["levels"]:
        for cache in level.get("split", [level]):
            for derived in ("size", "assoc", "line_size", "instances"):
                del cache[derived]
            if cache["replacement"] != "srrip":
                del cache["rrpv_bits"]
    assert machine_from_mapping(json.loads(json.dumps(d)), "echo", require_version=False) == m


def test_plain_dict_errors_fall_back_to_the_label():
    with pytest.raises(UserError) as info:
        machine_from_mapping({"memsim": 1, "name": "x", "cores": 0, "levels": [], "memory": {"latency": 1}}, "echo")
    assert info.value.where == "echo"
    assert info.value.message == "cores must be at least 1, found 0"


def test_conflict_shadow_switch(tmp_path):
    assert load_preset("teaching").conflict_shadow is True
    assert load(tmp_path, text(extra="conflict_shadow: false\n")).conflict_shadow is False
    source = text(extra="conflict_shadow: sometimes\n")
    fails(tmp_path, source, pos(source, "sometimes"), "conflict_shadow")
