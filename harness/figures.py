"""Figures: ours vs the paper per method and task (PNG + PDF), drawn from the table CSV.

One panel per task: our aggregate with its spread (blue bars), the paper's value (black ticks),
the no-training baseline (dashed line). A cell whose seeds did not all finish has no number in
the table; the figure draws the aggregate of the seeds that finished (``<task>_partial``) as a
hatched, pale bar without spread and writes ``incomplete k/n`` on it; a cell where no seed
finished says ``failed``. The title says the scale. For a sweep table (``axes``) a bar's label
carries its axis values, e.g. ``FoRA (rank=8)``.
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from harness.core.atomic import atomic_path  # noqa: E402

OURS, PARTIAL, INCOMPLETE_COLOUR, FAILED_COLOUR = "#4C72B0", "#C9D3E6", "#DD8452", "red"


def _num(x: str) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _label(row: dict, axes: Sequence[str]) -> str:
    given = [f"{a}={row[a]}" for a in axes if row.get(a, "") != ""]
    return f"{row['label']} ({', '.join(given)})" if given else row["label"]


def draw_table(rows: list[dict], tasks: list[str], title: str, axes: Sequence[str] = ()) -> plt.Figure:
    """The figure of a table's rows (as read from its CSV); the caller saves and closes it."""
    methods = [r for r in rows if r["method"] != "baseline"]
    baseline = next((r for r in rows if r["method"] == "baseline"), {})
    # at least two panels wide: a one-task table (a mini ablation) would clip its title
    fig, panels = plt.subplots(1, len(tasks), figsize=(3.2 * max(len(tasks), 2), 3.6), squeeze=False)
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
        ax.set_xticks(xs, [_label(r, axes) for r in methods], rotation=60, ha="right", fontsize=7)
    seen = {}
    for ax in panels[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if any(r.get(t) == "incomplete" for r in methods for t in tasks):
        seen["partial: not all seeds finished"] = Patch(facecolor=PARTIAL, hatch="//", edgecolor=INCOMPLETE_COLOUR)
    fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=len(seen), fontsize=8, frameon=False)
    scale = rows[0].get("scale", "") if rows else ""
    fig.suptitle(f"{title} ({scale} scale)")
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return fig


def plot_table(table_csv: Path, tasks: list[str], title: str, out_png: Path, out_pdf: Path,
               axes: Sequence[str] = ()) -> None:
    """One panel per task: our aggregate with its spread (bars) and the paper's value (black ticks);
    the no-training baseline is a dashed line; incomplete and failed cells are marked."""
    with open(table_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    fig = draw_table(rows, tasks, title, axes)
    try:
        for out in (Path(out_png), Path(out_pdf)):
            with atomic_path(out) as tmp:
                fig.savefig(tmp, format=out.suffix.lstrip("."), dpi=150)
    finally:
        plt.close(fig)


def plot_sweep(table_csv: Path, tasks: list[str], axis: str, title: str, out_png: Path, out_pdf: Path, *,
               relative: bool = False) -> None:
    """A sweep table as lines: one panel per task, our aggregate (with its spread) against the axis
    value, one line per method label; the paper's values as black crosses where it printed them.
    ``relative``: each value divided by the task's best value over all rows (FoRA Fig. 1's
    "relative accuracy"). A logarithmic x axis when the values span a factor of 8 or more."""
    with open(table_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] != "baseline" and _num(r.get(axis)) is not None]
    fig, axes_ = plt.subplots(1, len(tasks), figsize=(3.4 * len(tasks), 3.2), squeeze=False)
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
        ax.set_ylabel("relative to best (%)" if relative else "metric")
    handles = {}
    for ax in axes_[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(len(handles), 5), fontsize=7)
    scale_name = rows[0].get("scale", "") if rows else ""
    fig.suptitle(f"{title} ({scale_name} scale)")
    fig.tight_layout(rect=(0, 0.12, 1, 0.93))
    for out in (out_png, out_pdf):
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=out.suffix.lstrip("."), dpi=150)
    plt.close(fig)
