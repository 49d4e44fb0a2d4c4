"""Peak memory of the same train job started directly and forked by the job server (issue 19 §6).

Prepares one mini task of ``config/glue_base.yaml`` in a temporary folder, then runs the same train
job (``python -m harness jobserver train ...``, as the train rule does) alternately with
``FPB_JOB_SERVER=0`` (its own process) and through a warm server, ``--rounds`` times per method,
and prints each run's ``peak_memory_mb`` (profile.json; :mod:`harness.core.memory`) and the ratio
of the medians.

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python benchmarks/jobserver_memory.py [--rounds 3] [--methods lora fourierft]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "glue_base.yaml"


def harness(*argv: str, cwd: Path, env: dict) -> None:
    r = subprocess.run([sys.executable, "-m", "harness", *argv], cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{' '.join(argv[:2])} failed:\n{r.stderr[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--methods", nargs="+", default=["lora", "fourierft"])
    ap.add_argument("--task", default="dal_pleasantness")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fpb-jobserver-memory-"))
    (tmp / "tmp").mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp / "tmp"), FPB_JOB_SERVER_IDLE="300",
               TOKENIZERS_PARALLELISM="false")
    env.pop("SLURM_JOB_ID", None)
    harness("prep", "--config", str(CONFIG), "--scale", "mini", "--task", args.task, "--out", "data", cwd=tmp, env=env)
    print(f"config={CONFIG.name} scale=mini task={args.task} threads=1 rounds={args.rounds} (alternating)")
    print("| method | direct MB (runs) | job server MB (runs) | server / direct (medians) |\n|---|---|---|---:|")
    for method in args.methods:
        peaks: dict[str, list[float]] = {"direct": [], "server": []}
        for i in range(args.rounds):
            for mode in peaks:
                out = f"{method}-{mode}{i}"
                harness("jobserver", "train", "--config", str(CONFIG), "--scale", "mini", "--method", method,
                        "--task", args.task, "--seed", "0", "--data", "data", "--out", out,
                        "--checkpoint", f"{out}.pt", "--threads", "1", cwd=tmp,
                        env=dict(env, FPB_JOB_SERVER="0") if mode == "direct" else env)
                profile = json.loads((tmp / out / "profile.json").read_text())
                peaks[mode].append(profile["peak_memory_mb"])
        runs = {m: ", ".join(f"{v:.1f}" for v in vs) for m, vs in peaks.items()}
        ratio = statistics.median(peaks["server"]) / statistics.median(peaks["direct"])
        print(f"| {method} | {runs['direct']} | {runs['server']} | {ratio:.3f} |", flush=True)
    print(f"peak_memory_kind: {profile['peak_memory_kind']}")


if __name__ == "__main__":
    main()
