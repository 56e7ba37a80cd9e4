"""Mergeable statistics: one per partition, merged in partition order, never the rows.

Every class here has ``update(values)`` (fold one batch in), ``merge(other)`` (fold
another partition's statistic in, returning ``self``) and ``merge_all(items)``. Which are
exact and which are sketched is part of the contract (docs/scale.md):

* exact: :class:`CategoryCounts` (value → count), :class:`FixedHistogram` (counts in
  fixed bins), :class:`Moments` (count, mean and the sum of squared deviations, merged
  with Chan et al.'s pairwise update, so mean and variance equal the one-pass values up
  to rounding), :class:`GroupConfusion` ((group, y, ŷ) counts: selection rate, TPR and
  FPR per group, hence fairlearn's demographic parity and equalized odds differences);
* sketched: :class:`QuantileSketch`, Apache DataSketches' KLL sketch. Its normalized
  rank error ``rank_error`` (datasketches' a-priori bound, 99 % confidence, for every
  query at once) bounds quantiles (in rank), CDFs, and what follows from them:
  :meth:`QuantileSketch.ks` and :meth:`QuantileSketch.wasserstein` return the estimate
  with its error bound (a :class:`Sketched`), never a bare number.

The objects pickle (Ray ships them between processes); the KLL sketch travels as its own
serialised bytes.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np

#: default KLL accuracy parameter: rank error ≈ 0.087 % (double-sided, 99 % confidence)
DEFAULT_K = 4096
#: ranks per sketch at which the two CDFs of :meth:`QuantileSketch.ks` are evaluated
_GRID = 20_000


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class _Mergeable:
    def merge(self, other: Self) -> Self:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @classmethod
    def merge_all(cls, items: Iterable[Self]) -> Self:
        """Merge ``items`` in order into the first (which is changed and returned)."""
        it = iter(items)
        try:
            first = next(it)
        except StopIteration:
            raise ValueError(f"nothing to merge: no {cls.__name__} given") from None
        for item in it:
            first.merge(item)
        return first


@dataclass
class Moments(_Mergeable):
    """Exact count, mean and sum of squared deviations ``m2`` of finite values."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def update(self, values: Any) -> Self:
        arr = np.asarray(values, dtype=np.float64)
        arr = arr[np.isfinite(arr)]
        if arr.size:
            mean = float(arr.mean())
            other = Moments(int(arr.size), mean, float(np.sum((arr - mean) ** 2)))
            self.merge(other)
        return self

    def merge(self, other: Moments) -> Self:
        """Chan, Golub and LeVeque's pairwise combination of two (n, mean, m2)."""
        if other.n == 0:
            return self
        if self.n == 0:
            self.n, self.mean, self.m2 = other.n, other.mean, other.m2
            return self
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean += delta * other.n / n
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.n = n
        return self

    @property
    def sum(self) -> float:
        return self.mean * self.n

    def variance(self, ddof: int = 0) -> float:
        return self.m2 / (self.n - ddof) if self.n > ddof else float("nan")

    def std(self, ddof: int = 0) -> float:
        return math.sqrt(self.variance(ddof))


@dataclass
class CategoryCounts(_Mergeable):
    """Exact counts per value, in order of first appearance; missing values counted apart.

    With ``cap`` set, only the first ``cap`` distinct values are kept: one more makes the
    table ``overflowed`` (its counts are then dropped), which is how a numeric column
    shows it has "few distinct values" without a table of every float.
    """

    counts: dict[Hashable, int] = field(default_factory=dict)
    missing: int = 0
    cap: int | None = None
    overflowed: bool = False

    def update(self, values: Any) -> Self:
        import pandas as pd

        series = values if isinstance(values, pd.Series) else pd.Series(values)
        self.missing += int(series.isna().sum())
        vc = series.value_counts(dropna=True, sort=False)
        self._add((k.item() if hasattr(k, "item") else k, int(v)) for k, v in vc.items() if v > 0)
        return self

    def _add(self, pairs: Iterable[tuple[Hashable, int]]) -> None:
        if self.overflowed:
            return
        for key, count in pairs:
            self.counts[key] = self.counts.get(key, 0) + count
        if self.cap is not None and len(self.counts) > self.cap:
            self.overflowed, self.counts = True, {}

    def merge(self, other: CategoryCounts) -> Self:
        self.missing += other.missing
        if other.overflowed:
            self.overflowed, self.counts = True, {}
        self._add(other.counts.items())
        return self

    @property
    def total(self) -> int:
        """Non-missing values counted."""
        return sum(self.counts.values())

    @staticmethod
    def aligned(ref: CategoryCounts, cur: CategoryCounts) -> tuple[list[Hashable], np.ndarray, np.ndarray]:
        """Labels (reference order, then values only in ``cur``) and both count vectors."""
        labels = list(ref.counts) + [k for k in cur.counts if k not in ref.counts]
        r = np.array([ref.counts.get(k, 0) for k in labels], dtype=np.int64)
        c = np.array([cur.counts.get(k, 0) for k in labels], dtype=np.int64)
        return labels, r, c


@dataclass
class FixedHistogram(_Mergeable):
    """Exact counts of finite values in bins fixed before the pass.

    ``edges`` are the inner edges; bins are right-closed and the outer two open:
    ``(-inf, e0], (e0, e1], …, (e_last, inf)``.
    """

    edges: np.ndarray
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        self.edges = np.asarray(self.edges, dtype=np.float64)
        if self.counts.size == 0:
            self.counts = np.zeros(self.edges.size + 1, dtype=np.int64)

    def update(self, values: Any) -> Self:
        arr = np.asarray(values, dtype=np.float64)
        arr = arr[np.isfinite(arr)]
        idx = np.searchsorted(self.edges, arr, side="left")  # v ≤ e_i goes to bin i
        self.counts += np.bincount(idx, minlength=self.counts.size)
        return self

    def merge(self, other: FixedHistogram) -> Self:
        if not np.array_equal(self.edges, other.edges):
            raise ValueError("histograms with different bin edges do not merge")
        self.counts += other.counts
        return self


@dataclass
class GroupConfusion(_Mergeable):
    """Exact (group, y, ŷ) counts of a binary classifier, groups keyed by value tuples."""

    cells: dict[tuple[Any, ...], np.ndarray] = field(default_factory=dict)

    def update(self, groups: list[Any], y: Any, pred: Any) -> Self:
        """Fold in rows: ``groups`` one array per sensitive column, ``y``/``pred`` 0/1."""
        import pandas as pd

        frame = pd.DataFrame({f"g{i}": pd.Series(g).reset_index(drop=True) for i, g in enumerate(groups)})
        frame["_cell"] = np.asarray(y, dtype=np.int64) * 2 + np.asarray(pred, dtype=np.int64)
        keys = [f"g{i}" for i in range(len(groups))]
        for key, part in frame.groupby(keys, dropna=False, sort=False)["_cell"]:
            label = tuple(k.item() if hasattr(k, "item") else k for k in (key if isinstance(key, tuple) else (key,)))
            counts = np.bincount(part.to_numpy(), minlength=4).reshape(2, 2)
            self._add(label, counts)
        return self

    def _add(self, label: tuple[Any, ...], counts: np.ndarray) -> None:
        if label in self.cells:
            self.cells[label] = self.cells[label] + counts
        else:
            self.cells[label] = counts.astype(np.int64)

    def merge(self, other: GroupConfusion) -> Self:
        for label, counts in other.cells.items():
            self._add(label, counts)
        return self

    def ordered(self) -> tuple[list[tuple[Any, ...]], np.ndarray]:
        """Groups sorted column by column as ``pandas.factorize(sort=True)`` sorts them
        (missing last), and the ``G x 2 x 2`` counts ``[group, y, ŷ]`` in that order."""
        labels = list(self.cells)
        if not labels:
            return [], np.zeros((0, 2, 2), dtype=np.int64)
        import pandas as pd

        width = len(labels[0])
        codes = [pd.factorize(pd.Series([lab[i] for lab in labels]), sort=True)[0] for i in range(width)]
        fixed = [np.where(c < 0, c.max() + 1, c) for c in codes]  # missing sorts last
        order = np.lexsort(tuple(reversed(fixed)))
        ordered = [labels[i] for i in order]
        return ordered, np.stack([self.cells[lab] for lab in ordered])

    def rates(self) -> dict[str, np.ndarray]:
        """Per group (in :meth:`ordered` order): count, selection rate, TPR and FPR."""
        _, c = self.ordered()
        c = c.astype(np.float64)
        n = c.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "count": n,
                "selection_rate": c[:, :, 1].sum(axis=1) / n,
                "true_positive_rate": c[:, 1, 1] / c[:, 1, :].sum(axis=1),
                "false_positive_rate": c[:, 0, 1] / c[:, 0, :].sum(axis=1),
            }

    def demographic_parity_difference(self) -> float:
        """fairlearn's: max - min selection rate over groups."""
        sel = self.rates()["selection_rate"]
        return float(np.nanmax(sel) - np.nanmin(sel))

    def equalized_odds_difference(self) -> float:
        """fairlearn's (``agg="worst_case"``): the larger of the TPR and FPR ranges."""
        r = self.rates()
        tpr, fpr = r["true_positive_rate"], r["false_positive_rate"]
        return float(max(np.nanmax(tpr) - np.nanmin(tpr), np.nanmax(fpr) - np.nanmin(fpr)))


@dataclass(frozen=True)
class Sketched:
    """An estimate from sketches and its error bound: the true value is within
    ``value ± bound`` (at datasketches' 99 % confidence of the rank error)."""

    value: float
    bound: float

    @property
    def lower(self) -> float:
        return self.value - self.bound

    @property
    def upper(self) -> float:
        return self.value + self.bound


class QuantileSketch(_Mergeable):
    """A KLL quantile sketch of finite values (Apache DataSketches, ``kll_doubles_sketch``)."""

    def __init__(self, k: int = DEFAULT_K) -> None:
        from datasketches import kll_doubles_sketch

        self.k = k
        self._sketch = kll_doubles_sketch(k)

    def __getstate__(self) -> dict[str, Any]:
        return {"k": self.k, "bytes": self._sketch.serialize()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        from datasketches import kll_doubles_sketch

        self.k = state["k"]
        self._sketch = kll_doubles_sketch.deserialize(state["bytes"])

    def update(self, values: Any) -> Self:
        arr = np.asarray(values, dtype=np.float64)
        arr = arr[np.isfinite(arr)]
        if arr.size:
            self._sketch.update(arr)
        return self

    def merge(self, other: QuantileSketch) -> Self:
        self._sketch.merge(other._sketch)
        return self

    @property
    def n(self) -> int:
        return int(self._sketch.n)

    @property
    def exact(self) -> bool:
        """True while the sketch still holds every value (no compaction yet): bounds are 0."""
        return not bool(self._sketch.is_estimation_mode())

    @property
    def rank_error(self) -> float:
        """Double-sided normalized rank error of CDF/PMF queries (0 while :attr:`exact`)."""
        if self.exact:
            return 0.0
        return float(self._sketch.normalized_rank_error(True))

    @property
    def min(self) -> float:
        return float(self._sketch.get_min_value())

    @property
    def max(self) -> float:
        return float(self._sketch.get_max_value())

    def quantiles(self, ranks: Any) -> np.ndarray:
        return np.asarray(self._sketch.get_quantiles(np.asarray(ranks, dtype=np.float64)), dtype=np.float64)

    def quantile(self, rank: float) -> Sketched:
        """The ``rank`` quantile; ``bound`` is half the width of the values whose rank is
        within ``rank_error`` of it."""
        eps = self.rank_error
        mid = float(self._sketch.get_quantile(rank))
        lo = float(self._sketch.get_quantile(max(0.0, rank - eps)))
        hi = float(self._sketch.get_quantile(min(1.0, rank + eps)))
        return Sketched(mid, max(mid - lo, hi - mid))

    def cdf(self, points: np.ndarray) -> np.ndarray:
        """P(X ≤ x) at sorted distinct ``points``."""
        if points.size == 0:
            return np.zeros(0)
        return np.asarray(self._sketch.get_cdf(points.tolist(), inclusive=True)[:-1], dtype=np.float64)

    def values(self) -> np.ndarray | None:
        """Every value, sorted, while the sketch is :attr:`exact` (it keeps them all); else None."""
        if not self.exact:
            return None
        if self.n == 0:
            return np.zeros(0)
        return self.quantiles((np.arange(self.n) + 0.5) / self.n)  # rank (i + ½)/n is the i-th value

    def _support(self) -> np.ndarray:
        kept = self.values()
        if kept is not None and self.n <= _GRID:
            return np.unique(kept)
        return np.unique(self.quantiles(np.linspace(0.0, 1.0, _GRID + 1)))

    def _grid(self, other: QuantileSketch) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        if self.n == 0 or other.n == 0:
            raise ValueError("a sketch is empty: no distribution to compare")
        points = np.union1d(self._support(), other._support())
        both_exact = self.exact and other.exact and max(self.n, other.n) <= _GRID
        step = 0.0 if both_exact else 1.0 / _GRID  # each CDF moves at most this between grid points
        return points, self.cdf(points), other.cdf(points), step

    def ks(self, other: QuantileSketch) -> Sketched:
        """Kolmogorov-Smirnov distance sup |F - G|, within ``rank_error`` of each side
        plus the grid step of each (|sup|F̂-Ĝ| - sup|F-G|| ≤ ε_F + ε_G + 2δ)."""
        _, f, g, step = self._grid(other)
        d = float(np.max(np.abs(f - g)))
        return Sketched(d, self.rank_error + other.rank_error + 2 * step)

    def wasserstein(self, other: QuantileSketch) -> Sketched:
        """First Wasserstein distance ∫|F - G| dx over the pooled range, within
        (ε_F + ε_G + 2δ)·(max - min)."""
        x, f, g, step = self._grid(other)
        w = float(np.dot(np.abs(f - g)[:-1], np.diff(x)))
        span = max(self.max, other.max) - min(self.min, other.min)
        return Sketched(w, (self.rank_error + other.rank_error + 2 * step) * span)
