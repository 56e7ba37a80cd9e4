"""The statistics of one candidate-baseline comparison, free of the host.

:func:`compare` takes both models' outputs on the same rows and returns, per metric,
the delta (candidate - baseline), its paired bootstrap interval, the two-sided p-value
of the right paired test and the one-sided p-value for harm. The check
(:mod:`llmguard_checks.canary`) and the simulation benchmark both call it, so the
benchmark measures exactly what a suite gates on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import _weighted as wm
from .._bootstrap import bootstrap_weighted
from .paired import PairedTest, adjust, delong, mcnemar, paired_permutation

CLASSIFICATION = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "log_loss",
    "ece",
)
REGRESSION = ("mae", "rmse", "r2", "mape")
LOWER_IS_BETTER = frozenset({"log_loss", "ece", "mae", "rmse", "mape"})
NEEDS_PROBA = frozenset({"roc_auc", "log_loss", "ece"})


@dataclass
class Arm:
    """One model's outputs on the rows: class indices (or values) and probabilities."""

    pred: np.ndarray
    proba: np.ndarray | None = None


@dataclass
class Delta:
    """One compared metric."""

    metric: str
    candidate: float
    baseline: float
    value: float
    test: PairedTest
    lower: float | None = None
    upper: float | None = None
    p_adjusted: float = 1.0
    p_harm_adjusted: float = 1.0


@dataclass
class Comparison:
    """All compared metrics, with the correction applied across them."""

    deltas: dict[str, Delta]
    correction: str
    n: int
    agreement_rate: float
    agreement_interval: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Settings:
    """How to compare: which metrics, how many resamples, what correction."""

    metrics: list[str]
    task: str = "classification"
    confidence: dict[str, float] = field(default_factory=dict)  # metric → interval level
    default_confidence: float = 0.95
    n_resamples: int = 1000
    n_permutations: int = 2000
    interval: str = "percentile"
    correction: str = "holm"
    mcnemar_exact_below: int = 25
    average: str = "binary"
    positive: int | None = 1
    n_classes: int = 2
    ece_bins: int = 15
    seed: int = 0


def _classification_stats(y: np.ndarray, arm: Arm, s: Settings) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    data = wm.ClassificationData(y, arm.pred, s.n_classes, s.positive, arm.proba)
    rows = wm.log_loss_rows(data) if arm.proba is not None else None
    ece_m = wm.ece_matrix(data, s.ece_bins) if arm.proba is not None else None
    wanted = set(s.metrics)

    def stat(w: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if "accuracy" in wanted:
            out["accuracy"] = wm.accuracy(w, data)
        if "balanced_accuracy" in wanted:
            out["balanced_accuracy"] = wm.balanced_accuracy(w, data)
        if wanted & {"precision", "recall", "f1"}:
            p, r, f = wm.prf(w, data, s.average)
            out.update(precision=p, recall=r, f1=f)
        if "roc_auc" in wanted:
            out["roc_auc"] = wm.roc_auc(w, data)
        if "log_loss" in wanted:
            assert rows is not None
            out["log_loss"] = wm.log_loss(w, data, rows)
        if "ece" in wanted:
            assert ece_m is not None
            out["ece"] = wm.ece(w, ece_m)
        return out

    return stat


def _stat(y: np.ndarray, arm: Arm, s: Settings) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    if s.task == "regression":
        yf, pf = np.asarray(y, dtype=float), np.asarray(arm.pred, dtype=float)
        return lambda w: wm.regression(w, yf, pf)
    return _classification_stats(y, arm, s)


def _stack(a: Arm, b: Arm) -> Arm:
    proba = None if a.proba is None or b.proba is None else np.vstack([a.proba, b.proba])
    return Arm(np.concatenate([a.pred, b.pred]), proba)


def _test(
    metric: str,
    y: np.ndarray,
    cand: Arm,
    base: Arm,
    s: Settings,
    y2: np.ndarray,
) -> PairedTest:
    if metric == "accuracy" and s.task == "classification":
        return mcnemar(cand.pred == y, base.pred == y, s.mcnemar_exact_below)
    j = s.positive if s.positive is not None else 1
    if (
        metric == "roc_auc"
        and s.n_classes == 2
        and cand.proba is not None
        and base.proba is not None
        and min(np.sum(y == j), np.sum(y != j)) >= 2
    ):
        return delong(y == j, cand.proba[:, j], base.proba[:, j])

    # the stacked statistic computes only this metric: every permutation costs one metric
    one = Settings(**{**s.__dict__, "metrics": [metric]})
    stacked = _stat(y2, _stack(cand, base), one)

    def delta(wc: np.ndarray, wb: np.ndarray) -> np.ndarray:
        diff: np.ndarray = stacked(wc)[metric] - stacked(wb)[metric]
        return diff

    return paired_permutation(
        delta,
        len(y),
        higher_is_better=metric not in LOWER_IS_BETTER,
        n_resamples=s.n_permutations,
        seed=s.seed,
    )


def compare(y: np.ndarray, cand: Arm, base: Arm, s: Settings) -> Comparison:
    """Deltas, paired intervals and corrected paired tests for ``s.metrics``."""
    n = len(y)
    stat_c, stat_b = _stat(y, cand, s), _stat(y, base, s)
    y2 = np.concatenate([y, y])
    ones = np.ones((1, n))
    point_c, point_b = stat_c(ones), stat_b(ones)
    deltas: dict[str, Delta] = {}
    for m in s.metrics:
        c, b = float(point_c[m][0]), float(point_b[m][0])
        deltas[m] = Delta(m, c, b, c - b, _test(m, y, cand, base, s, y2))
    agree = (cand.pred == base.pred).astype(float)
    out = Comparison(deltas, s.correction, n, float(agree.mean()))
    levels = sorted({s.confidence.get(m, s.default_confidence) for m in s.metrics} | {s.default_confidence})
    if s.n_resamples > 0 and n > 1:

        def paired(w: np.ndarray) -> np.ndarray:
            a, b = stat_c(w), stat_b(w)
            rows = [a[m] - b[m] for m in s.metrics]
            rows.append(wm._safe_div(w @ agree, w.sum(axis=1)))
            return np.vstack(rows)

        for level in levels:
            res = bootstrap_weighted(
                paired,
                n,
                confidence=level,
                n_resamples=s.n_resamples,
                seed=s.seed,
                method=s.interval,
            )
            for i, m in enumerate(s.metrics):
                if s.confidence.get(m, s.default_confidence) == level:
                    lo, hi = float(res.low[i]), float(res.high[i])
                    if np.isfinite(lo) and np.isfinite(hi):
                        deltas[m].lower, deltas[m].upper = lo, hi
                    else:
                        out.notes.append(f"{m}_delta: interval undefined (resamples lacking a class)")
            if level == s.default_confidence:
                out.agreement_interval = (float(res.low[-1]), float(res.high[-1]))
    two = adjust([d.test.p_value for d in deltas.values()], s.correction)
    harm = adjust([d.test.p_harm for d in deltas.values()], s.correction)
    for d, p, h in zip(deltas.values(), two, harm, strict=True):
        d.p_adjusted, d.p_harm_adjusted = float(p), float(h)
    return out


def per_row_score(metric: str, y: np.ndarray, arm: Arm, s: Settings) -> np.ndarray:
    """Per-request score (higher is better) whose mean is the metric, for sequential replay.

    Only metrics that are means over rows qualify: accuracy (1 when right), log_loss
    and mae (the negated loss).
    """
    score: np.ndarray
    if metric == "accuracy":
        score = (arm.pred == y).astype(float)
    elif metric == "log_loss":
        if arm.proba is None:
            raise ValueError("log_loss needs probabilities")
        data = wm.ClassificationData(y, arm.pred, s.n_classes, s.positive, arm.proba)
        score = -wm.log_loss_rows(data)
    elif metric == "mae":
        score = -np.abs(np.asarray(y, dtype=float) - np.asarray(arm.pred, dtype=float))
    else:
        raise ValueError(f"replay monitors a per-request metric (accuracy, log_loss, mae), not '{metric}'")
    return score
