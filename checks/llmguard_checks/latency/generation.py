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

from llmguard_ops import CheckContext, CheckOutput, flatten_messages, render_prompt

from .endpoint import StreamTiming
from .metrics import add_percentiles, write_samples
from .params import GenerationLatencyParams
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
            super().put(value)  # type: ignore[no-untyped-call]  # transformers leaves the streamer unannotated

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def stream(prompt: str) -> StreamTiming:
        streamer = TimedStreamer()
        failure: list[BaseException] = []
        sent = time.perf_counter_ns()
        enc = tokenizer(prompt, return_tensors="pt").to(model.device)
        kwargs: dict[str, Any] = dict(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer, pad_token_id=pad
        )
        if ignore_eos:
            kwargs["min_new_tokens"] = max_new_tokens

        def produce() -> None:
            try:
                with torch.inference_mode():
                    lm.generate(**kwargs)
            except BaseException as exc:
                failure.append(exc)
                streamer.end()  # type: ignore[no-untyped-call]  # unblocks the consumer; unannotated upstream

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
        return StreamTiming(
            sent_ns=sent,
            first_ns=times[0] if times else None,
            last_ns=times[-1] if times else None,
            tokens=streamer.tokens,
            text=text,
            token_times_ns=list(times),
        )

    return stream


def _stream_fn(obj: Any, params: GenerationLatencyParams) -> StreamFn:
    if hasattr(obj, "stream_timed"):

        def remote(prompt: str) -> StreamTiming:
            timing: StreamTiming = obj.stream_timed(prompt, params.max_new_tokens, params.ignore_eos)
            return timing

        return remote
    if hasattr(obj, "model") and hasattr(obj, "tokenizer"):
        return local_stream(obj, params.max_new_tokens, params.ignore_eos, params.timeout_s)
    raise ValueError(
        f"latency.generation needs a causal LM (loader transformers) or an http endpoint, not {type(obj).__name__}"
    )


def _run_requests(
    stream: StreamFn, prompts: list[str], params: GenerationLatencyParams, ctx: CheckContext
) -> tuple[list[StreamTiming], list[int], int]:
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


def model_prompts(ctx: CheckContext, model: str, dataset: str) -> list[str]:
    """The prompts ``model`` is sent: its suite prompt rendered per row when it has one."""
    prompt = ctx.prompt(model)
    if prompt is None:
        texts: list[str] = ctx.inputs(model, dataset)
        return texts
    obj = ctx.model(model).obj
    ds = ctx.dataset(dataset)
    convs = [render_prompt(prompt, row, text_column=ds.spec.text) for row in ds.frame.to_dict(orient="records")]
    chat = getattr(obj, "render_chat", None)
    return [str(chat(c)) if callable(chat) else flatten_messages(c) for c in convs]


def _paired_percentile(
    a: np.ndarray, b: np.ndarray, q: float, ratio: bool, level: float, n_resamples: int, seed: int
) -> tuple[float, float, float]:
    """Point and percentile-bootstrap interval of q-th percentile difference (or ratio), pairs resampled."""
    rng = np.random.default_rng(seed)

    def stat(x: np.ndarray, y: np.ndarray) -> float:
        px, py = float(np.percentile(x, q)), float(np.percentile(y, q))
        return px / py if ratio else px - py

    point = stat(a, b)
    draws = []
    for _ in range(n_resamples):
        i = rng.integers(0, len(a), len(a))
        draws.append(stat(a[i], b[i]))
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return point, float(lo), float(hi)


def run_generation_vs_baseline(ctx: CheckContext, params: GenerationLatencyParams) -> CheckOutput:
    """Candidate and baseline timed in turn on the same prompts (ABBA order), paired by request."""
    assert params.baseline is not None
    if params.scenario != "single_stream":
        raise ValueError("baseline: timing is interleaved request by request; use scenario single_stream")
    roles = (params.model, params.baseline)
    streams = {m: _stream_fn(ctx.model(m).obj, params) for m in roles}
    prompts = {m: model_prompts(ctx, m, params.dataset) for m in roles}
    device = resolve_device(params.device, ctx.model(params.model).obj)
    timings: dict[str, list[StreamTiming]] = {m: [] for m in roles}
    with torch_settings(params.threads) as torch_facts:
        for i in range(params.warmup):
            for m in roles:
                streams[m](prompts[m][i % len(prompts[m])])
        deadline = time.perf_counter_ns() + int(params.duration_s * 1e9)
        for i in range(params.requests):
            order = roles if i % 4 in (0, 3) else roles[::-1]  # ABBA: drift hits both
            for m in order:
                timings[m].append(streams[m](prompts[m][i % len(prompts[m])]))
            if time.perf_counter_ns() >= deadline:
                break
    out = CheckOutput()
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for m in roles:
        ts = timings[m]
        if any(t.first_ns is None for t in ts):
            raise ValueError(f"model '{m}': a request returned no output token; TTFT is undefined")
        arrays[m] = {
            "ttft": np.array([(t.first_ns or 0) - t.sent_ns for t in ts]) / 1e6,
            "tpot": np.array([((t.last_ns or 0) - (t.first_ns or 0)) / max(t.tokens - 1, 1) for t in ts]) / 1e6,
        }
    names = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0}
    add_percentiles(out, ctx, arrays[params.model]["ttft"], prefix="ttft_", names=names, maximum=None)
    add_percentiles(out, ctx, arrays[params.model]["tpot"], prefix="tpot_", names=names, maximum=None)
    n = len(timings[params.model])
    for what in ("ttft", "tpot"):
        for label, q in (("p50", 50.0), ("p95", 95.0)):
            for kind in ("delta", "ratio"):
                name = f"{what}_{label}_ms_{kind}"
                level = ctx.confidence(name)
                v, lo, hi = _paired_percentile(
                    arrays[params.model][what], arrays[params.baseline][what], q, kind == "ratio", level, 1000, ctx.seed
                )
                out.add(
                    name,
                    v,
                    lower=lo,
                    upper=hi,
                    confidence=level,
                    n=n,
                    interval_method="paired bootstrap-percentile over interleaved requests (1000 resamples)",
                    unit="ms" if kind == "delta" else None,
                )
    out.details.update(
        model=params.model,
        baseline=params.baseline,
        requests=n,
        order="ABBA interleaved",
        device=device.name,
        max_new_tokens=params.max_new_tokens,
        **torch_facts,
    )
    return out


def run_generation(ctx: CheckContext, params: GenerationLatencyParams) -> CheckOutput:
    """Stream ``params.requests`` prompts through the model and report TTFT/TPOT/tokens/s."""
    if params.baseline is not None:
        return run_generation_vs_baseline(ctx, params)
    obj = ctx.model(params.model).obj
    prompts = model_prompts(ctx, params.model, params.dataset)
    if not isinstance(prompts, list) or not prompts:
        raise ValueError(
            f"model '{params.model}' takes no text inputs from dataset '{params.dataset}' (declare its 'text' column)"
        )
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
        out.warnings.append(
            f"{short} of {len(timings)} requests stopped before max_new_tokens "
            f"({params.max_new_tokens}); set ignore_eos: true for fixed-length outputs"
        )
    out.details.update(
        scenario=params.scenario,
        model=params.model,
        dataset=params.dataset,
        requests=len(timings),
        stopped_by="requests" if len(timings) >= params.requests else "duration_s",
        wall_s=wall_ns / 1e9,
        max_new_tokens=params.max_new_tokens,
        ignore_eos=params.ignore_eos,
        device=device.name,
        device_facts=device.facts,
        streaming="http server-sent events"
        if device.kind == "remote"
        else "transformers TextIteratorStreamer (per-token clock in put)",
        definitions={
            "ttft": "first output token - request start (send time; scheduled arrival in server)",
            "tpot": "(last token - first token) / (output tokens - 1), per request",
            "tokens_per_s": "output tokens of all requests / wall time",
        },
        **torch_facts,
        memory_method=memory.method,
    )
    if peak is not None:
        out.details["peak_memory_mb"] = peak
    if params.scenario == "server":
        out.details.update(
            target_qps=params.target_qps, concurrency=params.concurrency, achieved_qps=len(timings) / (wall_ns / 1e9)
        )
    tpot_col = np.array([((t.last_ns or 0) - (t.first_ns or 0)) / max(t.tokens - 1, 1) / 1e6 for t in timings])
    out.artifacts["samples"] = str(
        write_samples(
            ctx,
            "generation_samples.csv",
            {"ttft_ms": ttft, "tpot_ms": tpot_col, "e2e_ms": e2e, "output_tokens": tokens.astype(float)},
        )
    )
    return out
