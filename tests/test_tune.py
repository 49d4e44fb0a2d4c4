"""Tuning as a stage (harness/tune.py, rules/tune.smk): seeded random search on a validation' split
carved from the training data, resumable, its best values reaching the seeded runs' settings."""
import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from dag import ROOT, env, snakemake_cmd, tiny_config
from harness.config import (
    ConfigError,
    apply_tuned,
    backbone_path,
    job_settings,
    load_table,
    resolve_space,
    tune_spec,
    tuned_job_settings,
    validate_tuning,
)

FORA_TUNE = {"space": {"lr": {"low": 1e-2, "high": 1e-1, "log": True}, "hparams.r": {"choices": [8, 16]},
                       "hparams.alpha": {"same_as": "hparams.r"}}}


def tiny_cfg(tmp_path, tuning=None, fora_tune=FORA_TUNE, **edits):
    """The tiny table with a tuning block and FoRA's tune block (lr, rank; alpha = r)."""
    cfg_dir = tiny_config(tmp_path, **edits)
    path = cfg_dir / "tiny.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["tuning"] = tuning or {"trials": 2, "fraction": 0.25}
    if fora_tune is not None:
        cfg["methods"]["fora"]["tune"] = fora_tune
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg_dir


# ------------------------------------------------------------------------------ the config side
def test_tuning_is_off_unless_switched_on_and_fair_mode_tunes_every_method(tmp_path):
    cfg = load_table(tiny_cfg(tmp_path) / "tiny.yaml", "mini")
    assert tune_spec(cfg, "fora") is None and tune_spec(cfg, "lora") is None  # enabled defaults to false
    spec = tune_spec(cfg, "fora", switch=True)  # --config tune=on
    assert spec["trials"] == 2 and spec["fair"] is False and set(spec["space"]) == {"lr", "hparams.r", "hparams.alpha"}
    assert tune_spec(cfg, "lora", switch=True) is None  # no tune block, not fair: its configured values
    assert tune_spec(cfg, "fora", switch=True, trials=5)["trials"] == 5  # tune_trials=5

    fair = load_table(tiny_cfg(tmp_path / "f", tuning={"enabled": True, "trials": 3, "fair": True,
                                                        "space": {"lr": {"factor": [0.1, 10.0]}}}) / "tiny.yaml", "mini")
    assert tune_spec(fair, "lora")["trials"] == tune_spec(fair, "fora")["trials"] == 3  # one budget for all
    assert tune_spec(fair, "lora")["space"] == {"lr": {"factor": [0.1, 10.0]}}
    assert tune_spec(fair, "fora", switch=False) is None
    lora_lr = job_settings(fair, "lora", "rt_polarity", 0).lr  # factor: around each method's own lr
    assert resolve_space(fair, "lora", "rt_polarity", {"lr": {"factor": [0.1, 10.0]}})["lr"] == pytest.approx(
        {"low": lora_lr / 10, "high": lora_lr * 10, "log": True, "around": lora_lr})


def test_bad_tune_blocks_fail_before_any_job(tmp_path):
    with pytest.raises(ConfigError, match="tune"):  # the schema: epochs is not a tunable key
        load_table(tiny_cfg(tmp_path / "a", fora_tune={"space": {"epochs": {"low": 1, "high": 3}}}) / "tiny.yaml", "mini")
    cfg = load_table(tiny_cfg(tmp_path / "b", fora_tune={"space": {"hparams.alpha": {"same_as": "hparams.r"}}}) / "tiny.yaml", "mini")
    with pytest.raises(ConfigError, match="same_as"):
        validate_tuning(cfg, "tiny.yaml")
    cfg = load_table(tiny_cfg(tmp_path / "c", fora_tune={"space": {"hparams.r": {"choices": [8, 0]}}}) / "tiny.yaml", "mini")
    with pytest.raises(ConfigError, match="fora"):  # r = 0 does not build a FoRA config
        validate_tuning(cfg, "tiny.yaml")


def test_tuned_values_replace_only_what_was_tuned(tmp_path):
    cfg = load_table(tiny_cfg(tmp_path) / "tiny.yaml", "mini")
    s = job_settings(cfg, "fora", "rt_polarity", 1)
    t = apply_tuned(s, {"lr": 0.05, "hparams.r": 8, "hparams.alpha": 8})
    assert (t.lr, t.hparams["r"], t.hparams["alpha"], t.hparams["n"]) == (0.05, 8, 8, 500)
    assert (t.lr_head, t.epochs, t.batch_size, t.seed) == (s.lr_head, s.epochs, s.batch_size, 1)
    record = {"table": "tiny", "scale": "mini", "variant": "fora", "task": "rt_polarity",
              "best": {"params": {"lr": 0.05, "hparams.r": 8, "hparams.alpha": 8}}}
    assert tuned_job_settings(cfg, "fora", "rt_polarity", 1, record) == t
    with pytest.raises(ConfigError, match="not for this job"):
        tuned_job_settings(cfg, "fora", "dal_pair", 1, record)


def test_draws_are_seeded_and_a_larger_budget_extends_a_smaller_one():
    from harness.tune import draw_settings

    space = {"lr": {"low": 1e-3, "high": 1e-1, "log": True}, "hparams.r": {"choices": [8, 16, 32]},
             "hparams.alpha": {"same_as": "hparams.r"}}
    four = draw_settings(space, 4, seed=0)
    assert draw_settings(space, 2, seed=0) == four[:2] and draw_settings(space, 4, seed=0) == four
    assert draw_settings(space, 4, seed=1) != four
    assert len({p["lr"] for p in four}) == 4
    for p in four:
        assert 1e-3 <= p["lr"] <= 1e-1 and p["hparams.r"] in (8, 16, 32) and p["hparams.alpha"] == p["hparams.r"]


# ------------------------------------------------------------------------------ the carved split
@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The tiny table's rt_polarity, prepared as the prep rule does, and its carved tuning folder."""
    from harness.prepare import prepare
    from harness.tune import prepare_tuning_data

    tmp = tmp_path_factory.mktemp("tune")
    cfg = load_table(tiny_cfg(tmp) / "tiny.yaml", "mini")
    prepare(cfg, "rt_polarity", tmp / "prep", backbone_path(cfg), seed=0)
    meta = prepare_tuning_data(tmp / "prep", tmp / "prep.tune", fraction=0.25, seed=0)
    return cfg, tmp, meta


def test_carved_validation_comes_from_train_and_never_overlaps(prepared):
    from harness.prepare import load_prepared

    _, tmp, meta = prepared
    full, full_meta = load_prepared(tmp / "prep")
    carved, carved_meta = load_prepared(tmp / "prep.tune")
    split = carved_meta["tuning_split"]
    rows = np.asarray(split["validation_rows"])
    n = len(full["train"])
    assert (split["fraction"], split["seed"]) == (0.25, 0)
    assert len(carved["train"]) + len(carved["validation"]) == n and len(carved["validation"]) == len(rows) == 24
    assert len(set(rows.tolist())) == len(rows) and rows.max() < n  # row numbers of the prepared TRAIN split
    train_rows = np.setdiff1d(np.arange(n), rows)
    for i, r in enumerate(rows):  # validation' is exactly those training rows
        assert carved["validation"][i]["input_ids"] == full["train"][int(r)]["input_ids"]
    for i in (0, len(train_rows) - 1):
        assert carved["train"][i]["input_ids"] == full["train"][int(train_rows[i])]["input_ids"]
    # stratified: validation' keeps the class shares of train
    y_full = np.asarray(full["train"]["labels"])
    y_val = np.asarray(carved["validation"]["labels"])
    assert abs(y_val.mean() - y_full.mean()) < 0.05
    # nothing of the split the table reports: its examples are not what validation' holds
    assert full_meta["n_eval"] == 64 and carved_meta["n_eval"] == 24
    assert meta["n_train"] == n - 24


def test_tuning_refuses_the_reported_split(prepared):
    from harness.tune import run_tuning

    cfg, tmp, _ = prepared
    with pytest.raises(ConfigError, match="not a carved tuning folder"):
        run_tuning(cfg, "fora", "rt_polarity", data_dir=tmp / "prep", storage=tmp / "x.db", out=tmp / "x.json")


def test_resume_runs_only_the_missing_trials_and_keeps_the_best(prepared, monkeypatch):
    """Trials are stored as they finish; a killed study resumes with the missing ones, and a larger
    budget reuses the finished ones (fake training: score = -|log10 lr + 1.5|)."""
    import harness.train
    from harness.tune import run_tuning

    cfg, tmp, _ = prepared
    calls = []

    def fake_train(s, cfg, *, out_dir, checkpoint, **kw):
        calls.append(s.lr)
        if len(calls) == 2 and crash:
            raise KeyboardInterrupt  # killed during the second trial
        return {"best_metric": -abs(np.log10(s.lr) + 1.5), "best_epoch": 1, "history": [{"metric": 0.0}]}

    monkeypatch.setattr(harness.train, "train", fake_train)
    db, out = tmp / "r.db", tmp / "r.json"
    crash = True
    with pytest.raises(KeyboardInterrupt):
        run_tuning(cfg, "fora", "rt_polarity", data_dir=tmp / "prep.tune", storage=db, out=out, trials=3)
    assert len(calls) == 2 and not out.exists()
    crash, calls[:] = False, []
    rec = run_tuning(cfg, "fora", "rt_polarity", data_dir=tmp / "prep.tune", storage=db, out=out, trials=3)
    assert len(calls) == 2  # trial 1 was stored; trials 2 and 3 run now
    calls.clear()
    rec5 = run_tuning(cfg, "fora", "rt_polarity", data_dir=tmp / "prep.tune", storage=db, out=out, trials=5)
    assert len(calls) == 2 and [t["params"] for t in rec5["trials"][:3]] == [t["params"] for t in rec["trials"]]
    best = max(rec5["trials"], key=lambda t: t["value"])
    assert rec5["best"]["params"] == best["params"] and rec5["budget"]["trials"] == rec5["budget"]["completed"] == 5
    assert rec5["objective"]["n_validation"] == 24 and rec5["default"]["lr"] == job_settings(cfg, "fora", "rt_polarity", 0).lr
    calls.clear()  # another backbone.local_path is another model: its study reuses no trial (issue 17)
    other = {**cfg, "backbone": {**cfg["backbone"], "local_path": str(tmp / "other_model")}}
    run_tuning(other, "fora", "rt_polarity", data_dir=tmp / "prep.tune", storage=db, out=tmp / "o.json", trials=3)
    assert len(calls) == 3


# ------------------------------------------------------------------------------ the DAG
def planned(tmp_path, cfg_dir, *words):
    cmd = snakemake_cmd(tmp_path / "work", cfg_dir, "tables/tiny.csv", extra=("-n",)) + list(words)
    out = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\S+)\s+(\d+)\s*$", out.stdout, re.M)}


@pytest.mark.slow  # two dry runs: minutes on a busy 2-core machine
def test_the_switch_adds_the_tuning_stage_to_the_dag(tmp_path):
    cfg_dir = tiny_cfg(tmp_path)
    off = planned(tmp_path, cfg_dir)
    assert "tune" not in off and "prep_tune" not in off  # the default run is unchanged
    on = planned(tmp_path, cfg_dir, "tune=on")
    assert on["tune"] == 3 and on["prep_tune"] == 3  # FoRA x 3 tasks (LoRA has no tune block)
    assert on["train"] == off["train"]


@pytest.mark.slow  # one dry run
def test_tune_jobs_claim_their_gpus_like_train_jobs(tmp_path):
    """Each tune job passes its `gpu` resource as FPB_JOB_GPUS (harness.devices.job_device), as train
    does: without it concurrent tuning jobs all land on cuda:0."""
    cmd = snakemake_cmd(tmp_path / "work", tiny_cfg(tmp_path), "tables/tiny.csv", extra=("-n", "-p")) + ["tune=on"]
    out = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    for kind in ("-m harness tune ", "-m harness jobserver train "):
        shells = [line.strip().removeprefix("Shell command: ") for line in lines if kind in line]
        assert shells and all(re.match(r"FPB_JOB_GPUS=0 ", line) for line in shells), (kind, shells[:2])


@pytest.mark.slow
def test_tune_stage_end_to_end(tmp_path):
    """prep -> prep_tune -> tune (2 trials) -> train --tuned: the best values are the job's settings and
    train.json / eval.json say the cell was tuned, with its budget."""
    cfg_dir = tiny_cfg(tmp_path, tasks=["rt_polarity"], seeds=[0],
                       data={"data_dir": None, "max_length": 32, "max_train": 48, "max_eval": 32})
    cfg = yaml.safe_load((cfg_dir / "tiny.yaml").read_text())
    cfg["methods"]["fora"]["defaults"]["epochs"] = 1
    del cfg["methods"]["lora"]
    (cfg_dir / "tiny.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    work = tmp_path / "work"
    # as a user types it: the mini profile's scale survives a --config on the command line
    cmd = [sys.executable, "-m", "snakemake", "tables/tiny.csv", "-s", str(ROOT / "Snakefile"), "--directory", str(work),
           "--cores", "2", "--profile", str(ROOT / "profiles" / "mini"), "--config", f"config_dir={cfg_dir}", "tune=on"]
    out = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-4000:]
    rec = json.loads((work / "tuning/mini/tiny/fora/rt_polarity.json").read_text())
    assert rec["budget"]["trials"] == rec["budget"]["completed"] == 2 and len(rec["trials"]) == 2
    n_val = rec["objective"]["n_validation"]  # 25 % of each class of the 48 training examples
    assert 11 <= n_val <= 13 and rec["objective"]["n_train"] + n_val == 48
    assert (work / "tuning/mini/tiny/fora/rt_polarity.db").is_file()
    best = rec["best"]["params"]
    job = json.loads((work / "results/mini/tiny/fora/rt_polarity/seed0/train.json").read_text())
    assert job["settings"]["lr"] == best["lr"] and job["settings"]["hparams"]["r"] == best["hparams.r"]
    assert job["settings"]["hparams"]["alpha"] == best["hparams.r"]
    assert job["tuned"]["params"] == best and job["tuned"]["trials"] == 2
    evaluation = json.loads((work / "results/mini/tiny/fora/rt_polarity/seed0/eval.json").read_text())
    assert evaluation["tuned"]["params"] == best
    row = next(r for r in csv.DictReader(open(work / "tables/tiny.csv")) if r["method"] == "fora")
    tuned = row["rt_polarity_tuned"]  # the tuned values (in the record's order) and the budget
    assert f"lr={best['lr']:.3g}" in tuned and f"hparams.r={best['hparams.r']}" in tuned and "(2/2 trials" in tuned
