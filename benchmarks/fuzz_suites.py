"""``llmguard validate`` over generated malformed suites: tracebacks, unlocated errors, cost.

Run: ``python benchmarks/fuzz_suites.py [--examples 10000]``. Suites are made by mutating
a valid one (tests/fuzz_support.py: wrong types, unknown keys, huge numbers, bad bytes,
aliases, merge keys, deep nesting, truncation). Each is validated in-process through the
CLI's ``main``; the oracle is exit 0 or 2, no exception, every error line located as
``file:line:col``. The peer, on the same inputs in the same run, is a bare
``yaml.safe_load`` (what most tools do first): its exceptions that are not ``YAMLError``
count as tracebacks, and its errors without a mark as unlocated. A separate row loads the
387-byte "billion laughs" file under ``tracemalloc``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fuzz_support import _LAUGHS, build_project, run_validate, text_mutation, tree_mutation


def _peer(data: bytes) -> tuple[bool, bool, float]:
    """(traceback, unlocated error, seconds) of ``yaml.safe_load``."""
    start = time.perf_counter()
    try:
        yaml.safe_load(data)
    except yaml.MarkedYAMLError as exc:
        return False, exc.problem_mark is None, time.perf_counter() - start
    except yaml.YAMLError:
        return False, True, time.perf_counter() - start
    except Exception:  # RecursionError, ValueError, ...: a traceback for the caller
        return True, False, time.perf_counter() - start
    return False, False, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=10_000)
    args = parser.parse_args()
    root = build_project(Path(tempfile.mkdtemp(prefix="llmguard-fuzz-")))
    suite = root / "suite.yaml"
    ours: dict[str, float] = {"examples": 0, "tracebacks": 0, "bad_exit": 0, "unlocated": 0, "exit0": 0, "exit2": 0}
    peer = {"tracebacks": 0, "unlocated": 0}
    times: list[float] = []
    peer_times: list[float] = []
    samples: list[str] = []

    strategy = st.one_of(tree_mutation().map(lambda t: yaml.safe_dump(t, sort_keys=False).encode()), text_mutation())

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=strategy)
    def fuzz(data: bytes) -> None:
        suite.write_bytes(data)
        outcome = run_validate(suite)
        ours["examples"] += 1
        times.append(outcome.seconds)
        if outcome.traceback:
            ours["tracebacks"] += 1
            samples.append(outcome.traceback.strip().splitlines()[-1])
        elif outcome.code not in (0, 2):
            ours["bad_exit"] += 1
        elif outcome.unlocated:
            ours["unlocated"] += 1
            samples.append(outcome.unlocated[0])
        ours["exit0" if outcome.code == 0 else "exit2"] += outcome.code in (0, 2)
        tb, unloc, seconds = _peer(data)
        peer["tracebacks"] += tb
        peer["unlocated"] += unloc
        peer_times.append(seconds)

    start = time.perf_counter()
    fuzz()
    wall = time.perf_counter() - start

    suite.write_bytes(_LAUGHS + b"apiVersion: llmguard/v1\n")
    tracemalloc.start()
    laughs = run_validate(suite)
    laughs_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    print(
        f"{int(ours['examples'])} generated suites, {wall:.0f} s wall, "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (whole process)\n"
    )
    print("| tool | examples | tracebacks | exit not 0/2 | unlocated errors | exit 0 | exit 2 | median ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| llmguard validate | {int(ours['examples'])} | {int(ours['tracebacks'])} | {int(ours['bad_exit'])} "
        f"| {int(ours['unlocated'])} | {int(ours['exit0'])} | {int(ours['exit2'])} "
        f"| {statistics.median(times) * 1e3:.1f} | {max(times) * 1e3:.1f} |"
    )
    print(
        f"| peer: yaml.safe_load only | {len(peer_times)} | {peer['tracebacks']} | - | {peer['unlocated']} "
        f"| - | - | {statistics.median(peer_times) * 1e3:.2f} | {max(peer_times) * 1e3:.1f} |"
    )
    print(
        f"\nbillion laughs ({len(_LAUGHS)} bytes): exit {laughs.code} in {laughs.seconds * 1e3:.1f} ms, "
        f"peak traced memory {laughs_peak / 2**20:.1f} MiB: {laughs.stderr.strip()}"
    )
    for line in samples[:10]:
        print("sample:", line)


if __name__ == "__main__":
    main()
