"""Loading GLUE: from the hub (cache first) or from a local folder (``data.data_dir``): a
``DatasetDict.save_to_disk`` folder or train/validation files."""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from harness.core.errors import DataError, first_line
from harness.core.sources import load_hub_dataset, sha256
from harness.suites.glue.tasks import TextTask

__all__ = ["load_glue_dir", "load_glue_hub"]

FILE_EXTS = ("parquet", "jsonl", "json", "csv", "tsv")


def _download_hint(spec: TextTask) -> str:
    return (
        f"on a machine with internet run `python -c \"import datasets; datasets.load_dataset('{spec.hub_id}','{spec.hub_config}')"
        f".save_to_disk('glue/{spec.name}')\"`, copy glue/ here and set the config key `data_dir` to glue/{spec.name} (or to glue/)"
    )


def _pick_splits(dd: Any, spec: TextTask, where: str):
    from datasets import DatasetDict

    eval_names = [spec.eval_split, "validation"]
    missing = [s for s in (spec.train_split,) if s not in dd] + (
        [] if any(s in dd for s in eval_names) else [spec.eval_split]
    )
    if missing:
        raise DataError(
            f"{where} has splits {sorted(dd)} but not {missing}: {spec.name} needs {spec.train_split!r} and {spec.eval_split!r}"
        )
    evaluation = next(dd[s] for s in eval_names if s in dd)
    out = DatasetDict({"train": dd[spec.train_split], "validation": evaluation})
    for split, ds in out.items():
        _check_columns(list(ds.column_names), spec, f"{where} split {split!r}")
        keep = [c for c in ds.column_names if c in (*spec.text_keys, spec.label_key, "idx")]
        out[split] = ds.select_columns(keep)
    return out


def _check_columns(columns: list[str], spec: TextTask, where: str) -> None:
    missing = [c for c in (*spec.text_keys, spec.label_key) if c not in columns]
    if missing:
        raise DataError(
            f"{where} lacks column(s) {missing} (has {columns}): name them as GLUE {spec.name} does: {[*spec.text_keys, spec.label_key]}"
        )


def load_glue_hub(spec: TextTask):
    dd, origin = load_hub_dataset(spec.hub_id, spec.hub_config, f"GLUE {spec.name} ({spec.hub_id}, {spec.hub_config})",
                                  _download_hint(spec))
    recipe = {
        "kind": "hub",
        "hub_id": spec.hub_id,
        "hub_config": spec.hub_config,
        "origin": origin,
        "splits": {"train": spec.train_split, "validation": spec.eval_split},
    }
    return _pick_splits(dd, spec, f"{spec.hub_id}/{spec.hub_config}"), recipe


def _read_table(path: Path, spec: TextTask):
    """One split file -> Dataset with GLUE columns; every failure names the file."""
    import pandas as pd
    from datasets import Dataset, Value

    if path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty: write the {spec.name} split into it or point `data_dir` elsewhere")
    ext = path.suffix.lower().lstrip(".")
    try:
        if ext == "parquet":
            df = pd.read_parquet(path)
        elif ext in ("json", "jsonl"):
            head = path.read_text(encoding="utf-8").lstrip()[:1]
            df = pd.read_json(path, lines=head != "[", dtype=False)
        else:  # csv / tsv; GLUE's own tsv files contain unbalanced quotes, so no quoting there
            df = pd.read_csv(
                path,
                sep="\t" if ext == "tsv" else ",",
                quoting=csv.QUOTE_NONE if ext == "tsv" else csv.QUOTE_MINIMAL,
                dtype=str,
                keep_default_na=False,
            )
    except Exception as exc:
        raise DataError(f"cannot read data file {path} ({first_line(exc)}): it must be a valid {ext} file") from exc
    if len(df) == 0:
        raise DataError(
            f"data file {path} has no rows: write the {spec.name} split into it or point `data_dir` elsewhere"
        )
    _check_columns([str(c) for c in df.columns], spec, f"data file {path}")
    cols = [c for c in (*spec.text_keys, spec.label_key, "idx") if c in df.columns]
    df = df[cols].copy()
    for key in spec.text_keys:
        if df[key].isna().any():
            raise DataError(f"data file {path} has empty values in column {key!r}: fill or drop those rows")
        df[key] = df[key].astype(str)
    labels = pd.to_numeric(df[spec.label_key], errors="coerce")
    if labels.isna().any():
        raise DataError(
            f"data file {path}: column {spec.label_key!r} has non-numeric or missing values: labels must be numbers"
        )
    if spec.is_regression:
        df[spec.label_key] = labels.astype("float32")
    else:
        if not ((labels == labels.round()) & (labels >= 0) & (labels < spec.num_labels)).all():
            raise DataError(
                f"data file {path}: labels must be integers 0..{spec.num_labels - 1} for {spec.name}, found {sorted(labels.unique().tolist())[:5]} "
                "(a GLUE test split has label -1: use train and validation)"
            )
        df[spec.label_key] = labels.astype("int64")
    if "idx" in df.columns:
        df["idx"] = pd.to_numeric(df["idx"], errors="coerce").fillna(-1).astype("int64")
    ds = Dataset.from_pandas(df, preserve_index=False)
    return ds.cast_column(spec.label_key, Value("float32" if spec.is_regression else "int64"))


def _split_file(root: Path, names: list[str], spec: TextTask) -> Path | None:
    found = [root / f"{n}.{e}" for n in dict.fromkeys(names) for e in FILE_EXTS if (root / f"{n}.{e}").is_file()]
    if len(found) > 1:
        raise DataError(
            f"{root} has several files for one {spec.name} split ({', '.join(p.name for p in found)}): keep one"
        )
    return found[0] if found else None


def load_glue_dir(spec: TextTask, data_dir: str | os.PathLike):
    """A save_to_disk folder, or train/validation files (csv, tsv, json, jsonl, parquet); data_dir/<task>/ also works."""
    from datasets import DatasetDict, load_from_disk

    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(
            f"data_dir {root} does not exist: set the config key `data_dir` to a folder with the {spec.name} data, or remove it to use the hub cache"
        )
    if (root / spec.name).is_dir():
        root = root / spec.name
    recipe = {"kind": "data_dir", "path": str(root.resolve())}
    if (root / "dataset_dict.json").is_file():
        try:
            dd = load_from_disk(str(root))
        except Exception as exc:
            raise DataError(
                f"cannot load the saved dataset in {root} ({first_line(exc)}): save it again with DatasetDict.save_to_disk"
            ) from exc
        recipe["format"] = "save_to_disk"
        return _pick_splits(dd, spec, str(root)), recipe
    eval_names = [spec.eval_split, "validation", spec.eval_split.replace("validation", "dev"), "dev"]
    train_file, eval_file = _split_file(root, [spec.train_split, "train"], spec), _split_file(root, eval_names, spec)
    if train_file is None or eval_file is None:
        want = "train" if train_file is None else spec.eval_split
        raise DataError(
            f"data_dir {root} has no {want} file for {spec.name}: expected a DatasetDict.save_to_disk folder or files "
            f"train.<ext> and validation.<ext> (or dev.<ext>) with <ext> in {', '.join(FILE_EXTS)}"
        )
    recipe["files"] = {"train": str(train_file.resolve()), "validation": str(eval_file.resolve())}
    recipe["sha256"] = {"train": sha256(train_file.resolve()), "validation": sha256(eval_file.resolve())}
    return DatasetDict({"train": _read_table(train_file, spec), "validation": _read_table(eval_file, spec)}), recipe
