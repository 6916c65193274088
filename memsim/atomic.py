"""Writing a file atomically: a crash or Ctrl-C never leaves a half-written file, and an existing
file is replaced only by a complete one.

It lives at the package's top, beside errors.py, because both the formats (binary traces) and the
report (JSON, tables) write files this way, and the formats must not import from the report: data
flows from formats to report, never back.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from memsim.errors import UserError


@contextmanager
def atomic_file(target: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Yield a temporary file, open in ``mode`` ("w" as UTF-8 text, or "wb"), beside ``target``.
    When the block ends normally the file is flushed, synced to disk, given the permissions any new
    file of the user's gets, and renamed onto ``target``; when it raises (KeyboardInterrupt too) the
    temporary is removed, ``target`` is left as it was, and the exception goes on. Problems with the
    target's folder, and with finishing the file, are UserErrors naming ``target``."""
    where, path = str(target), Path(target)
    if path.is_dir():
        raise UserError("is a directory, expected a file to write", where)
    try:
        # beside the target, not in /tmp: a rename is atomic only within one file system
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise UserError(f"cannot write here: {e.strerror}", where) from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as file:
            yield file
            try:
                file.flush()
                os.fsync(file.fileno())  # the rename must not reach the disk before the data does
                os.fchmod(file.fileno(), 0o666 & ~_umask())  # mkstemp's 0600 is for the temporary only
                file.close()
                os.replace(temporary, path)
            except OSError as e:
                raise UserError(f"cannot write: {e.strerror}", where) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask. It can only be read by setting it, so it is set back at once."""
    umask = os.umask(0)
    os.umask(umask)
    return umask
