"""Pretrained models resolve offline first and fail fast with one line saying what to do."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import torch

from harness import models
from harness.models import ModelError, load_classifier, load_tokenizer, minilm_path, resolve_pretrained

UNCACHED = "fourier-peft-bench/not-a-cached-model"


DEAD_ENDPOINT = "http://127.0.0.1:1"  # loopback port 1: refused at once, never proxied once *_proxy are unset


def cut_network(monkeypatch, endpoint: str | None = None):
    """Offline flags off (as without HF_HUB_OFFLINE), no proxies, optionally a dead hub endpoint."""
    import datasets
    from huggingface_hub import constants

    for var in (
        "HF_HUB_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    if endpoint:
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(datasets.config, "HF_ENDPOINT", endpoint)
    elif models.hub_reachable():
        pytest.skip("the real hub answers here: nothing to prove about the offline path")


def test_minilm_path_ships_a_checkpoint():
    assert (Path(minilm_path()) / "config.json").is_file()
    assert resolve_pretrained("sentence-transformers/all-MiniLM-L6-v2") == minilm_path()


def test_missing_paths_fail_fast(tmp_path):
    with pytest.raises(ModelError, match=r"does-not-exist.*`backbone.local_path`"):
        resolve_pretrained(str(tmp_path / "does-not-exist"))
    with pytest.raises(ModelError, match=r"nowhere.*config key `backbone.local_path`"):
        resolve_pretrained("roberta-base", local_path=str(tmp_path / "nowhere"))
    assert resolve_pretrained("roberta-base", local_path=str(tmp_path)) == str(tmp_path)  # local_path wins


def test_uncached_hub_id_offline_fails_fast():
    t0 = time.monotonic()
    with pytest.raises(ModelError, match=r"not-a-cached-model.*offline mode.*`hf download .*`backbone.local_path"):
        resolve_pretrained(UNCACHED)
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("endpoint", [None, DEAD_ENDPOINT], ids=["real-endpoint", "dead-endpoint"])
def test_uncached_hub_id_without_offline_flag_does_not_hang(monkeypatch, endpoint):
    cut_network(monkeypatch, endpoint)
    t0 = time.monotonic()
    with pytest.raises(ModelError, match=r"unreachable.*`hf download .*`backbone.local_path"):
        resolve_pretrained(UNCACHED)
    assert time.monotonic() - t0 < 5
    assert not models.hub_reachable()


def test_load_tokenizer_errors_and_success(tmp_path):
    tok = load_tokenizer(minilm_path())
    assert tok("a b", "c")["token_type_ids"] == [0, 0, 0, 0, 1, 1]
    with pytest.raises(ModelError, match="cannot load a tokenizer"):
        load_tokenizer(str(tmp_path))


def test_load_classifier_head_is_seeded_and_logged(caplog):
    models._logged_new_weights.clear()
    with caplog.at_level(logging.INFO, logger="harness.models"):
        a = load_classifier(minilm_path(), 2, seed=0)
    assert "classifier.weight" in caplog.text
    b = load_classifier(minilm_path(), 2, seed=0)
    assert a.classifier.weight.dtype == torch.float32
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    r = load_classifier(minilm_path(), 1, seed=1)
    assert r.config.problem_type == "regression" and r.classifier.out_features == 1
    assert dict(a.named_parameters())["bert.encoder.layer.0.attention.self.query.weight"].shape == (384, 384)
