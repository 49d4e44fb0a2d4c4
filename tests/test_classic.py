"""bitfit, full_ft, linear_probe (adapters/classic.py)."""
from __future__ import annotations

import pytest
import torch

import helpers
from adapters import MethodConfigError, apply_method

CLASSIC = ["bitfit", "full_ft", "linear_probe"]


@pytest.mark.parametrize("method", CLASSIC)
def test_grads_only_own_params_and_head(method):
    helpers.check_grads("roberta", method, {})


@pytest.mark.parametrize("method", CLASSIC)
def test_frozen_weights_bitwise_unchanged(method):
    helpers.check_base_unchanged("roberta", method, {})


@pytest.mark.parametrize("method", CLASSIC)
def test_output_unchanged_at_step0(method):
    helpers.check_zero_init("roberta", method, {}, atol=0.0)


@pytest.mark.parametrize("method", CLASSIC)
def test_save_load_roundtrip(method, tmp_path):
    helpers.check_save_load("roberta", method, {}, tmp_path / f"{method}.safetensors")


@pytest.mark.parametrize("method", CLASSIC)
def test_not_mergeable(method):
    _, adapted, _ = helpers.apply("roberta", method, {})
    with pytest.raises(MethodConfigError, match=f"^{method}: cannot be merged"):
        adapted.merge()


def test_bitfit_trains_exactly_the_biases():
    _, adapted, _ = helpers.apply("roberta", "bitfit", {})
    names = [n for n, _ in adapted.trainable_parameters()]
    assert names and all(n.endswith(".bias") for n in names)
    assert not any(n.startswith("classifier") for n in names)  # the head is left out of the count
    all_biases = [
        n for n, _ in adapted.model.named_parameters() if n.endswith(".bias") and not n.startswith("classifier")
    ]
    assert sorted(names) == sorted(all_biases)


def test_linear_probe_trains_only_the_head():
    _, adapted, _ = helpers.apply("roberta", "linear_probe", {})
    assert adapted.num_trainable() == 0
    assert adapted.num_trainable(include_head=True) == sum(p.numel() for p in adapted.head_params) > 0


@pytest.mark.parametrize("arch, method", [("vit", "bitfit"), ("vit", "full_ft"), ("llama", "linear_probe")])
def test_other_architectures(arch, method):
    helpers.check_grads(arch, method, {})


def test_bitfit_without_biases_is_an_error():
    with pytest.raises(MethodConfigError, match="^bitfit: no trainable parameter"):
        helpers.apply("llama", "bitfit", {})  # LLaMA's linears have no bias


def test_paper_counts_roberta_base():
    bitfit = apply_method(helpers.meta_roberta("base"), "bitfit", {})
    # 12 x (q, k, v, o: 4 x 768 + 3072 + 768 + 2 LayerNorms x 768) + embedding LayerNorm 768
    assert bitfit.num_trainable() == 12 * (4 * 768 + 3072 + 768 + 2 * 768) + 768 == 102_144  # 0.1M, Table 1
    ff = apply_method(helpers.meta_roberta("base"), "full_ft", {})
    head = sum(p.numel() for p in ff.head_params)
    assert ff.num_trainable() == sum(p.numel() for p in ff.model.parameters()) - head
    # FF "125M" in FoRA Table 1 is the whole model, head included (124.06M without it)
    assert round(ff.num_trainable() / 1e6) == 124 and round(ff.num_trainable(include_head=True) / 1e6) == 125
    lp = apply_method(helpers.meta_roberta("base"), "linear_probe", {})
    assert lp.num_trainable() == 0 and lp.num_trainable(include_head=True) == 768 * 768 + 768 + 768 * 2 + 2
