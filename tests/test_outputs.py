"""What a run writes: every output folder is ignored by git and documented, and two identical runs
write identical bytes (issue 19, items 8 and 9)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from harness.tracking import LOCAL_STORE

ROOT = Path(__file__).resolve().parent.parent
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]


def output_roots() -> set[str]:
    """The top folder of every path a rule writes: each rule's output and log paths start with it and
    a wildcard or f-string field follows (``"results/{scale}/…"``, ``f"logs/{SCALE}/…"``)."""
    text = "\n".join(p.read_text() for p in RULE_FILES)
    return set(re.findall(r"""f?["']([a-z_]+)/(?:\{|[a-z_]+\.(?:log|csv|html))""", text)) - {"rules"}


def where_things_land() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Where things land", 1)[1].split("\n## ", 1)[0]


def test_every_output_root_is_ignored_and_documented():
    roots = output_roots() | {LOCAL_STORE}  # mlruns/: tracking writes it from inside a job
    assert {"results", "tables", "figures", "logs", "data", "backbones", "tuning"} <= roots  # the scan sees the rules
    section = where_things_land()
    for root in sorted(roots):
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", f"{root}/x"], cwd=ROOT)
        assert ignored.returncode == 0, f"{root}/ is not in .gitignore"
        assert f"`{root}/" in section, f"{root}/ is not under README's 'Where things land'"


# ------------------------------------------------------------------------------ byte-stable runs
def test_adapter_files_are_byte_stable_whatever_the_metadata_order(tmp_path):
    """safetensors keeps metadata in a Rust HashMap: its order (so the file's bytes) changed from
    save to save. Sorted, the same tensors and metadata give the same bytes."""
    import hashlib

    import torch

    from adapters.io import load_tensors, save_tensors
    from safetensors import safe_open

    tensors = {"b.lora_B": torch.arange(6.0).reshape(2, 3), "a.spectrum": torch.ones(4, dtype=torch.complex64)}
    meta = {"method": "lora", "variant": "lora.r8", "epoch": "3", "task": "sst2", "seed": "0"}
    digests = set()
    for i in range(8):
        path = tmp_path / f"{i}.safetensors"
        save_tensors(tensors, path, metadata=dict(reversed(meta.items())) if i % 2 else meta)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == meta
    loaded = load_tensors(path)
    assert torch.equal(loaded["b.lora_B"], tensors["b.lora_B"]) and torch.equal(loaded["a.spectrum"], tensors["a.spectrum"])


# what a second run of the same job may change: how long it took and how much memory the process
# held (profile.json; train.json's per-epoch eval_seconds); every other byte of every file is equal
VOLATILE = {"wall_seconds", "wall_seconds_this_run", "startup_seconds", "step_seconds_mean", "step_seconds_median",
            "samples_per_second", "eval_seconds_per_epoch", "peak_memory_mb", "eval_seconds"}


def _without_volatile(obj):
    if isinstance(obj, dict):
        return {k: _without_volatile(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_without_volatile(v) for v in obj]
    return obj


def test_two_identical_runs_write_identical_bytes(tiny_job, tmp_path):
    import hashlib
    import json
    from dataclasses import replace

    from harness.config import job_settings
    from harness.train import train

    cfg, data = tiny_job
    s = replace(job_settings(cfg, "lora", "dal_pleasantness", 0), epochs=1)
    outs = [tmp_path / name for name in ("a", "b")]
    for out in outs:
        train(s, cfg, data_dir=data, out_dir=out, checkpoint=tmp_path / f"{out.name}.pt", threads=1)
    files = sorted(p.name for p in outs[0].iterdir())
    assert files == sorted(p.name for p in outs[1].iterdir())
    assert {"adapter.safetensors", "predictions.npz", "train.json", "eval.json", "profile.json"} <= set(files)
    differ = [f for f in files if hashlib.sha256((outs[0] / f).read_bytes()).digest()
              != hashlib.sha256((outs[1] / f).read_bytes()).digest()]
    assert set(differ) <= {"profile.json", "train.json"}, differ  # adapter, predictions, eval.json: same bytes
    for f in differ:
        a, b = (json.loads((o / f).read_text()) for o in outs)
        assert _without_volatile(a) == _without_volatile(b), f
