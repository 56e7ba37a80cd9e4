"""latency.generation on a tiny causal LM, locally and behind a real local HTTP server."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

import llmguard_ops
from llmguard_ops import Status

pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")

from latency_support import OpenAIServer, build_tiny_lm, write_prompts

DATA = Path(__file__).resolve().parent / "data" / "latency"
SECRET = "sk-test-0123456789abcdef"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the tiny LM (``lm/``), the prompts and copies of the example suites."""
    root = tmp_path_factory.mktemp("generation")
    build_tiny_lm(root / "lm")
    write_prompts(root / "prompts.jsonl")
    for name in ("generation.yaml", "endpoint.yaml"):
        shutil.copy(DATA / name, root / name)
    return root


def _check(outcome: llmguard_ops.RunOutcome, check_id: str) -> llmguard_ops.CheckResult:
    return next(c for c in outcome.report.checks if c.id == check_id)


def test_ttft_tpot_from_a_local_causal_lm(project: Path, tmp_path: Path) -> None:
    outcome = llmguard_ops.run(project / "generation.yaml", tmp_path)
    result = _check(outcome, "lm-streaming")
    assert result.status is Status.PASS, (result.error, result.gates)
    m = result.metrics
    for name in ("ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms", "tpot_p95_ms", "tokens_per_s"):
        assert name in m and m[name].value > 0
    assert m["ttft_p50_ms"].confidence == 0.95 and m["ttft_p50_ms"].upper is not None
    # ignore_eos: every request produced exactly max_new_tokens
    assert m["output_tokens_mean"].value == 8
    assert result.details["requests"] == 10
    assert "TextIteratorStreamer" in result.details["streaming"]
    # TPOT is (e2e - TTFT) / (tokens - 1): check it against the per-request samples
    rows = (tmp_path / "artifacts" / "lm-streaming" / "generation_samples.csv").read_text().splitlines()
    header = rows[0].split(",")
    for row in rows[1:]:
        r = dict(zip(header, map(float, row.split(",")), strict=True))
        assert r["tpot_ms"] == pytest.approx(
            (r["e2e_ms"] - r["ttft_ms"]) / (r["output_tokens"] - 1), rel=1e-4, abs=1e-3
        )
    assert m["tokens_per_s"].value == pytest.approx(8 * 10 / result.details["wall_s"], rel=1e-6)


def test_ttft_tpot_from_the_local_http_server(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATENCY_TEST_API_KEY", SECRET)
    with OpenAIServer(project / "lm", api_key=SECRET, max_requests=60) as server:
        outcome = llmguard_ops.run(
            project / "endpoint.yaml",
            tmp_path,
            overrides=[
                f"models.served.options.base_url={server.base_url}",
                f"models.served-chat.options.base_url={server.base_url}",
            ],
        )
        served = server.requests
    # warm-up + timed requests, nothing more: 1 + 9, 1 + 6, and (1 shape + 1) + 9
    assert served == 10 + 7 + 11
    assert all(h == f"Bearer {SECRET}" for h in server.auth_headers)
    stream = _check(outcome, "completions-stream")
    assert stream.status is Status.PASS, (stream.error, stream.gates)
    assert stream.metrics["output_tokens_mean"].value == 6  # from usage.completion_tokens
    assert stream.metrics["tpot_p50_ms"].value > 0 and stream.metrics["ttft_p50_ms"].value > 0
    assert stream.details["streaming"] == "http server-sent events"
    chat = _check(outcome, "chat-stream-open-loop")
    assert chat.status is Status.PASS, chat.error
    assert chat.details["scenario"] == "server" and chat.metrics["output_tokens_mean"].value == 6
    assert any(b.get("messages") for b in server.bodies) and any(b.get("prompt") for b in server.bodies)
    assert all(b["stream_options"] == {"include_usage": True} for b in server.bodies if b.get("stream"))
    plain = _check(outcome, "completions-request-latency")
    assert plain.status is Status.PASS, plain.error
    assert plain.details["device"] == "remote" and "peak_memory_mb" not in plain.metrics
    assert all(b["max_tokens"] == 4 for b in server.bodies if not b.get("stream"))
    # the key is read from the environment and never written anywhere
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
    assert SECRET not in repr(outcome.report.model_dump())


def test_endpoint_digest_is_sha256_of_the_canonical_description(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATENCY_TEST_API_KEY", SECRET)
    outcome = llmguard_ops.run(project / "endpoint.yaml", project / "out-validate", only=[], write=False)
    served = outcome.report.models["served"]
    expected = {
        "api": "completions",
        "base_url": "http://127.0.0.1:8000/v1",
        "headers": [],
        "loader": "http",
        "model": "tiny-lm",
        "request": {"max_tokens": 4},
    }
    canonical = json.dumps(expected, sort_keys=True, separators=(",", ":")).encode()
    assert served["sha256"] == hashlib.sha256(canonical).hexdigest()
    assert served["digest"] == "endpoint-description-sha256"
    assert outcome.report.models["served-chat"]["sha256"] != served["sha256"]


def test_missing_api_key_variable_is_a_suite_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LATENCY_TEST_API_KEY", raising=False)
    with pytest.raises(llmguard_ops.SuiteError, match="LATENCY_TEST_API_KEY"):
        llmguard_ops.run(project / "endpoint.yaml", project / "out-nokey", only=[], write=False)


def test_a_failing_endpoint_is_an_error_naming_the_status(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LATENCY_TEST_API_KEY", SECRET)
    with OpenAIServer(project / "lm", api_key=SECRET, max_requests=2) as server:
        outcome = llmguard_ops.run(
            project / "endpoint.yaml",
            tmp_path,
            write=False,
            only=["completions-stream"],
            overrides=[f"models.served.options.base_url={server.base_url}"],
        )
    result = _check(outcome, "completions-stream")
    assert result.status is Status.ERROR and result.error is not None
    assert "HTTP 429" in result.error.message and "budget" in result.error.message
    assert "(after 4 attempts)" in result.error.message
    assert server.requests == 6  # the third request and its 3 retries (429 may pass), then stopped
