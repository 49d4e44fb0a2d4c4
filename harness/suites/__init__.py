"""The suites: one module per kind of experiment (see :mod:`harness.suites.base` for the seam).

  glue      text classification: GLUE (hub) and the mini text tasks      glue/
  vision    image classification: the ViT datasets (hub) and mini images   vision/
  instruct  instruction tuning scored by generation (LLM-Adapters)         instruct/

A suite module is imported only when a config names it (each pulls its own libraries).
"""
from __future__ import annotations

import importlib
from functools import cache

from harness.suites.base import DataError, Suite, TaskSpec

__all__ = ["SUITES", "DataError", "Suite", "TaskSpec", "get_suite", "get_task"]

# suite name -> "module:class"
SUITES = {
    "glue": "harness.suites.glue.suite:GlueSuite",
    "vision": "harness.suites.vision.suite:VisionSuite",
    "instruct": "harness.suites.instruct.suite:InstructSuite",
}


@cache
def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise DataError(f"unknown suite {name!r}; allowed: {', '.join(SUITES)}")
    module, _, cls = SUITES[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def get_task(suite: str, task: str) -> TaskSpec:
    """The spec of ``task`` in ``suite``; an unknown task raises DataError naming the allowed ones."""
    return get_suite(suite).task(task)
