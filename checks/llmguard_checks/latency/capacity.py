"""latency.capacity: the highest Poisson arrival rate at which a latency percentile meets its SLO.

Each rate tried is one open-loop run (``scenarios.open_loop``: Poisson arrivals, latency
from the *scheduled* send, so queueing counts). A rate **passes** when the
order-statistic upper bound of the percentile (``stats.percentile_bound`` at the check's
confidence) is at most ``slo_ms`` — the point estimate is not enough — and a step with
too few samples for that bound is an error, not a pass (the rule of the other latency
checks). The search doubles the rate from ``min_qps`` until a rate fails or ``max_qps``
passes, then bisects between the highest passing and the lowest failing rate until they
are within ``resolution`` of each other or ``max_steps`` rates were measured.

``max_qps_at_slo`` is the highest passing rate; its interval is the search bracket
[highest passing, lowest failing]. Latency grows with the rate, so the capacity lies in
the bracket, up to the noise of the measurements at its two ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llmguard_ops import CheckContext, CheckOutput

from .inference import Requests, _in_inference_mode
from .metrics import TooFewSamples
from .params import CapacityParams
from .scenarios import open_loop, poisson_schedule
from .stats import PERCENTILES, min_samples, one_sided, percentile_bound, too_few_message
from .timing import Device, PeakMemory, resolve_device, torch_settings

BRACKET = "search bracket [highest passing rate, lowest failing rate], each step decided at the confidence level"


@dataclass
class Step:
    """One measured rate."""

    qps: float
    n: int
    value_ms: float
    upper_ms: float
    achieved_qps: float
    queue_wait_p50_ms: float
    passed: bool

    def row(self, model: str) -> dict[str, Any]:
        return {
            "model": model,
            "offered_qps": self.qps,
            "achieved_qps": self.achieved_qps,
            "requests": self.n,
            "percentile_ms": self.value_ms,
            "upper_bound_ms": self.upper_ms,
            "queue_wait_p50_ms": self.queue_wait_p50_ms,
            "meets_slo": self.passed,
        }


@dataclass
class Search:
    """The steps of one model's search and what they bracket."""

    steps: list[Step]
    passing: Step | None
    failing: Step | None

    @property
    def capacity(self) -> float:
        return self.passing.qps if self.passing is not None else 0.0


def search_rate(
    measure: Callable[[float], Step], min_qps: float, max_qps: float, resolution: float, max_steps: int
) -> Search:
    """Doubling ladder from ``min_qps``, then bisection (see the module docstring)."""
    steps: list[Step] = []
    passing: Step | None = None
    failing: Step | None = None
    rate = min_qps
    while len(steps) < max_steps:
        step = measure(rate)
        steps.append(step)
        if not step.passed:
            failing = step
            break
        passing = step
        if rate >= max_qps:
            break
        rate = min(rate * 2.0, max_qps)
    while (
        passing is not None
        and failing is not None
        and len(steps) < max_steps
        and failing.qps > passing.qps * (1.0 + resolution)
    ):
        step = measure((passing.qps + failing.qps) / 2.0)
        steps.append(step)
        if step.passed:
            passing = step
        else:
            failing = step
    return Search(steps, passing, failing)


class GpuSampler:
    """Accelerator utilisation and memory in use, polled through NVML while the search runs.

    Only on CUDA and only when ``pynvml`` imports; otherwise it records why it did nothing.
    """

    def __init__(self, device: Device, interval_s: float = 0.05) -> None:
        self.device = device
        self.interval_s = interval_s
        self.utilisation: list[float] = []
        self.memory_mb: list[float] = []
        self.note = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        if self.device.kind != "cuda":
            self.note = "not a CUDA device"
            return self
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.device.index or 0)
        except Exception as exc:  # NVML is optional
            self.note = f"NVML unavailable ({type(exc).__name__})"
            return self

        def poll() -> None:
            while not self._stop.is_set():
                try:
                    self.utilisation.append(float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))
                    self.memory_mb.append(float(pynvml.nvmlDeviceGetMemoryInfo(handle).used) / 2**20)
                except Exception as exc:
                    self.note = f"NVML read failed ({type(exc).__name__})"
                    return
                self._stop.wait(self.interval_s)

        self.note = f"pynvml, every {self.interval_s * 1000:g} ms"
        self._thread = threading.Thread(target=poll, name="llmguard-nvml", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            try:
                import pynvml

                pynvml.nvmlShutdown()
            except Exception:
                pass


def _search_model(
    ctx: CheckContext, params: CapacityParams, name: str, level: float, seed_offset: int
) -> tuple[Search, dict[str, Any]]:
    obj = ctx.model(name).obj
    device = resolve_device(params.device if name == params.model else "auto", obj)
    req = Requests(
        obj, params.method, ctx.inputs(name, params.dataset), params.batch_size, params.requests_per_step, device
    )
    pct = PERCENTILES[params.percentile]
    rng = np.random.default_rng(ctx.seed + seed_offset)
    facts: dict[str, Any] = {"device": device.name}

    def measure(rate: float) -> Step:
        schedule = poisson_schedule(rate, params.requests_per_step, params.step_duration_s, rng)
        samples = open_loop(call, req.payloads, req.sizes, schedule, params.concurrency, sync, params.timeout_s)
        ms = samples.latency_ms
        bound = percentile_bound(ms, pct, level)
        if not bound.enough or bound.upper is None:
            raise TooFewSamples(
                f"{name} at {rate:.4g} requests/s: {too_few_message(params.percentile, bound)} "
                f"(raise requests_per_step or step_duration_s)"
            )
        achieved = len(ms) / (samples.wall_ns / 1e9) if samples.wall_ns > 0 else 0.0
        wait = samples.send_lag_ns / 1e6 if samples.send_lag_ns is not None else np.zeros(1)
        return Step(
            rate,
            len(ms),
            bound.value,
            bound.upper,
            achieved,
            float(np.percentile(wait, 50)),
            bound.upper <= params.slo_ms,
        )

    with torch_settings(params.threads) as torch_facts, PeakMemory(device) as memory, GpuSampler(device) as gpu:
        facts["warmup_calls"] = req.warm_up(params.warmup, True)
        sync = device.sync()
        call = _in_inference_mode(req.call)
        result = search_rate(measure, params.min_qps, params.max_qps, params.resolution, params.max_steps)
        peak = memory.peak_mb()
    facts.update(torch_facts, memory_method=memory.method, nvml=gpu.note)
    if peak is not None:
        facts["peak_memory_mb"] = peak
    if gpu.utilisation:
        facts["gpu_utilization_mean_pct"] = float(np.mean(gpu.utilisation))
        facts["gpu_utilization_max_pct"] = float(np.max(gpu.utilisation))
        facts["gpu_memory_used_peak_mb"] = float(np.max(gpu.memory_mb))
    return result, facts


def _add_capacity(out: CheckOutput, prefix: str, search: Search, params: CapacityParams, level: float) -> None:
    name = f"{prefix}max_qps_at_slo"
    if search.failing is not None:
        out.add(
            name,
            search.capacity,
            lower=search.capacity,
            upper=search.failing.qps,
            interval_method=BRACKET,
            confidence=level,  # each end of the bracket was decided at this level
            n=len(search.steps),
            unit="requests/s",
        )
    else:
        out.add(name, search.capacity, n=len(search.steps), unit="requests/s")
    if search.passing is not None and not prefix:
        p = search.passing
        out.add("percentile_at_capacity_ms", p.value_ms, lower=None, upper=None, n=p.n, unit="ms")
        out.add("throughput_at_capacity_per_s", p.achieved_qps, n=p.n, unit="requests/s")


def run_capacity(ctx: CheckContext, params: CapacityParams) -> CheckOutput:
    """Search the candidate's (and the baseline's) capacity under the SLO."""
    level = ctx.confidence("max_qps_at_slo")
    q = PERCENTILES[params.percentile] / 100.0
    needed = min_samples(q, one_sided(level))
    if params.requests_per_step < needed:
        raise TooFewSamples(
            f"requests_per_step {params.requests_per_step} is under the {needed} a "
            f"{one_sided(level):.1%} upper bound on {params.percentile} needs; raise it"
        )
    out = CheckOutput()
    cand, facts = _search_model(ctx, params, params.model, level, 0)
    _add_capacity(out, "", cand, params, level)
    if cand.passing is None:
        out.warnings.append(f"the SLO is missed already at min_qps ({params.min_qps:g} requests/s)")
    elif cand.failing is None:
        reason = "max_qps" if cand.passing.qps >= params.max_qps else "max_steps"
        out.warnings.append(
            f"the SLO still held at {cand.passing.qps:g} requests/s when the search stopped "
            f"({reason}): the capacity is at least that"
        )
    if "peak_memory_mb" in facts:
        out.add("peak_memory_mb", facts["peak_memory_mb"], unit="MiB")
    for key in ("gpu_utilization_mean_pct", "gpu_memory_used_peak_mb"):
        if key in facts:
            out.add(key, facts[key], unit="%" if key.endswith("pct") else "MiB")
    if params.price_per_instance_hour is not None:
        if cand.capacity > 0:
            price = params.price_per_instance_hour
            cost = price / (3.6 * cand.capacity)  # price per hour / (requests per hour) × 1000
            low = price / (3.6 * cand.failing.qps) if cand.failing is not None else None
            out.add(
                "cost_per_1k_requests",
                cost,
                lower=low,
                upper=cost if low is not None else None,
                interval_method=BRACKET if low is not None else None,
                confidence=level if low is not None else None,
                unit="currency/1k requests",
            )
        else:
            out.warnings.append("cost_per_1k_requests: no rate met the SLO")
    curve = [s.row(params.model) for s in cand.steps]
    out.details.update(
        model=params.model,
        dataset=params.dataset,
        percentile=params.percentile,
        slo_ms=params.slo_ms,
        confidence=level,
        rule=f"a rate passes when the {one_sided(level):.1%} order-statistic upper bound of "
        f"{params.percentile} is ≤ slo_ms",
        concurrency=params.concurrency,
        requests_per_step=params.requests_per_step,
        latency_from="scheduled arrival (open loop, Poisson)",
        facts=facts,
    )
    if params.baseline is not None:
        base, base_facts = _search_model(ctx, params, params.baseline, level, 1)
        _add_capacity(out, "baseline_", base, params, level)
        curve += [s.row(params.baseline) for s in base.steps]
        out.details["baseline_facts"] = base_facts
        if base.capacity > 0:
            ratio = cand.capacity / base.capacity
            hi = (cand.failing.qps / base.capacity) if cand.failing is not None else None
            lo = (cand.capacity / base.failing.qps) if base.failing is not None else None
            if lo is not None and hi is not None:
                out.add(
                    "max_qps_at_slo_ratio",
                    ratio,
                    lower=min(lo, ratio),
                    upper=max(hi, ratio),
                    interval_method="ratio of the two search brackets",
                    confidence=level,
                )
            else:
                out.add("max_qps_at_slo_ratio", ratio)
        else:
            out.warnings.append("max_qps_at_slo_ratio: the baseline met the SLO at no rate tried")
    out.details["curve"] = curve
    path = _plot(ctx.artifact_dir / "capacity_curve.png", curve, params)
    if path is not None:
        out.artifacts["curve"] = str(path)
    return out


def _plot(path: Path, curve: list[dict[str, Any]], params: CapacityParams) -> Path | None:
    """Percentile (with its upper bound) against the offered rate, one line per model."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    for model in dict.fromkeys(r["model"] for r in curve):
        rows = sorted((r for r in curve if r["model"] == model), key=lambda r: r["offered_qps"])
        x = [r["offered_qps"] for r in rows]
        y = [r["percentile_ms"] for r in rows]
        err = [[0.0] * len(rows), [r["upper_bound_ms"] - r["percentile_ms"] for r in rows]]
        ax.errorbar(x, y, yerr=err, fmt="o-", capsize=3, label=model)
    ax.axhline(params.slo_ms, color="tab:red", linestyle="--", linewidth=1, label=f"SLO {params.slo_ms:g} ms")
    ax.set_xlabel("offered rate (requests/s, Poisson)")
    ax.set_ylabel(f"{params.percentile} (ms), bar to upper bound")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
