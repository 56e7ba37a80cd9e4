"""Data larger than memory: Parquet partitions, mergeable statistics, drift and fairness.

Exact statistics (counts, moments, count-table fairness) equal the in-memory computation
to 1e-9, with scipy and fairlearn as oracles; sketched ones (KS, Wasserstein, quantiles)
lie within the bound they state. On a local Ray cluster each partition is a task whose
recorded peak memory stays under the limit it was given, on data several times larger.
"""

from __future__ import annotations

import importlib.util
import itertools
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import REPO
from tests.ray_support import ray_cluster  # noqa: F401  (fixture)

import llmguard_ops
from llmguard_ops import CategoryCounts, FixedHistogram, GroupConfusion, Moments, QuantileSketch

pytest.importorskip("datasketches")

SCALE = REPO / "suites" / "scale"


def _make_data() -> Any:
    spec = importlib.util.spec_from_file_location("scale_make_data", SCALE / "make_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_data = _make_data()


def concat(folder: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))], ignore_index=True)


# -- the statistics themselves ------------------------------------------------------


def test_exact_statistics_merge_to_the_one_pass_values() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(0, 1, 50_000)
    parts = np.array_split(values, 7)
    moments = Moments.merge_all([Moments().update(p) for p in parts])
    assert moments.n == values.size
    assert abs(moments.mean - values.mean()) <= 1e-9
    assert abs(moments.variance(1) - values.var(ddof=1)) <= 1e-9 * values.var()
    assert abs(moments.sum - values.sum()) <= 1e-9 * values.sum()

    cats = pd.Series(rng.choice(["a", "b", None, "c"], 20_000))
    counts = CategoryCounts.merge_all([CategoryCounts().update(c) for c in np.array_split(cats, 5)])
    assert counts.counts == cats.value_counts(dropna=True, sort=False).to_dict()
    assert list(counts.counts) == list(cats.dropna().unique())  # first-seen order, as in memory
    assert counts.missing == int(cats.isna().sum())

    edges = np.quantile(values, [0.2, 0.5, 0.9])
    hist = FixedHistogram.merge_all([FixedHistogram(edges).update(p) for p in parts])
    expected = np.diff(np.concatenate([[0], np.searchsorted(np.sort(values), edges, "right"), [values.size]]))
    assert hist.counts.tolist() == expected.tolist()
    with pytest.raises(ValueError, match="different bin edges"):
        hist.merge(FixedHistogram(edges + 1))

    capped = CategoryCounts(cap=3).update([1, 2, 3]).merge(CategoryCounts(cap=3).update([4]))
    assert capped.overflowed and capped.counts == {}


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=6),
)
def test_any_split_merges_to_the_same_moments_and_counts(values: list[float], cuts: list[int]) -> None:
    arr = np.asarray(values)
    bounds = sorted({0, arr.size, *(min(c, arr.size) for c in cuts)})
    parts = [arr[a:b] for a, b in itertools.pairwise(bounds)]
    moments = Moments.merge_all([Moments().update(p) for p in parts])
    assert moments.n == arr.size
    assert moments.mean == pytest.approx(arr.mean(), rel=1e-9, abs=1e-6)
    assert moments.variance() == pytest.approx(arr.var(), rel=1e-7, abs=1e-3)
    rounded = pd.Series(np.round(arr, -5))
    counts = CategoryCounts.merge_all(
        [CategoryCounts().update(rounded.iloc[a:b]) for a, b in itertools.pairwise(bounds)]
    )
    assert counts.counts == rounded.value_counts(sort=False).to_dict()


def test_group_confusion_gives_fairlearns_disparities_exactly() -> None:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    rng = np.random.default_rng(5)
    n = 30_000
    frame = pd.DataFrame(
        {"sex": rng.choice(["f", "m"], n), "region": rng.choice(["n", "s", "e"], n), "y": rng.integers(0, 2, n)}
    )
    frame["pred"] = (rng.random(n) < np.where(frame["sex"] == "f", 0.35, 0.5)).astype(int)
    merged = GroupConfusion.merge_all(
        GroupConfusion().update([part["sex"], part["region"]], part["y"], part["pred"])
        for part in (frame.iloc[i : i + 5000] for i in range(0, n, 5000))
    )
    groups = frame["sex"] + "|" + frame["region"]
    dpd = demographic_parity_difference(frame["y"], frame["pred"], sensitive_features=groups)
    eod = equalized_odds_difference(frame["y"], frame["pred"], sensitive_features=groups)
    assert abs(merged.demographic_parity_difference() - dpd) <= 1e-9
    assert abs(merged.equalized_odds_difference() - eod) <= 1e-9
    labels, counts = merged.ordered()
    assert labels == sorted(labels) and counts.sum() == n


def test_sketched_statistics_lie_within_their_stated_bound() -> None:
    from scipy import stats

    rng = np.random.default_rng(9)
    a, b = rng.normal(0, 1, 60_000), rng.normal(0.1, 1.2, 40_000)
    sa = QuantileSketch.merge_all([QuantileSketch().update(p) for p in np.array_split(a, 6)])
    sb = QuantileSketch.merge_all([QuantileSketch().update(p) for p in np.array_split(b, 4)])
    assert not sa.exact and 0 < sa.rank_error < 0.002  # estimation mode: a real bound
    ks = sa.ks(sb)
    assert abs(ks.value - stats.ks_2samp(a, b).statistic) <= ks.bound
    w = sa.wasserstein(sb)
    assert abs(w.value - stats.wasserstein_distance(a, b)) <= w.bound
    ordered = np.sort(a)
    for q in (0.01, 0.25, 0.5, 0.9, 0.99):
        rank = np.searchsorted(ordered, sa.quantile(q).value, "right") / a.size
        assert abs(rank - q) <= sa.rank_error
    again = pickle.loads(pickle.dumps(sa))  # ships between Ray processes as its own bytes
    assert again.n == sa.n and again.quantile(0.5).value == sa.quantile(0.5).value
    small_a, small_b = QuantileSketch().update(a[:700]), QuantileSketch().update(b[:900])
    assert small_a.exact and small_a.ks(small_b).bound == 0.0  # below k every value is kept
    assert abs(small_a.ks(small_b).value - stats.ks_2samp(a[:700], b[:900]).statistic) <= 1e-12
    assert abs(small_a.wasserstein(small_b).value - stats.wasserstein_distance(a[:700], b[:900])) <= 1e-9


# -- checks on partitioned datasets, against the same data in memory ---------------------


def write_project(root: Path, partitions: int = 4, rows: int = 3000, memory_mb: int = 256) -> Path:
    """Partitioned reference/current folders, the same rows as single files, two suites."""
    make_data.write_partitions(root / "reference", partitions, rows, seed=1, moved=False)
    make_data.write_partitions(root / "current", partitions - 1, rows, seed=2, moved=True)
    for side in ("reference", "current"):
        concat(root / side).to_parquet(root / f"{side}.parquet", index=False)
    checks = """\
checks:
  - id: drift
    uses: drift.tabular
    with:
      exclude: [score]
      methods: {x1: ks, x2: wasserstein, channel: psi, region: chisquare, sex: z, k1: jensenshannon}
    gate: {share_drifted_columns: {max: 0.5}}
    severity: warning
  - id: fairness
    uses: bias.group_fairness
    with: {model: null, predictions: score, threshold: 0.5, n_resamples: 200, sensitive: [sex, region]}
    gate: {demographic_parity_difference: {max: 0.5}}
"""
    for kind in ("partitioned", "memory"):
        if kind == "partitioned":
            ds = f"partitioned: true, task_memory_mb: {memory_mb}"
            paths = {"reference": "reference", "current": "current"}
        else:
            ds, paths = "", {"reference": "reference.parquet", "current": "current.parquet"}
        extra = f", {ds}" if ds else ""
        (root / f"{kind}.yaml").write_text(
            "apiVersion: llmguard/v1\nname: scale\ndatasets:\n"
            f"  reference: {{path: {paths['reference']}, target: label, sensitive: [sex, region]{extra}}}\n"
            f"  current: {{path: {paths['current']}, target: label, sensitive: [sex, region]{extra}}}\n" + checks
        )
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("partitioned"))


@pytest.fixture(scope="module")
def both_runs(project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, llmguard_ops.RunOutcome]:
    out = tmp_path_factory.mktemp("runs")
    audit = out / "audit.jsonl"
    return {
        k: llmguard_ops.run(project / f"{k}.yaml", out / k, audit_log=audit, write=False)
        for k in ("partitioned", "memory")
    }


def metrics_of(outcome: llmguard_ops.RunOutcome, check: str) -> dict[str, llmguard_ops.Metric]:
    return next(c for c in outcome.report.checks if c.id == check).metrics


def test_partitioned_drift_equals_in_memory_exactly_or_within_the_sketch_bound(
    both_runs: dict[str, llmguard_ops.RunOutcome],
) -> None:
    part, mem = metrics_of(both_runs["partitioned"], "drift"), metrics_of(both_runs["memory"], "drift")
    exact = [
        name
        for name in mem
        if name.startswith(("column.channel.", "column.region.", "column.sex.", "column.k1.", "column.x3."))
        and not name.endswith("p_value_adjusted")
    ]
    # x3 goes by the auto rule over 12,000 reference values: Wasserstein, sketched
    exact = [n for n in exact if not n.startswith("column.x3.")]
    assert len(exact) >= 12
    for name in exact:
        assert abs(part[name].value - mem[name].value) <= 1e-9, name
    assert part["column.sex.p_value"].value == pytest.approx(mem["column.sex.p_value"].value, abs=1e-12)
    for name in ("target.statistic", "target.distance"):  # a 0/1 label: two categories, exact counts
        assert abs(part[name].value - mem[name].value) <= 1e-9, name
    for name in ("column.x1.statistic", "column.x2.distance", "column.x3.distance"):
        got, want = part[name], mem[name]
        assert got.lower is not None and got.upper is not None and got.confidence == 0.99, name
        assert got.lower - 1e-12 <= want.value <= got.upper + 1e-12, (name, got, want.value)
    for name in ("column.x1.drifted", "column.channel.drifted", "column.x3.drifted", "n_columns"):
        assert part[name].value == mem[name].value, name
    details = next(c for c in both_runs["partitioned"].report.checks if c.id == "drift").details
    passes = details["partitioned"]["passes"]
    assert [p["partitions"] for p in passes] == [4, 3] and passes[0]["rows"] == 12_000
    assert "KLL" in details["partitioned"]["sketch"]


def test_below_k_values_a_side_the_sketches_are_exact_and_so_is_ks(tmp_path: Path) -> None:
    root = write_project(tmp_path, partitions=3, rows=600)  # 1,800 and 1,200 values: the sketches keep all
    runs = {
        k: llmguard_ops.run(root / f"{k}.yaml", tmp_path / k, only=["drift"], write=False)
        for k in ("partitioned", "memory")
    }
    part, mem = metrics_of(runs["partitioned"], "drift"), metrics_of(runs["memory"], "drift")
    for name in ("column.x1.statistic", "column.x1.p_value", "column.x2.distance", "column.x3.distance"):
        assert abs(part[name].value - mem[name].value) <= 1e-9, name
        if not name.endswith("p_value"):
            assert part[name].lower == part[name].upper == part[name].value  # nothing was approximated
    assert part["dataset_p_value"].value == pytest.approx(mem["dataset_p_value"].value, abs=1e-12)


def test_partitioned_fairness_equals_in_memory_to_1e9_with_the_same_bootstrap(
    both_runs: dict[str, llmguard_ops.RunOutcome], project: Path
) -> None:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    part, mem = metrics_of(both_runs["partitioned"], "fairness"), metrics_of(both_runs["memory"], "fairness")
    assert set(part) == set(mem) and len(part) > 20
    for name, want in mem.items():
        got = part[name]
        assert abs(got.value - want.value) <= 1e-9, name
        if want.lower is not None:  # the same count table and seed: the same resamples
            assert got.lower == pytest.approx(want.lower, abs=1e-9) and got.upper == pytest.approx(want.upper, abs=1e-9)
    rows = concat(project / "current")
    groups = rows["sex"] + "&" + rows["region"]
    pred = (rows["score"] >= 0.5).astype(int)
    dpd = demographic_parity_difference(rows["label"], pred, sensitive_features=groups)
    eod = equalized_odds_difference(rows["label"], pred, sensitive_features=groups)
    assert abs(part["demographic_parity_difference"].value - dpd) <= 1e-9
    assert abs(part["equalized_odds_difference"].value - eod) <= 1e-9


def test_checks_predict_with_the_model_partition_by_partition(project: Path, tmp_path: Path) -> None:
    import joblib
    from fairlearn.metrics import demographic_parity_difference
    from scipy import stats
    from sklearn.linear_model import LogisticRegression

    ref = concat(project / "reference")
    features = ["x1", "x2", "x3", "k1"]
    model = LogisticRegression().fit(ref[features], ref["label"])
    joblib.dump(model, tmp_path / "model.joblib")
    (tmp_path / "suite.yaml").write_text(f"""\
apiVersion: llmguard/v1
name: model-on-partitions
models:
  candidate: {{loader: sklearn, path: model.joblib}}
datasets:
  reference: {{path: {project / "reference"}, partitioned: true, target: label}}
  current: {{path: {project / "current"}, partitioned: true, target: label, sensitive: [sex]}}
checks:
  - id: fairness
    uses: bias.group_fairness
    with: {{n_resamples: 0}}
    gate: {{demographic_parity_difference: {{max: 1.0}}}}
  - id: drift
    uses: drift.tabular
    with: {{model: candidate, columns: [x1], methods: {{prediction: wasserstein}}}}
  - id: binned
    uses: drift.tabular
    with: {{model: candidate, columns: [x2], methods: {{prediction: psi, x2: psi}}}}
policy: {{allow_pickle: true}}
""")
    outcome = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out", write=False)
    fairness, drift, binned = outcome.report.checks
    assert fairness.status == "pass", fairness.error
    cur = concat(project / "current")
    want = demographic_parity_difference(cur["label"], model.predict(cur[features]), sensitive_features=cur["sex"])
    assert abs(fairness.metrics["demographic_parity_difference"].value - want) <= 1e-9
    assert drift.status in ("pass", "fail"), drift.error
    p_ref, p_cur = model.predict_proba(ref[features])[:, 1], model.predict_proba(cur[features])[:, 1]
    want = stats.wasserstein_distance(p_ref, p_cur) / np.std(p_ref)
    got = drift.metrics["prediction.distance"]
    assert got.lower is not None and got.upper is not None and got.lower <= want <= got.upper
    # PSI at sketched bin edges (a second pass counts them, predicting again): near the
    # in-memory PSI at exact quantile edges, the edges differing by at most the rank error
    from llmguard_checks.drift import _stats

    assert binned.status in ("pass", "fail"), binned.error
    passes = binned.details["partitioned"]["passes"]
    assert [p.get("bins", False) for p in passes] == [
        False,
        True,
        False,
        True,
    ]  # reference: scan, bins; current: scan, bins
    for name, ref_values, cur_values in (
        ("prediction", p_ref, p_cur),
        ("column.x2", ref["x2"].to_numpy(), cur["x2"].to_numpy()),
    ):
        sample = _stats.NumericSample.of(ref_values, cur_values)
        in_memory = _stats.psi(*_stats.numeric_bin_counts(sample, 10))
        assert abs(binned.metrics[f"{name}.distance"].value - in_memory) < 0.01, name


def test_the_shipped_scale_suite_runs_on_generated_partitions(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(SCALE / "make_data.py"), str(tmp_path / "out"), "--partitions", "3", "--rows", "1500"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (tmp_path / "partitioned.yaml").write_text((SCALE / "partitioned.yaml").read_text())
    outcome = llmguard_ops.run(tmp_path / "partitioned.yaml", tmp_path / "run")
    drift, fairness = outcome.report.checks
    assert drift.status in ("pass", "fail") and drift.metrics["column.x1.drifted"].value == 1.0
    assert drift.metrics["column.x3.drifted"].value == 0.0  # x3 does not move
    assert fairness.status == "fail"  # the planted disparity
    assert outcome.report.decision.decision == "BLOCK"


# -- malformed input: one located line ------------------------------------------------


def test_malformed_partitions_give_one_located_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_data.write_partitions(tmp_path / "ok", 2, 50, seed=1, moved=False)
    (tmp_path / "empty").mkdir()
    make_data.write_partitions(tmp_path / "mixed", 2, 50, seed=1, moved=False)
    bad = pd.read_parquet(tmp_path / "mixed" / "part-00001.parquet")
    bad["x1"] = bad["x1"].astype(str)
    bad.to_parquet(tmp_path / "mixed" / "part-00001.parquet", index=False)
    cases = {
        "missing": ("ok", "target: lable", "datasets.current.target: column 'lable' not in the partitions"),
        "empty": ("empty", "target: label", "the folder holds no .parquet partition"),
        "mixed": ("mixed", "target: label", "partition part-00001.parquet has another schema than part-00000.parquet"),
    }
    errors = {}
    for name, (folder, role, message) in cases.items():
        suite = tmp_path / f"{name}.yaml"
        suite.write_text(
            "apiVersion: llmguard/v1\nname: bad\n"
            f"datasets:\n  current: {{path: {folder}, partitioned: true, {role}}}\n"
            "checks:\n  - {id: d, uses: drift.tabular, with: {reference: current}}\n"
        )
        capsys.readouterr()
        status = llmguard_ops.main(["validate", str(suite)])
        stderr = capsys.readouterr().err
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert status == 2, (name, stderr)
        assert len(lines) == 1 and lines[0].startswith(f"{suite}:4:") and message in lines[0], (name, lines)
        errors[name] = lines[0]
    assert "'x1' is large_string (in part-00000.parquet: double)" in errors["mixed"]


def test_a_check_that_cannot_stream_fails_closed_and_bad_columns_are_errors(project: Path, tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(f"""\
apiVersion: llmguard/v1
name: closed
datasets:
  reference: {{path: {project / "reference"}, partitioned: true}}
  current: {{path: {project / "current"}, partitioned: true}}
checks:
  - {{id: quality, uses: data.quality, with: {{dataset: current, reference: reference}}}}
  - {{id: drift, uses: drift.tabular, with: {{columns: [x1, nope]}}}}
""")
    outcome = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out")
    assert outcome.report.decision.decision == "BLOCK"
    quality, drift = outcome.report.checks
    assert quality.status == "error" and quality.error is not None and "is partitioned" in quality.error.message
    assert drift.status == "error" and drift.error is not None and "nope" in drift.error.message


# -- on a Ray cluster: a task per partition, under its memory limit ----------------------


@pytest.mark.slow
def test_drift_and_fairness_on_ray_stay_under_the_task_memory_limit(
    ray_cluster: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    limit_mb = 8
    data = tmp_path / "out"
    make_data.write_partitions(data / "reference", 32, 10_000, seed=7, moved=False)
    make_data.write_partitions(data / "current", 32, 10_000, seed=8, moved=True)
    suite = (SCALE / "partitioned.yaml").read_text().replace("task_memory_mb: 256", f"task_memory_mb: {limit_mb}")
    (tmp_path / "partitioned.yaml").write_text(suite)
    rows = concat(data / "current")
    in_memory = int(rows.memory_usage(deep=True).sum())
    assert in_memory > 3 * limit_mb * 2**20  # each side is several times one task's memory
    outcome = llmguard_ops.run(tmp_path / "partitioned.yaml", tmp_path / "run")
    drift, fairness = outcome.report.checks
    assert drift.status in ("pass", "fail") and fairness.status == "fail", (drift.error, fairness.error)
    passes = [*drift.details["partitioned"]["passes"], fairness.details["partitioned"]]
    for p in passes:
        assert p["executor"] == "ray" and p["partitions"] == 32 and p["rows"] == 320_000
        assert 0 < p["task_peak_memory_bytes"] < p["task_memory_limit_bytes"] == limit_mb * 2**20, p
        assert "notes" not in p
    from fairlearn.metrics import demographic_parity_difference

    pred = (rows["score"] >= 0.5).astype(int)
    groups = rows["sex"] + "&" + rows["region"]
    want = demographic_parity_difference(rows["label"], pred, sensitive_features=groups)
    assert abs(fairness.metrics["demographic_parity_difference"].value - want) <= 1e-9
    assert outcome.report.decision.decision == "BLOCK"  # the planted disparity of the shipped suite
    from llmguard_checks.drift import TabularDriftParams
    from llmguard_checks.drift._tabular import compare_frames

    features, _, _ = compare_frames(
        concat(data / "reference"), rows, TabularDriftParams(exclude=["score"]), skip={"label"}
    )
    in_memory = {r.column: r for r in features}
    for column in ("channel", "sex", "region", "k1"):  # counted: exact on Ray too
        assert abs(drift.metrics[f"column.{column}.statistic"].value - in_memory[column].statistic) <= 1e-9
    x1 = drift.metrics["column.x1.distance"]  # sketched: within its bound
    assert x1.lower is not None and x1.upper is not None and x1.lower <= in_memory["x1"].distance <= x1.upper

    # a task whose worker dies fails the whole pass: never a silently smaller dataset
    import os

    from llmguard_ops.partitioned import PartitionedDataset, map_partitions, open_partitions

    spec = llmguard_ops.DatasetSpec(path=str(data / "current"), partitioned=True)
    dataset = PartitionedDataset("current", spec, data / "current", "0" * 64, open_partitions(data / "current"))
    with pytest.raises(ray_cluster.exceptions.RayError):
        map_partitions(dataset, lambda frame: os._exit(3), columns=["x1"])
