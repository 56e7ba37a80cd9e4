"""Two-sample drift statistics on one column, vectorised.

Numeric columns are sorted once per side; the two sorted runs are merged by a stable
sort (linear time on two runs) and the ECDF-based quantities (KS, Wasserstein) come from
that one merge; PSI bins are searches in the sorted samples. The formulas are scipy's
own, evaluated on the same terms in
the same order, so the values equal ``scipy.stats.ks_2samp`` and
``scipy.stats.wasserstein_distance`` (the tests check 1e-9). Categorical columns are
reduced to aligned count vectors; chi-square, Jensen-Shannon and the z-test work on the
counts. Where scipy has the test, scipy computes it (chi2_contingency, jensenshannon,
anderson_ksamp, the KS distributions).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Proportions below this are floored before the logarithm of PSI (empty bins).
PSI_EPSILON = 1e-4
#: scipy's ks_2samp computes exact p-values up to this sample size; above, Smirnov's asymptotics.
KS_EXACT_MAX_N = 10_000


@dataclass
class NumericSample:
    """Both sides of a numeric column, sorted, with their merge."""

    ref: np.ndarray
    cur: np.ndarray
    _gaps: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, ref: np.ndarray, cur: np.ndarray, owned: bool = False) -> NumericSample:
        """Sort both sides (in place when ``owned``: the caller hands over fresh arrays)."""
        if not owned:
            return cls(np.sort(ref), np.sort(cur))
        ref.sort()
        cur.sort()
        return cls(ref, cur)

    def ecdf_gaps(self) -> tuple[np.ndarray, np.ndarray]:
        """|F_ref - F_cur| just right of each pooled value, and each gap to the next value.

        The pooled values are the stable merge of the two sorted runs (linear time); the
        ECDFs are counts of each side up to a position. Inside a run of tied values the
        counts are partial, but the gap to the next value is zero there, so every integral
        gets scipy's terms; maxima are taken at the last value of each run.
        """
        if self._gaps is None:
            n1, n2 = self.ref.size, self.cur.size
            pooled = np.concatenate([self.ref, self.cur])
            order = np.argsort(pooled, kind="stable")  # two sorted runs: one merge
            gaps = np.diff(pooled[order])
            # F_ref - F_cur = r/n1 - (k - r)/n2 with r = ref count among the first k values
            diff = np.cumsum(order < n1, dtype=np.int64) * (1.0 / n1 + 1.0 / n2)
            diff -= np.arange(1, pooled.size + 1, dtype=np.float64) * (1.0 / n2)
            np.abs(diff, out=diff)
            self._gaps = (diff, gaps)
        return self._gaps


def ks(sample: NumericSample) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov-Smirnov: (D, p), equal to ``scipy.stats.ks_2samp``.

    Up to :data:`KS_EXACT_MAX_N` rows per side scipy itself computes both (exact p);
    above, D comes from the merge and p from Smirnov's distribution as scipy does it.
    """
    from scipy import stats

    n1, n2 = sample.ref.size, sample.cur.size
    if max(n1, n2) <= KS_EXACT_MAX_N:
        with warnings.catch_warnings():
            # with ties scipy may fall back to the asymptotic p; the value is still scipy's
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
            res = stats.ks_2samp(sample.ref, sample.cur)
        return float(res.statistic), float(res.pvalue)
    diff, gaps = sample.ecdf_gaps()
    last = np.append(gaps != 0, True)  # the ECDFs are evaluated at distinct values only
    d = float(np.max(diff[last]))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    p = float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
    return d, p


def wasserstein(sample: NumericSample) -> float:
    """First Wasserstein distance, equal to ``scipy.stats.wasserstein_distance`` (1e-9).

    The area between the two ECDFs (scipy's formula). With equal sample sizes the
    quantile functions share every step and the area is the mean absolute difference of
    the sorted samples, one pass.
    """
    if sample.ref.size == sample.cur.size:
        return float(np.mean(np.abs(sample.ref - sample.cur)))
    diff, gaps = sample.ecdf_gaps()
    return float(np.dot(diff[:-1], gaps))


def normalised_wasserstein(sample: NumericSample) -> tuple[float, float, str | None]:
    """Wasserstein distance divided by the reference standard deviation (ddof 0).

    A constant reference has no scale: the pooled standard deviation is used instead (and
    said so); two identical constants are at distance 0.
    """
    w = wasserstein(sample)
    scale = float(np.std(sample.ref))
    note = None
    if scale == 0.0:
        scale = float(np.std(np.concatenate([sample.ref, sample.cur])))
        note = "reference is constant: distance normalised by the pooled standard deviation"
        if scale == 0.0:
            return 0.0, w, "both samples are the same constant"
    return w / scale, w, note


def anderson(sample: NumericSample) -> tuple[float, float, str | None]:
    """k-sample Anderson-Darling (scipy's ``anderson_ksamp``): (statistic, p, note).

    scipy interpolates p in a table and floors/caps it to [0.001, 0.25]; the note says when.
    The midrank variant is the one for samples with ties (scipy's default).
    """
    from scipy import stats

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = stats.anderson_ksamp([sample.ref, sample.cur], variant="midrank")
    note = "; ".join(str(w.message).split(".")[0] for w in caught if "p-value" in str(w.message)) or None
    return float(res.statistic), float(res.pvalue), note


def quantile_edges(ref_sorted: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges at the reference quantiles (duplicates dropped); outer bins are open."""
    qs = np.quantile(ref_sorted, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(qs)


def numeric_bin_counts(sample: NumericSample, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts per reference-quantile bin (right-closed), for both sides."""
    edges = quantile_edges(sample.ref, bins)
    ref_idx = np.searchsorted(sample.ref, edges, side="right")
    cur_idx = np.searchsorted(sample.cur, edges, side="right")
    ref_counts = np.diff(np.concatenate([[0], ref_idx, [sample.ref.size]]))
    cur_counts = np.diff(np.concatenate([[0], cur_idx, [sample.cur.size]]))
    return ref_counts, cur_counts


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Population stability index Σ (q - p)·ln(q / p) over bins.

    Proportions are floored at :data:`PSI_EPSILON` so that an empty bin on either side
    contributes a large but finite term.
    """
    p = np.maximum(ref_counts / ref_counts.sum(), PSI_EPSILON)
    q = np.maximum(cur_counts / cur_counts.sum(), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen-Shannon *distance* (natural log) between the two proportion vectors (scipy)."""
    from scipy.spatial import distance

    return float(distance.jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()))


def chi_square(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity on the 2xk table (scipy, no continuity correction).

    Both samples are random, so the table test is the right one rather than a
    goodness-of-fit against reference proportions. Categories absent on both sides are
    dropped; a single remaining category cannot differ (statistic 0, p 1).
    """
    from scipy import stats

    keep = (ref_counts + cur_counts) > 0
    table = np.vstack([ref_counts[keep], cur_counts[keep]])
    if table.shape[1] < 2:
        return 0.0, 1.0
    res = stats.chi2_contingency(table, correction=False)
    return float(res.statistic), float(res.pvalue)


def two_proportion_z(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Pooled two-proportion z-test on the first category (two-sided), as statsmodels' ztest.

    Equal proportions of a single shared value leave no variance: z 0, p 1.
    """
    from scipy import stats

    n1, n2 = float(ref_counts.sum()), float(cur_counts.sum())
    p1, p2 = ref_counts[0] / n1, cur_counts[0] / n2
    pooled = (ref_counts[0] + cur_counts[0]) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0.0:
        return 0.0, 1.0
    z = float((p1 - p2) / se)
    return z, float(2 * stats.norm.sf(abs(z)))


def aligned_counts(ref: Any, cur: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Category labels and count vectors of two pandas Series (missing values dropped).

    Categories are the union, reference order first, so unseen current categories get a
    reference count of 0 (and vice versa).
    """
    rv = ref.value_counts(dropna=True, sort=False)
    cv = cur.value_counts(dropna=True, sort=False)
    rv = rv[rv > 0]
    cv = cv[cv > 0]
    labels = list(rv.index) + [k for k in cv.index if k not in rv.index]
    ref_counts = rv.reindex(labels, fill_value=0).to_numpy(dtype=np.int64)
    cur_counts = cv.reindex(labels, fill_value=0).to_numpy(dtype=np.int64)
    return [str(x) for x in labels], ref_counts, cur_counts
