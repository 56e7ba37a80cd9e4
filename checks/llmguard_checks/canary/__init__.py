"""canary.compare: champion-challenger comparison with paired statistics.

Both models are scored on the same rows (the run's shared prediction cache, or logged
prediction columns of a request log). For each chosen metric the check reports
``<metric>_delta`` = candidate - baseline with a paired bootstrap interval at the gate's
confidence and the p-value of the matching paired test (McNemar for accuracy, DeLong
for binary ROC AUC, a paired permutation test otherwise), adjusted across metrics
(Holm or Benjamini-Hochberg). ``agreement_rate`` and the rows where the models disagree
most go with it. With ``replay`` it also simulates a staged rollout over the log with a
group-sequential stopping rule (:mod:`.sequential`). See ``docs/canary.md``.
"""

from __future__ import annotations

from collections.abc import Callable

from llmguard_ops import CheckDefinition, MetricSpec, hookimpl

from ._check import run_compare
from .compare import CLASSIFICATION, LOWER_IS_BETTER, REGRESSION
from .params import GENERATION, CompareParams, LoggedPredictions


def _specs() -> tuple[MetricSpec, ...]:
    specs = [
        MetricSpec(
            f"{m}_delta",
            f"{m} of the candidate minus the baseline (paired interval, p-value)",
            m not in LOWER_IS_BETTER,
        )
        for m in (*CLASSIFICATION, *REGRESSION, *GENERATION)
    ]
    specs += [
        MetricSpec("agreement_rate", "share of rows where both models predict the same", None),
        MetricSpec("regression_detected", "1 when a one-sided paired test finds the candidate worse", False),
        MetricSpec(
            "replay_regression_detected",
            "1 when the sequential rollout monitor stops for harm",
            False,
        ),
        MetricSpec(
            "replay_stop_share",
            "canary traffic share of the stage where the rollout stopped "
            "(the last stage's share when it never stopped)",
            None,
        ),
        MetricSpec(
            "replay_delta",
            "per-request delta over all canary requests of the simulated rollout",
            True,
        ),
    ]
    return tuple(specs)


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    """Register canary.compare."""
    register(
        CheckDefinition(
            name="canary.compare",
            run=run_compare,
            params=CompareParams,
            metrics=_specs(),
            summary="Candidate vs baseline on the same rows: paired deltas with intervals, "
            "McNemar/DeLong p-values, agreement, staged-rollout replay.",
        )
    )


__all__ = ["CompareParams", "LoggedPredictions", "run_compare"]
