"""monitor.root_cause: a drop planted in one segment ranks that segment first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from statsmodels.stats.proportion import proportion_confint

REGIONS = ["north", "south", "east", "west"]


def _draw(rng: np.random.Generator, n: int) -> pd.DataFrame:
    x = rng.normal(0, 1, (n, 2))
    p = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.5 * x[:, 1])))
    return pd.DataFrame(
        {
            "x1": x[:, 0],
            "x2": x[:, 1],
            "region": rng.choice(REGIONS, n),
            "channel": rng.choice(["web", "app"], n),
            "label": (rng.random(n) < p).astype(int),
        }
    )


def _project(llmguard_project: Any, with_: dict[str, Any]) -> tuple[Any, pd.DataFrame, pd.DataFrame, Any]:
    rng = np.random.default_rng(7)
    ref, win = _draw(rng, 4000), _draw(rng, 2000)
    model = LogisticRegression().fit(ref[["x1", "x2"]], ref["label"])
    north = (win["region"] == "north").to_numpy()
    flip = north & (rng.random(len(win)) < 0.45)  # concept drift in the north only
    win.loc[flip, "label"] = 1 - win.loc[flip, "label"]
    spec = {"features": ["x1", "x2"], "sensitive": ["region"]}
    llmguard_project.dataset("reference", ref, target="label", **spec)
    llmguard_project.dataset("current", win, target="label", **spec)
    llmguard_project.model("candidate", model)
    llmguard_project.check("why", uses="monitor.root_cause", with_=with_, gate={"drop": {"max": 0.05}})
    return llmguard_project.run(), ref, win, model


def test_planted_drop_ranks_its_segment_first(llmguard_project: Any) -> None:
    outcome, ref, win, model = _project(llmguard_project, {"columns": ["region", "channel", "x1"], "min_rows": 50})
    outcome.assert_decision("BLOCK")  # the drop gate fails: the planted drop is real
    result = outcome.results["why"]
    causes = result.details["root_causes"]
    first = causes[0]
    assert (first["column"], first["segment"], first["kind"]) == ("region", "north", "sensitive")
    # sklearn as the oracle of each side, statsmodels of the Wilson interval
    pred_w, pred_r = model.predict(win[["x1", "x2"]]), model.predict(ref[["x1", "x2"]])
    in_w, in_r = (win["region"] == "north").to_numpy(), (ref["region"] == "north").to_numpy()
    acc_w = accuracy_score(win["label"][in_w], pred_w[in_w])
    acc_r = accuracy_score(ref["label"][in_r], pred_r[in_r])
    assert first["window"] == pytest.approx(acc_w) and first["reference"] == pytest.approx(acc_r)
    assert first["n_window"] == int(in_w.sum()) and first["share"] == pytest.approx(in_w.mean())
    assert first["contribution"] == pytest.approx(in_w.mean() * (acc_r - acc_w))
    k = int((pred_w[in_w] == win["label"][in_w]).sum())
    assert first["window_interval"] == pytest.approx(list(proportion_confint(k, int(in_w.sum()), method="wilson")))
    assert first["window_interval"][1] < first["reference_interval"][0]  # a significant fall
    # "what-if": giving the north its reference accuracy removes (almost) the whole drop
    drop = accuracy_score(ref["label"], pred_r) - accuracy_score(win["label"], pred_w)
    assert result.metrics["drop"].value == pytest.approx(drop)
    assert first["share_of_drop"] == pytest.approx(first["contribution"] / drop)
    assert first["share_of_drop"] > 0.8
    # the regions without a change rank below every channel segment (each holds half the north)
    rank = {(c["column"], c["segment"]): c["rank"] for c in causes}
    for region in ("south", "east", "west"):
        assert rank[("region", region)] > max(rank[("channel", "web")], rank[("channel", "app")])
        seg = next(c for c in causes if c["segment"] == region)
        assert abs(seg["contribution"]) < 0.25 * first["contribution"]
    assert {c["kind"] for c in causes if c["column"] == "x1"} == {"binned"}
    assert len([c for c in causes if c["column"] == "x1"]) == 4  # quartiles of the reference
    assert result.metrics["top_contribution"].value == pytest.approx(first["contribution"])


def test_small_segments_are_skipped_and_said_so(llmguard_project: Any) -> None:
    outcome, *_ = _project(llmguard_project, {"columns": ["region"], "min_rows": 600})
    details = outcome.results["why"].details
    assert details["min_rows"] == 600
    # ~500 window rows per region: every segment is below the minimum, none ranked
    assert details["root_causes"] == [] and len(details["skipped"]) == 4
    assert "min_rows 600" in details["skipped"][0]
    assert outcome.results["why"].metrics["top_contribution"].value == 0.0


def test_unknown_column_is_an_error_naming_it(llmguard_project: Any) -> None:
    outcome, *_ = _project(llmguard_project, {"columns": ["region", "nope"]})
    result = outcome.results["why"]
    assert result.status.value == "error" and result.error is not None
    assert "dataset 'reference' has no column 'nope'" in result.error.message
    outcome.assert_decision("BLOCK")  # fails closed


def test_cbpe_metric_ranks_without_window_labels(llmguard_project: Any) -> None:
    # label-free: CBPE cannot see concept drift, so plant a covariate shift that lowers
    # accuracy in the north only (rows pushed towards the decision boundary)
    rng = np.random.default_rng(3)
    ref, win = _draw(rng, 4000), _draw(rng, 2000)
    model = LogisticRegression().fit(ref[["x1", "x2"]], ref["label"])
    north = win["region"] == "north"
    win.loc[north, ["x1", "x2"]] *= 0.2
    win = win.drop(columns="label")
    spec = {"features": ["x1", "x2"], "sensitive": ["region"]}
    llmguard_project.dataset("reference", ref, target="label", **spec)
    llmguard_project.dataset("current", win, **spec)
    llmguard_project.model("candidate", model)
    llmguard_project.check("why", uses="monitor.root_cause", with_={"metric": "cbpe_accuracy", "columns": ["region"]})
    result = llmguard_project.run().results["why"]
    assert result.status.value != "error", result.error
    causes = result.details["root_causes"]
    assert causes[0]["segment"] == "north" and causes[0]["window"] < causes[0]["reference"] - 0.1
    assert all(abs(c["contribution"]) < 0.02 for c in causes[1:])
    assert any("concept drift" in w for w in result.warnings)


def test_monitor_lists_root_causes_of_the_window_whose_accuracy_gate_fired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import joblib
    import yaml

    from llmguard_ops.monitor.run import MonitorOptions, monitor
    from llmguard_ops.plugins import get_plugin_manager

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", "off")
    rng = np.random.default_rng(11)
    ref = _draw(rng, 3000)
    model = LogisticRegression().fit(ref[["x1", "x2"]], ref["label"])
    joblib.dump(model, tmp_path / "model.joblib")
    ref.to_csv(tmp_path / "reference.csv", index=False)
    days = []
    for day in range(3):
        w = _draw(rng, 800)
        w["ts"] = (
            pd.Timestamp("2026-03-01", tz="UTC")
            + pd.Timedelta(days=day)
            + pd.to_timedelta(rng.uniform(0, 86399, len(w)), unit="s")
        )
        if day == 2:  # accuracy falls in the north only, and x2 drifts everywhere
            flip = (w["region"] == "north").to_numpy() & (rng.random(len(w)) < 0.6)
            w.loc[flip, "label"] = 1 - w.loc[flip, "label"]
            w["x2"] += 0.5
        days.append(w)
    pd.concat(days).to_csv(tmp_path / "log.csv", index=False)
    spec = {"path": "reference.csv", "target": "label", "features": ["x1", "x2"], "sensitive": ["region"]}
    suite = {
        "apiVersion": "llmguard/v1",
        "name": "rc",
        "models": {"candidate": {"loader": "sklearn", "path": "model.joblib"}},
        "datasets": {"reference": spec, "current": spec},
        "checks": [
            {"id": "drift", "uses": "drift.tabular", "with": {"columns": ["x1", "x2"], "method": "ks"}},
            {
                "id": "quality",
                "uses": "performance.classification",
                "with": {"dataset": "current", "n_resamples": 50},
                "gate": {"accuracy": {"min": 0.78}},
            },
            {"id": "why", "uses": "monitor.root_cause", "with": {"columns": ["region", "channel", "x2"]}},
        ],
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    opts = MonitorOptions(
        suite=tmp_path / "suite.yaml",
        dataset="current",
        log=tmp_path / "log.csv",
        time_column="ts",
        out=tmp_path / "out",
        db=str(tmp_path / "h.db"),
        now=pd.Timestamp("2026-03-05", tz="UTC").to_pydatetime(),
    )
    host = get_plugin_manager(blocked=["llmguard_ops.reporters.html"])
    result = monitor(opts, host)
    listing = json.loads((tmp_path / "out" / "monitor.json").read_text())
    first, _, last = listing["windows"]
    assert first["fired"] == [] and "root_causes" not in first
    assert "quality.accuracy" in last["fired"]
    hints = last["root_causes"]
    assert hints["trigger"] == ["quality.accuracy"] and "x2" in hints["drifted_columns"]
    top = hints["segments"][0]
    assert (top["column"], top["segment"], top["check"]) == ("region", "north", "why")
    assert all(s["drifted"] for s in hints["segments"] if s["column"] == "x2")
    assert not any(s["drifted"] for s in hints["segments"] if s["column"] == "region")
    assert result.ran[-1]["root_causes"] == hints
    # a rerun runs nothing and leaves the listing as it was
    again = monitor(opts, host)
    assert again.ran == [] and json.loads((tmp_path / "out" / "monitor.json").read_text()) == listing


def test_docs_example_is_a_valid_check(tmp_path: Path) -> None:
    import re

    import yaml

    from llmguard_ops.loading import load_suite
    from llmguard_ops.plugins import get_plugin_manager

    doc = (Path(__file__).resolve().parents[1] / "docs" / "monitoring.md").read_text()
    section = doc[doc.index("## Root-cause hints") : doc.index("## Prometheus")]
    (snippet,) = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    checks = yaml.safe_load(snippet)
    assert checks[0]["uses"] == "monitor.root_cause"
    frame = pd.DataFrame({"x1": [0.0], "region": ["n"], "channel": ["web"], "label": [0]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    ds = {"path": "d.csv", "target": "label", "features": ["x1"], "sensitive": ["region"]}
    suite = {
        "apiVersion": "llmguard/v1",
        "name": "doc",
        "models": {"candidate": {"loader": "sklearn", "path": "m.joblib"}},
        "datasets": {"reference": ds, "current": ds},
        "checks": checks,
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    loaded = load_suite(tmp_path / "suite.yaml", get_plugin_manager().registry())
    assert loaded.suite.checks[0].with_["min_rows"] == 30
