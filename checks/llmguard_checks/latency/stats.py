"""Percentiles of per-request latency samples with distribution-free confidence bounds.

**Bounds from order statistics.** For ``n`` independent samples and the ``q``-quantile
``ξ`` of their distribution, the number ``B`` of samples below ``ξ`` is Binomial(n, q).
The ``k``-th smallest sample ``X(k)`` lies above ``ξ`` exactly when ``B ≤ k − 1``, so
``P(X(k) ≥ ξ) = binom.cdf(k − 1, n, q)`` whatever the latency distribution. The upper
bound at one-sided level ``γ`` is ``X(k)`` for the smallest ``k`` with that probability
``≥ γ``; the lower bound is symmetric. An interval at level ``c`` is equal-tailed: each
end is a one-sided bound at ``γ = (1 + c) / 2``.

**Too few samples.** A bound that needs the sample maximum rests on a single request and
says nothing about the tail, so the rule (MLPerf LoadGen's early-stopping minimum with
one over-latency query allowed) is: the upper bound must be at most the *second largest*
sample, i.e. ``binom.cdf(n − 2, n, q) ≥ γ``. :func:`min_samples` returns the smallest such
``n``; at ``γ = 0.99`` it gives 64 for p90, 662 for p99 and 6636 for p99.9, LoadGen's
numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import stats

PERCENTILES: dict[str, float] = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0}
"""Metric name → percentile (contract names of DESIGN.md)."""

ORDER_STATISTIC = "order-statistic (binomial, distribution-free)"


def one_sided(confidence: float) -> float:
    """One-sided level of each end of an equal-tailed interval at ``confidence``."""
    return (1.0 + confidence) / 2.0


def min_samples(quantile: float, level: float) -> int:
    """Smallest ``n`` whose second-largest sample is an upper bound at one-sided ``level``.

    :param quantile: the quantile as a fraction (0.99 for p99).
    :param level: the one-sided confidence level of the upper bound (0.99 → MLPerf's 662
        for p99).
    """
    if not 0.0 < quantile < 1.0 or not 0.0 < level < 1.0:
        raise ValueError("quantile and level must lie strictly between 0 and 1")

    def ok(n: int) -> bool:
        return bool(stats.binom.cdf(n - 2, n, quantile) >= level)

    hi = 2
    while not ok(hi):
        hi *= 2
    lo = hi // 2  # ok(lo) is false or lo < 2; the coverage only grows with n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return max(hi, 2)


def upper_index(n: int, quantile: float, level: float) -> int:
    """1-based rank ``k`` of the smallest order statistic that is a ``level`` upper bound.

    Returns ``n + 1`` when even the maximum is not one.
    """
    return int(stats.binom.ppf(level, n, quantile)) + 1


def lower_index(n: int, quantile: float, level: float) -> int:
    """1-based rank of the largest order statistic that is a ``level`` lower bound (0: none)."""
    alpha = 1.0 - level
    j = int(stats.binom.ppf(alpha, n, quantile))
    # P(X(k) <= ξ) = P(B >= k) = 1 - cdf(k - 1); largest k with cdf(k - 1) <= alpha
    return j + 1 if stats.binom.cdf(j, n, quantile) <= alpha else j


@dataclass(frozen=True)
class PercentileBound:
    """A percentile's point estimate and equal-tailed order-statistic interval."""

    value: float
    lower: float | None
    upper: float | None
    confidence: float
    n: int
    needed: int

    @property
    def enough(self) -> bool:
        return self.n >= self.needed


def percentile_bound(samples: np.ndarray, percentile: float, confidence: float) -> PercentileBound:
    """Point estimate (numpy's linear interpolation) and order-statistic interval.

    The lower end is 0 when no order statistic qualifies (latencies are never negative,
    so 0 is a valid bound). The upper end is ``None`` when there are fewer than
    :func:`min_samples` samples (see the module docstring).
    """
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n == 0:
        raise ValueError("no latency samples")
    q = percentile / 100.0
    gamma = one_sided(confidence)
    needed = min_samples(q, gamma)
    value = float(np.percentile(x, percentile))
    if n < needed:
        return PercentileBound(value, None, None, confidence, n, needed)
    k_hi = upper_index(n, q, gamma)
    k_lo = lower_index(n, q, gamma)
    lower = float(x[k_lo - 1]) if k_lo >= 1 else 0.0
    return PercentileBound(value, min(lower, value), max(float(x[k_hi - 1]), value), confidence, n, needed)


def too_few_message(name: str, bound: PercentileBound) -> str:
    """Why a gate on ``name`` cannot be decided from ``bound.n`` samples."""
    return (
        f"{name}: {bound.n} samples are too few for a distribution-free "
        f"{one_sided(bound.confidence):.1%} upper bound on that percentile (needed at a "
        f"{bound.confidence:.0%} interval: at least {bound.needed}, so that the bound is not the "
        "single slowest request); raise 'requests'/'duration_s' or gate a lower percentile"
    )


def bootstrap_mean(samples: np.ndarray, confidence: float, seed: int, n_resamples: int = 2000) -> tuple[float, float]:
    """BCa bootstrap interval of the mean (scipy)."""
    x = np.asarray(samples, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0:
        return float(x.mean()), float(x.mean())
    res = stats.bootstrap(
        (x,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="BCa",
        random_state=np.random.default_rng(seed),
    )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        res = stats.bootstrap(
            (x,),
            np.mean,
            confidence_level=confidence,
            n_resamples=n_resamples,
            method="percentile",
            random_state=np.random.default_rng(seed),
        )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return low, high


def paired_delta(
    candidate: np.ndarray,
    baseline: np.ndarray,
    stat: str,
    confidence: float,
    seed: int,
    n_resamples: int = 2000,
) -> tuple[float, float, float, float, float, float]:
    """Candidate − baseline and candidate / baseline of ``stat`` with paired bootstrap intervals.

    ``stat`` is ``"mean"`` or a percentile metric name. Request ``i`` of both models ran on
    the same input back to back, so pairs are resampled together (scipy's bootstrap,
    ``paired=True``, percentile method: BCa is unstable for tail quantiles). Returns
    ``(delta, delta_low, delta_high, ratio, ratio_low, ratio_high)``.
    """
    a = np.asarray(candidate, dtype=float)
    b = np.asarray(baseline, dtype=float)
    pct = PERCENTILES.get(stat)

    def one(x: np.ndarray, axis: int) -> np.ndarray:
        out: np.ndarray = np.mean(x, axis=axis) if pct is None else np.percentile(x, pct, axis=axis)
        return out

    def delta(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        out: np.ndarray = one(x, axis) - one(y, axis)
        return out

    def ratio(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        out: np.ndarray = one(x, axis) / np.maximum(one(y, axis), 1e-12)
        return out

    out: list[float] = []
    for fn in (delta, ratio):
        point = float(fn(a, b))
        res = stats.bootstrap(
            (a, b),
            fn,
            paired=True,
            vectorized=True,
            confidence_level=confidence,
            n_resamples=n_resamples,
            method="percentile",
            random_state=np.random.default_rng(seed),
        )
        low = min(float(res.confidence_interval.low), point)
        high = max(float(res.confidence_interval.high), point)
        out += [point, low, high]
    return out[0], out[1], out[2], out[3], out[4], out[5]


def describe_samples(samples_ms: Iterable[float]) -> dict[str, float]:
    """Plain summary for the report's details (no intervals)."""
    x = np.asarray(list(samples_ms), dtype=float)
    return {
        "n": len(x),
        "min_ms": float(x.min()),
        "p50_ms": float(np.percentile(x, 50)),
        "p90_ms": float(np.percentile(x, 90)),
        "p99_ms": float(np.percentile(x, 99)),
        "max_ms": float(x.max()),
        "mean_ms": float(x.mean()),
        "std_ms": float(x.std(ddof=1)) if len(x) > 1 else 0.0,
    }
