"""Adapter weights as safetensors (complex tensors stored as their real view)."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from harness.atomic import atomic_path

_COMPLEX_SUFFIX = "::complex"


def save_tensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write atomically (:func:`harness.atomic.atomic_path`): a reader never sees half a file."""
    out = {}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.is_complex():
            out[name + _COMPLEX_SUFFIX] = torch.view_as_real(t).contiguous()
        else:
            out[name] = t
    with atomic_path(path) as tmp:
        save_file(out, str(tmp), metadata=metadata)


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    raw = load_file(str(path))
    return {
        (k[: -len(_COMPLEX_SUFFIX)] if k.endswith(_COMPLEX_SUFFIX) else k): (
            torch.view_as_complex(v) if k.endswith(_COMPLEX_SUFFIX) else v
        )
        for k, v in raw.items()
    }
