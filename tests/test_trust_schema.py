"""``llmguard schema`` names every check's parameter model uniquely, and every shipped and
documented suite validates against it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
import yaml
from tests.conftest import REPO
from tests.docs_support import DOCS, code_blocks

from llmguard_ops.cli import main


@pytest.fixture(scope="module")
def schema() -> dict[str, object]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema"]) == 0
    data: dict[str, object] = json.loads(out.getvalue())
    jsonschema.Draft202012Validator.check_schema(data)
    return data


def _suites() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for path in sorted((REPO / "suites").glob("**/*.yaml")):
        if not path.name.startswith("."):
            found.append((str(path.relative_to(REPO)), yaml.safe_load(path.read_text(encoding="utf-8"))))
    for block in (b for doc in DOCS for b in code_blocks(doc, "yaml", "yml")):
        data = yaml.safe_load(block.text)
        if isinstance(data, dict) and data.get("apiVersion") == "llmguard/v1":
            found.append((block.where, data))
    return found


SUITES = _suites()


@pytest.mark.parametrize(("where", "data"), SUITES, ids=[w for w, _ in SUITES])
def test_shipped_and_documented_suites_validate_against_the_schema(
    schema: dict[str, object], where: str, data: object
) -> None:
    jsonschema.validate(data, schema)


def test_two_params_models_of_one_name_keep_their_own_definitions() -> None:
    # a plugin's parameter model named like a first-party one (performance.generation's)
    from pydantic import BaseModel, ConfigDict

    from llmguard_ops.loading import suite_json_schema
    from llmguard_ops.plugins import get_plugin_manager
    from llmguard_ops.registry import CheckDefinition, MetricSpec
    from llmguard_ops.results import CheckOutput

    class GenerationParams(BaseModel):
        model_config = ConfigDict(extra="forbid")
        ignore_eos: bool = False

    registry = get_plugin_manager().registry()
    assert registry.checks["performance.generation"].params.__name__ == "GenerationParams"
    plugin_check = CheckDefinition(
        name="plugin.generation",
        run=lambda ctx, params: CheckOutput(),
        params=GenerationParams,
        metrics=(MetricSpec("seconds"),),
        summary="a plugin's check",
    )
    schema = suite_json_schema(replace(registry, checks={**registry.checks, plugin_check.name: plugin_check}))
    defs = schema["$defs"]
    generation = [k for k in defs if k.endswith("GenerationParams")]
    assert len(generation) == 2, generation
    base = {"apiVersion": "llmguard/v1", "name": "s", "checks": []}
    plugin = {"id": "speed", "uses": "plugin.generation", "with": {"ignore_eos": True}}
    jsonschema.validate({**base, "checks": [plugin]}, schema)  # a key only the plugin's model has
    for wrong in (
        {**plugin, "with": {"ignore_eos": "sometimes"}},
        {"id": "g", "uses": "performance.generation", "with": {"ignore_eos": True}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**base, "checks": [wrong]}, schema)


def test_documented_suites_were_found() -> None:
    assert any(w.startswith("docs/") or w.startswith("README") for w, _ in SUITES)
    assert any(Path(w).parts[0] == "suites" for w, _ in SUITES)
