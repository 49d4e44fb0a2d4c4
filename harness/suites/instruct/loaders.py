"""The paper tasks' items in LLM-Adapters' format (instruction, input, output, answer): from
LLM-Adapters' JSON files (``data.data_dir``) or, for GSM8K and MATH, from the hub."""
from __future__ import annotations

import json
from pathlib import Path

from harness.core.errors import DataError, first_line
from harness.core.sources import load_hub_dataset, sha256
from harness.core.labels import answer_text, rename_columns
from harness.suites.instruct.items import math_item, records_dataset
from harness.suites.instruct.scoring import LLM_ADAPTERS_FOLDER
from harness.suites.instruct.tasks import InstructTask

__all__ = ["LLM_ADAPTERS_URL", "gsm8k_item", "load_paper_task", "math_item_of_solution"]

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
        it["answer"] = answer_text(it.get("answer"), eval_set, f"{path} item {i}")
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


def _math_base(spec: InstructTask, root: Path) -> Path:
    """Where a math task's files are: data_dir/<task>/, a clone's dataset/<task>/, or data_dir itself."""
    return next((d for d in (root / spec.name, root / "dataset" / spec.name) if d.is_dir()), root)


def _math_from_dir(spec: InstructTask, root: Path, columns: dict | None):
    """data_dir/<task>/ as the hub's ``save_to_disk`` folder, the hub's parquet files
    (``**/train-*.parquet`` and ``**/test-*.parquet``, as ``hf download`` leaves them), or
    LLM-Adapters-format train.json and test.json; every route builds items with :func:`math_item`."""
    base = _math_base(spec, root)
    if (base / "dataset_dict.json").is_file():
        saved = {str(f.relative_to(base)): str(f.resolve()) for f in sorted(base.rglob("*")) if f.is_file()}
        return _hub_items(spec, _load_saved(base), str(base), columns) + (saved,)
    parquet = {split: sorted(base.rglob(f"{split}-*.parquet")) or sorted(base.rglob(f"{split}.parquet"))
               for split in ("train", "test")}
    if parquet["train"] or parquet["test"]:
        return _hub_items(spec, _read_parquet(spec, parquet, base), str(base), columns) + (
            {f"{split}:{i}": str(f.resolve()) for split, fs in parquet.items() for i, f in enumerate(fs)},)
    hint = (f"put the hub's copy in {root}/{spec.name}/: a `datasets.load_dataset('{spec.hub_id}', '{spec.hub_config}')"
            f".save_to_disk(...)` folder, or its parquet files (`hf download {spec.hub_id} --repo-type dataset "
            f"--local-dir {root}/{spec.name}`), or LLM-Adapters-format train.json and test.json; LLM-Adapters ships "
            f"only a {spec.name} test set, no training set; or unset `data.data_dir` to use the hub")
    train_file = _find(base, ["train.json", "train.jsonl"], f"{spec.name} train file", hint)
    test_file = _find(base, ["test.json", "test.jsonl"], f"{spec.name} test file", hint)
    s = spec.eval_sets[0]
    train, evals = (_json_math_items(_read_json_items(f, s), f) for f in (train_file, test_file))
    return train, evals, {"train": str(train_file.resolve()), "test": str(test_file.resolve())}


def _json_math_items(items: list[dict], path: Path) -> list[dict]:
    """LLM-Adapters' math items (question as instruction, "... The answer is N." as output) in the
    template the hub route uses."""
    return [math_item(it["instruction"], it.get("output", ""), it.get("answer"), it["set"], it["item_id"], str(path))
            for it in items]


def _load_saved(base: Path):
    from datasets import load_from_disk

    try:
        return load_from_disk(str(base))
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot load the saved dataset in {base} ({first_line(exc)}): save it again with "
                        "DatasetDict.save_to_disk, or set `data.data_dir` elsewhere") from exc


def _read_parquet(spec: InstructTask, files: dict[str, list[Path]], base: Path):
    import pandas as pd
    from datasets import Dataset, DatasetDict

    try:
        return DatasetDict({split: Dataset.from_pandas(pd.concat([pd.read_parquet(f) for f in fs]), preserve_index=False)
                            for split, fs in files.items() if fs})
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read the {spec.name} parquet files under {base} ({first_line(exc)}): download them "
                        "again, or set `data.data_dir` elsewhere") from exc


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
    """One GSM8K item (openai/gsm8k's "rationale #### N" answer) with FoRA's math template."""
    rationale, _, final = answer.rpartition("####")
    return math_item(question, rationale, final.strip().replace(",", ""), "gsm8k", f"gsm8k:{split}:{i}")


def math_item_of_solution(problem: str, solution: str, i: int, split: str) -> dict | None:
    """One MATH item: the answer is the solution's last \\boxed{}; None when it has none."""
    label = _boxed(solution)
    return None if label is None else math_item(problem, solution, label, "math", f"math:{split}:{i}")


HUB_COLUMNS = {"gsm8k": ("question", "answer"), "math": ("problem", "solution")}


def _hub_items(spec: InstructTask, dd, where: str, columns: dict | None) -> tuple[list[dict], list[dict]]:
    """(train items, test items) from a DatasetDict in the hub's schema (openai/gsm8k: question,
    answer; MATH-lighteval: problem, solution), columns mapped by ``data.columns.<task>``."""
    if "train" not in dd or "test" not in dd:
        raise DataError(f"{spec.name}: {where} has splits {sorted(dd)}, not train and test: copy both splits of "
                        f"{spec.hub_id} (`data.data_dir`)")
    need, out = HUB_COLUMNS[spec.name], {}
    for split in ("train", "test"):
        ds = rename_columns(dd[split], columns, spec.name, f"{where} split {split!r}")
        missing = [c for c in need if c not in ds.column_names]
        if missing:
            raise DataError(f"{spec.name}: {where} split {split!r} lacks column(s) {missing} (has {ds.column_names}): "
                            f"name them as {spec.hub_id} does or map them with `data.columns.{spec.name}`")
        if spec.name == "gsm8k":
            out[split] = [gsm8k_item(r["question"], r["answer"], i, split) for i, r in enumerate(ds)]
        else:
            out[split] = [m for i, r in enumerate(ds) if (m := math_item_of_solution(r["problem"], r["solution"], i, split))]
    return out["train"], out["test"]


def _math_from_hub(spec: InstructTask, columns: dict | None):
    hint = (f"on a machine with internet run `python -c \"import datasets; datasets.load_dataset('{spec.hub_id}', "
            f"'{spec.hub_config}').save_to_disk('{spec.name}')\"` (or `hf download {spec.hub_id} --repo-type dataset "
            f"--local-dir {spec.name}`), copy the folder into <dir>/{spec.name}/ and set the config key `data.data_dir` to <dir>")
    dd, origin = load_hub_dataset(spec.hub_id, spec.hub_config, f"{spec.name} ({spec.hub_id})", hint)
    train, test = _hub_items(spec, dd, spec.hub_id, columns)
    return train, test, {"hub_id": spec.hub_id, "hub_config": spec.hub_config, "origin": origin}


def load_paper_task(spec: InstructTask, data_dir: str | None, columns: dict | None = None):
    """(DatasetDict train/validation, recipe): ``data_dir`` when set (LLM-Adapters' JSON files), else the
    hub (math tasks only; LLM-Adapters distributes the commonsense files through GitHub, not the hub)."""
    from datasets import DatasetDict

    if data_dir:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise DataError(f"data_dir {root} does not exist: set `data.data_dir` to a folder with LLM-Adapters' files")
        if spec.kind == "commonsense":
            train, evals, files = _commonsense_from_dir(spec, root)
        else:
            train, evals, files = _math_from_dir(spec, root, columns)
        recipe = {"kind": "data_dir", "path": str(root.resolve()), "files": files,
                  "sha256": {k: sha256(Path(v)) for k, v in files.items()}}
    elif spec.kind == "commonsense":
        raise DataError(
            f"{spec.name} has no hub copy that the papers used: LLM-Adapters ships commonsense_170k.json and the "
            f"eight test sets in its GitHub repository; clone {LLM_ADAPTERS_URL} (git lfs pull for the large "
            "files) and set `data.data_dir` to the clone")
    else:
        train, evals, files = _math_from_hub(spec, columns)
        recipe = {"kind": "hub", **files}
    recipe["splits"] = {"train": "train", "validation": "test (the papers score the test sets)"}
    recipe["format"] = "LLM-Adapters items (instruction, input, output, answer)"
    dd = DatasetDict({"train": records_dataset(train, "train"), "validation": records_dataset(evals, "evaluation")})
    return dd, recipe
