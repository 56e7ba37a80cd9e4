"""The statistics of the latency checks against scipy and MLPerf LoadGen's published numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from llmguard_checks.latency.stats import (
    min_samples,
    one_sided,
    paired_delta,
    percentile_bound,
    upper_index,
)


@pytest.mark.parametrize(("quantile", "expected"), [(0.90, 64), (0.99, 662), (0.999, 6636)])
def test_min_samples_reproduces_mlperf_early_stopping_minimums(quantile: float, expected: int) -> None:
    # LoadGen: 64 queries for p90, 662 for p99, 6,636 for p99.9 at 99 % confidence
    assert min_samples(quantile, 0.99) == expected


@pytest.mark.parametrize("quantile", [0.5, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("level", [0.9, 0.975, 0.99])
def test_min_samples_is_the_first_n_whose_second_largest_sample_bounds(quantile: float, level: float) -> None:
    n = min_samples(quantile, level)
    # at n the upper bound is at most the (n-1)-th order statistic; at n-1 it is not
    assert upper_index(n, quantile, level) <= n - 1
    assert upper_index(n - 1, quantile, level) > n - 2
    # the same rule written as LoadGen's: P(at most one of n queries over the quantile) <= 1 - level
    assert stats.binom.cdf(1, n, 1 - quantile) <= 1 - level < stats.binom.cdf(1, n - 1, 1 - quantile)


@pytest.mark.parametrize("percentile", [50.0, 90.0, 95.0, 99.0])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_bounds_equal_scipy_quantile_test_interval(percentile: float, confidence: float) -> None:
    x = np.random.default_rng(1).lognormal(1.0, 0.6, size=800)
    bound = percentile_bound(x, percentile, confidence)
    assert bound.enough
    ci = stats.quantile_test(x, q=float(np.percentile(x, percentile)), p=percentile / 100).confidence_interval(
        confidence
    )
    assert bound.lower == pytest.approx(float(ci.low))
    assert bound.upper == pytest.approx(float(ci.high))


def test_too_few_samples_gives_no_upper_bound() -> None:
    x = np.arange(1.0, 51.0)
    bound = percentile_bound(x, 99.0, 0.95)
    assert not bound.enough and bound.upper is None
    assert bound.needed == min_samples(0.99, one_sided(0.95))


def test_coverage_of_the_upper_bound_on_a_heavy_tailed_distribution() -> None:
    # 400 simulated runs of 300 requests from a Pareto-like law with a known p95
    rng = np.random.default_rng(7)
    true_p95 = stats.lomax.ppf(0.95, 2.5)
    hits = sum(
        percentile_bound(stats.lomax.rvs(2.5, size=300, random_state=rng), 95.0, 0.9).upper >= true_p95
        for _ in range(400)
    )
    # one-sided level 0.95: the bound holds in at least ~95 % of runs (binomial slack for 400 runs)
    assert hits / 400 >= 0.92


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.01, 1e4, allow_nan=False), min_size=12, max_size=400),
    st.sampled_from([50.0, 90.0, 95.0]),
    st.sampled_from([0.8, 0.9, 0.95]),
)
def test_interval_brackets_the_estimate_and_is_an_order_statistic(
    values: list[float],
    percentile: float,
    confidence: float,
) -> None:
    x = np.asarray(values)
    bound = percentile_bound(x, percentile, confidence)
    if not bound.enough:
        assert bound.upper is None
        return
    assert bound.lower is not None and bound.upper is not None
    assert bound.lower <= bound.value <= bound.upper
    assert bound.upper in set(x.tolist()) | {bound.value}
    # a wider interval at a higher level
    wider = percentile_bound(x, percentile, min(0.99, confidence + 0.04))
    if wider.enough:
        assert wider.upper is not None and wider.upper >= bound.upper


def test_paired_delta_finds_a_shift_and_no_shift() -> None:
    rng = np.random.default_rng(3)
    base = rng.gamma(4.0, 2.0, size=400)
    same = base * np.exp(rng.normal(0, 0.01, size=400))
    _, low, high, _, rlow, rhigh = paired_delta(same, base, "p95_ms", 0.95, seed=0)
    assert low <= 0 <= high and rlow <= 1 <= rhigh
    d, low, _, r, rlow, _ = paired_delta(base + 5.0, base, "p95_ms", 0.95, seed=0)
    assert d == pytest.approx(5.0) and low > 0 and r > 1 and rlow > 1
    d, low, high, *_ = paired_delta(base + 5.0, base, "mean", 0.95, seed=0)
    assert d == pytest.approx(5.0)
