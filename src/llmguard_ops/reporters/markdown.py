"""``summary.md``: the decision and a table of checks, for a pull request or a CI step.

The file links to the run's other outputs (relative links, valid next to the file).
When ``$GITHUB_STEP_SUMMARY`` is set (GitHub Actions), the same summary is *appended*
to that file (other steps' summaries are kept); there relative links would point
nowhere, so the outputs are named and the run page (where uploaded artifacts live) is
linked instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from ..registry import Reporter
from ..report import Report, atomic_write
from ..results import CheckResult, Decision, Status
from ._format import failure_reasons, key_metrics, md_code, md_inline, number

FILENAME = "summary.md"
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
KEY_METRICS = 3

_DECISION_MARK = {Decision.PROMOTE: "✅", Decision.REVIEW: "⚠️", Decision.BLOCK: "⛔"}
_STATUS_MARK = {
    Status.PASS: "✅",
    Status.WARN: "⚠️",
    Status.FAIL: "❌",
    Status.ERROR: "💥",
    Status.SKIP: "⏭️",
}


def cell(text: str) -> str:
    """User text made safe for one Markdown table cell: no pipe, raw HTML, link or emphasis.

    Lines are kept apart with ``<br>``; every line is escaped by :func:`md_inline`.
    """
    return "<br>".join(md_inline(line) for line in str(text).replace("\r", "").split("\n"))


def _metrics_cell(result: CheckResult) -> str:
    parts = []
    for km in key_metrics(result, limit=KEY_METRICS):
        text = f"**{cell(km.name)}** {number(km.metric.value)}"
        if km.interval():
            text += f" {km.interval()}"
        if km.gate is not None:
            text += f" ({km.bound()}) {'✓' if km.gate.passed else '✗'}"
        parts.append(text)
    if result.status is Status.ERROR and result.error is not None:
        parts.append(f"{cell(result.error.type)}: {cell(result.error.message)}")
    elif result.status is Status.SKIP and result.error is not None:
        parts.append(f"skipped: {cell(result.error.message)}")
    return "<br>".join(parts) or "-"


def _tally(report: Report) -> str:
    counts: dict[str, int] = {}
    for c in report.checks:
        counts[c.status.value] = counts.get(c.status.value, 0) + 1
    order = [s.value for s in Status]
    return ", ".join(f"{counts[s]} {s}" for s in order if s in counts) or "none"


def github_run_url(env: Mapping[str, str]) -> str | None:
    """The page of the current GitHub Actions run (its uploaded artifacts are listed there)."""
    server, repo, run = (
        env.get("GITHUB_SERVER_URL"),
        env.get("GITHUB_REPOSITORY"),
        env.get("GITHUB_RUN_ID"),
    )
    if server and repo and run:
        return f"{server.rstrip('/')}/{repo}/actions/runs/{run}"
    return None


def render_summary(report: Report, outputs: list[str], run_url: str | None = None, relative_links: bool = True) -> str:
    """The Markdown summary of ``report``.

    :param outputs: file names of the run's other outputs, linked (or named) at the end.
    :param run_url: where the outputs can be found when relative links do not work.
    :param relative_links: link ``outputs`` relative to the summary file.
    """
    d = report.decision
    lines = [
        f"## {_DECISION_MARK[d.decision]} llmguard: {cell(report.suite.name)} — **{d.decision.value}**",
        "",
        f"{len(report.checks)} checks: {_tally(report)} · {report.duration_s:.1f} s · "
        f"{'signed' if report.signed else 'unsigned'} · run `{report.run_id[:8]}`",
        "",
    ]
    where = _cluster_line(report.executor)
    if where:
        lines += [where, ""]
    if d.reasons:
        lines += ["**Reasons**", ""]
        lines += [f"- {cell(r)}" for r in d.reasons]
        lines.append("")
    lines += [
        "| Check | Status | Severity | Key metrics (gated first) | Time |",
        "| --- | --- | --- | --- | ---: |",
    ]
    for r in report.checks:
        status = f"{_STATUS_MARK[r.status]} {r.status.value}" + (" (waived)" if r.waiver else "")
        lines.append(
            f"| {md_code(r.id, table=True)}<br><sub>{cell(r.uses)}</sub> | {status} | {r.severity.value} | "
            f"{_metrics_cell(r)} | {r.duration_s:.2f} s |"
        )
    failing = [r for r in report.checks if r.status in (Status.FAIL, Status.WARN) and failure_reasons(r)]
    if failing:
        lines += ["", "<details><summary>Failed gates</summary>", ""]
        for r in failing:
            lines += [f"- {md_code(r.id)}: {cell(reason)}" for reason in failure_reasons(r)]
        lines += ["", "</details>"]
    if outputs:
        if relative_links:
            listed = " · ".join(f"[{name}]({name})" for name in outputs)
        else:
            listed = " · ".join(f"`{name}`" for name in outputs)
        where = f" ([run artifacts]({run_url}))" if run_url and not relative_links else ""
        lines += ["", f"Outputs: {listed}{where}"]
    lines += [
        "",
        f"<sub>suite {md_code(Path(report.suite.path).name)} sha256 `{report.suite.sha256[:16]}`</sub>",
        "",
    ]
    return "\n".join(lines)


def _cluster_line(executor: Mapping[str, Any] | None) -> str | None:
    """Where the checks ran, when not in the run's own process (``Report.executor``)."""
    if not executor or executor.get("name") == "local":
        return None
    if executor.get("name") != "ray":
        return f"Checks ran on executor {md_code(str(executor.get('name')))}."
    return (
        f"Checks ran on Ray {cell(str(executor.get('ray_version')))}: {executor.get('nodes')} nodes, "
        f"{executor.get('cpus', 0):g} CPUs, {executor.get('gpus', 0):g} GPUs."
    )


def _outputs(report: Report) -> list[str]:
    """The run's outputs written before the summary (``report.outputs``), plus the summary
    itself; the checks' artifacts as one ``artifacts/`` entry."""
    names = {p for p, entry in report.outputs.items() if entry.check is None and not Path(p).is_absolute()}
    names.add(FILENAME)
    if any(entry.check is not None for entry in report.outputs.values()):
        names.add("artifacts/")
    first = ["report.json", "report.html", "junit.xml", "attestation.dsse.json", FILENAME]
    return [n for n in first if n in names] + sorted(names - set(first))


def append_step_summary(text: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append ``text`` to ``$GITHUB_STEP_SUMMARY`` when set; never overwrite what is there."""
    env = os.environ if env is None else env
    target = env.get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    return path


def write_summary(report: Report, out_dir: Path) -> list[Path]:
    """Write ``summary.md`` and append it to the GitHub step summary when there is one."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = _outputs(report)
    written = [atomic_write(out_dir / FILENAME, render_summary(report, outputs))]
    if os.environ.get(STEP_SUMMARY_ENV):
        append_step_summary(render_summary(report, outputs, github_run_url(os.environ), relative_links=False))
    return written


@hookimpl
def llmguard_register_reporters(register: Callable[[Reporter], None]) -> None:
    register(
        Reporter(
            "markdown",
            write_summary,
            "Markdown summary (summary.md), also to $GITHUB_STEP_SUMMARY.",
            needs=("*",),  # it links every other output
            provides=(FILENAME,),
        )
    )
