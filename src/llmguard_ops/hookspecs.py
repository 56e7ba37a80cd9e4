"""Hook specifications: the whole plugin API of llmguard-ops in one module.

A plugin is a module (or object) exposing functions marked with
:data:`llmguard_ops.hookimpl`, loaded through the ``llmguard`` entry-point group. Every
hook is named ``llmguard_*``; unknown ``llmguard_*`` implementations are rejected at
load time (``check_pending``), so a typo never silently does nothing.

Registration hooks receive a ``register`` callback rather than returning values: the
host binds the callback to the calling plugin and so records which plugin provided
each check, loader and reporter, and refuses duplicates naming both plugins.

Lifecycle of ``llmguard run``::

    load plugins → llmguard_register_* → validate suite → load models and datasets
    → for each check: llmguard_run_check (wrappers around the host's runner)
    → gate (pure function) + llmguard_gate_veto → evidence and reporters
    → llmguard_on_decision
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    from .context import CheckContext
    from .executors import ExecutorDefinition
    from .registry import CheckDefinition, DatasetLoader, ModelLoader, Reporter
    from .report import Report
    from .results import CheckOutput

PROJECT = "llmguard"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    """Register the checks this plugin provides.

    :param register: call once per :class:`~llmguard_ops.CheckDefinition`. The host
        records the calling plugin as the check's provider. A name already provided by
        another plugin raises :class:`~llmguard_ops.PluginError` naming both.

    Called once per plugin when the registry is built; the return value is ignored.
    An exception here is reported as that plugin's load failure; other plugins still
    register.
    """


@hookspec
def llmguard_register_model_loaders(register: Callable[[ModelLoader], None]) -> None:
    """Register model loaders (the ``loader:`` of a suite's model entry).

    :param register: call once per :class:`~llmguard_ops.ModelLoader`. Names are unique
        across plugins, as for checks.
    """


@hookspec
def llmguard_register_dataset_loaders(register: Callable[[DatasetLoader], None]) -> None:
    """Register dataset loaders (chosen by a dataset's ``loader:`` or file extension).

    :param register: call once per :class:`~llmguard_ops.DatasetLoader`.
    """


@hookspec
def llmguard_register_reporters(register: Callable[[Reporter], None]) -> None:
    """Register reporters: each writes output files of a run into the output folder.

    :param register: call once per :class:`~llmguard_ops.Reporter`. A reporter declares
        what it ``needs`` written before it (output files or reporter names, ``"*"`` for
        every other output) and what it ``provides``; the host runs reporters in that
        order, after ``report.json``, and hands each the report with ``outputs`` holding
        every file written so far (path, sha256, size, reporter, plugin).
    """


@hookspec
def llmguard_register_executors(register: Callable[[ExecutorDefinition], None]) -> None:
    """Register executors: engines that run a run's checks (``policy.executor``,
    ``llmguard run --executor NAME``).

    :param register: call once per :class:`~llmguard_ops.ExecutorDefinition`. Names are
        unique across plugins, as for checks; the host's builtin plugin registers
        ``local`` (the default: in this process) and ``ray`` (each check a Ray task
        placed by its :class:`~llmguard_ops.Resources`).

    Called once per plugin when the registry is built. ``open(options)`` is called only
    when a run chooses the executor, so an engine's heavy imports belong inside it. An
    executor returns one result per check and turns every fault of a check (a dead
    worker, a hang, an unschedulable request) into an ERROR of that check.
    """


@hookspec
def llmguard_register_safety_probe_sets(register: Callable[[Any], None]) -> None:
    """Register probe sets for ``safety.scan`` (attacks and benign look-alikes, as data).

    :param register: call once per ``llmguard_checks.safety.ProbeSet`` — built with
        ``ProbeSet.from_file(path)`` from a YAML or JSONL file in the schema of
        ``docs/safety.md`` (``id``, ``category``, ``prompt``, ``expected``, ``detector``,
        optional ``system``/``context``). Names are unique across plugins, as for checks;
        the host records the calling plugin, and ``llmguard checks`` lists the set.

    Called once per plugin when the registry is built. A suite runs a registered set with
    ``probe_sets: [NAME]``; its version and sha256 go into the check's details, and so into
    the signed attestation.
    """


@hookspec
def llmguard_register_safety_converters(register: Callable[[Any], None]) -> None:
    """Register prompt converters for ``safety.scan`` (obfuscations composed onto attacks).

    :param register: call once per ``llmguard_checks.safety.Converter(name, convert,
        summary)``; ``convert(text)`` returns the transformed attack text and must be
        deterministic. Names are unique across plugins. Suites compose converters with
        ``+`` (``roleplay+base64`` applies ``roleplay`` then ``base64``).

    Called once per plugin when the registry is built.
    """


@hookspec
def llmguard_register_safety_detectors(register: Callable[[Any], None]) -> None:
    """Register detectors for ``safety.scan``: they decide from one output whether an
    attempt hit.

    :param register: call once per ``llmguard_checks.safety.Detector(name, detect, kind,
        summary)``; ``detect(output, attempt)`` returns ``True`` on a hit. ``kind`` is
        ``"leak"`` (a hit is a successful attack: a canary, planted value or marker came
        out) or ``"refusal"`` (a hit is a refusal: an attack fails, a benign request is
        over-refused). Names are unique across plugins; a probe names its detector(s).

    Called once per plugin when the registry is built.
    """


@hookspec(firstresult=True)
def llmguard_run_check(context: CheckContext, check: CheckDefinition, params: Any) -> CheckOutput | None:
    """Run one check and return its :class:`~llmguard_ops.CheckOutput`.

    :param context: the run's view for this check (models, datasets, cached predictions,
        seed, confidence levels, artifact folder).
    :param check: the definition being run.
    :param params: the validated instance of ``check.params``.

    Stops at the first non-``None`` result. The host's own implementation calls
    ``check.run(context, params)`` and runs last; implement this hook with
    ``wrapper=True`` to surround every check (timing, tracing, resource limits) and
    ``return (yield)``. Exceptions propagate to the host, which records the check as
    ERROR; they never end the run.
    """


@hookspec
def llmguard_gate_veto(report: Report) -> list[str] | None:
    """Return reasons to BLOCK the run, or ``None``/``[]`` for no objection.

    :param report: the report with every check result and the gate's own decision: a
        deep copy for each implementation, so changing it changes nothing.

    All implementations are called, one plugin at a time through pluggy, and their reasons
    collected; any reason turns the decision into BLOCK. The host recomputes the decision from its own results after
    them: a plugin can add reasons to block; it can never turn a block into a pass. An
    implementation that raises, or returns anything but a list of strings, blocks.
    """


@hookspec
def llmguard_on_decision(report: Report, out_dir: Path) -> None:
    """React to the final decision, after every output has been written.

    :param report: the final report (``report.decision.decision`` is PROMOTE, REVIEW or
        BLOCK).
    :param out_dir: the folder holding ``report.json`` and the attestation.

    All implementations are called, one plugin at a time, each with its own copy of the
    report (e.g. a registry plugin moves an alias on PROMOTE). An exception is reported as
    a warning and does not change the decision; the other plugins are still called.
    """


@hookspec
def llmguard_on_incident(report: Report, out_dir: Path) -> None:
    """Run an incident playbook: called after ``llmguard_on_decision`` when the decision
    is BLOCK or REVIEW, and only then.

    :param report: the final report; ``report.decision.reasons`` says why.
    :param out_dir: the folder holding the run's outputs (attach them to a ticket).

    All implementations are called (open a ticket, page the owner, post to a channel).
    An exception is reported as a warning and does not change the decision. Suites can
    also notify webhooks without a plugin (``notify:`` in the suite).
    """


@hookspec(firstresult=True)
def llmguard_incident_step(
    step: str, params: dict[str, Any], report: Report, out_dir: Path, dry_run: bool
) -> str | None:
    """Run one step of an incident playbook (the suite's ``incidents:``), or decline it.

    ``llmguard monitor`` calls this for every step whose ``uses`` is not built in
    (``webhook``, ``ticket``) when the step's ``when`` matches the window (BLOCK, REVIEW,
    or any gate fired), after approval for a step marked ``needs_approval``.

    :param step: the step's ``uses`` name, e.g. ``mlflow.rollback``; decline (return
        ``None``) every name that is not yours.
    :param params: the step's ``with:`` mapping, as written in the suite.
    :param report: the window's final report (decision, fired gates, models).
    :param out_dir: the window's output folder.
    :param dry_run: ``True`` under ``--dry-run``: say what would be done, change nothing.
    :returns: a one-line outcome (e.g. ``alias champion of scorer moved 3 → 2``), which is
        printed and appended to the audit log; ``None`` when the step is not yours.

    The first non-``None`` result wins (``firstresult``). An exception is recorded as the
    step's failure (audit log and a warning) and the playbook goes on with the next step;
    it never changes the window's decision. A step no plugin takes is recorded as failed.
    """
