"""Bad suites exit 2 with one line naming file:line:col and the key — never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import BASE_SUITE

from llmguard_ops.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


QUALITY = """\
  - id: quality
    uses: performance.classification
    with: {model: candidate, dataset: current, n_resamples: 50}
    gate: {accuracy: {min: 0.6}}
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            QUALITY + "    severty: warning\n",
            ":13:5 checks[0].severty: unknown key 'severty' (did you mean 'severity'?)",
            id="mistyped-key",
        ),
        pytest.param(
            QUALITY.replace("{min: 0.6}", "{min: fast}"),
            ":12:28 checks[0].gate.accuracy.min: expected a number, got 'fast'",
            id="wrong-type",
        ),
        pytest.param(
            QUALITY.replace("performance.classification", "performance.clasification"),
            ":10:11 checks[0].uses: unknown check 'performance.clasification' "
            "(did you mean 'performance.classification'?)",
            id="unknown-check",
        ),
        pytest.param(
            QUALITY.replace("model: candidate", "model: candidat"),
            ":11:19 checks[0].with.model: unknown model 'candidat' (did you mean 'candidate'?)",
            id="unknown-model-ref",
        ),
        pytest.param(
            QUALITY.replace("{accuracy:", "{acuracy:"),
            ":12:12 checks[0].gate.acuracy: check 'performance.classification' has no metric 'acuracy' "
            "(did you mean 'accuracy'?)",
            id="unknown-metric",
        ),
        pytest.param(
            QUALITY.replace("n_resamples: 50", "n_resample: 50"),
            "checks[0].with.n_resample: unknown key 'n_resample' (did you mean 'n_resamples'?)",
            id="unknown-param",
        ),
        pytest.param(
            QUALITY + "  - id: quality\n    uses: performance.classification\n",
            ":13:9 checks[1].id: duplicate check id 'quality' (first at checks[0])",
            id="duplicate-id",
        ),
    ],
)
def test_invalid_suite_exits_2_with_one_located_line(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    path = write_suite(BASE_SUITE + body)
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith(str(path))
    assert lines[0].endswith(expected) or expected in lines[0], lines[0]


def test_missing_data_file_names_the_path_key(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(BASE_SUITE.replace("path: test.csv", "path: nowhere.csv") + QUALITY)
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 2
    assert err.strip().count("\n") == 0
    assert f"{path}:7:19 datasets.current.path: file not found:" in err


def test_missing_model_file_fails_run_before_any_check(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_suite(BASE_SUITE.replace("path: good.joblib", "path: gone.joblib") + QUALITY)
    code, _, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "out"))
    assert code == 2
    assert f"{path}:4:38 models.candidate.path: file not found" in err
    assert not (tmp_path / "out" / "report.json").exists()


def test_missing_column_is_located(write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = write_suite(BASE_SUITE.replace("target: label", "target: labl") + QUALITY)
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 2
    assert "datasets.current.target: column 'labl' not in test.csv (did you mean 'label'?)" in err


def test_several_errors_are_all_reported_one_per_line(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    body = QUALITY.replace("{accuracy:", "{acuracy:") + "  - id: b\n    uses: nope.check\n"
    code, _, err = run_cli(capsys, "validate", str(write_suite(BASE_SUITE + body)))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert "has no metric 'acuracy'" in lines[0]
    assert "unknown check 'nope.check'" in lines[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("apiVersion: llmguard/v1\nname: [unclosed\n", ":3:1 invalid YAML"),
        ("apiVersion: llmguard/v1\nname: x\nname: y\n", ":3:1 name: duplicate key 'name'"),
        ("apiVersion: llmguard/v1\nname: !!python/object:os.system x\n", "invalid YAML"),
        ("- just\n- a list\n", ":1:1 a suite must be a mapping"),
        ("apiVersion: llmguard/v2\nname: x\nchecks: []\n", ":1:13 apiVersion: expected 'llmguard/v1'"),
    ],
)
def test_malformed_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 2
    assert "Traceback" not in err
    assert expected in err.splitlines()[0], err


def test_env_interpolation_and_missing_variable(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = QUALITY.replace("n_resamples: 50", 'n_resamples: "${LLMG_RESAMPLES}"')
    path = write_suite(BASE_SUITE + body)
    monkeypatch.delenv("LLMG_RESAMPLES", raising=False)
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 2
    assert "checks[0].with.n_resamples: environment variable LLMG_RESAMPLES is not set" in err
    monkeypatch.setenv("LLMG_RESAMPLES", "20")
    assert run_cli(capsys, "validate", str(path))[0] == 0


def test_inverted_bounds(write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = write_suite(BASE_SUITE + QUALITY.replace("{min: 0.6}", "{min: 0.6, max: 0.1}"))
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 2
    assert ":12:22 checks[0].gate.accuracy: 'min' (0.6) is greater than 'max' (0.1)" in err


def test_set_override_reaches_the_gate_and_is_located_as_set(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(BASE_SUITE + QUALITY)
    code, _, err = run_cli(capsys, "validate", str(path), "--set", "checks.quality.gate.accuracy.min=fast")
    assert code == 2
    assert err.startswith("--set checks[0].gate.accuracy.min: expected a number, got 'fast'")
    code, _, err = run_cli(capsys, "validate", str(path), "--set", "checks.qualty.severity=info")
    assert code == 2
    assert "no item with id 'qualty' (did you mean 'quality'?)" in err
