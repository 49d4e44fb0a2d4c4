"""Paper-style tables: a row per method, a column per task, our aggregate next to the paper's.

Selection and aggregation, stated (the table's meta says the same):

* Selection: as each suite's source did (:class:`harness.suites.base.Selection`), stated per
  table and column in the meta (``selection``, ``selection_by_column``): GLUE selects and reports on
  the validation split (the papers' protocol); vision selects on a validation split held out of
  train and reports test; instruct selects on the held-out loss and reports test, and a math run of
  several epochs shows its best epoch on test (FoRA's "Extended" column), flagged
  ``selected_on_test`` in ``cell_flags``, with the held-out selection beside it (``<task>_heldout``).
  ``<task>_last`` is the same aggregate over the last epoch's metric on the reported split.
* Aggregate: the median (or mean, as the paper did) over seeds, with its spread (sample standard
  deviation over seeds; empty for one seed: there is none), the paper's printed value and our difference.
* Incomplete cells: a cell shows a number only when every seed finished. ``<task>_seeds`` says
  ``k/n`` (and how many failed or have no record); ``<task>`` is then ``incomplete`` (some
  finished) or ``failed`` (none did), and ``<task>_partial`` holds the aggregate of the seeds
  that finished, so a diverged seed never drops out of a median silently. The average and
  ``beats_baseline_on_all_tasks`` need every cell of the row complete.

Sweep axes: ``build_table(..., axes=["rank"])`` groups by variant x task x the axes. An eval
record carries its axis values as ``axes: {"rank": 8}``. The table then has a column per axis
(after ``registry_method``) and a row per variant and axis value (``fora`` rank 4, ``fora``
rank 8, ...), sorted by value; a variant whose records carry no value for an axis keeps one row,
which shows the value its resolved method config ran with (the FAA row of the FAA ablation:
num_grids 9, sigma 1) or, when the config has no such key (LoRA in a FoRA rank sweep), nothing. Without axes the table is the
plain paper table: a row per variant, no axis column. Paper values match on the axis columns of
the paper-values file when it has them (a row without the column matches an empty value).

Further columns: a record's ``extra_metrics`` (``{"math_strict": 12.0}``, the suite's
``extra_metrics``; ``last_extra_metrics`` for the last epoch) become columns of their own right
after their task's (``math`` by equivalence, then ``math_strict``), aggregated like a task but
left out of ``avg`` and ``beats_baseline_on_all_tasks``, which stay over the configured tasks.

Paper values are read from the data file the config names; none is typed in code. The table
records the scale it was produced at, so a mini table is never mistaken for a paper one.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from harness.core.atomic import read_json, write_csv, write_json
from harness.core.provenance import git_commit, provenance
from harness.config import RESERVED_AXES
from harness.suites import get_suite
from harness.run_flags import RULES, flag_cells, merge_flags

SELECTION = (
    "best epoch selected on the validation split and reported on that same split (the papers' protocol); "
    "`<task>_last` = last epoch"
)
INCOMPLETE, FAILED, DIVERGED = "incomplete", "failed", "diverged"
# per task, in this order: the columns of one task's block in the CSV
TASK_COLUMNS = ("_seeds", "", "_spread", "_paper", "_paper_spread", "_diff", "_last", "_partial")


def axis_key(value) -> str:
    """An axis value as the string the table shows and matches on: 8, 8.0 and "8" are all "8"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    text = str(value).strip()
    try:
        x = float(text)
    except ValueError:
        return text
    if not math.isfinite(x):
        return text
    return str(int(x)) if x.is_integer() else repr(x)


def _axis_order(key: tuple[str, ...]) -> tuple:
    """Numbers by value, then other strings, then missing values."""
    out = []
    for s in key:
        try:
            out.append((0, float(s), ""))
        except ValueError:
            out.append((2, 0.0, "") if s == "" else (1, 0.0, s))
    return tuple(out)


def read_paper_values(path: str | Path, table: str, axes: Sequence[str] = ()) -> dict[tuple, dict]:
    """(variant, task[, *axis values]) -> {value, spread, params, source} for ``table``.

    With ``axes`` the key carries the row's value in each axis column (``axis_key``; "" when the
    file has no such column), so a sweep row finds the paper value printed for its axis value.
    """
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    out = {}
    for row in df[df["table"] == table].to_dict("records"):
        key = (row["method"], row["task"], *(axis_key(row.get(a, "")) for a in axes))
        out[key] = {
            "value": float(row["value"]),
            "spread": float(row["spread"]) if row["spread"] else None,
            "params": row["params"],
            "source": row["source"],
        }
    return out


def aggregate(values: list[float], how: str) -> tuple[float, float]:
    """(median or mean, sample std) over seeds; the std of one seed is 0.

    ``statistics`` rather than numpy: exact sums, so a cell's printed digits do not depend on
    the order the seeds were summed in.
    """
    centre = statistics.median(values) if how == "median" else statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return centre, spread


def _tuned_cells(evals: list[dict]) -> dict:
    """(variant, task) -> the tuning record its runs used (``tuned`` in eval.json, written by
    ``harness train --tuned``); cells whose seeds ran different records keep the first."""
    out = {}
    for e in evals:
        if e.get("tuned"):
            out.setdefault((e["variant"], e["task"]), e["tuned"])
    return out


def _shared_runs(evals: list[dict]) -> dict[str, list[str]]:
    """variant -> the runs of other tables or variants it reads (``run_of``, set by :func:`load_runs`)."""
    out: dict[str, set[str]] = {}
    for e in evals:
        if e.get("run_of"):
            out.setdefault(e["variant"], set()).add(e["run_of"])
    return {v: sorted(runs) for v, runs in out.items()}


def _tuned_text(rec: dict | None) -> str:
    """A tuned cell's ``<task>_tuned`` column: the values that replaced the configured ones and the
    budget, e.g. ``lr=0.0123 (3/3 trials, same budget for every method)``; empty if not tuned."""
    if not rec:
        return ""
    values = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec["params"].items())
    budget = "same budget for every method" if rec.get("fair") else "this method's budget"
    return f"{values} ({rec['completed']}/{rec['trials']} trials, {budget})"


def _mark_linear_probe(rows: list[dict], tasks: Sequence[str]) -> None:
    """A table with one linear-probe row (the vision tables' floor: FoRA Table 4's LP) says, per
    other row, on which tasks it beats that probe: ``beats_linear_probe_on`` lists them ('none' if
    on none; empty while a cell of either row is incomplete)."""
    probes = [r for r in rows if r["registry_method"] == "linear_probe"]
    if len(probes) != 1:
        return
    def value(row: dict, task: str) -> float:  # the cell as printed; nan for '', 'incomplete', 'failed'
        try:
            return float(row.get(task, ""))
        except ValueError:
            return math.nan

    probe = probes[0]
    for row in rows:
        if row is probe:
            continue
        values = [(value(row, t), value(probe, t)) for t in tasks]
        if any(math.isnan(a) or math.isnan(b) for a, b in values):
            row["beats_linear_probe_on"] = ""
        else:
            row["beats_linear_probe_on"] = ", ".join(t for t, (a, b) in zip(tasks, values) if a > b) or "none"


def _fill_default_axes(rows: list[dict], axes: Sequence[str], configs: dict) -> None:
    """A row that was not swept along an axis (the FAA row of the FAA ablation beside its
    num_grids and sigma sweeps) shows the value it ran with there, from its resolved method
    config; it stays empty when the config has no such key (LoRA's row in a FoRA rank sweep).
    Paper values were matched before, on the empty value."""
    for row in rows:
        config = configs.get(row["method"])
        for a in axes:
            if row.get(a) == "" and isinstance(config, dict) and config.get(a) is not None:
                row[a] = axis_key(config[a])


def _models(evals: list[dict]) -> list[dict]:
    """The distinct models the table's runs loaded (harness.models.model_record); one unless runs differ."""
    seen = {json.dumps(e["model"], sort_keys=True): e["model"] for e in evals if e.get("model")}
    return list(seen.values())


def _method_configs(evals: list[dict], variants) -> dict:
    """Per variant, the adapter configs its finished runs resolved (defaults included: which FRAME
    transform, which FourierMoE coefficients); one entry unless the runs disagree."""
    out = {}
    for v in variants:
        seen = {json.dumps(e["method_config"], sort_keys=True): e["method_config"]
                for e in evals if e["variant"] == v and e.get("method_config") is not None}
        if seen:
            out[v] = list(seen.values())[0] if len(seen) == 1 else list(seen.values())
    return out


def _fmt(x: float | None, nd: int = 2) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _baseline(data_metas: dict, task: str) -> float | None:
    """The no-training predictor's metric (majority class / constant mean) from the prepared data."""
    b = data_metas.get(task, {}).get("baseline")
    return b["value"] if b else None


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def extra_columns(evals: list[dict]) -> dict[str, list[str]]:
    """task -> the further columns its records carry (``math`` -> ``["math_strict"]``), in order."""
    out: dict[str, list[str]] = {}
    for e in evals:
        for name in e.get("extra_metrics") or {}:
            if name not in out.setdefault(e["task"], []):
                out[e["task"]].append(name)
    return out


def _with_extra_columns(evals: list[dict]) -> list[dict]:
    """The records, each followed by one record per further column of its task (task = the
    column's name, its best- and last-epoch values, its run's status), so that a column aggregates
    like a task; a failed run counts as failed in its task's further columns too."""
    columns, out = extra_columns(evals), []
    for e in evals:
        out.append(e)
        best, last = e.get("extra_metrics") or {}, e.get("last_extra_metrics") or {}
        out += [e | {"task": name, "metric": best.get(name), "last_metric": last.get(name)}
                for name in columns.get(e["task"], [])]
    return out


def eval_frame(evals: list[dict], axes: Sequence[str] = ()) -> pd.DataFrame:
    """One row per eval record: variant, task, the axis values, seed, ok, metric, last_metric, params.

    A record counts as finished (``ok``) when its status is ok and its metric a finite number;
    ``last_metric`` is NaN where the record has none (records written before it existed).
    """
    rows = []
    for e in _with_extra_columns(evals):
        ok = e.get("status") == "ok" and _finite(e.get("metric"))
        given = e.get("axes") or {}
        rows.append({
            "variant": e["variant"],
            "task": e["task"],
            **{a: axis_key(given.get(a)) for a in axes},
            "seed": e.get("seed"),
            "ok": ok,
            "failed": not ok,
            "diverged": e.get("status") == "diverged",
            "metric": float(e["metric"]) if ok else math.nan,
            "last_metric": float(e["last_metric"]) if ok and _finite(e.get("last_metric")) else math.nan,
            "trainable_params": e.get("trainable_params") if ok else None,
        })
    cols = ["variant", "task", *axes, "seed", "ok", "failed", "diverged", "metric", "last_metric", "trainable_params"]
    return pd.DataFrame.from_records(rows, columns=cols)


def cell_stats(runs: pd.DataFrame, axes: Sequence[str], how: str, seeds: Sequence[int]) -> pd.DataFrame:
    """Group the runs by variant x axes x task: seeds finished, failed, missing, and the aggregates.

    ``n`` counts the records plus the configured seeds that have none (``missing``); ``centre`` and
    ``spread`` are over the finished seeds; ``last`` over their last-epoch metric, NaN unless every
    finished seed has one.
    """
    keys = ["variant", *axes, "task"]

    def centre(s: pd.Series) -> float:
        v = s.dropna().tolist()
        return aggregate(v, how)[0] if v else math.nan

    def spread(s: pd.Series) -> float:
        v = s.dropna().tolist()
        return aggregate(v, how)[1] if v else math.nan

    def missing(s: pd.Series) -> int:
        return len(set(seeds) - set(s.dropna().tolist()))

    cells = runs.groupby(keys, sort=False).agg(
        records=("ok", "size"),
        k=("ok", "sum"),
        n_failed=("failed", "sum"),
        n_diverged=("diverged", "sum"),
        missing=("seed", missing),
        centre=("metric", centre),
        spread=("metric", spread),
        n_last=("last_metric", "count"),
        last=("last_metric", centre),
    )
    cells["n"] = cells["records"] + cells["missing"]
    cells.loc[cells["n_last"] != cells["k"], "last"] = math.nan
    return cells.reset_index()


def _check_not_pooled(evals: list[dict], axes: Sequence[str]) -> None:
    """Records that differ in an axis the table does not group by would be pooled into one median."""
    other = sorted({a for e in evals for a in (e.get("axes") or {})} - set(axes))
    if not other:
        return
    frame = pd.DataFrame([{"variant": e["variant"], "task": e["task"],
                           **{a: axis_key((e.get("axes") or {}).get(a)) for a in [*axes, *other]}} for e in evals])
    counts = frame.groupby(["variant", "task", *axes])[other].nunique()
    for a in other:
        mixed = counts[counts[a] > 1]
        if len(mixed):
            key = mixed.index[0] if isinstance(mixed.index[0], tuple) else (mixed.index[0],)
            raise ValueError(f"eval records of {'/'.join(map(str, key))} differ in sweep axis {a!r}; "
                             f"build the table with axes={[*axes, a]!r} so they are not pooled into one cell")


def _seeds_text(k: int, n: int, failed: int, missing: int, diverged: int = 0) -> str:
    notes = ([f"{diverged} diverged"] * bool(diverged) + [f"{failed - diverged} failed"] * bool(failed - diverged)
             + [f"{missing} missing"] * bool(missing))
    return f"{k}/{n}" + (f" ({', '.join(notes)})" if notes else "")


def build_table(cfg: dict, evals: list[dict], data_metas: dict[str, dict],
                axes: Sequence[str] = ()) -> tuple[list[dict], dict]:
    """Rows of the table and its scale record, from eval records and the prepared data's meta.

    ``axes``: extra group-by keys (sweep axes) read from each record's ``axes`` dict; a row per
    variant and axis value (see the module docstring).
    """
    axes = list(axes)
    bad = [a for a in axes if a in RESERVED_AXES or a in cfg["tasks"] or a.startswith("avg")]
    if bad:
        raise ValueError(f"sweep axis {bad[0]!r} clashes with a column of the table; rename the axis")
    tasks, how, seeds = cfg["tasks"], cfg["aggregate"], cfg["seeds"]
    extra = extra_columns([e for e in evals if e["variant"] in cfg["methods"] and e["task"] in tasks])
    columns = [c for t in tasks for c in (t, *extra.get(t, []))]  # each task, then its further columns
    paper = read_paper_values(cfg["paper_values"], cfg["table"], axes) if cfg["_scale"] == "paper" else {}
    _check_not_pooled(evals, axes)
    runs = eval_frame(evals, axes)
    runs = runs[runs["variant"].isin(list(cfg["methods"]))]

    # the grid: every configured variant x (its axis values seen in the records, or none) x task
    grid, row_id = [], 0
    for variant in cfg["methods"]:
        mine = runs[runs["variant"] == variant]
        combos = sorted({tuple(r) for r in mine[axes].itertuples(index=False)}, key=_axis_order) if axes else []
        for combo in combos or [("",) * len(axes)]:
            grid += [{"_row": row_id, "variant": variant, **dict(zip(axes, combo)), "task": t} for t in columns]
            row_id += 1
    grid = pd.DataFrame(grid, columns=["_row", "variant", *axes, "task"])
    stats = cell_stats(runs, axes, how, seeds) if len(runs) else None
    if stats is None:
        cells = grid.assign(records=0, k=0, n_failed=0, n_diverged=0, missing=len(set(seeds)), centre=math.nan,
                            spread=math.nan, n_last=0, last=math.nan)
        cells["n"] = cells["missing"]
    else:
        cells = grid.merge(stats, on=["variant", *axes, "task"], how="left")
        no_record = cells["records"].isna()
        cells.loc[no_record, ["records", "k", "n_failed", "n_diverged", "n_last"]] = 0
        cells.loc[no_record, "missing"] = len(set(seeds))
        cells.loc[no_record, "n"] = len(set(seeds))
    params = runs.dropna(subset=["trainable_params"]).groupby(["variant", *axes])["trainable_params"].min()

    tuned = _tuned_cells(evals)
    rows = []
    for _, part in cells.groupby("_row", sort=True):
        first = part.iloc[0]
        variant, combo = first["variant"], tuple(first[a] for a in axes)
        m = cfg["methods"][variant]
        row = {"method": variant, "label": m["label"], "registry_method": m["method"], **dict(zip(axes, combo))}
        p = params.get((variant, *combo) if axes else variant)
        row["trainable_params"] = int(p) if p is not None and not pd.isna(p) else ""
        ours_all, paper_all, beats = [], [], []
        for c in part.to_dict("records"):
            task = c["task"]
            k, n, n_failed, n_missing = int(c["k"]), int(c["n"]), int(c["n_failed"]), int(c["missing"])
            complete = n > 0 and k == n
            ref = paper.get((variant, task, *combo))
            n_diverged = int(c["n_diverged"])
            row[f"{task}_seeds"] = _seeds_text(k, n, n_failed, n_missing, n_diverged)
            if tuned:
                row[f"{task}_tuned"] = _tuned_text(tuned.get((variant, task)))
            if complete:
                row[task], row[f"{task}_spread"] = _fmt(c["centre"]), _fmt(c["spread"]) if k > 1 else ""
                if task in tasks:  # avg and the baseline verdict: over the configured tasks only
                    ours_all.append(c["centre"])
                    base = _baseline(data_metas, task)
                    beats += [c["centre"] > base] if base is not None else []
            else:
                row[task] = INCOMPLETE if k else ((DIVERGED if n_diverged == n_failed else FAILED) if n_failed else "")
                row[f"{task}_spread"] = ""
            row[f"{task}_paper"] = _fmt(ref["value"], 1) if ref else ""
            row[f"{task}_paper_spread"] = _fmt(ref["spread"], 1) if ref and ref["spread"] is not None else ""
            row[f"{task}_diff"] = _fmt(float(row[task]) - ref["value"]) if ref and complete else ""
            row[f"{task}_last"] = _fmt(c["last"]) if complete else ""
            row[f"{task}_partial"] = _fmt(c["centre"]) if 0 < k < n else ""
            if ref:
                paper_all.append(ref["value"])
        row["avg"] = _fmt(statistics.fmean(ours_all)) if len(ours_all) == len(tasks) else ""
        row["avg_paper"] = _fmt(statistics.fmean(paper_all), 1) if len(paper_all) == len(tasks) else ""
        row["avg_diff"] = _fmt(float(row["avg"]) - float(row["avg_paper"])) if row["avg"] and row["avg_paper"] else ""
        row["beats_baseline_on_all_tasks"] = ("yes" if all(beats) else "no") if len(beats) == len(tasks) else ""
        refs = [paper[(variant, t, *combo)] for t in tasks if (variant, t, *combo) in paper]
        row["paper_source"] = "; ".join(sorted({r["source"] for r in refs}))
        row["paper_params"] = refs[0]["params"] if refs else ""
        rows.append(row)

    _fill_default_axes(rows, axes, _method_configs(evals, cfg["methods"]))
    _mark_linear_probe(rows, tasks)
    baseline = {"method": "baseline", "label": get_suite(cfg["suite"]).baseline_label, "registry_method": "",
                **{a: "" for a in axes}, "trainable_params": 0}
    for task in tasks:
        baseline[task] = _fmt(_baseline(data_metas, task))
        scored = ((data_metas.get(task) or {}).get("baseline") or {}).get("extra_metrics") or {}
        for name in extra.get(task, []):  # the suite's baseline scores its further columns too
            baseline[name] = _fmt(scored.get(name))
    rows.append(baseline)
    health_flags = flag_cells(rows, evals, tasks, lambda t: _baseline(data_metas, t))

    commit = git_commit()
    scale = {
        "table": cfg["table"],
        "title": cfg["title"],
        "scale": cfg["_scale"],
        "scale_note": cfg.get("scale_note", "paper: the configuration of the papers' appendices"),
        "backbone": cfg["backbone"]["name"],
        "tasks": {t: {k: data_metas.get(t, {}).get(k) for k in ("n_train", "n_eval", "metric")} for t in tasks}
        | {name: {k: data_metas.get(t, {}).get(k) for k in ("n_train", "n_eval", "metric")} | {"column_of": t}
           for t, names in extra.items() for name in names},
        "extra_columns": {name: t for t, names in extra.items() for name in names},
        "seeds": cfg["seeds"],
        **selection_meta(evals, tasks),
        "flag_rules": RULES,  # when a cell is flagged diverged or inert (harness.run_flags)
        "aggregate": f"{how} over seeds of the best epoch; spread = sample std over seeds",
        "aggregate_last": f"`<task>_last`: {how} over seeds of the last epoch's metric; empty when a seed's "
                          "record has no last_metric (written before it was recorded) or the cell is incomplete",
        "incomplete_cells": "a cell shows a number only when all n seeds finished; otherwise `<task>_seeds` is "
                            "k/n (with how many failed or have no record), `<task>` is 'incomplete' (some "
                            "finished) or 'failed' (none finished), and `<task>_partial` is the aggregate of the "
                            "k finished seeds; avg and beats_baseline_on_all_tasks need every cell complete",
        "axes": axes,
        "epochs": {v: sorted({e["epochs"] for e in evals if e["variant"] == v}) for v in cfg["methods"]},
        "last_epochs": {v: sorted({e["last_epoch"] for e in evals
                                   if e["variant"] == v and e.get("last_epoch") is not None}) for v in cfg["methods"]},
        "method_configs": _method_configs(evals, cfg["methods"]),
        "models": _models(evals),  # the backbone each run actually loaded (folder, revision, weights)
        "tuned": {f"{v}/{t}": rec for (v, t), rec in tuned.items()},
        "shared_runs": _shared_runs(evals),
        "produced_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "provenance": {"config": cfg.get("_path"),
                       **provenance(commit, data={t: data_metas.get(t, {}).get("source") for t in tasks})},
    }
    if health_flags:
        scale["cell_flags"] = merge_flags(scale.get("cell_flags"), health_flags)
    for row in rows:
        row["scale"] = cfg["_scale"]
        row["backbone"] = cfg["backbone"]["name"]
    return rows, scale


def selection_meta(evals: list[dict], tasks: Sequence[str]) -> dict:
    """How the table's checkpoints were selected, from its runs' records (the suite's protocol,
    :class:`harness.suites.base.Selection`): ``selection`` (one text, or the texts joined when the
    columns differ), ``selection_by_column`` (task -> text) and ``cell_flags`` ``selected_on_test``
    for the cells whose runs report their best epoch on test (FoRA's math "Extended" column).
    Records written before selection was recorded fall back to :data:`SELECTION`."""
    by_task: dict[str, str] = {}
    flags: dict[str, dict[str, list[str]]] = {}
    for e in evals:
        if e.get("task") not in tasks or e.get("status") != "ok":
            continue
        text = (e.get("selection") or {}).get("text") or SELECTION
        if e.get("selected_on_test"):
            text += "; this column (runs of more than one epoch): the best epoch on test, labelled selected on: test"
            flags.setdefault(e["variant"], {}).setdefault(e["task"], ["selected_on_test"])
        by_task.setdefault(e["task"], text)
    texts = list(dict.fromkeys(by_task.values()))
    out = {"selection": texts[0] if len(texts) == 1 else " | ".join(f"{t}: {by_task[t]}" for t in by_task) if texts else SELECTION,
           "selection_by_column": by_task}
    return out | ({"cell_flags": flags} if flags else {})


def write_table(rows: list[dict], scale: dict, out_csv: Path, out_meta: Path) -> None:
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    write_csv(out_csv, rows, fields)
    write_json(out_meta, scale)


def load_jsons(paths) -> list[dict]:
    return [read_json(p) for p in paths]


def load_runs(labelled: Sequence[str], table: str) -> list[dict]:
    """Records from ``VARIANT=path`` items, each under the variant it stands for in ``table``: a run
    trained once for several tables or variants (``harness.config.run_key``) says whose it is in
    ``run_of`` (``<table>/<variant>``)."""
    out = []
    for item in labelled:
        variant, sep, path = item.partition("=")
        if not sep:
            raise ValueError(f"expected VARIANT=path, got {item!r}")
        rec = read_json(path)
        if (rec.get("table"), rec.get("variant")) != (table, variant):
            rec |= {"run_of": f"{rec.get('table')}/{rec.get('variant')}", "table": table, "variant": variant}
        out.append(rec)
    return out
