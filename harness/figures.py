"""Figures: ours vs the paper per method and task (PNG + PDF), drawn from the table CSV."""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness.atomic import atomic_path  # noqa: E402


def _num(x: str) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def plot_table(table_csv: Path, tasks: list[str], title: str, out_png: Path, out_pdf: Path) -> None:
    """One panel per task: our aggregate with its spread (bars) and the paper's value (black ticks);
    the no-training baseline is a dashed line."""
    with open(table_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    methods = [r for r in rows if r["method"] != "baseline"]
    baseline = next((r for r in rows if r["method"] == "baseline"), {})
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        xs = range(len(methods))
        ours = [_num(r.get(task)) for r in methods]
        err = [_num(r.get(f"{task}_spread")) or 0.0 for r in methods]
        ax.bar(xs, [o or 0.0 for o in ours], yerr=err, color="#4C72B0", capsize=3, label="ours")
        for x, r in zip(xs, methods):
            p = _num(r.get(f"{task}_paper"))
            if p is not None:
                ax.plot([x - 0.4, x + 0.4], [p, p], color="black", lw=2, label="paper" if x == 0 else None)
            if r.get(task) == "failed":
                ax.text(x, 0, "failed", rotation=90, ha="center", va="bottom", color="red")
        b = _num(baseline.get(task))
        if b is not None:
            ax.axhline(b, color="grey", ls="--", lw=1, label="no-training baseline")
        ax.set_title(task)
        ax.set_xticks(list(xs), [r["label"] for r in methods], rotation=60, ha="right", fontsize=7)
    seen = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    fig.legend(seen.values(), seen.keys(), loc="upper right", fontsize=8)
    scale = rows[0].get("scale", "") if rows else ""
    fig.suptitle(f"{title} ({scale} scale)")
    fig.tight_layout(rect=(0, 0, 0.9, 0.95))
    for out in (out_png, out_pdf):
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=out.suffix.lstrip("."), dpi=150)
    plt.close(fig)
