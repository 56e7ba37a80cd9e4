"""Suite-file models of the monitoring features (imported by :mod:`llmguard_ops.suite`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LearnedBand(_Strict):
    """A gate learnt from the metric's own history (``gate: {metric: {learned: ...}}``).

    The band is ``centre ± k · spread`` over the last ``window`` recorded windows whose
    gate did not fire (Deequ's rule: anomalies do not teach the baseline):

    * ``mean_std``: mean ± k · standard deviation (NannyML's and WhyLabs' default);
    * ``median_mad``: median ± k · MAD scaled to σ under normality (robust to outliers);
    * ``ewma``: exponentially weighted mean ± k · weighted standard deviation
      (``alpha`` is the smoothing factor; recent windows count more).

    Until ``min_history`` such windows exist the gate uses its static ``min``/``max``,
    or holds no bound when it has none.
    """

    method: Literal["mean_std", "median_mad", "ewma"] = "mean_std"
    k: float = Field(3.0, gt=0, description="Width of the band in spreads.")
    window: int = Field(14, ge=2, description="How many past windows the band is learnt from.")
    min_history: int = Field(7, ge=2, description="Windows needed before the band applies.")
    alpha: float = Field(0.3, gt=0, le=1, description="EWMA smoothing factor (ewma only).")
    side: Literal["both", "upper", "lower"] = Field(
        "both", description="Which deviations fire: both, only too high, or only too low."
    )
    min_spread: float = Field(
        0.0, ge=0, description="Floor on the spread, so a constant history does not give a zero-width band."
    )


class GatePrior(_Strict):
    """The gate's recorded raw states before this window (filled in by ``llmguard monitor``).

    ``breached``: whether the raw condition (the bound alone) held in each earlier
    window, oldest first. With ``for``/``keep_firing_for`` the gate's firing state is a
    pure function of this list and the current window's condition
    (:func:`llmguard_ops.monitor.persistence.firing`), so it is recomputable from the report.
    """

    breached: list[bool] = Field(default_factory=list, max_length=10_000)


Trigger = Literal["BLOCK", "REVIEW", "fired"]


def _on_block() -> list[Trigger]:
    return ["BLOCK"]


class IncidentStep(_Strict):
    """One step of the suite's incident playbook (``incidents:``), run by ``llmguard monitor``.

    ``uses`` names the step: ``webhook`` (POST the window's summary to ``with.url``),
    ``ticket`` (POST ``with.template``, a JSON text with ``$suite``, ``$window``,
    ``$decision``, ``$fired``, ``$reasons``, ``$run_id`` filled in, to ``with.url``; the
    ``${VAR}`` form is the suite's environment interpolation),
    or a step a plugin provides through ``llmguard_incident_step`` (e.g.
    ``mlflow.rollback``). ``when``: ``BLOCK``, ``REVIEW`` and/or ``fired`` (any gate fired).
    A step with ``needs_approval`` pauses the playbook until ``--approve ID`` is given.
    """

    id: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$", description="Unique id of the step.")
    uses: str = Field(description="webhook, ticket, or a plugin's step such as mlflow.rollback.")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="Step parameters.")
    when: list[Trigger] = Field(default_factory=_on_block, description="What triggers the step.")
    needs_approval: bool = Field(False, description="Pause before this step until a person approves it.")
    timeout: float = Field(10.0, gt=0, description="Seconds per HTTP attempt (webhook, ticket).")
