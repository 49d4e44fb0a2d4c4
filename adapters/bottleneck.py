"""Bottleneck adapters: Houlsby (Adpt^H), Pfeiffer (Adpt^P) and the Fourier-Activated Adapter (FAA).

One family: a residual bottleneck ``a(s) = W_up act(W_down s + b_down) + b_up`` attached to an
output projection of a transformer block. Where it goes is a property of the model type, not of
``target_modules`` (these methods register ``needs_targets=False`` and ignore that list):

=================================  =================================  ============================
model_type                         attention output projection        FFN output projection
=================================  =================================  ============================
bert, roberta, xlm-roberta,        ``layer.N.attention.output.dense`` ``layer.N.output.dense``
deberta-v2
vit (transformers >= 5 names)      ``layers.N.attention.o_proj``      ``layers.N.mlp.fc2``
vit (transformers 4 names)         ``layer.N.attention.output.dense`` ``layer.N.output.dense``
llama, mistral, qwen2              ``layers.N.self_attn.o_proj``      ``layers.N.mlp.down_proj``
gpt2 (``Conv1D``)                  ``h.N.attn.c_proj``                ``h.N.mlp.c_proj``
=================================  =================================  ============================

The names are matched as whole dotted-name suffixes anchored on the layer index, so the FFN
pattern ``layer.N.output.dense`` does not also catch ``layer.N.attention.output.dense``.

Two ways to attach the bottleneck to a projection ``y = P(x)``:

* sequential (Houlsby et al. 2019, Fig. 2): ``y + a(y)``. In HF's ``BertSelfOutput`` /
  ``BertOutput`` the projection is followed by dropout, the residual and LayerNorm, so the
  adapter sits right after the projection and before the residual + LayerNorm — Houlsby's
  placement. (ViT/LLaMA are pre-LN: there it sits before the block's residual addition.)
* parallel (He et al. 2022, "parallel adapter"): ``y + a(x)``, reading the projection's input.

Methods (the RoBERTa-large budgets of 004 Table 1, copied there from Hu et al. 2021, are
"0.8M" for both; with biases, Houlsby r=8 gives 835,968 and Pfeiffer r=16 gives 811,392):

* ``houlsby``: GELU bottleneck, sequential, after the attention and the FFN projection of every
  layer (2 adapters per layer).
* ``pfeiffer``: GELU bottleneck, sequential, after the FFN projection only (1 per layer).
* ``faa``: the Fourier-Activated Adapter of 000 (arXiv 2512.22378), whose activation is FAA
  (see :class:`FAALayer`); default placement ``parallel_attention`` (000: "parallel insertion
  after attention"), i.e. parallel to the attention output projection of every layer.

Initialisation (all three): ``W_down``/``b_down`` as ``nn.Linear`` draws them (kaiming-uniform,
``U(±1/sqrt(d))``), from the per-layer generator ``adapters.base.layer_generator(seed, name)``; ``W_up`` and
``b_up`` are zero, so the adapted model equals the base model at step 0 (Houlsby's
near-identity initialisation made exact). LayerNorms of the backbone stay frozen (the 0.8M
counts above do not include them). Not mergeable: the adapters are nonlinear.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from adapters.base import AdapterLayer, layer_generator
from adapters.catalog import register
from adapters.errors import MethodConfigError

# --- placement --------------------------------------------------------------------------------

_ENCODER = {"attention": r"layer\.\d+\.attention\.output\.dense", "ffn": r"layer\.\d+\.output\.dense"}
_DECODER = {"attention": r"layers\.\d+\.self_attn\.o_proj", "ffn": r"layers\.\d+\.mlp\.down_proj"}
PLACEMENTS: dict[str, dict[str, str]] = {
    "bert": _ENCODER,
    "roberta": _ENCODER,
    "xlm-roberta": _ENCODER,
    "deberta-v2": _ENCODER,
    "vit": {
        "attention": r"layers\.\d+\.attention\.o_proj|layer\.\d+\.attention\.output\.dense",
        "ffn": r"layers\.\d+\.mlp\.fc2|layer\.\d+\.output\.dense",
    },
    "llama": _DECODER,
    "mistral": _DECODER,
    "qwen2": _DECODER,
    "gpt2": {"attention": r"h\.\d+\.attn\.c_proj", "ffn": r"h\.\d+\.mlp\.c_proj"},
}


def placement_sites(model: nn.Module, sites: tuple[str, ...], method: str) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` pairs of ``model`` at ``sites`` (``'attention'``, ``'ffn'``) for its
    ``config.model_type``, in ``named_modules`` order."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in PLACEMENTS:
        raise MethodConfigError(
            f"{method}: no adapter placement for model type {model_type!r}; "
            f"supported: {', '.join(sorted(PLACEMENTS))}"
        )
    patterns = [re.compile(rf"(?:^|\.)(?:{PLACEMENTS[model_type][s]})$") for s in sites]
    hits = [(n, m) for n, m in model.named_modules() if any(p.search(n) for p in patterns)]
    if not hits:
        raise MethodConfigError(f"{method}: no {'/'.join(sites)} output projection found in this {model_type} model")
    return hits


def _io_features(module: nn.Module) -> tuple[int, int]:
    """(in, out) features of an ``nn.Linear`` or a GPT-2 ``Conv1D`` (weight stored ``(in, out)``)."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if hasattr(module, "nf") and getattr(module, "weight", None) is not None and module.weight.dim() == 2:
        return module.weight.shape[0], module.nf
    raise MethodConfigError(f"cannot attach a bottleneck adapter to a {type(module).__name__}")


def _swap(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


# --- layers -----------------------------------------------------------------------------------


class BottleneckLayer(AdapterLayer):
    """``y = base(x)``; returns ``y + up(act(down(s)))`` with ``s = x`` (parallel) or ``y``
    (sequential). ``act`` is GELU (Houlsby/Pfeiffer; :class:`FAALayer` overrides it)."""

    def __init__(self, base_layer: nn.Module, r: int, parallel: bool, generator: torch.Generator):
        super().__init__()
        self.base_layer = base_layer
        self.parallel = parallel
        d_in, d_out = _io_features(base_layer)
        d_src = d_in if parallel else d_out
        weight = base_layer.weight
        self.factory = {"device": weight.device, "dtype": weight.dtype}
        self.r = r
        # Allocated without nn.Linear's own (global-RNG) init, filled on the CPU from the seeded
        # generator so that the values are the same on any device, then moved.
        down = nn.Linear(d_src, r, device="meta").to_empty(device="cpu")
        nn.init.kaiming_uniform_(down.weight, a=math.sqrt(5), generator=generator)
        nn.init.uniform_(down.bias, -1 / math.sqrt(d_src), 1 / math.sqrt(d_src), generator=generator)
        up = nn.Linear(r, d_out, device="meta").to_empty(device="cpu")
        nn.init.zeros_(up.weight)
        nn.init.zeros_(up.bias)
        self.down, self.up = down.to(**self.factory), up.to(**self.factory)

    def activation(self, u: torch.Tensor) -> torch.Tensor:
        return F.gelu(u)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        y = self.base_layer(x, *args, **kwargs)
        return y + self.up(self.activation(self.down(x if self.parallel else y)))

    def extra_repr(self) -> str:
        return f"r={self.r}, {'parallel' if self.parallel else 'sequential'}"


class FAALayer(BottleneckLayer):
    """Fourier-Activated Adapter (000, "Method Summary" and "Architecture Onboarding").

    With ``u = W_down s + b_down`` (width ``r``) the activation is

        a(u) = alpha ⊙ GELU(u) + beta ⊙ z(u),        z(u) = sum_i r_i * LN(g_i(u))

    * ``alpha, beta`` in R^r: learnable channel-wise vectors (Hadamard products), init 1.
    * grid ``i = 0..G-1`` (``G = num_grids``, 000 uses 9) has bandwidth
      ``sigma_i = sigma * sigma_ratio ** (i - (G-1)/2)`` — a geometric grid centred on
      ``sigma`` (defaults 1 and 2: bandwidths 1/16 .. 16 for G = 9, so both "large sigma: low
      frequency" and "small sigma: high frequency" ends of 000's Mechanism 1 are covered) — and a
      FROZEN projection ``W_i in R^{r x D}``, entries ``N(0, sigma_i^-2)`` (``D = d_rff``),
      kept as the persistent buffer ``rff_weight`` (G x r x D) unless ``trainable_rff``.
    * random Fourier features ``[cos(u W_i), sin(u W_i)]`` (2D wide) are mapped back to width
      r: if ``2 d_rff == r`` no map is needed; otherwise they are multiplied by one frozen
      Gaussian matrix ``rff_proj`` (2D x r, ``N(0, 1/(2D))``, shared by the grids, a persistent
      buffer) — a random linear mix of random features is again a random-feature map, and no
      trainable parameter is added. ``D`` (default 81): :class:`FAAConfig`.
      That gives ``g_i`` (width r). The usual RFF factor ``sqrt(1/D)`` is omitted: the
      LayerNorm that follows removes any scale.
    * ``LN``: LayerNorm over the r channels without affine parameters; ``r_i`` (the learnable
      gate vector ``gate``, G scalars, init ``1/sqrt(G)`` so that z has unit scale) combines the
      grids: the "hierarchical gating" ``sum_i r_i LN(g_i)``.

    Trainable per adapter: ``W_down, b_down, W_up, b_up, alpha, beta, gate`` (plus ``W_rff`` with
    ``trainable_rff``); ``beta_zero`` removes ``beta``, ``gate`` and the RFF path entirely
    (a = alpha ⊙ GELU(u)). ``W_up`` is zero-initialised, so the step-0 output is unchanged.

    Extra losses of the last forward (already weighted; ``Adapted.extra_losses`` sums them over
    the layers):

    * ``faa_gate_l1 = lambda1 * mean_i |r_i|``;
    * ``faa_orthogonality = lambda2 * ||Gm^T Gm - I_G||_F^2`` where column i of ``Gm`` is the
      normalised gate output ``LN(g_i(u))`` of grid i, flattened over every token of the batch
      and every channel and scaled to unit L2 norm — so ``Gm^T Gm`` is the G x G matrix of
      cosine similarities (for LayerNormed features: correlations) between the frequency
      channels, and the loss pushes the grids to carry decorrelated signals.
    """

    def __init__(
        self,
        base_layer: nn.Module,
        cfg: "FAAConfig",
        parallel: bool,
        generator: torch.Generator,
    ):
        super().__init__(base_layer, cfg.r, parallel, generator)
        r, g = cfg.r, cfg.num_grids
        self.lambda1, self.lambda2 = cfg.lambda1, cfg.lambda2
        self.beta_zero = cfg.beta_zero
        self.alpha = nn.Parameter(torch.ones(r, **self.factory))
        self._losses: dict[str, torch.Tensor] = {}
        if cfg.beta_zero:
            return
        self.beta = nn.Parameter(torch.ones(r, **self.factory))
        self.gate = nn.Parameter(torch.full((g,), 1 / math.sqrt(g), **self.factory))
        d_rff = cfg.d_rff
        sigmas = cfg.sigmas()
        w = torch.randn(g, r, d_rff, generator=generator) / sigmas.view(g, 1, 1)
        w = w.to(**self.factory)
        if cfg.trainable_rff:
            self.rff_weight = nn.Parameter(w)
        else:
            self.register_buffer("rff_weight", w, persistent=True)
        if 2 * d_rff != r:
            proj = torch.randn(2 * d_rff, r, generator=generator) / math.sqrt(2 * d_rff)
            self.register_buffer("rff_proj", proj.to(**self.factory), persistent=True)
        else:
            self.rff_proj = None

    def frequency_features(self, u: torch.Tensor) -> torch.Tensor:
        """``LN(g_i(u))`` for every grid: shape ``(..., G, r)``."""
        phase = torch.einsum("...r,grd->...gd", u, self.rff_weight)
        feats = torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)
        if self.rff_proj is not None:
            feats = feats @ self.rff_proj
        return F.layer_norm(feats, (feats.shape[-1],))

    def activation(self, u: torch.Tensor) -> torch.Tensor:
        a = self.alpha * F.gelu(u)
        if self.beta_zero:
            self._losses = {}
            return a
        normed = self.frequency_features(u)  # (..., G, r)
        z = torch.einsum("...gr,g->...r", normed, self.gate)
        g = normed.shape[-2]
        cols = normed.reshape(-1, g, normed.shape[-1]).transpose(0, 1).reshape(g, -1)  # G x (tokens*r)
        cols = F.normalize(cols.float(), dim=1)
        gram = cols @ cols.T
        eye = torch.eye(g, device=gram.device, dtype=gram.dtype)
        self._losses = {
            "faa_gate_l1": self.lambda1 * self.gate.abs().mean(),
            "faa_orthogonality": self.lambda2 * (gram - eye).pow(2).sum(),
        }
        return a + self.beta * z

    def extra_losses(self) -> dict[str, torch.Tensor]:
        return dict(self._losses)

    def extra_repr(self) -> str:
        extra = "beta_zero" if self.beta_zero else f"grids={self.gate.numel()}, d_rff={self.rff_weight.shape[-1]}"
        return f"{super().extra_repr()}, {extra}"


# --- configs and apply ------------------------------------------------------------------------


def _check_r(method: str, r: int) -> None:
    if r < 1:
        raise MethodConfigError(f"{method}: 'r' (bottleneck size) must be >= 1, got {r}")


@dataclass
class HoulsbyConfig:
    """Adpt^H (Houlsby et al. 2019; 004 Table 1, RoBERTa-large 0.8M ⇔ r = 8)."""

    r: int
    name: ClassVar[str] = "houlsby"
    sites: ClassVar[tuple[str, ...]] = ("attention", "ffn")

    def __post_init__(self):
        _check_r(self.name, self.r)


@dataclass
class PfeifferConfig(HoulsbyConfig):
    """Adpt^P (Pfeiffer et al. 2021; 004 Table 1, RoBERTa-large 0.8M ⇔ r = 16)."""

    name: ClassVar[str] = "pfeiffer"
    sites: ClassVar[tuple[str, ...]] = ("ffn",)


FAAPlacement = Literal["parallel_attention", "houlsby", "pfeiffer"]
_FAA_SITES = {
    "parallel_attention": (("attention",), True),
    "houlsby": (("attention", "ffn"), False),
    "pfeiffer": (("ffn",), False),
}


@dataclass
class FAAConfig:
    """FAA (000). The paper leaves sigma, D_rff and the lambdas unspecified (000 "Limitations");
    num_grids = 9 is 000's ("Design tradeoffs"); the other defaults are ours: sigma = 1 with a
    ratio-2 geometric grid, lambda1 = 1e-3, lambda2 = 1e-4 (small against a task loss of order 1:
    the orthogonality term is at most G^2 = 81 per layer), and d_rff = 81, from 000's one number on
    the RFF width: freezing W_rff "reduces parameters 32.1%". Per adapter on hidden size d, W_rff
    has G r D entries and the trainable rest 2 d r + d + 3 r + G, so the saving is about
    100 G D / (2 d + G D) whatever r is. On RoBERTa-base (d = 768, 000's GLUE model) with G = 9,
    32.1 % (to 000's one decimal) needs D = 81 for every r in 119..512 (at r = 162 with 2D = r, no
    projection), 82 for r in 31..42, 83 for r in 18..20, and 84, 85, 86 for r = 13, 10, 8 only;
    r = 16 (config/glue_base.yaml's chosen width) has none: D = 81 gives 31.5 %, 83 gives 32.0 %.
    With r a power of two, no D that is a power of two or r/2, r, 2r gives 32.1 % (any G <= 16,
    d = 768, 1024, 4096); the former default D = r/2 froze 4.3 % at r = 16. ``python -m harness
    audit`` recomputes the savings (config/paper_values/params.csv, ``saving_vs:trainable_rff``).

    Ablations (000 "Design tradeoffs" / "First 3 experiments"): ``beta_zero`` (no frequency
    path), ``trainable_rff`` (W_rff learnable), ``num_grids``, ``sigma``, ``d_rff``,
    ``placement`` (``parallel_attention``: parallel to each attention output projection;
    ``houlsby``: sequential after attention and FFN; ``pfeiffer``: sequential after FFN).
    """

    r: int
    placement: FAAPlacement = "parallel_attention"
    num_grids: int = 9
    sigma: float = 1.0
    sigma_ratio: float = 2.0
    d_rff: int = 81
    trainable_rff: bool = False
    beta_zero: bool = False
    lambda1: float = 1e-3
    lambda2: float = 1e-4

    def __post_init__(self):
        _check_r("faa", self.r)
        if self.num_grids < 1:
            raise MethodConfigError(f"faa: 'num_grids' must be >= 1, got {self.num_grids}")
        if not self.sigma > 0:
            raise MethodConfigError(f"faa: 'sigma' must be > 0, got {self.sigma}")
        if not self.sigma_ratio >= 1:
            raise MethodConfigError(f"faa: 'sigma_ratio' must be >= 1, got {self.sigma_ratio}")
        if self.d_rff < 1:
            raise MethodConfigError(f"faa: 'd_rff' must be >= 1, got {self.d_rff}")
        if self.lambda1 < 0 or self.lambda2 < 0:
            raise MethodConfigError(f"faa: 'lambda1' and 'lambda2' must be >= 0, got {self.lambda1}, {self.lambda2}")

    def sigmas(self) -> torch.Tensor:
        """The geometric bandwidth grid ``sigma * sigma_ratio ** (i - (G-1)/2)``."""
        i = torch.arange(self.num_grids, dtype=torch.float64) - (self.num_grids - 1) / 2
        return (self.sigma * self.sigma_ratio**i).float()


def _attach(model: nn.Module, method: str, sites: tuple[str, ...], seed: int, make) -> nn.Module:
    """Wrap every placement site with the generator ``layer_generator(seed, site name)``.
    Adapter parameters are created trainable."""
    for name, module in placement_sites(model, sites, method):
        _swap(model, name, make(module, layer_generator(seed, name)))
    return model


@register(
    "houlsby",
    config=HoulsbyConfig,
    mergeable=False,
    paper="004 Table 1 (Adpt^H, Houlsby et al. 2019)",
    needs_targets=False,
)
def apply_houlsby(model: nn.Module, cfg: HoulsbyConfig, target_modules: list[str], seed: int) -> nn.Module:
    """GELU bottleneck after every attention and FFN output projection (``target_modules`` unused)."""
    return _attach(model, cfg.name, cfg.sites, seed, lambda m, g: BottleneckLayer(m, cfg.r, False, g))


@register(
    "pfeiffer",
    config=PfeifferConfig,
    mergeable=False,
    paper="004 Table 1 (Adpt^P, Pfeiffer et al. 2021)",
    needs_targets=False,
)
def apply_pfeiffer(model: nn.Module, cfg: PfeifferConfig, target_modules: list[str], seed: int) -> nn.Module:
    """GELU bottleneck after every FFN output projection (``target_modules`` unused)."""
    return _attach(model, cfg.name, cfg.sites, seed, lambda m, g: BottleneckLayer(m, cfg.r, False, g))


@register("faa", config=FAAConfig, mergeable=False, paper="000 (arXiv 2512.22378) FAA", needs_targets=False)
def apply_faa(model: nn.Module, cfg: FAAConfig, target_modules: list[str], seed: int) -> nn.Module:
    """FAA bottleneck at ``cfg.placement`` (``target_modules`` unused)."""
    sites, parallel = _FAA_SITES[cfg.placement]
    return _attach(model, "faa", sites, seed, lambda m, g: FAALayer(m, cfg, parallel, g))
