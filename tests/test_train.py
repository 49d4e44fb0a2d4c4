"""The training loop: determinism, resume after kill -9, and a NaN that names the job."""
import json
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from dag import env, prep_dir, snakemake, snakemake_cmd, tiny_config
from harness.config import backbone_path, job_settings, load_table

JOB = "results/mini/tiny/lora/rt_polarity/seed0"


def four_epochs(tmp_path) -> Path:
    cfg_dir = tiny_config(tmp_path)
    import yaml

    cfg = yaml.safe_load((cfg_dir / "tiny.yaml").read_text())
    cfg["methods"]["lora"]["defaults"]["epochs"] = 4
    cfg["methods"] = {"lora": cfg["methods"]["lora"]}
    (cfg_dir / "tiny.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg_dir


def history(work: Path) -> list[float]:
    return [h["metric"] for h in json.loads((work / JOB / "train.json").read_text())["history"]]


@pytest.mark.slow
def test_same_seed_same_numbers_and_resume_after_kill(tmp_path):
    cfg_dir = four_epochs(tmp_path)
    runs = []
    for name in ("a", "b"):  # two uninterrupted runs of the same job
        out = snakemake(tmp_path / name, cfg_dir, f"{JOB}/train.json")
        assert out.returncode == 0, out.stderr[-3000:]
        runs.append(history(tmp_path / name))
    assert runs[0] == runs[1] and len(runs[0]) == 4

    work = tmp_path / "killed"  # prepare first, so the kill lands inside training
    prepared = snakemake(work, cfg_dir, prep_dir(cfg_dir, "tiny", "rt_polarity"))
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    ckpt = work / "checkpoints/mini/tiny/lora/rt_polarity/seed0.pt"
    proc = subprocess.Popen(snakemake_cmd(work, cfg_dir, f"{JOB}/train.json"), env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9 snakemake and the training job after epoch 1
    proc.wait()
    assert ckpt.exists() and not (work / JOB / "train.json").exists()
    assert snakemake(work, cfg_dir, f"{JOB}/train.json", extra=("--unlock",)).returncode == 0  # the killed run's lock
    out = snakemake(work, cfg_dir, f"{JOB}/train.json", extra=("--rerun-incomplete",))
    assert out.returncode == 0, out.stderr[-3000:]
    log = (work / "logs/mini/train/tiny/lora/rt_polarity/seed0.log").read_text()
    assert "resuming lora/rt_polarity/seed0 after epoch" in log
    profile = json.loads((work / JOB / "profile.json").read_text())
    assert profile["resumed_from_epoch"] >= 1
    assert history(work) == runs[0]  # bitwise: same floats as the uninterrupted run


def test_nan_loss_stops_the_job_naming_it(tmp_path):
    from harness.prepare import prepare
    from harness.train import TrainingDiverged, train

    cfg = load_table(tiny_config(tmp_path) / "tiny.yaml", "mini")
    cfg["data"] |= {"max_length": 16, "max_train": 64, "max_eval": 32}
    prepare(cfg, "dal_pleasantness", tmp_path / "data", backbone_path(cfg))
    s = replace(job_settings(cfg, "lora", "dal_pleasantness", 3), lr=1e30, lr_head=1e30, warmup_ratio=0.0)
    out = tmp_path / "job"
    with pytest.raises(TrainingDiverged, match=r"lora \(lora\) on dal_pleasantness, seed 3: loss became (nan|inf) at step \d+ \(epoch 1\)"):
        train(s, cfg, data_dir=tmp_path / "data", out_dir=out, checkpoint=tmp_path / "ck.pt", threads=1)
    assert not (out / "train.json").exists() and not (out / "adapter.safetensors").exists()
