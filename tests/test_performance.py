"""Performance metrics equal scikit-learn's; bootstrap weights equal sample_weight."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from llmguard_checks import _weighted as wm
from llmguard_checks._bootstrap import bootstrap_weighted, weights_from_indices


def make_data(seed: int, n: int, k: int) -> wm.ClassificationData:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    y[:k] = np.arange(k)  # every class present
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = rng.integers(0, k, size=n)
    pred[: n // 2] = proba[: n // 2].argmax(axis=1)
    return wm.ClassificationData(y, pred, k, 1 if k == 2 else None, proba)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(12, 200),
    k=st.sampled_from([2, 3, 4]),
    average=st.sampled_from(["binary", "macro", "micro", "weighted"]),
)
def test_weighted_metrics_equal_sklearn_sample_weight(seed: int, n: int, k: int, average: str) -> None:
    if average == "binary" and k != 2:
        average = "macro"
    d = make_data(seed, n, k)
    w = np.random.default_rng(seed + 1).integers(0, 4, size=n).astype(float)
    w[:k] += 1  # keep every class with some weight
    sw = {"sample_weight": w}
    labels = list(range(k))
    kw = {"average": average, "labels": labels, "zero_division": 0, **sw}
    if average == "binary":
        kw["pos_label"] = 1
    W = w[None, :]
    assert wm.accuracy(W, d)[0] == pytest.approx(skm.accuracy_score(d.y_idx, d.p_idx, **sw), abs=1e-12)
    p, r, f = wm.prf(W, d, average)
    assert p[0] == pytest.approx(skm.precision_score(d.y_idx, d.p_idx, **kw), abs=1e-12)
    assert r[0] == pytest.approx(skm.recall_score(d.y_idx, d.p_idx, **kw), abs=1e-12)
    assert f[0] == pytest.approx(skm.f1_score(d.y_idx, d.p_idx, **kw), abs=1e-12)
    assert wm.balanced_accuracy(W, d)[0] == pytest.approx(
        skm.balanced_accuracy_score(d.y_idx, d.p_idx, **sw), abs=1e-12
    )
    assert wm.log_loss(W, d, wm.log_loss_rows(d))[0] == pytest.approx(
        skm.log_loss(d.y_idx, d.proba, labels=labels, **sw), abs=1e-9
    )
    if k == 2:
        expected = skm.roc_auc_score(d.y_idx, d.proba[:, 1], **sw)
    else:
        expected = skm.roc_auc_score(d.y_idx, d.proba, multi_class="ovr", average="macro", labels=labels, **sw)
    assert wm.roc_auc(W, d)[0] == pytest.approx(expected, abs=1e-9)


def test_auc_with_ties_equals_sklearn() -> None:
    y = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    score = np.array([0.1, 0.4, 0.4, 0.4, 0.9, 0.2, 0.2, 0.9])
    d = wm.ClassificationData(y, y, 2, 1, np.column_stack([1 - score, score]))
    assert wm.roc_auc(np.ones((1, 8)), d)[0] == pytest.approx(skm.roc_auc_score(y, score))


def test_ece_against_a_direct_computation() -> None:
    d = make_data(3, 500, 3)
    conf = d.proba.max(axis=1)
    correct = d.proba.argmax(axis=1) == d.y_idx
    edges = np.linspace(0, 1, 11)
    expected = 0.0
    for lo, hi in itertools.pairwise(edges):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            expected += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    assert wm.ece(np.ones((1, 500)), wm.ece_matrix(d, 10))[0] == pytest.approx(expected, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(5, 100))
def test_regression_equals_sklearn(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n) * 10
    pred = y + rng.normal(size=n)
    w = rng.integers(1, 4, size=n).astype(float)
    got = wm.regression(w[None, :], y, pred)
    assert got["mae"][0] == pytest.approx(skm.mean_absolute_error(y, pred, sample_weight=w))
    assert got["rmse"][0] == pytest.approx(skm.root_mean_squared_error(y, pred, sample_weight=w))
    assert got["r2"][0] == pytest.approx(skm.r2_score(y, pred, sample_weight=w))
    assert got["mape"][0] == pytest.approx(skm.mean_absolute_percentage_error(y, pred, sample_weight=w))


def test_weights_from_indices_counts_draws() -> None:
    idx = np.array([[0, 0, 2], [1, 2, 2]])
    assert weights_from_indices(idx, 3).tolist() == [[2, 0, 1], [0, 1, 2]]


def test_bootstrap_interval_matches_scipy_on_the_mean() -> None:
    from scipy import stats

    x = np.random.default_rng(0).normal(size=300)
    ours = bootstrap_weighted(lambda w: (w @ x / w.sum(axis=1))[None, :], 300, n_resamples=2000, seed=1)
    ref = stats.bootstrap((x,), np.mean, n_resamples=2000, method="percentile", random_state=np.random.default_rng(1))
    # same resampling scheme, different draws: the intervals agree to Monte-Carlo error
    assert ours.low[0] == pytest.approx(ref.confidence_interval.low, abs=0.02)
    assert ours.high[0] == pytest.approx(ref.confidence_interval.high, abs=0.02)


def test_interval_covers_the_truth_at_the_nominal_rate() -> None:
    """Coverage of the accuracy interval over repeated samples is near 95 %."""
    rng = np.random.default_rng(42)
    hits = 0
    trials = 200
    for t in range(trials):
        correct = (rng.uniform(size=400) < 0.8).astype(int)
        d = wm.ClassificationData(correct, np.ones(400, dtype=int), 2, 1, None)
        iv = bootstrap_weighted(lambda w, d=d: wm.accuracy(w, d)[None, :], 400, n_resamples=400, seed=t)
        hits += iv.low[0] <= 0.8 <= iv.high[0]
    assert 0.90 <= hits / trials <= 0.99
