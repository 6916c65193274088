"""Rich progress bars for long replays and conversions, on stderr, only when stderr is a terminal."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

MIN_EVENTS_FOR_BAR = 1 << 22  # shorter runs finish before a bar is worth drawing
MIN_BYTES_FOR_BAR = 64 << 20  # about as long to read and parse as MIN_EVENTS_FOR_BAR events


def _no_bar(n: int) -> None:
    pass


@contextmanager
def _bar(label: str, total: int, in_bytes: bool) -> Iterator[Callable[[int | None, int], None]]:
    """Yields ``update(completed, advance)``: set the bar to ``completed`` (None: keep it) or move it
    by ``advance``. It counts events, or bytes when ``in_bytes``."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn(label), BarColumn(), DownloadColumn() if in_bytes else MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
    )
    rate_unit = "MB/s" if in_bytes else "M events/s"
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total, rate="")

        def update(completed: int | None, advance: int) -> None:
            if completed is None:
                progress.advance(task, advance)
            else:
                progress.update(task, completed=completed)
            speed = progress.tasks[0].speed
            progress.update(task, rate=f"{speed / 1e6:,.1f} {rate_unit}" if speed else "")

        yield update


@contextmanager
def replay_progress(total_events: int, enabled: bool = True, label: str = "replaying") -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n_events)``; draws a bar with events/s and ETA when it is worth it."""
    if not enabled or total_events < MIN_EVENTS_FOR_BAR or not sys.stderr.isatty():
        yield _no_bar
        return
    with _bar(label, total_events, in_bytes=False) as update:
        yield lambda n: update(None, n)


@contextmanager
def file_progress(path: Path, enabled: bool = True, label: str = "reading") -> Iterator[Callable[[int], None]]:
    """For events read from ``path`` by a reader that opens the file itself and whose event count
    is unknown until the end: yields ``advance(n_events)``, and the bar follows the bytes of the
    file the reader has consumed."""
    total = path.stat().st_size if path.is_file() else 0
    if not enabled or total < MIN_BYTES_FOR_BAR or not sys.stderr.isatty():
        yield _no_bar
        return
    position = _read_position(path)
    with _bar(label, total, in_bytes=True) as update:
        yield lambda n: update(position(), 0)


def _read_position(path: Path) -> Callable[[], int | None]:
    """How far into ``path`` the descriptor this process has open on it has got. The importers own
    their file object; the kernel's offset of its descriptor is the one thing they share, and
    asking for it (lseek to the current position) does not move it. None while no descriptor is
    open on the file (or where descriptors cannot be listed)."""
    wanted = path.stat()
    found: list[int] = []

    def same_file(fd: int) -> bool:
        try:
            st = os.fstat(fd)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == (wanted.st_dev, wanted.st_ino)

    def position() -> int | None:
        if not (found and same_file(found[0])):
            found.clear()
            try:
                fds = [int(fd) for fd in os.listdir("/dev/fd")]
            except OSError:
                return None
            found.extend(fd for fd in fds if same_file(fd))
            if not found:
                return None
        try:
            return os.lseek(found[0], 0, os.SEEK_CUR)
        except OSError:
            return None

    return position
