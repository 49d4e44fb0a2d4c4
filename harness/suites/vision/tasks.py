"""The ``vision`` suite's tasks, paper and mini in one table: FourierFT's ViT datasets (FoRA Table 4,
LFMA Table 1, FourierMoE Fig. 3) and the mini image tasks (:mod:`harness.suites.vision.mini`)."""
from __future__ import annotations

from dataclasses import dataclass

from harness.suites.base import TaskSpec
from harness.suites.vision import mini

__all__ = ["DTD_TEST_FRACTION", "HELD_OUT_FRACTION", "MINI_TASKS", "TASKS", "VISION_TASKS", "ImageTask"]

HELD_OUT_FRACTION = 0.1  # FourierFT: 10 % of train held out where no validation split ships
DTD_TEST_FRACTION = 0.2  # FourierFT: DTD's one split -> 20 % test


@dataclass(frozen=True, kw_only=True)
class ImageTask(TaskSpec):
    """An image-classification task: where its splits come from on the hub.

    ``hub_id``/``train_split``: the training split; ``eval_hub_id``/``eval_split``: the split that
    becomes ``validation`` (the test split; ``eval_hub_id`` when it lives in another repository);
    ``eval_split=None``: the dataset ships one split and the evaluation split is a seeded
    stratified ``eval_fraction`` of it. ``heldout_split``: a shipped validation split (FourierFT
    selects on it, so does the harness); when there is none, ``HELD_OUT_FRACTION`` of train is held out
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


# The mini image tasks (CPU, offline): same preprocessing, model class and scoring.
MINI_TASKS: dict[str, ImageTask] = {
    t.name: t
    for t in [
        ImageTask(name="fmnist", num_labels=10, metric="accuracy", build=mini.BUILDERS['fmnist'],
                  description="Fashion-MNIST: 28x28 grey clothing photos, 10 classes (Debian dataset-fashion-mnist)"),
        ImageTask(name="digits", num_labels=10, metric="accuracy", build=mini.BUILDERS['digits'],
                  description="scikit-learn digits: 8x8 grey handwritten digits, 10 classes"),
        ImageTask(name="textures", num_labels=len(mini.TEXTURE_FILES), metric="accuracy", build=mini.BUILDERS['textures'],
                  description="48x48 patches of six scikit-image surface photos (a DTD stand-in), "
                              f"{len(mini.TEXTURE_FILES)} classes"),
    ]
}

TASKS: dict[str, ImageTask] = {**VISION_TASKS, **MINI_TASKS}
