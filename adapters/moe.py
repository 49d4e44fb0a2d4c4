"""Mixture-of-experts adapters in a Fourier domain: FourierMoE (003) and FRAME (002).

Both wrap a target ``nn.Linear`` (weight d_out x d_in) as

    y = base(x) + sum_{e in topk(x)} w_e(x) * delta_e(x)

with a token-level top-k router shared by the two (:class:`TopKRouter`) and a Switch-Transformer
load-balancing loss. They differ only in what an expert is:

* ``fourier_moe`` (003, Fig. 2, Thm. 3.2): expert e is a real weight update
  ``dW_e = spectral_to_dense(c_e, L_e, (d_out, d_in), hermitian=True)`` built from n learnable
  complex coefficients c_e at n fixed half-spectrum locations L_e; ``delta_e(x) = scaling * dW_e x``.
* ``frame`` (002): expert e is a LoRA pair (A_e, B_e) plus one learnable fractional-Fourier order
  a_e; ``delta_e(x) = (alpha / r) * Re(F_{-a_e} B_e A_e F_{a_e} x)`` (F_a along the feature axis).

The seeds of both papers are abstracts (003: abstract plus figure/theorem captions; 002: abstract
only), so most details below are OUR choices; each docstring says which. What the seeds do state:
003 - a "frequency-adaptive router" dispatches tokens to experts "specialized in distinct frequency
bands"; each expert learns conjugate-symmetric complex coefficients whose IDFT is real by
construction (Thm. 3.2); Fig. 4 varies n (coefficients per expert), Z (experts, k = 2) and k (Z = 8).
002 - every expert carries one learnable scalar order that interpolates between the spatial domain
(order 0: vanilla LoRA) and the Fourier domain (order 1); the orders get their own optimizer; the
transform is an O(d log d) chirp-FFT "surrogate"; the adapter is an MoE-LoRA.

Not mergeable (token-dependent routing): ``mergeable=False``, ``delta_weight`` is not defined.
Randomness: every layer draws from its own CPU ``torch.Generator`` seeded by :func:`adapters.base.layer_generator`
(the run seed and the layer's dotted name), never from the global RNG.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from adapters.base import AdapterLayer, layer_generator, replace_linear_modules
from adapters.catalog import register
from adapters.errors import MethodConfigError
from adapters.fractional import dfrft, frft
from adapters.spectral import complex_dtype, random_locations, spectral_to_dense


# ------------------------------------------------------------------------------------------------
# Shared by both methods: the top-k router and the layer skeleton.
# ------------------------------------------------------------------------------------------------
def _adapter_dtype(base: nn.Linear) -> torch.dtype:
    return torch.float64 if base.weight.dtype == torch.float64 else torch.float32


class TopKRouter(nn.Module):
    """Token-level top-k softmax router (Switch Transformer / Mixtral convention).

    ``logits = W_g phi(x)`` with a bias-free ``W_g`` (``gate``, Z x feat); ``p = softmax(logits)``;
    the k largest ``p`` are kept and renormalised to sum to 1 (equivalently a softmax over the k
    selected logits). No noise, no capacity limit, identical in train and eval.

    ``features``: ``'token'`` -> phi(x) = x (feat = d_in);
    ``'spectrum'`` -> phi(x) = |rfft(x, norm='ortho')| along the feature axis (feat = d_in//2 + 1),
    the token's magnitude spectrum (used by FourierMoE, see :class:`FourierMoEConfig`).

    Load balance (Switch Transformer, Fedus et al. 2022, eq. 4, generalised to top-k):
    ``L = Z * sum_e f_e P_e`` with f_e the fraction of the T*k token-slot assignments that went to
    expert e (so sum_e f_e = 1, and L = 1 at perfect balance whatever k) and P_e the mean router
    probability of e over the T tokens of the last forward; gradients flow through P_e only.
    All positions of the batch count (the layer does not see the attention mask).
    """

    def __init__(
        self,
        in_features: int,
        num_experts: int,
        top_k: int,
        *,
        features: Literal["token", "spectrum"],
        generator: torch.Generator,
        dtype: torch.dtype,
    ):
        super().__init__()
        self.num_experts, self.top_k, self.features = num_experts, top_k, features
        feat = in_features if features == "token" else in_features // 2 + 1
        self.gate = nn.Linear(feat, num_experts, bias=False, dtype=dtype)
        with torch.no_grad():  # nn.Linear's own init (U(+-1/sqrt(feat))), from the layer's generator
            nn.init.kaiming_uniform_(self.gate.weight, a=math.sqrt(5), generator=generator)
        self.last_balance_loss: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: (T, d_in). Returns ``(idx, w)``, both (T, k): chosen experts and their weights."""
        phi = x if self.features == "token" else torch.fft.rfft(x, norm="ortho").abs()
        probs = torch.softmax(self.gate(phi.to(self.gate.weight.dtype)), dim=-1)  # float32/64
        top_p, idx = probs.topk(self.top_k, dim=-1)
        w = top_p / top_p.sum(-1, keepdim=True)
        counts = torch.zeros(self.num_experts, device=x.device).index_add_(
            0, idx.reshape(-1), torch.ones(idx.numel(), device=x.device)
        )
        f = counts / max(idx.numel(), 1)
        self.last_balance_loss = self.num_experts * (f * probs.mean(0)).sum()
        return idx, w.to(x.dtype)


class MoELinear(AdapterLayer):
    """Skeleton shared by both methods: ``base(x) + mixture(x, router(x))``.

    Subclasses build ``self.router`` and define :meth:`mixture`, the weighted sum of the chosen
    experts' updates (scaling included) for every token. The weighted load-balance loss of the
    last forward is :meth:`extra_losses`.
    """

    router: TopKRouter

    def __init__(self, base_layer: nn.Linear, lambda_balance: float):
        super().__init__()
        self.base_layer = base_layer
        self.out_features, self.in_features = base_layer.weight.shape
        self.lambda_balance = lambda_balance

    def mixture(self, x: torch.Tensor, idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``sum_j w[t, j] * delta_{idx[t, j]}(x[t])`` for the tokens ``x`` (T, d_in): (T, d_out)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base_layer(x)
        dtype = self.router.gate.weight.dtype
        flat = x.reshape(-1, self.in_features).to(dtype)
        update = self.mixture(flat, *self.router(flat))
        return result + update.reshape(result.shape).to(result.dtype)

    def extra_losses(self) -> dict[str, torch.Tensor]:
        loss = self.router.last_balance_loss
        if loss is None or self.lambda_balance == 0:
            return {}
        return {"moe_load_balance": self.lambda_balance * loss}


def _check_moe(method: str, num_experts: int, top_k: int, lambda_balance: float) -> None:
    if num_experts < 1:
        raise MethodConfigError(f"{method}: 'num_experts' must be >= 1, got {num_experts}")
    if not 1 <= top_k <= num_experts:
        raise MethodConfigError(f"{method}: 'top_k' must be in [1, num_experts={num_experts}], got {top_k}")
    if not (lambda_balance >= 0 and math.isfinite(lambda_balance)):
        raise MethodConfigError(f"{method}: 'lambda_balance' must be finite and >= 0, got {lambda_balance}")


# ------------------------------------------------------------------------------------------------
# FourierMoE (003)
# ------------------------------------------------------------------------------------------------
@dataclass
class FourierMoEConfig:
    """FourierMoE hyperparameters (003). Seed-given: Z experts, top-k routing, n coefficients per
    expert (Fig. 4). Everything else is our choice:

    * ``scaling`` (default 150, FourierFT's default in peft): dW_e is ``irfft2`` with torch's
      'backward' norm (1/(d_out d_in)), as FourierFT's ``ifft2``, so a comparable multiplier.
    * ``router_input`` = what the "frequency-adaptive router" G(x) sees. ``'spectrum'`` (default):
      the token's magnitude spectrum |rfft(x)| along the hidden axis, a Linear (d_in//2+1 -> Z).
      Why: 003 motivates routing by Fig. 1 (right), "spectra of hidden representations ... display
      distinct frequency energy distributions", i.e. the energy |X(f)|; a linear router on x is a
      linear, phase-sensitive function of the complex spectrum and cannot compute energy.
      ``'token'``: the plain MoE-LoRA router Linear (d_in -> Z) on x, for ablation.
    * ``locations`` = how the experts' spectral supports are drawn (all seeded, per layer):
      ``'banded'`` (default): the admissible locations sorted by radial frequency
      ``hypot(min(u, d_out-u)/d_out, v/d_in)`` are cut into Z equal contiguous bands and expert e
      draws its n locations uniformly from band e. Why the default: 003's abstract says the router
      dispatches tokens "to experts specialized in distinct frequency bands", and Fig. 1 motivates
      it by tasks whose hidden spectra put their energy in different bands; disjoint radial bands are
      the literal reading (issue 18 §5). The band edges (equal counts of locations, radius over
      normalised frequencies) are our choice; the seed gives no formula. ``'per_expert'`` (ablation,
      the default before issue 18): independent uniform draws over the whole half spectrum for every
      expert (FourierFT's random locations, one set per expert), so experts overlap in frequency and
      differ by chance; ``'shared'`` (ablation): one draw for all experts (they differ only by their
      coefficients). Banded needs n <= (admissible locations) / Z per layer.
    * ``lambda_balance``: weight of the Switch load-balancing loss (Switch's 0.01).
    * ``coefficients`` = what an expert learns at each of its n locations. ``'complex'`` (default,
      003 Fig. 2 / Thm. 3.2): a complex coefficient a + ib, i.e. amplitude and phase, 2 Z n real
      numbers per layer. ``'real'`` (the ablation of Prop. 3.1, b = 0): a real coefficient at the
      same half-spectrum locations, so every component has an amplitude but a phase of only 0 or
      pi and dW_e is an even function (dW_e[-j, -k] = dW_e[j, k]); Z n real numbers per layer.
      Both are stored as Z x n parameters, so ``num_trainable()`` (a numel) is the same for both.
    """

    num_experts: int = 8
    top_k: int = 2
    n: int = 1000
    scaling: float = 150.0
    lambda_balance: float = 0.01
    router_input: Literal["spectrum", "token"] = "spectrum"
    locations: Literal["banded", "per_expert", "shared"] = "banded"
    coefficients: Literal["complex", "real"] = "complex"

    def __post_init__(self):
        _check_moe("fourier_moe", self.num_experts, self.top_k, self.lambda_balance)
        if self.n < 1:
            raise MethodConfigError(f"fourier_moe: 'n' must be >= 1, got {self.n}")
        if not math.isfinite(self.scaling):
            raise MethodConfigError(f"fourier_moe: 'scaling' must be finite, got {self.scaling}")


def half_spectrum_columns(d_in: int) -> torch.Tensor:
    """Columns of the ``irfft2`` half spectrum whose conjugate partner lies OUTSIDE it:
    1 .. ceil(d_in/2) - 1. Column 0 and (even d_in) the Nyquist column d_in/2 are excluded: there
    the partner of (u, v) is (-u, v) in the same stored column, so a free complex coefficient is
    not conjugate-symmetric and ``irfft2`` keeps only its Hermitian part (a lone coefficient at
    (0, 0) loses its imaginary part; elsewhere in those columns it is halved)."""
    return torch.arange(1, (d_in + 1) // 2)


def expert_locations(
    shape: tuple[int, int], num_experts: int, n: int, mode: str, generator: torch.Generator, where: str
) -> torch.Tensor:
    """(Z, 2, n) long: (row u, column v) of every expert's coefficients in the half spectrum."""
    d_out, d_in = shape
    cols = half_spectrum_columns(d_in)
    avail = d_out * len(cols)
    limit = avail // num_experts if mode == "banded" else avail
    if n > limit:
        raise MethodConfigError(
            f"fourier_moe: n={n} exceeds the {limit} admissible half-spectrum locations"
            f"{' per band' if mode == 'banded' else ''} of {where} ({d_out} x {d_in}, columns 1..{len(cols)})"
        )

    def draw() -> torch.Tensor:
        loc = random_locations((d_out, len(cols)), n, generator)
        return torch.stack([loc[0], cols[loc[1]]])

    if mode == "per_expert":
        return torch.stack([draw() for _ in range(num_experts)])
    if mode == "shared":
        return draw().unsqueeze(0).repeat(num_experts, 1, 1)
    u = torch.arange(d_out).repeat_interleave(len(cols))
    v = cols.repeat(d_out)
    radius = torch.hypot(torch.minimum(u, d_out - u).double() / d_out, v.double() / d_in)
    order = torch.argsort(radius, stable=True)
    bands = order[: limit * num_experts].reshape(num_experts, limit)
    picks = [band[torch.randperm(limit, generator=generator)[:n]] for band in bands]
    return torch.stack([torch.stack([u[p], v[p]]) for p in picks])


def slot_mixture(
    spectrum: torch.Tensor, locations: torch.Tensor, coefficients: torch.Tensor, idx: torch.Tensor, w: torch.Tensor,
    d_out: int,
) -> torch.Tensor:
    """The mixed output spectrum ``Z[t, u] = sum_j w[t, j] sum_{i: u_i = u} c_i conj(X[t, v_i])`` over the
    k experts ``idx[t, j]`` chosen for every token t (expert e's coefficients c and locations (u, v)):
    (T, d_out) complex, whose unnormalised inverse DFT's real part is ``(d_out d_in / 2) sum_j w_j dW x``.

    Why this form (issue 20 §4, benchmarks/README.md): with the locations in the open half spectrum
    (:func:`half_spectrum_columns`), ``dW_e[j, k] = (2 / (d_out d_in)) Re sum_i c_i exp(2 pi i (u_i j /
    d_out + v_i k / d_in))``, so each routed token costs a gather and a scatter of n coefficients instead
    of a d_out x d_in product. All T x k slots go through ONE gather of the token spectra ``X`` (T, F) and
    ONE scatter-add into Z, with no loop over experts and no data-dependent shapes (the per-expert loop it
    replaces selected each expert's tokens with ``nonzero``, a host sync per expert per layer on a GPU).
    Cost: the (T, k n) location indices are materialised (int64, kept for the backward)."""
    t, k = idx.shape
    u, v = locations[idx].transpose(1, 2).reshape(t, 2, -1).unbind(1)  # (T, k n) each
    weighted = (coefficients[idx] * w[..., None]).reshape(t, -1)  # (T, k n)
    terms = spectrum.gather(1, v).conj() * weighted
    return terms.new_zeros(t, d_out).scatter_add_(1, u, terms)


class FourierMoELinear(MoELinear):
    """FourierMoE layer (003): ``base(x) + scaling * sum_{e in topk} w_e(x) dW_e x`` with

        dW_e = irfft2(S_e),  S_e = zero half spectrum (d_out x (d_in//2+1)) with the complex
               parameters ``coefficients[e]`` (n) at ``locations[e]`` (n distinct (u, v)),

    computed by :func:`adapters.spectral.spectral_to_dense` (``hermitian=True``). Locations are
    restricted to columns 1..ceil(d_in/2)-1 (:func:`half_spectrum_columns`), so the implied full
    spectrum is exactly ``S[u, v] = c, S[-u, -v] = conj(c)`` (Thm. 3.2's conjugate symmetry): dW_e
    is real by construction and both the real and imaginary part of every coefficient act on it
    (phase and amplitude, Prop. 3.1). Excluding column 0 and Nyquist is our choice.

    Init (our choice): coefficients are zero, so dW_e = 0 and the output equals the base model's
    at step 0 (LoRA's B = 0 convention); the router's gate starts random (seeded), so routing is
    non-degenerate from step 0; the router receives task gradients once the experts are non-zero
    (and load-balance gradients at once).

    ``coefficients='real'`` (ablation, :class:`FourierMoEConfig`): ``coefficients`` is a real
    parameter; ``spectral_to_dense`` casts it to complex (imaginary part 0) before the scatter.

    Trainable parameters per layer: gate (Z x feat, feat = d_in//2+1 for ``router_input='spectrum'``,
    d_in for ``'token'``) + ``coefficients`` (Z x n complex, or real). A complex parameter is counted
    by its numel, i.e. one per complex coefficient (2 Z n real numbers); the paper's counting
    convention is not in the seed.
    """

    mixture_kernel = staticmethod(slot_mixture)  # benchmarks/step_time.py swaps in a torch.compile'd one

    def __init__(self, base_layer: nn.Linear, cfg: FourierMoEConfig, generator: torch.Generator, name: str):
        super().__init__(base_layer, cfg.lambda_balance)
        self.scaling, self.n = cfg.scaling, cfg.n
        dtype = _adapter_dtype(base_layer)
        device = base_layer.weight.device
        shape = (self.out_features, self.in_features)
        with torch.device("cpu"):
            locations = expert_locations(shape, cfg.num_experts, cfg.n, cfg.locations, generator, name)
            router = TopKRouter(
                self.in_features, cfg.num_experts, cfg.top_k, features=cfg.router_input, generator=generator, dtype=dtype
            )
        self.router = router.to(device)
        self.register_buffer("locations", locations.to(device))
        coef_dtype = complex_dtype(dtype) if cfg.coefficients == "complex" else dtype
        self.coefficients = nn.Parameter(torch.zeros(cfg.num_experts, cfg.n, dtype=coef_dtype, device=device))

    def expert_delta(self, e: int) -> torch.Tensor:
        """dW_e (d_out x d_in), real: the definition. :meth:`mixture` applies it without building it."""
        return spectral_to_dense(
            self.coefficients[e], self.locations[e], (self.out_features, self.in_features), hermitian=True
        )

    def mixture(self, x, idx, w):
        """``scaling * sum_j w_j dW_{e_j} x`` computed in the Fourier domain, never building dW_e:
        :func:`slot_mixture` (``mixture_kernel``) then one inverse FFT per token."""
        d_out, d_in = self.out_features, self.in_features
        mixed = self.mixture_kernel(torch.fft.rfft(x), self.locations, self.coefficients, idx, w, d_out)
        return torch.fft.ifft(mixed, norm="forward").real * (2 * self.scaling / (d_out * d_in))

    def extra_repr(self) -> str:
        z, n = self.coefficients.shape
        kind = "complex" if self.coefficients.is_complex() else "real"
        return (f"experts={z}, top_k={self.router.top_k}, n={n}, coefficients={kind}, router={self.router.features}, "
                f"scaling={self.scaling:g}")


@register("fourier_moe", config=FourierMoEConfig, mergeable=False, paper="003 §3, Fig. 2, Thm. 3.2")
def apply_fourier_moe(model: nn.Module, cfg: FourierMoEConfig, target_modules: list[str], seed: int) -> nn.Module:
    replace_linear_modules(
        model,
        target_modules,
        lambda name, linear: FourierMoELinear(linear, cfg, layer_generator(seed, name), name),
    )
    return model


# ------------------------------------------------------------------------------------------------
# FRAME (002)
# ------------------------------------------------------------------------------------------------
@dataclass
class FRAMEConfig:
    """FRAME hyperparameters (002). Seed-given: MoE-LoRA experts, one learnable fractional order per
    expert in its own optimizer group, O(d log d) chirp-FFT transform. Our choices:

    * ``init_order``: ``None`` (default) starts expert e at order (e + 1/2) / Z, evenly spread over
      the open interval (0, 1) between the spatial domain (0: LoRA) and the Fourier domain (1)
      (Z = 4: 0.125, 0.375, 0.625, 0.875; Z = 1: 0.5), so the experts start at different points of
      the continuum, the property 002 credits for their decorrelation. Never 0: for real A, B, x,
      ``F_{-a} = conj(F_a)`` makes every expert's output, hence the loss, an even function of its
      order, and F_a has period 4, so at every even integer a (0, +-2, ...) d loss / d a = 0 exactly
      (odd integers are not stationary; tests/test_moe.py checks both). An expert started at 0 gets
      no gradient signal on its order, only rounding noise (measured on the tiny test model after
      one step: 1e-14 to 1e-11 at a = 0 against 1e-7 to 1e-4 for the other experts), which Adam's
      normalisation turns into moves of arbitrary sign. A float starts every order there; an even
      integer is rejected for that reason.
    * ``transform``: what F_a is. ``'chirp'`` (default; the O(d log d) surrogate of 002's
      abstract, :func:`adapters.fractional.frft`; needs even d_in and d_out) is unitary, exactly the
      identity / DFT / parity / inverse DFT at orders 0 / 1 / 2 / 3, with F_{-a} = F_a^{-1}, but
      equals the discrete fractional Fourier transform only for vectors concentrated in the centre
      of the time-frequency plane (Gaussian-enveloped, band-limited: <= 0.1 % at d = 768). On
      generic vectors it is a different operator: at d = 768 and orders in (0, 1),
      ||frft(x) - dfrft(x)|| / ||x|| is 1.26-1.38 on white noise (two unrelated unitary maps give
      ~1.41), and F_a F_b != F_{a+b}. ``'dfrft'``: the exact Candan-Kutay-Ozaktas discrete FrFT
      (:func:`adapters.fractional.dfrft`, O(d^2) per vector, any d). The run's config
      (``Adapted.resolved_hparams()``) records which one ran.
    * ``alpha``: LoRA scaling alpha / r (default 16 with r = 8, i.e. 2); ``lambda_balance`` as
      FourierMoE (Switch's 0.01). Router: plain linear on the token (MoE-LoRA's).
    """

    num_experts: int = 4
    top_k: int = 2
    r: int = 8
    alpha: float = 16.0
    init_order: float | None = None
    lambda_balance: float = 0.01
    transform: Literal["chirp", "dfrft"] = "chirp"

    def __post_init__(self):
        _check_moe("frame", self.num_experts, self.top_k, self.lambda_balance)
        if self.r < 1:
            raise MethodConfigError(f"frame: 'r' must be >= 1, got {self.r}")
        if not math.isfinite(self.alpha):
            raise MethodConfigError(f"frame: 'alpha' must be finite, got {self.alpha}")
        if self.init_order is not None and not math.isfinite(self.init_order):
            raise MethodConfigError(f"frame: 'init_order' must be finite, got {self.init_order}")
        if self.init_order is not None and self.init_order % 2 == 0:
            raise MethodConfigError(
                f"frame: 'init_order' = {self.init_order:g} is an even integer, where the loss is stationary in "
                "every order (it is even in a and 4-periodic): the orders would get zero gradient and stay "
                "there; use another value (e.g. 0.5) or null (orders spread over (0, 1))"
            )

    def initial_orders(self) -> torch.Tensor:
        """The Z starting orders (float64): see ``init_order``."""
        z = self.num_experts
        if self.init_order is None:
            return (torch.arange(z, dtype=torch.float64) + 0.5) / z
        return torch.full((z,), float(self.init_order), dtype=torch.float64)


_TRANSFORMS = {"chirp": frft, "dfrft": dfrft}


class FRAMELinear(MoELinear):
    """FRAME layer (002): ``base(x) + sum_{e in topk} w_e(x) delta_e(x)`` with

        delta_e(x) = (alpha / r) * Re( F_{-a_e} B_e A_e F_{a_e} x ),

    F_a the (discrete) fractional Fourier transform of order a along the feature axis (of length
    d_in on the right, d_out on the left), A_e (r x d_in), B_e (d_out x r) real, a_e a real scalar.
    Why this formula (ours; 002's abstract gives only the endpoints): F_0 = I gives exactly the
    LoRA expert (alpha/r) B_e A_e x; F_1 = unitary DFT gives Re(IDFT B_e A_e DFT x), a low-rank
    update acting on the token's spectrum and mapped back; F_{-a} = F_a^{-1} returns to the spatial
    domain for every a. The real part is needed because F_a is complex for non-integer a (the
    update is ``Re(.)`` of a complex operator, not real by construction as in FourierMoE).

    Computation (algebraically identical, ours): both F_a are symmetric, so per forward we
    transform the factors, not the tokens: ``A~ = A_e F_a`` (rows of A), ``B~ = F_{-a} B_e``
    (columns of B), all Z experts in one batched transform call each, and
    ``delta_e(x) = (alpha/r) (Re B~ (Re A~ x) - Im B~ (Im A~ x))``. The mixture is dense over
    experts, with no per-expert loop: every token is projected on all Z experts' 2r real
    directions (a (T, 2rZ) matmul, LoRA at rank 2rZ), the unchosen experts' projections are
    multiplied by a routing weight of exactly 0, and one (2rZ, d_out) matmul maps back.

    Init (ours, LoRA's): A_e Kaiming-uniform (U(+-1/sqrt(d_in))), B_e = 0, so the output equals the
    base model's at step 0 and d loss / d a_e = 0 until B moves. Orders: :class:`FRAMEConfig`.
    Optimizer groups: ``{'adapter': [gate, lora_A, lora_B], 'orders': [orders]}``.
    Trainable parameters per layer: Z d_in (gate) + Z r (d_in + d_out) + Z (orders).
    """

    def __init__(self, base_layer: nn.Linear, cfg: FRAMEConfig, generator: torch.Generator, name: str):
        super().__init__(base_layer, cfg.lambda_balance)
        if cfg.transform == "chirp" and (self.in_features % 2 or self.out_features % 2):
            raise MethodConfigError(
                f"frame: transform='chirp' needs even feature sizes (its F_1 is the DFT only for even d); "
                f"{name} is {self.out_features} x {self.in_features}: use transform='dfrft'"
            )
        self.transform = _TRANSFORMS[cfg.transform]
        self.transform_name = cfg.transform
        self.r, self.scaling = cfg.r, cfg.alpha / cfg.r
        z = cfg.num_experts
        dtype = _adapter_dtype(base_layer)
        device = base_layer.weight.device
        with torch.device("cpu"):
            router = TopKRouter(self.in_features, z, cfg.top_k, features="token", generator=generator, dtype=dtype)
            lora_a = torch.empty(z, cfg.r, self.in_features, dtype=dtype)
            for a in lora_a:
                nn.init.kaiming_uniform_(a, a=math.sqrt(5), generator=generator)
        self.router = router.to(device)
        self.lora_A = nn.Parameter(lora_a.to(device))
        self.lora_B = nn.Parameter(torch.zeros(z, self.out_features, cfg.r, dtype=dtype, device=device))
        self.orders = nn.Parameter(cfg.initial_orders().to(device=device, dtype=dtype))

    def expert_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(A~, B~) = (A_e F_{a_e}, F_{-a_e} B_e) of every expert, complex, (Z, r, d_in) and (Z, d_out, r)."""
        a = self.orders.view(-1, 1, 1)  # one order per expert, broadcast over its matrix
        return self.transform(self.lora_A, a, dim=-1), self.transform(self.lora_B, -a, dim=1)

    def mixture(self, x, idx, w):
        a_t, b_t = self.expert_factors()
        z, r2 = a_t.shape[0], 2 * self.r
        a_real = torch.cat([a_t.real, a_t.imag], 1).reshape(z * r2, self.in_features)  # rows (e, 2r)
        b_real = torch.cat([b_t.real, -b_t.imag], 2).transpose(1, 2).reshape(z * r2, self.out_features)
        gate = w.new_zeros(x.shape[0], z).scatter(1, idx, w * self.scaling)  # 0 for unchosen experts
        h = (x @ a_real.T).view(-1, z, r2) * gate.unsqueeze(-1)
        return h.reshape(-1, z * r2) @ b_real

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"adapter": [self.router.gate.weight, self.lora_A, self.lora_B], "orders": [self.orders]}

    def extra_repr(self) -> str:
        return (
            f"experts={self.lora_A.shape[0]}, top_k={self.router.top_k}, r={self.r}, "
            f"scaling={self.scaling:g}, transform={self.transform_name}"
        )


@register("frame", config=FRAMEConfig, mergeable=False, paper="002 (abstract)")
def apply_frame(model: nn.Module, cfg: FRAMEConfig, target_modules: list[str], seed: int) -> nn.Module:
    replace_linear_modules(
        model,
        target_modules,
        lambda name, linear: FRAMELinear(linear, cfg, layer_generator(seed, name), name),
    )
    return model
