"""The ``vision`` suite: image classification with a ViT (FoRA Table 4, LFMA Table 1, FourierMoE
Fig. 3), on the datasets of FourierFT's official ViT code (hub or a local folder), and on the mini
image tasks (:mod:`harness.suites.vision.mini`) at the mini scale.

Splits and selection, as FourierFT (``Chaos96/fourierft``, ``experiments/ViT/exec.py``: ``get_data``
returns train/val/test; ``TrainingArguments(evaluation_strategy="epoch", load_best_model_at_end=True,
metric_for_best_model="accuracy")`` with ``eval_dataset=val_ds``, then ``trainer.evaluate(test_ds)``):

* ``test`` = the dataset's test split (for DTD, which ships one split, a seeded stratified 20 % of
  it, as FourierFT's unseeded 20 %): the reported split, scored once at the selected epoch and once
  at the last epoch (the ``<task>_last`` column).
* ``validation`` = the shipped validation split (RESISC45, EuroSAT), else a seeded stratified 10 %
  of train (FourierFT: ``train_test_split(test_size=0.1)``, unseeded): the best epoch is selected on
  its accuracy. Mini tasks ship train/validation only: prep carves 10 % of train as 'validation'
  and the task's own evaluation split becomes 'test' (:func:`harness.prepare.carve_validation`).
* ``train`` = the rest.
The recipe and the carve (size, seed, positions hash) are in ``meta.json``.

Preprocessing runs once, in ``prep``, and stores each split as FourierFT's transforms read it
(``experiments/ViT/exec.py``): the training images whole, as ``image`` (the source's encoded bytes
unchanged, arrays as lossless PNG; each decoded once to check it), because ``RandomResizedCrop`` and
the flip are drawn per epoch on the full decoded image (:func:`random_resized_crop`: scale 0.08-1,
ratio 3/4-4/3 on the image's own size, PIL crop + bilinear resize to ``data.image_size``, flip
p = 0.5, every draw from the per-epoch ``generator``); the validation and test images as ``Resize`` +
``CenterCrop`` give them, decoded once, shorter side resized to ``data.image_size`` (bilinear,
antialiased), centre-cropped and stored as uint8 ``pixel_values`` (3, S, S). Every split has int64
``labels``. Disk: the training split is the source's own training images (its download size), each
evaluation image S x S x 3 bytes. Both kinds of batch are scaled to [0, 1] and normalised with the
backbone processor's mean/std. The model is ``AutoModelForImageClassification`` with a new
``classifier``; the score is accuracy.
"""
from __future__ import annotations

import logging

import numpy as np

from harness.core.errors import DataError, first_line
from harness.models import quiet_transformers
from harness.suites.base import Selection, Suite, column_mapping, data_size
from harness.suites.vision.images import (
    CROP_SCALE,
    check_image_size,
    encode_image,
    processor_stats,
    random_resized_crop,
    resize_center_crop,
    resolved,
    stack_uint8,
)
from harness.suites.vision.loading import load_dir, load_hub, make_splits
from harness.suites.vision.tasks import HELD_OUT_FRACTION, TASKS, ImageTask

__all__ = ["VisionSuite"]

log = logging.getLogger(__name__)


class VisionSuite(Suite):
    """Image classification: FourierFT's ViT datasets (hub or ``data.data_dir``) and the mini image tasks."""

    name = "vision"
    tasks = TASKS
    model_class = "AutoModelForImageClassification"
    model_types = ("vit", "dinov2")

    # ---------------------------------------------------------------- prep
    def prep_name(self, cfg: dict, task: str) -> str:
        sizes = [data_size(cfg, k, task) or "all" for k in ("max_train", "max_eval")]
        return f"{cfg['backbone']['name']}-S{cfg['data']['image_size']}-{sizes[0]}-{sizes[1]}"

    def prep_identity(self, cfg: dict, task: str) -> dict:
        """As every suite's, and how the splits are stored (the training images whole since issue
        18 §5): a folder prepared the earlier way is never read as this one."""
        return super().prep_identity(cfg, task) | {"storage": "train: full images; eval: centre crop"}

    def load_raw(self, spec: ImageTask, cfg: dict, seed: int):
        """Mini tasks: built from their package's files (``seed`` picks their split). The others:
        ``data.data_dir`` when set, else the hub cache, else the hub if it answers; then the splits
        of the module doc (``validation`` = the test split)."""
        if spec.build is not None:
            return spec.build(seed)
        data_dir = cfg["data"].get("data_dir")
        dd, recipe = load_dir(spec, data_dir) if data_dir else load_hub(spec)
        where = recipe.get("path") or "+".join(spec.hub_ids)
        out, rule = make_splits(dd, spec, seed, where, column_mapping(cfg, spec.name))
        return out, {**recipe, "splits": rule, "source": spec.source}

    def label_key(self, spec: ImageTask) -> str:
        return spec.label_key

    def selection(self, spec: ImageTask, cfg: dict) -> Selection:
        """FourierFT's ViT protocol (module doc): accuracy on the held-out 'validation' picks the epoch,
        'test' is reported at it (and at the last epoch)."""
        return Selection(select_on="metric", test="once", test_last=True, held_out=HELD_OUT_FRACTION,
                         text="best epoch selected on accuracy on a validation split held out of train (seeded); "
                              "test accuracy reported at that epoch, `<task>_last` = test at the last epoch "
                              "(FourierFT experiments/ViT/exec.py: load_best_model_at_end on val_ds, then evaluate(test_ds))")

    def check_backbone(self, cfg: dict, backbone_path: str) -> None:
        """The image processor (mean/std) and the image size the backbone takes."""
        processor_stats(backbone_path)
        check_image_size(backbone_path, int(cfg["data"]["image_size"]))

    def preprocess(self, spec: ImageTask, raw, cfg: dict, backbone_path: str):
        from datasets import Array3D, DatasetDict, Features, Image, Value

        size = int(cfg["data"]["image_size"])
        check_image_size(backbone_path, size)
        stats = processor_stats(backbone_path)
        image_key = spec.image_key if spec.build is None else "image"
        label_key = spec.label_key if spec.build is None else "label"
        labels = Value("int64")
        stored = {"train": Features({"image": Image(), "labels": labels}),
                  "eval": Features({"pixel_values": Array3D((3, size, size), "uint8"), "labels": labels})}

        def keep_whole(batch: dict) -> dict:
            return {"image": [encode_image(x) for x in batch[image_key]],
                    "labels": np.asarray(batch[label_key], dtype=np.int64)}

        def centre_crop(batch: dict) -> dict:
            return {"pixel_values": np.stack([resize_center_crop(x, size) for x in batch[image_key]]),
                    "labels": np.asarray(batch[label_key], dtype=np.int64)}

        out = {}
        for split, ds in raw.items():
            train = split == "train"
            if isinstance(ds.features[image_key], Image):
                ds = ds.cast_column(image_key, Image(decode=not train))  # training images: the bytes as shipped
            else:
                ds = ds.with_format("numpy", columns=[image_key, label_key])  # arrays, not nested lists
            out[split] = ds.map(keep_whole if train else centre_crop, batched=True, batch_size=256,
                                remove_columns=ds.column_names, features=stored["train" if train else "eval"],
                                writer_batch_size=256,
                                desc=f"{spec.name} {split}: " + ("check + store whole" if train else f"decode + resize to {size}"))
        # evaluation splits in numpy format (kept by save_to_disk): jobs read arrays, not nested lists;
        # the training split decodes to PIL images (random_resized_crop)
        return DatasetDict({k: v if k == "train" else v.with_format("numpy") for k, v in out.items()}), {
            "image_size": size,
            "image_mean": stats["mean"],
            "image_std": stats["std"],
            "processor": stats["processor"],
            "stored": (f"train: image (the source's encoded bytes unchanged; arrays as PNG), labels int64; "
                       f"evaluation splits: pixel_values uint8 (3, {size}, {size}), labels int64"),
            "resize": (f"evaluation splits: decoded with PIL, RGB, shorter side resized to {size} (bilinear, antialiased), "
                       f"centre crop {size}x{size} (torchvision Resize + CenterCrop rounding)"),
            "train_augmentation": ("per epoch, from the loop's generator: torchvision RandomResizedCrop on the full decoded "
                                   f"image (scale {CROP_SCALE}, ratio (3/4, 4/3), PIL crop + bilinear resize to {size}), "
                                   "RandomHorizontalFlip p=0.5; then /255 and the processor's mean/std "
                                   "(FourierFT experiments/ViT/exec.py train_transforms)"),
            "eval_transform": "the stored centre crop, /255, the processor's mean/std",
        }

    # ---------------------------------------------------------------- train
    def load_model(self, spec: ImageTask, cfg: dict, backbone_path: str):
        import torch
        from transformers import AutoModelForImageClassification

        check_image_size(backbone_path, int(cfg["data"]["image_size"]))
        path = resolved(backbone_path)
        try:
            with quiet_transformers():
                model, info = AutoModelForImageClassification.from_pretrained(
                    path, num_labels=spec.num_labels, dtype=torch.float32, ignore_mismatched_sizes=True,
                    output_loading_info=True)
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"cannot load an image classifier from {path} ({first_line(exc)}): check "
                            "backbone.local_path / convert") from exc
        new = sorted(info.get("missing_keys") or []) + [k[0] if isinstance(k, tuple) else k
                                                        for k in info.get("mismatched_keys") or []]
        not_head = [k for k in new if not k.startswith("classifier.")]
        if not_head:
            log.warning("%s: weights newly initialised outside the classifier: %s", path, ", ".join(not_head[:8]))
        return model.float()

    def collate(self, spec: ImageTask, cfg: dict, backbone_path: str, *, train: bool, generator=None):
        """Batches {'pixel_values': float32 (B, 3, S, S), 'labels': int64 (B,)}. Training batches (items
        with the whole ``image``) are cropped with draws from ``generator`` only (None: torch's global
        generator); evaluation batches (``pixel_values``) are normalised only."""
        import torch

        size = int(cfg["data"]["image_size"])
        stats = processor_stats(backbone_path)
        mean = torch.tensor(stats["mean"], dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(stats["std"], dtype=torch.float32).view(1, 3, 1, 1)
        gen = generator if generator is not None else torch.default_generator

        def collate_fn(items: list[dict]) -> dict:
            if train:  # the stored whole images, cropped per epoch
                pixels = np.stack([random_resized_crop(it["image"], size, gen) for it in items])
            else:
                pixels = stack_uint8([it["pixel_values"] for it in items])
            x = (torch.from_numpy(pixels).float() / 255.0 - mean) / std
            labels = torch.as_tensor(np.asarray([int(it["labels"]) for it in items], dtype=np.int64))
            return {"pixel_values": x.contiguous(), "labels": labels}

        return collate_fn
