"""Where the allocator put every object, and which objects share cache lines (``memsim layout``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memsim.models.goalloc.model import Placements
from memsim.models.goalloc.sizeclasses import PAGE_SIZE


@dataclass(frozen=True)
class ObjectLayout:
    id: str
    site: str | None
    addr: int
    size: int
    size_class: int
    slot_size: int
    slot_base: int
    span_base: int
    span_pages: int
    span_objects: int
    page: int  # address of the runtime page (8 KiB) the object starts in; 0 for size-0 objects
    lines: tuple[int, ...]  # addresses of the cache lines the object's bytes cover
    shares_lines_with: tuple[str, ...]  # ids of objects alive at the same time on one of those lines


def build_layout(placed: Placements, born: np.ndarray, died: np.ndarray, line_size: int, name, site) -> list[ObjectLayout]:
    """Every allocated object, in address order (then allocation order). ``born`` and ``died`` are
    the event indices of each object's alloc and free (died: past the end when never freed); two
    objects share a line only if they were alive at the same time. ``name(i)``/``site(i)`` name
    object ``i``."""
    objects = np.flatnonzero(placed.allocated)
    shift = line_size.bit_length() - 1
    first = placed.addr >> shift
    last = (placed.addr + placed.size - 1) >> shift
    partners = _line_partners(objects[placed.size[objects] > 0], first, last, born, died)
    order = objects[np.lexsort((objects, placed.addr[objects]))]
    return [
        ObjectLayout(
            id=name(i), site=site(i), addr=int(placed.addr[i]), size=int(placed.size[i]),
            size_class=int(placed.size_class[i]), slot_size=int(placed.slot_size[i]),
            slot_base=int(placed.slot_base[i]), span_base=int(placed.span_base[i]),
            span_pages=int(placed.span_pages[i]), span_objects=int(placed.span_objects[i]),
            page=int(placed.addr[i]) & ~(PAGE_SIZE - 1) if placed.span_pages[i] else 0,
            lines=tuple(int(line) << shift for line in range(first[i], last[i] + 1)) if placed.size[i] else (),
            shares_lines_with=tuple(name(j) for j in sorted(partners.get(int(i), ()))),
        )
        for i in order
    ]


def _line_partners(objects: np.ndarray, first: np.ndarray, last: np.ndarray, born: np.ndarray,
                   died: np.ndarray) -> dict[int, set[int]]:
    """Objects alive together never overlap, so a line two of them share holds an end of each:
    only the first and last line of every object need comparing."""
    ends = np.concatenate([first[objects], last[objects]])
    owners = np.concatenate([objects, objects])
    order = np.lexsort((owners, ends))
    ends, owners = ends[order], owners[order]
    partners: dict[int, set[int]] = {}
    groups = np.split(owners, np.flatnonzero(np.diff(ends)) + 1)
    for group in groups:
        group = np.unique(group)
        for a_pos, a in enumerate(group):
            for b in group[a_pos + 1:]:
                if born[a] < died[b] and born[b] < died[a]:
                    partners.setdefault(int(a), set()).add(int(b))
                    partners.setdefault(int(b), set()).add(int(a))
    return partners
