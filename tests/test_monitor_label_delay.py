"""--label-delay: young windows run label-free, late labels add a revision, nothing is rewritten."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from llmguard_ops.monitor.run import MonitorOptions, monitor
from llmguard_ops.monitor.store import Store
from llmguard_ops.plugins import get_plugin_manager

START = pd.Timestamp("2026-03-01", tz="UTC")


def _draw(rng: np.random.Generator, n: int) -> pd.DataFrame:
    x = rng.normal(0, 1, (n, 2))
    p = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.5 * x[:, 1])))
    return pd.DataFrame(
        {"x1": x[:, 0], "x2": x[:, 1], "region": rng.choice(["north", "south"], n), "label": (rng.random(n) < p)}
    ).astype({"label": int})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import joblib

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", "off")
    rng = np.random.default_rng(5)
    ref = _draw(rng, 3000)
    joblib.dump(LogisticRegression().fit(ref[["x1", "x2"]], ref["label"]), tmp_path / "model.joblib")
    ref.to_csv(tmp_path / "reference.csv", index=False)
    days = []
    for day in range(4):
        w = _draw(rng, 600)
        w["ts"] = START + pd.Timedelta(days=day) + pd.to_timedelta(rng.uniform(0, 86399, len(w)), unit="s")
        w["request_id"] = [f"d{day}-{i}" for i in range(len(w))]
        if day == 3:  # the labels, when they come, show a drop in the north
            flip = (w["region"] == "north").to_numpy() & (rng.random(len(w)) < 0.6)
            w.loc[flip, "label"] = 1 - w.loc[flip, "label"]
        days.append(w)
    log = pd.concat(days, ignore_index=True)
    log[["request_id", "label"]].to_csv(tmp_path / "labels.csv", index=False)
    young = log["ts"] >= START + pd.Timedelta(days=2)
    log["label"] = log["label"].astype(float).where(~young)  # not labelled yet
    log.to_csv(tmp_path / "log.csv", index=False)
    spec = {"path": "reference.csv", "target": "label", "features": ["x1", "x2"], "sensitive": ["region"]}
    suite = {
        "apiVersion": "llmguard/v1",
        "name": "late",
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
            {"id": "estimated", "uses": "monitor.cbpe", "severity": "info"},
            {"id": "why", "uses": "monitor.root_cause", "with": {"columns": ["region"]}},
        ],
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    return tmp_path


def _opts(project: Path, now: pd.Timestamp, **kw: Any) -> MonitorOptions:
    return MonitorOptions(
        suite=project / "suite.yaml",
        dataset="current",
        log=project / "log.csv",
        time_column="ts",
        out=project / "out",
        db=str(project / "h.db"),
        now=now.to_pydatetime(),
        label_delay="2d",
        **kw,
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checks(folder: Path) -> set[str]:
    return {c["id"] for c in json.loads((folder / "report.json").read_text())["checks"]}


def test_label_delay_runs_label_free_then_appends_a_revision(project: Path) -> None:
    host = get_plugin_manager(blocked=["llmguard_ops.reporters.html"])
    first_now = START + pd.Timedelta(days=4, hours=12)  # days 3 and 4 ended less than 2 days ago
    result = monitor(_opts(project, first_now), host)
    assert [e["label_free"] for e in result.ran] == [False, False, True, True]
    young = result.windows[3]
    assert young["revision"] == 0 and young["label_free"]
    assert _checks(Path(young["folder"])) == {"drift", "estimated"}  # no labels: no accuracy, no ranking
    assert _checks(Path(result.windows[0]["folder"])) == {"drift", "quality", "estimated", "why"}
    # rerun, no labels arrived: nothing runs, no record changes
    before = _digest(project / "h.db")
    again = monitor(_opts(project, first_now + pd.Timedelta(days=3)), host)
    assert again.ran == [] and _digest(project / "h.db") == before
    store = Store(str(project / "h.db"))
    try:
        first_rows = {r["start"]: r for r in store._windows("late")}
        drift_points = store.series("late", "drift", "column.x1.statistic")
    finally:
        store.close()
    # the late labels, joined on the request id
    later = monitor(
        _opts(project, first_now + pd.Timedelta(days=3), labels=project / "labels.csv", label_id="request_id"), host
    )
    assert [(e["start"][:10], e["revision"]) for e in later.ran] == [("2026-03-03", 1), ("2026-03-04", 1)]
    last = later.windows[3]
    assert last["revision"] == 1 and not last["label_free"] and "quality.accuracy" in last["fired"]
    assert [r["revision"] for r in last["revisions"]] == [0, 1]
    assert _checks(Path(last["folder"])) == {"drift", "quality", "estimated", "why"}
    listing = json.loads((project / "out" / "monitor.json").read_text())
    entry = listing["windows"][3]
    assert entry["revision"] == 1 and entry["folder"].endswith("/r1")
    assert entry["root_causes"]["segments"][0]["segment"] == "north"
    store = Store(str(project / "h.db"))
    try:
        # the earlier records are as they were; the revision adds only the metrics it lacked
        assert {r["start"]: r for r in store._windows("late")} == first_rows
        assert store.series("late", "drift", "column.x1.statistic") == drift_points
        accuracy = store.series("late", "quality", "accuracy")
        assert len(accuracy) == 4  # two windows labelled at once, two by revision
        assert store.revisions("late")[entry["start"]][0]["label_free"]
    finally:
        store.close()
    # a further call with the same labels: nothing new
    before = _digest(project / "h.db")
    assert (
        monitor(
            _opts(project, first_now + pd.Timedelta(days=4), labels=project / "labels.csv", label_id="request_id"), host
        ).ran
        == []
    )
    assert _digest(project / "h.db") == before


def test_labels_without_an_id_column_is_a_one_line_error(project: Path) -> None:
    from llmguard_ops.errors import LlmguardError

    host = get_plugin_manager(blocked=["llmguard_ops.reporters.html"])
    with pytest.raises(LlmguardError, match="--label-id"):
        monitor(_opts(project, START + pd.Timedelta(days=5), labels=project / "labels.csv"), host)
    with pytest.raises(LlmguardError, match="no column 'nope'"):
        monitor(_opts(project, START + pd.Timedelta(days=5), labels=project / "labels.csv", label_id="nope"), host)


def test_cli_label_delay_option(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llmguard_ops.cli import main

    args = ["-p", "no:llmguard_ops.reporters.html", "monitor", "suite.yaml", "--dataset", "current=log.csv"]
    args += ["--time-column", "ts", "--out", "out", "--db", "h.db", "--now", "2026-03-05T12:00:00Z"]
    assert main([*args, "--label-delay", "soon"]) == 2
    assert "--label-delay: expected a length such as 12h or 3d, got 'soon'" in capsys.readouterr().err
    monitor_code = main([*args, "--label-delay", "2d", "--labelled", "quality", "--labelled", "why"])
    assert monitor_code in (0, 1, 3)
    out = capsys.readouterr().out
    assert "4 new window(s) run, 4 recorded" in out and out.count("(label-free)") == 2
    young = json.loads((project / "out" / "windows" / "20260304T000000Z" / "report.json").read_text())
    assert {c["id"] for c in young["checks"]} == {"drift", "estimated"}
    assert young["suite"]["metadata"]["llmguard.monitor"]["revision"] == {
        "revision": 0,
        "label_free": True,
        "left_out": ["quality", "why"],
    }
