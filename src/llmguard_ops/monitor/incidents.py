"""Incident playbooks: the suite's ``incidents:`` steps, run on a fired gate or BLOCK.

Steps run in order. ``webhook`` and ``ticket`` are built in; any other ``uses`` goes to
the plugins' ``llmguard_incident_step`` hook (``mlflow.rollback`` in llmguard-mlflow).
A step marked ``needs_approval`` pauses the playbook: it and the steps after it wait
until ``llmguard monitor ... --approve STEP_ID`` names it. Each step's outcome (done,
dry-run, failed, awaiting approval) is appended to the audit log and kept in the
window's ``incident.json``. Nothing here changes a window's decision.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..report import atomic_write

if TYPE_CHECKING:
    from ..report import Report
    from .spec import IncidentStep

INCIDENT_FILE = "incident.json"


def triggered(step: IncidentStep, decision: str, fired: list[str]) -> bool:
    return decision in step.when or ("fired" in step.when and bool(fired))


def _fields(report: Report, window: str, fired: list[str]) -> dict[str, str]:
    return {
        "suite": report.suite.name,
        "window": window,
        "decision": report.decision.decision.value,
        "fired": ", ".join(fired) or "-",
        "reasons": "; ".join(report.decision.reasons) or "-",
        "run_id": report.run_id,
    }


def _json_escaped(fields: dict[str, str]) -> dict[str, str]:
    return {k: json.dumps(v)[1:-1] for k, v in fields.items()}


def _host_of(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def run_step(
    step: IncidentStep, host: Any, report: Report, out_dir: Path, window: str, fired: list[str], dry_run: bool
) -> str:
    """Run one step; returns its outcome line, raises on failure."""
    from ..notify import post_json, summary_payload

    params = step.with_
    if step.uses in ("webhook", "ticket"):
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"step '{step.id}': with.url must be an http(s) URL")
        if step.uses == "webhook":
            payload: Any = {**summary_payload(report), "window": window, "fired": fired}
        else:
            template = params.get("template")
            if not isinstance(template, str):
                raise ValueError(f"step '{step.id}': with.template must be a JSON text")
            text = string.Template(template).safe_substitute(_json_escaped(_fields(report, window, fired)))
            try:
                payload = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"step '{step.id}': the filled-in template is not JSON ({exc.msg})") from None
        where = _host_of(url)  # never the full URL: it may hold a token
        if dry_run:
            return f"would POST {step.uses} to {where}"
        headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
        post_json(url, payload, headers=headers, timeout=step.timeout, retries=int(params.get("retries", 2)))
        return f"POSTed {step.uses} to {where}"
    outcome = host.hook.llmguard_incident_step(
        step=step.uses, params=dict(params), report=report, out_dir=out_dir, dry_run=dry_run
    )
    if outcome is None:
        raise LookupError(f"no installed plugin runs incident step '{step.uses}'")
    return str(outcome)


def run_playbook(
    steps: Iterable[IncidentStep],
    host: Any,
    report: Report,
    out_dir: Path,
    window: str,
    fired: list[str],
    *,
    dry_run: bool = False,
    approved: Iterable[str] = (),
    audit_log: Path | None = None,
    start_at: str | None = None,
) -> list[dict[str, Any]]:
    """Run the triggered steps in order; returns one record per step considered.

    ``start_at``: resume a paused playbook from this step id (its earlier steps ran).
    """
    ok = set(approved)
    records: list[dict[str, Any]] = []
    decision = report.decision.decision.value
    paused = False
    started = start_at is None
    for step in steps:
        started = started or step.id == start_at
        if not started or not triggered(step, decision, fired):
            continue
        record: dict[str, Any] = {"step": step.id, "uses": step.uses, "dry_run": dry_run}
        if paused or (step.needs_approval and step.id not in ok):
            paused = True
            record.update(
                status="awaiting-approval",
                outcome=f"paused: rerun with --approve {step.id}"
                if step.needs_approval
                else "waits for an earlier step's approval",
            )
        else:
            try:
                record.update(
                    status="dry-run" if dry_run else "done",
                    outcome=run_step(step, host, report, out_dir, window, fired, dry_run),
                )
            except Exception as exc:
                record.update(status="failed", outcome=f"{type(exc).__name__}: {exc}")
        records.append(record)
        if audit_log is not None:
            from ..evidence.audit import append
            from ..report import now_rfc3339

            append(
                audit_log,
                {
                    "kind": "incident-step",
                    "time": now_rfc3339(),
                    "run_id": report.run_id,
                    "suite": report.suite.name,
                    "window": window,
                    **record,
                },
            )
    return records


def save(out_dir: Path, window: str, fired: list[str], records: list[dict[str, Any]]) -> Path:
    return atomic_write(
        out_dir / INCIDENT_FILE, json.dumps({"window": window, "fired": fired, "steps": records}, indent=2) + "\n"
    )
