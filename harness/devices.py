"""Where a job runs: which GPU it takes on a shared machine, its precision and backend switches
(docs/gpu.md). Split out of the training loop so the loop reads as the loop."""
from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

from harness.config import JobSettings

# Where jobs sharing a machine take their GPUs (relative to the Snakemake work directory).
GPU_LOCK_DIR = ".snakemake/gpu-locks"


def gpu_ids() -> list[str]:
    """The GPUs jobs on this machine may take: ``FPB_GPU_IDS`` (a comma-separated list; tests give
    a fake one), else ``CUDA_VISIBLE_DEVICES``, else what ``nvidia-smi`` lists; none without it."""
    for var in ("FPB_GPU_IDS", "CUDA_VISIBLE_DEVICES"):
        if os.environ.get(var) is not None:
            return [x.strip() for x in os.environ[var].split(",") if x.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return []
    return [x.strip() for x in out.stdout.splitlines() if x.strip()] if out.returncode == 0 else []


_HELD_LOCKS: list = []  # open lock files: a GPU stays this process's until it exits


def claim_gpus(n: int, ids: list[str], lock_dir: Path, jobs_per_gpu: int = 1, *, poll: float = 2.0,
               timeout: float | None = None) -> list[str]:
    """Take ``n`` distinct GPUs of ``ids`` for this process: one free slot lock
    (``<lock_dir>/<host>.gpu<id>.slot<k>.lock``, ``fcntl.flock``) per GPU, ``jobs_per_gpu`` slots
    per GPU, filling every GPU's first slot before any second one. The locks are held until the
    process exits (a killed job frees its GPU at once: no stale locks). Waits while every slot is
    taken (more jobs started than slots). Returns the ids taken."""
    import fcntl

    if n > len(ids):
        raise RuntimeError(f"a job asks for {n} GPUs, this machine offers {len(ids)} ({','.join(ids) or 'none'})")
    lock_dir.mkdir(parents=True, exist_ok=True)
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())
    t0, said = time.monotonic(), False
    while True:
        got: list[tuple[str, object]] = []
        for slot in range(max(jobs_per_gpu, 1)):
            for gid in ids:
                if len(got) == n or any(g == gid for g, _ in got):
                    continue
                f = open(lock_dir / f"{host}.gpu{re.sub(r'[^A-Za-z0-9_.-]', '_', gid)}.slot{slot}.lock", "a+")
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    f.close()
                    continue
                got.append((gid, f))
        if len(got) == n:
            for _, f in got:
                f.seek(0)
                f.truncate()
                f.write(f"{os.getpid()}\n")
                f.flush()
            _HELD_LOCKS.extend(f for _, f in got)
            return [g for g, _ in got]
        for _, f in got:
            f.close()
        if timeout is not None and time.monotonic() - t0 > timeout:
            raise TimeoutError(f"no {n} free GPU slot(s) among {','.join(ids)} after {timeout:.0f} s ({lock_dir})")
        if not said:
            print(f"[train] every GPU slot under {lock_dir} is taken; waiting for one", file=sys.stderr)
            said = True
        time.sleep(poll * (0.5 + random.random()))  # jittered: two multi-GPU claims do not collide forever


def release_gpus() -> None:
    """Give back the GPUs this process took (tests; a job just exits)."""
    while _HELD_LOCKS:
        _HELD_LOCKS.pop().close()


def job_device(name: str) -> torch.device:
    """``auto``: a GPU when there is one, else the CPU. A job that asks for GPUs
    (``FPB_JOB_GPUS``, what the train rule's ``gpu`` resource says) on a machine with more GPUs
    than that takes its own (:func:`claim_gpus`; ``FPB_JOBS_PER_GPU`` jobs share one) and sees
    only them (``CUDA_VISIBLE_DEVICES``, set before CUDA starts). A SLURM job already sees only
    its own GPUs, so it takes them all without a lock."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # again: a job forked by harness.jobserver gets its client's env
    if name != "auto":
        return torch.device(name)
    n = int(os.environ.get("FPB_JOB_GPUS") or 0)
    if n > 0:
        ids = gpu_ids()
        if len(ids) > n:
            lock_dir = Path(os.environ.get("FPB_GPU_LOCK_DIR") or GPU_LOCK_DIR)
            taken = claim_gpus(n, ids, lock_dir, int(os.environ.get("FPB_JOBS_PER_GPU") or 1))
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(taken)
            print(f"[train] GPU {','.join(taken)} of {','.join(ids)} (slot lock under {lock_dir})", file=sys.stderr)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_precision(s: JobSettings, device: torch.device) -> str:
    """``bf16`` (autocast) or ``fp32``: ``auto`` is bf16 on a CUDA GPU that has it, else fp32."""
    if s.precision != "auto":
        return s.precision
    if device.type != "cuda":
        return "fp32"
    try:  # native bf16 only (Ampere and newer): emulated bf16 on a V100 is slower than fp32
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # an older torch has no emulation to exclude
        native = torch.cuda.is_bf16_supported()
    return "bf16" if native else "fp32"


def configure_backend(s: JobSettings, device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = bool(s.tf32)
        torch.backends.cudnn.allow_tf32 = bool(s.tf32)
        torch.backends.cudnn.benchmark = False  # benchmark picks kernels by timing: not reproducible
