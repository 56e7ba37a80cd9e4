"""bias.group_fairness: planted disparities, fairlearn and AIF360 as oracles, the gate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmguard_ops
from llmguard_checks.bias import _counts as cnt
from llmguard_checks.bias._libraries import (
    _import_aif360_metrics,
    aif360_privileged,
    fairlearn_by_group,
)
from llmguard_ops import Status
from llmguard_ops import testing as kit

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")
am = _import_aif360_metrics()

# (sex, region) -> (rows, positives, true positives, false positives): exact planted rates
PLANTED = {
    ("f", "north"): (400, 200, 150, 40),
    ("f", "south"): (300, 100, 60, 20),
    ("m", "north"): (500, 250, 225, 125),
    ("m", "south"): (600, 300, 240, 90),
}


def planted_frame(
    extra: dict[tuple[str, str], tuple[int, int, int, int]] | None = None,
) -> pd.DataFrame:
    rows = []
    for (sex, region), (n, pos, tp, fp) in {**PLANTED, **(extra or {})}.items():
        y = [1] * pos + [0] * (n - pos)
        p = [1] * tp + [0] * (pos - tp) + [1] * fp + [0] * (n - pos - fp)
        rows += [{"sex": sex, "region": region, "y": a, "yhat": b, "score": 0.0} for a, b in zip(y, p, strict=True)]
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame["score"] = np.where(frame["yhat"] == 1, 0.75, 0.25)
    return frame


def analytic() -> dict[str, float]:
    sr = {g: (tp + fp) / n for g, (n, pos, tp, fp) in PLANTED.items()}
    tpr = {g: tp / pos for g, (n, pos, tp, fp) in PLANTED.items()}
    fpr = {g: fp / (n - pos) for g, (n, pos, tp, fp) in PLANTED.items()}
    priv = ("m", "north")
    un = [g for g in PLANTED if g != priv]
    n_u = sum(PLANTED[g][0] for g in un)
    pos_u = sum(PLANTED[g][1] for g in un)
    sel_u = sum(PLANTED[g][2] + PLANTED[g][3] for g in un) / n_u
    tpr_u = sum(PLANTED[g][2] for g in un) / pos_u
    fpr_u = sum(PLANTED[g][3] for g in un) / (n_u - pos_u)
    tpr_range = max(tpr.values()) - min(tpr.values())
    fpr_range = max(fpr.values()) - min(fpr.values())
    return {
        "demographic_parity_difference": max(sr.values()) - min(sr.values()),
        "demographic_parity_ratio": min(sr.values()) / max(sr.values()),
        "equal_opportunity_difference": tpr_range,
        "equalized_odds_difference": max(tpr_range, fpr_range),
        "disparate_impact_ratio": sel_u / sr[priv],
        "average_odds_difference": 0.5 * ((fpr_u - fpr[priv]) + (tpr_u - tpr[priv])),
        **{f"group.sex={s}&region={r}.selection_rate": v for (s, r), v in sr.items()},
        **{f"group.sex={s}&region={r}.true_positive_rate": v for (s, r), v in tpr.items()},
        **{f"group.sex={s}&region={r}.false_positive_rate": v for (s, r), v in fpr.items()},
    }


def write_suite(
    folder: Path,
    frame: pd.DataFrame,
    with_: str,
    gate: str = "{}",
    severity: str = "warning",
    target: str = "y",
) -> Path:
    target_line = f", target: {target}" if target else ""
    text = f"""\
apiVersion: llmguard/v1
name: planted
datasets:
  current: {{path: data.csv{target_line}, sensitive: [sex, region]}}
checks:
  - id: fairness
    uses: bias.group_fairness
    with: {with_}
    gate: {gate}
    severity: {severity}
"""
    return kit.write_suite(folder, text, frames={"data.csv": frame})


def run_check(path: Path, out: Path) -> llmguard_ops.CheckResult:
    outcome = llmguard_ops.run(path, out)
    return outcome.report.checks[0]


def test_planted_rates_equal_analytic_fairlearn_and_aif360(tmp_path: Path) -> None:
    frame = planted_frame()
    suite = write_suite(
        tmp_path,
        frame,
        "{predictions: yhat, privileged: {sex: m, region: north}, n_resamples: 200}",
    )
    result = run_check(suite, tmp_path / "out")
    assert result.status is Status.PASS, result.error
    expected = analytic()
    for name, value in expected.items():
        assert result.metrics[name].value == pytest.approx(value, abs=1e-12), name

    # the same quantities from the libraries, on the original rows
    y, p = frame["y"].to_numpy(), frame["yhat"].to_numpy()
    sf = frame[["sex", "region"]]
    fl = {
        "demographic_parity_difference": fairlearn_metrics.demographic_parity_difference(y, p, sensitive_features=sf),
        "demographic_parity_ratio": fairlearn_metrics.demographic_parity_ratio(y, p, sensitive_features=sf),
        "equalized_odds_difference": fairlearn_metrics.equalized_odds_difference(y, p, sensitive_features=sf),
        "equal_opportunity_difference": fairlearn_metrics.equal_opportunity_difference(y, p, sensitive_features=sf),
    }
    y_idx = pd.Series(y, index=pd.MultiIndex.from_frame(sf))
    kw = {"prot_attr": ["sex", "region"], "priv_group": ("m", "north"), "pos_label": 1}
    aif = {
        "disparate_impact_ratio": am.disparate_impact_ratio(y_idx, p, **kw),
        "average_odds_difference": am.average_odds_difference(y_idx, p, **kw),
    }
    for name, value in {**fl, **aif}.items():
        assert abs(result.metrics[name].value - value) <= 1e-9, name
        assert abs(expected[name] - value) <= 1e-9, name

    # intervals at the policy level, around the estimate
    dp = result.metrics["demographic_parity_difference"]
    assert dp.confidence == 0.95 and dp.lower <= dp.value <= dp.upper
    assert "multinomial" in (dp.interval_method or "")
    # per attribute: sex alone, aif360 with the sex level of the index
    sex = am.disparate_impact_ratio(
        pd.Series(y, index=pd.Index(frame["sex"], name="sex")), p, prot_attr="sex", priv_group="m"
    )
    assert abs(result.metrics["attribute.sex.disparate_impact_ratio"].value - sex) <= 1e-9
    groupings = result.details["groupings"]
    assert groupings["sex&region"]["reference_group"] == "sex=m&region=north"
    assert set(groupings) == {"sex&region", "sex", "region"}


def test_fairlearn_and_aif360_agree_where_they_define_the_same_quantity() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    group = rng.choice(["a", "b"], size=n)
    y = rng.integers(0, 2, size=n)
    p = (rng.uniform(size=n) < np.where(group == "a", 0.35, 0.55) + 0.1 * y).astype(int)
    yi = pd.Series(y, index=pd.Index(group, name="g"))
    kw = {"prot_attr": "g", "priv_group": "b", "pos_label": 1}
    spd = am.statistical_parity_difference(yi, p, **kw)
    di = am.disparate_impact_ratio(yi, p, **kw)
    eod = am.equal_opportunity_difference(yi, p, **kw)
    dpd = fairlearn_metrics.demographic_parity_difference(y, p, sensitive_features=group)
    dpr = fairlearn_metrics.demographic_parity_ratio(y, p, sensitive_features=group)
    eopp = fairlearn_metrics.equal_opportunity_difference(y, p, sensitive_features=group)
    # two groups: the between-group range is the absolute privileged-vs-unprivileged gap
    assert abs(dpd - abs(spd)) <= 1e-9
    assert abs(dpr - min(di, 1 / di)) <= 1e-9
    assert abs(eopp - abs(eod)) <= 1e-9


def test_collapsed_weighted_rows_equal_the_libraries_on_raw_rows() -> None:
    rng = np.random.default_rng(5)
    n = 5000
    a = rng.choice(["x", "y", "z"], size=n)
    b = rng.choice(["u", "v"], size=n)
    y = rng.integers(0, 2, size=n)
    p = (rng.uniform(size=n) < 0.3 + 0.2 * y + 0.1 * (a == "x")).astype(int)
    table = cnt.build_table([a, b], y, p)
    assert len(table.labels) == 6 and table.counts.sum() == n
    ref = table.labels.index(("x", "u"))
    fl = fairlearn_by_group(table, labelled=True)
    frame = fairlearn_metrics.MetricFrame(
        metrics={
            "selection_rate": fairlearn_metrics.selection_rate,
            "true_positive_rate": fairlearn_metrics.true_positive_rate,
        },
        y_true=y,
        y_pred=p,
        sensitive_features=pd.DataFrame({"a": a, "b": b}),
    )
    for key, row in frame.by_group.iterrows():
        for metric in ("selection_rate", "true_positive_rate"):
            assert abs(fl["by_group"][tuple(key)][metric] - row[metric]) <= 1e-12
    sf = pd.DataFrame({"a": a, "b": b})
    assert (
        abs(fl["equalized_odds_difference"] - fairlearn_metrics.equalized_odds_difference(y, p, sensitive_features=sf))
        <= 1e-12
    )
    aif = aif360_privileged(table, ref, labelled=True)
    yi = pd.Series(y, index=pd.MultiIndex.from_arrays([a, b], names=["a", "b"]))
    assert (
        abs(
            aif["disparate_impact_ratio"]
            - am.disparate_impact_ratio(yi, p, prot_attr=["a", "b"], priv_group=("x", "u"))
        )
        <= 1e-12
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(*[st.integers(1, 60)] * 4), min_size=2, max_size=5), st.data())
def test_count_formulas_equal_fairlearn_and_aif360(cells: list[tuple[int, ...]], data: st.DataObject) -> None:
    counts = np.array(cells, dtype=np.int64).reshape(len(cells), 2, 2)
    table = cnt.CountTable(counts, tuple((str(i),) for i in range(len(cells))))
    ref = data.draw(st.integers(0, len(cells) - 1))
    ours = cnt.disparities(counts, ref)
    libs = {**fairlearn_by_group(table, True), **aif360_privileged(table, ref, True)}
    for name, value in ours.items():
        if np.isfinite(libs[name]):
            assert abs(float(value) - libs[name]) <= 1e-9, name


def test_multinomial_bootstrap_matches_row_bootstrap() -> None:
    rng = np.random.default_rng(11)
    n = 600
    g = rng.integers(0, 3, size=n)
    y = rng.integers(0, 2, size=n)
    p = (rng.uniform(size=n) < 0.3 + 0.15 * g).astype(int)
    table = cnt.build_table([g], y, p)
    b = 4000
    draws = cnt.disparities(cnt.resample(table, b, np.random.default_rng(1)).counts, 0)["demographic_parity_difference"]
    idx = rng.integers(0, n, size=(b, n))
    cells = (g[idx] * 2 + y[idx]) * 2 + p[idx]
    row_counts = np.stack([np.bincount(c, minlength=12) for c in cells]).reshape(b, 3, 2, 2)
    rows = cnt.disparities(row_counts, 0)["demographic_parity_difference"]
    for q in (0.025, 0.5, 0.975):
        assert abs(np.quantile(draws, q) - np.quantile(rows, q)) < 0.012


def test_small_groups_are_reported_and_excluded_with_a_warning(tmp_path: Path) -> None:
    frame = planted_frame({("f", "east"): (12, 6, 1, 5)})
    suite = write_suite(tmp_path, frame, "{predictions: yhat, min_group_size: 30, n_resamples: 100}")
    result = run_check(suite, tmp_path / "out")
    assert result.status is Status.PASS
    assert any("sex=f&region=east has 12 rows" in w and "excluded from the gate" in w for w in result.warnings)
    assert "group.sex=f&region=east.selection_rate" not in result.metrics
    grouping = result.details["groupings"]["sex&region"]
    assert grouping["excluded_groups"] == ["sex=f&region=east"]
    small = next(r for r in grouping["groups"] if r["group"] == "sex=f&region=east")
    assert small["included"] is False and small["selection_rate"] == pytest.approx(0.5)
    # the excluded group does not move the gated metric: same as without it
    assert result.metrics["demographic_parity_difference"].value == pytest.approx(
        analytic()["demographic_parity_difference"], abs=1e-12
    )


def test_failed_gate_gives_advice_and_threshold_optimizer_is_labelled(tmp_path: Path) -> None:
    frame = planted_frame()
    suite = write_suite(
        tmp_path,
        frame,
        "{predictions: score, threshold: 0.5, mitigate: true, n_resamples: 100}",
        gate="{demographic_parity_difference: {max: 0.1}}",
    )
    result = run_check(suite, tmp_path / "out")
    assert result.status is Status.WARN
    advice = result.details["mitigation"]
    assert advice["failed_gates"] == ["demographic_parity_difference"]
    assert advice["label"].startswith("advice only")
    assert any("ThresholdOptimizer" in o for o in advice["options"])
    assert any("Reweighing" in o for o in advice["options"])
    to = advice["threshold_optimizer"]
    assert to["label"].startswith("advice only") and to["constraint"] == "demographic_parity"
    assert to["after"]["demographic_parity_difference"] < to["before"]["demographic_parity_difference"]
    # the reported (gated) metrics stay those of the model itself
    assert result.metrics["demographic_parity_difference"].value == pytest.approx(
        analytic()["demographic_parity_difference"]
    )


def test_gate_on_interval_and_review_decision(tmp_path: Path) -> None:
    frame = planted_frame()
    suite = write_suite(
        tmp_path,
        frame,
        "{predictions: yhat, n_resamples: 300}",
        gate="{attribute.sex.disparate_impact_ratio: {min: 0.8, confidence: 0.9}}",
    )
    outcome = llmguard_ops.run(suite, tmp_path / "out")
    metric = outcome.report.checks[0].metrics["attribute.sex.disparate_impact_ratio"]
    assert metric.confidence == 0.9 and metric.lower is not None
    assert outcome.report.decision.decision.value in ("PROMOTE", "REVIEW")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["checks"][0]["details"]["definitions"]["disparate_impact_ratio"].startswith("AIF360")


def test_without_target_only_selection_rate_metrics(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        planted_frame().drop(columns=["y"]),
        "{predictions: yhat, n_resamples: 50}",
        target="",
    )
    result = run_check(suite, tmp_path / "out")
    assert result.status is Status.PASS
    assert "demographic_parity_difference" in result.metrics
    assert "equalized_odds_difference" not in result.metrics
    assert any("no target" in w for w in result.warnings)


def test_bad_privileged_value_is_an_error(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, planted_frame(), "{predictions: yhat, privileged: {sex: x, region: north}}")
    result = run_check(suite, tmp_path / "out")
    assert result.status is Status.ERROR
    assert "privileged group sex=x&region=north" in (result.error.message if result.error else "")


def test_plugin_import_stays_light() -> None:
    code = (
        "import sys, llmguard_checks.bias, llmguard_ops.cli; "
        "names = ('fairlearn', 'aif360', 'sklearn', 'torch', 'transformers'); "
        "heavy = [m for m in names if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
