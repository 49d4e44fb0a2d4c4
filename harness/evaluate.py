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
    the tables' last-epoch column, and the suite's further columns (``extra_metrics``: MATH's
    ``math_strict``) at the best and the last epoch. A failed (diverged) job gives a failed record,
    which the table shows as such.
    """
    job = read_json(train_json)
    keys = ("table", "variant", "method", "task", "seed")
    record = {k: job[k] for k in keys} | {"epochs": job["settings"]["epochs"], "model": job.get("model")}
    if job["status"] != "ok":
        record |= {"status": job["status"], "reason": job["reason"]}  # diverged (or an older record's failed)
    else:
        suite = get_suite(job["suite"])
        with np.load(Path(train_json).parent / job["predictions"]) as npz:
            saved = dict(npz)
        spec = suite.task(job["task"])
        value = suite.score(spec, saved)
        if not math.isclose(value, job["best_metric"], rel_tol=1e-9, abs_tol=1e-9):
            raise ValueError(f"{train_json}: predictions give {value}, training recorded {job['best_metric']}")
        record |= {
            "status": "ok",
            "metric": value,
            "metric_name": job["metric_name"],
            "best_epoch": job["best_epoch"],
            "last_epoch": job["history"][-1]["epoch"],
            "method_config": job.get("method_config"),
            # None: the reported split was not scored at the last epoch (older records: the history's)
            "last_metric": job["last_metric"] if "last_metric" in job else job["history"][-1]["metric"],
            "trainable_params": job["trainable_params"],
            "adapter_effect": job.get("adapter_effect"),  # harness.health: is the adapter inert, collapsed
            "selection": job.get("selection"),  # what picked the epoch and which split is reported
            "test_best": job.get("test_best"),  # the best epoch on test (a column selected on test), or None
        }
        extra = suite.extra_metrics(spec, saved)
        if extra:  # columns beside the task's (math_strict), best epoch and last epoch
            record |= {"extra_metrics": extra, "last_extra_metrics": job["history"][-1].get("extra_metrics") or {}}
        if job.get("test_best"):
            record |= _selected_on_test(job, record)
    write_json(out, record)
    return record


def _selected_on_test(job: dict, record: dict) -> dict:
    """A run whose test split was scored after every epoch (FoRA Table 2 "Extended": "reporting the
    best results", §4.2): its column shows the best epoch on test, flagged ``selected_on_test``;
    the held-out-loss selection goes beside it as the further column ``<task>_heldout``."""
    best = job["test_best"]
    at, last = job["history"][best["epoch"] - 1], job["history"][-1]
    heldout = f"{job['task']}_heldout"
    return {"metric": best["metric"], "best_epoch": best["epoch"], "selected_on_test": True,
            "heldout_epoch": job["best_epoch"],
            "extra_metrics": (at.get("extra_metrics") or {}) | {heldout: record["metric"]},
            "last_extra_metrics": (last.get("extra_metrics") or {}) | {heldout: record["last_metric"]}}
