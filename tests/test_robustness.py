"""What goes wrong in long runs, and what the harness does about it (issue 12).

* A truncated resume checkpoint is set aside (``.corrupt``) with a one-line message and the job
  trains from scratch, instead of failing on ``torch.load`` at every rerun.
* A resumed job restores its best epoch's files (a rerun of an incomplete job deletes its outputs)
  and its profile counts the steps of the epochs it did not re-run; a finished job deletes its
  checkpoint.
* A failed job: its one-line error reaches the Snakemake output (``show-failed-logs``); an error
  inside training (out of memory) records nothing and is retried (issue 19 §2), it is no cell.
* A ``target_modules`` name that matches no module of the backbone fails validation, naming the
  key and the names that exist.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dag import ROOT, prep_dir, snakemake, tiny_config
from helpers import suite_with
from harness.config import ConfigError, job_settings, load_table


def settings(cfg, **kw):
    return replace(job_settings(cfg, "lora", "dal_pleasantness", 0), **kw)


# ------------------------------------------------------------------------------- checkpoints
def test_a_truncated_checkpoint_is_set_aside_and_the_job_trains_from_scratch(tiny_job, tmp_path, capfd):
    from harness.train import train

    cfg, data = tiny_job
    ck = tmp_path / "ck" / "seed0.pt"
    ck.parent.mkdir()
    torch.save({"signature": "x", "epoch": 0, "adapter": {"w": torch.randn(256, 256)}}, ck)
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])  # a kill in the middle of a write, a full disk
    out = tmp_path / "out"
    result = train(settings(cfg, epochs=1), cfg, data_dir=data, out_dir=out, checkpoint=ck, threads=1)
    err = capfd.readouterr().err
    lines = [l for l in err.splitlines() if "unreadable" in l]
    assert len(lines) == 1 and "set aside as seed0.pt.corrupt, training from scratch" in lines[0], err[-2000:]
    assert "Traceback" not in err
    assert (ck.parent / "seed0.pt.corrupt").exists()
    assert result["status"] == "ok" and json.loads((out / "eval.json").read_text())["status"] == "ok"
    assert not ck.exists()  # a finished job deletes its checkpoint; adapter, predictions and metrics stay
    assert all((out / n).exists() for n in ("adapter.safetensors", "predictions.npz", "train.json", "profile.json"))
    # the adapter config the run resolved, defaults included, goes with the numbers
    assert json.loads((out / "eval.json").read_text())["method_config"] == json.loads(
        (out / "train.json").read_text())["method_config"] == {"r": 8, "alpha": 16, "dropout": 0.0}  # tests/data/tiny_config: lora r 8, alpha 16


class Killed(BaseException):
    """Stands for a kill -9 between epochs (not an Exception: nothing records it as a failure)."""


def test_a_resumed_job_restores_its_best_files_and_profiles_every_epoch(tiny_job, tmp_path, monkeypatch):
    import harness.train as T

    cfg, data = tiny_job
    s = settings(cfg, epochs=3, batch_size=8)  # 8 steps per epoch
    full = T.train(s, cfg, data_dir=data, out_dir=tmp_path / "full", checkpoint=tmp_path / "full.pt", threads=1)

    out, ck = tmp_path / "job", tmp_path / "job.pt"
    real_setup = T.setup_job

    def setup_then_die_in_epoch(n):
        def setup(*a, **kw):
            job = real_setup(*a, **kw)
            calls = {"n": 0}
            evaluate = job.suite.evaluate

            def eval_or_die(*ea, **ekw):
                calls["n"] += 1
                if calls["n"] == n:
                    raise Killed
                return evaluate(*ea, **ekw)

            job.suite = suite_with(job.suite, evaluate=eval_or_die)
            return job
        return setup

    monkeypatch.setattr(T, "setup_job", setup_then_die_in_epoch(3))  # killed while evaluating epoch 3
    with pytest.raises(Killed):
        T.train(s, cfg, data_dir=data, out_dir=out, checkpoint=ck, threads=1)
    assert ck.exists() and not (out / "train.json").exists()
    monkeypatch.setattr(T, "setup_job", real_setup)

    real_write_json = T.write_json

    def die_before_the_profile(path, obj):  # killed after the last checkpoint, before the results
        if Path(path).name == "profile.json":
            raise Killed
        real_write_json(path, obj)

    monkeypatch.setattr(T, "write_json", die_before_the_profile)
    with pytest.raises(Killed):
        T.train(s, cfg, data_dir=data, out_dir=out, checkpoint=ck, threads=1)  # resumes after epoch 2, runs epoch 3
    monkeypatch.setattr(T, "write_json", real_write_json)
    for name in ("adapter.safetensors", "predictions.npz"):  # what a rerun of an incomplete job deletes
        (out / name).unlink()
    resumed = T.train(s, cfg, data_dir=data, out_dir=out, checkpoint=ck, threads=1)  # nothing left to train

    assert [h["metric"] for h in resumed["history"]] == [h["metric"] for h in full["history"]]
    assert resumed["best_epoch"] == full["best_epoch"]
    with np.load(out / "predictions.npz") as a, np.load(tmp_path / "full" / "predictions.npz") as b:
        assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)
    from safetensors import safe_open

    def adapter(path):
        with safe_open(str(path), "pt") as f:
            return f.metadata(), {k: f.get_tensor(k) for k in f.keys()}

    (meta_a, ta), (meta_b, tb) = adapter(out / "adapter.safetensors"), adapter(tmp_path / "full" / "adapter.safetensors")
    assert meta_a == meta_b and set(ta) == set(tb) and all(torch.equal(ta[k], tb[k]) for k in ta)
    assert json.loads((out / "eval.json").read_text())["metric"] == full["best_metric"]
    profile = json.loads((out / "profile.json").read_text())
    assert profile["resumed_from_epoch"] == 3
    assert profile["train_steps_timed"] == 3 * 8  # the killed runs' timings, kept in the checkpoint
    assert profile["wall_seconds"] > profile["wall_seconds_this_run"] > 0
    assert not ck.exists()


def test_a_checkpoint_of_another_model_is_not_resumed(tiny_job, tmp_path, monkeypatch, capfd):
    """Issue 17: the resume fingerprint holds the model actually loaded (folder, weights), not the
    configured hub id: after switching backbone.local_path the job trains from scratch, and
    train.json / eval.json name the folder it loaded."""
    import harness.train as T
    from harness.config import backbone_path

    cfg, data = tiny_job
    s, out, ck = settings(cfg, epochs=1), tmp_path / "job", tmp_path / "job.pt"
    real_write_json = T.write_json

    def die_before_the_profile(path, obj):  # killed after the checkpoint, before the results
        if Path(path).name == "profile.json":
            raise Killed
        real_write_json(path, obj)

    monkeypatch.setattr(T, "write_json", die_before_the_profile)
    with pytest.raises(Killed):
        T.train(s, cfg, data_dir=data, out_dir=out, checkpoint=ck, threads=1)
    monkeypatch.setattr(T, "write_json", real_write_json)
    assert ck.exists()
    other = tmp_path / "other_model"  # another backbone.local_path (its files linked: no 90 MB copy)
    other.mkdir()
    for f in Path(backbone_path(cfg)).iterdir():
        (other / f.name).symlink_to(f)
    capfd.readouterr()
    T.train(s, {**cfg, "backbone": {**cfg["backbone"], "local_path": str(other)}}, data_dir=data, out_dir=out,
            checkpoint=ck, threads=1)
    err = capfd.readouterr().err
    assert f"ignoring checkpoint {ck}" in err and "resuming" not in err, err[-2000:]
    model = json.loads((out / "train.json").read_text())["model"]
    assert model["path"] == str(other.resolve()) and model["hub_id"] == cfg["backbone"]["hub_id"]
    assert model["source"] == "folder" and len(model["weights"]["sha256"]) == 64
    assert json.loads((out / "eval.json").read_text())["model"] == model


# ------------------------------------------------------------------------------- failed jobs
def test_profiles_show_failed_logs_and_slurm_keeps_going():
    for name in ("mini", "local-gpu", "slurm"):
        profile = yaml.safe_load((ROOT / "profiles" / name / "config.yaml").read_text())
        assert profile.get("show-failed-logs") is True, name
    assert yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())["keep-going"] is True


def test_an_error_inside_training_is_retried_not_a_failed_cell(tiny_job, tmp_path, monkeypatch):
    """CUDA out of memory is the environment's failure, not a result (issue 19 §2): one line, nothing
    recorded, the job fails and the next run retries it (tests/test_run_health.py: the CLI's exit 1)."""
    import harness.train as T

    cfg, data = tiny_job
    real_setup = T.setup_job

    def oom(model, batch):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\n(more lines of allocator advice)")

    def setup(*a, **kw):
        job = real_setup(*a, **kw)
        job.suite = suite_with(job.suite, loss=oom)
        return job

    monkeypatch.setattr(T, "setup_job", setup)
    out = tmp_path / "out"
    with pytest.raises(T.JobFailed) as e:
        T.train(settings(cfg, epochs=1), cfg, data_dir=data, out_dir=out, checkpoint=tmp_path / "ck.pt", threads=1)
    assert str(e.value) == ("lora/dal_pleasantness/seed0 failed: RuntimeError: CUDA out of memory. Tried to allocate "
                            "2.00 GiB; nothing is recorded and it had no checkpoint yet: the next snakemake run retries it")
    assert not any((out / n).exists() for n in ("train.json", "eval.json", "profile.json"))


@pytest.mark.slow
def test_a_failed_job_shows_its_one_line_error_in_the_snakemake_output(tmp_path):
    cfg_dir, work = tiny_config(tmp_path), tmp_path / "work"
    prepared = prep_dir(cfg_dir, "tiny", "rt_polarity")
    (work / prepared).mkdir(parents=True)  # prepared data without its files
    out = snakemake(work, cfg_dir, "results/mini/tiny/lora/rt_polarity/seed0/train.json",
                    extra=("--profile", str(ROOT / "profiles" / "mini")))
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert f"error: prepared data {prepared} is missing" in text, text[-3000:]


# ------------------------------------------------------------------------------- target_modules
def _edited(tmp_path: Path, src: Path, edit) -> Path:
    cfg = yaml.safe_load(src.read_text())
    edit(cfg)
    dest = tmp_path / src.name
    tmp_path.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(cfg, sort_keys=False))
    if (src.parent / "mini").is_dir() and not (tmp_path / "mini").exists():
        import shutil

        shutil.copytree(src.parent / "mini", tmp_path / "mini")
    return dest


def test_a_target_module_the_backbone_lacks_fails_validation(tmp_path):
    # the mini backbone (a package's folder: its config.json)
    path = _edited(tmp_path / "a", ROOT / "tests/data/tiny_config/tiny.yaml",
                   lambda c: c["backbone"].update(target_modules=["query", "vlaue"]))
    with pytest.raises(ConfigError) as e:
        load_table(path, "mini")
    assert str(e.value) == (f"{path}: backbone.target_modules: 'vlaue' matches no nn.Linear of backbone "
                            "'all-MiniLM-L6-v2' (config.json); its linear modules are named: classifier, dense, key, query, value")

    # a paper backbone (config/architectures/roberta-base.json), a method's own target_modules
    path = _edited(tmp_path / "b", ROOT / "config/glue_base.yaml",
                   lambda c: c["methods"]["lora"].update(target_modules=["q_proj", "v_proj"]))
    with pytest.raises(ConfigError, match=r"methods\.lora\.target_modules: 'q_proj' matches no nn\.Linear of backbone "
                                          r"'roberta-base' \(roberta-base\.json\); its linear modules are named: "
                                          r"dense, key, out_proj, query, value$"):
        load_table(path, "paper")

    # what `python -m harness validate` prints: one line, exit 2
    from harness.cli import main

    assert main(["validate", "--config", str(path)]) == 2


def test_a_backbone_without_a_config_on_this_machine_is_not_checked(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()  # a local copy not there yet: the job says so when it loads it
    path = _edited(tmp_path / "c", ROOT / "tests/data/tiny_config/tiny.yaml",
                   lambda c: c["backbone"].update(local_path=str(folder), target_modules=["anything"]))
    assert load_table(path, "mini")["backbone"]["target_modules"] == ["anything"]
    path = _edited(tmp_path / "d", ROOT / "tests/data/tiny_config/tiny.yaml",
                   lambda c: c["backbone"].update(local_path=None, hub_id="nobody/not-cached", target_modules=["x"]))
    assert load_table(path, "mini")["backbone"]["target_modules"] == ["x"]
