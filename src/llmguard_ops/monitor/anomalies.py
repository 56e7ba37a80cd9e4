"""Anomalies over the recorded metric series: change points and a multivariate score.

* Change points: ruptures' PELT with an L2 cost on each gated series scaled by a robust noise
  estimate (MAD of first differences), penalty ``pen · log n``; each change is reported
  with the window where the new level begins.
* Multivariate: the robust Mahalanobis distance of each window's vector of gated
  metrics from scikit-learn's Minimum Covariance Determinant fit, flagged above the
  χ² quantile at ``level``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .store import Point

MIN_POINTS = 8


def change_points(values: Sequence[float], *, penalty: float = 3.0, min_size: int = 3) -> list[int]:
    """Indexes where a new segment begins (ruptures PELT, L2 cost on robustly scaled values)."""
    import numpy as np
    import ruptures as rpt
    from scipy.stats import median_abs_deviation

    x = np.asarray(values, dtype=float)
    if len(x) < MIN_POINTS:
        return []
    noise = float(median_abs_deviation(np.diff(x), scale="normal")) / math.sqrt(2)
    if not math.isfinite(noise) or noise <= 0:
        noise = float(np.std(x)) or 1.0
    signal = ((x - np.median(x)) / noise).reshape(-1, 1)
    ends = rpt.Pelt(model="l2", min_size=min_size, jump=1).fit(signal).predict(pen=penalty * math.log(len(x)))
    return [int(e) for e in ends[:-1]]


def multivariate(matrix: Sequence[Sequence[float]], *, level: float = 0.999) -> tuple[list[float], float] | None:
    """Robust squared Mahalanobis distances (MinCovDet) and their χ² threshold, or None."""
    import numpy as np
    from scipy.stats import chi2
    from sklearn.covariance import MinCovDet

    x = np.asarray(matrix, dtype=float)
    n, p = x.shape
    if p == 0 or n < max(MIN_POINTS, 3 * p):
        return None
    keep = x.std(axis=0) > 0
    x = x[:, keep]
    if x.shape[1] == 0:
        return None
    mcd = MinCovDet(random_state=0).fit(x)
    return [float(d) for d in mcd.mahalanobis(x)], float(chi2.ppf(level, x.shape[1]))


def detect(
    series: Mapping[str, list[Point]], starts: Sequence[str], *, penalty: float = 3.0, level: float = 0.999
) -> dict[str, Any]:
    """Change points of every series and multivariate outliers, for ``monitor.json``."""
    import numpy as np

    gated = [
        k for k, pts in sorted(series.items()) if len(pts) == len(starts) and all(p.fired is not None for p in pts)
    ]
    changes = []
    for key in gated:  # the metrics the suite gates: others (p-values, flags) are too noisy to page on
        points = series[key]
        values = [p.value for p in points]
        if len(values) < MIN_POINTS or np.ptp(values) == 0:
            continue
        for i in change_points(values, penalty=penalty):
            before, after = values[max(0, i - 7) : i], values[i : i + 7]
            changes.append(
                {
                    "metric": key,
                    "window": points[i].window_start,
                    "index": i,
                    "before_mean": float(np.mean(before)),
                    "after_mean": float(np.mean(after)),
                }
            )
    outliers: list[dict[str, Any]] = []
    scored = (
        multivariate([[series[k][i].value for k in gated] for i in range(len(starts))], level=level) if gated else None
    )
    if scored is not None:
        distances, threshold = scored
        outliers = [
            {"window": starts[i], "distance2": d, "threshold": threshold}
            for i, d in enumerate(distances)
            if d > threshold
        ]
    return {
        "method": {
            "change_points": f"ruptures PELT l2, penalty {penalty:g}·log n",
            "multivariate": f"MinCovDet robust Mahalanobis, chi2 {level:g}",
            "metrics": gated,
        },
        "change_points": changes,
        "multivariate": outliers,
    }
