"""The load patterns, after MLPerf LoadGen's scenarios.

* ``closed_loop`` (single_stream, offline): the next request is sent when the last one
  finished; each request's latency is its own send-to-completion time.
* ``open_loop`` (server): requests arrive at Poisson times at a target rate, whether or
  not earlier ones have finished; latency runs from the *scheduled* arrival, so time
  spent queueing behind a slow request is counted (no coordinated omission).
* ``interleaved``: two models on the same request, back to back, in random order per
  request (canary comparisons: drift of the machine affects both alike).

Every loop stops at ``max_requests`` or ``max_duration_s``, whichever comes first. Clocks
are ``time.perf_counter_ns``; on CUDA the device is synchronised before both reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .timing import SyncFn

Call = Callable[[Any], Any]


@dataclass
class Samples:
    """Per-request latencies of one run (nanoseconds) and its wall-clock span."""

    latency_ns: np.ndarray
    wall_ns: int
    items: int  # rows or prompts processed (batch size × requests)
    send_lag_ns: np.ndarray | None = None  # open loop: actual − scheduled send time

    @property
    def latency_ms(self) -> np.ndarray:
        out: np.ndarray = self.latency_ns.astype(np.float64) / 1e6
        return out

    @property
    def throughput_per_s(self) -> float:
        return self.items / (self.wall_ns / 1e9) if self.wall_ns > 0 else 0.0


def closed_loop(
    call: Call,
    payloads: Sequence[Any],
    sizes: Sequence[int],
    max_requests: int,
    max_duration_s: float,
    sync: SyncFn | None = None,
) -> Samples:
    """Send ``payloads`` in turn (cycling) one at a time; time each call."""
    clock = time.perf_counter_ns
    lat = np.empty(max_requests, dtype=np.int64)
    m = len(payloads)
    items = 0
    n = 0
    start = clock()
    deadline = start + int(max_duration_s * 1e9)
    if sync is None:
        for i in range(max_requests):
            payload = payloads[i % m]
            t0 = clock()
            call(payload)
            t1 = clock()
            lat[i] = t1 - t0
            items += sizes[i % m]
            n = i + 1
            if t1 >= deadline:
                break
    else:
        for i in range(max_requests):
            payload = payloads[i % m]
            sync()
            t0 = clock()
            call(payload)
            sync()
            t1 = clock()
            lat[i] = t1 - t0
            items += sizes[i % m]
            n = i + 1
            if t1 >= deadline:
                break
    return Samples(lat[:n], clock() - start, items)


def interleaved(
    call_a: Call,
    call_b: Call,
    payloads_a: Sequence[Any],
    payloads_b: Sequence[Any],
    sizes: Sequence[int],
    max_requests: int,
    max_duration_s: float,
    rng: np.random.Generator,
    sync_a: SyncFn | None = None,
    sync_b: SyncFn | None = None,
) -> tuple[Samples, Samples]:
    """Both models on request ``i`` back to back, in an order drawn per request."""
    clock = time.perf_counter_ns
    order = rng.integers(0, 2, size=max_requests)
    lat = np.empty((2, max_requests), dtype=np.int64)
    calls, payloads, syncs = (call_a, call_b), (payloads_a, payloads_b), (sync_a, sync_b)
    m = len(payloads_a)
    start = clock()
    deadline = start + int(max_duration_s * 1e9)
    n = 0
    items = 0
    for i in range(max_requests):
        first = int(order[i])
        for j in (first, 1 - first):
            sync = syncs[j]
            if sync is not None:
                sync()
            t0 = clock()
            calls[j](payloads[j][i % m])
            if sync is not None:
                sync()
            lat[j, i] = clock() - t0
        items += sizes[i % m]
        n = i + 1
        if clock() >= deadline:
            break
    wall = clock() - start
    return Samples(lat[0, :n], wall, items), Samples(lat[1, :n], wall, items)


def poisson_schedule(rate: float, max_requests: int, max_duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival offsets (ns) of a Poisson process at ``rate`` per second, within the limits."""
    gaps = rng.exponential(1.0 / rate, size=max_requests)
    offsets = np.cumsum(gaps) - gaps[0]  # the first request goes at once
    keep = offsets <= max_duration_s
    keep[0] = True
    out: np.ndarray = (offsets[keep] * 1e9).astype(np.int64)
    return out


def open_loop(
    call: Call,
    payloads: Sequence[Any],
    sizes: Sequence[int],
    schedule_ns: np.ndarray,
    concurrency: int,
    sync: SyncFn | None = None,
    timeout_s: float = 600.0,
) -> Samples:
    """Send request ``i`` at ``schedule_ns[i]`` on one of ``concurrency`` workers.

    A request that finds every worker busy waits in the queue, and that wait is part of
    its latency: latency is completion time minus *scheduled* send time.
    """
    clock = time.perf_counter_ns
    n = len(schedule_ns)
    m = len(payloads)
    done = np.zeros(n, dtype=np.int64)
    began = np.zeros(n, dtype=np.int64)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        began[i] = clock()
        try:
            call(payloads[i % m])
            if sync is not None:
                sync()
        except BaseException as exc:
            with lock:
                errors.append(exc)
        done[i] = clock()

    start = clock() + 1_000_000  # 1 ms to set up before the first arrival
    targets = start + schedule_ns
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="llmguard-latency") as pool:
        futures = []
        for i in range(n):
            wait = (int(targets[i]) - clock()) / 1e9
            if wait > 0:
                time.sleep(wait)
            futures.append(pool.submit(work, i))
            if errors:
                break
        for f in futures:
            f.result(timeout=timeout_s)
    if errors:
        raise errors[0]
    sent = len(futures)
    latency = done[:sent] - targets[:sent]
    lag = began[:sent] - targets[:sent]
    wall = int(done[:sent].max() - start)
    return Samples(latency, wall, int(sum(sizes[i % m] for i in range(sent))), lag)


def timer_overhead_ns(repeats: int = 20_000) -> float:
    """Median time the closed loop measures for a call that does nothing.

    This is what the harness itself adds to every sample (two clock reads, the loop and
    a Python call); ``benchmarks/latency.py`` reports it.
    """

    def noop(_: Any) -> None:
        return None

    samples = closed_loop(noop, [None], [1], repeats, 60.0)
    return float(np.median(samples.latency_ns))
