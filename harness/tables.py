"""Paper-style tables: a row per method, a column per task, our aggregate next to the paper's.

Each cell is the median (or mean, as the paper did) over seeds of the best-epoch metric, with
its spread (sample standard deviation over seeds), the paper's printed value and our difference.
Paper values are read from the data file the config names; none is typed in code. The table
records the scale it was produced at, so a mini table is never mistaken for a paper one.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import statistics
import subprocess
from pathlib import Path

from harness.atomic import atomic_path, write_json


def read_paper_values(path: str | Path, table: str) -> dict[tuple[str, str], dict]:
    """(variant, task) -> {value, spread, params, source} for ``table``."""
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["table"] == table:
                out[(row["method"], row["task"])] = {
                    "value": float(row["value"]),
                    "spread": float(row["spread"]) if row["spread"] else None,
                    "params": row["params"],
                    "source": row["source"],
                }
    return out


def aggregate(values: list[float], how: str) -> tuple[float, float]:
    """(median or mean, sample std) over seeds; the std of one seed is 0."""
    centre = statistics.median(values) if how == "median" else statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return centre, spread


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _fmt(x: float | None, nd: int = 2) -> str:
    return "" if x is None else f"{x:.{nd}f}"


def _baseline(data_metas: dict, task: str) -> float | None:
    """The no-training predictor's metric (majority class / constant mean) from the prepared data."""
    b = data_metas.get(task, {}).get("baseline")
    return b["value"] if b else None


def build_table(cfg: dict, evals: list[dict], data_metas: dict[str, dict]) -> tuple[list[dict], dict]:
    """Rows of the table and its scale record, from eval records and the prepared data's meta."""
    tasks, how = cfg["tasks"], cfg["aggregate"]
    paper = read_paper_values(cfg["paper_values"], cfg["table"]) if cfg["_scale"] == "paper" else {}
    by_cell: dict[tuple[str, str], list[dict]] = {}
    for e in evals:
        by_cell.setdefault((e["variant"], e["task"]), []).append(e)

    rows = []
    for variant, m in cfg["methods"].items():
        row = {"method": variant, "label": m["label"], "registry_method": m["method"]}
        params = {e["trainable_params"] for e in evals if e["variant"] == variant and e.get("status") == "ok"}
        row["trainable_params"] = min(params) if params else ""
        ours_all, paper_all, beats = [], [], []
        for task in tasks:
            runs = by_cell.get((variant, task), [])
            ok = [e["metric"] for e in runs if e.get("status") == "ok"]
            failed = [e for e in runs if e.get("status") != "ok"]
            ref = paper.get((variant, task))
            row[f"{task}_seeds"] = f"{len(ok)}/{len(runs)}" + (f" ({len(failed)} failed)" if failed else "")
            if ok:
                centre, spread = aggregate(ok, how)
                row[task], row[f"{task}_spread"] = _fmt(centre), _fmt(spread)
                ours_all.append(centre)
                base = _baseline(data_metas, task)
                if base is not None:
                    beats.append(centre > base)
            else:
                row[task], row[f"{task}_spread"] = ("failed" if failed else ""), ""
            row[f"{task}_paper"] = _fmt(ref["value"], 1) if ref else ""
            row[f"{task}_paper_spread"] = _fmt(ref["spread"], 1) if ref and ref["spread"] is not None else ""
            row[f"{task}_diff"] = _fmt(float(row[task]) - ref["value"]) if ref and ok else ""
            if ref:
                paper_all.append(ref["value"])
        complete = len(ours_all) == len(tasks)
        row["avg"] = _fmt(statistics.fmean(ours_all)) if complete else ""
        row["avg_paper"] = _fmt(statistics.fmean(paper_all), 1) if len(paper_all) == len(tasks) else ""
        row["avg_diff"] = _fmt(float(row["avg"]) - float(row["avg_paper"])) if row["avg"] and row["avg_paper"] else ""
        row["beats_baseline_on_all_tasks"] = ("yes" if all(beats) else "no") if len(beats) == len(tasks) else ""
        srcs = sorted({paper[(variant, t)]["source"] for t in tasks if (variant, t) in paper})
        row["paper_source"] = "; ".join(srcs)
        row["paper_params"] = next((paper[(variant, t)]["params"] for t in tasks if (variant, t) in paper), "")
        rows.append(row)

    baseline = {"method": "baseline", "label": "majority class / constant (no training)", "registry_method": "", "trainable_params": 0}
    for task in tasks:
        baseline[task] = _fmt(_baseline(data_metas, task))
    rows.append(baseline)

    scale = {
        "table": cfg["table"],
        "title": cfg["title"],
        "scale": cfg["_scale"],
        "scale_note": cfg.get("scale_note", "paper: the configuration of the papers' appendices"),
        "backbone": cfg["backbone"]["name"],
        "tasks": {t: {k: data_metas.get(t, {}).get(k) for k in ("n_train", "n_eval", "metric")} for t in tasks},
        "seeds": cfg["seeds"],
        "aggregate": f"{how} over seeds of the best epoch; spread = sample std over seeds",
        "epochs": {v: sorted({e["epochs"] for e in evals if e["variant"] == v}) for v in cfg["methods"]},
        "produced_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git_commit(),
    }
    for row in rows:
        row["scale"] = cfg["_scale"]
        row["backbone"] = cfg["backbone"]["name"]
    return rows, scale


def write_table(rows: list[dict], scale: dict, out_csv: Path, out_meta: Path) -> None:
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with atomic_path(out_csv) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
    write_json(out_meta, scale)


def load_jsons(paths) -> list[dict]:
    return [json.loads(Path(p).read_text()) for p in paths]
