"""The base class every adapter layer of ours derives from (the peft baselines are wrapped)."""
from __future__ import annotations

import contextlib
import hashlib

import torch
from torch import nn

from adapters.errors import MethodConfigError


class AdapterLayer(nn.Module):
    """A module the registry finds by type.

    Override what applies: ``delta_weight`` (mergeable methods: the update in the base Linear's
    weight shape), ``extra_losses`` (already weighted, from the last forward), ``param_groups``
    (named optimizer groups; default: everything trainable is 'adapter').
    Buffers registered with ``persistent=True`` are saved with the adapter weights.
    """

    base_layer: nn.Linear
    merged: bool = False

    def delta_weight(self) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} is not mergeable")

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base_layer.weight += self.delta_weight().to(self.base_layer.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base_layer.weight -= self.delta_weight().to(self.base_layer.weight.dtype)
            self.merged = False

    @contextlib.contextmanager
    def disabled(self):
        """The layer computes its base module's output only (peft's ``disable_adapter``, one layer):
        what the model does without this adapter, the trained head and every other weight kept."""
        self.forward = self.base_layer.forward  # an instance attribute shadows the class's forward
        try:
            yield self
        finally:
            del self.forward

    def extra_losses(self) -> dict[str, torch.Tensor]:
        return {}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"adapter": [p for p in self.parameters() if p.requires_grad]}


def layer_generator(seed: int, layer_name: str) -> torch.Generator:
    """The CPU generator a layer draws its random choices from: a function of the run ``seed`` and
    the layer's dotted name (stable across processes, unlike ``hash``), so the same seed gives the
    same adapter and distinct layers get unrelated streams. The global RNG is never touched."""
    digest = hashlib.sha256(f"{seed}/{layer_name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def replace_linear_modules(model: nn.Module, target_modules: list[str], make) -> int:
    """Replace each ``nn.Linear`` whose dotted name ends with a target by ``make(name, linear)``.

    Returns how many were replaced; raises if none matched, naming the targets.
    """
    hits = [
        (name, mod)
        for name, mod in model.named_modules()
        if isinstance(mod, nn.Linear) and any(name == t or name.endswith("." + t) for t in target_modules)
    ]
    if not hits:
        raise MethodConfigError(f"target_modules {target_modules} match no nn.Linear of the model")
    for name, linear in hits:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, make(name, linear))
    return len(hits)
