"""lora, dora, vera, fourierft: the registry's wrapping of peft 0.21 (adapters/peft_baselines.py)."""
from __future__ import annotations

import pytest
import torch
from peft import FourierFTConfig, LoraConfig, VeraConfig, get_peft_model

import helpers
from adapters import apply_method

TINY = {
    "lora": {"r": 4, "alpha": 8.0},
    "dora": {"r": 4, "alpha": 8.0},
    "vera": {"r": 16, "d_initial": 0.1},
    "fourierft": {"n_frequency": 40, "scaling": 150.0},
}
ZERO_INIT = ["lora", "dora", "vera"]  # peft FourierFT (init_weights=False) starts from a Gaussian spectrum


@pytest.mark.parametrize("method", list(TINY))
def test_grads_only_adapter_and_head(method):
    helpers.check_grads("roberta", method, TINY[method])


@pytest.mark.parametrize("method", list(TINY))
def test_base_weights_bitwise_unchanged(method):
    helpers.check_base_unchanged("roberta", method, TINY[method])


@pytest.mark.parametrize("method", ZERO_INIT)
def test_zero_init_output_unchanged(method):
    helpers.check_zero_init("roberta", method, TINY[method])


def test_fourierft_starts_nonzero():
    ref, adapted, inputs = helpers.apply("roberta", "fourierft", TINY["fourierft"])
    with torch.no_grad():
        assert not torch.allclose(helpers.logits(adapted.model, inputs), ref, atol=1e-6)


@pytest.mark.parametrize("method", list(TINY))
def test_merge_unmerge(method):
    helpers.check_merge("roberta", method, TINY[method])


@pytest.mark.parametrize("method", list(TINY))
def test_save_load_roundtrip(method, tmp_path):
    helpers.check_save_load("roberta", method, TINY[method], tmp_path / f"{method}.safetensors")


@pytest.mark.parametrize("method", ["lora", "vera"])
@pytest.mark.parametrize("arch", ["vit", "llama"])
def test_other_architectures(method, arch):
    helpers.check_grads(arch, method, TINY[method])


@pytest.mark.parametrize("method", list(TINY))
def test_no_modules_to_save_and_head_by_identity(method):
    model = helpers.tiny_roberta()
    head = {id(p) for p in model.classifier.parameters()}
    adapted = apply_method(model, method, TINY[method], target_modules=["query", "value"], seed=0)
    assert adapted.model.peft_config["default"].modules_to_save is None
    assert {id(p) for p in adapted.head_params} == head
    names = [n for n, _ in adapted.trainable_parameters()]
    marker = {"lora": "lora_", "dora": "lora_", "vera": "vera_lambda_", "fourierft": "fourierft_spectrum"}[method]
    assert names and all(marker in n and n.startswith("base_model.model.") for n in names)
    assert not any("modules_to_save" in n or "original_module" in n for n, _ in adapted.model.named_parameters())


@pytest.mark.parametrize("method", list(TINY))
def test_seeded_and_global_rng_untouched(method):
    state = torch.random.get_rng_state()
    a = apply_method(helpers.tiny_roberta(), method, TINY[method], target_modules=["query", "value"], seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = apply_method(helpers.tiny_roberta(), method, TINY[method], target_modules=["query", "value"], seed=3)
    c = apply_method(helpers.tiny_roberta(), method, TINY[method], target_modules=["query", "value"], seed=4)
    sa, sb, sc = (dict(x.model.state_dict()) for x in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)  # another seed, another adapter


def _direct_peft(method, model):
    targets = ["query", "value"]
    h = TINY[method]
    if method in ("lora", "dora"):
        cfg = LoraConfig(r=h["r"], lora_alpha=h["alpha"], target_modules=targets, use_dora=method == "dora")
    elif method == "vera":
        cfg = VeraConfig(r=h["r"], d_initial=h["d_initial"], target_modules=targets, projection_prng_key=3)
    else:
        cfg = FourierFTConfig(
            n_frequency=h["n_frequency"], scaling=h["scaling"], random_loc_seed=3, target_modules=targets
        )
    return get_peft_model(model, cfg)


@pytest.mark.parametrize("method", list(TINY))
def test_registry_equals_peft_direct(method):
    """Same config through the registry and through peft: with the same (non-zero) adapter values
    the outputs agree, frozen random state (VeRA projections, FourierFT locations) included."""
    inputs = helpers.roberta_inputs()
    ours = apply_method(helpers.tiny_roberta(), method, TINY[method], target_modules=["query", "value"], seed=3).model
    theirs = _direct_peft(method, helpers.tiny_roberta())
    g = torch.Generator().manual_seed(0)
    theirs_params = dict(theirs.named_parameters())
    with torch.no_grad():
        for name, p in ours.named_parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if "magnitude" in name else 0.0))
                theirs_params[name].copy_(p)
        for name, b in ours.named_buffers():
            assert torch.equal(b, dict(theirs.named_buffers())[name]), name
        out = helpers.logits(ours, inputs)
        torch.testing.assert_close(out, helpers.logits(theirs, inputs), atol=1e-6, rtol=0)
        assert not torch.allclose(out, helpers.logits(helpers.tiny_roberta(), inputs), atol=1e-4)
    if method == "fourierft":
        ours_layer = ours.base_model.model.roberta.encoder.layer[0].attention.self.query
        theirs_layer = theirs.base_model.model.roberta.encoder.layer[0].attention.self.query
        assert torch.equal(ours_layer.indices["default"], theirs_layer.indices["default"])


def test_dropout_reaches_peft():
    adapted = apply_method(helpers.tiny_roberta(), "lora", {"r": 2, "dropout": 0.1}, target_modules=["query"])
    q = adapted.model.base_model.model.roberta.encoder.layer[0].attention.self.query
    assert q.lora_dropout["default"].p == 0.1 and q.scaling["default"] == 2.0  # alpha None -> 2 r


# --- FoRA Table 1 counts at the papers' shapes, without weights (meta device) ------------------
@pytest.mark.parametrize(
    "size, method, hparams, count",
    [
        ("base", "lora", {"r": 8, "alpha": 8.0}, 294_912),  # 0.3M
        ("base", "vera", {"r": 1024}, 43_008),  # 0.043M
        ("base", "fourierft", {"n_frequency": 1000}, 24_000),  # 0.024M
        ("large", "lora", {"r": 8, "alpha": 16.0}, 786_432),  # 0.8M
        ("large", "vera", {"r": 256}, 61_440),  # 0.061M
        ("large", "fourierft", {"n_frequency": 1000}, 48_000),  # 0.048M
        ("base", "dora", {"r": 8}, 294_912 + 24 * 768),
    ],
)
def test_paper_counts_roberta(size, method, hparams, count):
    adapted = apply_method(helpers.meta_roberta(size), method, hparams, target_modules=["query", "value"])
    assert adapted.num_trainable() == count


def test_meta_llama_applies():
    adapted = apply_method(
        helpers.meta_llama("llama2-7b"), "lora", {"r": 32}, target_modules=["q_proj", "v_proj"], head_modules=()
    )
    assert adapted.num_trainable() == 32 * 2 * 32 * (4096 + 4096)  # 16.8M: FoRA Table 2, LoRA row
