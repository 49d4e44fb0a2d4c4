"""Metrics against values computed by hand, on the 0-100 scale the papers print."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.core.metrics import METRIC_NAMES, baseline_metric, baseline_summary, compute_metric, predictions_from_logits


def test_accuracy_by_hand():
    assert compute_metric("accuracy", [1, 0, 1, 1], [1, 0, 0, 1]) == pytest.approx(75.0)


def test_matthews_by_hand():
    # TP=3 FN=1 FP=1 TN=2: MCC = (3*2 - 1*1) / sqrt((3+1)(3+1)(2+1)(2+1)) = 5/12
    labels = [1, 1, 1, 1, 0, 0, 0]
    preds = [1, 1, 1, 0, 1, 0, 0]
    assert compute_metric("matthews", preds, labels) == pytest.approx(100 * 5 / 12)


def test_pearson_by_formula():
    x, y = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 5.0, 9.0]
    # deviations dx = -1.5 -0.5 0.5 1.5, dy = -3 -1 0 4: sum dx*dy = 11, sum dx^2 = 5, sum dy^2 = 26
    assert compute_metric("pearson", x, y) == pytest.approx(100 * 11 / math.sqrt(5 * 26))


def test_constant_predictions_score_zero():
    assert compute_metric("pearson", [2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == 0.0
    assert compute_metric("matthews", [1, 1, 1, 1], [0, 1, 0, 1]) == 0.0


def test_torch_inputs_and_errors():
    assert compute_metric("accuracy", torch.tensor([1, 0]), torch.tensor([1, 1])) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="2 predictions for 3 labels"):
        compute_metric("accuracy", [1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="unknown metric 'f2'"):
        compute_metric("f2", [1], [1])
    with pytest.raises(ValueError, match="diverged"):
        compute_metric("pearson", [1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="empty"):
        compute_metric("accuracy", [], [])


def test_predictions_from_logits():
    logits = np.array([[0.1, 2.0], [3.0, -1.0], [0.0, 0.5]])
    assert predictions_from_logits(logits, 2).tolist() == [1, 0, 1]
    assert predictions_from_logits(torch.tensor([[0.5], [-1.0]]), 1).tolist() == pytest.approx([0.5, -1.0])
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        predictions_from_logits(logits, 3)


def test_baselines():
    # majority class of TRAIN (0) applied to eval [0, 1, 1, 1] -> 1 of 4 right
    assert baseline_metric("accuracy", [0, 0, 1], [0, 1, 1, 1]) == pytest.approx(25.0)
    assert baseline_metric("matthews", [0, 0, 1], [0, 1, 1, 1]) == 0.0
    summary = baseline_summary("pearson", [1.0, 2.0, 3.0], [1.0, 3.0])
    assert summary["value"] == 0.0 and summary["prediction"] == pytest.approx(2.0)
    assert summary["mse"] == pytest.approx(1.0)  # ((1-2)^2 + (3-2)^2) / 2


def test_metric_names():
    assert METRIC_NAMES == {"accuracy": "Acc.", "matthews": "MCC", "pearson": "PCC"}
