"""Generate the monitoring example: a model, its reference data and a 60-day production log.

Deterministic (fixed seeds). Writes, under OUT (default: this folder):

* ``data/reference.csv``: 1000 labelled rows the model is trained on (shipped);
* ``data/production.csv``: 60 days from 2026-01-01, 300 requests a day, each with
  its timestamp ``ts``, features, label and logged ``latency_ms``.

Planted events:

* day 20: a benign infrastructure upgrade lowers latency by 30 % (no alert wanted);
* day 40 on: covariate shift, ``x1`` moves by +0.5 standard deviations;
* day 50 on: latency regression, ×1.45 on the post-upgrade level.

The model is :func:`model`, a logistic regression on ``x1``, ``x2`` fitted on the
reference when the suite loads it (``loader: python``), so no pickle is shipped.

    python suites/monitor/generate.py [OUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
DAYS = 60
ROWS_PER_DAY = 300
START = pd.Timestamp("2026-01-01T00:00:00Z")
SHIFT_DAY = 40
UPGRADE_DAY = 20
REGRESSION_DAY = 50


def _rows(rng: np.random.Generator, n: int, x1_mean: float) -> pd.DataFrame:
    x1 = rng.normal(x1_mean, 1.0, n)
    x2 = rng.normal(0.0, 1.0, n)
    p = 1 / (1 + np.exp(-(1.5 * x1 - 1.0 * x2)))
    return pd.DataFrame({"x1": x1.round(4), "x2": x2.round(4), "label": (rng.random(n) < p).astype(int)})


def latency_level(day: int) -> float:
    level = 120.0 if day < UPGRADE_DAY else 84.0
    return level * (1.45 if day >= REGRESSION_DAY else 1.0)


def production(seed: int = 1, days: int = DAYS, rows_per_day: int = ROWS_PER_DAY) -> pd.DataFrame:
    """The production log (one frame); ``days``/``rows_per_day`` scale it for benchmarks."""
    rng = np.random.default_rng(seed)
    parts = []
    for day in range(days):
        frame = _rows(rng, rows_per_day, 0.5 if day >= SHIFT_DAY else 0.0)
        daily = float(np.exp(rng.normal(0, 0.03)))  # load varies a little from day to day
        frame["latency_ms"] = (latency_level(day) * daily * rng.lognormal(0.0, 0.25, rows_per_day)).round(2)
        seconds = np.sort(rng.uniform(0, 86400, rows_per_day))
        frame.insert(0, "ts", [(START + pd.Timedelta(days=day, seconds=float(s))).isoformat() for s in seconds])
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def reference() -> pd.DataFrame:
    frame = _rows(np.random.default_rng(0), 1000, 0.0)
    frame["latency_ms"] = (120.0 * np.random.default_rng(2).lognormal(0.0, 0.25, len(frame))).round(2)
    return frame


def model() -> object:
    """The scorer: logistic regression fitted on ``data/reference.csv`` beside this file."""
    from sklearn.linear_model import LogisticRegression

    ref = pd.read_csv(Path(__file__).parent / "data" / "reference.csv")
    return LogisticRegression().fit(ref[["x1", "x2"]], ref["label"])


def main(out: Path = HERE, days: int = DAYS, rows_per_day: int = ROWS_PER_DAY) -> Path:
    (out / "data").mkdir(parents=True, exist_ok=True)
    reference().to_csv(out / "data" / "reference.csv", index=False)
    log = out / "data" / "production.csv"
    production(days=days, rows_per_day=rows_per_day).to_csv(log, index=False)
    return log


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE))
