"""Know the bill before you pay it: measured step times x planned steps = a table's cost.

``calibrate`` runs a few real optimizer steps and one evaluation pass of a job's settings on
the machine at hand (same model, data, batch size and code path as the job), and ``estimate``
multiplies by each planned job's steps: wall-clock per job, in total and per GPU. Without the model or
a GPU, ``harness/cost.py`` (``estimate --analytic``) gives the bill from the configs alone.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from harness.train import StepTimer, setup_job


def calibrate(s, cfg: dict, *, steps: int = 5, warmup: int = 2, eval_batches: int = 2, **job_kwargs) -> dict:
    """Measure setup, train-step and eval time for job settings ``s`` (the first seed stands for all)."""
    t0 = time.perf_counter()
    job = setup_job(s, cfg, **job_kwargs)
    setup_seconds = time.perf_counter() - t0
    batches = iter(job.epoch_loader(0))
    timer = StepTimer(job.device)  # the loop's own timing: CUDA events on a GPU, no sync per step
    for i in range(warmup + steps):
        try:
            batch = next(batches)
        except StopIteration:  # fewer batches than asked: start the epoch again
            batches = iter(job.epoch_loader(0))
            batch = next(batches)
        timer.start()
        job.step(batch, i + 1, 0)
        timer.stop()
    times = timer.flush()[warmup:]
    job.check()
    n_eval = len(job.eval_loader.dataset)
    few = [b for _, b in zip(range(eval_batches), job.eval_loader)]
    t = time.perf_counter()
    with job.autocast():
        job.suite.evaluate(job.adapted.model, few, job.task, job.device)
    seen = sum(len(b["labels"]) for b in few)
    return {
        "table": s.table, "variant": s.variant, "task": s.task, "device": job.device.type,
        "precision": job.precision, "threads": torch.get_num_threads(),
        "setup_seconds": setup_seconds, "step_seconds": statistics.median(times),
        "eval_seconds_per_example": (time.perf_counter() - t) / max(seen, 1),
        "steps_per_epoch": job.steps_per_epoch, "epochs": s.epochs, "n_eval": n_eval,
    }


def job_seconds(c: dict) -> float:
    """Predicted wall-clock of one job (what its profile.json will call wall_seconds)."""
    return c["setup_seconds"] + c["epochs"] * (c["steps_per_epoch"] * c["step_seconds"] + c["n_eval"] * c["eval_seconds_per_example"])


def estimate(calibrations: list[dict], n_seeds: int, gpus_per_job: int, parallel_jobs: int) -> tuple[str, dict]:
    """A printable bill and its numbers: per method, and the table's total."""
    per_method: dict[str, float] = {}
    for c in calibrations:
        per_method[c["variant"]] = per_method.get(c["variant"], 0.0) + n_seeds * job_seconds(c)
    total = sum(per_method.values())
    n_jobs = len(calibrations) * n_seeds
    numbers = {
        "jobs": n_jobs, "job_hours": total / 3600, "gpu_hours": total / 3600 * gpus_per_job,
        "wall_clock_hours": total / 3600 / max(parallel_jobs, 1), "parallel_jobs": parallel_jobs,
        "per_method_hours": {k: v / 3600 for k, v in per_method.items()},
        "device": calibrations[0]["device"] if calibrations else "",
    }
    lines = [f"{'method':<24}{'job-hours':>12}"]
    lines += [f"{k:<24}{v / 3600:>12.3f}" for k, v in per_method.items()]
    lines += [
        f"total: {n_jobs} jobs, {numbers['job_hours']:.3f} job-hours on {numbers['device']}, "
        f"{numbers['gpu_hours']:.3f} GPU-hours ({gpus_per_job} GPU per job), "
        f"about {numbers['wall_clock_hours']:.3f} h wall-clock with {parallel_jobs} jobs at a time",
    ]
    return "\n".join(lines), numbers


def parallel_slots(gpus_per_job: int, cores: int) -> int:
    """Jobs that run at once on this machine: one per GPU set, else one per core."""
    if gpus_per_job and torch.cuda.is_available():
        return max(torch.cuda.device_count() // gpus_per_job, 1)
    return max(cores, 1)


__all__ = ["calibrate", "estimate", "job_seconds", "parallel_slots"]
