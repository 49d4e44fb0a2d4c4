"""Preflight (issue 17): before any job of a paper-scale run, every table a job of the run reads
has its model and data sources reachable, so a missing model or dataset fails in seconds, before
anything is scheduled, instead of after a prep job's start-up inside a log file.

Checked per table (the sources of :mod:`harness.core.sources`):
  model  ``backbone.local_path`` (a folder with a loadable config.json, weights and what the suite
         reads besides: tokenizer, or image processor and size) or ``backbone.hub_id`` (in the
         local Hugging Face cache, or the hub answers); a converted backbone is its own job;
  data   per task whose prepared data is not there yet: ``data.data_dir`` loaded by the suite's own
         loader (its split, column and label checks), or the hub's copy in the local cache when
         the hub is offline (an online hub counts as reachable; prep downloads).
One line per problem: ``<table>[/<task>]: <dotted key>: <what is wrong and what to do>``.

It runs as the Snakefile's ``onstart`` at the paper scale (after the DAG is built: ``snakemake -n``
stays offline and fast; under SLURM in the submitting process) and as ``python -m harness
preflight [targets]``. The mini scale never touches the hub: nothing to check.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from harness.config import ConfigError, backbone_path, load_table, table_configs
from harness.core.errors import DataError
from harness.core.sources import hub_offline, hub_reachable, model_source
from harness.models import WEIGHT_SUFFIXES, ModelError, resolve_pretrained
from harness.suites import get_suite

__all__ = ["check_data", "check_model", "preflight", "tables_of_targets"]

PROBLEMS = (ConfigError, DataError, ModelError, OSError)


def _line(exc: Exception) -> str:
    """Our errors say what to do in their first line; others are quoted with their type."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return text if isinstance(exc, (ConfigError, DataError, ModelError)) else f"{type(exc).__name__}: {text}"
# what names a table in a target: tables/<t>.csv, tables/efficiency_<t>.csv, figures/<t>[_tradeoff].png,
# results/<scale>/<t>/..., estimates/<t>.txt, or the bare name
_TARGET = re.compile(r"^(?:tables/(?:efficiency_)?|figures/|estimates/|results/[a-z]+/)?([A-Za-z0-9_]+?)"
                     r"(?:_tradeoff)?(?:\.csv|\.meta\.json|\.png|\.pdf|\.txt|\.json|/.*)?$")


def check_model(cfg: dict) -> list[str]:
    """Problems with the table's backbone source (empty: loadable)."""
    bb = cfg["backbone"]
    if bb.get("convert"):
        return []  # the backbone rule converts it from a package this run installs or names
    key = "backbone.local_path" if bb.get("local_path") else "backbone.hub_id"
    try:
        path = backbone_path(cfg)
        folder = Path(resolve_pretrained(bb["hub_id"], local_path=path if bb.get("local_path") else None))
        if folder.is_dir():
            if not (folder / "config.json").is_file():
                raise ModelError(f"{folder} has no config.json: point it at a folder written by save_pretrained "
                                 f"(or `hf download {bb['hub_id']} --local-dir <folder>`)")
            if not any(p.suffix in WEIGHT_SUFFIXES for p in folder.rglob("*") if p.is_file()):
                raise ModelError(f"{folder} has no weights (*.safetensors, *.bin): copy the whole model folder "
                                 f"(`hf download {bb['hub_id']} --local-dir <folder>`)")
        get_suite(cfg["suite"]).check_backbone(cfg, path)
    except PROBLEMS as e:
        return [f"{key}: {_line(e)}"]
    return []


def check_data(cfg: dict, task: str) -> list[str]:
    """Problems with one task's raw data (empty: the suite's loader read it and its checks passed)."""
    suite = get_suite(cfg["suite"])
    spec = suite.task(task)
    data_dir = cfg["data"].get("data_dir")
    if spec.build is not None or (not data_dir and not hub_offline() and hub_reachable()):
        return []  # a package's files (mini tasks), or the hub answers: prep downloads
    try:
        suite.load_raw(spec, cfg, cfg["seeds"][0])
    except PROBLEMS as e:
        return [f"data.data_dir: {_line(e)}" if data_dir else
                f"data.data_dir (unset, the hub's copy is not cached): {_line(e)}"]
    return []


def preflight(tables: dict[str, dict], data_tasks: dict[str, set[str]]) -> list[str]:
    """Every problem of ``tables`` (name -> validated config), one line each; ``data_tasks`` names, per
    table, the tasks whose raw data a job of this run reads (prep jobs). A backbone shared by
    several tables is checked once."""
    lines, models = [], {}
    for name in sorted(tables):
        cfg = tables[name]
        if cfg.get("_scale") == "mini":
            continue
        source = json.dumps([cfg["suite"], model_source(cfg), cfg["data"].get("image_size")], sort_keys=True)
        if source not in models:
            models[source] = check_model(cfg)
        lines += [f"{name}: {p}" for p in models[source]]
        for task in sorted(data_tasks.get(name, ())):
            lines += [f"{name}/{task}: {p}" for p in check_data(cfg, task)]
    return lines


def tables_of_targets(targets: list[str], names) -> list[str]:
    """The tables the targets name (none: every table); an unknown one raises ConfigError."""
    if not targets:
        return sorted(names)
    out = []
    for target in targets:
        m = _TARGET.match(target)
        if not m or m[1] not in names:
            raise ConfigError(f"preflight: {target!r} names no table; give tables/<table>.csv or a table name "
                              f"({', '.join(sorted(names))})")
        out.append(m[1])
    return sorted(set(out))


def main_check(targets: list[str], config_dir: str, scale: str = "paper") -> list[str]:
    """What ``python -m harness preflight`` checks: the named tables' models, and the data of every
    task whose prepared folder (``data/<scale>/<prep id>/<task>`` here) is not there yet."""
    paths = table_configs(config_dir) if config_dir else table_configs()
    tables = {n: load_table(paths[n], scale) for n in tables_of_targets(targets, paths)}
    need = {n: {t for t in cfg["tasks"]
                if not (Path("data") / scale / get_suite(cfg["suite"]).prep_id(cfg, t) / t / "meta.json").is_file()}
            for n, cfg in tables.items()}
    return preflight(tables, need)
