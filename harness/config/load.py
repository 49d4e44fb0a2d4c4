"""Table configs: load, merge the scale overrides, validate, and resolve one job's settings.

A table config (``config/<table>.yaml``) names a backbone, tasks, seeds and method variants with
the papers' hyperparameters. ``load_table(path, scale)`` returns it validated against
``config/schema.yaml`` and against the registry and task list, so that a typo fails before any
job runs, in one line naming the key and what is allowed.
"""
from __future__ import annotations

import copy
import functools
import math
from pathlib import Path

import yaml

from harness.config.checks import validate_semantics
from harness.config.common import ROOT, ConfigError
from harness.config.sweeps import expand_sweeps

__all__ = ["MINI_DIR", "SCALES", "SCHEMA", "load_table", "table_configs", "validate_schema"]

SCHEMA = ROOT / "config" / "schema.yaml"
SCALES = ("paper", "mini")
MINI_DIR = "mini"  # <config dir>/mini/<suite>.yaml: the mini scale's model, data and methods for a suite

_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster; the DAG parses every config


class _DuplicateKey(Exception):
    pass


class _UniqueKeyLoader(_FAST_LOADER):
    """YAML's spec forbids a key twice in one mapping; PyYAML keeps the last silently (a second
    ``seeds: [7]`` would turn five seeds into one). Merge keys (``<<: *anchor``) may still override."""

    def construct_mapping(self, node, deep=False):
        first_line: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise _DuplicateKey(f"key {key!r} appears twice in one mapping (lines {first_line[key]} and {line})")
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.load(Path(path).read_text(), Loader=_UniqueKeyLoader)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    except _DuplicateKey as e:
        raise ConfigError(f"{path}: {e}") from None
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


@functools.cache
def _schema_validator():
    import jsonschema

    return jsonschema.Draft202012Validator(_read_yaml(SCHEMA))


def _non_finite(value, key: str = ""):
    """(dotted key, value) of the first NaN or infinite number (``.nan``/``.inf`` in YAML), else None:
    JSON Schema's bounds do not trip on NaN (every comparison with it is false)."""
    if isinstance(value, float) and not math.isfinite(value):
        return key or "(top level)", value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _non_finite(v, f"{key}.{k}" if key else str(k))
        if found:
            return found
    return None


def validate_schema(cfg: dict, path: Path) -> None:
    validator = _schema_validator()
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        raise _schema_error(path, errors[0])
    bad = _non_finite(cfg)
    if bad:
        raise ConfigError(f"{path}: {bad[0]}: {bad[1]!r} is not a finite number")


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
    if cfg["table"] != path.stem:  # outputs are named by `table:`, the DAG finds configs by file name
        raise ConfigError(f"{path}: table: {cfg['table']!r} differs from the file name; name the file {cfg['table']}.yaml "
                          f"or set table: {path.stem}")
    cfg["methods"] = expand_sweeps(cfg["methods"], path)
    cfg["_scale"] = scale
    cfg["_path"] = str(path)
    if not Path(cfg["paper_values"]).is_absolute():  # data files of the repo, wherever the workdir is
        cfg["paper_values"] = str(ROOT / cfg["paper_values"])
    validate_semantics(cfg, path)
    return cfg


def table_configs(config_dir: str | Path = ROOT / "config") -> dict[str, Path]:
    """Every table config in ``config_dir`` by table name (the mini overrides live in ``mini/``)."""
    return {p.stem: p for p in sorted(Path(config_dir).glob("*.yaml")) if p.name != "schema.yaml"}
