"""latency.capacity: the searched rate against the M/D/c queueing model; the search itself.

The system under test is known: ``c`` workers, each holding a request for a fixed
service time ``s`` (a local model that sleeps, or an HTTP server with a semaphore of
``c`` slots). Poisson arrivals make it an M/D/c queue. The prediction is computed the way
the check decides (tests/capacity_support.py): for each rate, steps of ``n`` arrivals
into an empty system, and the order statistic that is the percentile's upper confidence
bound; the predicted capacity is the highest rate whose median statistic meets the SLO.

**Tolerance, stated honestly.** The machine adds its own delays (thread wake-ups, the HTTP
stack, other processes on two shared cores). Their fixed part is measured first — the
median of 30 unloaded sequential requests minus ``s`` — and taken off the SLO the model
is given (it adds to every latency but holds no worker). The rest only ever adds latency,
so the measured capacity may fall below the prediction, and one step's noise may move it
either way. The test accepts a measured capacity from 0.6 to 1.2 times the prediction, never
more than 1.2 × the saturation bound c/s, and a candidate twice as fast as its baseline
must show a capacity ratio of at least 1.5 and within 0.6-1.5 times the ratio the model
predicts (with a fixed SLO the model predicts more than 2: the faster model also gains
head room under the SLO).
"""

from __future__ import annotations

import functools
import os
import runpy
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from tests.capacity_support import WorkerServer, predicted_step_capacity

import llmguard_ops
from llmguard_checks.latency.capacity import Step, search_rate
from llmguard_checks.latency.endpoint import load_endpoint
from llmguard_checks.latency.stats import one_sided, upper_index
from llmguard_ops import Decision, Status

os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "latency"
WORKERS, SLO_S, N = 2, 0.050, 100


@functools.cache
def _prediction(service_s: float, slo_s: float) -> float:
    return predicted_step_capacity(WORKERS, service_s, N, upper_index(N, 0.9, one_sided(0.95)), slo_s)


def _overhead_s(call: Callable[[], Any], service_s: float) -> float:
    """Median unloaded latency minus the service time: what the stack adds to each request."""
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return max(0.0, statistics.median(times) - service_s)


def _assert_matches_model(
    result: llmguard_ops.CheckResult, fast_s: float, slow_s: float, slo_s: float, overhead: tuple[float, float]
) -> None:
    fast, slow = result.metrics["max_qps_at_slo"].value, result.metrics["baseline_max_qps_at_slo"].value
    pred_fast, pred_slow = _prediction(fast_s, slo_s - overhead[0]), _prediction(slow_s, slo_s - overhead[1])
    curve = result.details["curve"]
    assert 0.6 * pred_fast <= fast <= 1.2 * pred_fast, (fast, pred_fast, curve)
    assert 0.6 * pred_slow <= slow <= 1.2 * pred_slow, (slow, pred_slow, curve)
    assert fast <= 1.2 * WORKERS / fast_s and slow <= 1.2 * WORKERS / slow_s
    ratio = result.metrics["max_qps_at_slo_ratio"].value
    assert ratio == pytest.approx(fast / slow)
    assert ratio >= 1.5 and 0.6 <= ratio / (pred_fast / pred_slow) <= 1.5, (ratio, pred_fast / pred_slow)
    for model in ("candidate", "baseline"):  # every passing step's upper bound met the SLO, every failing one did not
        for row in (r for r in curve if r["model"] == model):
            assert row["meets_slo"] == (row["upper_bound_ms"] <= slo_s * 1000)
            assert row["requests"] == N and row["upper_bound_ms"] >= row["percentile_ms"]


def _capacity_suite(tmp_path: Path, fast_url: str, slow_url: str) -> Path:
    path = tmp_path / "capacity.yaml"
    path.write_text(f"""\
apiVersion: llmguard/v1
name: endpoint-capacity
models:
  candidate: {{loader: http, options: {{base_url: "{fast_url}", model: fast}}}}
  baseline: {{loader: http, options: {{base_url: "{slow_url}", model: slow}}}}
datasets:
  prompts: {{path: prompts.jsonl, text: prompt}}
checks:
  - id: capacity
    uses: latency.capacity
    with: {{model: candidate, baseline: baseline, dataset: prompts, percentile: p90_ms, slo_ms: {SLO_S * 1000:g},
           concurrency: 16, min_qps: 40, max_qps: 800, requests_per_step: {N}, step_duration_s: 3, warmup: 4,
           price_per_instance_hour: 3.6}}
    gate: {{max_qps_at_slo_ratio: {{min: 1.5}}}}
""")
    (tmp_path / "prompts.jsonl").write_text("".join(f'{{"prompt": "question {i}"}}\n' for i in range(8)))
    return path


@pytest.mark.slow
def test_http_endpoint_capacity_matches_the_queueing_model(tmp_path: Path) -> None:
    with WorkerServer(WORKERS, 0.010) as fast, WorkerServer(WORKERS, 0.020) as slow:
        overhead = []
        for server, service_s in ((fast, 0.010), (slow, 0.020)):
            client = load_endpoint(SimpleNamespace(options={"base_url": server.base_url, "model": "m"}), tmp_path)
            overhead.append(_overhead_s(lambda c=client: c.predict(["warm"]), service_s))
        served_before = fast.served + slow.served
        outcome = llmguard_ops.run(_capacity_suite(tmp_path, fast.base_url, slow.base_url), tmp_path / "out")
        served = fast.served + slow.served - served_before
    result = outcome.report.checks[0]
    assert result.status is Status.PASS, (result.error, result.details.get("curve"))
    _assert_matches_model(result, 0.010, 0.020, SLO_S, (overhead[0], overhead[1]))
    assert served == sum(r["requests"] for r in result.details["curve"]) + 2 * 4 + 2  # + warm-up calls
    qps = result.metrics["max_qps_at_slo"]
    cost = result.metrics["cost_per_1k_requests"]
    assert cost.value == pytest.approx(3.6 / (3.6 * qps.value))  # price per hour / requests per hour × 1000
    assert "peak_memory_mb" not in result.metrics  # a remote endpoint's memory is not ours to measure
    assert (tmp_path / "out" / result.artifacts["curve"]).stat().st_size > 1000  # the curve, as a PNG


@pytest.mark.slow
def test_local_models_capacity_and_shipped_example(tmp_path: Path) -> None:
    sleepy = runpy.run_path(str(DATA / "sleepy.py"))
    row = pd.read_csv(DATA / "features.csv")[["f1", "f2", "f3", "f4"]].iloc[:1]
    overhead = tuple(_overhead_s(lambda m=sleepy["make"](ms): m.predict(row), ms / 1000) for ms in (10.0, 20.0))
    outcome = llmguard_ops.run(DATA / "capacity.yaml", tmp_path)
    assert outcome.report.decision.decision is Decision.PROMOTE
    result = outcome.report.checks[0]
    _assert_matches_model(result, 0.010, 0.020, 0.050, (overhead[0], overhead[1]))  # the suite: 10, 20 ms; 50 ms
    qps = result.metrics["max_qps_at_slo"]
    assert qps.lower == qps.value and qps.upper is not None and qps.upper > qps.value  # the search bracket
    assert result.metrics["peak_memory_mb"].value > 0
    assert "report.html" in {p.name for p in tmp_path.iterdir()}


def _fake(threshold: float) -> Any:
    calls: list[float] = []

    def measure(rate: float) -> Step:
        calls.append(rate)
        return Step(rate, 100, rate / threshold, rate / threshold, rate, 0.0, rate <= threshold)

    return measure, calls


def test_search_brackets_the_threshold() -> None:
    measure, calls = _fake(137.0)
    found = search_rate(measure, 10, 1000, 0.05, 20)
    assert calls[:5] == [10, 20, 40, 80, 160]  # the doubling ladder, then bisection
    assert found.passing is not None and found.failing is not None
    assert found.passing.qps <= 137.0 < found.failing.qps <= found.passing.qps * 1.05
    measure, calls = _fake(5.0)
    assert search_rate(measure, 10, 1000, 0.05, 20).capacity == 0.0 and calls == [10]
    measure, calls = _fake(1e9)
    top = search_rate(measure, 10, 100, 0.05, 20)
    assert top.capacity == 100 and top.failing is None and calls == [10, 20, 40, 80, 100]
    measure, calls = _fake(137.0)
    assert len(search_rate(measure, 10, 1000, 0.001, 7).steps) == 7  # max_steps holds


def test_too_few_requests_per_step_is_an_error_that_says_why(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(f"""\
apiVersion: llmguard/v1
name: short
models:
  m: {{loader: python, path: "{DATA / "sleepy.py"}:make"}}
datasets:
  current: {{path: {DATA / "features.csv"}, features: [f1, f2, f3, f4]}}
checks:
  - id: cap
    uses: latency.capacity
    with: {{model: m, percentile: p99_ms, slo_ms: 10, requests_per_step: 100}}
""")
    outcome = llmguard_ops.run(suite, tmp_path / "out", write=False)
    result = outcome.report.checks[0]
    assert result.status is Status.ERROR and outcome.report.decision.decision is Decision.BLOCK
    assert result.error is not None and "requests_per_step 100" in result.error.message
    assert "555" in result.error.message  # what a 97.5 % bound on p99 needs (stats.min_samples)
