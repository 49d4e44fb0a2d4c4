"""What a suite is: the part of an experiment that differs between kinds of experiment.

A suite owns its tasks (names, metrics, number of labels), how raw data is loaded (hub, a local
folder, or data a package ships), how it is preprocessed once per (task, backbone preprocessing),
which model class a backbone is loaded with, how a batch is collated, and how predictions are
scored. Everything else is one for all suites: the method registry (``adapters``), the training
loop (``harness.train``), checkpoints and resume, the profiler, tables and figures, the config
schema and the Snakemake rules.

The three suites: ``glue`` (text classification, :mod:`harness.suites.glue`), ``vision`` (image
classification, :mod:`harness.suites.vision`), ``instruct`` (instruction tuning scored by
generation, :mod:`harness.suites.instruct`). A fourth kind of experiment is a new module here with
a :class:`Suite` subclass, registered in :mod:`harness.suites`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from harness.core.errors import DataError, first_line
from harness.core.metrics import baseline_summary, compute_metric, predictions_from_logits
from harness.core.sources import data_source, model_source
from harness.models import load_tokenizer
from harness.core.splits import quantile_bins

__all__ = ["DataError", "Selection", "Suite", "TaskSpec", "column_mapping", "data_size", "first_line", "reported_split"]


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """What every task is, whatever its suite; suites subclass it with their own fields.

    Tasks made from data a package ships carry their ``build(seed) -> (DatasetDict, recipe)``;
    the others are loaded by their suite (hub or a local folder).
    """

    name: str
    num_labels: int  # 1 = regression
    metric: str  # a key of harness.core.metrics.METRIC_NAMES
    description: str
    build: Callable[[int], tuple[Any, dict]] | None = field(default=None, compare=False, repr=False)

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1


@dataclass(frozen=True)
class Selection:
    """How a task's checkpoint is chosen and which split its number is reported on: the protocol
    of the source the table reproduces (the shared loop reads it; no suite name in the loop).

    * ``select_on``: ``"metric"``, the 'validation' split's metric (highest wins), or ``"loss"``,
      the task loss on the 'validation' split (lowest wins: HF ``Trainer``'s ``eval_loss`` with
      ``load_best_model_at_end``).
    * ``test``: ``"none"``, 'validation' is also the reported split (GLUE: the papers select and
      report on the dev set); ``"once"``, the 'test' split is scored once, at the selected epoch;
      ``"every_epoch"``, 'test' is scored after every epoch (a column needs every epoch: FoRA's
      "Extended" math column, the best epoch on test, recorded as ``test_best``).
    * ``test_last``: in ``"once"`` mode, also score 'test' at the last epoch (the ``<task>_last``
      column; one more pass).
    * ``held_out``: prep carves 'validation' out of 'train' (a fraction of it, or a count), seeded
      and recorded, when the task ships no 'test' split of its own (its 'validation' becomes 'test').
    * ``text``: how the selection is stated in the table meta, with its source.
    """

    select_on: str = "metric"
    test: str = "none"
    test_last: bool = False
    held_out: float | int | None = None
    text: str = ("best epoch selected on the validation split and reported on that same split (the papers' protocol); "
                 "`<task>_last` = last epoch")

    def __post_init__(self):
        if self.select_on not in ("metric", "loss") or self.test not in ("none", "once", "every_epoch"):
            raise ValueError(f"Selection(select_on={self.select_on!r}, test={self.test!r}): select_on is metric|loss, "
                             "test is none|once|every_epoch")
        if (self.test == "none") != (self.held_out is None) or (self.test == "none" and self.select_on == "loss"):
            raise ValueError("Selection: a 'test' split (test once/every_epoch) needs held_out, and loss selection a test split")


def column_mapping(cfg: dict, task: str) -> dict[str, str] | None:
    """``data.columns.<task>``: ``{the suite's column name: the dataset's}`` for a mirror that names
    its columns differently (uoft-cs/cifar100: ``{image: img, label: fine_label}``)."""
    return (cfg["data"].get("columns") or {}).get(task)


def data_size(cfg: dict, key: str, task: str) -> int | None:
    """``data.max_train`` / ``data.max_eval`` for ``task``: one number for all tasks or one per task."""
    value = cfg["data"].get(key)
    return value.get(task) if isinstance(value, dict) else value


def reported_split(prepared) -> str:
    """'test' when prep made one (the selection split is then 'validation'), else 'validation'."""
    return "test" if "test" in prepared else "validation"


class Suite:
    """The seam between the shared harness and one kind of experiment.

    The shared code calls, in this order:
      prep  (``harness.prepare``): :meth:`prep_id`, :meth:`load_raw`, :meth:`strata` (for
            stratified subsampling), :meth:`preprocess`, :meth:`baseline`;
      train (``harness.train``): :meth:`load_model`, :meth:`collate`, :meth:`loss` every step,
            :meth:`evaluate` every epoch (the arrays it returns are saved as ``predictions.npz``);
      eval  (``harness.evaluate``): :meth:`score` on those saved arrays, which must give the metric
            :meth:`evaluate` returned.
    ``cfg`` is the validated table config (``harness.config.load_table``); ``backbone_path`` the
    folder or hub id the backbone loads from (``harness.config.backbone_path``).
    The defaults below are those of classification with a ``labels`` column and logits.
    """

    name: ClassVar[str]
    tasks: ClassVar[dict[str, TaskSpec]]
    # the transformers Auto class the backbone is loaded with (the config checks build it without
    # weights) and the model types of its backbones (the job server builds them once to warm up)
    model_class: ClassVar[str]
    model_types: ClassVar[tuple[str, ...]]
    # the table's no-training row, as the tables name it (:meth:`baseline` says what it scores)
    baseline_label: ClassVar[str] = "majority class / constant (no training)"

    def task(self, name: str) -> TaskSpec:
        try:
            return self.tasks[name]
        except (KeyError, TypeError):
            raise DataError(f"unknown task {name!r} for suite {self.name!r}: use one of {', '.join(self.tasks)}") from None

    # ---------------------------------------------------------------- prep
    def prep_id(self, cfg: dict, task: str) -> str:
        """The prepared-data folder's name: the preprocessing, readable (:meth:`prep_name`), and a
        digest of everything that decides the prepared bytes (:meth:`prep_identity`). Jobs share a
        folder, and so one prep job, only when all of that is equal."""
        blob = json.dumps(self.prep_identity(cfg, task), sort_keys=True, default=str)
        return f"{self.prep_name(cfg, task)}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"

    def prep_name(self, cfg: dict, task: str) -> str:
        """A readable name of the preprocessing (backbone, length or image size, sizes)."""
        raise NotImplementedError

    def prep_identity(self, cfg: dict, task: str) -> dict:
        """What decides a task's prepared bytes: the data source (resolved ``data.data_dir`` or the
        hub), the tokenizer/processor source (resolved ``backbone.local_path``, the converted folder,
        or the hub id), the ``data`` section with this task's sizes, and the readable name.
        Suites add what else their prep reads (instruct: the baseline's model and generation)."""
        data = {k: v for k, v in cfg["data"].items() if k not in ("data_dir", "max_train", "max_eval", "columns")}
        data["columns"] = column_mapping(cfg, task)  # this task's mapping only
        selection = self.selection(self.task(task), cfg)
        return {"suite": self.name, "task": task, "name": self.prep_name(cfg, task), "data": data,
                "sizes": [data_size(cfg, k, task) for k in ("max_train", "max_eval")],
                "data_source": data_source(cfg), "model_source": model_source(cfg),
                # the held-out carve decides the splits (absent when there is none: GLUE's ids unchanged)
                **({"held_out": [selection.held_out, "test"]} if selection.held_out is not None else {})}

    def load_raw(self, spec: TaskSpec, cfg: dict, seed: int) -> tuple[Any, dict]:
        """(DatasetDict with 'train' and 'validation', recipe): the raw task and how it was made."""
        raise NotImplementedError

    def label_key(self, spec: TaskSpec) -> str:
        return "label"

    def selection(self, spec: TaskSpec, cfg: dict) -> Selection:
        """How the loop picks the epoch and what it reports (the default: select and report on
        'validation', as the GLUE papers did)."""
        return Selection()

    def strata(self, spec: TaskSpec, labels: np.ndarray) -> np.ndarray | None:
        """Stratum per raw example for subsampling (None: uniform): classes, or rating quintiles."""
        return quantile_bins(labels) if spec.is_regression else labels.astype(np.int64)

    def preprocess(self, spec: TaskSpec, raw: Any, cfg: dict, backbone_path: str) -> tuple[Any, dict]:
        """(model-ready DatasetDict with a 'labels' column, meta entries describing the preprocessing)."""
        raise NotImplementedError

    def baseline(self, spec: TaskSpec, prepared: Any) -> dict | None:
        """The no-training predictor scored on the reported split (majority class / constant train mean)."""
        return baseline_summary(spec.metric, np.asarray(prepared["train"]["labels"]),
                                np.asarray(prepared[reported_split(prepared)]["labels"]))

    def check_backbone(self, cfg: dict, backbone_path: str) -> None:
        """What prep and training read from the backbone besides its weights, loaded once to fail
        early (the preflight): the tokenizer by default; raises ModelError/DataError."""
        load_tokenizer(backbone_path)

    # ---------------------------------------------------------------- train
    def load_model(self, spec: TaskSpec, cfg: dict, backbone_path: str):
        """The backbone with the task's head, float32, weights not in the checkpoint drawn from the
        global RNG (seeded by the loop)."""
        raise NotImplementedError

    def collate(self, spec: TaskSpec, cfg: dict, backbone_path: str, *, train: bool,
                generator=None) -> Callable[[list[dict]], dict]:
        """Batch maker; ``generator`` (a torch.Generator, train only) drives random augmentation so
        that an epoch's batches are a pure function of (seed, epoch)."""
        raise NotImplementedError

    def loss(self, model, batch: dict):
        return model(**batch).loss

    # ---------------------------------------------------------------- eval
    def evaluate(self, model, loader, spec: TaskSpec, device) -> tuple[float, dict[str, np.ndarray]]:
        """(metric, arrays to save) on the validation loader; :meth:`score` recomputes the metric
        from the arrays."""
        import torch  # lazy: the prep and eval stages use suites without loading torch

        model.eval()
        preds, labels = [], []
        with torch.no_grad():
            for batch in loader:
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
                preds.append(predictions_from_logits(logits.float().cpu().numpy(), spec.num_labels))
                labels.append(batch["labels"].cpu().numpy())
        model.train()
        saved = {"predictions": np.concatenate(preds), "labels": np.concatenate(labels)}
        return self.score(spec, saved), saved

    def score(self, spec: TaskSpec, saved: dict[str, np.ndarray]) -> float:
        return compute_metric(spec.metric, saved["predictions"], saved["labels"])

    def extra_metrics(self, spec: TaskSpec, saved: dict[str, np.ndarray]) -> dict[str, float]:
        """Further columns scored from the same saved arrays, shown beside the task's column
        (instruct: ``math_strict``, the strict string match beside MATH's equivalence); name -> value."""
        return {}

    def predicted_classes(self, spec: TaskSpec, saved: dict[str, np.ndarray]) -> np.ndarray | None:
        """The predicted class per evaluation item from the saved arrays, or None where predictions
        are not classes (regression, generation): what ``harness.health`` compares with the adapter
        switched off."""
        if spec.num_labels < 2 or "predictions" not in saved:
            return None
        return np.asarray(saved["predictions"])
