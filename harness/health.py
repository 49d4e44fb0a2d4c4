"""Is a finished run a result? The two checks the training loop makes at its end.

* **Divergence that stays finite** (issue 19 §3). NaN/inf is caught step by step
  (``harness.train.LossGuard``); a loss that blows up and stays finite (lr 1e3: 10,404 and a
  majority-class score) is caught here by a stated rule, ``harness.run_flags.BLOWUP_RULE``: the run *diverged*
  when the mean training loss over its last ``W`` steps exceeds :data:`BLOWUP_FACTOR` times the
  mean over its first ``W`` steps, ``W`` = :func:`loss_window` (total steps / 5, between 1 and 50).
  Such a run is recorded as diverged, exactly as a NaN one is. The loop also records whether its
  reported predictions are all one class (``one_class``); the table flags that cell ``diverged``
  when another method beats the no-training baseline on the task (``harness.run_flags.flag_cells``).
* **An inert adapter** (issue 18 §2). Every run records how far training moved its adapter:
  ‖ΔW‖/‖W0‖ per adapted layer (median, max) for methods with a weight update, and for every method
  the relative change of each adapted layer's output on a fixed batch (adapter on vs off: the
  adapters library's ``Adapted.disable_adapter``, no per-method code here); in the classification
  suites also the share of evaluation predictions that change when the adapter is switched off
  (one extra pass at the end, the trained head kept). ``harness.run_flags.INERT_RULE`` says when it is inert.
  Nothing here changes a number the run reports: it runs after the last epoch, without gradients.
"""
from __future__ import annotations

import statistics

import numpy as np
import torch

from harness.run_flags import BLOWUP_FACTOR, BLOWUP_RULE, INERT_CHANGE, INERT_RULE, LOSS_WINDOW_MAX

__all__ = ["LossWindows", "adapter_effect", "blowup", "loss_window"]

FIXED_BATCH = 16  # training examples (the first, without shuffling) the output change is measured on


def loss_window(total_steps: int) -> int:
    return max(1, min(LOSS_WINDOW_MAX, total_steps // 5))


class LossWindows:
    """The first and the last ``size`` training losses, kept on the device (no host sync per step)."""

    def __init__(self, device: torch.device, size: int):
        self.size = size
        self.first = torch.zeros((), dtype=torch.float32, device=device)
        self.last = torch.zeros(size, dtype=torch.float32, device=device)
        self.steps = 0

    def record(self, value: torch.Tensor, step: int) -> None:
        """``value``: the loss of global step ``step`` (1-based)."""
        if step <= self.size:
            self.first += value
        self.last[(step - 1) % self.size] = value
        self.steps = step

    def state(self) -> dict:
        return {"first": self.first.cpu(), "last": self.last.cpu(), "steps": self.steps}

    def load(self, state: dict | None) -> None:
        if state is not None and state["last"].numel() == self.size:
            self.first.copy_(state["first"])
            self.last.copy_(state["last"])
            self.steps = state["steps"]

    def means(self) -> tuple[float, float] | None:
        """(initial, final) window means, or None before any step (a host sync)."""
        if not self.steps:
            return None
        n = min(self.steps, self.size)
        return float(self.first) / n, float(self.last[:n].mean())


def blowup(windows: LossWindows) -> dict:
    """The loss record of a run and whether it diverged by :data:`BLOWUP_RULE`."""
    means = windows.means()
    if means is None:
        return {"diverged": False}
    initial, final = means
    return {"loss_initial": initial, "loss_final": final, "window": windows.size,
            "diverged": bool(final > BLOWUP_FACTOR * max(initial, 0.0)), "rule": BLOWUP_RULE}


def _spread(values: list[float]) -> dict | None:
    return {"median": statistics.median(values), "max": max(values), "layers": len(values)} if values else None


def _first_tensor(out):
    while isinstance(out, (tuple, list)) or hasattr(out, "to_tuple"):
        out = out[0]
    return out


@torch.no_grad()
def output_changes(adapted, forward) -> list[float]:
    """‖y_on − y_off‖ / ‖y_off‖ per adapted module on one forward pass (``forward()``)."""
    modules = adapted.adapted_modules()
    outs: dict[str, list] = {name: [] for name, _ in modules}
    hooks = [m.register_forward_hook(lambda _m, _i, o, name=name: outs[name].append(_first_tensor(o).detach().float()))
             for name, m in modules]
    try:
        forward()
        with adapted.disable_adapter():
            forward()
    finally:
        for h in hooks:
            h.remove()
    return [float((on - off).norm() / off.norm().clamp_min(1e-30)) for on, off in (v for v in outs.values() if len(v) == 2)]


def adapter_effect(job, saved_on: dict | None) -> dict | None:
    """How much the adapter of a finished job matters (see the module docstring); None for a method
    that trains no adapter parameter (linear probe). ``saved_on``: the last epoch's evaluation
    arrays, when this process made them (else evaluated again)."""
    adapted, suite, task = job.adapted, job.suite, job.task
    if adapted.num_trainable() == 0:
        return None
    model = adapted.model
    was_training = model.training
    model.eval()
    try:
        items = [job.train_set[i] for i in range(min(FIXED_BATCH, len(job.train_set)))]
        batch = {k: v.to(job.device) for k, v in job.train_collate(torch.Generator().manual_seed(0))(items).items()}
        with job.autocast():
            outputs = output_changes(adapted, lambda: suite.loss(model, batch))
        weights = adapted.relative_weight_changes()
        effect = {"weight_change": _spread(weights), "output_change": _spread(outputs),
                  "predictions_changed": None, "rule": INERT_RULE}
        if saved_on is None:
            _, saved_on = job.evaluate()
        classes_on = suite.predicted_classes(task, saved_on)
        if classes_on is not None:
            with adapted.disable_adapter():
                _, saved_off = job.evaluate()
            classes_off = suite.predicted_classes(task, saved_off)
            effect["predictions_changed"] = float(np.mean(classes_on != classes_off))
            effect["inert"] = effect["predictions_changed"] == 0.0
        else:
            change = effect["weight_change"] or effect["output_change"]
            effect["inert"] = bool(change is not None and change["median"] < INERT_CHANGE)
        effect["one_class"] = bool(classes_on is not None and len(np.unique(classes_on)) == 1)
        return effect
    finally:
        model.train(was_training)
