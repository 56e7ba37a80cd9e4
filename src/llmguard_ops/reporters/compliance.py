"""``compliance.md``: the run's evidence mapped item by item to the frameworks auditors use.

The mapping is data (``templates/compliance.yaml``): EU AI Act Annex IV points, NIST AI
RMF MEASURE subcategories and ISO/IEC 42001 Annex A controls, each with the evidence
needs a run can meet (check families, datasets by digest, the signed attestation, the
Test Result, the approval policy, ...) and what still needs a person. Whether each need
is met is computed from the report of this run: a suite with no ``bias.*`` check gets
"not covered" for the fairness items, whatever the table says. An errored or skipped
check does not count as evidence.

The approval policy is not part of ``report.json``; the page reads it from the suite
file when that file still has the digest the run recorded and no override touched the
policy (otherwise it says the policy is in the attestation's predicate).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from ..registry import Reporter
from ..report import Report, atomic_write
from ..results import CheckResult, Status
from ._format import md_code, md_inline


def _c(value: object) -> str:
    return md_code(value, table=True)


FILENAME = "compliance.md"
COVERED, PARTLY, NOT_COVERED, PERSON = "covered", "partly", "not covered", "needs a person"
#: evidence names the mapping may use (see templates/compliance.yaml)
EVIDENCE_NAMES = (
    "datasets",
    "models",
    "suite",
    "intervals",
    "signature",
    "test_result",
    "approvals",
    "audit_log",
    "purpose",
    "environment",
)


@functools.cache
def mapping() -> list[dict[str, Any]]:
    """The frameworks table, checked once: every need names families or known evidence."""
    import yaml

    text = resources.files("llmguard_ops").joinpath("templates/compliance.yaml").read_text("utf-8")
    frameworks: list[dict[str, Any]] = yaml.safe_load(text)["frameworks"]
    for fw in frameworks:
        for item in fw["items"]:
            for need in item.get("evidence") or []:
                if "families" not in need and need.get("evidence") not in EVIDENCE_NAMES:
                    raise ValueError(f"compliance.yaml {item['ref']}: unknown evidence {need!r}")
    return frameworks


@dataclass
class Need:
    label: str
    met: bool
    detail: str  # Markdown (already escaped)


@dataclass
class Signoff:
    """Approvals checked after the run (``llmguard report --approvals``): the verdict of
    :func:`llmguard_ops.evidence.approvals.evaluate` and the policy the attestation records."""

    folder: str
    policy: dict[str, Any] | None
    approved: bool
    lines: list[str]  # one text line per file of the folder
    problems: list[str]


@dataclass
class Item:
    ref: str
    name: str
    status: str
    needs: list[Need] = field(default_factory=list)
    person: str = ""


def approval_policy(report: Report) -> tuple[dict[str, Any] | None, str]:
    """The suite's ``policy.approvals`` (or None) and where it was read from."""
    import yaml

    if any(o.lstrip().startswith("policy") for o in report.suite.overrides):
        return None, "overridden on the command line: see the attestation's predicate (approvals)"
    path = Path(report.suite.path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None, "the suite file is not readable here: see the attestation's predicate (approvals)"
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != report.suite.sha256:
        return None, "the suite file changed since the run: see the attestation's predicate (approvals)"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None, "the suite file is not readable YAML"
    policy = (data.get("policy") or {}) if isinstance(data, dict) else {}
    found = policy.get("approvals") if isinstance(policy, dict) else None
    return (found if isinstance(found, dict) else None), "the suite file (digest matches the run)"


def _counted(check: CheckResult) -> bool:
    return check.status not in (Status.ERROR, Status.SKIP)


def _family_need(report: Report, families: list[str], label: str) -> Need:
    ran = [c for c in report.checks if c.uses.split(".", 1)[0] in families]
    counted = [c for c in ran if _counted(c)]
    names = ", ".join(f"`{f}.*`" for f in families)
    if counted:
        detail = ", ".join(f"{_c(c.id)} ({md_inline(c.uses)}: {c.status.value})" for c in counted)
    elif ran:
        detail = "only " + ", ".join(f"{_c(c.id)} ({c.status.value}: no result)" for c in ran)
    else:
        detail = f"no {names} check in this run"
    return Need(label, bool(counted), detail)


def _evidence_need(
    report: Report, name: str, label: str, policy: dict[str, Any] | None, signoff: Signoff | None = None
) -> Need:
    if name == "datasets":
        sets = [(n, d) for n, d in report.datasets.items() if d.get("sha256")]
        detail = ", ".join(
            f"{_c(n)} sha256 {_c(str(d['sha256'])[:12])}"
            + (f" ({d['rows']:,} rows)" if isinstance(d.get("rows"), int) else "")
            for n, d in sets
        )
        return Need(label, bool(sets), detail or "no dataset with a digest")
    if name == "models":
        models = [(n, m) for n, m in report.models.items() if m.get("sha256")]
        detail = ", ".join(f"{_c(n)} sha256 {_c(str(m['sha256'])[:12])}" for n, m in models)
        return Need(label, bool(models), detail or "no model with a digest")
    if name == "suite":
        gates = sum(len(c.gates) for c in report.checks)
        detail = (
            f"suite {_c(report.suite.name)} sha256 {_c(report.suite.sha256[:12])}, "
            f"{len(report.checks)} checks, {gates} gates"
        )
        return Need(label, gates > 0, detail)
    if name == "intervals":
        n = sum(1 for c in report.checks for m in c.metrics.values() if m.has_interval)
        return Need(label, n > 0, f"{n} metrics with a confidence interval")
    if name == "signature":
        signing = report.signing or {}
        if report.signed and not signing.get("development_key"):
            return Need(label, True, f"`attestation.dsse.json` signed, keyid {_c(str(signing.get('keyid'))[:12])}")
        why = "a throw-away development key" if signing.get("development_key") else "no key"
        return Need(label, False, f"`attestation.dsse.json` is not trusted: signed with {why}")
    if name == "test_result":
        state = "signed with the run's key" if report.signed else "unsigned, as the run is"
        return Need(label, report.signed, f"`test-result.dsse.json` ({state})")
    if name == "approvals":
        if signoff is not None and signoff.policy is not None:
            state = "approved" if signoff.approved else "not approved: " + "; ".join(signoff.problems)
            counted = sum(1 for line in signoff.lines if "NOT COUNTED" not in line)
            return Need(
                label,
                signoff.approved,
                f"{md_inline(state)} ({counted} of {len(signoff.lines)} files in {_c(signoff.folder)} count)",
            )
        if policy is None:
            return Need(label, False, "the suite sets no `policy.approvals`: a REVIEW cannot be signed off")
        roles = ", ".join(_c(r) for r in policy.get("roles") or []) or "any trusted role"
        asks = f"`policy.approvals` asks for {md_inline(policy.get('required', 1))} approvals from {roles}"
        if report.decision.decision.value == "REVIEW":
            return Need(
                label,
                False,
                f"pending: {asks}; none can exist before the run ends: sign with `llmguard approve`, "
                "check with `llmguard verify --approvals`",
            )
        return Need(label, True, f"{asks} for a REVIEW; this {report.decision.decision.value} needs none")
    if name == "audit_log":
        return Need(
            label,
            False,
            "the run's audit-log entry is appended after this page (unless `--no-audit-log`): "
            "check it with `llmguard audit verify`",
        )
    if name == "environment":
        packages = report.environment.get("packages")
        python = report.environment.get("python")
        plugins = [n for n, v in report.plugins.items() if v]
        detail = (
            f"{len(plugins)} plugins with their versions, "
            f"{len(packages) if isinstance(packages, dict | list) else 0} packages, Python {md_inline(python or '?')}"
        )
        return Need(label, bool(plugins and packages), detail)
    if name == "purpose":
        use = report.suite.metadata.get("intended_use")
        return Need(label, bool(use), md_inline(use) if use else "the suite's metadata states no `intended_use`")
    raise ValueError(f"unknown evidence {name!r}")


def _policy(report: Report, signoff: Signoff | None) -> tuple[dict[str, Any] | None, str]:
    if signoff is not None:
        return signoff.policy, "the signed attestation's predicate"
    return approval_policy(report)


def assess(report: Report, signoff: Signoff | None = None) -> list[tuple[dict[str, Any], list[Item]]]:
    """Every framework with its items and their status for this run."""
    policy, _ = _policy(report, signoff)
    out = []
    for fw in mapping():
        items = []
        for entry in fw["items"]:
            needs = [
                _family_need(report, list(n["families"]), n["label"])
                if "families" in n
                else _evidence_need(report, n["evidence"], n["label"], policy, signoff)
                for n in entry.get("evidence") or []
            ]
            met = sum(n.met for n in needs)
            status = PERSON if not needs else COVERED if met == len(needs) else PARTLY if met else NOT_COVERED
            items.append(Item(entry["ref"], entry["name"], status, needs, entry.get("person", "")))
        out.append((fw, items))
    return out


def render(report: Report, signoff: Signoff | None = None) -> str:
    t_ = md_inline
    policy, source = _policy(report, signoff)
    signing = report.signing or {}
    lines = [
        f"# Compliance mapping: {t_(report.suite.name)}",
        "",
        f"Run {md_code(report.run_id)}, finished {t_(report.finished_at)}, decision "
        f"**{report.decision.decision.value}**. Each item below says what this run's evidence "
        "covers and what still needs a person. The mapping is an aid to the technical "
        "documentation, not a conformity assessment.",
        "",
        "## Evidence of this run",
        "",
        "| evidence | file | state |",
        "| --- | --- | --- |",
    ]
    if report.signed and not signing.get("development_key"):
        att = f"signed (ed25519), keyid {md_code(str(signing.get('keyid')), table=True)}"
    elif signing.get("development_key"):
        att = "signed with a throw-away development key: not trusted"
    else:
        att = "unsigned: never verifies"
    rows = [
        ("signed attestation (in-toto Statement, DSSE)", "`attestation.dsse.json`", att),
        ("test log (in-toto Test Result)", "`test-result.dsse.json`",
         "signed with the run's key" if report.signed else "unsigned"),
        ("report", "`report.json`, `report.html`", f"{len(report.checks)} checks"),
        ("ML-BOM (CycloneDX 1.6)", "`bom.cdx.json`", "models and datasets with their sha256"),
        ("model card", "`model_card.md`", "metrics, fairness, limitations"),
        ("audit log", "`.llmguard/audit.jsonl` (or `--audit-log`)",
         "hash-chained entry with the attestation's sha256, appended after this page"),
    ]  # fmt: skip
    if policy is not None:
        roles = ", ".join(md_code(r, table=True) for r in policy.get("roles") or []) or "any trusted role"
        rows.append(
            (
                "approval policy (`policy.approvals`)",
                "suite, signed into the attestation",
                f"{t_(policy.get('required', 1))} approvals from {roles}; two-person rule "
                f"{'on' if policy.get('two_person_rule', True) else 'off'}",
            )
        )
    else:
        rows.append(("approval policy", "—", f"none found ({t_(source)})"))
    waived = [w for w in report.waivers if w.get("status") == "applied"]
    if waived:
        rows.append(("waivers", "attestation predicate", f"{len(waived)} applied, each with its approver"))
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += [""]
    if signoff is not None:
        verdict = "meet the policy" if signoff.approved else "do not meet the policy"
        lines += [f"### Approvals in {_c(signoff.folder)}: they {verdict}", ""]
        lines += [f"- {t_(line)}" for line in signoff.lines] or ["- (no approval file)"]
        lines += [f"- missing: {t_(p)}" for p in signoff.problems]
        lines += [""]
    elif report.decision.decision.value == "REVIEW":
        lines += [
            "This run asks for a person: the responsible reviewers sign it with "
            "`llmguard approve attestation.dsse.json --key KEY --as NAME --role ROLE --reason TEXT`, "
            "and `llmguard verify attestation.dsse.json --key PUB --approvals DIR --trust FILE` "
            "checks the approvals against the policy.",
            "",
        ]
    counts: dict[str, int] = {}
    for fw, items in assess(report, signoff):
        lines += [f"## {t_(fw['title'])}", "", "| item | status | this run | still needs a person |",
                  "| --- | --- | --- | --- |"]  # fmt: skip
        for item in items:
            counts[item.status] = counts.get(item.status, 0) + 1
            run = "<br>".join(f"{'✓' if n.met else '✗'} {t_(n.label)}: {n.detail}" for n in item.needs) or "—"
            status = f"**{item.status}**" if item.status != COVERED else item.status
            lines.append(f"| {t_(item.ref)}: {t_(item.name)} | {status} | {run} | {t_(item.person)} |")
        lines.append("")
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in (COVERED, PARTLY, NOT_COVERED, PERSON))
    lines += [f"Summary: {summary}.", ""]
    return "\n".join(lines)


def write_compliance(report: Report, out_dir: Path, signoff: Signoff | None = None) -> list[Path]:
    return [atomic_write(Path(out_dir) / FILENAME, render(report, signoff))]


def check_signoff(attestation: Path, key: Path, approvals: Path, trust: Path) -> Signoff:
    """Verify the run's attestation with ``key`` and check ``approvals`` against its policy."""
    from ..errors import LlmguardError
    from ..evidence.approvals import evaluate, load_trust
    from ..evidence.dsse import VerificationError
    from ..evidence.keys import load_public
    from ..evidence.verify import verify_attestation

    try:
        data = Path(attestation).read_bytes()
    except OSError as exc:
        raise LlmguardError(f"{attestation}: cannot read the run's attestation: {exc.strerror}") from None
    public, keyid = load_public(key)
    try:
        statement = verify_attestation(data, public, keyid).statement
    except VerificationError as exc:
        raise LlmguardError(f"{attestation}: does not verify with {key}: {exc}") from None
    verdict = evaluate(Path(approvals), hashlib.sha256(data).hexdigest(), statement, keyid, load_trust(trust))
    predicate = statement.get("predicate")
    policy = predicate.get("approvals") if isinstance(predicate, dict) else None
    return Signoff(
        folder=str(approvals),
        policy=policy if isinstance(policy, dict) else None,
        approved=verdict.approved,
        lines=[line.text() for line in verdict.lines],
        problems=list(verdict.problems),
    )


@hookimpl
def llmguard_register_reporters(register: Callable[[Reporter], None]) -> None:
    register(
        Reporter(
            name="compliance",
            write=write_compliance,
            summary="compliance.md: evidence mapped to EU AI Act Annex IV, NIST AI RMF, ISO/IEC 42001",
            needs=(),
            provides=("compliance.md",),
        )
    )
