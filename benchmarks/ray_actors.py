"""Wall time of a generation suite against the number of Ray inference actors.

    python benchmarks/ray_actors.py [--prompts 256] [--latency-ms 50] [--actors 1,2,4,8]

The model is an OpenAI-shaped chat endpoint on 127.0.0.1, in a process of its own, whose
every request takes ``--latency-ms`` (the model waits on I/O, as a remote server does), called one request
at a time per client (``options.concurrency: 1``). The suite is one
``performance.generation`` check over ``--prompts`` prompts with references. Each row
of the table runs that check in a fresh run (fresh generation cache, so every prompt is
sent): first without a backend (the local path: one process, one request after another),
then with :class:`~llmguard_ops.executors.ray_data.RayInference` at 1, 2, 4 and 8 actors
on a local Ray cluster. Every run's texts and metrics are compared with the local run's
and the script fails if they differ. Prints a Markdown table (actors, wall s, speed-up
against local, items/s).

Ray's own start (``ray.init``) is outside the timings; the actor pool's start (one model
load per actor) is inside them, as it is in a run. The process's first pass also starts
Ray's worker processes and imports the harness in them; it is timed on a row of its own.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class LatencyEndpoint:
    """A chat-completions server on 127.0.0.1 answering every request after ``latency_s``.

    The answer is a function of the request alone (the last user turn and the seed), so
    a client that asks the same things in any order gets the same answers. Use it as a
    context manager; ``requests`` counts what it served.
    """

    def __init__(self, latency_s: float = 0.05) -> None:
        self.latency_s = latency_s
        self.requests = 0
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()  # headers and body are two writes: no Nagle delay between them
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                time.sleep(endpoint.latency_s)
                with endpoint._lock:
                    endpoint.requests += 1
                question = str(body["messages"][-1]["content"])
                answer = f"{question.split()[-1]} {int(body.get('seed') or 0) % 97}"
                data = json.dumps(
                    {
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
                        "usage": {"prompt_tokens": len(question.split()), "completion_tokens": len(answer.split())},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> LatencyEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class EndpointProcess:
    """A :class:`LatencyEndpoint` in a process of its own, as a real server is.

    In the benchmark's own process its threads would compete for the GIL with the run
    (and Ray's executor loop) they are measured against. ``requests`` is known on exit.
    """

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.requests = 0
        self.base_url = ""

    def __enter__(self) -> EndpointProcess:
        import subprocess

        cmd = [sys.executable, __file__, "--serve", str(self.latency_s)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        self.base_url = self._proc.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            raise SystemExit("the endpoint process did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        out, _ = self._proc.communicate(timeout=30)  # closing stdin stops the server
        self.requests = int(out.strip() or 0)


def _serve(latency_s: float) -> int:
    with LatencyEndpoint(latency_s) as endpoint:
        print(endpoint.base_url, flush=True)
        sys.stdin.read()
    print(endpoint.requests, flush=True)
    return 0


def write_project(root: Path, base_url: str, prompts: int) -> Path:
    """A suite of one generation check over ``prompts`` questions, model = the endpoint."""
    import pandas as pd
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {"question": [f"what is item {i}" for i in range(prompts)], "answer": [f"{i} 0" for i in range(prompts)]}
    ).to_csv(root / "qa.csv", index=False)
    suite = {
        "apiVersion": "llmguard/v1",
        "name": "ray-actors-benchmark",
        "seed": 7,
        "models": {
            "candidate": {
                "loader": "http",
                "options": {"base_url": base_url, "api": "chat", "model": "m", "concurrency": 1},
                "generation": {"max_new_tokens": 4, "temperature": 0.5},
            }
        },
        "datasets": {"qa": {"path": "qa.csv", "text": "question", "target": "answer"}},
        "checks": [
            {
                "id": "quality",
                "uses": "performance.generation",
                "with": {"model": "candidate", "dataset": "qa", "n_resamples": 50},
            }
        ],
    }
    path = root / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return path


def run_once(suite: Path, out: Path, backend: Any) -> tuple[float, dict[str, float], list[str]]:
    """Wall seconds of the check, its metric values and the texts (from the run's cache)."""
    from llmguard_ops.loading import load_suite
    from llmguard_ops.plugins import get_plugin_manager
    from llmguard_ops.runner import Session

    host = get_plugin_manager()
    loaded = load_suite(suite, host.registry())
    session = Session.open(loaded, host, out)
    session.cache.backend = backend
    t = time.perf_counter()
    result = session.run_check(loaded.suite.checks[0])
    wall = time.perf_counter() - t
    if result.error is not None:
        raise SystemExit(f"the check failed: {result.error.type}: {result.error.message}")
    metrics = {k: m.value for k, m in result.metrics.items()}
    lines = (out / "cache" / "generations.jsonl").read_text(encoding="utf-8").splitlines()
    texts = sorted(json.dumps(json.loads(line), sort_keys=True) for line in lines)
    return wall, metrics, texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--actors", default="1,2,4,8")
    parser.add_argument("--batch-size", type=int, default=None, help="prompts per batch (default: the backend's)")
    parser.add_argument("--ray-cpus", type=int, default=8, help="logical CPUs of the local Ray cluster")
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)  # the endpoint's own process
    args = parser.parse_args(argv)
    if args.serve is not None:
        return _serve(args.serve)
    counts = [int(a) for a in args.actors.split(",")]

    import ray

    from llmguard_ops.executors.ray_data import RayInference

    ray.init(address="local", num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
    tmp = Path(tempfile.mkdtemp(prefix="llmguard-ray-actors-"))
    rows: list[tuple[str, float]] = []
    with EndpointProcess(args.latency_ms / 1000) as endpoint:
        suite = write_project(tmp / "project", endpoint.base_url, args.prompts)
        local_wall, local_metrics, local_texts = run_once(suite, tmp / "out-local", None)
        rows.append(("local (no backend)", local_wall))
        # the process's first pass also starts Ray's worker processes and imports the harness
        # in them: timed, but reported on its own line, not as one of the actor counts
        first, _, _ = run_once(suite, tmp / "out-first", RayInference(actors=max(counts), batch_size=args.batch_size))
        rows.append((f"{max(counts)} (first pass of the process)", first))
        for n in counts:
            wall, metrics, texts = run_once(suite, tmp / f"out-{n}", RayInference(actors=n, batch_size=args.batch_size))
            if metrics != local_metrics or texts != local_texts:
                raise SystemExit(f"{n} actors: results differ from the local run")
            rows.append((f"{n}", wall))
    ray.shutdown()
    served = endpoint.requests
    print(f"{args.prompts} prompts, {args.latency_ms:g} ms per request, {served} requests served in all\n")
    print("| actors | wall s | speed-up | items/s |")
    print("|---|---:|---:|---:|")
    for name, wall in rows:
        print(f"| {name} | {wall:.2f} | {local_wall / wall:.2f}x | {args.prompts / wall:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
