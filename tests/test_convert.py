"""`memsim convert` (lackey, din, CSV, YAML -> binary; never a partial file) and `memsim run` on
lackey/din/CSV files read as they replay."""
from __future__ import annotations

import gzip
import hashlib
import json
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from memsim import cli, runner
from memsim.cli import main
from memsim.formats import binary
from memsim.formats.trace_file import load_trace
from memsim.report import progress

LACKEY = "==12== Lackey, an example Valgrind tool\n" + "".join(
    f"I  {0x400000 + 4 * i:08x},4\n L {0x1ffe000 + 64 * (i % 300):x},8\n S {0x5000 + 8 * (i % 7):x},8\n"
    f" M {0x6000 + 64 * (i % 50):x},4\n"
    for i in range(2000)
) + "==12== done\n"
CSV = "op,addr,size,core\n" + "".join(f"{('read', 'write', 'rmw')[i % 3]},{0x1000 + 8 * (i % 64)},8,{i % 4}\n"
                                       for i in range(3000))
DIN = "".join(f"{i % 3} {0x2000 + 4 * (i % 900):x}\n" for i in range(5000))


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def run_json(trace: Path, *extra) -> dict:
    result = invoke("run", trace, "--machine", "example-4c", "--json", "-", "-q", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_lackey_converts_and_replays_like_the_file_itself(tmp_path):
    source = write(tmp_path, "app.lackey", LACKEY)
    target = tmp_path / "app.mstrace"
    result = invoke("convert", source, "-o", target)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (f"{source}: 8,000 events, 2 lines skipped as not records -> {target}")
    trace = load_trace(target)
    assert (trace.name, trace.n_events, trace.n_objects, trace.allocator.model) == ("app.lackey", 8000, 0, "none")
    direct, converted = run_json(source), run_json(target)
    assert direct["trace"] == {"name": "app.lackey", "events": 8000,
                               "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    assert converted["trace"]["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    del direct["trace"]["sha256"], converted["trace"]["sha256"]
    assert direct == converted


def test_gzip_and_many_chunks(tmp_path, monkeypatch):
    plain = run_json(write(tmp_path, "app.lackey", LACKEY))
    packed = tmp_path / "app.lackey.gz"
    packed.write_bytes(gzip.compress(LACKEY.encode()))
    monkeypatch.setattr(cli, "CHUNK_EVENTS", 777)  # the event count is known only once the last chunk is read
    chunked = run_json(packed)
    assert chunked["trace"]["events"] == 8000 and chunked["trace"]["name"] == "app.lackey.gz"
    del plain["trace"], chunked["trace"]
    assert plain == chunked
    assert invoke("convert", packed, "-o", tmp_path / "z.mstrace", "-q").exit_code == 0
    assert load_trace(tmp_path / "z.mstrace").n_events == 8000


def test_din_by_from_and_its_form_is_told(tmp_path):
    source = write(tmp_path, "trace.txt", DIN)
    result = invoke("convert", source, "-o", tmp_path / "d.mstrace", "--from", "din")
    assert result.exit_code == 0, result.output
    assert "(classic form): 5,000 events" in result.stderr
    assert run_json(source, "--from", "din")["trace"]["events"] == 5000


def test_csv_cores_are_checked_against_the_machine(tmp_path):
    source = write(tmp_path, "t.csv", CSV)
    machine = write(tmp_path, "two.yaml", "memsim: 1\nname: two\ncores: 2\nline_size: 64\nlevels: [{name: L1, "
                                          "sets: 4, ways: 2, latency: 1}]\nmemory: {latency: 10}\n")
    result = invoke("run", source, "--machine", machine)
    assert result.exit_code == 2
    assert result.output.strip() == ("error: " + f"{source}: event 2: core 2 is out of range: the machine has 2 "
                                     "cores (0-1)")
    assert invoke("convert", source, "-o", tmp_path / "c.mstrace", "-q").exit_code == 0
    result = invoke("run", tmp_path / "c.mstrace", "--machine", machine)
    assert "c.mstrace: event 2: core 2 is out of range" in result.output


def test_json_to_stdout_keeps_the_summary_on_stderr(tmp_path):
    source = write(tmp_path, "app.lackey", LACKEY + " L zz,8\n")
    result = invoke("run", source, "--json", "-", "--skip-bad-lines")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["trace"]["events"] == 8000
    assert f"1 line malformed and skipped (the first: {source}:8003:4:" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["x.trace", "-o", "x.mstrace"], "cannot tell the format from the file name: known extensions are .lackey, "
                                     ".lackey.txt, .din, .csv (each also with .gz), .yaml and .yml"),
    (["x.trace", "-o", "x.mstrace", "--from", "pin"], "--from: unknown trace format 'pin'; known: lackey, din, csv, "
                                                      "yaml"),
    (["t.yaml", "-o", "x.mstrace", "--skip-bad-lines"], "--skip-bad-lines: applies only to lackey, din and CSV"),
])
def test_convert_usage_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "x.trace", LACKEY)
    write(tmp_path, "t.yaml", "memsim: 1\nevents: [{read: {core: 0, addr: 0, size: 8}}]\n")
    result = invoke("convert", *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.mstrace").exists()


def test_a_bad_line_stops_the_conversion_and_leaves_nothing(tmp_path):
    source = write(tmp_path, "app.lackey", LACKEY + " L 12,zz\n")
    target = tmp_path / "app.mstrace"
    result = invoke("convert", source, "-o", target)
    assert result.exit_code == 2 and f"error: {source}:8003:" in result.output
    assert not target.exists() and leftovers(tmp_path) == []
    result = invoke("convert", source, "-o", target, "--skip-bad-lines")
    assert result.exit_code == 0 and "1 line malformed and skipped" in result.stderr
    assert load_trace(target).n_events == 8000


class Boom(Exception):
    pass


@pytest.mark.parametrize("failure, code", [(Boom, None), (KeyboardInterrupt, 130)])
def test_a_failure_midway_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch, failure, code):
    source = write(tmp_path, "app.lackey", LACKEY * 3)
    target = write(tmp_path, "app.mstrace", "the previous conversion")
    fresh = tmp_path / "new.mstrace"
    real_write, calls = binary.BinaryWriter.write, []

    def failing_write(self, events):
        calls.append(len(events))
        if len(calls) == 2:
            raise failure()
        real_write(self, events)

    monkeypatch.setattr(binary.BinaryWriter, "write", failing_write)
    monkeypatch.setattr(cli, "CHUNK_EVENTS", 5000)
    for out in (target, fresh):
        calls.clear()
        if code is None:
            with pytest.raises(Boom):
                invoke("convert", source, "-o", out)
        else:
            result = invoke("convert", source, "-o", out)
            assert result.exit_code == code and "interrupted: nothing written" in result.output
        assert len(calls) == 2
    assert target.read_text() == "the previous conversion"
    assert not fresh.exists() and leftovers(tmp_path) == []


def test_a_failure_while_finishing_leaves_no_file(tmp_path, monkeypatch):
    source = write(tmp_path, "app.lackey", LACKEY)
    monkeypatch.setattr(binary.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    result = invoke("convert", source, "-o", tmp_path / "app.mstrace")
    assert result.exit_code == 2 and "cannot write: No space left on device" in result.output
    assert not (tmp_path / "app.mstrace").exists() and leftovers(tmp_path) == []


def test_quiet_says_nothing(tmp_path):
    result = invoke("convert", write(tmp_path, "t.csv", CSV), "-o", tmp_path / "t.mstrace", "--quiet")
    assert result.exit_code == 0 and result.output == ""


def test_the_written_file_has_ordinary_permissions(tmp_path):
    target = tmp_path / "t.mstrace"
    assert invoke("convert", write(tmp_path, "t.csv", CSV), "-o", target, "-q").exit_code == 0
    assert target.stat().st_mode & 0o044  # readable by others, as with any file the user writes (mkstemp: 0600)


@pytest.mark.parametrize("command", ["convert", "run"])
def test_the_byte_bar_follows_the_importers_bytes_read(tmp_path, monkeypatch, command):
    source = write(tmp_path, "app.lackey", LACKEY * 3)
    drawn = []

    @contextmanager
    def recording_bar(label, total, in_bytes):
        assert in_bytes and total == source.stat().st_size
        yield lambda completed, advance: drawn.append(completed)

    monkeypatch.setattr(progress, "_bar", recording_bar)
    monkeypatch.setattr(progress, "_worth_a_bar", lambda enabled, amount, minimum: enabled)
    monkeypatch.setattr(cli, "CHUNK_EVENTS", 5000)  # convert's chunks
    monkeypatch.setattr(runner, "CHUNK_EVENTS", 5000)  # run's
    extra = ("-o", tmp_path / "app.mstrace") if command == "convert" else ("--machine", "example-4c")
    assert invoke(command, source, *extra).exit_code == 0
    assert len(drawn) == 5 and drawn == sorted(drawn) and drawn[-1] == source.stat().st_size  # 24,000 events