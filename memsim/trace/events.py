"""The flat event table every trace compiles into; the engine replays nothing else.

Struct of arrays, one row per event. Accesses use ``addr`` (raw address) or
``obj`` + ``addr`` as offset (the Go allocator issue); ``alloc``/``free``/``gc``
rows are reserved for that issue. ``src`` indexes the trace's table of source
positions so a problem found while replaying can name the YAML line it came from.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OP_READ, OP_WRITE, OP_RMW, OP_IFETCH, OP_ALLOC, OP_FREE, OP_GC = range(7)
ACCESS_OPS = {"read": OP_READ, "write": OP_WRITE, "rmw": OP_RMW, "ifetch": OP_IFETCH}

FLAG_POINTERS = 1  # alloc: the object holds pointers

NO_OBJECT = -1
MAX_ADDRESS = 2**63 - 1  # addresses are int64 in the kernels; addr + size must stay below this

COLUMNS = {
    "op": np.int8,
    "core": np.int32,
    "size": np.int64,
    "obj": np.int64,
    "addr": np.int64,
    "flags": np.uint8,
    "site": np.int32,
    "src": np.int32,
}


@dataclass
class Events:
    """A chunk of the event table (contiguous numpy columns of equal length)."""

    op: np.ndarray
    core: np.ndarray
    size: np.ndarray
    obj: np.ndarray
    addr: np.ndarray
    flags: np.ndarray
    site: np.ndarray
    src: np.ndarray

    def __len__(self) -> int:
        return len(self.op)

    @classmethod
    def empty(cls, n: int = 0) -> "Events":
        return cls(**{name: np.zeros(n, dtype) for name, dtype in COLUMNS.items()})

    def take(self, index: np.ndarray) -> "Events":
        return Events(**{name: getattr(self, name)[index] for name in COLUMNS})

    def columns(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in COLUMNS}
