"""Does batched generation change the answers? Batch 1 vs 4, 8, 16 on the mini LLM (issue 20 §1).

A script, not a test:

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python benchmarks/generation_batch.py
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/generation_batch.py --backbone backbones/smollm2-135m --rounds 3

Model: SmolLM2-135M-Instruct converted by the harness's own converter (``smollm2_gguf``, as the
backbone rule does; into a temporary folder unless ``--backbone`` names a converted one), float32
weights, untrained. Items: the first ``--math`` ASDiv items and the first ``--per-set`` items of each
commonsense_mini set (BoolQ, PIQA, SIQA, OBQA), built by ``harness.suites.instruct_mini``, prompted
with LLM-Adapters' evaluation template. Generation: the harness's path
(``instruct.generate_with_lm_eval``: lm-eval's HFLM, left padding with an attention mask, requests
sorted by length), greedy and 4-beam, ``--math-tokens`` / ``--cs-tokens`` new tokens, in float32
and under ``torch.autocast(cpu, bfloat16)``.

Reported per (dtype, decoding, batch): the share of items whose extracted answer
(``instruct.extracted``) and whose raw text differ from batch 1's in the same dtype and decoding,
the accuracy (``instruct.answer_correct``) and its change, and seconds per item with the speedup
over batch 1: every configuration runs once per round, rounds rotate the batch order, and the
speedup is the median over rounds of (batch-1 time / batch-b time) of the same round, so load that
comes and goes on a shared machine hits both sides. Round 0's answers are compared; every later
round's answers are checked equal to round 0's (run-to-run determinism at the same batch).
One torch thread (as a mini job).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.backbones import convert
from harness.models import load_pretrained, load_tokenizer
from harness.suites.instruct.scoring import answer_correct, extracted
from harness.suites.instruct.prompts import eval_prompt
from harness.suites.instruct.lm_eval_bridge import generate_with_lm_eval
from harness.suites.instruct.mini import COMMONSENSE_FILES, asdiv_items, commonsense_items

BATCHES = (1, 4, 8, 16)
DECODINGS = {"greedy": 1, "4-beam": 4}
DTYPES = ("float32", "bf16-autocast")


def mini_items(n_math: int, per_set: int) -> dict[str, list[dict]]:
    """task -> items (prompt, answer, set, item_id), the first of each file (no sampling)."""
    def as_eval(rows):
        return [{"prompt": eval_prompt(r["instruction"], r["input"]), "answer": r["answer"], "set": r["set"],
                 "item_id": r["item_id"]} for r in rows]

    cs = [r for s in COMMONSENSE_FILES for r in commonsense_items(s)[0][:per_set]]
    return {"asdiv": as_eval(asdiv_items()[0][:n_math]), "commonsense_mini": as_eval(cs)}


def generate(model, tok, items, tokens, beams, batch, dtype) -> tuple[list[str], float]:
    """Generated texts of all tasks' items (task order) and the wall-clock seconds it took."""
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bf16-autocast" else nullcontext()
    texts = []
    start = time.perf_counter()
    with autocast:
        for task, rows in items.items():
            texts += generate_with_lm_eval(model, tok, rows, {"num_beams": beams, "max_new_tokens": tokens[task]},
                                           batch_size=batch)[0]
    return texts, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", help="a converted SmolLM2 folder (default: convert into a temporary folder)")
    ap.add_argument("--math", type=int, default=8, help="ASDiv items")
    ap.add_argument("--per-set", type=int, default=2, help="items per commonsense_mini set")
    ap.add_argument("--math-tokens", type=int, default=32)
    ap.add_argument("--cs-tokens", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", type=int, nargs="+", default=list(BATCHES), help="batch sizes (1 is added)")
    ap.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    ap.add_argument("--decodings", nargs="+", choices=list(DECODINGS), default=list(DECODINGS))
    args = ap.parse_args()
    batches = tuple(sorted({1, *args.batches}))
    decodings = {k: DECODINGS[k] for k in args.decodings}
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="smollm2-") as tmp:
        path = args.backbone
        if path is None:
            path = str(Path(tmp) / "smollm2-135m")
            convert("smollm2_gguf", path)
        model = load_pretrained("AutoModelForCausalLM", path, dtype=torch.float32, what="causal LM")
        tok = load_tokenizer(path)
    model.eval()
    items = mini_items(args.math, args.per_set)
    rows = [r for task in items.values() for r in task]
    tokens = {"asdiv": args.math_tokens, "commonsense_mini": args.cs_tokens}
    print(f"{len(rows)} items ({', '.join(f'{k}: {len(v)}' for k, v in items.items())}); new tokens {tokens}; "
          f"{args.rounds} rounds; torch threads {args.threads}", flush=True)

    configs = [(d, dec, b) for d in args.dtypes for dec in decodings for b in batches]
    texts: dict[tuple, list[str]] = {}
    seconds: dict[tuple, list[float]] = {c: [] for c in configs}
    unstable: set[tuple] = set()
    for rnd in range(args.rounds):
        for d in args.dtypes:
            for dec, beams in decodings.items():
                order = batches[rnd % len(batches):] + batches[:rnd % len(batches)]
                for b in order:
                    out, s = generate(model, tok, items, tokens, beams, b, d)
                    seconds[(d, dec, b)].append(s)
                    if rnd == 0:
                        texts[(d, dec, b)] = out
                    elif out != texts[(d, dec, b)]:
                        unstable.add((d, dec, b))
                    print(f"  round {rnd} {d} {dec} batch {b}: {s:.1f} s", flush=True)
                    if rnd == 0 and b != 1:  # as soon as it is known (batch 1 runs first in round 0)
                        changed = sum(extracted(r["set"], x) != extracted(r["set"], y)
                                      for r, x, y in zip(rows, texts[(d, dec, 1)], out))
                        print(f"  -> {changed}/{len(rows)} extracted answers differ from batch 1", flush=True)

    print(f"\n{'dtype':14} {'decoding':8} {'batch':>5} {'answers differ':>15} {'texts differ':>13} "
          f"{'accuracy':>9} {'change':>7} {'s/item':>7} {'speedup':>8}")
    for d, dec, b in configs:
        ref, out = texts[(d, dec, 1)], texts[(d, dec, b)]
        ans_ref = [extracted(r["set"], o) for r, o in zip(rows, ref)]
        ans = [extracted(r["set"], o) for r, o in zip(rows, out)]
        acc_ref = 100 * statistics.mean(answer_correct(r["set"], o, r["answer"]) for r, o in zip(rows, ref))
        acc = 100 * statistics.mean(answer_correct(r["set"], o, r["answer"]) for r, o in zip(rows, out))
        n_ans = sum(a != x for a, x in zip(ans_ref, ans))
        n_txt = sum(a != x for a, x in zip(ref, out))
        speedup = statistics.median(t1 / tb for t1, tb in zip(seconds[(d, dec, 1)], seconds[(d, dec, b)]))
        print(f"{d:14} {dec:8} {b:>5} {f'{n_ans}/{len(rows)}':>15} {f'{n_txt}/{len(rows)}':>13} "
              f"{acc:>8.1f}% {acc - acc_ref:>+7.1f} {statistics.median(seconds[(d, dec, b)]) / len(rows):>7.2f} "
              f"{speedup:>7.2f}x")
    for dec in decodings if len(args.dtypes) == 2 else ():
        n = sum(a != x for a, x in zip(texts[("float32", dec, 1)], texts[("bf16-autocast", dec, 1)]))
        print(f"bf16 autocast vs float32, {dec}, batch 1: {n}/{len(rows)} texts differ")
    print("same answers in every round at the same batch: "
          + ("yes" if not unstable else f"NO for {sorted(unstable)}"))


if __name__ == "__main__":
    main()
