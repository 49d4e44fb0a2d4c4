"""LLM-Adapters' bottleneck adapter (Hu et al. 2023, arXiv 2304.01933): FoRA Table 3's Adpt^H and Adpt^R.

FoRA Table 3 quotes its LLaMA-7B/13B Adpt^H and Adpt^R rows from LLM-Adapters' README ("Series" and
"Parallel"; README: ``--adapter_name bottleneck`` "refers to AdapterH in the result table",
``--use_parallel_adapter`` the parallel adapter). This module rebuilds that adapter from the facts of
AGI-Edgerunners/LLM-Adapters (``peft/src/peft/tuners/bottleneck.py``: ``BottleneckConfig``,
``BottleneckModel._find_and_replace``, ``Linear``; ``finetune.py``'s defaults):

* every target ``nn.Linear`` ``y = W x + b`` gets its own bias-free bottleneck
  ``a(s) = up(act(down(drop(s)))) * scaling`` (``adapter_down``: d -> bottleneck_size,
  ``adapter_up``: bottleneck_size -> d'), attached in one of three ways (its ``adapter_type``):

  ====================  ====================================  ===========================
  adapter_type          output                                 a's dims (d -> d')
  ====================  ====================================  ===========================
  ``mh_adapter``        ``W (x + a(x)) + b``                   in -> in
  ``output_adapter``    ``y + a(y)``, ``y = W x + b``          out -> out
  ``parallel_adapter``  ``W x + b + a(x)``                     in -> out
  ====================  ====================================  ===========================

* ``parallel=True`` (``--use_parallel_adapter``): every target is a ``parallel_adapter``. Otherwise
  (Series, AdapterH) the type comes from ``TRANSFORMERS_MODELS_TO_ADAPTER_TYPE_MAPPING`` by the
  model type and the module's own name: for LLaMA ``gate_proj`` and ``up_proj`` are
  ``mh_adapter`` and ``down_proj`` ``output_adapter``; any other name (or model type) has no
  series placement there and raises :class:`MethodConfigError`. (LLM-Adapters also maps bloom,
  gptj, gpt_neo, opt and chatglm; no table here uses them.)
* defaults (``BottleneckConfig`` / ``finetune.py``): bottleneck_size 256, non_linearity ``tanh``
  (``transformers.activations.ACT2FN``: tanh, relu, gelu (exact, erf) and silu are offered here),
  adapter_dropout 0.0 (no dropout), scaling 1.0 (a float; the source's ``"learned"`` scaling is
  not offered), no biases anywhere in the adapter (``bias="none"``: the base biases stay frozen).
* init ``"bert"`` (the default ``init_weights``): both ``adapter_down`` and ``adapter_up`` weights
  ~ N(0, 0.02). ``adapter_up`` is NOT zero, so the adapted model differs from the base model at
  step 0 (unlike :mod:`adapters.bottleneck`). Drawn from ``adapters.base.layer_generator(seed,
  name)`` (down first, then up) on the CPU and moved: the same seed gives the same adapter on any
  device, and the global RNG is left alone.
* precision: the adapter weights are float32 (``nn.Linear``'s default in the source; float64 when
  the base is float64) and the bottleneck runs on ``s.float()``; its output is cast back to the
  dtype of the tensor it is added to, then scaled, as in ``Linear.forward``.

Which modules: the table's ``target_modules`` (math_running_commands, LLaMA-7B: Series
``["up_proj", "gate_proj"]``, Parallel ``["up_proj", "down_proj"]``). Not mergeable (nonlinear).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from adapters.base import AdapterLayer, layer_generator, replace_linear_modules
from adapters.catalog import register
from adapters.errors import MethodConfigError

# LLM-Adapters bottleneck.py TRANSFORMERS_MODELS_TO_ADAPTER_TYPE_MAPPING, the LLaMA entry.
SERIES_ADAPTER_TYPES: dict[str, dict[str, str]] = {
    "llama": {"gate_proj": "mh_adapter", "up_proj": "mh_adapter", "down_proj": "output_adapter"},
}
ADAPTER_TYPES = ("mh_adapter", "output_adapter", "parallel_adapter")

# transformers ACT2FN's functions for these names: Tanh, ReLU, GELUActivation (exact erf), SiLU.
ACTIVATIONS = {"tanh": torch.tanh, "relu": F.relu, "gelu": F.gelu, "silu": F.silu}
Nonlinearity = Literal["tanh", "relu", "gelu", "silu"]

INIT_STD = 0.02  # LLM-Adapters Linear.init_bert_weights: normal_(mean=0.0, std=0.02)


@dataclass
class LLMAdapterConfig:
    """LLM-Adapters' ``BottleneckConfig`` (defaults from it and ``finetune.py``); ``parallel`` is
    ``use_parallel_adapter``, ``dropout`` is ``adapter_dropout``."""

    bottleneck_size: int = 256
    parallel: bool = False
    non_linearity: Nonlinearity = "tanh"
    scaling: float = 1.0
    dropout: float = 0.0

    def __post_init__(self):
        if self.bottleneck_size < 1:
            raise MethodConfigError(f"llm_adapter: 'bottleneck_size' must be >= 1, got {self.bottleneck_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise MethodConfigError(f"llm_adapter: 'dropout' must be in [0, 1), got {self.dropout}")


class LLMAdapterLayer(AdapterLayer):
    """One target Linear with its bottleneck; ``adapter_type`` says where (module docstring)."""

    def __init__(self, base_layer: nn.Linear, adapter_type: str, cfg: LLMAdapterConfig, generator: torch.Generator):
        super().__init__()
        if adapter_type not in ADAPTER_TYPES:
            raise MethodConfigError(
                f"llm_adapter: unknown adapter type {adapter_type!r}; allowed: {', '.join(ADAPTER_TYPES)}"
            )
        self.base_layer = base_layer
        self.adapter_type = adapter_type
        self.non_linearity = cfg.non_linearity
        self.act = ACTIVATIONS[cfg.non_linearity]
        self.scaling = cfg.scaling
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        d_in, d_out = base_layer.in_features, base_layer.out_features
        dims = {"mh_adapter": (d_in, d_in), "output_adapter": (d_out, d_out), "parallel_adapter": (d_in, d_out)}
        d_src, d_dst = dims[adapter_type]
        weight = base_layer.weight
        dtype = torch.float64 if weight.dtype == torch.float64 else torch.float32
        r = cfg.bottleneck_size
        # Allocated without nn.Linear's own (global-RNG) init; on meta (parameter counts) nothing is drawn.
        down = nn.Linear(d_src, r, bias=False, device="meta", dtype=dtype)
        up = nn.Linear(r, d_dst, bias=False, device="meta", dtype=dtype)
        if not weight.is_meta:
            down, up = down.to_empty(device="cpu"), up.to_empty(device="cpu")
            nn.init.normal_(down.weight, 0.0, INIT_STD, generator=generator)
            nn.init.normal_(up.weight, 0.0, INIT_STD, generator=generator)
        self.down, self.up = down.to(weight.device), up.to(weight.device)
        self.train(base_layer.training)  # a swap into an eval-mode model stays in eval mode (dropout off)

    def bottleneck(self, s: torch.Tensor) -> torch.Tensor:
        """``up(act(down(drop(s))))`` in the adapter's dtype, cast to ``s``'s dtype, times ``scaling``."""
        out = self.up(self.act(self.down(self.dropout(s.to(self.down.weight.dtype)))))
        return out.to(s.dtype) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.adapter_type == "mh_adapter":
            return self.base_layer(x + self.bottleneck(x))
        y = self.base_layer(x)
        if self.adapter_type == "output_adapter":
            return y + self.bottleneck(y)
        return y + self.bottleneck(x).to(y.dtype)  # parallel_adapter

    def extra_repr(self) -> str:
        return (f"{self.adapter_type}, bottleneck={self.down.out_features}, {self.non_linearity}, "
                f"scaling={self.scaling:g}")


def _series_types(model: nn.Module, target_modules: list[str]) -> dict[str, str]:
    """The series adapter type of each target's module name, checked before any module is swapped."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in SERIES_ADAPTER_TYPES:
        raise MethodConfigError(
            f"llm_adapter: no series adapter placement for model type {model_type!r} (LLM-Adapters' "
            f"mapping, as carried here: {', '.join(sorted(SERIES_ADAPTER_TYPES))}); use parallel: true"
        )
    types = SERIES_ADAPTER_TYPES[model_type]
    for target in target_modules:
        leaf = target.rpartition(".")[2]
        if leaf not in types:
            raise MethodConfigError(
                f"llm_adapter: series adapter on {target!r}: LLM-Adapters' {model_type} mapping has no adapter "
                f"type for {leaf!r}; allowed: {', '.join(types)} (or parallel: true for any Linear)"
            )
    return types


@register(
    "llm_adapter",
    config=LLMAdapterConfig,
    mergeable=False,
    paper="LLM-Adapters (Hu et al. 2023) bottleneck.py; FoRA Table 3 Adpt^H (Series) / Adpt^R (Parallel)",
)
def apply_llm_adapter(model: nn.Module, cfg: LLMAdapterConfig, target_modules: list[str], seed: int) -> nn.Module:
    """A bottleneck on every target Linear: parallel, or series with the type of LLM-Adapters' mapping."""
    types = None if cfg.parallel else _series_types(model, target_modules)

    def make(name: str, linear: nn.Linear) -> LLMAdapterLayer:
        kind = "parallel_adapter" if types is None else types[name.rpartition(".")[2]]
        return LLMAdapterLayer(linear, kind, cfg, layer_generator(seed, name))

    replace_linear_modules(model, target_modules, make)
    return model
