"""llmguard-ops: gate model promotion with declarative suites and signed evidence.

This module is the public API for plugin authors and library users; everything not
listed in ``__all__`` is internal.
"""

from .context import CheckContext
from .errors import ArtifactError, CheckSkipped, LlmguardError, PluginError, SuiteError
from .hookspecs import hookimpl, hookspec
from .registry import CheckDefinition, DatasetLoader, MetricSpec, ModelLoader, Reporter
from .results import CheckOutput, CheckResult, Decision, GateDecision, Metric, Severity, Status
from .runner import RunOutcome, run
from .suite import DatasetRef, ModelRef

__version__ = "0.1.0"

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
