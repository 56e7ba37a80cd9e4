"""Deployable forms of fairlearn's mitigated classifiers, saved and loaded with skops.

fairlearn's ``ExponentiatedGradient`` and ``ThresholdOptimizer`` keep pandas objects and
lambdas that skops cannot store, and a ``ThresholdOptimizer`` needs the sensitive columns
passed separately at prediction time. :class:`MitigatedClassifier` holds the same fitted
state as plain numbers and scikit-learn estimators, declares its input columns in
``feature_names_in_`` (the sensitive columns included when the method needs them), so the
harness feeds it like any scikit-learn model, and predicts exactly as the fairlearn object
it was built from (same randomisation, for a fixed ``random_state``; the tests compare
both).

Importing this module imports scikit-learn (the class derives from its base classes); it
is imported only by ``bias.mitigation`` and by skops when such a model is loaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

TYPE_NAME = "llmguard_checks.bias.variants.MitigatedClassifier"


class MitigatedClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # scikit-learn is untyped
    """A randomised binary classifier from a fairlearn mitigation, in plain fitted state.

    ``method`` is ``exponentiated_gradient`` (a weighted mixture of predictors: each row
    is predicted positive with probability Σ_t w_t·h_t(x)) or ``threshold_optimizer``
    (per sensitive group, with probability p0 the rule ``score op0 t0``, else
    ``score op1 t1``, on the base estimator's score; for equalized odds, with probability
    p_ignore a constant instead). Predictions draw one uniform number
    per row from ``RandomState(random_state)``, as fairlearn does for a given seed.
    """

    def __init__(self) -> None:
        self.method = ""
        self.features: list[str] = []
        self.sensitive: list[str] = []
        self.predictors: list[Any] = []
        self.weights: list[float] = []
        self.base_estimator: Any = None
        self.score_method = "predict_proba"
        self.rules: dict[str, list[Any]] = {}
        self.labels: list[Any] = [0, 1]  # [unfavourable, favourable]
        self.random_state = 0

    # sklearn-style fitted attributes, read by the harness and by performance checks
    @property
    def feature_names_in_(self) -> np.ndarray:
        return np.asarray([*self.features, *self.sensitive], dtype=object)

    @property
    def n_features_in_(self) -> int:
        return len(self.features) + len(self.sensitive)

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(sorted(self.labels, key=_sort_key))

    def fit(self, x: Any, y: Any = None) -> MitigatedClassifier:
        """Already fitted by ``bias.mitigation``: returns itself."""
        return self

    def _frame(self, x: Any) -> Any:
        import pandas as pd

        if isinstance(x, pd.DataFrame):
            missing = [c for c in self.feature_names_in_ if c not in x.columns]
            if missing:
                raise ValueError(f"input lacks the columns {missing}")
            return x
        arr = np.asarray(x, dtype=object)
        return pd.DataFrame(arr, columns=list(self.feature_names_in_))

    def favourable_probability(self, x: Any) -> np.ndarray:
        """P(favourable prediction) per row: the classifier's probability mass function."""
        frame = self._frame(x)
        features = frame[self.features]
        if self.method == "exponentiated_gradient":
            votes = np.column_stack([np.asarray(h.predict(features)) for h in self.predictors])
            out: np.ndarray = votes.astype(np.float64) @ np.asarray(self.weights, dtype=np.float64)
            return out
        if self.method == "threshold_optimizer":
            score = _score(self.base_estimator, features, self.score_method)
            keys = group_keys(frame, self.sensitive)
            out = np.zeros(len(frame), dtype=np.float64)
            unknown = sorted(set(keys) - set(self.rules))
            if unknown:
                raise ValueError(f"groups not seen when the thresholds were fitted: {', '.join(unknown[:5])}")
            for key, (p0, op0, t0, p1, op1, t1, p_ignore, constant) in self.rules.items():
                rows = keys == key
                s = score[rows]
                mixed = p0 * _apply(op0, s, t0) + p1 * _apply(op1, s, t1)
                out[rows] = p_ignore * constant + (1 - p_ignore) * mixed
            return out
        raise ValueError(f"unknown mitigation method {self.method!r}")

    def predict_proba(self, x: Any) -> np.ndarray:
        # the mixture weights sum to 1 only up to rounding (1 + 4e-16 breaks log_loss)
        p = np.clip(self.favourable_probability(x), 0.0, 1.0)
        cols = {self.labels[1]: p, self.labels[0]: 1.0 - p}
        return np.column_stack([cols[c] for c in self.classes_.tolist()])

    def predict(self, x: Any) -> np.ndarray:
        p = self.favourable_probability(x)
        draw = np.random.RandomState(self.random_state).rand(len(p))
        favourable = p >= draw
        labels: np.ndarray = np.where(favourable, self.labels[1], self.labels[0])
        return labels


def _sort_key(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, int | float | np.integer | np.floating) else (1, str(v))


def _apply(op: str, s: np.ndarray, t: float) -> np.ndarray:
    return (s > t) if op == ">" else (s < t)


def _score(est: Any, x: Any, method: str) -> np.ndarray:
    if method == "predict_proba":
        return np.asarray(est.predict_proba(x), dtype=np.float64)[:, 1]
    return np.asarray(getattr(est, method)(x), dtype=np.float64).reshape(len(x), -1)[:, -1]


def group_keys(frame: Any, sensitive: list[str]) -> np.ndarray:
    """``sex=female&age=18-29`` per row: one key per intersection of the sensitive columns."""
    parts = [frame[c].astype(str).to_numpy(dtype=object) for c in sensitive]
    keys = [f"{c}=" for c in sensitive]
    out = np.array(
        ["&".join(k + v for k, v in zip(keys, row, strict=True)) for row in zip(*parts, strict=True)],
        dtype=object,
    )
    return out


def from_exponentiated_gradient(
    eg: Any, features: list[str], labels: list[Any], random_state: int
) -> MitigatedClassifier:
    """The mixture of a fitted ``ExponentiatedGradient`` (its predictors and weights)."""
    model = MitigatedClassifier()
    model.method = "exponentiated_gradient"
    model.features = list(features)
    index = list(eg.weights_.index)
    model.predictors = [eg.predictors_[i] for i in index]
    model.weights = [float(eg.weights_[i]) for i in index]
    model.labels = list(labels)
    model.random_state = int(random_state)
    return model


def from_threshold_optimizer(
    to: Any, features: list[str], sensitive: list[str], labels: list[Any], random_state: int
) -> MitigatedClassifier:
    """The per-group randomised thresholds of a fitted ``ThresholdOptimizer``.

    It must have been fitted with :func:`group_keys` as its sensitive feature.
    """
    model = MitigatedClassifier()
    model.method = "threshold_optimizer"
    model.features = list(features)
    model.sensitive = list(sensitive)
    thresholder = to.interpolated_thresholder_
    model.base_estimator = thresholder.estimator_
    model.score_method = str(thresholder._predict_method)
    rules = {}
    for key, rule in thresholder.interpolation_dict.items():
        rules[str(key)] = [
            float(rule["p0"]),
            str(rule["operation0"].operator),
            float(rule["operation0"].threshold),
            float(rule["p1"]),
            str(rule["operation1"].operator),
            float(rule["operation1"].threshold),
            # equalized odds: with probability p_ignore the group gets a constant instead
            float(rule.get("p_ignore", 0.0)),
            float(rule.get("prediction_constant", 0.0)),
        ]
    model.rules = rules
    model.labels = list(labels)
    model.random_state = int(random_state)
    return model
