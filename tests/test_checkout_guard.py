"""The guard in conftest.py: a test that writes into the checkout fails the run, naming the file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.checkout_guard import changes, snapshot

pytest_plugins = ["pytester"]


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def work_tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    (root / ".gitignore").write_text("models/\n.venv/\n")
    (root / "tracked.txt").write_text("one\n")
    (root / "models").mkdir()
    (root / "models" / "old.bin").write_bytes(b"x")
    (root / ".venv").mkdir()
    _git(root, "add", ".gitignore", "tracked.txt")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    return root


def test_every_kind_of_write_is_named(work_tree: Path) -> None:
    before = snapshot(work_tree)
    assert before is not None and "models/old.bin" in before
    assert changes(before, snapshot(work_tree) or {}) == []
    (work_tree / "tracked.txt").write_text("two, longer\n")
    (work_tree / "new.txt").write_text("new\n")
    (work_tree / "models" / "old.bin").write_bytes(b"rewritten")
    (work_tree / "models" / "trained.bin").write_bytes(b"y")
    (work_tree / ".venv" / "cache").write_text("tools may write here")
    (work_tree / "__pycache__").mkdir()
    (work_tree / "__pycache__" / "m.pyc").write_bytes(b"")
    assert changes(before, snapshot(work_tree) or {}) == [
        "rewrote models/old.bin",
        "wrote models/trained.bin",
        "wrote new.txt",
        "wrote tracked.txt",
    ]


def test_a_deleted_file_is_named(work_tree: Path) -> None:
    before = snapshot(work_tree) or {}
    (work_tree / "tracked.txt").unlink()
    (work_tree / "models" / "old.bin").unlink()
    assert changes(before, snapshot(work_tree) or {}) == ["deleted models/old.bin", "deleted tracked.txt"]
    again = snapshot(work_tree) or {}
    assert changes(again, snapshot(work_tree) or {}) == []  # deleted before the session: not this run's


def test_outside_a_git_work_tree_there_is_nothing_to_compare(tmp_path: Path) -> None:
    assert snapshot(tmp_path / "not-a-repo") is None


def test_the_run_fails_naming_the_file(pytester: pytest.Pytester) -> None:
    _git(pytester.path, "init", "-q")
    guard = Path(__file__).with_name("checkout_guard.py").read_text(encoding="utf-8")
    pytester.makepyfile(checkout_guard=guard)
    pytester.makeconftest(
        "from pathlib import Path\n\nimport checkout_guard\n\n\n"
        "def pytest_configure(config):\n"
        "    config.pluginmanager.register(checkout_guard.CheckoutGuard(Path(__file__).parent))\n"
    )
    pytester.makepyfile(
        test_leak="from pathlib import Path\n\ndef test_leak():\n    Path('leak.txt').write_text('x')\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*tests wrote into the checkout*", "  wrote leak.txt"])
