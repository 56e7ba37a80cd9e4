"""The run history: storing reports, reading them back, joining the audit log, the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmguard_ops.history import (
    format_table,
    history_dir,
    load_history,
    metric_keys,
    run_file_name,
    save_run,
    series_records,
)
from llmguard_ops.report import Report


def make_report(run_id: str, started_at: str, accuracy: float, *, suite: str = "s", gate_min: float = 0.7) -> Report:
    passed = accuracy >= gate_min
    data: dict[str, Any] = {
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": started_at,
        "duration_s": 1.0,
        "suite": {
            "name": suite,
            "path": "suite.yaml",
            "sha256": f"sha-{suite}",
            "api_version": "llmguard/v1",
            "seed": 0,
        },
        "decision": {
            "decision": "PROMOTE" if passed else "BLOCK",
            "reasons": [],
            "exit_code": 0 if passed else 1,
        },
        "checks": [
            {
                "id": "quality",
                "uses": "performance.classification",
                "plugin": "p",
                "severity": "blocker",
                "status": "pass" if passed else "fail",
                "metrics": {
                    "accuracy": {
                        "value": accuracy,
                        "lower": accuracy - 0.02,
                        "upper": accuracy + 0.02,
                        "confidence": 0.95,
                    },
                    "column.age.p_value": {"value": 0.5},
                },
                "gates": [
                    {
                        "metric": "accuracy",
                        "min": gate_min,
                        "value": accuracy,
                        "passed": passed,
                        "reason": "r",
                    }
                ],
            }
        ],
    }
    return Report.model_validate(data)


def test_history_dir_default_env_and_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLMGUARD_HISTORY_DIR", raising=False)
    assert history_dir() == Path(".llmguard/runs")
    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", str(tmp_path))
    assert history_dir() == tmp_path
    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", "off")
    assert history_dir() is None
    assert history_dir(tmp_path / "x") == tmp_path / "x"


def test_saved_runs_read_back_oldest_first(tmp_path: Path) -> None:
    late = make_report("bbbb", "2026-01-02T10:00:00.000Z", 0.80)
    early = make_report("aaaa", "2026-01-01T10:00:00.000Z", 0.75)
    other = make_report("cccc", "2026-01-03T10:00:00.000Z", 0.9, suite="other")
    for r in (late, early, other):
        path = save_run(r, tmp_path)
        assert path.name == run_file_name(r) and ":" not in path.name
    (tmp_path / "broken.json").write_text("{not json")
    history = load_history(tmp_path)
    assert [r.run_id for r in history.runs] == ["aaaa", "bbbb", "cccc"]
    assert history.suites() == ["other", "s"]
    assert len(history.problems) == 1 and "broken.json" in history.problems[0]
    only = load_history(tmp_path, suite="s", exclude_run="bbbb")
    assert [r.run_id for r in only.runs] == ["aaaa"]
    assert not list(tmp_path.glob("*.tmp")), "writes are atomic: no temporary file is left behind"


def test_audit_log_is_joined_on_run_id_and_optional(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    save_run(make_report("aaaa", "2026-01-01T10:00:00.000Z", 0.75), runs)
    log = tmp_path / "audit.jsonl"
    entries = [
        {
            "run_id": "aaaa",
            "time": "2026-01-01T10:00:05Z",
            "decision": "PROMOTE",
            "suite_sha256": "sha-s",
        },
        {
            "run_id": "zzzz",
            "time": "2026-01-05T10:00:05Z",
            "decision": "BLOCK",
            "suite_sha256": "sha-s",
        },
    ]
    log.write_text("\n".join(json.dumps(e) for e in entries) + "\nnot json\n")
    history = load_history(runs)  # the log next to the folder is found by default
    assert [(r.run_id, r.audit is not None, r.report is not None) for r in history.runs] == [
        ("aaaa", True, True),
        ("zzzz", True, False),
    ]
    assert history.runs[1].suite == "s", "an audit-only run is attributed by the suite's digest"
    assert any("not JSON" in p for p in history.problems)
    log.unlink()
    assert [r.audit for r in load_history(runs).runs] == [None]


def test_metric_keys_patterns_and_table(tmp_path: Path) -> None:
    runs = [
        make_report("aaaa", "2026-01-01T10:00:00Z", 0.75),
        make_report("bbbb", "2026-01-02T10:00:00Z", 0.65),
    ]
    for r in runs:
        save_run(r, tmp_path)
    records = load_history(tmp_path).runs
    assert metric_keys(records) == ["quality.accuracy", "quality.column.age.p_value"]
    assert metric_keys(records, ["accuracy"]) == ["quality.accuracy"]
    assert metric_keys(records, ["quality.column.*"]) == ["quality.column.age.p_value"]
    table = format_table("s", records, ["quality.accuracy"])
    lines = table.splitlines()
    assert lines[0] == "suite s: 2 runs"
    row = next(line for line in lines if line.startswith("quality.accuracy"))
    assert row.split() == ["quality.accuracy", "0.75", "0.65!", "-0.1"], "the failed gate is marked with !"
    assert "BLOCK" in next(line for line in lines if line.startswith("decision"))
    rows = series_records(records, ["quality.accuracy"])
    assert [(r["run_id"], r["value"], r["gate_failed"]) for r in rows] == [
        ("aaaa", 0.75, False),
        ("bbbb", 0.65, True),
    ]
