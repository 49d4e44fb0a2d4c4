"""LLM-Adapters' bottleneck adapter (``llm_adapter``: FoRA Table 3's Adpt^H Series and Adpt^R Parallel).

The expected outputs are written out here from the facts of LLM-Adapters' bottleneck.py (mh_adapter:
``W (x + a(x))``, output_adapter: ``y + a(y)``, parallel_adapter: ``W x + a(x)``, ``a = up(act(down(.)))
* scaling``, bias-free, N(0, 0.02) init) on the adapter's own weights, not by calling its forward; the
LLaMA-7B/13B counts are typed by hand from the shapes.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from adapters import MethodConfigError, apply_method, build_config
from adapters.base import layer_generator
from adapters.llm_adapters import LLMAdapterConfig, LLMAdapterLayer
from tests import helpers

SERIES = ["up_proj", "gate_proj"]  # math_running_commands, LLaMA-7B-series
PARALLEL = ["up_proj", "down_proj"]  # math_running_commands, LLaMA-7B-Parallel
HP = {"bottleneck_size": 8}  # chosen: small enough for the tiny LLaMA (hidden 32)
CASES = [({**HP}, SERIES), ({**HP, "parallel": True}, PARALLEL)]
IDS = ["series", "parallel"]


def _adapted(hp: dict, targets: list[str], seed: int = 0):
    model = helpers.tiny_llama()
    return apply_method(model, "llm_adapter", hp, target_modules=targets, head_modules=[], seed=seed)


def _layers(adapted) -> dict[str, LLMAdapterLayer]:
    return {n: m for n, m in adapted.model.named_modules() if isinstance(m, LLMAdapterLayer)}


def _bottleneck(s, down, up, act, scaling):
    """a(s) = up(act(down s)) * scaling, bias-free (LLM-Adapters Linear.forward)."""
    return act(s @ down.T) @ up.T * scaling


# --- the forward against a hand-written formula ---------------------------------------------------
ACT = {"tanh": torch.tanh, "relu": torch.relu, "gelu": lambda u: 0.5 * u * (1 + torch.erf(u / 2**0.5)),
       "silu": lambda u: u * torch.sigmoid(u)}


@pytest.mark.parametrize("non_linearity", sorted(ACT))
def test_mlp_output_matches_the_formula_for_every_adapter_type(non_linearity):
    """One LLaMA MLP with series adapters on gate/up (mh_adapter) and down (output_adapter), and one with
    parallel adapters on up and down, against ``down(silu(gate x) * up x)`` written out by hand."""
    scaling = 0.5
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 32, generator=g)
    act = ACT[non_linearity]
    for parallel, targets in ((False, ["gate_proj", "up_proj", "down_proj"]), (True, ["up_proj", "down_proj"])):
        base = helpers.tiny_llama()
        mlp0 = base.model.layers[1].mlp
        w_gate, w_up, w_down = (mlp0.gate_proj.weight.detach().clone(), mlp0.up_proj.weight.detach().clone(),
                                mlp0.down_proj.weight.detach().clone())
        ad = apply_method(base, "llm_adapter", {**HP, "parallel": parallel, "non_linearity": non_linearity,
                                                "scaling": scaling}, target_modules=targets, head_modules=[])
        mlp = ad.model.model.layers[1].mlp
        a = {n: (getattr(mlp, n).down.weight.detach(), getattr(mlp, n).up.weight.detach()) for n in targets}

        def adapter(name, s):
            return _bottleneck(s, *a[name], act, scaling)

        if parallel:
            gate = x @ w_gate.T
            up = x @ w_up.T + adapter("up_proj", x)
            h = F.silu(gate) * up
            expected = h @ w_down.T + adapter("down_proj", h)
            kinds = {"up_proj": "parallel_adapter", "down_proj": "parallel_adapter"}
        else:
            gate = (x + adapter("gate_proj", x)) @ w_gate.T
            up = (x + adapter("up_proj", x)) @ w_up.T
            y = (F.silu(gate) * up) @ w_down.T
            expected = y + adapter("down_proj", y)
            kinds = {"gate_proj": "mh_adapter", "up_proj": "mh_adapter", "down_proj": "output_adapter"}
        assert {n: getattr(mlp, n).adapter_type for n in targets} == kinds
        with torch.no_grad():
            torch.testing.assert_close(mlp(x), expected, atol=1e-5, rtol=1e-5)


def test_adapter_dims_per_type():
    """mh_adapter: in -> in; output_adapter: out -> out; parallel_adapter: in -> out (tiny LLaMA: 32 <-> 64)."""
    series = _layers(_adapted(HP, ["gate_proj", "up_proj", "down_proj"]))
    parallel = _layers(_adapted({**HP, "parallel": True}, ["gate_proj", "up_proj", "down_proj"]))
    dims = {"gate_proj": (32, 64), "up_proj": (32, 64), "down_proj": (64, 32)}  # (in, out) of the Linear
    for layers, is_parallel in ((series, False), (parallel, True)):
        assert len(layers) == 2 * 3
        for name, layer in layers.items():
            d_in, d_out = dims[name.rpartition(".")[2]]
            src, dst = ((d_in, d_out) if is_parallel else
                        (d_in, d_in) if layer.adapter_type == "mh_adapter" else (d_out, d_out))
            assert layer.down.weight.shape == (8, src) and layer.up.weight.shape == (dst, 8), name


def test_dropout_only_in_training():
    """adapter_dropout drops the bottleneck's input in training only; it draws nothing at init."""
    x = helpers.roberta_inputs()
    plain = _adapted({**HP, "parallel": True}, PARALLEL)
    dropped = _adapted({**HP, "parallel": True, "dropout": 0.5}, PARALLEL)
    with torch.no_grad():
        torch.testing.assert_close(dropped.model(**x).logits, plain.model(**x).logits, atol=0, rtol=0)
        dropped.model.train()
        assert not torch.equal(dropped.model(**x).logits, plain.model(**x).logits)


# --- initialisation --------------------------------------------------------------------------------
def test_bert_init_std_002_no_bias_and_seeded():
    """init_weights 'bert': down and up ~ N(0, 0.02), no bias; drawn from layer_generator(seed, name)."""
    linear = nn.Linear(512, 1024, bias=False)
    layer = LLMAdapterLayer(linear, "parallel_adapter", LLMAdapterConfig(), layer_generator(0, "x"))
    for w, shape in ((layer.down.weight, (256, 512)), (layer.up.weight, (1024, 256))):
        assert w.shape == shape and w.dtype == torch.float32
        assert abs(w.std().item() - 0.02) < 0.0005 and abs(w.mean().item()) < 0.0005
    assert layer.down.bias is None and layer.up.bias is None
    again = LLMAdapterLayer(linear, "parallel_adapter", LLMAdapterConfig(), layer_generator(0, "x"))
    other = LLMAdapterLayer(linear, "parallel_adapter", LLMAdapterConfig(), layer_generator(1, "x"))
    assert torch.equal(again.down.weight, layer.down.weight) and torch.equal(again.up.weight, layer.up.weight)
    assert not torch.equal(other.down.weight, layer.down.weight)


@pytest.mark.parametrize("hp, targets", CASES, ids=IDS)
def test_step0_output_differs_from_the_base(hp, targets):
    """up is not zero-initialised: unlike adapters.bottleneck, the adapted model is not the base at step 0."""
    x = helpers.roberta_inputs()
    with torch.no_grad():
        ref = helpers.tiny_llama()(**x).logits
        out = _adapted(hp, targets).model(**x).logits
    assert not torch.allclose(out, ref, atol=1e-4)


def test_same_seed_same_adapter_global_rng_untouched():
    state = torch.random.get_rng_state()
    a, b, c = (_layers(_adapted(HP, SERIES, seed=s)) for s in (7, 7, 8))
    assert torch.equal(torch.random.get_rng_state(), state)
    for name in a:
        assert torch.equal(a[name].down.weight, b[name].down.weight)
        assert not torch.equal(a[name].down.weight, c[name].down.weight)


def test_bf16_base_keeps_float32_adapters():
    """The source's adapter Linears are float32 beside a half-precision base; the output keeps the base dtype."""
    model = helpers.tiny_llama().to(torch.bfloat16)
    ad = apply_method(model, "llm_adapter", {**HP, "parallel": True}, target_modules=PARALLEL, head_modules=[])
    assert {p.dtype for _, p in ad.trainable_parameters()} == {torch.float32}
    with torch.no_grad():
        assert ad.model(**helpers.roberta_inputs()).logits.dtype == torch.bfloat16


# --- the shared contract ------------------------------------------------------------------------------
@pytest.mark.parametrize("hp, targets", CASES, ids=IDS)
def test_only_adapter_params_train(hp, targets):
    helpers.check_grads("llama", "llm_adapter", hp, targets=targets)
    helpers.check_base_unchanged("llama", "llm_adapter", hp, targets=targets)


@pytest.mark.parametrize("hp, targets", CASES, ids=IDS)
def test_save_load_roundtrip(hp, targets, tmp_path):
    helpers.check_save_load("llama", "llm_adapter", hp, tmp_path / "llm_adapter.safetensors", targets=targets)


@pytest.mark.parametrize("hp, targets", CASES, ids=IDS)
def test_trainable_params_are_exactly_the_bottlenecks(hp, targets):
    ad = _adapted(hp, targets)
    names = {n for n, _ in ad.trainable_parameters()}
    assert names == {f"{n}.{w}.weight" for n in _layers(ad) for w in ("down", "up")}
    assert len(_layers(ad)) == 2 * len(targets)
    assert set(ad.adapter_state_dict()) == names  # no buffers
    with pytest.raises(MethodConfigError, match="cannot be merged"):
        ad.merge()


# --- paper-size counts (meta device) ---------------------------------------------------------------------
def test_llama_7b_counts_by_hand():
    """LLaMA-7B (hidden 4096, intermediate 11008, 32 layers), bottleneck 256, bias-free.
    Series on up_proj, gate_proj: two mh_adapters 4096 -> 256 -> 4096 per layer.
    Parallel on up_proj (4096 -> 11008) and down_proj (11008 -> 4096)."""
    series = apply_method(helpers.meta_llama("llama2-7b"), "llm_adapter", {}, target_modules=SERIES, head_modules=[])
    assert series.num_trainable() == 2 * (4096 * 256 * 2) * 32 == 134_217_728
    parallel = apply_method(helpers.meta_llama("llama2-7b"), "llm_adapter", {"parallel": True},
                            target_modules=PARALLEL, head_modules=[])
    assert parallel.num_trainable() == (4096 * 256 + 256 * 11008 + 11008 * 256 + 256 * 4096) * 32 == 247_463_936


def test_llama_13b_counts_by_hand():
    """LLaMA-13B (hidden 5120, intermediate 13824, 40 layers), from config/architectures/llama-13b.json."""
    from harness.audit import build_model

    series = apply_method(build_model("llama-13b")[0], "llm_adapter", {}, target_modules=SERIES, head_modules=[])
    assert series.num_trainable() == 2 * (5120 * 256 * 2) * 40 == 209_715_200
    parallel = apply_method(build_model("llama-13b")[0], "llm_adapter", {"parallel": True},
                            target_modules=PARALLEL, head_modules=[])
    assert parallel.num_trainable() == (5120 * 256 + 256 * 13824) * 2 * 40 == 387_973_120


# --- errors ----------------------------------------------------------------------------------------------
def test_series_on_a_module_outside_the_llama_mapping_raises_before_swapping():
    model = helpers.tiny_llama()
    with pytest.raises(MethodConfigError, match=r"'q_proj'.*gate_proj, up_proj, down_proj"):
        apply_method(model, "llm_adapter", HP, target_modules=["up_proj", "q_proj"], head_modules=[])
    assert not any(isinstance(m, LLMAdapterLayer) for m in model.modules())
    # parallel attaches to any Linear
    ad = _adapted({**HP, "parallel": True}, ["q_proj", "v_proj"])
    assert {layer.adapter_type for layer in _layers(ad).values()} == {"parallel_adapter"}


def test_series_on_a_model_type_without_mapping_raises():
    with pytest.raises(MethodConfigError, match="model type 'roberta'"):
        apply_method(helpers.tiny_roberta(), "llm_adapter", HP, target_modules=["query"])


@pytest.mark.parametrize("hp, match", [
    ({"bottleneck_size": 0}, "bottleneck_size"),
    ({"dropout": 1.0}, "dropout"),
    ({"non_linearity": "swish"}, "non_linearity"),
    ({"scaling": "learned"}, "scaling"),
])
def test_bad_hyperparameters_raise(hp, match):
    with pytest.raises(MethodConfigError, match=match):
        build_config("llm_adapter", hp)


def test_defaults_are_llm_adapters():
    """BottleneckConfig / finetune.py defaults: bottleneck 256, tanh, dropout 0.0, scaling 1.0, series."""
    cfg = build_config("llm_adapter", {})
    got = (cfg.bottleneck_size, cfg.non_linearity, cfg.dropout, cfg.scaling, cfg.parallel)
    assert got == (256, "tanh", 0.0, 1.0, False)


@pytest.mark.parametrize("name", sorted(ACT))
def test_activations_are_transformers_act2fn(name):
    from transformers.activations import ACT2FN

    from adapters.llm_adapters import ACTIVATIONS

    u = torch.linspace(-4, 4, 101)
    torch.testing.assert_close(ACTIVATIONS[name](u), ACT2FN[name](u), atol=0, rtol=0)
