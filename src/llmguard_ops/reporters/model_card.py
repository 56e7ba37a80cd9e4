"""``model_card.md``: the run as a model card a reviewer can file with the model.

Laid out in the spirit of *Model Cards for Model Reporting* (Mitchell et al., 2019) and
the Hugging Face model-card template: YAML metadata with a ``model-index`` of results
(readable by ``huggingface_hub``), then model details, intended use (from the suite's
``metadata``), evaluation data, metrics with their intervals and gates, the sections the
installed checks declare (``CheckDefinition.card_section``: fairness, explanations, ...),
limitations (with what no check of the suite assessed: ``CheckDefinition.unassessed``),
and the digests that tie the card to the evidence of the run.

Suite ``metadata`` keys the card reads: ``intended_use``, ``out_of_scope_use``,
``limitations`` (text or list), ``owner``, ``contact``, ``license``, ``model_name``,
``tags``; any other key is listed under model details.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from ..registry import CardSection, Registry, Reporter
from ..report import Report, atomic_write
from ..results import CheckResult, Status
from ._format import fmt, fmt_interval, jinja_env, md_block, md_code, md_inline
from .panels import group_rows
from .view import VERIFY_COMMAND, fmt_bound

_KNOWN_KEYS = {
    "intended_use",
    "out_of_scope_use",
    "out_of_scope",
    "limitations",
    "owner",
    "contact",
    "license",
    "model_name",
    "tags",
    "description",
}
HEADLINE_LIMIT = 16


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: one line, every markup character escaped."""
    return md_inline(str(value).strip())


def subject_model(report: Report) -> str | None:
    """The model the card is about: the one the checks evaluate most often."""
    counts = Counter(str(c.params["model"]) for c in report.checks if isinstance(c.params.get("model"), str))
    if counts:
        return counts.most_common(1)[0][0]
    if "candidate" in report.models:
        return "candidate"
    return next(iter(report.models), None)


def _headline(check: CheckResult) -> list[str]:
    gated = [g.metric for g in check.gates if g.metric in check.metrics]
    rest = [n for n in check.metrics if n not in gated and "." not in n]
    return (gated + rest)[: max(HEADLINE_LIMIT, len(gated))]


def _metric_rows(check: CheckResult, names: list[str]) -> list[dict[str, str]]:
    gates = {g.metric: g for g in check.gates}
    rows = []
    for name in names:
        m = check.metrics[name]
        g = gates.get(name)
        rows.append(
            {
                "metric": name,
                "value": fmt(m.value),
                "interval": fmt_interval(m) or "—",
                "gate": fmt_bound(g) if g else "—",
                "result": ("pass" if g.passed else "**fail**") if g else "—",
            }
        )
    return rows


def _top_features(check: CheckResult, k: int = 10) -> list[tuple[str, str]]:
    importance = {
        n.removeprefix("importance."): m.value for n, m in check.metrics.items() if n.startswith("importance.")
    }
    if not importance:
        for key in ("importance", "mean_abs_shap", "feature_importance"):
            value = check.details.get(key)
            if isinstance(value, dict):
                importance = {str(f): float(v) for f, v in value.items() if isinstance(v, int | float)}
                break
    if importance:
        ordered = sorted(importance.items(), key=lambda kv: abs(kv[1]), reverse=True)[:k]
        return [(f, fmt(v)) for f, v in ordered]
    top = check.details.get("top_features")
    if isinstance(top, list):
        return [(str(f if not isinstance(f, dict) else f.get("feature", f)), "") for f in top[:k]]
    return []


def _listify(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _limitations(report: Report, registry: Registry) -> list[str]:
    """Limitation lines as Markdown: ids as code spans, every other text escaped."""
    c_, t_ = md_code, md_inline
    meta = report.suite.metadata
    items = [t_(x) for x in _listify(meta.get("limitations"))]
    for c in report.checks:
        if c.status in (Status.FAIL, Status.WARN):
            items += [f"{c_(c.id)} ({c.severity.value}): {t_(g.reason)}" for g in c.failed_gates]
        elif c.status is Status.ERROR:
            items.append(
                f"{c_(c.id)} could not run ({t_(c.error.type if c.error else 'error')}: "
                f"{t_(c.error.message if c.error else '')}); its property is unverified."
            )
        elif c.status is Status.SKIP:
            items.append(f"{c_(c.id)} was skipped: {t_(c.error.message if c.error else '')}")
        if c.waiver:
            items.append(
                f"{c_(c.id)} is waived by {t_(c.waiver.get('approver'))} until "
                f"{t_(c.waiver.get('expires'))}: {t_(c.waiver.get('reason'))}"
            )
        items += [f"{c_(c.id)}: {t_(w)}" for w in c.warnings]
        # a check may map its failures to named risk taxonomies (details["risks"])
        for risk in c.details.get("risks") or []:
            if isinstance(risk, dict) and risk.get("failed"):
                taxonomy = "; ".join(str(t) for t in risk.get("taxonomy") or [])
                items.append(
                    f"{c_(c.id)}: {t_(risk['failed'])} of {t_(risk.get('cases'))} {c_(risk.get('id'))} "
                    f"cases failed ({t_(taxonomy)})"
                )
    ran = {c.uses for c in report.checks}
    items += [text for text, checks in registry.unassessed() if not ran.intersection(checks)]
    used = {str(c.params["dataset"]) for c in report.checks if isinstance(c.params.get("dataset"), str)}
    sizes = [
        f"{c_(name)} ({d['rows']:,} rows)"
        for name, d in report.datasets.items()
        if name in used and isinstance(d.get("rows"), int)
    ]
    if sizes:
        items.append(
            f"Metrics are estimates from {', '.join(sizes)}: read each with its interval, "
            "and expect production data to differ from the evaluation sample."
        )
    return items


def _headline_tables(report: Report) -> list[tuple[CheckResult, list[dict[str, str]]]]:
    """Every check's headline metrics, each metric of a (check, model, dataset) shown once."""
    headline = []
    shown: set[tuple[str, str, str, str]] = set()
    for c in report.checks:
        gated = {g.metric for g in c.gates}
        where = (c.uses, str(c.params.get("model")), str(c.params.get("dataset")))
        names = [n for n in _headline(c) if n in gated or (*where, n) not in shown]
        shown |= {(*where, n) for n in names}
        if names:
            headline.append((c, _metric_rows(c, names)))
    return headline


def _model_index(report: Report, subject: str | None) -> list[dict[str, Any]]:
    """The ``model-index`` results of the subject model (Hugging Face card metadata)."""
    seen: set[tuple[str, str, str]] = set()
    results = []
    for check in report.checks:
        if check.params.get("model") not in (subject, None) or not check.metrics:
            continue
        dataset = str(check.params.get("dataset") or "")
        metrics = []
        for name in _headline(check):
            key = (check.uses, dataset, name)
            if name.endswith("_delta") or key in seen:
                continue
            seen.add(key)
            metrics.append(
                {
                    "type": name,
                    "value": round(check.metrics[name].value, 6),
                    "name": f"{name} ({check.id})",
                    "verified": False,
                }
            )
        if metrics:
            results.append(
                {
                    "task": {"type": check.uses, "name": check.id},
                    "dataset": {
                        "name": dataset or "unspecified",
                        "type": Path(str(report.datasets.get(dataset, {}).get("path") or dataset)).name
                        or "unspecified",
                    },
                    "metrics": metrics,
                }
            )
    return results


def _front_matter(report: Report, subject: str | None) -> str:
    """The card's YAML metadata block (tags, model name, license, model-index)."""
    import yaml

    meta = report.suite.metadata
    front: dict[str, Any] = {
        "tags": ["llmguard", *_listify(meta.get("tags"))],
        "model_name": str(meta.get("model_name") or subject or report.suite.name),
    }
    if meta.get("license"):
        front["license"] = str(meta["license"])
    results = _model_index(report, subject)
    if results:
        front["model-index"] = [{"name": front["model_name"], "results": results}]
    return str(yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip())


def _section_entry(check: CheckResult, section: CardSection) -> dict[str, Any]:
    """How one check's result shows in its section (see :class:`~llmguard_ops.CardSection`)."""
    untagged = [n for n in check.metrics if "." not in n][:HEADLINE_LIMIT]
    if callable(section.render):
        return {"style": "text", "check": check, "text": section.render(check)}
    if section.render == "groups":
        rows = _metric_rows(check, untagged if not check.gates else _headline(check))
        return {"style": "groups", "check": check, "rows": rows, "groups": group_rows(check)}
    if section.render == "features":
        return {"style": "features", "check": check, "top": _top_features(check), "rows": _metric_rows(check, untagged)}
    return {"style": "metrics", "check": check, "rows": _metric_rows(check, _headline(check))}


def _sections(report: Report, registry: Registry) -> list[dict[str, Any]]:
    """The sections the installed checks declare, in order, with the results that go there."""
    sections = []
    for section, names in registry.card_sections():
        entries = []
        for check in report.checks:
            declared = registry.checks[check.uses].card_section if check.uses in names else None
            if declared is not None:  # each check renders as its own declaration says
                entries.append(_section_entry(check, declared))
        sections.append({"title": section.title, "empty": section.empty, "entries": entries})
    return sections


def _evidence(report: Report) -> list[tuple[str, str]]:
    """Digests of the report and the attestation, when written before the card."""
    names = ("report.json", "attestation.dsse.json")
    return [(name, report.outputs[name].sha256) for name in names if name in report.outputs]


def _installed() -> Registry:
    from ..plugins import get_plugin_manager

    return get_plugin_manager().registry()


def build_card(report: Report, source_dir: Path, registry: Registry | None = None) -> dict[str, Any]:
    """The template's context for ``model_card.md``.

    ``registry`` (the run's) says which sections the checks declare; by default the
    installed plugins are asked.
    """
    registry = registry if registry is not None else _installed()
    meta = report.suite.metadata
    subject = subject_model(report)
    return {
        "report": report,
        "front_matter": _front_matter(report, subject),
        "subject": subject,
        "subject_info": report.models.get(subject or "", {}),
        "others": {n: m for n, m in report.models.items() if n != subject},
        "meta": meta,
        "extra_meta": {k: v for k, v in meta.items() if k not in _KNOWN_KEYS},
        "intended": meta.get("intended_use"),
        "out_of_scope": meta.get("out_of_scope_use") or meta.get("out_of_scope"),
        "headline": _headline_tables(report),
        "sections": _sections(report, registry),
        "limitations": _limitations(report, registry),
        "evidence": _evidence(report),
        "verify": VERIFY_COMMAND,
        "git": (report.environment.get("git") or {}),
    }


def render_card(report: Report, source_dir: Path, verification: Any = None, registry: Registry | None = None) -> str:
    env = jinja_env()
    env.filters["cell"] = md_cell
    env.filters["md"] = md_inline
    env.filters["mdblock"] = md_block
    env.filters["code"] = md_code
    env.filters["code_cell"] = lambda value: md_code(value, table=True)
    context = {**build_card(report, source_dir, registry), "verification": verification}
    return str(env.get_template("model_card.md.j2").render(**context))


def write_card(
    report: Report,
    out_dir: Path,
    source_dir: Path | None = None,
    verification: Any = None,
    registry: Registry | None = None,
) -> list[Path]:
    """Render and write ``model_card.md`` into ``out_dir``."""
    text = render_card(report, source_dir or out_dir, verification, registry)
    return [atomic_write(out_dir / "model_card.md", text)]


@hookimpl
def llmguard_register_reporters(register: Callable[[Reporter], None]) -> None:
    register(
        Reporter(
            name="model_card",
            write=lambda report, out_dir, registry: write_card(report, out_dir, registry=registry),
            summary="model_card.md in the Model Cards / Hugging Face layout",
            needs=(),
            provides=("model_card.md",),
        )
    )
