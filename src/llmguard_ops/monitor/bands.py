"""Learnt bands: a metric's bounds from its own recorded history (a pure function)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .spec import LearnedBand


@dataclass(frozen=True)
class Band:
    """The bounds a learnt gate applies in one window, and what they were learnt from."""

    low: float | None
    high: float | None
    centre: float
    spread: float
    n: int
    method: str
    k: float

    def describe(self) -> str:
        sym = {"mean_std": "mean ± kσ", "median_mad": "median ± k·MAD", "ewma": "EWMA ± kσ"}[self.method]
        return f"{sym} (k={self.k:g}) over {self.n} windows: centre {self.centre:.6g}, spread {self.spread:.6g}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def learn(spec: LearnedBand, values: Sequence[float], fired: Sequence[bool] | None = None) -> Band | None:
    """The band over the last ``spec.window`` values whose gate did not fire, oldest first.

    Returns ``None`` while fewer than ``spec.min_history`` usable windows exist. Windows
    that fired are left out of the baseline (Deequ's rule), so an incident does not
    widen the band that should catch it.
    """
    import numpy as np

    flags = list(fired) if fired is not None else [False] * len(values)
    if len(flags) != len(values):
        raise ValueError("values and fired differ in length")
    clean = [float(v) for v, f in zip(values, flags, strict=True) if not f and math.isfinite(v)]
    clean = clean[-spec.window :]
    if len(clean) < spec.min_history:
        return None
    x = np.asarray(clean, dtype=float)
    if spec.method == "mean_std":
        centre, spread = float(x.mean()), float(x.std(ddof=1))
    elif spec.method == "median_mad":
        from scipy.stats import median_abs_deviation

        centre, spread = float(np.median(x)), float(median_abs_deviation(x, scale="normal"))
    else:
        import pandas as pd

        s = pd.Series(x)
        centre = float(s.ewm(alpha=spec.alpha, adjust=True).mean().iloc[-1])
        spread = float(s.ewm(alpha=spec.alpha, adjust=True).std(bias=False).iloc[-1])
    spread = max(spread if math.isfinite(spread) else 0.0, spec.min_spread)
    low = centre - spec.k * spread if spec.side in ("both", "lower") else None
    high = centre + spec.k * spread if spec.side in ("both", "upper") else None
    return Band(low=low, high=high, centre=centre, spread=spread, n=len(clean), method=spec.method, k=spec.k)
