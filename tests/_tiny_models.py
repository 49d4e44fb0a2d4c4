"""Tiny transformers models built from configs (never downloaded), for the LFMA and bottleneck
tests; plus the paper-size models on the meta device, for parameter counts."""
from __future__ import annotations

import torch
import transformers as T

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def _seeded(build, seed: int = 0):
    torch.manual_seed(seed)  # the tiny backbones' random init: same seed, same base model
    return build().eval()


def tiny_roberta(seed: int = 0, num_labels: int = 2):
    cfg = T.RobertaConfig(vocab_size=100, max_position_embeddings=40, num_labels=num_labels, **SMALL)
    return _seeded(lambda: T.RobertaForSequenceClassification(cfg), seed)


def tiny_bert(seed: int = 0):
    cfg = T.BertConfig(vocab_size=100, max_position_embeddings=40, num_labels=2, **SMALL)
    return _seeded(lambda: T.BertForSequenceClassification(cfg), seed)


def tiny_vit(seed: int = 0):
    cfg = T.ViTConfig(image_size=16, patch_size=8, num_channels=3, num_labels=3, **SMALL)
    return _seeded(lambda: T.ViTForImageClassification(cfg), seed)


def tiny_llama(seed: int = 0):
    cfg = T.LlamaConfig(vocab_size=100, num_key_value_heads=2, max_position_embeddings=40, **SMALL)
    return _seeded(lambda: T.LlamaForCausalLM(cfg), seed)


def tiny_gpt2(seed: int = 0):
    cfg = T.GPT2Config(vocab_size=100, n_positions=40, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0)
    return _seeded(lambda: T.GPT2LMHeadModel(cfg), seed)


TINY = {"roberta": tiny_roberta, "bert": tiny_bert, "vit": tiny_vit, "llama": tiny_llama, "gpt2": tiny_gpt2}
# The module whose parameters the harness trains along with the adapter ("head").
HEADS = {"roberta": ("classifier",), "bert": ("classifier",), "vit": ("classifier",), "llama": (), "gpt2": ()}


def tiny_inputs(kind: str, batch: int = 2, seq: int = 7, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    if kind == "vit":
        return {"pixel_values": torch.randn(batch, 3, 16, 16, generator=g)}
    return {"input_ids": torch.randint(0, 100, (batch, seq), generator=g)}


def logits(model, inputs) -> torch.Tensor:
    return model(**inputs).logits


def meta_model(kind: str, size: str):
    """Paper-size backbones on the meta device (no memory, no data): counts only."""
    dims = {
        "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
        "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    }[size]
    with torch.device("meta"):
        if kind == "vit":
            return T.ViTForImageClassification(T.ViTConfig(image_size=224, patch_size=16, **dims))
        if kind == "roberta":
            return T.RobertaForSequenceClassification(T.RobertaConfig(**dims))
    raise ValueError(kind)


def query_name(model) -> str:
    """ViT's query projection is ``q_proj`` in transformers >= 5 and ``query`` before."""
    names = {n.rpartition(".")[2] for n, _ in model.named_modules()}
    return "q_proj" if "q_proj" in names else "query"
