"""LFMA: Layerwise Fourier Masked Adapter with top-k frequency selection (paper 001).

For every target ``nn.Linear`` with weight ``W0`` of shape ``(d1, d2) = (d_out, d_in)``
(001 Alg. 1 and §3.1-3.2):

1. draw a small perturbation ``ΔW_init`` of shape ``(d1, d2)`` and take its spectrum
   ``W_freq = FFT2(ΔW_init)``                                              (eq. 1);
2. keep the ``k = int(d1 * d2 * ratio)`` coefficients of largest magnitude ``|W_freq|``; their
   locations form a fixed mask and their complex values initialise the learnable vector ``c``
   (one complex parameter per location, so ``c.numel() == k``: the paper's counts, §4.3, count a
   complex coefficient as one parameter);
3. ``ΔW = Re(IFFT2(F)) * alpha`` with ``F`` zero except ``F[mask] = c``              (eq. 2);
4. ``h = W0 x + ΔW x``, computed as one product with ``W0 + ΔW`` (:meth:`LFMALayer.forward`).

Departures from Alg. 1 and choices the paper leaves open (each one a config field):

* **Orientation.** Alg. 1 computes ``h += x @ ΔW`` with ``ΔW`` in the weight's ``(d_out, d_in)``
  shape; that only type-checks for square layers (every layer the paper adapts is square:
  ViT query, RoBERTa query/value). We compute ``h + x @ ΔW^T``, i.e. exactly what adding ``ΔW``
  to ``nn.Linear.weight`` does, so the adapter is mergeable and well defined for any shape.
  For square layers the two differ by transposing ``ΔW``, which is the same family of updates
  (the transpose of a masked spectrum is a masked spectrum at transposed locations).
* **ΔW_init** (the paper only says "a small perturbation matrix"): ``init`` is one of
  ``'gaussian'`` — i.i.d. ``N(0, init_scale^2)`` (default: the canonical small random
  perturbation; its spectrum is white, so the top-k mask is a random, seed-determined set of
  conjugate-symmetric pairs, and nothing about the task leaks into the choice);
  ``'kaiming_uniform'`` — ``init_scale * U(-1/sqrt(d_in), 1/sqrt(d_in))``, the distribution
  ``nn.Linear`` draws its own weight from (for a "weight-like" perturbation);
  ``'base_weight'`` — ``init_scale * W0`` (deterministic: selects the dominant frequencies of
  the pretrained weight).
* **Step-0 output.** Because ``c`` starts at ``W_freq[mask]`` (not zero), Alg. 1's adapted
  model differs from the base model at step 0 by ``ΔW_0 = alpha * P_mask(ΔW_init)``, where
  ``P_mask`` keeps the selected frequencies. Alg. 1 does not subtract it. We keep that
  behaviour by default (``zero_init_output=False``) but make the perturbation small: the
  default ``init_scale=1e-4`` gives an entry RMS of ``ΔW_0`` of about
  ``alpha * init_scale * sqrt(e)``, where ``e = ratio * (1 + ln(1/ratio))`` is the share of a
  white spectrum's energy held by its top ``ratio`` fraction (measured on 768x768 and
  1024x1024: 5.4e-4 at the paper's alpha=12, ratio=0.05; 6.3e-4 at alpha=120, ratio=0.0003;
  1.3e-4 at alpha=12, ratio=0.0016), i.e. of order 1 % of the entry RMS of a pretrained
  attention projection (a few 1e-2). ``zero_init_output=True`` makes the step-0 model exactly
  the base model: the mask is still chosen from ``ΔW_init`` but ``c`` starts at zero (like
  LoRA's B = 0 or FourierFT's zero-started update). The other way to get there — keep a frozen
  copy ``c_0`` and use ``ΔW = f(c - c_0)`` — has the same gradients (``ΔW`` is linear in ``c``)
  but needs an extra k-sized buffer per layer, and AdamW's weight decay would then pull ``ΔW``
  toward ``-ΔW_0`` instead of toward 0 (the base model), so we start ``c`` at zero instead.
* **Randomness.** ``ΔW_init`` for the i-th adapted layer (in ``named_modules`` order) is drawn
  on the CPU from ``adapters.base.layer_generator(seed, layer name)`` so that the same seed
  gives the same mask and ``c`` on any device. On the meta device (parameter counts of
  paper-size models) only the shapes of ``c`` and the locations are built.
* The locations are kept as a persistent ``2 x k`` buffer (row-major order of the mask, i.e.
  the order of Alg. 1's ``W_freq[mask]``) rather than a ``d1 x d2`` boolean mask;
  ``LFMALayer.mask`` rebuilds the mask. ``ΔW`` is built by the shared primitive
  :func:`adapters.spectral.spectral_to_dense` (``Re(ifft2)`` with torch's ``1/(d1 d2)``
  normalisation, as in Alg. 1).
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
from adapters.spectral import complex_dtype, spectral_to_dense

LFMAInit = Literal["gaussian", "kaiming_uniform", "base_weight"]


@dataclass
class LFMAConfig:
    """Hyperparameters of LFMA (001 Alg. 1; §4.1 for the ViT values, §4.2 Tables 2-3 for GLUE).

    ratio: the paper's ``top_k_ratio``; ``k = int(d1 * d2 * ratio)`` coefficients per layer.
    alpha: the scale of eq. 2 (Table 1: 12 with ratio 0.05; §4.1 main setting: 120 with 0.0003).
    init / init_scale: how ``ΔW_init`` is drawn (module docstring).
    zero_init_output: start ``c`` at zero so that the step-0 model is the base model.
    """

    ratio: float
    alpha: float = 12.0
    init: LFMAInit = "gaussian"
    init_scale: float = 1e-4
    zero_init_output: bool = False

    def __post_init__(self):
        if not 0.0 < self.ratio <= 1.0:
            raise MethodConfigError(f"lfma: 'ratio' must be in (0, 1], got {self.ratio}")
        if not self.alpha > 0:
            raise MethodConfigError(f"lfma: 'alpha' must be > 0 (001 §3.1), got {self.alpha}")
        if not self.init_scale > 0:
            raise MethodConfigError(f"lfma: 'init_scale' must be > 0, got {self.init_scale}")


def _initial_perturbation(
    base: nn.Linear, init: str, scale: float, generator: torch.Generator
) -> torch.Tensor:
    """``ΔW_init`` of the base weight's shape, on the CPU in float64 (the FFT's top-k is then
    independent of the model's dtype and device)."""
    d1, d2 = base.weight.shape
    if init == "gaussian":
        return torch.randn(d1, d2, generator=generator, dtype=torch.float64) * scale
    if init == "kaiming_uniform":
        bound = 1.0 / d2**0.5  # nn.Linear.reset_parameters: kaiming_uniform(a=sqrt(5)) == U(±1/sqrt(fan_in))
        return (torch.rand(d1, d2, generator=generator, dtype=torch.float64) * 2 - 1) * bound * scale
    if init == "base_weight":
        return base.weight.detach().to("cpu", torch.float64) * scale
    raise MethodConfigError(f"lfma: unknown init {init!r}")


def top_k_spectrum(delta_w_init: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 1 and the top-k selection of Alg. 1: ``(locations 2 x k, coefficients k)``.

    Locations are sorted row-major so that ``coefficients == W_freq[mask]`` exactly as in Alg. 1.
    """
    w_freq = torch.fft.fft2(delta_w_init)  # forward transform of ΔW_init (eq. 1); not a weight inverse
    cols = w_freq.shape[1]
    flat = torch.topk(w_freq.abs().flatten(), k).indices.sort().values
    locations = torch.stack([flat // cols, flat % cols])
    return locations, w_freq.flatten()[flat]


class LFMALayer(AdapterLayer):
    """A frozen ``nn.Linear`` plus the LFMA update ``ΔW = alpha * Re(IFFT2(F[mask] = c))``."""

    def __init__(self, base_layer: nn.Linear, cfg: LFMAConfig, generator: torch.Generator):
        super().__init__()
        self.base_layer = base_layer
        self.alpha = float(cfg.alpha)
        d1, d2 = base_layer.weight.shape
        self.shape = (d1, d2)
        k = int(d1 * d2 * cfg.ratio)  # Alg. 1: k = int(d1 * d2 * top_k_ratio)
        if k < 1:
            raise MethodConfigError(
                f"lfma: ratio {cfg.ratio} selects no coefficient of a {d1}x{d2} layer (k = int({d1 * d2} * ratio) = 0)"
            )
        weight = base_layer.weight
        cdtype = complex_dtype(weight.dtype)
        if weight.is_meta:
            # A meta model holds no data (nothing computed here would survive the move to
            # meta): build the shapes only, which is all a parameter count needs.
            locations = torch.empty(2, k, dtype=torch.long, device="meta")
            coeffs = torch.empty(k, dtype=cdtype, device="meta")
        else:
            delta_w_init = _initial_perturbation(base_layer, cfg.init, cfg.init_scale, generator)
            locations, coeffs = top_k_spectrum(delta_w_init, k)
            if cfg.zero_init_output:
                coeffs = torch.zeros_like(coeffs)
            locations, coeffs = locations.to(weight.device), coeffs.to(weight.device, cdtype)
        self.register_buffer("locations", locations, persistent=True)
        self.c = nn.Parameter(coeffs)

    @property
    def mask(self) -> torch.Tensor:
        """The boolean ``(d1, d2)`` mask of Alg. 1."""
        mask = torch.zeros(self.shape, dtype=torch.bool, device=self.locations.device)
        mask[self.locations[0], self.locations[1]] = True
        return mask

    def delta_weight(self) -> torch.Tensor:
        """Eq. 2: ``Re(IFFT2(F)) * alpha`` in the base weight's ``(d_out, d_in)`` shape."""
        return spectral_to_dense(self.c, self.locations, self.shape) * self.alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``W0 x + ΔW x + b`` (Alg. 1's ``x @ ΔW`` only fits square layers) as one product with
        ``W0 + ΔW``: per step 3 token x d_in x d_out products (forward, input grad, weight grad)
        instead of 5 for ``base(x) + x ΔW^T``. W0 is read, never written, and gets no gradient
        (it does not require grad; the sum is a fresh tensor)."""
        if self.merged:
            return self.base_layer(x)
        weight = self.base_layer.weight
        return F.linear(x, weight + self.delta_weight().to(weight.dtype), self.base_layer.bias)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, k={self.c.numel()}, alpha={self.alpha}"


@register("lfma", config=LFMAConfig, mergeable=True, paper="001 Alg. 1, eq. 1-2")
def apply_lfma(model: nn.Module, cfg: LFMAConfig, target_modules: list[str], seed: int) -> nn.Module:
    """Wrap every target ``nn.Linear`` (001 §4.1: ViT query; §4.2: RoBERTa query and value)."""
    replace_linear_modules(model, target_modules, lambda name, linear: LFMALayer(linear, cfg, layer_generator(seed, name)))
    return model
