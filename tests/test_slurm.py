"""profiles/slurm against a real single-node SLURM cluster on localhost.

``test_mini_dag_through_slurm`` brings up munged + slurmctld + slurmd (tests/slurm_cluster.py,
with 2 fake GPUs), runs the mini-scale DAG of a small table (2 methods x 2 tasks x 1 seed) with
``--profile profiles/slurm`` and checks that

* the table CSV exists with a row per method and a number in every task cell;
* every prep and train job was a COMPLETED SLURM job of this run (slurmctld's job record: the
  plugin's job name and its ``rule_<rule>_wildcards_...`` comment), with its SLURM log under
  .snakemake/slurm_logs named by the SLURM job id, in which the job's snakemake ran the rule;
* each of them asked SLURM for the table config's ``resources:`` block: ``gpus`` -> ``--gpus``
  (TresPerJob=gres:gpu:N), ``mem_mb`` -> ``--mem``, ``runtime`` -> ``-t``, ``cpus_per_task``;
* the localrules (table) ran locally, not through SLURM; each train job wrote its eval.json and
  deleted its checkpoint;
* nothing of the cluster is left running afterwards.

It is skipped, saying why, when slurm or munge is not installed (Debian: ``apt-get install
slurmctld slurmd slurm-client munge``). ``test_profile_dry_run`` needs no SLURM: the profile's keys
are accepted by Snakemake and the plugin, and partition/account given on the command line reach
the jobs.
"""
from __future__ import annotations

import csv
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from slurm_cluster import SlurmCluster, missing_binaries

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny_config"
PROFILE = ROOT / "profiles" / "slurm"
SNAKEMAKE_TIMEOUT = 600  # seconds; a hung status check ignores SIGTERM, so the group gets SIGKILL
METHODS = ["lora", "fora"]
TASKS = ["rt_polarity", "dal_pleasantness"]  # a classification and a regression task
SEEDS = [0]
# What the jobs ask SLURM for (distinct values, to find them in `scontrol show job`). The test
# cluster has 2 fake GPUs, so both train jobs of a wave run at once.
RESOURCES = {
    "train": {"gpus": 1, "mem_mb": 1500, "runtime": 9, "cpus_per_task": 1},
    "prep": {"mem_mb": 1200, "runtime": 7, "cpus_per_task": 1},
}


def _small_config(dest: Path) -> Path:
    """tests/data/tiny_config/tiny.yaml cut to METHODS x TASKS x SEEDS, 1 epoch (same format)."""
    dest.mkdir(parents=True)
    cfg = yaml.safe_load((TINY / "tiny.yaml").read_text())
    cfg["tasks"] = TASKS
    cfg["seeds"] = SEEDS
    cfg["methods"] = {m: cfg["methods"][m] for m in METHODS}
    for m in cfg["methods"].values():
        m["defaults"]["epochs"] = 1
    cfg["resources"] = RESOURCES
    (dest / "tiny.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    shutil.copytree(TINY / "mini", dest / "mini")
    return dest


def _snakemake_env(base: dict) -> dict:
    env = dict(base)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # `python -m harness` must import from the repo although the workdir is elsewhere
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def _run_snakemake(argv: list[str], env: dict, cwd: Path, log: Path, timeout: float) -> int:
    """Run snakemake in its own process group; on timeout SIGKILL the whole group."""
    with open(log, "w") as out:
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
            pytest.fail(f"snakemake did not finish in {timeout}s (killed); log tail:\n{tail}")
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _check_table(table: Path) -> None:
    """A row per method (the table adds a baseline row), a number in every task cell."""
    assert table.exists(), f"no {table}"
    print(f"\n{table}:\n{table.read_text()}")
    with open(table, newline="") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert set(METHODS) <= set(rows), f"expected a row per method {METHODS}, got {list(rows)}"
    for m in METHODS:
        for task in TASKS:
            cell = rows[m].get(task)
            assert cell not in (None, ""), f"no value for {m} / {task}: {rows[m]}"
            assert math.isfinite(float(cell)), (m, task, cell)  # float() raises if not a number
            assert rows[m][f"{task}_seeds"] == f"{len(SEEDS)}/{len(SEEDS)}", rows[m]


def _check_slurm_jobs(cluster: SlurmCluster, workdir: Path, log_text: str) -> None:
    jobs = cluster.jobs()  # slurmctld keeps finished jobs for MinJobAge (600 s)
    print(f"SLURM jobs: {[(j['id'], j['comment'], j['state']) for j in jobs]}")
    by_rule: dict[str, list[dict]] = {}
    for j in jobs:
        m = re.match(r"rule_(\w+?)_wildcards", j["comment"])  # the plugin's job comment
        by_rule.setdefault(m.group(1) if m else j["comment"], []).append(j)
    n_train = len(METHODS) * len(TASKS) * len(SEEDS)
    assert sorted(by_rule) == ["prep", "train"], f"only prep and train go to SLURM: {by_rule}"
    assert len(by_rule["train"]) == n_train, by_rule["train"]
    assert len(by_rule["prep"]) == len(TASKS), by_rule["prep"]
    assert all(j["state"] == "COMPLETED" for j in jobs), jobs
    assert len({j["name"] for j in jobs}) == 1, "one snakemake run submitted them all"

    # each job asked for the table config's resources: block
    for rule, want in RESOURCES.items():
        for j in by_rule[rule]:
            info = cluster.job_info(j["id"])
            got = {k: info.get(k) for k in ("TresPerJob", "MinMemoryNode", "TimeLimit", "CPUs/Task")}
            assert got == {
                "TresPerJob": f"gres:gpu:{want['gpus']}" if want.get("gpus") else None,
                "MinMemoryNode": f"{want['mem_mb']}M",
                "TimeLimit": f"00:{want['runtime']:02d}:00",
                "CPUs/Task": str(want["cpus_per_task"]),
            }, (rule, j["id"], got)

    # the plugin's SLURM logs (sbatch --output ...%j.log): the job's snakemake ran the rule in there
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    for rule in RESOURCES:
        by_id = {p.stem: p for p in logs if p.parts[-3] == f"rule_{rule}"}
        assert set(by_id) == {j["id"] for j in by_rule[rule]}, (rule, logs)
        for p in by_id.values():
            assert f"Finished jobid: 0 (Rule: {rule})" in p.read_text(errors="replace"), p

    # the localrules ran in the main snakemake process; scoring is part of each train job
    assert len(re.findall(r"^localrule table:", log_text, re.M)) == 1
    assert not re.findall(r"^(local)?rule eval:", log_text, re.M)
    evals = sorted(workdir.glob("results/mini/tiny/*/*/seed*/eval.json"))
    assert len(evals) == n_train, evals
    assert not list(workdir.glob("checkpoints/**/*.pt")), "a finished train job deletes its checkpoint"


@pytest.mark.slow
def test_mini_dag_through_slurm(tmp_path):
    missing = missing_binaries()
    if missing:
        reason = (f"SLURM test skipped: missing {', '.join(missing)} "
                  "(Debian: apt-get install slurmctld slurmd slurm-client munge)")
        print(reason)
        pytest.skip(reason)

    t0 = time.monotonic()
    config_dir = _small_config(tmp_path / "config")
    workdir = tmp_path / "work"
    workdir.mkdir()
    cluster_root = Path(tempfile.mkdtemp(prefix="fpb-slurm-"))  # short: the munge socket path
    cluster = SlurmCluster(cluster_root, gpus=2)
    try:
        with cluster:
            t_up = time.monotonic() - t0
            log = tmp_path / "snakemake.log"
            argv = [
                sys.executable, "-m", "snakemake", "tables/tiny.csv",
                "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
                "--profile", str(PROFILE),
                "--jobs", "2",
                # what a user does for their cluster: partition (and account) on the command line
                "--default-resources", f"slurm_partition={cluster.partition}",
                # keep the SLURM logs to check them; a local disk needs no long latency-wait
                "--slurm-keep-successful-logs",
                "--latency-wait", "5",
                "--config", "scale=mini", f"config_dir={config_dir}",
            ]
            rc = _run_snakemake(argv, _snakemake_env(cluster.env()), workdir, log, SNAKEMAKE_TIMEOUT)
            t_run = time.monotonic() - t0 - t_up
            text = log.read_text(errors="replace")
            assert rc == 0, (f"snakemake exited {rc}; log tail:\n" + "\n".join(text.splitlines()[-80:])
                             + f"\n{cluster.diagnostics()}")
            _check_table(workdir / "tables" / "tiny.csv")
            _check_slurm_jobs(cluster, workdir, text)
            print(f"timings: cluster up {t_up:.1f}s, snakemake {t_run:.1f}s, "
                  f"total {time.monotonic() - t0:.1f}s")
    finally:
        cluster.stop()  # idempotent: the with-block already stopped it, unless setup failed
        left = cluster.cluster_pids()
        shutil.rmtree(cluster_root, ignore_errors=True)
    assert not left, f"processes of the test cluster still running: {left}"


@pytest.mark.slow
def test_profile_dry_run(tmp_path):
    """The profile parses (Snakemake + plugin settings) and --default-resources /
    --set-resources reach the jobs; no SLURM needed."""
    argv = [
        sys.executable, "-m", "snakemake", "tables/tiny.csv", "-n",
        "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
        "--profile", str(PROFILE),
        "--default-resources", "slurm_partition=cpu", "slurm_account=acct1",
        "--set-resources", "train:slurm_partition=gpu",
        "--config", "scale=mini", f"config_dir={TINY}",
    ]
    p = subprocess.run(argv, env=_snakemake_env(os.environ), cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    blocks = re.findall(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", out, re.M | re.S)
    res = {rule: re.search(r"resources: (.*)", body).group(1) for rule, body in blocks}
    assert {"prep", "train"} <= set(res), sorted(res)
    assert "slurm_partition=gpu" in res["train"] and "gpu=0" in res["train"], res["train"]
    assert "slurm_partition=cpu" in res["prep"], res["prep"]
    assert "slurm_account=acct1" in res["train"] and "slurm_account=acct1" in res["prep"], res
