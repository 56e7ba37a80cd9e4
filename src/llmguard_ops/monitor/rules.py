"""``llmguard rules test FILE``: unit tests for learnt gates, as ``promtool test rules``.

A rules file gives gates and metric series, one value per window, and the windows
(0-based) where each gate must fire::

    rules:
      latency_p95: {learned: {method: median_mad, k: 4, window: 14, min_history: 7}, for: 2}
    tests:
      - name: a step at window 20 fires from window 21 on
        rule: latency_p95
        series: "100+0x19 160+0x9"      # promtool's expanding notation, or a list
        expect_firing: [21, 22, 23, 24, 25, 26, 27, 28]

The gate runs exactly as in ``llmguard monitor`` (band from the earlier windows,
Deequ's exclusion, the same :func:`~llmguard_ops.gate.evaluate_bound`), and a test fails
when the gate fires anywhere the file does not say, or not where it says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import LlmguardError
from ..suite import GateBound
from .bands import learn
from .spec import GatePrior


class RuleTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    rule: str
    series: list[float] | str
    expect_firing: list[int] = Field(default_factory=list)


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: dict[str, GateBound]
    tests: list[RuleTest] = Field(min_length=1)


_TERM = re.compile(r"^(-?[\d.]+(?:e-?\d+)?)(?:([+-][\d.]+(?:e-?\d+)?)x(\d+))?$")


def expand(series: list[float] | str) -> list[float]:
    """promtool's ``a+bxN`` notation: ``a``, then N more values each ``b`` apart."""
    if isinstance(series, list):
        return [float(v) for v in series]
    out: list[float] = []
    for term in series.split():
        m = _TERM.match(term)
        if not m:
            raise ValueError(f"cannot read series term {term!r} (expected a number or a+bxN)")
        start = float(m.group(1))
        out.append(start)
        if m.group(2):
            step = float(m.group(2))
            out += [start + step * (i + 1) for i in range(int(m.group(3)))]
    return out


@dataclass
class Step:
    value: float
    low: float | None
    high: float | None
    breached: bool
    fired: bool


def simulate(bound: GateBound, values: list[float]) -> list[Step]:
    """The gate's bounds, raw condition and firing state in each window of ``values``."""
    from ..gate import evaluate_bound
    from ..results import Metric
    from .persistence import raw_breach

    steps: list[Step] = []
    for v in values:
        update: dict[str, Any] = {"prior": GatePrior(breached=[s.breached for s in steps])}
        if bound.learned is not None:
            band = learn(bound.learned, [s.value for s in steps], [s.breached or s.fired for s in steps])
            if band is not None:
                update["min"], update["max"] = band.low, band.high
        resolved = bound.model_copy(update=update)
        outcome = evaluate_bound("metric", resolved, Metric(value=v))
        steps.append(Step(v, resolved.min, resolved.max, raw_breach(outcome), not outcome.passed))
    return steps


def load_rules(path: Path) -> RulesFile:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LlmguardError(f"{path}: cannot read rules file: {str(exc).splitlines()[0]}") from None
    try:
        rules = RulesFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise LlmguardError(f"{path}: {key}: {err['msg']}") from None
    for i, test in enumerate(rules.tests):
        if test.rule not in rules.rules:
            raise LlmguardError(
                f"{path}: tests.{i}.rule: unknown rule {test.rule!r} (the file defines: {', '.join(rules.rules)})"
            )
        try:
            expand(test.series)
        except ValueError as exc:
            raise LlmguardError(f"{path}: tests.{i}.series: {exc}") from None
    return rules


def run_tests(path: Path) -> tuple[bool, list[str]]:
    """Run every test of the file; (all passed, one line per test and per mismatch)."""
    rules = load_rules(path)
    lines: list[str] = []
    ok = True
    for test in rules.tests:
        values = expand(test.series)
        steps = simulate(rules.rules[test.rule], values)
        got = {i for i, s in enumerate(steps) if s.fired}
        want = set(test.expect_firing)
        missing, extra = sorted(want - got), sorted(got - want)
        beyond = sorted(i for i in want if i >= len(values))
        if missing or extra:
            ok = False
            lines.append(f"FAIL {test.name} (rule {test.rule})")
            for i in missing:
                why = "past the end of the series" if i in beyond else _explain(steps[i])
                lines.append(f"  window {i}: expected firing, not firing ({why})")
            for i in extra:
                lines.append(f"  window {i}: firing, not expected ({_explain(steps[i])})")
        else:
            lines.append(f"ok   {test.name} (rule {test.rule}): fires in {len(got)} window(s)")
    return ok, lines


def _explain(s: Step) -> str:
    lo = "-inf" if s.low is None else f"{s.low:.6g}"
    hi = "+inf" if s.high is None else f"{s.high:.6g}"
    return f"value {s.value:.6g}, bounds [{lo}, {hi}], condition {'held' if s.breached else 'clear'}"
