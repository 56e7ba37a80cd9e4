"""Classification and regression metrics over a batch of row weightings.

Each function takes ``W`` (``B × n`` non-negative weights) and returns one value per row
of ``W``. With a single row of ones they equal scikit-learn's metrics, and with any
weights they equal scikit-learn's metric with ``sample_weight=W[b]`` — the tests use
scikit-learn as the oracle for both. They exist so that thousands of bootstrap
resamples cost a few matrix products instead of thousands of scikit-learn calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (scikit-learn's zero_division behaviour)."""
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


@dataclass
class ClassificationData:
    """Labels and predictions encoded once for every weighting."""

    y_idx: np.ndarray  # (n,) class index of the true label
    p_idx: np.ndarray  # (n,) class index of the predicted label
    n_classes: int
    positive: int | None  # class index of the positive label (binary average) or None
    proba: np.ndarray | None = None  # (n, K) probabilities in class order

    def __post_init__(self) -> None:
        k = self.n_classes
        self.Y = np.eye(k)[self.y_idx]
        self.P = np.eye(k)[self.p_idx]
        self.TP = self.Y * self.P
        self._stacked = np.hstack([self.TP, self.Y, self.P])
        self._memo: tuple[np.ndarray, tuple[np.ndarray, ...]] | None = None


def confusion(w: np.ndarray, d: ClassificationData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted true positives, support, predicted counts per class, and total weight.

    One matrix product serves every metric of the same weights: the result is memoised
    on the identity of ``w`` (the memo holds ``w`` itself, so the identity cannot be reused).
    """
    if d._memo is not None and d._memo[0] is w:
        tp, support, predicted, total = d._memo[1]
        return tp, support, predicted, total
    k = d.n_classes
    counts = w @ d._stacked
    out = (counts[:, :k], counts[:, k : 2 * k], counts[:, 2 * k :], w.sum(axis=1))
    d._memo = (w, out)
    return out


def accuracy(w: np.ndarray, d: ClassificationData) -> np.ndarray:
    tp, _, _, total = confusion(w, d)
    return _safe_div(tp.sum(axis=1), total)


def balanced_accuracy(w: np.ndarray, d: ClassificationData) -> np.ndarray:
    tp, support, _, _ = confusion(w, d)
    recall = np.where(support > 0, _safe_div(tp, support), np.nan)
    with np.errstate(invalid="ignore"):
        out: np.ndarray = np.nanmean(recall, axis=1)
    return out


def prf(w: np.ndarray, d: ClassificationData, average: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 with scikit-learn's averaging rules."""
    tp, support, predicted, _ = confusion(w, d)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, support + predicted)
    if average == "binary":
        assert d.positive is not None
        j = d.positive
        return precision[:, j], recall[:, j], f1[:, j]
    if average == "micro":
        t = tp.sum(axis=1)
        p = _safe_div(t, predicted.sum(axis=1))
        r = _safe_div(t, support.sum(axis=1))
        return p, r, _safe_div(2 * t, support.sum(axis=1) + predicted.sum(axis=1))
    if average == "weighted":
        share = _safe_div(support, support.sum(axis=1, keepdims=True))
        return (precision * share).sum(axis=1), (recall * share).sum(axis=1), (f1 * share).sum(axis=1)
    return precision.mean(axis=1), recall.mean(axis=1), f1.mean(axis=1)  # macro


def _binary_auc(w: np.ndarray, score: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Weighted Mann–Whitney AUC (ties count one half), for each row of ``w``."""
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ws = w[:, order]
    pos = positive[order].astype(float)
    gp = np.add.reduceat(ws * pos, starts, axis=1)
    gn = np.add.reduceat(ws * (1.0 - pos), starts, axis=1)
    below = np.cumsum(gn, axis=1) - gn
    num = (gp * (below + 0.5 * gn)).sum(axis=1)
    den = gp.sum(axis=1) * gn.sum(axis=1)
    return np.where(den > 0, _safe_div(num, den), np.nan)


def roc_auc(w: np.ndarray, d: ClassificationData) -> np.ndarray:
    """Binary AUC on the positive class; one-vs-rest macro AUC for more classes."""
    assert d.proba is not None
    if d.n_classes == 2:
        j = d.positive if d.positive is not None else 1
        return _binary_auc(w, d.proba[:, j], d.y_idx == j)
    aucs = [_binary_auc(w, d.proba[:, k], d.y_idx == k) for k in range(d.n_classes)]
    macro: np.ndarray = np.mean(aucs, axis=0)
    return macro


def log_loss_rows(d: ClassificationData) -> np.ndarray:
    """Per-row log loss, clipped as scikit-learn clips (machine epsilon of the dtype).

    Rows are not renormalised, as scikit-learn no longer does: probabilities a float32
    model rounded (rows summing to 1 ± 1e-7) give exactly scikit-learn's value.
    """
    assert d.proba is not None
    eps = np.finfo(d.proba.dtype).eps
    p = np.clip(d.proba, eps, 1 - eps)
    out: np.ndarray = -np.log(p[np.arange(len(d.y_idx)), d.y_idx])
    return out


def log_loss(w: np.ndarray, d: ClassificationData, rows: np.ndarray) -> np.ndarray:
    return _safe_div(w @ rows, w.sum(axis=1))


def ece_matrix(d: ClassificationData, n_bins: int) -> np.ndarray:
    """``(n × bins)`` matrix M with ECE(w) = Σ_b |(w @ M)_b| / Σ w (top-label, equal width)."""
    assert d.proba is not None
    conf = d.proba.max(axis=1)
    correct = (d.proba.argmax(axis=1) == d.y_idx).astype(float)
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    m = np.zeros((len(conf), n_bins))
    m[np.arange(len(conf)), bins] = correct - conf
    return m


def ece(w: np.ndarray, m: np.ndarray) -> np.ndarray:
    return _safe_div(np.abs(w @ m).sum(axis=1), w.sum(axis=1))


# -- regression ---------------------------------------------------------------------


def regression(w: np.ndarray, y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """mae, rmse, r2, mape for each weighting (scikit-learn's definitions)."""
    total = w.sum(axis=1)
    err = y - pred
    mae = _safe_div(w @ np.abs(err), total)
    mse = _safe_div(w @ (err**2), total)
    mean = _safe_div(w @ y, total)
    sst = w @ (y**2) - total * mean**2
    sse = w @ (err**2)
    r2 = np.where(sst > 0, 1 - _safe_div(sse, sst), np.where(sse == 0, 1.0, 0.0))
    eps = np.finfo(np.float64).eps
    mape = _safe_div(w @ (np.abs(err) / np.maximum(np.abs(y), eps)), total)
    return {"mae": mae, "rmse": np.sqrt(mse), "r2": r2, "mape": mape}
