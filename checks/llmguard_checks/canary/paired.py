"""Paired significance tests for a candidate and a baseline scored on the same rows.

* :func:`mcnemar` — accuracy: McNemar's test on the discordant pairs, exact (binomial)
  for few discordant pairs, chi-square with Edwards' continuity correction otherwise.
* :func:`delong` — binary ROC AUC: DeLong, DeLong & Clarke-Pearson (1988), computed
  with the fast midrank algorithm of Sun & Xu (2014), O(n log n).
* :func:`paired_permutation` — any other metric: scipy's permutation test swapping the
  two models' outputs within each row (``permutation_type='samples'``).
* :func:`adjust` — Holm (family-wise error) or Benjamini-Hochberg (false discovery
  rate) adjustment of several p-values.

Every test also returns a one-sided p-value for *harm* (the candidate worse than the
baseline), which the canary's ``regression_detected`` metric uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._bootstrap import weights_from_indices
from .._lazy import lazy_module

stats = lazy_module("scipy.stats")  # imported when a test runs, not when the plugin loads

_MAX_CELLS = 8_000_000


@dataclass(frozen=True)
class PairedTest:
    """Result of one paired test: the two-sided p-value and the one-sided harm p-value."""

    name: str
    statistic: float
    p_value: float
    p_harm: float
    detail: str


def mcnemar(cand_correct: np.ndarray, base_correct: np.ndarray, exact_below: int = 25) -> PairedTest:
    """McNemar's test of equal accuracy on paired correctness indicators.

    ``b`` rows only the baseline gets right, ``c`` rows only the candidate gets right.
    With ``b + c < exact_below`` the exact binomial test on the discordant pairs is used
    (statsmodels' ``mcnemar(exact=True)``), otherwise the chi-square statistic
    ``(|b - c| - 1)^2 / (b + c)`` (``exact=False, correction=True``).
    """
    cand = np.asarray(cand_correct, dtype=bool)
    base = np.asarray(base_correct, dtype=bool)
    b = int(np.sum(~cand & base))
    c = int(np.sum(cand & ~base))
    n = b + c
    if n == 0:
        return PairedTest("mcnemar-exact", 0.0, 1.0, 1.0, "no discordant pairs: b = c = 0")
    if n < exact_below:
        two = stats.binomtest(min(b, c), n, 0.5, alternative="two-sided").pvalue
        harm = stats.binomtest(b, n, 0.5, alternative="greater").pvalue
        return PairedTest(
            "mcnemar-exact",
            float(min(b, c)),
            float(min(two, 1.0)),
            float(harm),
            f"exact binomial on {n} discordant pairs (b={b}, c={c}; b+c < {exact_below})",
        )
    chi2 = (abs(b - c) - 1.0) ** 2 / n
    two = stats.chi2.sf(chi2, 1)
    d = b - c
    z = np.sign(d) * max(abs(d) - 1.0, 0.0) / np.sqrt(n)
    harm = stats.norm.sf(z)
    return PairedTest(
        "mcnemar-chi2",
        float(chi2),
        float(two),
        float(harm),
        f"chi-square with continuity correction on {n} discordant pairs (b={b}, c={c})",
    )


def _midrank(x: np.ndarray) -> np.ndarray:
    """Midranks (1-based, ties share their average rank) of each row of ``x``."""
    out = np.empty_like(x, dtype=float)
    for i, row in enumerate(x):
        out[i] = stats.rankdata(row, method="average")
    return out


def delong_covariance(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and their DeLong covariance for k score rows (Sun & Xu's fast algorithm).

    ``positive`` is ``(k x m)``: each model's scores on the m positive rows;
    ``negative`` is ``(k x n)`` on the n negative rows.
    """
    pos = np.atleast_2d(np.asarray(positive, dtype=float))
    neg = np.atleast_2d(np.asarray(negative, dtype=float))
    m, n = pos.shape[1], neg.shape[1]
    tx = _midrank(pos)
    ty = _midrank(neg)
    tz = _midrank(np.hstack([pos, neg]))
    aucs = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v01 = (tz[:, :m] - tx) / n  # structural components of the positives
    v10 = 1.0 - (tz[:, m:] - ty) / m  # ... and of the negatives
    sx = np.atleast_2d(np.cov(v01))
    sy = np.atleast_2d(np.cov(v10))
    return aucs, sx / m + sy / n


def delong(y_true: np.ndarray, cand_score: np.ndarray, base_score: np.ndarray) -> PairedTest:
    """DeLong's test of equal ROC AUC for two scores of the same binary labels."""
    y = np.asarray(y_true, dtype=bool)
    scores = np.vstack([np.asarray(cand_score, dtype=float), np.asarray(base_score, dtype=float)])
    if y.sum() < 2 or (~y).sum() < 2:
        raise ValueError("DeLong's test needs at least two rows of each class")
    aucs, cov = delong_covariance(scores[:, y], scores[:, ~y])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[0] - aucs[1])
    if var <= 0:  # identical rankings: no evidence of any difference
        return PairedTest("delong", 0.0, 1.0, 1.0 if diff >= 0 else 0.0, "zero variance of the AUC difference")
    z = diff / np.sqrt(var)
    return PairedTest(
        "delong",
        z,
        float(2 * stats.norm.sf(abs(z))),
        float(stats.norm.cdf(z)),
        f"DeLong z = {z:.4g} (fast midrank algorithm), se = {np.sqrt(var):.4g}",
    )


def paired_permutation(
    delta: Callable[[np.ndarray, np.ndarray], np.ndarray],
    n: int,
    *,
    higher_is_better: bool,
    n_resamples: int,
    seed: int,
) -> PairedTest:
    """Permutation test of ``delta`` swapping candidate and baseline within random rows.

    ``delta(Wc, Wb)`` receives ``(B x 2n)`` weights over the stacked rows (candidate's n
    rows, then the baseline's n rows) and returns ``(B,)`` metric differences; a swap of
    row i moves its weight from row i to row n + i. scipy draws the swaps and computes
    the p-value.
    """
    cand = np.arange(n)
    base = np.arange(n, 2 * n)

    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        x = np.moveaxis(np.asarray(x), axis, -1)
        y = np.moveaxis(np.asarray(y), axis, -1)
        lead = x.shape[:-1]
        wc = weights_from_indices(x.reshape(-1, n), 2 * n)
        wb = weights_from_indices(y.reshape(-1, n), 2 * n)
        return np.asarray(delta(wc, wb)).reshape(lead)

    batch = max(1, min(n_resamples, _MAX_CELLS // max(4 * n, 1)))
    kw = {
        "permutation_type": "samples",
        "vectorized": True,
        "n_resamples": n_resamples,
        "batch": batch,
        "rng": np.random.default_rng(seed),
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        two = stats.permutation_test((cand, base), statistic, alternative="two-sided", **kw)
    # the one-sided p-value from the same null distribution, counted as scipy counts
    # (ties within a relative 1e-14 included, +1 in numerator and denominator)
    null = np.asarray(two.null_distribution)
    obs = float(two.statistic)
    tol = 1e-14 * max(abs(obs), 1.0)
    worse = null <= obs + tol if higher_is_better else null >= obs - tol
    harm = (float(np.sum(worse)) + 1.0) / (len(null) + 1.0)
    return PairedTest(
        "permutation",
        obs,
        float(two.pvalue),
        min(harm, 1.0),
        f"paired permutation test, {n_resamples} random within-row swaps",
    )


def adjust(p_values: list[float], method: str) -> list[float]:
    """Adjusted p-values: ``holm`` (step-down, controls the family-wise error),
    ``bh`` (Benjamini-Hochberg, controls the false discovery rate) or ``none``."""
    p = np.asarray(p_values, dtype=float)
    if method == "none" or len(p) <= 1:
        return [float(v) for v in p]
    if method == "bh":
        return [float(v) for v in stats.false_discovery_control(p, method="bh")]
    if method != "holm":
        raise ValueError(f"unknown correction '{method}' (holm, bh or none)")
    order = np.argsort(p)
    m = len(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out.tolist()
