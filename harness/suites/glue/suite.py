"""The ``glue`` suite: text classification with a sequence-classification model (FoRA Table 1,
LFMA Tables 2-3, FAA), on GLUE from the hub or a local folder, and on the mini text tasks
(:mod:`harness.suites.glue.mini`) at the mini scale.

Preprocessing tokenizes once (truncated to ``data.max_length``, not padded: the collator pads per
batch); the model is ``AutoModelForSequenceClassification`` (``num_labels=1``: regression, MSE);
scores are the papers' GLUE metrics (accuracy, MCC for CoLA, PCC for STS-B).
"""
from __future__ import annotations

from functools import cache

import numpy as np

from harness.models import load_classifier, load_tokenizer
from harness.suites.base import Suite, column_mapping, data_size
from harness.suites.glue.loading import load_glue_dir, load_glue_hub
from harness.suites.glue.tasks import TASKS, TextTask

__all__ = ["GlueSuite"]


class GlueSuite(Suite):
    """Text classification: GLUE (hub or ``data.data_dir``) and the mini text tasks."""

    name = "glue"
    tasks = TASKS
    model_class = "AutoModelForSequenceClassification"
    model_types = ("bert", "roberta")

    def prep_name(self, cfg: dict, task: str) -> str:
        sizes = [data_size(cfg, k, task) or "all" for k in ("max_train", "max_eval")]
        return f"{cfg['backbone']['name']}-L{cfg['data']['max_length']}-{sizes[0]}-{sizes[1]}"

    def load_raw(self, spec: TextTask, cfg: dict, seed: int):
        """GLUE: from ``data.data_dir`` when set (see load_glue_dir), else the hub cache, else the
        hub if it answers. Mini tasks are built from their package's files; ``seed`` picks their split."""
        if spec.build is not None:
            return spec.build(seed)
        data_dir, columns = cfg["data"].get("data_dir"), column_mapping(cfg, spec.name)
        return load_glue_dir(spec, data_dir, columns) if data_dir else load_glue_hub(spec, columns)

    def label_key(self, spec: TextTask) -> str:
        return spec.label_key

    def preprocess(self, spec: TextTask, raw, cfg: dict, backbone_path: str):
        from datasets import DatasetDict, Value

        max_length = cfg["data"]["max_length"]
        tok = _tokenizer(backbone_path)

        def encode(batch: dict) -> dict:
            enc = tok(*[batch[k] for k in spec.text_keys], truncation=True, max_length=max_length)
            out = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
            out["labels"] = batch[spec.label_key]
            return out

        dd = DatasetDict({
            split: ds.map(encode, batched=True, remove_columns=ds.column_names, keep_in_memory=True).cast_column(
                "labels", Value("float32" if spec.is_regression else "int64"))
            for split, ds in raw.items()
        })
        lengths = {split: np.array([len(x) for x in ds["input_ids"]]) for split, ds in dd.items()}
        return dd, {
            "text_keys": list(spec.text_keys),
            "tokenizer": getattr(tok, "name_or_path", type(tok).__name__),
            "max_length": max_length,
            "tokens": {split: {"mean": float(v.mean()), "max": int(v.max()), "n_at_max_length": int((v >= max_length).sum())}
                       for split, v in lengths.items()},
        }

    def load_model(self, spec: TextTask, cfg: dict, backbone_path: str):
        return load_classifier(backbone_path, spec.num_labels)

    def collate(self, spec: TextTask, cfg: dict, backbone_path: str, *, train: bool, generator=None):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(_tokenizer(backbone_path), return_tensors="pt")


@cache
def _tokenizer(backbone_path: str):
    """One tokenizer per process (every epoch's collator shares it)."""
    return load_tokenizer(backbone_path)
