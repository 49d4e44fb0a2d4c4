"""Results follow their config (issue 19 §1), through real `snakemake` calls on a tiny table: a
changed setting reruns exactly the jobs it reaches (Snakemake's params trigger on each rule's
`identity`, rules/common.smk), an edited comment reruns nothing, and the printed remedy for a
deleted result (`--forcerun <eval.json>`) rebuilds it."""
from __future__ import annotations

import re

import pytest
import yaml

from dag import snakemake, tiny_config

TABLE = "tables/tiny.csv"


def _small(tmp_path):
    """The tiny table cut to one task, one seed, one epoch and 32 examples: two train jobs."""
    cfg_dir = tiny_config(tmp_path, tasks=["dal_pleasantness"], seeds=[0])
    path = cfg_dir / "tiny.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["data"] |= {"max_train": 32, "max_eval": 32}
    for m in cfg["methods"].values():
        m["defaults"]["epochs"] = 1
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg_dir, path


def planned(work, cfg_dir, *extra) -> dict[str, list[str]]:
    """rule -> the outputs a dry run would make (the first output of each planned job)."""
    out = snakemake(work, cfg_dir, TABLE, extra=("-n", *extra))
    assert out.returncode == 0, out.stderr[-3000:]
    jobs: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule )", out.stdout):
        head = re.match(r"(?:local)?rule (\w+):", block)
        output = re.search(r"\n\s+output: ([^,\n]+)", block)
        if head and output:
            jobs.setdefault(head.group(1), []).append(output.group(1).strip())
    return jobs


@pytest.mark.slow
def test_a_changed_setting_reruns_its_jobs_only_and_a_comment_nothing(tmp_path):
    work = tmp_path / "work"
    cfg_dir, path = _small(tmp_path)
    out = snakemake(work, cfg_dir, TABLE)
    assert out.returncode == 0, out.stderr[-4000:]
    assert planned(work, cfg_dir) == {}

    path.write_text(path.read_text() + "# a comment changes no setting\n")
    assert planned(work, cfg_dir) == {}

    cfg = yaml.safe_load(path.read_text())
    cfg["methods"]["lora"]["defaults"]["lr"] = 1.0e-3
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    jobs = planned(work, cfg_dir)
    assert jobs.get("train") == ["results/mini/tiny/lora/dal_pleasantness/seed0/train.json"], jobs
    assert set(jobs) == {"train", "profile", "table"}, jobs  # no prep, no fora job

    cfg["data"]["data_dir"] = str(tmp_path)  # where data comes from: the prep reruns (and so every job)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    jobs = planned(work, cfg_dir)
    assert "prep" in jobs and len(jobs["train"]) == 2, jobs


@pytest.mark.slow
def test_a_deleted_result_is_rebuilt_by_the_printed_forcerun(tmp_path):
    work = tmp_path / "work"
    cfg_dir, _ = _small(tmp_path)
    assert snakemake(work, cfg_dir, TABLE).returncode == 0
    run = work / "results/mini/tiny/fora/dal_pleasantness/seed0"
    for f in run.iterdir():
        f.unlink()
    assert planned(work, cfg_dir) == {}  # Snakemake does not rebuild a deleted intermediate by itself
    jobs = planned(work, cfg_dir, "--forcerun", f"{run.relative_to(work)}/eval.json")
    assert jobs.get("train") == [f"{run.relative_to(work)}/train.json"] and "table" in jobs, jobs
