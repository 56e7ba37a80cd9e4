"""latency.generation: time to first token, time per output token, tokens per second.

Definitions (per request, clocks ``time.perf_counter_ns``):

* **TTFT** = first output token − request start. The start is the send time in
  ``single_stream`` and the *scheduled* arrival in ``server`` (queueing counts).
* **TPOT** = (last token − first token) / (output tokens − 1), i.e. (e2e − TTFT) /
  (tokens − 1); requests with fewer than two output tokens have no TPOT. TPOT is a
  per-request mean; pooled inter-token gaps ("ITL" in some tools) are not reported.
* **e2e** = last token − request start.
* **tokens_per_s** = all output tokens / wall time of the timed run.

A local causal LM (loader ``transformers``) streams through transformers'
``TextIteratorStreamer`` with ``generate`` in a background thread, as its docs show;
the streamer also reads the clock at each token the model hands it (one ``put`` per
decoding step), so TTFT is not delayed by the streamer holding text back until a word
ends. An ``http`` endpoint streams server-sent events (see :mod:`.endpoint`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from llmguard_ops import CheckContext, CheckOutput

from .endpoint import StreamTiming
from .metrics import add_percentiles, write_samples
from .params import GenerationParams
from .scenarios import poisson_schedule
from .timing import PeakMemory, resolve_device, torch_settings

StreamFn = Callable[[str], StreamTiming]


def local_stream(model: Any, max_new_tokens: int, ignore_eos: bool, timeout_s: float) -> StreamFn:
    """A streaming call for a :class:`~llmguard_ops.adapters.TransformersModel` causal LM."""
    import torch
    from transformers import TextIteratorStreamer

    if getattr(model, "task", "causal-lm") != "causal-lm":
        raise ValueError("latency.generation needs a causal LM (options.task: causal-lm)")
    tokenizer, lm = model.tokenizer, model.model

    class TimedStreamer(TextIteratorStreamer):
        """TextIteratorStreamer that also records when each generated token arrives."""

        def __init__(self) -> None:
            super().__init__(tokenizer, skip_prompt=True, timeout=timeout_s, skip_special_tokens=True)
            self.token_times: list[int] = []
            self.tokens = 0

        def put(self, value: Any) -> None:
            if not (self.skip_prompt and self.next_tokens_are_prompt):
                self.token_times.append(time.perf_counter_ns())
                self.tokens += int(value.numel())
            super().put(value)

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def stream(prompt: str) -> StreamTiming:
        streamer = TimedStreamer()
        failure: list[BaseException] = []
        sent = time.perf_counter_ns()
        enc = tokenizer(prompt, return_tensors="pt").to(model.device)
        kwargs: dict[str, Any] = dict(**enc, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer,
                                      pad_token_id=pad)
        if ignore_eos:
            kwargs["min_new_tokens"] = max_new_tokens

        def produce() -> None:
            try:
                with torch.inference_mode():
                    lm.generate(**kwargs)
            except BaseException as exc:
                failure.append(exc)
                streamer.end()  # unblock the consumer

        worker = threading.Thread(target=produce, name="llmguard-generate", daemon=True)
        worker.start()
        try:
            text = "".join(streamer)
        except queue.Empty:
            raise TimeoutError(f"no token from the model within timeout_s={timeout_s:g}s") from None
        worker.join(timeout_s)
        if failure:
            raise failure[0]
        times = streamer.token_times
        return StreamTiming(sent_ns=sent, first_ns=times[0] if times else None,
                            last_ns=times[-1] if times else None, tokens=streamer.tokens, text=text,
                            token_times_ns=list(times))

    return stream


def _stream_fn(obj: Any, params: GenerationParams) -> StreamFn:
    if hasattr(obj, "stream_timed"):
        def remote(prompt: str) -> StreamTiming:
            timing: StreamTiming = obj.stream_timed(prompt, params.max_new_tokens, params.ignore_eos)
            return timing

        return remote
    if hasattr(obj, "model") and hasattr(obj, "tokenizer"):
        return local_stream(obj, params.max_new_tokens, params.ignore_eos, params.timeout_s)
    raise ValueError(f"latency.generation needs a causal LM (loader transformers) or an http endpoint, not "
                     f"{type(obj).__name__}")


def _run_requests(stream: StreamFn, prompts: list[str], params: GenerationParams,
                  ctx: CheckContext) -> tuple[list[StreamTiming], list[int], int]:
    """Timed requests and each one's start (send or scheduled), plus the run's wall time."""
    clock = time.perf_counter_ns
    m = len(prompts)
    if params.scenario == "single_stream":
        timings: list[StreamTiming] = []
        starts: list[int] = []
        t0 = clock()
        deadline = t0 + int(params.duration_s * 1e9)
        for i in range(params.requests):
            timing = stream(prompts[i % m])
            timings.append(timing)
            starts.append(timing.sent_ns)
            if clock() >= deadline:
                break
        return timings, starts, clock() - t0
    assert params.target_qps is not None
    schedule = poisson_schedule(params.target_qps, params.requests, params.duration_s, ctx.rng())
    begin = clock() + 1_000_000
    targets = [begin + int(s) for s in schedule]
    with ThreadPoolExecutor(max_workers=params.concurrency, thread_name_prefix="llmguard-gen") as pool:
        futures = []
        for i, target in enumerate(targets):
            wait = (target - clock()) / 1e9
            if wait > 0:
                time.sleep(wait)
            futures.append(pool.submit(stream, prompts[i % m]))
        done = [f.result(timeout=params.timeout_s * len(targets)) for f in futures]
    end = max((t.last_ns or t.sent_ns) for t in done)
    return done, targets, end - begin


def run_generation(ctx: CheckContext, params: GenerationParams) -> CheckOutput:
    """Stream ``params.requests`` prompts through the model and report TTFT/TPOT/tokens/s."""
    obj = ctx.model(params.model).obj
    prompts = ctx.inputs(params.model, params.dataset)
    if not isinstance(prompts, list) or not prompts:
        raise ValueError(f"model '{params.model}' takes no text inputs from dataset '{params.dataset}' "
                         "(declare its 'text' column)")
    device = resolve_device(params.device, obj)
    stream = _stream_fn(obj, params)
    with torch_settings(params.threads) as torch_facts, PeakMemory(device) as memory:
        for i in range(params.warmup):
            stream(prompts[i % len(prompts)])
        stats = getattr(obj, "transport_stats", None)
        before = (stats.attempts, stats.transient_errors) if stats is not None else None
        timings, starts, wall_ns = _run_requests(stream, prompts, params, ctx)
        peak = memory.peak_mb()
    empty = sum(1 for t in timings if t.first_ns is None)
    if empty:
        raise ValueError(f"{empty} of {len(timings)} requests returned no output token; TTFT is undefined")
    ttft = np.array([(t.first_ns or 0) - s for t, s in zip(timings, starts, strict=True)]) / 1e6
    e2e = np.array([(t.last_ns or 0) - s for t, s in zip(timings, starts, strict=True)]) / 1e6
    tokens = np.array([t.tokens for t in timings])
    multi = tokens >= 2
    tpot = np.array([((t.last_ns or 0) - (t.first_ns or 0)) / (t.tokens - 1) for t in timings if t.tokens >= 2]) / 1e6
    out = CheckOutput()
    names = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0}
    add_percentiles(out, ctx, ttft, prefix="ttft_", names=names, maximum=None)
    if len(tpot) == 0:
        raise ValueError("no request produced two or more tokens; TPOT is undefined (set ignore_eos: true)")
    add_percentiles(out, ctx, tpot, prefix="tpot_", names=names, maximum=None)
    add_percentiles(out, ctx, e2e, prefix="e2e_", names=names, maximum=None)
    out.add("tokens_per_s", float(tokens.sum()) / (wall_ns / 1e9), n=len(timings), unit="tokens/s")
    out.add("output_tokens_mean", float(tokens.mean()), n=len(timings), unit="tokens")
    if stats is not None and before is not None:
        attempts = stats.attempts - before[0]
        failed = stats.transient_errors - before[1]
        if attempts:
            out.add("error_rate", failed / attempts, n=attempts)
            out.details.update(attempts=attempts, transient_errors=failed, retries=getattr(obj, "retries", None))
    if (~multi).any():
        out.warnings.append(f"{int((~multi).sum())} requests produced fewer than 2 tokens and have no TPOT")
    short = int((tokens < params.max_new_tokens).sum())
    if short:
        out.warnings.append(f"{short} of {len(timings)} requests stopped before max_new_tokens "
                            f"({params.max_new_tokens}); set ignore_eos: true for fixed-length outputs")
    out.details.update(
        scenario=params.scenario, model=params.model, dataset=params.dataset, requests=len(timings),
        stopped_by="requests" if len(timings) >= params.requests else "duration_s", wall_s=wall_ns / 1e9,
        max_new_tokens=params.max_new_tokens, ignore_eos=params.ignore_eos, device=device.name,
        device_facts=device.facts, streaming="http server-sent events" if device.kind == "remote"
        else "transformers TextIteratorStreamer (per-token clock in put)",
        definitions={"ttft": "first output token - request start (send time; scheduled arrival in server)",
                     "tpot": "(last token - first token) / (output tokens - 1), per request",
                     "tokens_per_s": "output tokens of all requests / wall time"},
        **torch_facts, memory_method=memory.method,
    )
    if peak is not None:
        out.details["peak_memory_mb"] = peak
    if params.scenario == "server":
        out.details.update(target_qps=params.target_qps, concurrency=params.concurrency,
                           achieved_qps=len(timings) / (wall_ns / 1e9))
    tpot_col = np.array([((t.last_ns or 0) - (t.first_ns or 0)) / max(t.tokens - 1, 1) / 1e6 for t in timings])
    out.artifacts["samples"] = str(write_samples(ctx, "generation_samples.csv", {
        "ttft_ms": ttft, "tpot_ms": tpot_col, "e2e_ms": e2e, "output_tokens": tokens.astype(float)}))
    return out
