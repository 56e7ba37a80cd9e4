"""``llmguard run`` exits 0 only after a complete PROMOTE report: whatever code runs inside.

Each test plants hostile code (an exit, a signal, a hang, a lingering thread) in a model,
a model factory, a pickle or a plugin, runs the real CLI in a subprocess and asserts a
BLOCK with a report naming what happened (exit 1), or exit 2 when no report could be
written — never exit 0.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from trust_support import project, run_cli


def _blocked(ran, check: str = "quality", *words: str) -> dict:  # type: ignore[no-untyped-def]
    assert ran.code == 1, (ran.code, ran.out, ran.err)
    report = ran.report
    assert report["decision"]["decision"] == "BLOCK"
    result = next(c for c in report["checks"] if c["id"] == check)
    assert result["status"] == "error", result
    message = result["error"]["message"]
    for word in words:
        assert word in message, message
    return report


def test_a_sound_model_still_promotes(tmp_path: Path) -> None:
    ran = run_cli(project(tmp_path), tmp_path / "out")
    assert ran.code == 0, ran.err
    assert ran.report["decision"]["decision"] == "PROMOTE"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("import os; os._exit(0)", ("exit status 0", "running check 'quality'")),
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", ("SIGSEGV",)),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", ("SIGKILL",)),
    ],
    ids=["os._exit(0)", "SIGSEGV", "SIGKILL"],
)
def test_a_model_that_ends_the_process_blocks(tmp_path: Path, code: str, words: tuple[str, ...]) -> None:
    ran = run_cli(project(tmp_path, predict=code), tmp_path / "out")
    _blocked(ran, "quality", *words)
    assert "BLOCK" in ran.err


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("import sys; sys.exit(0)", "SystemExit"),
        ("raise KeyboardInterrupt('from a model')", "KeyboardInterrupt"),
        ("raise GeneratorExit()", "GeneratorExit"),
        ("class Odd(BaseException): pass\nraise Odd('odd')", "Odd"),
    ],
)
def test_base_exceptions_in_predict_are_errors_of_the_check(tmp_path: Path, code: str, kind: str) -> None:
    ran = run_cli(project(tmp_path, predict=code), tmp_path / "out")
    report = _blocked(ran)
    assert report["checks"][0]["error"]["type"] == kind


def test_a_factory_that_exits_blocks_with_a_report(tmp_path: Path) -> None:
    ran = run_cli(project(tmp_path, factory="import os; os._exit(0)"), tmp_path / "out")
    _blocked(ran, "run", "exit status 0", "loading")


def test_a_pickle_whose_reduce_exits_blocks(tmp_path: Path) -> None:
    suite = project(tmp_path)
    import importlib
    import os

    # the interpreter's own _exit (posix._exit): os._exit may be wrapped (coverage wraps it to
    # save its data), and a wrapper is not what a malicious pickle names
    real_exit = importlib.import_module(os.name)._exit

    class Exit:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (real_exit, (0,))

    (tmp_path / "model.joblib").write_bytes(pickle.dumps(Exit()))
    suite.write_text(
        suite.read_text().replace("{loader: python, path: model.py:make}", "{loader: sklearn, path: model.joblib}")
    )
    ran = run_cli(suite, tmp_path / "out")
    _blocked(ran, "run", "exit status 0")


def test_a_factory_that_hangs_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    ran = run_cli(
        project(tmp_path, factory="import time; time.sleep(600)"), tmp_path / "out", "--timeout", "8", timeout=60
    )
    _blocked(ran, "run", "deadline of 8s")


def test_a_lingering_non_daemon_thread_does_not_keep_the_run_alive(tmp_path: Path) -> None:
    # the model leaves a thread that never ends; the gate fails on its own, so BLOCK
    code = """
    import threading, time
    threading.Thread(target=time.sleep, args=(600,), daemon=False).start()
    """
    ran = run_cli(project(tmp_path, predict=code, minimum=1.01), tmp_path / "out", timeout=90)
    assert ran.code == 1, ran.err
    assert ran.report["checks"][0]["status"] == "fail"


def test_a_stale_promote_report_is_never_read_as_this_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli(project(tmp_path), out).code == 0
    # a plugin that ends the process with 0 at import time, before the suite is validated:
    # the previous run's PROMOTE report.json is still in the folder
    (tmp_path / "evil_plugin.py").write_text("import os\nos._exit(0)\n")
    ran = run_cli(tmp_path / "suite.yaml", out, plugins=("evil_plugin",))
    assert ran.code == 2, (ran.out, ran.err)
    assert "no report was written" in ran.err


def test_a_decision_hook_that_exits_zero_after_the_report_blocks(tmp_path: Path) -> None:
    (tmp_path / "exit_hook.py").write_text(
        "import os\nfrom llmguard_ops import hookimpl\n\n"
        "@hookimpl\ndef llmguard_on_decision(report, out_dir):\n    os._exit(0)\n"
    )
    suite = project(tmp_path, minimum=1.01)  # BLOCK on its own; the hook tries exit 0
    ran = run_cli(suite, tmp_path / "out", plugins=("exit_hook",))
    assert ran.code == 1, ran.err
    assert ran.report["decision"]["decision"] == "BLOCK"


def test_a_veto_plugin_that_promotes_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "promoter.py").write_text(
        "from llmguard_ops import hookimpl\nfrom llmguard_ops.results import Decision, Status\n\n"
        "@hookimpl\ndef llmguard_gate_veto(report):\n"
        "    report.decision.decision = Decision.PROMOTE\n"
        "    report.decision.exit_code = 0\n"
        "    for c in report.checks:\n        c.status = Status.PASS\n"
        "    return []\n"
    )
    ran = run_cli(project(tmp_path, predict="raise RuntimeError('broken')"), tmp_path / "out", plugins=("promoter",))
    _blocked(ran, "quality", "broken")


def test_signed_promote_without_its_attestation_is_not_exit_0(tmp_path: Path) -> None:
    (tmp_path / "drop_attestation.py").write_text(
        "from llmguard_ops import hookimpl\n\n"
        "@hookimpl\ndef llmguard_on_decision(report, out_dir):\n"
        "    (out_dir / 'attestation.dsse.json').unlink()\n"
    )
    ran = run_cli(project(tmp_path), tmp_path / "out", "--dev-key", plugins=("drop_attestation",))
    assert ran.code == 1, ran.err
    assert "attestation does not verify" in ran.err
    assert ran.report["decision"]["decision"] == "BLOCK"
