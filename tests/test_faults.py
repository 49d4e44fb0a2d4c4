"""Faults name their file and cause in one line (issue 19, item 5): a full disk while writing a
checkpoint, a damaged adapter.safetensors or eval.json, a job interrupted with SIGINT."""
from __future__ import annotations

import errno
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from adapters.io import AdapterFileError, load_tensors, save_tensors
from dag import tiny_config
from harness.cli import main
from harness.config import job_settings
from harness.core.atomic import atomic_path, read_json
from harness.core.errors import ArtifactError, first_line

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------ a full disk
def test_torch_on_a_full_disk_raises_enospc_only_through_a_file_object():
    """Why checkpoints are written through a file object: to a path, torch says only
    '[enforce fail at inline_container.cc] unexpected pos'; through a file, the OSError is ENOSPC."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    state = {"w": torch.zeros(100_000)}
    with pytest.raises(RuntimeError, match="unexpected pos"):
        torch.save(state, "/dev/full")
    with pytest.raises(OSError) as e, open("/dev/full", "wb") as f:
        torch.save(state, f)
    assert e.value.errno == errno.ENOSPC


def test_an_atomic_write_on_a_full_disk_names_the_file_it_meant(tmp_path):
    target = tmp_path / "out" / "eval.json"
    with pytest.raises(OSError) as e, atomic_path(target) as tmp:
        tmp.write_text("{")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what a write() on a full disk raises: no file
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(target)
    assert first_line(e.value) == f"OSError: [Errno 28] No space left on device: '{target}'"
    assert list(target.parent.iterdir()) == []  # no temporary left behind


def test_a_full_disk_while_checkpointing_names_the_checkpoint_and_the_cause(tiny_job, tmp_path, monkeypatch):
    from harness import train as T

    cfg, data = tiny_job
    checkpoint = tmp_path / "ck" / "seed0.pt"

    def full_disk(obj, f, *a, **kw):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(T.torch, "save", full_disk)
    s = replace(job_settings(cfg, "lora", "dal_pleasantness", 0), epochs=1)
    with pytest.raises(OSError) as e:
        T._train(s, cfg, data_dir=data, out_dir=tmp_path / "out", checkpoint=checkpoint, threads=1)
    line = first_line(e.value)
    assert "No space left on device" in line and str(checkpoint) in line, line
    assert not checkpoint.exists() and list(checkpoint.parent.iterdir()) == []  # nothing said to be kept


# ------------------------------------------------------------------------------ damaged files
def test_a_damaged_adapter_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "adapter.safetensors"
    save_tensors({"w": torch.ones(3)}, path)
    path.write_bytes(b"\x00garbage" * 5)
    with pytest.raises(AdapterFileError) as e:
        load_tensors(path)
    assert str(e.value).startswith(f"{path} is not a readable safetensors file (") and "\n" not in str(e.value)


def test_a_damaged_eval_json_is_one_line_naming_it(tmp_path, capsys):
    bad = tmp_path / "eval.json"
    bad.write_text('{"table": "tiny", "metric": 1')  # truncated
    with pytest.raises(ArtifactError, match=f"^{bad} is not valid JSON"):
        read_json(bad)
    meta = tmp_path / "meta.json"
    meta.write_text('{"task": "dal_pleasantness"}')
    cfg = tiny_config(tmp_path) / "tiny.yaml"
    code = main(["table", "--config", str(cfg), "--scale", "mini", "--out", str(tmp_path / "t.csv"),
                 "--data-meta", str(meta), "--evals", f"lora={bad}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"error: {bad} is not valid JSON") and len(err.splitlines()) == 1
