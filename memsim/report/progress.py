"""A rich progress bar for long replays, on stderr, only when stderr is a terminal."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

MIN_EVENTS_FOR_BAR = 1 << 22  # shorter runs finish before a bar is worth drawing


@contextmanager
def replay_progress(total_events: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n_events)``; draws a bar with events/s and ETA when it is worth it."""
    if not enabled or total_events < MIN_EVENTS_FOR_BAR or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("replay", total=total_events, rate="")

        def advance(n: int) -> None:
            progress.advance(task, n)
            speed = progress.tasks[0].speed
            progress.update(task, rate=f"{speed / 1e6:,.1f} M events/s" if speed else "")

        yield advance
