"""``policy.isolation: process``: a check that segfaults, exits or hangs is
an ERROR of that check alone, and the other checks still run and gate."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmguard_ops
from llmguard_ops.results import Decision, Status
from trust_support import project

SECOND = """\
  - id: plain
    uses: performance.classification
    with: {model: baseline, dataset: current, n_resamples: 0}
    gate: {accuracy: {min: 0.5}}
"""


def _isolated(root: Path, predict: str, policy: str = "isolation: process") -> Path:
    suite = project(root, predict=predict, extra=SECOND + f"policy: {{{policy}}}\n")
    text = suite.read_text().replace(
        "  candidate: {loader: python, path: model.py:make}\n",
        "  candidate: {loader: python, path: model.py:make}\n  baseline: {loader: python, path: sound.py:make}\n",
    )
    suite.write_text(text)
    (root / "sound.py").write_text(
        "import numpy as np\n\nclass M:\n    def predict(self, f):\n"
        "        return (np.asarray(f['x']) > 0).astype(int)\n\ndef make():\n    return M()\n"
    )
    return suite


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "signal SIGSEGV"),
        ("import os; os._exit(0)", "exit status 0"),
        ("raise SystemExit(0)", "SystemExit"),
    ],
    ids=["SIGSEGV", "os._exit(0)", "SystemExit"],
)
def test_a_crashing_check_is_an_error_and_the_run_goes_on(tmp_path: Path, code: str, words: str) -> None:
    suite = _isolated(tmp_path, code)
    outcome = llmguard_ops.run(suite, tmp_path / "out")
    quality, plain = outcome.report.check("quality"), outcome.report.check("plain")
    assert quality.status is Status.ERROR and quality.error is not None
    assert words in quality.error.message or words == quality.error.type, quality.error
    assert plain.status is Status.PASS  # the run went on
    assert outcome.report.decision.decision is Decision.BLOCK


def test_a_hang_is_killed_at_the_check_timeout(tmp_path: Path) -> None:
    suite = _isolated(tmp_path, "import time; time.sleep(120)")
    suite.write_text(
        suite.read_text().replace(
            "    gate: {accuracy: {min: 0.5}}\n", "    gate: {accuracy: {min: 0.5}}\n    timeout: 3\n", 1
        )
    )
    outcome = llmguard_ops.run(suite, tmp_path / "out")
    quality = outcome.report.check("quality")
    assert quality.status is Status.ERROR and quality.error is not None and quality.error.type == "Timeout"
    assert outcome.report.check("plain").status is Status.PASS


def test_isolated_results_equal_in_process_results(tmp_path: Path) -> None:
    isolated = llmguard_ops.run(_isolated(tmp_path / "a", ""), tmp_path / "a" / "out").report
    threaded = llmguard_ops.run(_isolated(tmp_path / "b", "", "isolation: thread"), tmp_path / "b" / "out").report
    assert isolated.decision.decision is Decision.PROMOTE
    for check in ("quality", "plain"):
        assert isolated.check(check).metrics == threaded.check(check).metrics
