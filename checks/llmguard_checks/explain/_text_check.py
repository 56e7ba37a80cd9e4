"""``explain.shap`` on text classifiers: token attributions, compared and gated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from llmguard_ops import CheckContext, CheckOutput

from . import _stats as st
from ._common import (
    additivity,
    budget,
    class_index,
    compare_baseline,
    importance_metrics,
    ranking,
    report_drift,
    sample_rows,
)
from ._text import TextAttribution, explain_text

if TYPE_CHECKING:
    from llmguard_ops import LoadedModel

    from .params import ShapParams


def run_text(ctx: CheckContext, params: ShapParams, loaded: LoadedModel) -> CheckOutput:
    """Token attributions of a text classifier; baseline, drift and protected tokens."""
    out = CheckOutput()
    rng = ctx.rng()
    texts = list(ctx.inputs(params.model, params.dataset))
    rows = sample_rows(len(texts), params.max_samples, rng)
    chosen = [texts[i] for i in rows]
    index = class_index(loaded, params.class_label)
    cand = explain_text(loaded.obj, chosen, budget(params), index, ctx.seed)
    vocab, abs_cand = cand.abs_matrix()
    imp = st.importance(abs_cand)
    top = st.top_k(vocab, imp, params.top_k)
    shown = st.top_k(vocab, imp, max(params.top_k, 20))
    importance_metrics(out, ctx, params, vocab, abs_cand, only=shown)
    additivity(out, params, "additivity_error", cand.additivity_error)
    out.warnings.extend(cand.notes)
    out.details.update(
        explainer=cand.explainer,
        output_space="probability",
        explained_output=[cand.output_name],
        n_explained=len(cand.texts),
        explain_seconds=round(cand.seconds, 3),
        budget={
            "max_samples": params.max_samples,
            "max_evals": params.max_evals or 200,
            "time_limit_s": params.time_limit_s,
            "top_k": params.top_k,
        },
        top_features=top,
        ranking=ranking(vocab, imp)[:50],
    )
    if params.baseline:
        base_loaded = ctx.model(params.baseline)
        base = explain_text(base_loaded.obj, cand.texts, budget(params), index, ctx.seed)
        base_vocab, base_abs = base.abs_matrix()
        compare_baseline(out, ctx, params, vocab, abs_cand, base_vocab, base_abs)
        out.details["baseline_additivity_error"] = base.additivity_error
    if params.reference:
        ref_texts = list(ctx.inputs(params.model, params.reference))
        ref_rows = sample_rows(len(ref_texts), params.max_samples, rng)
        ref = explain_text(loaded.obj, [ref_texts[i] for i in ref_rows], budget(params), index, ctx.seed)
        union = list(dict.fromkeys([*vocab, *ref.vocabulary()]))
        report_drift(out, ctx, params, ref.abs_matrix(union)[1], cand.abs_matrix(union)[1], union)
    if params.protected:
        wanted = {p.lower() for p in params.protected}
        in_top = [t for t in top if t.lower() in wanted]
        out.add("protected_in_top_k", float(len(in_top)), n=len(top))
        out.details["protected"] = {"protected": params.protected, "in_top_k": in_top}
    out.details["local_explanations"] = _local_text(params, cand)
    if params.plots:
        from . import _plots as pl

        ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
        out.artifacts["importance"] = str(
            pl.importance_bar(
                ctx.artifact_dir / "shap_token_importance.png",
                vocab,
                imp,
                f"Token importance ({cand.output_name})",
            )
        )
    return out


def _local_text(params: ShapParams, attr: TextAttribution) -> list[dict[str, Any]]:
    margin = np.abs(attr.output - 0.5)
    local = []
    for i in np.argsort(margin, kind="stable")[: params.n_local]:
        local.append(
            {
                "text": attr.texts[i],
                "selected_by": "probability closest to 0.5",
                "output": float(attr.output[i]),
                "base_value": float(attr.base[i]),
                "tokens": [{"token": t, "shap": float(v)} for t, v in zip(attr.tokens[i], attr.values[i], strict=True)],
            }
        )
    return local
