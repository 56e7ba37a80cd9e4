"""llmguard-ops: gate model promotion with declarative suites and signed evidence.

This module is the public API for plugin authors and library users; everything not
listed in ``__all__`` is internal.

Names are imported on first use (PEP 562): ``import llmguard_ops`` alone costs nothing,
which matters because pytest imports the package's pytest11 plugin on every run in an
environment where llmguard-ops is installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import CheckContext
    from .errors import ArtifactError, CheckSkipped, LlmguardError, PluginError, SuiteError
    from .hookspecs import hookimpl, hookspec
    from .registry import CheckDefinition, DatasetLoader, MetricSpec, ModelLoader, Reporter
    from .results import CheckOutput, CheckResult, Decision, GateDecision, Metric, Severity, Status
    from .runner import RunOutcome, run
    from .suite import DatasetRef, ModelRef

__version__ = "0.1.0"

#: public name → the submodule defining it
_EXPORTS = {
    "CheckContext": "context",
    "ArtifactError": "errors",
    "CheckSkipped": "errors",
    "LlmguardError": "errors",
    "PluginError": "errors",
    "SuiteError": "errors",
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "CheckDefinition": "registry",
    "DatasetLoader": "registry",
    "MetricSpec": "registry",
    "ModelLoader": "registry",
    "Reporter": "registry",
    "CheckOutput": "results",
    "CheckResult": "results",
    "Decision": "results",
    "GateDecision": "results",
    "Metric": "results",
    "Severity": "results",
    "Status": "results",
    "RunOutcome": "runner",
    "run": "runner",
    "DatasetRef": "suite",
    "ModelRef": "suite",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmguard_ops' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "ArtifactError",
    "CheckContext",
    "CheckDefinition",
    "CheckOutput",
    "CheckResult",
    "CheckSkipped",
    "DatasetLoader",
    "DatasetRef",
    "Decision",
    "GateDecision",
    "LlmguardError",
    "Metric",
    "MetricSpec",
    "ModelLoader",
    "ModelRef",
    "PluginError",
    "Reporter",
    "RunOutcome",
    "Severity",
    "Status",
    "SuiteError",
    "__version__",
    "hookimpl",
    "hookspec",
    "run",
]
