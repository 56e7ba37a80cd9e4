"""Where a run's checks execute: the executor seam.

An executor takes the checks of a run (the session holds the loaded suite, models and
datasets) and returns one :class:`~llmguard_ops.CheckResult` per check, in suite order.
``local`` (the default) runs them one after another in this process, exactly as the
runner always has; ``ray`` runs each as a Ray task placed by its :class:`Resources`.
Plugins add executors through ``llmguard_register_executors``; a suite picks one with
``policy.executor`` and ``llmguard run --executor NAME`` overrides it.

This module stays free of heavy imports: an executor's engine (``ray``) is imported only
when it is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..results import CheckResult
    from ..runner import ProgressFn, Session
    from ..suite import CheckConfig


@dataclass(frozen=True)
class Resources:
    """What one check needs of a machine to run: CPUs, GPUs, memory (bytes), custom resources.

    ``None`` leaves the executor's default (one CPU, no GPU, no memory reservation). A
    suite's ``resources:`` of a check overrides the check's own defaults field by field.
    The local executor records but does not enforce them; the Ray executor asks Ray for
    exactly these (``num_cpus``, ``num_gpus``, ``memory``, ``resources``).

    ``exclusive`` (a check's own declaration, not a suite's): the check measures time, so
    the Ray executor pins it to one node and gives it every CPU there while it runs.
    """

    cpus: float | None = None
    gpus: float | None = None
    memory: int | None = None
    custom: Mapping[str, float] = field(default_factory=dict)
    exclusive: bool = False

    def merged(self, override: Resources | None) -> Resources:
        """These defaults with every field ``override`` sets taking precedence."""
        if override is None:
            return self
        return Resources(
            cpus=override.cpus if override.cpus is not None else self.cpus,
            gpus=override.gpus if override.gpus is not None else self.gpus,
            memory=override.memory if override.memory is not None else self.memory,
            custom={**self.custom, **override.custom},
            exclusive=self.exclusive or override.exclusive,
        )

    def describe(self) -> dict[str, Any]:
        """The set fields, as the report records them."""
        out: dict[str, Any] = {k: v for k, v in (("cpus", self.cpus), ("gpus", self.gpus)) if v is not None}
        if self.memory is not None:
            out["memory"] = self.memory
        if self.custom:
            out["custom"] = dict(self.custom)
        if self.exclusive:
            out["exclusive"] = True
        return out


class Executor(Protocol):
    """What an opened executor does (the object ``ExecutorDefinition.open`` returns)."""

    def describe(self) -> dict[str, Any]:
        """What the report records under ``executor``: at least ``name``; for a cluster its
        nodes, CPUs, GPUs and engine version."""
        ...

    def run(self, session: Session, configs: Sequence[CheckConfig], progress: ProgressFn | None) -> list[CheckResult]:
        """Run ``configs`` and return one result per check, in the same order.

        Must never raise for a fault of a check: a crash, a hang past its timeout, a dead
        worker or a request no machine can satisfy is an ERROR result of that check. Calls
        ``progress("check_start", …)`` and ``progress("check_end", …)`` per check when given.
        """
        ...

    def close(self) -> None:
        """Release what ``open`` acquired (a connection, a cluster it started)."""
        ...


@dataclass(frozen=True)
class ExecutorDefinition:
    """An executor a plugin provides.

    ``open(options)`` connects (``options`` holds what the run was given, e.g.
    ``{"address": "ray://head:10001"}``) and returns an :class:`Executor`; it raises
    :class:`~llmguard_ops.LlmguardError` with one line when it cannot (the run exits 2).
    Import the engine inside ``open``, never at module level.
    """

    name: str
    open: Callable[[Mapping[str, Any]], Executor]
    summary: str = ""
    plugin: str = ""
    plugin_version: str | None = None


def resources_for(session: Session, config: CheckConfig) -> Resources:
    """The check's resources: its definition's defaults, then the suite's ``resources:``."""
    definition = session.host.registry().checks[config.uses]
    base = definition.resources or Resources()
    spec = config.resources
    if spec is None:
        return base
    return base.merged(Resources(cpus=spec.cpus, gpus=spec.gpus, memory=spec.memory, custom=dict(spec.custom)))


def open_executor(session: Session, name: str | None, options: Mapping[str, Any]) -> Executor:
    """Open the executor ``name`` (default: the suite's ``policy.executor``).

    Raises :class:`~llmguard_ops.LlmguardError` (one line, exit 2) for a name no plugin
    registered, or when the executor cannot start (e.g. an unreachable cluster); the
    message is redacted like every output of the run.
    """
    from ..errors import LlmguardError, did_you_mean

    chosen = name or session.loaded.suite.policy.executor
    executors = session.host.registry().executors
    definition = executors.get(chosen)
    if definition is None:
        listed = ", ".join(sorted(executors)) or "none"
        raise LlmguardError(
            f"--executor: unknown executor '{chosen}'{did_you_mean(chosen, executors)}; installed: {listed}"
        )
    try:
        return definition.open(options)
    except LlmguardError as exc:
        raise LlmguardError(session.redactor.text(str(exc))) from None
