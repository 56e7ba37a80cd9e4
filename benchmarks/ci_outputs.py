"""CI outputs and the pytest plugin: what they cost.

1. Start-up cost of the pytest11 plugin when it is inert: a fresh interpreter importing
   pytest alone versus pytest plus ``llmguard_ops.pytest_plugin`` (median of N).
2. Writing junit.xml and summary.md for a large report (many checks, many metrics with
   intervals), compared in the same run with the junit-xml library writing the same
   testcases without properties (the peer: what a plain junit-xml user would write).

Run: ``python benchmarks/ci_outputs.py [--checks 1000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def startup(code: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def big_report(n_checks: int, n_metrics: int):  # type: ignore[no-untyped-def]
    from llmguard_ops.report import Report, SuiteInfo
    from llmguard_ops.results import CheckResult, Decision, GateDecision, GateOutcome, Metric

    checks = []
    for i in range(n_checks):
        metrics = {
            f"m{j}": Metric(value=0.5 + j / 100, lower=0.4, upper=0.6, confidence=0.95, n=1000)
            for j in range(n_metrics)
        }
        gate = GateOutcome.model_validate(
            {
                "metric": "m0",
                "min": 0.45,
                "value": 0.5,
                "tested_low": 0.4,
                "passed": i % 7 != 0,
                "reason": "m0 = 0.5 [0.4, 0.6]",
            }
        )
        checks.append(
            CheckResult.model_validate(
                {
                    "id": f"check-{i}",
                    "uses": "performance.classification",
                    "plugin": "performance",
                    "severity": "blocker",
                    "status": "pass" if i % 7 else "fail",
                    "metrics": metrics,
                    "gates": [gate],
                    "duration_s": 0.1,
                }
            )
        )
    return Report(
        schema="x",
        run_id="r",
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:01Z",
        duration_s=1.0,
        suite=SuiteInfo(name="bench", path="suite.yaml", sha256="0" * 64, api_version="llmguard/v1", seed=0),
        decision=GateDecision.of(Decision.BLOCK, ["many"]),
        checks=checks,
    )


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    base = startup("import pytest", args.repeat)
    plugin = startup("import pytest, llmguard_ops.pytest_plugin", args.repeat)
    full = startup("import pytest, llmguard_ops.runner", args.repeat)

    import junit_xml

    from llmguard_ops.reporters.junit import write_junit
    from llmguard_ops.reporters.markdown import write_summary

    report = big_report(args.checks, args.metrics)
    out = Path(tempfile.mkdtemp())

    def peer() -> None:
        cases = []
        for r in report.checks:
            case = junit_xml.TestCase(r.id, classname="bench", elapsed_sec=r.duration_s)
            if r.status.value == "fail":
                case.add_failure_info(message="; ".join(g.reason for g in r.failed_gates))
            cases.append(case)
        (out / "peer.xml").write_text(junit_xml.to_xml_report_string([junit_xml.TestSuite("bench", cases)]))

    ours_junit = timed(lambda: write_junit(report, out), args.repeat)
    ours_md = timed(lambda: write_summary(report, out), args.repeat)
    peer_junit = timed(peer, args.repeat)

    print(f"python {sys.version.split()[0]}, {args.repeat} repeats, medians")
    print("| measurement | seconds |")
    print("| --- | ---: |")
    print(f"| fresh interpreter: import pytest | {base:.3f} |")
    print(f"| fresh interpreter: import pytest + llmguard_ops.pytest_plugin (inert) | {plugin:.3f} |")
    print(f"| fresh interpreter: import pytest + llmguard_ops.runner (the host) | {full:.3f} |")
    print(f"| junit.xml, {args.checks} checks x {args.metrics} metrics, with properties (ours) | {ours_junit:.3f} |")
    print(f"| junit-xml alone, same testcases, no properties (peer) | {peer_junit:.3f} |")
    print(f"| summary.md, {args.checks} checks | {ours_md:.3f} |")


if __name__ == "__main__":
    main()
