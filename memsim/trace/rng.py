"""SplitMix64, memsim's own random generator (so a seed means the same numbers in every version).

Output ``g`` (g = 0, 1, 2, ...) of the stream with seed ``seed``, all arithmetic modulo 2**64::

    z = seed + (g + 1) * 0x9E3779B97F4A7C15
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    output = z ^ (z >> 31)

This is exactly Vigna's reference ``splitmix64.c`` started from state ``seed``: the n-th call of
``next()`` returns output ``n - 1``. Because an output depends only on ``(seed, g)``, any position of
a stream can be computed directly, in any order, without stepping through the ones before it.
"""
from __future__ import annotations

import numpy as np

GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
MASK = (1 << 64) - 1
MAX_SEED = MASK

_GOLDEN, _MIX1, _MIX2 = np.uint64(GOLDEN), np.uint64(MIX1), np.uint64(MIX2)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def splitmix64(seed: int, g) -> np.ndarray:
    """Outputs ``g`` (an array of non-negative int64 stream positions) of stream ``seed``, as uint64."""
    z = np.asarray(g, dtype=np.int64).astype(np.uint64)
    z += np.uint64(1)
    z *= _GOLDEN
    z += np.uint64(seed & MASK)
    z ^= z >> _S30
    z *= _MIX1
    z ^= z >> _S27
    z *= _MIX2
    z ^= z >> _S31
    return z


def splitmix64_scalar(seed: int, g: int) -> int:
    """Output ``g`` of stream ``seed`` as a Python int (the obviously correct version)."""
    z = (seed + (g + 1) * GOLDEN) & MASK
    z = ((z ^ (z >> 30)) * MIX1) & MASK
    z = ((z ^ (z >> 27)) * MIX2) & MASK
    return z ^ (z >> 31)
