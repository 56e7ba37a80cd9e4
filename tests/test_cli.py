"""The CLI contract: commands, exit codes, outputs, on the shipped demo suite."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from llmguard_ops.cli import main


def test_demo_suite_runs_end_to_end(demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(demo_dir / "suite.yaml"), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    decision = report["decision"]["decision"]
    assert code == {"PROMOTE": 0, "BLOCK": 1, "REVIEW": 3}[decision]
    assert decision in ("PROMOTE", "REVIEW")
    assert f"decision: {decision}" in out
    assert report["schema"] == "https://llmguard.dev/schemas/report/v1"
    assert set(report["models"]) == {"candidate", "baseline"}
    assert all(len(m["sha256"]) == 64 for m in report["models"].values())
    quality = next(c for c in report["checks"] if c["id"] == "quality")
    acc = quality["metrics"]["accuracy"]
    assert acc["lower"] < acc["value"] < acc["upper"] and acc["confidence"] == 0.95
    assert quality["gates"][0]["metric"] == "accuracy" and quality["gates"][0]["passed"]


def test_set_override_can_block_the_demo(demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "run",
            str(demo_dir / "suite.yaml"),
            "--out",
            str(tmp_path),
            "-q",
            "--set",
            "checks.quality.gate.accuracy.min=0.99",
        ]
    )
    assert code == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["decision"]["decision"] == "BLOCK"
    assert report["suite"]["overrides"] == ["checks.quality.gate.accuracy.min=0.99"]
    assert any("quality (blocker): accuracy" in r for r in report["decision"]["reasons"])


def test_validate_checks_and_schema(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(demo_dir / "suite.yaml")]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["checks", "--json"]) == 0
    listed = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert listed["performance.classification"]["plugin"] == "performance"
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    # every shipped suite validates against the published schema
    for suite in sorted((demo_dir.parent).glob("**/*.yaml")):
        jsonschema.validate(yaml.safe_load(suite.read_text()), schema)
    bad = yaml.safe_load((demo_dir / "suite.yaml").read_text())
    bad["checks"][0]["with"]["n_resamples"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_report_json_is_written_atomically(demo_dir: Path, tmp_path: Path) -> None:
    main(["run", str(demo_dir / "suite.yaml"), "--out", str(tmp_path), "-q"])
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    json.loads((tmp_path / "report.json").read_text())
