"""Shared fixtures: tiny real models and data built in a temporary folder."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests import checkout_guard

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")

# the project tests itself with its own testing kit (as pytest does with pytester)
pytest_plugins = ["llmguard_ops.testing"]

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "suites" / "demo"


@pytest.fixture(scope="session")
def checkout_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped ``suites/`` and ``tests/data/`` with the demo's models trained into it.

    The suites name their models and data by relative paths (``../demo/models/...``,
    ``../../suites/demo/...``), so the copy keeps the checkout's layout. The models are trained
    by the demo's own script (what scripts/demo.sh runs), deterministically: tests pass on a
    fresh clone where the demo has not run, and never write into the checkout. Each xdist
    worker has its own base temporary folder, so each trains its own copy: no shared files,
    no races.
    """
    import runpy

    root = tmp_path_factory.mktemp("checkout")
    skip = shutil.ignore_patterns("models", "__pycache__", ".*")
    shutil.copytree(REPO / "suites", root / "suites", ignore=skip)
    shutil.copytree(REPO / "tests" / "data", root / "tests" / "data", ignore=skip)
    with contextlib.redirect_stdout(io.StringIO()):
        runpy.run_path(str(root / "suites" / "demo" / "train_models.py"), run_name="__main__")
    return root


@pytest.fixture(scope="session")
def demo_dir(checkout_copy: Path) -> Path:
    """suites/demo in :func:`checkout_copy`: its suites, data and trained models."""
    return checkout_copy / "suites" / "demo"


@pytest.fixture(scope="session")
def demo_models(demo_dir: Path) -> Path:
    """The demo's models (candidate and champion, .skops and .joblib), trained in a temporary copy."""
    return demo_dir / "models"


@pytest.fixture(scope="session")
def tabular_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a generated binary-classification dataset and two fitted models."""
    from llmguard_ops.testing import tabular_project  # (after pytest_plugins registered the kit)

    return tabular_project(tmp_path_factory.mktemp("tabular"))


@pytest.fixture
def write_suite(tmp_path: Path, tabular_project: Path) -> Callable[[str], Path]:
    """Write a suite file next to the tabular project's data; returns its path."""

    from llmguard_ops.testing import write_suite as kit_write_suite

    def write(text: str, name: str = "suite.yaml") -> Path:
        return kit_write_suite(tabular_project, text, name=name)

    return write


BASE_SUITE = """\
apiVersion: llmguard/v1
name: unit
models:
  candidate: {loader: sklearn, path: good.joblib}
  baseline: {loader: sklearn, path: weak.joblib}
datasets:
  current: {path: test.csv, target: label, sensitive: [group]}
checks:
"""


@pytest.fixture(scope="session", autouse=True)
def _session_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Session- and module-scoped fixtures run before ``_run_in_tmp``: a temporary current folder
    and run history for them too (a warm-up run in a module fixture wrote .llmguard/runs here)."""
    root = tmp_path_factory.mktemp("session-cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("LLMGUARD_HISTORY_DIR", str(root / ".llmguard" / "runs"))
        yield


@pytest.fixture(autouse=True)
def _run_in_tmp(llmguard_isolated: Path) -> None:
    """Runs write .llmguard/ (audit log, run history) relative to the current folder: every
    test runs in its own temporary folder (the testing kit's ``llmguard_isolated``)."""


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the xdist controller, or a run without xdist
        config.pluginmanager.register(checkout_guard.CheckoutGuard(REPO), "llmguard-checkout-guard")
