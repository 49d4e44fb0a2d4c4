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
