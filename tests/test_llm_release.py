"""LLM release gate: prompts as part of the model, paired generation deltas, pass@k, judges."""

from __future__ import annotations

import base64
import json
import textwrap
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import llmguard_ops
from llmguard_ops import Decision, Status
from llmguard_ops.testing import tiny_causal_lm, tiny_tokenizer, write_suite

MODELS = '''
import json
import re


class Answerer:
    """Answers "item N" with "city N"; every `wrong_every`-th item wrongly; 'verbose' system
    prompts make it wordier; sampled draws (temperature > 0) fail by the seed's parity."""

    input_kind = "text"

    def __init__(self, wrong_every=0):
        self.wrong_every = wrong_every
        self.calls = 0
        self.seeds = []

    def chat(self, conversations, temperature=0.0, seed=None, max_new_tokens=32, **settings):
        self.calls += 1
        self.seeds.append(seed)
        out = []
        for conv in conversations:
            n = int(re.search(r"item (\\d+)", conv[-1]["content"]).group(1))
            ans = f"city {n}"
            if self.wrong_every and n % self.wrong_every == 0:
                ans = "unknown place"
            if temperature > 0 and n % 3 == 0 and (seed + n) % 2:
                ans = "no idea"
            if conv[0]["role"] == "system" and "verbose" in conv[0]["content"]:
                ans = "The answer is " + ans
            out.append({"text": ans, "prompt_tokens": len(conv[-1]["content"].split()),
                        "output_tokens": len(ans.split())})
        return out


class FirstPositionJudge:
    """A pairwise judge that always prefers the answer shown first."""

    input_kind = "text"

    def generate(self, prompts, **settings):
        return ["[[A]]" for _ in prompts]


class FairJudge:
    """Prefers the answer that contains the reference, whatever its position."""

    input_kind = "text"

    def generate(self, prompts, **settings):
        out = []
        for p in prompts:
            ref = re.search(r"\\[Reference answer\\]\\n(.*)\\n", p).group(1)
            a = re.search(r"\\[Answer A\\]\\n(.*)\\n", p).group(1)
            b = re.search(r"\\[Answer B\\]\\n(.*)\\n", p).group(1)
            out.append("[[C]]" if (ref in a) == (ref in b) else "[[A]]" if ref in a else "[[B]]")
        return out


class GraderJudge:
    """PASS when the answer contains the reference, except on items divisible by 7."""

    input_kind = "text"

    def generate(self, prompts, **settings):
        out = []
        for p in prompts:
            ref = re.search(r"\\[Reference answer\\]\\n(.*)\\n", p).group(1)
            ans = re.search(r"\\[Answer\\]\\n(.*)\\n", p).group(1)
            n = int(ref.split()[-1])
            ok = (ref in ans) != (n % 7 == 0)
            out.append("PASS" if ok else "FAIL")
        return out
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "models.py").write_text(MODELS)
    n = 300
    frame = pd.DataFrame(
        {"question": [f"What is the capital of item {i}?" for i in range(n)], "answer": [f"city {i}" for i in range(n)]}
    )
    frame["human"] = [int(i % 10 != 0) for i in range(n)]
    frame.to_csv(tmp_path / "qa.csv", index=False)
    return tmp_path


def _suite(project: Path, body: str) -> Path:
    head = """\
    apiVersion: llmguard/v1
    name: llm-release
    prompts:
      terse: {system: "Answer with the name only.", template: "{question}"}
      wordy: {system: "Be verbose.", template: "{question}"}
    datasets:
      qa: {path: qa.csv, text: question, target: answer}
    """
    return write_suite(project, textwrap.dedent(head) + textwrap.dedent(body))


def _models(cand_wrong: int, base_wrong: int) -> str:
    return textwrap.dedent(f"""\
    models:
      candidate: {{loader: python, path: "models.py:Answerer", options: {{kwargs: {{wrong_every: {cand_wrong}}}}},
                  prompt: terse}}
      baseline: {{loader: python, path: "models.py:Answerer", options: {{kwargs: {{wrong_every: {base_wrong}}}}},
                 prompt: terse}}
    """)


GATED = textwrap.dedent("""\
    checks:
      - id: quality
        uses: performance.generation
        with: {dataset: qa, baseline: baseline, metrics: [exact_match, token_f1], n_resamples: 500}
        gate: {token_f1_delta: {min: -0.02, confidence: 0.95}}
      - id: canary
        uses: canary.compare
        with: {dataset: qa, task: generation, metrics: [exact_match], n_resamples: 500}
        gate: {exact_match_delta: {min: -0.02, confidence: 0.95}}
    """)


def test_worse_candidate_blocks_and_swapped_roles_promote(project: Path) -> None:
    worse = llmguard_ops.run(_suite(project, _models(10, 0) + GATED), project / "out1").report
    assert worse.decision.decision is Decision.BLOCK
    quality, canary = worse.checks
    f1 = quality.metrics["token_f1_delta"]
    assert f1.value == pytest.approx(-0.1) and f1.upper < -0.02
    assert canary.metrics["exact_match_delta"].value == pytest.approx(-0.1)
    # McNemar on the per-item exact matches: 30 discordant pairs, all against the candidate
    assert canary.details["mcnemar"]["exact_match_delta"]["p_value"] < 1e-6
    better = llmguard_ops.run(_suite(project, _models(0, 10) + GATED), project / "out2").report
    assert better.decision.decision is Decision.PROMOTE, [c.error for c in better.checks]
    assert better.checks[0].metrics["token_f1_delta"].value == pytest.approx(0.1)
    assert better.checks[1].metrics["exact_match_delta"].lower > 0


def test_same_weights_two_system_prompts_visible_in_report_and_attestation(project: Path) -> None:
    body = """\
    models:
      candidate: {loader: python, path: "models.py:Answerer", prompt: wordy,
                  generation: {temperature: 0, max_new_tokens: 16}}
      baseline: {loader: python, path: "models.py:Answerer", prompt: terse}
    checks:
      - id: quality
        uses: performance.generation
        with: {dataset: qa, baseline: baseline, metrics: [exact_match, token_f1],
               pass: {kind: contains_all}, n_resamples: 200}
        gate: {pass_rate_delta: {min: -0.02, confidence: 0.95}, exact_match_delta: {min: -0.02}}
    """
    outcome = llmguard_ops.run(_suite(project, body), project / "out")
    report = outcome.report
    check = report.checks[0]
    # the wordier prompt keeps every answer right (pass) but loses exact match
    assert check.metrics["pass_rate_delta"].value == 0
    assert check.metrics["exact_match_delta"].value == pytest.approx(-1.0)
    assert report.decision.decision is Decision.BLOCK
    assert report.models["candidate"]["sha256"] == report.models["baseline"]["sha256"]
    assert report.models["candidate"]["prompt"]["system"] == "Be verbose."
    assert report.models["baseline"]["prompt"]["name"] == "terse"
    assert report.models["candidate"]["generation"]["max_new_tokens"] == 16
    envelope = json.loads((project / "out" / "attestation.dsse.json").read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    models = statement["predicate"]["report"]["models"]
    assert "Be verbose." in statement["predicate"]["suite"]["content"]
    assert models["candidate"]["prompt"]["system"] == "Be verbose."
    assert models["candidate"]["prompt"]["sha256"] != models["baseline"]["prompt"]["sha256"]
    assert check.details["generation"]["candidate"]["prompt"]["system"] == "Be verbose."


def test_pass_at_k_is_the_unbiased_estimator_over_items(project: Path) -> None:
    body = """\
    models:
      candidate: {loader: python, path: "models.py:Answerer",
                  generation: {temperature: 0.8, samples: 5, seed: 11}}
    checks:
      - id: sampled
        uses: performance.generation
        with: {dataset: qa, metrics: [], pass: {kind: contains_all}, pass_at: [1, 2, 5], n_resamples: 300}
        gate: {pass_at_2: {min: 0.9, confidence: 0.95}}
    """
    outcome = llmguard_ops.run(_suite(project, body), project / "out")
    check = outcome.report.checks[0]
    assert check.status is not Status.ERROR, check.error
    # per-item pass counts, recomputed from the model's rule and the seeds the harness used
    from llmguard_ops.generation import sample_seed

    seeds = [sample_seed(11, j) for j in range(5)]
    counts = [sum(not (i % 3 == 0 and (s + i) % 2) for s in seeds) for i in range(300)]
    for k in (1, 2, 5):
        hand = np.mean([1 - comb(5 - c, k) / comb(5, k) for c in counts])
        assert check.metrics[f"pass_at_{k}"].value == pytest.approx(hand)
        hand_all = np.mean([comb(c, k) / comb(5, k) for c in counts])
        assert check.metrics[f"pass_all_{k}"].value == pytest.approx(hand_all)
    metric = check.metrics["pass_at_2"]
    # the interval resamples the 300 items (not the 1500 samples) and says so
    assert metric.n == 300 and "items" in (metric.interval_method or "")
    per_item = np.array([1 - comb(5 - c, 2) / comb(5, 2) for c in counts])
    from llmguard_checks._bootstrap import bootstrap_weighted

    ref = bootstrap_weighted(
        lambda w: (w @ per_item / w.sum(axis=1))[None, :],
        300,
        confidence=0.95,
        n_resamples=300,
        seed=outcome.report.checks[0].seed,
    )
    assert (metric.lower, metric.upper) == pytest.approx((ref.low[0], ref.high[0]))
    assert "pass" in check.details["per_item_variance"]
    assert "pass_at_2" in check.details["decisive_items"]
    # five independent draws: five distinct seeds, none served from another's cache entry
    assert len(set(seeds)) == 5
    assert outcome.report.prediction_calls["candidate/qa/generate"] == 1500


def test_generation_cache_resumes_across_runs(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = _models(10, 0) + GATED
    suite = _suite(project, body)
    monkeypatch.setenv("LLMGUARD_CACHE", str(project / "shared-cache"))
    first = llmguard_ops.run(suite, project / "a").report
    assert first.prediction_calls["candidate/qa/generate"] == 300
    second = llmguard_ops.run(suite, project / "b").report
    assert "candidate/qa/generate" not in second.prediction_calls  # every answer came from the cache
    assert second.checks[0].metrics["token_f1_delta"].value == first.checks[0].metrics["token_f1_delta"].value


def test_pairwise_judge_position_bias(project: Path) -> None:
    body = """\
    models:
      candidate: {loader: python, path: "models.py:Answerer", options: {kwargs: {wrong_every: 10}}}
      baseline: {loader: python, path: "models.py:Answerer"}
      biased: {loader: python, path: "models.py:FirstPositionJudge"}
      fair: {loader: python, path: "models.py:FairJudge"}
    checks:
      - id: biased
        uses: performance.generation
        with: {dataset: qa, baseline: baseline, metrics: [], pairwise_judge: biased, n_resamples: 100}
      - id: fair
        uses: performance.generation
        with: {dataset: qa, baseline: baseline, metrics: [], pairwise_judge: fair, n_resamples: 100}
    """
    biased, fair = llmguard_ops.run(_suite(project, body), project / "out").report.checks
    assert biased.metrics["position_bias"].value == pytest.approx(1.0)
    assert biased.metrics["win_rate"].value == 0 and biased.metrics["loss_rate"].value == 0
    assert biased.metrics["inconsistent_rate"].value == 1.0
    assert fair.metrics["position_bias"].value == 0
    assert fair.metrics["loss_rate"].value == pytest.approx(0.1)
    assert fair.metrics["tie_rate"].value == pytest.approx(0.9)


def test_judge_agreement_is_cohens_kappa(project: Path) -> None:
    from sklearn.metrics import cohen_kappa_score

    body = """\
    models:
      candidate: {loader: python, path: "models.py:Answerer", options: {kwargs: {wrong_every: 10}}}
      grader: {loader: python, path: "models.py:GraderJudge"}
    checks:
      - id: judged
        uses: performance.generation
        with: {dataset: qa, metrics: [], judge: grader, judge_repeats: 1, human_label_column: human,
               pass: {kind: judge}, n_resamples: 200}
        gate: {judge_agreement: {min: 0.9}}
    """
    check = llmguard_ops.run(_suite(project, body), project / "out").report.checks[0]
    human = [int(i % 10 != 0) for i in range(300)]
    judge = [int((i % 10 != 0) != (i % 7 == 0)) for i in range(300)]
    kappa = check.metrics["judge_agreement"]
    assert kappa.value == pytest.approx(cohen_kappa_score(human, judge))
    assert kappa.lower < kappa.value < kappa.upper
    assert check.status is Status.FAIL  # the floor refuses a judge this far from the humans
    assert check.metrics["pass_rate"].value == pytest.approx(np.mean(judge))


def test_pass_criteria() -> None:
    from llmguard_checks.generation.criteria import PassCriterion, json_valid, scorer

    def ok(spec: dict, answer: str, ref: str | None = None) -> bool:
        return scorer(PassCriterion.model_validate(spec))(answer, ref)

    assert ok({"kind": "normalized_exact"}, "The Paris!", "paris")
    assert not ok({"kind": "exact"}, "The Paris!", "paris")
    assert ok({"kind": "regex", "pattern": r"^\d{4}-\d{2}$"}, "2024-05")
    assert ok({"kind": "numeric", "tolerance": 0.5}, "about 1,000.2 km", "1000")
    assert not ok({"kind": "numeric", "relative": 0.01}, "1100", "1000")
    assert ok({"kind": "contains_any"}, "it is lyon", "paris|lyon")
    assert not ok({"kind": "contains_all"}, "it is lyon", "paris|lyon")
    schema = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}
    assert ok({"kind": "json_schema", "schema": schema}, '{"answer": "x"}')
    assert not ok({"kind": "json_schema", "schema": schema}, '{"answer": 3}')
    assert json_valid("```json\n[1, 2]\n```", None) and not json_valid("{nope", None)
    with pytest.raises(ValueError, match="JSON Schema"):
        PassCriterion.model_validate({"kind": "json_schema", "schema": {"type": 5}})


def test_prompt_rendering_and_flattening() -> None:
    from llmguard_ops.generation import flatten, render
    from llmguard_ops.suite import PromptSpec

    spec = PromptSpec.model_validate(
        {
            "system": "Be brief.",
            "template": "Q: {question}",
            "context_column": "ctx",
            "few_shot": [{"user": "Q: 1+1", "assistant": "2"}],
        }
    )
    msgs = render(spec, {"question": "capital?", "ctx": "Paris is..."}, text_column="question")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[-1]["content"] == "Context: Paris is...\n\nQ: capital?"
    assert flatten(msgs).endswith("user: Context: Paris is...\n\nQ: capital?\nassistant:")
    turns = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"},
    ]
    assert render(spec, {"messages": turns}, text_column=None)[3:] == turns
    # the suite's system prompt is the release's: a system turn in the data gives way to it
    own = [{"role": "system", "content": "data's"}, *turns]
    assert [m["content"] for m in render(spec, {"messages": own}, text_column=None)][:1] == ["Be brief."]
    assert render(spec, {"messages": own}, text_column=None)[3:] == turns
    assert render(None, {"question": "raw"}, text_column="question") == [{"role": "user", "content": "raw"}]
    assert flatten([{"role": "user", "content": "raw"}]) == "raw"


def test_unknown_prompt_is_a_located_error(project: Path) -> None:
    body = """\
    models:
      candidate: {loader: python, path: "models.py:Answerer", prompt: tersee}
    checks:
      - id: q
        uses: performance.generation
        with: {dataset: qa}
    """
    with pytest.raises(llmguard_ops.SuiteError, match=r"unknown prompt 'tersee'.*did you mean 'terse'"):
        llmguard_ops.run(_suite(project, body), project / "out")


def test_model_folder_without_tokenizer_is_one_line_error(tmp_path: Path) -> None:
    from llmguard_ops.adapters import load_transformers

    tiny_causal_lm(tmp_path / "lm", seed=None, vocab_size=10, n_layer=1, n_head=1, n_embd=8, n_positions=16)
    with pytest.raises(llmguard_ops.ArtifactError, match="has no tokenizer files") as err:
        load_transformers(tmp_path / "lm", {})
    assert "\n" not in str(err.value)


def _tiny_causal_lm(folder: Path, seed: int, chat_template: str | None) -> Path:
    words = ["what is the capital of item city user system assistant : answer briefly ."]
    fast = tiny_tokenizer(
        words,
        special_tokens=["[UNK]", "[EOS]"],
        pad_token="[EOS]",
        pre_tokenizer="whitespace_split",
        chat_template=chat_template,
    )
    return tiny_causal_lm(
        folder, fast, seed=seed, n_layer=1, n_head=1, n_embd=16, n_positions=12, eos_token_id=1, bos_token_id=1
    )


def test_canary_compare_runs_on_local_causal_lms(tmp_path: Path) -> None:
    """canary.compare no longer ERRORs on causal LMs: it compares their generations."""
    template = "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}assistant :"
    a = _tiny_causal_lm(tmp_path / "a", 0, template)
    b = _tiny_causal_lm(tmp_path / "b", 1, None)
    pd.DataFrame(
        {
            "question": [
                "what is the capital of item",
                "capital of item",
                "what is the capital of item what is the capital of item",
            ],
            "answer": ["city", "city", "city"],
        }
    ).to_csv(tmp_path / "qa.csv", index=False)
    (tmp_path / "suite.yaml").write_text(
        textwrap.dedent(f"""\
        apiVersion: llmguard/v1
        name: causal
        prompts:
          brief: {{system: "answer briefly .", template: "{{question}}"}}
        models:
          candidate: {{loader: transformers, path: {a}, prompt: brief, generation: {{max_new_tokens: 3}}}}
          baseline: {{loader: transformers, path: {b}, generation: {{max_new_tokens: 3}}}}
        datasets:
          qa: {{path: qa.csv, text: question, target: answer}}
        checks:
          - id: canary
            uses: canary.compare
            with: {{dataset: qa, n_resamples: 50}}
    """)
    )
    outcome = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out")
    check = outcome.report.checks[0]
    assert check.status is not Status.ERROR, check.error
    assert {"exact_match_delta", "token_f1_delta", "agreement_rate"} <= set(check.metrics)
    gen = check.details["generation"]
    # the chat-templated candidate prompt (system + user) overflows 12 positions: kept from the left
    assert gen["candidate"]["truncated_prompts"] >= 1
    assert any("context window" in w for w in check.warnings)
    assert gen["candidate"]["token_unit"] == "tokens"


def test_latency_generation_against_a_baseline_interleaved(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from latency_support import build_tiny_lm, write_prompts

    build_tiny_lm(tmp_path / "lm")
    write_prompts(tmp_path / "prompts.jsonl")
    import shutil

    # the docs' example (docs/latency.md), run as is
    shutil.copy(Path(__file__).parent / "data" / "latency" / "generation_baseline.yaml", tmp_path / "suite.yaml")
    check = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out").report.checks[0]
    assert check.status is not Status.ERROR, check.error  # pass or fail is timing: not asserted
    m = check.metrics
    assert "ttft_p50_ms" in m  # the candidate's own percentiles too
    for name in ("ttft_p95_ms_delta", "tpot_p50_ms_ratio"):
        assert name in m and m[name].has_interval
    assert m["tpot_p50_ms_ratio"].lower <= m["tpot_p50_ms_ratio"].value <= m["tpot_p50_ms_ratio"].upper
    assert check.details["requests"] == 64 and check.details["order"] == "ABBA interleaved"


def test_an_endpoint_gets_chat_messages_with_the_suite_prompt(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from latency_support import OpenAIServer, build_tiny_lm

    build_tiny_lm(tmp_path / "lm")
    pd.DataFrame({"question": [f"prompt {i}" for i in range(8)], "answer": ["x"] * 8}).to_csv(
        tmp_path / "qa.csv", index=False
    )
    with OpenAIServer(tmp_path / "lm", max_requests=100) as server:
        (tmp_path / "suite.yaml").write_text(
            textwrap.dedent(f"""\
            apiVersion: llmguard/v1
            name: endpoint-prompt
            prompts:
              v2: {{system: "be brief", template: "Q: {{question}}"}}
            models:
              candidate:
                loader: http
                options: {{base_url: "{server.base_url}", api: chat, model: tiny, concurrency: 4}}
                prompt: v2
                generation: {{max_new_tokens: 3, temperature: 0.5, seed: 3}}
            datasets:
              qa: {{path: qa.csv, text: question, target: answer}}
            checks:
              - id: quality
                uses: performance.generation
                with: {{dataset: qa, n_resamples: 50}}
        """)
        )
        check = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out").report.checks[0]
        bodies = list(server.bodies)
    assert check.status is Status.PASS, check.error
    assert len(bodies) == 8
    first = next(b for b in bodies if b["messages"][-1]["content"] == "Q: prompt 0")
    assert first["messages"][0] == {"role": "system", "content": "be brief"}
    assert first["max_tokens"] == 3 and first["temperature"] == 0.5 and isinstance(first["seed"], int)
    # the server reports completion tokens: output_tokens_mean is its count, not a word count
    assert check.metrics["output_tokens_mean"].value <= 3


def test_model_card_describes_the_llm_release(project: Path) -> None:
    body = """\
    models:
      candidate: {loader: python, path: "models.py:Answerer", prompt: wordy,
                  generation: {temperature: 0.2, max_new_tokens: 16, samples: 1}}
      baseline: {loader: python, path: "models.py:Answerer", prompt: terse}
    checks:
      - id: quality
        uses: performance.generation
        with: {dataset: qa, baseline: baseline, metrics: [token_f1], n_resamples: 50}
    """
    llmguard_ops.run(_suite(project, body), project / "out")
    card = (project / "out" / "model_card.md").read_text()
    assert "**Prompt (part of the release):** `wordy`" in card
    assert "system prompt: Be verbose." in card
    assert "temperature 0.2, top_p 1.0, max_new_tokens 16, samples 1" in card
    assert "prompt `terse`" in card


def test_multi_turn_messages_column_and_format_validity(project: Path) -> None:
    rows = [
        {
            "messages": [
                {"role": "system", "content": "data's own system prompt"},
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "hi"},
                {"role": "user", "content": f"capital of item {i}?"},
            ],
            "answer": f"city {i}",
        }
        for i in range(20)
    ]
    (project / "chats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = project / "chats.yaml"
    path.write_text(
        textwrap.dedent("""\
        apiVersion: llmguard/v1
        name: multi-turn
        prompts:
          terse: {system: "Answer with the name only."}
        models:
          candidate: {loader: python, path: "models.py:Answerer", prompt: terse}
        datasets:
          chats: {path: chats.jsonl, target: answer}
        checks:
          - id: chat
            uses: performance.generation
            with: {dataset: chats, metrics: [exact_match], format: {kind: json}, n_resamples: 50}
    """)
    )
    check = llmguard_ops.run(path, project / "out").report.checks[0]
    assert check.status is Status.PASS, check.error
    assert check.metrics["exact_match"].value == 1.0
    assert check.metrics["format_valid_rate"].value == 0.0  # "city N" is not JSON
    conv = check.details["generation"]["candidate"]
    assert conv["rows"] == 20


def test_too_long_prompt_refused_when_the_suite_says_so(tmp_path: Path) -> None:
    lm = _tiny_causal_lm(tmp_path / "lm", 0, None)
    pd.DataFrame({"question": ["what is the capital of item " * 4], "answer": ["city"]}).to_csv(
        tmp_path / "qa.csv", index=False
    )
    (tmp_path / "suite.yaml").write_text(
        textwrap.dedent(f"""\
        apiVersion: llmguard/v1
        name: refuse
        models:
          candidate: {{loader: transformers, path: {lm}, generation: {{max_new_tokens: 3, truncate: error}}}}
        datasets:
          qa: {{path: qa.csv, text: question, target: answer}}
        checks:
          - id: q
            uses: performance.generation
            with: {{dataset: qa, n_resamples: 0}}
    """)
    )
    check = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out").report.checks[0]
    assert check.status is Status.ERROR
    assert "exceeds the context window of 12 tokens (generation.truncate: error)" in check.error.message


def test_the_documented_release_suite_blocks_a_worse_candidate(project: Path) -> None:
    import shutil

    frame = pd.read_csv(project / "qa.csv")
    frame["context"] = [f"city {i} is the capital of item {i}." for i in range(len(frame))]
    frame.to_csv(project / "qa.csv", index=False)
    shutil.copy(Path(__file__).parent / "data" / "generation_release.yaml", project / "release.yaml")
    report = llmguard_ops.run(project / "release.yaml", project / "out").report
    quality, canary = report.checks
    assert quality.status is Status.FAIL and canary.status is Status.FAIL
    assert report.decision.decision is Decision.BLOCK
    m = quality.metrics
    assert m["token_f1_delta"].upper < -0.02
    assert {"pass_at_1", "pass_at_5", "pass_all_5", "cost_per_1k_requests", "prompt_tokens_mean"} <= set(m)
    # the candidate's RAG prompt is longer: it costs more per request
    assert m["cost_per_1k_requests_delta"].value > 0
    assert report.models["candidate"]["prompt"]["context_column"] == "context"
