"""drift.tabular over partitioned datasets: per-partition statistics, merged, never the rows.

One pass over each side's partitions (``ctx.partition_map``) builds, per column, the
statistics the methods need; a second pass over numeric columns compared by binned
methods counts the reference-quantile bins:

* categorical columns: exact value counts (:class:`CategoryCounts`), so chi-square, the
  two-proportion z-test, Jensen-Shannon and PSI equal the in-memory values;
* numeric columns: exact moments (count, mean, variance), the missing and infinite counts,
  the distinct values up to ``categorical_max_unique`` (the auto rule's "few distinct
  values" stays exact), and a KLL quantile sketch. KS and Wasserstein come from the
  sketches with their error bound (in the metric's interval and the column's notes);
  the KS p-value is Smirnov's asymptotic one at the sketched D, its interval the p-values
  at the ends of D's bound. Binned PSI/JS/chi-square use bin edges at the *sketched*
  reference quantiles (each within ``rank_error`` in rank of the exact one) and exact
  counts in those bins: exact given the edges.

Anderson-Darling needs the pooled ranks of every value and is not available here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from llmguard_ops import CategoryCounts, CheckContext, CheckOutput, FixedHistogram, Moments, QuantileSketch

from . import _stats as st
from ._columns import (
    DEFAULT_THRESHOLDS,
    NUMERIC_ONLY,
    P_VALUE_METHODS,
    ColumnResult,
    ColumnRules,
    _choose,
    _is_numeric,
    record_sizes,
)
from ._tabular import CORRECTION_NAMES, _decide, _rules, _write_table, absent_column, add_metrics

if TYPE_CHECKING:
    import pandas as pd

    from . import TabularDriftParams

PREDICTION = "__prediction__"
#: level of the KLL error bounds (datasketches' rank error holds with 99 % confidence)
SKETCH_CONFIDENCE = 0.99


@dataclass
class SketchedColumn(ColumnResult):
    """A column result whose statistic came from sketches, with its error bound."""

    sketch_bound: float | None = None


@dataclass
class ColumnProfile:
    """The mergeable statistics of one column on one side."""

    numeric: bool
    rows: int = 0
    missing: int = 0
    infinite: int = 0
    counts: CategoryCounts = field(default_factory=CategoryCounts)
    moments: Moments = field(default_factory=Moments)
    sketch: QuantileSketch | None = None

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        if other.numeric != self.numeric:
            raise ValueError("a column is numeric in one partition and not in another")
        self.rows += other.rows
        self.missing += other.missing
        self.infinite += other.infinite
        self.counts.merge(other.counts)
        self.moments.merge(other.moments)
        if self.sketch is not None and other.sketch is not None:
            self.sketch.merge(other.sketch)
        return self


def _profile_series(series: pd.Series, cap: int | None, k: int) -> ColumnProfile:
    if not _is_numeric(series):
        prof = ColumnProfile(numeric=False, rows=len(series))
        prof.counts.update(series)
        prof.missing = prof.counts.missing
        return prof
    arr = series.to_numpy(dtype=float, na_value=np.nan)
    finite = arr[np.isfinite(arr)]
    prof = ColumnProfile(
        numeric=True,
        rows=len(arr),
        missing=int(np.isnan(arr).sum()),
        infinite=int(np.isinf(arr).sum()),
        counts=CategoryCounts(cap=cap),
        sketch=QuantileSketch(k).update(finite),
    )
    prof.counts.update(finite)
    prof.moments.update(finite)
    return prof


def profile_partition(
    frame: pd.DataFrame,
    columns: list[str],
    cap: int,
    k: int,
    model: Any = None,
    features: list[str] | None = None,
    method: str | None = None,
    categorical: tuple[str, ...] = (),
) -> dict[str, ColumnProfile]:
    """The profiles of ``columns`` (and of the model's predictions) on one partition.

    Numeric columns keep their distinct values up to ``cap`` (the auto rule), every one
    of them when declared ``categorical``.
    """
    out = {c: _profile_series(frame[c], None if c in categorical else cap, k) for c in columns}
    if model is not None and features is not None and method is not None:
        out[PREDICTION] = _profile_series(_predictions(frame, model, features, method), cap, k)
    return out


def _predictions(frame: pd.DataFrame, model: Any, features: list[str], method: str) -> pd.Series:
    """The model's compared output on one partition, as the in-memory check takes it."""
    import pandas as pd

    scores = np.asarray(getattr(model, method)(frame[features]))
    if method == "predict_proba" and scores.ndim == 2 and scores.shape[1] == 2:
        return pd.Series(scores[:, 1])
    if scores.ndim == 2:
        return pd.Series(scores.argmax(1).astype(str))
    return pd.Series(scores.reshape(len(scores), -1)[:, 0])


def _merge_by_name(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-name statistics of every partition merged into the first partition's, in order."""
    merged = parts[0]
    for part in parts[1:]:
        for name, stat in part.items():
            merged[name].merge(stat)
    return merged


def _histogram(
    frame: pd.DataFrame,
    edges: dict[str, np.ndarray],
    model: Any = None,
    features: list[str] | None = None,
    method: str | None = None,
) -> dict[str, FixedHistogram]:
    """Counts in fixed bins per column (``PREDICTION``: of the model's output) on one partition."""
    out = {}
    for c, e in edges.items():
        if c == PREDICTION:
            assert features is not None and method is not None
            values = _predictions(frame, model, features, method).to_numpy(dtype=float)
        else:
            values = frame[c].to_numpy(dtype=float, na_value=np.nan)
        out[c] = FixedHistogram(e).update(values)
    return out


@dataclass
class _Side:
    name: str
    profiles: dict[str, ColumnProfile]
    passes: list[dict[str, Any]]
    model: dict[str, Any] = field(default_factory=dict)  # model, features, method (prediction drift)


def _scan(ctx: CheckContext, params: TabularDriftParams, dataset: str, columns: list[str], k: int) -> _Side:
    present = [c for c in columns if c in ctx.dataset(dataset).columns]
    model = features = method = None
    read = list(present)
    if params.model is not None:
        loaded = ctx.model(params.model)
        model = loaded.obj
        features = loaded.feature_names(ctx.dataset(dataset))
        method = params.prediction_method
        if method == "auto":
            method = "predict_proba" if hasattr(model, "predict_proba") else "predict"
        read = list(dict.fromkeys([*present, *features]))
    fn = functools.partial(
        profile_partition,
        columns=present,
        cap=params.categorical_max_unique,
        k=k,
        model=model,
        features=features,
        method=method,
        categorical=tuple(params.categorical),
    )
    result = ctx.partition_map(dataset, fn, columns=read)
    reading = {"model": model, "features": features, "method": method} if model is not None else {}
    return _Side(dataset, _merge_by_name(result.values), [{"dataset": dataset, **result.describe()}], reading)


def _ks_p(d: float, n1: int, n2: int) -> float:
    from scipy import stats

    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(stats.kstwo.sf(min(max(d, 0.0), 1.0), np.round(m * n / (m + n))), 0, 1))


@dataclass
class _Pending:
    """A column compared by numeric bins, waiting for the second pass."""

    result: SketchedColumn
    method: str
    edges: np.ndarray


def _compare(
    name: str, role: str, ref: ColumnProfile, cur: ColumnProfile, rules: ColumnRules
) -> SketchedColumn | _Pending:
    out = SketchedColumn(column=name, role=role)
    out.missing_reference = ref.missing / ref.rows if ref.rows else 0.0
    out.missing_current = cur.missing / cur.rows if cur.rows else 0.0
    if abs(out.missing_reference - out.missing_current) >= 0.05:
        out.notes.append(f"missing share changed: {out.missing_reference:.1%} → {out.missing_current:.1%}")
    if ref.numeric != cur.numeric:
        raise ValueError(
            f"column '{name}' is numeric on one side and text on the other; partitioned drift "
            "compares columns of one type (cast them when writing the partitions)"
        )
    kind = "numeric" if ref.numeric else "categorical"
    if rules.force_kind == "numeric" and not ref.numeric:
        raise ValueError(f"column '{name}' is declared numeric but holds non-numeric values")
    labels: list[Any] = []
    rc = cc = np.zeros(0, dtype=np.int64)
    if ref.numeric and (ref.infinite or cur.infinite):
        out.notes.append(f"infinite values treated as missing (reference {ref.infinite}, current {cur.infinite})")
    few = (
        ref.numeric
        and not ref.counts.overflowed
        and not cur.counts.overflowed
        and rules.method not in NUMERIC_ONLY
        and len(set(ref.counts.counts) | set(cur.counts.counts)) <= rules.categorical_max_unique
    )
    if ref.numeric and (rules.force_kind == "categorical" or (rules.force_kind is None and few)):
        kind = "categorical"
        values: list[Any] = sorted(set(ref.counts.counts) | set(cur.counts.counts))
        if rules.force_kind is None:
            out.notes.append(f"numeric with {len(values)} distinct values: compared as categories")
        rc = np.array([ref.counts.counts.get(v, 0) for v in values], dtype=np.int64)
        cc = np.array([cur.counts.counts.get(v, 0) for v in values], dtype=np.int64)
        labels = [f"{v:g}" for v in values]
    elif not ref.numeric:
        labels, rc, cc = CategoryCounts.aligned(ref.counts, cur.counts)
    n_ref = ref.moments.n if kind == "numeric" else int(rc.sum())
    n_cur = cur.moments.n if kind == "numeric" else int(cc.sum())
    if not record_sizes(out, kind, [str(lab) for lab in labels], rc, cc, int(n_ref), int(n_cur)):
        return out
    method = _choose(kind, len(labels), rules, n_ref, out)
    out.method = method
    if method == "anderson":
        raise ValueError(
            f"column '{name}': Anderson-Darling needs every value's rank; not available on partitioned data"
        )
    if kind == "numeric" and method in ("psi", "jensenshannon", "chisquare"):
        assert ref.sketch is not None
        qs = ref.sketch.quantiles(np.linspace(0, 1, rules.bins + 1)[1:-1])
        edges = np.unique(qs)
        out.notes.append(
            f"binned at {edges.size + 1} reference-quantile bins (edges from the KLL sketch, each within "
            f"{ref.sketch.rank_error:.3g} in rank of the exact quantile; counts in them exact)"
        )
        return _Pending(out, method, edges)
    if kind == "numeric":
        assert ref.sketch is not None and cur.sketch is not None
        _sketched(method, ref, cur, out)
    else:
        _counted(method, rc, cc, out)
    _threshold(method, rules, out)
    return out


def _sketched(method: str, ref: ColumnProfile, cur: ColumnProfile, out: SketchedColumn) -> None:
    assert ref.sketch is not None and cur.sketch is not None
    kept_ref, kept_cur = ref.sketch.values(), cur.sketch.values()
    if kept_ref is not None and kept_cur is not None:  # at most k values a side: the sketches hold them all
        sample = st.NumericSample(kept_ref, kept_cur)
        if method == "ks":
            out.statistic, out.p_value = st.ks(sample)
        else:
            out.distance, raw, note = st.normalised_wasserstein(sample)
            out.statistic = out.distance
            out.notes.append(f"raw Wasserstein distance {raw:.6g}")
            if note:
                out.notes.append(note)
        out.notes.append("exact: the sketches kept every value (at most k per side)")
        out.sketch_bound = 0.0  # the interval of a sketched metric, of zero width: gates read it alike
        return
    if method == "ks":
        d = ref.sketch.ks(cur.sketch)
        out.statistic, out.p_value = d.value, _ks_p(d.value, ref.moments.n, cur.moments.n)
        out.notes.append(
            f"KS from KLL sketches: D within ±{d.bound:.3g}; p from Smirnov's asymptotic distribution "
            f"(p over that range: {_ks_p(d.upper, ref.moments.n, cur.moments.n):.3g} to "
            f"{_ks_p(d.lower, ref.moments.n, cur.moments.n):.3g})"
        )
        out.sketch_bound = d.bound
    elif method == "wasserstein":
        w = ref.sketch.wasserstein(cur.sketch)
        scale = ref.moments.std()
        note = None
        if scale == 0.0:
            pooled = Moments(ref.moments.n, ref.moments.mean, ref.moments.m2).merge(cur.moments)
            scale = pooled.std()
            note = "reference is constant: distance normalised by the pooled standard deviation"
        if scale == 0.0:
            out.distance = out.statistic = 0.0
            out.notes.append("both samples are the same constant")
        else:
            out.distance = out.statistic = w.value / scale
            out.sketch_bound = w.bound / scale
        out.notes.append(f"raw Wasserstein distance {w.value:.6g} ± {w.bound:.3g} (from KLL sketches)")
        if note:
            out.notes.append(note)


def _counted(method: str, rc: np.ndarray, cc: np.ndarray, out: ColumnResult) -> None:
    if method == "chisquare":
        out.statistic, out.p_value = st.chi_square(rc, cc)
    elif method == "z":
        out.statistic, out.p_value = st.two_proportion_z(rc, cc)
    elif method == "jensenshannon":
        out.statistic = out.distance = st.jensen_shannon(rc, cc)
    elif method == "psi":
        out.statistic = out.distance = st.psi(rc, cc)
    else:
        raise ValueError(f"column '{out.column}': method '{method}' needs numbers")


def _threshold(method: str, rules: ColumnRules, out: ColumnResult) -> None:
    if method not in P_VALUE_METHODS and out.distance is not None:
        out.threshold = rules.thresholds.get(method, DEFAULT_THRESHOLDS[method])
        out.drifted = out.distance >= out.threshold


def _columns(ctx: CheckContext, params: TabularDriftParams, skip: set[str]) -> list[str]:
    ref_cols = ctx.dataset(params.reference).columns
    if params.columns is not None:
        missing = [c for c in params.columns if c not in ref_cols]
        if missing:
            raise ValueError(f"columns not in dataset '{params.reference}': {missing}")
        names = list(params.columns)
    else:
        names = [c for c in ref_cols if c not in skip]
    names = [c for c in names if c not in set(params.exclude)]
    if not names:
        raise ValueError("no columns to compare (check 'columns' and 'exclude')")
    return names


def run_partitioned(ctx: CheckContext, params: TabularDriftParams, k: int = 4096) -> CheckOutput:
    """drift.tabular where the reference or the current dataset is partitioned."""
    ref_ds, cur_ds = ctx.dataset(params.reference), ctx.dataset(params.current)
    skip = {c for c in (ref_ds.spec.target, ref_ds.spec.text, cur_ds.spec.target) if c}
    names = _columns(ctx, params, skip)
    target = ref_ds.spec.target
    with_target = bool(params.target and target and target == cur_ds.spec.target and target in cur_ds.columns)
    scanned = names + ([target] if with_target and target else [])
    ref, cur = _scan(ctx, params, params.reference, scanned, k), _scan(ctx, params, params.current, scanned, k)
    warnings: list[str] = []
    jobs: list[tuple[str, str]] = [(n, "feature") for n in names if n in cur.profiles]
    absent = [absent_column(n, params) for n in names if n not in cur.profiles]
    if params.model is not None:
        jobs.append((PREDICTION, "prediction"))
    if with_target and target:
        jobs.append((target, "target"))
    results: list[ColumnResult] = []
    pending: list[tuple[_Pending, str]] = []
    for name, role in jobs:
        rules = _rules(params, name if role == "feature" else role)
        label = "prediction" if name == PREDICTION else name
        got = _compare(label, role, ref.profiles[name], cur.profiles[name], rules)
        if isinstance(got, _Pending):
            pending.append((got, name))
            results.append(got.result)
        else:
            results.append(got)
    if pending:
        _second_pass(ctx, params, (ref, cur), pending)
    features = [r for r in results if r.role == "feature"] + absent
    others = [r for r in results if r.role != "feature"]
    _decide(features, params)
    for r in others:
        if r.p_value is not None:
            r.p_value_adjusted = r.p_value
            r.drifted = r.p_value < params.alpha
    for r in features:
        if any(n.startswith(("no non-missing", "missing share", "absent")) for n in r.notes):
            warnings.append(f"{r.column}: {'; '.join(r.notes)}")
    warnings += [note for side in (ref, cur) for p in side.passes for note in p.get("notes", [])]
    out = CheckOutput(warnings=warnings)
    add_metrics(out, features, others, params)
    _bounds(out, features, others)
    rows = [r.record() for r in features + others]
    out.details.update(
        columns=rows,
        correction=CORRECTION_NAMES[params.correction],
        alpha=params.alpha,
        thresholds={**DEFAULT_THRESHOLDS, **{str(k): v for k, v in params.thresholds.items()}},
        drift_share=params.drift_share,
        reference=params.reference,
        current=params.current,
        rows={"reference": ref_ds.rows, "current": cur_ds.rows},
        partitioned={
            "passes": ref.passes + cur.passes,
            "sketch": f"Apache DataSketches KLL, k={k}",
            "exact": "value counts (categorical), moments, missing shares, chi-square/z/JS/PSI on counts",
            "sketched": "KS and Wasserstein (statistic ± bound in the metric's interval), "
            "reference-quantile bin edges of numeric PSI/JS/chi-square",
        },
    )
    _write_table(ctx, out, rows)
    return out


def _second_pass(
    ctx: CheckContext, params: TabularDriftParams, sides: tuple[_Side, _Side], pending: list[tuple[_Pending, str]]
) -> None:
    """Exact counts in the sketched bins, one more pass over each side."""
    counts = {}
    for side in sides:
        edges = {name: p.edges for p, name in pending}
        fn = functools.partial(_histogram, edges=edges, **side.model)
        read = [n for n in edges if n != PREDICTION] + list(side.model.get("features") or [])
        result = ctx.partition_map(side.name, fn, columns=list(dict.fromkeys(read)))
        side.passes.append({"dataset": side.name, "bins": True, **result.describe()})
        counts[side.name] = _merge_by_name(result.values)
    for p, name in pending:
        rc, cc = counts[params.reference][name].counts, counts[params.current][name].counts
        _counted(p.method, rc, cc, p.result)
        _threshold(p.method, _rules(params, name if p.result.role == "feature" else p.result.role), p.result)


def _bounds(out: CheckOutput, features: list[ColumnResult], others: list[ColumnResult]) -> None:
    """Put each sketched statistic's bound into its metric as the interval."""
    for r in features + others:
        bound = r.sketch_bound if isinstance(r, SketchedColumn) else None
        if bound is None:
            continue
        prefix = f"column.{r.column}" if r.role == "feature" else r.role
        for suffix in ("statistic", "distance"):
            metric = out.metrics.get(f"{prefix}.{suffix}")
            if metric is not None:
                top = metric.value + bound if r.method != "ks" else min(1.0, metric.value + bound)
                metric.lower, metric.upper = max(0.0, metric.value - bound), top
                metric.confidence = SKETCH_CONFIDENCE
                metric.interval_method = (
                    "KLL sketch error bound (datasketches' 99 % rank-error bound)"
                    if bound > 0
                    else "exact (the KLL sketches kept every value)"
                )
