"""``monitor.html``: each gated metric over time with its band, firings, change points and incidents.

One self-contained page (plots as SVG data URIs when matplotlib is installed, tables
always). Everything shown comes from the history database and ``monitor.json``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..report import atomic_write
from .store import Point

PAGE = "monitor.html"


def _plot(key: str, points: Sequence[Point], changes: Sequence[int], incidents: Sequence[int]) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from ..reporters.plots import to_data_uri

    x = list(range(len(points)))
    fig, ax = plt.subplots(figsize=(8, 2.4))
    lows = [p.gate_min for p in points]
    highs = [p.gate_max for p in points]
    values = [p.value for p in points]
    finite = [v for v in values if v is not None]
    pad = (max(finite) - min(finite)) or abs(finite[0]) or 1.0
    lo_fill = [v if v is not None else min(finite) - pad for v in lows]
    hi_fill = [v if v is not None else max(finite) + pad for v in highs]
    has_band = any(v is not None for v in lows + highs)
    if has_band:
        ax.fill_between(
            x, lo_fill, hi_fill, step="mid", color="#4c78a8", alpha=0.15, linewidth=0, label="bounds applied"
        )
    ax.plot(x, values, color="#333333", linewidth=1.2, marker="o", markersize=2.5, label=key)
    fired = [i for i, p in enumerate(points) if p.fired]
    if fired:
        ax.scatter(fired, [values[i] for i in fired], color="#d62728", zorder=3, s=16, label="fired")
    for i in changes:
        ax.axvline(i - 0.5, color="#ff7f0e", linestyle="--", linewidth=1)
    if incidents:
        top = max(finite) + pad * 0.3
        ax.scatter(list(incidents), [top] * len(incidents), marker="v", color="#9467bd", s=18, label="incident")
    ax.set_ylim(min(finite) - pad * 0.5, max(finite) + pad * 0.5)
    ax.set_xlabel("window")
    ax.legend(fontsize=7, loc="upper left", frameon=False, ncol=4)
    fig.tight_layout()
    uri = to_data_uri(fig)
    plt.close(fig)
    return uri


def write_page(out_dir: Path, summary: Mapping[str, Any], series: Mapping[str, list[Point]]) -> Path:
    windows = summary["windows"]
    starts = [w["start"] for w in windows]
    index = {s: i for i, s in enumerate(starts)}
    anomalies = summary.get("anomalies") or {}
    incidents = [i for i, w in enumerate(windows) if w.get("incidents")]
    e = html.escape
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>{e(summary['suite'])}: monitoring</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:auto}td,th{padding:2px 8px;"
        "text-align:left}img{max-width:100%}</style>",
        f"<h1>{e(summary['suite'])}: {len(windows)} windows of {e(summary['every'])}</h1>",
        f"<p>latest window {e(starts[-1])}: <b>{e(windows[-1]['decision'])}</b>; "
        f"fired: {e(', '.join(windows[-1]['fired']) or '-')}</p>",
    ]
    gated = [k for k, pts in sorted(series.items()) if any(p.fired is not None for p in pts)]
    for key in gated:
        points = series[key]
        changes = [
            index[c["window"]]
            for c in anomalies.get("change_points", [])
            if c["metric"] == key and c["window"] in index
        ]
        parts.append(f"<h2>{e(key)}</h2>")
        uri = _plot(key, points, changes, incidents)
        if uri:
            parts.append(f"<img alt='{e(key)} over time' src='{uri}'>")
        fired = [p.window_start for p in points if p.fired]
        parts.append(
            f"<p>fired in {len(fired)} window(s){': ' + e(', '.join(fired[:20])) if fired else ''}"
            + (f"; change points at {e(', '.join(starts[i] for i in changes))}" if changes else "")
            + "</p>"
        )
    parts.append(
        "<h2>Windows</h2><table><tr><th>start</th><th>rows</th><th>decision</th><th>fired</th>"
        "<th>incident steps</th></tr>"
    )
    for w in windows:
        steps = "; ".join(f"{s['step']}: {s['status']}" for s in w.get("incidents", []))
        parts.append(
            f"<tr><td>{e(w['start'])}</td><td>{w['rows']}</td><td>{e(w['decision'])}</td>"
            f"<td>{e(', '.join(w['fired']) or '-')}</td><td>{e(steps or '-')}</td></tr>"
        )
    parts.append("</table>")
    outliers = anomalies.get("multivariate", [])
    if outliers:
        parts.append("<p>multivariate outliers: " + e(", ".join(o["window"] for o in outliers)) + "</p>")
    return atomic_write(out_dir / PAGE, "\n".join(parts) + "\n")
