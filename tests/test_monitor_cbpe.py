"""CBPE: label-free accuracy within its interval of the true accuracy (simulation)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix

from llmguard_checks.monitoring import calibrator, estimate


def _draw(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(0, 1, (n, 2)) + np.array([shift, -shift / 2])
    p = 1 / (1 + np.exp(-(1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.3)))
    return x, (rng.random(n) < p).astype(int)


def test_cbpe_accuracy_interval_covers_true_accuracy_in_90_percent_of_windows() -> None:
    rng = np.random.default_rng(42)
    x_ref, y_ref = _draw(rng, 5000, 0.0)
    model = LogisticRegression().fit(x_ref, y_ref)
    cal = calibrator(model.predict_proba(x_ref)[:, 1], y_ref.astype(float))
    covered, errors = 0, []
    windows = 60
    for i in range(windows):
        shift = 0.8 * np.sin(i / 6)  # covariate shift only: P(y | x) is unchanged
        x, y = _draw(rng, 400, shift)  # labels withheld from the estimate
        scores = model.predict_proba(x)[:, 1]
        pred = model.predict(x)
        acc, low, high = estimate(cal(scores), pred, 0.95)["accuracy"]
        true = accuracy_score(y, pred)
        covered += low <= true <= high
        errors.append(acc - true)
    assert covered / windows >= 0.90
    assert abs(float(np.mean(errors))) < 0.01  # unbiased under covariate shift


def test_expected_confusion_matrix_adds_scores_as_nannyml_defines() -> None:
    p = np.array([0.9, 0.6, 0.2, 0.4])
    pred = np.array([1, 1, 0, 0])
    est = estimate(p, pred)
    assert est["expected_tp"][0] == pytest.approx(1.5)
    assert est["expected_fp"][0] == pytest.approx(0.5)
    assert est["expected_fn"][0] == pytest.approx(0.6)
    assert est["expected_tn"][0] == pytest.approx(1.4)
    assert est["accuracy"][0] == pytest.approx((1.5 + 1.4) / 4)
    assert est["precision"][0] == pytest.approx(1.5 / 2)
    assert est["recall"][0] == pytest.approx(1.5 / 2.1)


def test_estimated_confusion_matrix_is_the_mean_of_realised_ones() -> None:
    # with labels drawn from the calibrated scores, the realised matrix averages to CBPE's
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 300)
    pred = (p >= 0.5).astype(int)
    labels = (rng.random((4000, 300)) < p).astype(int)
    pos = pred == 1
    tp, fp = (labels[:, pos] == 1).sum(1).mean(), (labels[:, pos] == 0).sum(1).mean()
    fn, tn = (labels[:, ~pos] == 1).sum(1).mean(), (labels[:, ~pos] == 0).sum(1).mean()
    # and one draw's matrix as scikit-learn counts it
    assert confusion_matrix(labels[0], pred, labels=[0, 1])[1, 1] == (labels[0, pos] == 1).sum()
    est = estimate(p, pred)
    assert (
        est["expected_tn"][0],
        est["expected_fp"][0],
        est["expected_fn"][0],
        est["expected_tp"][0],
    ) == pytest.approx((tn, fp, fn, tp), rel=0.02)
