"""The live terminal display: when it is used, what it prints, and that the CLI stays light."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from llmguard_ops.terminal_live import LiveDisplay, wanted
from test_history_store import make_report


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_display_only_on_a_terminal_and_never_when_quiet() -> None:
    assert wanted(False, _Tty())
    assert not wanted(True, _Tty()), "--quiet and --json keep plain output"
    assert not wanted(False, io.StringIO()), "pipes and CI logs get plain lines"


def test_progress_lines_and_summary_table() -> None:
    from rich.console import Console

    report = make_report("run-1234-abcd", "2026-01-01T10:00:00Z", 0.65)
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=140, highlight=False, color_system=None)
    live = LiveDisplay(len(report.checks), console=console)
    with live:
        live("loaded", {"models": ["candidate", "baseline"], "datasets": ["current"]})
        for check in report.checks:
            live("check_start", {"id": check.id, "uses": check.uses})
            live("check_end", {"id": check.id, "result": check})
    live.summary(report, [])
    out = buffer.getvalue()
    assert "loaded models: candidate, baseline; datasets: current" in out
    assert "FAIL" in out and "quality" in out and "accuracy=0.65 [0.63, 0.67]" in out
    table = out.split("run run-1234")[1]
    assert "accuracy 0.65 [0.63, 0.67] ≥ 0.7 ✗" in table, "the failed gate with its interval and bound"
    assert " BLOCK " in table


def test_importing_the_cli_does_not_import_rich_jinja_or_matplotlib() -> None:
    code = (
        "import sys, llmguard_ops.cli; from llmguard_ops.plugins import get_plugin_manager; "
        "get_plugin_manager().registry(); "
        "print(sorted(m for m in ('rich', 'jinja2', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_run_uses_the_live_display_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, checkout_copy: Path
) -> None:
    from llmguard_ops import terminal_live
    from llmguard_ops.cli import main

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setattr(terminal_live, "wanted", lambda quiet, stream=None: not quiet)
    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", str(tmp_path / "runs"))  # restored after the test
    suite = checkout_copy / "tests" / "data" / "reports_live_suite.yaml"
    code = main(["-p", "reporting_checks", "run", str(suite), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "suite reports-live" in out and "loaded models: candidate; datasets: current" in out
    assert "FAIL  explain" in out and "importance.income" in out and "✗" in out
    assert "BLOCK" in out and "decision:" not in out, "the summary table replaces the plain lines"
    assert len(list((tmp_path / "runs").glob("*.json"))) == 1


def test_builtin_reporters_can_be_blocked_but_not_the_loaders() -> None:
    from llmguard_ops.plugins import get_plugin_manager

    names = set(get_plugin_manager(entry_points=False).registry().reporters)
    assert {"html", "model_card", "history"} <= names
    blocked = get_plugin_manager(
        entry_points=False, blocked=["llmguard_ops.reporters.html", "llmguard_ops.builtin"]
    ).registry()
    assert "html" not in blocked.reporters and "model_card" in blocked.reporters
    assert blocked.model_loaders, "the essential builtin still loads"
