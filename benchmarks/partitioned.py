"""Partitioned streaming against in-memory pandas: peak memory and wall time.

    python benchmarks/partitioned.py                            # 32 x 40,000 rows per side
    python benchmarks/partitioned.py --partitions 64 --rows 50000 --task-memory-mb 32

Writes suites/scale/make_data.py's data (reference and current, ``--partitions`` files of
``--rows`` rows each) into a temporary folder, plus the same rows as one Parquet file per
side, and runs suites/scale/partitioned.yaml (drift.tabular and bias.group_fairness) three
ways, each in a fresh interpreter so that its peak resident memory is its own:

* ``in-memory``: the single files, loaded whole by pandas (today's path);
* ``streaming``: the partition folders, one partition at a time in the run's process;
* ``ray``: the partition folders on a local ``ray.init(num_cpus=2)``, one task per
  partition declaring ``--task-memory-mb``; the driver's peak and the largest task peak
  (tracemalloc + Arrow pool, as the report records it) are shown.

Each interpreter first runs the same suite on a tiny copy of the data (every import and
first-use cost paid), then measures: "baseline" is its RSS then, "peak" the largest RSS
sampled every 5 ms during the real run, so "peak - baseline" is what the data cost. The table also says
whether the decision and the exact metrics agree with the in-memory run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCALE = REPO / "suites" / "scale"
EXACT = ("demographic_parity_difference", "equalized_odds_difference", "column.channel.distance", "n_columns")


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Sampler(threading.Thread):
    """The largest RSS seen while it runs (sampled every 5 ms)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.005):
            self.peak = max(self.peak, _rss())


def child(mode: str, suite: Path, out: Path) -> dict[str, Any]:
    """One run in this interpreter (after a warm-up on tiny data); what it measured."""
    import llmguard_ops

    if mode == "ray":
        import ray

        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    warm = suite.parent / "warm" / suite.name
    llmguard_ops.run(warm, out.parent / f"warm-{mode}", audit_log=out.parent / "warm-audit.jsonl")
    baseline = _rss()
    sampler = _Sampler()
    sampler.start()
    t0 = time.perf_counter()
    outcome = llmguard_ops.run(suite, out, audit_log=out / "audit.jsonl")
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    peak = max(sampler.peak, _rss())
    metrics = {
        name: m.value for c in outcome.report.checks for name, m in c.metrics.items() if name in EXACT or "x1" in name
    }
    task_peaks = [
        p.get("task_peak_memory_bytes")
        for c in outcome.report.checks
        for p in (c.details.get("partitioned", {}).get("passes") or [c.details.get("partitioned", {})])
    ]
    errors = [c.error.message for c in outcome.report.checks if c.error is not None]
    return {
        "wall_s": wall,
        "peak_rss": peak,
        "baseline_rss": baseline,
        "task_peak": max((t for t in task_peaks if t), default=None),
        "decision": str(outcome.report.decision.decision),
        "metrics": metrics,
        "errors": errors,
    }


def _write_project(root: Path, partitions: int, rows: int, task_mb: int, make_data: Any, pd: Any) -> int:
    """Partitions, the same rows as one file per side, and both suites; one side's bytes in pandas."""
    for side, moved, seed in (("reference", False, 7), ("current", True, 8)):
        make_data.write_partitions(root / "out" / side, partitions, rows, seed, moved)
    text = (SCALE / "partitioned.yaml").read_text().replace("task_memory_mb: 256", f"task_memory_mb: {task_mb}")
    (root / "partitioned.yaml").write_text(text)
    in_memory_bytes = 0
    for side in ("reference", "current"):
        frame = pd.concat([pd.read_parquet(p) for p in sorted((root / "out" / side).glob("*.parquet"))])
        in_memory_bytes = max(in_memory_bytes, int(frame.memory_usage(deep=True).sum()))
        frame.to_parquet(root / f"{side}.parquet", index=False)
        del frame
    memory = text.replace("out/reference, partitioned: true", "reference.parquet")
    memory = memory.replace("out/current, partitioned: true", "current.parquet")
    memory = memory.replace(f", task_memory_mb: {task_mb}", "")
    (root / "memory.yaml").write_text(memory)
    return in_memory_bytes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=32)
    parser.add_argument("--rows", type=int, default=40_000, help="rows per partition")
    parser.add_argument("--task-memory-mb", type=int, default=32)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "SUITE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, suite, out = args.child
        print(json.dumps(child(mode, Path(suite), Path(out))))
        return 0
    sys.path.insert(0, str(SCALE))
    import make_data
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="llmguard-partitioned-") as tmp:
        root = Path(tmp)
        in_memory_bytes = 0
        for folder, partitions, rows_each in ((root, args.partitions, args.rows), (root / "warm", 2, 500)):
            in_memory_bytes = max(
                in_memory_bytes, _write_project(folder, partitions, rows_each, args.task_memory_mb, make_data, pd)
            )
        results = {}
        for mode, suite in (
            ("in-memory", "memory.yaml"),
            ("streaming", "partitioned.yaml"),
            ("ray", "partitioned.yaml"),
        ):
            cmd = [sys.executable, __file__, "--child", mode, str(root / suite), str(root / f"run-{mode}")]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=1800)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    mb = 2**20
    rows = args.partitions * args.rows
    print(
        f"data: {rows:,} rows per side in {args.partitions} partitions; one side in pandas: "
        f"{in_memory_bytes / mb:.0f} MiB; Ray task memory limit {args.task_memory_mb} MiB "
        f"(one side is {in_memory_bytes / (args.task_memory_mb * mb):.1f}x that)"
    )
    print(
        f"{'mode':<11} {'wall s':>7} {'peak RSS MiB':>13} {'baseline MiB':>13} {'run added MiB':>14} "
        f"{'task peak MiB':>14}  decision  exact metrics = in-memory"
    )
    base = results["in-memory"]["metrics"]
    for mode, r in results.items():
        same = all(abs(r["metrics"].get(k, float("nan")) - v) <= 1e-9 for k, v in base.items() if "x1" not in k)
        task = f"{r['task_peak'] / mb:.1f}" if r["task_peak"] else "-"
        print(
            f"{mode:<11} {r['wall_s']:>7.2f} {r['peak_rss'] / mb:>13.0f} {r['baseline_rss'] / mb:>13.0f} "
            f"{(r['peak_rss'] - r['baseline_rss']) / mb:>14.0f} {task:>14}  {r['decision']:<8}  {same}"
            + (f"  errors: {r['errors']}" if r["errors"] else "")
        )
    x1 = {m: r["metrics"].get("column.x1.distance") for m, r in results.items()}
    print(f"column.x1.distance (Wasserstein/std; sketched when partitioned): {x1}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
