"""Turning latency samples into gateable metrics, with the too-few-samples rule enforced."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llmguard_ops import CheckContext, CheckOutput

from .stats import (
    ORDER_STATISTIC,
    PERCENTILES,
    bootstrap_mean,
    paired_delta,
    percentile_bound,
    too_few_message,
)


class TooFewSamples(ValueError):
    """A gated percentile cannot be bounded from the samples collected."""


def add_percentiles(
    out: CheckOutput,
    ctx: CheckContext,
    samples_ms: np.ndarray,
    prefix: str = "",
    unit: str = "ms",
    names: dict[str, float] | None = None,
    mean: str | None = "mean_ms",
    maximum: str | None = "max_ms",
) -> None:
    """Add ``<prefix>p50_ms`` … ``<prefix>max_ms`` and ``<prefix>mean_ms`` to ``out``.

    Each percentile carries its order-statistic interval at ``ctx.confidence(metric)``.
    A percentile with too few samples for its upper bound is reported without an
    interval (and a warning) when nothing gates it, and raises :class:`TooFewSamples`
    when the suite gates it: a gate must not be decided on the single slowest request.
    """
    gated = set(ctx.gated_metrics())
    x = np.asarray(samples_ms, dtype=float)
    n = len(x)
    short: list[str] = []
    for base, pct in (names or PERCENTILES).items():
        name = prefix + base
        bound = percentile_bound(x, pct, ctx.confidence(name))
        if bound.enough:
            out.add(
                name,
                bound.value,
                lower=bound.lower,
                upper=bound.upper,
                confidence=bound.confidence,
                interval_method=ORDER_STATISTIC,
                n=n,
                unit=unit,
            )
            continue
        if name in gated:
            raise TooFewSamples(too_few_message(name, bound))
        short.append(f"{name} (needs {bound.needed})")
        out.add(name, bound.value, n=n, unit=unit)
    if short:
        out.warnings.append(f"{n} samples: no confidence bound for {', '.join(short)}")
    if maximum is not None:
        name = prefix + maximum
        bound_cfg = ctx.gate(name)
        if bound_cfg is not None and bound_cfg.confidence is not None:
            raise ValueError(
                f"{name}: the sample maximum has no distribution-free confidence bound; gate it "
                "without 'confidence', or gate p99_ms with one"
            )
        out.add(name, float(x.max()), n=n, unit=unit)
    if mean is not None:
        name = prefix + mean
        level = ctx.confidence(name)
        low, high = bootstrap_mean(x, level, ctx.seed)
        out.add(
            name,
            float(x.mean()),
            lower=min(low, float(x.mean())),
            upper=max(high, float(x.mean())),
            confidence=level,
            interval_method="bootstrap-BCa (2000 resamples)",
            n=n,
            unit=unit,
        )


def add_deltas(out: CheckOutput, ctx: CheckContext, candidate_ms: np.ndarray, baseline_ms: np.ndarray) -> None:
    """``<stat>_delta`` (ms) and ``<stat>_ratio`` of candidate vs baseline, paired bootstrap.

    Percentile deltas obey the same minimum-sample rule as the percentiles themselves.
    """
    gated = set(ctx.gated_metrics())
    n = len(candidate_ms)
    method = "paired bootstrap-percentile (2000 resamples, interleaved requests)"
    short: list[str] = []
    for stat in (*PERCENTILES, "mean_ms"):
        names = (f"{stat}_delta", f"{stat}_ratio")
        pct = PERCENTILES.get(stat)
        enough = {name: True for name in names}
        if pct is not None:
            for name in names:
                bound = percentile_bound(candidate_ms, pct, ctx.confidence(name))
                enough[name] = bound.enough
                if not bound.enough and name in gated:
                    raise TooFewSamples(too_few_message(name, bound))
        for level in sorted({ctx.confidence(name) for name in names}):
            d, dl, dh, r, rl, rh = paired_delta(
                candidate_ms, baseline_ms, "mean" if pct is None else stat, level, ctx.seed
            )
            for name, value, low, high, unit in ((names[0], d, dl, dh, "ms"), (names[1], r, rl, rh, None)):
                if ctx.confidence(name) != level:
                    continue
                if enough[name]:
                    out.add(
                        name, value, lower=low, upper=high, confidence=level, interval_method=method, n=n, unit=unit
                    )
                else:
                    short.append(name)
                    out.add(name, value, n=n, unit=unit)
    if short:
        out.warnings.append(f"{n} paired samples: no confidence bound for {', '.join(short)}")


def write_samples(ctx: CheckContext, name: str, columns: dict[str, np.ndarray]) -> Path:
    """Per-request samples as CSV under the check's artifact folder (for a reviewer's own analysis)."""
    keys = list(columns)
    rows = [",".join(keys)]
    length = len(next(iter(columns.values()))) if columns else 0
    for i in range(length):
        rows.append(",".join(f"{float(columns[k][i]):.6f}" for k in keys))
    return ctx.write_artifact(name, "\n".join(rows) + "\n").path
