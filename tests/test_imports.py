"""The CLI stays fast: no heavy library is imported until a check needs it."""

from __future__ import annotations

import subprocess
import sys

HEAVY = [
    "torch",
    "transformers",
    "shap",
    "aif360",
    "deepeval",
    "sklearn",
    "fairlearn",
    "matplotlib",
    "scipy.stats",
    "pandera",
    "cleanlab",
    "rapidfuzz",
]


def imported_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stderr.split()


def test_cli_module_imports_no_heavy_library() -> None:
    assert imported_after("import llmguard_ops.cli") == []


def test_listing_checks_imports_no_heavy_library() -> None:
    # loads every installed plugin's entry point, as each CLI call does
    assert imported_after("from llmguard_ops.cli import main\nmain(['checks'])") == []


def test_help_is_plain_and_lists_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "llmguard_ops.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("run", "validate", "checks", "schema"):
        assert command in out.stdout
