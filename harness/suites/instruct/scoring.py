"""Answer extraction and scoring as LLM-Adapters did: the one home of the answer patterns. The
lm-eval task YAMLs (``lm_eval_tasks/``) score through these functions (``!function utils.*``), and
the harness rescores saved outputs with them.

MATH is the exception to LLM-Adapters' rules (issue 18 §4): its column is scored by equivalence
(:func:`harness.suites.instruct.math_answers.math_equivalent`: math-verify and lm-eval's MATH
graders), and the strict string match is kept beside it as the ``math_strict`` column
(:func:`strict_scores`). GSM8K and ASDiv keep LLM-Adapters' numeric rule."""
from __future__ import annotations

import math
import re

import numpy as np

from harness.suites.instruct.math_answers import FINAL_ANSWER_MARKER, final_answer, math_equivalent, math_strict

__all__ = ["CHOICE_PATTERNS", "COMMONSENSE_SETS", "FINAL_ANSWER", "MATH_SETS", "answer_correct", "chance_scores",
           "extract_choice", "extract_number", "extracted", "math_correct", "math_strict", "per_set_scores",
           "strict_scores"]

# ------------------------------------------------------------------ answer extraction
# LLM-Adapters commonsense_evaluate.py extract_answer: the first match, compared exactly with the
# label; no match scores wrong. The task YAMLs call :func:`answer_correct` (utils.process_choice).
CHOICE_PATTERNS = {
    "boolq": r"true|false",
    "piqa": r"solution1|solution2",
    "siqa": r"answer1|answer2|answer3|answer4|answer5",
    "arc_e": r"answer1|answer2|answer3|answer4|answer5",
    "arc_c": r"answer1|answer2|answer3|answer4|answer5",
    "obqa": r"answer1|answer2|answer3|answer4|answer5",
    "hellaswag": r"ending1|ending2|ending3|ending4",
    "winogrande": r"option1|option2",
}
COMMONSENSE_SETS = tuple(CHOICE_PATTERNS)
# our set name -> LLM-Adapters' dataset folder (dataset/<folder>/test.json) and the papers' column
LLM_ADAPTERS_FOLDER = {"boolq": "boolq", "piqa": "piqa", "siqa": "social_i_qa", "hellaswag": "hellaswag",
                       "winogrande": "winogrande", "arc_e": "ARC-Easy", "arc_c": "ARC-Challenge", "obqa": "openbookqa"}
PAPER_COLUMN = {"boolq": "BoolQ", "piqa": "PIQA", "siqa": "SIQA", "hellaswag": "HellaS.", "winogrande": "WinoG.",
                "arc_e": "ARC-e", "arc_c": "ARC-c", "obqa": "OBQA", "gsm8k": "GSM8K", "math": "MATH", "asdiv": "ASDiv"}
MATH_SETS = ("gsm8k", "math", "asdiv")
NUMBER = re.compile(r"-?\d+\.?\d*")  # LLM-Adapters evaluate.py extract_answer_number
MATH_TOLERANCE = 0.001  # evaluate.py: `miss = 0.001`, correct if abs(label - predict) <= miss
FINAL_ANSWER = f"{FINAL_ANSWER_MARKER}: "  # FoRA Appendix C's responses end with "The final answer is: <answer>"
# sets scored by equivalence, and the name of the strict string-match column recorded beside each
STRICT_COLUMNS = {"math": "math_strict"}


def extract_choice(eval_set: str, text: str) -> str:
    """The first option name in ``text`` (LLM-Adapters' extract_answer), or "" when none appears."""
    found = re.findall(CHOICE_PATTERNS[eval_set], text.strip())
    return found[0] if found else ""


def extract_number(text: str) -> float:
    """LLM-Adapters' extract_answer_number: commas removed, the last ``-?\\d+\\.?\\d*``; inf when none."""
    found = NUMBER.findall(text.replace(",", ""))
    return float(found[-1]) if found else math.inf


def _as_number(label: str) -> float | None:
    try:
        value = float(label.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def math_correct(text: str, label: str) -> bool:
    """GSM8K/ASDiv: LLM-Adapters' rule for numeric labels (last number within 0.001); a label that
    is not a number is matched as a string (:func:`math_strict`)."""
    number = _as_number(label)
    if number is not None:
        return abs(number - extract_number(text)) <= MATH_TOLERANCE
    return math_strict(text, label)


def answer_correct(eval_set: str, text: str, label: str) -> bool:
    """Is the generated ``text`` right for ``label``, under the set's rule (MATH: by equivalence)."""
    if eval_set in STRICT_COLUMNS:
        return math_equivalent(text, label)
    if eval_set in MATH_SETS:
        return math_correct(text, label)
    return extract_choice(eval_set, text) == label


def extracted(eval_set: str, text: str) -> str:
    """What the rule read from ``text`` (for the saved per-item record)."""
    if eval_set in STRICT_COLUMNS:
        return final_answer(text) or ""
    if eval_set in MATH_SETS:
        number = extract_number(text)
        return "" if math.isinf(number) else repr(number)
    return extract_choice(eval_set, text)


def per_set_scores(saved: dict[str, np.ndarray]) -> dict[str, float]:
    """Accuracy (0-100) per evaluation set, recomputed from the saved outputs and labels."""
    sets, outputs, labels = (np.asarray(saved[k]).astype(str) for k in ("sets", "outputs", "labels"))
    scores = {}
    for s in dict.fromkeys(sets.tolist()):
        ix = np.flatnonzero(sets == s)
        scores[s] = 100.0 * float(np.mean([answer_correct(s, outputs[i], labels[i]) for i in ix]))
    return scores


def strict_scores(saved: dict[str, np.ndarray]) -> dict[str, float]:
    """The strict string-match column (0-100) of every set scored by equivalence: ``math_strict``
    (:func:`math_strict`) beside the MATH column; empty when no such set was scored."""
    sets, outputs, labels = (np.asarray(saved[k]).astype(str) for k in ("sets", "outputs", "labels"))
    return {column: 100.0 * float(np.mean([math_strict(outputs[i], labels[i]) for i in np.flatnonzero(sets == s)]))
            for s, column in STRICT_COLUMNS.items() if (sets == s).any()}


def chance_scores(sets: list[str], prompts: list[str]) -> dict[str, float]:
    """Accuracy (0-100) of a uniform guess among each item's options, per set (math: 0)."""
    per: dict[str, list[float]] = {}
    for s, p in zip(sets, prompts):
        options = p.rsplit("Answer format:", 1)[-1].split("\n")[0].strip().split("/") if s not in MATH_SETS else []
        per.setdefault(s, []).append(100.0 / len(options) if options else 0.0)
    return {s: float(np.mean(v)) for s, v in per.items()}
