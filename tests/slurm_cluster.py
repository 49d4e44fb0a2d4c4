"""A throwaway single-node SLURM cluster on localhost, for the SLURM integration test.

    with SlurmCluster(tmp_dir) as cluster:
        subprocess.run(["sinfo"], env=cluster.env())

Everything lives in ``tmp_dir``: slurm.conf, the munge key and socket, state, spool and logs; the
daemons (munged, slurmctld, slurmd) listen on free ports picked at start, so the cluster does not
touch /etc/slurm, /etc/munge or another cluster on the same machine. Clients reach it only through
``SLURM_CONF`` in ``cluster.env()``; ``os.environ`` is left alone. ``cluster.env()`` also puts
``<root>/bin`` first on PATH: wrappers of the SLURM clients that set ``SLURM_CONF`` themselves,
because snakemake-executor-plugin-slurm-jobstep strips ``SLURM_*`` variables (``SLURM_CONF``
included) before the ``srun`` it runs inside each job; a real cluster has /etc/slurm/slurm.conf
or a configless setup, which this throwaway cluster must not touch.

On exit (also when the body raised) the jobs are cancelled, the daemons are stopped by their PIDs,
and any process still carrying this cluster's ``SLURM_CONF`` (job steps, slurmstepd) is killed.

Needs slurm 22.05+ (slurmctld, slurmd, sinfo, squeue, scancel) and munge (munged, mungekey or
dd). ``missing_binaries()`` says what is missing, so a test can skip with the reason.
"""
from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sinfo", "squeue", "sbatch", "scancel", "scontrol", "srun")
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def which(name: str) -> str | None:
    """A binary on PATH or in the sbin folders (often not on a user's PATH)."""
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))


def missing_binaries() -> list[str]:
    return [b for b in (*DAEMONS, *CLIENTS) if which(b) is None]


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _mem_total_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no file)"


class ClusterError(RuntimeError):
    pass


class SlurmCluster:
    """A single-node SLURM cluster (node ``localhost``, partition ``debug``) in ``root``."""

    partition = "debug"
    node = "localhost"

    def __init__(self, root: str | Path, cpus: int | None = None, real_memory_mb: int | None = None,
                 gpus: int = 0, min_job_age: int = 600, start_timeout: float = 60.0):
        self.root = Path(root).resolve()
        self.cpus = cpus or os.cpu_count() or 1
        # slurmd drains a node that has less memory than configured: stay well below MemTotal
        self.real_memory_mb = real_memory_mb or max(1000, int(_mem_total_mb() * 0.8))
        self.gpus = gpus  # fake GPUs (a gres count, no device): lets jobs ask for --gpus on a CPU box
        self.min_job_age = min_job_age
        self.start_timeout = start_timeout
        self.user = getpass.getuser()
        self.hostname = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.procs: dict[str, subprocess.Popen] = {}
        self.ctld_port, self.slurmd_port = _free_ports(2)

    # -- environment ------------------------------------------------------------------------------

    def env(self, base: dict | None = None) -> dict:
        """The environment for clients and jobs of this cluster: ``SLURM_CONF`` and sbin on PATH."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        for var in [k for k in env if k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")) and k != "SLURM_CONF"]:
            del env[var]  # e.g. when the test itself runs inside a SLURM job
        path = env.get("PATH", "").split(os.pathsep)
        env["PATH"] = os.pathsep.join([str(self.root / "bin")] + path + [p for p in SBIN if p not in path])
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env=self.env(), capture_output=True, text=True, timeout=timeout,
                              check=check)

    # -- setup ------------------------------------------------------------------------------------

    def _write_files(self) -> None:
        r = self.root
        for d in ("munge", "state", "spool", "log", "bin"):
            (r / d).mkdir(parents=True, exist_ok=True)
        os.chmod(r, 0o755)
        os.chmod(r / "munge", 0o711)  # munged wants the socket's folder searchable by all
        key = r / "munge" / "munge.key"
        if not key.exists():
            if which("mungekey"):
                subprocess.run([which("mungekey"), "--create", f"--keyfile={key}"], check=True,
                               capture_output=True)
            else:
                key.write_bytes(os.urandom(1024))
            os.chmod(key, 0o600)
        for client in CLIENTS:  # see the module docstring
            wrapper = r / "bin" / client
            wrapper.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}"; export SLURM_CONF\n'
                               f'exec "{which(client)}" "$@"\n')
            wrapper.chmod(0o755)
        gres = ""
        if self.gpus:
            # slurmd counts GPUs by their device files; any character devices will do for a fake
            devices = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"][: self.gpus]
            if len(devices) < self.gpus:
                raise ClusterError(f"at most 5 fake GPUs, not {self.gpus}")
            (r / "gres.conf").write_text("AutoDetect=off\n" + "".join(
                f"NodeName={self.node} Name=gpu File={d}\n" for d in devices))
            gres = f" Gres=gpu:{self.gpus}"
        self.conf.write_text(f"""\
# single-node test cluster written by tests/slurm_cluster.py
ClusterName=fpbtest
SlurmctldHost={self.hostname}(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
SlurmUser={self.user}
SlurmdUser={self.user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
SlurmdLogFile={r / 'log' / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge={self.min_job_age}
DefMemPerCPU=500
ReturnToService=2
InactiveLimit=0
KillWait=5
SlurmdTimeout=60
MailProg=/bin/true
{"GresTypes=gpu" if self.gpus else ""}
NodeName={self.node} NodeAddr=127.0.0.1 NodeHostname={self.hostname} CPUs={self.cpus} RealMemory={self.real_memory_mb}{gres} State=UNKNOWN
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def _start(self, name: str, argv: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen(argv, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        time.sleep(0.5)
        if self.procs[name].poll() is not None:
            raise ClusterError(f"{name} exited at start (rc {self.procs[name].returncode}):\n{self.diagnostics()}")

    def _wait_until(self, what: str, check, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise ClusterError(f"{name} died (rc {p.returncode}) while waiting for {what}:\n"
                                       f"{self.diagnostics()}")
            try:
                ok, last = check()
            except (subprocess.SubprocessError, OSError) as e:
                ok, last = False, repr(e)
            if ok:
                return
            time.sleep(1)
        raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}):\n{self.diagnostics()}")

    def __enter__(self) -> "SlurmCluster":
        try:
            missing = missing_binaries()
            if missing:
                raise ClusterError(f"missing binaries: {', '.join(missing)}")
            self._write_files()
            self._start("munged", [
                which("munged"), "--foreground", "--force", f"--socket={self.munge_socket}",
                f"--key-file={self.root / 'munge' / 'munge.key'}",
                f"--pid-file={self.root / 'munge' / 'munged.pid'}",
                f"--log-file={self.root / 'log' / 'munged.log'}",
                f"--seed-file={self.root / 'munge' / 'munged.seed'}",
            ])
            self._wait_until("the munge socket", lambda: (self.munge_socket.exists(), None), 15)
            self._start("slurmctld", [which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
            self._wait_until("slurmctld to answer",
                             lambda: ((p := self.run("scontrol", "ping", check=False)).returncode == 0
                                      and "UP" in p.stdout, p.stdout + p.stderr), self.start_timeout)
            self._start("slurmd", [which("slurmd"), "-D", "-N", self.node, "-f", str(self.conf)])
            self._wait_until(f"node {self.node} idle", self._node_idle, self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _node_idle(self):
        p = self.run("sinfo", "-h", "-N", "-n", self.node, "-o", "%t", check=False)
        state = p.stdout.strip()
        return state == "idle", state or p.stderr.strip()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- queries ----------------------------------------------------------------------------------

    def jobs(self) -> list[dict]:
        """Every job slurmctld still knows (finished ones for MinJobAge seconds): id, name, comment,
        state, exit code."""
        p = self.run("squeue", "--states=all", "-h", "-o", "%i|%j|%k|%T")
        out = []
        for line in p.stdout.splitlines():
            jid, name, comment, state = line.split("|", 3)
            out.append({"id": jid, "name": name, "comment": comment, "state": state})
        return out

    def job_info(self, job_id: str) -> dict:
        """``scontrol show job`` as a dict (TresPerJob, MinMemoryNode, TimeLimit, CPUs/Task, ...)."""
        out = self.run("scontrol", "show", "job", "--oneliner", str(job_id)).stdout
        return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)

    def diagnostics(self) -> str:
        parts = []
        for name in ("munged.log", "munged.out", "slurmctld.log", "slurmctld.out", "slurmd.log", "slurmd.out"):
            path = self.root / "log" / name
            if path.exists() and path.stat().st_size:
                parts.append(f"--- {path} (tail) ---\n{_tail(path)}")
        return "\n".join(parts)

    # -- teardown ---------------------------------------------------------------------------------

    def cluster_pids(self) -> list[int]:
        """Processes that carry this cluster's SLURM_CONF (daemons, slurmstepd, job steps), except us."""
        marker = f"SLURM_CONF={self.conf}".encode()
        own = {os.getpid()}
        pids = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or int(d.name) in own:
                continue
            try:
                if marker in (d / "environ").read_bytes().split(b"\0"):
                    pids.append(int(d.name))
            except OSError:
                continue
        return pids

    def stop(self) -> None:
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            try:
                self.run("scancel", "--full", "-u", self.user, check=False, timeout=15)
            except subprocess.SubprocessError:
                pass
            time.sleep(1)
        for name in ("slurmd", "slurmctld", "munged"):  # reverse start order
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        for _ in range(2):  # job steps and slurmstepd that outlived the daemons
            left = self.cluster_pids()
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if left:
                time.sleep(1)
        self.procs_left = self.cluster_pids()
