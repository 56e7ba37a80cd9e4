"""robustness.perturbation from a suite file to a report."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import llmguard_ops
from llmguard_ops import Status

DATA = Path(__file__).parent / "data" / "robustness"


def _suite(tmp_path: Path) -> Path:
    for name in ("models.py", "texts.jsonl", "suite.yaml"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path / "suite.yaml"


def _by_id(outcome: llmguard_ops.RunOutcome) -> dict[str, llmguard_ops.CheckResult]:
    return {c.id: c for c in outcome.report.checks}


def test_case_sensitive_model_fails_with_a_shrunk_minimal_example(tmp_path: Path) -> None:
    outcome = llmguard_ops.run(_suite(tmp_path), tmp_path / "out", only=["case-invariance"])
    result = _by_id(outcome)["case-invariance"]
    assert result.status is Status.FAIL
    assert outcome.report.decision.decision.value == "BLOCK"
    rate = result.metrics["invariance_rate"]
    assert rate.value < 1 and rate.interval_method == "clopper-pearson" and rate.confidence == 0.95
    minimal = result.details["minimal_failing_example"]
    assert minimal["shrunk"] is True and minimal["kind"] == "case"
    # shrunk to one edit of the keyword on the earliest row holding it
    assert minimal["row"] == 0 and len(minimal["edits"]) == 1
    assert "'Hello'" in minimal["edits"][0]
    assert minimal["original"] == "Hello, my card was declined at the shop"
    assert minimal["perturbed"].lower() == minimal["original"].lower()
    assert minimal["perturbed"] != minimal["original"]
    assert (minimal["original_output"], minimal["perturbed_output"]) == (1, 0)
    assert result.details["hypothesis"]["database"] is None
    # the example shown in docs/robustness.md is this one
    text = (Path(__file__).parents[1] / "docs" / "robustness.md").read_text(encoding="utf-8")
    (shown,) = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, flags=re.S)]
    assert {k: minimal[k] for k in shown} == shown
    assert result.details["budget"] == {
        "max_examples": 60,
        "time_limit_s": 30.0,
        "max_rows": 200,
        "max_edits": 2,
    }


def test_case_insensitive_model_passes(tmp_path: Path) -> None:
    outcome = llmguard_ops.run(_suite(tmp_path), tmp_path / "out", only=["case-invariance-fixed"])
    result = _by_id(outcome)["case-invariance-fixed"]
    assert result.status is Status.PASS
    assert result.metrics["invariance_rate"].value == 1.0
    assert result.metrics["failures"].value == 0
    assert result.details["minimal_failing_example"] is None
    assert result.details["n_examples"] > 20


def test_same_seed_same_metrics_and_examples(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    checks = ["case-invariance", "typing-noise"]
    first = _by_id(llmguard_ops.run(suite, tmp_path / "a", only=checks))
    # the second run is another process (the CLI), with other modules loaded: hypothesis
    # must not draw anything but what the seed decides
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("llmguard")),
            "run",
            str(suite),
            "--out",
            str(tmp_path / "b"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stderr  # BLOCK: the case-sensitive model fails
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    second = {c["id"]: c for c in report["checks"]}
    for check in checks:
        assert {k: m.model_dump() for k, m in first[check].metrics.items()} == second[check]["metrics"]
        for key in ("minimal_failing_example", "failure_sample", "n_examples"):
            assert first[check].details[key] == second[check]["details"][key]
        assert first[check].details["hypothesis"]["seed"] == first[check].seed
    noise = first["typing-noise"]
    # the keyword model breaks when 'Hello' becomes a synonym or gets a typo: found and shown
    assert noise.metrics["invariance_rate.synonyms"].value < 1
    minimal = noise.details["minimal_failing_example"]
    assert minimal["kind"] in ("synonyms", "typos", "homoglyphs") and "'Hello'" in minimal["edits"][0]
    assert noise.metrics["invariance_rate.whitespace"].value == 1.0


def test_interval_is_scipy_clopper_pearson() -> None:
    from llmguard_checks.robustness._check import clopper_pearson

    low, high = clopper_pearson(69, 74, 0.95)
    # the exact interval inverts two one-sided binomial tests
    assert stats.binom.sf(68, 74, low) == pytest.approx(0.025, rel=1e-6)
    assert stats.binom.cdf(69, 74, high) == pytest.approx(0.025, rel=1e-6)
    assert clopper_pearson(10, 10, 0.95)[1] == 1.0


def test_tabular_noise_stays_within_the_declared_tolerance(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 10, 300).round(2),
            "years": rng.integers(0, 30, 300),
            "channel": rng.choice(["web", "app", "branch"], 300),
        }
    )
    frame["y"] = (frame["income"] + rng.normal(0, 5, 300) > 50).astype(int)
    model = LogisticRegression().fit(frame[["income", "years"]], frame["y"])
    joblib.dump(model, tmp_path / "lr.joblib")
    frame.to_csv(tmp_path / "data.csv", index=False)
    suite = {
        "apiVersion": "llmguard/v1",
        "name": "tabular-robustness",
        "seed": 1,
        "models": {"candidate": {"loader": "sklearn", "path": "lr.joblib"}},
        "datasets": {"current": {"path": "data.csv", "target": "y", "features": ["income", "years"]}},
        "checks": [
            {
                "id": "noise",
                "uses": "robustness.perturbation",
                "with": {
                    "tolerance": {"income": 2.0, "years": 1},
                    "relative_tolerance": None,
                    "max_examples": 60,
                    "max_edits": 2,
                },
                "gate": {"invariance_rate": {"min": 0.5}},
            }
        ],
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    result = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out").report.checks[0]
    assert result.status is Status.PASS, result.error
    rate = result.metrics["invariance_rate"].value
    # rows near the decision boundary flip under ±2 of income
    assert 0.5 < rate < 1, (result.metrics, result.details["elapsed_s"], result.warnings)
    minimal = result.details["minimal_failing_example"]
    for column, (old, new) in minimal["changed"].items():
        assert abs(new - old) <= {"income": 2.0, "years": 1}[column] + 1e-9
    assert minimal["original_output"] != minimal["perturbed_output"]


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.text(alphabet=st.characters(codec="ascii", categories=("L", "Zs", "P")), min_size=1, max_size=40),
    st.sampled_from(["case", "whitespace", "punctuation", "typos", "homoglyphs"]),
    st.data(),
)
def test_text_perturbations_change_only_what_they_claim(text: str, kind: str, data: st.DataObject) -> None:
    from llmguard_checks.robustness._strategies import HOMOGLYPHS, text_strategy

    strategy = text_strategy(kind, text, 2, {})
    if strategy is None:
        return
    p = data.draw(strategy)
    assert p.kind == kind and 1 <= len(p.edits) <= 2
    if kind == "case":
        assert p.value.lower() == text.lower() and p.value != text
    elif kind == "whitespace":
        assert p.value.split() == text.split() and len(p.value) > len(text)
    elif kind == "homoglyphs":
        assert len(p.value) == len(text) and p.value != text
        assert all(a == b or HOMOGLYPHS.get(b) == a for a, b in zip(p.value, text, strict=True))
    elif kind == "punctuation":
        strip = str.maketrans("", "", ".,!?;:")
        assert p.value.translate(strip) == text.translate(strip)


@settings(max_examples=30, deadline=None, database=None)
@given(st.data())
def test_category_swaps_stay_within_declared_groups(data: st.DataObject) -> None:
    from llmguard_checks.robustness._strategies import row_strategy

    groups = {"employment": [["salaried", "self-employed"], ["retired", "pensioner", "retiree"]]}
    row = {
        "employment": data.draw(st.sampled_from(["salaried", "retired", "unemployed"])),
        "income": 1.0,
    }
    strategy = row_strategy("category_swap", row, 2, {}, groups)
    if row["employment"] == "unemployed":
        assert strategy is None  # in no group: nothing it could be swapped with
        return
    assert strategy is not None
    p = data.draw(strategy)
    group = next(g for g in groups["employment"] if row["employment"] in g)
    assert p.value["employment"] in group and p.value["employment"] != row["employment"]
    assert p.value["income"] == 1.0


def test_generated_text_similarity_floor(tmp_path: Path) -> None:
    _suite(tmp_path)
    suite = {
        "apiVersion": "llmguard/v1",
        "name": "generation-robustness",
        "seed": 2,
        "models": {"candidate": {"loader": "python", "path": "models.py:echo_generator"}},
        "datasets": {"current": {"path": "texts.jsonl", "text": "text"}},
        "checks": [
            {
                "id": "gen",
                "uses": "robustness.perturbation",
                "with": {
                    "perturbations": ["case", "whitespace", "typos"],
                    "similarity_floor": 0.999,
                    "max_examples": 40,
                },
                "gate": {"invariance_rate.case": {"min": 1.0}},
            }
        ],
    }
    (tmp_path / "gen.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    result = llmguard_ops.run(tmp_path / "gen.yaml", tmp_path / "out").report.checks[0]
    assert result.status is Status.PASS, result.error
    assert result.details["property"] == "similarity"
    assert result.metrics["invariance_rate.whitespace"].value == 1.0
    assert result.metrics["invariance_rate.typos"].value < 1.0  # a typo survives into the answer
    minimal = result.details["minimal_failing_example"]
    assert minimal["kind"] == "typos" and 0 < minimal["measure"] < 0.999


def test_derandomized_stream_is_independent_of_the_seed(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    data = yaml.safe_load(suite.read_text())
    data["checks"] = [data["checks"][0]]
    data["checks"][0]["with"]["derandomize"] = True
    results = []
    for seed in (1, 2):
        data["seed"] = seed
        suite.write_text(yaml.safe_dump(data, sort_keys=False))
        results.append(llmguard_ops.run(suite, tmp_path / f"out{seed}").report.checks[0])
    assert results[0].seed != results[1].seed
    # every row is drawn either way, and hypothesis' derandomised stream ignores the seed
    assert results[0].metrics == results[1].metrics
    assert results[0].details["hypothesis"] == {
        "version": results[0].details["hypothesis"]["version"],
        "seed": None,
        "derandomize": True,
        "database": None,
    }
    assert results[0].status is Status.FAIL
    assert results[0].details["minimal_failing_example"]["shrunk"] is True
