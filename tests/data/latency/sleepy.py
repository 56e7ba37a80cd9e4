"""Models for the latency tests, loaded with ``loader: python``.

``make(delay_ms=...)`` is a tabular model whose ``predict`` sleeps ``delay_ms`` per call:
a deliberately slowed model whose true latency is known. ``make_mlp()`` is a small torch
network (a raw ``nn.Module``: the check turns the feature frame into a tensor).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


class SleepyModel:
    """Predicts the sign of the first feature after sleeping ``delay_ms`` (plus ``per_row_ms`` per row)."""

    input_kind = "tabular"

    def __init__(self, delay_ms: float, per_row_ms: float = 0.0) -> None:
        self.delay_s = delay_ms / 1000.0
        self.per_row_s = per_row_ms / 1000.0

    def predict(self, x: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=float)
        time.sleep(self.delay_s + self.per_row_s * len(arr))
        return (arr[:, 0] > 0).astype(int)


def make(delay_ms: float = 0.0, per_row_ms: float = 0.0) -> SleepyModel:
    return SleepyModel(delay_ms, per_row_ms)


def make_mlp(features: int = 4, hidden: int = 64) -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(features, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 2),
    ).eval()
