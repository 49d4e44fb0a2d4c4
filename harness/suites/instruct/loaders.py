"""The paper tasks' items in LLM-Adapters' format (instruction, input, output, answer): from
LLM-Adapters' JSON files (``data.data_dir``) or, for GSM8K and MATH, from the hub."""
from __future__ import annotations

import json
from pathlib import Path

from harness.core.errors import DataError, first_line
from harness.core.sources import load_hub_dataset, sha256
from harness.suites.instruct.prompts import GSM8K_SUFFIX
from harness.suites.instruct.items import records_dataset
from harness.suites.instruct.scoring import FINAL_ANSWER, LLM_ADAPTERS_FOLDER
from harness.suites.instruct.tasks import InstructTask

__all__ = ["LLM_ADAPTERS_URL", "gsm8k_item", "load_paper_task", "math_item"]

LLM_ADAPTERS_URL = "https://github.com/AGI-Edgerunners/LLM-Adapters"


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


def load_paper_task(spec: InstructTask, data_dir: str | None):
    """(DatasetDict train/validation, recipe): ``data_dir`` when set (LLM-Adapters' JSON files), else the
    hub (math tasks only; LLM-Adapters distributes the commonsense files through GitHub, not the hub)."""
    from datasets import DatasetDict

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
    dd = DatasetDict({"train": records_dataset(train, "train"), "validation": records_dataset(evals, "evaluation")})
    return dd, recipe
