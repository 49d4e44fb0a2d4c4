"""The ``instruct`` suite: instruction tuning of a causal LM, scored by generating answers and
extracting them as LLM-Adapters did (FoRA Tables 2-3 and DoRA followed its protocol).

Tasks (one training run per (method, task, seed); the task's 'validation' split is what is scored):

  gsm8k            train on GSM8K train, score GSM8K test on the final number          FoRA Table 2
  math             train on MATH train, score MATH test on the final answer            FoRA Table 2
  commonsense170k  train on LLM-Adapters' commonsense_170k.json once, score eight sets FoRA Table 3
                   (boolq piqa siqa hellaswag winogrande arc_e arc_c obqa); the metric is the mean of
                   the eight per-set accuracies (the papers' "Avg." column), per-set scores are saved
  asdiv, commonsense_mini   the mini stand-ins (:mod:`harness.suites.instruct_mini`)

How a task maps onto the shared loop: prep loads the task's training items ('train') and the items
of every set it is scored on ('validation', each item tagged with its ``set``), subsamples both
stratified by set, tokenizes the training text once and keeps the evaluation prompts as text, then
generates once with the untrained backbone (the table's floor, :meth:`InstructSuite.baseline`).
The loop trains once per (method, task, seed); :meth:`InstructSuite.evaluate` generates on the
validation items and returns the metric (the mean of the per-set accuracies) and per-item arrays
(``predictions.npz``: item_ids, sets, labels, outputs, extracted, correct), from which
:meth:`InstructSuite.score` and :func:`per_set_scores` recompute the metric and the per-set columns.

Every item is in LLM-Adapters' format: ``instruction`` (options and the "Answer format: ..." line
inside it), ``input`` (empty), ``output`` (the training response, e.g. "the correct answer is
true"), ``answer`` (the label). Training text is LLM-Adapters' ``finetune.py`` Alpaca template
with the output appended; evaluation prompts are the copy in ``commonsense_evaluate.py`` /
``evaluate.py``, whose whitespace differs (both reproduced byte for byte below).

Training (LLM-Adapters ``finetune.py``): tokenized once in prep, truncated to ``cutoff_len``
(256), EOS appended when there is room, loss on the prompt too (``train_on_inputs=True``);
batches are right-padded with an attention mask and labels -100 on padding only.

Evaluation runs through lm-evaluation-harness (our task YAMLs in ``instruct_tasks/``:
``generate_until``, regex filter + take_first, exact match; numeric tolerance for math) on the
in-memory model (``HFLM(pretrained=model)``). Two lm-eval behaviours are designed around:
its string stop criterion assumes one row per request and, with beam search (rows = requests x
beams), stops the whole batch when the first rows end, which makes answers depend on the batch
(:class:`ProtocolHFLM` leaves stopping to ``generate``'s own EOS handling when beams > 1 and cuts
at the stop strings afterwards, as LLM-Adapters' ``split('### Response:')[1]`` did); and
``simple_evaluate`` reseeds the global RNGs (we pass no seeds and restore the RNG states, so a
per-epoch evaluation does not change the training run). Generation is always left-padded with an
attention mask (LLM-Adapters issue #61: batched generation without one corrupts answers).
Log-likelihood multiple choice is a different protocol and is never used here.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.sources import load_hub_dataset, sha256
from harness.suites.base import DataError, Suite, TaskSpec, data_size, first_line

__all__ = [
    "ALPACA_EVAL", "ALPACA_EVAL_WITH_INPUT", "ALPACA_TRAIN", "ALPACA_TRAIN_WITH_INPUT", "COMMONSENSE_SETS",
    "InstructSuite", "InstructTask", "answer_correct", "eval_prompt", "extract_choice", "extract_number",
    "per_set_scores", "train_text",
]

log = logging.getLogger(__name__)

TASKS_DIR = Path(__file__).resolve().parent / "instruct_tasks"
LLM_ADAPTERS_URL = "https://github.com/AGI-Edgerunners/LLM-Adapters"

# ------------------------------------------------------------------ the Alpaca templates
# LLM-Adapters finetune.py, generate_prompt(data_point) (training; the output is appended):
# note the two spaces after "request." and the 16-space line between instruction and response.
ALPACA_TRAIN = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.  \n\n"
    "                ### Instruction:\n"
    "                {instruction}\n"
    "                \n"
    "                ### Response:\n"
    "                {output}"
)
ALPACA_TRAIN_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request. \n\n"
    "                ### Instruction:\n"
    "                {instruction}\n"
    "                \n"
    "                ### Input:\n"
    "                {input}\n"
    "                \n"
    "                ### Response:\n"
    "                {output}"
)
# LLM-Adapters commonsense_evaluate.py and evaluate.py (identical), generate_prompt(instruction, input):
# one space after "request.", empty lines, and the prompt ends with 16 spaces after "### Response:\n".
ALPACA_EVAL = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request. \n\n"
    "                ### Instruction:\n"
    "                {instruction}\n"
    "\n"
    "                ### Response:\n"
    "                "
)
ALPACA_EVAL_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "                ### Instruction:\n"
    "                {instruction}\n"
    "\n"
    "                ### Input:\n"
    "                {input}\n"
    "\n"
    "                ### Response:\n"
    "                "
)
DTYPES = ("float32", "bfloat16", "float16")


def train_text(instruction: str, output: str, input: str = "") -> str:  # noqa: A002 - LLM-Adapters' field name
    """The training text of one item (prompt and response), as LLM-Adapters' finetune.py builds it."""
    if input:
        return ALPACA_TRAIN_WITH_INPUT.format(instruction=instruction, input=input, output=output)
    return ALPACA_TRAIN.format(instruction=instruction, output=output)


def eval_prompt(instruction: str, input: str = "") -> str:  # noqa: A002
    """The generation prompt of one item, as LLM-Adapters' commonsense_evaluate.py / evaluate.py build it."""
    if input:
        return ALPACA_EVAL_WITH_INPUT.format(instruction=instruction, input=input)
    return ALPACA_EVAL.format(instruction=instruction)


# ------------------------------------------------------------------ answer extraction
# LLM-Adapters commonsense_evaluate.py extract_answer: the first match, compared exactly with the
# label; no match scores wrong. The same patterns are in the task YAMLs (regex filter).
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
FINAL_ANSWER = "The final answer is: "  # FoRA Appendix C's responses end with "The final answer is: <answer>"


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


def _final_answer_text(text: str) -> str:
    """MATH labels that are not numbers (``\\frac{1}{2}``, ``14\\pi``): the text after the last
    "The final answer is:", spaces and ``$`` removed, trailing period dropped."""
    tail = text.rsplit(FINAL_ANSWER.strip(), 1)[-1] if FINAL_ANSWER.strip() in text else ""
    return re.sub(r"[\s$]", "", tail).rstrip(".")


def math_correct(text: str, label: str) -> bool:
    """Numeric labels: LLM-Adapters' rule (last number within 0.001). Other MATH labels (chosen:
    the papers state only "the final numeric answer"): the final-answer text equals the label,
    spaces and ``$`` ignored."""
    number = _as_number(label)
    if number is not None:
        return abs(number - extract_number(text)) <= MATH_TOLERANCE
    return bool(label.strip()) and _final_answer_text(text) == re.sub(r"[\s$]", "", label)


def answer_correct(eval_set: str, text: str, label: str) -> bool:
    """Is the generated ``text`` right for ``label``, under the set's extraction rule."""
    if eval_set in MATH_SETS:
        return math_correct(text, label)
    return extract_choice(eval_set, text) == label


def extracted(eval_set: str, text: str) -> str:
    """What the rule read from ``text`` (for the saved per-item record)."""
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


def chance_scores(sets: list[str], prompts: list[str]) -> dict[str, float]:
    """Accuracy (0-100) of a uniform guess among each item's options, per set (math: 0)."""
    per: dict[str, list[float]] = {}
    for s, p in zip(sets, prompts):
        options = p.rsplit("Answer format:", 1)[-1].split("\n")[0].strip().split("/") if s not in MATH_SETS else []
        per.setdefault(s, []).append(100.0 / len(options) if options else 0.0)
    return {s: float(np.mean(v)) for s, v in per.items()}


# ------------------------------------------------------------------ tasks
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


TASKS: dict[str, InstructTask] = {
    t.name: t
    for t in [
        InstructTask(name="gsm8k", kind="math", eval_sets=("gsm8k",), num_labels=0, metric="accuracy",
                     description="GSM8K (openai/gsm8k, main): train split, scored on test by the final number",
                     max_new_tokens=256, hub_id="openai/gsm8k", hub_config="main"),
        InstructTask(name="math", kind="math", eval_sets=("math",), num_labels=0, metric="accuracy",
                     description="MATH (Hendrycks et al.): train split, scored on test by the final answer",
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
GSM8K_SUFFIX = "\nAnswer the above question. First think step by step and then answer the final number.\n"
# FoRA §4.2: "the same prompt template as in (Zhang et al., 2023b)" (LLaMA-Adapter: Alpaca); its
# Appendix C shows the MATH instruction ending with "Answer the above question. First think step by
# step and then answer the final number." and responses ending "The final answer is: <answer>"
# (the LoftQ/RoSA GSM8K format: "#### " replaced by "The final answer is: ").


# ------------------------------------------------------------------ raw data
def _records_dataset(rows: list[dict], where: str):
    from datasets import Dataset

    cols = ("instruction", "input", "output", "answer", "set", "item_id")
    for i, r in enumerate(rows[:1] + rows[-1:]):
        missing = [c for c in ("instruction", "output", "answer") if c not in r]
        if missing:
            raise DataError(f"{where}: item {i} lacks {missing}: items need LLM-Adapters' fields "
                            "instruction, input, output, answer")
    return Dataset.from_dict({c: [str(r.get(c, "") or "") for r in rows] for c in cols})


def _read_json_items(path: Path, eval_set: str) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
        items = json.loads(text) if text.lstrip()[:1] == "[" else [json.loads(x) for x in text.splitlines() if x.strip()]
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} ({first_line(exc)}): it must be LLM-Adapters' JSON list of "
                        "{instruction, input, output, answer}") from exc
    if not items:
        raise DataError(f"{path} holds no items")
    for i, it in enumerate(items):
        it.setdefault("input", "")
        it["set"], it["item_id"] = eval_set, f"{eval_set}:{i}"
    return items


def _find(root: Path, candidates: list[str], what: str, hint: str) -> Path:
    for c in candidates:
        if (root / c).is_file():
            return root / c
    raise DataError(f"data_dir {root} has no {what} (looked for {', '.join(candidates)}): {hint}")


def _commonsense_from_dir(spec: InstructTask, root: Path):
    """LLM-Adapters' layout (a clone of the repository, or DoRA's): ft-training_set/commonsense_170k.json
    or commonsense_170k.json, and dataset/<name>/test.json for the eight sets."""
    hint = (f"clone {LLM_ADAPTERS_URL} with its large files (git lfs pull: commonsense_170k.json and "
            "hellaswag are large files) and set `data.data_dir` to the clone")
    train_file = _find(root, ["ft-training_set/commonsense_170k.json", "commonsense_170k.json"],
                       "commonsense_170k.json", hint)
    train = _read_json_items(train_file, "commonsense170k")
    for it in train:  # which of the eight sets an item comes from, read from its answer format
        it["set"] = _set_of_instruction(it["instruction"])
    evals: list[dict] = []
    files = {"train": str(train_file.resolve())}
    for s in spec.eval_sets:
        f = _find(root, [f"dataset/{LLM_ADAPTERS_FOLDER[s]}/test.json", f"{LLM_ADAPTERS_FOLDER[s]}/test.json"],
                  f"the {s} test set", hint)
        evals += _read_json_items(f, s)
        files[s] = str(f.resolve())
    return train, evals, files


def _set_of_instruction(instruction: str) -> str:
    """The commonsense set an LLM-Adapters instruction belongs to, from its opening and answer format."""
    tail = instruction.rsplit("Answer format:", 1)[-1]
    if "true/false" in tail:
        return "boolq"
    if "solution1" in tail:
        return "piqa"
    if "ending1" in tail:
        return "hellaswag"
    if "option1" in tail:
        return "winogrande"
    return "qa"  # SIQA / ARC / OBQA share the answerN format; they are one stratum for subsampling


def _math_from_dir(spec: InstructTask, root: Path):
    hint = (f"write LLM-Adapters-format files (JSON list of instruction/input/output/answer) train.json and test.json "
            f"into {root}/{spec.name}/ (LLM-Adapters ships dataset/gsm8k/test.json), or unset `data.data_dir` to use the hub")
    base = root / spec.name if (root / spec.name).is_dir() else root
    train_file = _find(base, ["train.json", "train.jsonl"], f"{spec.name} train file", hint)
    test_file = _find(base, ["test.json", "test.jsonl"], f"{spec.name} test file", hint)
    s = spec.eval_sets[0]
    train, evals = _read_json_items(train_file, s), _read_json_items(test_file, s)
    return train, evals, {"train": str(train_file.resolve()), "test": str(test_file.resolve())}


def _boxed(solution: str) -> str | None:
    """The content of the last \\boxed{...} (or \\fbox{...}) of a MATH solution, braces balanced."""
    start = max(solution.rfind("\\boxed"), solution.rfind("\\fbox"))
    if start < 0:
        return None
    i = solution.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(solution)):
        depth += {"{": 1, "}": -1}.get(solution[j], 0)
        if depth == 0:
            return solution[i + 1:j].strip()
    return None


def gsm8k_item(question: str, answer: str, i: int, split: str) -> dict:
    """One GSM8K item in LLM-Adapters' format with FoRA's math template (see GSM8K_SUFFIX)."""
    rationale, _, final = answer.rpartition("####")
    label = final.strip().replace(",", "")
    return {"instruction": question + GSM8K_SUFFIX, "input": "", "output": f"{rationale.rstrip()}\n{FINAL_ANSWER}{label}",
            "answer": label, "set": "gsm8k", "item_id": f"gsm8k:{split}:{i}"}


def math_item(problem: str, solution: str, i: int, split: str) -> dict | None:
    label = _boxed(solution)
    if label is None:
        return None
    return {"instruction": problem + GSM8K_SUFFIX, "input": "", "output": f"{solution.rstrip()}\n{FINAL_ANSWER}{label}",
            "answer": label, "set": "math", "item_id": f"math:{split}:{i}"}


def _math_from_hub(spec: InstructTask):
    hint = (f"on a machine with internet run `python -c \"import datasets; datasets.load_dataset('{spec.hub_id}', "
            f"'{spec.hub_config}').save_to_disk('{spec.name}')\"` and copy it into the Hugging Face cache, or write "
            f"LLM-Adapters-format train.json/test.json into a folder and set `data.data_dir` to it")
    dd, origin = load_hub_dataset(spec.hub_id, spec.hub_config, f"{spec.name} ({spec.hub_id})", hint)
    if "train" not in dd or "test" not in dd:
        raise DataError(f"{spec.hub_id} has splits {sorted(dd)}, not train and test")
    out = {}
    for split in ("train", "test"):
        ds = dd[split]
        if spec.name == "gsm8k":
            rows = [gsm8k_item(r["question"], r["answer"], i, split) for i, r in enumerate(ds)]
        else:
            rows = [m for i, r in enumerate(ds) if (m := math_item(r["problem"], r["solution"], i, split))]
        out[split] = rows
    return out["train"], out["test"], {"hub_id": spec.hub_id, "hub_config": spec.hub_config, "origin": origin}


# ------------------------------------------------------------------ the suite
@dataclass
class EvalCollator:
    """The evaluation 'collate': batches stay lists of items (prompt, answer, set, item_id); it
    carries what :meth:`InstructSuite.evaluate` needs besides the loader: the tokenizer and the
    generation settings (the seam gives evaluate no config)."""

    tokenizer: Any
    generation: dict

    def __call__(self, rows: list[dict]) -> list[dict]:
        return [{k: r[k] for k in ("prompt", "answer", "set", "item_id")} for r in rows]


def generation_settings(spec: InstructTask, cfg: dict) -> dict:
    """num_beams / max_new_tokens: the paper's (LLM-Adapters) unless ``generation`` overrides them
    (a number, or a number per task); recorded with every evaluation."""
    gen = cfg.get("generation") or {}

    def pick(key: str, default):
        value = gen.get(key, default)
        return value.get(spec.name, default) if isinstance(value, dict) else value

    out = {"num_beams": int(pick("num_beams", spec.num_beams)),
           "max_new_tokens": int(pick("max_new_tokens", spec.max_new_tokens)), "do_sample": False}
    out["paper"] = {"num_beams": spec.num_beams, "max_new_tokens": spec.max_new_tokens}
    return out


class InstructSuite(Suite):
    """Causal-LM instruction tuning scored by generation (LLM-Adapters' protocol)."""

    name = "instruct"

    def __init__(self) -> None:
        self._prep_context: tuple[dict, str] | None = None

    @property
    def tasks(self) -> dict[str, InstructTask]:
        from harness.suites import instruct_mini

        return {**TASKS, **instruct_mini.TASKS}

    # ------------------------------------------------------------ prep
    def prep_id(self, cfg: dict, task: str) -> str:
        spec = self.task(task)
        sizes = [data_size(cfg, k, task) or "all" for k in ("max_train", "max_eval")]
        gen = generation_settings(spec, cfg)
        baseline = "-g{num_beams}x{max_new_tokens}".format(**gen) if (cfg.get("generation") or {}).get("baseline", True) else ""
        return f"{cfg['backbone']['name']}-C{cutoff_len(cfg)}-{sizes[0]}-{sizes[1]}{baseline}"

    def load_raw(self, spec: InstructTask, cfg: dict, seed: int):
        """Mini tasks: built from their package's files (``seed`` picks the split). Paper tasks:
        ``data.data_dir`` when set (LLM-Adapters' JSON files), else the hub (math tasks only;
        LLM-Adapters distributes the commonsense files through GitHub, not the hub)."""
        from datasets import DatasetDict

        if spec.build is not None:
            return spec.build(seed)
        data_dir = cfg["data"].get("data_dir")
        if data_dir:
            root = Path(data_dir).expanduser()
            if not root.is_dir():
                raise DataError(f"data_dir {root} does not exist: set `data.data_dir` to a folder with LLM-Adapters' files")
            load = _commonsense_from_dir if spec.kind == "commonsense" else _math_from_dir
            train, evals, files = load(spec, root)
            recipe = {"kind": "data_dir", "path": str(root.resolve()), "files": files,
                      "sha256": {k: sha256(Path(v)) for k, v in files.items()}}
        elif spec.kind == "commonsense":
            raise DataError(
                f"{spec.name} has no hub copy that the papers used: LLM-Adapters ships commonsense_170k.json and the "
                f"eight test sets in its GitHub repository; clone {LLM_ADAPTERS_URL} (git lfs pull for the large "
                "files) and set `data.data_dir` to the clone")
        else:
            train, evals, files = _math_from_hub(spec)
            recipe = {"kind": "hub", **files}
        recipe["splits"] = {"train": "train", "validation": "test (the papers score the test sets)"}
        recipe["format"] = "LLM-Adapters items (instruction, input, output, answer)"
        dd = DatasetDict({"train": _records_dataset(train, "train"), "validation": _records_dataset(evals, "evaluation")})
        return dd, recipe

    def label_key(self, spec: InstructTask) -> str:
        return "set"

    def strata(self, spec: InstructTask, labels: np.ndarray) -> np.ndarray | None:
        """Subsampling strata: the evaluation set (commonsense: each set keeps its share, so
        equal-sized evaluation pools give equal per-set counts when max_eval is a multiple of the
        number of sets); math: uniform."""
        if spec.kind == "math":
            return None
        return np.unique(np.asarray(labels).astype(str), return_inverse=True)[1]

    def preprocess(self, spec: InstructTask, raw, cfg: dict, backbone_path: str):
        """train: input_ids/attention_mask of the training text (LLM-Adapters' tokenize(): truncated
        to cutoff_len, EOS appended if there is room); validation: the evaluation prompt and label.
        ``labels`` holds the answer string in both splits (the collator makes the token labels)."""
        from datasets import DatasetDict

        from harness.models import load_tokenizer

        tok = load_tokenizer(backbone_path)
        cut = cutoff_len(cfg)
        self._prep_context = (cfg, backbone_path)

        def encode(batch: dict) -> dict:
            texts = [train_text(i, o, x) for i, o, x in zip(batch["instruction"], batch["output"], batch["input"])]
            ids = tok(texts, truncation=True, max_length=cut, padding=False)["input_ids"]
            out = []
            for seq in ids:
                seq = list(seq)
                if seq and seq[-1] != tok.eos_token_id and len(seq) < cut:
                    seq.append(tok.eos_token_id)
                out.append(seq)
            return {"input_ids": out, "labels": batch["answer"], "set": batch["set"], "item_id": batch["item_id"]}

        def prompts(batch: dict) -> dict:
            return {"prompt": [eval_prompt(i, x) for i, x in zip(batch["instruction"], batch["input"])],
                    "answer": batch["answer"], "labels": batch["answer"], "set": batch["set"], "item_id": batch["item_id"]}

        train = raw["train"].map(encode, batched=True, remove_columns=raw["train"].column_names, keep_in_memory=True)
        evaluation = raw["validation"].map(prompts, batched=True, remove_columns=raw["validation"].column_names,
                                           keep_in_memory=True)
        lengths = np.array([len(x) for x in train["input_ids"]])
        eval_sets = evaluation["set"]
        return DatasetDict({"train": train, "validation": evaluation}), {
            "tokenizer": getattr(tok, "name_or_path", type(tok).__name__),
            "cutoff_len": cut,
            "train_on_inputs": True,
            "templates": {"train": "LLM-Adapters finetune.py generate_prompt",
                          "eval": "LLM-Adapters commonsense_evaluate.py / evaluate.py generate_prompt"},
            "tokens": {"train": {"mean": float(lengths.mean()), "max": int(lengths.max()),
                                 "n_at_cutoff": int((lengths >= cut).sum())}},
            "eval_sets": {s: eval_sets.count(s) for s in dict.fromkeys(eval_sets)},
            "train_sets": {s: train["set"].count(s) for s in dict.fromkeys(train["set"])},
            "generation": generation_settings(spec, cfg),
        }

    def baseline(self, spec: InstructTask, prepared) -> dict | None:
        """The untrained backbone, generating on the same evaluation items with the same prompts and
        settings (the floor of the table). Off with ``generation.baseline: false``."""
        if self._prep_context is None:
            raise RuntimeError("InstructSuite.baseline needs preprocess() first (it reads the backbone and settings)")
        cfg, backbone_path = self._prep_context
        if not (cfg.get("generation") or {}).get("baseline", True):
            return None
        import torch
        from torch.utils.data import DataLoader

        model = self.load_model(spec, cfg, backbone_path)
        loader = DataLoader(prepared["validation"], batch_size=cfg["train"].get("eval_batch_size", 1), shuffle=False,
                            collate_fn=self.collate(spec, cfg, backbone_path, train=False))
        model.to("cuda" if torch.cuda.is_available() else "cpu")
        value, saved = self.evaluate(model, loader, spec, model.device)
        del model
        chance = chance_scores(prepared["validation"]["set"], prepared["validation"]["prompt"])
        return {"rule": "untrained backbone, same prompts, generation settings and answer extraction", "value": value,
                "per_set": per_set_scores(saved), "generation": loader.collate_fn.generation,
                "no_answer": int(sum(not e for e in saved["extracted"].tolist())),
                "chance": {"rule": "uniform guess among the item's options (0 for math)",
                           "value": float(np.mean(list(chance.values()))), "per_set": chance}}

    # ------------------------------------------------------------ train
    def load_model(self, spec: InstructTask, cfg: dict, backbone_path: str):
        """AutoModelForCausalLM; ``backbone.dtype`` float32 (default) or bfloat16 (paper scale);
        ``train.gradient_checkpointing`` enables it (with input grads, so adapters on frozen layers train)."""
        import torch

        from harness.models import load_pretrained

        name = (cfg.get("backbone") or {}).get("dtype", "float32")
        if name not in DTYPES:
            raise DataError(f"backbone.dtype {name!r} is not allowed; allowed: {', '.join(DTYPES)}")
        model = load_pretrained("AutoModelForCausalLM", backbone_path, dtype=getattr(torch, name), what="causal LM")
        if (cfg.get("train") or {}).get("gradient_checkpointing"):
            # transformers 5 renames gradient_checkpointing_enable (deprecated) to activation_checkpointing_enable
            (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
            model.enable_input_require_grads()
            model.config.use_cache = False
        return model

    def collate(self, spec: InstructTask, cfg: dict, backbone_path: str, *, train: bool, generator=None):
        from harness.models import load_tokenizer

        tok = load_tokenizer(backbone_path)
        if not train:
            return EvalCollator(tok, generation_settings(spec, cfg))
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        return TrainCollator(pad_id)

    # ------------------------------------------------------------ eval
    def evaluate(self, model, loader, spec: InstructTask, device) -> tuple[float, dict[str, np.ndarray]]:
        """Generate on every validation item through lm-eval and score as LLM-Adapters did; the metric
        is the mean of the per-set accuracies (one set for math). Arrays: item_ids, sets, labels,
        outputs (the generated text, cut at the stop strings), extracted, correct."""
        collator = loader.collate_fn
        if not isinstance(collator, EvalCollator):
            raise TypeError("InstructSuite.evaluate needs the loader built with collate(..., train=False)")
        items = [row for batch in loader for row in batch]
        if not items:
            raise DataError(f"{spec.name}: no evaluation items")
        outputs, lm_correct = generate_with_lm_eval(model, collator.tokenizer, items, collator.generation,
                                                    batch_size=loader.batch_size or 1, device=device)
        saved = {
            "item_ids": np.array([r["item_id"] for r in items]),
            "sets": np.array([r["set"] for r in items]),
            "labels": np.array([r["answer"] for r in items]),
            "outputs": np.array(outputs),
            "extracted": np.array([extracted(r["set"], o) for r, o in zip(items, outputs)]),
            "correct": np.array([answer_correct(r["set"], o, r["answer"]) for r, o in zip(items, outputs)]),
        }
        if not np.array_equal(saved["correct"], np.asarray(lm_correct, dtype=bool)):
            bad = int(np.flatnonzero(saved["correct"] != np.asarray(lm_correct, dtype=bool))[0])
            raise RuntimeError(f"{spec.name}: lm-eval's task scoring and ours disagree on item {items[bad]['item_id']} "
                               f"(output {outputs[bad]!r}, label {items[bad]['answer']!r}): the task YAMLs and "
                               "harness.suites.instruct's extraction have drifted apart")
        return self.score(spec, saved), saved

    def score(self, spec: InstructTask, saved: dict[str, np.ndarray]) -> float:
        """Mean over sets of the per-set accuracy (0-100), recomputed from outputs and labels."""
        scores = per_set_scores(saved)
        return float(np.mean(list(scores.values())))


def cutoff_len(cfg: dict) -> int:
    """LLM-Adapters' cutoff_len (256): ``data.cutoff_len``, else ``data.max_length``."""
    data = cfg["data"]
    value = data.get("cutoff_len", data.get("max_length"))
    if not isinstance(value, int) or value < 8:
        raise DataError(f"data.cutoff_len must be an integer >= 8 (LLM-Adapters: 256), got {value!r}")
    return value


@dataclass
class TrainCollator:
    """Right-pads input_ids with ``pad_id``, attention mask 1 on tokens; labels = input_ids
    (loss on the prompt too, LLM-Adapters' train_on_inputs=True) and -100 on padding only, found by
    position (the pad id may equal EOS, whose label is kept)."""

    pad_id: int

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.as_tensor(r["input_ids"], dtype=torch.long)
            mask[i, :n] = 1
        labels = ids.masked_fill(mask == 0, -100)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# ------------------------------------------------------------------ lm-eval
def _protocol_hflm_class():
    from lm_eval.models.huggingface import HFLM

    class ProtocolHFLM(HFLM):
        """HFLM whose generation follows LLM-Adapters' (plain ``generate``) whatever the batch.

        lm-eval's stop-string criterion keeps one flag per request but is called on every
        candidate row; with beam search (rows = requests x beams) it ends the whole batch when the
        first rows contain a stop string, so answers depend on the batch. With beams we leave
        stopping to ``generate``'s per-row EOS handling (as LLM-Adapters did) and lm-eval still cuts
        the text at the stop strings afterwards; greedy keeps lm-eval's criterion (each row's tokens
        do not depend on when the batch stops)."""

        def _model_generate(self, context, max_length, stop, **generation_kwargs):
            import torch

            if int(generation_kwargs.get("num_beams", 1) or 1) == 1:
                return super()._model_generate(context, max_length, stop, **generation_kwargs)
            generation_kwargs.pop("temperature", None)
            generation_kwargs.setdefault("do_sample", False)
            with torch.no_grad():
                return self.model.generate(input_ids=context, max_length=max_length,
                                           pad_token_id=self.tokenizer.pad_token_id,
                                           eos_token_id=self.tokenizer.eos_token_id, use_cache=True, **generation_kwargs)

    return ProtocolHFLM


@contextlib.contextmanager
def _kept_rng_and_quiet():
    """lm-eval logs per call and may touch the global RNGs: keep them as they were."""
    import torch

    state = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
             torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
    loggers = [logging.getLogger(n) for n in ("lm_eval", "lm-eval")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
        torch.set_rng_state(state[2])
        if state[3] is not None:
            torch.cuda.set_rng_state_all(state[3])
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def generate_with_lm_eval(model, tokenizer, items: list[dict], generation: dict, *, batch_size: int = 1,
                          device=None) -> tuple[list[str], list[bool]]:
    """(generated text per item, lm-eval's verdict per item) for ``items`` (prompt, answer, set,
    item_id), through our task YAMLs on the in-memory ``model``. The model is left in train mode."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    sets = list(dict.fromkeys(r["set"] for r in items))
    unknown = [s for s in sets if not (TASKS_DIR / f"{s}.yaml").is_file()]
    if unknown:
        raise DataError(f"no lm-eval task YAML for set(s) {unknown} in {TASKS_DIR}")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    gen_kwargs = {"num_beams": generation["num_beams"], "max_gen_toks": generation["max_new_tokens"],
                  "do_sample": False}
    was_training = model.training
    model.eval()
    with tempfile.TemporaryDirectory(prefix="instruct-eval-") as tmp, _kept_rng_and_quiet():
        items_file = Path(tmp) / "items.jsonl"
        items_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
        lm = _protocol_hflm_class()(pretrained=model, tokenizer=tokenizer, batch_size=batch_size,
                                    max_length=_max_length(model, tokenizer))
        tm = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={"items_file": str(items_file)})
        results = lm_eval.simple_evaluate(
            model=lm, tasks=[f"instruct_{s}" for s in sets], task_manager=tm, bootstrap_iters=0, log_samples=True,
            gen_kwargs=gen_kwargs, random_seed=None, numpy_random_seed=None, torch_random_seed=None,
            apply_chat_template=False, verbosity="ERROR")
    if was_training:
        model.train()
    by_id: dict[str, tuple[str, bool]] = {}
    for s in sets:
        for sample in results["samples"][f"instruct_{s}"]:
            doc = sample["doc"]
            verdict = sample.get("acc", sample.get("exact_match"))
            by_id[doc["item_id"]] = (sample["resps"][0][0], bool(verdict))
    missing = [r["item_id"] for r in items if r["item_id"] not in by_id]
    if missing:
        raise RuntimeError(f"lm-eval returned no output for {len(missing)} item(s), e.g. {missing[0]}")
    return [by_id[r["item_id"]][0] for r in items], [by_id[r["item_id"]][1] for r in items]


def _max_length(model, tokenizer) -> int:
    """Context + generation limit lm-eval works with: the model's position limit."""
    n = getattr(model.config, "max_position_embeddings", None)
    return int(n) if n else int(getattr(tokenizer, "model_max_length", 2048))
