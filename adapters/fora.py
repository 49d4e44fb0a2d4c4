"""FoRA (004 §3.2, eq. 2-4), DFoRA (004 §4.2) and LoRA with random masking (004 §4.5).

All three keep LoRA's update ``dW = (alpha / r) B A`` (004 eq. 2) but define each factor by a
fixed budget of learnable values at fixed random locations of the factor:

* ``fora``: ``A~ = Re(ifft2(F_A))`` where ``F_A`` (r x d_in) is zero except for n learnable
  coefficients (eq. 3-4); the same for ``B~`` (d_out x r). ``n`` fixes the budget whatever ``r``
  is; a factor with fewer than n entries keeps all of them (FoRA Table 10: ViT r=8, n=8000
  -> 6,144 = 8 x 768 per matrix).
* ``dfora``: DoRA's weight decomposition with the FoRA update as the directional change.
* ``lora_random_mask``: the same n values scattered directly into A and B (no transform).

Randomness: each replaced layer draws its locations and A's initial values from its own CPU
``torch.Generator`` seeded by :func:`adapters.base.layer_generator` (``seed`` and the layer's name), never from the
global RNG, so the same seed rebuilds the same adapter on any device. On ``meta`` base weights
nothing is drawn (only shapes, for parameter counts).

Spectral locations (``shared_locations``, all three methods): 004 is ambiguous. §3.2 draws "a 2D
index matrix L in R^{2 x n} to specify spectral locations for all low-rank matrices" (and §1:
locations "shared among all adaptation matrices"), while Algorithm 1 (appendix) draws
``L = randperm(...)`` inside every ``FoRALinear``, i.e. one L per matrix. ``False`` (default):
Algorithm 1, independent locations for A and B of every layer. ``True``: §3.2, one L per factor
grid r x d drawn once per model from ``seed``; A (r x d_in) uses it as drawn, B (d_out x r) at
the transposed positions (B^T is r x d_out), so every A and B of layers with d_in = d_out (RoBERTa
and ViT q/v) share one L; a model whose factors have several grid sizes gets one L per size.

``alpha`` (all three): ``alpha=None`` means ``alpha = 2 r``, i.e. scaling 2. This is the only
alpha the FoRA paper states (Table 8: alpha=64 with r=32 for LLaMA); the GLUE and ViT tables
give none, and the benchmark's GLUE configs set ``alpha = r`` explicitly (scaling 1).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from adapters.base import AdapterLayer, layer_generator, replace_linear_modules
from adapters.catalog import register
from adapters.errors import MethodConfigError
from adapters.spectral import random_locations, spectral_to_dense


# --- helpers shared by the three methods -----------------------------------------------------
def scatter_dense(values: torch.Tensor, locations: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``values`` (n) placed at ``locations`` (2 x n) of a zero ``shape`` matrix (differentiable)."""
    return values.new_zeros(shape).index_put((locations[0], locations[1]), values)


def _kaiming_uniform(t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # LoRA's (and peft's) initialisation of A: Kaiming-uniform with a = sqrt(5), i.e. U(+-1/sqrt(fan_in)).
    return nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=generator)


def _xavier_uniform(t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return nn.init.xavier_uniform_(t, generator=generator)


_INITS = {"kaiming": _kaiming_uniform, "xavier": _xavier_uniform}


class SparseLoRALinear(AdapterLayer):
    """``base(x) + scaling * B A dropout(x)`` with A (r x d_in) and B (d_out x r) each built from
    ``min(n, size)`` learnable values ``coef_A``/``coef_B`` at fixed ``loc_A``/``loc_B`` (2 x n,
    persistent buffers; ``shared_locations(grid)`` supplies them instead of the layer's generator,
    see the module docstring). Subclasses say how values become a factor (:meth:`to_dense`) and how
    A's values start (:meth:`init_a`); B's values start at zero, so the output equals the base
    model's at step 0 (LoRA's convention, 004 §3.1 and §3.3). The update is applied as
    ``(x A^T) B^T``: dW is never materialised in ``forward``.
    """

    def __init__(
        self,
        base_layer: nn.Linear,
        *,
        n: int,
        r: int,
        alpha: float,
        dropout: float,
        generator: torch.Generator,
        init: str = "kaiming",
        shared_locations: Callable[[tuple[int, int]], torch.Tensor] | None = None,
    ):
        super().__init__()
        self.base_layer = base_layer
        self.init_scheme = init  # the scheme of A's initial values (004 §3.3): 'kaiming' (LoRA's) or 'xavier'
        self._init_fn = _INITS[init]
        d_out, d_in = base_layer.weight.shape
        self.r, self.n = r, n
        self.shape_a, self.shape_b = (r, d_in), (d_out, r)
        self.scaling = alpha / r
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        device = base_layer.weight.device
        dtype = torch.float64 if base_layer.weight.dtype == torch.float64 else torch.float32
        if base_layer.weight.is_meta:  # shapes only (parameter counts): there is nothing to draw
            loc_a = torch.empty(2, min(n, r * d_in), dtype=torch.long, device=device)
            loc_b = torch.empty(2, min(n, d_out * r), dtype=torch.long, device=device)
            coef_a = torch.empty(loc_a.shape[1], dtype=dtype, device=device)
        else:  # drawn on the CPU with the layer's generator, whatever the base weight's device
            with torch.device("cpu"):
                if shared_locations is None:  # Algorithm 1: one L per matrix
                    loc_a = random_locations(self.shape_a, n, generator)
                    loc_b = random_locations(self.shape_b, n, generator)
                else:  # §3.2: one L per r x d grid, B at the transposed positions (copies: one buffer each)
                    loc_a = shared_locations(self.shape_a).clone()
                    loc_b = shared_locations(self.shape_b[::-1]).flip(0)
                coef_a = self.init_a(loc_a, generator).to(dtype)
        self.register_buffer("loc_A", loc_a.to(device))
        self.register_buffer("loc_B", loc_b.to(device))
        self.coef_A = nn.Parameter(coef_a.to(device))
        self.coef_B = nn.Parameter(torch.zeros(loc_b.shape[1], dtype=dtype, device=device))

    # -- what subclasses define --
    def to_dense(self, values: torch.Tensor, locations: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        raise NotImplementedError

    def init_a(self, loc_a: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    # -- LoRA's update with the dense factors --
    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) as dense matrices, (r x d_in) and (d_out x r)."""
        return (
            self.to_dense(self.coef_A, self.loc_A, self.shape_a),
            self.to_dense(self.coef_B, self.loc_B, self.shape_b),
        )

    def delta_weight(self) -> torch.Tensor:
        a, b = self.factors()
        return self.scaling * (b @ a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base_layer(x)
        if self.merged:
            return result
        a, b = self.factors()
        update = (self.dropout(x).to(a.dtype) @ a.T) @ b.T * self.scaling
        return result + update.to(result.dtype)

    def extra_repr(self) -> str:
        return (
            f"n={self.n}, r={self.r}, A={self.shape_a}, B={self.shape_b}, "
            f"scaling={self.scaling:g}, init={self.init_scheme}"
        )


class FoRALinear(SparseLoRALinear):
    """FoRA (004 §3.2): each factor is ``Re(ifft2(F))`` of a sparse spectrum (eq. 3-4), via the
    shared :func:`adapters.spectral.spectral_to_dense`.

    Init (004 §3.3): A's coefficients ``s`` and an auxiliary spatial ``A'`` (r x d_in) are drawn
    with the same scheme (``init='kaiming'``: LoRA's Kaiming-uniform, ``'xavier'``: Xavier-uniform),
    then "we scale s by Var(A')/Var(A~) to approximate consistent variance", both variances
    measured on these draws. ``init_scale`` says how that sentence is read:

    * ``'variance_ratio'`` (default): the text as written, ``s * Var(A') / Var(A~)``. A~ is linear
      in s, so Var(A~) becomes Var(A')^2 / Var(A~_0): at the paper's shapes A~'s entries are
      ~sqrt(r^2 d_in) times larger than LoRA's (about 10^3 at r 32, d_in 768), not equal to them.
    * ``'std_ratio'``: ``s * sqrt(Var(A') / Var(A~))``, the only factor that makes Var(A~) equal
      Var(A') (``Var(c s) = c^2 Var(s)``): mathematically tidy, but not what §3.3 writes.

    Why it matters: B~ starts at zero, so the size of A~ sets the size of every update. Adam moves
    each of B~'s n coefficients by about lr per step and the inverse DFT spreads each over r x d_out
    entries with weight 1/(r d_out) (eq. 3), so with ``std_ratio`` the update is ~sqrt(r^2 d) times
    smaller than with the text's ratio. Measured (``benchmarks/fora_update_size.py``, table in
    benchmarks/README.md): after 20 AdamW steps at FoRA's paper learning rates, ``std_ratio``'s
    ||dW|| is a few percent of LoRA's at its recipe (RoBERTa width) down to ~1/1000 (LLaMA width),
    ``variance_ratio``'s is of LoRA's order; at the mini GLUE recipe ``std_ratio`` left FoRA inert
    (switching its adapter off changed no prediction). 004's official code is not public, so
    neither reading is proven; the published text is the default. Both schemes are uniform, so
    ``init`` only sets the target variance: 1/(3 d_in) for Kaiming (a=sqrt 5), 2/(r + d_in) for Xavier.
    """

    def __init__(self, base_layer: nn.Linear, *, init_scale: str = "variance_ratio", **kw):
        self.init_scale = init_scale  # read by init_a, which the parent's __init__ calls
        super().__init__(base_layer, **kw)

    def to_dense(self, values, locations, shape):
        return spectral_to_dense(values, locations, shape)

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`SparseLoRALinear.factors`; for d_in = d_out both spectra (A's, and B's
        transposed: ``ifft2(F^T) = ifft2(F)^T``) go through one batched inverse FFT. Other shapes
        take two (zero-padding B^T to A's width would change the DFT length: not exact)."""
        if self.shape_a != self.shape_b[::-1]:
            return super().factors()
        locations = torch.stack([self.loc_A, self.loc_B.flip(0)])
        a, b_t = self.to_dense(torch.stack([self.coef_A, self.coef_B]), locations, self.shape_a)
        return a, b_t.T

    def init_a(self, loc_a, generator):
        s = self._init_fn(torch.empty(1, loc_a.shape[1]), generator)[0]
        a_aux = self._init_fn(torch.empty(self.shape_a), generator)
        var_tilde = spectral_to_dense(s, loc_a, self.shape_a).var()
        if var_tilde == 0:
            return s
        ratio = a_aux.var() / var_tilde
        return s * (ratio if self.init_scale == "variance_ratio" else torch.sqrt(ratio))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, init_scale={self.init_scale}"


class DFoRALinear(FoRALinear):
    """DFoRA (004 §4.2): DoRA with the FoRA update as the directional change,

        W' = m * (W0 + dW) / ||W0 + dW||_c,   dW = scaling * B~ A~,

    ``m`` (one per output row, initialised to the row norms of W0, trainable) and the norm over
    the input dimension of each output row, detached from the graph as in DoRA §4.3. The forward
    follows peft's ``DoraLinearLayer`` term by term (``(m/||.|| - 1) base + m/||.|| * update``),
    so with a LoRA update in place of the FoRA one it equals peft's DoRA. Like peft, it forms
    B~ A~ (detached) for the norm; the update itself is still applied as ``(x A~^T) B~^T``.
    Budget per layer: FoRA's plus d_out magnitudes (Table 2: 2.82M = 2.56M + 32 x (4096 + 4096)
    on LLaMA2-7B q, v).
    """

    def __init__(self, base_layer: nn.Linear, **kw):
        super().__init__(base_layer, **kw)
        w0 = base_layer.weight.detach().to(self.coef_A.dtype)
        self.magnitude = nn.Parameter(torch.linalg.norm(w0, dim=1))  # B~ = 0: ||W0 + dW|| = ||W0||
        self._merged_delta: torch.Tensor | None = None

    def _norm_scale(self, a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """m / ||W0 + dW||_c with the norm detached (DoRA §4.3)."""
        norm = torch.linalg.norm(weight + self.scaling * (b @ a).detach(), dim=1).detach()
        return self.magnitude / norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base_layer(x)
        if self.merged:
            return result
        a, b = self.factors()
        weight = self.base_layer.weight.to(a.dtype)
        scale = self._norm_scale(a, b, weight)
        x = x.to(a.dtype)
        if isinstance(self.dropout, nn.Identity) or not self.training:
            base = result.to(a.dtype)  # W0 x without the bias: only the matrix is rescaled
            if self.base_layer.bias is not None:
                base = base - self.base_layer.bias.to(a.dtype)
        else:
            x = self.dropout(x)
            base = F.linear(x, weight)
        update = (x @ a.T) @ b.T * self.scaling
        return result + ((scale - 1) * base + scale * update).to(result.dtype)

    def delta_weight(self) -> torch.Tensor:
        """W' - W0 for the *unmerged* base weight."""
        a, b = self.factors()
        weight = self.base_layer.weight.to(a.dtype)
        scale = self._norm_scale(a, b, weight)
        return scale[:, None] * (weight + self.scaling * (b @ a)) - weight

    # The update depends on W0, so unmerge subtracts the delta that merge added (as peft caches
    # DoRA's weight norm) instead of recomputing it from the merged weight.
    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self._merged_delta = self.delta_weight().to(self.base_layer.weight.dtype)
            self.base_layer.weight += self._merged_delta
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base_layer.weight -= self._merged_delta
            self._merged_delta = None
            self.merged = False


class RandomMaskLoRALinear(SparseLoRALinear):
    """LoRA with random masking (004 §4.5): A and B keep exactly ``n`` entries each (FoRA's
    budget) at random positions, the rest fixed at zero. A's kept entries start as LoRA's
    Kaiming-uniform A would (the entries of a full Kaiming-uniform draw at those positions); the
    config exposes no ``init``."""

    def to_dense(self, values, locations, shape):
        return scatter_dense(values, locations, shape)

    def init_a(self, loc_a, generator):
        a_full = self._init_fn(torch.empty(self.shape_a), generator)
        return a_full[loc_a[0], loc_a[1]]


# --- configs --------------------------------------------------------------------------------
@dataclass
class SparseLoRAConfig:
    """Shared knobs: ``n`` learnable values per factor (clipped to the factor's size), rank ``r``,
    ``alpha`` with scaling ``alpha / r`` (None: ``alpha = 2 r``, FoRA Table 8's alpha=64 at r=32;
    see the module docstring), dropout on the adapter's input (Tables 7-8: 0.05 for LLaMA),
    ``shared_locations`` (False: Algorithm 1's L per matrix; True: §3.2's one L for all matrices;
    see the module docstring)."""

    n: int
    r: int
    alpha: float | None = None
    dropout: float = 0.0
    shared_locations: bool = False

    _method = "sparse_lora"  # class attribute (not a field): names the method in errors

    def __post_init__(self):
        for key in ("n", "r", "alpha"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise MethodConfigError(f"{self._method}: {key!r} must be > 0, got {value}")
        if not 0.0 <= self.dropout < 1.0:
            raise MethodConfigError(f"{self._method}: 'dropout' must be in [0, 1), got {self.dropout}")

    def layer_kwargs(self) -> dict:
        alpha = float(2 * self.r if self.alpha is None else self.alpha)
        return dict(n=self.n, r=self.r, alpha=alpha, dropout=self.dropout)


@dataclass
class RandomMaskConfig(SparseLoRAConfig):
    """LoRA with random masking (004 §4.5): n kept entries per factor, as FoRA's n coefficients."""

    _method = "lora_random_mask"


@dataclass
class FoRAConfig(SparseLoRAConfig):
    """FoRA (004 §3.2-3.3): ``init`` is the scheme of §3.3 (Kaiming by default, as the paper);
    ``init_scale`` how §3.3's "scale s by Var(A')/Var(A~)" is read: ``'variance_ratio'`` (the
    text, default) or ``'std_ratio'`` (its square root); see :class:`FoRALinear`."""

    init: Literal["kaiming", "xavier"] = "kaiming"
    init_scale: Literal["variance_ratio", "std_ratio"] = "variance_ratio"

    _method = "fora"

    def layer_kwargs(self) -> dict:
        return super().layer_kwargs() | {"init": self.init, "init_scale": self.init_scale}


@dataclass
class DFoRAConfig(FoRAConfig):
    """DFoRA (004 §4.2): FoRA's knobs; the magnitudes add d_out parameters per layer."""

    _method = "dfora"


def _replace(model: nn.Module, layer_cls, cfg: SparseLoRAConfig, target_modules, seed: int) -> nn.Module:
    kwargs = cfg.layer_kwargs()
    if cfg.shared_locations:

        @functools.cache
        def shared(grid: tuple[int, int]) -> torch.Tensor:
            """The model's one L for an r x d factor grid (004 §3.2), from ``seed`` alone."""
            return random_locations(grid, cfg.n, layer_generator(seed, f"shared_locations/{grid[0]}x{grid[1]}"))

        kwargs["shared_locations"] = shared

    def make(name: str, linear: nn.Linear) -> AdapterLayer:
        generator = layer_generator(seed, name)
        return layer_cls(linear, generator=generator, **kwargs)

    replace_linear_modules(model, target_modules, make)
    return model


@register("fora", config=FoRAConfig, mergeable=True, paper="004 §3.2, eq. 2-4; init §3.3")
def apply_fora(model, cfg: FoRAConfig, target_modules, seed):
    return _replace(model, FoRALinear, cfg, target_modules, seed)


@register("dfora", config=DFoRAConfig, mergeable=True, paper="004 §4.2 (FoRA on DoRA)")
def apply_dfora(model, cfg: DFoRAConfig, target_modules, seed):
    return _replace(model, DFoRALinear, cfg, target_modules, seed)


@register("lora_random_mask", config=RandomMaskConfig, mergeable=True, paper="004 §4.5 (random masking)")
def apply_lora_random_mask(model, cfg: RandomMaskConfig, target_modules, seed):
    return _replace(model, RandomMaskLoRALinear, cfg, target_modules, seed)
