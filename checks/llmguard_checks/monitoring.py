"""Checks for production windows: ``monitor.column_stats`` and ``monitor.cbpe``.

``monitor.column_stats`` summarises logged numeric columns (e.g. a request latency):
mean with a t interval, quantiles with distribution-free order-statistic intervals
(scipy's ``quantile_test``), and the share of missing values.

``monitor.cbpe`` is confidence-based performance estimation as NannyML defines it:
scores calibrated on a labelled reference (isotonic regression) give each row of an
unlabelled window its probability of being classified correctly, so the expected
confusion matrix, and from it accuracy, precision, recall and F1, are known before
the labels arrive. A predicted positive with calibrated score p adds p to the expected
true positives and 1 − p to the false positives; a predicted negative adds p to the
false negatives and 1 − p to the true negatives. The accuracy interval is that of the
realised accuracy given calibrated scores (rows independent Bernoulli draws; normal
approximation to the Poisson-binomial). It assumes the calibration learnt on the
reference still holds in the window: no concept drift (P(y | x) unchanged); covariate
shift is allowed. The report states this.

``monitor.root_cause`` ranks the segments of a window (sensitive groups, categorical
values, numeric columns binned on the reference's quantiles) by how much of the
performance drop they explain: a segment's contribution is the rise in the window's
overall accuracy if that segment had its reference accuracy ("what-if" attribution),
share_in_window × (accuracy_reference − accuracy_window), the segment's part of the
drop that does not come from a change in the mix of segments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llmguard_ops import CheckContext, CheckDefinition, CheckOutput, DatasetRef, MetricSpec, ModelRef, hookimpl

CBPE_ASSUMPTIONS = (
    "CBPE assumes the scores calibrated on the reference stay calibrated in this window: "
    "P(label | features) unchanged (no concept drift). Under concept drift the estimate is "
    "wrong without warning; compare with realised performance once labels arrive."
)


class ColumnStatsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: DatasetRef = Field("current", description="Dataset (e.g. a production window).")
    columns: list[str] = Field(min_length=1, description="Numeric columns to summarise.")
    quantiles: list[float] = Field(
        default_factory=lambda: [0.5, 0.95], description="Quantiles reported as p50, p95, ..."
    )


def _qname(q: float) -> str:
    return "p" + f"{q * 100:g}".replace(".", "_")


def run_column_stats(ctx: CheckContext, params: ColumnStatsParams) -> CheckOutput:
    import pandas as pd
    from scipy import stats

    frame = ctx.dataset(params.dataset).frame
    out = CheckOutput()
    for col in params.columns:
        if col not in frame.columns:
            raise ValueError(f"dataset '{params.dataset}' has no column '{col}'")
        raw = pd.to_numeric(frame[col], errors="coerce")
        x = raw.dropna().to_numpy(dtype=float)
        n_all = len(raw)
        out.add(f"{col}.missing_share", float(1 - len(x) / n_all) if n_all else 0.0, n=n_all)
        if len(x) < 2:
            raise ValueError(f"column '{col}' has fewer than two numeric values")
        level = ctx.confidence(f"{col}.mean")
        ci = stats.ttest_1samp(x, 0.0).confidence_interval(level)
        out.add(
            f"{col}.mean",
            float(x.mean()),
            lower=float(ci.low),
            upper=float(ci.high),
            confidence=level,
            interval_method="t",
            n=len(x),
        )
        for q in params.quantiles:
            name = f"{col}.{_qname(q)}"
            level = ctx.confidence(name)
            value = float(np.quantile(x, q))
            qi = stats.quantile_test(x, q=value, p=q).confidence_interval(level)
            fields: dict[str, Any] = {"n": len(x)}
            if math.isfinite(qi.low) and math.isfinite(qi.high):
                fields.update(
                    lower=float(qi.low),
                    upper=float(qi.high),
                    confidence=level,
                    interval_method="order statistics (scipy quantile_test)",
                )
            out.add(name, value, **fields)
    return out


class CbpeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="Binary classifier with predict_proba.")
    reference: DatasetRef = Field("reference", description="Labelled data the scores are calibrated on.")
    dataset: DatasetRef = Field("current", description="Window whose labels are not (yet) known.")
    threshold: float = Field(0.5, gt=0, lt=1, description="Predict positive when the score is at least this.")


def calibrator(ref_scores: np.ndarray, ref_labels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Isotonic map from raw scores to P(y = 1), fitted on the reference."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(ref_scores, ref_labels)
    return lambda s: np.asarray(iso.predict(s), dtype=float)


def estimate(p: np.ndarray, predicted: np.ndarray, confidence: float = 0.95) -> dict[str, tuple[float, float, float]]:
    """Expected accuracy, precision, recall and F1 from calibrated scores (value, low, high).

    ``p``: calibrated P(y = 1) per row; ``predicted``: 0/1 predictions. Only the accuracy
    carries an interval (low = high = value for the others).
    """
    from scipy.stats import norm

    pos = predicted.astype(bool)
    tp, fp = float(p[pos].sum()), float((1 - p[pos]).sum())
    fn, tn = float(p[~pos].sum()), float((1 - p[~pos]).sum())
    n = len(p)
    correct = np.where(pos, p, 1 - p)
    acc = float(correct.mean())
    half = float(norm.ppf(0.5 + confidence / 2) * math.sqrt(float((correct * (1 - correct)).sum())) / n)
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "accuracy": (acc, max(0.0, acc - half), min(1.0, acc + half)),
        "precision": (precision, precision, precision),
        "recall": (recall, recall, recall),
        "f1": (f1, f1, f1),
        "expected_tp": (tp, tp, tp),
        "expected_fp": (fp, fp, fp),
        "expected_fn": (fn, fn, fn),
        "expected_tn": (tn, tn, tn),
    }


def _positive_scores(ctx: CheckContext, model: str, dataset: str) -> np.ndarray:
    proba = np.asarray(ctx.predict(model, dataset, "predict_proba"), dtype=float)
    if proba.ndim != 2 or proba.shape[1] != 2:
        raise ValueError(f"monitor.cbpe needs a binary classifier; model '{model}' gives {proba.shape[-1]} scores")
    return proba[:, 1]


def run_cbpe(ctx: CheckContext, params: CbpeParams) -> CheckOutput:
    ref = ctx.dataset(params.reference)
    y_ref = np.asarray(ref.y())
    labels = np.unique(y_ref)
    if len(labels) != 2:
        raise ValueError(f"monitor.cbpe needs two classes in '{params.reference}', found {len(labels)}")
    cal = calibrator(_positive_scores(ctx, params.model, params.reference), (y_ref == labels[1]).astype(float))
    scores = _positive_scores(ctx, params.model, params.dataset)
    level = ctx.confidence("accuracy")
    est = estimate(cal(scores), (scores >= params.threshold).astype(int), level)
    out = CheckOutput()
    n = len(scores)
    for name, (value, low, high) in est.items():
        if name == "accuracy":
            out.add(
                name,
                value,
                lower=low,
                upper=high,
                confidence=level,
                n=n,
                interval_method="CBPE: Poisson-binomial, normal approximation",
            )
        else:
            out.add(name, value, n=n)
    out.details["assumptions"] = CBPE_ASSUMPTIONS
    out.details["calibration"] = f"isotonic regression on '{params.reference}' ({len(y_ref)} rows)"
    out.warnings.append(CBPE_ASSUMPTIONS)
    return out


class RootCauseParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="Classifier whose accuracy dropped.")
    dataset: DatasetRef = Field("current", description="The window.")
    reference: DatasetRef = Field("reference", description="Labelled data with the expected performance.")
    columns: list[str] | None = Field(
        None,
        min_length=1,
        description="Columns to segment by (default: the window's sensitive columns, then its features, "
        "else every column but the target).",
    )
    metric: Literal["accuracy", "cbpe_accuracy"] = Field(
        "accuracy",
        description="accuracy: realised (needs the window's labels); cbpe_accuracy: CBPE's estimate per "
        "segment (labels not needed in the window).",
    )
    bins: int = Field(4, ge=2, le=20, description="Numeric columns: quantile bins of the reference.")
    max_categories: int = Field(
        20,
        ge=2,
        description="Numeric columns with at most this many values are categories; "
        "other columns with more are skipped.",
    )
    min_rows: int = Field(30, ge=1, description="A segment needs this many rows in the window and in the reference.")
    top: int = Field(10, ge=1, description="Segments listed in details.root_causes.")
    threshold: float = Field(0.5, gt=0, lt=1, description="cbpe_accuracy: predict positive at this score.")


def _segments(ref: Any, win: Any, column: str, params: RootCauseParams) -> tuple[Any, Any, str] | str:
    """Segment labels of the reference and window rows for ``column``, or why it is skipped."""
    import pandas as pd

    r, w = ref[column], win[column]
    numeric = pd.api.types.is_numeric_dtype(r) and pd.api.types.is_numeric_dtype(w)
    if numeric and pd.concat([r, w]).nunique(dropna=True) > params.max_categories:
        qs = np.nanquantile(r.to_numpy(dtype=float), np.linspace(0, 1, params.bins + 1)[1:-1])
        edges = [-np.inf, *np.unique(qs), np.inf]

        def label(x: Any) -> Any:
            cut = pd.cut(x.astype(float), edges, right=False)
            return cut.map(lambda iv: f"[{iv.left:.4g}, {iv.right:.4g})").astype(object).fillna("missing")

        return label(r), label(w), "binned"
    if w.nunique(dropna=False) > params.max_categories:
        return f"{w.nunique(dropna=False)} distinct values in the window (max_categories {params.max_categories})"
    return r.astype(str).where(r.notna(), "missing"), w.astype(str).where(w.notna(), "missing"), "category"


def _wilson(k: float, n: int, level: float) -> tuple[float, float]:
    from scipy import stats

    ci = stats.binomtest(round(k), n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def _normal(c: np.ndarray, level: float) -> tuple[float, float]:
    from scipy.stats import norm

    m = float(c.mean())
    half = float(norm.ppf(0.5 + level / 2) * math.sqrt(float((c * (1 - c)).sum())) / len(c))
    return max(0.0, m - half), min(1.0, m + half)


def run_root_cause(ctx: CheckContext, params: RootCauseParams) -> CheckOutput:
    ref, win = ctx.dataset(params.reference), ctx.dataset(params.dataset)
    y_ref = np.asarray(ref.y())
    ref_ok = (np.asarray(ctx.predict(params.model, params.reference)) == y_ref).astype(float)
    if params.metric == "accuracy":
        win_ok = (np.asarray(ctx.predict(params.model, params.dataset)) == np.asarray(win.y())).astype(float)
        method = "wilson"
    else:
        labels = np.unique(y_ref)
        if len(labels) != 2:
            raise ValueError(f"cbpe_accuracy needs two classes in '{params.reference}', found {len(labels)}")
        cal = calibrator(_positive_scores(ctx, params.model, params.reference), (y_ref == labels[1]).astype(float))
        scores = _positive_scores(ctx, params.model, params.dataset)
        p = cal(scores)
        win_ok = np.where(scores >= params.threshold, p, 1 - p)  # expected correctness per row
        method = "CBPE: Poisson-binomial, normal approximation"
    if params.columns is not None:
        columns = list(params.columns)
    else:
        cols = win.sensitive + (list(win.spec.features) if win.spec.features else [])
        if not cols:
            cols = [str(c) for c in win.frame.columns if c != win.target]
        columns = list(dict.fromkeys(cols))
    for col in columns:
        for ds, name in ((ref, params.reference), (win, params.dataset)):
            if col not in ds.frame.columns:
                raise ValueError(f"dataset '{name}' has no column '{col}'")
    level = ctx.confidence()
    n_win, n_ref = len(win_ok), len(ref_ok)
    if n_win == 0 or n_ref == 0:
        raise ValueError("monitor.root_cause needs rows in both the window and the reference")
    drop = float(ref_ok.mean() - win_ok.mean())
    segments: list[dict[str, Any]] = []
    skipped: list[str] = []
    for col in columns:
        seg = _segments(ref.frame, win.frame, col, params)
        if isinstance(seg, str):
            skipped.append(f"{col}: {seg}")
            continue
        r_lab, w_lab, kind = (np.asarray(seg[0], dtype=object), np.asarray(seg[1], dtype=object), seg[2])
        for value in sorted(set(w_lab.tolist()), key=str):
            in_w, in_r = w_lab == value, r_lab == value
            nw, nr = int(in_w.sum()), int(in_r.sum())
            if nw < params.min_rows or nr < params.min_rows:
                skipped.append(
                    f"{col}={value}: {nw} rows in the window, {nr} in the reference (min_rows {params.min_rows})"
                )
                continue
            aw, ar = float(win_ok[in_w].mean()), float(ref_ok[in_r].mean())
            share = nw / n_win
            win_ci = _wilson(win_ok[in_w].sum(), nw, level) if method == "wilson" else _normal(win_ok[in_w], level)
            segments.append(
                {
                    "column": col,
                    "segment": str(value),
                    "kind": "sensitive" if col in win.sensitive else kind,
                    "share": share,
                    "n_window": nw,
                    "n_reference": nr,
                    "window": aw,
                    "window_interval": list(win_ci),
                    "reference": ar,
                    "reference_interval": list(_wilson(ref_ok[in_r].sum(), nr, level)),
                    "contribution": share * (ar - aw),
                    "share_of_drop": share * (ar - aw) / drop if drop > 0 else None,
                }
            )
    segments.sort(key=lambda s: (-s["contribution"], s["column"], s["segment"]))
    for rank, s in enumerate(segments, 1):
        s["rank"] = rank
    out = CheckOutput()
    out.add("drop", drop, n=n_win)
    top = segments[0] if segments else None
    out.add("top_contribution", top["contribution"] if top else 0.0, n=top["n_window"] if top else 0)
    out.details.update(
        metric=params.metric,
        interval=f"{method} at {level:g} (window), wilson (reference)",
        method="what-if attribution: contribution = share in window x (reference - window metric of the segment)",
        window_metric=float(win_ok.mean()),
        reference_metric=float(ref_ok.mean()),
        min_rows=params.min_rows,
        root_causes=segments[: params.top],
        segments_ranked=len(segments),
        skipped=skipped,
    )
    if params.metric == "cbpe_accuracy":
        out.warnings.append(CBPE_ASSUMPTIONS)
    return out


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    register(
        CheckDefinition(
            name="monitor.column_stats",
            run=run_column_stats,
            params=ColumnStatsParams,
            metrics=(
                MetricSpec("*.mean", "mean of the column (<column>.mean)"),
                MetricSpec("*.p*", "a quantile of the column (<column>.p50, <column>.p95, ...)"),
                MetricSpec("*.missing_share", "share of non-numeric or missing values", False),
            ),
            summary="Mean, quantiles (order-statistic intervals) and missing share of logged numeric columns.",
        )
    )
    register(
        CheckDefinition(
            name="monitor.cbpe",
            run=run_cbpe,
            params=CbpeParams,
            metrics=tuple(
                MetricSpec(n, f"estimated {n} without labels (CBPE)", True)
                for n in ("accuracy", "precision", "recall", "f1")
            ),
            summary="Label-free accuracy, precision, recall, F1 of a binary classifier (NannyML's CBPE).",
            tags=("model-performance",),
        )
    )
    register(
        CheckDefinition(
            name="monitor.root_cause",
            run=run_root_cause,
            params=RootCauseParams,
            metrics=(
                MetricSpec("drop", "reference accuracy minus the window's (realised or CBPE)", False),
                MetricSpec("top_contribution", "the largest segment's part of the drop (what-if)", False),
            ),
            summary="Segments (sensitive groups, categories, numeric bins) ranked by their part of an accuracy drop.",
            tags=("model-performance", "root-cause", "needs-labels"),
        )
    )
