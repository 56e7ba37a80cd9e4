"""User text stays text: Markdown and HTML outputs escape it, the terminal gets no escapes.

Suite text, category values and error messages come from whoever writes the suite, the
data or the model. None of them may plant a ``<script>``, a ``javascript:`` link, a
Markdown heading or table cell, or a raw terminal escape sequence in what a reviewer reads.
Also: ``llmguard report`` says whether the attestation verifies over the report it renders.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evidence_support import Project, cli, make_project
from llmguard_ops.reporters._format import md_code, md_inline
from llmguard_ops.terminal import clean

SCRIPT = "<script>alert(1)</script>"
LINK = "[click](javascript:alert(1))"
IMAGE = "![x](http://attacker.example/t.png)"
ANSI = "\x1b[2J\x1b]0;owned\x07\x1b[31mred"
HOSTILE = f"{SCRIPT} {LINK} {IMAGE} `code` | cell | **bold**"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("escape")
    project = make_project(root)
    import pandas as pd

    frame = pd.read_csv(project.data)
    frame["group"] = frame["group"].map({"a": SCRIPT, "b": LINK})
    frame.to_csv(project.data, index=False)
    return project


BROKEN_MODEL = f"""
class Model:
    def predict(self, X):
        raise RuntimeError({HOSTILE + " " + ANSI!r})

def make():
    return Model()
"""


@pytest.fixture(scope="module")
def hostile_run(project: Project) -> tuple[Path, str, str]:
    from llmguard_ops.cli import main

    (project.root / "broken_model.py").write_text(BROKEN_MODEL)
    description = json.dumps("# Injected heading\n" + HOSTILE)
    extra = (
        "  - id: fairness\n"
        "    uses: bias.group_fairness\n"
        "    with: {model: candidate, dataset: current, sensitive: [group], n_resamples: 20}\n"
        "    severity: warning\n"
        "  - id: broken\n"
        "    uses: performance.classification\n"
        "    with: {model: broken, dataset: current, n_resamples: 0}\n"
        "    severity: info\n"
        "    allow_error: true\n"
        f"description: {description}\n"
        f"metadata: {{owner: {json.dumps(HOSTILE)}, intended_use: {json.dumps(LINK + ' ' + SCRIPT)}}}\n"
    )
    suite = project.suite("hostile.yaml", extra=extra)
    text = suite.read_text().replace(
        "models:\n",
        f"models:\n  broken: {{loader: python, path: '{project.root / 'broken_model.py'}:make'}}\n",
    )
    suite.write_text(text)
    out = project.root / "out"
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["run", str(suite), "--out", str(out), "--key", str(project.private_key), "--no-audit-log"])
    assert code in (0, 1, 3), stderr.getvalue()
    return out, stdout.getvalue(), stderr.getvalue()


def test_the_model_error_and_categories_reached_the_report(hostile_run: tuple[Path, str, str]) -> None:
    out = hostile_run[0]
    report = json.loads((out / "report.json").read_text())
    broken = next(c for c in report["checks"] if c["id"] == "broken")
    assert broken["status"] == "error" and SCRIPT in broken["error"]["message"]
    fairness = next(c for c in report["checks"] if c["id"] == "fairness")
    assert any(SCRIPT in name for name in fairness["metrics"]), "the category values are used"


def no_live_markdown(text: str, where: str) -> None:
    assert "<script" not in text.lower(), where
    assert "](javascript:" not in text and "](http://attacker" not in text, where
    assert "\n# Injected" not in text, where
    assert "\x1b" not in text, where


def test_model_card_and_summary_escape_user_text(hostile_run: tuple[Path, str, str]) -> None:
    out = hostile_run[0]
    for name in ("model_card.md", "summary.md"):
        text = (out / name).read_text()
        no_live_markdown(text, name)
    card = (out / "model_card.md").read_text()
    assert "&lt;script&gt;" in card  # still shown, as text
    for line in card.splitlines():  # table rows keep their column count
        if line.startswith("| group |"):
            cells = re.split(r"(?<!\\)\|", line)
            assert all("javascript" not in c or "\\(" in c for c in cells)


def test_markdown_renders_user_text_as_text(hostile_run: tuple[Path, str, str]) -> None:
    """Rendered by markdown-it (CommonMark + tables), no element comes from user text."""
    markdown_it = pytest.importorskip("markdown_it")
    md = markdown_it.MarkdownIt("commonmark").enable("table")
    for name in ("model_card.md", "summary.md"):
        html = md.render((hostile_run[0] / name).read_text())
        assert "<script" not in html and 'href="javascript:' not in html, name
        assert "attacker.example" not in re.findall(r'src="([^"]*)"', html).__str__(), name
        assert "<h1>Injected" not in html, name


def test_html_report_is_autoescaped(hostile_run: tuple[Path, str, str]) -> None:
    html = (hostile_run[0] / "report.html").read_text()
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    from llmguard_ops.reporters.html import jinja_env

    assert jinja_env().autoescape("report.html.j2") is True


def test_terminal_output_has_no_control_sequences(hostile_run: tuple[Path, str, str]) -> None:
    _, stdout, stderr = hostile_run
    assert "\x1b" not in stdout and "\x1b" not in stderr and "\x07" not in stdout
    assert "RuntimeError" in stdout or "ERROR" in stdout


def test_errors_printed_by_the_cli_are_cleaned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / f"evil{ANSI.replace(chr(7), '')}.yaml"
    r = cli(capsys, "validate", suite)
    assert r.code == 2 and "\x1b" not in r.err and "evil" in r.err


@given(st.text())
def test_md_inline_never_leaves_markup(text: str) -> None:
    out = md_inline(text)
    assert "\n" not in out and "<" not in out and ">" not in out
    assert "](" not in out
    assert re.search(r"(?<!\\)[`|*]", out.replace("\\\\", "")) is None


@given(st.text())
def test_md_code_is_one_code_span(text: str) -> None:
    out = md_code(text)
    fence = re.match(r"`+", out)
    assert fence is not None and out.endswith(fence.group(0))
    inner = out[len(fence.group(0)) : -len(fence.group(0))]
    assert fence.group(0) not in inner


@given(st.text())
def test_clean_removes_every_control_character(text: str) -> None:
    out = clean(text)
    assert not any(ord(c) < 32 and c not in "\n\t" for c in out)
    assert not any(0x7F <= ord(c) <= 0x9F for c in out)


# llmguard report ---------------------------------------------------------------------


def test_report_command_says_whether_the_attestation_verifies(
    project: Project, hostile_run: tuple[Path, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(hostile_run[0], out)
    r = cli(capsys, "report", out / "report.json", "--key", project.public_key)
    assert r.code == 0 and "Verified:" in r.out
    assert "Verified:" in (out / "report.html").read_text()
    r = cli(capsys, "report", out / "report.json")
    assert r.code == 0 and "Signature not checked" in r.out
    # a tampered report.json that still claims to be signed
    report = json.loads((out / "report.json").read_text())
    report["decision"]["decision"] = "PROMOTE"
    report["decision"]["reasons"] = []
    report["signed"] = True
    (out / "report.json").write_text(json.dumps(report))
    for extra in ([], ["--key", str(project.public_key)]):
        r = cli(capsys, "report", out / "report.json", *extra)
        assert r.code == 1 and "NOT VERIFIED" in r.err
        page = (out / "report.html").read_text()
        assert "NOT VERIFIED" in page and "This run is signed" not in page
        assert "NOT VERIFIED" in (out / "model_card.md").read_text()
    (out / "attestation.dsse.json").unlink()
    r = cli(capsys, "report", out / "report.json")
    assert r.code == 0 and "Not verified" in r.out
    assert "This run is signed" not in (out / "report.html").read_text()
