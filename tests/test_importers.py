"""Foreign-trace importers: every format to exact columns, gzip, chunking, block boundaries, every
malformed line with its file:line:column, --skip-bad-lines, a real lackey trace, and generated files."""
from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memsim.errors import UserError
from memsim.formats.importers import MAX_LINE_BYTES, ImportStats, detect_format, read_records
from memsim.trace.events import COLUMNS, MAX_ADDRESS, NO_OBJECT, OP_IFETCH, OP_READ, OP_RMW, OP_WRITE, Events

DATA = Path(__file__).parent / "data" / "importers"
R, W, M, I = OP_READ, OP_WRITE, OP_RMW, OP_IFETCH
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def read(path, fmt, **options) -> tuple[Events, ImportStats]:
    """All the chunks of a file, joined, and the stats."""
    stats = ImportStats()
    chunks = list(read_records(path, fmt, stats=stats, **options))
    assert stats.bytes_read == Path(path).stat().st_size  # all of the file, as stored (gzip: compressed)
    if "chunk_events" in options:
        assert all(1 <= len(c) <= options["chunk_events"] for c in chunks)
    joined = Events(**{name: np.concatenate([getattr(c, name) for c in chunks]) for name in COLUMNS})
    for name, dtype in COLUMNS.items():
        assert getattr(joined, name).dtype == dtype
    return joined, stats


def rows(events: Events) -> list[tuple[int, int, int, int]]:
    """(op, core, addr, size) per event, after checking the columns a raw access always has."""
    assert (events.obj == NO_OBJECT).all() and (events.flags == 0).all()
    assert (events.site == -1).all() and (events.src == 0).all()
    return list(zip(events.op.tolist(), events.core.tolist(), events.addr.tolist(), events.size.tolist()))


def write(tmp_path, text: str | bytes, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def error(path, fmt, **options) -> str:
    with pytest.raises(UserError) as caught:
        read(path, fmt, **options)
    return str(caught.value)


SAMPLES = {  # fixture -> (format, rows, stats)
    "sample.lackey": ("lackey", [
        (I, 0, 0x4000B40, 3), (W, 0, 0x1FFEFFFD78, 8), (R, 0, 0x421F5C8, 4), (M, 0, 0x421F5C8, 4),
        (I, 0, 0x4000B43, 16), (I, 0, 0x7FFFFFFFFFFFFF00, 255)],
        ImportStats(records=6, skipped_lines=8, cores=1)),
    "classic.din": ("din", [
        (I, 0, 0x0, 4), (R, 0, 0x1000, 4), (R, 0, 0x70F60888, 4), (I, 0, 0x2CB4, 4), (W, 0, 0x70F6088C, 4),
        (W, 0, 0x70F6088C, 4)],
        ImportStats(records=6, skipped_lines=3, variant="classic")),
    "extended.din": ("din", [
        (I, 0, 0x400100, 4), (R, 0, 0x7FFF5A30, 8), (W, 0, 0x7FFF5A38, 16), (R, 0, 0x1001, 1), (R, 0, 0x3, 255)],
        ImportStats(records=5, skipped_lines=3, variant="extended")),
    "sample.csv": ("csv", [(R, 0, 4096, 8), (W, 1, 0x1008, 8), (M, 3, 0x2000, 64), (I, 2, 4198656, 4)],
                   ImportStats(records=4, skipped_lines=1, cores=4)),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_each_format_gives_exact_columns(name):
    fmt, expected, expected_stats = SAMPLES[name]
    events, stats = read(DATA / name, fmt)
    assert rows(events) == expected
    assert stats == expected_stats


@pytest.mark.parametrize("name", SAMPLES)
def test_gzip_is_recognised_by_its_magic_bytes(tmp_path, name):
    fmt, expected, expected_stats = SAMPLES[name]
    packed = gzip.compress((DATA / name).read_bytes())
    for stored_as in (name + ".gz", name):  # with and without the .gz name
        events, stats = read(write(tmp_path, packed, stored_as), fmt, block_bytes=5)
        assert rows(events) == expected and stats == expected_stats


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("chunk_events", [1, 7, 1 << 20])
@pytest.mark.parametrize("block_bytes", [1, 2, 3, 10, 64, 1 << 22])
def test_chunks_and_block_boundaries_change_nothing(name, chunk_events, block_bytes):
    fmt, expected, expected_stats = SAMPLES[name]
    events, stats = read(DATA / name, fmt, chunk_events=chunk_events, block_bytes=block_bytes)
    assert rows(events) == expected and stats == expected_stats
    chunks = list(read_records(DATA / name, fmt, chunk_events=chunk_events, block_bytes=block_bytes))
    assert [len(c) for c in chunks] == [min(chunk_events, len(expected) - i) for i in range(0, len(expected),
                                                                                             chunk_events)]


def test_stats_follow_the_stream():
    stats = ImportStats()
    chunks = read_records(DATA / "sample.csv", "csv", stats=stats, chunk_events=3)
    assert len(next(chunks)) == 3 and stats.records == 3
    assert len(next(chunks)) == 1 and stats.records == 4 and stats.cores == 4
    chunks.close()  # stopping early ends the read-ahead thread
    assert read(DATA / "sample.csv", "csv")[1] == SAMPLES["sample.csv"][2]
    list(read_records(DATA / "sample.csv", "csv", stats=stats))  # a second read starts afresh
    assert stats == SAMPLES["sample.csv"][2]


@pytest.mark.parametrize("packed", [False, True])
def test_bytes_read_moves_with_the_blocks_up_to_the_file_size(tmp_path, packed):
    rng = np.random.default_rng(7)  # random addresses: gzip cannot shrink the file to one read's worth
    text = "".join(f"{i % 3} {a:x}\n" for i, a in enumerate(rng.integers(0, 1 << 40, 200_000))).encode()
    stored = gzip.compress(text) if packed else text
    path = write(tmp_path, stored, "t.din")
    stats = ImportStats()
    seen = [stats.bytes_read for _ in read_records(path, "din", stats=stats, chunk_events=1000, block_bytes=4096)]
    assert 0 < seen[0] < len(stored) and seen == sorted(seen)
    assert stats.bytes_read == len(stored) and stats.records == 200_000


def test_crlf_and_a_missing_last_newline(tmp_path):
    text = "==1== banner\n L 10,8\n S 20,4"
    plain, plain_stats = read(write(tmp_path, text, "a.lackey"), "lackey")
    crlf, crlf_stats = read(write(tmp_path, text.replace("\n", "\r\n"), "b.lackey"), "lackey")
    assert rows(plain) == rows(crlf) == [(R, 0, 0x10, 8), (W, 0, 0x20, 4)]
    assert plain_stats == crlf_stats == ImportStats(records=2, skipped_lines=1)


def test_csv_core_is_optional_and_op_any_case(tmp_path):
    events, stats = read(write(tmp_path, "op,size,addr\nRead,1,0\n IFETCH , 0x10 , 0x400\n", "t.csv"), "csv")
    assert rows(events) == [(R, 0, 0, 1), (I, 0, 0x400, 16)]
    assert stats == ImportStats(records=2, cores=1)


def test_din_escape_records_decide_the_form(tmp_path):
    events, stats = read(write(tmp_path, "4\n3 0\n0 10\n", "t.din"), "din")
    assert rows(events) == [(R, 0, 0x10, 4)] and stats.variant == "classic" and stats.skipped_lines == 2
    events, stats = read(write(tmp_path, "v 0 0\nc\nw 10 2\n", "t.din"), "din")
    assert rows(events) == [(W, 0, 0x10, 2)] and stats.variant == "extended" and stats.skipped_lines == 2


def test_largest_addresses(tmp_path):
    top = MAX_ADDRESS  # addr + size may reach 2^63-1, not pass it
    path = write(tmp_path, f"op,addr,size\nread,{top - 1},1\nwrite,0,{top}\n", "t.csv")
    assert rows(read(path, "csv")[0]) == [(R, 0, top - 1, 1), (W, 0, 0, top)]
    path = write(tmp_path, f"0 {top - 5:x}\nr {top - 4:x} 4\n", "t.din")  # classic: the word holding the address
    assert rows(read(path, "din", skip_bad_lines=True)[0]) == [(R, 0, top - 7, 4)]
    path = write(tmp_path, f"r {top - 4:x} 4\nw 0 {top:x}\n", "t.din")
    assert rows(read(path, "din")[0]) == [(R, 0, top - 4, 4), (W, 0, 0, top)]


BAD = [  # format, file text, the whole message
    ("lackey", "==1== x\nI  zz,3\n", "t:2:4: expected an address, a hexadecimal number without 0x; found 'zz' "
     "(a lackey record reads e.g. ' L 1ffefffd78,8')"),
    ("lackey", "I  \n", "t:1:4: expected an address, a hexadecimal number without 0x; found the end of the line "
     "(a lackey record reads e.g. ' L 1ffefffd78,8')"),
    ("lackey", " L 10;3\n", "t:1:6: expected ',' between the address and the size, found ';3' "
     "(a lackey record reads e.g. ' L 1ffefffd78,8')"),
    ("lackey", " S 10,\n", "t:1:7: expected a size, a decimal number; found the end of the line "
     "(a lackey record reads e.g. ' L 1ffefffd78,8')"),
    ("lackey", " S 10,8x8\n", "t:1:8: unexpected text after the size: 'x8' (a lackey record reads e.g. "
     "' L 1ffefffd78,8')"),
    ("lackey", " M 10,0\n", "t:1:7: the size is 0: an access touches at least 1 byte"),
    ("lackey", " L 10,8 9\n", "t:1:9: unexpected text after the size: '9' (a lackey record reads e.g. "
     "' L 1ffefffd78,8')"),
    ("lackey", "I  ffffffffff600000,9\n", "t:1:4: the address 'ffffffffff600000' is past memsim's largest "
     "address 2^63-1 (0x7fffffffffffffff)"),
    ("lackey", " L 10,99999999999999999999\n", "t:1:7: the size '99999999999999999999' is past memsim's largest "
     "address 2^63-1 (0x7fffffffffffffff)"),
    ("lackey", " L 7ffffffffffffff9,8\n", "t:1:21: the access of 8 byte(s) at 0x7ffffffffffffff9 ends past "
     "memsim's largest address 2^63-1 (0x7fffffffffffffff)"),
    ("din", "7 1000\n", "t:1:1: expected a label 0 (read), 1 (write), 2 (instruction fetch) or 3-5 (escape "
     "records, skipped), or a type r (read), w (write), i (instruction fetch), m (read), c or v (skipped), then a "
     "blank; found '7'"),
    ("din", "0 10\n 10 20\n", "t:2:2: expected a label 0 (read), 1 (write), 2 (instruction fetch) or 3-5 (escape "
     "records, skipped), then a blank; found '10'"),
    ("din", "r 10 4\nread 10 4\n", "t:2:1: expected a type r (read), w (write), i (instruction fetch), m (read), c "
     "or v (skipped), then a blank; found 'read'"),
    ("din", "0 10g0\n", "t:1:3: expected an address, a hexadecimal number (0x optional); found '10g0' (a din "
     "record reads e.g. '0 7fff5a3c' or 'r 7fff5a3c 8')"),
    ("din", "1\n", "t:1:2: expected an address, a hexadecimal number (0x optional); found the end of the line "
     "(a din record reads e.g. '0 7fff5a3c' or 'r 7fff5a3c 8')"),
    ("din", "w 10\n", "t:1:5: expected a size, a hexadecimal number (0x optional), which an extended din record "
     "needs; found the end of the line (a din record reads e.g. '0 7fff5a3c' or 'r 7fff5a3c 8')"),
    ("din", "w 10 8z\n", "t:1:6: expected a size, a hexadecimal number (0x optional), which an extended din "
     "record needs; found '8z' (a din record reads e.g. '0 7fff5a3c' or 'r 7fff5a3c 8')"),
    ("din", "r 10 0\n", "t:1:6: the size is 0: an access touches at least 1 byte"),
    ("din", "\n0 10\n\ni 10 4\n", "t:4:1: this record is in din's extended form (letter types, e.g. 'r 7fff5a3c "
     "8'), but the file's first record (line 2) is in the classic form (numeric labels, e.g. '0 7fff5a3c'); a file "
     "uses one form"),
    ("din", "r 10 4\n  4\n", "t:2:3: this record is in din's classic form (numeric labels, e.g. '0 7fff5a3c'), "
     "but the file's first record (line 1) is in the extended form (letter types, e.g. 'r 7fff5a3c 8'); a file "
     "uses one form"),
    ("din", "0 80000000000000000\n", "t:1:3: the address '80000000000000000' is past memsim's largest address "
     "2^63-1 (0x7fffffffffffffff)"),
    ("din", "r 0 8000000000000000\n", "t:1:5: the size '8000000000000000' is past memsim's largest address 2^63-1 "
     "(0x7fffffffffffffff)"),
    ("din", "0 7ffffffffffffffd\n", "t:1:3: the access of 4 byte(s) at 0x7ffffffffffffffc ends past memsim's "
     "largest address 2^63-1 (0x7fffffffffffffff)"),
    ("csv", "core,op,addr,size\n0,load,10,4\n", "t:2:3: op must be read, write, rmw or ifetch; found 'load'"),
    ("csv", "core,op,addr,size\n0,read,-1,4\n", "t:2:8: addr must be a non-negative integer, decimal or "
     "0x-hexadecimal; found '-1'"),
    ("csv", "core,op,addr,size\n0,read,,4\n", "t:2:8: addr must be a non-negative integer, decimal or "
     "0x-hexadecimal; found an empty field"),
    ("csv", "core,op,addr,size\n0,read,0x12g,4\n", "t:2:8: addr must be a non-negative integer, decimal or "
     "0x-hexadecimal; found '0x12g'"),
    ("csv", "core,op,addr,size\n0,read,1 2,4\n", "t:2:8: addr must be a non-negative integer, decimal or "
     "0x-hexadecimal; found '1 2'"),
    ("csv", "core,op,addr,size\n0,read,10\n", "t:2:10: the line ends after 3 field(s); the header names 4 "
     "columns: core, op, addr, size"),
    ("csv", "core,op,addr,size\n0,read,10,4,\n", "t:2:12: the line has more fields than the header; the header "
     "names 4 columns: core, op, addr, size"),
    ("csv", "core,op,addr,size\n2147483648,read,1,4\n", "t:2:1: the core '2147483648' is too large: cores go "
     "from 0 to 2^31-1"),
    ("csv", "core,op,addr,size\n99999999999999999999,read,1,4\n", "t:2:1: the core '99999999999999999999' is too "
     "large: cores go from 0 to 2^31-1"),
    ("csv", "core,op,addr,size\n0,\"read,1,4\n", "t:2:8: expected the closing '\"' of the op field, found ','"),
    ("csv", "op,addr,size\nread,10,0\n", "t:2:9: the size is 0: an access touches at least 1 byte"),
    ("csv", "op,addr,size\nread,9223372036854775808,1\n", "t:2:6: the address '9223372036854775808' is past "
     "memsim's largest address 2^63-1 (0x7fffffffffffffff)"),
    ("csv", "op,addr,size\nread,1,0x8000000000000000\n", "t:2:8: the size '0x8000000000000000' is past memsim's "
     "largest address 2^63-1 (0x7fffffffffffffff)"),
    ("csv", "op,addr,size\nread,0x7fffffffffffffff,1\n", "t:2:25: the access of 1 byte(s) at 0x7fffffffffffffff "
     "ends past memsim's largest address 2^63-1 (0x7fffffffffffffff)"),
    ("csv", "op,addr,size\nréad,1,1\n", "t:2:1: op must be read, write, rmw or ifetch; found 'réad'"),
    ("csv", "op,addr,size\nread,\"é1\",1\n", "t:2:7: addr must be a non-negative integer, decimal or "
     "0x-hexadecimal; found 'é1\"'"),
    # the header
    ("csv", "", "t: the file is empty: a CSV trace starts with a header line naming its columns (core, op, addr, "
     "size)"),
    ("csv", "\n \ncore,op,address,size\n", "t:3:9: the header names column 'address' (did you mean 'addr'?); "
     "allowed: core, op, addr, size"),
    ("csv", "op,addr, ,size\n", "t:1:10: the header names an empty column name; allowed: core, op, addr, size"),
    ("csv", "core,op,size\n", "t:1:1: the header has no 'addr' column: a CSV trace needs op, addr and size (core "
     "is optional, default 0); found core, op, size"),
    ("csv", "core\n", "t:1:1: the header has no 'op' or 'addr' or 'size' column: a CSV trace needs op, addr and "
     "size (core is optional, default 0); found core"),
    ("csv", "op,addr,size,OP\n", "t:1:14: the header names column 'op' twice"),
    # no records
    ("lackey", "==1== Lackey\n\n", "t: the file holds no lackey record (2 line(s) skipped as not records); is this "
     "the log of 'valgrind --tool=lackey --trace-mem=yes'?"),
    ("din", "", "t: the file holds no din record (0 line(s) skipped as not records); a din record is e.g. "
     "'0 7fff5a3c' or 'r 7fff5a3c 8'"),
    ("csv", "op,addr,size\n\n", "t: the file holds no csv record (1 line(s) skipped as not records); records "
     "follow the header, one per line"),
]


@pytest.mark.parametrize("fmt, text, message", BAD)
@pytest.mark.parametrize("block_bytes", [1, 3, 1 << 22])
def test_malformed_lines_name_line_column_found_and_allowed(tmp_path, fmt, text, message, block_bytes):
    path = write(tmp_path, text, "trace")
    assert error(path, fmt, display="t", block_bytes=block_bytes) == message


def test_skip_bad_lines_counts_them_and_keeps_the_first(tmp_path):
    text = "I  10,1\n S zz,8\n==1== x\n M 10,0\n L 20,2\n"
    events, stats = read(write(tmp_path, text, "t.lackey"), "lackey", skip_bad_lines=True, display="t",
                         block_bytes=4)
    assert rows(events) == [(I, 0, 0x10, 1), (R, 0, 0x20, 2)]
    assert stats == ImportStats(records=2, skipped_lines=1, bad_lines=2, first_bad=(
        "t:2:4: expected an address, a hexadecimal number without 0x; found 'zz' (a lackey record reads e.g. "
        "' L 1ffefffd78,8')"))
    text = "op,addr,size\nread,1,1\nwrite,x,1\nread,2,2,2\nrmw,3,3\n"
    events, stats = read(write(tmp_path, text, "t.csv"), "csv", skip_bad_lines=True, display="t")
    assert rows(events) == [(R, 0, 1, 1), (M, 0, 3, 3)]
    assert (stats.bad_lines, stats.first_bad) == (2, "t:3:7: addr must be a non-negative integer, decimal or "
                                                     "0x-hexadecimal; found 'x'")
    text = "0 10\nr 10 4\n1 20\n"
    events, stats = read(write(tmp_path, text, "t.din"), "din", skip_bad_lines=True, display="t")
    assert rows(events) == [(R, 0, 0x10, 4), (W, 0, 0x20, 4)] and stats.variant == "classic"
    assert stats.bad_lines == 1 and stats.first_bad.startswith("t:2:1: this record is in din's extended form")


def test_a_file_of_bad_lines_only_is_still_an_error(tmp_path):
    message = error(write(tmp_path, " L x,1\n L y,1\n", "t.lackey"), "lackey", skip_bad_lines=True, display="t")
    assert message == ("t: the file holds no lackey record (0 line(s) skipped as not records, 2 malformed (first: "
                       "t:1:4: expected an address, a hexadecimal number without 0x; found 'x' (a lackey record "
                       "reads e.g. ' L 1ffefffd78,8'))); is this the log of 'valgrind --tool=lackey --trace-mem=yes'?")


@pytest.mark.parametrize("block_bytes", [1000, 1 << 22])  # the long line in one block, or spread over many
def test_overlong_lines(tmp_path, block_bytes):
    long = "x" * (MAX_LINE_BYTES + 1)
    path = write(tmp_path, f"I  10,1\n{long}\n L {long}\n S 20,2\n", "t.lackey")
    assert error(path, "lackey", display="t", block_bytes=block_bytes) == (
        "t:3:1: the line is longer than 64 KiB: it is no lackey record")
    events, stats = read(path, "lackey", skip_bad_lines=True, display="t", block_bytes=block_bytes)
    assert rows(events) == [(I, 0, 0x10, 1), (W, 0, 0x20, 2)]
    assert stats == ImportStats(records=2, skipped_lines=1, bad_lines=1,
                                first_bad="t:3:1: the line is longer than 64 KiB: it is no lackey record")
    fits = " " * MAX_LINE_BYTES
    path = write(tmp_path, f"0 10\n{fits}\n{fits} \n0 20 {long}", "t.din")
    assert error(path, "din", display="t", block_bytes=block_bytes) == (
        "t:3:1: the line is longer than 64 KiB: it is no din record")
    events, stats = read(path, "din", skip_bad_lines=True, display="t", block_bytes=block_bytes)
    assert rows(events) == [(R, 0, 0x10, 4)] and (stats.skipped_lines, stats.bad_lines) == (1, 2)


def test_unreadable_files(tmp_path):
    assert error(tmp_path / "missing.csv", "csv", display="t") == "t: cannot read the trace: No such file or directory"
    packed = gzip.compress(b"0 10\n" * 10000)
    message = error(write(tmp_path, packed[: len(packed) // 2], "t.din"), "din", display="t")
    assert message.startswith("t: cannot read the trace: Compressed file ended before the end-of-stream marker")
    with pytest.raises(ValueError):
        next(read_records(DATA / "sample.csv", "yaml"))


@pytest.mark.parametrize("name, fmt", [
    ("t.lackey", "lackey"), ("T.LACKEY.gz", "lackey"), ("run.lackey.txt", "lackey"), ("run.lackey.txt.gz", "lackey"),
    ("a.din", "din"), ("a.din.gz", "din"), ("x.csv", "csv"), ("x.CSV.GZ", "csv"),
    ("t.yaml", None), ("t.txt", None), ("t.gz", None), ("lackey", None), ("t.din.bz2", None),
])
def test_detect_format(name, fmt):
    assert detect_format(Path("some/dir") / name) == fmt


# -- a real lackey trace -------------------------------------------------------------------------

VALGRIND = shutil.which("valgrind")


@pytest.mark.skipif(not VALGRIND, reason="needs valgrind")
def test_a_real_lackey_trace(tmp_path):
    log = tmp_path / "true.lackey"
    subprocess.run([VALGRIND, "--tool=lackey", "--trace-mem=yes", f"--log-file={log}", "/bin/true"], check=True,
                   capture_output=True)
    expected = []  # a plain reading of the same file
    lines = log.read_text().splitlines()
    for line in lines:
        kind = {"I  ": I, " L ": R, " S ": W, " M ": M}.get(line[:3])
        if kind is not None:
            address, size = line[3:].split(",")
            expected.append((kind, 0, int(address, 16), int(size)))
    events, stats = read(log, "lackey", chunk_events=10_000, block_bytes=65_537)
    assert rows(events) == expected
    counts = {kind: sum(1 for line in lines if line.startswith(prefix))
              for kind, prefix in ((I, "I  "), (R, " L "), (W, " S "), (M, " M "))}
    assert {kind: int((events.op == kind).sum()) for kind in counts} == counts
    assert counts[I] > 10_000 and counts[R] > 1_000 and counts[W] > 1_000 and counts[M] > 0
    assert stats.records == len(expected) and stats.skipped_lines == len(lines) - len(expected) > 10
    assert stats.bad_lines == 0 and stats.cores == 1


# -- generated files ----------------------------------------------------------------------------

ADDRESSES = st.one_of(st.integers(0, 1 << 16), st.integers(0, MAX_ADDRESS - 8),
                      st.integers(MAX_ADDRESS - 300, MAX_ADDRESS - 8))


@st.composite
def accesses(draw, ops, cores=False, max_size=256):
    """A record list: (op, core, addr, size) with addr + size within memsim's range."""
    out = []
    for _ in range(draw(st.integers(1, 25))):
        addr = draw(ADDRESSES)
        size = draw(st.integers(1, min(max_size, MAX_ADDRESS - addr)))
        core = draw(st.integers(0, 2**31 - 1) | st.integers(0, 3)) if cores else 0
        out.append((draw(st.sampled_from(ops)), core, addr, size))
    return out


def hex_text(draw, value: int, prefix: bool) -> str:
    digits = f"{value:x}".zfill(draw(st.integers(1, 16)))  # lackey pads to 8 digits; any padding parses
    digits = digits.upper() if draw(st.booleans()) else digits
    return ("0x" if prefix and draw(st.booleans()) else "") + digits


@st.composite
def lackey_files(draw):
    records = draw(accesses([I, R, W, M]))
    prefix = {I: "I  ", R: " L ", W: " S ", M: " M "}
    lines, skipped = [], 0
    for op, _, addr, size in records:
        while draw(st.integers(0, 3)) == 3:  # rarely, and never in the simplest file
            lines.append(draw(st.sampled_from(["==123== banner", "", "SB 4000b40", "I am output", "  L 10,4", "I"])))
            skipped += 1
        lines.append(f"{prefix[op]}{hex_text(draw, addr, False)},{size}" + draw(st.sampled_from(["", " ", "\t"])))
    return lines, records, skipped, None


@st.composite
def din_files(draw):
    classic = draw(st.booleans())
    records = draw(accesses([I, R, W], max_size=2**20))
    lines, skipped, expected = [], 0, []
    for op, _, addr, size in records:
        while draw(st.integers(0, 3)) == 3:  # rarely, and never in the simplest file
            junk = ["", "  ", "3 0", "4 10", "5 0"] if classic else ["", "c 0 0", "V 10 4"]
            lines.append(draw(st.sampled_from(junk)))
            skipped += 1
        lead = draw(st.sampled_from(["", " ", "\t"]))
        comment = draw(st.sampled_from(["", " ", " a comment"]))
        if classic:
            lines.append(f"{lead}{'012'[[R, W, I].index(op)]} {hex_text(draw, addr, True)}{comment}")
            expected.append((op, 0, addr - addr % 4, 4))
        else:
            kind = draw(st.sampled_from({R: "rRmM", W: "wW", I: "iI"}[op]))
            lines.append(f"{lead}{kind} {hex_text(draw, addr, True)}  {hex_text(draw, size, True)}{comment}")
            expected.append((op, 0, addr, size))
    return lines, expected, skipped, "classic" if classic else "extended"


@st.composite
def csv_files(draw):
    records = draw(accesses([I, R, W, M], cores=True))
    names = draw(st.permutations(["core", "op", "addr", "size"]))
    names = [n for n in names if n != "core" or draw(st.booleans())]
    if "core" not in names:
        records = [(op, 0, addr, size) for op, _, addr, size in records]
    op_names = {R: "read", W: "write", M: "rmw", I: "ifetch"}
    lines, skipped = [",".join(draw(st.sampled_from([n, n.upper(), f' "{n}" '])) for n in names)], 0
    for op, core, addr, size in records:
        while draw(st.integers(0, 4)) == 4:
            lines.append(draw(st.sampled_from(["", " \t"])))
            skipped += 1
        values = {"core": core, "op": op_names[op], "addr": addr, "size": size}
        fields = []
        for name in names:
            value = values[name]
            text = value if name == "op" else (f"0x{value:x}" if draw(st.booleans()) else str(value))
            text = draw(st.sampled_from([text, text.upper() if name == "op" else text, f'"{text}"', f" {text} "]))
            fields.append(text)
        lines.append(",".join(fields))
    return lines, records, skipped, None


@pytest.mark.parametrize("fmt, files", [("lackey", lackey_files()), ("din", din_files()), ("csv", csv_files())])
@settings(max_examples=120, **SETTINGS)
@given(data=st.data())
def test_generated_files_read_back(tmp_path, fmt, files, data):
    lines, expected, skipped, variant = data.draw(files)
    newline = data.draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + data.draw(st.sampled_from([newline, ""]))
    raw = text.encode()
    if data.draw(st.booleans()):
        raw = gzip.compress(raw)
    path = write(tmp_path, raw, f"generated.{fmt}")
    chunk_events = data.draw(st.sampled_from([1, 3, 1 << 20]))
    block_bytes = data.draw(st.sampled_from([5, 64, 1 << 22]))  # block_bytes=1: see the sample files
    events, stats = read(path, fmt, chunk_events=chunk_events, block_bytes=block_bytes)
    assert rows(events) == expected
    cores = 1 + max(core for _, core, _, _ in expected)
    assert stats == ImportStats(records=len(expected), skipped_lines=skipped, variant=variant, cores=cores)
