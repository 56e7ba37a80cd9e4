"""template: an llmguard-ops plugin providing the check ``template.row_quality``.

The check measures what a release gate on data quality needs: how many rows the dataset
has and the share of missing values in the columns the model reads. It uses only names
exported by ``llmguard_ops`` (see docs/plugin-api.md): submodules are internal.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from llmguard_ops import CheckContext, CheckDefinition, CheckOutput, DatasetRef, MetricSpec, ModelRef, hookimpl


class Params(BaseModel):
    """Parameters of ``template.row_quality`` (the suite's ``with:``)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="Model whose input columns are inspected.")
    dataset: DatasetRef = Field("current", description="Dataset to inspect.")


def row_quality(ctx: CheckContext, params: Params) -> CheckOutput:
    """Row count and the worst missing-value share over the model's input columns."""
    features = ctx.features(params.model, params.dataset)  # every row, the model's columns only
    missing = features.isna().mean()
    out = CheckOutput()
    out.add("rows", float(len(features)))
    out.add("max_missing_share", float(missing.max()) if len(features.columns) else 0.0)
    out.details["missing_share"] = {str(k): float(v) for k, v in missing.items()}
    return out


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    register(
        CheckDefinition(
            name="template.row_quality",
            run=row_quality,
            params=Params,
            metrics=(
                MetricSpec("rows", "number of rows in the dataset", higher_is_better=True),
                MetricSpec(
                    "max_missing_share",
                    "largest share of missing values in a model input column",
                    higher_is_better=False,
                ),
            ),
            summary="Row count and missing values in the model's input columns.",
        )
    )
