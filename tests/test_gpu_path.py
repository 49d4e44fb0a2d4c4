"""The training loop's GPU path, tested on the CPU (issue 12).

* bf16 autocast: the spectral adapters (FoRA, FourierFT, LFMA) give outputs close to float32 and
  every FFT they run sees and returns float32/complex64 tensors, bit for bit those of a float32
  run; a job with ``precision: bf16`` trains under autocast.
* no host synchronisation per step: ``Job.step`` reads nothing back from the device, the loop
  reads the NaN guard every ``log_every`` steps, and a NaN still stops the job naming the FIRST
  step whose loss was not finite.
* one GPU per job on a shared machine: :func:`harness.devices.claim_gpus` with a fake device list.
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

from helpers import suite_with
from harness.config import job_settings

ROOT = Path(__file__).resolve().parents[1]
SYNCS = {"item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy"}


# ------------------------------------------------------------------------------- autocast
class FFTLog(TorchFunctionMode):
    """Every torch.fft call: (name, input dtype, output dtype, output)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        module = getattr(func, "__module__", "") or ""
        if "fft" in module or name.startswith("fft_") or name in {"ifft2", "irfft2", "fft2", "rfft2", "ifft", "fft", "rfft", "irfft"}:
            x = args[0] if args else None
            self.calls.append((name, getattr(x, "dtype", None), out.dtype, out.detach().clone()))
        return out


SPECTRAL = {
    "fora": {"n": 60, "r": 4, "alpha": 8, "dropout": 0.0},
    "fourierft": {"n_frequency": 60, "scaling": 150.0},
    "lfma": {"ratio": 0.05},
}


@pytest.mark.parametrize("method", sorted(SPECTRAL))
def test_spectral_layers_keep_float32_spectra_under_bf16_autocast(method):
    import helpers
    from adapters import apply_method

    model = helpers.tiny_roberta(num_labels=2)
    adapted = apply_method(model, method, SPECTRAL[method], target_modules=["query", "value"],
                           head_modules=["classifier"], seed=0)
    with torch.no_grad():  # a trained-looking adapter: every trainable tensor non-zero
        g = torch.Generator().manual_seed(3)
        for _, p in adapted.trainable_parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.05)
    inputs = helpers.roberta_inputs(batch=4, seq=8)
    model = adapted.model.eval()
    with torch.no_grad(), FFTLog() as ref_log:
        ref = model(**inputs).logits
    with torch.no_grad(), FFTLog() as log, torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**inputs).logits
    assert ref_log.calls, f"{method}: no FFT ran in the forward pass"
    assert len(log.calls) == len(ref_log.calls)
    for (name, dt_in, dt_out, value), (_, _, _, ref_value) in zip(log.calls, ref_log.calls):
        assert dt_in in (torch.float32, torch.complex64), (method, name, dt_in)
        assert dt_out in (torch.float32, torch.complex64), (method, name, dt_out)
        assert torch.equal(value, ref_value), f"{method}: {name} differs under autocast"
    assert out.dtype in (torch.bfloat16, torch.float32)
    assert torch.isfinite(out.float()).all()
    err = (out.float() - ref).abs().max().item()
    assert err <= 0.03 * ref.abs().max().item() + 0.02, (method, err, ref)
    for _, p in adapted.trainable_parameters():  # the spectra themselves: float32 (or complex64) parameters
        assert p.dtype in (torch.float32, torch.complex64), p.dtype


def settings(cfg, method="lora", **kw):
    s = job_settings(cfg, method, "dal_pleasantness", 0)
    return replace(s, **({"epochs": 1} | kw))


def test_a_bf16_job_trains_under_autocast_on_cpu(tiny_job, tmp_path):
    import json

    from harness.train import setup_job, train

    cfg, data = tiny_job
    s = settings(cfg, "fora", precision="bf16")
    job = setup_job(s, cfg, data_dir=data, threads=1)
    assert job.precision == "bf16"
    seen = []
    ffn = next(m for n, m in job.adapted.model.named_modules() if n.endswith("layer.0.intermediate.dense"))
    hook = ffn.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    job.step(next(iter(job.epoch_loader(0))), 1, 0)
    hook.remove()
    assert seen == [torch.bfloat16]  # the backbone's matmuls ran in bf16
    assert all(p.dtype == torch.float32 for p in job.trainable)  # weights and optimizer stay float32

    result = train(s, cfg, data_dir=data, out_dir=tmp_path / "out", checkpoint=tmp_path / "ck.pt", threads=1)
    assert result["status"] == "ok" and -100 <= result["best_metric"] <= 100
    assert json.loads((tmp_path / "out" / "profile.json").read_text())["precision"] == "bf16"
    # auto: fp32 on the CPU, whatever the config says for CUDA
    assert setup_job(settings(cfg), cfg, data_dir=data, threads=1).precision == "fp32"


# ------------------------------------------------------------------------------- no sync per step
class SyncLog(TorchFunctionMode):
    """Device-to-host reads (item, bool, tolist, numpy ...) made directly by the harness's or the
    adapters' own code (torch's own, e.g. the optimizer's reads of its CPU step counters, are not
    ours and are no GPU sync)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in SYNCS:
            f = sys._getframe(1)  # the Python line that asked for the value
            where = f.f_code.co_filename
            if where.startswith(str(ROOT / "harness")) or where.startswith(str(ROOT / "adapters")):
                self.calls.append((func.__name__, Path(where).name, f.f_lineno))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("method", ["lora", "fora"])
def test_a_step_reads_nothing_back_from_the_device(tiny_job, method):
    from harness.train import setup_job

    cfg, data = tiny_job
    job = setup_job(settings(cfg, method), cfg, data_dir=data, threads=1)
    batches = list(job.epoch_loader(0))
    with SyncLog() as log:
        for i, batch in enumerate(batches):
            loss = job.step(batch, i + 1, 0)
    assert log.calls == [], log.calls
    assert isinstance(loss, torch.Tensor) and loss.device == job.device
    job.check()  # finite: nothing raised


def test_the_loop_syncs_once_per_log_window(tiny_job, tmp_path):
    from harness.train import train

    cfg, data = tiny_job
    s = settings(cfg, batch_size=4, epochs=2, log_every=5)  # 16 steps per epoch
    with SyncLog() as log:
        train(s, cfg, data_dir=data, out_dir=tmp_path / "out", checkpoint=tmp_path / "ck.pt", threads=1)
    in_loop = [c for c in log.calls if c[1] == "train.py"]
    steps = 2 * 16
    # per window: the guard (1 read while finite) and the bar's mean loss; per epoch: guard + last loss
    assert in_loop, "the loop reads the guard at least at each epoch's end"
    assert len(in_loop) <= 2 * (steps // 5) + 3 * 2, in_loop
    assert len(in_loop) < steps


class NaNAt:
    """Wraps a suite's loss: the ``at``-th call (1-based) returns NaN; later ones stay whatever
    the NaN weights give."""

    def __init__(self, loss, at: int):
        self.loss, self.at, self.calls = loss, at, 0

    def __call__(self, model, batch):
        self.calls += 1
        loss = self.loss(model, batch)
        return loss * float("nan") if self.calls == self.at else loss


@pytest.mark.parametrize("at,epoch", [(3, 1), (6, 2)])
def test_nan_names_the_first_bad_step_without_a_check_per_step(tiny_job, tmp_path, monkeypatch, at, epoch):
    import json

    import harness.train as T

    cfg, data = tiny_job
    s = settings(cfg, epochs=2, log_every=1000)  # 4 steps per epoch: checked at epoch ends only
    real_setup = T.setup_job

    def setup(*a, **kw):
        job = real_setup(*a, **kw)
        job.suite = suite_with(job.suite, loss=NaNAt(job.suite.loss, at))
        return job

    monkeypatch.setattr(T, "setup_job", setup)
    out, ck = tmp_path / "out", tmp_path / "ck.pt"
    with pytest.raises(T.TrainingDiverged, match=rf"lora \(lora\) on dal_pleasantness, seed 0: loss became nan "
                                                 rf"at step {at} \(epoch {epoch}\)$"):
        T.train(s, cfg, data_dir=data, out_dir=out, checkpoint=ck, threads=1)
    assert not (out / "train.json").exists() and not ck.exists()  # no checkpoint of a diverged job left
    T.write_failure(out, s, "diverged")  # what `harness train` does next
    status = {n: json.loads((out / n).read_text())["status"] for n in ("train.json", "profile.json", "eval.json")}
    assert status == {"train.json": "diverged", "profile.json": "diverged", "eval.json": "diverged"}
    from safetensors import safe_open

    with safe_open(str(out / "adapter.safetensors"), "pt") as f:  # an output of the rule, holding nothing
        assert list(f.keys()) == [] and f.metadata() == {"status": "diverged"}


# ------------------------------------------------------------------------------- one GPU per job
def test_jobs_take_distinct_gpus_from_a_fake_device_list(tmp_path, monkeypatch):
    import os

    import harness.devices as T

    locks = tmp_path / "gpu-locks"
    ids = ["0", "1", "2"]
    try:
        taken = [T.claim_gpus(1, ids, locks) for _ in range(3)]  # three jobs at once
        assert sorted(sum(taken, [])) == ids
        with pytest.raises(TimeoutError):  # a fourth waits for a free GPU
            T.claim_gpus(1, ids, locks, poll=0.05, timeout=0.3)
        T._HELD_LOCKS.pop(1).close()  # the job on the second GPU ends
        assert T.claim_gpus(1, ids, locks, poll=0.05, timeout=5) == taken[1]
    finally:
        T.release_gpus()
    try:  # two jobs per GPU: every GPU's first slot before any second one
        order = [T.claim_gpus(1, ["0", "1"], locks, jobs_per_gpu=2)[0] for _ in range(4)]
        assert order == ["0", "1", "0", "1"]
        with pytest.raises(TimeoutError):
            T.claim_gpus(1, ["0", "1"], locks, jobs_per_gpu=2, poll=0.05, timeout=0.2)
    finally:
        T.release_gpus()
    try:  # a job of two GPUs takes two distinct ones
        assert sorted(T.claim_gpus(2, ids, locks)) in (["0", "1"], ["0", "2"], ["1", "2"])
    finally:
        T.release_gpus()

    # what the train rule does: FPB_JOB_GPUS from its `gpu` resource; the device list from
    # FPB_GPU_IDS; the job then sees only its GPU (here none exists, so it runs on the CPU)
    monkeypatch.setenv("FPB_GPU_IDS", "4,5")
    monkeypatch.setenv("FPB_JOB_GPUS", "1")
    monkeypatch.setenv("FPB_GPU_LOCK_DIR", str(locks))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    try:
        T.job_device("auto")
        first = os.environ["CUDA_VISIBLE_DEVICES"]
        T.job_device("auto")
        assert {first, os.environ["CUDA_VISIBLE_DEVICES"]} == {"4", "5"}
        assert sorted(p.name for p in locks.iterdir() if "gpu4" in p.name or "gpu5" in p.name)
    finally:
        T.release_gpus()
    monkeypatch.setenv("FPB_JOB_GPUS", "0")  # a CPU job (the mini scale) takes no GPU
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert T.job_device("auto").type == "cpu" and os.environ["CUDA_VISIBLE_DEVICES"] == ""


def test_cublas_is_deterministic_before_cuda_starts():
    import os

    import harness.train  # noqa: F401

    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", ":16:8")
