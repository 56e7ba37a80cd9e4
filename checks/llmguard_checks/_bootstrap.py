"""Bootstrap intervals for metrics written over resampling weights.

A bootstrap resample of ``n`` rows is the same thing as integer weights ``w`` (how often
each row was drawn). Writing a metric as a function of ``W`` (``B × n`` weights) lets
one matrix product compute it for a whole batch of resamples, and a paired comparison
(candidate vs baseline) uses the very same ``W`` for both. The resampling itself and the
interval are scipy's (:func:`scipy.stats.bootstrap`); we only supply a vectorised
statistic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

WeightedStatistic = Callable[[np.ndarray], np.ndarray]
"""``W (B × n) → values (k × B)``: k metrics for each of B weightings."""

_MAX_CELLS = 8_000_000  # B × n floats per batch (~64 MB)


def weights_from_indices(idx: np.ndarray, n: int) -> np.ndarray:
    """``(B × n)`` resampled row indices → ``(B × n)`` counts of each row."""
    idx = np.asarray(idx, dtype=np.int64)
    if idx.ndim == 1:
        idx = idx[None, :]
    b = idx.shape[0]
    flat = (idx + (np.arange(b, dtype=np.int64) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


@dataclass(frozen=True)
class Interval:
    low: np.ndarray
    high: np.ndarray
    confidence: float
    method: str
    n_resamples: int


def bootstrap_weighted(
    statistic: WeightedStatistic,
    n: int,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    method: str = "percentile",
) -> Interval:
    """Intervals of every output of ``statistic`` by scipy's bootstrap over the n rows."""
    from scipy import stats  # imported here: plugin modules load on every CLI call

    rows = np.arange(n)

    def stat(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.moveaxis(np.asarray(idx), axis, -1)
        lead = idx.shape[:-1]
        w = weights_from_indices(idx.reshape(-1, n), n)
        values = statistic(w)  # (k, B)
        return values.reshape(values.shape[0], *lead)

    batch = max(1, min(n_resamples, _MAX_CELLS // max(n, 1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        res = stats.bootstrap(
            (rows,),
            stat,
            vectorized=True,
            paired=False,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method=method,
            batch=batch,
            random_state=np.random.default_rng(seed),
        )
    low = np.atleast_1d(np.asarray(res.confidence_interval.low, dtype=float))
    high = np.atleast_1d(np.asarray(res.confidence_interval.high, dtype=float))
    return Interval(low, high, confidence, f"bootstrap-{method}", n_resamples)
