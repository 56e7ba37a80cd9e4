"""Scoring generations per item and sample, and reporting them (alone or paired).

Shared by ``performance.generation`` and ``canary.compare`` (``task: generation``), so a
delta means the same in both. Every metric is a mean over **items** of a per-item value
(the mean over the item's samples, or its pass@k estimate); intervals resample items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmguard_ops import CheckContext, CheckOutput

from .criteria import FormatSpec, PassCriterion, json_valid, scorer
from .stats import Estimate, item_interval, items_needed, paired_interval, pass_all_k, pass_at_k
from .text import exact_match, token_f1

ALL_METRICS = ("exact_match", "token_f1", "semantic_similarity")
LOWER_IS_BETTER = frozenset({"prompt_tokens_mean", "output_tokens_mean", "cost_per_1k_requests"})


@dataclass
class ScoreSettings:
    """What to score and how (from a check's parameters)."""

    metrics: list[str]
    criterion: PassCriterion | None = None
    format: FormatSpec | None = None
    pass_at: list[int] = field(default_factory=list)
    embedding_model: str | None = None
    judge: str | None = None
    judge_repeats: int = 1
    human_label_column: str | None = None
    n_resamples: int = 1000


@dataclass
class Scored:
    """One model's answers scored: ``(items × samples)`` arrays."""

    name: str
    prompts: list[str]
    texts: list[list[str]]
    scores: dict[str, np.ndarray]
    passed: np.ndarray | None
    format_ok: np.ndarray | None
    prompt_tokens: np.ndarray | None
    output_tokens: np.ndarray | None
    price: dict[str, Any] | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return len(self.texts[0]) if self.texts else 0

    def per_item(self) -> dict[str, np.ndarray]:
        """Metric → per-item value (means over samples; pass@k per item)."""
        out = {m: v.mean(axis=1) for m, v in self.scores.items()}
        if self.passed is not None:
            out["pass_rate"] = self.passed.mean(axis=1)
            n, c = self.passed.shape[1], self.passed.sum(axis=1)
            for k in [k for k in sorted(set(self.info.get("pass_at", []))) if k <= n]:
                out[f"pass_at_{k}"] = np.array([pass_at_k(n, int(ci), k) for ci in c])
                out[f"pass_all_{k}"] = np.array([pass_all_k(n, int(ci), k) for ci in c])
        if self.format_ok is not None:
            out["format_valid_rate"] = self.format_ok.mean(axis=1)
        if self.prompt_tokens is not None and self.output_tokens is not None:
            out["prompt_tokens_mean"] = self.prompt_tokens.mean(axis=1)
            out["output_tokens_mean"] = self.output_tokens.mean(axis=1)
            if self.price is not None:
                out["cost_per_1k_requests"] = (
                    self.prompt_tokens * self.price["prompt_per_1k"] + self.output_tokens * self.price["output_per_1k"]
                ).mean(axis=1)
        return out


def _semantic(ctx: CheckContext, s: ScoreSettings, outputs: list[str], refs: list[str]) -> np.ndarray:
    from .embedding import cosine_similarities, default_model_dir

    folder = Path(s.embedding_model) if s.embedding_model else default_model_dir()
    if s.embedding_model and not folder.is_absolute():
        folder = ctx.base_dir / folder
    return cosine_similarities(outputs, refs, folder)


def judge_verdicts(
    ctx: CheckContext, judge: str, prompts: list[str], answers: list[str], refs: list[str | None], repeats: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Judge's PASS/FAIL per answer: (verdict, repeats-agree, unparsed answers)."""
    from .pairwise import parse_verdict, verdict_conversation

    convs = [verdict_conversation(q, a, r) for q, a, r in zip(prompts, answers, refs, strict=True)]
    got = ctx.chat(judge, convs, samples=repeats)
    parsed = [[parse_verdict(t) for t in row] for row in got.texts]
    unparsed = sum(v is None for row in parsed for v in row)
    votes = np.array([[bool(v) for v in row] for row in parsed], dtype=float)
    verdict = votes.mean(axis=1) > 0.5
    agree = np.array([len({v for v in row}) == 1 for row in parsed], dtype=float)
    return verdict, agree, unparsed


def score(
    ctx: CheckContext,
    s: ScoreSettings,
    name: str,
    prompts: list[str],
    texts: list[list[str]],
    refs: list[str | None],
    *,
    prompt_tokens: Any = None,
    output_tokens: Any = None,
    price: dict[str, Any] | None = None,
) -> Scored:
    """Score every sample of every item."""
    n, k = len(texts), len(texts[0]) if texts else 1
    flat = [t for row in texts for t in row]
    flat_refs = [refs[i] or "" for i in range(n) for _ in range(k)]
    scores: dict[str, np.ndarray] = {}
    needs_ref = bool(s.metrics) or (s.criterion is not None and s.criterion.kind not in ("json", "json_schema"))
    if needs_ref and any(r is None for r in refs):
        raise ValueError(
            "reference-based metrics need a reference on every row (set 'reference_column' or the dataset's target)"
        )
    if "exact_match" in s.metrics:
        scores["exact_match"] = np.array([exact_match(o, r) for o, r in zip(flat, flat_refs, strict=True)])
    if "token_f1" in s.metrics:
        scores["token_f1"] = np.array([token_f1(o, r) for o, r in zip(flat, flat_refs, strict=True)])
    semantic = None
    if "semantic_similarity" in s.metrics or (s.criterion is not None and s.criterion.kind == "semantic"):
        semantic = _semantic(ctx, s, flat, flat_refs)
        if "semantic_similarity" in s.metrics:
            scores["semantic_similarity"] = semantic
    info: dict[str, Any] = {"pass_at": list(s.pass_at)}
    passed = None
    c = s.criterion
    if c is not None:
        if c.kind == "semantic":
            assert semantic is not None
            passed_flat = semantic >= c.floor
        elif c.kind == "judge":
            if s.judge is None:
                raise ValueError("pass kind 'judge' needs 'judge': a suite model that answers PASS or FAIL")
            flat_prompts = [prompts[i] for i in range(n) for _ in range(k)]
            verdict, agree, unparsed = judge_verdicts(
                ctx, s.judge, flat_prompts, flat, [refs[i] for i in range(n) for _ in range(k)], s.judge_repeats
            )
            passed_flat = verdict
            info["judge_consistency"] = agree
            info["judge_unparsed"] = unparsed
        else:
            fn = scorer(c)
            passed_flat = np.array([fn(o, r) for o, r in zip(flat, flat_refs, strict=True)])
        passed = np.asarray(passed_flat, dtype=float).reshape(n, k)
    format_ok = None
    if s.format is not None:
        schema = s.format.json_schema if s.format.kind == "json_schema" else None
        format_ok = np.array([json_valid(o, schema) for o in flat], dtype=float).reshape(n, k)
    pt = None if prompt_tokens is None else np.asarray(prompt_tokens, dtype=float)
    ot = None if output_tokens is None else np.asarray(output_tokens, dtype=float)
    return Scored(
        name,
        prompts,
        texts,
        {m: v.astype(float).reshape(n, k) for m, v in scores.items()},
        passed,
        format_ok,
        pt,
        ot,
        price,
        info,
    )


def _add(out: CheckOutput, ctx: CheckContext, name: str, est: Estimate, **extra: Any) -> None:
    out.add(name, est.value, **est.fields(), **extra)
    bound = ctx.gate(name)
    if bound is not None and bound.confidence is not None:
        need = items_needed(est, bound.min, bound.max)
        if need is not None:
            out.details.setdefault("decisive_items", {})[name] = need


def report(out: CheckOutput, ctx: CheckContext, s: ScoreSettings, cand: Scored, base: Scored | None) -> None:
    """Add every metric of ``cand`` (and ``<metric>_delta`` against ``base``) to ``out``."""
    cand_items = cand.per_item()
    clustered = cand.samples > 1
    for metric, values in cand_items.items():
        est = item_interval(
            values, confidence=ctx.confidence(metric), n_resamples=s.n_resamples, seed=ctx.seed, clustered=clustered
        )
        unit = "tokens" if metric.endswith("tokens_mean") else None
        _add(out, ctx, metric, est, **({"unit": unit} if unit else {}))
    if "judge_consistency" in cand.info:
        agree = cand.info["judge_consistency"]
        out.add("judge_consistency", float(np.mean(agree)), n=len(agree))
    if cand.samples > 1:
        out.details["per_item_variance"] = {
            m: float(np.mean(np.var(v, axis=1, ddof=1)))
            for m, v in ([*cand.scores.items(), *([("pass", cand.passed)] if cand.passed is not None else [])])
        }
    if base is not None:
        base_items = base.per_item()
        for metric, values in cand_items.items():
            if metric not in base_items:
                continue
            name = f"{metric}_delta"
            est = paired_interval(
                values, base_items[metric], confidence=ctx.confidence(name), n_resamples=s.n_resamples, seed=ctx.seed
            )
            extra: dict[str, Any] = {}
            test = _mcnemar(metric, cand, base)
            if test is not None:
                extra["p_value"] = test.p_value
                out.details.setdefault("mcnemar", {})[name] = {
                    "statistic": test.statistic,
                    "p_value": test.p_value,
                    "p_harm": test.p_harm,
                    "detail": test.detail,
                }
            _add(out, ctx, name, est, **extra)
    out.details["worst_items"] = worst_items(cand, base)


def _mcnemar(metric: str, cand: Scored, base: Scored) -> Any:
    from ..canary.paired import mcnemar

    if metric == "pass_rate" and cand.passed is not None and base.passed is not None:
        return mcnemar(cand.passed[:, 0] > 0.5, base.passed[:, 0] > 0.5)
    if metric == "exact_match" and "exact_match" in cand.scores and "exact_match" in base.scores:
        return mcnemar(cand.scores["exact_match"][:, 0] > 0.5, base.scores["exact_match"][:, 0] > 0.5)
    return None


def worst_items(cand: Scored, base: Scored | None, top: int = 10) -> list[dict[str, Any]]:
    """Items the candidate does worst on (failing first; against the baseline when given)."""
    items = cand.per_item()
    key = (
        "pass_rate"
        if "pass_rate" in items
        else next((m for m in ("token_f1", "exact_match", "semantic_similarity") if m in items), None)
    )
    if key is None:
        return []
    score_c = items[key]
    gap = score_c - (base.per_item()[key] if base is not None and key in base.per_item() else 0)
    order = np.lexsort((score_c, gap))[:top]
    rows = []
    for i in order:
        row: dict[str, Any] = {
            "item": int(i),
            "measure": key,
            "candidate_score": round(float(score_c[i]), 4),
            "prompt": cand.prompts[i][:200],
            "candidate": cand.texts[i][0][:200],
        }
        if base is not None:
            row.update(baseline=base.texts[i][0][:200], baseline_score=round(float(score_c[i] - gap[i]), 4))
        rows.append(row)
    return rows


__all__ = ["ALL_METRICS", "ScoreSettings", "Scored", "judge_verdicts", "report", "score", "worst_items"]
