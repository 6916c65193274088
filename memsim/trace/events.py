"""The flat event table every trace compiles into; the engine replays nothing else.

Struct of arrays, one row per event. ``src`` indexes the trace's table of source positions so a
problem found while replaying can name the YAML event it came from.

=========================  ======  ==========  ===========  ========  ==================  ========
row                        core    size        obj          addr      flags               site
=========================  ======  ==========  ===========  ========  ==================  ========
access to a raw address    core    bytes >= 1  NO_OBJECT    address   0                   -1
access to an object        core    bytes >= 1  object       offset    0                   -1
alloc                      the P   bytes >= 0  object       0         FLAG_POINTERS or 0  site/-1
free                       0       0           object       0         0                   -1
gc                         0       0           NO_OBJECT    0         0                   -1
=========================  ======  ==========  ===========  ========  ==================  ========

Objects are numbered densely, 0 .. n_objects - 1 (``Trace.object_name`` gives their ids); ``site``
indexes ``Trace.sites``. ``free`` and ``gc`` belong to no core: their core column is 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OP_READ, OP_WRITE, OP_RMW, OP_IFETCH, OP_ALLOC, OP_FREE, OP_GC = range(7)
ACCESS_OPS = {"read": OP_READ, "write": OP_WRITE, "rmw": OP_RMW, "ifetch": OP_IFETCH}

FLAG_POINTERS = 1  # alloc: the object holds pointers

NO_OBJECT = -1
MAX_ADDRESS = 2**63 - 1  # addresses are int64 in the kernels; addr + size must stay below this
MAX_OBJECT_SIZE = 2**40  # the largest alloc a trace may ask for (1 TiB)

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


@dataclass
class Lifetimes:
    """When each object lived and which P allocated it, gathered chunk by chunk as a trace is
    replayed (the allocator keeps only where objects went). ``born``/``died``: the event index of
    the object's alloc and free (``died`` stays past the end for objects never freed)."""

    born: np.ndarray
    died: np.ndarray
    alloc_core: np.ndarray

    @classmethod
    def start(cls, n_objects: int, n_events: int) -> "Lifetimes":
        return cls(np.zeros(n_objects, np.int64), np.full(n_objects, n_events, np.int64),
                   np.zeros(n_objects, np.int64))

    def observe(self, chunk: Events, start: int) -> None:
        """Record the allocs and frees of ``chunk``, whose first event is event ``start`` of the trace."""
        allocs = np.flatnonzero(chunk.op == OP_ALLOC)
        self.born[chunk.obj[allocs]] = start + allocs
        self.alloc_core[chunk.obj[allocs]] = chunk.core[allocs]
        frees = np.flatnonzero(chunk.op == OP_FREE)
        self.died[chunk.obj[frees]] = start + frees
