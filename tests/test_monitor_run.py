"""``llmguard monitor`` end to end on the shipped example (suites/monitor/)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from llmguard_ops.cli import main
from llmguard_ops.monitor.run import MonitorOptions, MonitorResult, monitor
from llmguard_ops.monitor.store import Store
from llmguard_ops.plugins import get_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "suites" / "monitor"
QUIET = range(10, 40)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("monitor_generate", EXAMPLE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", "off")
    monkeypatch.delenv("LLMGUARD_SIGNING_KEY", raising=False)
    for name in ("suite.yaml", "static.yaml", "generate.py"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    return tmp_path


def _run(project: Path, suite: str, log: Path, **kw: Any) -> MonitorResult:
    host = get_plugin_manager(blocked=["llmguard_ops.reporters.html"])  # plots cost most of a window
    opts = MonitorOptions(
        suite=project / suite,
        dataset="current",
        log=log,
        time_column="ts",
        every="1d",
        out=project / f"out-{suite}",
        db=str(project / f"{suite}.db"),
        audit_log=str(project / "audit.jsonl"),
        **kw,
    )
    return monitor(opts, host)


def _fired(result: MonitorResult) -> dict[int, list[str]]:
    return {i: w["fired"] for i, w in enumerate(result.windows) if w["fired"]}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_small_log_cli_writes_windows_reports_and_is_idempotent(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _generator().main(project, days=9, rows_per_day=150)
    # a folder of partitions in two formats
    import pandas as pd

    frame = pd.read_csv(project / "data" / "production.csv")
    parts = project / "log"
    parts.mkdir()
    frame.iloc[: len(frame) // 2].to_parquet(parts / "part-0.parquet", index=False)
    frame.iloc[len(frame) // 2 :].to_json(parts / "part-1.jsonl", orient="records", lines=True)
    prom = project / "textfile" / "llmguard.prom"
    args = [
        "-p",
        "no:llmguard_ops.reporters.html",
        "monitor",
        "suite.yaml",
        "--dataset",
        f"current={parts}",
        "--time-column",
        "ts",
        "--every",
        "1d",
        "--out",
        "out",
        "--db",
        "h.db",
        "--prometheus",
        str(prom),
    ]
    assert main([*args, "--now", "2026-01-08T00:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "7 new window(s) run, 7 recorded" in out  # windows ending after --now wait
    summary = json.loads((project / "out" / "monitor.json").read_text())
    assert [w["start"][:10] for w in summary["windows"]] == [f"2026-01-0{d}" for d in range(1, 8)]
    first = summary["windows"][0]
    assert first["rows"] == 150 and first["decision"] == "PROMOTE" and first["fired"] == []
    folder = project / "out" / first["folder"]
    report = json.loads((folder / "report.json").read_text())
    assert (folder / "attestation.dsse.json").is_file()
    assert report["datasets"]["current"]["rows"] == 150
    band = report["suite"]["metadata"]["llmguard.monitor"]
    assert band["window"]["start"] == first["start"]
    assert band["gates"]["latency.latency_ms.p95"]["band"] is None  # still learning: static max applies
    assert band["gates"]["latency.latency_ms.p95"]["applied"]["max"] == 250
    seventh = json.loads((project / "out" / summary["windows"][6]["folder"] / "report.json").read_text())
    learnt = seventh["suite"]["metadata"]["llmguard.monitor"]["gates"]["drift.column.x1.statistic"]
    assert learnt["band"] is None  # 6 windows < min_history 7
    # Prometheus text format, read back with prometheus_client's parser
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    firing = {s.labels["metric"]: s.value for s in families["llmguard_gate_firing"].samples}
    assert firing["latency_ms.p95"] == 0.0 and "column.x1.statistic" in firing
    assert families["llmguard_window_rows"].samples[0].value == 150
    page = (project / "out" / "monitor.html").read_text()
    assert "<h2>latency.latency_ms.p95</h2>" in page and "data:image/svg+xml" in page
    # audit log: one entry per window
    assert len((project / ".llmguard" / "audit.jsonl").read_text().splitlines()) == 7
    # later call: the two remaining windows only, then nothing
    before = _digest(project / "h.db")
    assert main(args) == 0
    assert "2 new window(s) run, 9 recorded" in capsys.readouterr().out
    assert _digest(project / "h.db") != before
    before, listing = _digest(project / "h.db"), json.loads((project / "out" / "monitor.json").read_text())
    assert main(args) == 0
    assert "0 new window(s) run, 9 recorded" in capsys.readouterr().out
    assert _digest(project / "h.db") == before
    assert json.loads((project / "out" / "monitor.json").read_text()) == listing


def test_bad_inputs_are_one_line_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _generator().main(project, days=2, rows_per_day=50)
    log = "current=data/production.csv"
    assert main(["monitor", "suite.yaml", "--dataset", log, "--time-column", "when", "--db", "h.db"]) == 2
    assert "--time-column: the log has no column 'when'" in capsys.readouterr().err
    assert (
        main(["monitor", "suite.yaml", "--dataset", "nope=data/production.csv", "--time-column", "ts", "--db", "h.db"])
        == 2
    )
    assert "--dataset nope: the suite has no dataset" in capsys.readouterr().err
    assert (
        main(["monitor", "suite.yaml", "--dataset", log, "--time-column", "ts", "--every", "1y", "--db", "h.db"]) == 2
    )
    assert "--every" in capsys.readouterr().err


@pytest.mark.slow
def test_sixty_days_learnt_gates_catch_both_incidents_and_stay_quiet(project: Path) -> None:
    gen = _generator()
    log = gen.main(project)
    learnt = _run(project, "suite.yaml", log)
    assert len(learnt.windows) == 60 and learnt.exit_code == 1
    fired = _fired(learnt)
    x1 = [i for i, f in fired.items() if "drift.column.x1.statistic" in f]
    latency = [i for i, f in fired.items() if "latency.latency_ms.p95" in f]
    assert x1 and gen.SHIFT_DAY <= x1[0] <= gen.SHIFT_DAY + 1
    assert latency and gen.REGRESSION_DAY <= latency[0] <= gen.REGRESSION_DAY + 1
    quiet = [i for i in fired if i in QUIET]
    assert len(quiet) <= 1
    # the same suite with static thresholds that also catch both within 2 windows
    static = _run(project, "static.yaml", log)
    sfired = _fired(static)
    assert any("drift.column.x1.statistic" in sfired.get(d, []) for d in (40, 41))
    assert any("latency.latency_ms.p95" in sfired.get(d, []) for d in (50, 51))
    squiet = [i for i in sfired if i in QUIET]
    assert len(squiet) > len(quiet)
    # change points begin at the planted windows
    anomalies = json.loads(learnt.monitor_file.read_text())["anomalies"]
    starts = {(c["metric"], c["window"][:10]) for c in anomalies["change_points"]}
    assert ("drift.column.x1.statistic", "2026-02-10") in starts  # day 40
    assert ("latency.latency_ms.p95", "2026-02-20") in starts  # day 50
    assert ("latency.latency_ms.p95", "2026-01-21") in starts  # the benign upgrade, day 20
    outliers = {o["window"][:10] for o in anomalies["multivariate"]}
    assert "2026-02-10" in outliers and not any(w < "2026-02-10" for w in outliers)
    # CBPE's label-free accuracy stays near the realised one
    store = Store(str(project / "suite.yaml.db"))
    est = [p.value for p in store.series("scorer-production", "estimated", "accuracy")]
    real = [p.value for p in store.series("scorer-production", "quality", "accuracy")]
    store.close()
    assert abs(sum(est) / 60 - sum(real) / 60) < 0.03
    # rerun: nothing runs, no record changes
    db, listing = _digest(project / "suite.yaml.db"), learnt.monitor_file.read_text()
    again = _run(project, "suite.yaml", log)
    assert again.ran == [] and again.exit_code == 1
    assert _digest(project / "suite.yaml.db") == db
    assert learnt.monitor_file.read_text() == listing
    print(f"quiet-period firings (days 10-39): learnt {len(quiet)} {quiet}, static {len(squiet)} {squiet}")
    print(f"first firing: x1 day {x1[0]}, latency day {latency[0]}")


class _Hooks:
    """A local HTTP endpoint recording POSTed JSON bodies (stopped by the test)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from threading import Thread

        self.bodies: list[tuple[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                outer.bodies.append((self.path, json.loads(self.rfile.read(size))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_incident_playbook_webhook_ticket_approval(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    _generator().main(project, days=2, rows_per_day=120)
    hooks = _Hooks()
    try:
        suite = yaml.safe_load((project / "suite.yaml").read_text())
        suite["checks"][2]["gate"] = {"accuracy": {"min": 0.99}}  # BLOCK every window
        suite["incidents"] = [
            {"id": "notify", "uses": "webhook", "with": {"url": f"{hooks.url}/chat?token=s3cret"}},
            {
                "id": "ticket",
                "uses": "ticket",
                "when": ["fired"],
                "with": {
                    "url": f"{hooks.url}/tickets",
                    "template": '{"title": "$suite: $fired", "window": "$window", "body": "$reasons"}',
                },
            },
            {"id": "unknown", "uses": "pager.call"},
            {"id": "page", "uses": "webhook", "needs_approval": True, "with": {"url": f"{hooks.url}/page"}},
        ]
        (project / "incident.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
        args = [
            "-p",
            "no:llmguard_ops.reporters.html",
            "monitor",
            "incident.yaml",
            "--dataset",
            "current=data/production.csv",
            "--time-column",
            "ts",
            "--out",
            "out",
            "--db",
            "h.db",
            "--now",
            "2026-01-02T00:00:00Z",
        ]
        assert main(args) == 1
        out = capsys.readouterr().out
        assert "incident step page (webhook): awaiting-approval: paused: rerun with --approve page" in out
        assert "no installed plugin runs incident step 'pager.call'" in out
        assert [p for p, _ in hooks.bodies] == ["/chat?token=s3cret", "/tickets"]
        ticket = hooks.bodies[1][1]
        assert ticket["title"] == "scorer-production: quality.accuracy" and "accuracy" in ticket["body"]
        audit = [json.loads(line) for line in (project / ".llmguard" / "audit.jsonl").read_text().splitlines()]
        steps = [e for e in audit if e.get("kind") == "incident-step"]
        assert [(e["step"], e["status"]) for e in steps] == [
            ("notify", "done"),
            ("ticket", "done"),
            ("unknown", "failed"),
            ("page", "awaiting-approval"),
        ]
        assert not any("s3cret" in json.dumps(e) for e in audit)  # the URL's token stays out of the log
        listing = json.loads((project / "out" / "monitor.json").read_text())
        assert [s["status"] for s in listing["windows"][0]["incidents"]][-1] == "awaiting-approval"
        # approval: the paused step runs, nothing else runs again
        assert main([*args, "--approve", "page"]) == 1
        assert "incident step page (webhook): done" in capsys.readouterr().out
        assert [p for p, _ in hooks.bodies][-1] == "/page" and len(hooks.bodies) == 3
        state = json.loads((project / "out" / "windows" / "20260101T000000Z" / "incident.json").read_text())
        assert [s["status"] for s in state["steps"]] == ["done", "done", "failed", "done"]
        # --dry-run posts nothing
        (project / "h.db").unlink()
        assert main([*args, "--dry-run", "--out", "out2"]) == 1
        assert "would POST webhook to http://127.0.0.1" in capsys.readouterr().out
        assert len(hooks.bodies) == 3
    finally:
        hooks.close()
