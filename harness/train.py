"""The one training loop every suite and method goes through.

A short loop of our own rather than HF ``Trainer``: the papers need per-group learning rates
(head vs adapter, FRAME's orders in their own optimizer), extra losses from the registry,
best-epoch selection, bitwise-exact resume after ``kill -9`` and a NaN guard that names the job;
each is a few lines here and a callback maze in ``Trainer``.

Per epoch: train, validate, keep the best epoch's adapter and predictions, write a checkpoint
(adapter + head, optimizers, scheduler, RNG states, history) atomically. A job that finds its
checkpoint resumes after the last finished epoch and ends with the same numbers as an
uninterrupted run of the same seed (bitwise on CPU).
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from adapters import apply_method
from harness.atomic import atomic_path, write_json
from harness.config import JobSettings, backbone_path
from harness.prepare import load_prepared
from harness.suites import get_suite

# Optimizer groups that get an optimizer of their own (FRAME trains its orders separately, 002).
SEPARATE_OPTIMIZER_GROUPS = ("orders",)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf; the message names method, task, seed and step."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_optimizers(adapted, s: JobSettings) -> list[torch.optim.Optimizer]:
    lrs = {"head": s.lr_head, "adapter": s.lr, "orders": s.lr_orders or s.lr}
    main, separate = [], []
    for name, params in adapted.param_groups().items():
        group = {"params": params, "lr": lrs.get(name, s.lr), "weight_decay": s.weight_decay, "name": name}
        (separate if name in SEPARATE_OPTIMIZER_GROUPS else main).append(group)
    return [torch.optim.AdamW(groups) for groups in (main, *([g] for g in separate)) if groups]


def build_schedulers(optimizers, s: JobSettings, total_steps: int):
    from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

    make = {
        "linear": get_linear_schedule_with_warmup,
        "cosine": get_cosine_schedule_with_warmup,
        "constant": lambda opt, warmup, _total: get_constant_schedule_with_warmup(opt, warmup),
    }[s.scheduler]
    warmup = int(math.ceil(s.warmup_ratio * total_steps))
    return [make(opt, warmup, total_steps) for opt in optimizers]


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _signature(s: JobSettings, data_meta: dict, model_name: str) -> str:
    blob = json.dumps({"settings": asdict(s), "data": data_meta, "model": model_name}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


@dataclass
class Job:
    """A job ready to train: the adapted model, its data and its optimizers; the suite makes the
    batches, the loss and the scores."""

    settings: JobSettings
    suite: object
    task: object
    adapted: object
    meta: dict
    train_set: object
    eval_loader: DataLoader
    train_collate: object  # torch.Generator -> collate function (random augmentation drawn from it)
    optimizers: list
    schedulers: list
    trainable: list
    device: torch.device
    steps_per_epoch: int

    def epoch_loader(self, epoch: int) -> DataLoader:
        """Batches of ``epoch`` in an order that is a pure function of (seed, epoch): resumable."""
        order = torch.Generator().manual_seed(self.settings.seed * 1_000_003 + epoch)
        augment = torch.Generator().manual_seed(2**32 + self.settings.seed * 1_000_003 + epoch)
        return DataLoader(self.train_set, batch_size=self.settings.batch_size, shuffle=True, generator=order,
                          collate_fn=self.train_collate(augment))

    def evaluate(self) -> tuple[float, dict]:
        """(metric, arrays saved as predictions.npz) on the validation split, scored by the suite."""
        return self.suite.evaluate(self.adapted.model, self.eval_loader, self.task, self.device)

    def step(self, batch: dict, step: int, epoch: int) -> float:
        """One optimizer step (task loss + the method's extra losses); NaN/inf stops the job."""
        s = self.settings
        batch = {k: v.to(self.device) for k, v in batch.items()}
        loss = self.suite.loss(self.adapted.model, batch)
        for extra in self.adapted.extra_losses().values():
            loss = loss + extra
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"{s.variant} ({s.method}) on {s.task}, seed {s.seed}: loss became {loss.item()} "
                f"at step {step} (epoch {epoch + 1})"
            )
        loss.backward()
        if s.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.trainable, s.max_grad_norm)
        for opt, sch in zip(self.optimizers, self.schedulers):
            opt.step()
            sch.step()
            opt.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return loss.item()


def setup_job(s: JobSettings, cfg: dict, *, data_dir: Path, device: str = "auto", threads: int | None = None) -> Job:
    """Load the prepared data and the backbone through the table's suite, apply the method, build
    the optimizers. ``cfg`` is the validated table config (:func:`harness.config.load_table`)."""
    if threads:
        torch.set_num_threads(threads)
    dev = _device(device)
    suite = get_suite(cfg["suite"])
    task = suite.task(s.task)
    path = backbone_path(cfg)
    seed_everything(s.seed)
    data, meta = load_prepared(data_dir)
    model = suite.load_model(task, cfg, path)  # a new head draws from the global RNG seeded above
    adapted = apply_method(model, s.method, s.hparams, target_modules=list(s.target_modules),
                           head_modules=cfg["backbone"]["head_modules"], seed=s.seed)
    adapted.model.to(dev).train()

    eval_loader = DataLoader(data["validation"], batch_size=s.eval_batch_size, shuffle=False,
                             collate_fn=suite.collate(task, cfg, path, train=False))
    steps_per_epoch = math.ceil(len(data["train"]) / s.batch_size)
    optimizers = build_optimizers(adapted, s)
    schedulers = build_schedulers(optimizers, s, steps_per_epoch * s.epochs)
    trainable = [p for _, p in adapted.trainable_parameters(include_head=True)]
    return Job(s, suite, task, adapted, meta, data["train"], eval_loader,
               lambda generator: suite.collate(task, cfg, path, train=True, generator=generator),
               optimizers, schedulers, trainable, dev, steps_per_epoch)


def train(s: JobSettings, cfg: dict, *, out_dir: Path, checkpoint: Path, **job_kwargs) -> dict:
    """Run one job (``job_kwargs``: see :func:`setup_job`); write ``train.json`` and
    ``profile.json`` (and the best adapter) to ``out_dir``."""
    t_start = time.perf_counter()
    job = setup_job(s, cfg, **job_kwargs)
    adapted, task, meta, dev = job.adapted, job.task, job.meta, job.device
    optimizers, schedulers, steps_per_epoch = job.optimizers, job.schedulers, job.steps_per_epoch
    model_name = cfg["backbone"]["hub_id"]

    signature = _signature(s, meta, model_name)
    history: list[dict] = []
    best = {"epoch": None, "metric": -math.inf}
    start_epoch = 0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state.get("signature") == signature:
            _load_trainable(adapted, state["adapter"])
            for opt, st in zip(optimizers, state["optimizers"]):
                opt.load_state_dict(st)
            for sch, st in zip(schedulers, state["schedulers"]):
                sch.load_state_dict(st)
            _set_rng_state(state["rng"])
            history, best, start_epoch = state["history"], state["best"], state["epoch"] + 1
            print(f"[train] resuming {s.variant}/{s.task}/seed{s.seed} after epoch {state['epoch'] + 1}", file=sys.stderr)
        else:
            print(f"[train] ignoring checkpoint {checkpoint}: it belongs to other settings", file=sys.stderr)

    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    step_times: list[float] = []
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, s.epochs):
        bar = tqdm(job.epoch_loader(epoch), desc=f"{s.variant}/{s.task}/seed{s.seed} epoch {epoch + 1}/{s.epochs}",
                   leave=False, file=sys.stderr)
        for batch in bar:
            t0 = time.perf_counter()
            loss = job.step(batch, step + 1, epoch)
            step_times.append(time.perf_counter() - t0)
            step += 1
            bar.set_postfix(loss=f"{loss:.4f}")
        t_eval = time.perf_counter()
        metric, saved = job.evaluate()
        history.append({"epoch": epoch + 1, "metric": metric, "eval_seconds": time.perf_counter() - t_eval, "last_loss": loss})
        print(f"[train] {s.variant}/{s.task}/seed{s.seed} epoch {epoch + 1}: {task.metric} {metric:.2f}", file=sys.stderr)
        if metric > best["metric"]:
            best = {"epoch": epoch + 1, "metric": metric}
            adapted.save(out_dir / "adapter.safetensors", metadata={"method": s.method, "variant": s.variant, "epoch": str(epoch + 1)})
            with atomic_path(out_dir / "predictions.npz") as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, **saved)
        with atomic_path(checkpoint) as tmp:
            torch.save(
                {
                    "signature": signature,
                    "epoch": epoch,
                    "adapter": {n: p.detach().cpu().clone() for n, p in adapted.trainable_parameters(include_head=True)},
                    "optimizers": [o.state_dict() for o in optimizers],
                    "schedulers": [x.state_dict() for x in schedulers],
                    "rng": _rng_state(),
                    "history": history,
                    "best": best,
                },
                tmp,
            )

    wall = time.perf_counter() - t_start
    result = {
        "status": "ok",
        "suite": cfg["suite"],
        "table": s.table,
        "variant": s.variant,
        "method": s.method,
        "task": s.task,
        "seed": s.seed,
        "metric_name": task.metric,
        "best_epoch": best["epoch"],
        "best_metric": best["metric"],
        "history": history,
        "trainable_params": adapted.num_trainable(),
        "trainable_params_with_head": adapted.num_trainable(include_head=True),
        "adapter": "adapter.safetensors",
        "predictions": "predictions.npz",
        "settings": asdict(s),
        "model": model_name,
        "data": {k: meta[k] for k in ("n_train", "n_eval") if k in meta},
    }
    n_timed = len(step_times)
    profile = {
        "table": s.table,
        "variant": s.variant,
        "method": s.method,
        "task": s.task,
        "seed": s.seed,
        "device": dev.type if dev.type != "cuda" else torch.cuda.get_device_name(dev),
        "threads": torch.get_num_threads(),
        "wall_seconds": wall,
        "train_steps_timed": n_timed,
        "step_seconds_mean": float(np.mean(step_times)) if n_timed else None,
        "step_seconds_median": float(np.median(step_times)) if n_timed else None,
        "samples_per_second": (s.batch_size * n_timed / sum(step_times)) if n_timed else None,
        "eval_seconds_per_epoch": float(np.mean([h["eval_seconds"] for h in history])) if history else None,
        "peak_memory_mb": _peak_memory_mb(dev),
        "peak_memory_kind": "cuda_max_memory_allocated" if dev.type == "cuda" else "cpu_peak_rss",
        "trainable_params": adapted.num_trainable(),
        "batch_size": s.batch_size,
        "steps_per_epoch": steps_per_epoch,
        "epochs": s.epochs,
        "resumed_from_epoch": start_epoch,
    }
    write_json(out_dir / "profile.json", profile)
    write_json(out_dir / "train.json", result)
    return result


def _load_trainable(adapted, tensors: dict) -> None:
    own = dict(adapted.trainable_parameters(include_head=True))
    with torch.no_grad():
        for name, value in tensors.items():
            own[name].copy_(value)


def write_failure(out_dir: Path, s: JobSettings, reason: str) -> None:
    """A diverged job leaves no metrics, adapter or profile, only a status the table shows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("adapter.safetensors", "predictions.npz"):
        (out_dir / name).unlink(missing_ok=True)
    status = {"status": "failed", "reason": reason, "table": s.table, "variant": s.variant,
              "method": s.method, "task": s.task, "seed": s.seed, "settings": asdict(s)}
    write_json(out_dir / "profile.json", {**status, "wall_seconds": None})
    write_json(out_dir / "train.json", status)
