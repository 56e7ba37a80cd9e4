"""``bom.cdx.json``: the run as a CycloneDX 1.6 ML-BOM, for supply-chain and compliance tools.

The BOM is built with ``cyclonedx-python-lib`` (the ``evidence`` extra) and serialized by
its JSON 1.6 writer: one ``machine-learning-model`` component per suite model and one
``data`` component per dataset, each with the SHA-256 the run computed (a folder's is the
manifest digest of :mod:`llmguard_ops.artifacts`, noted in a property). The library does
not model ``modelCard`` yet, so the card is added to each model component's JSON from
the report:

* ``modelParameters.datasets``: references to the data components the model's checks
  read;
* ``quantitativeAnalysis.performanceMetrics``: every headline metric of the checks on
  that model (``type`` = ``CHECK_ID: METRIC``), with ``confidenceInterval`` where the
  check computed one, and per-group metrics of ``bias.*`` checks with their ``slice``;
* ``considerations.fairnessAssessments``: one per sensitive attribute of each ``bias.*``
  check: the groups at risk and the measured disparities with their gates as ``harms``
  (no benefits or mitigations are claimed that the run did not establish).

``tests/test_evidence_formats.py`` validates the file with cyclonedx's
``JsonStrictValidator(SchemaVersion.V1_6)``. Without the library installed the reporter
writes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from ..registry import Registry, Reporter
from ..report import Report, atomic_write
from ..results import CheckResult

FILENAME = "bom.cdx.json"


def _num(value: float) -> str:
    return f"{value:.6g}"


def _metric(check: CheckResult, name: str, slice_: str | None = None) -> dict[str, Any]:
    m = check.metrics[name]
    out: dict[str, Any] = {"type": f"{check.id}: {name}", "value": _num(m.value)}
    if slice_:
        out["slice"] = slice_
    if m.lower is not None and m.upper is not None:
        out["confidenceInterval"] = {"lowerBound": _num(m.lower), "upperBound": _num(m.upper)}
    return out


def _performance(check: CheckResult, fairness: bool) -> list[dict[str, Any]]:
    rows = [_metric(check, n) for n in check.metrics if "." not in n]
    if fairness:  # group.ATTR=VALUE.METRIC → sliced by that group
        for name in check.metrics:
            parts = name.split(".")
            if len(parts) == 3 and parts[0] == "group" and parts[2] != "count":
                row = _metric(check, name, slice_=parts[1])
                row["type"] = f"{check.id}: {parts[2]}"
                rows.append(row)
    return rows


def _fairness(check: CheckResult) -> list[dict[str, Any]]:
    sensitive = check.details.get("sensitive") or check.params.get("sensitive") or []
    if isinstance(sensitive, str):
        sensitive = [sensitive]
    gates = {g.metric: g for g in check.gates}
    out = []
    for attr in sensitive or ["(all sensitive attributes)"]:
        groups = sorted({n.split(".")[1] for n in check.metrics if n.startswith(f"group.{attr}=")})
        measured = []
        for name, m in check.metrics.items():
            base = name.removeprefix(f"attribute.{attr}.")
            if "." in base:
                continue
            if name == base and len(sensitive) > 1:
                continue  # an overall figure over several attributes belongs to none alone
            text = f"{base} = {_num(m.value)}"
            if m.lower is not None and m.upper is not None:
                text += f" [{_num(m.lower)}, {_num(m.upper)}]"
            gate = gates.get(name)
            if gate is not None:
                text += f" (gate: {'pass' if gate.passed else 'FAIL'}: {gate.reason})"
            measured.append(text)
        if not measured:
            continue
        out.append(
            {
                "groupAtRisk": f"{attr}: {', '.join(groups)}" if groups else attr,
                "harms": f"check {check.id} ({check.status.value}) measured: " + "; ".join(measured),
            }
        )
    return out


def build_bom(report: Report, registry: Registry | None = None) -> dict[str, Any]:
    """The BOM as JSON data (library-built components, with the model cards added).

    Checks whose definition is tagged ``fairness`` (in ``registry``, by default the
    installed plugins') give the cards' fairness assessments and per-group metrics.
    """
    if registry is None:
        from ..plugins import get_plugin_manager

        registry = get_plugin_manager().registry()
    fair = {c.uses for c in report.checks if registry.tagged(c.uses, "fairness")}
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    from .. import __version__

    def hashes(sha256: str | None) -> list[HashType]:
        return [HashType(alg=HashAlgorithm.SHA_256, content=sha256)] if sha256 else []

    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"llmguard-run:{report.run_id}"))
    models: dict[str, Component] = {}
    for name, info in report.models.items():
        component = Component(
            type=ComponentType.MACHINE_LEARNING_MODEL,
            name=Path(str(info.get("path") or name)).name,
            bom_ref=f"model:{name}",
            hashes=hashes(info.get("sha256")),
            properties=[
                Property(name="llmguard:role", value=name),
                Property(name="llmguard:loader", value=str(info.get("loader"))),
                Property(name="llmguard:digest", value=str(info.get("digest"))),
            ],
        )
        models[name] = component
        bom.components.add(component)
    for name, info in report.datasets.items():
        bom.components.add(
            Component(
                type=ComponentType.DATA,
                name=Path(str(info.get("path") or name)).name,
                bom_ref=f"dataset:{name}",
                hashes=hashes(info.get("sha256")),
                properties=[
                    Property(name="llmguard:dataset", value=name),
                    Property(name="llmguard:rows", value=str(info.get("rows"))),
                ],
            )
        )
    bom.metadata.properties.add(Property(name="llmguard:run_id", value=report.run_id))
    bom.metadata.properties.add(Property(name="llmguard:decision", value=report.decision.decision.value))
    bom.metadata.properties.add(Property(name="llmguard:suite", value=report.suite.name))
    bom.metadata.properties.add(Property(name="llmguard:producer", value=f"llmguard-ops {__version__}"))
    data: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    for component in data.get("components", []):
        ref = component.get("bom-ref", "")
        if not ref.startswith("model:"):
            continue
        name = ref.removeprefix("model:")
        checks = [
            c for c in report.checks if c.params.get("model") == name or (len(models) == 1 and "model" not in c.params)
        ]
        used = sorted({str(c.params["dataset"]) for c in checks if c.params.get("dataset") in report.datasets})
        card: dict[str, Any] = {}
        if used:
            card["modelParameters"] = {"datasets": [{"ref": f"dataset:{d}"} for d in used]}
        metrics = [row for c in checks for row in _performance(c, c.uses in fair)]
        if metrics:
            card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
        fairness = [row for c in checks if c.uses in fair for row in _fairness(c)]
        if fairness:
            card["considerations"] = {"fairnessAssessments": fairness}
        if card:
            component["modelCard"] = card
    return data


def write_bom(report: Report, out_dir: Path, registry: Registry | None = None) -> list[Path]:
    try:
        import cyclonedx  # noqa: F401
    except ImportError:  # the `evidence` extra is not installed
        return []
    text = json.dumps(build_bom(report, registry), indent=2, sort_keys=True, ensure_ascii=False)
    return [atomic_write(out_dir / FILENAME, text + "\n")]


@hookimpl
def llmguard_register_reporters(register: Callable[[Reporter], None]) -> None:
    register(
        Reporter(
            name="cyclonedx",
            write=write_bom,
            summary="bom.cdx.json, a CycloneDX 1.6 ML-BOM with model cards (needs [evidence])",
            needs=(),
            provides=("bom.cdx.json",),
        )
    )
