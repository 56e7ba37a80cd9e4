"""The public plugin surface: what ``llmguard_ops`` exports, and the lint rule holding
checks/ and plugins/ to it (docs/plugin-api.md)."""

from __future__ import annotations

import hashlib
import inspect
import json
import pkgutil
import subprocess
import sys
import tomllib
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from tests.conftest import REPO

import llmguard_ops
from llmguard_ops import (
    CheckContext,
    CheckDefinition,
    CheckOutput,
    GateBound,
    Metric,
    MetricSpec,
    evaluate_gates,
    hookimpl,
)

#: submodules plugins may import by name: the testing kit (``pytest_plugins = [...]``)
PUBLIC_SUBMODULES = {"testing"}


def _ruff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("ruff", reason="ruff is in the dev extra")
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_internal_submodule_is_banned_in_checks_and_plugins() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]["lint"]
    banned = set(config["flake8-tidy-imports"]["banned-api"])
    submodules = {m.name for m in pkgutil.iter_modules(llmguard_ops.__path__)}
    assert banned == {f"llmguard_ops.{m}" for m in submodules - PUBLIC_SUBMODULES}
    assert "TID251" in config["select"]
    assert config["per-file-ignores"] == {"!{checks,plugins}/**": ["TID251"]}


def test_checks_and_plugins_use_only_the_public_api() -> None:
    done = _ruff("--select", "TID251", "--output-format", "json", "checks", "plugins")
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout) == []


BAD = "from llmguard_ops.report import atomic_write\nfrom llmguard_ops import gate\n\nprint(atomic_write, gate)\n"


@pytest.mark.parametrize(
    "where", ["checks/llmguard_checks/new_family.py", "plugins/llmguard-new/src/llmguard_new/x.py"]
)
def test_an_internal_import_in_checks_or_plugins_fails_the_lint(where: str) -> None:
    done = _ruff("--select", "TID251", "--output-format", "json", "--stdin-filename", where, "-", stdin=BAD)
    assert done.returncode == 1
    found = [(v["code"], v["location"]["row"]) for v in json.loads(done.stdout)]
    assert found == [("TID251", 1), ("TID251", 2)]
    assert "docs/plugin-api.md" in json.loads(done.stdout)[0]["message"]


@pytest.mark.parametrize("where", ["src/llmguard_ops/new_module.py", "tests/test_new.py"])
def test_the_host_and_its_tests_may_use_internals(where: str) -> None:
    done = _ruff("--select", "TID251", "--stdin-filename", where, "-", stdin=BAD)
    assert done.returncode == 0, done.stdout


def test_every_public_name_resolves_without_heavy_imports() -> None:
    code = (
        "import sys, llmguard_ops\n"
        "[getattr(llmguard_ops, n) for n in llmguard_ops.__all__]\n"
        "print(sorted(m for m in ('ray', 'torch', 'sklearn', 'mlflow') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert sorted(llmguard_ops.__all__) == llmguard_ops.__all__


def _public_names() -> dict[str, Any]:
    names: dict[str, Any] = {n: getattr(llmguard_ops, n) for n in llmguard_ops.__all__}
    return names | {"pd": pd, "np": np, "Path": Path, "Any": Any, "Callable": Callable}


def _hints(obj: Any) -> dict[str, Any]:
    """Annotations resolved against the public names only: a type that a plugin sees and
    ``llmguard_ops`` does not export raises NameError here."""
    return typing.get_type_hints(
        obj, globalns={**vars(inspect.getmodule(obj)), "__builtins__": __builtins__}, localns=_public_names()
    )


def test_every_type_a_hook_or_a_check_sees_is_exported() -> None:
    from llmguard_ops import hookspecs

    hooks = [f for n, f in vars(hookspecs).items() if n.startswith("llmguard_") and callable(f)]
    assert len(hooks) >= 10
    seen: list[Any] = [*hooks]
    seen += [llmguard_ops.CheckDefinition, llmguard_ops.ModelLoader, llmguard_ops.DatasetLoader, llmguard_ops.Reporter]
    internal_fields = {"suite", "check", "models", "datasets", "cache", "registry"}
    for cls in (llmguard_ops.CheckContext, llmguard_ops.LoadedModel, llmguard_ops.LoadedDataset):
        for name, member in vars(cls).items():
            if name.startswith("_") or name in internal_fields:
                continue
            target = member.fget if isinstance(member, property) else member
            if callable(target):
                seen.append(target)
    for obj in seen:
        try:
            _hints(obj)
        except NameError as exc:  # pragma: no cover - the failure this test exists for
            raise AssertionError(f"{obj.__qualname__} shows a type llmguard_ops does not export: {exc}") from None


# -- the context API ------------------------------------------------------------------


def _context_probe(ctx: CheckContext, params: Any) -> CheckOutput:
    out = CheckOutput()
    features = ctx.features("candidate", "current")
    gate = ctx.gate("score")
    out.add("score", 0.9, lower=0.85, upper=0.95, confidence=ctx.confidence("score"))
    written = ctx.write_artifact("tables/features.csv", features.to_csv(index=False))
    plotted = ctx.write_artifact("columns.txt", lambda p: p.write_text(",".join(features.columns)))
    out.artifacts["features"] = str(written.path)
    out.details.update(
        base_dir=str(ctx.base_dir),
        gate=gate.model_dump(exclude_none=True) if gate else None,
        gates=sorted(ctx.gates),
        ungated=ctx.gate("other") is None,
        columns=list(features.columns),
        rows=len(features),
        sha256=written.sha256,
        callback_sha256=plotted.sha256,
        callback_suffix=plotted.path.suffix,
        prompt=ctx.prompt("candidate") is None,
        checks=[c.id for c in ctx.suite_checks()],
        extensions=ctx.extensions("no such kind"),
    )
    for bad in ("../escape.txt", "/abs.txt", ""):
        try:
            ctx.write_artifact(bad, "x")
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
    ctx.gates["score"].min = 0.0  # a copy: the host's gate is untouched
    return out


class _Params(BaseModel):
    """No parameters."""


class _Probe:
    @hookimpl
    def llmguard_register_checks(self, register: Callable[[CheckDefinition], None]) -> None:
        register(
            CheckDefinition(
                name="probe.context",
                run=_context_probe,
                params=_Params,
                metrics=(MetricSpec("score"),),
                summary="reads the context API",
            )
        )


def test_the_context_api_of_a_check(llmguard_project: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=60), "x2": rng.normal(size=60), "sex": ["f", "m"] * 30})
    frame["y"] = (frame.x1 > 0).astype(int)
    llmguard_project.dataset("current", frame, target="y", sensitive=["sex"])
    llmguard_project.model("candidate", LogisticRegression().fit(frame[["x1", "x2"]], frame.y))
    llmguard_project.plugin(_Probe(), "probe")
    llmguard_project.check("probe", uses="probe.context", gate={"score": {"min": 0.8, "confidence": 0.9}})
    outcome = llmguard_project.run(entry_points=False)
    outcome.assert_decision("PROMOTE")
    result = outcome.results["probe"]
    details = result.details
    assert details["base_dir"] == str(llmguard_project.root.resolve())
    assert details["gate"] == {"min": 0.8, "confidence": 0.9} and details["gates"] == ["score"]
    assert details["ungated"] is True
    assert details["columns"] == ["x1", "x2"] and details["rows"] == 60  # the model's columns only
    assert result.metrics["score"].confidence == 0.9
    written = outcome.out_dir / result.artifacts["features"]
    assert written == outcome.out_dir / "artifacts" / "probe" / "tables" / "features.csv"
    assert hashlib.sha256(written.read_bytes()).hexdigest() == details["sha256"]
    assert pd.read_csv(written).shape == (60, 2)
    columns = written.parent.parent / "columns.txt"
    assert columns.read_text() == "x1,x2" and details["callback_suffix"] == ".txt"
    assert hashlib.sha256(columns.read_bytes()).hexdigest() == details["callback_sha256"]
    assert details["prompt"] is True and details["checks"] == ["probe"] and details["extensions"] == {}
    assert not [p for p in written.parent.parent.rglob("*") if ".tmp" in p.name]  # no temporary left behind
    assert result.gates[0].passed and result.gates[0].min == 0.8  # the host gated with its own copy


def test_a_failing_writer_leaves_no_file(tmp_path: Path) -> None:
    ctx = CheckContext.__new__(CheckContext)
    ctx.artifact_dir = tmp_path

    def broken(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        ctx.write_artifact("plot.png", broken)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "plot.png").write_text("old")
    with pytest.raises(RuntimeError):
        ctx.write_artifact("plot.png", broken)
    assert (tmp_path / "plot.png").read_text() == "old"  # readers never see a part


# -- one gate evaluator -----------------------------------------------------------------


def test_evaluate_gates_lists_problems_and_failures_in_gate_order() -> None:
    metrics = {"a": Metric(value=0.7), "b": Metric(value=0.9, lower=0.8, upper=0.95, confidence=0.95)}
    gates = {
        "a": {"min": 0.8},
        "missing": GateBound(max=1.0),
        "b": {"min": 0.85, "confidence": 0.95},
        "c": {"max": 1.0, "confidence": 0.9},
    }
    metrics["c"] = Metric(value=0.5)
    evaluation = evaluate_gates(gates, metrics)
    assert not evaluation.passed
    assert [o.metric for o in evaluation.outcomes] == ["a", "b"]
    assert [o.metric for o in evaluation.failed] == ["a", "b"]
    assert evaluation.problems == (
        "the check did not report gated metric 'missing'",
        "gate on 'c' asks for a 90% interval but the check reported none",
    )
    assert evaluation.reasons[0].startswith("a = 0.7: 0.7 < min 0.8")
    assert evaluation.reasons[1] == evaluation.problems[0]
    assert "lower 95% bound 0.8 < min 0.85" in evaluation.reasons[2]
    assert evaluation.reasons[3] == evaluation.problems[1]
    assert evaluate_gates({}, metrics).passed


finite = st.floats(-10, 10, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(value=finite, ends=st.tuples(finite, finite), lo=st.none() | finite, hi=st.none() | finite)
def test_evaluate_gates_agrees_with_the_pytest_assertion_and_the_gate_rule(
    value: float, ends: tuple[float, float], lo: float | None, hi: float | None
) -> None:
    from llmguard_ops._pytest_suite import assert_gate
    from llmguard_ops.results import CheckResult

    if lo is None and hi is None:
        lo = 0.0
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    metric = Metric(value=value, lower=min(ends), upper=max(ends), confidence=0.95)
    gate = {"m": {"min": lo, "max": hi, "confidence": 0.95}}
    evaluation = evaluate_gates(gate, {"m": metric})
    # the rule of docs: the interval's ends (hulled with the estimate) must respect the bounds
    expected = (lo is None or min(min(ends), value) >= lo) and (hi is None or max(max(ends), value) <= hi)
    assert evaluation.passed is expected
    result = CheckResult(id="c", uses="x.y", plugin="p", severity="blocker", status="pass", metrics={"m": metric})
    if expected:
        assert_gate(result, gate)
    else:
        with pytest.raises(AssertionError) as failed:
            assert_gate(result, gate)
        assert str(failed.value) == "c: gate failed: " + "; ".join(evaluation.reasons)


# -- one validation path, one error format -------------------------------------------


def test_inline_checks_are_validated_by_the_suite_loader(llmguard_project: Any) -> None:
    from llmguard_ops.loading import load_suite, validate_check
    from llmguard_ops.plugins import get_plugin_manager

    frame = pd.DataFrame({"x": [0.0, 1.0] * 10, "y": [0, 1] * 10})
    llmguard_project.dataset("current", frame, target="y")
    entry = {
        "id": "q",
        "uses": "performance.classification",
        "with": {"model": "candiate"},
        "gate": {"acuracy": {"min": 0.5}},
    }
    llmguard_project.checks.append(entry)
    llmguard_project.model("candidate", loader="python", path="m.py:M")
    path = llmguard_project.write_suite()
    registry = get_plugin_manager().registry()
    with pytest.raises(llmguard_ops.SuiteError) as from_file:
        load_suite(path, registry)
    good = {**entry, "with": {}, "gate": {}}
    llmguard_project.checks[-1] = good
    suite = load_suite(llmguard_project.write_suite(), registry).suite
    with pytest.raises(llmguard_ops.SuiteError) as inline:
        validate_check(entry, registry, suite, where="llmguard_check('q')")
    file_lines = str(from_file.value).splitlines()
    inline_lines = str(inline.value).splitlines()
    # the same problems, in the same words; the file's located by line, the inline one by key
    assert [line.split(" ", 1)[1] for line in file_lines if "checks[0]" in line] == [
        line.replace("llmguard_check('q') ", "checks[0].", 1) for line in inline_lines
    ]
    assert inline_lines[0].startswith("llmguard_check('q') with.model: unknown model 'candiate'")
    assert any("gate.acuracy" in line and "did you mean 'accuracy'" in line for line in inline_lines)


def test_the_pytest_halves_do_not_import_each_other() -> None:
    code = "import sys, llmguard_ops._pytest_suite\nprint('llmguard_ops.pytest_plugin' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert done.stdout.strip() == "False"
    from llmguard_ops import _pytest_shared, pytest_plugin

    assert pytest_plugin.LlmguardGateWarning is _pytest_shared.LlmguardGateWarning  # the old name still works


def test_every_public_name_and_context_member_is_documented() -> None:
    text = (REPO / "docs" / "plugin-api.md").read_text(encoding="utf-8")
    missing = [n for n in llmguard_ops.__all__ if f"`{n}" not in text]
    assert missing == []
    members = [n for n in vars(CheckContext) if not n.startswith("_")]
    # public members in the table, internal ones named as such (`ctx.registry`)
    assert [m for m in members if f"`{m}" not in text and f"`ctx.{m}`" not in text] == []
