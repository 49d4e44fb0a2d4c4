"""Checks the schema cannot express: tasks, methods and hyperparameters exist and are valid, the
converter exists, and every target module names an ``nn.Linear`` of the backbone."""
from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import version
from pathlib import Path

from adapters.registry import MethodConfigError, build_config
from harness.backbones import CONVERTERS
from harness.config.common import ROOT, ConfigError
from harness.config.settings import job_settings, resolve_local_path
from harness.core.atomic import write_text
from harness.suites import DataError, get_suite, get_task

__all__ = ["check_target_modules", "validate_semantics"]


def validate_semantics(cfg: dict, path: Path) -> None:
    """Checks the schema cannot express: tasks exist, methods exist, hyperparameters are valid."""
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


# transformers' name table per Auto class: the model class by name, without the Auto class's own
# lookup (which imports every model module: seconds)
MAPPING_NAMES = {"AutoModelForSequenceClassification": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
                 "AutoModelForImageClassification": "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES",
                 "AutoModelForCausalLM": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"}
_BUILT: dict[tuple[str, str, str], tuple[str, ...] | None] = {}  # linear names per architecture, this process


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
    src = _architecture_source(bb, get_suite(cfg["suite"]).model_class)
    if src is None:
        return
    names = _cached_linear_names(*src)
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


def _architecture_source(bb: dict, auto: str) -> tuple[str, str, str] | None:
    """(kind, file, auto class) describing the backbone's architecture, or None when none is on this machine."""
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


def _linear_names(kind: str, where: str, auto_class: str) -> tuple[str, ...] | None:
    """Dotted names of the nn.Linear modules of the architecture, built on the meta device."""
    import torch
    import transformers

    try:
        from transformers.models.auto import modeling_auto

        spec = json.loads(Path(where).read_text())
        model_type, kwargs = (spec["model_type"], spec["config"]) if kind == "architecture" else (spec.pop("model_type"), spec)
        config = transformers.AutoConfig.for_model(model_type, **kwargs)
        mapping = MAPPING_NAMES.get(auto_class, "MODEL_MAPPING_NAMES")
        name = getattr(modeling_auto, mapping).get(model_type) or modeling_auto.MODEL_MAPPING_NAMES[model_type]
        with torch.device("meta"):
            model = getattr(transformers, name if isinstance(name, str) else name[0])(config)
    except Exception:  # noqa: BLE001 - an architecture this transformers cannot build: not checked
        return None
    return tuple(n for n, mod in model.named_modules() if isinstance(mod, torch.nn.Linear))


def _cached_linear_names(kind: str, where: str, auto_class: str) -> tuple[str, ...] | None:
    """_linear_names, kept in this process and on disk (keyed by the architecture's text and
    the transformers version): a process that only reads configs imports no model code."""
    if (kind, where, auto_class) in _BUILT:
        return _BUILT[kind, where, auto_class]
    try:
        text = Path(where).read_text()
    except OSError:
        return None
    key = hashlib.sha256(f"{kind}|{auto_class}|{version('transformers')}|{text}".encode()).hexdigest()[:24]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fourier-peft-bench" / "linear-modules" / f"{key}.json"
    try:
        names = tuple(json.loads(cache.read_text()))
    except (OSError, ValueError):
        names = _linear_names(kind, where, auto_class)
        if names is not None:
            try:
                write_text(cache, json.dumps(list(names)))
            except OSError:
                pass
    _BUILT[kind, where, auto_class] = names
    return names
