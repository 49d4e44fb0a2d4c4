"""One registry for every fine-tuning method of the benchmark.

A method is a config dataclass (its hyperparameters, validated here) plus an ``apply`` function
that adapts a ``transformers`` model in place (or wraps it, for the ``peft`` baselines) and
returns the module to call. ``apply_method`` is the single entry point the harness uses; it
returns an :class:`Adapted` handle that answers the questions every table needs: trainable
parameters, merge/unmerge, extra losses, optimizer groups, and adapter-only save/load.

The methods live in :data:`adapters.catalog.REGISTRY`, filled by the families' ``@register`` when
this module imports :mod:`adapters.families`; ``MethodConfigError`` and ``register`` are
re-exported here for callers (``from adapters.registry import MethodConfigError, register``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from adapters import families  # noqa: F401  (importing the families runs their @register)
from adapters.base import AdapterLayer
from adapters.catalog import REGISTRY, Method, register
from adapters.errors import MethodConfigError
from adapters.io import load_tensors, save_tensors

__all__ = [
    "REGISTRY", "Adapted", "Method", "MethodConfigError", "apply_method", "available_methods",
    "build_config", "get_method", "register",
]


def available_methods() -> list[str]:
    return sorted(REGISTRY)


def get_method(name: str) -> Method:
    if name not in REGISTRY:
        raise MethodConfigError(f"unknown method {name!r}; allowed: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def _type_ok(value, annotation) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(annotation) or (typing.Any,)
        return isinstance(value, (list, tuple)) and all(_type_ok(v, inner) for v in value)
    if annotation is typing.Any:
        return True
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _describe(annotation) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def build_config(method: str, hparams: dict | None):
    """Validate ``hparams`` against the method's config dataclass and return the config.

    Unknown keys, missing required keys and wrong types each raise one MethodConfigError that
    names the method, the key and what is allowed. Value checks live in the config's
    ``__post_init__`` and raise MethodConfigError too.
    """
    spec = get_method(method)
    hparams = dict(hparams or {})
    fields = {f.name: f for f in dataclasses.fields(spec.config_cls)}
    hints = typing.get_type_hints(spec.config_cls)
    unknown = sorted(set(hparams) - set(fields))
    if unknown:
        raise MethodConfigError(
            f"{method}: unknown hyperparameter {unknown[0]!r}; allowed: {', '.join(fields) or '(none)'}"
        )
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in hparams:
            raise MethodConfigError(f"{method}: missing hyperparameter {name!r} ({_describe(hints[name])})")
        if name in hparams and not _type_ok(hparams[name], hints[name]):
            v = hparams[name]
            raise MethodConfigError(
                f"{method}: hyperparameter {name!r} must be {_describe(hints[name])}, "
                f"got {type(v).__name__} {v!r}"
            )
    try:
        return spec.config_cls(**hparams)
    except MethodConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise MethodConfigError(f"{method}: {e}") from e


def _module_params(model: nn.Module, names: Iterable[str]) -> list[nn.Parameter]:
    """Parameters of every submodule whose dotted name ends with one of ``names``."""
    out, seen = [], set()
    for mod_name, mod in model.named_modules():
        if any(mod_name == n or mod_name.endswith("." + n) for n in names):
            for p in mod.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
    return out


@dataclass
class Adapted:
    """The adapted model and everything the harness asks of a method."""

    model: nn.Module
    method: str
    config: object
    mergeable: bool
    head_params: list[nn.Parameter] = field(default_factory=list)
    _merged: bool = False
    _initial: dict = field(default_factory=dict)  # starting values for disable_adapter (BitFit, full FT)

    def resolved_hparams(self) -> dict:
        """Every hyperparameter the run used, defaults included (e.g. FRAME's ``transform``),
        for a table or ``train.json`` to record."""
        return dataclasses.asdict(self.config)

    # --- parameters -------------------------------------------------------------------------
    def trainable_parameters(self, include_head: bool = False) -> list[tuple[str, nn.Parameter]]:
        head = {id(p) for p in self.head_params}
        return [
            (n, p)
            for n, p in self.model.named_parameters()
            if p.requires_grad and (include_head or id(p) not in head)
        ]

    def num_trainable(self, include_head: bool = False) -> int:
        """Trainable parameter count; the papers' tables exclude the classification head."""
        return sum(p.numel() for _, p in self.trainable_parameters(include_head))

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named optimizer groups: 'head', 'adapter' and any a method adds (FRAME: 'orders')."""
        head = {id(p) for p in self.head_params}
        groups: dict[str, list[nn.Parameter]] = {"head": [p for p in self.head_params if p.requires_grad]}
        claimed = set(head)
        for layer in self.adapter_layers():
            for name, params in layer.param_groups().items():
                for p in params:
                    if p.requires_grad and id(p) not in claimed:
                        claimed.add(id(p))
                        groups.setdefault(name, []).append(p)
        rest = [p for _, p in self.model.named_parameters() if p.requires_grad and id(p) not in claimed]
        groups.setdefault("adapter", []).extend(rest)
        return {k: v for k, v in groups.items() if v}

    # --- layers, losses, merge -----------------------------------------------------------------
    def adapter_layers(self) -> list[AdapterLayer]:
        return [m for m in self.model.modules() if isinstance(m, AdapterLayer)]

    def extra_losses(self) -> dict[str, torch.Tensor]:
        """Weighted auxiliary losses of the last forward pass (FAA gates, MoE load balance)."""
        out: dict[str, torch.Tensor] = {}
        for layer in self.adapter_layers():
            for name, value in layer.extra_losses().items():
                out[name] = out[name] + value if name in out else value
        return out

    def merge(self) -> None:
        if not self.mergeable:
            raise MethodConfigError(f"{self.method}: cannot be merged into the base weights")
        if self._merged:
            return
        if hasattr(self.model, "merge_adapter"):  # peft
            self.model.merge_adapter()
        for layer in self.adapter_layers():
            layer.merge()
        self._merged = True

    def unmerge(self) -> None:
        if not self._merged:
            return
        if hasattr(self.model, "unmerge_adapter"):
            self.model.unmerge_adapter()
        for layer in self.adapter_layers():
            layer.unmerge()
        self._merged = False

    # --- the adapter switched off, and how far training moved it -----------------------------
    def _is_peft(self) -> bool:
        return type(self.model).__module__.startswith("peft.")

    def _no_layers(self) -> bool:
        """A method with neither our layers nor peft's (BitFit, full fine-tuning): its trained
        parameters are the change itself."""
        return not self._is_peft() and not self.adapter_layers()

    def adapted_modules(self) -> list[tuple[str, nn.Module]]:
        """The modules the method changes: our AdapterLayers, peft's tuner layers (they have a
        base layer and a delta weight), else the modules owning a trained non-head parameter."""
        named = list(self.model.named_modules())
        ours = [(n, m) for n, m in named if isinstance(m, AdapterLayer)]
        if ours:
            return ours
        if self._is_peft():
            return [(n, m) for n, m in named if hasattr(m, "get_delta_weight") and hasattr(m, "get_base_layer")]
        head = {id(p) for p in self.head_params}
        return [(n, m) for n, m in named
                if any(p.requires_grad and id(p) not in head for p in m.parameters(recurse=False))]

    def relative_weight_changes(self) -> list[float]:
        """‖ΔW‖/‖W0‖ per adapted layer that has a weight update (our ``delta_weight``, peft's
        ``get_delta_weight``); empty for methods without one (bottleneck adapters, FAA, BitFit)."""
        out = []
        with torch.no_grad():
            for _, m in self.adapted_modules():
                try:
                    if isinstance(m, AdapterLayer):
                        delta, base = m.delta_weight(), m.base_layer.weight
                    else:
                        delta, base = m.get_delta_weight(m.active_adapters[0]), m.get_base_layer().weight
                except (NotImplementedError, AttributeError):
                    continue
                out.append(float(delta.float().norm() / base.float().norm().clamp_min(1e-30)))
        return out

    def remember_initial(self) -> None:
        """Keep (on the CPU) the starting values of the trained non-head parameters of a method
        without layers, for :meth:`disable_adapter`. A weightless (meta) model, as the parameter
        audit builds, has no values to keep."""
        if self._no_layers():
            head = {id(p) for p in self.head_params}
            self._initial = {n: p.detach().cpu().clone() for n, p in self.model.named_parameters()
                             if p.requires_grad and id(p) not in head and not p.is_meta}

    @contextlib.contextmanager
    def disable_adapter(self):
        """The model without its adapter, the trained head kept (peft's ``disable_adapter`` for
        every method): our layers compute their base module only, peft models use their own
        ``disable_adapter``, and a method without layers (BitFit, full fine-tuning) gets its
        trained non-head parameters back at their starting values for the duration."""
        if self._is_peft():
            with self.model.disable_adapter():
                yield
            return
        if not self._no_layers():
            with contextlib.ExitStack() as stack:
                for layer in self.adapter_layers():
                    stack.enter_context(layer.disabled())
                yield
            return
        own = dict(self.model.named_parameters())
        with torch.no_grad():
            trained = {n: own[n].detach().clone() for n in self._initial}
            for n, value in self._initial.items():
                own[n].copy_(value)
        try:
            yield
        finally:
            with torch.no_grad():
                for n, value in trained.items():
                    own[n].copy_(value)

    # --- save / load ---------------------------------------------------------------------------
    def adapter_state_dict(self, include_head: bool = True) -> dict[str, torch.Tensor]:
        """Trainable tensors plus the buffers that define an adapter (locations, masks, RFF)."""
        state = {n: p.detach() for n, p in self.trainable_parameters(include_head)}
        for mod_name, layer in self.model.named_modules():
            if isinstance(layer, AdapterLayer):
                for b_name, buf in layer.named_buffers(recurse=False):
                    state[f"{mod_name}.{b_name}"] = buf
        return state

    def save(self, path: str | Path, metadata: dict[str, str] | None = None) -> None:
        save_tensors(self.adapter_state_dict(), path, metadata=metadata)

    def load(self, path: str | Path) -> None:
        tensors = load_tensors(path)
        own = dict(self.model.named_parameters()) | dict(self.model.named_buffers())
        missing = sorted(set(self.adapter_state_dict()) - set(tensors))
        unexpected = sorted(set(tensors) - set(own))
        if missing or unexpected:
            raise MethodConfigError(
                f"{self.method}: adapter file {path} does not match the model "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        with torch.no_grad():
            for name, value in tensors.items():
                own[name].copy_(value)


def apply_method(
    model: nn.Module,
    method: str,
    hparams: dict | None = None,
    *,
    target_modules: list[str] | None = None,
    head_modules: Iterable[str] = ("classifier",),
    seed: int = 0,
) -> Adapted:
    """Apply ``method`` with ``hparams`` to ``model``'s ``target_modules``.

    Afterwards exactly the method's parameters and the head (``head_modules``, trained in all
    the papers' classification setups) require grad. ``seed`` fixes every random choice the
    method makes (spectral locations, random projections, masks).
    """
    spec = get_method(method)
    cfg = build_config(method, hparams)
    if spec.needs_targets and not target_modules:
        raise MethodConfigError(f"{method}: target_modules must name at least one module (e.g. query, value)")
    head_modules = list(head_modules)
    head = _module_params(model, head_modules)
    if head_modules and not head:
        raise MethodConfigError(f"head_modules {head_modules} match no module of the model")
    for p in model.parameters():
        p.requires_grad_(False)
    adapted_model = spec.apply(model, cfg, list(target_modules or []), seed)
    for p in head:
        p.requires_grad_(True)
    adapted = Adapted(adapted_model, method, cfg, spec.mergeable, head)
    adapted.remember_initial()
    if adapted.num_trainable() == 0 and method != "linear_probe":
        raise MethodConfigError(f"{method}: no trainable parameter after applying to {target_modules}")
    return adapted
