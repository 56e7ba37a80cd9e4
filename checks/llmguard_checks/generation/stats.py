"""Statistics of generated text scored per item and per sample.

* :func:`pass_at_k` — the unbiased estimator of Chen et al. (2021): with ``n`` samples of
  an item of which ``c`` pass, ``1 - C(n-c, k) / C(n, k)``, computed as the product
  ``prod_{i=n-c+1..n} (1 - k/i)`` (no huge binomials);
* :func:`pass_all_k` — pass^k, every one of k draws passes: ``C(c, k) / C(n, k)``;
* :func:`item_interval` / :func:`paired_interval` — bootstrap intervals whose resampling
  unit is the **item**: per-item values (the mean over an item's samples, or its pass@k)
  are resampled, never the samples, which are clustered within items (Miller 2024); a
  paired delta resamples the same items for both models;
* :func:`items_needed` — how many items a gate on an interval needs to be decisive, from
  the interval's half-width shrinking as 1/sqrt(n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._bootstrap import bootstrap_weighted


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one item with ``c`` of ``n`` samples passing (``k <= n``)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per item, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_all_k(n: int, c: int, k: int) -> float:
    """Unbiased probability that ``k`` draws without replacement all pass: C(c,k)/C(n,k)."""
    if k > n:
        raise ValueError(f"pass_all@{k} needs at least {k} samples per item, got {n}")
    if c < k:
        return 0.0
    return float(np.prod((c - np.arange(k)) / (n - np.arange(k))))


@dataclass(frozen=True)
class Estimate:
    """A mean over items with its item-resampling interval."""

    value: float
    n: int
    lower: float | None = None
    upper: float | None = None
    confidence: float | None = None
    method: str | None = None

    def fields(self) -> dict[str, object]:
        out: dict[str, object] = {"n": self.n}
        if self.lower is not None:
            out.update(lower=self.lower, upper=self.upper, confidence=self.confidence, interval_method=self.method)
        return out


def item_interval(
    values: np.ndarray, *, confidence: float, n_resamples: int, seed: int, clustered: bool = False
) -> Estimate:
    """Mean of per-item ``values`` with a bootstrap interval over items."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n_resamples <= 0 or n < 2:
        return Estimate(float(values.mean()) if n else float("nan"), n)
    res = bootstrap_weighted(
        lambda w: (w @ values / w.sum(axis=1))[None, :], n, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    what = "items (clustered: samples stay with their item)" if clustered else "items"
    return Estimate(
        float(values.mean()),
        n,
        float(res.low[0]),
        float(res.high[0]),
        confidence,
        f"bootstrap-percentile over {what} ({n_resamples} resamples)",
    )


def paired_interval(
    candidate: np.ndarray, baseline: np.ndarray, *, confidence: float, n_resamples: int, seed: int
) -> Estimate:
    """Candidate − baseline mean of per-item values, both resampled with the same items."""
    diff = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    est = item_interval(diff, confidence=confidence, n_resamples=n_resamples, seed=seed)
    if est.method is None:
        return est
    return Estimate(
        est.value,
        est.n,
        est.lower,
        est.upper,
        est.confidence,
        f"paired bootstrap-percentile over items ({n_resamples} resamples)",
    )


def items_needed(est: Estimate, bound_min: float | None, bound_max: float | None) -> dict[str, object] | None:
    """Whether the interval decides the gate, and roughly how many items would.

    When the interval straddles a bound at distance ``d`` from the estimate with
    half-width ``h`` over ``n`` items, about ``n (h / d)^2`` items narrow it enough
    (the half-width falls as 1/sqrt(n)); ``None`` when the estimate sits on the bound.
    """
    if est.lower is None or est.upper is None:
        return None
    half = (est.upper - est.lower) / 2
    out: dict[str, object] = {"items": est.n, "half_width": half}
    decisive = True
    needed = est.n
    for bound in (bound_min, bound_max):
        if bound is None or not est.lower < bound < est.upper:
            continue
        decisive = False
        gap = abs(est.value - bound)
        needed = max(needed, math.ceil(est.n * (half / gap) ** 2)) if gap > 0 and needed >= 0 else -1
    out["decisive"] = decisive
    out["items_needed"] = None if needed < 0 else needed
    return out


__all__ = ["Estimate", "item_interval", "items_needed", "paired_interval", "pass_all_k", "pass_at_k"]
