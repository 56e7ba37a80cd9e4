"""Hostile and careless suite input: every scenario ends in exit 2 (or BLOCK), located, fast.

Nothing here may end in exit 0 or a traceback: a suite the host cannot vouch for stops
the run before a model is loaded.
"""

from __future__ import annotations

import json
import os
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import BASE_SUITE
from tests.fuzz_support import _LAUGHS

from llmguard_ops.cli import main

QUALITY = """\
  - id: quality
    uses: performance.classification
    with: {model: candidate, dataset: current, n_resamples: 50}
    gate: {accuracy: {min: 0.6}}
"""


def cli(capsys: pytest.CaptureFixture[str], *argv: str, within: float = 60.0) -> tuple[int, str]:
    """``main(argv)`` in a thread: a hang fails the test instead of hanging it."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["code"] = main(list(argv))
        except BaseException as exc:  # recorded and re-raised by the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"llmguard {' '.join(argv)} still running after {within} s"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    return int(box["code"]), err  # type: ignore[call-overload]


def errors(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if not line.startswith("warning:")]


def write_bytes(project: Path, data: bytes, name: str = "hostile.yaml") -> Path:
    path = project / name
    path.write_bytes(data)
    return path


# -- YAML limits --------------------------------------------------------------------------


def test_billion_laughs_fails_fast_with_one_located_line(
    tabular_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _LAUGHS + b"apiVersion: llmguard/v1\n"
    assert len(data) < 400
    path = write_bytes(tabular_project, data)
    tracemalloc.start()
    code, err = cli(capsys, "validate", str(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert code == 2
    assert errors(err) == [
        f"{path}:1:14 f[0][3][3][7][2][1]: the document expands to more than 100000 "
        "values (aliases are counted at every use)"
    ]
    assert peak < 200 * 2**20  # the unbounded expansion needs gigabytes


@pytest.mark.parametrize("depth", [65, 600, 5000])
def test_deep_nesting_is_a_located_error(tabular_project: Path, capsys: pytest.CaptureFixture[str], depth: int) -> None:
    data = b"apiVersion: llmguard/v1\nmetadata: " + b"[" * depth + b"]" * depth + b"\n"
    code, err = cli(capsys, "validate", str(write_bytes(tabular_project, data)))
    assert code == 2
    (line,) = errors(err)
    assert ":2:" in line and "nesting deeper than 64 levels" in line


def test_a_merge_key_that_includes_itself_is_an_error(
    tabular_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = b"apiVersion: llmguard/v1\nloop: &l\n  x: 1\n  <<: *l\n"
    code, err = cli(capsys, "validate", str(write_bytes(tabular_project, data)))
    assert code == 2
    assert len(errors(err)) == 1 and ":" in errors(err)[0]


@pytest.mark.parametrize(
    ("seed", "where", "message"),
    [
        ("9" * 4000, ":2:7 seed:", "integer out of range (must fit in 64 bits)"),
        ("9" * 5000, ":2:7 seed:", "invalid value: exceeds the limit"),
        ("0x" + "f" * 20, ":2:7 seed:", "integer out of range (must fit in 64 bits)"),
        ("-1", ":2:7 seed:", "greater than or equal to 0"),
    ],
    ids=["4000-digits", "5000-digits", "hex-beyond-64-bits", "negative"],
)
def test_seeds_that_would_crash_later_fail_validate(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str], seed: str, where: str, message: str
) -> None:
    path = write_suite(BASE_SUITE.replace("name: unit\n", f"seed: {seed}\nname: unit\n") + QUALITY)
    code, err = cli(capsys, "validate", str(path))
    assert code == 2
    (line,) = errors(err)
    assert where in line and message.lower() in line.lower(), line


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("99999999999999999999", "--set seed: expected less than 9223372036854775808, got 99999999999999999999"),
        ("9" * 5000, "--set seed: unable to parse input string as an integer, exceeded maximum size"),
    ],
)
def test_seeds_given_with_set_are_bounded_too(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    path = write_suite(BASE_SUITE + QUALITY)
    code, err = cli(capsys, "validate", str(path), "--set", f"seed={value}")
    assert code == 2
    (line,) = errors(err)
    assert line.startswith(message), line


def test_an_id_that_is_a_list_is_located(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(BASE_SUITE + QUALITY.replace("id: quality", "id: [a, b]"))
    code, err = cli(capsys, "validate", str(path))
    assert code == 2
    assert errors(err) == [f"{path}:9:9 checks[0].id: expected a string"]


def test_non_utf8_bytes_are_located_by_line_and_column(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(BASE_SUITE + QUALITY)
    data = path.read_bytes().replace(b"name: unit", b"name: \xc3\xa9t\xff")
    path.write_bytes(data)
    code, err = cli(capsys, "validate", str(path))
    assert code == 2
    assert errors(err) == [f"{path}:2:9 not valid UTF-8 (byte 0xff)"]  # column counts the é once


def test_control_characters_in_the_yaml_are_located(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(BASE_SUITE + QUALITY)
    path.write_bytes(path.read_bytes().replace(b"name: unit", b"name: u\x1b[31mnit"))
    code, err = cli(capsys, "validate", str(path))
    assert code == 2
    assert errors(err) == [
        f"{path}:2:8 invalid YAML: character 0x001b is not allowed (special characters are not allowed)"
    ]
    assert "\x1b" not in err


def test_a_key_with_a_newline_stays_one_escaped_line(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(BASE_SUITE + QUALITY + '    "sever\\nty\\u202e": warning\n')
    code, err = cli(capsys, "validate", str(path))
    assert code == 2
    (line,) = errors(err)
    assert "checks[0].sever\\nty\\u202e: unknown key 'sever\\nty\\u202e'" in line and "\u202e" not in line


def test_an_oversized_suite_is_refused_before_parsing(
    tabular_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_bytes(tabular_project, b"apiVersion: llmguard/v1\n" + b"#" * (1 << 20) + b"\n")
    code, err = cli(capsys, "validate", str(path))
    assert code == 2
    (line,) = errors(err)
    assert line.startswith(f"{path}:2:") and "larger than 1048576 bytes" in line


# -- validate finds what run would hit -------------------------------------------------------


def test_an_infinite_timeout_fails_validate(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(BASE_SUITE + QUALITY + "    timeout: .inf\n")
    code, err = cli(capsys, "validate", str(path))
    assert code == 2
    assert errors(err) == [f"{path}:13:14 checks[0].timeout: expected a finite number, got inf"]


def test_a_default_dataset_the_suite_lacks_fails_validate(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    suite = BASE_SUITE.replace("  current: {path", "  holdout: {path") + (
        "  - id: fair\n    uses: bias.group_fairness\n    with: {model: candidate}\n"
    )
    path = write_suite(suite)
    code, err = cli(capsys, "validate", str(path))
    assert code == 2
    (line,) = errors(err)
    assert line.startswith(f"{path}:11:5 checks[0].with:")
    assert "'dataset' defaults to dataset 'current', which the suite does not define" in line


def test_every_error_is_reported_at_once(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    suite = (
        BASE_SUITE.replace("name: unit", "name: unit\nseeed: 1")
        + QUALITY.replace("n_resamples: 50", "n_resample: 50")
        + "    timeout: -1\n"
    )
    suite = suite.replace("path: test.csv", "path: missing.csv").replace("path: weak.joblib", "path: gone.joblib")
    path = write_suite(suite)
    code, err = cli(capsys, "validate", str(path))
    assert code == 2
    lines = errors(err)
    assert any("seeed: unknown key" in x for x in lines)
    assert any("checks[0].timeout:" in x for x in lines)
    assert any("checks[0].with.n_resample: unknown key" in x for x in lines)
    path = write_suite(
        BASE_SUITE.replace("path: test.csv", "path: missing.csv").replace("path: weak.joblib", "path: gone.joblib")
        + QUALITY
    )
    code, err = cli(capsys, "validate", str(path))
    assert code == 2
    lines = errors(err)
    assert any("datasets.current.path: file not found" in x for x in lines)
    assert any("models.baseline.path: file not found" in x for x in lines)


# -- regular files only ------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_fifo_dataset_does_not_hang(
    write_suite: Callable[[str], Path],
    tabular_project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    path = write_suite(BASE_SUITE.replace("path: test.csv", f"path: {fifo}") + QUALITY)
    argv = [command, str(path)] + (["--out", str(tmp_path / "out"), "--no-audit-log"] if command == "run" else [])
    code, err = cli(capsys, *argv, within=30)
    assert code == 2
    assert f"datasets.current.path: {fifo} is not a regular file" in err


@pytest.mark.parametrize("command", ["validate", "run"])
def test_dev_zero_as_a_model_does_not_hang(
    write_suite: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    path = write_suite(BASE_SUITE.replace("path: weak.joblib", "path: /dev/zero") + QUALITY)
    argv = [command, str(path)] + (["--out", str(tmp_path / "out"), "--no-audit-log"] if command == "run" else [])
    code, err = cli(capsys, *argv, within=30)
    assert code == 2
    assert "models.baseline.path: /dev/zero is not a regular file" in err


# -- loading timeouts -------------------------------------------------------------------------


FACTORY_SUITE = """\
apiVersion: llmguard/v1
name: factory
policy: {{load_timeout: 1}}
models:
  candidate: {{loader: python, path: "factory.py:{name}"}}
datasets:
  current: {{path: data.csv, target: label}}
checks:
  - id: quality
    uses: performance.classification
    gate: {{accuracy: {{min: 0.5}}}}
"""


@pytest.fixture
def factory_project(tmp_path: Path) -> Path:
    (tmp_path / "data.csv").write_text("x,label\n0,0\n1,1\n2,0\n3,1\n", encoding="utf-8")
    (tmp_path / "factory.py").write_text(
        "import sys, threading\ndef hangs():\n    threading.Event().wait()\ndef exits():\n    sys.exit(0)\n",
        encoding="utf-8",
    )
    return tmp_path


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("hangs", "cannot load model: loading did not finish within 1 s (policy.load_timeout)"),
        ("exits", "cannot load model: the loader raised SystemExit(0) while loading"),
    ],
)
def test_a_factory_that_hangs_or_exits_is_exit_2(
    factory_project: Path, capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    suite = factory_project / "suite.yaml"
    suite.write_text(FACTORY_SUITE.format(name=name), encoding="utf-8")
    code, err = cli(capsys, "run", str(suite), "--out", str(factory_project / "out"), "--no-audit-log", within=30)
    assert code == 2
    assert f"{suite}:5:37 models.candidate.path: {message}" in err


# -- policy.paths: confined -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_confined_paths_refuse_escapes(
    tmp_path: Path, tabular_project: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "good.joblib").write_bytes((tabular_project / "good.joblib").read_bytes())
    (folder / "weak.joblib").write_bytes((tabular_project / "weak.joblib").read_bytes())
    outside = tmp_path / "outside.csv"
    outside.write_bytes((tabular_project / "test.csv").read_bytes())
    target = {"dotdot": "../outside.csv", "absolute": str(outside), "symlink": "link.csv"}[kind]
    if kind == "symlink":
        (folder / "link.csv").symlink_to(outside)
    suite = folder / "suite.yaml"
    suite.write_text(
        BASE_SUITE.replace("name: unit", "name: unit\npolicy: {paths: confined}").replace(
            "path: test.csv", f"path: {target}"
        )
        + QUALITY,
        encoding="utf-8",
    )
    code, err = cli(capsys, "validate", str(suite))
    assert code == 2
    assert (
        f"datasets.current.path: {folder / target if kind != 'absolute' else outside} resolves to {outside}, "
        f"outside the suite's folder {folder}" in err
    )
    suite.write_text(suite.read_text().replace("paths: confined", "paths: any"), encoding="utf-8")
    assert cli(capsys, "validate", str(suite))[0] == 0  # the same suite passes without the policy


# -- pickles ---------------------------------------------------------------------------------


class _Planted:
    """A pickle whose load writes a marker file: proves whether loading happened."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (Path.write_text, (self.marker, "loaded"))


def test_allow_pickle_false_refuses_before_loading(
    tmp_path: Path, tabular_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pickle

    marker = tmp_path / "ran.txt"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Planted(marker)))
    (tmp_path / "test.csv").write_bytes((tabular_project / "test.csv").read_bytes())
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        BASE_SUITE.replace("name: unit", "name: unit\npolicy: {allow_pickle: false}")
        .replace("path: good.joblib", "path: evil.pkl")
        .replace("  baseline: {loader: sklearn, path: weak.joblib}\n", "")
        + QUALITY,
        encoding="utf-8",
    )
    for command in ("validate", "run"):
        extra = ["--out", str(tmp_path / "out"), "--no-audit-log"] if command == "run" else []
        code, err = cli(capsys, command, str(suite), *extra)
        assert code == 2
        assert f"{suite}:5:38 models.candidate.path: model 'candidate' is stored as pickle" in err
        assert "policy.allow_pickle is false" in err
    assert not marker.exists()


def test_a_pickle_load_is_recorded_in_the_report_html_and_card(
    write_suite: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(BASE_SUITE + QUALITY.replace("{min: 0.6}", "{min: 0.99}"))
    out = tmp_path / "out"
    code, _ = cli(
        capsys, "run", str(path), "--out", str(out), "-q", "--no-audit-log", "--history-dir", "off", within=120
    )
    assert code == 1  # BLOCK: the gate is out of reach; the pickle is recorded either way
    report = json.loads((out / "report.json").read_text())
    assert report["models"]["candidate"]["unsafe_format"] == "pickle"
    assert report["models"]["baseline"]["unsafe_format"] == "pickle"
    html = (out / "report.html").read_text()
    assert "candidate</code> was loaded from a pickle" in html
    card = (out / "model_card.md").read_text()
    assert "loaded from a pickle" in card
