"""Exact intervals for attack success: Clopper–Pearson for a rate, exact conditional for a
paired difference (consistent with McNemar's exact test)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def clopper_pearson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Two-sided exact (Clopper–Pearson) interval of a binomial proportion.

    The same interval as ``scipy.stats.binomtest(k, n).proportion_ci(confidence, "exact")``.
    """
    from .._proportion import exact_interval

    if n <= 0:
        raise ValueError("no attempts: cannot compute an attack success rate")
    return exact_interval(successes, n, confidence)


@dataclass(frozen=True)
class PairedDelta:
    """Candidate minus baseline on the same cases, with its interval and McNemar's exact p."""

    delta: float
    lower: float
    upper: float
    p_value: float
    only_candidate: int  # b: the candidate fails where the baseline holds
    only_baseline: int  # c: the baseline fails where the candidate holds
    n: int


def paired_delta(candidate: np.ndarray, baseline: np.ndarray, confidence: float) -> PairedDelta:
    """Difference of two paired rates (cases where each model was attacked successfully).

    With ``b`` cases only the candidate fails and ``c`` only the baseline fails, the
    difference is ``(b - c) / n``. Conditional on the ``m = b + c`` discordant cases,
    ``b ~ Binomial(m, θ)`` and the difference is ``(m / n)(2θ − 1)``; the Clopper–Pearson
    interval of θ maps to an exact conditional interval of the difference, which excludes
    0 exactly when McNemar's exact test (``binomtest(b, m, 0.5)``) rejects at the same
    level. With no discordant case the interval is ``[0, 0]``.
    """
    from scipy.stats import binomtest

    cand = np.asarray(candidate, dtype=bool)
    base = np.asarray(baseline, dtype=bool)
    if cand.shape != base.shape or cand.size == 0:
        raise ValueError("paired rates need the same, non-empty set of cases for both models")
    n = int(cand.size)
    b = int(np.sum(cand & ~base))
    c = int(np.sum(~cand & base))
    m = b + c
    delta = (b - c) / n
    if m == 0:
        return PairedDelta(0.0, 0.0, 0.0, 1.0, 0, 0, n)
    lo, hi = clopper_pearson(b, m, confidence)
    p = float(binomtest(b, m, 0.5, alternative="two-sided").pvalue)
    return PairedDelta(delta, m / n * (2 * lo - 1), m / n * (2 * hi - 1), min(p, 1.0), b, c, n)
