"""memsim sweep (docs/sweep.md): settings by dotted key, grid and zip, result files a line per run
in run order, error rows, --resume, plots, and a Dask cluster giving the local results."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from memsim import sweep as sw
from memsim.cli import main
from memsim.errors import UserError
from memsim.formats.machine_file import load_preset
from memsim.runner import open_trace

TRACES = Path(__file__).resolve().parent.parent / "traces"
PACKED = TRACES / "false-sharing-counters.yaml"  # raw addresses, 2 cores, the teaching machine (L1 512 B 2-way)
GO = TRACES / "go-worker-counters.yaml"  # allocator: go, 4 cores


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_set_and_plan():
    size, ways = sw.parse_set("levels.L1.size=512,1KiB"), sw.parse_set("levels.L1.assoc = 2, 4")
    assert (size.key, size.values, ways.values) == ("levels.L1.size", ("512", "1KiB"), ("2", "4"))
    plan = sw.plan([size, ways], [])
    assert plan.keys == ("levels.L1.size", "levels.L1.assoc")
    assert plan.combinations == (("512", "2"), ("512", "4"), ("1KiB", "2"), ("1KiB", "4"))
    zipped = sw.plan([size], [sw.parse_set("cores=1,2"), sw.parse_set("line_size=32,64")])
    assert zipped.combinations == (("512", "1", "32"), ("512", "2", "64"), ("1KiB", "1", "32"), ("1KiB", "2", "64"))
    for bad in ("levels.L1.size", "=1,2", "line_size=32,,64"):
        with pytest.raises(UserError, match="KEY=VALUE"):
            sw.parse_set(bad)
    with pytest.raises(UserError, match="swept twice"):
        sw.plan([size, size], [])


def test_sweep_file(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("memsim: 1\ngrid:\n  levels.L1.size: [512, 1KiB]\nzip:\n  cores: [1, 2]\n"
                 "  allocator.version: ['1.20', '1.27']\n")
    grid, zipped = sw.load_sweep_file(f)
    assert sw.plan(grid, zipped).combinations == (("512", "1", "1.20"), ("512", "2", "1.27"),
                                                  ("1KiB", "1", "1.20"), ("1KiB", "2", "1.27"))
    f.write_text("memsim: 1\nzip:\n  cores: [1, 2]\n  line_size: [32]\n")
    with pytest.raises(UserError, match="same length.*cores: 2, line_size: 1"):
        sw.load_sweep_file(f)
    f.write_text("memsim: 1\ngrid:\n  allocator.version: [1.20]\n")
    with pytest.raises(UserError, match='quoted string') as e:
        sw.load_sweep_file(f)
    assert e.value.where.endswith(":3:23")  # the value's own position
    f.write_text("memsim: 1\ngird:\n  cores: [1]\n")
    with pytest.raises(UserError, match="did you mean 'grid'"):
        sw.load_sweep_file(f)


def test_settings_are_typed_by_their_field():
    loaded = open_trace(GO, None, False)
    machine = load_preset("example-4c")
    changed, spec = sw.configure(loaded, machine, ("levels.L1d.size", "line_size", "cores", "allocator.version"),
                                 ("96KiB", "128", "2", "1.20"))
    l1d = next(c for c in changed.caches if c.name == "L1d")
    l3 = next(c for c in changed.caches if c.name == "L3")
    assert (changed.line_size, changed.cores) == (128, 2)
    assert l1d.size(128) == 96 * 1024 and l1d.ways == next(c for c in machine.caches if c.name == "L1d").ways
    assert l3.size(128) == next(c for c in machine.caches if c.name == "L3").size(64)  # capacities kept
    assert l3.shared_by == 2  # shared by all cores stays shared by all
    assert (spec.version, spec.generation) == ("1.20", "classic")  # a string, not the number 1.2
    same, _ = sw.configure(loaded, machine, ("coherence.protocol",), ("moesi",))
    assert same.coherence.protocol == "moesi" and same.caches == machine.caches
    with pytest.raises(UserError, match="no cache named 'L9'.*its caches: L1i, L1d, L2, L3"):
        sw.configure(loaded, machine, ("levels.L9.size",), ("1KiB",))
    with pytest.raises(UserError, match="does not divide into whole sets"):
        sw.configure(loaded, machine, ("levels.L1d.size",), ("47KiB",))
    with pytest.raises(UserError, match="unknown key.*sise"):
        sw.configure(loaded, machine, ("levels.L1d.sise",), ("1KiB",))


def test_a_sweep_writes_a_line_per_run_matching_memsim_run(tmp_path):
    out = tmp_path / "r.csv"
    result = invoke("sweep", PACKED, "--set", "levels.L1.size=512,1KiB", "--set", "coherence.c2c_latency=20,50",
                    "-o", out, "-j", "1")
    assert result.exit_code == 0, result.output
    table = rows(out)
    assert [(r["run"], r["levels.L1.size"], r["coherence.c2c_latency"], r["status"]) for r in table] == [
        ("0", "512", "20", "ok"), ("1", "512", "50", "ok"), ("2", "1KiB", "20", "ok"), ("3", "1KiB", "50", "ok")]
    lines = [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]
    assert [line["settings"] for line in lines] == [{"levels.L1.size": r["levels.L1.size"],
                                                     "coherence.c2c_latency": r["coherence.c2c_latency"]} for r in table]
    # the same numbers as memsim run on the machine the settings describe
    machine = tmp_path / "m.yaml"
    machine.write_text((Path(__file__).resolve().parent.parent / "configs" / "teaching.yaml").read_text()
                       .replace("size: 512,", "size: 1KiB,").replace("c2c_latency: 20", "c2c_latency: 50"))
    report = tmp_path / "run.json"
    assert invoke("run", PACKED, "--machine", machine, "--json", report, "-q").exit_code == 0
    doc = json.loads(report.read_text())
    level = {lv["name"]: lv for lv in doc["levels"]}
    assert int(table[3]["L1.misses"]) == level["L1"]["misses"] == lines[3]["metrics"]["L1.misses"]
    assert int(table[3]["cycles"]) == sum(c["cycles"] for c in doc["cores"])
    assert int(table[3]["coherence.c2c_transfers"]) == doc["coherence"]["c2c_transfers"]
    assert int(table[1]["cycles"]) > int(table[0]["cycles"])  # the setting took effect


def test_invalid_combinations_become_error_rows(tmp_path):
    out = tmp_path / "r.csv"
    result = invoke("sweep", PACKED, GO, "--set", "cores=1,2", "-o", out, "-j", "1")
    assert result.exit_code == 0, result.output
    table = {(Path(r["trace"]).name, r["cores"]): r for r in rows(out)}
    assert table["false-sharing-counters.yaml", "1"]["status"] == "error"
    assert "core 1" in table["false-sharing-counters.yaml", "1"]["error"]
    assert table["false-sharing-counters.yaml", "1"]["cycles"] == ""
    assert table["false-sharing-counters.yaml", "2"]["status"] == "ok"
    assert table["go-worker-counters.yaml", "2"]["status"] == "error"  # the trace uses cores 0-3
    assert "allocator.mallocs" in rows(out)[0]  # one trace allocates: the allocator's columns are there
    assert "4 runs (3 with errors)" in result.output


def test_results_are_the_same_in_parallel_and_never_overwritten(tmp_path):
    args = ["sweep", PACKED, "--set", "levels.L1.assoc=1,2,4", "--set", "line_size=32,64"]
    assert invoke(*args, "-o", tmp_path / "one.csv", "-j", "1").exit_code == 0
    assert invoke(*args, "-o", tmp_path / "two.csv", "-j", "2").exit_code == 0
    for suffix in (".csv", ".jsonl"):
        assert (tmp_path / f"one{suffix}").read_text() == (tmp_path / f"two{suffix}").read_text()
    before = (tmp_path / "one.csv").read_bytes()
    again = invoke(*args, "-o", tmp_path / "one.csv", "-j", "1")
    assert again.exit_code == 2 and "--resume" in again.output
    assert (tmp_path / "one.csv").read_bytes() == before


def test_resume_skips_recorded_runs_and_drops_a_half_written_line(tmp_path):
    args = ["sweep", PACKED, "--set", "levels.L1.assoc=1,2,4", "--set", "line_size=32,64", "-j", "1"]
    full = tmp_path / "full.csv"
    assert invoke(*args, "-o", full).exit_code == 0
    crashed = tmp_path / "crashed.csv"
    lines = full.read_text().splitlines(keepends=True)
    crashed.write_text("".join(lines[:3]) + lines[3][:25])  # two runs recorded, the third cut mid-line
    jsonl = full.with_suffix(".jsonl").read_text().splitlines(keepends=True)
    crashed.with_suffix(".jsonl").write_text("".join(jsonl[:3]))  # the third run made it here only
    result = invoke(*args, "-o", crashed, "--resume")
    assert result.exit_code == 0, result.output
    assert crashed.read_text() == full.read_text()
    assert crashed.with_suffix(".jsonl").read_text() == full.with_suffix(".jsonl").read_text()
    assert "4 runs" in result.output and "2 runs recorded before" in result.output
    other = invoke("sweep", PACKED, "--set", "line_size=32,64", "-o", crashed, "--resume")
    assert other.exit_code == 2 and "different sweep" in other.output


def test_plots(tmp_path):
    one = invoke("sweep", PACKED, "--set", "levels.L1.size=256,512,1KiB", "-o", tmp_path / "a.csv", "-j", "1",
                 "--plot", tmp_path / "a.png", "--metric", "L1.miss_rate")
    assert one.exit_code == 0, one.output
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    two = invoke("sweep", PACKED, "--set", "levels.L1.size=256,512", "--set", "coherence.protocol=msi,mesi,moesi",
                 "-o", tmp_path / "b.csv", "-j", "1", "--plot", tmp_path / "b.svg", "--metric", "cycles")
    assert two.exit_code == 0, two.output
    svg = (tmp_path / "b.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "coherence.protocol" in svg
    again = invoke("sweep", PACKED, "--set", "levels.L1.size=256,512", "--set", "coherence.protocol=msi,mesi,moesi",
                   "-o", tmp_path / "b2.csv", "-j", "1", "--plot", tmp_path / "b2.svg", "--metric", "cycles")
    assert again.exit_code == 0 and (tmp_path / "b2.svg").read_text() == svg  # same results, same picture
    three = invoke("sweep", PACKED, "--set", "levels.L1.size=256,512", "--set", "line_size=32,64", "--set",
                   "cores=2", "-o", tmp_path / "c.csv", "-j", "1", "--plot", tmp_path / "c.png")
    assert three.exit_code == 2 and "one or two swept settings" in three.output
    bad = invoke("sweep", PACKED, "--set", "cores=2", "-o", tmp_path / "d.csv", "-j", "1", "--plot",
                 tmp_path / "d.png", "--metric", "L7.misses")
    assert bad.exit_code == 2 and "no metric 'L7.misses'" in bad.output


def test_a_dask_cluster_gives_the_local_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    args = ["sweep", PACKED, GO, "--set", "cores=2,4", "--set", "coherence.protocol=mesi,moesi"]
    assert invoke(*args, "-o", tmp_path / "local.csv", "-j", "1").exit_code == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = invoke(*args, "-o", tmp_path / "dask.csv", "--scheduler", cluster.scheduler_address)
    assert result.exit_code == 0, result.output
    for suffix in (".csv", ".jsonl"):
        assert (tmp_path / f"local{suffix}").read_text() == (tmp_path / f"dask{suffix}").read_text()
    assert {r["status"] for r in rows(tmp_path / "dask.csv")} == {"ok", "error"}


def test_a_streamed_trace_counts_each_run_from_zero(tmp_path):
    """A lackey trace is read again for every run, in one process too."""
    lackey = tmp_path / "app.lackey"
    lackey.write_text("".join(f" L {0x1000 + 64 * (i % 50):x},8\n" for i in range(3000)))
    out = tmp_path / "r.csv"
    result = invoke("sweep", lackey, "--machine", "cachegrind", "--set", "levels.LL.size=1MiB,2MiB,4MiB", "-o", out,
                    "-j", "1")
    assert result.exit_code == 0, result.output
    assert [(r["events"], r["D1.misses"]) for r in rows(out)] == [("3000", "50")] * 3
    missing = invoke("sweep", tmp_path / "nothere.yaml", "--set", "cores=1", "-o", tmp_path / "m.csv")
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert not (tmp_path / "m.csv").exists()
