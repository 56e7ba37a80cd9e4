"""The canary's paired statistics against reference computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from llmguard_checks.canary.compare import Arm, Settings, compare
from llmguard_checks.canary.paired import (
    adjust,
    delong,
    delong_covariance,
    mcnemar,
    paired_permutation,
)
from llmguard_checks.canary.sequential import boundaries, simulate_rollout, spent


def _table(cand: np.ndarray, base: np.ndarray) -> list[list[int]]:
    """statsmodels' layout: rows = baseline right/wrong, columns = candidate right/wrong."""
    return [
        [int(np.sum(base & cand)), int(np.sum(base & ~cand))],
        [int(np.sum(~base & cand)), int(np.sum(~base & ~cand))],
    ]


@pytest.mark.parametrize("n_discordant", [0, 3, 12, 24, 25, 80, 400])
def test_mcnemar_equals_statsmodels(n_discordant: int) -> None:
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    rng = np.random.default_rng(n_discordant)
    n = 1000
    base = rng.random(n) < 0.8
    cand = base.copy()
    flip = rng.choice(n, size=n_discordant, replace=False)
    cand[flip] = ~cand[flip]
    ours = mcnemar(cand, base, exact_below=25)
    exact = n_discordant < 25
    ref = sm_mcnemar(_table(cand, base), exact=exact, correction=True)
    assert ours.name == ("mcnemar-exact" if exact else "mcnemar-chi2")
    assert ours.statistic == pytest.approx(float(ref.statistic), abs=1e-12)
    assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-10, abs=1e-15)


def test_mcnemar_published_example() -> None:
    # The textbook table (Wikipedia, "McNemar's test"): b = 121, c = 59, chi-square with
    # continuity correction (|121 - 59| - 1)^2 / 180 = 20.672
    cand = np.array([True] * 101 + [False] * 121 + [True] * 59 + [False] * 33)
    base = np.array([True] * 101 + [True] * 121 + [False] * 59 + [False] * 33)
    res = mcnemar(cand, base)
    assert res.statistic == pytest.approx(61**2 / 180)
    assert res.p_value == pytest.approx(stats.chi2.sf(61**2 / 180, 1))
    assert res.p_harm < 1e-5  # the candidate loses 121 rows and wins 59


def _slow_delong(y: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> tuple[float, float]:
    """DeLong et al. (1988) straight from the definition: O(m·n) kernel matrices."""
    comps = []
    aucs = []
    for s in (s1, s2):
        pos, neg = s[y], s[~y]
        psi = (pos[:, None] > neg[None, :]).astype(float) + 0.5 * (pos[:, None] == neg[None, :])
        aucs.append(psi.mean())
        comps.append((psi.mean(axis=1), psi.mean(axis=0)))  # V10 per positive, V01 per negative
    s10 = np.cov(np.vstack([comps[0][0], comps[1][0]]))
    s01 = np.cov(np.vstack([comps[0][1], comps[1][1]]))
    m, n = int(y.sum()), int((~y).sum())
    cov = s10 / m + s01 / n
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    with np.errstate(divide="ignore", invalid="ignore"):  # var 0 (both separate perfectly): NaN
        z = (aucs[0] - aucs[1]) / math.sqrt(var)
    return z, 2 * stats.norm.sf(abs(z))


def test_delong_hand_worked_example() -> None:
    # y = (0,0,1,1,1); model a separates perfectly (AUC 1), model b has AUC 4/6.
    # V10(b) = (0, 1, 1) → var 1/3; V01(b) = (2/3, 2/3) → var 0; model a has no variance.
    # var(AUC_a - AUC_b) = (1/3)/3 = 1/9 → z = (1/3)/(1/3) = 1, p = 2(1 - Φ(1)) = 0.3173.
    y = np.array([0, 0, 1, 1, 1], dtype=bool)
    res = delong(y, np.array([0.1, 0.2, 0.6, 0.7, 0.8]), np.array([0.3, 0.6, 0.2, 0.7, 0.9]))
    assert res.statistic == pytest.approx(1.0)
    assert res.p_value == pytest.approx(0.31731050786291415)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(8, 120), ties=st.booleans())
def test_delong_fast_equals_definition(seed: int, n: int, ties: bool) -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    y[:4] = [True, True, False, False]
    s1 = y * rng.normal(1, 1, n) + rng.normal(size=n)
    s2 = 0.5 * s1 + rng.normal(size=n)
    if ties:
        s1, s2 = np.round(s1), np.round(s2)
    aucs, _ = delong_covariance(np.vstack([s1[y], s2[y]]), np.vstack([s1[~y], s2[~y]]))
    assert aucs == pytest.approx([roc_auc_score(y, s1), roc_auc_score(y, s2)])
    z_ref, p_ref = _slow_delong(y, s1, s2)
    res = delong(y, s1, s2)
    if np.isfinite(z_ref):
        assert res.statistic == pytest.approx(z_ref, rel=1e-9, abs=1e-12)
        assert res.p_value == pytest.approx(p_ref, rel=1e-9, abs=1e-12)


def test_permutation_of_accuracy_matches_exact_sign_test() -> None:
    # Swapping the models within a row only matters on discordant rows: the permutation
    # distribution of the accuracy delta is the sign test on them, i.e. exact McNemar.
    rng = np.random.default_rng(3)
    n = 40
    y = np.zeros(n, dtype=int)
    base = np.zeros(n, dtype=int)
    cand = np.zeros(n, dtype=int)
    cand[:9] = 1  # 9 rows only the baseline gets right
    base[9:11] = 1  # 2 rows only the candidate gets right
    rng.shuffle(cand)
    s = Settings(metrics=["accuracy"])

    def delta(wc: np.ndarray, wb: np.ndarray) -> np.ndarray:
        correct = np.concatenate([cand == y, base == y]).astype(float)
        return (wc @ correct - wb @ correct) / n

    res = paired_permutation(delta, n, higher_is_better=True, n_resamples=20_000, seed=0)
    b = int(np.sum((cand != y) & (base == y)))
    c = int(np.sum((cand == y) & (base != y)))
    exact = stats.binomtest(min(b, c), b + c, 0.5).pvalue
    assert res.p_value == pytest.approx(exact, abs=0.01)
    assert res.p_harm == pytest.approx(stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue, abs=0.01)
    assert s.metrics == ["accuracy"]


@pytest.mark.parametrize("method,sm", [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjust_equals_statsmodels(method: str, sm: str) -> None:
    from statsmodels.stats.multitest import multipletests

    p = [0.001, 0.04, 0.03, 0.2, 0.0049, 0.6]
    assert adjust(p, method) == pytest.approx(multipletests(p, method=sm)[1].tolist())
    assert adjust(p, "none") == p


def test_compare_paired_interval_and_tests_on_a_clear_regression() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    y = (rng.random(n) < 0.5).astype(int)
    score_b = np.clip(0.5 + (y - 0.5) * 0.5 + rng.normal(0, 0.25, n), 0.001, 0.999)
    score_c = np.clip(score_b + rng.normal(0, 0.35, n), 0.001, 0.999)  # a noisier candidate
    arms = [Arm((s >= 0.5).astype(int), np.column_stack([1 - s, s])) for s in (score_c, score_b)]
    s = Settings(metrics=["accuracy", "roc_auc", "f1"], n_resamples=400, n_permutations=400)
    comp = compare(y, arms[0], arms[1], s)
    for d in comp.deltas.values():
        assert d.lower is not None and d.upper is not None
        assert d.lower <= d.value <= d.upper < 0
        assert d.p_adjusted < 0.01 and d.p_harm_adjusted < 0.01
    assert comp.deltas["accuracy"].test.name == "mcnemar-chi2"
    assert comp.deltas["roc_auc"].test.name == "delong"
    assert comp.deltas["f1"].test.name == "permutation"
    assert 0 < comp.agreement_rate < 1


def test_obrien_fleming_bounds_match_published_values() -> None:
    # Lan-DeMets O'Brien-Fleming spending, 4 equally spaced looks, one-sided alpha 0.025
    # (Jennison & Turnbull 2000; gsDesign sfLDOF): 4.333, 2.963, 2.359, 2.014.
    assert boundaries([0.25, 0.5, 0.75, 1.0], 0.025, "obrien-fleming") == pytest.approx(
        [4.333, 2.963, 2.359, 2.014], abs=2e-3
    )
    assert boundaries([1.0], 0.05, "pocock") == pytest.approx([stats.norm.isf(0.05)])
    assert spent(1.0, 0.05, "obrien-fleming") == pytest.approx(0.05)
    assert spent(1.0, 0.05, "pocock") == pytest.approx(0.05)


def test_rollout_stops_early_on_a_large_regression_and_not_on_aa() -> None:
    rng = np.random.default_rng(0)
    n = 40_000
    bad = (rng.random(n) < 0.80).astype(float) - (rng.random(n) < 0.90).astype(float)
    roll = simulate_rollout(
        bad,
        [0.01, 0.05, 0.25, 1.0],
        alpha=0.05,
        spending="pocock",
        margin=0.0,
        rng=np.random.default_rng(1),
    )
    assert roll.stopped_at is not None and roll.stopped_at <= 2
    assert roll.stages[roll.stopped_at].stopped
    same = (rng.random(n) < 0.85).astype(float) - (rng.random(n) < 0.85).astype(float)
    roll = simulate_rollout(
        same,
        [0.01, 0.05, 0.25, 1.0],
        alpha=0.05,
        spending="obrien-fleming",
        margin=0.0,
        rng=np.random.default_rng(2),
    )
    assert [s.cumulative for s in roll.stages] == sorted(s.cumulative for s in roll.stages)
    assert roll.stages[-1].information == 1.0


def test_compare_deltas_equal_scikit_learn_differences() -> None:
    from sklearn import metrics as skm

    rng = np.random.default_rng(4)
    n = 400
    y = (rng.random(n) < 0.4).astype(int)
    scores = [np.clip(0.4 + (y - 0.4) * w + rng.normal(0, 0.2, n), 0.01, 0.99) for w in (0.5, 0.3)]
    arms = [Arm((s >= 0.5).astype(int), np.column_stack([1 - s, s])) for s in scores]
    names = ["accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss"]
    comp = compare(y, arms[0], arms[1], Settings(metrics=names, n_resamples=0, n_permutations=100))

    def sk(name: str, arm: Arm) -> float:
        assert arm.proba is not None
        return float(
            {
                "accuracy": skm.accuracy_score(y, arm.pred),
                "balanced_accuracy": skm.balanced_accuracy_score(y, arm.pred),
                "f1": skm.f1_score(y, arm.pred),
                "roc_auc": skm.roc_auc_score(y, arm.proba[:, 1]),
                "log_loss": skm.log_loss(y, arm.proba),
            }[name]
        )

    for name in names:
        assert comp.deltas[name].value == pytest.approx(sk(name, arms[0]) - sk(name, arms[1]), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=12))
def test_adjusted_p_values_are_ordered(p: list[float]) -> None:
    holm, bh = adjust(p, "holm"), adjust(p, "bh")
    for raw, h, b in zip(p, holm, bh, strict=True):
        assert raw <= b + 1e-12 and b <= h + 1e-12 and h <= 1.0


def test_multiclass_auc_falls_back_to_the_permutation_test() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(8)
    n = 300
    y = rng.integers(0, 3, n)
    arms = []
    for noise in (1.0, 1.5):
        logits = np.eye(3)[y] * 2 + rng.normal(0, noise, (n, 3))
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        arms.append(Arm(proba.argmax(axis=1), proba))
    s = Settings(
        metrics=["roc_auc", "f1"],
        n_classes=3,
        positive=None,
        average="macro",
        n_resamples=100,
        n_permutations=200,
    )
    comp = compare(y, arms[0], arms[1], s)
    ref = [roc_auc_score(y, a.proba, multi_class="ovr") for a in arms if a.proba is not None]
    assert comp.deltas["roc_auc"].value == pytest.approx(ref[0] - ref[1])
    assert comp.deltas["roc_auc"].test.name == "permutation"
    assert 0 < comp.deltas["roc_auc"].test.p_value <= 1
