"""Sweeps: a method with ``sweep:`` becomes one variant per value; the axes become table columns."""
from __future__ import annotations

import copy
from pathlib import Path

from harness.config.common import ConfigError

__all__ = ["RESERVED_AXES", "expand_sweeps", "sweep_value_name", "table_axes"]


def _set_key(method: dict, dotted: str, value) -> None:
    """Set ``hparams.r`` / ``defaults.lr`` / ``lr`` (a setting: into defaults) in a method block."""
    head, _, key = dotted.partition(".")
    if not key:
        head, key = "defaults", head
    method.setdefault(head, {})[key] = value
    for per_task in (method.get("tasks") or {}).values():  # a swept value wins over per-task values
        target = per_task.get(head) if head == "hparams" else per_task
        if isinstance(target, dict):
            target.pop(key, None)


def sweep_value_name(value) -> str:
    """How a swept value appears in a variant name: ``8``, ``0.05``, ``true``."""
    return str(value).lower() if isinstance(value, bool) else format(value, "g") if isinstance(value, float) else str(value)


# Column names of the tables (harness/tables.py: its per-run and per-cell frames and the CSV's
# fixed columns); a sweep axis becomes a column too, so it may not be one of them (checked here when
# a config is read, and again by harness.tables.build_table).
RESERVED_AXES = frozenset({"variant", "task", "seed", "ok", "failed", "metric", "last_metric", "trainable_params",
                           "records", "k", "n", "n_failed", "missing", "centre", "spread", "n_last", "last", "method",
                           "label", "registry_method", "avg", "scale", "backbone", "_row"})


def expand_sweeps(methods: dict, path: Path) -> dict:
    """A method with ``sweep: {axis, values, set}`` becomes one variant per value,
    ``<variant>.<axis><value>`` (same label; tables and figures add the axis value), each with ``axes: {axis: value}``
    and ``sweep_of: <variant>``; ``set`` lists the keys the value goes to (default ``hparams.<axis>``;
    ``lr`` or ``defaults.lr`` for a setting). A sweep is configuration: jobs, rows and plot points
    follow from it; no variant is written by hand."""
    out = {}
    for variant, m in methods.items():
        sweep = m.get("sweep")
        if not sweep:
            out[variant] = m
            continue
        axis, keys = sweep["axis"], sweep.get("set") or [f"hparams.{sweep['axis']}"]
        if axis in RESERVED_AXES:
            raise ConfigError(f"{path}: methods.{variant}.sweep.axis: {axis!r} is a table column name; name the axis "
                              f"otherwise (e.g. top_k, n_coefficients; reserved: {', '.join(sorted(RESERVED_AXES))})")
        for value in sweep["values"]:
            name = f"{variant}.{axis}{sweep_value_name(value)}"
            if name in methods or name in out:
                raise ConfigError(f"{path}: methods.{variant}.sweep: variant {name!r} exists twice; rename one")
            one = copy.deepcopy({k: v for k, v in m.items() if k != "sweep"})
            for key in keys:
                _set_key(one, key, value)
            one |= {"axes": {axis: value}, "sweep_of": variant}
            out[name] = one
    return out


def table_axes(cfg: dict) -> list[str]:
    """The sweep axes of a table, in the order its methods name them."""
    return list(dict.fromkeys(a for m in cfg["methods"].values() for a in m.get("axes", {})))
