"""Judge metrics of performance.generation: repeats, consistency, parse failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from llmguard_ops import CheckContext, CheckOutput

from .judge import (
    LOWER_IS_BETTER,
    NEEDS_CONTEXT,
    JudgeOutputError,
    make_case,
    make_judge,
    make_metric,
)

if TYPE_CHECKING:
    from . import GenerationParams


def run_judge(
    ctx: CheckContext,
    p: GenerationParams,
    out: CheckOutput,
    prompts: list[str],
    outputs: list[str],
    refs: list[str | None],
    contexts: list[str],
    add_mean: Callable[..., None],
) -> None:
    """Judge every row ``judge_repeats`` times per metric and add scores and consistency."""
    if p.judge is None:
        raise ValueError("judge_metrics need a 'judge': a local model of the suite")
    needs = sorted(set(p.judge_metrics) & NEEDS_CONTEXT)
    if needs and not contexts:
        raise ValueError(f"judge metrics {needs} need a 'context_column'")
    llm = ctx.model(p.judge).obj
    if not callable(getattr(llm, "generate", None)):
        raise ValueError(f"judge '{p.judge}' ({type(llm).__name__}) has no generate(prompts)")
    if p.judge_temperature == 0 and p.judge_repeats > 1:
        out.warnings.append(
            "judge_temperature 0 (greedy): the repeats are identical by construction, "
            "so the agreement says nothing about the judge's consistency"
        )
    judge = make_judge(
        llm,
        p.judge,
        max_new_tokens=p.judge_max_new_tokens,
        temperature=p.judge_temperature,
        seed=ctx.seed,
    )
    n = len(outputs) if p.judge_rows is None else min(p.judge_rows, len(outputs))
    summary: dict[str, Any] = {}
    for name in p.judge_metrics:
        scores = np.full((n, p.judge_repeats), np.nan)
        for r in range(p.judge_repeats):
            metric = make_metric(name, judge, p.judge_threshold)
            for i in range(n):
                judge.draw = r * n + i  # a distinct, reproducible sampling seed per repeat and row
                case = make_case(prompts[i], outputs[i], refs[i], [contexts[i]] if contexts else None)
                try:
                    scores[i, r] = float(metric.measure(case, _show_indicator=False))
                except JudgeOutputError:
                    continue  # counted by the judge; reported below
        judged = ~np.isnan(scores)
        if not judged.any():
            example = judge.stats.examples[0] if judge.stats.examples else "no answer recorded"
            raise ValueError(
                f"judge '{p.judge}' gave no parseable verdict for {name} in "
                f"{n * p.judge_repeats} attempts ({judge.stats.failures} of "
                f"{judge.stats.calls} judge answers were not the JSON asked for); "
                f"first failure: {example}. "
                "Use an instruction-tuned judge (see docs/generation.md)."
            )
        row_ok = judged.any(axis=1)
        row_mean = np.nanmean(scores[row_ok], axis=1)
        add_mean(out, ctx, p, name, row_mean, unit="score")
        lower_better = name in LOWER_IS_BETTER
        passed = np.where(lower_better, scores <= p.judge_threshold, scores >= p.judge_threshold)
        agree = []
        for row in np.flatnonzero(row_ok):
            verdicts = passed[row, judged[row]]
            agree.append(float(verdicts.all() or not verdicts.any()))
        out.add(f"{name}_agreement", float(np.mean(agree)), n=len(agree))
        spread = np.nanstd(scores[row_ok], axis=1)
        summary[name] = {
            "rows_judged": int(row_ok.sum()),
            "rows": n,
            "repeats": p.judge_repeats,
            "mean_within_row_sd": float(np.mean(spread)),
            "failed_attempts": int((~judged).sum()),
        }
        if (~judged).any():
            out.warnings.append(
                f"{name}: {int((~judged).sum())} of {judged.size} judge attempts gave no "
                f"parseable verdict; the score averages the others"
            )
    out.add(
        "judge_parse_failure_rate",
        judge.stats.failures / max(judge.stats.calls, 1),
        n=judge.stats.calls,
    )
    out.details["judge"] = {
        "model": p.judge,
        "via": "deepeval custom model (DeepEvalBaseLLM) over the local suite model",
        "temperature": p.judge_temperature,
        "threshold": p.judge_threshold,
        "calls": judge.stats.calls,
        "parse_failures": judge.stats.failures,
        "failure_examples": judge.stats.examples,
        "metrics": summary,
    }
