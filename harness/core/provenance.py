"""Provenance recorded with every number: the commit, whether the worktree was modified, and the
versions of the packages the number depends on. The one place they are built."""
from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["VERSIONED_PACKAGES", "git", "git_commit", "package_versions", "provenance", "worktree_modified"]

VERSIONED_PACKAGES = ("torch", "transformers", "peft", "datasets", "numpy", "pandas")


def git(*args: str) -> str:
    """``git <args>`` run in this repository; empty when git is missing or fails."""
    try:
        return subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), *args],
                              capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def git_commit() -> str:
    return git("rev-parse", "--short", "HEAD")


def worktree_modified() -> bool:
    """Tracked files differ from the commit (untracked files are not counted)."""
    return bool(git("status", "--porcelain", "--untracked-files=no"))


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a number depends on (None: not installed), and python's."""
    out: dict[str, str | None] = {}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    return out


def provenance(commit: str, **extra) -> dict:
    """The ``provenance`` block of a ``.meta.json``: ``commit`` (read once by the caller, which also
    prints it at the top level), worktree state, versions, then ``extra`` entries."""
    return {"commit": commit, "worktree_modified": worktree_modified(), "versions": package_versions(), **extra}
