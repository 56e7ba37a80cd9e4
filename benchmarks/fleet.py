"""A fleet of small models against running them one by one, measured in the same run.

Builds ``N`` tiny sklearn models (default 50; alternately a logistic regression and a
stump) on generated data and a one-check suite, then times

* ``sequential``: ``llmguard run SUITE --set models.candidate.path=...`` once per model,
  one after another (what a CI loop over the models does), and
* ``fleet``: ``llmguard run SUITE --matrix models.yaml --jobs J`` for each J given
  (default 1 and the CPU count), and with ``--ray``, the same fleet as Ray tasks on a
  local cluster (its start-up included),

checks that every mode reached the same decision for every model, and prints a table
(mode, jobs, wall s, per-model s, speed-up over sequential).

    .venv/bin/python benchmarks/fleet.py [N] [--jobs 1,2] [--ray]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fleet_support import make_project


def llmguard(args: list[str], cwd: Path) -> int:
    env = {**os.environ, "LLMGUARD_HISTORY_DIR": "off"}
    return subprocess.run(
        [sys.executable, "-m", "llmguard_ops.cli", *args], cwd=cwd, env=env, capture_output=True
    ).returncode


def decisions_of(out: Path, names: list[str]) -> dict[str, str]:
    return {n: json.loads((out / n / "report.json").read_text())["decision"]["decision"] for n in names}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=50)
    parser.add_argument("--jobs", default=f"1,{os.cpu_count() or 1}")
    parser.add_argument("--ray", action="store_true", help="also run the fleet as Ray tasks (local cluster)")
    opts = parser.parse_args()
    jobs = sorted({int(j) for j in opts.jobs.split(",")})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        suite, matrix = make_project(root, opts.n)
        names = [f"m{i}" for i in range(opts.n)]
        rows: list[tuple[str, int, float]] = []
        start = time.perf_counter()
        for name in names:
            llmguard(
                [
                    "run",
                    str(suite),
                    "--set",
                    f"models.candidate.path=models/{name}.joblib",
                    "--out",
                    f"seq/{name}",
                    "-q",
                ],
                root,
            )
        rows.append(("sequential", 1, time.perf_counter() - start))
        expected = decisions_of(root / "seq", names)
        for j in jobs:
            start = time.perf_counter()
            llmguard(["run", str(suite), "--matrix", str(matrix), "--out", f"fleet{j}", "--jobs", str(j), "-q"], root)
            rows.append(("fleet", j, time.perf_counter() - start))
            assert decisions_of(root / f"fleet{j}", names) == expected, f"fleet --jobs {j} decided differently"
        if opts.ray:
            start = time.perf_counter()
            code = subprocess.run(
                [sys.executable, "-c", RAY_FLEET, str(suite), str(matrix), str(root / "ray")],
                cwd=root,
                env={**os.environ, "LLMGUARD_HISTORY_DIR": "off"},
            ).returncode
            rows.append(("fleet on Ray", os.cpu_count() or 1, time.perf_counter() - start))
            assert code in (0, 1, 3), code
            assert decisions_of(root / "ray", names) == expected, "the Ray fleet decided differently"
    counts = {d: list(expected.values()).count(d) for d in sorted(set(expected.values()))}
    print(f"{opts.n} models, one performance check each; decisions {counts}, identical in every mode")
    print(f"{'mode':<14} {'jobs':>4} {'wall s':>8} {'per-model s':>12} {'speed-up':>9}")
    base = rows[0][2]
    for mode, j, wall in rows:
        print(f"{mode:<14} {j:>4} {wall:>8.1f} {wall / opts.n:>12.2f} {base / wall:>8.2f}x")


RAY_FLEET = """\
import os, sys
import ray
from llmguard_ops.cli import build_parser
from llmguard_ops.fleet import run_fleet
from llmguard_ops.matrix import load_matrix

suite, matrix, out = sys.argv[1:4]
ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
argv = ["run", suite, "--out", out, "-q"]
sys.exit(run_fleet(argv, build_parser().parse_args(argv), load_matrix(matrix), executor="ray", quiet=True))
"""


if __name__ == "__main__":
    main()
