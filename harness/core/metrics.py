"""Task metrics on the 0-100 scale the papers print (Acc. 94.2, MCC 63.8, PCC 90.8).

Computed with scikit-learn and scipy, not the `evaluate` package: `evaluate.load(...)`
fetches its metric scripts from the hub and fails offline.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "METRIC_NAMES",
    "baseline_metric",
    "baseline_summary",
    "compute_metric",
    "predictions_from_logits",
]

METRIC_NAMES = {"accuracy": "Acc.", "matthews": "MCC", "pearson": "PCC"}


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def _check_metric(metric: str) -> None:
    if metric not in METRIC_NAMES:
        raise ValueError(f"unknown metric {metric!r}: use one of {sorted(METRIC_NAMES)}")


def compute_metric(metric: str, predictions: Any, labels: Any) -> float:
    """Score `predictions` against `labels`; returns a float on the 0-100 scale.

    accuracy: 100 * fraction correct. matthews: 100 * MCC (sklearn gives 0 when it is undefined,
    e.g. a constant prediction). pearson: 100 * Pearson r; when either vector is constant r is
    undefined (0/0) and we return 0.0, the value a constant predictor deserves (no linear signal).
    """
    _check_metric(metric)
    pred, gold = _as_numpy(predictions).reshape(-1), _as_numpy(labels).reshape(-1)
    if pred.shape != gold.shape:
        raise ValueError(
            f"compute_metric: {pred.size} predictions for {gold.size} labels; pass one prediction per example"
        )
    if pred.size == 0:
        raise ValueError("compute_metric: no examples to score (empty evaluation set)")
    if metric == "accuracy":
        from sklearn.metrics import accuracy_score

        return float(100.0 * accuracy_score(gold, pred))
    if metric == "matthews":
        from sklearn.metrics import matthews_corrcoef

        return float(100.0 * matthews_corrcoef(gold, pred))
    pred, gold = pred.astype(np.float64), gold.astype(np.float64)
    if not (np.isfinite(pred).all() and np.isfinite(gold).all()):
        raise ValueError(
            "compute_metric: predictions or labels contain NaN/inf (the model diverged: lower the learning rate)"
        )
    if pred.size < 2 or np.ptp(pred) == 0.0 or np.ptp(gold) == 0.0:
        return 0.0
    from scipy.stats import pearsonr

    return float(100.0 * pearsonr(pred, gold)[0])


def predictions_from_logits(logits: Any, num_labels: int) -> np.ndarray:
    """Class ids (argmax over the last axis) or, for regression (num_labels=1), the scores squeezed to 1-D."""
    arr = _as_numpy(logits)
    if num_labels == 1:
        if arr.ndim == 2 and arr.shape[1] != 1:
            raise ValueError(f"predictions_from_logits: regression expects logits of shape (n, 1), got {arr.shape}")
        return arr.reshape(-1).astype(np.float32)
    if arr.ndim != 2 or arr.shape[1] != num_labels:
        raise ValueError(f"predictions_from_logits: expected logits of shape (n, {num_labels}), got {arr.shape}")
    return arr.argmax(axis=-1).astype(np.int64)


def baseline_summary(metric: str, train_labels: Any, eval_labels: Any) -> dict:
    """The trivial predictor fitted on TRAIN and scored on eval, with how it was made.

    Classification: always predict the most frequent train class (ties: the smallest id).
    Regression: always predict the train mean; Pearson is 0 by definition, the MSE says more.
    """
    _check_metric(metric)
    train, gold = _as_numpy(train_labels).reshape(-1), _as_numpy(eval_labels).reshape(-1)
    if train.size == 0 or gold.size == 0:
        raise ValueError("baseline: train and eval labels must both be non-empty")
    if metric == "pearson":
        mean = float(train.astype(np.float64).mean())
        mse = float(np.mean((gold.astype(np.float64) - mean) ** 2))
        return {"rule": "constant train mean", "value": 0.0, "prediction": mean, "mse": mse}
    values, counts = np.unique(train, return_counts=True)
    majority = values[int(np.argmax(counts))]
    value = compute_metric(metric, np.full(gold.shape, majority), gold)
    return {"rule": "majority class of train", "value": value, "prediction": majority.item()}


def baseline_metric(metric: str, train_labels: Any, eval_labels: Any) -> float:
    """Metric of the majority-class (classification) or constant-mean (regression, = 0.0) predictor."""
    return baseline_summary(metric, train_labels, eval_labels)["value"]
