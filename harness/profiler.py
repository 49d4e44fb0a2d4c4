"""Efficiency tables from the profiles every training job writes (wall-clock, step time, memory).

Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA and, on the CPU, the peak resident set
the job added after its imports (:mod:`harness.core.memory`: the same with and without the job
server); the column ``peak_memory_kind`` says which, so CPU and GPU rows are never compared by accident.
``precision`` says whether the job ran under bf16 autocast or in fp32 (docs/gpu.md). Step times
are ``perf_counter`` per step on the CPU and CUDA-event times (the GPU's time per step, read once
per logging window) on a GPU; a resumed job's profile counts the steps of every epoch.
"""
from __future__ import annotations

import statistics
from pathlib import Path

from harness.core.atomic import write_csv

COLUMNS = ["method", "task", "seeds", "trainable_params", "device", "precision", "threads", "step_seconds_median",
           "samples_per_second", "wall_seconds", "peak_memory_mb", "peak_memory_kind", "step_time_vs_ref", "ref_method"]


def efficiency_rows(profiles: list[dict], ref_method: str | None = None) -> list[dict]:
    """One row per (variant, task): medians over seeds. ``ref_method`` (a variant) gives the ratio column."""
    cells: dict[tuple[str, str], list[dict]] = {}
    for p in profiles:
        if p.get("status", "ok") == "ok" and p.get("step_seconds_median") is not None:
            cells.setdefault((p["variant"], p["task"]), []).append(p)
    med = lambda ps, k: statistics.median(p[k] for p in ps)  # noqa: E731
    rows = []
    for (variant, task), ps in cells.items():
        rows.append({
            "method": variant, "task": task, "seeds": len(ps),
            "trainable_params": ps[0]["trainable_params"], "device": ps[0]["device"],
            "precision": ps[0].get("precision", "fp32"), "threads": ps[0]["threads"],
            "step_seconds_median": med(ps, "step_seconds_median"), "samples_per_second": med(ps, "samples_per_second"),
            "wall_seconds": med(ps, "wall_seconds"), "peak_memory_mb": med(ps, "peak_memory_mb"),
            "peak_memory_kind": ps[0]["peak_memory_kind"],
        })
    ref = {r["task"]: r["step_seconds_median"] for r in rows if r["method"] == ref_method}
    for r in rows:
        r["ref_method"] = ref_method if r["task"] in ref else ""
        r["step_time_vs_ref"] = round(r["step_seconds_median"] / ref[r["task"]], 3) if r["task"] in ref else ""
        for k in ("step_seconds_median", "samples_per_second", "wall_seconds", "peak_memory_mb"):
            r[k] = round(r[k], 4)
    return rows


def write_efficiency(rows: list[dict], out_csv: Path) -> None:
    write_csv(out_csv, rows, COLUMNS)
