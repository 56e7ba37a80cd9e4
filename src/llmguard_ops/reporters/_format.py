"""Formatting shared by the reporters: which metrics matter most, and how to print them."""

from __future__ import annotations

import re
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
    out = [KeyMetric(name, result.metrics[name], gate) for name, gate in gated.items() if name in result.metrics]
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


# Markdown escaping ---------------------------------------------------------------------
# Suite text, check ids, category values and error messages are user input: in Markdown
# they must stay text (no link, image, raw HTML, emphasis, code span or table cell edge).

_MD_PUNCT = re.compile(r"([\\`*|~])")
# an underscore inside a word (metric_name) never starts emphasis; at a word edge it can
_MD_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_MD_LEADING = re.compile(r"^(\s*)(\[|[#+=-](?=\s|$)|\d+[.)](?=\s|$))")


def _clean(text: str) -> str:
    from ..terminal import clean  # terminal escapes mean nothing in a file but can hide text

    return clean(text.replace("\r", "\n"))


def md_inline(value: object) -> str:
    """``value`` as one line of Markdown text: every markup character escaped.

    ``<``, ``>`` and ``&`` become entities (no raw HTML, no ``<javascript:…>`` autolink);
    `` ` * | ~ \\`` (and ``_`` at a word edge) are backslash-escaped (no code span,
    emphasis or cell edge), so is the ``(`` of ``](`` (no inline link or image; without
    a definition, which cannot be written either, ``[text]`` stays text); a leading
    ``[``, ``#``, ``-``, ``+``, ``=`` or ``1.`` cannot start a block or a link definition.
    """
    text = " ".join(_clean(str(value)).split("\n"))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_PUNCT.sub(r"\\\1", text)
    text = _MD_UNDERSCORE.sub(r"\\_", text)
    text = text.replace("](", "]\\(")  # no inline link or image: [text](javascript:…)

    def leading(m: re.Match[str]) -> str:
        mark = m.group(2)
        if mark[0].isdigit():  # "1." : the dot is what starts a list
            return f"{m.group(1)}{mark[:-1]}\\{mark[-1]}"
        return f"{m.group(1)}\\{mark}"

    return _MD_LEADING.sub(leading, text)


def md_block(value: object) -> str:
    """Multi-line user text (a description): each line escaped as :func:`md_inline`."""
    return "\n".join(md_inline(line) for line in str(value).replace("\r", "\n").split("\n"))


def md_code(value: object, table: bool = False) -> str:
    """``value`` as a Markdown code span, fenced by more backticks than it contains.

    Inside a code span nothing is markup, so user text shows as written; ``table`` also
    escapes ``|``, which GitHub tables split on even inside code.
    """
    text = " ".join(_clean(str(value)).split("\n"))
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    if text.startswith("`") or text.endswith("`") or fence != "`":
        text = f" {text} "
    if table:
        text = text.replace("|", "\\|")
    return f"{fence}{text}{fence}"
