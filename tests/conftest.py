"""Shared test setup: the repository root and tests/ on sys.path, offline Hugging Face, and the
tiny-model factories of :mod:`helpers` as fixtures (``tiny_roberta(num_labels=2)`` etc.), one
intra-op thread."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import helpers  # noqa: E402

# Tiny models: intra-op threads only add synchronisation (25 ms per op instead of 20 us on a busy
# 2-core machine), so the tests run single-threaded.
torch.set_num_threads(1)


@pytest.fixture
def tiny_roberta():
    return helpers.tiny_roberta


@pytest.fixture
def tiny_vit():
    return helpers.tiny_vit


@pytest.fixture
def tiny_llama():
    return helpers.tiny_llama


@pytest.fixture(scope="module")
def tiny_job(tmp_path_factory):
    """A prepared tiny regression task (64 train / 32 eval examples, 16 tokens) and its table config
    (tests/data/tiny_config), for in-process training tests."""
    from dag import tiny_config
    from harness.config import backbone_path, load_table
    from harness.prepare import prepare

    tmp = tmp_path_factory.mktemp("job")
    cfg = load_table(tiny_config(tmp) / "tiny.yaml", "mini")
    cfg["data"] |= {"max_length": 16, "max_train": 64, "max_eval": 32}
    prepare(cfg, "dal_pleasantness", tmp / "data", backbone_path(cfg))
    return cfg, tmp / "data"
