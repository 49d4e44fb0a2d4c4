"""Tuning: a method's ``tune:`` block (or, in fair mode, the table's ``tuning.space``) turns into a
random-search stage before its seeded runs (:mod:`harness.tune`). What can be searched: the
learning rates and weight decay of a job, and any of the method's ``hparams`` (``hparams.r``)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from adapters.registry import MethodConfigError, build_config
from harness.config.common import ConfigError
from harness.config.settings import JobSettings, job_settings


# A method's ``tune:`` block (or, in fair mode, the table's ``tuning.space``) turns into a
# random-search stage before its seeded runs (:mod:`harness.tune`). What can be searched: the
# learning rates and weight decay of a job, and any of the method's ``hparams`` (``hparams.r``).
TUNABLE_SETTINGS = ("lr", "lr_head", "lr_orders", "weight_decay")
TUNE_SWITCH_VALUES = {"on": True, "true": True, "1": True, "yes": True, "off": False, "false": False, "0": False, "no": False}
TUNING_DEFAULTS = {"enabled": False, "trials": None, "seed": 0, "fraction": 0.1, "fair": False, "max_epochs": None,
                   "space": None}


def tune_switch(value) -> bool | None:
    """``--config tune=on|off`` (Snakemake) as a bool; None when not given."""
    if value is None or value == "":
        return None
    key = str(value).strip().lower()
    if key not in TUNE_SWITCH_VALUES:
        raise ConfigError(f"tune={value!r}: allowed values: on, off")
    return TUNE_SWITCH_VALUES[key]


def tuning_settings(cfg: dict, switch: bool | None = None, trials: int | None = None) -> dict:
    """The table's ``tuning:`` block with its defaults; ``switch`` (the command line's
    ``tune=on|off``) overrides ``enabled`` and ``trials`` the budget."""
    out = {**TUNING_DEFAULTS, **(cfg.get("tuning") or {})}
    if switch is not None:
        out["enabled"] = switch
    if trials is not None:
        out["trials"] = int(trials)
    return out


def tune_spec(cfg: dict, variant: str, switch: bool | None = None, trials: int | None = None) -> dict | None:
    """What the tuning stage does for one method variant, or None when the variant runs its
    configured values: tuning is off for the table, the method has no ``tune:`` block (outside
    fair mode), or its block says ``enabled: false``.

    Fair mode (``tuning.fair: true``) tunes every method with the table's budget: its own
    ``tune.space`` or else the table's ``tuning.space``. Otherwise only methods with a ``tune:``
    block are tuned, each with its own ``trials`` (default: the table's).
    """
    t = tuning_settings(cfg, switch, trials)
    if not t["enabled"]:
        return None
    own = cfg["methods"][variant].get("tune")
    if own is not None and own.get("enabled", True) is False:
        return None
    if own is None and not t["fair"]:
        return None
    space = (own or {}).get("space") or t["space"]
    budget = t["trials"] if (t["fair"] or trials is not None) else (own or {}).get("trials", t["trials"])
    return {"space": space, "trials": budget, "seed": t["seed"], "fraction": t["fraction"], "fair": t["fair"],
            "max_epochs": t["max_epochs"]}


def _space_key_value(s: JobSettings, key: str):
    if key.startswith("hparams."):
        return s.hparams.get(key.partition(".")[2])
    return getattr(s, key)


def resolve_space(cfg: dict, variant: str, task: str, space: dict) -> dict:
    """The search space of one (method, task) with every bound absolute: ``factor: [a, b]`` becomes
    ``[a * v, b * v]`` (log scale) around the configured value ``v`` of that key for that task."""
    s = job_settings(cfg, variant, task, cfg["seeds"][0])
    out = {}
    for key, dist in space.items():
        if "factor" in dist:
            base = _space_key_value(s, key)
            if not isinstance(base, (int, float)) or isinstance(base, bool) or base <= 0:
                raise ConfigError(f"{cfg['table']}: methods.{variant} ({task}): tune space {key}: 'factor' needs a "
                                  f"positive configured value of {key}, got {base!r}")
            lo, hi = dist["factor"]
            out[key] = {"low": float(lo * base), "high": float(hi * base), "log": True, "around": base}
        else:
            out[key] = dict(dist)
    return out


def validate_tuning(cfg: dict, path: str | Path, switch: bool | None = None) -> None:
    """Checks of the tuning blocks the schema cannot express: keys a job has, ``same_as`` targets,
    bounds, a budget for every tuned method, and that every value a space can draw builds the
    method's config. Run by ``python -m harness validate`` and by the Snakefile."""
    for variant, m in cfg["methods"].items():
        spec = tune_spec(cfg, variant, switch=True if switch is None else switch)
        if spec is None:
            continue
        where = f"{path}: methods.{variant}.tune"
        if not spec["space"]:
            raise ConfigError(f"{where}: no search space (set methods.{variant}.tune.space, or tuning.space for fair mode)")
        if not spec["trials"]:
            raise ConfigError(f"{where}: no budget (set tuning.trials or methods.{variant}.tune.trials)")
        for key, dist in spec["space"].items():
            if not key.startswith("hparams.") and key not in TUNABLE_SETTINGS:
                raise ConfigError(f"{where}.space: {key!r} cannot be tuned; allowed: {', '.join(TUNABLE_SETTINGS)}, hparams.<name>")
            if "same_as" in dist and dist["same_as"] not in spec["space"]:
                raise ConfigError(f"{where}.space.{key}: same_as {dist['same_as']!r} is not a key of the space")
            if "low" in dist and (dist["low"] > dist["high"] or (dist.get("log") and dist["low"] <= 0)):
                raise ConfigError(f"{where}.space.{key}: needs low <= high (and low > 0 on a log scale), got {dist}")
            if "factor" in dist and not 0 < dist["factor"][0] <= dist["factor"][1]:
                raise ConfigError(f"{where}.space.{key}: factor needs 0 < a <= b, got {dist['factor']}")
        for task in cfg["tasks"]:
            resolved = resolve_space(cfg, variant, task, spec["space"])
            s = job_settings(cfg, variant, task, cfg["seeds"][0])
            for corner in _space_corners(resolved):
                try:
                    build_config(m["method"], apply_tuned(s, corner).hparams)
                except MethodConfigError as e:
                    raise ConfigError(f"{where} ({task}): {corner}: {e}") from None


def _space_corners(resolved: dict) -> list[dict]:
    """The extreme values of a resolved space (both bounds, every choice), for validation."""
    low, high, choices = {}, {}, []
    for key, dist in resolved.items():
        if "choices" in dist:
            choices.append((key, dist["choices"]))
            low[key] = high[key] = dist["choices"][0]
        elif "low" in dist:
            cast = int if dist.get("int") else float
            low[key], high[key] = cast(dist["low"]), cast(dist["high"])
    corners = [low, high] + [{**low, key: c} for key, values in choices for c in values]
    for corner in corners:
        for key, dist in resolved.items():
            if "same_as" in dist:
                corner[key] = corner[dist["same_as"]]
    return corners


def apply_tuned(s: JobSettings, params: dict) -> JobSettings:
    """``s`` with tuned values: ``lr``/``lr_head``/``lr_orders``/``weight_decay`` replace the
    settings, ``hparams.<name>`` the method's hyperparameter (the other hparams stay)."""
    settings, hparams = {}, dict(s.hparams)
    for key, value in params.items():
        if key.startswith("hparams."):
            hparams[key.partition(".")[2]] = value
        elif key in TUNABLE_SETTINGS:
            settings[key] = value
        else:
            raise ConfigError(f"tuned parameter {key!r} is not tunable; allowed: {', '.join(TUNABLE_SETTINGS)}, hparams.<name>")
    return dataclasses.replace(s, hparams=hparams, **settings)


def tuned_job_settings(cfg: dict, variant: str, task: str, seed: int, tuned: dict | None) -> JobSettings:
    """:func:`job_settings` with the best values of a tuning record (``tuning/.../<task>.json``,
    :mod:`harness.tune`) applied; the record must belong to this table, scale, method and task."""
    s = job_settings(cfg, variant, task, seed)
    if tuned is None:
        return s
    want = {"table": cfg["table"], "scale": cfg.get("_scale"), "variant": variant, "task": task}
    got = {k: tuned.get(k) for k in want}
    if got != want:
        raise ConfigError(f"tuning record is for {got}, not for this job {want}")
    return apply_tuned(s, tuned["best"]["params"])
