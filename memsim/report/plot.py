"""``memsim sweep --plot``: a metric against the swept settings, from the sweep's results.

One swept setting: the metric against its values, a line per trace. Two: a heatmap per trace,
the first setting down, the second across, each cell labelled with its value. matplotlib is an
optional extra (``memsim[plot]``), imported only here.
"""
from __future__ import annotations

import math
from pathlib import Path

from memsim.atomic import atomic_file
from memsim.errors import UserError

FORMATS = ("png", "svg")


def plot_sweep(rows: list[dict[str, str]], keys: tuple[str, ...], values: tuple[tuple[str, ...], ...], traces: list[str],
               metric: str, target: Path) -> None:
    """``rows``: the results (CSV rows as read back); ``values[i]``: the values of ``keys[i]`` in
    the order given; error rows show as gaps."""
    fmt = target.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UserError(f"the plot must be a .png or .svg file, found {target.suffix or 'no extension'!r}", "--plot")
    if len(keys) not in (1, 2):
        raise UserError(f"a plot shows one or two swept settings; this sweep has {len(keys)} "
                        f"({', '.join(keys)}): plot the results file with your own tools instead", "--plot")
    if rows and metric not in rows[0]:
        known = [c for c in rows[0] if "." in c or c in ("accesses", "cycles", "amat")][:12]
        raise UserError(f"no metric {metric!r} in the results; some that are: {', '.join(known)} "
                        "(all in docs/metrics.md)", "--metric")
    try:
        import matplotlib

        matplotlib.use("Agg")
        matplotlib.rcParams["svg.hashsalt"] = "memsim"  # the same ids in every SVG: same results, same file
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("plots need matplotlib: pip install 'memsim[plot]'", "--plot") from None

    table = {(r["trace"], *(r[k] for k in keys)): _number(r[metric]) for r in rows}
    if len(keys) == 1:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for trace in traces:
            ax.plot(range(len(values[0])), [table.get((trace, v), math.nan) for v in values[0]], marker="o",
                    label=Path(trace).name)
        ax.set_xticks(range(len(values[0])), values[0])
        ax.set_xlabel(keys[0])
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    else:
        fig, axes = plt.subplots(1, len(traces), figsize=(1.5 + 4.5 * len(traces), 4.5), squeeze=False)
        for ax, trace in zip(axes[0], traces):
            grid = [[table.get((trace, a, b), math.nan) for b in values[1]] for a in values[0]]
            image = ax.imshow(grid, cmap="viridis", aspect="auto")
            ax.set_xticks(range(len(values[1])), values[1])
            ax.set_yticks(range(len(values[0])), values[0])
            ax.set_xlabel(keys[1])
            ax.set_ylabel(keys[0])
            ax.set_title(Path(trace).name)
            for i, row in enumerate(grid):
                for j, value in enumerate(row):
                    red, green, blue, _ = image.cmap(image.norm(value))
                    light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5  # dark text on light cells
                    ax.text(j, i, _label(value), ha="center", va="center", fontsize=8,
                            color="black" if light and not math.isnan(value) else "white")
            fig.colorbar(image, ax=ax, label=metric)
    fig.suptitle(f"{metric} by {' and '.join(keys)}")
    fig.tight_layout()
    with atomic_file(target, "wb") as f:
        fig.savefig(f, format=fmt, metadata={"Software": None} if fmt == "png" else {"Date": None})
    plt.close(fig)


def _label(value: float) -> str:
    if math.isnan(value):
        return "error"
    return f"{int(value):,}" if value == int(value) else f"{value:.4g}"


def _number(cell: str) -> float:
    return float(cell) if cell else math.nan
