"""What every suite's data preparation shares: seeded splits, subsampling, the on-disk cache and
its metadata.

``prepare`` runs once per (task, preprocessing) in the ``prep`` rule: the suite loads the raw task
and preprocesses it (tokenize, or decode and resize images); this module subsamples (seeded,
stratified), saves the result atomically with ``meta.json`` (the data recipe, sizes, the
no-training baseline), and ``load_prepared`` reads it back in every training job.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from harness.core.atomic import atomic_dir, write_json
from harness.core.errors import DataError, first_line
from harness.core.metrics import METRIC_NAMES
from harness.core.sources import no_datasets_bars
from harness.suites import get_suite
from harness.suites.base import data_size

__all__ = ["carve_validation", "label_stats", "load_prepared", "prepare", "subsample"]

FORMAT_VERSION = 2

def subsample(ds, n: int | None, strata: np.ndarray | None, seed: int, what: str):
    """At most n examples of ``ds``; stratified (proportional, largest remainders) when ``strata``
    is given, else uniform; seeded, original order kept."""
    if n is None or n >= len(ds):
        return ds
    if n <= 0:
        raise DataError(f"{what} must be a positive number of examples or null (all), got {n}")
    return ds.select(_sample_positions(len(ds), n, strata, seed).tolist())


def _sample_positions(size: int, n: int, strata: np.ndarray | None, seed: int) -> np.ndarray:
    """n sorted positions of ``size``: stratified (proportional, largest remainders) or uniform; seeded."""
    rng = np.random.default_rng(seed)
    if strata is None:
        return np.sort(rng.permutation(size)[:n])
    values, counts = np.unique(strata, return_counts=True)
    quota = n * counts / counts.sum()
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take), kind="stable")[: n - take.sum()]:
        take[i] += 1
    chosen = [rng.permutation(np.flatnonzero(strata == v))[:k] for v, k in zip(values, take)]
    return np.sort(np.concatenate(chosen))


def carve_validation(raw, size: float | int, strata: np.ndarray | None, seed: int):
    """('train' less a held-out 'validation', which model selection uses, and the task's own
    'validation' renamed 'test', the reported split; the carve's record). ``size``: a fraction of
    'train' (float) or a count; stratified when ``strata`` is given; seeded (``seed``). The record
    names the rule, the seed, the size and a SHA-256 of the held-out positions in the (subsampled)
    'train', so a rerun can prove it held out the same items."""
    from datasets import DatasetDict

    n = len(raw["train"])
    count = int(round(size * n)) if isinstance(size, float) else int(size)
    if not 0 < count < n:
        raise DataError(f"held-out validation of {size} leaves no training or no validation examples (train has {n})")
    held = _sample_positions(n, count, strata, seed)
    keep = np.setdiff1d(np.arange(n), held)
    out = DatasetDict({"train": raw["train"].select(keep.tolist()), "validation": raw["train"].select(held.tolist()),
                       "test": raw["validation"]})
    digest = hashlib.sha256(",".join(map(str, held.tolist())).encode()).hexdigest()
    return out, {"size": count, "of": n, "requested": size, "seed": seed, "stratified": strata is not None,
                 "positions_sha256": digest,
                 "rule": "harness.prepare.carve_validation: held out of the subsampled 'train' (positions hashed), "
                         "the task's own evaluation split renamed 'test'"}


def label_stats(spec, labels: np.ndarray, names: list[str] | None) -> dict:
    if labels.dtype.kind in "US" or labels.dtype == object:  # generated answers: no label statistics
        return {"distinct": int(len(set(labels.tolist())))}
    if spec.is_regression:
        return {"mean": float(labels.mean()), "std": float(labels.std()), "min": float(labels.min()),
                "max": float(labels.max())}
    counts = {str(k): int((labels == k).sum()) for k in range(spec.num_labels)}
    return {"counts": counts, "names": names} if names else {"counts": counts}


def prepare(cfg: dict, task: str, out_dir: str | os.PathLike, backbone_path: str, *, seed: int = 0) -> dict:
    """Load ``task`` with its suite, subsample, preprocess once and save ``out_dir`` (save_to_disk +
    meta.json) atomically; returns the meta.

    ``seed`` picks the split of tasks that ship without one and the subsample (train: seed,
    validation: seed + 1). The meta records the data recipe, the sizes, the preprocessing and the
    no-training baseline on validation.
    """
    from datasets import ClassLabel, DatasetDict

    suite = get_suite(cfg["suite"])
    spec = suite.task(task)
    raw, recipe = suite.load_raw(spec, cfg, seed)
    n_raw = {k: len(v) for k, v in raw.items()}
    label_key = suite.label_key(spec)
    label_feature = raw["train"].features.get(label_key)
    names = list(label_feature.names) if isinstance(label_feature, ClassLabel) else None
    sizes = {split: data_size(cfg, f"max_{'train' if split == 'train' else 'eval'}", task) for split in raw}
    raw = DatasetDict({
        split: subsample(ds, sizes[split], None if sizes[split] is None or sizes[split] >= len(ds)
                         else suite.strata(spec, np.asarray(ds[label_key])),
                         seed + (split != "train"), f"max_{'train' if split == 'train' else 'eval'}")
        for split, ds in raw.items()
    })
    selection = suite.selection(spec, cfg)
    held_out = None
    if selection.held_out is not None and "test" not in raw:
        raw, held_out = carve_validation(raw, selection.held_out, suite.strata(spec, np.asarray(raw["train"][label_key])),
                                         seed + 2)
    with no_datasets_bars():
        dd, preprocessing = suite.preprocess(spec, raw, cfg, backbone_path)
    if any(len(ds) == 0 for ds in dd.values()):
        raise DataError(f"{spec.name}: a split is empty after loading ({ {k: len(v) for k, v in dd.items()} }): check the data")

    y = {split: np.asarray(dd[split]["labels"]) for split in dd}
    meta = {
        "format_version": FORMAT_VERSION,
        "suite": suite.name,
        "task": spec.name,
        "description": spec.description,
        "source": recipe,
        "metric": spec.metric,
        "metric_name": METRIC_NAMES[spec.metric],
        "num_labels": spec.num_labels,
        **preprocessing,
        "seed": seed,
        "subsample": {
            "max_train": sizes["train"],
            "max_eval": sizes["validation"],
            "rule": "stratified (class or rating quintile), proportional, numpy default_rng(seed | seed+1)",
        },
        "n_train_raw": n_raw["train"],
        "n_eval_raw": n_raw["validation"],
        "n_train": len(dd["train"]),
        "n_eval": len(dd["validation"]),
        **({"n_test": len(dd["test"])} if "test" in dd else {}),
        "selection": {**asdict(selection), "held_out_carve": held_out},
        "columns": list(dd["train"].column_names),
        "label_distribution": {split: label_stats(spec, v, names) for split, v in y.items()},
        "baseline": suite.baseline(spec, dd),
    }
    with atomic_dir(out_dir) as tmp:
        with no_datasets_bars():
            dd.save_to_disk(str(tmp))
        write_json(tmp / "meta.json", meta)
    return meta


def load_prepared(out_dir: str | os.PathLike):
    """(DatasetDict, meta) written by prepare(); a missing or damaged folder raises DataError."""
    from datasets import load_from_disk

    root = Path(out_dir)
    if not (root / "meta.json").is_file():
        raise DataError(f"prepared data {root} is missing (no meta.json): run the prepare step for this task first")
    try:
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
        with no_datasets_bars():
            dd = load_from_disk(str(root))
    except Exception as exc:
        raise DataError(f"prepared data {root} is corrupt ({first_line(exc)}): delete the folder and prepare it again") from exc
    if not {"train", "validation"} <= set(dd) or any("labels" not in dd[s].column_names for s in ("train", "validation")):
        raise DataError(f"prepared data {root} lacks train/validation splits with 'labels': delete the folder and prepare it again")
    return dd, meta
