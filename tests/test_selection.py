"""Checkpoint selection as the sources did (issue 18 §3): the held-out carve, selection on it with
test reported at the selected epoch, one generation on test for loss selection, and the math
"Extended" column labelled as selected on test."""
from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from dag import tiny_config
from harness.config import backbone_path, job_settings, load_table
from harness.evaluate import evaluate_job
from harness.prepare import carve_validation
from harness.selection import best_on_test, finish_test, score_epoch
from harness.suites import get_suite
from harness.suites.base import Selection
from harness.tables import build_table


def _raw(n_train: int = 50, n_eval: int = 7):
    from datasets import Dataset, DatasetDict

    return DatasetDict({"train": Dataset.from_dict({"x": list(range(n_train)), "label": [i % 2 for i in range(n_train)]}),
                        "validation": Dataset.from_dict({"x": list(range(1000, 1000 + n_eval)), "label": [0] * n_eval})})


def test_carve_is_seeded_disjoint_and_recorded():
    raw = _raw()
    strata = np.asarray(raw["train"]["label"])
    out, rec = carve_validation(raw, 0.2, strata, seed=2)
    train, val = set(out["train"]["x"]), set(out["validation"]["x"])
    assert len(val) == 10 and len(train) == 40 and not train & val and train | val == set(range(50))
    assert out["test"]["x"] == list(range(1000, 1007))  # the task's own evaluation split is reported, untouched
    assert np.bincount(out["validation"]["label"]).tolist() == [5, 5]  # stratified
    assert rec["size"] == 10 and rec["of"] == 50 and rec["seed"] == 2 and rec["stratified"]
    again, rec2 = carve_validation(raw, 0.2, strata, seed=2)
    assert again["validation"]["x"] == out["validation"]["x"] and rec2["positions_sha256"] == rec["positions_sha256"]
    other, rec3 = carve_validation(raw, 0.2, strata, seed=3)
    assert other["validation"]["x"] != out["validation"]["x"] and rec3["positions_sha256"] != rec["positions_sha256"]
    counted, _ = carve_validation(raw, 12, None, seed=2)  # a count (LLM-Adapters' val_set_size), uniform
    assert len(counted["validation"]) == 12


class _FakeJob:
    """Scores scripted per epoch: what the selection module asks of the loop's Job."""

    def __init__(self, selection: Selection, val: list[float], test: list[float], losses: list[float]):
        self.selection, self.val, self.test, self.losses = selection, val, test, losses
        self.epoch, self.test_loader, self.calls = 0, object(), []
        self.adapted = SimpleNamespace(load=lambda path: self.calls.append(("load", path)))

    def evaluate(self, loader=None):
        split = "test" if loader is self.test_loader else "validation"
        self.calls.append((split, self.epoch))
        value = (self.test if split == "test" else self.val)[self.epoch]
        return value, {"split": split}

    def validation_loss(self):
        self.calls.append(("loss", self.epoch))
        return self.losses[self.epoch]


def _run(job: _FakeJob, epochs: int):
    history, best = [], {"epoch": None, "score": -np.inf}
    for epoch in range(epochs):
        job.epoch = epoch
        scores, score, reported = score_epoch(job)
        history.append({"epoch": epoch + 1, **scores})
        if score > best["score"]:
            best = {"epoch": epoch + 1, "score": score, "metric": reported[0] if reported else None}
    job.epoch = epochs - 1  # the model holds the last epoch's weights until the selected adapter is loaded
    return history, best, finish_test(job, best, history, "adapter.safetensors")


def test_commonsense_selects_on_the_held_out_loss_and_generates_once():
    sel = get_suite("instruct").selection(get_suite("instruct").task("commonsense_mini"), {"data": {}})
    assert sel.select_on == "loss" and sel.test == "once" and sel.held_out == 120 and "val_set_size" in sel.text
    job = _FakeJob(sel, val=[0] * 3, test=[50.0, 60.0, 70.0], losses=[2.0, 1.5, 1.7])
    history, best, (last, at_end) = _run(job, 3)
    assert best["epoch"] == 2 and [h["validation_loss"] for h in history] == [2.0, 1.5, 1.7]
    assert [c for c in job.calls if c[0] == "test"] == [("test", 2)]  # generated once, after loading epoch 2's adapter
    assert job.calls[-2:] == [("load", "adapter.safetensors"), ("test", 2)] and last is None
    assert best_on_test(job, history) is None


def test_math_scores_test_every_epoch_and_records_the_best_on_test():
    sel = get_suite("instruct").selection(get_suite("instruct").task("math"), {"data": {"held_out": 30}})
    assert sel.select_on == "loss" and sel.test == "every_epoch" and sel.held_out == 30
    job = _FakeJob(sel, val=[0] * 3, test=[10.0, 30.0, 20.0], losses=[1.0, 1.2, 0.9])
    history, best, (last, at_end) = _run(job, 3)
    assert best == {"epoch": 3, "score": -0.9, "metric": 20.0} and at_end is None and last == 20.0
    assert best_on_test(job, history) == {"epoch": 2, "metric": 30.0}


def test_evaluate_labels_the_best_on_test_and_puts_the_held_out_selection_beside_it(tmp_path):
    """The eval record of a 3-epoch math run: its column is the best epoch on test, flagged; the
    held-out-loss selection is the further column gsm8k_heldout."""
    saved = {"item_ids": np.array(["a", "b"]), "sets": np.array(["gsm8k", "gsm8k"]), "labels": np.array(["4", "5"]),
             "outputs": np.array(["The answer is 4", "The answer is 7"]), "extracted": np.array(["4", "7"]),
             "correct": np.array([True, False])}
    np.savez(tmp_path / "predictions.npz", **saved)
    history = [{"epoch": e, "validation_loss": v, "test_metric": m} for e, v, m in ((1, 1.0, 0.0), (2, 1.2, 100.0), (3, 0.9, 50.0))]
    job = {"status": "ok", "suite": "instruct", "table": "math_t", "variant": "fora_3ep", "method": "fora", "task": "gsm8k",
           "seed": 0, "settings": {"epochs": 3}, "metric_name": "accuracy", "best_epoch": 3, "best_metric": 50.0,
           "last_metric": 50.0, "history": history, "trainable_params": 10, "predictions": "predictions.npz",
           "selection": {"select_on": "loss", "reported": "test", "text": "held-out loss"},
           "test_best": {"epoch": 2, "metric": 100.0}}
    (tmp_path / "train.json").write_text(json.dumps(job))
    rec = evaluate_job(tmp_path / "train.json", tmp_path / "eval.json")
    assert rec["metric"] == 100.0 and rec["best_epoch"] == 2 and rec["selected_on_test"] and rec["heldout_epoch"] == 3
    assert rec["extra_metrics"]["gsm8k_heldout"] == 50.0
    (tmp_path / "eval.json").write_text(json.dumps(rec))


def test_table_shows_the_best_on_test_flagged_and_the_held_out_selection_beside_it(tmp_path):
    test_evaluate_labels_the_best_on_test_and_puts_the_held_out_selection_beside_it(tmp_path)
    rec = json.loads((tmp_path / "eval.json").read_text())
    cfg = {"table": "math_t", "title": "t", "_scale": "mini", "suite": "instruct", "tasks": ["gsm8k"], "seeds": [0], "aggregate": "mean",
           "methods": {"fora_3ep": {"method": "fora", "label": "FoRA"}}, "paper_values": None,
           "backbone": {"name": "tiny"}}
    rows, meta = build_table(cfg, [rec], {})
    row = next(r for r in rows if r["method"] == "fora_3ep")
    assert row["gsm8k"] == "100.00" and row["gsm8k_heldout"] == "50.00"
    assert meta["cell_flags"] == {"fora_3ep": {"gsm8k": ["selected_on_test"]}}
    assert "selected on: test" in meta["selection_by_column"]["gsm8k"]


@pytest.mark.slow
def test_loop_selects_on_validation_and_reports_test_at_that_epoch(tmp_path, monkeypatch):
    """A tiny real run (GLUE's tiny model, given the vision protocol): the validation score is made
    the opposite of the test score, so the selected epoch is not the best on test; the reported
    number is test at the selected epoch, with that epoch's adapter (head included) loaded back,
    and the last column is test at the last epoch."""
    from harness.prepare import prepare
    from harness.suites.glue.suite import GlueSuite
    from harness.train import Job, train

    protocol = Selection(select_on="metric", test="once", test_last=True, held_out=0.25, text="vision-like")
    monkeypatch.setattr(GlueSuite, "selection", lambda self, spec, cfg: protocol)
    cfg = load_table(tiny_config(tmp_path) / "tiny.yaml", "mini")
    cfg["data"] |= {"max_length": 16, "max_train": 96, "max_eval": 48}
    meta = prepare(cfg, "rt_polarity", tmp_path / "data", backbone_path(cfg))
    assert meta["n_train"] == 72 and meta["n_eval"] == 24 and meta["n_test"] == 48

    real, test_by_epoch = Job.evaluate, []

    def scripted(job, loader=None):
        if loader is not None:
            return real(job, loader)
        test_by_epoch.append(real(job, job.test_loader)[0])  # the true test score of this epoch's weights
        # (harness.health's calls after training append too: only the first 4 are epochs)
        return 100.0 - test_by_epoch[-1], real(job)[1]

    monkeypatch.setattr(Job, "evaluate", scripted)
    s = replace(job_settings(cfg, "lora", "rt_polarity", 0), epochs=4, lr=5e-3, lr_head=5e-3)
    out = tmp_path / "job"
    result = train(s, cfg, data_dir=tmp_path / "data", out_dir=out, checkpoint=tmp_path / "ck.pt", threads=1)
    assert len(set(test_by_epoch)) > 1, test_by_epoch  # else val-best and test-best cannot differ
    chosen = min(range(4), key=lambda e: (test_by_epoch[e], e))  # max of 100 - test, first on ties
    assert result["best_epoch"] == chosen + 1 and test_by_epoch[chosen] < max(test_by_epoch)
    assert result["best_metric"] == pytest.approx(test_by_epoch[chosen])
    assert result["last_metric"] == pytest.approx(test_by_epoch[3])
    assert result["selection"]["reported"] == "test"
    assert evaluate_job(out / "train.json", out / "eval.json")["metric"] == pytest.approx(test_by_epoch[chosen])
