"""drift.tabular: every column, the predictions and the target, with multiple-testing control.

Columns are compared in parallel threads (sorting and counting release the GIL). The
p-values of the feature columns form one family, corrected by Benjamini-Hochberg
(default) or Bonferroni; a column drifts when its *corrected* p-value is below ``alpha``
or its distance reaches its threshold. ``dataset_p_value`` is the smallest corrected
p-value — for Benjamini-Hochberg that is Simes' test of "no column drifted", for
Bonferroni the Bonferroni global test — so the dataset verdict rests on the corrected
decisions and keeps the family-wise level under the global null.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from llmguard_ops import CheckContext, CheckOutput

from ._columns import DEFAULT_THRESHOLDS, P_VALUE_METHODS, ColumnResult, ColumnRules, compare_column

if TYPE_CHECKING:
    import pandas as pd

    from . import TabularDriftParams

CORRECTION_NAMES = {
    "benjamini-hochberg": "Benjamini-Hochberg (false discovery rate)",
    "bonferroni": "Bonferroni (family-wise error rate)",
    "none": "none (each p-value compared with alpha as is)",
}


def correct(p_values: np.ndarray, how: str) -> np.ndarray:
    """Adjusted p-values of one family (scipy's ``false_discovery_control`` for BH)."""
    from scipy import stats

    if p_values.size == 0 or how == "none":
        return p_values.copy()
    if how == "bonferroni":
        capped: np.ndarray = np.minimum(p_values * p_values.size, 1.0)
        return capped
    return np.asarray(stats.false_discovery_control(p_values, method="bh"), dtype=float)


def _rules(params: TabularDriftParams, column: str) -> ColumnRules:
    thresholds = {**DEFAULT_THRESHOLDS, **{str(k): v for k, v in params.thresholds.items()}}
    kind = "categorical" if column in params.categorical else "numeric" if column in params.numeric else None
    method = params.methods.get(column, params.method)
    return ColumnRules(
        method=method,
        forced=column in params.methods,
        small_sample=params.small_sample,
        categorical_max_unique=params.categorical_max_unique,
        force_kind=kind,
        bins=params.bins,
        thresholds=thresholds,
    )


def feature_columns(params: TabularDriftParams, ref_frame: pd.DataFrame, skip: set[str]) -> list[str]:
    """The columns compared: ``columns`` if given, else every reference column but target/text."""
    if params.columns is not None:
        missing = [c for c in params.columns if c not in ref_frame.columns]
        if missing:
            raise ValueError(f"columns not in dataset '{params.reference}': {missing}")
        names = list(params.columns)
    else:
        names = [str(c) for c in ref_frame.columns if str(c) not in skip]
    return [c for c in names if c not in set(params.exclude)]


def _prediction_series(ctx: CheckContext, params: TabularDriftParams) -> tuple[Any, Any, str]:
    import pandas as pd

    assert params.model is not None
    obj = ctx.model(params.model).obj
    method = params.prediction_method
    if method == "auto":
        method = "predict_proba" if hasattr(obj, "predict_proba") else "predict"
    ref = np.asarray(ctx.predict(params.model, params.reference, method))
    cur = np.asarray(ctx.predict(params.model, params.current, method))
    if method == "predict_proba":
        if ref.ndim == 2 and ref.shape[1] == 2:
            return (
                pd.Series(ref[:, 1]),
                pd.Series(cur[:, 1]),
                "predict_proba (positive-class score)",
            )
        if ref.ndim == 2:  # several classes: compare the predicted labels
            return (
                pd.Series(ref.argmax(1).astype(str)),
                pd.Series(cur.argmax(1).astype(str)),
                "argmax of predict_proba",
            )
    return (
        pd.Series(ref.reshape(len(ref), -1)[:, 0]),
        pd.Series(cur.reshape(len(cur), -1)[:, 0]),
        method,
    )


def absent_column(name: str, params: TabularDriftParams) -> ColumnResult:
    """A reference column missing from the current data: drifted."""
    return ColumnResult(
        column=name,
        role="feature",
        method="schema",
        drifted=True,
        notes=[f"absent from dataset '{params.current}': counted as drifted"],
    )


def compare_frames(
    ref_frame: pd.DataFrame,
    cur_frame: pd.DataFrame,
    params: TabularDriftParams,
    skip: set[str] | None = None,
    extra: list[tuple[str, Any, Any]] | None = None,
) -> tuple[list[ColumnResult], list[ColumnResult], list[str]]:
    """Compare two frames column by column and decide with the correction.

    ``extra`` holds (role, reference Series, current Series) compared outside the feature
    family (``prediction``, ``target``). Returns (feature results, extra results, warnings).
    """
    names = feature_columns(params, ref_frame, skip or set())
    if not names:
        raise ValueError("no columns to compare (check 'columns' and 'exclude')")
    warnings: list[str] = []
    jobs: list[tuple[str, str, Any, Any]] = []
    absent: list[ColumnResult] = []
    for name in names:
        if name not in cur_frame.columns:
            absent.append(absent_column(name, params))
        else:
            jobs.append((name, "feature", ref_frame[name], cur_frame[name]))
    new_cols = [str(c) for c in cur_frame.columns if c not in ref_frame.columns and str(c) not in (skip or set())]
    if new_cols and params.columns is None:
        warnings.append(f"columns only in '{params.current}' (not compared): {new_cols[:10]}")
    jobs += [(role, role, ref, cur) for role, ref, cur in extra or []]

    def one(job: tuple[str, str, Any, Any]) -> ColumnResult:
        name, role, ref, cur = job
        rules = _rules(params, name if role == "feature" else role)
        return compare_column(name, role, ref.reset_index(drop=True), cur.reset_index(drop=True), rules)

    workers = params.workers or min(8, os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 1 and len(ref_frame) + len(cur_frame) > 20_000:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, jobs))
    else:
        results = [one(job) for job in jobs]
    features = [r for r in results if r.role == "feature"] + absent
    others = [r for r in results if r.role != "feature"]
    _decide(features, params)
    for r in others:
        if r.p_value is not None:
            r.p_value_adjusted = r.p_value  # single tests, outside the feature family
            r.drifted = r.p_value < params.alpha
    for r in features:
        if any(n.startswith(("mixed", "no non-missing", "missing share", "absent")) for n in r.notes):
            warnings.append(f"{r.column}: {'; '.join(r.notes)}")
    return features, others, warnings


def run_tabular(ctx: CheckContext, params: TabularDriftParams) -> CheckOutput:
    """Run drift.tabular (see the module docstring and docs/drift.md)."""
    if ctx.is_partitioned(params.reference) or ctx.is_partitioned(params.current):
        from ._partitioned import run_partitioned

        return run_partitioned(ctx, params)
    ref_ds, cur_ds = ctx.dataset(params.reference), ctx.dataset(params.current)
    ref_frame, cur_frame = ref_ds.frame, cur_ds.frame
    skip = {c for c in (ref_ds.spec.target, ref_ds.spec.text, cur_ds.spec.target) if c}
    extra: list[tuple[str, Any, Any]] = []
    prediction_source = None
    if params.model is not None:
        ref_pred, cur_pred, prediction_source = _prediction_series(ctx, params)
        extra.append(("prediction", ref_pred, cur_pred))
    target = ref_ds.spec.target
    if params.target and target and target == cur_ds.spec.target and target in cur_frame.columns:
        extra.append(("target", ref_frame[target], cur_frame[target]))
    features, others, warnings = compare_frames(ref_frame, cur_frame, params, skip, extra)
    out = CheckOutput(warnings=warnings)
    thresholds = {**DEFAULT_THRESHOLDS, **{str(k): v for k, v in params.thresholds.items()}}
    add_metrics(out, features, others, params)
    rows = [r.record() for r in features + others]
    out.details.update(
        columns=rows,
        correction=CORRECTION_NAMES[params.correction],
        alpha=params.alpha,
        thresholds=thresholds,
        auto_rule=(
            f"reference ≤ {params.small_sample} non-missing values: KS (numeric), two-proportion z "
            "(≤ 2 categories), chi-square (more); larger: Wasserstein/std (numeric), "
            "Jensen-Shannon distance (categorical); numeric with "
            f"≤ {params.categorical_max_unique} distinct values is categorical"
        ),
        drift_share=params.drift_share,
        reference=params.reference,
        current=params.current,
        rows={"reference": len(ref_frame), "current": len(cur_frame)},
    )
    if prediction_source:
        out.details["prediction_source"] = f"model '{params.model}' {prediction_source}"
    _write_table(ctx, out, rows)
    return out


def _decide(features: list[ColumnResult], params: TabularDriftParams) -> None:
    family = [r for r in features if r.method in P_VALUE_METHODS and r.p_value is not None]
    adjusted = correct(np.array([r.p_value for r in family], dtype=float), params.correction)
    for r, p in zip(family, adjusted, strict=True):
        r.p_value_adjusted = float(p)
        r.drifted = bool(p < params.alpha)


def add_metrics(
    out: CheckOutput,
    features: list[ColumnResult],
    others: list[ColumnResult],
    params: TabularDriftParams,
) -> None:
    """The check's metrics from the decided column results."""
    counted = [r for r in features if r.drifted is not None]
    if not counted:
        raise ValueError("no column could be compared (every column is empty on both sides)")
    n_drifted = sum(bool(r.drifted) for r in counted)
    for r in features:
        _column_metrics(out, f"column.{r.column}", r)
    for r in others:
        _column_metrics(out, r.role, r)
    share = n_drifted / len(counted)
    out.add("share_drifted_columns", share, n=len(counted))
    out.add("n_drifted_columns", float(n_drifted), n=len(counted))
    out.add("n_columns", float(len(counted)))
    p_adj = [r.p_value_adjusted for r in counted if r.p_value_adjusted is not None]
    if p_adj:
        out.add("dataset_p_value", min(p_adj), p_value=min(p_adj), n=len(p_adj))
    out.add("dataset_drift", float(share >= params.drift_share), n=len(counted))


def _column_metrics(out: CheckOutput, prefix: str, r: ColumnResult) -> None:
    n = r.n_reference + r.n_current
    if r.statistic is not None:
        out.add(f"{prefix}.statistic", r.statistic, p_value=r.p_value, n=n)
    if r.p_value is not None:
        out.add(f"{prefix}.p_value", r.p_value, p_value=r.p_value, n=n)
        if r.p_value_adjusted is not None:
            out.add(f"{prefix}.p_value_adjusted", r.p_value_adjusted, p_value=r.p_value_adjusted, n=n)
    if r.distance is not None:
        out.add(f"{prefix}.distance", r.distance, n=n)
    if r.drifted is not None:
        out.add(f"{prefix}.drifted", float(r.drifted), n=n)


def _write_table(ctx: CheckContext, out: CheckOutput, rows: list[dict[str, Any]]) -> None:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("|".join(v) if isinstance(v, list) else v) for k, v in row.items()})
    out.artifacts["columns"] = str(ctx.write_artifact("drift_columns.csv", buf.getvalue()).path)
