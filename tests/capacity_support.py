"""Test support for latency.capacity: the M/D/c queueing model and a server with c workers.

**The model.** Poisson arrivals at rate λ, ``c`` identical workers, a deterministic service
time ``s``, first come first served: M/D/c. A request's latency is its wait plus ``s``.
Percentiles of that latency have no simple closed form, so :func:`mdc_percentile`
simulates the queue (Lindley's recursion generalised to ``c`` servers: each arrival
takes the worker that frees first) over many arrivals, with a fixed seed so that the
curve is smooth in λ (common random numbers). :func:`predicted_capacity` bisects λ for the
highest rate whose percentile is at most the SLO. The saturation bound ``c / s`` holds
for any service discipline: above it the queue grows without end.
"""

from __future__ import annotations

import heapq
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


def mdc_percentile(
    rate: float, workers: int, service_s: float, percentile: float, arrivals: int = 40_000, seed: int = 0
) -> float:
    """Simulated ``percentile`` (0-100) of M/D/c latency, in seconds."""
    gaps = np.random.default_rng(seed).exponential(1.0, size=arrivals) / rate
    times = np.cumsum(gaps)
    free = [0.0] * workers
    latency = np.empty(arrivals)
    for i, t in enumerate(times):
        start = max(t, heapq.heappop(free))
        heapq.heappush(free, start + service_s)
        latency[i] = start + service_s - t
    return float(np.percentile(latency[arrivals // 10 :], percentile))  # past the empty-system start


def predicted_capacity(workers: int, service_s: float, percentile: float, slo_s: float) -> float:
    """Highest λ with ``mdc_percentile(λ) ≤ slo_s`` (bisection, 0.5 % of c/s)."""
    lo, hi = 0.0, workers / service_s
    while hi - lo > 0.005 * workers / service_s:
        mid = (lo + hi) / 2
        if mdc_percentile(mid, workers, service_s, percentile) <= slo_s:
            lo = mid
        else:
            hi = mid
    return lo


def step_statistic(
    rate: float, workers: int, service_s: float, n: int, rank: int, runs: int = 200, seed: int = 0
) -> float:
    """Median over ``runs`` simulated steps of the ``rank``-th smallest of ``n`` latencies (seconds).

    This is what one step of latency.capacity decides on: ``n`` Poisson arrivals into an
    empty M/D/c system, and the order statistic its upper confidence bound is.
    """
    rng = np.random.default_rng(seed)
    stats = np.empty(runs)
    for r in range(runs):
        times = np.cumsum(rng.exponential(1.0, size=n)) / rate
        free = [0.0] * workers
        latency = np.empty(n)
        for i, t in enumerate(times):
            start = max(t, heapq.heappop(free))
            heapq.heappush(free, start + service_s)
            latency[i] = start + service_s - t
        stats[r] = np.sort(latency)[rank - 1]
    return float(np.median(stats))


def predicted_step_capacity(workers: int, service_s: float, n: int, rank: int, slo_s: float) -> float:
    """Highest λ whose median step statistic is at most ``slo_s`` (bisection, 0.5 % of c/s)."""
    lo, hi = 0.0, 1.5 * workers / service_s
    while hi - lo > 0.005 * workers / service_s:
        mid = (lo + hi) / 2
        if step_statistic(mid, workers, service_s, n, rank) <= slo_s:
            lo = mid
        else:
            hi = mid
    return lo


class WorkerServer:
    """An OpenAI-style completions endpoint on 127.0.0.1 serving ``workers`` requests at a time.

    Each request holds one of ``workers`` slots (a semaphore) for ``service_s`` seconds;
    the rest wait for a slot, as requests queue for the replicas of a model server.
    """

    def __init__(self, workers: int, service_s: float) -> None:
        slots = threading.Semaphore(workers)
        self.served = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body leave in two writes: without it, Nagle's algorithm holds the body
                # back until the client's delayed ACK (~40 ms)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with slots:
                    time.sleep(service_s)
                body = json.dumps({"choices": [{"text": "ok"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with lock:
                    outer.served += 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> WorkerServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
