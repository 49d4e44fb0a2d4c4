"""Figures: ours vs the paper per method and task (PNG + PDF), drawn from the table CSV.

One panel per task: our aggregate with its spread (blue bars), the paper's value (black ticks),
the no-training baseline (dashed line). A cell whose seeds did not all finish has no number in
the table; the figure draws the aggregate of the seeds that finished (``<task>_partial``) as a
hatched, pale bar without spread and writes ``incomplete k/n`` on it; a cell where no seed
finished says ``failed``. The title says the scale. For a sweep table (``axes``) a bar's label
carries its axis values, e.g. ``FoRA (rank=8)``. The y axis names the task's metric (read from the
table's ``.meta.json``). Figures use matplotlib's constrained layout with the legend outside the
axes and the title wrapped to the figure's width, so nothing is clipped in a one-panel figure.

``plot_tradeoff``: the view of peft's method-comparison app: a table's task average (or its one
task) against trainable parameters (log x), marker area by peak memory (or step time) from the
table's efficiency CSV, one point per row, the Pareto front (more accuracy for fewer parameters)
drawn. ``python -m harness figures tradeoff --table tables/T.csv --out figures/T_tradeoff``.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import EngFormatter, NullFormatter  # noqa: E402

from harness.core.atomic import atomic_path, read_json  # noqa: E402

OURS, PARTIAL, INCOMPLETE_COLOUR, FAILED_COLOUR = "#4C72B0", "#C9D3E6", "#DD8452", "red"
# the y-axis label of a task's metric (harness.evaluate scores every metric on a 0-100 scale)
METRIC_LABELS = {"accuracy": "accuracy (%)", "matthews": "MCC (x100)", "pearson": "Pearson r (x100)"}
MIN_WIDTH_IN = 5.0  # a one-panel figure is at least this wide, so its legend and title have room
TITLE_CHARS_PER_INCH = 11  # ~ characters of the 11 pt title per inch: where its lines wrap


def metric_label(metric: str | None) -> str:
    return METRIC_LABELS.get(metric or "", metric or "metric")


def table_metrics(table_csv: Path) -> dict[str, str]:
    """task -> metric name, from the table's ``.meta.json`` (``tasks.<task>.metric``); {} without one."""
    meta = Path(table_csv).with_suffix(".meta.json")
    if not meta.is_file():
        return {}
    return {t: (v or {}).get("metric") for t, v in (read_json(meta).get("tasks") or {}).items()}


def _finish(fig: plt.Figure, title: str, handles: dict) -> None:
    """The legend below the panels and the title above them, wrapped to the figure's width; the
    constrained layout engine makes room for both (nothing drawn outside the canvas)."""
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=min(len(handles), 4),
                   fontsize=7, frameon=False)
    width = int(fig.get_figwidth() * TITLE_CHARS_PER_INCH)
    fig.suptitle(textwrap.fill(title, width=max(width, 20)), fontsize=11)


def _save(fig: plt.Figure, out_png: Path, out_pdf: Path) -> None:
    try:
        for out in (Path(out_png), Path(out_pdf)):
            with atomic_path(out) as tmp:
                fig.savefig(tmp, format=out.suffix.lstrip("."), dpi=150)
    finally:
        plt.close(fig)


def _read(table_csv: Path) -> list[dict]:
    with open(table_csv, newline="") as f:
        return list(csv.DictReader(f))


def _num(x: str) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _label(row: dict, axes: Sequence[str]) -> str:
    given = [f"{a}={row[a]}" for a in axes if row.get(a, "") != ""]
    return f"{row['label']} ({', '.join(given)})" if given else row["label"]


def draw_table(rows: list[dict], tasks: list[str], title: str, axes: Sequence[str] = (),
               metrics: dict[str, str] | None = None) -> plt.Figure:
    """The figure of a table's rows (as read from its CSV); the caller saves and closes it.
    ``metrics``: task -> metric name, for the y-axis labels."""
    metrics = metrics or {}
    methods = [r for r in rows if r["method"] != "baseline"]
    baseline = next((r for r in rows if r["method"] == "baseline"), {})
    fig, panels = plt.subplots(1, len(tasks), figsize=(max(3.2 * len(tasks), MIN_WIDTH_IN), 4.2), squeeze=False,
                               layout="constrained")
    for ax, task in zip(panels[0], tasks):
        xs = list(range(len(methods)))
        ours = [_num(r.get(task)) for r in methods]
        err = [_num(r.get(f"{task}_spread")) or 0.0 for r in methods]
        ax.bar(xs, [o or 0.0 for o in ours], yerr=err, color=OURS, capsize=3, label="ours")
        for x, r in zip(xs, methods):
            p = _num(r.get(f"{task}_paper"))
            if p is not None:
                ax.plot([x - 0.4, x + 0.4], [p, p], color="black", lw=2, label="paper" if x == 0 else None)
            cell = r.get(task)
            seeds = (r.get(f"{task}_seeds") or "").split(" ")[0]
            if cell == "incomplete":
                partial = _num(r.get(f"{task}_partial"))
                if partial is not None:
                    ax.bar([x], [partial], color=PARTIAL, hatch="//", edgecolor=INCOMPLETE_COLOUR, lw=0.8)
                ax.text(x, 0, f"incomplete {seeds}", rotation=90, ha="center", va="bottom",
                        color=INCOMPLETE_COLOUR, fontsize=8,
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1})
            elif cell == "failed":
                ax.text(x, 0, f"failed {seeds}".strip(), rotation=90, ha="center", va="bottom", color=FAILED_COLOUR)
        b = _num(baseline.get(task))
        if b is not None:
            ax.axhline(b, color="grey", ls="--", lw=1, label="no-training baseline")
        ax.set_title(task)
        ax.set_ylabel(metric_label(metrics.get(task)))
        ax.set_xticks(xs, [_label(r, axes) for r in methods], rotation=60, ha="right", fontsize=7)
    seen = {}
    for ax in panels[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if any(r.get(t) == "incomplete" for r in methods for t in tasks):
        seen["partial: not all seeds finished"] = Patch(facecolor=PARTIAL, hatch="//", edgecolor=INCOMPLETE_COLOUR)
    scale = rows[0].get("scale", "") if rows else ""
    _finish(fig, f"{title} ({scale} scale)", seen)
    return fig


def plot_table(table_csv: Path, tasks: list[str], title: str, out_png: Path, out_pdf: Path,
               axes: Sequence[str] = ()) -> None:
    """One panel per task: our aggregate with its spread (bars) and the paper's value (black ticks);
    the no-training baseline is a dashed line; incomplete and failed cells are marked."""
    _save(draw_table(_read(table_csv), tasks, title, axes, table_metrics(table_csv)), out_png, out_pdf)


def draw_sweep(rows: list[dict], tasks: list[str], axis: str, title: str, *, relative: bool = False,
               metrics: dict[str, str] | None = None) -> plt.Figure:
    """A sweep table as lines: one panel per task, our aggregate (with its spread) against the axis
    value, one line per method label; the paper's values as black crosses where it printed them.
    ``relative``: each value divided by the task's best value over all rows (FoRA Fig. 1's
    "relative accuracy"). A logarithmic x axis when the values span a factor of 8 or more."""
    metrics = metrics or {}
    rows = [r for r in rows if r["method"] != "baseline" and _num(r.get(axis)) is not None]
    fig, axes_ = plt.subplots(1, len(tasks), figsize=(max(3.4 * len(tasks), MIN_WIDTH_IN), 3.8), squeeze=False,
                              layout="constrained")
    for ax, task in zip(axes_[0], tasks):
        best = max((_num(r.get(task)) or float("-inf") for r in rows), default=float("-inf"))
        scale = 100.0 / best if relative and best > 0 else 1.0
        for label in dict.fromkeys(r["label"] for r in rows):
            line = sorted((r for r in rows if r["label"] == label), key=lambda r: _num(r[axis]))
            pts = [(_num(r[axis]), _num(r.get(task)), _num(r.get(f"{task}_spread")) or 0.0) for r in line]
            pts = [(x, y * scale, e * scale) for x, y, e in pts if y is not None]
            if pts:
                xs, ys, es = zip(*pts)
                ax.errorbar(xs, ys, yerr=es, marker="o", ms=3, capsize=2, label=label)
            paper = [(_num(r[axis]), _num(r.get(f"{task}_paper"))) for r in line]
            paper = [(x, y) for x, y in paper if y is not None]
            if paper:
                ax.scatter(*zip(*paper), marker="x", color="black", zorder=3, label="paper" if label == rows[0]["label"] else None)
        xs = [_num(r[axis]) for r in rows]
        if xs and min(xs) > 0 and max(xs) / min(xs) >= 8:
            ax.set_xscale("log", base=2)
        ax.set_title(task)
        ax.set_xlabel(axis)
        name = metric_label(metrics.get(task))
        ax.set_ylabel(f"{name.split(' (')[0]} relative to best (%)" if relative else name)
    handles = {}
    for ax in axes_[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    scale_name = rows[0].get("scale", "") if rows else ""
    _finish(fig, f"{title} ({scale_name} scale)", handles)
    return fig


def plot_sweep(table_csv: Path, tasks: list[str], axis: str, title: str, out_png: Path, out_pdf: Path, *,
               relative: bool = False) -> None:
    """:func:`draw_sweep` of a table CSV, saved as PNG and PDF."""
    fig = draw_sweep(_read(table_csv), tasks, axis, title, relative=relative, metrics=table_metrics(table_csv))
    _save(fig, Path(out_png), Path(out_pdf))


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both counts (fewer or equal parameters and a higher
    score), by increasing parameters: the front a method must reach to be worth its cost."""
    front, best = [], float("-inf")
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def _cost(efficiency: list[dict], variant: str) -> tuple[float | None, float | None]:
    """(peak memory MB, step seconds): medians over the variant's tasks in the efficiency CSV."""
    mine = [e for e in efficiency if e.get("method") == variant]
    mem = [m for m in (_num(e.get("peak_memory_mb")) for e in mine) if m is not None]
    step = [m for m in (_num(e.get("step_seconds_median")) for e in mine) if m is not None]
    return (statistics.median(mem) if mem else None), (statistics.median(step) if step else None)


def draw_tradeoff(rows: list[dict], tasks: list[str], title: str, axes: Sequence[str] = (),
                  efficiency: list[dict] | None = None, metrics: dict[str, str] | None = None) -> plt.Figure:
    """Score against trainable parameters, one point per row of the table (a method, or a method
    at one axis value), the Pareto front as a step line. The score is the row's task average
    (``avg``: every cell complete) or, for a one-task table, that task. Marker area: peak memory
    from ``efficiency`` (the table's efficiency CSV), or the step time when memory is missing;
    one size for all without it. Rows without a score or a parameter count are left out and
    counted in the caption."""
    metrics = metrics or {}
    score_col = tasks[0] if len(tasks) == 1 else "avg"
    candidates = [r for r in rows if r["method"] != "baseline"]
    points = []
    for r in candidates:
        x, y = _num(r.get("trainable_params")), _num(r.get(score_col))
        if x is not None and x > 0 and y is not None:
            mem, step = _cost(efficiency or [], r["method"])
            points.append({"x": x, "y": y, "label": _label(r, axes), "mem": mem, "step": step})
    size_key = "mem" if points and all(p["mem"] is not None for p in points) else (
        "step" if points and all(p["step"] is not None for p in points) else None)
    fig, ax = plt.subplots(figsize=(MIN_WIDTH_IN + 1.5, 4.2), layout="constrained")
    if points:
        top = max(p[size_key] for p in points) if size_key else 1.0
        sizes = [30 + 400 * (p[size_key] / top if size_key and top > 0 else 0.25) for p in points]
        colours = plt.get_cmap("tab10" if len(points) <= 10 else "tab20")
        for i, (p, s) in enumerate(zip(points, sizes)):
            ax.scatter([p["x"]], [p["y"]], s=s, color=colours(i % colours.N), alpha=0.75, edgecolor="black",
                       lw=0.5, label=p["label"], zorder=3)
            ax.annotate(f"{p['label']}, {EngFormatter(sep='', places=1)(p['x'])}", (p["x"], p["y"]), xytext=(5, 4),
                        textcoords="offset points", fontsize=6)
        front = pareto_front([(p["x"], p["y"]) for p in points])
        ax.step(*zip(*front), where="post", color="black", ls="--", lw=1, label="Pareto front", zorder=2)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 10k, 1M: the counts are on the points
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.margins(x=0.15)
    baseline = next((r for r in rows if r["method"] == "baseline"), {})
    b = _num(baseline.get(score_col)) if score_col != "avg" else None
    if b is None and score_col == "avg":
        values = [_num(baseline.get(t)) for t in tasks]
        b = statistics.fmean(values) if values and all(v is not None for v in values) else None
    if b is not None:
        ax.axhline(b, color="grey", ls=":", lw=1, label="no-training baseline")
    ax.set_xlabel("trainable parameters (log scale)")
    names = {metric_label(metrics.get(t)) for t in tasks}
    name = names.pop() if len(names) == 1 else "score (x100)"
    ax.set_ylabel(name if score_col != "avg" else f"average over {len(tasks)} tasks: {name}")
    left_out = len(candidates) - len(points)
    size_note = {"mem": "marker area: peak memory", "step": "marker area: step time", None: "no efficiency data"}[size_key]
    ax.set_title(f"{size_note}" + (f"; {left_out} row(s) without a complete score left out" if left_out else ""),
                 fontsize=8)
    handles = dict(zip(*reversed(ax.get_legend_handles_labels())))
    ax.legend(handles.values(), handles.keys(), fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5),
              frameon=False, markerscale=0.5)
    scale = rows[0].get("scale", "") if rows else ""
    _finish(fig, f"{title}: score vs trainable parameters ({scale} scale)", {})
    return fig


def plot_tradeoff(table_csv: Path, out_png: Path, out_pdf: Path, efficiency_csv: Path | None = None,
                  title: str | None = None) -> None:
    """:func:`draw_tradeoff` of a table CSV (tasks and axes from its ``.meta.json``), saved as PNG and PDF."""
    table_csv = Path(table_csv)
    meta_path = table_csv.with_suffix(".meta.json")
    meta = read_json(meta_path) if meta_path.is_file() else {}
    rows = _read(table_csv)
    tasks = list(meta.get("tasks") or [c[: -len("_seeds")] for c in (rows[0] if rows else {}) if c.endswith("_seeds")])
    efficiency = _read(efficiency_csv) if efficiency_csv and Path(efficiency_csv).is_file() else []
    fig = draw_tradeoff(rows, tasks, title or table_csv.stem, meta.get("axes") or (), efficiency, table_metrics(table_csv))
    _save(fig, Path(out_png), Path(out_pdf))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness figures", description="figures drawn from table CSVs")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tradeoff", help="score vs trainable parameters (+ Pareto front) of one table")
    t.add_argument("--table", required=True, help="tables/<table>.csv (its .meta.json beside it)")
    t.add_argument("--efficiency", default=None, help="tables/efficiency_<table>.csv (marker sizes)")
    t.add_argument("--out", required=True, help="figure path without suffix: writes .png and .pdf")
    args = p.parse_args(argv)
    out = Path(args.out)
    plot_tradeoff(Path(args.table), out.with_suffix(".png"), out.with_suffix(".pdf"),
                  Path(args.efficiency) if args.efficiency else None)
    print(f"[figures] {out}.png")
    return 0

