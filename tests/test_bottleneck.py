"""Bottleneck adapters: Houlsby, Pfeiffer (004 Table 1) and FAA (000): placement, training
behaviour, FAA ablations and losses, counts, save/load."""
from __future__ import annotations

import math
import re
from types import SimpleNamespace

import pytest
import torch
import transformers as T
from torch import nn

from adapters import MethodConfigError, apply_method
from adapters.bottleneck import PLACEMENTS, BottleneckLayer, FAAConfig, FAALayer
from tests._tiny_models import HEADS, SMALL, TINY, logits, meta_model, tiny_inputs

R = 4
METHODS = [
    ("houlsby", {"r": R}),
    ("pfeiffer", {"r": R}),
    ("faa", {"r": R}),
    ("faa", {"r": R, "placement": "houlsby", "d_rff": 3, "num_grids": 3}),
    ("faa", {"r": R, "beta_zero": True}),
    ("faa", {"r": R, "trainable_rff": True}),
    ("faa", {"r": R, "d_rff": R // 2}),
]
IDS = ["houlsby", "pfeiffer", "faa", "faa-houlsby-proj", "faa-beta0", "faa-trainable-rff", "faa-no-proj"]


def _apply(kind, method, hp, seed=0, model_seed=0):
    return apply_method(TINY[kind](model_seed), method, hp, head_modules=HEADS[kind], seed=seed)


def _layers(ad, cls=BottleneckLayer):
    return [(n, m) for n, m in ad.model.named_modules() if isinstance(m, cls)]


def _randomise_up(ad, scale=0.5):
    """Give the zero-initialised up-projections values, as training would."""
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for _, layer in _layers(ad):
            layer.up.weight.copy_(torch.randn(layer.up.weight.shape, generator=g) * scale)


# --- placement --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(TINY))
def test_placement_per_model_type(kind):
    sites = {
        "roberta": ("attention.output.dense", "layer.{i}.output.dense"),
        "bert": ("attention.output.dense", "layer.{i}.output.dense"),
        "vit": ("attention.o_proj", "mlp.fc2"),
        "llama": ("self_attn.o_proj", "mlp.down_proj"),
        "gpt2": ("attn.c_proj", "mlp.c_proj"),
    }[kind]
    attn, ffn = sites
    expected = {
        "houlsby": [attn, ffn],
        "pfeiffer": [ffn],
        "faa": [attn],  # parallel_attention
    }
    for method, hp in [("houlsby", {"r": R}), ("pfeiffer", {"r": R}), ("faa", {"r": R})]:
        names = [n for n, _ in _layers(_apply(kind, method, hp))]
        want = [s.format(i=i) for i in range(2) for s in expected[method]]
        assert len(names) == len(want), (method, names)
        for name, suffix in zip(names, want):
            assert name.endswith(suffix), (method, name, suffix)
        if method == "pfeiffer":  # the suffix trap: 'output.dense' must not catch 'attention.output.dense'
            assert not any("attention" in n or "attn" in n for n in names)


@pytest.mark.parametrize(
    "cfg_cls, model_cls, extra",
    [
        (T.XLMRobertaConfig, T.XLMRobertaForSequenceClassification, {"vocab_size": 100}),
        (T.DebertaV2Config, T.DebertaV2ForSequenceClassification, {"vocab_size": 100}),
        (T.MistralConfig, T.MistralForCausalLM, {"vocab_size": 100, "num_key_value_heads": 2}),
        (T.Qwen2Config, T.Qwen2ForCausalLM, {"vocab_size": 100, "num_key_value_heads": 2}),
    ],
)
def test_other_supported_model_types_get_two_sites_per_layer(cfg_cls, model_cls, extra):
    with torch.device("meta"):
        model = model_cls(cfg_cls(**SMALL, **extra))
    assert model.config.model_type in PLACEMENTS
    ad = apply_method(model, "houlsby", {"r": R}, head_modules=())
    assert len(_layers(ad)) == 4


def test_unknown_model_type_names_the_supported_ones():
    model = nn.Sequential(nn.Linear(4, 4))
    model.config = SimpleNamespace(model_type="t5")
    for method in ("houlsby", "pfeiffer", "faa"):
        with pytest.raises(MethodConfigError, match=r"'t5'.*supported: .*bert.*llama.*roberta.*vit"):
            apply_method(model, method, {"r": R}, head_modules=())


def test_target_modules_are_ignored():
    a = _apply("roberta", "houlsby", {"r": R})
    b = apply_method(TINY["roberta"](0), "houlsby", {"r": R}, target_modules=["query", "value"])
    assert [n for n, _ in _layers(a)] == [n for n, _ in _layers(b)]


@pytest.mark.parametrize("hp, match", [({"r": 0}, "'r'"), ({}, "missing hyperparameter 'r'")])
@pytest.mark.parametrize("method", ["houlsby", "pfeiffer", "faa"])
def test_bad_r(method, hp, match):
    with pytest.raises(MethodConfigError, match=match):
        _apply("roberta", method, hp)


@pytest.mark.parametrize(
    "hp, match",
    [
        ({"num_grids": 0}, "num_grids"),
        ({"sigma": 0.0}, "sigma"),
        ({"d_rff": 0}, "d_rff"),
        ({"lambda1": -1.0}, "lambda1"),
        ({"placement": "sideways"}, "placement"),
    ],
)
def test_bad_faa_configs(hp, match):
    with pytest.raises(MethodConfigError, match=match):
        _apply("roberta", "faa", {"r": R, **hp})


# --- training behaviour -----------------------------------------------------------------------


@pytest.mark.parametrize("method, hp", METHODS, ids=IDS)
@pytest.mark.parametrize("kind", ["roberta", "vit", "llama", "gpt2"])
def test_step0_output_unchanged(kind, method, hp):
    inputs = tiny_inputs(kind)
    base = logits(TINY[kind](0), inputs)
    assert torch.equal(logits(_apply(kind, method, hp).model, inputs), base)


@pytest.mark.parametrize("method, hp", METHODS, ids=IDS)
@pytest.mark.parametrize("kind", ["roberta", "llama", "gpt2"])
def test_forward_backward_grads_only_on_adapter_and_head(kind, method, hp):
    ad = _apply(kind, method, hp)
    _randomise_up(ad)  # so that every adapter parameter gets a non-zero gradient
    logits(ad.model, tiny_inputs(kind)).pow(2).mean().backward()
    adapter = {
        id(p) for _, layer in _layers(ad) for n, p in layer.named_parameters() if not n.startswith("base_layer.")
    }
    head = {id(p) for p in ad.head_params}
    for name, p in ad.model.named_parameters():
        if id(p) in adapter or id(p) in head:
            assert p.requires_grad and p.grad is not None and torch.count_nonzero(p.grad) > 0, name
        else:
            assert not p.requires_grad and p.grad is None, name
    assert {id(p) for _, p in ad.trainable_parameters()} == adapter


@pytest.mark.parametrize("method, hp", METHODS[:3], ids=IDS[:3])
def test_adamw_step_leaves_base_weights_bitwise_unchanged(method, hp):
    ad = _apply("roberta", method, hp)
    frozen = {n: p.detach().clone() for n, p in ad.model.named_parameters() if not p.requires_grad}
    opt = torch.optim.AdamW([p for _, p in ad.trainable_parameters(include_head=True)], lr=1e-2, weight_decay=0.1)
    inputs = tiny_inputs("roberta")
    before = logits(ad.model, inputs)
    for _ in range(2):  # step 1 trains W_up only (W_down's gradient is 0 while W_up = 0)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(logits(ad.model, inputs), torch.tensor([0, 1]))
        loss = loss + sum(ad.extra_losses().values(), torch.zeros(()))
        loss.backward()
        opt.step()
    for n, p in ad.model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    assert not torch.equal(logits(ad.model, inputs), before)


@pytest.mark.parametrize("method, hp", METHODS, ids=IDS)
def test_save_load_round_trip(tmp_path, method, hp):
    ad = _apply("roberta", method, hp, seed=1)
    _randomise_up(ad)
    inputs = tiny_inputs("roberta")
    expected = logits(ad.model, inputs)
    ad.save(tmp_path / "a.safetensors")
    other = _apply("roberta", method, hp, seed=2)  # other W_down (and W_rff) until loaded
    assert not torch.equal(_layers(other)[0][1].down.weight, _layers(ad)[0][1].down.weight)
    other.load(tmp_path / "a.safetensors")
    assert torch.equal(logits(other.model, inputs), expected)


@pytest.mark.parametrize("method", ["houlsby", "pfeiffer", "faa"])
def test_not_mergeable(method):
    with pytest.raises(MethodConfigError, match="cannot be merged"):
        _apply("roberta", method, {"r": R}).merge()


@pytest.mark.parametrize("method", ["houlsby", "pfeiffer", "faa"])
def test_seeded_and_global_rng_untouched(method):
    model = TINY["roberta"](0)
    state = torch.random.get_rng_state()
    a = apply_method(model, method, {"r": R}, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    b, c = _apply("roberta", method, {"r": R}, seed=7), _apply("roberta", method, {"r": R}, seed=8)
    sa, sb, sc = (x.adapter_state_dict() for x in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if "down" in k)


# --- parameter counts -------------------------------------------------------------------------


@pytest.mark.parametrize("method, r, expected", [("houlsby", 8, 835_968), ("pfeiffer", 16, 811_392)])
def test_roberta_large_adapter_counts_are_0_8M(method, r, expected):
    # 004 Table 1 (from Hu et al. 2021): Adpt^H and Adpt^P on RoBERTa-large, 0.8M each.
    ad = apply_method(meta_model("roberta", "large"), method, {"r": r})
    per_adapter = 1024 * r + r + r * 1024 + 1024
    assert ad.num_trainable() == expected == per_adapter * 24 * (2 if method == "houlsby" else 1)


def test_faa_counts_and_ablations_change_what_is_trainable():
    d, L, r, G = 768, 12, 64, 9
    D = 81  # FAAConfig's default d_rff
    counts = {}
    for name, extra in {
        "faa": {},
        "trainable_rff": {"trainable_rff": True},
        "beta_zero": {"beta_zero": True},
        "grids3": {"num_grids": 3},
        "houlsby": {"placement": "houlsby"},
    }.items():
        counts[name] = apply_method(meta_model("roberta", "base"), "faa", {"r": r, **extra}).num_trainable()
    adapter = 2 * d * r + r + d  # W_down, b_down, W_up, b_up
    assert counts["faa"] == L * (adapter + r + r + G) == 1_191_276  # + alpha, beta, gate
    assert counts["trainable_rff"] - counts["faa"] == L * G * r * D  # W_rff becomes trainable (rff_proj stays frozen)
    assert counts["beta_zero"] == L * (adapter + r)  # beta, gate and the RFF path removed
    assert counts["faa"] - counts["grids3"] == L * (G - 3)
    assert counts["houlsby"] == 2 * counts["faa"]


def test_faa_ablation_structure():
    plain = _layers(_apply("roberta", "faa", {"r": R}), FAALayer)[0][1]
    assert isinstance(plain.rff_weight, torch.Tensor) and not isinstance(plain.rff_weight, nn.Parameter)
    assert "rff_weight" in dict(plain.named_buffers(recurse=False))
    assert plain.rff_weight.shape == (9, R, 81)  # default d_rff (FAAConfig)
    assert plain.rff_proj.shape == (162, R) and "rff_proj" in dict(plain.named_buffers(recurse=False))
    no_proj = _layers(_apply("roberta", "faa", {"r": R, "d_rff": R // 2}), FAALayer)[0][1]
    assert no_proj.rff_weight.shape == (9, R, R // 2) and no_proj.rff_proj is None  # 2 * d_rff == r
    trainable = _layers(_apply("roberta", "faa", {"r": R, "trainable_rff": True}), FAALayer)[0][1]
    assert isinstance(trainable.rff_weight, nn.Parameter) and trainable.rff_weight.requires_grad
    beta0 = _layers(_apply("roberta", "faa", {"r": R, "beta_zero": True}), FAALayer)[0][1]
    assert not hasattr(beta0, "beta") and not hasattr(beta0, "gate") and not hasattr(beta0, "rff_weight")
    proj = _layers(_apply("roberta", "faa", {"r": R, "d_rff": 5}), FAALayer)[0][1]
    assert proj.rff_proj.shape == (10, R) and "rff_proj" in dict(proj.named_buffers(recurse=False))


def test_faa_sigma_grid_is_geometric_and_sets_the_rff_scale():
    cfg = FAAConfig(r=64, num_grids=5, sigma=2.0, sigma_ratio=3.0)
    torch.testing.assert_close(cfg.sigmas(), torch.tensor([2 / 9, 2 / 3, 2.0, 6.0, 18.0]))
    layer = FAALayer(nn.Linear(16, 16), cfg, parallel=True, generator=torch.Generator().manual_seed(0))
    stds = layer.rff_weight.flatten(1).std(dim=1)  # 64 x 32 draws per grid
    torch.testing.assert_close(stds * cfg.sigmas(), torch.ones(5), atol=0.05, rtol=0)


def test_frequency_path_changes_the_output():
    inputs = tiny_inputs("roberta")
    outs = {}
    for name, extra in {"full": {}, "beta_zero": {"beta_zero": True}, "sigma": {"sigma": 0.1}}.items():
        ad = _apply("roberta", "faa", {"r": R, **extra})
        _randomise_up(ad)
        outs[name] = logits(ad.model, inputs)
    assert not torch.allclose(outs["full"], outs["beta_zero"])
    assert not torch.allclose(outs["full"], outs["sigma"])


# --- FAA extra losses ---------------------------------------------------------------------------


def test_faa_extra_losses_are_finite_scalars_with_grad():
    ad = _apply("roberta", "faa", {"r": R, "lambda1": 0.5, "lambda2": 0.25})
    assert ad.extra_losses() == {}  # nothing before a forward
    _randomise_up(ad)
    logits(ad.model, tiny_inputs("roberta"))
    losses = ad.extra_losses()
    assert set(losses) == {"faa_gate_l1", "faa_orthogonality"}
    for value in losses.values():
        assert value.dim() == 0 and torch.isfinite(value) and value.requires_grad and value > 0
    sum(losses.values()).backward()
    layers = [layer for _, layer in _layers(ad, FAALayer)]
    assert all(torch.count_nonzero(layer.gate.grad) > 0 for layer in layers)  # from the L1 term
    assert all(torch.count_nonzero(layer.down.weight.grad) > 0 for layer in layers)  # orthogonality
    # L1 term = sum over layers of lambda1 * mean |r_i| (init 1/sqrt(G))
    assert losses["faa_gate_l1"].item() == pytest.approx(2 * 0.5 / 3)
    assert _apply("roberta", "faa", {"r": R, "beta_zero": True}).extra_losses() == {}


def test_faa_orthogonality_definition():
    torch.manual_seed(0)
    layer = FAALayer(nn.Linear(8, 8), FAAConfig(r=6, num_grids=3, lambda2=2.0), True, torch.Generator().manual_seed(1))
    x = torch.randn(2, 5, 8)
    layer(x)
    normed = layer.frequency_features(layer.down(x))  # (2, 5, G, r): LN(g_i) per token
    cols = torch.stack([normed[..., i, :].flatten() for i in range(3)], dim=1)  # (tokens*r) x G
    cols = cols / cols.norm(dim=0, keepdim=True)
    expected = 2.0 * ((cols.T @ cols - torch.eye(3)) ** 2).sum()
    torch.testing.assert_close(layer.extra_losses()["faa_orthogonality"], expected)
    # LayerNorm without affine: every token's gate output has zero mean and unit variance
    torch.testing.assert_close(normed.mean(-1), torch.zeros(2, 5, 3), atol=1e-5, rtol=0)


def test_faa_activation_formula():
    cfg = FAAConfig(r=4, num_grids=2, d_rff=2)
    layer = FAALayer(nn.Linear(8, 8), cfg, True, torch.Generator().manual_seed(0))
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([1.0, 2.0, 0.0, -1.0]))
        layer.beta.copy_(torch.tensor([0.5, 0.0, 1.0, 3.0]))
        layer.gate.copy_(torch.tensor([0.3, -0.7]))
    u = torch.randn(3, 4)
    w = layer.rff_weight  # (2, 4, 2): 2 * d_rff == r, no projection
    g = [torch.cat([torch.cos(u @ w[i]), torch.sin(u @ w[i])], -1) for i in range(2)]
    ln = [(gi - gi.mean(-1, keepdim=True)) / torch.sqrt(gi.var(-1, unbiased=False, keepdim=True) + 1e-5) for gi in g]
    expected = layer.alpha * nn.functional.gelu(u) + layer.beta * (0.3 * ln[0] - 0.7 * ln[1])
    torch.testing.assert_close(layer.activation(u), expected, atol=1e-5, rtol=1e-5)
    assert math.isclose(cfg.sigmas()[0].item() * 2, cfg.sigmas()[1].item(), rel_tol=1e-6)


def test_bert_pattern_does_not_match_attention_dense():
    pattern = re.compile(rf"(?:^|\.)(?:{PLACEMENTS['bert']['ffn']})$")
    assert pattern.search("bert.encoder.layer.11.output.dense")
    assert not pattern.search("bert.encoder.layer.11.attention.output.dense")
    assert not pattern.search("classifier.dense")
