"""The method catalog: each family module's ``@register`` adds its method to ``REGISTRY``.

It imports nothing of ``adapters``, so the families import ``register`` at module top;
:mod:`adapters.registry` imports the families (which fills ``REGISTRY``) and serves it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn


@dataclass(frozen=True)
class Method:
    name: str
    config_cls: type
    apply: Callable[..., nn.Module]  # (model, cfg, target_modules, seed) -> model to call
    mergeable: bool
    paper: str  # where the method is defined, e.g. "004 §3.2, eq. 2-4"
    needs_targets: bool = True  # False for methods that ignore target_modules (BitFit, FF, LP)


REGISTRY: dict[str, Method] = {}


def register(name: str, *, config: type, mergeable: bool, paper: str, needs_targets: bool = True):
    """Decorator: ``@register("fora", config=FoRAConfig, mergeable=True, paper="004 §3.2")``."""

    def wrap(apply_fn):
        if name in REGISTRY:
            raise RuntimeError(f"method {name!r} registered twice")
        REGISTRY[name] = Method(name, config, apply_fn, mergeable, paper, needs_targets)
        return apply_fn

    return wrap
