"""``report.html``: one self-contained page a reviewer opens to sign off a run.

The page holds everything inline (styles, plots as SVG data URIs, the check's own
images as data URIs) and makes no request of its own: no scripts, fonts or styles from
elsewhere, so it can be archived with the evidence and opened offline. It is rendered
with jinja2 from ``templates/report.html.j2`` (autoescaped) and can be re-rendered from a
stored ``report.json`` with ``llmguard report``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from ..registry import Reporter
from ..report import Report, atomic_write
from ..results import Decision
from . import plots
from ._blocks import Table
from ._format import fmt, jinja_env
from .view import VERIFY_COMMAND, artifacts_view, check_view, failed_gates_table, overview_plot

__all__ = ["jinja_env", "render_html", "write_html"]

#: Files of a run the page lists first (when written before it); other outputs follow.
EVIDENCE_FILES = (
    "report.json",
    "attestation.dsse.json",
    "junit.xml",
    "summary.md",
    "model_card.md",
    "compliance.md",
)
#: What the page lists the digests of, so what must be written before it.
NEEDS = ("junit.xml", "model_card.md", "compliance.md")
HISTORY_LIMIT = 20


def output_digests(report: Report) -> list[list[str]]:
    """``[name, sha256]`` of the run's outputs written so far (``report.outputs``), the
    evidence files first; check artifacts are listed with their checks instead."""
    files = {path: entry.sha256 for path, entry in report.outputs.items() if entry.check is None}
    first = [name for name in EVIDENCE_FILES if name in files]
    return [[name, files[name]] for name in [*first, *sorted(set(files) - set(first))]]


def _evidence(report: Report, source_dir: Path) -> dict[str, Any]:
    models = Table(
        ["model", "loader", "type", "file", "sha256"],
        [
            [
                name,
                str(m.get("loader", "")),
                str(m.get("type", "")),
                Path(str(m.get("path") or "")).name,
                str(m.get("sha256", "")),
            ]
            for name, m in report.models.items()
        ],
    )
    datasets = Table(
        ["dataset", "rows", "target", "sensitive", "file", "sha256"],
        [
            [
                name,
                fmt(d.get("rows")),
                str(d.get("target") or ""),
                ", ".join(d.get("sensitive") or []),
                Path(str(d.get("path") or "")).name,
                str(d.get("sha256", "")),
            ]
            for name, d in report.datasets.items()
        ],
    )
    files = output_digests(report)
    artifacts: list[list[str]] = []
    for check in report.checks:
        artifacts += artifacts_view(check, source_dir)[1]
    attestation = "attestation.dsse.json" in report.outputs
    return {
        "models": models,
        "datasets": datasets,
        "files": Table(["file", "sha256"], files) if files else None,
        "artifacts": Table(["check", "artifact", "file", "sha256", "size"], artifacts) if artifacts else None,
        "attestation": attestation,
        "verify": VERIFY_COMMAND,
    }


def _environment(report: Report) -> dict[str, Any]:
    env = dict(report.environment)
    git = env.get("git") or {}
    facts = [
        ["python", f"{env.get('python', '?')} ({env.get('implementation', '')})"],
        ["os", str(env.get("platform") or env.get("os") or "?")],
        ["machine", f"{env.get('machine', '?')}, {env.get('cpu_count', '?')} CPUs"],
        ["gpu", ", ".join(g.get("name", "?") for g in env.get("gpu") or []) or "none"],
        [
            "git",
            f"{git.get('commit', '?')}{' (dirty)' if git.get('dirty') else ''}" if git else "not a git tree",
        ],
    ]
    packages = sorted((env.get("packages") or {}).items())
    plugins = sorted((name, version or "") for name, version in report.plugins.items())
    return {
        "facts": Table(["", ""], facts),
        "packages": Table(["package", "version"], [list(p) for p in packages]),
        "plugins": Table(["plugin", "version"], [list(p) for p in plugins]),
    }


def _history(report: Report, runs: list[Any]) -> dict[str, Any] | None:
    if not runs:
        return None
    from ..history import gated_keys

    runs = runs[-HISTORY_LIMIT:]
    keys = gated_keys(report)
    ticks = [r.started_at[5:16].replace("T", " ") for r in runs] + ["this run"]
    series = []
    for key in keys:
        check_id, _, name = key.partition(".")
        current = report.check(check_id)
        gate = next((g for g in current.gates if g.metric == name), None)
        points: list[plots.Estimate | None] = []
        for run in runs:
            m = run.metric(key)
            points.append(None if m is None else plots.Estimate(key, m.value, m.lower, m.upper))
        m = current.metrics.get(name)
        points.append(
            None
            if m is None
            else plots.Estimate(
                key,
                m.value,
                m.lower,
                m.upper,
                gate.min if gate else None,
                gate.max if gate else None,
                gate.passed if gate else None,
            )
        )
        series.append(plots.Series(key, ticks, points))
    rows = [
        [
            r.started_at[:19].replace("T", " "),
            r.run_id[:8],
            r.decision or "?",
            "yes" if r.audit is not None else "—",
            "yes" if r.report is not None else "—",
        ]
        for r in runs
    ]
    return {
        "plot": plots.history_lines(series),
        "count": len(runs),
        "runs": Table(
            ["started", "run", "decision", "audit log", "report stored"],
            rows,
            [(r.decision or "").lower() for r in runs],
        ),
    }


def build_page(
    report: Report,
    source_dir: Path,
    history_runs: list[Any] | None = None,
    verification: Any = None,
) -> dict[str, Any]:
    """The template's context: every table, plot and fact of the page.

    ``verification`` (a :class:`~llmguard_ops.evidence.verify.ReportStatus`, when
    re-rendering with ``llmguard report``) says whether the attestation beside the
    report verifies over it; the page then shows that instead of the report's own claim.
    """
    counts = Counter(c.status.value for c in report.checks)
    return {
        "report": report,
        "decision": report.decision.decision.value,
        "decision_class": report.decision.decision.value.lower(),
        "decision_text": {
            Decision.PROMOTE: "Every blocking gate holds: the candidate may be promoted.",
            Decision.REVIEW: "No blocking gate failed, but a warning asks for a human review before promotion.",
            Decision.BLOCK: "A blocking gate failed or a check could not run: the candidate must not be promoted.",
        }[report.decision.decision],
        "counts": ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
        "failed": failed_gates_table(report),
        "overview": overview_plot(report),
        "checks": [check_view(c, source_dir) for c in report.checks],
        "evidence": _evidence(report, source_dir),
        "environment": _environment(report),
        "history": _history(report, history_runs or []),
        "plots_available": plots.available(),
        "metadata": {str(k): v for k, v in report.suite.metadata.items()},
        "verification": verification,
    }


def render_html(
    report: Report,
    source_dir: Path,
    history_runs: list[Any] | None = None,
    verification: Any = None,
) -> str:
    """The page as text; ``source_dir`` is the run's output folder (artifacts live there)."""
    return str(
        jinja_env().get_template("report.html.j2").render(**build_page(report, source_dir, history_runs, verification))
    )


def earlier_runs(report: Report) -> list[Any]:
    """Earlier runs of the same suite from the history folder (empty when there is none)."""
    from ..history import history_dir, load_history

    directory = history_dir()
    if directory is None:
        return []
    runs = load_history(directory, suite=report.suite.name, exclude_run=report.run_id).runs
    # re-rendering an old report shows the runs before it, not the ones after
    return [r for r in runs if r.started_at < report.started_at]


def write_html(report: Report, out_dir: Path, source_dir: Path | None = None, verification: Any = None) -> list[Path]:
    """Render and write ``report.html`` into ``out_dir``."""
    text = render_html(report, source_dir or out_dir, earlier_runs(report), verification)
    return [atomic_write(out_dir / "report.html", text)]


@hookimpl
def llmguard_register_reporters(register: Callable[[Reporter], None]) -> None:
    register(
        Reporter(
            name="html",
            write=lambda report, out_dir: write_html(report, out_dir),
            summary="self-contained report.html for reviewers",
            needs=NEEDS,
            provides=("report.html",),
        )
    )
