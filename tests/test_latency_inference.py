"""latency.inference end to end: suite file in, decision, report and samples out.

Timing-dependent facts are asserted only where they cannot fail by chance: a model that
sleeps 30 ms can never answer faster than 30 ms, whatever the load on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import llmguard_ops
from llmguard_ops import Decision, Status

os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "latency"


def _run(suite: Path, out: Path, **kw: Any) -> llmguard_ops.RunOutcome:
    return llmguard_ops.run(suite, out, **kw)


def _check(outcome: llmguard_ops.RunOutcome, check_id: str) -> llmguard_ops.CheckResult:
    return next(c for c in outcome.report.checks if c.id == check_id)


def test_slowed_model_is_blocked_on_its_p95_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llmguard_ops.cli import main

    code = main(["run", str(DATA / "slow_model.yaml"), "--out", str(tmp_path)])
    assert code == 1, capsys.readouterr()  # BLOCK
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["decision"]["decision"] == "BLOCK"
    slow = next(c for c in report["checks"] if c["id"] == "slow-p95")
    assert slow["status"] == "fail"
    p95 = slow["metrics"]["p95_ms"]
    # a 30 ms sleep bounds every sample from below: the lower bound itself is over the gate
    assert p95["lower"] >= 30.0 and p95["upper"] >= p95["value"] >= 30.0
    assert p95["confidence"] == 0.95 and "order-statistic" in p95["interval_method"]
    assert slow["gates"][0]["tested_high"] == p95["upper"]
    assert any("slow-p95" in r and "upper 95% bound" in r for r in report["decision"]["reasons"])
    fast = next(c for c in report["checks"] if c["id"] == "fast-p95")
    assert fast["metrics"]["p95_ms"]["upper"] < p95["lower"]
    assert slow["details"]["requests"] == 120 and slow["details"]["stopped_by"] == "requests"
    assert slow["details"]["warmup_calls"] >= 5
    samples = (tmp_path / "artifacts" / "slow-p95" / "latency_samples.csv").read_text().splitlines()
    assert samples[0] == "latency_ms" and len(samples) == 121


def test_too_short_run_for_p99_is_an_error_that_says_why(tmp_path: Path) -> None:
    outcome = _run(DATA / "too_short.yaml", tmp_path)
    result = _check(outcome, "p99-short")
    assert result.status is Status.ERROR
    assert outcome.report.decision.decision is Decision.BLOCK
    assert result.error is not None
    message = result.error.message
    assert "p99_ms: 50 samples are too few" in message
    assert "at least 555" in message  # one-sided 97.5 % for a 95 % interval
    assert "requests" in message


def test_count_or_duration_whichever_first(tmp_path: Path) -> None:
    outcome = _run(
        DATA / "slow_model.yaml",
        tmp_path,
        overrides=["checks.slow-p95.with.duration_s=0.2"],
        only=["slow-p95"],
        write=False,
    )
    result = _check(outcome, "slow-p95")
    # a 30 ms model stops by the 0.2 s limit long before 120 requests, with too few samples for
    # the gated p95: the gate is refused (ERROR), not passed
    assert result.status is Status.ERROR and result.error is not None
    assert "too few" in result.error.message and "stopped by duration_s" in result.error.message


def test_canary_interleaved_delta_and_ratio(tmp_path: Path) -> None:
    outcome = _run(DATA / "canary.yaml", tmp_path, write=False)
    result = _check(outcome, "latency-vs-champion")
    assert result.status is Status.PASS, result.gates
    delta = result.metrics["p95_ms_delta"]
    # candidate sleeps 2 ms, baseline 6 ms: the sleep floors make the sign certain
    assert delta.value < 0 and delta.upper is not None and delta.upper < 0
    assert delta.confidence == 0.95 and "paired bootstrap" in (delta.interval_method or "")
    ratio = result.metrics["p50_ms_ratio"]
    assert ratio.upper is not None and ratio.upper < 1.0
    for name in ("p50_ms_delta", "p90_ms_delta", "mean_ms_delta", "mean_ms_ratio"):
        assert name in result.metrics
    assert result.details["baseline"]["model"] == "baseline"
    assert result.metrics["p50_ms"].n == result.details["requests"] == 150


def test_open_loop_counts_queueing_from_the_scheduled_arrival(tmp_path: Path) -> None:
    outcome = _run(DATA / "server.yaml", tmp_path, write=False)
    light, overload = _check(outcome, "light-load"), _check(outcome, "overload")
    assert light.status is Status.PASS and overload.status is Status.PASS
    assert light.details["latency_from"] == "scheduled arrival (open loop)"
    # 400 requests/s offered to one worker that needs >= 8 ms each: at most 125/s get served,
    # so requests queue and their latency (from the scheduled arrival) far exceeds the service time
    assert overload.details["achieved_qps"] < 130
    assert overload.metrics["p90_ms"].value > 5 * 8.0
    assert overload.details["queue_wait_p99_ms"] > 40
    assert any("saturated" in w for w in overload.warnings)
    assert all(v >= 8.0 for v in (light.metrics["p50_ms"].value, overload.metrics["p50_ms"].value))


def test_torch_module_sweep_and_offline(tmp_path: Path) -> None:
    outcome = _run(DATA / "sweep.yaml", tmp_path, write=False)
    sweep, offline = _check(outcome, "mlp-latency"), _check(outcome, "mlp-offline")
    assert sweep.status is not Status.ERROR, sweep.error
    assert sweep.details["torch_threads"] == 1 and "torch" in sweep.details
    assert [row["batch_size"] for row in sweep.details["sweep"]] == [1, 8, 32]
    for b in (1, 8, 32):
        assert f"batch_{b}.p95_ms" in sweep.metrics and f"batch_{b}.throughput_per_s" in sweep.metrics
    assert sweep.metrics["peak_memory_mb"].value > 10
    assert offline.status is not Status.ERROR, offline.error
    assert offline.details["batch_size"] == 64 and offline.details["scenario"] == "offline"
    # 240 rows in batches of 64: every shape (64 and the last 48) warmed up
    assert offline.details["warmup_calls"] >= 2 + 10


def test_max_with_confidence_is_refused(tmp_path: Path) -> None:
    outcome = _run(
        DATA / "too_short.yaml",
        tmp_path,
        write=False,
        overrides=['checks.p99-short.gate={"max_ms": {"max": 100, "confidence": 0.95}}'],
    )
    result = _check(outcome, "p99-short")
    assert result.status is Status.ERROR
    assert "no distribution-free confidence bound" in (result.error.message if result.error else "")


def test_cuda_asked_without_cuda_is_a_skip(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the skip path is for machines without it")
    outcome = _run(
        DATA / "sweep.yaml",
        tmp_path,
        write=False,
        only=["mlp-latency"],
        overrides=["checks.mlp-latency.with.device=cuda"],
    )
    result = _check(outcome, "mlp-latency")
    assert result.status is Status.SKIP
    assert "CUDA is not available" in (result.error.message if result.error else "")


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.cuda
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device (none on this machine)")
def test_cuda_model_is_synchronised_and_reports_gpu_memory(tmp_path: Path) -> None:
    (tmp_path / "cuda_model.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(DATA)!r})\n"
        "from sleepy import make_mlp\n"
        "def make():\n    return make_mlp().to('cuda')\n"
    )
    suite = tmp_path / "suite.yaml"
    text = (DATA / "sweep.yaml").read_text().replace('"sleepy.py:make_mlp"', f'"{tmp_path}/cuda_model.py:make"')
    suite.write_text(text.replace("features.csv", str(DATA / "features.csv")).replace("device: cpu", "device: cuda"))
    outcome = _run(suite, tmp_path / "out", write=False, only=["mlp-latency"])
    result = _check(outcome, "mlp-latency")
    assert result.status is not Status.ERROR, result.error
    assert result.details["device"].startswith("cuda")
    assert "synchronize" in result.details["timer"]
    assert result.details["device_facts"]["gpu_name"]
    assert result.details["memory_method"] == "torch.cuda.max_memory_allocated"


def test_demo_suite_gates_its_candidate_p95(demo_dir: Path, tmp_path: Path) -> None:
    outcome = _run(demo_dir / "suite.yaml", tmp_path, only=["latency"], write=False)
    result = _check(outcome, "latency")
    assert result.uses == "latency.inference"
    assert [g.metric for g in result.gates] == ["p95_ms"] and result.gates[0].confidence == 0.95
    assert result.status is Status.PASS, result.gates
    assert result.metrics["p95_ms"].n == 150


def test_plugin_import_is_light() -> None:
    code = (
        "import sys, llmguard_checks.latency; "
        "print(','.join(m for m in ('torch', 'transformers', 'scipy', 'sklearn') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == ""
