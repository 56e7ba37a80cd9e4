"""The shipped LLM release suite (suites/llm/): two small causal LMs trained here, on the CPU.

The champion learns every synthetic fact; the candidate learns 12 % of them wrong. The
harness must see the gap through the generations alone: `canary.compare` with an
`exact_match_delta` non-inferiority gate blocks the candidate and promotes it with the
roles swapped, and the shipped suite blocks it end to end.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import llmguard_ops
from llmguard_ops import Decision, Status

SUITE = Path(__file__).resolve().parents[1] / "suites" / "llm"
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def shared_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """One generation cache for the module (as `--cache DIR`): each answer is generated once."""
    monkeypatch.setenv("LLMGUARD_CACHE", str(tmp_path_factory.getbasetemp() / "llm-cache"))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(SUITE))
    try:
        import train_models
    finally:
        sys.path.remove(str(SUITE))
    out = tmp_path_factory.mktemp("llm-models")
    info = train_models.build(out)
    assert not info["champion"].get("skipped") and (out / "champion" / "tokenizer.json").is_file()
    # the stamp makes a second build a no-op
    assert train_models.build(out)["candidate"]["skipped"] is True
    return out


def _canary(folder: Path, candidate: Path, baseline: Path) -> llmguard_ops.RunOutcome:
    data = SUITE / "data" / "release_qa.jsonl"
    path = folder / "suite.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        apiVersion: llmguard/v1
        name: canary-on-causal-lms
        prompts:
          atlas-v1: {{system: "Answer briefly .", template: "{{question}}"}}
        models:
          candidate: {{loader: transformers, path: {candidate}, prompt: atlas-v1, generation: {{max_new_tokens: 16}}}}
          baseline: {{loader: transformers, path: {baseline}, prompt: atlas-v1, generation: {{max_new_tokens: 16}}}}
        datasets:
          qa: {{path: {data}, text: question, target: answer}}
        checks:
          - id: canary
            uses: canary.compare
            with: {{dataset: qa, task: generation, metrics: [exact_match, token_f1]}}
            gate: {{exact_match_delta: {{min: -0.02, confidence: 0.95}}}}
            severity: blocker
        """)
    )
    return llmguard_ops.run(path, folder / "out")


def test_canary_exact_match_delta_blocks_the_worse_lm_and_promotes_it_swapped(models: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    worse = _canary(tmp_path / "a", models / "candidate", models / "champion").report
    better = _canary(tmp_path / "b", models / "champion", models / "candidate").report
    w, b = worse.checks[0], better.checks[0]
    assert w.status is Status.FAIL, w.error
    assert worse.decision.decision is Decision.BLOCK
    assert b.status is Status.PASS, b.error
    assert better.decision.decision is Decision.PROMOTE
    delta = w.metrics["exact_match_delta"]
    assert delta.upper is not None and delta.upper < -0.02
    assert -0.25 < delta.value < -0.05  # about 12 points of the 300 questions
    # swapping the roles flips the paired difference exactly
    assert b.metrics["exact_match_delta"].value == pytest.approx(-delta.value)
    assert w.details["generation"]["candidate"]["rows"] == 300


def test_shipped_release_suite_validates_and_blocks_the_worse_candidate(models: Path, tmp_path: Path) -> None:
    shutil.copytree(SUITE / "data", tmp_path / "data")
    shutil.copy(SUITE / "release.yaml", tmp_path / "release.yaml")
    shutil.copytree(models, tmp_path / "models")
    check = subprocess.run(
        [sys.executable, "-m", "llmguard_ops.cli", "validate", str(tmp_path / "release.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    report = llmguard_ops.run(tmp_path / "release.yaml", tmp_path / "out").report
    by_id = {c.id: c for c in report.checks}
    assert all(c.status is not Status.ERROR for c in report.checks), {c.id: c.error for c in report.checks}
    quality = by_id["quality-vs-champion"]
    assert quality.status is Status.FAIL
    assert quality.metrics["token_f1_delta"].upper < -0.02
    assert quality.metrics["exact_match_delta"].upper < -0.02
    assert by_id["canary"].status is Status.FAIL
    sampled = by_id["pass-at-k"].metrics
    assert {"pass_at_1", "pass_at_3", "pass_all_3"} <= set(sampled)
    assert sampled["pass_all_3"].value <= sampled["pass_at_1"].value <= sampled["pass_at_3"].value
    assert "format_valid_rate" in by_id["json-format"].metrics
    assert {"ttft_p95_ms_delta", "tpot_p50_ms_ratio"} <= set(by_id["latency-vs-champion"].metrics)
    assert "cost_per_1k_requests_delta" in quality.metrics
    assert report.decision.decision is Decision.BLOCK
    assert report.models["candidate"]["prompt"]["system"] == "You are an atlas . Reply exactly ."
    assert report.models["baseline"]["prompt"]["system"] == "Answer briefly ."
    card = (tmp_path / "out" / "model_card.md").read_text()
    assert "**Prompt (part of the release):** `atlas-v2`" in card
