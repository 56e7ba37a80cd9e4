"""Exact intervals for proportions, where the bootstrap cannot be trusted.

A proportion (accuracy: correct rows of n; precision: true positives of the predicted
positives; recall: true positives of the actual positives) has an exact
Clopper–Pearson interval from the binomial distribution (scipy's
``binomtest(k, n).proportion_ci``). The percentile bootstrap of a proportion
degenerates at small n or at 0 and 1: five correct rows of five resample to [1, 1],
while the exact 95 % interval is [0.478, 1]. So a proportion metric uses the exact
interval whenever its effective n is small (:data:`EXACT_BELOW`) or its bootstrap
interval has collapsed to a point.
"""

from __future__ import annotations

from dataclasses import dataclass

EXACT_BELOW = 100
"""Effective sample sizes below this use the exact interval instead of the bootstrap."""


@dataclass(frozen=True)
class Proportion:
    successes: int
    trials: int


def exact_interval(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    """The exact (Clopper–Pearson) two-sided interval of ``successes`` in ``trials`` (scipy).

    The one implementation the first-party checks share (performance, robustness, safety,
    data).
    """
    from scipy import stats

    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def clopper_pearson(p: Proportion, confidence: float) -> tuple[float, float]:
    """The exact (Clopper–Pearson) two-sided interval of ``p`` at ``confidence``."""
    return exact_interval(p.successes, p.trials, confidence)


def wants_exact(p: Proportion, low: float | None, high: float | None) -> bool:
    """Whether the bootstrap interval (``low``, ``high``) must give way to the exact one."""
    if p.trials <= 0:
        return False
    return p.trials < EXACT_BELOW or low is None or high is None or not low < high
