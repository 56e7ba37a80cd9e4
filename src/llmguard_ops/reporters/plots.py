"""Plots for the HTML report, drawn with matplotlib and returned as inline SVG data URIs.

matplotlib is imported inside each function (it is an optional dependency, and
importing the host must stay fast). Figures are built with ``matplotlib.figure.Figure``
directly, never pyplot, so no global state or GUI backend is involved. Every function
returns ``None`` when matplotlib is missing; the page then shows tables only.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PASS = "#1a7f37"
FAIL = "#cf222e"
WARN = "#9a6700"
NEUTRAL = "#0969da"
MUTED = "#6e7781"
BAND = "#ffebe9"


@dataclass(frozen=True)
class Estimate:
    """A labelled point estimate with an optional interval, and optional gate bounds."""

    label: str
    value: float
    lower: float | None = None
    upper: float | None = None
    min: float | None = None
    max: float | None = None
    passed: bool | None = None


def available() -> bool:
    """Whether plots can be drawn (matplotlib importable)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    return fig


def _margins(
    fig: Any,
    labels: Sequence[str] = (),
    *,
    left: float = 0.55,
    bottom: float = 0.42,
    top: float = 0.12,
    hspace: float | None = None,
) -> None:
    """Fixed margins in inches, the left one sized to the longest y label.

    Cheaper than ``bbox_inches="tight"`` or ``tight_layout``, which draw the figure once
    more just to measure it.
    """
    width, height = fig.get_size_inches()
    left_in = max(left, 0.25 + 0.068 * max((len(label) for label in labels), default=0))
    fig.subplots_adjust(
        left=min(left_in / width, 0.6),
        right=1 - 0.12 / width,
        bottom=bottom / height,
        top=1 - top / height,
        hspace=hspace,
    )


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8, colors="#24292f")
    ax.grid(axis="x", color="#d0d7de", linewidth=0.6, alpha=0.7)
    ax.set_axisbelow(True)


#: Format of the plots embedded in the page: "svg" (crisp at any zoom, text stays text)
#: or "png" (raster at 144 dpi); see benchmarks/report_render.py for the trade-off.
IMAGE_FORMAT = "svg"


def to_data_uri(fig: Any) -> str:
    """Serialise a figure as a base64 data URI (SVG keeps text as text, no timestamp)."""
    import matplotlib

    buf = io.BytesIO()
    if IMAGE_FORMAT == "png":
        fig.savefig(buf, format="png", dpi=144, metadata={"Software": None})
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "llmguard", "font.size": 9}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _span(values: Sequence[float | None]) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    lo, hi = min(finite), max(finite)
    width = hi - lo
    pad = width * 0.15 if width > 0 else max(abs(hi) * 0.1, 0.05)
    return lo - pad, hi + pad


def _colour(passed: bool | None) -> str:
    return NEUTRAL if passed is None else (PASS if passed else FAIL)


def _interval(ax: Any, y: float, e: Estimate, colour: str) -> None:
    if e.lower is not None and e.upper is not None:
        ax.plot([e.lower, e.upper], [y, y], color=colour, linewidth=2.2, solid_capstyle="butt")
        ax.plot([e.lower, e.lower], [y - 0.18, y + 0.18], color=colour, linewidth=1.2)
        ax.plot([e.upper, e.upper], [y - 0.18, y + 0.18], color=colour, linewidth=1.2)
    ax.plot([e.value], [y], marker="o", markersize=6.5, color=colour, markeredgecolor="white", zorder=3)


def gate_strip(rows: Sequence[Estimate]) -> str | None:
    """One row per gated metric on its own scale: estimate, interval, bounds, fail region.

    Metrics of a suite live on different scales (a rate, a delta, milliseconds), so each
    row gets its own x axis; the shaded area is where the gate fails.
    """
    if not rows or not available():
        return None
    fig = _figure(7.6, 0.42 + 0.56 * len(rows))
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, e in zip(axes, rows, strict=True):
        lo, hi = _span([e.value, e.lower, e.upper, e.min, e.max])
        if e.min is not None:
            ax.axvspan(lo, e.min, color=BAND, zorder=0)
            ax.axvline(e.min, color=FAIL, linestyle="--", linewidth=1)
        if e.max is not None:
            ax.axvspan(e.max, hi, color=BAND, zorder=0)
            ax.axvline(e.max, color=FAIL, linestyle="--", linewidth=1)
        _interval(ax, 0.0, e, _colour(e.passed))
        ax.set_xlim(lo, hi)
        ax.set_ylim(-0.6, 0.6)
        ax.set_yticks([0.0], [e.label], fontsize=8.5)
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
        _style(ax)
    _margins(fig, [e.label for e in rows], bottom=0.3, top=0.08, hspace=0.9)
    return to_data_uri(fig)


def forest(rows: Sequence[Estimate], *, reference: float | None = 0.0, xlabel: str = "") -> str | None:
    """Estimates on one shared axis (e.g. candidate - baseline deltas around zero)."""
    if not rows or not available():
        return None
    fig = _figure(7.6, 0.75 + 0.34 * len(rows))
    ax = fig.subplots()
    for i, e in enumerate(rows):
        y = len(rows) - 1 - i
        for bound in (e.min, e.max):
            if bound is not None:
                ax.plot([bound, bound], [y - 0.35, y + 0.35], color=FAIL, linestyle="--", linewidth=1.2)
        _interval(ax, y, e, _colour(e.passed))
    if reference is not None:
        ax.axvline(reference, color=MUTED, linewidth=1)
    ax.set_yticks(range(len(rows)), [e.label for e in reversed(rows)], fontsize=8.5)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.tick_params(axis="y", length=0)
    ax.spines["left"].set_visible(False)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=8.5)
    _style(ax)
    _margins(fig, [e.label for e in rows], bottom=0.5 if xlabel else 0.3)
    return to_data_uri(fig)


def group_bars(metrics: dict[str, list[Estimate]]) -> str | None:
    """Per-group values with intervals, one panel per metric (fairness at a glance)."""
    if not metrics or not available():
        return None
    names = list(metrics)[:6]
    groups = max(len(metrics[n]) for n in names)
    cols = min(len(names), 3)
    nrows = math.ceil(len(names) / cols)
    fig = _figure(7.6, nrows * (0.55 + 0.3 * groups))
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        rows = metrics[name]
        ys = list(range(len(rows)))[::-1]
        values = [e.value for e in rows]
        err_lo = [e.value - e.lower if e.lower is not None else 0.0 for e in rows]
        err_hi = [e.upper - e.value if e.upper is not None else 0.0 for e in rows]
        ax.barh(ys, values, color=NEUTRAL, alpha=0.75, height=0.6)
        ax.errorbar(
            values,
            ys,
            xerr=[err_lo, err_hi],
            fmt="none",
            ecolor="#24292f",
            elinewidth=1,
            capsize=2.5,
        )
        ax.set_yticks(ys, [e.label for e in rows], fontsize=8)
        ax.set_title(name, fontsize=9)
        _style(ax)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return to_data_uri(fig)


def column_bars(rows: Sequence[tuple[str, float, bool | None]], score: str) -> str | None:
    """One bar per column: its drift score, red where the column drifted."""
    if not rows or not available():
        return None
    rows = list(rows)[:40]
    fig = _figure(7.6, 0.75 + 0.26 * len(rows))
    ax = fig.subplots()
    ys = list(range(len(rows)))[::-1]
    colours = [FAIL if drifted else (PASS if drifted is False else NEUTRAL) for _, _, drifted in rows]
    ax.barh(ys, [v for _, v, _ in rows], color=colours, height=0.62)
    ax.set_yticks(ys, [c for c, _, _ in rows], fontsize=8)
    ax.set_xlabel(score, fontsize=8.5)
    ax.tick_params(axis="y", length=0)
    _style(ax)
    _margins(fig, [c for c, _, _ in rows], bottom=0.5)
    return to_data_uri(fig)


def ladder(series: dict[str, list[Estimate]], unit: str = "ms") -> str | None:
    """Latency percentiles (p50 → max) with intervals, one line per series."""
    if not series or not available():
        return None
    fig = _figure(7.6, 2.6)
    ax = fig.subplots()
    palette = [NEUTRAL, "#8250df", WARN, PASS]
    # a bound far above the measurements (a loose SLO) would flatten them into the axis
    top = max((p.upper if p.upper is not None else p.value) for pts in series.values() for p in pts)
    for i, (name, points) in enumerate(series.items()):
        xs = list(range(len(points)))
        colour = palette[i % len(palette)]
        ax.plot(xs, [p.value for p in points], marker="o", color=colour, label=name or "per request")
        for x, p in zip(xs, points, strict=True):
            if p.lower is not None and p.upper is not None:
                ax.plot([x, x], [p.lower, p.upper], color=colour, linewidth=2, alpha=0.6)
            for bound in (p.min, p.max):
                if bound is not None and bound <= 1.5 * top:
                    ax.plot(
                        [x - 0.25, x + 0.25],
                        [bound, bound],
                        color=FAIL,
                        linestyle="--",
                        linewidth=1.2,
                    )
        ax.set_xticks(xs, [p.label for p in points], fontsize=8)
    ax.set_ylabel(unit, fontsize=8.5)
    ax.grid(axis="y", color="#d0d7de", linewidth=0.6)
    if len(series) > 1 or any(series):
        ax.legend(fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)
    _margins(fig, left=0.65, bottom=0.35)
    return to_data_uri(fig)


def histogram(values: Sequence[float], title: str, markers: dict[str, float] | None = None) -> str | None:
    """Distribution of raw samples (e.g. per-request latencies) with marker lines."""
    if len(values) < 2 or not available():
        return None
    fig = _figure(7.6, 2.3)
    ax = fig.subplots()
    ax.hist(list(values), bins=min(60, max(10, int(math.sqrt(len(values))))), color=NEUTRAL, alpha=0.8)
    for i, (label, x) in enumerate((markers or {}).items()):
        ax.axvline(
            x,
            color=[WARN, FAIL, "#8250df", PASS][i % 4],
            linestyle="--",
            linewidth=1,
            label=f"{label} {x:.4g}",
        )
    if markers:
        ax.legend(fontsize=8, frameon=False)
    ax.set_title(title, fontsize=9)
    _style(ax)
    _margins(fig, left=0.55, bottom=0.35, top=0.3)
    return to_data_uri(fig)


def importance_bars(rows: Sequence[Estimate], title: str) -> str | None:
    """Feature importances, largest first (top 20)."""
    if not rows or not available():
        return None
    rows = sorted(rows, key=lambda e: abs(e.value), reverse=True)[:20]
    fig = _figure(7.6, 0.75 + 0.26 * len(rows))
    ax = fig.subplots()
    ys = list(range(len(rows)))[::-1]
    values = [e.value for e in rows]
    ax.barh(ys, values, color="#8250df", alpha=0.8, height=0.62)
    if any(e.lower is not None for e in rows):
        err = [
            [e.value - (e.lower if e.lower is not None else e.value) for e in rows],
            [(e.upper if e.upper is not None else e.value) - e.value for e in rows],
        ]
        ax.errorbar(values, ys, xerr=err, fmt="none", ecolor="#24292f", elinewidth=1, capsize=2)
    ax.set_yticks(ys, [e.label for e in rows], fontsize=8)
    ax.set_xlabel(title, fontsize=8.5)
    ax.tick_params(axis="y", length=0)
    _style(ax)
    _margins(fig, [e.label for e in rows], bottom=0.5)
    return to_data_uri(fig)


@dataclass(frozen=True)
class Series:
    """One metric across runs, oldest first; the last point is the current run."""

    label: str
    ticks: list[str]
    points: list[Estimate | None]


def history_lines(series: Sequence[Series]) -> str | None:
    """Small multiples: each metric across runs with its interval band and gate bounds."""
    series = [s for s in series if sum(p is not None for p in s.points) >= 1][:12]
    if not series or not available():
        return None
    cols = min(3, len(series))
    nrows = math.ceil(len(series) / cols)
    fig = _figure(7.6, 1.9 * nrows)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, s in zip(axes, series, strict=False):
        xs = [i for i, p in enumerate(s.points) if p is not None]
        pts = [p for p in s.points if p is not None]
        if all(p.lower is not None and p.upper is not None for p in pts):
            ax.fill_between(
                xs,
                [p.lower for p in pts],
                [p.upper for p in pts],
                color=NEUTRAL,
                alpha=0.15,
                linewidth=0,
            )
        ax.plot(xs, [p.value for p in pts], color=NEUTRAL, marker="o", markersize=3.5, linewidth=1.2)
        last = pts[-1]
        ax.plot([xs[-1]], [last.value], marker="o", markersize=6, color=_colour(last.passed), zorder=3)
        for bound in (last.min, last.max):
            if bound is not None:
                ax.axhline(bound, color=FAIL, linestyle="--", linewidth=1)
        ax.set_title(s.label, fontsize=8.5)
        ax.set_xticks(range(len(s.ticks)), s.ticks, fontsize=7, rotation=30, ha="right")
        ax.set_xlim(-0.5, len(s.ticks) - 0.5)
        ax.tick_params(labelsize=7.5)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.grid(axis="y", color="#d0d7de", linewidth=0.6)
    for ax in axes[len(series) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return to_data_uri(fig)
