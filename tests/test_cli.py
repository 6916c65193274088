"""The command line: reports, JSON on stdout, determinism, and bad input (exit 2, file:line:column)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from memsim.atomic import atomic_file
from memsim.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "traces" / "false-sharing-counters.yaml"


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def write(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


TINY = """\
memsim: 1
name: tiny
machine:
  name: m
  cores: 2
  line_size: 64
  levels:
    - {name: L1, sets: 2, ways: 2, latency: 1}
    - {name: L2, sets: 4, ways: 4, latency: 10, shared_by: all}
  memory: {latency: 100}
events:
  - read: {core: 0, addr: 0, size: 8}
  - write: {core: 1, addr: 8, size: 8}
  - read: {core: 0, addr: 60, size: 8}
"""


def test_run_prints_levels_and_cores():
    result = invoke("run", EXAMPLE)
    assert result.exit_code == 0, result.output
    assert "packed per-core counters on teaching" in result.output
    assert "19,999 invalidations" in result.output
    for column in ("L1", "L2", "AMAT", "miss rate"):
        assert column in result.output


def test_json_to_stdout_is_only_json_and_exact(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "memsim", "run", str(write(tmp_path, TINY)), "--json", "-"],
        capture_output=True, text=True, check=True,
    )
    doc = json.loads(result.stdout)  # nothing else on stdout
    assert "tiny" in result.stderr  # the tables went to stderr
    assert doc["memsim"] == 1 and doc["partial"] is False
    assert doc["trace"]["name"] == "tiny" and doc["trace"]["events"] == 3
    l1, l2 = doc["levels"]
    # core 0 reads line 0, core 1 writes line 0 (invalidating core 0's copy), core 0 reads lines 0
    # and 1 (a straddling access): L1 sees 4 pieces, all misses; L2 hits line 0 twice, and the
    # second time core 1's dirty copy supplies the data (a transfer costing c2c_latency, which
    # defaults to the memory latency).
    assert (l1["accesses"], l1["hits"], l1["misses"]) == (4, 0, 4)
    assert (l2["accesses"], l2["hits"], l2["misses"]) == (4, 2, 2)
    assert [i["cores"] for i in l1["instances"]] == [[0], [1]]
    # core 0's read of [60, 64) is its coherence miss; it overlaps no byte core 1 wrote ([8, 16)):
    # false sharing, at the miss and for the lifetime (which the end of the run closes)
    assert doc["coherence"] == {"invalidations": 1, "upgrades": 0, "c2c_transfers": 1, "false_sharing_misses": 1,
                                "true_sharing_misses": 0, "false_sharing_misses_at_miss": 1,
                                "true_sharing_misses_at_miss": 0}
    (line,) = doc["false_sharing"]
    assert line["line"] == 0 and line["false_sharing_misses"] == 1
    assert [(c["core"], c["read_bytes"], c["write_bytes"]) for c in line["cores"]] == [(0, [[60, 64]], []),
                                                                                      (1, [], [[8, 16]])]
    assert doc["cores"][0]["accesses"] == 2 and doc["cores"][0]["cycles"] == 100 + 100
    assert doc["cores"][1]["cycles"] == 10
    assert doc["machine"]["levels"][1]["shared_by"] == 2


def test_json_is_byte_identical_wherever_the_trace_lives(tmp_path):
    a = write(tmp_path, TINY, "a.yaml")
    (tmp_path / "elsewhere").mkdir()
    b = shutil.copy(a, tmp_path / "elsewhere" / "b.yaml")
    out = []
    for trace, target in ((a, tmp_path / "1.json"), (a, tmp_path / "2.json"), (b, tmp_path / "3.json")):
        assert invoke("run", trace, "--quiet", "--json", target).exit_code == 0
        out.append(target.read_bytes())
    assert out[0] == out[1] == out[2]
    assert str(tmp_path).encode() not in out[0]


def test_top_cuts_the_false_sharing_lines_of_the_tables_and_the_json(tmp_path, monkeypatch):
    """The engine's sharing table is replaced by a hand-made one (two lines: the Go counters' line,
    and a raw line), so the wiring from the CLI through the allocator's placements is checked
    whatever the kernel counts."""
    import numpy as np

    from memsim.engine.counters import S_FALSE, S_LINE, S_STALL, core_sharing_width, sharing_width
    from memsim.report import sharing

    trace = ROOT / "traces" / "go-worker-counters.yaml"
    layout = json.loads(invoke("layout", trace, "--json", "-").output)
    line = next(o for o in layout["objects"] if o["id"] == "counter1")["lines"][0]
    table = np.zeros((2, sharing_width(4, 64)), np.int64)
    table[:, S_LINE] = line // 64, line // 64 + 1000
    table[:, S_FALSE] = 10
    table[:, S_STALL] = 500, 100
    for core in range(4):  # core c rmw's bytes [8c, 8c + 8), 5 times
        base = 7 + core * core_sharing_width(64)
        table[:, base:base + 4] = 5, 5, 0xFF << 8 * core, 0xFF << 8 * core
    real = sharing.build_sharing
    monkeypatch.setattr(sharing, "build_sharing", lambda _, *args, **kw: real(table, *args, **kw))

    result = invoke("run", trace, "--top", "1", "--json", tmp_path / "o.json")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "o.json").read_text())
    assert doc["false_sharing_lines"] == 2
    (first,) = doc["false_sharing"]
    assert first["line"] == line and [o["id"] for o in first["objects"]][:2] == ["counter0", "counter1"]
    assert {o["site"] for o in first["objects"]} == {"worker.go:12"}
    assert first["objects"][1]["alloc_core"] == 0
    assert first["fix"].startswith("`counter1` (used by core 1, allocated on P 0), `counter2` (used by core 2, "
                                   "allocated on P 0), `counter3` (used by core 3, allocated on P 0): allocate each")
    assert doc["false_sharing_by_site"][0]["sites"] == ["worker.go:12"]
    assert "the top 1 of 2 lines" in result.output and f"#1 line {line:#x}" in result.output
    assert "#2 line" not in result.output
    every = json.loads(invoke("run", trace, "--top", "0", "--quiet", "--json", "-").output)
    assert [ln["line"] for ln in every["false_sharing"]] == [line, line + 1000 * 64]


def test_top_must_not_be_negative(tmp_path):
    result = invoke("run", write(tmp_path, TINY), "--top", "-1")
    assert result.exit_code == 2 and "--top" in result.output


def test_machine_option_overrides_the_trace(tmp_path):
    result = invoke("run", write(tmp_path, TINY), "--machine", "teaching", "--quiet", "--json", tmp_path / "o.json")
    assert result.exit_code == 0
    assert json.loads((tmp_path / "o.json").read_text())["machine"]["name"] == "teaching"


def test_trace_without_machine_runs_on_the_default_preset(tmp_path):
    from memsim.formats.machine_file import DEFAULT_MACHINE

    trace = write(tmp_path, "memsim: 1\nevents:\n  - read: {core: 0, addr: 0, size: 8}\n")
    assert invoke("run", trace, "--quiet", "--json", tmp_path / "o.json").exit_code == 0
    assert json.loads((tmp_path / "o.json").read_text())["machine"]["name"] == DEFAULT_MACHINE


def test_machines_lists_every_preset_with_a_source():
    result = invoke("machines", "--json", "-")
    doc = json.loads(result.output)
    names = [m["name"] for m in doc["machines"]]
    assert {"intel-golden-cove", "amd-zen4-ccx", "apple-m1-firestorm", "teaching"} <= set(names)
    assert all(m["source"] for m in doc["machines"])
    assert "teaching" in invoke("machines").output


def test_help_does_not_import_numba():
    code = "import sys; from memsim.cli import main; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


MACHINE = """\
  name: m
  cores: 2
  line_size: 64
  levels:
    - {name: L1, size: 1KiB, assoc: 2, latency: 1}
  memory: {latency: 100}
"""

BAD = {
    "yaml syntax": ("memsim: 1\nevents: [\n", ":3:1", "YAML syntax error"),
    "not a mapping": ("- 1\n- 2\n", ":1:1", "mapping"),
    "wrong version": ("memsim: 2\nevents: [{read: {core: 0, addr: 0, size: 8}}]\n", ":1:9", "version"),
    "unknown key": ("memsim: 1\nevnets: []\n", ":2:1", "did you mean 'events'"),
    "missing field": ("memsim: 1\nevents:\n  - read: {core: 0, size: 8}\n", ":3:11", "addr"),
    "mistyped field": ("memsim: 1\nevents:\n  - read: {core: 0, addr: 0, size: big}\n", ":3:36", "size must be a size in bytes"),
    "core out of range": ("memsim: 1\nmachine: teaching\nevents:\n  - read: {core: 5, addr: 0, size: 8}\n",
                          ":4:18", "core 5 is out of range"),
    "unknown preset": ("memsim: 1\nmachine: teachng\nevents: [{read: {core: 0, addr: 0, size: 8}}]\n", ":2:10", "teaching"),
    "size not whole sets": ("memsim: 1\nmachine:\n" + MACHINE.replace("1KiB", "1000") + "events: [{read: {core: 0, addr: 0, size: 8}}]\n",
                            ":7:24:", "does not divide into whole sets"),
    "line size not a power of two": ("memsim: 1\nmachine:\n" + MACHINE.replace("line_size: 64", "line_size: 48")
                                     + "events: [{read: {core: 0, addr: 0, size: 8}}]\n", ":5:", "power of two"),
    "shared_by not dividing cores": ("memsim: 1\nmachine:\n" + MACHINE.replace("latency: 1}", "latency: 1, shared_by: 3}")
                                     + "events: [{read: {core: 0, addr: 0, size: 8}}]\n", ":7:", "shared_by"),
    "plru ways": ("memsim: 1\nmachine:\n" + MACHINE.replace("1KiB, assoc: 2", "768, assoc: 3").replace(
        "latency: 1}", "latency: 1, replacement: plru}") + "events: [{read: {core: 0, addr: 0, size: 8}}]\n", ":7:", "this cache has 3 ways"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_position(tmp_path, case):
    text, where, words = BAD[case]
    trace = write(tmp_path, text)
    result = subprocess.run([sys.executable, "-m", "memsim", "run", str(trace)], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {trace}{where}"), result.stderr
    assert words in result.stderr
    assert result.stdout == ""


def test_missing_trace_file_exits_2(tmp_path):
    result = invoke("run", tmp_path / "nope.yaml")
    assert result.exit_code == 2


def test_json_target_in_a_missing_folder_exits_2_and_leaves_nothing(tmp_path):
    result = invoke("run", EXAMPLE, "--quiet", "--json", tmp_path / "no" / "o.json")
    assert result.exit_code == 2
    assert not (tmp_path / "no").exists()


def test_a_json_report_is_an_ordinary_file(tmp_path):
    target = tmp_path / "o.json"
    assert invoke("run", EXAMPLE, "--quiet", "--json", target).exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert "trace" in json.loads(target.read_text())
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary's 0600


@pytest.mark.parametrize("failure", [ValueError, KeyboardInterrupt])
def test_an_atomic_write_that_fails_keeps_the_old_file_and_no_temporary(tmp_path, failure):
    target = tmp_path / "o.json"
    target.write_text("old")
    with pytest.raises(failure):
        with atomic_file(target) as file:
            file.write("half")
            raise failure()
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["o.json"]


def test_numba_cache_falls_back_when_the_package_folder_is_read_only(tmp_path, monkeypatch):
    from memsim import numba_cache

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.delenv("MEMSIM_NUMBA_CACHE_SET", raising=False)
    monkeypatch.setattr(numba_cache, "__file__", str(blocker / "pkg" / "numba_cache.py"))  # cannot be made
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    numba_cache.ensure_cache_dir()

    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "xdg" / "memsim" / f"numba-{numba_cache.source_hash()}")


def test_numba_cache_is_versioned_by_the_source_and_old_versions_go(tmp_path, monkeypatch):
    from memsim import numba_cache

    (tmp_path / "numba-0123456789abcdef").mkdir()
    (tmp_path / "unrelated").mkdir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MEMSIM_NUMBA_CACHE_SET", raising=False)
    numba_cache.ensure_cache_dir()

    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / f"numba-{numba_cache.source_hash()}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"numba-{numba_cache.source_hash()}", "unrelated"])


def test_counting_option_counts_as_cachegrind(tmp_path):
    # an 8-byte read straddling two lines is one D1 access under Cachegrind's rules, two pieces under memsim's
    csv = write(tmp_path, "op,addr,size\nread,0x1000,8\nread,0x103c,8\n", "t.csv")
    accesses = {}
    for counting in ("memsim", "cachegrind"):
        result = invoke("run", csv, "--machine", "cachegrind", "--counting", counting, "--json", "-", "-q")
        assert result.exit_code == 0, result.output
        doc = json.loads(result.output)
        assert doc["machine"]["counting"] == counting
        accesses[counting] = {level["name"]: level["accesses"] for level in doc["levels"]}
    assert accesses["cachegrind"]["D1"] == 2
    assert accesses["memsim"]["D1"] == 3


def test_counting_option_rejects_a_machine_cachegrind_cannot_model(tmp_path):
    csv = write(tmp_path, "op,addr,size\nread,0x1000,8\n", "t.csv")
    result = invoke("run", csv, "--machine", "intel-golden-cove", "--counting", "cachegrind")
    assert result.exit_code == 2
    assert result.output.startswith("error: --counting: machine 'intel-golden-cove': levels[2].sets (L3): Cachegrind "
                                    "simulates power-of-two set counts only")


def test_a_foreign_trace_under_an_unknown_name_gets_a_hint(tmp_path):
    trace = write(tmp_path, "I  04000b40,3\n L 1ffefffd78,8\n", "trace.txt")
    result = invoke("run", trace)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {trace}")
    assert result.output.rstrip().endswith("memsim read this file as a YAML trace because its name does not say "
                                           "otherwise: give --from lackey|din|csv, or name it .lackey, .din or .csv")
    assert invoke("run", trace, "--from", "lackey", "-q").exit_code == 0
