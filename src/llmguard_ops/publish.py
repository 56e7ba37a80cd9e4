"""The end of a run made explicit: ``report.json``, then every reporter in the order of its needs.

Reporters do not coordinate through registration order, file listings or mtimes. Each
declares what it ``needs`` (output files or reporter names, see
:class:`~llmguard_ops.registry.Reporter`); :func:`reporter_order` turns the declarations
into an order with :class:`graphlib.TopologicalSorter` (ties by registration order) and
says, as warnings, which needs nothing provides and which reporters need each other in a
cycle. Every reporter receives a copy of the report whose ``outputs`` holds each file
written before it (path relative to the output folder, sha256, size, the writing
reporter and its plugin); :func:`publish` returns them all, so the attestation and the
summary list third-party reporters' files with no change here.
"""

from __future__ import annotations

import graphlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .artifacts import sha256_file
from .report import OutputFile, Report, write_report

if TYPE_CHECKING:
    from .registry import Registry, Reporter

#: Files the host writes before any reporter runs: needing them is always satisfied.
HOST_OUTPUTS = ("report.json",)
#: The ``needs`` entry meaning "after every reporter that does not need me".
EVERYTHING = "*"
HOST = "llmguard_ops"


@dataclass
class Published:
    """What the end of a run wrote: the paths, the outputs with digests, the warnings."""

    written: list[Path] = field(default_factory=list)
    outputs: dict[str, OutputFile] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _ancestors(name: str, deps: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(deps.get(name, ()))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(deps.get(current, ()))
    return seen


def reporter_order(reporters: Sequence[Reporter], builtin: Sequence[str] = ()) -> tuple[list[Reporter], list[str]]:
    """The order to run ``reporters`` in, and warnings about needs that cannot be met.

    :param builtin: plugin names of the host's own reporters; a reporter that declares
        nothing (``needs=None``) runs after those of them that do not need ``"*"``.

    A need that no reporter provides is a warning (the reporter still runs). Reporters
    that need each other in a cycle are a warning naming the cycle, and then every
    reporter runs in registration order.
    """
    by_name = {r.name: r for r in reporters}
    index = {r.name: i for i, r in enumerate(reporters)}
    providers: dict[str, str] = {}
    for r in reporters:
        for provided in r.provides:
            providers.setdefault(provided, r.name)
    warnings: list[str] = []
    deps: dict[str, set[str]] = {r.name: set() for r in reporters}
    collectors = [r.name for r in reporters if r.needs is not None and EVERYTHING in r.needs]
    for r in reporters:
        if r.needs is None:  # a reporter from before needs existed: after the builtins it can see
            deps[r.name] = {
                o.name for o in reporters if o.plugin in builtin and o.name != r.name and o.name not in collectors
            }
            continue
        for need in r.needs:
            if need == EVERYTHING or need in HOST_OUTPUTS:
                continue
            provider = need if need in by_name else providers.get(need)
            if provider is None:
                warnings.append(
                    f"reporter '{r.name}' ({r.plugin}) needs '{need}', which no installed reporter "
                    "writes (not installed, or blocked): it runs without it"
                )
            else:
                deps[r.name].add(provider)
    for name in collectors:
        deps[name] |= {
            other
            for other in by_name
            if other != name and other not in collectors and name not in _ancestors(other, deps)
        }
    sorter = graphlib.TopologicalSorter(deps)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = " → ".join(f"'{n}'" for n in exc.args[1])
        warnings.append(f"reporters need each other in a cycle ({cycle}): every reporter runs in registration order")
        return list(reporters), warnings
    order: list[Reporter] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=index.__getitem__)
        order += [by_name[n] for n in ready]
        sorter.done(*ready)
    return order, warnings


def _relative(path: Path, out_dir: Path) -> str:
    try:
        return path.resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def output_file(path: Path, out_dir: Path, reporter: str, plugin: str, check: str | None = None) -> OutputFile:
    """The :class:`~llmguard_ops.report.OutputFile` entry of ``path`` (digested now)."""
    return OutputFile(
        path=_relative(path, out_dir),
        sha256=sha256_file(path),
        size=path.stat().st_size,
        reporter=reporter,
        plugin=plugin,
        check=check,
    )


def _write(reporter: Reporter, report: Report, out_dir: Path, registry: Registry) -> list[Path]:
    kwargs: dict[str, Any] = {}
    try:
        if "registry" in inspect.signature(reporter.write).parameters:
            kwargs["registry"] = registry
    except (TypeError, ValueError):  # a callable without a signature gets the two arguments
        pass
    return list(reporter.write(report, out_dir, **kwargs))


def publish(report: Report, out_dir: Path, registry: Registry, builtin: Sequence[str] = ()) -> Published:
    """Write ``report.json`` and every reporter's outputs; fill the outputs as they are written.

    Check artifacts inside ``out_dir`` are outputs too (recorded with their check's id).
    A reporter that raises is a warning; the others still run. ``report.outputs`` is left
    as it was; the returned :class:`Published` holds the outputs.
    """
    done = Published()

    def add(path: Path, reporter: str, plugin: str, check: str | None = None) -> None:
        if path.is_file():
            entry = output_file(path, out_dir, reporter, plugin, check)
            done.outputs[entry.path] = entry

    path = write_report(report, out_dir)
    done.written.append(path)
    add(path, "report", HOST)
    for check in report.checks:
        for value in check.artifacts.values():
            artifact = Path(value)
            artifact = artifact if artifact.is_absolute() else out_dir / artifact
            if artifact.resolve().is_relative_to(out_dir.resolve()):
                add(artifact, "", check.plugin, check.id)
    order, done.warnings = reporter_order(list(registry.reporters.values()), builtin)
    for reporter in order:
        view = report.model_copy(deep=True, update={"outputs": dict(done.outputs)})
        try:
            paths = _write(reporter, view, out_dir, registry)
        except Exception as exc:
            done.warnings.append(f"reporter '{reporter.name}' ({reporter.plugin}) failed: {type(exc).__name__}: {exc}")
            continue
        done.written.extend(paths)
        for p in paths:
            add(Path(p), reporter.name, reporter.plugin)
    return done


def stored_outputs(report_path: Path) -> dict[str, OutputFile]:
    """The outputs of a stored run, for re-rendering its pages (``llmguard report``).

    The report file itself, the attestation beside it, and every output the attestation
    lists whose file beside it still has the attested digest (an edited or missing file
    is left out). Without a readable attestation: the report file only.
    """
    import base64
    import json

    folder = report_path.parent
    found: dict[str, OutputFile] = {}

    def add(path: Path, reporter: str, check: str | None = None) -> None:
        if path.is_file():
            entry = output_file(path, folder, reporter, "", check)
            found[entry.path] = entry

    add(report_path, "report")
    attestation = folder / "attestation.dsse.json"
    try:
        envelope = json.loads(attestation.read_text(encoding="utf-8"))
        statement = json.loads(base64.b64decode(envelope["payload"]))
        attested = statement["predicate"]["outputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return found
    add(attestation, "evidence")
    if isinstance(attested, dict):
        for name, digest in attested.items():
            path = folder / str(name)
            if name not in found and path.is_file() and sha256_file(path) == digest:
                parts = str(name).split("/")  # a check's artifacts lie in artifacts/<check id>/
                add(path, "", parts[1] if len(parts) > 2 and parts[0] == "artifacts" else None)
    return found
