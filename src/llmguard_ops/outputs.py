"""The host's validation of what a check returns, before anything is gated or written.

A check is third-party code: its :class:`~llmguard_ops.results.CheckOutput` may hold a
metric built with ``model_construct`` (no validation), an interval that does not contain
its value, a NaN, or ``details`` with numpy arrays that would only fail when
``report.json`` is written. :func:`validated` rebuilds the output from plain data and
returns it with the list of problems; any problem makes the check an ERROR.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
from pathlib import PurePath
from typing import Any

from .results import CheckOutput, Metric

MAX_DEPTH = 64


class _NotJson(ValueError):
    pass


def jsonable(value: Any, where: str = "details", depth: int = 0) -> Any:
    """``value`` as plain JSON data: numpy scalars and arrays, tuples, paths, dates and enums
    converted; NaN and infinities become None. Raises ``ValueError`` naming the key path of
    anything else."""
    if depth > MAX_DEPTH:
        raise _NotJson(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return jsonable(value.value, where, depth + 1)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = jsonable(k, where, depth + 1) if not isinstance(k, str) else k
            if not isinstance(key, str | int | float | bool) or key is None:
                raise _NotJson(f"{where}: key {k!r} is not a string")
            out[str(key)] = jsonable(v, f"{where}.{key}", depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [jsonable(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(items)]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars, pandas objects
    if callable(tolist) and type(value).__module__.split(".")[0] in ("numpy", "pandas"):
        return jsonable(tolist(), where, depth + 1)
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__.split(".")[0] == "numpy":
        return jsonable(item(), where, depth + 1)
    if hasattr(value, "model_dump"):  # pydantic models
        return jsonable(value.model_dump(mode="json"), where, depth + 1)
    raise _NotJson(f"{where}: {type(value).__name__} is not JSON data")


def _plain(v: Any) -> Any:
    item = getattr(v, "item", None)
    if callable(item) and type(v).__module__.split(".")[0] == "numpy":
        return item()
    return v


def _metric_problems(name: str, m: Metric) -> list[str]:
    problems = []
    for field in ("value", "lower", "upper", "p_value", "confidence"):
        v = getattr(m, field)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            problems.append(f"metric '{name}': {field} is {type(v).__name__}, not a number")
        elif not math.isfinite(v):
            problems.append(f"metric '{name}' is {field}={v} not finite")
    if problems:
        return problems
    if (m.lower is None) != (m.upper is None):
        problems.append(f"metric '{name}': an interval needs both lower and upper")
    elif m.lower is not None and m.upper is not None:
        if m.lower > m.upper:
            problems.append(f"metric '{name}': interval [{m.lower:.6g}, {m.upper:.6g}] has lower > upper")
        if m.confidence is None:
            problems.append(f"metric '{name}': an interval needs its confidence level")
    if m.confidence is not None and not 0 < m.confidence < 1:
        problems.append(f"metric '{name}': confidence {m.confidence} is not in (0, 1)")
    if m.p_value is not None and not 0 <= m.p_value <= 1:
        problems.append(f"metric '{name}': p_value {m.p_value} is not in [0, 1]")
    if m.n is not None and (isinstance(m.n, bool) or not isinstance(m.n, int) or m.n < 0):
        problems.append(f"metric '{name}': n must be a count, got {m.n!r}")
    return problems


def validated(value: Any, uses: str) -> tuple[CheckOutput | None, list[str]]:
    """The check's return value rebuilt as plain, validated data, and every problem found.

    Metrics with problems are dropped (JSON has no NaN) and named in the problems; the
    caller makes the check an ERROR when any problem is returned.
    """
    if not isinstance(value, CheckOutput):
        return None, [f"check '{uses}' returned {type(value).__name__}, not CheckOutput"]
    problems: list[str] = []
    metrics: dict[str, Metric] = {}
    raw_metrics = value.metrics if isinstance(value.metrics, dict) else {}
    if not isinstance(value.metrics, dict):
        problems.append("metrics must be a mapping of names to Metric")
    for name, m in raw_metrics.items():
        if not isinstance(name, str) or not isinstance(m, Metric):
            problems.append(f"metric {name!r} is {type(m).__name__}, not Metric")
            continue
        fields = {k: _plain(v) for k, v in dict(m.__dict__).items()}
        bad = [
            k
            for k in ("value", "lower", "upper", "p_value", "confidence")
            if isinstance(fields.get(k), float) and not math.isfinite(fields[k])
        ]
        if bad:
            problems.append(f"metric '{name}' is {'/'.join(bad)} not finite")
            continue
        try:  # rebuild: a Metric made with model_construct was never validated
            fresh = Metric.model_validate(fields)
        except ValueError as exc:
            problems.append(f"metric '{name}': {str(exc).splitlines()[-2].strip()}")
            continue
        found = _metric_problems(name, fresh)
        if found:
            problems.extend(found)
        else:
            metrics[name] = fresh
    details: dict[str, Any] = {}
    try:
        converted = jsonable(value.details if value.details is not None else {}, "details")
        if not isinstance(converted, dict):
            raise _NotJson("details must be a mapping")
        json.dumps(converted, allow_nan=False)
        details = converted
    except (ValueError, TypeError, RecursionError) as exc:
        problems.append(f"details are not JSON data: {exc}")
    warnings = [w for w in (value.warnings or []) if isinstance(w, str)]
    if len(warnings) != len(value.warnings or []):
        problems.append("warnings must be strings")
    artifacts = {str(k): str(v) for k, v in (value.artifacts or {}).items()}
    return CheckOutput(metrics=metrics, details=details, warnings=warnings, artifacts=artifacts), problems
