"""Formatting shared by the reporters: which metrics matter most, and how to print them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..results import CheckResult, GateOutcome, Metric


def fmt(value: Any, digits: int = 4) -> str:
    """A number for people: 4 significant digits, ``—`` for missing."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-4):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    return str(value)


def number(x: float | None) -> str:
    """A metric value as :func:`fmt` writes it (``n/a`` for a missing one)."""
    return "n/a" if x is None else fmt(x)


def fmt_range(lower: float | None, upper: float | None, confidence: float | None = None) -> str:
    """An interval as every report writes it: ``95% [0.81, 0.86]`` (the level when known)."""
    level = f"{confidence:.0%} " if confidence is not None else ""
    return f"{level}[{fmt(lower)}, {fmt(upper)}]"


def fmt_interval(m: Metric) -> str:
    """The confidence interval of ``m`` (see :func:`fmt_range`), ``""`` when it has none."""
    return fmt_range(m.lower, m.upper, m.confidence) if m.has_interval else ""


def jinja_env() -> Any:
    """The template environment shared by the HTML report and the model card."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("llmguard_ops", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = fmt
    return env


@dataclass(frozen=True)
class KeyMetric:
    """A metric of a check as reports show it, with the gate outcome when it is gated."""

    name: str
    metric: Metric
    gate: GateOutcome | None = None

    def interval(self) -> str:
        return fmt_interval(self.metric)

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
        """``name = value 95% [lo, hi]`` in plain text."""
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
