"""canary.compare's parameters (the suite's ``with:``), validated by the host."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmguard_ops import (
    DatasetRef,
    ModelRef,
)

from ..generation.criteria import FormatSpec, PassCriterion
from .compare import (
    CLASSIFICATION,
    REGRESSION,
)
from .replay import ReplayParams

GENERATION = ("exact_match", "token_f1", "semantic_similarity", "pass_rate", "format_valid_rate")


class LoggedPredictions(BaseModel):
    """Columns of a request log holding each model's outputs (instead of running models)."""

    model_config = ConfigDict(extra="forbid")

    candidate: str = Field(description="Column with the candidate's predicted label (or value).")
    baseline: str = Field(description="Column with the baseline's predicted label (or value).")
    candidate_score: str | None = Field(None, description="Column with the candidate's P(positive class).")
    baseline_score: str | None = Field(None, description="Column with the baseline's P(positive class).")


class CompareParams(BaseModel):
    """Parameters of canary.compare (the ``with:`` block)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    candidate: ModelRef = Field("candidate", description="The challenger model.")
    baseline: ModelRef = Field("baseline", description="The champion model it must not fall behind.")
    dataset: DatasetRef = Field("current", description="Rows both models are scored on (target required).")
    task: Literal["classification", "regression", "generation"] = Field(
        "classification",
        description="Kind of target; generation scores generated text against references "
        "(chosen automatically when the candidate is a generative model).",
    )
    metrics: list[str] | None = Field(
        None,
        description="Metrics to compare (default: accuracy, roc_auc; mae, rmse for regression).",
    )
    predictions: LoggedPredictions | None = Field(
        None, description="Take both models' outputs from columns of the dataset (a request log)."
    )
    positive_label: Any = Field(None, description="Positive class (default: the larger label).")
    n_resamples: int = Field(1000, ge=0, description="Paired bootstrap resamples for the intervals.")
    n_permutations: int = Field(2000, ge=100, description="Random swaps of the paired permutation test.")
    interval: Literal["percentile", "basic", "BCa"] = Field("percentile", description="scipy bootstrap method.")
    correction: Literal["holm", "bh", "none"] = Field("holm", description="Multiple-testing adjustment of p-values.")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="One-sided level of regression_detected.")
    mcnemar_exact_below: int = Field(25, ge=0, description="Exact McNemar below this many discordant pairs.")
    top_k: int = Field(10, ge=0, le=1000, description="Rows of largest disagreement listed in the report.")
    id_column: str | None = Field(None, description="Column identifying a row in the disagreement list.")
    replay: ReplayParams | None = Field(None, description="Simulate a staged rollout over the rows (a request log).")
    pass_: PassCriterion | None = Field(
        None, alias="pass", description="generation: when one answer passes (pass_rate_delta, McNemar)."
    )
    format: FormatSpec | None = Field(None, description="generation: required output format (format_valid_rate_delta).")
    embedding_model: str | None = Field(
        None, description="generation: local sentence-transformers folder for semantic_similarity."
    )

    @model_validator(mode="after")
    def _known_metrics(self) -> CompareParams:
        allowed = {"classification": CLASSIFICATION, "regression": REGRESSION, "generation": GENERATION}[self.task]
        for m in self.metrics or []:
            if m not in allowed:
                raise ValueError(f"unknown {self.task} metric '{m}'; choose from {', '.join(allowed)}")
        if self.metrics is not None and len(set(self.metrics)) != len(self.metrics):
            raise ValueError("metrics lists a name twice")
        return self
