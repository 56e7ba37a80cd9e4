"""Tests never write into the checkout: a snapshot of what git reports before and after.

``snapshot`` lists every path ``git status`` shows (modified, untracked and ignored, each
ignored folder walked) with its size and modification time, so a test that creates,
deletes or rewrites a file in the checkout, tracked or ignored, shows up in ``changes``.
Folders that tools other than the tests fill (the virtualenv, caches, bytecode, the
coverage data that ``--cov`` writes) are left out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# written by the interpreter, pytest, coverage and linters, not by a test
SKIPPED_NAMES = frozenset(
    {
        ".venv",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".tox",
        ".hypothesis",
        "coverage.xml",
        "htmlcov",
    }
)
SKIPPED_PREFIXES = (".coverage",)

Snapshot = dict[str, tuple[int, int]]


def _skipped(name: str) -> bool:
    return name in SKIPPED_NAMES or name.startswith(SKIPPED_PREFIXES)


def snapshot(root: Path) -> Snapshot | None:
    """Every path git reports as changed, untracked or ignored under ``root``, with (size, mtime).

    None when ``root`` is not a git work tree (an unpacked sdist): there is nothing to compare.
    """
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain=v1", "-z", "--ignored=matching", "--untracked-files=all"],
            capture_output=True,
            check=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    entries = [e for e in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if e]
    paths: list[str] = []
    skip_next = False
    for entry in entries:
        if skip_next:  # a rename's second field: the old name
            skip_next = False
            continue
        status, path = entry[:2], entry[3:]
        skip_next = "R" in status or "C" in status
        paths.append(path.rstrip("/"))
    out: Snapshot = {}
    for rel in paths:
        if any(_skipped(part) for part in Path(rel).parts):
            continue
        _record(root, root / rel, out)
    return out


def _record(root: Path, path: Path, out: Snapshot) -> None:
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = [d for d in dirnames if not _skipped(d)]
            for name in filenames:
                if not _skipped(name):
                    _record(root, Path(dirpath) / name, out)
        return
    try:
        st = path.lstat()
    except FileNotFoundError:  # a tracked file deleted: git lists it, the disk does not have it
        out[path.relative_to(root).as_posix()] = (-1, -1)
        return
    out[path.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """One line per path created, deleted or rewritten between the two snapshots."""
    lines = []
    for path in sorted(before.keys() | after.keys()):
        if before.get(path) == after.get(path):
            continue
        gone = path not in after or after[path] == (-1, -1)
        if path not in before:
            lines.append(f"{'deleted' if gone else 'wrote'} {path}")
        elif gone:
            lines.append(f"deleted {path}")
        else:
            lines.append(f"rewrote {path}")
    return lines


class CheckoutGuard:
    """A pytest plugin: snapshot ``root`` at the session's start, compare at its end.

    Register it in the process that runs the session (under xdist, the controller: it starts
    before the workers and finishes after them). The run fails, naming every file, when any
    test created, deleted or rewrote one in the checkout.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.before: Snapshot | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.before = snapshot(self.root)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        after = snapshot(self.root) if self.before is not None else None
        if self.before is None or after is None:
            return
        lines = changes(self.before, after)
        if not lines:
            return
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "tests wrote into the checkout (write under tmp_path instead)", red=True)
            for line in lines:
                reporter.write_line(f"  {line}")
        else:
            print("tests wrote into the checkout:", *lines, sep="\n  ", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
