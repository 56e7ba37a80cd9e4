"""`llmguard new-plugin` renders the shipped template; plugins/template is that rendering."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import REPO

from llmguard_ops.cli import main


def files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and not any(
            part.startswith(".") or part == "__pycache__" or part.endswith(".egg-info")
            for part in p.relative_to(root).parts
        )
    }


def test_template_in_repo_is_the_rendered_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "template", "--out", str(tmp_path), "--folder", "template"]) == 0
    assert files(tmp_path / "template") == files(REPO / "plugins" / "template")


def test_new_plugin_fills_in_the_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "data_quality", "--out", str(tmp_path)]) == 0
    root = tmp_path / "llmguard-data-quality"
    rendered = files(root)
    assert set(rendered) == {
        "README.md",
        "pyproject.toml",
        "src/llmguard_data_quality/__init__.py",
        "tests/test_llmguard_data_quality.py",
    }
    assert 'data_quality = "llmguard_data_quality"' in rendered["pyproject.toml"]
    assert 'name="data_quality.row_quality"' in rendered["src/llmguard_data_quality/__init__.py"]
    assert not any("PLUGIN_" in text for text in rendered.values())
    compile(rendered["src/llmguard_data_quality/__init__.py"], "plugin", "exec")


@pytest.mark.parametrize("name", ["Bad-Name", "1abc", "a b"])
def test_bad_names_are_one_line_errors(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", name, "--out", str(tmp_path)]) == 2
    assert "must be lower case letters" in capsys.readouterr().err


def test_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "llmguard-x").mkdir()
    assert main(["new-plugin", "x", "--out", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
