"""The README's commands work in the order given: scripts/test.sh completes the .venv that
scripts/demo.sh made (without the dev extra), and .ci/run proves that order."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib

from tests.conftest import REPO


def _dev_distributions() -> set[str]:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {re.split(r"[<>=\[; ]", req, maxsplit=1)[0].lower().replace("_", "-") for req in extras["dev"]}


def _checked_modules() -> set[str]:
    text = (REPO / "scripts" / "test.sh").read_text().replace("\\\n", "")
    match = re.search(r'python -c "import ([^"]+)"', text)
    assert match, "scripts/test.sh must check the modules the tests import"
    return {m.strip() for m in match.group(1).split(",")}


def test_test_sh_checks_every_dev_module_the_tests_import() -> None:
    dev = _dev_distributions()
    owners = importlib.metadata.packages_distributions()
    imported: set[str] = set()
    for path in (REPO / "tests").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    needed = {m for m in imported if any(d.lower().replace("_", "-") in dev for d in owners.get(m, []))}
    needed = {m for m in needed if not m.startswith("_")}  # _pytest comes with pytest
    assert {"junitparser", "jsonschema"} <= needed  # the modules that failed after demo.sh
    assert needed <= _checked_modules(), needed - _checked_modules()


def test_ci_runs_demo_then_test_on_the_clean_clone() -> None:
    text = (REPO / ".ci" / "run").read_text()
    demo, test = text.index("\nscripts/demo.sh"), text.index("\nscripts/test.sh")
    assert demo < test
    assert "pip install" not in text[:demo]  # nothing installed before the README's first command
    assert "ruff check" in text[test:] and ".venv/bin/mypy" in text[test:]
