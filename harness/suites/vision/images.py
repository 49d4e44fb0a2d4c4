"""Images: the training images stored whole (prep) and cropped per batch from the full image
(train), the evaluation images resized and centre-cropped once (prep), and what the backbone's
processor and config say (mean/std, native image size)."""
from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np

from harness.core.errors import DataError, first_line
from harness.models import resolve_pretrained

__all__ = ["CROP_RATIO", "CROP_SCALE", "check_image_size", "crop_params", "encode_image", "processor_stats",
           "random_resized_crop", "resize_center_crop", "resolved", "stack_uint8"]

CROP_SCALE = (0.08, 1.0)  # torchvision RandomResizedCrop defaults
CROP_RATIO = (3 / 4, 4 / 3)


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


def encode_image(x: Any) -> dict:
    """{'bytes', 'path': None} of one image as prep stores it for training: the source's encoded
    bytes as they are (JPEG stays JPEG: nothing re-compressed), an array or a decoded image as
    lossless PNG. Decoded once here, so a damaged file fails in prep, not in a training job."""
    import io

    if isinstance(x, dict) and not x.get("bytes") and x.get("path"):
        with open(x["path"], "rb") as f:
            x = {"bytes": f.read(), "path": None}
    rgb = _to_rgb(x)
    if isinstance(x, dict):
        return {"bytes": x["bytes"], "path": None}
    buf = io.BytesIO()
    rgb.save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def random_resized_crop(image: Any, size: int, generator) -> np.ndarray:
    """uint8 (3, size, size): torchvision's ``RandomResizedCrop(size)`` + ``RandomHorizontalFlip()``
    on the full decoded image, as FourierFT's ``train_transforms`` (experiments/ViT/exec.py): crop
    parameters on the image's own size (:func:`crop_params`), PIL crop then bilinear resize (which
    antialiases when shrinking, as torchvision's PIL path), then a flip with p = 0.5; every draw from
    ``generator``, in torchvision's order."""
    import torch
    from PIL import Image

    img = _to_rgb(image)
    i, j, h, w = crop_params(img.height, img.width, generator)
    img = img.crop((j, i, j + w, i + h)).resize((size, size), Image.BILINEAR)
    if torch.rand(1, generator=generator).item() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def stack_uint8(values: list) -> np.ndarray:
    arrays = [np.asarray(v) for v in values]
    return np.stack(arrays).astype(np.uint8, copy=False)


@cache
def resolved(backbone_path: str) -> str:
    return resolve_pretrained(backbone_path)


@cache
def processor_stats(backbone_path: str) -> dict:
    """The backbone processor's normalisation: {'mean', 'std', 'processor'} (AutoImageProcessor)."""
    from transformers import AutoImageProcessor

    path = resolved(backbone_path)
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

    path = resolved(backbone_path)
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
