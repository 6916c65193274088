"""Where Numba keeps compiled kernels, decided when memsim is imported, before Numba is.

Numba checks a cached kernel only against its own source file, so a kernel compiled against
another version of a module it imports constants from (array layouts, field numbers) would be
loaded as if nothing had changed. memsim therefore keeps its kernels in a folder named after a
hash of the source the kernels can reach (``numba-<hash>``: ``KERNEL_SOURCES``; the report, the
file formats and the CLI are left out, so editing them keeps the compiled kernels), and removes the
folders of other versions next to it.

The folder goes inside ``NUMBA_CACHE_DIR`` when you set it; otherwise in the package's
``__pycache__`` when that is writable, else ``$XDG_CACHE_HOME/memsim`` (or ``~/.cache/memsim``),
else the system temporary directory. memsim never fails at import for want of a writable folder.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
KERNEL_SOURCES = ("engine", "models", "trace", "machine.py", "numba_cache.py")  # what jitted code imports


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        return True
    except OSError:
        return False


def source_hash() -> str:
    digest = hashlib.sha256()
    paths = []
    for name in KERNEL_SOURCES:
        paths += [PACKAGE / name] if name.endswith(".py") else PACKAGE.joinpath(name).rglob("*.py")
    for path in sorted(paths):
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_cache_dir() -> None:
    if os.environ.get("MEMSIM_NUMBA_CACHE_SET"):  # already decided in this process (or its parent)
        return
    user = os.environ.get("NUMBA_CACHE_DIR")
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "memsim"
    candidates = [Path(user)] if user else [Path(__file__).parent / "__pycache__", xdg]
    candidates.append(Path(tempfile.gettempdir()) / f"memsim-numba-{os.getuid()}")
    name = f"numba-{source_hash()}"
    for parent in candidates:
        if _writable(parent / name):
            _remove_other_versions(parent, name)
            os.environ["NUMBA_CACHE_DIR"] = str(parent / name)
            os.environ["MEMSIM_NUMBA_CACHE_SET"] = "1"
            return


def _remove_other_versions(parent: Path, keep: str) -> None:
    for old in parent.glob("numba-*"):
        if old.name != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def share_scopes_when_inlining() -> None:
    """Make Numba's inliner copy a function's variable scope cheaply (compile time only).

    Numba inlines a callee (``inline="always"``) by deep-copying its IR one block at a time, and
    every block's copy deep-copies the whole variable scope again: time grows with blocks x
    variables, and for the replay kernel, whose inlined callees are large, that copying was about
    half of the first run's compile time. Copying a scope's tables without re-creating each
    variable gives the inliner the same IR (it only reads the callee's variables to rename them
    into the caller's scope). Applied only to a Scope with exactly the attributes this was checked
    against; any other Numba compiles as it ships, just slower.
    """
    import copy

    from numba.core import ir

    if getattr(ir.Scope, "_memsim_shared", False):
        return
    probe = ir.Scope(None, ir.Loc("", 0))
    if set(vars(probe)) != {"parent", "localvars", "loc", "redefined", "var_redefinitions"} or set(
            vars(probe.localvars)) != {"_con"}:
        return

    def copy_scope(scope, memo):
        new = copy.copy(scope)
        new.localvars = copy.copy(scope.localvars)
        new.localvars._con = dict(scope.localvars._con)
        new.redefined = copy.copy(scope.redefined)
        new.var_redefinitions = copy.deepcopy(scope.var_redefinitions, memo)
        memo[id(scope)] = new
        return new

    ir.Scope.__deepcopy__ = copy_scope
    ir.Scope._memsim_shared = True
