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
    from .report import Report
    from .results import CheckOutput
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
class CheckDefinition:
    """A check a plugin provides.

    ``run(ctx, params)`` receives a :class:`~llmguard_ops.context.CheckContext` and an
    instance of ``params`` (a pydantic model validated from the suite's ``with:``) and
    returns a :class:`~llmguard_ops.results.CheckOutput`. ``resources`` are what the check
    needs by default (CPUs, GPUs, memory) where an executor places checks (``ray``); a
    suite's ``resources:`` of the check overrides them field by field.
    """

    name: str
    run: Callable[[CheckContext, Any], CheckOutput]
    params: type[BaseModel]
    metrics: tuple[MetricSpec, ...]
    summary: str
    plugin: str = ""
    plugin_version: str | None = None
    resources: Resources | None = None

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
    """Writes one output of a run (``write(report, out_dir)`` returns the paths written)."""

    name: str
    write: Callable[[Report, Path], list[Path]]
    summary: str = ""
    plugin: str = ""
    plugin_version: str | None = None


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
        """The load failure that most plausibly explains a missing check ``name``."""
        family = name.split(".", 1)[0]
        for failure in self.failures:
            if failure.plugin == family or failure.plugin.endswith(family):
                return failure
        return None
