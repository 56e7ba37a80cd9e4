"""``pytest --llmguard-suite`` gets the guarantee of ``llmguard run``: a model ending the
process with status 0 (or a signal) cannot make the pytest session pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trust_support import project


def _pytest(suite: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLMGUARD_HISTORY_DIR": "off"}
    env.pop("LLMGUARD_PYTEST_RUN_ID", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:plugins",
            "--llmguard-suite",
            str(suite),
            "--llmguard-out",
            str(suite.parent / "out"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=suite.parent,
        env=env,
    )


def test_a_model_calling_os_exit_0_fails_the_session(tmp_path: Path) -> None:
    ran = _pytest(project(tmp_path, predict="import os; os._exit(0)"))
    assert ran.returncode != 0, ran.stdout + ran.stderr
    assert "supervised run failed" in ran.stdout + ran.stderr
    assert "no complete report" in ran.stdout + ran.stderr


def test_a_stale_promote_report_does_not_pass_a_crashed_session(tmp_path: Path) -> None:
    suite = project(tmp_path)
    sound = _pytest(suite)
    assert sound.returncode == 0, sound.stdout + sound.stderr
    assert "supervised run passed" in sound.stdout
    model = tmp_path / "model.py"
    model.write_text(
        model.read_text().replace(
            "    def predict(self, frame):\n",
            "    def predict(self, frame):\n        import os, signal; os.kill(os.getpid(), signal.SIGSEGV)\n",
        )
    )
    ran = _pytest(suite)
    assert ran.returncode != 0
    assert "is not this run's report" in ran.stdout + ran.stderr
