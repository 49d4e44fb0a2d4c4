"""The errors a data problem and an unreadable result file raise, and how a one-line message
quotes an exception."""
from __future__ import annotations

__all__ = ["ArtifactError", "DataError", "first_line"]


class DataError(ValueError):
    """Task data is missing, unreadable or inconsistent; the message names the cause and the fix."""


class ArtifactError(ValueError):
    """A file a job wrote (``eval.json``, ``adapter.safetensors``, ...) is unreadable: truncated,
    overwritten, damaged. The message names the file, the cause and how to rewrite it."""


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``: what a one-line error quotes of an exception."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
