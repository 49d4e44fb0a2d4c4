"""A run that is not the method's result says so (issue 19 §2-3, issue 18 §2): the environment's
failures are retried, not recorded; a loss that blew up is `diverged` as NaN is; an adapter that
carries nothing is `inert`; and the adapters library switches any method's adapter off."""
from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from adapters import apply_method
from harness.config import job_settings
from harness.health import LossWindows, blowup
from harness.run_flags import INERT_CHANGE, flag_cells


# ------------------------------------------------------------------------------- the blow-up rule
def test_a_loss_that_ends_far_above_its_start_diverged_and_the_windows_survive_a_resume():
    w = LossWindows(torch.device("cpu"), 3)
    for step, loss in enumerate([0.7, 0.7, 0.7, 0.5, 0.4, 0.3], start=1):
        w.record(torch.tensor(loss), step)
    assert blowup(w)["diverged"] is False and blowup(w)["loss_final"] == pytest.approx(0.4)

    resumed = LossWindows(torch.device("cpu"), 3)
    resumed.load(w.state())
    for step, loss in enumerate([9.0, 10404.0, 10404.0], start=7):  # lr 1e3: finite, far above the start
        resumed.record(torch.tensor(loss), step)
    verdict = blowup(resumed)
    assert verdict["diverged"] is True and verdict["loss_initial"] == pytest.approx(0.7)
    assert verdict["loss_final"] == pytest.approx((9 + 2 * 10404) / 3)


def test_a_finitely_blown_up_run_is_recorded_and_tabled_as_diverged(tiny_job, tmp_path):
    from harness.evaluate import evaluate_job
    from harness.tables import build_table
    from harness.train import TrainingDiverged, train, write_failure

    cfg, data = tiny_job
    s = replace(job_settings(cfg, "lora", "dal_pleasantness", 0), epochs=2, lr=1e3, lr_head=1e3)
    out = tmp_path / "out"
    with pytest.raises(TrainingDiverged) as e:
        train(s, cfg, out_dir=out, checkpoint=tmp_path / "ck.pt", data_dir=data, threads=1)
    write_failure(out, s, str(e.value))
    record = json.loads((out / "eval.json").read_text())
    assert record["status"] == "diverged" and "lora" in record["reason"]
    one = dict(cfg, tasks=["dal_pleasantness"], seeds=[0], methods={"lora": cfg["methods"]["lora"]})
    meta = json.loads((data / "meta.json").read_text())
    rows, table_meta = build_table(one, [record], {"dal_pleasantness": meta})
    lora = next(r for r in rows if r["method"] == "lora")
    assert lora["dal_pleasantness"] == "diverged" and lora["dal_pleasantness_seeds"] == "0/1 (1 diverged)"
    assert table_meta["cell_flags"] == {"lora": {"dal_pleasantness": ["diverged"]}}
    assert evaluate_job  # the record above came through the eval stage (write_failure calls it)


# ------------------------------------------------------------------------------- environment failures
def test_an_environment_failure_exits_non_zero_records_nothing_and_keeps_the_checkpoint(tiny_job, tmp_path,
                                                                                          monkeypatch, capfd):
    import harness.train as T
    from harness.cli import main

    cfg, data = tiny_job
    calls = {"n": 0}
    real_setup = T.setup_job

    def setup(*a, **kw):  # the first epoch trains, the second runs out of memory
        job = real_setup(*a, **kw)
        real_loss = job.suite.loss

        def loss(model, batch):
            calls["n"] += 1
            if calls["n"] > job.steps_per_epoch:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\n(allocator advice)")
            return real_loss(model, batch)

        job.suite = SimpleNamespace(**{k: getattr(job.suite, k) for k in dir(job.suite) if not k.startswith("__")})
        job.suite.loss = loss
        return job

    monkeypatch.setattr(T, "setup_job", setup)
    out, ck = tmp_path / "out", tmp_path / "ck.pt"
    argv = ["train", "--config", cfg["_path"], "--scale", "mini", "--method", "lora", "--task", "dal_pleasantness",
            "--seed", "0", "--data", str(data), "--out", str(out), "--checkpoint", str(ck), "--threads", "1"]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 1
    err = capfd.readouterr().err
    assert ("error: lora/dal_pleasantness/seed0 failed: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB; "
            f"nothing is recorded and its checkpoint {ck} is kept: the next snakemake run retries it") in err
    assert not (out / "eval.json").exists() and not (out / "train.json").exists() and ck.exists()


# ------------------------------------------------------------------------------- switching an adapter off
@pytest.mark.parametrize("method,hparams", [
    ("lora", {"r": 4, "alpha": 8, "dropout": 0.0}),  # peft
    ("fora", {"n": 50, "r": 4, "alpha": 4, "dropout": 0.0}),  # ours, mergeable
    ("houlsby", {"r": 4}),  # ours, no weight update
    ("bitfit", {}),  # no layers: its biases are the change
])
def test_disable_adapter_gives_the_model_without_the_adapter_head_kept(tiny_roberta, method, hparams):
    torch.manual_seed(0)
    model = tiny_roberta(num_labels=2).eval()
    x = {"input_ids": torch.randint(5, 90, (3, 9)), "attention_mask": torch.ones(3, 9, dtype=torch.long)}
    with torch.no_grad():
        base = model(**x).logits.clone()
    adapted = apply_method(model, method, hparams, target_modules=["query", "value"], seed=0)
    with torch.no_grad():
        for _, p in adapted.trainable_parameters():  # training moved every adapter parameter
            p.add_(50.0 * torch.randn_like(p))
        trained = adapted.model(**x).logits.clone()
        with adapted.disable_adapter():
            off = adapted.model(**x).logits
        again = adapted.model(**x).logits
    assert not torch.allclose(trained, base, atol=1e-4)
    torch.testing.assert_close(off, base, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again, trained)  # switched back on
    changes = adapted.relative_weight_changes()
    assert (len(changes) > 0 and min(changes) > 0) if method in ("lora", "fora") else changes == []


def test_an_untrained_adapter_changes_nothing(tiny_roberta):
    adapted = apply_method(tiny_roberta(num_labels=2), "lora", {"r": 4, "alpha": 8, "dropout": 0.0},
                           target_modules=["query", "value"], seed=0)
    assert adapted.relative_weight_changes() == [0.0] * len(adapted.adapted_modules())  # B starts at zero


def test_a_trained_job_records_how_much_its_adapter_matters(tiny_job, tmp_path):
    from harness.train import train

    cfg, data = tiny_job
    s = replace(job_settings(cfg, "lora", "dal_pleasantness", 0), epochs=1)
    result = train(s, cfg, out_dir=tmp_path / "out", checkpoint=tmp_path / "ck.pt", data_dir=data, threads=1)
    effect = result["adapter_effect"]
    assert effect["weight_change"]["layers"] == 12 and effect["weight_change"]["median"] > 0  # 6 layers x (q, v)
    assert effect["output_change"]["layers"] == 12 and effect["output_change"]["max"] > 0
    assert effect["predictions_changed"] is None  # a regression task: no classes
    assert effect["inert"] == (effect["weight_change"]["median"] < INERT_CHANGE)
    assert result["loss_check"]["diverged"] is False
    assert json.loads((tmp_path / "out" / "eval.json").read_text())["adapter_effect"] == effect


# ------------------------------------------------------------------------------- flags in the table
def _record(variant, task, metric, **effect):
    return {"variant": variant, "task": task, "status": "ok", "metric": metric,
            "adapter_effect": {"weight_change": None, "output_change": None, "predictions_changed": None} | effect}


def test_inert_and_collapsed_cells_are_flagged_next_to_their_number():
    rows = [{"method": "lora", "t": "70.00"}, {"method": "fora", "t": "50.00"}, {"method": "baseline", "t": "50.00"}]
    evals = [
        _record("lora", "t", 70.0, weight_change={"median": 0.059, "max": 0.1, "layers": 12}, predictions_changed=0.26,
                inert=False, one_class=False),
        _record("fora", "t", 50.0, weight_change={"median": 5.5e-4, "max": 1e-3, "layers": 12}, predictions_changed=0.0,
                inert=True, one_class=True),
    ]
    flags = flag_cells(rows, evals, ["t"], lambda t: 50.0)
    assert flags == {"fora": {"t": ["diverged", "inert"]}}
    assert rows[0]["t_adapter"] == "ΔW/W0 0.059 (max 0.1), 26% predictions change"
    assert rows[1]["t_adapter"] == "ΔW/W0 0.00055 (max 0.001), 0% predictions change"
    # one class is no divergence when no other method beats the baseline either
    rows[0]["t"] = "50.00"
    assert flag_cells(rows, evals, ["t"], lambda t: 50.0) == {"fora": {"t": ["inert"]}}
