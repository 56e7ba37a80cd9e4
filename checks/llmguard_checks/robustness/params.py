"""Parameters of ``robustness.perturbation`` (the suite's ``with:``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmguard_ops import DatasetRef, ModelRef

Kind = Literal[
    "case",
    "whitespace",
    "punctuation",
    "typos",
    "synonyms",
    "names",
    "homoglyphs",
    "numeric_noise",
    "category_swap",
]


class PerturbationParams(BaseModel):
    """Parameters of ``robustness.perturbation`` (the suite's ``with:``)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="Model under test.")
    dataset: DatasetRef = Field("current", description="Rows (texts) that seed the perturbations.")
    perturbations: list[Kind] | None = Field(
        None,
        description="Perturbations to draw from; default: case, whitespace, punctuation, typos for "
        "text models, numeric_noise (and category_swap when declared) for tabular ones.",
    )
    invariance: Literal["auto", "label", "score", "similarity"] = Field(
        "auto",
        description="The property: same label, score within score_tolerance, or generated text "
        "similar above similarity_floor. auto: label, or similarity for generative models.",
    )
    score_tolerance: float = Field(0.05, ge=0, description="Largest allowed change of the score (probabilities).")
    similarity_floor: float = Field(0.8, gt=0, le=1, description="Smallest allowed similarity of generated texts.")
    tolerance: dict[str, float] = Field(
        default_factory=dict,
        description="numeric_noise: ± bound per column, in the column's units.",
    )
    relative_tolerance: float | None = Field(
        0.01,
        gt=0,
        description="numeric_noise: ± this many standard deviations for numeric columns without an explicit tolerance.",
    )
    equivalent: dict[str, list[list[Any]]] = Field(
        default_factory=dict,
        description="category_swap: per column, groups of interchangeable values.",
    )
    synonyms: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Extra synonym groups (word → alternatives) on top of the shipped list.",
    )
    max_edits: int = Field(2, ge=1, le=20, description="Most edits in one perturbed example.")
    max_rows: int = Field(200, ge=1, description="Rows drawn (with the run's seed) as seeds of examples.")
    max_examples: int = Field(200, ge=1, le=100_000, description="Hypothesis example budget.")
    time_limit_s: float = Field(60.0, gt=0, description="Stop generating examples past this many seconds.")
    derandomize: bool = Field(
        False,
        description="Use hypothesis' fixed derandomised stream instead of one seeded by the run's seed.",
    )
    shrink: bool = Field(True, description="Shrink the first failure to a minimal failing example.")
