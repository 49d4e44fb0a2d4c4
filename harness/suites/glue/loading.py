"""Loading GLUE: from the hub (cache first) or from a local folder (``data.data_dir``): a
``DatasetDict.save_to_disk`` folder or train/validation files."""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from harness.core.errors import DataError, first_line
from harness.core.labels import check_class_labels, check_regression_targets, check_texts, label_ids, rename_columns
from harness.core.sources import load_hub_dataset, sha256
from harness.suites.glue.tasks import TextTask

__all__ = ["load_glue_dir", "load_glue_hub", "validated"]

FILE_EXTS = ("parquet", "jsonl", "json", "csv", "tsv")


def _download_hint(spec: TextTask) -> str:
    return (
        f"on a machine with internet run `python -c \"import datasets; datasets.load_dataset('{spec.hub_id}','{spec.hub_config}')"
        f".save_to_disk('glue/{spec.name}')\"`, copy glue/ here and set the config key `data.data_dir` to glue/ (or to glue/{spec.name})"
    )


def _pick_splits(dd: Any, spec: TextTask, where: str, columns: dict | None = None):
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
    return DatasetDict({split: validated(ds, spec, f"{where} split {split!r}", columns)
                        for split, ds in (("train", dd[spec.train_split]), ("validation", evaluation))})


def _check_columns(columns: list[str], spec: TextTask, where: str) -> None:
    missing = [c for c in (*spec.text_keys, spec.label_key) if c not in columns]
    if missing:
        raise DataError(
            f"{where} lacks column(s) {missing} (has {columns}): name them as GLUE {spec.name} does: "
            f"{[*spec.text_keys, spec.label_key]}, or map them with the config key `data.columns.{spec.name}`"
        )


def validated(ds, spec: TextTask, where: str, columns: dict | None = None):
    """One split, whatever route it came by, with GLUE's columns: the original files' names and
    ``data.columns.<task>`` mapped, texts non-empty, labels checked (harness.core.labels): class ids
    (names such as "entailment" mapped) with the ClassLabel of nyu-mll/glue, or finite float32 targets."""
    from datasets import ClassLabel, Value

    aliases = {ours: theirs for ours, theirs in (spec.file_columns or {}).items()
               if ours not in ds.column_names and theirs in ds.column_names}
    ds = rename_columns(rename_columns(ds, aliases, spec.name, where), columns, spec.name, where)
    _check_columns(list(ds.column_names), spec, where)
    ds = ds.select_columns([c for c in ds.column_names if c in (*spec.text_keys, spec.label_key, "idx")])
    for key in spec.text_keys:
        check_texts(ds[key], key, spec.name, where)
    raw = ds[spec.label_key]
    if spec.is_regression:
        y, feature = check_regression_targets(raw, spec.name, where), Value("float32")
    else:
        feature = ds.features[spec.label_key]
        names = feature.names if isinstance(feature, ClassLabel) else spec.label_names
        y = check_class_labels(label_ids(raw, names, spec.name, where), spec.num_labels, spec.name, where)
        feature = ClassLabel(names=list(names)) if names and len(names) == spec.num_labels else Value("int64")
    if ds.features[spec.label_key] == feature:
        return ds
    return ds.remove_columns(spec.label_key).add_column(spec.label_key, y.tolist()).cast_column(spec.label_key, feature)


def load_glue_hub(spec: TextTask, columns: dict | None = None):
    dd, origin = load_hub_dataset(spec.hub_id, spec.hub_config, f"GLUE {spec.name} ({spec.hub_id}, {spec.hub_config})",
                                  _download_hint(spec))
    recipe = {
        "kind": "hub",
        "hub_id": spec.hub_id,
        "hub_config": spec.hub_config,
        "origin": origin,
        "splits": {"train": spec.train_split, "validation": spec.eval_split},
    }
    return _pick_splits(dd, spec, f"{spec.hub_id}/{spec.hub_config}", columns), recipe


def _read_table(path: Path, spec: TextTask, columns: dict | None):
    """One split file -> Dataset with GLUE columns (text as read; :func:`validated` checks it); every
    failure names the file. A header-less file (CoLA's) gets the task's column names."""
    import pandas as pd
    from datasets import Dataset

    if path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty: write the {spec.name} split into it or point `data.data_dir` elsewhere")
    ext = path.suffix.lower().lstrip(".")
    try:
        if ext == "parquet":
            df = pd.read_parquet(path)
        elif ext in ("json", "jsonl"):
            head = path.read_text(encoding="utf-8").lstrip()[:1]
            df = pd.read_json(path, lines=head != "[", dtype=False)
        else:  # csv / tsv; GLUE's own tsv files contain unbalanced quotes, so no quoting there
            df = _read_delimited(path, ext, spec, columns)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read data file {path} ({first_line(exc)}): it must be a valid {ext} file") from exc
    if len(df) == 0:
        raise DataError(
            f"data file {path} has no rows: write the {spec.name} split into it or point `data.data_dir` elsewhere"
        )
    df.columns = [str(c) for c in df.columns]
    return validated(Dataset.from_pandas(df, preserve_index=False), spec, f"data file {path}", columns)


def _read_delimited(path: Path, ext: str, spec: TextTask, columns: dict | None):
    import pandas as pd

    kw = dict(sep="\t" if ext == "tsv" else ",", quoting=csv.QUOTE_NONE if ext == "tsv" else csv.QUOTE_MINIMAL,
              dtype=str, keep_default_na=False)
    df = pd.read_csv(path, **kw)
    known = {*spec.text_keys, spec.label_key, *(spec.file_columns or {}).values(), *(columns or {}).values()}
    if spec.headerless_columns and not known & set(map(str, df.columns)) and len(df.columns) == len(spec.headerless_columns):
        df = pd.read_csv(path, header=None, names=list(spec.headerless_columns), **kw)
    return df


def _split_file(root: Path, names: list[str], spec: TextTask) -> Path | None:
    found = [root / f"{n}.{e}" for n in dict.fromkeys(names) for e in FILE_EXTS if (root / f"{n}.{e}").is_file()]
    if len(found) > 1:
        raise DataError(
            f"{root} has several files for one {spec.name} split ({', '.join(p.name for p in found)}): keep one"
        )
    return found[0] if found else None


def load_glue_dir(spec: TextTask, data_dir: str | os.PathLike, columns: dict | None = None):
    """A save_to_disk folder, or train/validation files (csv, tsv, json, jsonl, parquet); data_dir/<task>/
    and the original distribution's data_dir/<RTE|SST-2|...>/ (train.tsv, dev.tsv) also work."""
    from datasets import DatasetDict, load_from_disk

    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(
            f"data_dir {root} does not exist: set the config key `data.data_dir` to a folder with the {spec.name} data, or remove it to use the hub cache"
        )
    root = next((root / d for d in (spec.name, spec.folder) if d and (root / d).is_dir()), root)
    recipe = {"kind": "data_dir", "path": str(root.resolve())}
    if (root / "dataset_dict.json").is_file():
        try:
            dd = load_from_disk(str(root))
        except Exception as exc:
            raise DataError(
                f"cannot load the saved dataset in {root} ({first_line(exc)}): save it again with DatasetDict.save_to_disk"
            ) from exc
        recipe["format"] = "save_to_disk"
        return _pick_splits(dd, spec, str(root), columns), recipe
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
    return DatasetDict({"train": _read_table(train_file, spec, columns),
                        "validation": _read_table(eval_file, spec, columns)}), recipe
