"""Loading the ViT datasets (hub cache first, or ``data.data_dir``) and making the train/validation
splits of the suite's doc (:mod:`harness.suites.vision.suite`): ``validation`` held out of train
for model selection, ``test`` reported."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import DataError, first_line
from harness.core.labels import check_class_labels, rename_columns
from harness.core.sources import load_hub_dataset
from harness.core.splits import stratified_split
from harness.suites.vision.tasks import HELD_OUT_FRACTION, ImageTask

__all__ = ["load_dir", "load_hub", "make_splits"]


def _download_hint(spec: ImageTask) -> str:
    parts = [f"'{s}': datasets.load_dataset('{spec.hub_id}', split='{s}')" for s in (spec.train_split, spec.heldout_split) if s]
    if spec.eval_split:
        parts.append(f"'{spec.eval_split}': datasets.load_dataset('{spec.eval_hub_id or spec.hub_id}', split='{spec.eval_split}')")
    return (
        f"on a machine with internet run `python -c \"import datasets; datasets.DatasetDict({{{', '.join(parts)}}})"
        f".save_to_disk('vision/{spec.name}')\"`, copy vision/ here and set the config key `data.data_dir` to vision/ "
        "(one sub-folder per task)"
    )


def load_hub(spec: ImageTask):
    from datasets import DatasetDict

    hint = _download_hint(spec)
    parts, origins = {}, {}
    for hub_id in spec.hub_ids:
        dd, origin = load_hub_dataset(hub_id, spec.hub_config, f"{spec.name} ({hub_id})", hint)
        origins[hub_id] = origin
        for split, ds in dd.items():
            if hub_id == spec.hub_id and split in (spec.train_split, spec.heldout_split):
                parts[split] = ds
            if spec.eval_split and hub_id == (spec.eval_hub_id or spec.hub_id) and split == spec.eval_split:
                parts[split] = ds
    recipe = {"kind": "hub", "hub_ids": list(spec.hub_ids), "hub_config": spec.hub_config, "origin": origins}
    return DatasetDict(parts), recipe


def load_dir(spec: ImageTask, data_dir: str | os.PathLike):
    """``data_dir/<task>/`` (or ``data_dir`` itself) written by DatasetDict.save_to_disk, with the
    splits the hub dataset has (train, and test unless the task makes its own)."""
    from datasets import load_from_disk

    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"data_dir {root} does not exist: set the config key `data.data_dir` to a folder with one "
                        f"sub-folder per task, or remove it to use the hub cache")
    if (root / spec.name).is_dir():
        root = root / spec.name
    if not (root / "dataset_dict.json").is_file():
        raise DataError(f"data_dir {root} holds no DatasetDict.save_to_disk folder for {spec.name} (no dataset_dict.json): "
                        f"{_download_hint(spec)}")
    try:
        dd = load_from_disk(str(root))
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot load the saved dataset in {root} ({first_line(exc)}): save it again with "
                        "DatasetDict.save_to_disk") from exc
    return dd, {"kind": "data_dir", "path": str(root.resolve()), "format": "save_to_disk"}


# Column names of other mirrors, mapped when the suite's own are absent: uoft-cs/cifar10 and
# uoft-cs/cifar100 write `img`, and CIFAR-100's fine classes (100, the task's) as `fine_label`.
MIRROR_COLUMNS = {"image": "img", "label": "fine_label"}


def _columns(ds, spec: ImageTask, where: str, columns: dict | None):
    aliases = {ours: theirs for ours, theirs in MIRROR_COLUMNS.items()
               if ours not in ds.column_names and theirs in ds.column_names}
    return rename_columns(rename_columns(ds, aliases, spec.name, where), columns, spec.name, where)


def _check_split(ds, spec: ImageTask, where: str) -> np.ndarray:
    from datasets import ClassLabel

    missing = [c for c in (spec.image_key, spec.label_key) if c not in ds.column_names]
    if missing:
        raise DataError(f"{where} lacks column(s) {missing} (has {ds.column_names}): {spec.name} needs "
                        f"{[spec.image_key, spec.label_key]}: map them with the config key `data.columns.{spec.name}` "
                        f"(e.g. {{image: img, label: fine_label}})")
    feature = ds.features[spec.label_key]
    if isinstance(feature, ClassLabel) and feature.num_classes != spec.num_labels:
        raise DataError(f"{where}: column {spec.label_key!r} has {feature.num_classes} classes, {spec.name} has "
                        f"{spec.num_labels}: is this the right dataset or column? (`data.columns.{spec.name}`)")
    return check_class_labels(ds[spec.label_key], spec.num_labels, spec.name, where)


def make_splits(dd, spec: ImageTask, seed: int, where: str, columns: dict | None = None):
    """(DatasetDict train/validation/test, split recipe) from the dataset's own splits, as FourierFT's
    ``experiments/ViT/exec.py`` ``get_data`` makes them: 'test' = the split it reports, 'validation'
    = its model-selection split (shipped, or a seeded stratified 10 % of train), 'train' = the rest.
    Columns are mapped first (mirror names, ``data.columns.<task>``), labels checked."""
    from datasets import DatasetDict

    dd = DatasetDict({split: _columns(ds, spec, f"{where} split {split!r}", columns) for split, ds in dd.items()})

    need = [spec.train_split] + ([spec.eval_split] if spec.eval_split else []) + ([spec.heldout_split] if spec.heldout_split else [])
    missing = [s for s in need if s not in dd]
    if missing:
        raise DataError(f"{where} has splits {sorted(dd)} but not {missing}: {spec.name} needs {need}")
    train = dd[spec.train_split]
    y = _check_split(train, spec, f"{where} split {spec.train_split!r}")
    rule: dict[str, Any] = {"seed": seed}
    if spec.eval_split:
        test = dd[spec.eval_split]
        _check_split(test, spec, f"{where} split {spec.eval_split!r}")
        rule["test"] = f"the dataset's {spec.eval_split!r} split (the split FourierFT reports)"
    else:
        rest, held = stratified_split(y, spec.eval_fraction, seed)
        test, train, y = train.select(held.tolist()), train.select(rest.tolist()), y[rest]
        rule["test"] = (f"round({spec.eval_fraction} * n) per class of the dataset's only split "
                        f"{spec.train_split!r}, harness.core.splits.stratified_split(seed); FourierFT draws its "
                        f"{spec.eval_fraction:.0%} test split without a seed")
    if spec.heldout_split:
        validation = dd[spec.heldout_split]
        _check_split(validation, spec, f"{where} split {spec.heldout_split!r}")
        rule["validation"] = f"the dataset's {spec.heldout_split!r} split (FourierFT's model selection)"
        rule["train"] = f"the dataset's {spec.train_split!r} split"
    else:
        keep, held = stratified_split(y, HELD_OUT_FRACTION, seed + 1)
        validation, train = train.select(held.tolist()), train.select(keep.tolist())
        digest = hashlib.sha256(",".join(map(str, held.tolist())).encode()).hexdigest()
        rule["validation"] = (f"round({HELD_OUT_FRACTION} * n) per class of {spec.train_split!r} "
                              f"(harness.core.splits.stratified_split(seed + 1), {held.size} examples, positions sha256 "
                              f"{digest}): FourierFT holds out the same share (train_test_split(test_size=0.1)) without a "
                              "seed, so its split differs from run to run")
        rule["train"] = f"{spec.train_split!r} less 'validation'"
    rule["selection"] = "best epoch on 'validation' (held out of train), reported on 'test' at that epoch, as FourierFT"
    keep_cols = [spec.image_key, spec.label_key]
    out = DatasetDict({"train": train.select_columns(keep_cols), "validation": validation.select_columns(keep_cols),
                       "test": test.select_columns(keep_cols)})
    return out, rule
