"""Helpers of the instruct task YAMLs (lm-eval loads this file through ``!function``).

``load_items``: the evaluation items the harness wrote for this run (TaskManager metadata
``items_file``: one JSON object per line with prompt, answer, set, item_id), restricted to the
task's set (``dataset_kwargs.eval_set``). ``process_choice`` and ``process_math``: LLM-Adapters'
rules; ``process_math_equivalence`` (MATH): ``acc`` by equivalence and ``acc_strict`` by string match;
all are the functions of :mod:`harness.suites.instruct.scoring` the harness also rescores saved
outputs with (the patterns live there only).
"""
from __future__ import annotations

import json
from pathlib import Path

from harness.suites.instruct.scoring import answer_correct, math_correct, math_strict


def load_items(items_file: str | None = None, eval_set: str | None = None, **_):
    from datasets import Dataset, DatasetDict

    if not items_file:
        raise ValueError("instruct tasks read their items from TaskManager(metadata={'items_file': ...})")
    rows = [json.loads(line) for line in Path(items_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["set"] == eval_set]
    if not rows:
        raise ValueError(f"{items_file} holds no item of set {eval_set!r}")
    return DatasetDict({"test": Dataset.from_list(rows)})


def process_choice(doc: dict, results: list[str]) -> dict:
    return {"acc": float(answer_correct(doc["set"], results[0], doc["answer"]))}


def process_math(doc: dict, results: list[str]) -> dict:
    return {"acc": float(math_correct(results[0], doc["answer"]))}


def process_math_equivalence(doc: dict, results: list[str]) -> dict:
    return {"acc": float(answer_correct(doc["set"], results[0], doc["answer"])),
            "acc_strict": float(math_strict(results[0], doc["answer"]))}
