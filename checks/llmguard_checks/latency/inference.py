"""latency.inference: per-request latency of a model on a suite dataset's inputs.

The model object is called directly (``ctx.model(name).obj``), never through the run's
prediction cache, which would time a dictionary lookup. Requests are the dataset's
inputs cut into batches of ``batch_size`` before the clock starts; every distinct input
shape is warmed up first (allocators, kernels and lazy initialisation cost on first
sight of a shape).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from llmguard_ops import CheckContext, CheckOutput

from .metrics import TooFewSamples, add_deltas, add_percentiles, write_samples
from .params import InferenceParams
from .scenarios import (
    Samples,
    closed_loop,
    interleaved,
    open_loop,
    poisson_schedule,
    timer_overhead_ns,
)
from .timing import Device, PeakMemory, resolve_device, torch_settings


class Requests:
    """A model's callable and the payloads it is timed on, prepared before timing."""

    def __init__(self, obj: Any, method: str, inputs: Any, batch_size: int, limit: int, device: Device) -> None:
        torch = sys.modules.get("torch")
        self.is_module = torch is not None and isinstance(obj, torch.nn.Module)
        if self.is_module:
            assert torch is not None
            array = np.asarray(inputs.to_numpy() if hasattr(inputs, "to_numpy") else inputs, dtype=np.float32)
            inputs = torch.as_tensor(array).to(device.name if device.kind == "cuda" else "cpu")
            self.call: Callable[[Any], Any] = obj
        else:
            fn = getattr(obj, method, None)
            if fn is None or not callable(fn):
                raise ValueError(f"the model object ({type(obj).__name__}) has no method '{method}'")
            self.call = fn
        total = len(inputs)
        if total == 0:
            raise ValueError("the dataset has no rows to send")
        count = min(math.ceil(total / batch_size), limit)
        self.payloads: list[Any] = [_slice(inputs, i * batch_size, batch_size) for i in range(count)]
        self.sizes = [len(p) for p in self.payloads]
        self._tokenizer = getattr(obj, "tokenizer", None)

    def shape(self, payload: Any) -> tuple[int, ...]:
        if hasattr(payload, "shape"):
            return tuple(int(d) for d in payload.shape)
        if self._tokenizer is not None:  # text: the padded token length decides the shape
            lengths = [len(self._tokenizer(t)["input_ids"]) for t in payload]
            return (len(payload), max(lengths))
        return (len(payload),)

    def warm_up(self, extra: int, every_shape: bool) -> int:
        """Call once per distinct shape, then ``extra`` more times; returns the calls made."""
        calls = 0
        if every_shape:
            seen: set[tuple[int, ...]] = set()
            for payload in self.payloads:
                key = self.shape(payload)
                if key not in seen:
                    seen.add(key)
                    self.call(payload)
                    calls += 1
        for i in range(extra):
            self.call(self.payloads[i % len(self.payloads)])
            calls += 1
        return calls


def _slice(inputs: Any, start: int, size: int) -> Any:
    if hasattr(inputs, "iloc"):
        return inputs.iloc[start : start + size]
    return inputs[start : start + size]


def _in_inference_mode(call: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap a call so worker threads run it under ``torch.inference_mode`` (thread-local)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return call

    def wrapped(payload: Any) -> Any:
        with torch.inference_mode():
            return call(payload)

    return wrapped


def _measure(
    ctx: CheckContext, params: InferenceParams, batch: int, device: Device
) -> tuple[Samples, Samples | None, dict[str, Any]]:
    obj = ctx.model(params.model).obj
    inputs = ctx.inputs(params.model, params.dataset)
    req = Requests(obj, params.method, inputs, batch, params.requests, device)
    base_req = None
    if params.baseline is not None:
        base_obj = ctx.model(params.baseline).obj
        base_device = resolve_device("auto", base_obj)
        base_req = Requests(
            base_obj, params.method, ctx.inputs(params.baseline, params.dataset), batch, params.requests, base_device
        )
    info: dict[str, Any] = {"batch_size": batch, "distinct_requests": len(req.payloads)}
    with torch_settings(params.threads) as torch_facts, PeakMemory(device) as memory:
        info["warmup_calls"] = req.warm_up(params.warmup, params.warmup_shapes)
        if base_req is not None:
            info["baseline_warmup_calls"] = base_req.warm_up(params.warmup, params.warmup_shapes)
        sync = device.sync()
        base: Samples | None = None
        if params.scenario == "server":
            assert params.target_qps is not None
            schedule = poisson_schedule(params.target_qps, params.requests, params.duration_s, ctx.rng())
            call = _in_inference_mode(req.call)
            samples = open_loop(call, req.payloads, req.sizes, schedule, params.concurrency, sync)
        elif base_req is not None:
            base_sync = resolve_device("auto", ctx.model(params.baseline or "").obj).sync()
            samples, base = interleaved(
                req.call,
                base_req.call,
                req.payloads,
                base_req.payloads,
                req.sizes,
                params.requests,
                params.duration_s,
                ctx.rng(),
                sync,
                base_sync,
            )
        else:
            samples = closed_loop(req.call, req.payloads, req.sizes, params.requests, params.duration_s, sync)
        peak = memory.peak_mb()
    info.update(torch_facts)
    info["memory_method"] = memory.method
    if peak is not None:
        info["peak_memory_mb"] = peak
    return samples, base, info


def _stop_reason(samples: Samples, params: InferenceParams) -> str:
    n = len(samples.latency_ns)
    return "requests" if n >= params.requests else "duration_s"


def run_inference(ctx: CheckContext, params: InferenceParams) -> CheckOutput:
    """Time ``params.model`` on the dataset's requests in the chosen scenario."""
    obj = ctx.model(params.model).obj
    device = resolve_device(params.device, obj)
    out = CheckOutput()
    batch = params.effective_batch()
    samples, base, info = _measure(ctx, params, batch, device)
    latency_ms = samples.latency_ms
    try:
        add_percentiles(out, ctx, latency_ms)
    except TooFewSamples as exc:
        raise TooFewSamples(
            f"{exc} [{len(latency_ms)} requests in {samples.wall_ns / 1e9:.3g} s, stopped by "
            f"{_stop_reason(samples, params)}]"
        ) from None
    out.add("throughput_per_s", samples.throughput_per_s, n=len(latency_ms), unit="items/s")
    if "peak_memory_mb" in info:
        out.add("peak_memory_mb", info.pop("peak_memory_mb"), unit="MiB")
    columns = {"latency_ms": latency_ms}
    if base is not None:
        add_deltas(out, ctx, latency_ms, base.latency_ms)
        columns["baseline_latency_ms"] = base.latency_ms
        out.details["baseline"] = {
            "model": params.baseline,
            "p50_ms": float(np.percentile(base.latency_ms, 50)),
            "p95_ms": float(np.percentile(base.latency_ms, 95)),
            "mean_ms": float(base.latency_ms.mean()),
        }
    out.details.update(
        scenario=params.scenario,
        model=params.model,
        dataset=params.dataset,
        requests=len(latency_ms),
        stopped_by=_stop_reason(samples, params),
        wall_s=samples.wall_ns / 1e9,
        device=device.name,
        device_facts=device.facts,
        timer="time.perf_counter_ns" + (", torch.cuda.synchronize before each read" if device.kind == "cuda" else ""),
        timer_overhead_ns=timer_overhead_ns(2000),
        percentile_method="numpy linear interpolation",
        **info,
    )
    if samples.send_lag_ns is not None:
        assert params.target_qps is not None
        lag_ms = samples.send_lag_ns / 1e6
        out.details.update(
            target_qps=params.target_qps,
            concurrency=params.concurrency,
            latency_from="scheduled arrival (open loop)",
            queue_wait_p50_ms=float(np.percentile(lag_ms, 50)),
            queue_wait_p99_ms=float(np.percentile(lag_ms, 99)),
        )
        achieved = len(latency_ms) / (samples.wall_ns / 1e9)
        out.details["achieved_qps"] = achieved
        if achieved < 0.9 * params.target_qps:
            out.warnings.append(
                f"offered {params.target_qps:g} requests/s but completed {achieved:.3g}/s: the "
                "system is saturated and the latencies include a growing queue"
            )
        columns["queue_wait_ms"] = lag_ms
    if params.batch_sizes:
        out.details["sweep"] = _sweep(ctx, params, device, out)
    out.artifacts["samples"] = str(write_samples(ctx, "latency_samples.csv", columns))
    return out


def _sweep(ctx: CheckContext, params: InferenceParams, device: Device, out: CheckOutput) -> list[dict[str, Any]]:
    """Measure every batch size of the sweep; metrics ``batch_<b>.<metric>``."""
    rows = []
    sweep_params = params.model_copy(update={"baseline": None})
    for b in _unique(params.batch_sizes or []):
        samples, _, info = _measure(ctx, sweep_params, b, device)
        prefix = f"batch_{b}."
        add_percentiles(out, ctx, samples.latency_ms, prefix=prefix)
        out.add(prefix + "throughput_per_s", samples.throughput_per_s, n=len(samples.latency_ns), unit="items/s")
        row = {
            "batch_size": b,
            "requests": len(samples.latency_ns),
            "p50_ms": out.metrics[prefix + "p50_ms"].value,
            "p95_ms": out.metrics[prefix + "p95_ms"].value,
            "throughput_per_s": samples.throughput_per_s,
        }
        if "peak_memory_mb" in info:
            row["peak_memory_mb"] = info["peak_memory_mb"]
        rows.append(row)
    return rows


def _unique(values: Sequence[int]) -> list[int]:
    return list(dict.fromkeys(values))
