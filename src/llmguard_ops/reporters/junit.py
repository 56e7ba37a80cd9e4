"""``junit.xml``: one testcase per check, for the test reporters of CI systems.

Built with the ``junit-xml`` library. The layout follows the common JUnit XML format
that Jenkins, GitLab and GitHub test-report actions read:

* one ``<testsuite>`` named after the suite (timestamp, id = run id) with the decision,
  its reasons and the suite digest as properties;
* one ``<testcase>`` per check: ``classname`` = suite name, ``name`` = check id, ``time``
  = the check's duration;
* FAIL → ``<failure>`` with the failed gates' reasons; ERROR → ``<error>`` with the
  message and traceback; SKIP → ``<skipped>``; a failed ``warning``/``info`` check
  (WARN) passes, with its reasons in ``<system-out>``;
* metrics, intervals and gate outcomes as testcase ``<properties>`` (the common format
  allows them there; readers that do not know them ignore them), and warnings and gate
  lines as ``<system-out>`` so that readers without property support still show them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from ..registry import Reporter
from ..report import Report, atomic_write
from ..results import CheckResult, Status
from ._format import failure_reasons, key_metrics, metric_properties

FILENAME = "junit.xml"

# XML 1.0 forbids most control characters; a traceback may hold any of them.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str | None) -> str | None:
    return None if text is None else _ILLEGAL.sub("\ufffd", text)


def _display_path(path: str) -> str:
    """The suite path relative to the working folder when inside it: CI annotations
    (e.g. GitHub's) resolve ``file`` against the checkout."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path


def _stdout(result: CheckResult) -> str | None:
    lines = [f"{result.status.value.upper()} {result.id} ({result.uses}, severity {result.severity.value})"]
    lines += [f"gate: {g.reason}" for g in result.gates]
    shown = {g.metric for g in result.gates}
    lines += [f"metric: {km.text()}" for km in key_metrics(result) if km.name not in shown]
    if result.status is Status.WARN:
        lines += [f"warning gate failed: {r}" for r in failure_reasons(result)]
    lines += [f"warning: {w}" for w in result.warnings]
    if result.waiver:
        lines.append(
            f"waived by {result.waiver.get('approver')} until {result.waiver.get('expires')}: "
            f"{result.waiver.get('reason')}"
        )
    return _clean("\n".join(lines))


def _testcase(result: CheckResult, suite_name: str, suite_file: str) -> Any:
    from junit_xml import TestCase

    case = TestCase(
        name=result.id,
        classname=suite_name,
        elapsed_sec=result.duration_s,
        file=suite_file,
        stdout=_stdout(result),
    )
    if result.status is Status.FAIL:
        reasons = failure_reasons(result)
        case.add_failure_info(
            message=_clean("; ".join(reasons)),
            output=_clean("\n".join(reasons)),
            failure_type="llmguard.GateFailed",
        )
    elif result.status is Status.ERROR:
        err = result.error
        message = err.message if err else "error"
        case.add_error_info(
            message=_clean(message),
            output=_clean(err.traceback or message if err else message),
            error_type=err.type if err else "Error",
        )
    elif result.status is Status.SKIP:
        case.add_skipped_info(message=_clean(result.error.message if result.error else "skipped"))
    return case


def _suite_properties(report: Report) -> dict[str, str]:
    props = {
        "llmguard.decision": report.decision.decision.value,
        "llmguard.run_id": report.run_id,
        "llmguard.suite.sha256": report.suite.sha256,
        "llmguard.signed": str(report.signed).lower(),
    }
    version = report.plugins.get("llmguard_ops.builtin")
    if version:
        props["llmguard.version"] = version
    for i, reason in enumerate(report.decision.reasons, 1):
        props[f"llmguard.reason.{i}"] = _clean(reason) or ""
    return props


def build_junit(report: Report) -> ET.Element:
    """The ``<testsuites>`` element of a run (one ``<testsuite>`` holding every check)."""
    from junit_xml import TestSuite

    name = report.suite.name
    suite_file = _display_path(report.suite.path)
    cases = [_testcase(r, name, suite_file) for r in report.checks]
    stdout = [
        f"decision: {report.decision.decision.value}",
        *(f"- {r}" for r in report.decision.reasons),
    ]
    suite = TestSuite(
        name=name,
        test_cases=cases,
        timestamp=report.started_at,
        id=report.run_id,
        properties=_suite_properties(report),
        file=suite_file,
        stdout=_clean("\n".join(stdout)),
    )
    element: ET.Element = suite.build_xml_doc()
    element.set("time", f"{sum(r.duration_s for r in report.checks):.6f}")  # not a float sum's noise
    # junit-xml has no testcase properties; the common format puts them first in <testcase>.
    for node, result in zip(element.findall("testcase"), report.checks, strict=True):
        props = ET.Element("properties")
        for key, value in metric_properties(result):
            ET.SubElement(props, "property", {"name": key, "value": _clean(value) or ""})
        node.insert(0, props)
    root = ET.Element(
        "testsuites",
        {
            "name": f"llmguard {name}",
            "tests": element.get("tests", "0"),
            "failures": element.get("failures", "0"),
            "errors": element.get("errors", "0"),
            "skipped": element.get("skipped", "0"),
            "time": f"{report.duration_s:.6f}",
            "timestamp": report.started_at,
        },
    )
    root.append(element)
    return root


def junit_text(report: Report) -> str:
    """``junit.xml`` as text (UTF-8, indented)."""
    root = build_junit(report)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: Report, out_dir: Path) -> list[Path]:
    """Write ``junit.xml`` into ``out_dir`` (atomically)."""
    return [atomic_write(Path(out_dir) / FILENAME, junit_text(report))]


@hookimpl
def llmguard_register_reporters(register: Callable[[Reporter], None]) -> None:
    register(
        Reporter(
            "junit", write_junit, "JUnit XML (junit.xml) for CI test reporters.", needs=(), provides=("junit.xml",)
        )
    )
