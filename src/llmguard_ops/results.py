"""What checks return and what the gate makes of it.

A check returns a :class:`CheckOutput` (metrics, details, warnings). The runner wraps
it in a :class:`CheckResult` with status, gate outcomes, timing and provenance. The
gate reduces all results to a :class:`GateDecision`.
"""

from __future__ import annotations

import enum
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Status(str, enum.Enum):
    """Outcome of one check."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    ERROR = "error"
    SKIP = "skip"


class Decision(str, enum.Enum):
    """Outcome of a whole run. The value is what reports print."""

    PROMOTE = "PROMOTE"
    REVIEW = "REVIEW"
    BLOCK = "BLOCK"

    @property
    def exit_code(self) -> int:
        """CLI exit status (contract): 0 PROMOTE, 1 BLOCK, 3 REVIEW."""
        return {"PROMOTE": 0, "BLOCK": 1, "REVIEW": 3}[self.value]


class Severity(str, enum.Enum):
    """How much a failed gate of a check weighs in the decision."""

    BLOCKER = "blocker"
    WARNING = "warning"
    INFO = "info"


class Metric(BaseModel):
    """One measured quantity, optionally with a confidence interval.

    ``lower``/``upper`` bound the interval at level ``confidence`` (e.g. 0.95), computed
    by ``interval_method``. A gate with ``confidence`` set tests the bound, not ``value``.
    """

    model_config = ConfigDict(extra="forbid")

    value: float
    lower: float | None = None
    upper: float | None = None
    confidence: float | None = None
    interval_method: str | None = None
    p_value: float | None = None
    n: int | None = None
    unit: str | None = None

    @field_validator("value", "lower", "upper", "p_value", mode="before")
    @classmethod
    def _numbers(cls, v: Any) -> Any:
        if isinstance(v, bool):
            return float(v)
        if v is not None and hasattr(v, "item"):  # numpy scalars
            return v.item()
        return v

    @property
    def has_interval(self) -> bool:
        return self.lower is not None and self.upper is not None

    def non_finite(self) -> list[str]:
        """Names of fields holding NaN or infinity (a check must never report those)."""
        bad = []
        for name in ("value", "lower", "upper", "p_value"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                bad.append(name)
        return bad


class CheckOutput(BaseModel):
    """What a check's run function returns.

    ``metrics`` are numbers the gate can test. ``details`` holds anything else the report
    should show (tables as lists of records, per-column results, examples); it must be
    JSON-serialisable. ``warnings`` are shown to the reviewer. ``artifacts`` maps a label
    to a file the check wrote under ``ctx.artifact_dir`` (plots, tables).
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    metrics: dict[str, Metric] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    artifacts: dict[str, str] = Field(default_factory=dict)

    def add(self, name: str, value: float, **fields: Any) -> Metric:
        """Record metric ``name`` and return it."""
        metric = Metric(value=value, **fields)
        self.metrics[name] = metric
        return metric


class GateOutcome(BaseModel):
    """One metric tested against one gate bound."""

    metric: str
    min: float | None = None
    max: float | None = None
    confidence: float | None = None
    value: float | None = None
    tested_low: float | None = Field(None, description="value compared with min")
    tested_high: float | None = Field(None, description="value compared with max")
    passed: bool
    reason: str


class ErrorInfo(BaseModel):
    """An exception or timeout inside a check."""

    type: str
    message: str
    traceback: str | None = None


class CheckResult(BaseModel):
    """The recorded outcome of one check in one run."""

    id: str
    uses: str
    plugin: str
    plugin_version: str | None = None
    severity: Severity
    allow_error: bool = False
    status: Status
    metrics: dict[str, Metric] = Field(default_factory=dict)
    gates: list[GateOutcome] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    artifacts: dict[str, str] = Field(default_factory=dict)
    error: ErrorInfo | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    duration_s: float = 0.0
    waiver: dict[str, Any] | None = None
    placement: dict[str, Any] | None = Field(
        None, description="where the check ran on a cluster (node, pid, resources); None in this process"
    )

    @property
    def failed_gates(self) -> list[GateOutcome]:
        return [g for g in self.gates if not g.passed]


class GateDecision(BaseModel):
    """The decision of a run with every reason that led to it."""

    decision: Decision
    reasons: list[str] = Field(default_factory=list)
    exit_code: int

    @property
    def outcome(self) -> Decision:
        """The decision itself (``report.decision.outcome`` reads better than ``.decision.decision``)."""
        return self.decision

    @classmethod
    def of(cls, decision: Decision, reasons: list[str]) -> GateDecision:
        return cls(decision=decision, reasons=reasons, exit_code=decision.exit_code)
