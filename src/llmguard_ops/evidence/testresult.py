"""The in-toto Test Result attestation (``https://in-toto.io/attestation/test-result/v0.1``).

Written beside the project's own attestation as ``test-result.dsse.json`` and signed with
the same key, so tools that read the vetted in-toto predicates (and know nothing of
llmguard) can check what was tested. Its predicate::

    {"result": "PASSED" | "WARNED" | "FAILED",
     "configuration": [ResourceDescriptor of the suite, then of each dataset],
     "passedTests": [check ids], "warnedTests": [...], "failedTests": [...]}

A check that passed is passed; a failed warning/info gate (WARN) and a SKIP are warned
(the predicate has no "skipped" list, and a skipped check is not a pass); FAIL and ERROR
are failed. ``result`` is FAILED when any test failed, else WARNED when any warned.
The subjects are the run's (the models, see :func:`.statement.subjects`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .statement import STATEMENT_TYPE, subjects

if TYPE_CHECKING:
    from ..report import Report

TEST_RESULT_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
TEST_RESULT_NAME = "test-result.dsse.json"


def build_test_result(report: Report) -> dict[str, Any]:
    from ..results import Status

    passed, warned, failed = [], [], []
    for check in report.checks:
        if check.status is Status.PASS:
            passed.append(check.id)
        elif check.status in (Status.WARN, Status.SKIP):
            warned.append(check.id)
        else:
            failed.append(check.id)
    result = "FAILED" if failed else "WARNED" if warned else "PASSED"
    configuration: list[dict[str, Any]] = [
        {
            "name": report.suite.path or report.suite.name,
            "digest": {"sha256": report.suite.sha256},
            "annotations": {"kind": "suite", "suite": report.suite.name},
        }
    ]
    for name, data in sorted(report.datasets.items()):
        configuration.append(
            {
                "name": data.get("path") or name,
                "digest": {"sha256": data["sha256"]},
                "annotations": {"kind": "dataset", "dataset": name},
            }
        )
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects(report),
        "predicateType": TEST_RESULT_TYPE,
        "predicate": {
            "result": result,
            "configuration": configuration,
            "passedTests": passed,
            "warnedTests": warned,
            "failedTests": failed,
        },
    }
