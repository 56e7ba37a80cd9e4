"""Plugins load one by one: a broken one is reported and the rest still work."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import BASE_SUITE

from llmguard_ops.cli import main
from llmguard_ops.plugins import get_plugin_manager


def fake_distribution(root: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """An installed distribution on sys.path: dist-info with entry points, plus its modules."""
    info = root / f"{name.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[llmguard]\n{lines}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


GOOD = """
    from pydantic import BaseModel
    from llmguard_ops import CheckDefinition, CheckOutput, MetricSpec, hookimpl

    class P(BaseModel):
        value: float = 1.0

    def run(ctx, params):
        out = CheckOutput()
        out.add("value", params.value)
        return out

    @hookimpl
    def llmguard_register_checks(register):
        register(CheckDefinition("{name}", run, P, (MetricSpec("value"),), "returns its parameter"))
"""


@pytest.fixture
def plugin_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def test_broken_plugin_is_reported_and_others_load(
    plugin_root: Path, write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_distribution(
        plugin_root, "llmguard-broken", {"brokenfam": "broken_mod"}, {"broken_mod": "import not_a_module_anywhere\n"}
    )
    fake_distribution(
        plugin_root, "llmguard-extra", {"extra": "extra_mod"}, {"extra_mod": GOOD.replace("{name}", "extra.echo")}
    )
    host = get_plugin_manager()
    registry = host.registry()
    assert "extra.echo" in registry.checks and "performance.classification" in registry.checks
    assert registry.checks["extra.echo"].plugin == "extra"
    assert registry.checks["extra.echo"].plugin_version == "1.2.3"
    [failure] = registry.failures
    assert failure.line() == (
        "plugin 'brokenfam' (llmguard-broken 1.2.3) failed to load: "
        "ModuleNotFoundError: No module named 'not_a_module_anywhere'"
    )

    assert main(["checks"]) == 0
    out, err = capsys.readouterr()
    assert "extra.echo" in out and "extra" in out
    assert "broken: plugin 'brokenfam' (llmguard-broken 1.2.3) failed to load" in err

    path = write_suite(BASE_SUITE + "  - id: b\n    uses: brokenfam.check\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    expected = "checks[0].uses: check 'brokenfam.check' is unavailable: plugin 'brokenfam' (llmguard-broken 1.2.3)"
    assert expected in err

    echo = "  - id: e\n    uses: extra.echo\n    with: {value: 2}\n    gate: {value: {max: 1}}\n"
    path = write_suite(BASE_SUITE + echo)
    assert main(["run", str(path), "--out", str(plugin_root / "out"), "-q"]) == 1


def test_duplicate_check_names_are_refused_naming_both(plugin_root: Path) -> None:
    fake_distribution(
        plugin_root, "llmguard-a", {"alpha": "alpha_mod"}, {"alpha_mod": GOOD.replace("{name}", "dup.check")}
    )
    fake_distribution(
        plugin_root, "llmguard-b", {"beta": "beta_mod"}, {"beta_mod": GOOD.replace("{name}", "dup.check")}
    )
    registry = get_plugin_manager().registry()
    assert registry.checks["dup.check"].plugin == "alpha"
    [failure] = registry.failures
    assert "check 'dup.check' is provided by both plugin 'alpha' and plugin 'beta'" in failure.error


def test_unknown_hook_is_rejected(plugin_root: Path) -> None:
    fake_distribution(
        plugin_root,
        "llmguard-typo",
        {"typo": "typo_mod"},
        {
            "typo_mod": """
        from llmguard_ops import hookimpl

        @hookimpl
        def llmguard_register_chekcs(register):
            pass
    """
        },
    )
    registry = get_plugin_manager().registry()
    [failure] = registry.failures
    assert failure.plugin == "typo" and "llmguard_register_chekcs" in failure.error


def test_plugin_can_be_blocked(plugin_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "performance.classification" not in get_plugin_manager(blocked=["performance"]).registry().checks
    monkeypatch.setenv("LLMGUARD_DISABLE_PLUGINS", "performance")
    assert main(["-p", "no:performance", "checks", "--json"]) == 0


def test_wrapper_hook_surrounds_every_check(write_suite: Callable[[str], Path], tmp_path: Path) -> None:
    from llmguard_ops import hookimpl, run

    seen: list[str] = []

    class Tracer:
        @hookimpl(wrapper=True)
        def llmguard_run_check(self, context, check, params):  # type: ignore[no-untyped-def]
            seen.append(f"before {context.check_id}")
            out = yield
            seen.append(f"after {context.check_id} {sorted(out.metrics)[:1]}")
            return out

        @hookimpl
        def llmguard_gate_veto(self, report):  # type: ignore[no-untyped-def]
            return ["model card missing"]

    body = "  - id: q\n    uses: performance.classification\n    with: {n_resamples: 0}\n"
    outcome = run(write_suite(BASE_SUITE + body), tmp_path, objects=[("tracer", Tracer())])
    assert seen == ["before q", "after q ['accuracy']"]
    assert outcome.report.decision.decision.value == "BLOCK"
    assert "veto: model card missing" in outcome.report.decision.reasons
