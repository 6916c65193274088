"""Writing outputs: atomically, so a crash or Ctrl-C never leaves a half-written file."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from memsim.errors import UserError


def write_text(target: str, text: str) -> None:
    """Write ``text`` to the file ``target`` (``-`` = stdout) by renaming a finished temporary file."""
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(target)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserError("is a directory, expected a file to write", target)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise UserError(f"cannot write here: {e.strerror}", target) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
