"""The replay's growing tables, shared by the kernel and its Python side (docs/engine.md, "How
the kernel stores this"): the line history that classifies misses, and the sharing rows.

``history`` is a flat open-addressing hash table with one row of ``history_width`` int64 words per
line ever held by any cache: the line + 1 (``EMPTY`` = 0: a free row, so a new table is all zeros
and the system hands its pages over only when they are touched), the line's sharing row (or
``NO_ROW``), then two bits per cache instance packed 32 instances to a word: bit ``i`` = instance
``i`` has held the line, bit ``32 + i`` = its last copy was dropped by another core's write.

``sharing`` holds one row per line with coherence activity: the public columns of
``memsim.engine.counters`` (``sharing_width``), then per core the private Dubois state: the mode
(``MODE_*``) and the byte mask of the bytes other cores wrote since the core lost its copy.

``info`` holds the scalars the kernel reads and updates (``I_*``).
"""
from __future__ import annotations

import numpy as np

from memsim.engine.counters import (
    H_FALSE_SHARING,
    H_TRUE_SHARING,
    S_FALSE,
    S_LINE,
    S_TRUE,
    mask_words,
    sharing_width,
)

EMPTY = 0
NO_ROW = -1
HIST_KEY, HIST_ROW, HIST_BITS = 0, 1, 2
MODE_NONE, MODE_LOST, MODE_OPEN_UNDECIDED, MODE_OPEN_TRUE = range(4)

(
    I_HIST_USED,  # rows of the history in use
    I_HIST_LIMIT,  # the most rows in use before the table is grown (MAX_LOAD of its rows)
    I_HIST_WIDTH,
    I_ROWS_USED,  # sharing rows in use
    I_SHADOW,  # 1: the conflict shadows are on
    I_MASK_WORDS,
    I_PUBLIC_WIDTH,  # sharing columns before the private Dubois state
    I_CHECK,  # 1: check the protocol invariants after every piece
    I_ERROR,  # the first invariant found broken (INVARIANTS index + 1), 0 = none
    I_ERROR_LINE,
) = range(10)
N_INFO = 10

# what I_ERROR = k + 1 means: the invariants of docs/coherence.md the debug mode checks after each piece
INVARIANTS = (
    "a copy is exclusive while another core's caches hold the line",
    "the caches of one participant disagree on the exclusive bit",
    "a copy outside the writer's caches survived its write (a stale copy)",
    "dirty copies in two cores' caches under MSI/MESI",
    "a cache holds the line but its history says it never held it or lost it",
)

MAX_LOAD = 0.5  # the history is grown before it could be fuller than this
FIRST_HISTORY_ROWS = 1 << 14
FIRST_SHARING_ROWS = 1 << 8


class Tables:
    """The history, sharing rows and scalars of one replay, grown between kernel calls."""

    def __init__(self, n_instances: int, cache_lines: int, cores: int, line_size: int, shadow: bool, check: bool):
        self.words = mask_words(line_size)
        self.public_width = sharing_width(cores, line_size)
        self.history_width = HIST_BITS + (n_instances + 31) // 32
        self.info = np.zeros(N_INFO, np.int64)
        self.info[I_HIST_WIDTH] = self.history_width
        self.info[I_SHADOW] = shadow
        self.info[I_MASK_WORDS] = self.words
        self.info[I_PUBLIC_WIDTH] = self.public_width
        self.info[I_CHECK] = check
        # every line in a cache has a row: start big enough for full caches (untouched pages cost nothing)
        self.history = self._new_history(max(FIRST_HISTORY_ROWS, 1 << (int(cache_lines / MAX_LOAD) - 1).bit_length()))
        self.sharing = np.zeros((FIRST_SHARING_ROWS, self.public_width + cores * (1 + self.words)), np.int64)

    def _new_history(self, rows: int) -> np.ndarray:
        history = np.zeros(rows * self.history_width, np.int64)
        self.info[I_HIST_LIMIT] = int(rows * MAX_LOAD)
        return history

    def make_room(self, pieces: int) -> None:
        """Grow, if needed, so that ``pieces`` more line pieces fit (doubling: the tables grow as
        often as the lines they track double)."""
        from memsim.engine.kernel import rehash_history

        info = self.info
        rows = len(self.history) // self.history_width
        while info[I_HIST_USED] + pieces > info[I_HIST_LIMIT]:
            rows *= 2
            old = self.history
            self.history = self._new_history(rows)
            rehash_history(old, self.history, self.history_width)
        needed = info[I_ROWS_USED] + pieces
        if needed > len(self.sharing):
            grown = np.zeros((max(2 * len(self.sharing), needed), self.sharing.shape[1]), np.int64)
            grown[: len(self.sharing)] = self.sharing
            self.sharing = grown

    def public_sharing(self, coherence: np.ndarray) -> np.ndarray:
        """The sharing rows as reported, sorted by line, with the lifetimes still open counted
        (docs/coherence.md, rule 5); ``coherence`` gets the same verdicts added. Nothing here
        changes the tables, so the replay can go on afterwards."""
        used = self.sharing[: self.info[I_ROWS_USED]]
        rows = used[:, : self.public_width].copy()
        modes = used[:, self.public_width :: 1 + self.words]
        rows[:, S_TRUE] += (modes == MODE_OPEN_TRUE).sum(axis=1)
        rows[:, S_FALSE] += (modes == MODE_OPEN_UNDECIDED).sum(axis=1)
        coherence[H_TRUE_SHARING] += int((modes == MODE_OPEN_TRUE).sum())
        coherence[H_FALSE_SHARING] += int((modes == MODE_OPEN_UNDECIDED).sum())
        return rows[np.argsort(rows[:, S_LINE], kind="stable")]

    def tracked_lines(self) -> int:
        return int(self.info[I_HIST_USED])
