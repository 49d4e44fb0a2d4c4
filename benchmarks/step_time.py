"""Training-step time and peak memory of every method on one RoBERTa-shaped model.

A script, not a test:

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/step_time.py              # CPU, 2 threads
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/step_time.py --device cuda
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/step_time.py --group --threads 1 --rounds 15   # ratios to LoRA

Model: ``RobertaForSequenceClassification`` built from a config (hidden 768, 4 layers, 12
heads, intermediate 3072, 2 labels) with random weights (seed 0); batch 8 x sequence 128 of
fixed random tokens and labels. For each method: apply it (``adapters.apply_method``, query and
value for the methods that take targets), AdamW over the trainable parameters (head included),
3 warm-up steps, then N = 10 timed steps of forward + backward + optimizer step (the loss
includes the method's extra losses). Reported: median ms/step and its ratio to LoRA r=8 measured
in the same run, and peak memory with its ratio to LoRA r=8.

Every method runs in a fresh subprocess, so that neither time nor memory leaks from one method
into the next. Peak memory:

* CUDA: ``torch.cuda.max_memory_allocated`` over the timed steps (weights, optimizer state,
  gradients and activations; the allocator's cache is not counted);
* CPU: the process's peak resident set (``VmHWM``) over the timed steps, reset right before them
  through ``/proc/self/clear_refs``, minus the resident set measured after ``import torch`` and
  before the model is built -- i.e. weights + adapter + optimizer state + the step's transient
  peak, without the ~0.3-0.5 GB of libraries. Where ``clear_refs`` is not writable it falls
  back to ``ru_maxrss`` (peak over the whole process life, including set-up).

``--rounds R`` repeats the whole sweep R times (methods interleaved) and reports the median
over rounds: on a shared machine this damps load that comes and goes.

``--group`` instead measures every spectral method against LoRA r=8 in ONE process (``GROUP``):
all models are built first, then each round steps every model once, in an order that rotates
from round to round; per method the reported ratio is the median over rounds of
(its step time / LoRA's step time in the same round), so load that comes and goes on a shared
machine hits both sides of every ratio alike. It ends with :func:`layer_benchmark`: one
768 x 768 layer, our dense-update path (``linear(x, W0 + dW)``, LFMA's forward) against peft's
FourierFT layer (``base(x) + linear(x, dW)``), same spectrum, same output. ``--moe-layer`` adds
:func:`moe_layer_benchmark`: FourierMoE's mixture formulations on one layer (issue 20 §4); the
labels ``fourier_moe (compiled kernel)`` and ``fourier_moe (per-expert loop)`` (``--only``) put the
whole model's step with a torch.compile'd kernel or the former loop into the group.

A micro-benchmark follows: the shared spectral primitive
(:func:`adapters.spectral.spectral_to_dense`) against peft's FourierFT delta weight
(``FourierFTLayer.get_delta_weight``) at the same shape (768 x 768), the same n = 1000
coefficients and the same locations, forward + backward, median of 50 after warm-up.
"""
from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
from harness.core.memory import proc_status_mb, reset_peak_rss  # noqa: E402

QV = ["query", "value"]
# (label, method, hparams, target_modules): the methods of the benchmark at the sizes their papers use on RoBERTa-base.
METHODS: list[tuple[str, str, dict, list[str] | None]] = [
    ("lora r=8", "lora", {"r": 8, "alpha": 8}, QV),
    ("dora r=8", "dora", {"r": 8, "alpha": 8}, QV),
    ("vera r=1024", "vera", {"r": 1024}, QV),
    ("fourierft n=1000", "fourierft", {"n_frequency": 1000}, QV),
    ("fora n=500 r=8", "fora", {"n": 500, "r": 8}, QV),
    ("fora n=500 r=32", "fora", {"n": 500, "r": 32}, QV),
    ("dfora n=500 r=8", "dfora", {"n": 500, "r": 8}, QV),
    ("lora_random_mask n=500 r=8", "lora_random_mask", {"n": 500, "r": 8}, QV),
    ("lfma ratio=0.0016", "lfma", {"ratio": 0.0016}, QV),
    ("houlsby r=8", "houlsby", {"r": 8}, None),
    ("pfeiffer r=16", "pfeiffer", {"r": 16}, None),
    ("faa r=16", "faa", {"r": 16}, None),
    ("fourier_moe (defaults)", "fourier_moe", {}, QV),
    ("frame (defaults)", "frame", {}, QV),
    ("bitfit", "bitfit", {}, None),
    ("full_ft", "full_ft", {}, None),
]
REFERENCE = "lora r=8"
# The --group run: every spectral method and its target ratio to LoRA r=8 (issue 12).
GROUP: list[tuple[str, float]] = [
    ("fourierft n=1000", 1.10), ("fora n=500 r=8", 1.10), ("fora n=500 r=32", 1.10), ("dfora n=500 r=8", 1.10),
    ("lfma ratio=0.0016", 1.10), ("faa r=16", 1.10), ("frame (defaults)", 1.10), ("fourier_moe (defaults)", 1.35),
]
# Only for the paired FoRA-vs-LoRA check at r = 32 (FoRA's rank in Tables 6 and 8).
EXTRA_FOR_PAIRS: list[tuple[str, str, dict, list[str] | None]] = [("lora r=32", "lora", {"r": 32, "alpha": 32}, QV)]
PAIRS = [("lora r=8", "fora n=500 r=8"), ("lora r=32", "fora n=500 r=32")]
# Only for --group --only: FourierMoE with its mixture kernel under torch.compile (issue 20 §4).
# and with the per-expert loop it had before.
COMPILED_MOE, LOOP_MOE = "fourier_moe (compiled kernel)", "fourier_moe (per-expert loop)"
EXTRA_FOR_GROUP: list[tuple[str, str, dict, list[str] | None]] = [(COMPILED_MOE, "fourier_moe", {}, QV),
                                                                  (LOOP_MOE, "fourier_moe", {}, QV)]
MODEL = dict(hidden_size=768, num_hidden_layers=4, num_attention_heads=12, intermediate_size=3072,
             vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, num_labels=2)
# Other shapes (benchmarks/gpu_check.py): a LLaMA-7B block (one decoder layer of LLaMA-7B's sizes, with its
# embeddings and LM head), and small CPU stand-ins of both. Targets are mapped to the LLaMA names.
SHAPES = {
    "roberta-base": ("roberta", MODEL),
    "roberta-small": ("roberta", {**MODEL, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                                  "intermediate_size": 512, "vocab_size": 1000}),
    "llama-7b-block": ("llama", dict(hidden_size=4096, num_hidden_layers=1, num_attention_heads=32, intermediate_size=11008,
                                     vocab_size=32000, max_position_embeddings=4096)),
    "llama-small-block": ("llama", dict(hidden_size=256, num_hidden_layers=1, num_attention_heads=4, intermediate_size=688,
                                        vocab_size=1000, max_position_embeddings=512)),
}
LLAMA_TARGETS = {"query": "q_proj", "value": "v_proj"}


# --- worker: one method in this process ------------------------------------------------------------
def _spec(label: str):
    for m in METHODS + EXTRA_FOR_PAIRS + EXTRA_FOR_GROUP:
        if m[0] == label:
            return m
    raise SystemExit(f"unknown method label {label!r}; known: {[m[0] for m in METHODS]}")


def make_stepper(label: str, device: str, batch: int, seq: int, shape: str = "roberta-base", precision: str = "fp32"):
    """Model + method + AdamW + fixed batch; returns ``(adapted, step)`` where ``step()`` runs one
    forward + backward + optimizer step and returns ``(wall seconds, process CPU seconds)``.
    ``shape``: a key of SHAPES; ``precision``: ``fp32`` or ``bf16`` (autocast around the forward and
    the loss, weights and optimizer in float32, as harness/train.py on a GPU)."""
    import torch
    import transformers

    from adapters import apply_method

    _, method, hparams, targets = _spec(label)
    kind, sizes = SHAPES[shape]
    torch.manual_seed(0)
    if kind == "roberta":
        cfg = transformers.RobertaConfig(**sizes, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        model = transformers.RobertaForSequenceClassification(cfg).to(device)
        head = ("classifier",)
    else:
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**sizes)).to(device)
        targets = [LLAMA_TARGETS.get(t, t) for t in targets] if targets else targets
        head = ()
    adapted = apply_method(model, method, hparams, target_modules=targets, head_modules=head, seed=0)
    if label in (COMPILED_MOE, LOOP_MOE):
        from adapters.moe import slot_mixture

        kernel = torch.compile(slot_mixture) if label == COMPILED_MOE else per_expert_kernel
        for layer in adapted.adapter_layers():
            layer.mixture_kernel = kernel
    module = adapted.model.to(device)
    module.train()
    params = [p for _, p in adapted.trainable_parameters(include_head=True)]
    opt = torch.optim.AdamW(params, lr=1e-4)
    g = torch.Generator().manual_seed(1234)
    input_ids = torch.randint(3, sizes["vocab_size"], (batch, seq), generator=g).to(device)
    attention_mask = torch.ones(batch, seq, dtype=torch.long, device=device)
    labels = (torch.randint(0, sizes["num_labels"], (batch,), generator=g) if kind == "roberta" else input_ids).to(device)
    cuda = device.startswith("cuda")
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=precision == "bf16")

    def step() -> tuple[float, float]:
        if cuda:
            torch.cuda.synchronize()
        c0, t0 = time.process_time(), time.perf_counter()
        with autocast:
            out = module(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
            loss = out.loss
            for extra in adapted.extra_losses().values():
                loss = loss + extra
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0, time.process_time() - c0

    return adapted, step


def run_one(label: str, device: str, threads: int, warmup: int, steps: int, batch: int, seq: int,
            shape: str = "roberta-base", precision: str = "fp32") -> dict:
    import torch

    torch.set_num_threads(threads)
    baseline = int(proc_status_mb("VmRSS") * 2**20)
    adapted, step = make_stepper(label, device, batch, seq, shape, precision)
    cuda = device.startswith("cuda")
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        mem_kind = "cuda max_memory_allocated"
    else:
        mem_kind = "VmHWM - RSS after import torch" if reset_peak_rss() else "ru_maxrss - RSS after import torch"
    both = [step() for _ in range(steps)]
    times, cpu_times = [w for w, _ in both], [c for _, c in both]
    if cuda:
        peak = torch.cuda.max_memory_allocated()
    else:
        hwm = int(proc_status_mb("VmHWM") * 2**20) if mem_kind.startswith("VmHWM") else None
        peak = (hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) - baseline
    return {
        "label": label,
        "method": adapted.method,
        "trainable": adapted.num_trainable(),
        "ms_median": 1000 * statistics.median(times),
        "ms_all": [round(1000 * t, 2) for t in times],
        "cpu_ms_median": 1000 * statistics.median(cpu_times),
        "peak_bytes": peak,
        "memory": mem_kind,
    }


def run_pair(label_a: str, label_b: str, device: str, threads: int, warmup: int, steps: int, batch: int, seq: int) -> dict:
    """A/B in one process with the steps interleaved (A, B, A, B, ... in alternating order), so that
    load on a shared machine hits both alike. Ratio = median(B) / median(A)."""
    import torch

    torch.set_num_threads(threads)
    _, step_a = make_stepper(label_a, device, batch, seq)
    _, step_b = make_stepper(label_b, device, batch, seq)
    for _ in range(warmup):
        step_a()
        step_b()
    a, b = [], []
    for i in range(steps):
        if i % 2:
            b.append(step_b()); a.append(step_a())
        else:
            a.append(step_a()); b.append(step_b())
    med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
    return {
        "a": label_a, "b": label_b, "steps": steps,
        "wall_ratio": med(b, 0) / med(a, 0), "cpu_ratio": med(b, 1) / med(a, 1),
        "a_ms": 1000 * med(a, 0), "b_ms": 1000 * med(b, 0),
    }


def run_group(labels: list[str], device: str, threads: int, warmup: int, rounds: int, batch: int, seq: int) -> dict:
    """Every label and REFERENCE built in this process; each round steps all of them once, the order
    rotating by one position per round. Per label: median step time and the median over rounds of
    the per-round ratio to REFERENCE (wall and process CPU time)."""
    import torch

    torch.set_num_threads(threads)
    order = [REFERENCE] + [l for l in labels if l != REFERENCE]
    steppers = {l: make_stepper(l, device, batch, seq) for l in order}
    for _ in range(warmup):
        for l in order:
            steppers[l][1]()
    times: dict[str, list[tuple[float, float]]] = {l: [] for l in order}
    for i in range(rounds):
        for l in order[i % len(order):] + order[: i % len(order)]:
            times[l].append(steppers[l][1]())
    ref = times[REFERENCE]
    out = {}
    for l in order:
        ratios = [(t[0] / r[0], t[1] / r[1]) for t, r in zip(times[l], ref)]
        out[l] = {
            "trainable": steppers[l][0].num_trainable(),
            "ms": 1000 * statistics.median(t[0] for t in times[l]),
            "cpu_ms": 1000 * statistics.median(t[1] for t in times[l]),
            "wall_ratio": statistics.median(r[0] for r in ratios),
            "cpu_ratio": statistics.median(r[1] for r in ratios),
        }
    return out


def layer_benchmark(device: str, threads: int, repeats: int = 40, warmup: int = 5, tokens: int = 1024, d: int = 768,
                    n: int = 1000) -> dict:
    """One d x d layer, ``tokens`` input rows, forward + backward, paired and interleaved: our dense-update
    path ``linear(x, W0 + dW)`` (LFMA's forward) vs peft's ``FourierFTLinear`` (``base(x) + linear(x, dW)``),
    dW from the same spectrum and locations (checked: same output)."""
    import torch
    import torch.nn.functional as F
    from peft import FourierFTConfig, get_peft_model
    from torch import nn

    from adapters.spectral import spectral_to_dense

    torch.set_num_threads(threads)

    class One(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = nn.Linear(d, d)

        def forward(self, x):
            return self.q(x)

    torch.manual_seed(0)
    peft_model = get_peft_model(One(), FourierFTConfig(n_frequency=n, target_modules=["q"], random_loc_seed=0,
                                                       init_weights=False)).to(device)
    layer = next(m for m in peft_model.modules() if hasattr(m, "fourierft_spectrum"))
    spectrum, scaling = layer.fourierft_spectrum["default"], layer.fourierft_scaling["default"]
    locations = layer.indices["default"].to(device)
    coeffs = nn.Parameter(spectrum.detach().clone())
    base = layer.base_layer
    x = torch.randn(tokens, d, generator=torch.Generator().manual_seed(1)).to(device).requires_grad_(True)
    grad_out = torch.randn(tokens, d, generator=torch.Generator().manual_seed(2)).to(device)
    cuda = device.startswith("cuda")

    def ours():
        return F.linear(x, base.weight + spectral_to_dense(coeffs, locations, (d, d)) * scaling, base.bias)

    def theirs():
        return layer(x)

    with torch.no_grad():
        same = torch.allclose(ours(), theirs(), atol=1e-4, rtol=1e-4)

    def once(fn, param) -> tuple[float, float]:
        if cuda:
            torch.cuda.synchronize()
        c0, t0 = time.process_time(), time.perf_counter()
        fn().backward(grad_out)
        if cuda:
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        param.grad, x.grad = None, None
        return wall, cpu

    pairs = []
    for i in range(warmup + repeats):
        if i % 2:
            b = once(theirs, spectrum); a = once(ours, coeffs)
        else:
            a = once(ours, coeffs); b = once(theirs, spectrum)
        if i >= warmup:
            pairs.append((a, b))
    return {
        "tokens": tokens, "d": d, "n": n, "same_output": bool(same),
        "ours_ms": 1000 * statistics.median(a[0] for a, _ in pairs),
        "peft_ms": 1000 * statistics.median(b[0] for _, b in pairs),
        "wall_ratio": statistics.median(a[0] / b[0] for a, b in pairs),
        "cpu_ratio": statistics.median(a[1] / b[1] for a, b in pairs),
    }


def per_expert_kernel(spectrum, locations, coefficients, idx, w, d_out):
    """FourierMoE's mixed spectrum as the layer computed it before issue 20 §4 (same contract as
    :func:`adapters.moe.slot_mixture`): per expert, its tokens picked with ``nonzero``, one gather and
    one scatter of its n coefficients, ``index_add`` into the output."""
    mixed = spectrum.new_zeros(spectrum.shape[0], d_out)
    for e in range(coefficients.shape[0]):
        tok, slot = (idx == e).nonzero(as_tuple=True)
        if tok.numel():
            u, v = locations[e]
            terms = spectrum[tok].T.index_select(0, v).conj() * coefficients[e][:, None]
            z = terms.new_zeros(d_out, tok.numel()).index_add_(0, u, terms).T
            mixed.index_add_(0, tok, z * w[tok, slot].unsqueeze(-1))
    return mixed


def _moe_mixtures(layer) -> dict:
    """FourierMoE mixture formulations tried for issue 20 §4, each ``(x, idx, w) -> (T, d_out)`` on one
    :class:`adapters.moe.FourierMoELinear`: ``'per-expert loop'`` (the layer's code before issue 20: per
    expert, its tokens picked with ``nonzero``, one gather and one scatter, ``index_add`` into the output),
    ``'k-slot gather/scatter'`` (the layer's code now, :func:`adapters.moe.slot_mixture`: one gather and
    one scatter over the T x k x n selected coefficients), ``'real-valued'`` (the same with the complex
    spectrum and coefficients as real pairs), ``'dense over experts'`` (the scatter and inverse DFT as
    a real matmul: every token through all Z dense dW_e, weight 0 for the unchosen), and
    ``torch.compile`` of the loop and of the k-slot kernel."""
    import torch

    from adapters.moe import slot_mixture

    d_out, d_in = layer.out_features, layer.in_features
    norm = 2 * layer.scaling / (d_out * d_in)

    def with_kernel(kernel):
        def mixture(x, idx, w):
            mixed = kernel(torch.fft.rfft(x), layer.locations, layer.coefficients, idx, w, d_out)
            return torch.fft.ifft(mixed, norm="forward").real * norm
        return mixture

    def real_pairs(x, idx, w):
        t = x.shape[0]
        u, v = layer.locations[idx].transpose(1, 2).reshape(t, 2, -1, 1).unbind(1)
        xr, xi = torch.view_as_real(torch.fft.rfft(x)).gather(1, v.expand(-1, -1, 2)).unbind(-1)
        c = layer.coefficients
        ab = torch.view_as_real(c) if c.is_complex() else torch.stack([c, torch.zeros_like(c)], -1)
        a, b = (ab[idx] * w[..., None, None]).reshape(t, -1, 2).unbind(-1)
        terms = torch.stack([xr * a + xi * b, xr * b - xi * a], -1)
        mixed = terms.new_zeros(t, d_out, 2).scatter_add_(1, u.expand(-1, -1, 2), terms)
        return torch.fft.ifft(torch.view_as_complex(mixed), norm="forward").real * norm

    def dense(x, idx, w):
        z = layer.router.num_experts
        dw = torch.cat([layer.expert_delta(e) for e in range(z)])  # (Z d_out, d_in)
        gate = w.new_zeros(x.shape[0], z).scatter(1, idx, w * layer.scaling)
        return ((x @ dw.T).view(x.shape[0], z, d_out) * gate[..., None]).sum(1)

    return {"per-expert loop": with_kernel(per_expert_kernel), "k-slot gather/scatter": with_kernel(slot_mixture),
            "real-valued": real_pairs, "dense over experts": dense, "compiled loop": with_kernel(torch.compile(per_expert_kernel)),
            "compiled k-slot": with_kernel(torch.compile(slot_mixture))}


def moe_layer_benchmark(device: str, threads: int, rounds: int = 15, warmup: int = 3, tokens: int = 1024,
                        d: int = 768) -> dict:
    """FourierMoE's mixture alone on one d x d layer (defaults: Z 8, k 2, n 1000), forward + backward,
    every formulation of :func:`_moe_mixtures` stepped once per round in a rotating order; per
    formulation the median over rounds of its time / the per-expert loop's, and its largest
    deviation (output and the gradients of x, the coefficients and the routing weights) from the
    per-expert loop run in float64, relative to that reference's largest entry."""
    import torch
    from torch import nn

    from adapters.moe import FourierMoEConfig, FourierMoELinear

    torch.set_num_threads(threads)
    base = nn.Linear(d, d).to(device).requires_grad_(False)
    layer = FourierMoELinear(base, FourierMoEConfig(), torch.Generator().manual_seed(0), "q").to(device)
    with torch.no_grad():
        layer.coefficients.copy_(torch.randn(layer.coefficients.shape, dtype=layer.coefficients.dtype))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(tokens, d, generator=gen).to(device).requires_grad_(True)
    grad_out = torch.randn(tokens, d, generator=gen).to(device)
    with torch.no_grad():
        idx, w = layer.router(x)
    w = w.clone().requires_grad_(True)
    fns = _moe_mixtures(layer)
    cuda = device.startswith("cuda")

    def run(fn, xx, ww, lay=layer):
        out = fn(xx, idx, ww)
        grads = torch.autograd.grad(out, (xx, lay.coefficients, ww), grad_out.to(out.dtype))
        return (out.detach(), *grads)

    layer64 = FourierMoELinear(copy.deepcopy(base).double(), FourierMoEConfig(), torch.Generator().manual_seed(0), "q").to(device)
    with torch.no_grad():
        layer64.coefficients.copy_(layer.coefficients.to(torch.complex128))
    ref = run(_moe_mixtures(layer64)["per-expert loop"], x.detach().double().requires_grad_(True),
              w.detach().double().requires_grad_(True), layer64)
    error = {name: max(((a.to(b.dtype) - b).abs().max() / b.abs().max()).item() for a, b in zip(run(fn, x, w), ref))
             for name, fn in fns.items()}

    def once(fn) -> float:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        run(fn, x, w)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    names = list(fns)
    for _ in range(warmup):
        for name in names:
            once(fns[name])
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(rounds):
        for name in names[i % len(names):] + names[: i % len(names)]:
            times[name].append(once(fns[name]))
    ref_t = times["per-expert loop"]
    return {name: {"ms": 1000 * statistics.median(times[name]),
                   "ratio": statistics.median(a / b for a, b in zip(times[name], ref_t)),
                   "max_rel_error_vs_float64": error[name]} for name in names}


def group_main(args) -> int:
    import torch

    labels = [l for l, _ in GROUP if not args.only or l in args.only]
    labels += [l for l, *_ in EXTRA_FOR_GROUP if args.only and l in args.only]
    header = (f"device={args.device} threads={args.threads} torch={torch.__version__} batch={args.batch} "
              f"seq={args.seq} warmup={args.warmup} rounds={args.rounds} date={_dt.date.today().isoformat()}")
    print(header, flush=True)
    res = run_group(labels, args.device, args.threads, args.warmup, args.rounds, args.batch, args.seq)
    targets = dict(GROUP)
    print(f"\n| method | trainable | ms/step (median) | x {REFERENCE} (wall) | x {REFERENCE} (CPU) | target "
          "| met (wall) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for label, r in res.items():
        target = targets.get(label)
        verdict = "-" if target is None else ("yes" if r["wall_ratio"] <= target else "NO")
        print(f"| {label} | {r['trainable']:,} | {r['ms']:.1f} | {r['wall_ratio']:.3f} | {r['cpu_ratio']:.3f} | "
              f"{'-' if target is None else f'<= {target:.2f}'} | {verdict} |")
    if args.moe_layer:
        moe = moe_layer_benchmark(args.device, args.threads, rounds=args.rounds)
        print("\nFourierMoE mixture alone, one 768 x 768 layer, 1024 tokens, Z 8, k 2, n 1000, forward + backward "
              f"({args.rounds} rotating rounds):\n\n| formulation | ms (median) | x per-expert loop (median of "
              "per-round ratios) | max rel. error vs float64 |\n|---|---:|---:|---:|")
        for name, r in moe.items():
            print(f"| {name} | {r['ms']:.1f} | {r['ratio']:.3f} | {r['max_rel_error_vs_float64']:.1e} |")
    layer = layer_benchmark(args.device, args.threads)
    print(f"\nlayer {layer['d']}x{layer['d']}, {layer['tokens']} tokens, n={layer['n']}, forward+backward, median of "
          f"paired ratios (same output: {layer['same_output']}): linear(x, W0 + dW) {layer['ours_ms']:.1f} ms vs peft "
          f"FourierFT {layer['peft_ms']:.1f} ms -> ratio wall {layer['wall_ratio']:.3f}, CPU {layer['cpu_ratio']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"header": header, "group": res, "layer": layer}, indent=2))
    return 0


# --- micro-benchmark: spectral primitive vs peft FourierFT -------------------------------------
def micro_benchmark(device: str, threads: int, repeats: int = 50, warmup: int = 5, shape=(768, 768), n: int = 1000) -> dict:
    import torch
    from peft import FourierFTConfig, get_peft_model
    from torch import nn

    from adapters.spectral import spectral_to_dense

    torch.set_num_threads(threads)

    class One(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = nn.Linear(shape[1], shape[0], bias=False)

        def forward(self, x):
            return self.q(x)

    torch.manual_seed(0)
    peft_model = get_peft_model(One(), FourierFTConfig(n_frequency=n, target_modules=["q"], random_loc_seed=0, init_weights=False))
    layer = next(m for m in peft_model.modules() if hasattr(m, "fourierft_spectrum"))
    layer.to(device)
    spectrum = layer.fourierft_spectrum["default"]
    scaling = layer.fourierft_scaling["default"]
    locations = layer.indices["default"].to(device)
    coeffs = nn.Parameter(spectrum.detach().clone())
    grad_out = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(device)
    cuda = device.startswith("cuda")

    def ours():
        return spectral_to_dense(coeffs, locations, shape) * scaling

    def theirs():
        return layer.get_delta_weight("default")

    # Same function: the comparison is only meaningful if both compute the same delta weight.
    with torch.no_grad():
        same = torch.allclose(ours(), theirs(), atol=1e-6, rtol=1e-5)

    def once(fn, param) -> tuple[float, float]:
        if cuda:
            torch.cuda.synchronize()
        c0, t0 = time.process_time(), time.perf_counter()
        (fn() * grad_out).sum().backward()
        if cuda:
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        param.grad = None
        return wall, cpu

    # Paired and interleaved (ours, peft / peft, ours alternately) so that load changes hit both alike.
    ours_t, theirs_t = [], []
    for i in range(warmup + repeats):
        if i % 2:
            t_theirs = once(theirs, spectrum); t_ours = once(ours, coeffs)
        else:
            t_ours = once(ours, coeffs); t_theirs = once(theirs, spectrum)
        if i >= warmup:
            ours_t.append(t_ours)
            theirs_t.append(t_theirs)
    return {
        "shape": list(shape), "n": n, "same_delta": bool(same),
        "ours_us": 1e6 * statistics.median(w for w, _ in ours_t), "peft_us": 1e6 * statistics.median(w for w, _ in theirs_t),
        "ours_cpu_us": 1e6 * statistics.median(c for _, c in ours_t), "peft_cpu_us": 1e6 * statistics.median(c for _, c in theirs_t),
    }


# --- driver ------------------------------------------------------------------------------------------
def _fmt_mb(b: float) -> str:
    return f"{b / 2**20:,.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=1, help="repeat the sweep; report medians over rounds")
    ap.add_argument("--only", action="append", help="labels to run (repeatable); default all")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--pair-worker", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--pair-steps", type=int, default=20, help="interleaved steps per side in the paired FoRA/LoRA check")
    ap.add_argument("--no-pairs", action="store_true", help="skip the paired FoRA-vs-LoRA check")
    ap.add_argument("--micro-only", action="store_true")
    ap.add_argument("--moe-layer", action="store_true",
                    help="with --group: also FourierMoE's mixture formulations on one layer (issue 20 §4)")
    ap.add_argument("--group", action="store_true",
                    help="every spectral method vs LoRA r=8 in one process, --rounds interleaved rounds (see GROUP)")
    args = ap.parse_args(argv)

    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            ap.error("--device cuda: CUDA is not available here")

    if args.group:
        return group_main(args)
    if args.worker:
        res = run_one(args.worker, args.device, args.threads, args.warmup, args.steps, args.batch, args.seq)
        print("RESULT " + json.dumps(res))
        return 0
    if args.pair_worker:
        res = run_pair(*args.pair_worker, args.device, args.threads, args.warmup, args.pair_steps, args.batch, args.seq)
        print("RESULT " + json.dumps(res))
        return 0

    labels = [m[0] for m in METHODS if not args.only or m[0] in args.only]
    if REFERENCE not in labels:
        labels.insert(0, REFERENCE)
    runs: dict[str, list[dict]] = {l: [] for l in labels}
    failures: dict[str, str] = {}
    if not args.micro_only:
        for rnd in range(args.rounds):
            for label in labels:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", label, "--device", args.device,
                       "--threads", str(args.threads), "--warmup", str(args.warmup), "--steps", str(args.steps),
                       "--batch", str(args.batch), "--seq", str(args.seq)]
                proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
                if proc.returncode != 0 or line is None:
                    failures[label] = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                    print(f"[round {rnd + 1}] {label:28s} FAILED: {failures[label]}", flush=True)
                    continue
                res = json.loads(line[len("RESULT "):])
                runs[label].append(res)
                print(f"[round {rnd + 1}] {label:28s} {res['ms_median']:8.1f} ms/step (CPU {res['cpu_ms_median']:8.1f})  "
                      f"peak {_fmt_mb(res['peak_bytes'])} MB", flush=True)

    import torch

    header = (f"device={args.device} threads={args.threads} torch={torch.__version__} python={platform.python_version()} "
              f"batch={args.batch} seq={args.seq} warmup={args.warmup} steps={args.steps} rounds={args.rounds} "
              f"date={_dt.date.today().isoformat()}")
    print()
    print(header)
    summary = {}
    if not args.micro_only:
        for label, rs in runs.items():
            if rs:
                summary[label] = {
                    "method": rs[0]["method"], "trainable": rs[0]["trainable"], "memory": rs[0]["memory"],
                    "ms": statistics.median(r["ms_median"] for r in rs),
                    "cpu_ms": statistics.median(r["cpu_ms_median"] for r in rs),
                    "peak": statistics.median(r["peak_bytes"] for r in rs),
                }
        ref = summary.get(REFERENCE)
        print()
        print(f"| method | trainable | ms/step (median) | x {REFERENCE} | CPU ms/step | x {REFERENCE} | peak MB | x {REFERENCE} |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for label in labels:
            if label not in summary:
                print(f"| {label} | - | failed | - | - | - | - | - |")
                continue
            s = summary[label]
            rt = f"{s['ms'] / ref['ms']:.2f}" if ref else "-"
            rc = f"{s['cpu_ms'] / ref['cpu_ms']:.2f}" if ref else "-"
            rm = f"{s['peak'] / ref['peak']:.2f}" if ref and ref["peak"] > 0 else "-"
            print(f"| {label} | {s['trainable']:,} | {s['ms']:.1f} | {rt} | {s['cpu_ms']:.1f} | {rc} | {_fmt_mb(s['peak'])} | {rm} |")
        if summary:
            print(f"\npeak memory: {next(iter(summary.values()))['memory']}")
        if ref and "fora n=500 r=8" in summary:
            r = summary["fora n=500 r=8"]["ms"] / ref["ms"]
            rc = summary["fora n=500 r=8"]["cpu_ms"] / ref["cpu_ms"]
            print(f"target FoRA <= 1.10 x LoRA step time at the same rank (r=8): wall {r:.3f} -> {'met' if r <= 1.10 else 'MISSED'}; "
                  f"CPU time {rc:.3f} -> {'met' if rc <= 1.10 else 'MISSED'}")

    pairs = []
    if not args.micro_only and not args.no_pairs:
        print()
        print(f"paired check (both models in one process, {args.pair_steps} interleaved steps each after {args.warmup} warm-up):")
        for a, b in PAIRS:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--pair-worker", a, b, "--device", args.device,
                   "--threads", str(args.threads), "--warmup", str(args.warmup), "--pair-steps", str(args.pair_steps),
                   "--batch", str(args.batch), "--seq", str(args.seq)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                failures[f"{a} vs {b}"] = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"  {b} vs {a}: FAILED {failures[f'{a} vs {b}']}")
                continue
            res = json.loads(line[len("RESULT "):])
            pairs.append(res)
            verdict = "met" if res["wall_ratio"] <= 1.10 else "MISSED"  # the target is on step (wall) time
            print(f"  {b} / {a}: wall {res['wall_ratio']:.3f} ({res['b_ms']:.1f} / {res['a_ms']:.1f} ms), "
                  f"CPU {res['cpu_ratio']:.3f} -> target <= 1.10 (wall) {verdict}")

    micro = micro_benchmark(args.device, args.threads)
    ratio = micro["ours_us"] / micro["peft_us"]
    cratio = micro["ours_cpu_us"] / micro["peft_cpu_us"]
    print()
    print(f"spectral primitive vs peft FourierFT delta weight ({micro['shape'][0]}x{micro['shape'][1]}, n={micro['n']}, "
          f"forward+backward, median of 50 paired interleaved iterations; same delta weight: {micro['same_delta']}):")
    print(f"  adapters.spectral.spectral_to_dense : wall {micro['ours_us']:8.0f} us   CPU {micro['ours_cpu_us']:8.0f} us")
    print(f"  peft FourierFTLayer.get_delta_weight: wall {micro['peft_us']:8.0f} us   CPU {micro['peft_cpu_us']:8.0f} us")
    print(f"  ratio ours/peft: wall {ratio:.2f}, CPU {cratio:.2f} -> target 'no slower' "
          f"{'met' if ratio <= 1.0 else 'MISSED'} (on wall time)")
    if args.json:
        args.json.write_text(json.dumps({"header": header, "runs": runs, "summary": summary, "pairs": pairs, "micro": micro,
                                         "failures": failures}, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
