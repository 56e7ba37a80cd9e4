"""Group fairness as a function of the (group, y, ŷ) count table.

Every group-fairness metric of a binary classifier depends on the data only through
how many rows fall in each cell (group g, label y, prediction ŷ): a ``G x 2 x 2``
table. Collapsing a million rows into that table takes one ``bincount``; the
libraries (fairlearn, AIF360) then compute the point estimates on at most ``4·G``
weighted rows (``sample_weight`` = cell count), which is exactly what they would
compute on the rows themselves.

Resampling the rows with replacement (the ordinary bootstrap) is the same thing, in
distribution, as drawing the table from a multinomial with the observed cell shares:
so the bootstrap costs ``B x 4G`` numbers instead of ``B x n`` indices, and the
disparities of every resample are computed from count arrays below. The point
estimate of the same formulas is checked against the libraries on every run.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CountTable:
    """Cell counts ``counts[g, y, ŷ]`` for binary ``y``/``ŷ`` (1 = positive)."""

    counts: np.ndarray  # (G, 2, 2) integer counts
    labels: tuple[tuple[str, ...], ...]  # one tuple of column values per group

    @property
    def sizes(self) -> np.ndarray:
        out: np.ndarray = self.counts.sum(axis=(1, 2))
        return out

    def weighted_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(group index, y, ŷ, weight)`` of the non-empty cells: the collapsed dataset."""
        g, y, p = np.nonzero(self.counts)
        return g, y, p, self.counts[g, y, p].astype(np.float64)

    def subset(self, keep: np.ndarray) -> CountTable:
        idx = np.flatnonzero(keep)
        return CountTable(self.counts[idx], tuple(self.labels[i] for i in idx))


def build_table(columns: list[Any], y: np.ndarray, pred: np.ndarray) -> CountTable:
    """Collapse rows into a :class:`CountTable` over the intersection of ``columns``.

    Only combinations present in the data become groups (as in fairlearn's MetricFrame).
    ``columns`` are arrays or pandas Series (factorized directly, without a copy to objects).
    """
    import pandas as pd

    codes = []
    uniques = []
    for col in columns:
        # missing values form their own group rather than vanishing from the analysis
        c, u = pd.factorize(pd.Series(col), sort=True, use_na_sentinel=False)
        codes.append(np.asarray(c, dtype=np.int64))
        uniques.append([str(v) for v in u])
    combined = np.zeros(len(y), dtype=np.int64)
    for c, u in zip(codes, uniques, strict=True):
        combined = combined * len(u) + c
    present, group = np.unique(combined, return_inverse=True)
    cell = (group.astype(np.int64) * 2 + y.astype(np.int64)) * 2 + pred.astype(np.int64)
    counts = np.bincount(cell, minlength=len(present) * 4).reshape(len(present), 2, 2)
    labels = []
    for code in present.tolist():
        parts = []
        for u in reversed(uniques):
            code, r = divmod(code, len(u))
            parts.append(u[r])
        labels.append(tuple(reversed(parts)))
    return CountTable(counts, tuple(labels))


def marginal(table: CountTable, column: int) -> CountTable:
    """The table of one sensitive column, summed over the others."""
    values = sorted({lab[column] for lab in table.labels})
    index = {v: i for i, v in enumerate(values)}
    counts = np.zeros((len(values), 2, 2), dtype=table.counts.dtype)
    for lab, c in zip(table.labels, table.counts, strict=True):
        counts[index[lab[column]]] += c
    return CountTable(counts, tuple((v,) for v in values))


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def group_rates(c: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group rates from counts ``c[..., g, y, ŷ]``; NaN where a rate is undefined."""
    c = c.astype(np.float64)
    n = c.sum(axis=(-1, -2))
    return {
        "count": n,
        "selection_rate": _div(c[..., :, 1].sum(axis=-1), n),
        "true_positive_rate": _div(c[..., 1, 1], c[..., 1, :].sum(axis=-1)),
        "false_positive_rate": _div(c[..., 0, 1], c[..., 0, :].sum(axis=-1)),
        "accuracy": _div(c[..., 0, 0] + c[..., 1, 1], n),
        "base_rate": _div(c[..., 1, :].sum(axis=-1), n),
    }


def _range(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"), _quiet_nan():
        out: np.ndarray = np.nanmax(x, axis=-1) - np.nanmin(x, axis=-1)
    return out


@contextmanager
def _quiet_nan() -> Iterator[None]:
    """Silence numpy's all-NaN-slice warnings: an all-NaN resample stays NaN and is counted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def disparities(c: np.ndarray, privileged: int, labelled: bool = True) -> dict[str, np.ndarray]:
    """The disparity metrics of counts ``c[..., g, y, ŷ]`` (leading axes: resamples).

    Between-group metrics (fairlearn's definitions, over all groups present):
    ``demographic_parity_difference`` = max - min selection rate, ``demographic_parity_ratio``
    = min / max, ``equal_opportunity_difference`` = max - min TPR,
    ``equalized_odds_difference`` = the larger of the TPR and FPR ranges.

    Privileged-vs-rest metrics (AIF360's definitions, the unprivileged groups pooled):
    ``disparate_impact_ratio`` = P(ŷ=1 | unprivileged) / P(ŷ=1 | privileged),
    ``average_odds_difference`` = ½[(FPR_u - FPR_p) + (TPR_u - TPR_p)].
    """
    rates = group_rates(c)
    sel = rates["selection_rate"]
    with np.errstate(invalid="ignore", divide="ignore"), _quiet_nan():
        out = {
            "demographic_parity_difference": _range(sel),
            "demographic_parity_ratio": _div(np.nanmin(sel, axis=-1), np.nanmax(sel, axis=-1)),
        }
    priv = c[..., privileged, :, :].astype(np.float64)
    unpriv = c.sum(axis=-3).astype(np.float64) - priv
    rp, ru = group_rates(priv), group_rates(unpriv)
    out["disparate_impact_ratio"] = _div(ru["selection_rate"], rp["selection_rate"])
    if labelled:
        tpr_range = _range(rates["true_positive_rate"])
        fpr_range = _range(rates["false_positive_rate"])
        out["equal_opportunity_difference"] = tpr_range
        out["equalized_odds_difference"] = np.fmax(tpr_range, fpr_range)
        out["average_odds_difference"] = 0.5 * (
            (ru["false_positive_rate"] - rp["false_positive_rate"])
            + (ru["true_positive_rate"] - rp["true_positive_rate"])
        )
    return out


@dataclass(frozen=True)
class Resamples:
    """Bootstrap replicates of a count table (``counts`` is ``B x G x 2 x 2``)."""

    counts: np.ndarray
    n_resamples: int


def resample(table: CountTable, n_resamples: int, rng: np.random.Generator) -> Resamples:
    """Multinomial draws of the whole table: the row bootstrap, computed on counts."""
    flat = table.counts.reshape(-1).astype(np.float64)
    n = int(flat.sum())
    draws = rng.multinomial(n, flat / n, size=n_resamples)
    return Resamples(draws.reshape(n_resamples, *table.counts.shape), n_resamples)


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float, int]:
    """Percentile interval of finite replicates, and how many replicates were undefined."""
    finite = values[np.isfinite(values)]
    undefined = int(values.size - finite.size)
    if finite.size == 0:
        return float("nan"), float("nan"), undefined
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high), undefined
