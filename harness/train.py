"""The one training loop every suite and method goes through.

A short loop of our own rather than HF ``Trainer``: the papers need per-group learning rates
(head vs adapter, FRAME's orders in their own optimizer), extra losses from the registry,
best-epoch selection, bitwise-exact resume after ``kill -9`` and a NaN guard that names the job;
each is a few lines here and a callback maze in ``Trainer``.

Per epoch: train, validate, keep the best epoch's adapter and predictions, write a checkpoint
(adapter + head, optimizers, scheduler, RNG states, history, step timings, the best epoch's
files) atomically. A job that finds its checkpoint resumes after the last finished epoch and ends
with the same numbers as an uninterrupted run of the same seed (bitwise on CPU; on a GPU see
docs/gpu.md). When the job is done it scores its best epoch (``eval.json``, in the same process)
and deletes its checkpoint.

On a GPU (docs/gpu.md): bf16 autocast for the backbone (``train.precision``; the adapters' spectra
stay float32), TF32 matmuls, deterministic cuBLAS, no host synchronisation per step (the NaN
guard and the loss shown in the progress bar are read every ``train.log_every`` steps), pinned
batches copied without blocking, and one GPU per job when several jobs share a machine
(:func:`harness.devices.claim_gpus`).
"""
from __future__ import annotations

import os

# Deterministic cuBLAS (torch.use_deterministic_algorithms on CUDA) needs this before CUDA starts.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import contextlib  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, get_worker_info  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from adapters import apply_method  # noqa: E402
from adapters.registry import MethodConfigError  # noqa: E402
from harness.core.atomic import atomic_path, write_json  # noqa: E402
from harness.config import ConfigError, JobSettings, backbone_path  # noqa: E402
from harness.core.errors import DataError  # noqa: E402
from harness.evaluate import evaluate_job  # noqa: E402
from harness.models import ModelError, import_model_code, model_record  # noqa: E402
from harness.tracking import track_job  # noqa: E402
from harness.prepare import load_prepared  # noqa: E402
from harness.suites import get_suite  # noqa: E402
from harness.core.errors import first_line  # noqa: E402
from harness.core.memory import PeakMemory  # noqa: E402
from harness.devices import configure_backend, job_device, resolve_precision  # noqa: E402
from harness.health import LossWindows, adapter_effect, blowup, loss_window  # noqa: E402
from harness.run_flags import BLOWUP_RULE  # noqa: E402
from harness.selection import best_on_test, finish_test, score_epoch  # noqa: E402
from harness.suites.base import Selection  # noqa: E402

# Optimizer groups that get an optimizer of their own (FRAME trains its orders separately, 002).
SEPARATE_OPTIMIZER_GROUPS = ("orders",)
# The files of a job's best epoch: outputs of the train rule, kept in the checkpoint too.
BEST_FILES = ("adapter.safetensors", "predictions.npz")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf, or blew up and stayed finite; the message names method, task,
    seed and step (or the loss windows)."""


class JobFailed(RuntimeError):
    """The environment failed a job (out of memory, a full disk, a crash): not a result."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


# ------------------------------------------------------------------------------------ optimizers
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


def _signature(s: JobSettings, data_meta: dict, model: dict, **run) -> str:
    """What a checkpoint must match to be resumed: settings (but not ``log_every``, which changes
    no number), data, the model actually loaded (:func:`harness.models.model_record`: folder,
    revision, weights fingerprint), and how it runs (device type, resolved precision)."""
    settings = {k: v for k, v in asdict(s).items() if k != "log_every"}
    blob = json.dumps({"settings": settings, "data": data_meta, "model": model, **run}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _process_age() -> float | None:
    """Seconds since this process started (Linux), or None."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------------------------ the loop
class LossGuard:
    """The NaN/inf guard without a host synchronisation per step: each step's loss is tested on
    the device, and the first non-finite step and its loss stay there; :meth:`first_bad` reads
    them (one sync) every ``log_every`` steps and at the end of an epoch."""

    def __init__(self, device: torch.device):
        self.bad_step = torch.full((), -1, dtype=torch.long, device=device)
        self.bad_loss = torch.zeros((), dtype=torch.float32, device=device)
        self.window = torch.zeros((), dtype=torch.float32, device=device)
        self.window_steps = 0
        self.last: torch.Tensor | None = None

    def record(self, loss: torch.Tensor, step: int) -> None:
        value = loss.detach().float()
        first = (self.bad_step < 0) & ~torch.isfinite(value)
        self.bad_step.masked_fill_(first, step)
        self.bad_loss = torch.where(first, value, self.bad_loss)
        self.window = self.window + value
        self.window_steps += 1
        self.last = value

    def first_bad(self) -> tuple[int, float] | None:
        """(step, loss) of the first non-finite loss, or None (a host sync)."""
        step = int(self.bad_step.item())
        return (step, float(self.bad_loss.item())) if step >= 0 else None

    def window_mean(self) -> float:
        """Mean loss since the last call (a host sync)."""
        mean = float(self.window.item()) / max(self.window_steps, 1)
        self.window.zero_()
        self.window_steps = 0
        return mean


class StepTimer:
    """Per-step seconds without a sync per step: CUDA events read once per timing window on a GPU
    (the GPU's time between a step's start and end), ``perf_counter`` on the CPU."""

    def __init__(self, device: torch.device, seconds: list[float] | None = None):
        self.cuda = device.type == "cuda"
        self.seconds: list[float] = list(seconds or [])
        self._pending: list = []
        self._start = None

    def start(self) -> None:
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._start = time.perf_counter()

    def stop(self) -> None:
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._pending.append((self._start, end))
        else:
            self.seconds.append(time.perf_counter() - self._start)

    def flush(self) -> list[float]:
        """The timings so far (waits for the GPU's pending steps: one sync)."""
        if self._pending:
            self._pending[-1][1].synchronize()
            self.seconds += [a.elapsed_time(b) / 1000 for a, b in self._pending]
            self._pending = []
        return self.seconds


class _WorkerSeededCollate:
    """A DataLoader worker re-seeds its copy of the augmentation generator by its id, so that two
    workers do not draw the same augmentations; without workers nothing changes (the CPU numbers)."""

    def __init__(self, collate, generator: torch.Generator, seed: int):
        self.collate, self.generator, self.seed, self.seeded = collate, generator, seed, False

    def __call__(self, batch):
        info = get_worker_info()
        if info is not None and not self.seeded:
            self.generator.manual_seed(self.seed + 7_919 * (info.id + 1))
            self.seeded = True
        return self.collate(batch)


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
    precision: str = "fp32"  # resolved: "bf16" (autocast) or "fp32"
    selection: Selection = field(default_factory=Selection)  # the suite's protocol (harness.selection)
    test_loader: DataLoader | None = None  # the reported split when it is not 'validation'
    loss_loader: DataLoader | None = None  # 'validation' as training batches, when the loss selects
    memory: PeakMemory | None = None  # started before the model and data load
    guard: LossGuard = field(init=False)
    windows: LossWindows = field(init=False)  # the first and last training losses (harness.health)

    def __post_init__(self):
        self.guard = LossGuard(self.device)
        self.windows = LossWindows(self.device, loss_window(self.steps_per_epoch * self.settings.epochs))

    def autocast(self):
        """bf16 autocast for the backbone's matmuls; FFTs of float32 spectra stay float32."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def epoch_loader(self, epoch: int) -> DataLoader:
        """Batches of ``epoch`` in an order that is a pure function of (seed, epoch): resumable."""
        s = self.settings
        order = torch.Generator().manual_seed(s.seed * 1_000_003 + epoch)
        augment_seed = 2**32 + s.seed * 1_000_003 + epoch
        augment = torch.Generator().manual_seed(augment_seed)
        collate = self.train_collate(augment)
        if s.num_workers:
            collate = _WorkerSeededCollate(collate, augment, augment_seed)
        return DataLoader(self.train_set, batch_size=s.batch_size, shuffle=True, generator=order, collate_fn=collate,
                          num_workers=s.num_workers, pin_memory=self.device.type == "cuda")

    def evaluate(self, loader: DataLoader | None = None) -> tuple[float, dict]:
        """(metric, arrays saved as predictions.npz) on ``loader`` (default: the validation split, or
        the test split when the loss selects and 'validation' holds training text), scored by the suite."""
        with self.autocast():
            return self.suite.evaluate(self.adapted.model, loader or self.eval_loader or self.test_loader, self.task,
                                       self.device)

    def validation_loss(self) -> float:
        """Mean task loss over the 'validation' batches (no augmentation draws change the training
        run: they come from a fixed generator), in eval mode, as HF ``Trainer``'s ``eval_loss``."""
        model = self.adapted.model
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad(), self.autocast():
            for batch in self.loss_loader:
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                n = len(next(iter(batch.values())))
                total += float(self.suite.loss(model, batch).float()) * n
                count += n
        model.train()
        return total / max(count, 1)

    def step(self, batch: dict, step: int, epoch: int | None = None) -> torch.Tensor:
        """One optimizer step (task loss + the method's extra losses); returns the loss, still on
        the device: nothing here waits for the GPU. A NaN/inf loss is noted on the device
        (:class:`LossGuard`) and stops the job at the next :meth:`check` (naming this step)."""
        s = self.settings
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        with self.autocast():
            loss = self.suite.loss(self.adapted.model, batch)
            for extra in self.adapted.extra_losses().values():
                loss = loss + extra
        self.guard.record(loss, step)
        self.windows.record(loss.detach().float(), step)
        loss.backward()
        if s.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.trainable, s.max_grad_norm)
        for opt, sch in zip(self.optimizers, self.schedulers):
            opt.step()
            sch.step()
            opt.zero_grad(set_to_none=True)
        return loss.detach()

    def check(self) -> None:
        """Raise :class:`TrainingDiverged` naming the first step whose loss was NaN/inf (a host sync)."""
        bad = self.guard.first_bad()
        if bad is not None:
            s, (step, value) = self.settings, bad
            raise TrainingDiverged(
                f"{s.variant} ({s.method}) on {s.task}, seed {s.seed}: loss became {value} "
                f"at step {step} (epoch {(step - 1) // self.steps_per_epoch + 1})"
            )


def setup_job(s: JobSettings, cfg: dict, *, data_dir: Path, device: str = "auto", threads: int | None = None) -> Job:
    """Load the prepared data and the backbone through the table's suite, apply the method, build
    the optimizers. ``cfg`` is the validated table config (:func:`harness.config.load_table`)."""
    if threads:
        torch.set_num_threads(threads)
    dev = job_device(device)
    configure_backend(s, dev)
    suite = get_suite(cfg["suite"])
    import_model_code(suite.model_class, suite.model_types)  # already done in a job forked by harness.jobserver
    memory = PeakMemory(dev)
    task = suite.task(s.task)
    path = backbone_path(cfg)
    seed_everything(s.seed)
    data, meta = load_prepared(data_dir)
    model = suite.load_model(task, cfg, path)  # a new head draws from the global RNG seeded above
    adapted = apply_method(model, s.method, s.hparams, target_modules=list(s.target_modules),
                           head_modules=cfg["backbone"]["head_modules"], seed=s.seed)
    adapted.model.to(dev).train()

    selection = suite.selection(task, cfg)
    if selection.test != "none" and "test" not in data:
        raise DataError(f"prepared data {data_dir} has no 'test' split, which {cfg['suite']}/{s.task} reports: "
                        "delete the folder and prepare it again")

    def loader(split: str, train: bool = False) -> DataLoader:
        collate = suite.collate(task, cfg, path, train=train, generator=torch.Generator().manual_seed(0) if train else None)
        return DataLoader(data[split], batch_size=s.eval_batch_size, shuffle=False, collate_fn=collate,
                          num_workers=s.num_workers, pin_memory=dev.type == "cuda")

    eval_loader = loader("validation") if selection.select_on == "metric" else None
    steps_per_epoch = math.ceil(len(data["train"]) / s.batch_size)
    optimizers = build_optimizers(adapted, s)
    schedulers = build_schedulers(optimizers, s, steps_per_epoch * s.epochs)
    trainable = [p for _, p in adapted.trainable_parameters(include_head=True)]
    return Job(s, suite, task, adapted, meta, data["train"], eval_loader,
               lambda generator: suite.collate(task, cfg, path, train=True, generator=generator),
               optimizers, schedulers, trainable, dev, steps_per_epoch, resolve_precision(s, dev), selection,
               loader("test") if selection.test != "none" else None,
               loader("validation", train=True) if selection.select_on == "loss" else None, memory)


def load_checkpoint(path: Path) -> dict | None:
    """The checkpoint at ``path``, or None if there is none. One that cannot be read (a truncated
    file, a full disk) is set aside as ``<name>.corrupt`` with a one-line message, and the job
    trains from scratch: a rerun must not fail on it again."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(state, dict):
            raise ValueError(f"a {type(state).__name__}, not a checkpoint")
        return state
    except Exception as e:  # noqa: BLE001 - whatever torch.load raises for a damaged file
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        print(f"[train] checkpoint {path} is unreadable ({first_line(e)}); set aside as {aside.name}, "
              "training from scratch", file=sys.stderr)
        return None


def train(s: JobSettings, cfg: dict, *, out_dir: Path, checkpoint: Path, **job_kwargs) -> dict:
    """Run one job (``job_kwargs``: see :func:`setup_job`); write ``train.json``, ``profile.json``,
    the best epoch's ``adapter.safetensors`` and ``predictions.npz``, and ``eval.json`` to
    ``out_dir``; then delete the checkpoint.

    A loss that became NaN/inf or blew up (:data:`harness.run_flags.BLOWUP_RULE`) raises
    :class:`TrainingDiverged`: a result of the recipe, which the caller records as ``diverged``
    (:func:`write_failure`). Any other error (CUDA out of memory, a full disk, a crash) is the
    environment's, not a result: it raises :class:`JobFailed` with one line, nothing is recorded,
    the checkpoint is kept, the job exits non-zero and the next run (or Snakemake's ``retries``)
    resumes it. Bad input (config, data, model path) raises as before: every job would fail alike.
    """
    try:
        return _train(s, cfg, out_dir=out_dir, checkpoint=checkpoint, **job_kwargs)
    except TrainingDiverged:
        checkpoint.unlink(missing_ok=True)  # the job is over: its outputs will say diverged
        raise
    except (ConfigError, DataError, MethodConfigError, ModelError):
        raise
    except Exception as e:  # noqa: BLE001 - whatever the environment raised: not a result
        traceback.print_exc(file=sys.stderr)
        kept = f"its checkpoint {checkpoint} is kept" if checkpoint.exists() else "it had no checkpoint yet"
        raise JobFailed(f"{s.variant}/{s.task}/seed{s.seed} failed: {first_line(e)}; nothing is recorded and "
                        f"{kept}: the next snakemake run retries it") from e


def _train(s: JobSettings, cfg: dict, *, out_dir: Path, checkpoint: Path, **job_kwargs) -> dict:
    t_start = time.perf_counter()
    age = _process_age()
    job = setup_job(s, cfg, **job_kwargs)
    adapted, task, meta, dev = job.adapted, job.task, job.meta, job.device
    optimizers, schedulers, steps_per_epoch = job.optimizers, job.schedulers, job.steps_per_epoch
    model = model_record(backbone_path(cfg), cfg["backbone"]["hub_id"])  # what was loaded, not what was named

    signature = _signature(s, meta, model, device=dev.type, precision=job.precision)
    history: list[dict] = []
    best = {"epoch": None, "metric": -math.inf, "score": -math.inf}
    best_files: dict[str, bytes] = {}
    start_epoch, earlier_wall, earlier_steps = 0, 0.0, []
    out_dir.mkdir(parents=True, exist_ok=True)
    state = load_checkpoint(checkpoint)
    if state is not None and state.get("signature") == signature:
        _load_trainable(adapted, state["adapter"])
        for opt, st in zip(optimizers, state["optimizers"]):
            opt.load_state_dict(st)
        for sch, st in zip(schedulers, state["schedulers"]):
            sch.load_state_dict(st)
        _set_rng_state(state["rng"])
        job.windows.load(state.get("loss_windows"))
        history, best, start_epoch = state["history"], state["best"], state["epoch"] + 1
        best_files = state.get("best_files", {})
        earlier_wall, earlier_steps = state.get("wall_seconds", 0.0), list(state.get("step_seconds", []))
        for name, blob in best_files.items():  # a rerun of an incomplete job deleted them
            if not (out_dir / name).exists():
                with atomic_path(out_dir / name) as tmp:
                    tmp.write_bytes(blob)
        print(f"[train] resuming {s.variant}/{s.task}/seed{s.seed} after epoch {state['epoch'] + 1}", file=sys.stderr)
    elif state is not None:
        print(f"[train] ignoring checkpoint {checkpoint}: it belongs to other settings", file=sys.stderr)
    del state

    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    timer = StepTimer(dev, earlier_steps)
    final_saved = None  # resumed after the last epoch: harness.health evaluates again
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, s.epochs):
        bar = tqdm(job.epoch_loader(epoch), desc=f"{s.variant}/{s.task}/seed{s.seed} epoch {epoch + 1}/{s.epochs}",
                   leave=False, file=sys.stderr)
        for batch in bar:
            timer.start()
            job.step(batch, step + 1, epoch)
            timer.stop()
            step += 1
            if step % s.log_every == 0:  # the only host syncs of the loop
                job.check()
                timer.flush()
                bar.set_postfix(loss=f"{job.guard.window_mean():.4f}")
        job.check()
        timer.flush()
        last_loss = float(job.guard.last.item())
        t_eval = time.perf_counter()
        scores, score, reported = score_epoch(job)  # what selects, and the reported split if scored now
        history.append({"epoch": epoch + 1, **scores, "eval_seconds": time.perf_counter() - t_eval, "last_loss": last_loss,
                        **({"extra_metrics": job.suite.extra_metrics(job.task, reported[1])} if reported else {})})
        print(f"[train] {s.variant}/{s.task}/seed{s.seed} epoch {epoch + 1}: "
              + ", ".join(f"{job.task.metric if k == 'metric' else k} {v:.4g}" for k, v in scores.items()), file=sys.stderr)
        if score > best.get("score", best["metric"]):
            best = {"epoch": epoch + 1, "metric": reported[0] if reported else None, "score": score}
            adapted.save(out_dir / "adapter.safetensors", metadata={"method": s.method, "variant": s.variant, "epoch": str(epoch + 1)})
            if reported:
                _write_predictions(out_dir, reported[1])
            best_files = {name: (out_dir / name).read_bytes() for name in BEST_FILES if (out_dir / name).exists()}
        final_saved = reported[1] if reported else None  # the arrays of the weights the model now holds
        # through a file object: a full disk then raises OSError(ENOSPC), which atomic_path names the
        # checkpoint in, where torch writing to a path says only "[enforce fail ...] unexpected pos"
        with atomic_path(checkpoint) as tmp, open(tmp, "wb") as ckpt_file:
            torch.save(
                {
                    "signature": signature,
                    "epoch": epoch,
                    "adapter": {n: p.detach().cpu().clone() for n, p in adapted.trainable_parameters(include_head=True)},
                    "optimizers": [o.state_dict() for o in optimizers],
                    "schedulers": [x.state_dict() for x in schedulers],
                    "rng": _rng_state(),
                    "loss_windows": job.windows.state(),
                    "history": history,
                    "best": best,
                    "best_files": best_files,  # the outputs of the best epoch, restored on resume
                    "step_seconds": list(timer.seconds),  # the profile of a resumed job counts every epoch
                    "wall_seconds": earlier_wall + time.perf_counter() - t_start,
                },
                ckpt_file,
            )

    loss_check = blowup(job.windows)
    if loss_check["diverged"]:  # finite but blown up: a result of the recipe, recorded as NaN is
        raise TrainingDiverged(
            f"{s.variant} ({s.method}) on {s.task}, seed {s.seed}: the loss blew up and stayed finite: mean "
            f"{loss_check['loss_final']:.4g} over the last {loss_check['window']} steps vs {loss_check['loss_initial']:.4g} "
            f"over the first (rule: {BLOWUP_RULE})")
    last_metric, at_end = finish_test(job, best, history, out_dir / "adapter.safetensors")
    if at_end:  # the reported split scored once, at the selected epoch (whose adapter the model now holds)
        best["metric"] = at_end[0]
        _write_predictions(out_dir, at_end[1])
        final_saved = at_end[1]
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
        "last_metric": last_metric,
        "selection": {"select_on": job.selection.select_on, "reported": "validation" if job.selection.test == "none" else "test",
                      "text": job.selection.text},
        "test_best": best_on_test(job, history),  # the best epoch on test (FoRA's math "Extended"), flagged in tables
        "history": history,
        "trainable_params": adapted.num_trainable(),
        "trainable_params_with_head": adapted.num_trainable(include_head=True),
        "adapter": "adapter.safetensors",
        "predictions": "predictions.npz",
        "settings": asdict(s),
        "method_config": adapted.resolved_hparams(),  # defaults included: e.g. which FRAME transform ran
        "model": model,
        "data": {k: meta[k] for k in ("n_train", "n_eval") if k in meta},
    }
    step_times = timer.seconds
    n_timed = len(step_times)
    profile = {
        "table": s.table,
        "variant": s.variant,
        "method": s.method,
        "task": s.task,
        "seed": s.seed,
        "device": dev.type if dev.type != "cuda" else torch.cuda.get_device_name(dev),
        "precision": job.precision,
        "threads": torch.get_num_threads(),
        "wall_seconds": earlier_wall + wall,  # every run of the job up to its last checkpoint, and this one
        "wall_seconds_this_run": wall,
        "startup_seconds": age,  # process start -> training set up begins (imports, config)
        "train_steps_timed": n_timed,
        "step_seconds_mean": float(np.mean(step_times)) if n_timed else None,
        "step_seconds_median": float(np.median(step_times)) if n_timed else None,
        "samples_per_second": (s.batch_size * n_timed / sum(step_times)) if n_timed else None,
        "eval_seconds_per_epoch": float(np.mean([h["eval_seconds"] for h in history])) if history else None,
        "peak_memory_mb": job.memory.peak_mb(),
        "peak_memory_kind": job.memory.kind,
        "trainable_params": adapted.num_trainable(),
        "batch_size": s.batch_size,
        "steps_per_epoch": steps_per_epoch,
        "epochs": s.epochs,
        "resumed_from_epoch": start_epoch,
    }
    result["loss_check"] = loss_check
    # after the profile's numbers, outside them; given the arrays of the weights the model holds when
    # they are of the split Job.evaluate() scores by default, so that nothing is generated again (instruct)
    same_split = job.eval_loader is None or job.test_loader is None
    result["adapter_effect"] = adapter_effect(job, final_saved if same_split else None)
    write_json(out_dir / "profile.json", profile)
    write_json(out_dir / "train.json", result)
    _write_eval(out_dir)
    track_job(cfg, out_dir)  # MLflow, when `tracking: mlflow` is on (harness/tracking.py); off by default
    checkpoint.unlink(missing_ok=True)  # done: the adapter, predictions and metrics stay
    return result


def _write_eval(out_dir: Path) -> dict:
    """``eval.json`` from the job's own files, in this process (no eval job per run)."""
    return evaluate_job(out_dir / "train.json", out_dir / "eval.json")


def _write_predictions(out_dir: Path, saved: dict) -> None:
    with atomic_path(out_dir / "predictions.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **saved)


def _load_trainable(adapted, tensors: dict) -> None:
    own = dict(adapted.trainable_parameters(include_head=True))
    with torch.no_grad():
        for name, value in tensors.items():
            own[name].copy_(value)


def write_failure(out_dir: Path, s: JobSettings, reason: str) -> dict:
    """A diverged job (:class:`TrainingDiverged`: a result of its recipe) leaves no metrics,
    adapter or profile, only a status the table shows: its ``train.json``, ``profile.json`` and
    ``eval.json`` say ``diverged`` and why (the step, or the loss windows), and its
    ``adapter.safetensors`` / ``predictions.npz`` (outputs of the rule) hold nothing."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    status = {"status": "diverged", "reason": reason, "table": s.table, "variant": s.variant,
              "method": s.method, "task": s.task, "seed": s.seed, "settings": asdict(s)}
    with atomic_path(out_dir / "adapter.safetensors") as tmp:
        save_file({}, str(tmp), metadata={"status": "diverged"})
    with atomic_path(out_dir / "predictions.npz") as tmp:
        tmp.write_bytes(_empty_npz())
    write_json(out_dir / "profile.json", {**status, "wall_seconds": None})
    write_json(out_dir / "train.json", status)
    _write_eval(out_dir)
    return status


def _empty_npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf)
    return buf.getvalue()
