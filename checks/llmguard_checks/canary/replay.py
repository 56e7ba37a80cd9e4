"""Traffic replay: a staged canary rollout simulated over a request log.

The rows of the dataset are the logged requests in arrival order (or sorted by
``order_by``); both models' outputs are known for every request (logged, or replayed
through both models). See :mod:`.sequential` for the stopping rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmguard_ops import CheckContext, CheckOutput

from .compare import Arm, Settings, per_row_score
from .sequential import simulate_rollout

if TYPE_CHECKING:
    import pandas as pd


class ReplayParams(BaseModel):
    """How to simulate the staged rollout over the log."""

    model_config = ConfigDict(extra="forbid")

    stages: list[float] = Field(
        [0.01, 0.05, 0.25, 1.0], description="Canary traffic share of each stage, in rollout order."
    )
    stage_sizes: list[int] | None = Field(
        None,
        description="Logged requests each stage spans (default: the log split in equal windows).",
    )
    metric: Literal["accuracy", "log_loss", "mae"] = Field("accuracy", description="Per-request metric monitored.")
    margin: float = Field(0.0, ge=0, description="Tolerated loss: stop when the delta is significantly below -margin.")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="Total one-sided type-I error over all stages.")
    spending: Literal["obrien-fleming", "pocock"] = Field("obrien-fleming", description="Alpha-spending function.")
    order_by: str | None = Field(None, description="Column giving the request order (e.g. a timestamp).")

    @field_validator("stages")
    @classmethod
    def _shares(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < s <= 1 for s in v):
            raise ValueError("stages are traffic shares in (0, 1]")
        return v


def run_replay(
    ctx: CheckContext,
    p: ReplayParams,
    data: pd.DataFrame,
    y: np.ndarray,
    cand: Arm,
    base: Arm,
    s: Settings,
    out: CheckOutput,
) -> None:
    """Add the replay metrics and the per-stage table to ``out``."""
    if (p.metric == "mae") != (s.task == "regression"):
        raise ValueError(f"replay.metric '{p.metric}' does not fit a {s.task} comparison")
    diff = per_row_score(p.metric, y, cand, s) - per_row_score(p.metric, y, base, s)
    order = np.arange(len(diff))
    if p.order_by is not None:
        if p.order_by not in data.columns:
            raise ValueError(f"replay.order_by: column '{p.order_by}' is not in the dataset")
        order = np.argsort(data[p.order_by].to_numpy(), kind="stable")
    rollout = simulate_rollout(
        diff[order],
        p.stages,
        alpha=p.alpha,
        spending=p.spending,
        margin=p.margin,
        rng=ctx.rng(),
        stage_sizes=p.stage_sizes,
    )
    stop = rollout.stopped_at
    last = rollout.stages[-1]
    out.add("replay_regression_detected", float(stop is not None), n=last.cumulative)
    out.add("replay_stop_share", rollout.stages[stop if stop is not None else -1].share)
    out.add("replay_delta", last.delta, n=last.cumulative)
    caught = None if stop is None else f"stage {stop + 1} ({rollout.stages[stop].share:.0%} of traffic)"
    out.details["replay"] = {
        "metric": p.metric,
        "margin": p.margin,
        "alpha": p.alpha,
        "rule": (
            f"group-sequential one-sided z-test of the paired per-request {p.metric} difference, "
            f"Lan-DeMets {p.spending} alpha spending, total alpha {p.alpha}; stop when z <= -bound"
        ),
        "caught_at": caught or "never (the rollout would have completed)",
        "stages": [st.record() for st in rollout.stages],
    }
