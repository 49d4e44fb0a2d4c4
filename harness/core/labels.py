"""The checks every data route runs on what it read (a ``save_to_disk`` folder, csv/tsv/json/parquet
files, the hub): class labels in range (the GLUE test splits carry -1), regression targets finite,
texts non-empty, answers turned into one string whatever their JSON encoding. One function per
check, shared by every suite, so that the route a dataset came by never changes what is accepted.

Every error names the task, where the data was read (file or folder) and the config key to change.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from harness.core.errors import DataError

__all__ = ["DATA_KEYS", "answer_text", "check_class_labels", "check_regression_targets", "check_texts",
           "label_ids", "rename_columns"]

DATA_KEYS = "the config key `data.data_dir` (or `data.columns.<task>` to map column names)"


def label_ids(values: Sequence, names: Sequence[str] | None, task: str, where: str) -> list:
    """Class labels given as their names (the original GLUE files: "entailment", MNLI's gold_label)
    or as numbers in text ("1") -> numbers; anything else is left for :func:`check_class_labels`."""
    index = {n: i for i, n in enumerate(names or ())}
    out = []
    for v in values:
        if isinstance(v, str):
            s = v.strip()
            if s in index:
                v = index[s]
            else:
                try:
                    v = float(s)
                except ValueError:
                    allowed = f" or one of {list(index)}" if index else ""
                    raise DataError(f"{task}: {where} has label {v!r}: labels must be numbers{allowed}; "
                                    f"fix the file or {DATA_KEYS}") from None
        out.append(v)
    return out


def check_class_labels(values, num_labels: int, task: str, where: str) -> np.ndarray:
    """int64 labels 0..num_labels-1; -1 (the GLUE test splits' placeholder), out of range or
    fractional values raise with what was found."""
    y = np.asarray(values, dtype=np.float64) if len(values) else np.zeros(0)
    if y.size and np.isnan(y).any():
        raise DataError(f"{task}: {where} has missing labels: fill or drop those rows, or fix {DATA_KEYS}")
    if y.size and (y == -1).any():
        raise DataError(f"{task}: {where} has label -1 ({int((y == -1).sum())} of {y.size} rows): that is a GLUE test "
                        f"split, whose labels are hidden; use the train and validation splits ({DATA_KEYS})")
    bad = (y != np.round(y)) | (y < 0) | (y >= num_labels)
    if bad.any():
        raise DataError(f"{task}: {where}: labels must be integers 0..{num_labels - 1}, found "
                        f"{sorted(set(y[bad].tolist()))[:5]}: is this the right dataset? ({DATA_KEYS})")
    return y.astype(np.int64)


def check_regression_targets(values, task: str, where: str) -> np.ndarray:
    """float32 targets, all finite (NaN or inf would silently poison the MSE loss and Pearson r)."""
    try:
        y = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{task}: {where}: regression targets must be numbers ({DATA_KEYS})") from None
    bad = ~np.isfinite(y)
    if bad.any():
        raise DataError(f"{task}: {where} has {int(bad.sum())} regression target(s) that are NaN or infinite "
                        f"(first at row {int(np.flatnonzero(bad)[0])}): fix or drop those rows ({DATA_KEYS})")
    return y.astype(np.float32)


def check_texts(values: Sequence, column: str, task: str, where: str) -> None:
    """Every value of a text column is a non-empty string (an empty sentence tokenizes to nothing
    but special tokens and trains on noise)."""
    bad = [i for i, v in enumerate(values) if not isinstance(v, str) or not v.strip()]
    if bad:
        raise DataError(f"{task}: {where}: column {column!r} is empty or not text in {len(bad)} row(s) (first at row "
                        f"{bad[0]}): fill or drop those rows ({DATA_KEYS})")


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def answer_text(value, task: str, where: str) -> str:
    """An answer as one string, whatever its JSON encoding (LLM-Adapters' dataset/gsm8k/test.json
    has held lists ``[2304.0]``, floats ``800.0`` and strings ``"576.0"`` in its history): a
    one-element list is its element, an integral number its digits (``0`` -> ``"0"``, ``800.0`` ->
    ``"800"``), a string stripped. Empty, ``None``, NaN and several-element lists raise."""
    v = value
    while isinstance(v, (list, tuple)) and len(v) == 1:
        v = v[0]
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, np.integer, np.floating)) and not (isinstance(v, float) and math.isnan(v)):
        return _number_text(float(v)) if isinstance(v, (float, np.floating)) else str(int(v))
    if isinstance(v, str) and v.strip():
        return v.strip()
    raise DataError(f"{task}: {where} has an answer that cannot be read as one value: {value!r} (answers are a string, "
                    f"a number or a one-element list): fix the item or {DATA_KEYS}")


def rename_columns(ds, mapping: dict[str, str] | None, task: str, where: str):
    """``ds`` with columns renamed to the suite's names: ``mapping`` is ``{our name: the file's name}``
    (``data.columns.<task>``); a mapped column that is absent raises, naming the key."""
    if not mapping:
        return ds
    missing = {ours: theirs for ours, theirs in mapping.items() if theirs not in ds.column_names and ours not in ds.column_names}
    if missing:
        raise DataError(f"{task}: {where} has no column(s) {sorted(missing.values())} named by `data.columns.{task}` "
                        f"(it has {list(ds.column_names)}): fix the mapping")
    rename = {theirs: ours for ours, theirs in mapping.items() if theirs in ds.column_names and theirs != ours}
    clash = [ours for ours in rename.values() if ours in ds.column_names]
    if clash:
        ds = ds.remove_columns(clash)
    return ds.rename_columns(rename) if rename else ds
