"""Tiny models, inputs and method-contract checks shared by the test files.

Models are built from ``transformers`` configs (never downloaded): hidden 32, 2 layers, no
dropout, weights from a fixed seed (drawn inside ``fork_rng``: the global RNG is left alone).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _seeded(build, seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def tiny_roberta(num_labels: int = 2, seed: int = 0, dtype: torch.dtype = torch.float32):
    from transformers import RobertaConfig, RobertaForSequenceClassification

    cfg = RobertaConfig(
        vocab_size=100, max_position_embeddings=64, type_vocab_size=1, num_labels=num_labels, **TINY, **NO_DROPOUT
    )
    return _seeded(lambda: RobertaForSequenceClassification(cfg), seed).to(dtype).eval()


def tiny_vit(num_labels: int = 3, seed: int = 0):
    from transformers import ViTConfig, ViTForImageClassification

    cfg = ViTConfig(image_size=16, patch_size=8, num_channels=3, num_labels=num_labels, **TINY, **NO_DROPOUT)
    return _seeded(lambda: ViTForImageClassification(cfg), seed).eval()


def tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False,
    )
    return _seeded(lambda: LlamaForCausalLM(cfg), seed).eval()


def roberta_inputs(batch: int = 3, seq: int = 6, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(3, 100, (batch, seq), generator=g)}


def vit_inputs(batch: int = 2, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"pixel_values": torch.randn(batch, 3, 16, 16, generator=g)}


# name -> (factory, inputs, target modules, head modules)
ARCHS = {
    "roberta": (tiny_roberta, roberta_inputs, ["query", "value"], ["classifier"]),
    "vit": (tiny_vit, vit_inputs, ["q_proj", "v_proj"], ["classifier"]),  # transformers 5: ViT q_proj/v_proj
    "llama": (tiny_llama, roberta_inputs, ["q_proj", "v_proj"], ["lm_head"]),
}


# --- paper shapes on the meta device (parameter counts without weights) ----------------------
def roberta_shape_config(size: str = "base"):
    from transformers import RobertaConfig

    dims = {"base": (768, 12, 12, 3072), "large": (1024, 24, 16, 4096)}[size]
    hidden, layers, heads, inter = dims
    return RobertaConfig(
        vocab_size=50265, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=inter, max_position_embeddings=514, type_vocab_size=1,
    )


def meta_roberta(size: str = "base"):
    from transformers import RobertaForSequenceClassification

    cfg = roberta_shape_config(size)
    with torch.device("meta"):
        return RobertaForSequenceClassification(cfg)


def meta_llama(variant: str = "llama2-7b"):
    from transformers import LlamaConfig, LlamaForCausalLM

    kv = {"llama2-7b": 32, "llama3-8b": 8}[variant]
    inter = {"llama2-7b": 11008, "llama3-8b": 14336}[variant]
    vocab = {"llama2-7b": 32000, "llama3-8b": 128256}[variant]
    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=4096, intermediate_size=inter, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=kv,
    )
    with torch.device("meta"):
        return LlamaForCausalLM(cfg)


# --- the contract every registered method must meet -----------------------------------------
def logits(model: nn.Module, inputs: dict) -> torch.Tensor:
    return model(**inputs).logits


def train_step(adapted, inputs: dict, lr: float = 1e-2, steps: int = 1) -> None:
    """AdamW steps on the trainable parameters (head included), loss = mean squared logits."""
    params = [p for _, p in adapted.trainable_parameters(include_head=True)]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    adapted.model.train()
    for _ in range(steps):
        opt.zero_grad()
        logits(adapted.model, inputs).pow(2).mean().backward()
        opt.step()
    adapted.model.eval()


def apply(arch: str, method: str, hparams: dict, seed: int = 0, model_seed: int = 0, targets: list[str] | None = None):
    """(unadapted reference logits, Adapted, inputs) on a fresh tiny model of ``arch``; ``targets``
    replaces the arch's default target modules."""
    from adapters import apply_method

    factory, make_inputs, default_targets, head = ARCHS[arch]
    targets = targets or default_targets
    model = factory(seed=model_seed)
    inputs = make_inputs()
    with torch.no_grad():
        ref = logits(model, inputs)
    adapted = apply_method(model, method, hparams, target_modules=targets, head_modules=head, seed=seed)
    return ref, adapted, inputs


def check_grads(arch: str, method: str, hparams: dict, targets: list[str] | None = None) -> None:
    """Forward + backward: the method's parameters and the head get a grad, nothing else does."""
    _, adapted, inputs = apply(arch, method, hparams, targets=targets)
    trainable = {id(p) for _, p in adapted.trainable_parameters(include_head=True)}
    assert {id(p) for p in adapted.head_params} <= trainable
    adapted.model.train()
    logits(adapted.model, inputs).pow(2).mean().backward()
    for name, p in adapted.model.named_parameters():
        if id(p) in trainable:
            assert p.requires_grad and p.grad is not None, f"{method}: {name} got no grad"
        else:
            assert not p.requires_grad and p.grad is None, f"{method}: frozen {name} got a grad"


def check_base_unchanged(arch: str, method: str, hparams: dict, targets: list[str] | None = None) -> None:
    """After an AdamW step every parameter that is not trainable is bitwise what it was."""
    factory, make_inputs, default_targets, head = ARCHS[arch]
    targets = targets or default_targets
    from adapters import apply_method

    model = factory()
    before = [(p, p.detach().clone()) for p in model.parameters()]
    adapted = apply_method(model, method, hparams, target_modules=targets, head_modules=head, seed=0)
    train_step(adapted, make_inputs())
    frozen = [(p, old) for p, old in before if not p.requires_grad]
    for p, old in frozen:
        assert torch.equal(p, old), f"{method}: a frozen base weight changed"
    if method not in ("full_ft",):
        assert frozen, f"{method}: no frozen parameter left"


def check_zero_init(arch: str, method: str, hparams: dict, atol: float = 1e-6) -> None:
    ref, adapted, inputs = apply(arch, method, hparams)
    with torch.no_grad():
        out = logits(adapted.model, inputs)
    torch.testing.assert_close(out, ref, atol=atol, rtol=0)


def check_merge(arch: str, method: str, hparams: dict, atol: float = 1e-5) -> None:
    """After steps that make the update non-zero: merged == adapted; unmerge restores it."""
    _, adapted, inputs = apply(arch, method, hparams)
    train_step(adapted, inputs, steps=2)
    params = list(adapted.model.parameters())
    before = [p.detach().clone() for p in params]
    with torch.no_grad():
        out = logits(adapted.model, inputs)
        adapted.merge()
        assert any(not torch.equal(p, b) for p, b in zip(params, before)), f"{method}: merge changed no weight"
        merged = logits(adapted.model, inputs)
        adapted.merge()  # a second merge is a no-op
        torch.testing.assert_close(logits(adapted.model, inputs), merged, atol=0, rtol=0)
        adapted.unmerge()
        unmerged = logits(adapted.model, inputs)
    torch.testing.assert_close(merged, out, atol=atol, rtol=0)
    torch.testing.assert_close(unmerged, out, atol=atol, rtol=0)
    for p, b in zip(params, before):
        torch.testing.assert_close(p.detach(), b, atol=1e-6, rtol=0)


def check_save_load(
    arch: str, method: str, hparams: dict, path, seed: int = 5, targets: list[str] | None = None
) -> None:
    """save -> fresh model + apply with the same seed -> load: identical outputs."""
    _, adapted, inputs = apply(arch, method, hparams, seed=seed, targets=targets)
    train_step(adapted, inputs)
    with torch.no_grad():
        out = logits(adapted.model, inputs)
    adapted.save(path)
    _, fresh, _ = apply(arch, method, hparams, seed=seed, targets=targets)
    with torch.no_grad():
        before_load = logits(fresh.model, inputs)
    assert not torch.equal(before_load, out), f"{method}: training changed nothing, the check is void"
    fresh.load(path)
    with torch.no_grad():
        torch.testing.assert_close(logits(fresh.model, inputs), out, atol=0, rtol=0)


def suite_with(suite, **overrides):
    """The job's real suite with some methods replaced (a fault injected into loss or evaluate):
    everything else (scores, extra metrics, selection) stays the suite's own."""
    patched = copy.copy(suite)
    for name, fn in overrides.items():
        setattr(patched, name, fn)
    return patched
