"""Adapter weights as safetensors (complex tensors stored as their real view)."""
from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

_COMPLEX_SUFFIX = "::complex"


def save_tensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write atomically (a temporary file in the same folder, then ``os.replace``): a reader never sees
    half a file. Done here rather than with the harness's writer so that ``adapters`` stands alone, as peft does."""
    out = {}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.is_complex():
            out[name + _COMPLEX_SUFFIX] = torch.view_as_real(t).contiguous()
        else:
            out[name] = t
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.tmp-{os.getpid()}-", suffix=path.suffix)
    os.close(fd)
    try:
        _write_file(out, tmp, metadata)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; weights should be readable as usual
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_file(tensors: dict[str, torch.Tensor], filename: str, metadata: dict[str, str] | None) -> None:
    Path(filename).write_bytes(_sorted_metadata(save(tensors, metadata=metadata)))


def _sorted_metadata(blob: bytes) -> bytes:
    """The same file with its ``__metadata__`` keys sorted: safetensors writes them in a Rust
    HashMap's order, which changes from save to save, so identical runs gave different bytes.
    The header is JSON after its 8-byte length; tensor offsets count from the data, which stays."""
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes
    return struct.pack("<Q", len(text)) + text + blob[8 + n :]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class AdapterFileError(ValueError):
    """An adapter file that is not a readable safetensors file (truncated, overwritten, damaged)."""


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        raw = load_file(str(path))
    except SafetensorError as e:
        raise AdapterFileError(f"{path} is not a readable safetensors file ({e}): damaged or truncated; "
                               "rerun the job that writes it") from None
    return {
        (k[: -len(_COMPLEX_SUFFIX)] if k.endswith(_COMPLEX_SUFFIX) else k): (
            torch.view_as_complex(v) if k.endswith(_COMPLEX_SUFFIX) else v
        )
        for k, v in raw.items()
    }
