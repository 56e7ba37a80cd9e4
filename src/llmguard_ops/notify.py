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
from typing import Any

from .report import Report


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
        "checks": [{"id": c.id, "uses": c.uses, "status": c.status.value, "severity": c.severity.value}
                   for c in report.checks],
        "models": {name: m.get("sha256") for name, m in report.models.items()},
    }


def post_json(url: str, body: dict[str, Any], *, headers: dict[str, str] | None = None, timeout: float = 5.0,
              retries: int = 3, backoff: float = 0.5) -> int:
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
