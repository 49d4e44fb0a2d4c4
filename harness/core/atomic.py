"""Atomic writes for every result file of the project.

Snakemake decides what to rerun from which outputs exist, so an output must never exist
half-written (a killed job, a full disk). Everything is written to a temporary name in the
same folder (same filesystem, so `os.replace` is atomic) and renamed only on success.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.core.errors import ArtifactError

__all__ = ["atomic_dir", "atomic_path", "read_json", "write_csv", "write_json", "write_text"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path next to `path`; it replaces `path` only if the block succeeds.

    The temporary name keeps the suffix of `path`, so writers that pick a format from the
    extension (matplotlib's savefig, pandas) behave as with the real name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.tmp-{os.getpid()}-", suffix=path.suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic_path: nothing was written to {tmp} for {path}")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; results should be readable as usual
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if e.errno and e.filename in (None, str(tmp)):  # a full disk: name the file meant, not the temporary
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh folder `<path>.tmp-<pid>`; it is renamed onto `path` only if the block succeeds.

    An existing `path` is replaced (moved aside first, deleted after the rename). On failure the
    temporary folder is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f"{path.name}.old-{os.getpid()}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _to_jsonable(obj: Any) -> Any:
    """json.dumps fallback for numpy/torch scalars and arrays, paths, sets."""
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "tolist"):  # numpy arrays/scalars, torch tensors
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(
        f"write_json: cannot store a {type(obj).__name__} in JSON; convert it to a number, string, list or dict first"
    )


def _check_finite(obj: Any, where: str = "$") -> None:
    """NaN/inf are not JSON: refuse them with the key that holds them instead of writing a file others cannot read."""
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(
            f"write_json: value at {where} is {obj}, which JSON cannot hold; store None or a string instead"
        )
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_finite(v, f"{where}[{i}]")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON (strict: no NaN/inf), atomically."""
    text = json.dumps(obj, indent=2, default=_to_jsonable, allow_nan=True)
    _check_finite(json.loads(text))
    write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file a job wrote; a damaged one is one :class:`ArtifactError` naming it (not a bare
    ``JSONDecodeError`` that names no file)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path} is not valid JSON ({e}): damaged or truncated; rerun the job that writes it "
                            f"(snakemake <target> --forcerun {path})") from None


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_csv(path: str | os.PathLike, rows: list[dict], fields: list[str] | tuple[str, ...] | None = None) -> None:
    """Write ``rows`` as CSV (UTF-8, a header), atomically: the one CSV writer of the project.

    ``fields`` (default: every key of the rows, in first-seen order) fixes the columns.
    """
    if fields is None:
        fields = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(fields))
            w.writeheader()
            w.writerows(rows)
