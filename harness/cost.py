"""What a table costs before it runs, from its config alone (issue 20 §2): no model, no data, no GPU.

Per job (one method x task x seed, one GPU):

* training: ``tokens = n_train x tokens_per_example x epochs`` at ``flops_per_token`` =
  (1 forward + 1 backward through the activations only, the backbone being frozen + 1 forward
  recomputed when ``train.gradient_checkpointing``) x ``forward_flops`` + the adapter's own work
  (forward + its backward, ~3x its forward), over ``peak bf16 FLOP/s x mfu``. Full fine-tuning adds
  the weight gradients (one more forward). ``forward_flops`` per token = 2 x the matmul parameters a
  token goes through (attention, MLP, and the LM head for causal LMs) + 2 x layers x context x hidden
  for the attention scores (Kaplan et al. 2020, Table 1).
* evaluation: classification suites run one forward over the eval split per epoch; generation suites
  (instruct) run, per generation pass, a prompt forward and then ``max_new_tokens`` decode steps per
  batch of ``generation.batch_size`` items, each step bounded below by reading all weights once:
  ``weight_bytes / (bandwidth x bandwidth_util)`` (batch-1 beam search is memory-bound).
  Passes per run: what the suite's checkpoint selection does (``Suite.selection``, harness/selection.py):
  after every epoch where a column needs every epoch (FoRA's "Extended" math), else once (+1 for a
  last-epoch column); ``generate_once`` asks what one pass would cost.

Dataset sizes and mean tokens per example are in :data:`DATASETS` (sizes cited; token lengths are
chosen approximations, stated). Everything is a bound-style model: the anchors it was checked
against are in benchmarks/README.md ("What a table costs").
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from harness.audit import load_architecture
from harness.config import ConfigError, job_settings, load_table
from harness.suites import get_suite, get_task


@dataclass(frozen=True)
class GPU:
    name: str
    bf16_flops: float  # dense peak, FLOP/s
    bandwidth: float  # HBM, bytes/s
    memory_gb: float


# NVIDIA data sheets (SXM parts): A100 80GB 312 TFLOP/s bf16 dense, 2.039 TB/s; H100 80GB 989 TFLOP/s, 3.35 TB/s.
GPUS = {
    "a100-80gb": GPU("A100 80GB SXM", 312e12, 2.039e12, 80),
    "h100-80gb": GPU("H100 80GB SXM", 989e12, 3.35e12, 80),
}
# chosen: 40 % of peak for training a frozen-backbone adapter in bf16 autocast (typical model-FLOP
# utilisation of HF training loops at these sizes), 70 % of HBM bandwidth for decode steps.
DEFAULT_MFU, DEFAULT_BANDWIDTH_UTIL = 0.40, 0.70

# task: (n_train, n_eval, tokens per example). Sizes: GLUE (Wang et al. 2019, train / validation);
# ViT tasks as FourierFT's ViT table (train / test); MATH 7,500 / 5,000 (Hendrycks et al. 2021);
# GSM8K 7,473 / 1,319; Commonsense170K 170,420 train (LLM-Adapters) and the eight test sets' 22,419
# items. Tokens per example: chosen, approximate means after the suites' truncation (RoBERTa BPE
# incl. specials; ViT-B/16 at 224 px = 196 patches + CLS; instruct: prompt template + answer, capped
# at cutoff_len 256).
DATASETS: dict[str, tuple[int, int, int]] = {
    "sst2": (67_349, 872, 15), "mrpc": (3_668, 408, 53), "cola": (8_551, 1_043, 11),
    "qnli": (104_743, 5_463, 51), "rte": (2_490, 277, 70), "stsb": (5_749, 1_500, 31),
    "pets": (3_680, 3_669, 197), "cars": (8_144, 8_041, 197), "dtd": (4_230, 1_410, 197),
    "eurosat": (16_200, 5_400, 197), "fgvc": (3_340, 3_333, 197), "resisc45": (18_900, 6_300, 197),
    "cifar10": (50_000, 10_000, 197), "cifar100": (50_000, 10_000, 197), "sun397": (76_128, 21_750, 197),
    "math": (7_500, 5_000, 220), "gsm8k": (7_473, 1_319, 180), "commonsense170k": (170_420, 22_419, 110),
}
# generation prompt length (tokens), chosen: the instruct template with the question.
PROMPT_TOKENS = {"math": 120, "gsm8k": 110, "commonsense170k": 90}


def shapes(arch: dict) -> dict:
    """Hidden sizes of an architecture's config: d, layers, ff, kv (GQA) width, vocab, context."""
    c = arch["config"]
    d = c["hidden_size"]
    heads = c["num_attention_heads"]
    kv = c.get("num_key_value_heads", heads) * d // heads
    if arch["model_type"] == "vit":
        context = (c["image_size"] // c["patch_size"]) ** 2 + 1
    else:
        context = None  # set per task from tokens per example
    gated = arch["model_type"] == "llama"  # SwiGLU: gate, up, down
    return {"d": d, "layers": c["num_hidden_layers"], "ff": c["intermediate_size"], "kv": kv, "gated": gated,
            "vocab": c.get("vocab_size", 0), "causal": arch["auto_class"] == "AutoModelForCausalLM",
            "context": context}


def layer_params(s: dict) -> int:
    """Matmul parameters of one block (what a token multiplies through)."""
    attn = 2 * s["d"] * s["d"] + 2 * s["d"] * s["kv"]
    mlp = (3 if s["gated"] else 2) * s["d"] * s["ff"]
    return attn + mlp


def forward_flops(s: dict, context: int) -> float:
    """Forward FLOPs per token (Kaplan et al. 2020): 2 x matmul params + 2 x layers x context x d."""
    params = s["layers"] * layer_params(s) + (s["d"] * s["vocab"] if s["causal"] else 0)
    return 2.0 * params + 2.0 * s["layers"] * context * s["d"]


def target_shape(name: str, s: dict) -> tuple[int, int]:
    """(d_out, d_in) of a target module by its name (attention and MLP projections)."""
    if name in ("k_proj", "v_proj", "key", "value") and s["kv"] != s["d"]:
        return s["kv"], s["d"]
    if name in ("up_proj", "gate_proj", "intermediate.dense", "fc1"):
        return s["ff"], s["d"]
    if name in ("down_proj", "output.dense", "fc2"):
        return s["d"], s["ff"]
    return s["d"], s["d"]


def adapter_flops(method: str, hparams: dict, targets: tuple[str, ...], s: dict) -> float:
    """The adapter's own forward FLOPs per token, all layers. Rank methods: 2 r (d_in + d_out) per
    target; FRAME: k experts of rank 2r; FourierMoE: k n complex gathers/scatters (8 FLOP each) + two
    length-d FFTs (5 d log2 d each); dense-update spectral methods (FourierFT, LFMA) merge W0 + dW: no
    per-token work (their per-step irfft2 is < 1e-3 of a step at these sizes); bottleneck adapters:
    2 x 2 d r per adapter (two per block for Houlsby); BitFit and full fine-tuning: none."""
    per_layer = 0.0
    for t in targets:
        d_out, d_in = target_shape(t, s)
        if method in ("lora", "dora", "fora", "dfora", "lora_random_mask", "vera"):
            per_layer += 2 * hparams.get("r", 8) * (d_in + d_out)
        elif method == "frame":
            per_layer += hparams.get("top_k", 2) * 2 * 2 * hparams.get("r", 8) * (d_in + d_out)
        elif method == "fourier_moe":
            per_layer += 8 * hparams.get("top_k", 2) * hparams.get("n", 1000) + 5 * (d_in * math.log2(d_in) + d_out * math.log2(d_out))
    if method in ("houlsby", "pfeiffer", "faa", "llm_adapter"):
        r = hparams.get("r", hparams.get("bottleneck", 64))
        per_layer += (2 if method == "houlsby" else 1) * 4 * s["d"] * r
    return s["layers"] * per_layer


def _per_task(value, task: str):
    """A generation key given once or per task (``{math: 256, commonsense170k: 32}``)."""
    return value[task] if isinstance(value, dict) else value


def generation_passes(cfg: dict, task: str, epochs: int) -> int:
    """Generation passes over a task's test items in one run, as its suite selects checkpoints."""
    selection = get_suite(cfg["suite"]).selection(get_task(cfg["suite"], task), cfg)
    if selection.test == "every_epoch":
        return epochs
    return 1 + int(selection.test_last)


def job_cost(cfg: dict, variant: str, task: str, gpu: GPU, mfu: float, bandwidth_util: float,
             generate_once: bool = False) -> dict:
    """Seconds of one job of ``cfg`` on one ``gpu``: training, evaluation, generation, and the FLOPs."""
    if task not in DATASETS:
        raise ConfigError(f"harness.cost.DATASETS has no size for task {task!r} (table {cfg['table']}); known: "
                       f"{', '.join(sorted(DATASETS))}")
    js = job_settings(cfg, variant, task, cfg["seeds"][0])
    s = shapes(load_architecture(cfg["backbone"]["name"]))
    n_train, n_eval, tokens = DATASETS[task]
    data = cfg.get("data") or {}
    n_train = min(n_train, data.get("max_train") or n_train)
    n_eval = min(n_eval, data.get("max_eval") or n_eval)
    context = s["context"] or tokens
    fwd = forward_flops(s, context)
    passes = 2 + (1 if (cfg.get("train") or {}).get("gradient_checkpointing") else 0) + (1 if js.method == "full_ft" else 0)
    per_token = passes * fwd + 3 * adapter_flops(js.method, js.hparams, js.target_modules, s)
    train_tokens = n_train * tokens * js.epochs
    rate = gpu.bf16_flops * mfu
    train_s = train_tokens * per_token / rate
    gen = cfg.get("generation")
    # bf16 weights a decode step reads: every block and the LM head (the embedding table: one row per token)
    weight_bytes = 2.0 * (s["layers"] * layer_params(s) + s["d"] * s["vocab"])
    if gen:  # every eval item generated: prompt forward + decode steps bounded by weight reads
        n_pass = 1 if generate_once else generation_passes(cfg, task, js.epochs)
        batch = _per_task(gen.get("batch_size", 1), task)
        steps = math.ceil(n_eval / batch) * _per_task(gen.get("max_new_tokens", 256), task)
        step_s = max(weight_bytes / (gpu.bandwidth * bandwidth_util),
                     2.0 * fwd * batch * _per_task(gen.get("num_beams", 1), task) / rate)
        prompt_s = n_eval * PROMPT_TOKENS.get(task, tokens) * fwd / rate
        eval_s = n_pass * (steps * step_s + prompt_s)
    else:
        eval_s = js.epochs * n_eval * tokens * fwd / rate
    return {"variant": variant, "task": task, "train_tokens": train_tokens, "flops_per_token": per_token,
            "train_seconds": train_s, "eval_seconds": eval_s, "seconds": train_s + eval_s,
            "memory_gb": train_memory_bytes(cfg, js, s, context) / 1e9}


def train_memory_bytes(cfg: dict, js, s: dict, context: int) -> float:
    """Peak training memory, a floor: weights in ``backbone.dtype`` (2 bytes for bf16/fp16, else 4), the
    adapter's fp32 parameters, gradients and two Adam moments (16 bytes each; its parameter count
    taken as its per-token multiply-adds, exact for rank methods), activations of one batch
    (Korthikanti et al. 2022: s b (34 d + 5 heads s) x 2 bytes per block; with gradient checkpointing
    one block plus one d-vector per token per block), and for causal LMs the logits (bf16 + their fp32
    copy and gradient, 10 bytes per vocabulary entry). Allocator fragmentation and CUDA context are not
    counted."""
    weights = s["layers"] * layer_params(s) + 2 * s["d"] * s["vocab"]
    dtype_bytes = 2 if (cfg["backbone"].get("dtype") in ("bfloat16", "float16")) else 4
    adapter = adapter_flops(js.method, js.hparams, js.target_modules, s) / 2
    if js.method == "full_ft":
        adapter = weights
    tokens = js.batch_size * context
    heads = s["d"] // 64  # head width 64 (RoBERTa, ViT) or 128 (LLaMA): the 5 a s term is small either way
    block = tokens * (34 * s["d"] + 5 * heads * context) * 2
    checkpointed = (cfg.get("train") or {}).get("gradient_checkpointing")
    activations = block + s["layers"] * tokens * s["d"] * 2 if checkpointed else s["layers"] * block
    logits = tokens * s["vocab"] * 10 if s["causal"] else 0
    return weights * dtype_bytes + 16 * adapter + activations + logits


def table_cost(cfg: dict, gpu: GPU, mfu: float = DEFAULT_MFU, bandwidth_util: float = DEFAULT_BANDWIDTH_UTIL,
               generate_once: bool = False) -> dict:
    """Every job of a table (methods x tasks x seeds): GPU-hours split into training and evaluation,
    and the longest job (the wall-clock floor whatever the number of GPUs)."""
    jobs = [job_cost(cfg, v, t, gpu, mfu, bandwidth_util, generate_once) for v in cfg["methods"] for t in cfg["tasks"]]
    seeds = len(cfg["seeds"])
    return {
        "table": cfg["table"], "jobs": len(jobs) * seeds,
        "train_gpu_hours": seeds * sum(j["train_seconds"] for j in jobs) / 3600,
        "eval_gpu_hours": seeds * sum(j["eval_seconds"] for j in jobs) / 3600,
        "gpu_hours": seeds * sum(j["seconds"] for j in jobs) / 3600,
        "longest_job_hours": max(j["seconds"] for j in jobs) / 3600,
        "per_job": jobs,
    }


def wall_clock_hours(cost: dict, n_gpus: int) -> float:
    """Jobs take one GPU each: total / N, never below the longest job."""
    return max(cost["gpu_hours"] / max(n_gpus, 1), cost["longest_job_hours"])


def bill(paths: dict, gpu_key: str, n_gpus: int, mfu: float = DEFAULT_MFU,
         bandwidth_util: float = DEFAULT_BANDWIDTH_UTIL, generate_once: bool = False) -> tuple[str, list[dict]]:
    """A printable table (one row per table config, then ``all``) and its numbers."""
    if gpu_key not in GPUS:
        raise ConfigError(f"--gpu {gpu_key!r}: allowed {', '.join(GPUS)}")
    gpu = GPUS[gpu_key]
    rows = [table_cost(load_table(p), gpu, mfu, bandwidth_util, generate_once) for p in paths.values()]
    total = {"table": "all", "jobs": sum(r["jobs"] for r in rows),
             **{k: sum(r[k] for r in rows) for k in ("train_gpu_hours", "eval_gpu_hours", "gpu_hours")},
             "longest_job_hours": max((r["longest_job_hours"] for r in rows), default=0.0)}
    lines = [f"analytic estimate on {gpu.name}: bf16 {gpu.bf16_flops / 1e12:.0f} TFLOP/s x {mfu:.0%} utilisation "
             f"(training, prompts), {gpu.bandwidth / 1e12:.2f} TB/s x {bandwidth_util:.0%} (decode steps); "
             f"generation {'once per run' if generate_once else 'as each suite selects checkpoints'}; 1 GPU per job",
             f"| table | jobs | train GPU-h | eval/generation GPU-h | GPU-h | wall-clock h at {n_gpus} GPU |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows + [total]:
        lines.append(f"| {r['table']} | {r['jobs']} | {r['train_gpu_hours']:.1f} | {r['eval_gpu_hours']:.1f} | "
                     f"{r['gpu_hours']:.1f} | {wall_clock_hours(r, n_gpus):.1f} |")
    return "\n".join(lines), rows + [total]


__all__ = ["DATASETS", "GPUS", "adapter_flops", "bill", "forward_flops", "job_cost", "table_cost", "wall_clock_hours"]
