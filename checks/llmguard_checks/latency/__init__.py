"""Latency checks: ``latency.inference``, ``latency.generation``, ``latency.capacity``; the ``http`` loader.

Registered through the ``llmguard`` entry point ``latency``. Importing this package
imports neither torch nor transformers: the check modules are loaded when a check runs.
See ``docs/latency.md`` for parameters, metrics and the statistics.
"""

from __future__ import annotations

from collections.abc import Callable

from llmguard_ops import CheckDefinition, MetricSpec, ModelLoader, Resources, hookimpl

from .._lazy import lazy_function
from .params import CapacityParams, GenerationLatencyParams, InferenceParams

#: a latency check times: an executor that places checks gives it a machine of its own
TIMING = Resources(exclusive=True)

_PCT = ("p50_ms", "p90_ms", "p95_ms", "p99_ms")


def _latency_specs() -> tuple[MetricSpec, ...]:
    specs = [
        MetricSpec(n, f"{n[1:3]}th percentile of per-request latency (order-statistic interval)", False, "ms")
        for n in _PCT
    ]
    specs += [
        MetricSpec("max_ms", "slowest timed request (no confidence bound)", False, "ms"),
        MetricSpec("mean_ms", "mean per-request latency (bootstrap interval)", False, "ms"),
        MetricSpec("throughput_per_s", "rows (or prompts) processed per second of wall time", True, "items/s"),
        MetricSpec("peak_memory_mb", "peak RSS (cpu) or peak CUDA allocation (cuda) while timing", False, "MiB"),
    ]
    for stat in (*_PCT, "mean_ms"):
        specs.append(
            MetricSpec(f"{stat}_delta", f"candidate − baseline {stat}, interleaved (paired interval)", False, "ms")
        )
        specs.append(MetricSpec(f"{stat}_ratio", f"candidate / baseline {stat}, interleaved (paired interval)", False))
    specs.append(MetricSpec("batch_*.*", "batch-size sweep: the metrics above at batch size <b>", None))
    return tuple(specs)


def _generation_specs() -> tuple[MetricSpec, ...]:
    specs = []
    for what, text in (
        ("ttft", "time to first token"),
        ("tpot", "time per output token after the first"),
        ("e2e", "request latency to the last token"),
    ):
        for p in ("p50", "p90", "p95", "p99"):
            specs.append(MetricSpec(f"{what}_{p}_ms", f"{p[1:]}th percentile of {text}", False, "ms"))
        specs.append(MetricSpec(f"{what}_mean_ms", f"mean {text} (bootstrap interval)", False, "ms"))
    specs.append(MetricSpec("tokens_per_s", "output tokens per second of wall time, all requests", True, "tokens/s"))
    specs.append(MetricSpec("output_tokens_mean", "mean output tokens per request", None, "tokens"))
    specs.append(
        MetricSpec(
            "error_rate",
            "http endpoints: attempts that met a 429/5xx answer or a connection "
            "error (each retried with backoff) / attempts sent while timing",
            False,
        )
    )
    for what in ("ttft", "tpot"):
        for p in ("p50", "p95"):
            specs.append(
                MetricSpec(
                    f"{what}_{p}_ms_delta",
                    f"candidate − baseline {what} {p}, interleaved (paired bootstrap interval)",
                    False,
                    "ms",
                )
            )
            specs.append(
                MetricSpec(
                    f"{what}_{p}_ms_ratio",
                    f"candidate / baseline {what} {p}, interleaved (paired bootstrap interval)",
                    False,
                )
            )
    return tuple(specs)


def _capacity_specs() -> tuple[MetricSpec, ...]:
    return (
        MetricSpec(
            "max_qps_at_slo",
            "highest Poisson arrival rate whose percentile upper bound meets the SLO (interval: the search bracket)",
            True,
            "requests/s",
        ),
        MetricSpec("baseline_max_qps_at_slo", "the same for the baseline", True, "requests/s"),
        MetricSpec("max_qps_at_slo_ratio", "candidate / baseline max_qps_at_slo", True),
        MetricSpec("percentile_at_capacity_ms", "the gated percentile at max_qps_at_slo (point estimate)", False, "ms"),
        MetricSpec(
            "throughput_at_capacity_per_s", "completed requests per second at max_qps_at_slo", True, "requests/s"
        ),
        MetricSpec("peak_memory_mb", "peak RSS (cpu) or peak CUDA allocation (cuda) during the search", False, "MiB"),
        MetricSpec("gpu_utilization_mean_pct", "mean accelerator utilisation during the search (NVML)", None, "%"),
        MetricSpec("gpu_memory_used_peak_mb", "peak accelerator memory in use during the search (NVML)", False, "MiB"),
        MetricSpec("cost_per_1k_requests", "price_per_instance_hour / (3.6 × max_qps_at_slo)", False),
    )


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    register(
        CheckDefinition(
            name="latency.inference",
            resources=TIMING,
            run=lazy_function(f"{__name__}.inference", "run_inference"),
            params=InferenceParams,
            metrics=_latency_specs(),
            summary="Per-request latency percentiles with order-statistic bounds; single_stream, server, offline.",
        )
    )
    register(
        CheckDefinition(
            name="latency.generation",
            resources=TIMING,
            run=lazy_function(f"{__name__}.generation", "run_generation"),
            params=GenerationLatencyParams,
            metrics=_generation_specs(),
            summary="TTFT, TPOT and tokens/s of streamed generation (local causal LM or HTTP endpoint).",
        )
    )
    register(
        CheckDefinition(
            name="latency.capacity",
            resources=TIMING,
            run=lazy_function(f"{__name__}.capacity", "run_capacity"),
            params=CapacityParams,
            metrics=_capacity_specs(),
            summary=(
                "Highest Poisson arrival rate meeting a latency-percentile SLO; curve, memory, cost per 1k requests."
            ),
        )
    )


@hookimpl
def llmguard_register_model_loaders(register: Callable[[ModelLoader], None]) -> None:
    from .endpoint import digest_endpoint, load_endpoint

    register(
        ModelLoader(
            "http",
            load_endpoint,
            "An OpenAI-compatible HTTP endpoint (completions or chat, streaming).",
            digest=digest_endpoint,
            needs_path=False,
        )
    )
