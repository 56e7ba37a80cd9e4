"""Formatting shared by the reporters: which metrics matter most, and how to print them."""

from __future__ import annotations

from dataclasses import dataclass

from ..results import CheckResult, GateOutcome, Metric


def number(x: float | None) -> str:
    """A metric value in four significant digits (``n/a`` for a missing one)."""
    return "n/a" if x is None else f"{x:.4g}"


@dataclass(frozen=True)
class KeyMetric:
    """A metric of a check as reports show it, with the gate outcome when it is gated."""

    name: str
    metric: Metric
    gate: GateOutcome | None = None

    def interval(self) -> str:
        m = self.metric
        if not m.has_interval:
            return ""
        level = f" {m.confidence:.0%}" if m.confidence is not None else ""
        return f"[{number(m.lower)}, {number(m.upper)}]{level}"

    def bound(self) -> str:
        """The gate as ``min 0.7`` / ``max 0.05`` (with ``@95%`` when tested on the interval)."""
        g = self.gate
        if g is None:
            return ""
        parts = []
        if g.min is not None:
            parts.append(f"min {number(g.min)}")
        if g.max is not None:
            parts.append(f"max {number(g.max)}")
        at = f" @{g.confidence:.0%}" if g.confidence is not None else ""
        return ", ".join(parts) + at

    def text(self) -> str:
        """``name = value [lo, hi] 95%`` in plain text."""
        ci = self.interval()
        return f"{self.name} = {number(self.metric.value)}" + (f" {ci}" if ci else "")


def key_metrics(result: CheckResult, limit: int | None = None) -> list[KeyMetric]:
    """Gated metrics first (in gate order), then the others in the check's own order.

    ``limit`` caps the total but never drops a gated metric: those are why the check ran.
    """
    gated = {g.metric: g for g in result.gates}
    out = [
        KeyMetric(name, result.metrics[name], gate)
        for name, gate in gated.items()
        if name in result.metrics
    ]
    rest = [KeyMetric(name, m) for name, m in result.metrics.items() if name not in gated]
    if limit is not None:
        rest = rest[: max(0, limit - len(out))]
    return out + rest


def failure_reasons(result: CheckResult) -> list[str]:
    """Why a check did not pass: its failed gates' reasons, or its error."""
    if result.error is not None:
        return [f"{result.error.type}: {result.error.message}"]
    return [g.reason for g in result.failed_gates]


def metric_properties(result: CheckResult) -> list[tuple[str, str]]:
    """JUnit-style ``(name, value)`` properties of a check: provenance, then every metric.

    A metric ``m`` gives ``metric.m`` and, when present, ``metric.m.lower``/``.upper``/
    ``.confidence``/``.p_value``/``.n``. Values keep full precision (``repr`` of the float)
    so a CI dashboard can plot them.
    """
    props = [
        ("llmguard.status", result.status.value),
        ("llmguard.severity", result.severity.value),
        ("llmguard.uses", result.uses),
        ("llmguard.plugin", f"{result.plugin} {result.plugin_version or ''}".strip()),
    ]
    for km in key_metrics(result):
        m = km.metric
        props.append((f"metric.{km.name}", repr(m.value)))
        for field in ("lower", "upper", "confidence", "p_value", "n"):
            v = getattr(m, field)
            if v is not None:
                props.append((f"metric.{km.name}.{field}", repr(v)))
    for gate in result.gates:
        props.append((f"gate.{gate.metric}", "pass" if gate.passed else "fail"))
    return props
