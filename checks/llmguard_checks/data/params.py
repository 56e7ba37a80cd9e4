"""Parameter models of the data checks (pydantic only: imported on every CLI call)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmguard_ops import DatasetRef

ColumnType = Literal["number", "integer", "string", "boolean", "datetime"]


class ColumnContract(BaseModel):
    """What one column must hold (every key optional)."""

    model_config = ConfigDict(extra="forbid")

    type: ColumnType | None = Field(None, description="Values must be (or parse as) this type.")
    min: float | None = Field(None, description="Smallest allowed value.")
    max: float | None = Field(None, description="Largest allowed value.")
    allowed: list[str | int | float | bool] | None = Field(None, min_length=1, description="Allowed categories.")
    nullable: bool = Field(True, description="Missing values allowed.")
    unique: bool = Field(False, description="No value may appear twice.")
    required: bool = Field(True, description="The column must be present.")

    @model_validator(mode="after")
    def _range(self) -> ColumnContract:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' is larger than 'max'")
        return self


class RowBounds(BaseModel):
    """Bounds on the number of rows."""

    model_config = ConfigDict(extra="forbid")

    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


class QualityParams(BaseModel):
    """Parameters of ``data.quality``."""

    model_config = ConfigDict(extra="forbid")

    dataset: DatasetRef = Field("current", description="Dataset to validate.")
    reference: DatasetRef | None = Field(
        None, description="Dataset the contract is learnt from (undeclared columns) and outliers are judged against."
    )
    contract: dict[str, ColumnContract] = Field(
        default_factory=dict, description="Declared column contracts; they override what is learnt."
    )
    learn: bool = Field(True, description="Learn a contract for undeclared columns from the reference.")
    rows: RowBounds | None = Field(None, description="Bounds on the dataset's row count.")
    strict: bool = Field(False, description="Columns absent from the contract are violations.")
    exclude: list[str] = Field(
        default_factory=list, description="Columns ignored by every part of the check (row ids, timestamps)."
    )
    range_margin: float = Field(
        0.1, ge=0, description="Learnt ranges: reference [min, max] widened by this share of its span each side."
    )
    categorical_max_unique: int = Field(
        20, ge=1, description="Learnt contract: a text column with at most this many values gets 'allowed'."
    )
    outliers: bool = Field(True, description="Score rows with an IsolationForest fit on the reference.")
    contamination: float = Field(
        0.01, gt=0, le=0.5, description="IsolationForest threshold: this share of the reference counts as outliers."
    )
    examples: int = Field(5, ge=0, le=100, description="Example rows listed per finding.")


class IntegrityParams(BaseModel):
    """Parameters of ``data.integrity``."""

    model_config = ConfigDict(extra="forbid")

    train: DatasetRef = Field("reference", description="The training data.")
    evaluation: DatasetRef = Field("current", description="The data the model is judged on.")
    exclude: list[str] = Field(default_factory=list, description="Columns ignored (row ids, timestamps).")
    text: list[str] | None = Field(
        None, description="Text columns compared for near-duplicates (default: each dataset's 'text')."
    )
    near_duplicate_threshold: float = Field(
        90.0, gt=0, le=100, description="rapidfuzz ratio (0-100) at or above which two texts are near-duplicates."
    )
    max_text_pairs: int = Field(
        50_000_000, ge=1, description="Refuse near-duplicate search beyond this many text pairs (it is O(n·m))."
    )
    leakage: bool = Field(True, description="Score each feature alone against the target (leakage suspects).")
    leakage_threshold: float = Field(
        0.95,
        gt=0.5,
        le=1.0,
        description="A feature whose cross-validated single-feature AUC (R² for regression) reaches this is a suspect.",
    )
    label_issues: bool = Field(True, description="Estimate label errors of the evaluation set (confident learning).")
    label_model: Literal["logistic", "gradient_boosting"] = Field(
        "logistic", description="Model whose out-of-fold probabilities confident learning uses."
    )
    folds: int = Field(5, ge=2, le=20, description="Cross-validation folds.")
    categorical_max_unique: int = Field(
        50, ge=1, description="Text columns with more distinct values are left out of the models."
    )
    examples: int = Field(10, ge=0, le=1000, description="Example rows listed per finding.")
