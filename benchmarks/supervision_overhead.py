"""Cost of the supervising parent of ``llmguard run``, with its peer measured in the same run.

Runs one tiny suite (a Python model, 80 rows, one performance check) ``ROUNDS`` times as

* ``supervised``: ``python -m llmguard_ops.cli run`` (parent + child, the shipped path), and
* ``unsupervised``: ``python -c 'llmguard_ops.run(...)'`` (the same run in one process),

alternating, and prints the median wall time of each and the difference.

    .venv/bin/python benchmarks/supervision_overhead.py [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from trust_support import project


def timed(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "LLMGUARD_HISTORY_DIR": "off"}
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        suite = project(root)
        out = root / "out"
        supervised = [
            sys.executable,
            "-m",
            "llmguard_ops.cli",
            "run",
            str(suite),
            "--out",
            str(out),
            "--no-audit-log",
            "-q",
        ]
        unsupervised = [sys.executable, "-c", f"import llmguard_ops; llmguard_ops.run({str(suite)!r}, {str(out)!r})"]
        times: dict[str, list[float]] = {"supervised": [], "unsupervised": []}
        timed(unsupervised, root)  # warm the file cache
        for _ in range(rounds):
            times["unsupervised"].append(timed(unsupervised, root))
            times["supervised"].append(timed(supervised, root))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"| path | median wall s ({rounds} rounds) |")
    print("| --- | --- |")
    for name, value in med.items():
        print(f"| {name} | {value:.3f} |")
    print(f"| overhead | {med['supervised'] - med['unsupervised']:+.3f} |")


if __name__ == "__main__":
    main()
