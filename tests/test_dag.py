"""The DAG end to end: dry-run job counts at paper scale, and a real mini run that writes the table."""
import csv
import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from dag import ROOT, env, snakemake, tiny_config
from harness.config import load_table


def planned_jobs(target: str, tmp_path) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                          "-n", "--cores", "1", target], env=env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\S+)\s+(\d+)\s*$", out.stdout, re.M)}


# table -> (methods, tasks, seeds) as the papers set them: FoRA Table 1 + LFMA Tables 2-3 + FAA (11 variants),
# LFMA Table 1 (LFMA, FF, LoRA, FourierFT on 7 datasets), FoRA Table 4 (LP, FF, LoRA, FourierFT, FoRA on 6)
PAPER_PLANS = {"glue_base": (11, 6, 5), "glue_large": (11, 6, 5), "vit_lfma_base": (4, 7, 5), "vit_lfma_large": (4, 7, 5),
               "vit_fora_base": (5, 6, 5), "vit_fora_large": (5, 6, 5)}


@pytest.mark.parametrize("table", sorted(PAPER_PLANS))
def test_paper_dry_run_plans_methods_x_tasks_x_seeds(table, tmp_path):
    methods, tasks, seeds = PAPER_PLANS[table]
    cfg = load_table(ROOT / "config" / f"{table}.yaml")
    assert (len(cfg["methods"]), len(cfg["tasks"]), len(cfg["seeds"])) == (methods, tasks, seeds)
    jobs = planned_jobs(f"tables/{table}.csv", tmp_path)
    n = methods * tasks * seeds
    assert jobs["train"] == n and jobs["prep"] == tasks and jobs["table"] == 1
    assert "eval" not in jobs  # each train job scores itself (eval.json is a train output)


def test_each_table_preps_its_data_with_its_own_sources(tmp_path):
    """Issue 17: in a copy of config/ where every paper table names its own backbone.local_path and
    data.data_dir, every train job's prepared data is made by a prep job run with that table's config
    (the Snakefile's own mapping, read from the dry run's shell commands): no table's data is
    tokenized with another table's model or read from another table's folder."""
    cfg_dir = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg_dir)
    targets, own = [], {}
    for path in sorted(cfg_dir.glob("*.yaml")):
        if path.name == "schema.yaml":
            continue
        raw = yaml.safe_load(path.read_text())
        raw["backbone"]["local_path"] = str(tmp_path / "models" / path.stem)
        raw["data"]["data_dir"] = str(tmp_path / "data" / path.stem)
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        cfg = load_table(path)
        own[str(path)] = path.stem
        method, seed = next(iter(cfg["methods"])), cfg["seeds"][0]
        targets += [f"results/paper/{path.stem}/{method}/{task}/seed{seed}/train.json" for task in cfg["tasks"]]
    out = subprocess.run([sys.executable, "-m", "snakemake", *targets, "-s", str(ROOT / "Snakefile"), "--directory",
                          str(tmp_path / "work"), "-n", "-p", "--cores", "1", "--config", f"config_dir={cfg_dir}"],
                         env=env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    prep = {data: cfg for cfg, data in re.findall(r"harness prep --config (\S+) .*--out (\S+)", out.stdout)}
    train = re.findall(r"harness jobserver train --config (\S+) .*--data (\S+)", out.stdout)
    assert len(train) == len(targets) and len(prep) == len(targets), (len(train), len(prep), len(targets))
    for cfg_path, data in train:
        assert prep[data] == cfg_path, f"{own[cfg_path]}'s {data} is prepared with {prep[data]}"


def test_bad_config_stops_the_dag_before_any_job(tmp_path):
    cfg_dir = tiny_config(tmp_path, seeds=2)
    out = snakemake(tmp_path / "work", cfg_dir, "tables/tiny.csv")
    assert out.returncode != 0
    assert "config error" in out.stderr and "seeds: 2 is not of type 'array'" in out.stderr
    assert not (tmp_path / "work" / "data").exists()


@pytest.mark.slow
def test_mini_dag_writes_the_table(tmp_path):
    work, cfg_dir = tmp_path / "work", tiny_config(tmp_path)
    out = snakemake(work, cfg_dir, "estimates/tiny.txt")  # the bill, before the table runs
    assert out.returncode == 0, out.stderr[-4000:]
    assert "estimated cost of tables/tiny.csv (mini scale)" in out.stdout and "12 jobs" in out.stdout
    estimated = json.loads((work / "estimates" / "tiny.json").read_text())["job_hours"] * 3600
    out = snakemake(work, cfg_dir, "tables/tiny.csv", "tables/efficiency_tiny.csv")
    assert out.returncode == 0, out.stderr[-4000:]
    rows = {r["method"]: r for r in csv.DictReader(open(work / "tables" / "tiny.csv"))}
    assert list(rows) == ["lora", "fora", "baseline"]
    for method in ("lora", "fora"):
        r = rows[method]
        for task in ("rt_polarity", "dal_pair", "dal_pleasantness"):
            assert r[f"{task}_seeds"] == "2/2"
            float(r[task]), float(r[f"{task}_spread"])  # numbers in every cell
        # the cell is the median of the two seeds' best epochs, recomputed here from eval.json
        vals = [json.loads((work / f"results/mini/tiny/{method}/rt_polarity/seed{s}/eval.json").read_text())["metric"] for s in (0, 1)]
        assert float(r["rt_polarity"]) == pytest.approx(sum(vals) / 2, abs=0.006)
        assert r["scale"] == "mini" and r["rt_polarity_paper"] == ""
    assert int(rows["fora"]["trainable_params"]) == 6 * 2 * 2 * 500  # 6 layers x (q, v) x (A, B) x n
    meta = json.loads((work / "tables" / "tiny.meta.json").read_text())
    assert meta["scale"] == "mini" and meta["tasks"]["rt_polarity"]["n_train"] == 96
    eff = list(csv.DictReader(open(work / "tables" / "efficiency_tiny.csv")))
    assert len(eff) == 6 and all(float(e["step_seconds_median"]) > 0 and float(e["peak_memory_mb"]) > 0 for e in eff)
    assert (work / "figures" / "tiny.png").stat().st_size > 1000 and (work / "figures" / "tiny.pdf").exists()
    measured = sum(json.loads(p.read_text())["wall_seconds"] for p in work.glob("results/mini/tiny/*/*/seed*/profile.json"))
    assert 0.5 <= estimated / measured <= 2.0, (estimated, measured)
