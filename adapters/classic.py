"""The classical fine-tuning baselines (004 §4, "Baselines"): BitFit, full fine-tuning, linear
probing. None of them adds a module or uses ``target_modules``; they only choose which of the
model's own parameters train. The registry unfreezes the head afterwards and leaves it out of
the counts (so BitFit on RoBERTa-base counts the ~0.1M non-head biases of FoRA Table 1)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from adapters.catalog import register


@dataclass
class BitFitConfig:
    """BitFit (Zaken et al. 2021): every bias vector of the model trains, nothing else."""


@dataclass
class FullFTConfig:
    """Full fine-tuning (FF): every parameter trains."""


@dataclass
class LinearProbeConfig:
    """Linear probing (LP, 004 Table 4): only the classification head trains."""


@register(
    "bitfit", config=BitFitConfig, mergeable=False, paper="004 §4 baselines (Zaken et al. 2021)", needs_targets=False
)
def apply_bitfit(model: nn.Module, cfg: BitFitConfig, target_modules, seed):
    # The biases are the change itself: there is no separate update to merge.
    for name, p in model.named_parameters():
        if name.rpartition(".")[2] == "bias":
            p.requires_grad_(True)
    return model


@register("full_ft", config=FullFTConfig, mergeable=False, paper="004 §4 baselines (FF)", needs_targets=False)
def apply_full_ft(model: nn.Module, cfg: FullFTConfig, target_modules, seed):
    for p in model.parameters():
        p.requires_grad_(True)
    return model


@register("linear_probe", config=LinearProbeConfig, mergeable=False, paper="004 Table 4 (LP)", needs_targets=False)
def apply_linear_probe(model: nn.Module, cfg: LinearProbeConfig, target_modules, seed):
    return model  # the registry unfreezes the head; everything else stays frozen
