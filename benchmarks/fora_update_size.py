"""How far 20 AdamW steps move FoRA's weight under each reading of 004 §3.3, against LoRA (issue 18 §1).

004 §3.3 scales A~'s spectral coefficients s "by Var(A')/Var(A~)". ``init_scale='variance_ratio'``
reads that as written; ``'std_ratio'`` takes its square root (the factor that equalises the
variances). B~ starts at zero, so A~'s size sets the size of every update; the two readings differ
by sqrt(Var(A')/Var(A~)), ~10^3 at the paper's shapes (adapters/fora.py, :class:`FoRALinear`).

What is measured, per paper setting (one row per distinct FoRA/LoRA recipe of the table's config):
one ``hidden x hidden`` linear layer (the q projection of the table's backbone, width from
config/architectures/<backbone>.json) with a random W0 (N(0, 1/d)), adapted once with FoRA (the
config's r, n, alpha, dropout; each reading) and once with LoRA (the LoRA row of the same config:
its r, alpha, dropout), trained 20 AdamW steps at the recipe's peak learning rate and weight decay
(constant: the recipes' warmup would only shrink both sides alike), batch 64 rows of N(0, 1) inputs,
the same data for every method. Printed: ||dW||_F of FoRA / ||dW||_F of LoRA after 20 steps, for
two objectives:

* ``regression``: MSE toward ``x (W0 + E)^T``, E ~ N(0, 1/d) fixed (a random target update);
* ``classification``: cross-entropy of a fixed random 2-way readout of the layer's output, labels
  ``x . u > 0`` for a fixed random u (a random linear task, as the GLUE/ViT heads see).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/fora_update_size.py [--steps 20] [--only glue_base]

The learning rates and shapes are read from the configs (config/<table>.yaml), which cite FoRA's
Tables 6-9; DFoRA shares FoRA's init (its dW also holds the magnitude change, so it is not shown).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from adapters import apply_method  # noqa: E402
from harness.config import ROOT, job_settings, load_table  # noqa: E402

# (paper setting, table config, FoRA variant, LoRA variant)
SETTINGS = [
    ("T6 base", "glue_base", "fora", "lora"),
    ("T6 large", "glue_large", "fora", "lora"),
    ("T7 LLaMA2-7B", "math_llama2_7b", "fora_1ep", "lora_1ep"),
    ("T7 LLaMA2-13B", "math_llama2_13b", "fora_1ep", "lora_1ep"),
    ("T7 LLaMA3-8B", "math_llama3_8b", "fora_1ep", "lora_1ep"),
    ("T8 LLaMA-7B", "commonsense_llama_7b", "fora", "lora"),
    ("T8 LLaMA-13B", "commonsense_llama_13b", "fora", "lora"),
    ("T8 LLaMA2-7B", "commonsense_llama2_7b", "fora", "lora"),
    ("T8 LLaMA3-8B", "commonsense_llama3_8b", "fora", "lora"),
    ("T9 ViT-base", "vit_fora_base", "fora", "lora"),
    ("T9 ViT-large", "vit_fora_large", "fora", "lora"),
]
READINGS = ("variance_ratio", "std_ratio")
OBJECTIVES = ("regression", "classification")
BATCH = 64


@dataclass(frozen=True)
class Recipe:
    """What one side of a comparison trains with."""

    method: str
    hparams: dict
    lr: float
    weight_decay: float

    def describe(self) -> str:
        h = self.hparams
        budget = f"n {h['n']} " if "n" in h else ""
        return f"{budget}r {h['r']} a {h.get('alpha', 2 * h['r']):g} lr {self.lr:g}"


class _OneLinear(nn.Module):
    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.proj = linear

    def forward(self, x):
        return self.proj(x)


def update_size(width: int, recipe: Recipe, objective: str, steps: int = 20, seed: int = 0) -> float:
    """||dW||_F of ``recipe``'s adapter on a ``width x width`` layer after ``steps`` AdamW steps.

    W0, the data and the task are drawn from ``seed`` alone, so every recipe sees the same ones."""
    g = torch.Generator().manual_seed(seed)
    base = nn.Linear(width, width, bias=False)
    with torch.no_grad():
        base.weight.copy_(torch.randn(width, width, generator=g) / width**0.5)
    target_update = torch.randn(width, width, generator=g) / width**0.5
    readout = torch.randn(2, width, generator=g) / width**0.5
    teacher = torch.randn(width, generator=g)
    model = _OneLinear(base)
    apply_method(model, recipe.method, recipe.hparams, target_modules=["proj"], head_modules=(), seed=seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # adapter dropout
        for _ in range(steps):
            x = torch.randn(BATCH, width, generator=g)
            out = model(x)
            if objective == "regression":
                loss = F.mse_loss(out, x @ (base.weight + target_update).T)
            else:
                loss = F.cross_entropy(out @ readout.T, (x @ teacher > 0).long())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():  # dW^T = (adapted layer)(I) - I W0^T: the same read-out for peft's LoRA and ours
        eye = torch.eye(width)
        return float((model(eye) - eye @ base.weight.T).norm())


def recipes(table: str, fora_variant: str, lora_variant: str) -> list[tuple[str, int, Recipe, Recipe]]:
    """(tasks, width, FoRA recipe, LoRA recipe) for each distinct pair of recipes of ``table``."""
    cfg = load_table(ROOT / "config" / f"{table}.yaml")
    arch = json.loads((ROOT / "config" / "architectures" / f"{cfg['backbone']['name']}.json").read_text())
    width = arch["config"]["hidden_size"]
    rows: dict[str, list] = {}
    for task in cfg["tasks"]:
        pair = []
        for variant in (fora_variant, lora_variant):
            s = job_settings(cfg, variant, task, 0)
            pair.append(Recipe(s.method, dict(s.hparams), s.lr, s.weight_decay))
        key = json.dumps([[r.hparams, r.lr, r.weight_decay] for r in pair], sort_keys=True)
        if key in rows:
            rows[key][0] += f", {task}"
        else:
            rows[key] = [task, width, *pair]
    return [tuple(row) for row in rows.values()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", help="table configs to run (default: all of FoRA Tables 6-9)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch={torch.__version__} python={platform.python_version()} steps={args.steps} batch={BATCH} "
          f"date={time.strftime('%Y-%m-%d')}")
    print("||dW||_F after the steps; FoRA columns are FoRA / LoRA (same layer, data and objective)\n")
    head = ["setting", "tasks", "d", "FoRA recipe", "LoRA recipe"]
    for obj in OBJECTIVES:
        head += [f"LoRA ||dW|| ({obj[:5]})"] + [f"{r} / LoRA ({obj[:5]})" for r in READINGS]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * 5 + "---:|" * (len(head) - 5))
    start = time.time()
    for name, table, fora_variant, lora_variant in SETTINGS:
        if args.only and table not in args.only:
            continue
        for task, width, fora, lora in recipes(table, fora_variant, lora_variant):
            cells = [name, task, str(width), fora.describe(), lora.describe()]
            for obj in OBJECTIVES:
                ref = update_size(width, lora, obj, args.steps)
                cells.append(f"{ref:.3g}")
                for reading in READINGS:
                    ours = Recipe(fora.method, {**fora.hparams, "init_scale": reading}, fora.lr, fora.weight_decay)
                    cells.append(f"{update_size(width, ours, obj, args.steps) / ref:.3g}")
            print("| " + " | ".join(cells) + " |", flush=True)
    print(f"\n{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
