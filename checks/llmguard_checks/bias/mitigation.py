"""Mitigation advice for a failed fairness gate, and an optional ThresholdOptimizer run.

Everything here is advice for the reviewer: the check never changes the model that is
promoted. The ThresholdOptimizer run shows what group-specific thresholds on the same
scores would do to the disparities and to accuracy, on the same data it was fitted on
(an optimistic, in-sample figure, and labelled so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from llmguard_ops import CheckContext, CheckOutput, evaluate_gates

if TYPE_CHECKING:
    import pandas as pd

    from .group_fairness import GroupFairnessParams

ADVICE_LABEL = "advice only: not the promoted model"

_PARITY = {"demographic_parity_difference", "demographic_parity_ratio", "disparate_impact_ratio"}
_ODDS = {"equalized_odds_difference", "average_odds_difference"}
_OPPORTUNITY = {"equal_opportunity_difference"}

_TO = "fairlearn.postprocessing.ThresholdOptimizer"
_EG = "fairlearn.reductions.ExponentiatedGradient"
_OPTIONS = {
    "parity": [
        f"{_TO}(constraints='demographic_parity'): group-specific thresholds on the model's "
        "scores (needs the sensitive attribute at prediction time)",
        f"{_EG}(estimator, DemographicParity()): retrain under a parity constraint",
        "aif360.sklearn.preprocessing.Reweighing: reweigh training rows so that label and "
        "group are independent, then retrain",
        "remove or transform proxy features strongly associated with the sensitive column (see 'proxies')",
    ],
    "odds": [
        f"{_TO}(constraints='equalized_odds'): randomised group thresholds equalising TPR and FPR",
        f"{_EG}(estimator, EqualizedOdds()): retrain under the constraint",
        "aif360.sklearn.postprocessing.CalibratedEqualizedOdds: post-process calibrated scores",
    ],
    "opportunity": [
        f"{_TO}(constraints='true_positive_rate_parity')",
        f"{_EG}(estimator, TruePositiveRateParity())",
        "aif360.sklearn.postprocessing.RejectOptionClassifierCV: favour the unprivileged near the decision boundary",
    ],
    "group": [
        "a single group's rate is out of bounds: check its sample size and label quality "
        "first, then fairlearn.reductions.ErrorRateParity or more data for that group",
    ],
}


def _family(metric: str) -> str:
    base = metric.rsplit(".", 1)[-1] if metric.startswith(("attribute.", "group.")) else metric
    if metric.startswith("group."):
        return "group"
    if base in _PARITY:
        return "parity"
    if base in _OPPORTUNITY:
        return "opportunity"
    return "odds" if base in _ODDS else "group"


def failed_fairness_gates(ctx: CheckContext, out: CheckOutput) -> list[str]:
    """Gated metrics of this check that fail their bound (evaluated as the host will).

    Bounds that cannot be tested are left out: the host reports those as errors."""
    return [o.metric for o in evaluate_gates(ctx.gates, out.metrics).failed]


def proxies(frame: pd.DataFrame, columns: list[str], top: int = 5) -> list[dict[str, Any]]:
    """Numeric model features most associated with a sensitive column (correlation ratio η).

    η² is the share of a feature's variance explained by the groups; a large η marks a
    feature through which a model can rebuild the sensitive attribute.
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    found = []
    numeric = [
        c for c in frame.columns if c not in columns and is_numeric_dtype(frame[c]) and not is_bool_dtype(frame[c])
    ]
    for column in columns:
        groups = frame[column].astype(str)
        for feature in numeric:
            x = frame[feature].astype(float)
            total = float(((x - x.mean()) ** 2).sum())
            if total <= 0:
                continue
            means = x.groupby(groups).transform("mean")
            between = float(((means - x.mean()) ** 2).sum())
            found.append(
                {
                    "sensitive": column,
                    "feature": feature,
                    "eta": round(float(np.sqrt(between / total)), 4),
                }
            )
    found.sort(key=lambda r: -r["eta"])
    return found[:top]


def _constraint(params: GroupFairnessParams, failed: list[str]) -> str:
    if params.mitigation_constraint != "auto":
        return params.mitigation_constraint
    families = {_family(m) for m in failed}
    if "odds" in families:
        return "equalized_odds"
    if "opportunity" in families and "parity" not in families:
        return "true_positive_rate_parity"
    return "demographic_parity"


def advise(ctx: CheckContext, params: GroupFairnessParams, failed: list[str], columns: list[str]) -> dict[str, Any]:
    """What fairlearn and AIF360 offer for the failed gates, and candidate proxy features."""
    families = sorted({_family(m) for m in failed})
    advice: dict[str, Any] = {
        "label": ADVICE_LABEL,
        "failed_gates": failed,
        "options": [opt for fam in families for opt in _OPTIONS[fam]],
        "suggested_constraint": _constraint(params, failed),
    }
    if not failed:
        advice["summary"] = "no fairness gate failed; mitigation shown because 'mitigate: true'"
    ds = ctx.dataset(params.dataset)
    if params.predictions is None and params.model is not None:
        model = ctx.model(params.model)
        if model.input_kind != "tabular":
            return advice
        features = model.feature_names(ds)
    else:  # predictions from a column: any other non-role column may be a proxy
        skip = {ds.spec.target, ds.spec.text, params.predictions, *columns}
        features = [c for c in ds.frame.columns if c not in skip]
    advice["proxies"] = proxies(ds.frame[[*features, *columns]], columns)
    return advice


def _score_column() -> Any:
    """A fitted scikit-learn estimator whose prediction is the score column it is given.

    ThresholdOptimizer only needs the model's scores; handing them over precomputed reuses
    the run's cached predictions and works for any model, not only scikit-learn ones.
    (Defined in a function so that importing this module does not import scikit-learn.)
    """
    from sklearn.base import BaseEstimator

    class ScoreColumn(BaseEstimator):  # type: ignore[misc]  # scikit-learn is untyped
        def fit(self, x: Any, y: Any = None) -> ScoreColumn:
            self.fitted_ = True
            return self

        def predict(self, x: Any) -> np.ndarray:
            return np.asarray(x, dtype=np.float64)[:, 0]

    return ScoreColumn().fit(None)


def threshold_optimizer(
    sensitive: pd.DataFrame,
    y01: np.ndarray,
    pred: np.ndarray,
    scores: np.ndarray | None,
    params: GroupFairnessParams,
    failed: list[str],
    seed: int,
) -> dict[str, Any]:
    """Disparities and accuracy before and after fairlearn's ThresholdOptimizer (in-sample)."""
    from fairlearn.postprocessing import ThresholdOptimizer

    from . import _counts as cnt
    from ._libraries import fairlearn_by_group

    constraint = _constraint(params, failed)
    x = (scores if scores is not None else pred.astype(np.float64)).reshape(-1, 1)
    optimizer = ThresholdOptimizer(
        estimator=_score_column(),
        constraints=constraint,
        prefit=True,
        predict_method="predict",
        objective="accuracy_score",
    )
    sens = sensitive.astype(str)
    optimizer.fit(x, y01, sensitive_features=sens)
    adjusted = np.asarray(optimizer.predict(x, sensitive_features=sens, random_state=seed), dtype=np.int8)
    columns = [sensitive[c].to_numpy() for c in sensitive.columns]

    def summary(p: np.ndarray) -> dict[str, float]:
        table = cnt.build_table(columns, y01, p)
        fl = fairlearn_by_group(table, labelled=True)
        keys = (
            "demographic_parity_difference",
            "demographic_parity_ratio",
            "equalized_odds_difference",
            "equal_opportunity_difference",
        )
        return {
            "accuracy": float(np.mean(p == y01)),
            **{k: round(float(fl[k]), 6) for k in keys if k in fl},
        }

    return {
        "label": ADVICE_LABEL + " (fitted and evaluated on the same rows: optimistic)",
        "method": "fairlearn.postprocessing.ThresholdOptimizer",
        "constraint": constraint,
        "scores": "P(favourable) from the model" if scores is not None else "hard predictions (no scores)",
        "before": summary(pred),
        "after": summary(adjusted),
    }
