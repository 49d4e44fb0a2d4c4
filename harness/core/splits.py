"""Seeded, stratified splits: the validation hold-out of tasks without one, and the strata of
regression tasks (rating quantiles). Every suite and the preparation stage use these."""
from __future__ import annotations

import numpy as np

__all__ = ["N_QUANTILE_BINS", "VALIDATION_FRACTION", "quantile_bins", "stratified_split"]

VALIDATION_FRACTION = 0.1  # tasks without a validation split: share of each stratum held out
N_QUANTILE_BINS = 5  # regression: strata are rating quintiles


def quantile_bins(y: np.ndarray, n_bins: int = N_QUANTILE_BINS) -> np.ndarray:
    """Stratum id per value: which quantile bin it falls in (regression stratification)."""
    edges = np.quantile(np.asarray(y, dtype=np.float64), np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.searchsorted(edges, y, side="right")


def stratified_split(strata: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out round(fraction * size) of every stratum, chosen by a seeded permutation; indices sorted."""
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        held.append(rng.permutation(idx)[: round(fraction * idx.size)])
    val = np.sort(np.concatenate(held))
    train = np.setdiff1d(np.arange(strata.size), val)
    return train, val
