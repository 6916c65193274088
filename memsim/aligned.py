"""Arrays that start on a host cache line.

The kernel's sets (8 or 16 int64 words: 64 or 128 bytes) and history pages are laid out so that
each fits the fewest host cache lines, which holds only if the array itself starts on one. numpy
starts a large array 16 bytes into a page (the allocator's header), so a 16-way set would span
three host lines and be fetched in three misses (measured: 12-21 % of replay speed).
"""
from __future__ import annotations

import numpy as np

HOST_LINE = 64  # bytes; x86-64 and most ARM cores


def zeros(n: int, dtype) -> np.ndarray:
    """``np.zeros(n, dtype)`` starting on a host cache line (and, like it, given memory by the
    system only as it is touched)."""
    dtype = np.dtype(dtype)
    raw = np.zeros(n * dtype.itemsize + HOST_LINE, np.uint8)
    start = -raw.ctypes.data % HOST_LINE
    return raw[start : start + n * dtype.itemsize].view(dtype)


def full(n: int, value, dtype) -> np.ndarray:
    """``np.full(n, value, dtype)`` starting on a host cache line."""
    array = zeros(n, dtype)
    array[:] = value
    return array
