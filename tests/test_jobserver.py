"""harness.jobserver: train jobs forked from a warm process (no imports per job).

Same numbers as a job started directly, the same exit codes and output, and a killed client
takes its job with it (as ``kill -9`` of Snakemake's process group must).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dag import ROOT, tiny_config


def env(tmp: Path, **extra) -> dict:
    e = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=str(ROOT),
             TMPDIR=str(tmp), FPB_JOB_SERVER_IDLE="30", TOKENIZERS_PARALLELISM="false")
    e.pop("SLURM_JOB_ID", None)
    return e | extra


def run(tmp: Path, *argv: str, cwd: Path, **extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", "jobserver", *argv], env=env(tmp, **extra), cwd=cwd,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from harness.config import backbone_path, load_table
    from harness.prepare import prepare

    tmp = tmp_path_factory.mktemp("js")
    cfg_dir = tiny_config(tmp)
    cfg = load_table(cfg_dir / "tiny.yaml", "mini")
    prepare(cfg, "dal_pleasantness", tmp / "data", backbone_path(cfg))
    sock = tmp / "sock"  # the server's socket lives in TMPDIR: this module gets its own server
    sock.mkdir()
    return tmp, cfg_dir / "tiny.yaml", sock


def train_args(cfg: Path, data: Path, out: str, seed: int = 1) -> list[str]:
    return ["train", "--config", str(cfg), "--scale", "mini", "--method", "lora", "--task", "dal_pleasantness",
            "--seed", str(seed), "--data", str(data), "--out", out, "--checkpoint", f"{out}.pt", "--threads", "1"]


@pytest.mark.slow
def test_a_job_through_the_warm_server_is_the_job_run_directly(prepared):
    tmp, cfg, sock = prepared
    direct = run(sock, *train_args(cfg, tmp / "data", "direct"), cwd=tmp, FPB_JOB_SERVER="0")
    assert direct.returncode == 0, direct.stderr[-3000:]
    warm = run(sock, *train_args(cfg, tmp / "data", "warm"), cwd=tmp)
    assert warm.returncode == 0, warm.stderr[-3000:]
    assert list(sock.glob("fpb-jobserver-*.sock")), "the job went through a server"
    a, b = (json.loads((tmp / d / "train.json").read_text()) for d in ("direct", "warm"))
    assert a["history"] == b["history"] or [h["metric"] for h in a["history"]] == [h["metric"] for h in b["history"]]
    assert [h["last_loss"] for h in a["history"]] == [h["last_loss"] for h in b["history"]]  # bitwise
    assert "epoch 1: pearson" in warm.stderr  # the job's stderr reaches the client's
    # the peak-memory column does not depend on the server (issue 19 §6): 612 vs 554 MB (ru_maxrss),
    # 384 vs 163 MB (over the start, imports counted in the direct job only) before; ~121 vs ~121 now
    mem = [json.loads((tmp / d / "profile.json").read_text()) for d in ("direct", "warm")]
    assert [m["peak_memory_kind"] for m in mem] == ["cpu_peak_rss_over_start"] * 2
    assert abs(mem[0]["peak_memory_mb"] - mem[1]["peak_memory_mb"]) <= 0.05 * mem[0]["peak_memory_mb"], mem
    t0 = time.monotonic()
    bad = run(sock, "validate", "--config", str(tmp / "missing.yaml"), cwd=tmp)  # warm: no imports
    assert bad.returncode == 2 and bad.stderr.strip() == f"error: config file {tmp / 'missing.yaml'} does not exist"
    assert time.monotonic() - t0 < 60


@pytest.mark.slow
def test_killing_the_client_kills_its_job(prepared):
    tmp, cfg, sock = prepared
    work = tmp / "killed"
    work.mkdir()
    log = open(work / "job.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "harness", "jobserver", *train_args(cfg, tmp / "data", "out", seed=2)],
                            env=env(sock), cwd=work, stdout=log, stderr=log, start_new_session=True)

    def in_work() -> list[int]:
        pids = []
        for p in Path("/proc").iterdir():
            try:
                if p.name.isdigit() and os.readlink(p / "cwd") == str(work):
                    pids.append(int(p.name))
            except OSError:
                pass
        return pids

    deadline = time.time() + 600
    while "epoch 1/" not in (work / "job.log").read_text() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, (work / "job.log").read_text()[-2000:]
    assert len(in_work()) >= 2, "the client and the job forked from the server"
    os.killpg(proc.pid, signal.SIGKILL)  # what test_train does to Snakemake's process group
    proc.wait()

    deadline = time.time() + 10
    while in_work() and time.time() < deadline:
        time.sleep(0.1)
    assert in_work() == [], "the job outlived its client"
    assert not (work / "out" / "train.json").exists()


# ------------------------------------------------------------------------------ faults (issue 19.6)
def _socket_path_for(tmp: Path) -> Path:
    """The socket a client with this test's environment looks for (the key hashes that environment)."""
    out = subprocess.run([sys.executable, "-c", "from harness.jobserver import socket_path; print(socket_path())"],
                         env=env(tmp), capture_output=True, text=True, check=True, cwd=ROOT)
    return Path(out.stdout.strip())


def test_a_stopped_server_is_waited_for_a_bounded_time_then_the_job_runs_directly(tmp_path):
    """A server that is alive but does not answer (SIGSTOP: as a swapping or hung one) held the client
    forever; now it waits FPB_JOB_SERVER_HANDSHAKE seconds, says so in one line and runs the job itself."""
    path = _socket_path_for(tmp_path)
    listener = subprocess.Popen([sys.executable, "-c", "import socket, sys, time\n"
                                 "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)\n"
                                 "print('up', flush=True); time.sleep(600)", str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "up"
        os.kill(listener.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        out = run(tmp_path, "validate", "--config", str(tmp_path / "missing.yaml"), cwd=tmp_path,
                  FPB_JOB_SERVER_HANDSHAKE="2")
        waited = time.monotonic() - t0
    finally:
        listener.kill()
        listener.wait()
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and lines[-1] == f"error: config file {tmp_path / 'missing.yaml'} does not exist"
    assert lines[0] == (f"[jobserver] the warm server ({path}) did not answer within 2 s (stopped, swapping or hung; "
                        "FPB_JOB_SERVER_HANDSHAKE): running the job directly")
    assert waited < 120


def test_gpu_jobs_do_not_go_through_the_server(monkeypatch):
    """Forking a process that imported torch (OpenBLAS and pyarrow threads at fork) is not proven safe
    for CUDA: a job that claims GPUs runs directly."""
    from harness import jobserver

    for var in ("FPB_JOB_SERVER", "SLURM_JOB_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FPB_JOB_GPUS", "0")
    assert jobserver.enabled() == (hasattr(__import__("socket"), "send_fds") and sys.platform.startswith("linux"))
    monkeypatch.setenv("FPB_JOB_GPUS", "1")
    assert not jobserver.enabled()


@pytest.mark.slow
def test_sigint_stops_the_job_in_one_line_and_the_server_leaves_no_files(prepared, tmp_path):
    """Ctrl-C: no KeyboardInterrupt traceback in the job's log (show-failed-logs prints it), exit 130;
    a server that idled out leaves only the one per-user lock file in TMPDIR (no .sock.lock/.sock.log)."""
    tmp, cfg, _ = prepared
    sock = tmp_path / "tmpdir"
    sock.mkdir()
    log_path = tmp_path / "job.log"
    with open(log_path, "w") as log:
        # SIGINT handled as under a terminal: a test run in the background (`cmd &` in a script) inherits it ignored
        proc = subprocess.Popen([sys.executable, "-m", "harness", "jobserver", *train_args(cfg, tmp / "data", str(tmp_path / "out"), seed=3)],
                                env=env(sock, FPB_JOB_SERVER_IDLE="2"), cwd=tmp_path, stdout=log, stderr=log,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 600
        while "epoch 1/" not in log_path.read_text() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, log_path.read_text()[-2000:]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    text = log_path.read_text()
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-2000:]
    assert text.rstrip().endswith("[jobserver] interrupted (SIGINT): the job was stopped")  # after tqdm's bar
    deadline = time.time() + 60
    while list(sock.glob("*.sock")) and time.time() < deadline:  # the server idles out
        time.sleep(0.2)
    time.sleep(1)
    assert sorted(p.name for p in sock.glob("fpb-jobserver*")) == [f"fpb-jobserver-{os.getuid()}.lock"]
