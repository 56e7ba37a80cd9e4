"""The end of a run: reporters ordered by what they need, outputs with digests, every
hook through pluggy (one plugin at a time), and a host that names no check family."""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.test_plugins import fake_distribution

from llmguard_ops import CheckDefinition, CheckOutput, MetricSpec, Reporter, hookimpl
from llmguard_ops.publish import reporter_order
from llmguard_ops.testing import LlmguardProject

SRC = Path(__file__).resolve().parents[1] / "src" / "llmguard_ops"


def _write(report: Any, out_dir: Path) -> list[Path]:
    return []


def _reporter(name: str, plugin: str = "llmguard_ops.reporters.x", **kw: Any) -> Reporter:
    return Reporter(name, _write, plugin=plugin, **kw)


def test_order_follows_needs_not_registration() -> None:
    reporters = [
        _reporter("summary", needs=("*",), provides=("summary.md",)),
        _reporter("page", needs=("card.md", "junit"), provides=("page.html",)),
        _reporter("card", needs=(), provides=("card.md",)),
        _reporter("junit", needs=(), provides=("junit.xml",)),
        _reporter("acme", plugin="acme"),  # declares nothing: after the builtins, before the summary
    ]
    order, warnings = reporter_order(reporters, builtin=["llmguard_ops.reporters.x"])
    names = [r.name for r in order]
    assert warnings == []
    assert names.index("card") < names.index("page") and names.index("junit") < names.index("page")
    assert names.index("acme") > max(names.index(n) for n in ("card", "junit", "page"))
    assert names[-1] == "summary"


def test_a_missing_need_and_a_cycle_are_named() -> None:
    order, warnings = reporter_order([_reporter("page", needs=("card.md",))])
    assert [r.name for r in order] == ["page"]
    assert warnings == [
        "reporter 'page' (llmguard_ops.reporters.x) needs 'card.md', which no installed reporter "
        "writes (not installed, or blocked): it runs without it"
    ]
    cyclic = [
        _reporter("a", needs=("b",)),
        _reporter("b", needs=("a.txt",)),
        _reporter("a2", needs=("a",), provides=("a.txt",)),
    ]
    order, warnings = reporter_order(cyclic)
    assert [r.name for r in order] == ["a", "b", "a2"]  # registration order
    assert len(warnings) == 1 and "cycle" in warnings[0] and "'a'" in warnings[0] and "'b'" in warnings[0]


class _Echo:
    """A one-check plugin: ``echo.value`` returns its parameter as the metric ``value``."""

    @hookimpl
    def llmguard_register_checks(self, register: Any) -> None:
        from pydantic import BaseModel

        class Params(BaseModel):
            value: float = 1.0

        def run(ctx: Any, params: Params) -> CheckOutput:
            out = CheckOutput()
            out.add("value", params.value)
            return out

        register(CheckDefinition("echo.value", run, Params, (MetricSpec("value"),), "returns its parameter"))


def _project(root: Path, value: float = 1.0) -> LlmguardProject:
    root.mkdir(parents=True, exist_ok=True)
    project = LlmguardProject(root=root)
    project.dataset("current", pd.DataFrame({"x": [0.0, 1.0] * 5, "y": [0, 1] * 5}), target="y")
    project.plugin(_Echo(), "echo")
    project.check("echo", uses="echo.value", with_={"value": value}, gate={"value": {"min": 0.5}})
    return project


def _predicate(out_dir: Path) -> dict[str, Any]:
    envelope = json.loads((out_dir / "attestation.dsse.json").read_text())
    predicate: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))["predicate"]
    return predicate


ACME = """
    from pathlib import Path
    from llmguard_ops import Reporter, hookimpl

    def write(report, out_dir):
        path = Path(out_dir) / "acme-findings.txt"
        path.write_text("\\n".join(sorted(report.outputs)) + "\\n")
        return [path]

    @hookimpl
    def llmguard_register_reporters(register):
        register(Reporter("acme", write, "lists the outputs it was handed"))
"""


def test_an_entry_point_reporter_reaches_the_summary_and_the_attestation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", "off")
    fake_distribution(site, "llmguard-acme", {"acme": "acme_reporter"}, {"acme_reporter": ACME})
    project = _project(tmp_path / "project")
    outcome = project.run(entry_points=True)
    outcome.assert_decision("PROMOTE")
    out = outcome.out_dir
    findings = out / "acme-findings.txt"
    # it ran after the builtins it does not depend on, and before the summary that lists it
    seen = findings.read_text().split()
    assert {"report.json", "junit.xml", "model_card.md", "report.html"} <= set(seen)
    assert "summary.md" not in seen
    assert "[acme-findings.txt](acme-findings.txt)" in (out / "summary.md").read_text()
    digest = hashlib.sha256(findings.read_bytes()).hexdigest()
    assert _predicate(out)["outputs"]["acme-findings.txt"] == digest
    entry = outcome.report.outputs["acme-findings.txt"]
    assert (entry.sha256, entry.reporter, entry.plugin, entry.size) == (digest, "acme", "acme", findings.stat().st_size)


def test_outputs_are_filled_with_every_file_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", "off")
    outcome = _project(tmp_path).run(entry_points=False)
    outputs = outcome.report.outputs
    on_disk = {p.relative_to(outcome.out_dir).as_posix() for p in outcome.out_dir.rglob("*") if p.is_file()}
    assert set(outputs) == on_disk
    for name, entry in outputs.items():
        assert entry.path == name
        assert entry.sha256 == hashlib.sha256((outcome.out_dir / name).read_bytes()).hexdigest()
    assert outputs["report.json"].reporter == "report" and outputs["summary.md"].reporter == "markdown"
    assert outputs["attestation.dsse.json"].reporter == "evidence"
    predicate = _predicate(outcome.out_dir)
    assert predicate["outputs"] == {n: e.sha256 for n, e in outputs.items() if n != "attestation.dsse.json"}
    # report.json is written first, so it lists no output (nor does the attestation's copy of it)
    stored = json.loads((outcome.out_dir / "report.json").read_text())
    assert stored["outputs"] == {} and predicate["report"] == stored
    assert outputs["model_card.md"].sha256 in (outcome.out_dir / "report.html").read_text()


class _Hooks:
    """Implements the end-of-run hooks; ``fail`` makes its decision hook raise."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.seen: list[str] = []

    @hookimpl
    def llmguard_gate_veto(self, report: Any) -> list[str]:
        report.checks.clear()  # its own copy: the host's results are untouched
        self.seen.append("veto")
        if self.fail:
            raise RuntimeError("veto broke")
        return ["owner did not sign off"]

    @hookimpl
    def llmguard_on_decision(self, report: Any, out_dir: Path) -> None:
        self.seen.append(f"decision {report.decision.outcome.value}")
        report.checks.clear()
        if self.fail:
            raise RuntimeError("boom")

    @hookimpl
    def llmguard_on_incident(self, report: Any, out_dir: Path) -> None:
        self.seen.append(f"incident {len(report.checks)}")


def test_the_testing_kit_records_every_hook_and_plugins_stay_isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", "off")
    first, second = _Hooks(fail=True), _Hooks(fail=False)
    project = _project(tmp_path)
    project.plugin(first, "first")
    project.plugin(second, "second")
    outcome = project.run(entry_points=False)
    outcome.assert_decision("BLOCK")
    reasons = outcome.report.decision.reasons
    assert "veto: owner did not sign off" in reasons
    assert "veto: plugin 'first' failed in llmguard_gate_veto: RuntimeError: veto broke" in reasons
    assert [c.id for c in outcome.report.checks] == ["echo"]
    assert first.seen == ["veto", "decision BLOCK", "incident 1"]
    assert second.seen == ["veto", "decision BLOCK", "incident 1"]  # first's failure stopped nothing
    assert "plugin 'first' failed in llmguard_on_decision: RuntimeError: boom" in outcome.warnings
    names = outcome.hook_names
    for hook in ("llmguard_run_check", "llmguard_gate_veto", "llmguard_on_decision", "llmguard_on_incident"):
        assert hook in names, hook
    # one call per plugin, through pluggy
    decision_calls = [c.plugins for c in outcome.hook_calls if c.name == "llmguard_on_decision"]
    assert decision_calls == [["first"], ["second"]]
    assert names.index("llmguard_gate_veto") < names.index("llmguard_on_decision") < names.index("llmguard_on_incident")


def test_environment_facts_are_collected_once_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmguard_ops import environment

    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", "off")
    calls: list[Path] = []
    real = environment.git_commit

    def counted(path: Path) -> Any:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(environment, "git_commit", counted)
    project = _project(tmp_path)
    project.plugin(_Hooks(fail=False), "vetoer")  # a veto plugin: the draft report needs the facts too
    outcome = project.run(entry_points=False)
    assert len(calls) == 1
    assert outcome.report.environment["packages"]["pydantic"]


def test_check_families_declare_their_packages_and_sections() -> None:
    from llmguard_ops.plugins import get_plugin_manager

    registry = get_plugin_manager().registry()
    packages = registry.packages()
    assert {"fairlearn", "aif360", "shap", "deepeval"} <= set(packages)
    titles = [section.title for section, _ in registry.card_sections()]
    assert titles[:2] == ["Fairness", "Explanations"]
    assert registry.tagged("bias.group_fairness", "fairness")


# -- the host names no first-party check family ------------------------------------------

FAMILIES = (
    "bias",
    "explain",
    "drift",
    "robustness",
    "canary",
    "latency",
    "safety",
    "performance",
    "generation",
    "data",
    "monitor",
    "monitoring",
)
#: Words that are the host's own as well: the ``generation:`` settings of a model (and the
#: module holding them), a ``data/`` folder, the ``monitor`` command. They are flagged as
#: check-name prefixes (``generation.x`` naming a check), never as whole words.
HOST_WORDS = {"generation", "data", "monitor"}


def _first_party_checks() -> set[str]:
    from llmguard_ops.plugins import get_plugin_manager

    registry = get_plugin_manager().registry()
    return {name for name, c in registry.checks.items() if c.family in FAMILIES}


def _strings(tree: ast.AST) -> list[ast.Constant]:
    """String constants of the code, docstrings left out."""
    docs: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        for child in body if isinstance(body, list) else []:
            if isinstance(child, ast.Expr) and isinstance(child.value, ast.Constant):
                docs.add(id(child.value))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def family_hits(text: str, names: set[str]) -> list[str]:
    """Where ``text`` (a string of host code) names a first-party family."""
    hits = []
    prefixed = re.compile(r"(?<![\w.])(" + "|".join(FAMILIES) + r")\.(\*|[a-z_]+)?")
    for m in prefixed.finditer(text):
        family, tail = m.group(1), m.group(2)
        prefix_test = tail is None and family not in HOST_WORDS  # "bias." as in uses.startswith("bias.")
        if prefix_test or tail == "*" or m.group(0) in names:
            hits.append(m.group(0))
    if text in FAMILIES and text not in HOST_WORDS:
        hits.append(text)
    return hits


def test_family_hits_finds_the_ways_a_host_names_a_family() -> None:
    names = {"drift.tabular", "performance.generation"}
    assert family_hits("bias.", names) == ["bias."]
    assert family_hits("no `explain.*` check", names) == ["explain.*"]
    assert family_hits("drift.tabular", names) == ["drift.tabular"]
    assert family_hits("robustness", names) == ["robustness"]
    assert family_hits("generation.truncate", names) == []  # a model's generation settings
    assert family_hits("generation.", names) == [] and family_hits("performance.generation", names) != []
    assert family_hits("data:image/png", names) == [] and family_hits("generation", names) == []


def test_no_host_module_names_a_first_party_check_family() -> None:
    names = _first_party_checks()
    assert "bias.group_fairness" in names  # the first-party checks are installed
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            found += [f"{path.relative_to(SRC)}:{node.lineno}: {hit}" for hit in family_hits(node.value, names)]
    for template in sorted((SRC / "templates").glob("*.j2")):
        for lineno, line in enumerate(template.read_text(encoding="utf-8").splitlines(), 1):
            found += [f"{template.relative_to(SRC)}:{lineno}: {hit}" for hit in family_hits(line, names)]
    assert found == []


class _Sectioned(_Echo):
    """``echo.value`` with a model-card section of its own, rendered by a callable."""

    @hookimpl
    def llmguard_register_checks(self, register: Any) -> None:
        from llmguard_ops import CardSection

        items: list[CheckDefinition] = []
        super().llmguard_register_checks(items.append)
        section = CardSection("Echoes", order=5, render=lambda r: f"echo {r.id}: {r.metrics['value'].value:g}")
        register(replace(items[0], card_section=section, unassessed="echoes were not heard (no echo check)"))


def test_a_third_party_family_declares_its_card_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", "off")
    project = _project(tmp_path, value=2.0)
    project.plugins = [("echo", _Sectioned())]
    outcome = project.run(entry_points=False)
    card = (outcome.out_dir / "model_card.md").read_text()
    assert "## Echoes\n\necho echo: 2\n" in card
    assert card.index("## Echoes") < card.index("## Bias, risks and limitations")
    assert "echoes were not heard" not in card  # its check ran


def test_a_rerender_takes_the_outputs_the_attestation_still_vouches_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmguard_ops.publish import stored_outputs

    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", "off")
    out = _project(tmp_path).run(entry_points=False).out_dir
    (out / "summary.md").write_text("edited\n")
    found = stored_outputs(out / "report.json")
    assert {"report.json", "attestation.dsse.json", "junit.xml", "model_card.md"} <= set(found)
    assert "summary.md" not in found  # no longer the attested file
    assert found["junit.xml"].sha256 == hashlib.sha256((out / "junit.xml").read_bytes()).hexdigest()
