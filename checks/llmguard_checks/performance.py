"""performance.classification and performance.regression.

Point estimates come from scikit-learn. Intervals are scipy's bootstrap over the rows,
with the metrics evaluated through resampling weights (:mod:`._weighted`, equal to
scikit-learn with ``sample_weight``), so 1000 resamples cost milliseconds. Given a
``baseline`` model, each metric also gets ``<metric>_delta`` = candidate − baseline,
with a *paired* interval (both models on the same resampled rows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llmguard_ops import (
    CheckContext,
    CheckDefinition,
    CheckOutput,
    DatasetRef,
    MetricSpec,
    ModelRef,
    hookimpl,
)

from . import _weighted as wm
from ._bootstrap import bootstrap_weighted
from ._proportion import Proportion, clopper_pearson, wants_exact

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "ece")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
LOWER_IS_BETTER = {"log_loss", "ece", "mae", "rmse", "mape"}


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="Model to evaluate.")
    dataset: DatasetRef = Field("current", description="Dataset with a target column.")
    baseline: ModelRef | None = Field(None, description="Also evaluate this model and report <metric>_delta.")
    n_resamples: int = Field(1000, ge=0, description="Bootstrap resamples for intervals (0: no intervals).")
    interval: Literal["percentile", "basic", "BCa"] = Field("percentile", description="scipy bootstrap method.")


class ClassificationParams(_Common):
    positive_label: Any = Field(None, description="Positive class for binary metrics (default: the larger label).")
    average: Literal["auto", "binary", "macro", "micro", "weighted"] = Field(
        "auto", description="Averaging of precision/recall/f1: binary for two classes, else macro."
    )
    threshold: float | None = Field(
        None, gt=0, lt=1, description="Binary only: predict positive when P(positive) >= threshold."
    )
    ece_bins: int = Field(15, ge=2, le=100, description="Equal-width bins of top-label ECE.")


class RegressionParams(_Common):
    pass


def _add_metrics(
    out: CheckOutput,
    ctx: CheckContext,
    params: _Common,
    names: list[str],
    stat: Callable[[np.ndarray], dict[str, np.ndarray]],
    n: int,
    prefix: str = "",
    suffix: str = "",
    **extra: Any,
) -> None:
    ones = np.ones((1, n))
    points = {k: float(v[0]) for k, v in stat(ones).items()}
    levels = {ctx.confidence(prefix + name + suffix) for name in names}
    intervals: dict[float, dict[str, tuple[float, float]]] = {}
    if params.n_resamples > 0 and n > 1:
        for level in sorted(levels):

            def stacked(w: np.ndarray) -> np.ndarray:
                values = stat(w)  # every metric from one pass over the weights
                return np.vstack([values[k] for k in names])

            res = bootstrap_weighted(
                stacked,
                n,
                confidence=level,
                n_resamples=params.n_resamples,
                seed=ctx.seed,
                method=params.interval,
            )
            intervals[level] = {k: (float(res.low[i]), float(res.high[i])) for i, k in enumerate(names)}
    for name in names:
        full = prefix + name + suffix
        level = ctx.confidence(full)
        low, high = intervals.get(level, {}).get(name, (None, None))
        if low is not None and high is not None and not (np.isfinite(low) and np.isfinite(high)):
            out.warnings.append(f"{full}: interval undefined (resamples lacking a class); reported without one")
            low = high = None
        fields: dict[str, Any] = {"n": n, **extra}
        if low is not None:
            fields.update(
                lower=low,
                upper=high,
                confidence=level,
                interval_method=f"bootstrap-{params.interval} ({params.n_resamples} resamples)",
            )
        out.add(full, points[name], **fields)


def _encode(
    ctx: CheckContext, params: ClassificationParams, model: str, y: np.ndarray, classes: np.ndarray
) -> tuple[wm.ClassificationData, str]:
    index = {c: i for i, c in enumerate(classes.tolist())}
    obj = ctx.model(model).obj
    proba = None
    if hasattr(obj, "predict_proba"):
        proba = np.asarray(ctx.predict(model, params.dataset, "predict_proba"), dtype=float)
        model_classes = getattr(obj, "classes_", None)
        if model_classes is not None:  # align columns to the check's class order
            cols = np.zeros((len(y), len(classes)))
            for j, c in enumerate(np.asarray(model_classes).tolist()):
                if c in index:
                    cols[:, index[c]] = proba[:, j]
            proba = cols
    positive = _positive(params, classes)
    if params.threshold is not None:
        if proba is None or len(classes) != 2:
            raise ValueError("'threshold' needs a binary model with predict_proba")
        pred_idx = np.where(proba[:, positive] >= params.threshold, positive, 1 - positive)
    else:
        pred = ctx.predict(model, params.dataset, "predict")
        unknown = set(np.unique(pred).tolist()) - set(index)
        if unknown:
            raise ValueError(f"model '{model}' predicts labels absent from the target: {sorted(unknown)[:5]}")
        pred_idx = np.array([index[v] for v in pred.tolist()])
    average = params.average if params.average != "auto" else ("binary" if len(classes) == 2 else "macro")
    y_idx = np.array([index[v] for v in y.tolist()])
    data = wm.ClassificationData(y_idx, pred_idx, len(classes), positive if len(classes) == 2 else None, proba)
    return data, average


def _positive(params: ClassificationParams, classes: np.ndarray) -> int:
    if len(classes) != 2:
        return 0
    if params.positive_label is None:
        return 1
    labels = classes.tolist()
    if params.positive_label not in labels:
        raise ValueError(f"positive_label {params.positive_label!r} is not one of the labels {labels}")
    return int(labels.index(params.positive_label))


def _classification_stat(
    data: wm.ClassificationData, average: str, bins: int
) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    has_proba = data.proba is not None
    rows = wm.log_loss_rows(data) if has_proba else None
    ece_m = wm.ece_matrix(data, bins) if has_proba else None

    def stat(w: np.ndarray) -> dict[str, np.ndarray]:
        p, r, f = wm.prf(w, data, average)
        out = {
            "accuracy": wm.accuracy(w, data),
            "balanced_accuracy": wm.balanced_accuracy(w, data),
            "precision": p,
            "recall": r,
            "f1": f,
        }
        if has_proba:
            assert rows is not None and ece_m is not None
            out.update(roc_auc=wm.roc_auc(w, data), log_loss=wm.log_loss(w, data, rows), ece=wm.ece(w, ece_m))
        return out

    return stat


def sklearn_classification(data: wm.ClassificationData, average: str) -> dict[str, float]:
    """The same metrics from scikit-learn itself (the reference the report states)."""
    from sklearn import metrics as skm

    y, p = data.y_idx, data.p_idx
    labels = list(range(data.n_classes))
    kw: dict[str, Any] = {"average": average, "labels": labels, "zero_division": 0}
    if average == "binary":
        kw["pos_label"] = data.positive
    out = {
        "accuracy": skm.accuracy_score(y, p),
        "balanced_accuracy": skm.balanced_accuracy_score(y, p),
        "precision": skm.precision_score(y, p, **kw),
        "recall": skm.recall_score(y, p, **kw),
        "f1": skm.f1_score(y, p, **kw),
    }
    if data.proba is not None:
        if data.n_classes == 2:
            out["roc_auc"] = skm.roc_auc_score(y == (data.positive or 1), data.proba[:, data.positive or 1])
        else:
            out["roc_auc"] = skm.roc_auc_score(y, data.proba, multi_class="ovr", average="macro", labels=labels)
        out["log_loss"] = skm.log_loss(y, data.proba, labels=labels)
    return {k: float(v) for k, v in out.items()}


def _proportions(data: wm.ClassificationData, average: str) -> dict[str, Proportion]:
    """The metrics that are plain proportions of rows, with their counts."""
    y, p = data.y_idx, data.p_idx
    out = {"accuracy": Proportion(int(np.sum(y == p)), len(y))}
    if average == "binary" and data.positive is not None:
        tp = int(np.sum((y == data.positive) & (p == data.positive)))
        out["precision"] = Proportion(tp, int(np.sum(p == data.positive)))
        out["recall"] = Proportion(tp, int(np.sum(y == data.positive)))
    return out


def _exact_proportions(
    out: CheckOutput, ctx: CheckContext, data: wm.ClassificationData, average: str, params: ClassificationParams
) -> None:
    """Exact intervals for proportions whose bootstrap is unreliable (small n, or degenerate)."""
    for name, prop in _proportions(data, average).items():
        metric = out.metrics.get(name)
        if metric is None:
            continue
        metric.n = prop.trials  # the effective sample size the gate's support rule reads
        gated = ctx.gate(name)
        if params.n_resamples == 0 and (gated is None or gated.confidence is None):
            continue  # no intervals asked for
        if not wants_exact(prop, metric.lower, metric.upper):
            continue
        level = ctx.confidence(name)
        metric.lower, metric.upper = clopper_pearson(prop, level)
        metric.confidence = level
        metric.interval_method = (
            f"clopper-pearson (exact; {prop.successes} of {prop.trials}, too few for the bootstrap)"
        )


def run_classification(ctx: CheckContext, params: ClassificationParams) -> CheckOutput:
    ds = ctx.dataset(params.dataset)
    y = ds.y()
    models = [params.model] + ([params.baseline] if params.baseline else [])
    label_sets = [np.unique(y)] + [np.unique(ctx.predict(m, params.dataset, "predict")) for m in models]
    classes = np.unique(np.concatenate([np.asarray(s, dtype=object) for s in label_sets]).astype(y.dtype))
    if len(classes) < 2:
        raise ValueError(f"dataset '{params.dataset}' has a single class; classification metrics are undefined")
    out = CheckOutput()
    data, average = _encode(ctx, params, params.model, y, classes)
    stat = _classification_stat(data, average, params.ece_bins)
    names = [m for m in CLASSIFICATION_METRICS if m in stat(np.ones((1, len(y))))]
    if data.proba is None:
        out.warnings.append(f"model '{params.model}' has no predict_proba: roc_auc, log_loss and ece not reported")
    # scikit-learn computes the reported point estimates; the weighted forms must agree
    reference = sklearn_classification(data, average)
    _add_metrics(out, ctx, params, names, stat, len(y))
    _exact_proportions(out, ctx, data, average, params)
    for name, value in reference.items():
        if abs(out.metrics[name].value - value) > 1e-9:
            raise AssertionError(f"{name}: weighted form {out.metrics[name].value} != scikit-learn {value}")
    out.details.update(
        classes=[str(c) for c in classes],
        average=average,
        n=len(y),
        positive_label=str(classes[data.positive]) if data.positive is not None else None,
        ece="top-label, equal-width bins",
        ece_bins=params.ece_bins,
    )
    if params.baseline:
        base, _ = _encode(ctx, params, params.baseline, y, classes)
        base_stat = _classification_stat(base, average, params.ece_bins)
        common = [m for m in names if m in base_stat(np.ones((1, len(y))))]

        def delta(w: np.ndarray) -> dict[str, np.ndarray]:
            a, b = stat(w), base_stat(w)
            return {k: a[k] - b[k] for k in common}

        _add_metrics(out, ctx, params, common, delta, len(y), suffix="_delta")
        baseline_points = base_stat(np.ones((1, len(y))))
        out.details["baseline"] = {k: float(v[0]) for k, v in baseline_points.items()}
        out.details["agreement_rate"] = float(np.mean(data.p_idx == base.p_idx))
    return out


def run_regression(ctx: CheckContext, params: RegressionParams) -> CheckOutput:
    from sklearn import metrics as skm

    ds = ctx.dataset(params.dataset)
    y = np.asarray(ds.y(), dtype=float)
    pred = np.asarray(ctx.predict(params.model, params.dataset, "predict"), dtype=float).reshape(-1)
    if pred.shape != y.shape:
        raise ValueError(f"model '{params.model}' returned {pred.shape[0]} predictions for {y.shape[0]} rows")

    def stat(w: np.ndarray) -> dict[str, np.ndarray]:
        return wm.regression(w, y, pred)

    out = CheckOutput()
    names = list(REGRESSION_METRICS)
    _add_metrics(out, ctx, params, names, stat, len(y))
    reference = {
        "mae": skm.mean_absolute_error(y, pred),
        "rmse": skm.root_mean_squared_error(y, pred),
        "r2": skm.r2_score(y, pred),
        "mape": skm.mean_absolute_percentage_error(y, pred),
    }
    for name, value in reference.items():
        if not np.isclose(out.metrics[name].value, value, rtol=1e-9, atol=1e-12):
            raise AssertionError(f"{name}: weighted form {out.metrics[name].value} != scikit-learn {value}")
    out.details["n"] = len(y)
    if params.baseline:
        base = np.asarray(ctx.predict(params.baseline, params.dataset, "predict"), dtype=float).reshape(-1)

        def delta(w: np.ndarray) -> dict[str, np.ndarray]:
            a, b = wm.regression(w, y, pred), wm.regression(w, y, base)
            return {k: a[k] - b[k] for k in names}

        _add_metrics(out, ctx, params, names, delta, len(y), suffix="_delta")
        out.details["baseline"] = {k: float(v[0]) for k, v in wm.regression(np.ones((1, len(y))), y, base).items()}
    return out


def _specs(names: tuple[str, ...], delta: bool = True) -> tuple[MetricSpec, ...]:
    specs = [MetricSpec(n, f"{n} of the model on the dataset", n not in LOWER_IS_BETTER) for n in names]
    if delta:
        specs += [
            MetricSpec(
                f"{n}_delta", f"{n} of the model minus {n} of the baseline (paired interval)", n not in LOWER_IS_BETTER
            )
            for n in names
        ]
    return tuple(specs)


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    register(
        CheckDefinition(
            name="performance.classification",
            run=run_classification,
            params=ClassificationParams,
            metrics=_specs(CLASSIFICATION_METRICS),
            summary=(
                "Accuracy, balanced accuracy, precision, recall, F1, ROC AUC, log loss, ECE with bootstrap intervals."
            ),
            tags=("model-performance", "needs-labels"),
        )
    )
    register(
        CheckDefinition(
            name="performance.regression",
            run=run_regression,
            params=RegressionParams,
            metrics=_specs(REGRESSION_METRICS),
            summary="MAE, RMSE, R², MAPE with bootstrap intervals.",
            tags=("model-performance", "needs-labels"),
        )
    )
