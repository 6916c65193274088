"""The replay's growing tables, shared by the kernel and its Python side (docs/engine.md, "How
the kernel stores this"): the line history that classifies misses, and the sharing rows.

``history`` is one flat int64 array: a page table, then the pages. A page holds a record of
``history_width`` words for each of ``PAGE_LINES`` consecutive lines: the line's sharing row + 1
(0: none), then two bits per cache instance packed 32 instances to a word: bit ``i`` = instance
``i`` has held the line, bit ``32 + i`` = its last copy was dropped by another core's write. A page
is added, all zeros, when a cache first holds one of its lines. The page table is an
open-addressing hash table of ``2 * pages`` buckets of two words: the page number + 1 (``EMPTY`` =
0: a free bucket) and the page's index. Real programs touch memory in runs, so a page of records
costs less than a hash row per line (no key, no empty rows) and a stream of new lines writes
its records in order.

``sharing`` holds one row per line with coherence activity: the public columns of
``memsim.engine.counters`` (``sharing_width``), then per core the private Dubois state: the mode
(``MODE_*``) and the byte mask of the bytes other cores wrote since the core lost its copy.

``info`` holds the scalars the kernel reads and updates (``I_*``).
"""
from __future__ import annotations

import numpy as np

from memsim import aligned
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
HIST_ROW, HIST_BITS = 0, 1  # a line's record: its sharing row + 1, then the bits
PAGE_SHIFT = 6  # 64 lines to a history page
PAGE_LINES = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_LINES - 1
MODE_NONE, MODE_LOST, MODE_OPEN_UNDECIDED, MODE_OPEN_TRUE = range(4)

(
    I_HIST_USED,  # pages of the history in use
    I_HIST_LIMIT,  # the pages it has room for (its page table has twice as many buckets)
    I_HIST_MASK,  # page table buckets - 1 (a power of two)
    I_HIST_PAGES,  # offset of page 0 in the history (after the page table)
    I_HIST_WIDTH,  # words of a line's record
    I_ROWS_USED,  # sharing rows in use
    I_SHADOW,  # 1: the conflict shadows are on
    I_MASK_WORDS,
    I_PUBLIC_WIDTH,  # sharing columns before the private Dubois state
    I_CHECK,  # 1: check the protocol invariants after every piece
    I_ERROR,  # the first invariant found broken (INVARIANTS index + 1), 0 = none
    I_ERROR_LINE,
) = range(12)
N_INFO = 12

# what I_ERROR = k + 1 means: the invariants of docs/coherence.md the debug mode checks after each piece
INVARIANTS = (
    "a copy is exclusive while another core's caches hold the line",
    "the caches of one participant disagree on the exclusive bit",
    "a copy outside the writer's caches survived its write (a stale copy)",
    "dirty copies in two cores' caches under MSI/MESI",
    "a cache holds the line but its history says it never held it or lost it",
)

FIRST_HISTORY_PAGES = 1 << 8
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
        # room for full caches of dense lines at first (memory untouched costs nothing); sparse lines grow it
        self.history = self._new_history(max(FIRST_HISTORY_PAGES, 1 << (cache_lines // PAGE_LINES).bit_length()))
        self.sharing = np.zeros((FIRST_SHARING_ROWS, self.public_width + cores * (1 + self.words)), np.int64)

    def _new_history(self, pages: int) -> np.ndarray:
        """An empty history with room for ``pages`` pages (a power of two); zeros, so the system
        hands its memory over only as it is touched."""
        buckets = 2 * pages
        self.info[I_HIST_LIMIT] = pages
        self.info[I_HIST_MASK] = buckets - 1
        self.info[I_HIST_PAGES] = 2 * buckets
        return aligned.zeros(2 * buckets + pages * PAGE_LINES * self.history_width, np.int64)

    def make_room(self, pieces: int) -> None:
        """Grow, if needed, so that ``pieces`` more line pieces fit (doubling: the tables grow as
        often as the lines they track double)."""
        from memsim.engine.kernel import rehash_pages

        info = self.info
        if info[I_HIST_USED] + pieces > info[I_HIST_LIMIT]:  # a piece adds at most one page
            pages = int(info[I_HIST_LIMIT])
            while info[I_HIST_USED] + pieces > pages:
                pages *= 2
            old, old_buckets, old_start = self.history, int(info[I_HIST_MASK]) + 1, int(info[I_HIST_PAGES])
            self.history = self._new_history(pages)
            start, used_words = int(info[I_HIST_PAGES]), int(info[I_HIST_USED]) * PAGE_LINES * self.history_width
            self.history[start : start + used_words] = old[old_start : old_start + used_words]
            rehash_pages(old, self.history, old_buckets, info[I_HIST_MASK])
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
        """Lines any cache has ever held."""
        info, width = self.info, self.history_width
        start = int(info[I_HIST_PAGES])
        records = self.history[start : start + int(info[I_HIST_USED]) * PAGE_LINES * width].reshape(-1, width)
        return int(np.count_nonzero(records[:, HIST_BITS:].any(axis=1)))
