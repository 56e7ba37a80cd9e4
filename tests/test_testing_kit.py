"""The testing kit's helpers, which these tests and plugin authors' tests are written with."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import yaml
from tests.conftest import REPO

from llmguard_ops import testing
from llmguard_ops.testing import tabular_project, write_suite


def test_every_public_kit_name_is_documented() -> None:
    text = (REPO / "docs" / "plugin-api.md").read_text(encoding="utf-8")
    section = text[text.index("## Testing a plugin") :]
    documented = set(re.findall(r"^\| `(\w+)", section, flags=re.M))
    assert documented == set(testing.__all__)
    assert all(hasattr(testing, name) for name in testing.__all__)


def test_write_suite_from_text_or_mapping_with_its_frames(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1, 2], "y": [0, 1]})
    path = write_suite(
        tmp_path / "a",
        """
        apiVersion: llmguard/v1
        name: t
        datasets:
          current: {path: data.csv, target: y}
        checks: []
        """,
        frames={"data.csv": frame},
    )
    assert path == tmp_path / "a" / "suite.yaml"
    assert yaml.safe_load(path.read_text())["datasets"]["current"]["path"] == "data.csv"
    assert pd.read_csv(tmp_path / "a" / "data.csv").equals(frame)
    mapping = {"apiVersion": "llmguard/v1", "name": "m", "checks": []}
    other = write_suite(tmp_path, mapping, name="other.yaml")
    assert yaml.safe_load(other.read_text()) == mapping and list(yaml.safe_load(other.read_text())) == list(mapping)


def test_tabular_project_is_deterministic(tmp_path: Path) -> None:
    one, two = tabular_project(tmp_path / "one"), tabular_project(tmp_path / "two")
    for name in ("train.csv", "test.csv"):
        assert (one / name).read_bytes() == (two / name).read_bytes()
    train, test = pd.read_csv(one / "train.csv"), pd.read_csv(one / "test.csv")
    assert (len(train), len(test)) == (400, 200)
    assert set(train.columns) == {"x1", "x2", "x3", "group", "row_id", "label"}
    assert {p.name for p in one.glob("*.joblib")} == {"good.joblib", "weak.joblib"}


def test_isolated_tests_run_in_tmp_path(llmguard_isolated: Path) -> None:
    assert Path.cwd() == llmguard_isolated
    assert os.environ["LLMGUARD_HISTORY_DIR"] == str(llmguard_isolated / ".llmguard" / "runs")
