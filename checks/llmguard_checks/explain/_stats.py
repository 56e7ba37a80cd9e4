"""Statistics over attributions: importance, stability, drift, proxies.

* Global importance of a feature is the mean |SHAP| over the explained rows (summed over
  explained outputs), shap's own ``Explanation.abs.mean(0)``.
* Candidate vs baseline: both are explained on the *same* rows, so a paired bootstrap
  over those rows (:func:`..._bootstrap.bootstrap_weighted`, scipy's bootstrap) gives
  intervals for the Spearman rank correlation of their importances and for the top-k
  overlap. Features one model does not use count as importance 0.
* Reference vs current: attribution drift is the total-variation distance between the
  two normalised importance vectors; its p-value comes from scipy's permutation test
  (rows exchanged between the two samples).
* Proxies: a feature's association with a sensitive column is |Spearman| for two
  numeric columns, Cramér's V for two categorical ones and the correlation ratio η
  (from scipy's one-way ANOVA) for numeric vs categorical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._bootstrap import bootstrap_weighted


def spearman(a: Any, b: Any) -> float:
    """Spearman's rho as ``scipy.stats.spearmanr`` gives it; NaN, without scipy's
    ConstantInputWarning, when either side is constant (the coefficient is undefined)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def importance(abs_values: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Mean |SHAP| per feature; with weights ``w`` (B x n), one row per weighting."""
    if w is None:
        out: np.ndarray = abs_values.mean(axis=0)
        return out
    weighted: np.ndarray = (w @ abs_values) / w.sum(axis=1, keepdims=True)
    return weighted


def top_k(features: list[str], imp: np.ndarray, k: int) -> list[str]:
    """The k most important features (ties broken by feature order, deterministically)."""
    order = np.argsort(-imp, kind="stable")
    return [features[i] for i in order[:k] if imp[i] > 0]


def _rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ra = stats.rankdata(a, axis=1)
    rb = stats.rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = (ra * rb).sum(axis=1) / den
    return out


def _rowwise_overlap(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    def mask(x: np.ndarray) -> np.ndarray:
        m = np.zeros_like(x, dtype=bool)
        np.put_along_axis(m, np.argsort(-x, axis=1, kind="stable")[:, :k], True, axis=1)
        return m

    out: np.ndarray = (mask(a) & mask(b)).sum(axis=1) / k
    return out


@dataclass
class Comparison:
    """Candidate vs baseline importance on the same rows."""

    features: list[str]
    candidate: np.ndarray
    baseline: np.ndarray
    k: int
    rank_correlation: float
    overlap: float
    rank_interval: tuple[float, float] | None
    overlap_interval: tuple[float, float] | None


def align(features: list[str], abs_values: np.ndarray, union: list[str]) -> np.ndarray:
    """Columns of ``abs_values`` placed on ``union`` (zeros for features not used)."""
    out = np.zeros((abs_values.shape[0], len(union)))
    for j, name in enumerate(features):
        out[:, union.index(name)] = abs_values[:, j]
    return out


def compare(
    cand_features: list[str],
    cand_abs: np.ndarray,
    base_features: list[str],
    base_abs: np.ndarray,
    top: int,
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> Comparison:
    """Rank correlation and top-k overlap, with paired bootstrap intervals over the rows."""
    union = list(dict.fromkeys([*cand_features, *base_features]))
    n = min(len(cand_abs), len(base_abs))
    a = align(cand_features, cand_abs[:n], union)
    b = align(base_features, base_abs[:n], union)
    k = max(1, min(top, len(cand_features), len(base_features)))

    def stat(w: np.ndarray) -> np.ndarray:
        ia, ib = importance(a, w), importance(b, w)
        return np.vstack([_rowwise_spearman(ia, ib), _rowwise_overlap(ia, ib, k)])

    point = stat(np.ones((1, n)))[:, 0]
    if not np.isfinite(point[0]):
        raise ValueError("rank correlation is undefined: one model's attributions are all equal")
    rank_iv = overlap_iv = None
    if n_resamples > 0 and n > 1:
        iv = bootstrap_weighted(stat, n, confidence=confidence, n_resamples=n_resamples, seed=seed)
        if np.isfinite(iv.low[0]) and np.isfinite(iv.high[0]):
            rank_iv = (float(iv.low[0]), float(iv.high[0]))
        overlap_iv = (float(iv.low[1]), float(iv.high[1]))
    return Comparison(
        union,
        importance(a),
        importance(b),
        k,
        float(point[0]),
        float(point[1]),
        rank_iv,
        overlap_iv,
    )


def importance_intervals(
    abs_values: np.ndarray, *, confidence: float, n_resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Bootstrap intervals of every feature's mean |SHAP|."""
    n = len(abs_values)
    if n_resamples <= 0 or n < 2:
        return None
    iv = bootstrap_weighted(
        lambda w: importance(abs_values, w).T,
        n,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )
    return iv.low, iv.high


def _tv(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Total-variation distance of normalised mean |SHAP| (samples along ``axis``)."""
    mx, my = np.mean(x, axis=axis), np.mean(y, axis=axis)
    px = mx / np.sum(mx, axis=-1, keepdims=True)
    py = my / np.sum(my, axis=-1, keepdims=True)
    out: np.ndarray = 0.5 * np.sum(np.abs(px - py), axis=-1)
    return out


@dataclass
class Drift:
    """Attribution drift of one model between two datasets."""

    distance: float
    p_value: float | None
    rank_correlation: float
    reference: np.ndarray
    current: np.ndarray


def attribution_drift(ref_abs: np.ndarray, cur_abs: np.ndarray, *, n_resamples: int, seed: int) -> Drift:
    """TV distance of normalised importances, permutation-test p-value, rank correlation."""
    if ref_abs.sum() <= 0 or cur_abs.sum() <= 0:
        raise ValueError("attribution drift is undefined: a dataset's attributions are all zero")
    distance = float(_tv(ref_abs.T, cur_abs.T))
    p_value = None
    if n_resamples > 0:
        res = stats.permutation_test(
            (ref_abs.T, cur_abs.T),
            _tv,
            vectorized=True,
            n_resamples=n_resamples,
            alternative="greater",
            axis=-1,
            random_state=np.random.default_rng(seed),
        )
        p_value = float(res.pvalue)
    ri, ci = importance(ref_abs), importance(cur_abs)
    rho = spearman(ri, ci) if len(ri) > 1 else 1.0
    return Drift(distance, p_value, rho if np.isfinite(rho) else 0.0, ri, ci)


# -- proxies of sensitive columns -------------------------------------------------------


def _categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) or s.nunique() <= 2


def association(x: pd.Series, s: pd.Series) -> tuple[float, str]:
    """Strength of association in [0, 1] between a feature and a sensitive column."""
    keep = x.notna() & s.notna()
    x, s = x[keep], s[keep]
    if x.nunique() < 2 or s.nunique() < 2:
        return 0.0, "constant"
    cx, cs = _categorical(x), _categorical(s)
    if cx and cs:
        table = pd.crosstab(x.astype(str), s.astype(str)).to_numpy()
        return float(stats.contingency.association(table, method="cramer")), "cramers_v"
    if not cx and not cs:
        return abs(spearman(x, s)), "abs_spearman"
    num, cat = (x, s) if not cx else (s, x)
    groups = [num[cat == g].to_numpy(dtype=float) for g in cat.unique()]
    groups = [g for g in groups if len(g) > 0]
    f = stats.f_oneway(*groups).statistic
    df_b, df_w = len(groups) - 1, len(num) - len(groups)
    if not np.isfinite(f):
        return 1.0, "correlation_ratio"  # zero variance within groups: fully determined
    return float(np.sqrt(f * df_b / (f * df_b + df_w))), "correlation_ratio"


def proxies(frame: pd.DataFrame, features: list[str], sensitive: list[str], threshold: float) -> list[dict[str, Any]]:
    """Every (feature, sensitive column) association, strongest first, flagged at ``threshold``."""
    rows = []
    for col in sensitive:
        for feat in features:
            if feat == col:
                continue
            value, measure = association(frame[feat], frame[col])
            rows.append(
                {
                    "feature": feat,
                    "sensitive": col,
                    "association": round(value, 6),
                    "measure": measure,
                    "proxy": bool(value >= threshold),
                }
            )
    rows.sort(key=lambda r: -float(r["association"]))  # type: ignore[arg-type]
    return rows
