"""Wall time of a CPU-bound check suite on the Ray executor against the number of workers.

The suite holds ``CHECKS`` copies of one CPU-bound check (a pure-Python loop of
``SPIN`` iterations; it holds the GIL, so only processes run it in parallel). For each
worker count W in (1, 2, 4, 8) a simulated cluster (``ray.cluster_utils.Cluster``) of
``ceil(W/2)`` nodes with W CPUs in all is started, the suite runs once to start the
workers (not timed), then ``ROUNDS`` timed runs follow with ``--executor ray``. The local
executor (one process, one check after another) runs the same suite in the same process
beside it. Prints a table of median wall seconds and the speed-up over local.

    .venv/bin/python benchmarks/ray_checks.py [CHECKS] [SPIN] [ROUNDS]

A simulated cluster shares this machine's cores: beyond its core count, more workers
cannot go faster, and the table shows where that happens.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from llmguard_ops import CheckContext, CheckDefinition, CheckOutput, MetricSpec, hookimpl, run

WORKERS = (1, 2, 4, 8)


class SpinParams(BaseModel):
    """``spin``: loop iterations."""

    spin: int = 2_000_000


def spin(ctx: CheckContext, params: SpinParams) -> CheckOutput:
    total = 0
    for i in range(params.spin):
        total = (total + i * i) % 1_000_003
    out = CheckOutput()
    out.add("total", float(total))
    return out


class SpinPlugin:
    @hookimpl
    def llmguard_register_checks(self, register: Callable[[CheckDefinition], None]) -> None:
        register(CheckDefinition("bench.spin", spin, SpinParams, (MetricSpec("total"),), "CPU-bound loop"))


def write_suite(folder: Path, checks: int, iterations: int) -> Path:
    lines = "".join(f"  - {{id: spin{i}, uses: bench.spin, with: {{spin: {iterations}}}}}\n" for i in range(checks))
    path = folder / "suite.yaml"
    path.write_text(f"apiVersion: llmguard/v1\nname: cpu-bound\nchecks:\n{lines}", encoding="utf-8")
    return path


def timed(suite: Path, out: Path, executor: str) -> float:
    start = time.perf_counter()
    report = run(suite, out, objects=[("spin", SpinPlugin())], executor=executor, write=False).report
    elapsed = time.perf_counter() - start
    assert all(c.status.value == "pass" for c in report.checks), [c.error for c in report.checks]
    return elapsed


def on_cluster(workers: int, suite: Path, out: Path, rounds: int) -> list[float]:
    import ray
    from ray.cluster_utils import Cluster

    per_node = min(2, workers)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": per_node, "include_dashboard": False})
    for _ in range(math.ceil(workers / per_node) - 1):
        cluster.add_node(num_cpus=per_node)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, include_dashboard=False)
    try:
        timed(suite, out, "ray")  # starts the workers and warms their imports
        return [timed(suite, out, "ray") for _ in range(rounds)]
    finally:
        ray.shutdown()
        cluster.shutdown()


def main() -> None:
    checks = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000_000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        suite = write_suite(root, checks, iterations)
        os.environ.setdefault("LLMGUARD_HISTORY_DIR", "off")
        rows: list[tuple[str, float]] = [
            ("local (1 process)", statistics.median(timed(suite, root / "out", "local") for _ in range(rounds)))
        ]
        for workers in WORKERS:
            rows.append(
                (
                    f"ray, {workers} CPUs ({math.ceil(workers / min(2, workers))} nodes)",
                    statistics.median(on_cluster(workers, suite, root / "out", rounds)),
                )
            )
    local = rows[0][1]
    print(f"{checks} checks x {iterations} iterations; {os.cpu_count()} cores here; median of {rounds} runs")
    print("| executor | wall s | speed-up vs local |")
    print("| --- | ---: | ---: |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {local / seconds:.2f}x |")


if __name__ == "__main__":
    main()
