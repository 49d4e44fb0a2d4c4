"""Start a job's Python from a warm process: a train job then costs no imports.

A train job of the mini scale trains for about a minute. Importing torch, transformers, peft,
datasets and scikit-learn takes several seconds of that minute, and with a few dozen jobs it
becomes a large part of a run's wall-clock. So the train rule runs
``python -m harness.jobserver train ...`` instead of ``python -m harness train ...``. This client
imports nothing heavy. It hands its arguments, working directory, environment and stdin/stdout/
stderr to a server process on this machine that has imported everything once. The server
``fork()``s a child per job, the child runs ``harness.cli.main`` exactly as ``python -m harness``
would, and the client exits with the child's exit code.

* Same job, same numbers: the child runs the same code with the job's own environment and
  arguments. Nothing of one job is left in the server for the next (each job is a fresh fork of a
  process that only imported modules). The peak-memory column too: a forked job first faults its
  server's resident code pages back in, and every job's meter starts after its imports
  (:mod:`harness.core.memory`; measured in benchmarks/README.md).
* A dying client takes its job with it. Snakemake stopping, ``kill -9`` of the process group, or a
  SLURM time limit closes the client's socket, and the child kills itself at once
  (a watchdog thread), as a job started directly would have died.
* The server is keyed by the Python executable, the code (path, size and mtime of every module
  of ``harness/`` and ``adapters/``) and the environment variables read at import time
  (``HF_*``, ``TORCH*``, ...). Editing the code or changing the environment starts a new server.
  A server exits after ``FPB_JOB_SERVER_IDLE`` seconds (default 60) without a job.
* Off when ``FPB_JOB_SERVER=0``, inside a SLURM job (one job per allocation: nothing to share),
  for a job that claims GPUs (``FPB_JOB_GPUS`` > 0: a fork of a process with OpenBLAS and pyarrow
  threads is not proven safe for CUDA; not measured on a GPU), or when the server cannot be
  started or does not answer within ``FPB_JOB_SERVER_HANDSHAKE`` seconds (default 20: a stopped,
  swapping or hung server). The job then runs as ``python -m harness`` in the client's own
  process (``exec``).
* Files: ``$TMPDIR/fpb-jobserver-<uid>-<key>.sock`` and its ``.log`` (deleted when the server
  exits cleanly; kept after a crash, for its traceback) and one ``fpb-jobserver-<uid>.lock``.
* Ctrl-C (SIGINT) of the client stops its job with one line, no traceback.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORT_ENV_PREFIXES = ("HF_", "HUGGINGFACE", "TRANSFORMERS", "TOKENIZERS", "TORCH", "PYTORCH", "CUDA", "CUBLAS",
                       "OMP_", "MKL_", "OPENBLAS", "PYTHON", "DATASETS", "SCIPY", "SKLEARN", "KMP_", "LD_")
PRELOAD = ("harness.cli", "harness.train", "harness.evaluate", "harness.prepare", "harness.suites")  # and every
# suite (serve), and the libraries and model code of their jobs (_warm_up)
START_TIMEOUT = 300.0  # seconds for a new server to import everything (a loaded machine is slow)
INTERRUPTED = 130  # the exit status of a shell job stopped by SIGINT
_MSG = struct.Struct("!I")
_READY = b"R"  # the server's first byte: it accepted the connection (only then are the job's fds sent)
_STARTED = b"S"  # the child's first byte: the job runs


def _key() -> str:
    h = hashlib.sha256(sys.executable.encode())
    for sub in ("harness", "adapters"):
        for p in sorted((ROOT / sub).rglob("*.py")):
            st = p.stat()
            h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    for k in sorted(os.environ):
        if k.startswith(IMPORT_ENV_PREFIXES):
            h.update(f"{k}={os.environ[k]}".encode())
    return h.hexdigest()[:16]


def socket_path(key: str | None = None) -> Path:
    return Path(tempfile.gettempdir()) / f"fpb-jobserver-{os.getuid()}-{key or _key()}.sock"


def _log_path(path: Path) -> Path:
    return path.with_name(path.name + ".log")


def _lock_path() -> Path:
    """One lock for every server of this user (one starter at a time): per-key lock files piled up."""
    return Path(tempfile.gettempdir()) / f"fpb-jobserver-{os.getuid()}.lock"


def _handshake_timeout() -> float:
    return float(os.environ.get("FPB_JOB_SERVER_HANDSHAKE", "20"))


def enabled() -> bool:
    return (os.environ.get("FPB_JOB_SERVER", "1") != "0" and "SLURM_JOB_ID" not in os.environ
            and int(os.environ.get("FPB_JOB_GPUS") or 0) == 0
            and hasattr(socket, "send_fds") and sys.platform.startswith("linux"))


# ------------------------------------------------------------------------------------ client
def _run_directly(argv: list[str]) -> None:
    os.execv(sys.executable, [sys.executable, "-m", "harness", *argv])


def _connect(path: Path) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(_handshake_timeout())  # until the job has started (client)
    try:
        s.connect(str(path))
        return s
    except OSError:
        s.close()
        return None


def _start_server(path: Path) -> socket.socket | None:
    """Connect to the server at ``path``, starting it first if there is none (one starter at a
    time: :func:`_lock_path`)."""
    import fcntl
    import subprocess

    with open(_lock_path(), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        conn = _connect(path)
        if conn is not None:
            return conn
        log = open(_log_path(path), "ab")
        proc = subprocess.Popen([sys.executable, "-m", "harness", "jobserver", "--serve", str(path)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                cwd="/", close_fds=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            conn = _connect(path)
            if conn is not None:
                return conn
            time.sleep(0.05)
        return None


def client(argv: list[str]) -> int:
    """Run ``python -m harness <argv>`` through the warm server; falls back to running it here."""
    if not enabled():
        _run_directly(argv)
    path = socket_path()
    conn = _connect(path) or _start_server(path)
    if conn is None:
        print("[jobserver] no warm server: running the job directly", file=sys.stderr)
        _run_directly(argv)
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    try:
        started = _hand_over(conn, request)
    except TimeoutError:  # alive but not answering: a job that started later dies with this socket
        conn.close()
        print(f"[jobserver] the warm server ({path}) did not answer within {_handshake_timeout():g} s (stopped, "
              "swapping or hung; FPB_JOB_SERVER_HANDSHAKE): running the job directly", file=sys.stderr)
        _run_directly(argv)
    if not started:  # no job started (a server shutting down): run it here
        conn.close()
        print("[jobserver] the warm server did not take the job: running it directly", file=sys.stderr)
        _run_directly(argv)
    reply = _recv_up_to(conn, _MSG.size)
    if len(reply) < _MSG.size:  # the job died without an exit code (killed, out of memory)
        print("[jobserver] the job ended without an exit status (killed?)", file=sys.stderr)
        return 137
    return _MSG.unpack(reply)[0]


def _hand_over(conn: socket.socket, request: bytes) -> bool:
    """Send the job; True once the server says it started (then no timeout: a job runs for hours).
    The stdin/stdout/stderr go only to a server that answered: fds sent to a stopped one would stay
    open in its queue (a reader of the job's output would wait for them)."""
    try:
        if conn.recv(1) != _READY:
            return False
        socket.send_fds(conn, [_MSG.pack(len(request)) + request], [0, 1, 2])
        started = conn.recv(1) == _STARTED
    except TimeoutError:
        raise
    except OSError:
        return False
    conn.settimeout(None)
    return started


def _recv_up_to(conn: socket.socket, n: int) -> bytes:
    data = b""
    try:
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


# ------------------------------------------------------------------------------------ server
def _recv_exact(conn: socket.socket, n: int, first: bytes = b"") -> bytes:
    data = first
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


def _child(conn: socket.socket, request: dict, fds: list[int], resident: list[tuple[int, int]]) -> None:
    """In the forked child: become the job, run it, report its exit code, exit. ``resident``: the
    server's resident code pages, faulted in again so that the job's memory meter starts from what a
    job started directly has (:mod:`harness.core.memory`)."""
    from harness.core.memory import fault_in  # lazy: the client half of this module imports nothing heavy

    code = 1
    try:
        fault_in(resident)
        conn.sendall(_STARTED)
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)

        def watchdog():  # the client's end closes when it dies: die with it
            try:
                conn.recv(1)
            except OSError:
                pass
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=watchdog, daemon=True).start()
        sys.argv = ["harness", *request["argv"]]
        from harness.cli import main  # lazy: the client half of this module imports nothing of the harness

        try:
            code = main(request["argv"])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except KeyboardInterrupt:
            print("error: interrupted (SIGINT)", file=sys.stderr)
            code = INTERRUPTED
        except BaseException:  # noqa: BLE001 - what an uncaught exception does to `python -m harness`
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        try:
            conn.sendall(_MSG.pack(code & 0xFF))
        except OSError:
            pass
        os._exit(code & 0xFF)


def _warm_up() -> None:
    """Import what every suite's jobs import (:func:`harness.models.import_model_code`)."""
    from harness.models import import_model_code  # lazy: the client half of this module imports nothing heavy
    from harness.suites import SUITES, get_suite  # lazy: as above

    for suite in map(get_suite, SUITES):
        try:
            import_model_code(suite.model_class, suite.model_types)
        except Exception as e:  # noqa: BLE001 - a library that fails here fails in the job, with its message
            print(f"[jobserver] warm-up {suite.model_class}: {e}", file=sys.stderr)


def serve(path: Path, idle: float) -> None:
    import importlib

    from harness.core.memory import resident_file_pages  # lazy: the client half of this module imports nothing heavy
    from harness.suites import SUITES  # lazy: as above

    for name in PRELOAD + tuple(target.partition(":")[0] for target in SUITES.values()):
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - a module that fails here fails in the job, with its message
            print(f"[jobserver] preload {name}: {e}", file=sys.stderr)
    _warm_up()
    resident = resident_file_pages()  # nothing maps or unmaps files here after this
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(64)
    server.settimeout(1.0)
    children: set[int] = set()
    last = time.monotonic()
    closing = False
    print(f"[jobserver] {os.getpid()} serving {path}", file=sys.stderr, flush=True)
    try:
        while True:
            for pid in list(children):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    children.discard(pid)
                    last = time.monotonic()
            if not children and time.monotonic() - last > idle and not closing:
                path.unlink(missing_ok=True)  # no new client finds us; serve those already queued
                closing = True
                server.settimeout(0.2)
                last = time.monotonic() - idle  # then leave after one empty accept
            try:
                conn, _ = server.accept()
            except (socket.timeout, InterruptedError):
                if closing and not children:
                    break
                continue
            conn.settimeout(30.0)
            try:
                conn.sendall(_READY)
                head, fds, _, _ = socket.recv_fds(conn, 64 * 1024, 3)
                n = _MSG.unpack(_recv_exact(conn, _MSG.size, head[:_MSG.size]))[0]
                body = _recv_exact(conn, n, head[_MSG.size:])
                request = json.loads(body)
            except (OSError, ValueError, ConnectionError, struct.error) as e:
                print(f"[jobserver] bad request: {e}", file=sys.stderr, flush=True)
                conn.close()
                continue
            conn.settimeout(None)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                server.close()
                _child(conn, request, fds, resident)
            for fd in fds:
                os.close(fd)
            conn.close()
            children.add(pid)
            last = time.monotonic()
    finally:
        server.close()
        if not closing:
            path.unlink(missing_ok=True)
    _log_path(path).unlink(missing_ok=True)  # a clean exit: nothing to read in it (a crash keeps it)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        serve(Path(argv[1]), float(os.environ.get("FPB_JOB_SERVER_IDLE", "60")))
        return 0
    try:
        return client(argv)
    except KeyboardInterrupt:  # Ctrl-C: this process ends, its socket closes, the job's watchdog stops the job
        print("[jobserver] interrupted (SIGINT): the job was stopped", file=sys.stderr)
        return INTERRUPTED

