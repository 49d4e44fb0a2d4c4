"""The GPU paths in one short run (issue 20 §3); ``benchmarks/gpu_check.sh`` calls it.

Prints ONE table with three parts:

1. train step: each method's median step time and peak memory relative to LoRA r=8, bf16 autocast,
   on a RoBERTa-base-shaped classifier (4 layers, batch 8 x 128) and on one LLaMA-7B-shaped block
   (with its embeddings and LM head, batch 2 x 256); the code is benchmarks/step_time.py's
   (:func:`step_time.run_one`), here all methods in one process, one after the other
   (peak memory on CUDA only: ``max_memory_allocated`` after a reset; a CPU process's resident set does
   not go down between methods, step_time.py's one-process-per-method run measures CPU memory);
2. generation: a small LLaMA-shaped causal LM built from a config (random weights, seed 0), prompts of
   different lengths, HF ``generate`` with left padding and the attention mask, greedy and 4 beams:
   time per item at batch 1 and at batch B, the speedup, and whether every generated sequence is equal;
3. kill/resume: one tiny training job (tests/data/tiny_config, LoRA on MiniLM, 3 epochs) killed with
   SIGKILL during its second epoch and rerun from its checkpoint, against the same job uninterrupted:
   equal metric and equal adapter tensors (``CUBLAS_WORKSPACE_CONFIG`` set by the shell script).

``--device cpu`` runs small shapes (the CI path, tests/test_gpu_check.py); ``--device cuda`` the
shapes above. Everything is seeded; nothing is downloaded (the tiny job's model and data ship with
packages).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
import step_time  # noqa: E402  (benchmarks/ is not a package)

# What runs where: (shape, batch, seq, warmup, steps) per device.
STEP_SHAPES = {
    "cuda": [("roberta-base", 8, 128, 3, 10), ("llama-7b-block", 2, 256, 2, 5)],
    "cpu": [("roberta-small", 4, 32, 1, 3), ("llama-small-block", 2, 32, 1, 3)],
}
GEN = {  # LlamaConfig sizes, items, new tokens, batch
    "cuda": (dict(hidden_size=1024, num_hidden_layers=8, num_attention_heads=16, intermediate_size=2816,
                  vocab_size=32000), 32, 64, 8),
    "cpu": (dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=172,
                 vocab_size=500), 8, 8, 4),
}
TINY_CONFIG = ROOT / "tests" / "data" / "tiny_config" / "tiny.yaml"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_rows(device: str, labels: list[str]) -> list[dict]:
    """step_time.run_one for every label at every shape of ``device``, bf16 autocast; ratios to LoRA r=8."""
    rows, cuda = [], device.startswith("cuda")
    for shape, batch, seq, warmup, steps in STEP_SHAPES[device.split(":")[0]]:
        res = {}
        for label in [step_time.REFERENCE] + [l for l in labels if l != step_time.REFERENCE]:
            try:
                res[label] = step_time.run_one(label, device, torch.get_num_threads(), warmup, steps, batch, seq,
                                               shape=shape, precision="bf16")
            except Exception as e:  # a method that does not apply to this shape is a row, not a stop
                res[label] = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:80]}
            gc.collect()
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        ref = res[step_time.REFERENCE]
        for label, r in res.items():
            rows.append({"part": f"train step, {shape}, bf16, batch {batch}x{seq}", "what": label, **(
                {"value": r["error"]} if "error" in r else
                {"value": f"{r['ms_median']:.1f} ms" + (f", {r['peak_bytes'] / 2**20:.0f} MB" if cuda else ""),
                 "ratio": f"x{r['ms_median'] / ref['ms_median']:.2f} time"
                          + (f", x{r['peak_bytes'] / max(ref['peak_bytes'], 1):.2f} memory" if cuda else "")})})
    return rows


def generation_rows(device: str) -> list[dict]:
    """Batch 1 vs batch B, greedy and 4 beams, left padding + attention mask: time per item, equality."""
    import transformers

    sizes, items, new_tokens, batch = GEN[device.split(":")[0]]
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**sizes, pad_token_id=0, bos_token_id=1,
                                                                   eos_token_id=2)).to(device).eval()
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(3, sizes["vocab_size"], (int(n),), generator=g)
               for n in torch.randint(4, 24, (items,), generator=g)]

    def generate(group: list[torch.Tensor], beams: int) -> list[list[int]]:
        width = max(len(p) for p in group)
        ids = torch.zeros(len(group), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(group):  # left padding: every prompt ends at the last column
            ids[i, width - len(p):], mask[i, width - len(p):] = p, 1
        with torch.no_grad(), torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=device != "cpu"):
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, num_beams=beams, do_sample=False, pad_token_id=0)
        return [row[width:].tolist() for row in out.cpu()]

    rows = []
    for beams in (1, 4):
        timed = {}
        for b in (1, batch):
            generate(prompts[:b], beams)  # warm-up
            sync(device)
            t0 = time.perf_counter()
            outs = [seq for i in range(0, items, b) for seq in generate(prompts[i:i + b], beams)]
            sync(device)
            timed[b] = ((time.perf_counter() - t0) / items, outs)
        same = sum(a == c for a, c in zip(timed[1][1], timed[batch][1]))
        rows.append({"part": f"generation, {sizes['num_hidden_layers']}-layer d={sizes['hidden_size']} causal LM, "
                             f"{items} items x {new_tokens} new tokens",
                     "what": f"{'greedy' if beams == 1 else f'{beams} beams'}, batch {batch} vs 1",
                     "value": f"{1000 * timed[batch][0]:.1f} vs {1000 * timed[1][0]:.1f} ms/item; "
                              f"{same}/{items} outputs equal",
                     "ratio": f"x{timed[1][0] / timed[batch][0]:.2f} speedup"})
    return rows


def _tiny_job(workdir: Path, device: str):
    from harness.config import backbone_path, job_settings, load_table
    from harness.prepare import prepare

    cfg = load_table(TINY_CONFIG, "mini")
    cfg["data"] |= {"max_length": 16, "max_train": 64, "max_eval": 32}
    data = workdir / "data"
    if not (data / "meta.json").exists():
        prepare(cfg, "dal_pleasantness", data, backbone_path(cfg))
    s = replace(job_settings(cfg, "lora", "dal_pleasantness", 0), epochs=3, batch_size=8)
    return s, cfg, data


def train_worker(workdir: Path, name: str, device: str, die_at_step: int) -> None:
    """One run of the tiny job into ``workdir/name``; ``die_at_step`` > 0: SIGKILL itself at that
    optimizer step (no clean-up, no atexit: a real kill)."""
    import harness.train as T

    s, cfg, data = _tiny_job(workdir, device)
    if die_at_step:
        real_setup = T.setup_job

        def setup(*a, **kw):
            job = real_setup(*a, **kw)
            step = job.step

            def step_or_die(batch, i, epoch):
                if epoch >= 1 and i >= die_at_step:
                    os.kill(os.getpid(), signal.SIGKILL)
                return step(batch, i, epoch)

            job.step = step_or_die
            return job

        T.setup_job = setup
    T.train(s, cfg, data_dir=data, out_dir=workdir / name, checkpoint=workdir / f"{name}.pt", device=device, threads=1)


def resume_rows(device: str) -> list[dict]:
    """The tiny job uninterrupted vs killed in epoch 2 and rerun: metric and adapter tensors equal?"""
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _tiny_job(work, device)  # prepare once, outside the timed workers

        def run(name: str, die: int) -> int:
            cmd = [sys.executable, __file__, "--device", device, "--train-worker", str(work), name, str(die)]
            return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).returncode

        t0 = time.perf_counter()
        rc_full = run("full", 0)
        rc_killed = run("job", 11)  # 8 steps per epoch: step 11 is mid-epoch 2
        killed_left_checkpoint = (work / "job.pt").exists()
        rc_resumed = run("job", 0)
        seconds = time.perf_counter() - t0
        if rc_full or rc_resumed:
            return [{"part": "kill/resume", "what": "tiny job", "value": f"FAILED (exit {rc_full}, {rc_resumed})"}]
        metric = [json.loads((work / n / "eval.json").read_text())["metric"] for n in ("full", "job")]
        a, b = (load_file(str(work / n / "adapter.safetensors")) for n in ("full", "job"))
        same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return [{"part": "kill/resume, tiny job (LoRA on MiniLM, 3 epochs)",
             "what": "SIGKILL in epoch 2, rerun vs uninterrupted",
             "value": f"killed: exit {rc_killed}, checkpoint left: {killed_left_checkpoint}; metric {metric[1]:.6g} vs "
                      f"{metric[0]:.6g}; adapter tensors equal: {same}",
             "ratio": "EQUAL" if same and metric[0] == metric[1] else "DIFFERENT",
             "seconds": seconds}]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", nargs="*", help="step-time labels (default: every method of step_time.METHODS)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--train-worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.train_worker:
        train_worker(Path(args.train_worker[0]), args.train_worker[1], args.device, int(args.train_worker[2]))
        return 0
    torch.set_num_threads(args.threads)
    labels = args.methods or [m[0] for m in step_time.METHODS]
    t0 = time.perf_counter()
    rows = step_rows(args.device, labels) + generation_rows(args.device) + resume_rows(args.device)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"gpu_check: device={args.device} ({name}) torch={torch.__version__} "
          f"CUBLAS_WORKSPACE_CONFIG={os.environ.get('CUBLAS_WORKSPACE_CONFIG')} "
          f"total {time.perf_counter() - t0:.0f} s\n")
    print(f"| part | what | measured | relative |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['part']} | {r['what']} | {r['value']} | {r.get('ratio', '-')} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    bad = [r for r in rows if r.get("ratio") == "DIFFERENT" or "FAILED" in r["value"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
