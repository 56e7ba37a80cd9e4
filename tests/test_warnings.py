"""Warnings are errors in the tests; the few ignored ones are explained and still raised."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from tests.conftest import REPO

from llmguard_ops.builtin import _load_sklearn
from llmguard_ops.suite import ModelSpec


def _filters_with_comments() -> list[tuple[str, str]]:
    """(filter, the comment lines just above it) for each entry of pytest's filterwarnings."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^filterwarnings = \[\n(.*?)^\]", text, flags=re.S | re.M)
    assert block, "pyproject.toml: [tool.pytest.ini_options] filterwarnings is a multi-line list"
    out, comment = [], ""
    for line in block.group(1).splitlines():
        line = line.strip()
        if line.startswith("#"):
            comment += line
        elif line:
            out.append((line.rstrip(",").strip('"'), comment))
            comment = ""
    return out


def test_warnings_are_errors_and_every_ignore_says_why() -> None:
    filters = _filters_with_comments()
    assert filters[0][0] == "error"
    ignores = filters[1:]
    assert ignores and all(f.startswith("ignore:") for f, _ in ignores)
    assert all(comment for _, comment in ignores), [f for f, c in ignores if not c]


def test_pickled_models_still_warn(tabular_project: Path) -> None:
    """The ignore above is for the tests' tiny joblib models; users still see the warning."""
    spec = ModelSpec(loader="sklearn", path="good.joblib")
    with pytest.warns(UserWarning, match="good.joblib with pickle runs code stored in the file"):
        model = _load_sklearn(spec, tabular_project)
    assert hasattr(model, "predict_proba")


def test_skops_models_load_without_a_warning(demo_models: Path) -> None:
    spec = ModelSpec(loader="sklearn", path="candidate.skops")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _load_sklearn(spec, demo_models)
    assert hasattr(model, "predict_proba")
