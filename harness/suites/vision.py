"""The ``vision`` suite: image classification with a ViT (FoRA Table 4, LFMA Table 1, FourierMoE
Fig. 3), on the datasets of FourierFT's official ViT code (hub or a local folder), and on the mini
image tasks (:mod:`harness.suites.vision_mini`) at the mini scale.

Splits (read this before comparing with a paper). FourierFT (``Chaos96/fourierft``,
``experiments/ViT/exec.py``) trains on the training split, or on 90 % of it where the dataset ships
no validation split (the other 10 % held out without a seed), selects the best epoch on that
validation split and reports the test split. The shared loop of this harness has two splits,
``train`` and ``validation``: it selects the best epoch on ``validation`` and reports that epoch
(the GLUE papers' protocol). So here:

* ``validation`` = the dataset's **test** split (for DTD, which ships one split, a seeded
  stratified 20 % of it, as FourierFT's unseeded 20 %); the reported number is test accuracy at
  the epoch that was best on test, which is optimistic compared with FourierFT's selection.
* ``train`` = what FourierFT trains on: the training split, less a seeded stratified 10 % where the
  dataset ships no validation split (FourierFT's held-out 10 % was unseeded, so its splits differ
  from run to run). That 10 % (or the shipped validation split) is not used.
The recipe in ``meta.json`` records all of this.

Preprocessing runs once, in ``prep``: every image is decoded (PIL), converted to RGB, its shorter
side resized to ``data.image_size`` (bilinear, antialiased) and centre-cropped to a square, as
torchvision's ``Resize`` + ``CenterCrop``; stored as uint8 ``pixel_values`` (3, S, S) next to int64
``labels``. Batches: training images get a random resized crop (scale 0.08-1, ratio 3/4-4/3, as
torchvision's ``RandomResizedCrop``, taken from the stored S x S image and resized back to S) and a
horizontal flip with p = 0.5, all drawn from the per-epoch ``generator``; evaluation images are used
as stored. Both are scaled to [0, 1] and normalised with the backbone processor's mean/std. The
model is ``AutoModelForImageClassification`` with a new ``classifier``; the score is accuracy.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.sources import load_hub_dataset
from harness.core.splits import stratified_split
from harness.suites.base import DataError, Suite, TaskSpec, data_size, first_line

log = logging.getLogger(__name__)

HELD_OUT_FRACTION = 0.1  # FourierFT: 10 % of train held out where no validation split ships
DTD_TEST_FRACTION = 0.2  # FourierFT: DTD's one split -> 20 % test
CROP_SCALE = (0.08, 1.0)  # torchvision RandomResizedCrop defaults
CROP_RATIO = (3 / 4, 4 / 3)


@dataclass(frozen=True, kw_only=True)
class ImageTask(TaskSpec):
    """An image-classification task: where its splits come from on the hub.

    ``hub_id``/``train_split``: the training split; ``eval_hub_id``/``eval_split``: the split that
    becomes ``validation`` (the test split; ``eval_hub_id`` when it lives in another repository);
    ``eval_split=None``: the dataset ships one split and the evaluation split is a seeded
    stratified ``eval_fraction`` of it. ``heldout_split``: a shipped validation split (FourierFT
    selects on it; unused here); when there is none, ``HELD_OUT_FRACTION`` of train is held out
    instead, as FourierFT does.
    """

    hub_id: str | None = None
    hub_config: str | None = None
    train_split: str = "train"
    eval_hub_id: str | None = None
    eval_split: str | None = "test"
    eval_fraction: float | None = None
    heldout_split: str | None = None
    image_key: str = "image"
    label_key: str = "label"
    source: str = ""  # who uses this dataset id

    @property
    def hub_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i for i in (self.hub_id, self.eval_hub_id) if i))


_FOURIERFT = "FourierFT experiments/ViT/exec.py"


def _task(name: str, num_labels: int, description: str, hub_id: str, **kw) -> ImageTask:
    return ImageTask(name=name, num_labels=num_labels, metric="accuracy", description=description, hub_id=hub_id,
                     source=kw.pop("source", _FOURIERFT), **kw)


# Hub ids as in FourierFT's official ViT code (FoRA Table 4, LFMA Table 1); SUN397 (FourierMoE
# Fig. 3) is not in that code: tanganke/sun397 (train/test parquet, as FusionBench uses it).
VISION_TASKS: dict[str, ImageTask] = {
    t.name: t
    for t in [
        _task("pets", 37, "Oxford-IIIT Pet: 37 cat and dog breeds", "timm/oxford-iiit-pet"),
        _task("cars", 196, "Stanford Cars: 196 car models", "Multimodal-Fatima/StanfordCars_train",
              eval_hub_id="Multimodal-Fatima/StanfordCars_test"),
        _task("dtd", 47, "Describable Textures: 47 texture classes", "cansa/Describable-Textures-Dataset-DTD",
              eval_split=None, eval_fraction=DTD_TEST_FRACTION),
        _task("eurosat", 10, "EuroSAT RGB: 10 land-use classes from Sentinel-2", "timm/eurosat-rgb",
              heldout_split="validation"),
        _task("fgvc", 100, "FGVC-Aircraft: 100 aircraft variants", "Multimodal-Fatima/FGVC_Aircraft_train",
              eval_hub_id="Multimodal-Fatima/FGVC_Aircraft_test"),
        _task("resisc45", 45, "RESISC45: 45 remote-sensing scene classes", "timm/resisc45",
              heldout_split="validation"),
        _task("cifar10", 10, "CIFAR-10: 10 object classes, 32x32", "Multimodal-Fatima/CIFAR10_train",
              eval_hub_id="Multimodal-Fatima/CIFAR10_test"),
        _task("cifar100", 100, "CIFAR-100: 100 object classes, 32x32", "Multimodal-Fatima/CIFAR100_train",
              eval_hub_id="Multimodal-Fatima/CIFAR100_test"),
        _task("sun397", 397, "SUN397: 397 scene categories", "tanganke/sun397",
              source="FourierMoE Fig. 3 (hub id chosen: tanganke/sun397, not in FourierFT's code)"),
    ]
}


# ----------------------------------------------------------------------------- raw data
def _download_hint(spec: ImageTask) -> str:
    parts = [f"'{spec.train_split}': datasets.load_dataset('{spec.hub_id}', split='{spec.train_split}')"]
    if spec.eval_split:
        parts.append(f"'{spec.eval_split}': datasets.load_dataset('{spec.eval_hub_id or spec.hub_id}', split='{spec.eval_split}')")
    return (
        f"on a machine with internet run `python -c \"import datasets; datasets.DatasetDict({{{', '.join(parts)}}})"
        f".save_to_disk('vision/{spec.name}')\"`, copy vision/ here and set the config key `data.data_dir` to vision/ "
        "(one sub-folder per task)"
    )


def _load_hub(spec: ImageTask):
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


def _load_dir(spec: ImageTask, data_dir: str | os.PathLike):
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


def _check_split(ds, spec: ImageTask, where: str) -> np.ndarray:
    from datasets import ClassLabel

    missing = [c for c in (spec.image_key, spec.label_key) if c not in ds.column_names]
    if missing:
        raise DataError(f"{where} lacks column(s) {missing} (has {ds.column_names}): {spec.name} needs "
                        f"{[spec.image_key, spec.label_key]}")
    feature = ds.features[spec.label_key]
    if isinstance(feature, ClassLabel) and feature.num_classes != spec.num_labels:
        raise DataError(f"{where}: column {spec.label_key!r} has {feature.num_classes} classes, {spec.name} has "
                        f"{spec.num_labels}: is this the right dataset?")
    labels = np.asarray(ds[spec.label_key])
    if labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= spec.num_labels):
        raise DataError(f"{where}: labels must be integers 0..{spec.num_labels - 1} for {spec.name}, found "
                        f"{labels.dtype} {labels.min() if labels.size else ''}..{labels.max() if labels.size else ''}")
    return labels


def make_splits(dd, spec: ImageTask, seed: int, where: str):
    """(DatasetDict train/validation, split recipe) from the dataset's own splits; see the module doc."""
    from datasets import DatasetDict

    need = [spec.train_split] + ([spec.eval_split] if spec.eval_split else [])
    missing = [s for s in need if s not in dd]
    if missing:
        raise DataError(f"{where} has splits {sorted(dd)} but not {missing}: {spec.name} needs {need}")
    train = dd[spec.train_split]
    y = _check_split(train, spec, f"{where} split {spec.train_split!r}")
    rule: dict[str, Any] = {"seed": seed}
    if spec.eval_split:
        evaluation = dd[spec.eval_split]
        _check_split(evaluation, spec, f"{where} split {spec.eval_split!r}")
        rule["validation"] = f"the dataset's {spec.eval_split!r} split (the split FourierFT reports)"
    else:
        rest, test = stratified_split(y, spec.eval_fraction, seed)
        evaluation, train, y = train.select(test.tolist()), train.select(rest.tolist()), y[rest]
        rule["validation"] = (f"round({spec.eval_fraction} * n) per class of the dataset's only split "
                              f"{spec.train_split!r}, harness.core.splits.stratified_split(seed); FourierFT draws its "
                              f"{spec.eval_fraction:.0%} test split without a seed")
    if spec.heldout_split:
        rule["train"] = (f"the dataset's {spec.train_split!r} split; its {spec.heldout_split!r} split (FourierFT's "
                         "model selection) is not used")
    else:
        keep, held = stratified_split(y, HELD_OUT_FRACTION, seed + 1)
        train = train.select(keep.tolist())
        rule["train"] = (f"{spec.train_split!r} less round({HELD_OUT_FRACTION} * n) per class held out "
                         f"(harness.core.splits.stratified_split(seed + 1), {held.size} examples, not used): FourierFT trains on "
                         f"the same share but holds it out without a seed, so its split differs from run to run")
    rule["selection"] = ("the shared loop selects the best epoch on 'validation' (= the test split here) and reports it; "
                         "FourierFT selects on its held-out validation split and reports test")
    keep_cols = [spec.image_key, spec.label_key]
    out = DatasetDict({"train": train.select_columns(keep_cols), "validation": evaluation.select_columns(keep_cols)})
    return out, rule


# ----------------------------------------------------------------------------- images
def _to_rgb(x: Any):
    """A PIL RGB image from a PIL image, an encoded {'bytes', 'path'} dict or an array (H, W[, C])."""
    import io

    from PIL import Image

    if isinstance(x, dict):
        x = Image.open(io.BytesIO(x["bytes"])) if x.get("bytes") else Image.open(x["path"])
    if isinstance(x, Image.Image):
        return x.convert("RGB")
    a = np.asarray(x)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):  # (C, H, W)
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype != np.uint8:
        if a.size and (a.min() < 0 or a.max() > 255 or not np.all(a == np.round(a))):
            raise DataError(f"image array of {a.dtype} with values {a.min()}..{a.max()}: store uint8 0..255")
        a = a.astype(np.uint8)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise DataError(f"cannot read an image of shape {a.shape}: expected (H, W), (H, W, 3) or (H, W, 4)")
    return Image.fromarray(a).convert("RGB")


def resize_center_crop(image, size: int) -> np.ndarray:
    """uint8 (3, size, size): shorter side resized to ``size`` (PIL bilinear, which antialiases when
    shrinking), then centre-cropped, with torchvision's Resize/CenterCrop rounding."""
    from PIL import Image

    img = _to_rgb(image)
    w, h = img.size
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.BILINEAR)
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()


def crop_params(height: int, width: int, generator) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random resized crop, torchvision's RandomResizedCrop.get_params with
    scale (0.08, 1) and ratio (3/4, 4/3), every draw from ``generator``."""
    import torch

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * torch.rand(1, generator=generator).item()

    area = height * width
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target_area = area * uniform(*CROP_SCALE)
        aspect = math.exp(uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            i = int(torch.randint(0, height - h + 1, (1,), generator=generator).item())
            j = int(torch.randint(0, width - w + 1, (1,), generator=generator).item())
            return i, j, h, w
    in_ratio = width / height  # fallback: the central crop, as torchvision
    if in_ratio < min(CROP_RATIO):
        w, h = width, int(round(width / min(CROP_RATIO)))
    elif in_ratio > max(CROP_RATIO):
        h, w = height, int(round(height * max(CROP_RATIO)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def augment(images, generator):
    """Random resized crop back to the same size + horizontal flip (p = 0.5), per image, on a
    uint8 (B, 3, S, S) tensor; returns float32 in 0..255. Bilinear, antialiased where it shrinks."""
    import torch
    import torch.nn.functional as F

    size = images.shape[-2:]
    out = []
    for img in images:
        i, j, h, w = crop_params(int(size[0]), int(size[1]), generator)
        crop = img[:, i : i + h, j : j + w].unsqueeze(0).float()
        crop = F.interpolate(crop, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)[0]
        if torch.rand(1, generator=generator).item() < 0.5:
            crop = crop.flip(-1)
        out.append(crop)
    return torch.stack(out).clamp_(0, 255)


def _stack_uint8(values: list) -> np.ndarray:
    arrays = [np.asarray(v) for v in values]
    return np.stack(arrays).astype(np.uint8, copy=False)


# ----------------------------------------------------------------------------- backbone
@cache
def _resolved(backbone_path: str) -> str:
    from harness.models import resolve_pretrained

    return resolve_pretrained(backbone_path)


@cache
def processor_stats(backbone_path: str) -> dict:
    """The backbone processor's normalisation: {'mean', 'std', 'processor'} (AutoImageProcessor)."""
    from transformers import AutoImageProcessor

    path = _resolved(backbone_path)
    try:
        proc = AutoImageProcessor.from_pretrained(path)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot load an image processor from {path} ({first_line(exc)}): the backbone folder needs a "
                        "preprocessor_config.json (image_mean, image_std)") from exc
    mean, std = getattr(proc, "image_mean", None), getattr(proc, "image_std", None)
    if mean is None or std is None or len(mean) != 3 or len(std) != 3:
        raise DataError(f"the image processor of {path} has no 3-channel image_mean/image_std (got {mean}, {std})")
    return {"mean": [float(m) for m in mean], "std": [float(s) for s in std], "processor": type(proc).__name__}


@cache
def _backbone_config(backbone_path: str) -> dict:
    from transformers import AutoConfig

    path = _resolved(backbone_path)
    try:
        return AutoConfig.from_pretrained(path).to_dict()
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read the model config in {path} ({first_line(exc)}): check backbone.local_path / convert") from exc


def check_image_size(backbone_path: str, size: int) -> None:
    """DINOv2 interpolates its position embeddings to any multiple of the patch size; ViT (as the
    harness calls it: no ``interpolate_pos_encoding``) needs its own size."""
    cfg = _backbone_config(backbone_path)
    patch = cfg.get("patch_size")
    if isinstance(patch, int) and size % patch:
        raise DataError(f"data.image_size {size} is not a multiple of the backbone's patch size {patch}: use "
                        f"{(size // patch) * patch or patch} or {(size // patch + 1) * patch}")
    native = cfg.get("image_size")
    if cfg.get("model_type") != "dinov2" and isinstance(native, int) and native != size:
        raise DataError(f"data.image_size {size} differs from the {cfg.get('model_type')} backbone's {native}: its position "
                        f"embeddings are for {native}x{native}; set data.image_size: {native}")


class VisionSuite(Suite):
    """Image classification: FourierFT's ViT datasets (hub or ``data.data_dir``) and the mini image tasks."""

    name = "vision"

    @property
    def tasks(self) -> dict[str, ImageTask]:
        from harness.suites import vision_mini

        return {**VISION_TASKS, **vision_mini.TASKS}

    # ---------------------------------------------------------------- prep
    def prep_id(self, cfg: dict, task: str) -> str:
        sizes = [data_size(cfg, k, task) or "all" for k in ("max_train", "max_eval")]
        return f"{cfg['backbone']['name']}-S{cfg['data']['image_size']}-{sizes[0]}-{sizes[1]}"

    def load_raw(self, spec: ImageTask, cfg: dict, seed: int):
        """Mini tasks: built from their package's files (``seed`` picks their split). The others:
        ``data.data_dir`` when set, else the hub cache, else the hub if it answers; then the splits
        of the module doc (``validation`` = the test split)."""
        if spec.build is not None:
            return spec.build(seed)
        data_dir = cfg["data"].get("data_dir")
        dd, recipe = _load_dir(spec, data_dir) if data_dir else _load_hub(spec)
        where = recipe.get("path") or "+".join(spec.hub_ids)
        out, rule = make_splits(dd, spec, seed, where)
        return out, {**recipe, "splits": rule, "source": spec.source}

    def label_key(self, spec: ImageTask) -> str:
        return spec.label_key

    def preprocess(self, spec: ImageTask, raw, cfg: dict, backbone_path: str):
        from datasets import Array3D, DatasetDict, Features, Image, Value

        size = int(cfg["data"]["image_size"])
        check_image_size(backbone_path, size)
        stats = processor_stats(backbone_path)
        features = Features({"pixel_values": Array3D((3, size, size), "uint8"), "labels": Value("int64")})
        image_key = spec.image_key if spec.build is None else "image"
        label_key = spec.label_key if spec.build is None else "label"

        def encode(batch: dict) -> dict:
            return {"pixel_values": np.stack([resize_center_crop(x, size) for x in batch[image_key]]),
                    "labels": np.asarray(batch[label_key], dtype=np.int64)}

        out = {}
        for split, ds in raw.items():
            if not isinstance(ds.features[image_key], Image):
                ds = ds.with_format("numpy", columns=[image_key, label_key])  # arrays, not nested lists
            out[split] = ds.map(encode, batched=True, batch_size=256, remove_columns=ds.column_names, features=features,
                                writer_batch_size=256, desc=f"{spec.name} {split}: decode + resize to {size}")
        # numpy format (kept by save_to_disk): training jobs read arrays, not nested Python lists
        return DatasetDict({k: v.with_format("numpy") for k, v in out.items()}), {
            "image_size": size,
            "image_mean": stats["mean"],
            "image_std": stats["std"],
            "processor": stats["processor"],
            "stored": f"pixel_values uint8 (3, {size}, {size}), labels int64",
            "resize": (f"decoded with PIL, RGB, shorter side resized to {size} (bilinear, antialiased), centre crop "
                       f"{size}x{size} (torchvision Resize + CenterCrop rounding)"),
            "train_augmentation": ("per epoch, from the loop's generator: random resized crop of the stored image, scale "
                                   f"{CROP_SCALE}, ratio (3/4, 4/3), resized back to {size} (bilinear, antialias), "
                                   "horizontal flip p=0.5; then /255 and the processor's mean/std"),
            "eval_transform": "the stored centre crop, /255, the processor's mean/std",
        }

    # ---------------------------------------------------------------- train
    def load_model(self, spec: ImageTask, cfg: dict, backbone_path: str):
        import torch
        from transformers import AutoModelForImageClassification

        from harness.models import quiet_transformers

        check_image_size(backbone_path, int(cfg["data"]["image_size"]))
        path = _resolved(backbone_path)
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
        """Batches {'pixel_values': float32 (B, 3, S, S), 'labels': int64 (B,)}. Training batches are
        augmented with draws from ``generator`` only (None: torch's global generator)."""
        import torch

        stats = processor_stats(backbone_path)
        mean = torch.tensor(stats["mean"], dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(stats["std"], dtype=torch.float32).view(1, 3, 1, 1)
        gen = generator if generator is not None else torch.default_generator

        def collate_fn(items: list[dict]) -> dict:
            pixels = torch.from_numpy(_stack_uint8([it["pixel_values"] for it in items]))
            x = augment(pixels, gen) if train else pixels.float()
            x = (x / 255.0 - mean) / std
            labels = torch.as_tensor(np.asarray([int(it["labels"]) for it in items], dtype=np.int64))
            return {"pixel_values": x.contiguous(), "labels": labels}

        return collate_fn
