"""The history database: rows per (suite, check, metric, window), JSON migration, history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.test_history_store import make_report

from llmguard_ops.cli import main
from llmguard_ops.history import load_history, save_run
from llmguard_ops.monitor.store import Store, migrate_json_runs


def _json_history(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    runs.mkdir()
    for i, acc in enumerate((0.81, 0.74, 0.66)):
        save_run(make_report(f"run-{i}", f"2026-01-0{i + 1}T00:00:00.000Z", acc), runs)
    (runs / "broken.json").write_text("{not json")
    return runs


def test_record_report_writes_one_row_per_metric_with_interval_and_gate(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "h.db"))
    report = make_report("r1", "2026-01-01T00:00:00.000Z", 0.66)
    assert store.record_report(report, window_start="2026-01-01T00:00:00Z", window_end="2026-01-02T00:00:00Z")
    assert not store.record_report(report)  # a run is stored once
    assert store.counts() == {"runs": 1, "metrics": 2, "windows": 0}
    points = store.series("s", "quality", "accuracy", windows_only=False)
    assert len(points) == 1
    p = points[0]
    assert (p.value, p.lower, p.upper) == pytest.approx((0.66, 0.64, 0.68))
    assert p.breached is True and p.fired is True
    assert store.reports()[0].run_id == "r1"
    store.close()


def test_migration_copies_every_readable_run_once(tmp_path: Path) -> None:
    runs = _json_history(tmp_path)
    store = Store(str(tmp_path / "h.db"))
    added, problems = migrate_json_runs(runs, store)
    assert added == 3
    assert any("broken.json" in p for p in problems)
    again, _ = migrate_json_runs(runs, store)
    assert again == 0
    assert store.counts()["runs"] == 3
    assert [r.run_id for r in store.reports("s")] == ["run-0", "run-1", "run-2"]
    store.close()


def test_history_reads_the_database_like_the_json_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = _json_history(tmp_path)
    db = tmp_path / "h.db"
    assert main(["history-migrate", "--dir", str(runs), "--db", str(db)]) == 0
    assert "3 run(s) added" in capsys.readouterr().out
    from_json = load_history(runs, audit_log=tmp_path / "none.jsonl")
    from_db = load_history(None, db=str(db))
    assert [r.run_id for r in from_db.runs] == [r.run_id for r in from_json.runs]
    assert main(["history", "--dir", str(runs), "--json"]) == 0
    json_out = json.loads(capsys.readouterr().out)
    assert main(["history", "--dir", str(tmp_path / "absent"), "--db", str(db), "--json"]) == 0
    db_out = json.loads(capsys.readouterr().out)
    for record in (*json_out, *db_out):
        record.pop("audited")
    assert db_out == json_out
    # both sources: each run once
    both = load_history(runs, db=str(db), audit_log=tmp_path / "none.jsonl")
    assert len(both.runs) == 3


def test_bad_database_url_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = _json_history(tmp_path)
    assert main(["history-migrate", "--dir", str(runs), "--db", "nosuchdialect://x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("history database nosuchdialect://x") and "\n" not in err


def test_a_window_recorded_twice_is_a_one_line_error(tmp_path: Path) -> None:
    from llmguard_ops.errors import LlmguardError

    store = Store(str(tmp_path / "h.db"))
    kw = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "rows": 10, "fired": [], "folder": "w"}
    store.record_window(make_report("a", "2026-01-02T00:00:01.000Z", 0.8), **kw)
    with pytest.raises(LlmguardError, match="was recorded meanwhile"):
        store.record_window(make_report("b", "2026-01-02T00:00:02.000Z", 0.8), **kw)
    assert store.counts() == {"runs": 1, "metrics": 2, "windows": 1}  # the second run left nothing
    store.close()
