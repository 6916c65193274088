"""Rich progress bars for long replays and conversions, on stderr, only when stderr is a terminal."""
from __future__ import annotations

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


def _worth_a_bar(enabled: bool, amount: int, minimum: int) -> bool:
    """Only where someone watches (logs and pipes get no bar) and for work long enough to watch."""
    return enabled and amount >= minimum and sys.stderr.isatty()


@contextmanager
def replay_progress(total_events: int, enabled: bool = True, label: str = "replaying") -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n_events)``; draws a bar with events/s and ETA when it is worth it."""
    if not _worth_a_bar(enabled, total_events, MIN_EVENTS_FOR_BAR):
        yield _no_bar
        return
    with _bar(label, total_events, in_bytes=False) as update:
        yield lambda n: update(None, n)


@contextmanager
def file_progress(path: Path, bytes_read: Callable[[], int], enabled: bool = True,
                  label: str = "reading") -> Iterator[Callable[[int], None]]:
    """For events read from ``path`` whose count is known only at the end: yields
    ``advance(n_events)``, and the bar follows ``bytes_read()``, how many of the file's bytes the
    reader has consumed (an importer's ``ImportStats.bytes_read``)."""
    total = path.stat().st_size if path.is_file() else 0
    if not _worth_a_bar(enabled, total, MIN_BYTES_FOR_BAR):
        yield _no_bar
        return
    with _bar(label, total, in_bytes=True) as update:
        yield lambda n: update(bytes_read(), 0)


@contextmanager
def count_progress(total: int, enabled: bool = True, label: str = "runs") -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)`` over ``total`` items that each take a while (a sweep's runs): a bar
    with a count and an ETA, whatever the total, when someone watches."""
    if not _worth_a_bar(enabled, total, 1):
        yield _no_bar
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)
