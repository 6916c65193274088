"""Where Numba keeps compiled kernels, decided when memsim is imported, before Numba is.

Numba caches next to the source when it can write there, else in the user's cache directory; when
neither is writable, decorating a cached function fails at import. memsim checks first and, if
needed, points ``NUMBA_CACHE_DIR`` at a writable place: ``$XDG_CACHE_HOME/memsim/numba`` (or
``~/.cache/memsim/numba``), else a folder in the system temporary directory.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        return True
    except OSError:
        return False


def ensure_cache_dir() -> None:
    if os.environ.get("NUMBA_CACHE_DIR") or _writable(Path(__file__).parent / "__pycache__"):
        return
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    for candidate in (Path(xdg) / "memsim" / "numba", Path(tempfile.gettempdir()) / f"memsim-numba-{os.getuid()}"):
        if _writable(candidate):
            os.environ["NUMBA_CACHE_DIR"] = str(candidate)
            return
