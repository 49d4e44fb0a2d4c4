"""LFMA (001 Alg. 1, eq. 1-2): fidelity to the algorithm, training behaviour, merge, counts."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from adapters import MethodConfigError, apply_method
from adapters.lfma import LFMAConfig, LFMALayer
from tests._tiny_models import logits, meta_model, query_name, tiny_inputs, tiny_roberta

QV = ["query", "value"]


def _adapted(hp=None, seed=0, model_seed=0, targets=QV):
    hp = {"ratio": 0.1, **(hp or {})}
    return apply_method(tiny_roberta(model_seed), "lfma", hp, target_modules=targets, seed=seed)


def _layers(ad):
    return [m for m in ad.model.modules() if isinstance(m, LFMALayer)]


# --- Algorithm 1 ------------------------------------------------------------------------------


def _idft2_real(spectrum: torch.Tensor) -> torch.Tensor:
    """Re(IDFT2) from explicit DFT matrices (independent of torch.fft), with the 1/(d1 d2) factor."""
    d1, d2 = spectrum.shape
    e1 = torch.exp(2j * math.pi * torch.outer(torch.arange(d1), torch.arange(d1)).double() / d1)
    e2 = torch.exp(2j * math.pi * torch.outer(torch.arange(d2), torch.arange(d2)).double() / d2)
    return (e1 @ spectrum.to(torch.complex128) @ e2).real / (d1 * d2)


@pytest.mark.parametrize("init", ["gaussian", "kaiming_uniform", "base_weight"])
def test_layer_follows_algorithm_1_on_a_non_square_layer(init):
    torch.manual_seed(0)
    base = nn.Linear(10, 6)  # weight (d1, d2) = (6, 10)
    cfg = LFMAConfig(ratio=0.25, alpha=3.0, init=init, init_scale=0.5)
    layer = LFMALayer(base, cfg, torch.Generator().manual_seed(7))
    # Alg. 1 replayed step by step: ΔW_init from the same generator, FFT2, top-k magnitudes.
    g = torch.Generator().manual_seed(7)
    if init == "gaussian":
        dw_init = torch.randn(6, 10, generator=g, dtype=torch.float64) * 0.5
    elif init == "kaiming_uniform":
        dw_init = (torch.rand(6, 10, generator=g, dtype=torch.float64) * 2 - 1) / math.sqrt(10) * 0.5
    else:
        dw_init = base.weight.detach().double() * 0.5
    w_freq = torch.fft.fft2(dw_init)
    k = int(6 * 10 * 0.25)
    assert layer.c.numel() == k == 15 and layer.c.dtype == torch.complex64 and layer.c.requires_grad
    mask = layer.mask
    assert mask.sum() == k
    magnitude = w_freq.abs()
    assert magnitude[mask].min() >= magnitude[~mask].max() - 1e-12  # the k largest
    torch.testing.assert_close(layer.c.detach(), w_freq[mask].to(torch.complex64))  # c = W_freq[mask]
    # eq. 2 against an explicit inverse DFT; F[mask] = c
    spectrum = torch.zeros(6, 10, dtype=torch.complex128)
    spectrum[mask] = layer.c.detach().to(torch.complex128)
    expected_dw = _idft2_real(spectrum) * 3.0
    torch.testing.assert_close(layer.delta_weight().double(), expected_dw, atol=1e-6, rtol=1e-5)
    # h + x ΔW^T == a Linear with weight W0 + ΔW
    x = torch.randn(4, 3, 10)
    expected = nn.functional.linear(x, base.weight + expected_dw.float(), base.bias)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def _trained_layer(d_out=24, d_in=16):
    torch.manual_seed(0)
    layer = LFMALayer(nn.Linear(d_in, d_out), LFMAConfig(ratio=0.2, alpha=3.0), torch.Generator().manual_seed(1))
    layer.base_layer.requires_grad_(False)
    with torch.no_grad():
        layer.c.mul_(1e4)  # an update of the size training gives, well above rounding
    return layer


def test_one_product_equals_base_plus_update():
    """forward uses linear(x, W0 + ΔW); the two-product form W0 x + b + x ΔW^T gives the same output
    and the same gradients, and W0 gets no gradient and keeps its value."""
    layer = _trained_layer()
    w0 = layer.base_layer.weight.detach().clone()
    x = torch.randn(5, 3, 16, requires_grad=True)
    out = layer(x)
    ref = layer.base_layer(x) + x @ layer.delta_weight().T
    assert (ref - layer.base_layer(x)).abs().max() > 1e-2  # the update is not negligible
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, [x, layer.c], g, retain_graph=True)
    ref_grads = torch.autograd.grad(ref, [x, layer.c], g)
    for ours, theirs in zip(grads, ref_grads):
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    out.backward(g)
    assert layer.base_layer.weight.grad is None and torch.equal(layer.base_layer.weight, w0)


def test_one_product_costs_three_matmuls_per_step():
    """Forward + backward of the layer = 3 token x d_in x d_out products (output, input grad, weight
    grad); the two-product form costs 5."""
    from torch.utils.flop_counter import FlopCounterMode

    layer = _trained_layer()
    x = torch.randn(7, 16, requires_grad=True)
    product = 2 * 7 * 16 * 24  # multiply-adds of one token x d_in x d_out product, as FLOPs
    with FlopCounterMode(display=False) as counter:
        layer(x).sum().backward()
    assert counter.get_total_flops() == 3 * product
    with FlopCounterMode(display=False) as counter:
        (layer.base_layer(x) + x @ layer.delta_weight().T).sum().backward()
    assert counter.get_total_flops() == 5 * product


def test_zero_init_output_keeps_the_mask_and_starts_at_the_base_model():
    paper = _adapted(seed=3)
    zero = _adapted({"zero_init_output": True}, seed=3)
    for a, b in zip(_layers(paper), _layers(zero)):
        assert torch.equal(a.locations, b.locations)
        assert torch.count_nonzero(b.c) == 0 and torch.count_nonzero(a.c) == a.c.numel()
    inputs = tiny_inputs("roberta")
    base = logits(tiny_roberta(0), inputs)
    assert torch.equal(logits(zero.model, inputs), base)
    # Alg. 1 (default): the step-0 model differs from the base model, but only slightly.
    diff = (logits(paper.model, inputs) - base).abs().max().item()
    assert 0 < diff < 1e-2


def test_default_step0_perturbation_is_small():
    # Entry RMS of ΔW_0 ≈ alpha * init_scale * sqrt(ratio (1 + ln 1/ratio)) (module docstring).
    base = nn.Linear(256, 256)
    for alpha, ratio in [(12.0, 0.05), (120.0, 0.0003 * 40)]:
        layer = LFMALayer(base, LFMAConfig(ratio=ratio, alpha=alpha), torch.Generator().manual_seed(0))
        rms = layer.delta_weight().pow(2).mean().sqrt().item()
        predicted = alpha * 1e-4 * math.sqrt(ratio * (1 + math.log(1 / ratio)))
        assert rms == pytest.approx(predicted, rel=0.1)


# --- training behaviour -----------------------------------------------------------------------


def test_forward_backward_only_adapter_and_head_get_grads():
    ad = _adapted()
    inputs = tiny_inputs("roberta")
    logits(ad.model, inputs).sum().backward()
    head = {id(p) for p in ad.head_params}
    for name, p in ad.model.named_parameters():
        if name.endswith(".c") or id(p) in head:
            assert p.grad is not None, name
            grad = torch.view_as_real(p.grad) if p.is_complex() else p.grad
            assert torch.isfinite(grad).all(), name
        else:
            assert p.grad is None, name
    assert all(n.endswith(".c") for n, _ in ad.trainable_parameters())
    assert len(ad.trainable_parameters()) == 4  # 2 layers x {query, value}
    assert all(torch.count_nonzero(layer.c.grad) > 0 for layer in _layers(ad))


def test_adamw_step_leaves_base_weights_bitwise_unchanged():
    ad = _adapted()
    frozen = {n: p.detach().clone() for n, p in ad.model.named_parameters() if not p.requires_grad}
    c_before = [layer.c.detach().clone() for layer in _layers(ad)]
    opt = torch.optim.AdamW([p for _, p in ad.trainable_parameters(include_head=True)], lr=1e-2, weight_decay=0.1)
    logits(ad.model, tiny_inputs("roberta")).pow(2).sum().backward()
    opt.step()
    for n, p in ad.model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    assert all(not torch.equal(layer.c, c0) for layer, c0 in zip(_layers(ad), c_before))


def test_merge_matches_adapted_output_and_unmerge_restores():
    ad = _adapted({"alpha": 300.0}, seed=1)
    with torch.no_grad():
        for layer in _layers(ad):
            layer.c.mul_(50)  # a trained-looking, clearly visible update
    inputs = tiny_inputs("roberta")
    base_weights = {n: p.detach().clone() for n, p in ad.model.named_parameters() if "base_layer" in n}
    adapted = logits(ad.model, inputs)
    assert (adapted - logits(tiny_roberta(0), inputs)).abs().max() > 1e-3
    ad.merge()
    assert all(layer.merged for layer in _layers(ad))
    torch.testing.assert_close(logits(ad.model, inputs), adapted, atol=1e-5, rtol=1e-5)
    ad.unmerge()
    for n, p in ad.model.named_parameters():
        if n in base_weights:
            torch.testing.assert_close(p, base_weights[n], atol=1e-6, rtol=0)
    torch.testing.assert_close(logits(ad.model, inputs), adapted, atol=1e-5, rtol=1e-5)


def test_save_load_round_trip(tmp_path):
    ad = _adapted(seed=1)
    with torch.no_grad():
        for layer in _layers(ad):
            layer.c.mul_(1 + 1j)
        ad.head_params[0].add_(0.01)
    inputs = tiny_inputs("roberta")
    expected = logits(ad.model, inputs)
    ad.save(tmp_path / "lfma.safetensors")
    other = _adapted(seed=2)  # different mask and coefficients until loaded
    assert not torch.equal(_layers(other)[0].locations, _layers(ad)[0].locations)
    other.load(tmp_path / "lfma.safetensors")
    assert torch.equal(logits(other.model, inputs), expected)


def test_seed_decides_the_mask_and_does_not_touch_global_rng():
    a, b, c = _adapted(seed=5), _adapted(seed=5), _adapted(seed=6)
    la, lb, lc = _layers(a), _layers(b), _layers(c)
    assert all(torch.equal(x.locations, y.locations) and torch.equal(x.c, y.c) for x, y in zip(la, lb))
    assert not torch.equal(la[0].locations, lc[0].locations)
    assert not torch.equal(la[0].locations, la[1].locations)  # per-layer offset
    model = tiny_roberta(0)
    state = torch.random.get_rng_state()
    apply_method(model, "lfma", {"ratio": 0.1}, target_modules=QV, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)


# --- config checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hp, match",
    [
        ({"ratio": 0.0}, "ratio"),
        ({"ratio": 1.5}, "ratio"),
        ({"ratio": 0.1, "alpha": 0.0}, "alpha"),
        ({"ratio": 0.1, "init": "orthogonal"}, "init"),
        ({"ratio": 0.1, "init_scale": -1.0}, "init_scale"),
        ({"alpha": 12.0}, "ratio"),
        ({"ratio": 1e-6}, "selects no coefficient"),
    ],
)
def test_bad_configs_raise(hp, match):
    with pytest.raises(MethodConfigError, match=match):
        apply_method(tiny_roberta(0), "lfma", hp, target_modules=QV)


def test_non_square_targets_and_float64():
    model = tiny_roberta(0).double()
    ad = apply_method(model, "lfma", {"ratio": 0.05}, target_modules=["intermediate.dense", "layer.1.output.dense"])
    layers = _layers(ad)
    assert sorted(layer.shape for layer in layers) == [(32, 64), (64, 32), (64, 32)]
    assert all(layer.c.dtype == torch.complex128 for layer in layers)
    assert all(layer.c.numel() == int(64 * 32 * 0.05) for layer in layers)
    logits(ad.model, tiny_inputs("roberta")).sum().backward()
    assert all(layer.c.grad is not None for layer in layers)


# --- parameter counts (001 §4.3, Tables 2-3) -----------------------------------------------------


@pytest.mark.parametrize(
    "size, ratio, expected",
    [
        ("base", 0.1, 707_784),
        ("base", 0.05, 353_892),
        ("base", 0.0003, 2_112),
        ("large", 0.1, 2_516_568),
        ("large", 0.05, 1_258_272),
        ("large", 0.0003, 7_536),
    ],
)
def test_vit_query_counts_match_section_4_3(size, ratio, expected):
    model = meta_model("vit", size)
    ad = apply_method(model, "lfma", {"ratio": ratio}, target_modules=[query_name(model)])
    assert ad.num_trainable() == expected


@pytest.mark.parametrize(
    "size, ratio, expected",
    [
        # Table 2 (RoBERTa-base): 0.023M, 0.007M; 0.015M is reached at ratio 0.001 (not 0.0001).
        ("base", 0.0016, 22_632),
        ("base", 0.0005, 7_056),
        ("base", 0.0001, 1_392),
        ("base", 0.001, 14_136),
        # Table 3 (RoBERTa-large): 0.025M, 0.015M, 0.005M.
        ("large", 0.0005, 25_152),
        ("large", 0.0003, 15_072),
        ("large", 0.0001, 4_992),
    ],
)
def test_roberta_query_value_counts(size, ratio, expected):
    ad = apply_method(meta_model("roberta", size), "lfma", {"ratio": ratio}, target_modules=QV)
    assert ad.num_trainable() == expected
    assert ad.num_trainable(include_head=True) > expected  # the head is trainable but not counted
