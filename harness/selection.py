"""Choosing a job's checkpoint the way its source did, for the one training loop.

The suite states the protocol (:class:`harness.suites.base.Selection`); this module applies it,
so the loop has no suite name in it:

* what picks the epoch: the 'validation' split's metric, or its loss (HF ``Trainer``'s
  ``eval_loss`` + ``load_best_model_at_end``, LLM-Adapters ``finetune.py`` ``val_set_size=120``);
* which split is reported: 'validation' itself (GLUE), or 'test', scored once at the selected
  epoch (and at the last one when a column needs it) or after every epoch (a column selected on
  test, recorded as ``test_best`` and labelled so in the tables).
"""
from __future__ import annotations

import math

__all__ = ["best_on_test", "finish_test", "score_epoch"]


def score_epoch(job) -> tuple[dict, float, tuple[float, dict] | None]:
    """Score one finished epoch: (its history entries, its selection score (higher is better),
    (metric, arrays) of the reported split at this epoch, or None when the reported split is
    scored only at the end)."""
    sel = job.selection
    entry: dict = {}
    reported = None
    if sel.select_on == "metric":
        metric, saved = job.evaluate()
        entry["metric"], score = metric, metric
        if sel.test == "none":
            reported = (metric, saved)
    else:
        loss = job.validation_loss()
        entry["validation_loss"], score = loss, -loss
    if sel.test == "every_epoch":
        metric, saved = job.evaluate(job.test_loader)
        entry["test_metric"] = metric
        reported = (metric, saved)
    return entry, score, reported


def finish_test(job, best: dict, history: list[dict], adapter_path) -> tuple[float | None, tuple[float, dict] | None]:
    """After the last epoch: (the reported split's metric at the last epoch or None when not
    scored, (metric, arrays) at the selected epoch when it is scored only now, else None).

    ``"once"``: 'test' is scored with the last epoch's weights when ``test_last`` asks for it, then
    with the selected epoch's adapter (``adapter_path``, loaded back; the head included), once;
    the same pass serves both when the last epoch is the selected one."""
    sel = job.selection
    if sel.test != "once":
        return history[-1].get("test_metric", history[-1].get("metric")), None
    last = job.evaluate(job.test_loader) if sel.test_last else None
    if last is not None and best["epoch"] == history[-1]["epoch"]:
        return last[0], last
    job.adapted.load(adapter_path)
    return (last[0] if last else None), job.evaluate(job.test_loader)


def best_on_test(job, history: list[dict]) -> dict | None:
    """The epoch with the best test metric, when 'test' was scored after every epoch of a run of
    more than one epoch (a selection on the reported split, which the tables flag); else None."""
    if job.selection.test != "every_epoch" or len(history) < 2:
        return None
    top = max(history, key=lambda h: (h["test_metric"], -h["epoch"]))
    return {"epoch": top["epoch"], "metric": top["test_metric"]} if math.isfinite(top["test_metric"]) else None
