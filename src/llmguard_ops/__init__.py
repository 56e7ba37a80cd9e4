"""llmguard-ops: gate model promotion with declarative suites and signed evidence.

This module is the public API for plugin authors and library users: every name in
``__all__`` keeps its meaning within a major version (semantic versioning; see
``docs/plugin-api.md`` for what each name is and promises). Everything else — every
submodule such as ``llmguard_ops.report`` or ``llmguard_ops.gate`` — is internal and may
change in any release; first-party checks and the plugins shipped with llmguard-ops
import only from here, and a lint rule holds them to it.

Names are imported on first use (PEP 562): ``import llmguard_ops`` alone costs nothing,
which matters because pytest imports the package's pytest11 plugin on every run in an
environment where llmguard-ops is installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .artifacts import LoadedDataset, LoadedModel, sha256_path
    from .cli import main
    from .context import ArtifactFile, CheckContext
    from .errors import ArtifactError, CheckSkipped, LlmguardError, PluginError, SuiteError
    from .executors import ExecutorDefinition, Resources
    from .gate import GateEvaluation, evaluate_gates
    from .generation import Generations, sample_seed
    from .generation import flatten as flatten_messages
    from .generation import render as render_prompt
    from .hookspecs import hookimpl, hookspec
    from .partitioned import PartitionedDataset, PartitionMap, PartitionTask
    from .registry import CardSection, CheckDefinition, DatasetLoader, MetricSpec, ModelLoader, Reporter
    from .report import OutputFile, Report
    from .results import CheckOutput, CheckResult, Decision, GateDecision, GateOutcome, Metric, Severity, Status
    from .runner import RunOutcome, run
    from .stats.mergeable import CategoryCounts, FixedHistogram, GroupConfusion, Moments, QuantileSketch, Sketched
    from .suite import (
        CheckConfig,
        DatasetRef,
        DatasetSpec,
        GateBound,
        GenerationConfig,
        ModelRef,
        ModelSpec,
        PromptSpec,
    )
    from .verification import ApprovalCheck, VerifiedStatement, check_approvals, verify_attestation_file

__version__ = "0.1.0"

#: public name → ``submodule`` defining it, or ``submodule:name`` where the names differ
_EXPORTS = {
    "LoadedDataset": "artifacts",
    "LoadedModel": "artifacts",
    "sha256_path": "artifacts",
    "main": "cli",
    "ArtifactFile": "context",
    "CheckContext": "context",
    "ArtifactError": "errors",
    "CheckSkipped": "errors",
    "LlmguardError": "errors",
    "PluginError": "errors",
    "SuiteError": "errors",
    "ExecutorDefinition": "executors",
    "Resources": "executors",
    "GateEvaluation": "gate",
    "evaluate_gates": "gate",
    "Generations": "generation",
    "flatten_messages": "generation:flatten",
    "render_prompt": "generation:render",
    "sample_seed": "generation",
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "CardSection": "registry",
    "PartitionMap": "partitioned",
    "PartitionTask": "partitioned",
    "PartitionedDataset": "partitioned",
    "CheckDefinition": "registry",
    "DatasetLoader": "registry",
    "MetricSpec": "registry",
    "ModelLoader": "registry",
    "Reporter": "registry",
    "OutputFile": "report",
    "Report": "report",
    "CheckOutput": "results",
    "CheckResult": "results",
    "Decision": "results",
    "GateDecision": "results",
    "GateOutcome": "results",
    "Metric": "results",
    "Severity": "results",
    "Status": "results",
    "RunOutcome": "runner",
    "run": "runner",
    "CategoryCounts": "stats.mergeable",
    "FixedHistogram": "stats.mergeable",
    "GroupConfusion": "stats.mergeable",
    "Moments": "stats.mergeable",
    "QuantileSketch": "stats.mergeable",
    "Sketched": "stats.mergeable",
    "CheckConfig": "suite",
    "DatasetRef": "suite",
    "DatasetSpec": "suite",
    "GateBound": "suite",
    "GenerationConfig": "suite",
    "ModelRef": "suite",
    "ModelSpec": "suite",
    "PromptSpec": "suite",
    "ApprovalCheck": "verification",
    "VerifiedStatement": "verification",
    "check_approvals": "verification",
    "verify_attestation_file": "verification",
}


def __getattr__(name: str) -> Any:
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module 'llmguard_ops' has no attribute {name!r}")
    module, _, attr = where.partition(":")
    value = getattr(importlib.import_module(f".{module}", __name__), attr or name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "ApprovalCheck",
    "ArtifactError",
    "ArtifactFile",
    "CardSection",
    "CategoryCounts",
    "CheckConfig",
    "CheckContext",
    "CheckDefinition",
    "CheckOutput",
    "CheckResult",
    "CheckSkipped",
    "DatasetLoader",
    "DatasetRef",
    "DatasetSpec",
    "Decision",
    "ExecutorDefinition",
    "FixedHistogram",
    "GateBound",
    "GateDecision",
    "GateEvaluation",
    "GateOutcome",
    "GenerationConfig",
    "Generations",
    "GroupConfusion",
    "LlmguardError",
    "LoadedDataset",
    "LoadedModel",
    "Metric",
    "MetricSpec",
    "ModelLoader",
    "ModelRef",
    "ModelSpec",
    "Moments",
    "OutputFile",
    "PartitionMap",
    "PartitionTask",
    "PartitionedDataset",
    "PluginError",
    "PromptSpec",
    "QuantileSketch",
    "Report",
    "Reporter",
    "Resources",
    "RunOutcome",
    "Severity",
    "Sketched",
    "Status",
    "SuiteError",
    "VerifiedStatement",
    "__version__",
    "check_approvals",
    "evaluate_gates",
    "flatten_messages",
    "hookimpl",
    "hookspec",
    "main",
    "render_prompt",
    "run",
    "sample_seed",
    "sha256_path",
    "verify_attestation_file",
]
