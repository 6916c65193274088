"""Allocation op lists (the reference model's format) as event tables for memsim's allocator."""
from __future__ import annotations

from memsim.trace.events import FLAG_POINTERS, NO_OBJECT, OP_ALLOC, OP_FREE, OP_GC, Events


def events_of(ops: list[tuple]) -> Events:
    ev = Events.empty(len(ops))
    ev.obj[:] = NO_OBJECT
    for i, op in enumerate(ops):
        if op[0] == "alloc":
            _, obj, size, pointers, p = op
            ev.op[i], ev.obj[i], ev.size[i], ev.core[i] = OP_ALLOC, obj, size, p
            ev.flags[i] = FLAG_POINTERS if pointers else 0
        elif op[0] == "free":
            ev.op[i], ev.obj[i] = OP_FREE, op[1]
        else:
            ev.op[i] = OP_GC
    return ev
