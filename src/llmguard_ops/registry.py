"""What plugins contribute, and who contributed it.

Plugins hand definitions to the host through ``register`` callbacks (see
:mod:`llmguard_ops.hookspecs`). The registry records the providing plugin of every
definition and refuses a second definition under a taken name, naming both plugins.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .errors import PluginError

if TYPE_CHECKING:
    import pandas as pd

    from .context import CheckContext
    from .executors import ExecutorDefinition, Resources
    from .results import CheckOutput, CheckResult
    from .suite import DatasetSpec, ModelSpec


@dataclass(frozen=True)
class MetricSpec:
    """A metric a check declares. ``name`` may be an fnmatch pattern (``column.*.p_value``).

    ``higher_is_better`` documents the direction (``None`` when neither is better);
    validation uses the names to reject gates on metrics a check never produces.
    """

    name: str
    description: str = ""
    higher_is_better: bool | None = None
    unit: str | None = None

    def matches(self, metric: str) -> bool:
        return fnmatch.fnmatchcase(metric, self.name)


@dataclass(frozen=True)
class CardSection:
    """A section of ``model_card.md`` that the results of a check go into.

    Checks declaring a section with the same ``title`` share it (the first registered
    declaration gives its ``order`` and ``empty``; each check renders as its own says);
    sections are laid out by ``order`` (then title) between "Metrics and results" and "Bias, risks and
    limitations". ``render`` says how one check's result shows there: ``"groups"`` (its
    metrics, then the ``group.<g>.<metric>`` table), ``"features"`` (the most influential
    features from ``importance.<feature>`` metrics or details, then its metrics),
    ``"metrics"`` (its metrics table), or a callable ``render(result) -> str`` returning
    the Markdown itself (user text in it must be escaped by the callable). ``empty`` is
    the text shown when no check of the section ran.
    """

    title: str
    order: int = 100
    render: str | Callable[[CheckResult], str] = "metrics"
    empty: str = ""


@dataclass(frozen=True)
class CheckDefinition:
    """A check a plugin provides.

    ``run(ctx, params)`` receives a :class:`~llmguard_ops.context.CheckContext` and an
    instance of ``params`` (a pydantic model validated from the suite's ``with:``) and
    returns a :class:`~llmguard_ops.results.CheckOutput`.

    What the host needs to know of a check family is declared here, so the host never
    names one: ``tags`` (what the check is about: ``"fairness"``, ``"model-performance"``,
    ``"needs-labels"``, ``"column-drift"``; see docs/plugin-guide.md), ``packages``
    (distributions whose versions the report's environment records), ``card_section``
    (where its results go in the model card) and ``unassessed`` (the limitation the model
    card lists when no check declaring the same text ran). ``resources`` are what the
    check needs by default (CPUs, GPUs, memory) where an executor places checks
    (``ray``); a suite's ``resources:`` of the check overrides them field by field.
    """

    name: str
    run: Callable[[CheckContext, Any], CheckOutput]
    params: type[BaseModel]
    metrics: tuple[MetricSpec, ...]
    summary: str
    plugin: str = ""
    plugin_version: str | None = None
    tags: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    card_section: CardSection | None = None
    unassessed: str = ""
    resources: Resources | None = None

    @property
    def family(self) -> str:
        """The part of the name before the first dot (``bias`` of ``bias.data``)."""
        return self.name.split(".", 1)[0]

    def declares(self, metric: str) -> bool:
        return any(spec.matches(metric) for spec in self.metrics)

    def metric_names(self) -> list[str]:
        return [spec.name for spec in self.metrics]


@dataclass(frozen=True)
class ModelLoader:
    """Turns a suite's model entry into a live object.

    ``load(spec, base_dir)`` returns the model object. ``digest(spec, base_dir)``, when
    given, returns ``(sha256 hex, description)`` of what was loaded; by default the host
    digests the file or folder at ``spec.path``.
    """

    name: str
    load: Callable[[ModelSpec, Path], Any]
    summary: str = ""
    digest: Callable[[ModelSpec, Path], tuple[str, str]] | None = None
    needs_path: bool = True
    plugin: str = ""
    plugin_version: str | None = None
    unsafe_format: Callable[[ModelSpec, Path], str | None] | None = None
    """``"pickle"`` when loading ``spec`` runs code stored in the file (recorded in the
    report, refused under ``policy.allow_pickle: false``); ``None`` when it does not."""
    special_files: bool = False
    """True when the loader reads FIFOs, devices or sockets itself; otherwise the host
    accepts only regular files and folders at ``path``."""


@dataclass(frozen=True)
class DatasetLoader:
    """Reads a dataset file into a pandas DataFrame; chosen by ``loader:`` or extension."""

    name: str
    load: Callable[[Path, DatasetSpec], pd.DataFrame]
    extensions: tuple[str, ...] = ()
    summary: str = ""
    plugin: str = ""
    plugin_version: str | None = None
    special_files: bool = False
    """True when the loader reads FIFOs, devices or sockets; otherwise only regular files."""


@dataclass(frozen=True)
class Reporter:
    """Writes outputs of a run (``write(report, out_dir)`` returns the paths written).

    ``report.outputs`` holds every file written before the reporter runs (path, sha256,
    who wrote it). ``needs`` names what must be written first: output files (``"model_card.md"``,
    as listed in another reporter's ``provides``) or reporter names; ``"*"`` means after
    every reporter that does not itself need this one (a summary of all outputs). The
    host orders reporters from these declarations (:func:`graphlib.TopologicalSorter`).
    A reporter that declares nothing (``needs=None``) runs after the builtin reporters
    that do not need ``"*"``. ``provides`` lists the file names it writes. When ``write``
    has a parameter named ``registry`` it also gets the run's
    :class:`~llmguard_ops.registry.Registry` (the checks' model-card sections, tags).
    """

    name: str
    write: Callable[..., list[Path]]
    summary: str = ""
    plugin: str = ""
    plugin_version: str | None = None
    needs: tuple[str, ...] | None = None
    provides: tuple[str, ...] = ()


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or registered; the others still are."""

    plugin: str
    distribution: str | None
    version: str | None
    error: str

    def line(self) -> str:
        dist = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"plugin '{self.plugin}'{dist} failed to load: {self.error}"


@dataclass
class Registry:
    """Everything installed plugins provide, with provenance."""

    checks: dict[str, CheckDefinition] = field(default_factory=dict)
    model_loaders: dict[str, ModelLoader] = field(default_factory=dict)
    dataset_loaders: dict[str, DatasetLoader] = field(default_factory=dict)
    reporters: dict[str, Reporter] = field(default_factory=dict)
    executors: dict[str, ExecutorDefinition] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    plugins: dict[str, str | None] = field(default_factory=dict)
    #: contributions to one check family, by kind (``"safety probe set"`` → name → item):
    #: frozen dataclasses with ``name``, ``summary``, ``plugin`` and ``plugin_version``.
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _add(self, table: dict[str, Any], kind: str, item: Any, plugin: str, version: str | None) -> None:
        item = replace(item, plugin=plugin, plugin_version=version)
        taken = table.get(item.name)
        if taken is not None:
            raise PluginError(
                f"{kind} '{item.name}' is provided by both plugin '{taken.plugin}' and "
                f"plugin '{plugin}'; uninstall one or block it with -p no:NAME"
            )
        table[item.name] = item

    def add_check(self, item: CheckDefinition, plugin: str, version: str | None) -> None:
        if not isinstance(item, CheckDefinition):
            raise PluginError(f"plugin '{plugin}' registered {item!r}, not a CheckDefinition")
        if not (isinstance(item.params, type) and issubclass(item.params, BaseModel)):
            raise PluginError(f"check '{item.name}' of plugin '{plugin}': params must be a pydantic model")
        self._add(self.checks, "check", item, plugin, version)

    def add_model_loader(self, item: ModelLoader, plugin: str, version: str | None) -> None:
        self._add(self.model_loaders, "model loader", item, plugin, version)

    def add_dataset_loader(self, item: DatasetLoader, plugin: str, version: str | None) -> None:
        self._add(self.dataset_loaders, "dataset loader", item, plugin, version)

    def add_reporter(self, item: Reporter, plugin: str, version: str | None) -> None:
        self._add(self.reporters, "reporter", item, plugin, version)

    def add_executor(self, item: ExecutorDefinition, plugin: str, version: str | None) -> None:
        from .executors import ExecutorDefinition

        if not isinstance(item, ExecutorDefinition):
            raise PluginError(f"plugin '{plugin}' registered {item!r}, not an ExecutorDefinition")
        self._add(self.executors, "executor", item, plugin, version)

    def add_extension(self, kind: str) -> Callable[[Any, str, str | None], None]:
        """The ``add`` function recording items of ``kind`` (unique names, with provenance)."""

        def add(item: Any, plugin: str, version: str | None) -> None:
            for attr in ("name", "summary", "plugin", "plugin_version"):
                if not hasattr(item, attr):
                    raise PluginError(f"plugin '{plugin}' registered {item!r} as a {kind}: it has no '{attr}'")
            self._add(self.extensions.setdefault(kind, {}), kind, item, plugin, version)

        return add

    def failure_for_check(self, name: str) -> PluginFailure | None:
        """The load failure that most plausibly explains a missing check ``name``.

        A plugin that failed registered nothing, so which checks it provides is unknown:
        the guess is a failed plugin named like the check's family (``acme`` for
        ``acme.x``, ``acme_checks.acme``), without a match, none.
        """
        family = name.split(".", 1)[0]
        for failure in self.failures:
            if failure.plugin == family or failure.plugin.endswith(family):
                return failure
        return None

    def definition(self, uses: str) -> CheckDefinition | None:
        """The installed definition of check ``uses``, if any."""
        return self.checks.get(uses)

    def tagged(self, uses: str, tag: str) -> bool:
        """Whether the installed check ``uses`` declares ``tag``."""
        definition = self.checks.get(uses)
        return definition is not None and tag in definition.tags

    def packages(self) -> tuple[str, ...]:
        """Every distribution the installed checks ask the environment to record, once each."""
        return tuple(dict.fromkeys(p for c in self.checks.values() for p in c.packages))

    def card_sections(self) -> list[tuple[CardSection, list[str]]]:
        """Model-card sections in layout order, each with the names of the checks in it."""
        by_title: dict[str, tuple[CardSection, list[str]]] = {}
        for check in self.checks.values():
            if check.card_section is not None:
                by_title.setdefault(check.card_section.title, (check.card_section, []))[1].append(check.name)
        return sorted(by_title.values(), key=lambda s: (s[0].order, s[0].title))

    def unassessed(self) -> list[tuple[str, list[str]]]:
        """Limitation texts in registration order, each with the checks that would assess it."""
        out: dict[str, list[str]] = {}
        for check in self.checks.values():
            if check.unassessed:
                out.setdefault(check.unassessed, []).append(check.name)
        return list(out.items())
