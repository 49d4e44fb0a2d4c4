"""The SLURM profile against a real single-node SLURM cluster on localhost.

Brings up munged + slurmctld + slurmd (tests/slurm_cluster.py), runs the mini-scale DAG of a
small table with ``--profile profiles/slurm`` and checks that

* the table CSV exists with one row per method and a number in every task cell;
* every prep and train job went through SLURM: one COMPLETED SLURM job per job, named after the
  run and commented with its rule and wildcards, and its SLURM log under .snakemake/slurm_logs;
* the localrules (eval, table) did not;
* nothing of the cluster is left running afterwards.

Skipped, with the reason, when slurm or munge is not installed
(Debian: apt-get install slurmctld slurmd slurm-client munge).
"""
from __future__ import annotations

import csv
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from slurm_cluster import SlurmCluster, missing_binaries

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny_config"
SNAKEMAKE_TIMEOUT = 600  # seconds; a hung status check ignores SIGTERM, so the group gets SIGKILL
METHODS = ["lora"]
TASKS = ["rt_polarity"]
SEEDS = [0]


def _small_config(dest: Path) -> Path:
    """tests/data/tiny_config/tiny.yaml cut to METHODS x TASKS x SEEDS, 1 epoch (same format)."""
    dest.mkdir(parents=True)
    cfg = yaml.safe_load((TINY / "tiny.yaml").read_text())
    cfg["tasks"] = TASKS
    cfg["seeds"] = SEEDS
    cfg["methods"] = {m: cfg["methods"][m] for m in METHODS}
    for m in cfg["methods"].values():
        m["defaults"]["epochs"] = 1
    (dest / "tiny.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (dest / "mini.yaml").write_text((TINY / "mini.yaml").read_text())
    return dest


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


@pytest.mark.slow
def test_mini_dag_through_slurm(tmp_path):
    missing = missing_binaries()
    if missing:
        reason = (f"SLURM test skipped: missing {', '.join(missing)} "
                  "(apt-get install slurmctld slurmd slurm-client munge)")
        print(reason)
        pytest.skip(reason)

    t0 = time.monotonic()
    config_dir = _small_config(tmp_path / "config")
    workdir = tmp_path / "work"
    workdir.mkdir()
    # short path: the munge socket must fit in a unix socket name
    import tempfile
    cluster_root = Path(tempfile.mkdtemp(prefix="fpb-slurm-"))
    cluster = SlurmCluster(cluster_root)
    try:
        with cluster:
            t_up = time.monotonic() - t0
            env = cluster.env()
            venv_bin = str(Path(sys.executable).parent)
            env["PATH"] = os.pathsep.join([venv_bin, env["PATH"]])
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
            env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
            log = tmp_path / "snakemake.log"
            argv = [
                sys.executable, "-m", "snakemake", "tables/tiny.csv",
                "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
                "--profile", str(ROOT / "profiles" / "slurm"),
                "--jobs", "2",
                # what a user does for their cluster: partition (and account) on the command line
                "--default-resources", f"slurm_partition={cluster.partition}",
                # a local test cluster: poll fast, keep the SLURM logs to check them below
                "--slurm-init-seconds-before-status-checks", "2",
                "--seconds-between-status-checks", "2",
                "--latency-wait", "5",
                "--slurm-keep-successful-logs",
                "--config", "scale=mini", f"config_dir={config_dir}",
            ]
            rc = _run_snakemake(argv, env, workdir, log, SNAKEMAKE_TIMEOUT)
            t_run = time.monotonic() - t0 - t_up
            text = log.read_text(errors="replace")
            assert rc == 0, f"snakemake exited {rc}; log tail:\n" + "\n".join(text.splitlines()[-80:]) \
                + f"\n{cluster.diagnostics()}"

            # the table: one row per method (plus the table's baseline row), a number in every task cell
            table = workdir / "tables" / "tiny.csv"
            assert table.exists(), f"no {table}"
            print(f"\n{table.name}:\n{table.read_text()}")
            with open(table, newline="") as f:
                rows = {r["method"]: r for r in csv.DictReader(f)}
            assert set(METHODS) <= set(rows), f"expected a row per method {METHODS}, got {list(rows)}"
            for m in METHODS:
                for task in TASKS:
                    cell = rows[m].get(task)
                    assert cell not in (None, ""), f"no value for {m} / {task}: {rows[m]}"
                    assert math.isfinite(float(cell)), (m, task, cell)  # float() raises if not a number
                    assert rows[m][f"{task}_seeds"] == f"{len(SEEDS)}/{len(SEEDS)}", rows[m]

            # every prep and train job was a COMPLETED SLURM job (slurmctld keeps them MinJobAge s)
            jobs = cluster.jobs()
            by_rule: dict[str, list[dict]] = {}
            for j in jobs:
                m = re.match(r"rule_([a-z_]+)", j["comment"])
                by_rule.setdefault(m.group(1) if m else "?", []).append(j)
            n_train = len(METHODS) * len(TASKS) * len(SEEDS)
            print(f"SLURM jobs: {[(j['id'], j['comment'], j['state']) for j in jobs]}")
            assert len(by_rule.get("train", [])) == n_train, by_rule
            assert len(by_rule.get("prep", [])) == len(TASKS), by_rule
            assert set(by_rule) == {"train", "prep"}, f"only prep/train may go to SLURM: {sorted(by_rule)}"
            assert all(j["state"] == "COMPLETED" for j in jobs), jobs
            assert len({j["name"] for j in jobs}) == 1  # one snakemake run

            # the plugin's SLURM logs: one per job, named by SLURM job id, written by the job itself
            slurm_logs = list((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
            ids = {p.stem for p in slurm_logs if "rule_train" in p.parts}
            assert ids == {j["id"] for j in by_rule["train"]}, (ids, by_rule["train"])
            for p in slurm_logs:
                assert "Finished job" in p.read_text(errors="replace") or "localrule" in p.read_text(errors="replace") \
                    or "rule" in p.read_text(errors="replace"), p
            n_eval = len(re.findall(r"localrule eval:", text))
            assert n_eval == n_train, f"eval should run locally ({n_eval} localrule eval in the log)"

            t_total = time.monotonic() - t0
            print(f"timings: cluster up {t_up:.1f}s, snakemake {t_run:.1f}s, total {t_total:.1f}s")
    finally:
        cluster.stop()  # idempotent; the with-block already stopped it unless setup failed
        left = cluster.cluster_pids()
        import shutil
        shutil.rmtree(cluster_root, ignore_errors=True)
    assert not left, f"processes of the test cluster still running: {left}"
