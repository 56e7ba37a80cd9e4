"""deepeval's telemetry stays off however pytest is started, even outside this repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

SUITE = """\
apiVersion: llmguard/v1
name: outside
models:
  candidate: {loader: python, path: "model.py:make"}
datasets:
  current: {path: data.csv, target: label}
checks:
  - id: quality
    uses: performance.classification
    with: {n_resamples: 20}
    gate: {accuracy: {min: 0.99}}
"""

MODEL = """\
import numpy as np

class Constant:
    def predict(self, x):
        return np.zeros(len(x), dtype=int)

def make():
    return Constant()
"""

PROBE = """\
import json, os, sys

def pytest_sessionfinish(session):
    t = sys.modules.get("deepeval.telemetry")
    state = {"env": os.environ.get("DEEPEVAL_TELEMETRY_OPT_OUT"), "imported": t is not None,
             "posthog": t is not None and hasattr(t, "posthog"),
             "llmguard": session.config.pluginmanager.has_plugin("llmguard")}
    with open("probe.json", "w") as fh:
        json.dump(state, fh)
"""


@pytest.mark.slow
def test_pytest_outside_the_repo_runs_deepeval_without_telemetry(tmp_path: Path) -> None:
    pytest.importorskip("deepeval")
    (tmp_path / "suite.yaml").write_text(SUITE, encoding="utf-8")
    (tmp_path / "model.py").write_text(MODEL, encoding="utf-8")
    (tmp_path / "data.csv").write_text("x,label\n" + "".join(f"{i},{i % 2}\n" for i in range(20)), encoding="utf-8")
    (tmp_path / "conftest.py").write_text(PROBE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if "TELEMETRY" not in k and k not in ("DO_NOT_TRACK", "DEEPEVAL")}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--llmguard-suite",
            "suite.yaml",
            "-p",
            "no:cacheprovider",
            "-q",
            "--llmguard-out",
            str(tmp_path / "out"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # BLOCK: a constant model fails the gate
    state = json.loads((tmp_path / "probe.json").read_text())
    assert state["llmguard"] is True
    assert state["env"] == "YES"
    assert state["imported"] is True  # deepeval's pytest plugin was loaded ...
    assert state["posthog"] is False  # ... and set up no telemetry client


def test_telemetry_set_up_before_llmguard_is_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmguard_ops import pytest_plugin

    client = types.SimpleNamespace(disabled=False)
    fake = types.ModuleType("deepeval.telemetry")
    fake.posthog = client  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "deepeval.telemetry", fake)
    monkeypatch.delenv("DEEPEVAL_TELEMETRY_OPT_OUT", raising=False)
    pytest_plugin._telemetry_off()
    assert os.environ["DEEPEVAL_TELEMETRY_OPT_OUT"] == "YES"
    assert client.disabled is True
