"""The latest window in Prometheus' text format, for node_exporter's textfile collector."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .store import Point


def write_textfile(path: Path, suite: str, latest: Mapping[str, Any], series: Mapping[str, list[Point]]) -> None:
    """Gauges ``llmguard_metric``, ``llmguard_gate_firing``, ``llmguard_window_*`` (atomic write)."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    reg = CollectorRegistry()
    value = Gauge(
        "llmguard_metric", "Metric of the latest monitored window", ["suite", "check", "metric"], registry=reg
    )
    firing = Gauge(
        "llmguard_gate_firing", "1 when the gate fired in the latest window", ["suite", "check", "metric"], registry=reg
    )
    decision = Gauge(
        "llmguard_window_decision",
        "Decision of the latest window (1 for the one taken)",
        ["suite", "decision"],
        registry=reg,
    )
    rows = Gauge("llmguard_window_rows", "Rows in the latest window", ["suite"], registry=reg)
    end = Gauge("llmguard_window_end_timestamp_seconds", "End of the latest window", ["suite"], registry=reg)
    for key, points in series.items():
        last = [p for p in points if p.window_start == latest["start"]]
        if not last:
            continue
        check, _, metric = key.partition(".")
        value.labels(suite, check, metric).set(last[0].value)
        if last[0].fired is not None:
            firing.labels(suite, check, metric).set(1.0 if last[0].fired else 0.0)
    for name in ("PROMOTE", "REVIEW", "BLOCK"):
        decision.labels(suite, name).set(1.0 if latest["decision"] == name else 0.0)
    rows.labels(suite).set(latest["rows"])
    end.labels(suite).set(dt.datetime.fromisoformat(latest["end"].replace("Z", "+00:00")).timestamp())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), reg)
