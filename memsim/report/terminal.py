"""The terminal report: rich tables over a RunResult (design.md, "Report")."""
from __future__ import annotations

from rich.console import Console
from rich.padding import Padding
from rich.table import Table

from memsim.machine import Machine
from memsim.models.goalloc.sizeclasses import ClassRow
from memsim.engine.counters import MISS_CLASSES
from memsim.report.layout import ObjectLayout
from memsim.report.results import AllocatorResult, RunResult, rate
from memsim.report.sharing import SharingReport, show_ranges


def _n(value: int) -> str:
    return f"{value:,}"


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _cores(cores: tuple[int, ...]) -> str:
    return f"core {cores[0]}" if len(cores) == 1 else f"cores {cores[0]}-{cores[-1]}"


def print_run(result: RunResult, console: Console) -> None:
    m = result.machine
    cores = f"{m['cores']} core" + ("s" if m["cores"] != 1 else "")
    title = f"[bold]{result.trace.name}[/] on [bold]{m['name']}[/] ({cores}, {m['line_size']} B lines)"
    console.print(title)
    console.print(f"{_n(result.trace.events)} events, {_n(result.accesses)} accesses")
    if result.partial:
        console.print("[bold yellow]partial: the run was interrupted; these are the numbers so far[/]")

    console.print("MPKI: misses per 1,000 core accesses")
    # Cachegrind counts an access once per level whatever lines it touches (docs/cachegrind.md)
    counted = "accesses counted as Cachegrind does" if m["counting"] == "cachegrind" else "counts are line pieces"
    levels = Table(title=f"Caches ({counted}; miss rate is local)", title_justify="left")
    # Columns that are zero on every row (no write-backs in a read-only trace, no fills without an
    # exclusive level) are left out, so the table fits a terminal.
    optional = ("writebacks", "writebacks_in", "fills", "back_invalidations")
    shown = [key for key in optional if any(level.counts[key] for level in result.levels)]
    headers = {"writebacks": "write-backs", "writebacks_in": "wb in", "fills": "fills",
               "back_invalidations": "back-inval"}
    levels.add_column("level")
    for header in ("accesses", "hits", "misses", "miss rate", "MPKI", "evictions", *(headers[k] for k in shown)):
        levels.add_column(header, justify="right")

    def row(name: str, counts: dict, style: str | None = None) -> None:
        levels.add_row(
            name, _n(counts["accesses"]), _n(counts["hits"]), _n(counts["misses"]),
            _pct(rate(counts["misses"], counts["accesses"])), f"{result.per_thousand(counts['misses']):.2f}",
            _n(counts["evictions"]), *(_n(counts[k]) for k in shown), style=style,
        )

    for level in result.levels:
        row(f"[bold]{level.name}[/]", level.counts)
        if len(level.instances) > 1 and level.counts["accesses"]:
            for inst in level.instances:
                row(f" #{inst.instance} {_cores(inst.cores)}", inst.counts, style="dim")
    console.print(levels)

    cores = Table(title="Cores (hits / misses per level)", title_justify="left")
    cores.add_column("core", justify="right")
    cores.add_column("accesses", justify="right")
    for level in result.levels:
        cores.add_column(f"{level.name} hit/miss", justify="right")
    cores.add_column("cycles", justify="right")
    cores.add_column("AMAT", justify="right")
    for core in result.cores:
        if not core.accesses:
            continue
        cores.add_row(
            str(core.core), _n(core.accesses), *(f"{_n(lv.hits)} / {_n(lv.misses)}" for lv in core.levels),
            _n(core.cycles), f"{core.amat:.2f}",
        )
    console.print(cores)
    print_miss_classes(result, console)

    h = result.coherence
    console.print(
        f"Coherence ({m['coherence']['protocol'].upper()}): [bold]{_n(h['invalidations'])}[/] "
        f"invalidations, {_n(h['upgrades'])} upgrades, {_n(h['c2c_transfers'])} cache-to-cache transfers"
        f"   Memory: {_n(result.memory['reads'])} line reads, {_n(result.memory['writes'])} line writes"
    )
    if h["false_sharing_misses"] + h["true_sharing_misses"]:
        console.print(
            f"Coherence misses: [bold]{_n(h['false_sharing_misses'])}[/] false sharing, "
            f"{_n(h['true_sharing_misses'])} true sharing (Dubois lifetimes); at the miss: "
            f"{_n(h['false_sharing_misses_at_miss'])} false, {_n(h['true_sharing_misses_at_miss'])} true"
        )
    print_sharing(result.sharing, console)
    if result.allocator is not None:
        print_allocator(result.allocator, console)


def print_miss_classes(result: RunResult, console: Console) -> None:
    """Per level, then per core within it (when several cores missed there): why lines were
    missing. Left out when nothing was classified (no misses)."""
    if not any(sum(level.misses_by_class.values()) for level in result.levels):
        return
    table = Table(title="Misses by class (share of the level's misses)", title_justify="left")
    table.add_column("level")
    for header in ("misses", *MISS_CLASSES):
        table.add_column(header, justify="right")

    def row(name: str, classes: dict[str, int], style: str | None = None) -> None:
        misses = sum(classes.values())
        table.add_row(name, _n(misses), *(_share(classes[c], misses) for c in MISS_CLASSES), style=style)

    for s, level in enumerate(result.levels):
        row(f"[bold]{level.name}[/]", level.misses_by_class)
        per_core = [(c.core, c.levels[s].misses_by_class) for c in result.cores if c.levels[s].misses]
        if len(per_core) > 1:
            for core, classes in per_core:
                row(f" core {core}", classes, style="dim")
    console.print(table)


def _share(count: int, whole: int) -> str:
    return f"{_n(count)} ({100 * rate(count, whole):.0f}%)" if count else "0"


def print_sharing(sharing: SharingReport, console: Console) -> None:
    """The false-sharing report: the top lines, each with its objects, the bytes each core touched
    and a fix; then the roll-up by allocation site."""
    if not sharing.total_lines:
        console.print("False sharing: no coherence misses")
        return
    shown = len(sharing.lines)
    cut = f"the top {shown} of {_n(sharing.total_lines)}" if shown < sharing.total_lines else f"{shown}"
    console.print(f"[bold]False sharing[/]: {cut} line{'s' if sharing.total_lines > 1 else ''} with coherence "
                  "misses, by stall cycles (bytes: [lo, hi) in the line)")
    for rank, ln in enumerate(sharing.lines, 1):
        console.print(
            f"[bold]#{rank} line {ln.line:#x}[/]: [bold]{_n(ln.false_sharing_misses)}[/] false / "
            f"{_n(ln.true_sharing_misses)} true sharing misses (at miss {_n(ln.false_sharing_misses_at_miss)} / "
            f"{_n(ln.true_sharing_misses_at_miss)}), {_n(ln.c2c_transfers)} c2c, "
            f"[bold]{_n(ln.stall_cycles)}[/] stall cycles"
        )
        grid = Table.grid(padding=(0, 2))
        for o in ln.objects:
            freed = f", freed at event {_n(o.free_event)}" if o.free_event is not None else ""
            grid.add_row(
                f"  `{o.id}`", o.site or "(no site)", f"{show_ranges(((o.offset, o.offset + o.size),))}",
                f"object bytes [{o.object_offset}, {o.object_offset + o.size})",
                f"allocated on P {o.alloc_core} at event {_n(o.alloc_event)}{freed}",
            )
        for c in ln.cores:
            grid.add_row(f"  core {c.core}", f"{_n(c.reads)} reads {show_ranges(c.read_bytes)}",
                         f"{_n(c.writes)} writes {show_ranges(c.write_bytes)}", "", "")
        console.print(grid)
        console.print(Padding(f"[bold]fix[/]: {ln.fix}", (0, 0, 0, 2)))
    if sharing.by_site:
        table = Table(title="By allocation site (each line once)", title_justify="left")
        table.add_column("sites", overflow="fold")
        for header in ("lines", "false sharing", "true sharing", "stall cycles"):
            table.add_column(header, justify="right")
        for r in sharing.by_site:
            table.add_row(" + ".join(r.sites), _n(r.lines), _n(r.false_sharing_misses), _n(r.true_sharing_misses),
                          _n(r.stall_cycles))
        console.print(table)


def print_allocator(allocator: AllocatorResult, console: Console) -> None:
    st = allocator.stats
    console.print(
        f"[bold]Go allocator[/] ({allocator.version} rules, {allocator.generation} layout): "
        f"{_n(st.mallocs)} mallocs, {_n(st.frees)} frees, {_n(st.heap_objects)} heap objects, "
        f"{st.num_gc} GCs"
    )
    console.print(
        f"heap: {_bytes(st.heap_alloc)} allocated ({_bytes(st.total_alloc)} in total), "
        f"{_bytes(st.heap_inuse)} in use, {_bytes(st.heap_idle)} idle "
        f"({_bytes(st.heap_released)} never used), {_bytes(st.heap_sys)} mapped"
    )
    total = sum(st.tiers.values())
    console.print(
        "requests served by: "
        + ", ".join(f"{tier} {_n(count)} ({_pct(rate(count, total))})" for tier, count in st.tiers.items())
    )
    classes = Table(title="Size classes (live = allocated slots not yet swept; waste in live slots and spans)",
                    title_justify="left")
    for header in ("class", "slot", "allocs", "frees", "live", "live bytes", "internal waste", "tail waste"):
        classes.add_column(header, justify="right")
    for row in st.size_classes:
        classes.add_row(
            str(row.size_class) if row.size_class else "large", _n(row.slot_size) if row.size_class else "span",
            _n(row.allocs), _n(row.frees), _n(row.live_objects), _bytes(row.live_bytes),
            _bytes(row.internal_waste), _bytes(row.tail_waste),
        )
    console.print(classes)


def print_machines(presets: list[Machine], default: str, console: Console) -> None:
    table = Table(title=f"Machine presets (default: {default})", title_justify="left", show_lines=True)
    for header in ("name", "cores", "line", "caches", "memory", "source"):
        table.add_column(header, overflow="fold")
    for m in presets:
        caches = "\n".join(
            f"{c.name}: {_bytes(c.size(m.line_size))} {c.ways}-way, {c.latency} cy, "
            + ("private" if c.shared_by == 1 else "shared" if c.shared_by == m.cores else f"shared by {c.shared_by}")
            + ("" if c.inclusion == "nine" else f", {c.inclusion}")
            for c in m.caches
        )
        table.add_row(m.name, str(m.cores), f"{m.line_size} B", caches, f"{m.memory_latency} cy", m.source)
    console.print(table)


def _bytes(n: int) -> str:
    """Exact when it is a round number of KiB or MiB (cache sizes); otherwise two decimals."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}" if n % (scale // 4) == 0 else f"{n / scale:.2f} {unit}"
    return f"{n} B"


def print_sizeclasses(version: str, generation: str, small_limit: int, rows: list[ClassRow], console: Console) -> None:
    table = Table(
        title=f"Go {version} size classes ({generation} layout; objects up to {_n(small_limit)} B are small, "
              "larger ones get spans of their own)",
        title_justify="left",
    )
    for header in ("class", "slot", "pages", "span", "objects noscan", "objects scan", "tail waste noscan",
                   "tail waste scan", "max rounding"):
        table.add_column(header, justify="right")
    for r in rows:
        table.add_row(
            str(r.size_class), _n(r.size), str(r.pages), _bytes(r.span_bytes), _n(r.objects_noscan),
            _n(r.objects_scan), f"{r.tail_waste(False)} B", f"{r.tail_waste(True)} B", f"{r.max_internal_waste} B",
        )
    console.print(table)


def print_layout(trace_name: str, line_size: int, objects: list[ObjectLayout], console: Console) -> None:
    table = Table(title=f"{trace_name}: where every object lives ({line_size} B lines; address order)",
                  title_justify="left")
    for header, justify in (("id", "left"), ("site", "left"), ("size", "right"), ("class", "right"),
                            ("address", "right"), ("slot", "right"), ("span", "left"), ("lines", "left"),
                            ("line neighbours", "left")):
        table.add_column(header, justify=justify, overflow="fold", no_wrap=header in ("address", "slot"))
    for o in objects:
        if o.span_pages:
            span = f"{o.span_base:#x} {o.span_pages}p x{o.span_objects}"
        else:
            span = "-"
        if not o.lines:
            lines = "-"
        elif len(o.lines) == 1:
            lines = f"{o.lines[0]:#x}"
        else:
            lines = f"{o.lines[0]:#x} .. {o.lines[-1]:#x} ({len(o.lines)})"
        table.add_row(
            o.id, o.site or "", _n(o.size), str(o.size_class) if o.size_class else ("large" if o.span_pages else "-"),
            f"{o.addr:#x}", f"{_n(o.slot_size)} @ +{o.addr - o.slot_base}" if o.slot_size else "-", span, lines,
            ", ".join(o.shares_lines_with),
        )
    console.print(table)
