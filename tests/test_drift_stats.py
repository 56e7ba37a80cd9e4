"""The drift statistics equal scipy's (and statsmodels') on the same inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import stats
from scipy.spatial import distance

from llmguard_checks.drift import _stats as st

# Few distinct values make ties, the case where ECDF merges go wrong.
values = hs.lists(
    hs.one_of(hs.integers(-5, 5).map(float), hs.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)),
    min_size=1,
    max_size=60,
)
counts = hs.lists(hs.integers(0, 500), min_size=2, max_size=12)


@settings(max_examples=100, deadline=None)
@given(values, values)
def test_wasserstein_equals_scipy(a: list[float], b: list[float]) -> None:
    ours = st.wasserstein(st.NumericSample.of(np.array(a), np.array(b)))
    theirs = stats.wasserstein_distance(a, b)
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(values, values)
def test_ks_equals_scipy(a: list[float], b: list[float]) -> None:
    d, p = st.ks(st.NumericSample.of(np.array(a), np.array(b)))
    with warnings.catch_warnings():  # the oracle may switch to the asymptotic p, as ours does
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
        res = stats.ks_2samp(a, b)
    assert d == pytest.approx(res.statistic, abs=1e-12)
    assert p == pytest.approx(res.pvalue, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_large_samples_use_the_merge_and_equal_scipy(seed: int) -> None:
    """Above 10,000 rows the statistic comes from the merge and p from Smirnov's law."""
    rng = np.random.default_rng(seed)
    a = np.round(rng.normal(size=12_000), 2)  # rounded: many ties
    b = np.round(rng.normal(0.03 * seed, 1, size=15_000), 2)
    d, p = st.ks(st.NumericSample.of(a, b))
    res = stats.ks_2samp(a, b)
    assert d == pytest.approx(res.statistic, abs=1e-12)
    assert p == pytest.approx(res.pvalue, rel=1e-9, abs=1e-15)
    assert st.wasserstein(st.NumericSample.of(a, b)) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(counts, counts)
def test_jensen_shannon_equals_scipy(a: list[int], b: list[int]) -> None:
    k = min(len(a), len(b))
    ra, rb = np.array(a[:k]), np.array(b[:k])
    if ra.sum() == 0 or rb.sum() == 0:
        return
    ours = st.jensen_shannon(ra, rb)
    theirs = distance.jensenshannon(ra / ra.sum(), rb / rb.sum())
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(counts, counts)
def test_chi_square_equals_scipy(a: list[int], b: list[int]) -> None:
    k = min(len(a), len(b))
    ra, rb = np.array(a[:k]), np.array(b[:k])
    if ra.sum() == 0 or rb.sum() == 0:
        return
    stat, p = st.chi_square(ra, rb)
    keep = (ra + rb) > 0
    if keep.sum() < 2:
        assert (stat, p) == (0.0, 1.0)
        return
    res = stats.chi2_contingency(np.vstack([ra[keep], rb[keep]]), correction=False)
    assert stat == pytest.approx(res.statistic, rel=1e-9, abs=1e-12)
    assert p == pytest.approx(res.pvalue, rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(hs.integers(0, 300), hs.integers(1, 300), hs.integers(0, 300), hs.integers(1, 300))
def test_two_proportion_z_equals_statsmodels(x1: int, extra1: int, x2: int, extra2: int) -> None:
    from statsmodels.stats.proportion import proportions_ztest

    n1, n2 = x1 + extra1, x2 + extra2
    z, p = st.two_proportion_z(np.array([x1, n1 - x1]), np.array([x2, n2 - x2]))
    pooled = (x1 + x2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        assert (z, p) == (0.0, 1.0)
        return
    z_ref, p_ref = proportions_ztest([x1, x2], [n1, n2])
    assert z == pytest.approx(z_ref, rel=1e-9, abs=1e-12)
    assert p == pytest.approx(p_ref, rel=1e-9, abs=1e-12)


def test_anderson_is_scipys_and_reports_the_cap() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=300), rng.normal(1.0, 1, size=300)
    stat, p, note = st.anderson(st.NumericSample.of(a, b))
    with pytest.warns(UserWarning, match="p-value floored"):  # ours says so in its note instead
        res = stats.anderson_ksamp([np.sort(a), np.sort(b)], variant="midrank")
    assert stat == pytest.approx(res.statistic, rel=1e-12)
    assert p == pytest.approx(res.pvalue)
    assert p == pytest.approx(0.001) and note and "floored" in note


def test_psi_of_a_one_sd_mean_shift_is_about_one_and_empty_bins_stay_finite() -> None:
    rng = np.random.default_rng(4)
    sample = st.NumericSample.of(rng.normal(size=50_000), rng.normal(1.0, 1, size=50_000))
    rc, cc = st.numeric_bin_counts(sample, 10)
    assert rc.sum() == 50_000 and cc.sum() == 50_000
    assert np.all(np.abs(rc - 5_000) <= 1)  # deciles of the reference
    value = st.psi(rc, cc)
    assert 0.7 < value < 1.3  # PSI ≈ δ² for a normal mean shift of δ sd (binned)
    p = rc / rc.sum()
    q = cc / cc.sum()
    assert value == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-12)
    assert np.isfinite(st.psi(np.array([10, 0, 5]), np.array([0, 7, 5])))


def test_aligned_counts_put_unseen_categories_last() -> None:
    import pandas as pd

    labels, rc, cc = st.aligned_counts(pd.Series(["a", "b", "a", None]), pd.Series(["b", "c", "c"]))
    assert labels == ["a", "b", "c"]
    assert rc.tolist() == [2, 1, 0] and cc.tolist() == [0, 1, 2]
