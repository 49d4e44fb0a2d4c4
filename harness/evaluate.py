"""The eval stage: a job's best epoch scored again from its saved predictions, into ``eval.json``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from harness.core.atomic import read_json, write_json
from harness.suites import get_suite

__all__ = ["evaluate_job"]


def evaluate_job(train_json: Path, out: Path) -> dict:
    """Score a job's best epoch from its saved predictions and write ``eval.json``.

    The metric is recomputed here by the suite's scorer, the function the training loop used to
    pick the best epoch, and must agree with it: a mismatch means the saved predictions are not
    that epoch's. The record also carries the last epoch's metric (from the training history), for
    the tables' last-epoch column. A failed (diverged) job gives a failed record, which the table
    shows as such.
    """
    job = read_json(train_json)
    keys = ("table", "variant", "method", "task", "seed")
    record = {k: job[k] for k in keys} | {"epochs": job["settings"]["epochs"], "model": job.get("model")}
    if job["status"] != "ok":
        record |= {"status": job["status"], "reason": job["reason"]}  # diverged (or an older record's failed)
    else:
        suite = get_suite(job["suite"])
        with np.load(Path(train_json).parent / job["predictions"]) as saved:
            value = suite.score(suite.task(job["task"]), dict(saved))
        if not math.isclose(value, job["best_metric"], rel_tol=1e-9, abs_tol=1e-9):
            raise ValueError(f"{train_json}: predictions give {value}, training recorded {job['best_metric']}")
        record |= {
            "status": "ok",
            "metric": value,
            "metric_name": job["metric_name"],
            "best_epoch": job["best_epoch"],
            "last_epoch": job["history"][-1]["epoch"],
            "method_config": job.get("method_config"),
            "last_metric": job["history"][-1]["metric"],
            "trainable_params": job["trainable_params"],
            "adapter_effect": job.get("adapter_effect"),  # harness.health: is the adapter inert, collapsed
        }
    write_json(out, record)
    return record
