"""The rules that say a finished run is not the method's result, and the table cells they flag.

The training loop applies them (``harness.health``) and records what it measured in
``train.json``/``eval.json``; :func:`flag_cells` reads those records into the table: a
``<task>_adapter`` column (how far training moved the adapter, and how many predictions depend on
it) and ``meta["cell_flags"]`` (``diverged``, ``inert``; docs/CONTRACTS.md). Imports no torch:
the table rule reads records only.
"""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence

__all__ = ["BLOWUP_FACTOR", "BLOWUP_RULE", "INERT_CHANGE", "INERT_RULE", "LOSS_WINDOW_MAX", "ONE_CLASS_RULE",
           "flag_cells"]

BLOWUP_FACTOR = 4.0
LOSS_WINDOW_MAX = 50
BLOWUP_RULE = (f"mean training loss over the last W steps > {BLOWUP_FACTOR:g} x the mean over the first W steps "
               f"(W = total steps / 5, between 1 and {LOSS_WINDOW_MAX})")
ONE_CLASS_RULE = ("a seed's evaluation predictions are all one class while another method of the table beats the "
                  "no-training baseline on the task")
INERT_CHANGE = 1e-3
INERT_RULE = ("switching the adapter off (trained head kept) changes no evaluation prediction (classification); "
              "where predictions are not classes, the median relative change of the adapted layers "
              f"(‖ΔW‖/‖W0‖, else their output on a fixed batch) is below {INERT_CHANGE:g}")
RULES = {"diverged": f"the loss became NaN/inf; or {BLOWUP_RULE}; or {ONE_CLASS_RULE}", "inert": INERT_RULE}


def cell_number(text) -> float | None:
    """A table cell as a finite number; None for '', 'failed', 'incomplete', nan."""
    try:
        x = float(text)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def adapter_text(effects: list[dict]) -> str:
    """``ΔW/W0 0.059 (max 0.11), 26% predictions change``: medians over the cell's seeds."""
    parts = []
    for key, name in (("weight_change", "ΔW/W0"), ("output_change", "output change")):
        runs = [e[key] for e in effects if e.get(key)]
        if runs:
            parts.append(f"{name} {statistics.median(r['median'] for r in runs):.2g} "
                         f"(max {max(r['max'] for r in runs):.2g})")
            break  # the weight change where there is one, else the output change
    shares = [e["predictions_changed"] for e in effects if e.get("predictions_changed") is not None]
    if shares:
        parts.append(f"{100 * statistics.median(shares):.0f}% predictions change")
    return ", ".join(parts)


def flag_cells(rows: list[dict], evals: list[dict], tasks: Sequence[str],
               baseline: Callable[[str], float | None]) -> dict:
    """Add ``<task>_adapter`` to every method row (when the runs measured it) and return the cells' flags
    (``{variant: {task: ["diverged", "inert"]}}``) by :data:`RULES`."""
    by_cell: dict[tuple, list[dict]] = defaultdict(list)
    for e in evals:
        by_cell[(e["variant"], e["task"])].append(e)
    beats = {t: {r["method"] for r in rows if r["method"] != "baseline" and baseline(t) is not None
                 and (cell_number(r.get(t)) or -math.inf) > baseline(t)} for t in tasks}
    measured = any(e.get("adapter_effect") for e in evals)  # records written before it was: no column
    flags: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        variant = row["method"]
        if variant == "baseline":
            continue
        for task in tasks:
            records = by_cell.get((variant, task), [])
            effects = [e["adapter_effect"] for e in records if e.get("status") == "ok" and e.get("adapter_effect")]
            if measured:
                row[f"{task}_adapter"] = adapter_text(effects)
            cell = []
            collapsed = any(x.get("one_class") for x in effects) and bool(beats[task] - {variant})
            if collapsed or any(e.get("status") == "diverged" for e in records):
                cell.append("diverged")
            if any(x.get("inert") for x in effects):
                cell.append("inert")
            if cell:
                flags.setdefault(variant, {})[task] = cell
    return flags


def merge_flags(*flag_sets: dict) -> dict:
    """Several stages' ``cell_flags`` as one (lists joined, no repeats)."""
    out: dict = {}
    for flags in flag_sets:
        for variant, cells in (flags or {}).items():
            for task, names in cells.items():
                have = out.setdefault(variant, {}).setdefault(task, [])
                have += [n for n in names if n not in have]
    return out
