"""Writing outputs: atomically, so a crash or Ctrl-C never leaves a half-written file."""
from __future__ import annotations

import sys

from memsim.atomic import atomic_file


def write_text(target: str, text: str) -> None:
    """Write ``text`` to the file ``target`` (``-`` = stdout) by renaming a finished temporary file."""
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_file(target, "w") as file:
        file.write(text)
