"""Webhook notifications: POST a summary of the decision to a URL, with retries.

Configured in the suite (``notify:``); secrets such as tokens come from the environment
through ``${VAR}`` in ``headers`` and are never written to any output. A failed delivery
is a warning: it never changes the decision.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .report import Report

if TYPE_CHECKING:
    from .suite import ApprovalPolicy, Notification


def summary_payload(report: Report) -> dict[str, Any]:
    """The JSON body sent to webhooks: what an incident channel needs, no more."""
    return {
        "schema": "https://llmguard.dev/schemas/notification/v1",
        "run_id": report.run_id,
        "suite": report.suite.name,
        "suite_sha256": report.suite.sha256,
        "decision": report.decision.decision.value,
        "reasons": report.decision.reasons,
        "finished_at": report.finished_at,
        "checks": [
            {"id": c.id, "uses": c.uses, "status": c.status.value, "severity": c.severity.value} for c in report.checks
        ],
        "models": {name: m.get("sha256") for name, m in report.models.items()},
    }


def approval_request(
    report: Report, target: Notification, out_dir: Path, policy: ApprovalPolicy | None
) -> dict[str, Any]:
    """What a REVIEW asks of its approvers: the policy, who, where to read, what to run."""
    out = Path(out_dir).resolve()
    attestation = out / "attestation.dsse.json"
    request: dict[str, Any] = {
        "approvers": list(target.approvers),
        "report": target.report_url or str(out / "report.html"),
        "compliance": str(out / "compliance.md"),
        "attestation": str(attestation),
        "approve_command": (
            f"llmguard approve {attestation} --key YOUR_KEY --as 'YOUR NAME' --role ROLE "
            "--reason 'WHAT YOU CHECKED AND ACCEPT'"
        ),
        "verify_command": (
            f"llmguard verify {attestation} --key RUN_PUBLIC_KEY --approvals APPROVALS_DIR --trust TRUST_FILE"
        ),
    }
    if policy is None:
        request["policy"] = None
        request["note"] = "the suite sets no policy.approvals: this REVIEW cannot be signed off"
    else:
        request["policy"] = policy.model_dump(mode="json")
        request["required_roles"] = list(policy.roles)
        request["required"] = policy.required
    return request


def decision_payload(
    report: Report, target: Notification, out_dir: Path, policy: ApprovalPolicy | None
) -> dict[str, Any]:
    """The body for one webhook: the summary, and on REVIEW the approval request."""
    body = summary_payload(report)
    if report.decision.decision.value == "REVIEW":
        body["approval"] = approval_request(report, target, out_dir, policy)
    return body


def post_json(
    url: str,
    body: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
    retries: int = 3,
    backoff: float = 0.5,
) -> int:
    """POST ``body``; retry on connection errors and 5xx/429 with exponential backoff.

    Returns the final HTTP status; raises ``RuntimeError`` when every attempt failed.
    """
    data = json.dumps(body, sort_keys=True).encode("utf-8")
    all_headers = {"Content-Type": "application/json", "User-Agent": "llmguard-ops", **(headers or {})}
    last = "no attempt"
    for attempt in range(retries + 1):
        request = urllib.request.Request(url, data=data, headers=all_headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                raise RuntimeError(f"webhook refused the notification: {last}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if attempt < retries:
            time.sleep(backoff * 2**attempt)
    raise RuntimeError(f"webhook unreachable after {retries + 1} attempts ({last})")
