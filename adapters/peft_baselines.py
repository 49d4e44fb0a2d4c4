"""The low-rank and spectral baselines of every table, wrapped from HF ``peft`` (not reimplemented).

``lora`` (Hu et al. 2021; 004 eq. 1), ``dora`` (Liu et al. 2024; 004 §4.2), ``vera`` (Kopiczko et
al. 2023; 004 §4.5) and ``fourierft`` (Gao et al. 2024; the common baseline of all five papers).

Each ``apply`` returns the ``PeftModel``. Notes on the wrapping:

* no ``task_type`` and ``modules_to_save=None``: peft neither copies nor trains the head; the
  registry unfreezes the original head parameters (by identity) after ``apply``;
* ``bias="none"``: only the adapter tensors require grad after ``get_peft_model``;
* peft initialises LoRA's A (Kaiming) and FourierFT's spectrum (Gaussian) from the *global* RNG.
  We run ``get_peft_model`` inside ``torch.random.fork_rng`` seeded from ``seed``, so the same
  seed gives the same adapter and the caller's global RNG stream is left untouched;
* parameter names gain the prefix ``base_model.model.``; ``Adapted.save/load`` use the
  ``PeftModel``'s own names on both sides, so files round-trip between identical applies.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from adapters.catalog import register
from adapters.errors import MethodConfigError


def _positive(method: str, **values) -> None:
    for key, value in values.items():
        if value is not None and value <= 0:
            raise MethodConfigError(f"{method}: {key!r} must be > 0, got {value}")


def _dropout_ok(method: str, p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise MethodConfigError(f"{method}: 'dropout' must be in [0, 1), got {p}")


def _wrap(method: str, model: nn.Module, peft_config, seed: int) -> nn.Module:
    """``get_peft_model`` with every global-RNG draw it makes fixed by ``seed``; peft's own
    ValueErrors (targets not found, n_frequency too large) become MethodConfigErrors."""
    import peft  # here, not at import time: validating a config must not pay for importing peft (seconds)

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(seed)
        # peft 0.21 still calls a transformers-5 deprecated helper; the warning is not ours to fix
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        try:
            return peft.get_peft_model(model, peft_config)
        except ValueError as e:
            raise MethodConfigError(f"{method}: {e}") from e


# --- LoRA / DoRA ------------------------------------------------------------------------------
@dataclass
class LoRAConfig:
    """LoRA (004 eq. 1): ``W0 + (alpha / r) B A``, A Kaiming-uniform, B zero.

    ``alpha=None`` means ``alpha = 2 r`` (scaling 2: the alpha=64, r=32 of FoRA Table 8, which
    follows DoRA's recipe); the GLUE configs state alpha explicitly (LoRA's alpha = r = 8).
    """

    r: int
    alpha: float | None = None
    dropout: float = 0.0

    _method = "lora"  # class attribute (not a field): names the method in error messages

    def __post_init__(self):
        _positive(self._method, r=self.r, alpha=self.alpha)
        _dropout_ok(self._method, self.dropout)

    @property
    def lora_alpha(self) -> float:
        return float(2 * self.r if self.alpha is None else self.alpha)


@dataclass
class DoRAConfig(LoRAConfig):
    """DoRA (Liu et al. 2024; 004 §4.2): magnitude per output row times the LoRA-updated
    direction, ``m (W0 + dW) / ||W0 + dW||_c`` with the norm detached (DoRA §4.3)."""

    _method = "dora"


def _lora_like(model, cfg: LoRAConfig, target_modules, seed, use_dora: bool):
    import peft

    config = peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(target_modules),
        bias="none",
        use_dora=use_dora,
        modules_to_save=None,
    )
    return _wrap(cfg._method, model, config, seed)


@register("lora", config=LoRAConfig, mergeable=True, paper="004 §3.1, eq. 1 (Hu et al. 2021)")
def apply_lora(model, cfg: LoRAConfig, target_modules, seed):
    return _lora_like(model, cfg, target_modules, seed, use_dora=False)


@register("dora", config=DoRAConfig, mergeable=True, paper="004 §4.2 (Liu et al. 2024)")
def apply_dora(model, cfg: DoRAConfig, target_modules, seed):
    return _lora_like(model, cfg, target_modules, seed, use_dora=True)


# --- VeRA -------------------------------------------------------------------------------------
@dataclass
class VeRAConfig:
    """VeRA (004 §4.5): frozen random A (r x d_in), B (d_out x r) shared by all layers; trains
    the scaling vectors ``lambda_d`` (r, init ``d_initial``) and ``lambda_b`` (d_out, init 0).
    The projections come from ``projection_prng_key = seed``."""

    r: int
    d_initial: float = 0.1
    dropout: float = 0.0

    def __post_init__(self):
        _positive("vera", r=self.r)
        _dropout_ok("vera", self.dropout)


@register("vera", config=VeRAConfig, mergeable=True, paper="004 §4.5 (Kopiczko et al. 2023)")
def apply_vera(model, cfg: VeRAConfig, target_modules, seed):
    import peft

    config = peft.VeraConfig(
        r=cfg.r,
        target_modules=list(target_modules),
        projection_prng_key=seed,
        save_projection=True,
        vera_dropout=cfg.dropout,
        d_initial=cfg.d_initial,
        bias="none",
        modules_to_save=None,
    )
    return _wrap("vera", model, config, seed)


# --- FourierFT --------------------------------------------------------------------------------
@dataclass
class FourierFTMethodConfig:
    """FourierFT (Gao et al. 2024): ``dW = scaling * Re(ifft2(F))`` with ``n_frequency`` learnable
    real spectral entries at locations shared by all layers (``random_loc_seed = seed``) and a
    Gaussian-initialised spectrum (peft ``init_weights=False``, FourierFT's default), so the output
    already differs from the base model at step 0."""

    n_frequency: int
    scaling: float = 150.0

    def __post_init__(self):
        _positive("fourierft", n_frequency=self.n_frequency, scaling=self.scaling)


@register("fourierft", config=FourierFTMethodConfig, mergeable=True, paper="Gao et al. 2024 (2405.03003)")
def apply_fourierft(model, cfg: FourierFTMethodConfig, target_modules, seed):
    import peft

    config = peft.FourierFTConfig(
        n_frequency=cfg.n_frequency,
        scaling=cfg.scaling,
        random_loc_seed=seed,
        target_modules=list(target_modules),
        bias="none",
        modules_to_save=None,
        init_weights=False,
    )
    return _wrap("fourierft", model, config, seed)
