"""The run function of ``explain.shap``: sample, explain, compare, gate, plot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from llmguard_ops import CheckContext, CheckOutput

from . import _stats as st
from ._common import (
    additivity,
    budget,
    class_index,
    compare_baseline,
    feed,
    importance_metrics,
    plain,
    protected_gate,
    ranking,
    report_drift,
    sample_rows,
)
from ._tabular import Attribution, explain_tabular
from ._text_check import run_text

if TYPE_CHECKING:
    from llmguard_ops import LoadedModel

    from .params import ShapParams


def run_shap(ctx: CheckContext, params: ShapParams) -> CheckOutput:
    """Explain ``params.model`` on ``params.dataset`` and compare as the suite asks."""
    loaded = ctx.model(params.model)
    if loaded.input_kind == "text":
        return run_text(ctx, params, loaded)
    return _run_tabular(ctx, params, loaded)


# -- tabular ----------------------------------------------------------------------------


def _explain(
    ctx: CheckContext,
    params: ShapParams,
    loaded: LoadedModel,
    dataset: str,
    rows: np.ndarray,
    background: pd.DataFrame,
) -> Attribution:
    ds = ctx.dataset(dataset)
    features = loaded.feature_names(ds)
    frame = ds.frame[features].iloc[rows]
    bg = background.reindex(columns=features)
    if bg.isna().all().any():
        bg = ds.frame[features].iloc[rows[: params.background]]  # background lacks the model's columns
    return explain_tabular(
        loaded.obj,
        frame,
        bg,
        feed(loaded),
        budget(params),
        params.explainer,
        class_index(loaded, params.class_label),
        ctx.seed,
    )


def _run_tabular(ctx: CheckContext, params: ShapParams, loaded: LoadedModel) -> CheckOutput:
    out = CheckOutput()
    rng = ctx.rng()
    ds = ctx.dataset(params.dataset)
    rows = sample_rows(len(ds.frame), params.max_samples, rng)
    bg_source = ctx.dataset(params.reference or params.dataset).frame
    background = bg_source.iloc[sample_rows(len(bg_source), params.background, rng)]
    cand = _explain(ctx, params, loaded, params.dataset, rows, background)
    abs_cand = cand.abs_values()
    importance_metrics(out, ctx, params, cand.features, abs_cand)
    imp = st.importance(abs_cand)
    top = st.top_k(cand.features, imp, params.top_k)
    additivity(out, params, "additivity_error", cand.additivity_error)
    out.warnings.extend(cand.notes)
    out.details.update(
        explainer=cand.explainer,
        output_space=cand.output_space,
        explained_output=cand.outputs,
        n_explained=len(cand.data),
        explain_seconds=round(cand.seconds, 3),
        budget={
            "max_samples": params.max_samples,
            "background": params.background,
            "max_evals": params.max_evals,
            "time_limit_s": params.time_limit_s,
            "top_k": params.top_k,
        },
        top_features=top,
        ranking=ranking(cand.features, imp),
    )
    baseline_imp: tuple[list[str], np.ndarray, np.ndarray] | None = None
    if params.baseline:
        base_loaded = ctx.model(params.baseline)
        if base_loaded.input_kind == "text":
            raise ValueError(f"baseline '{params.baseline}' is a text model; model '{params.model}' is tabular")
        base = _explain(ctx, params, base_loaded, params.dataset, rows, background)
        compare_baseline(out, ctx, params, cand.features, abs_cand, base.features, base.abs_values())
        out.details["baseline_explainer"] = base.explainer
        out.details["baseline_additivity_error"] = base.additivity_error
        out.warnings.extend(f"baseline: {n}" for n in base.notes)
        union = list(dict.fromkeys([*cand.features, *base.features]))
        baseline_imp = (
            union,
            st.align(cand.features, abs_cand, union).mean(axis=0),
            st.align(base.features, base.abs_values(), union).mean(axis=0),
        )
    if params.reference:
        ref_ds = ctx.dataset(params.reference)
        ref_rows = sample_rows(len(ref_ds.frame), params.max_samples, rng)
        ref = _explain(ctx, params, loaded, params.reference, ref_rows, background)
        report_drift(out, ctx, params, ref.abs_values(), abs_cand, cand.features)
    protected_gate(out, params, ds.frame, ds.sensitive, cand.features, top)
    out.details["local_explanations"] = _local(ctx, params, cand, rows)
    if params.plots:
        _plots(out, ctx, cand, imp, baseline_imp)
    return out


def _local(ctx: CheckContext, params: ShapParams, attr: Attribution, rows: np.ndarray) -> list[dict[str, Any]]:
    """Local explanations of the most uncertain explained rows (closest to the decision)."""
    if params.n_local == 0:
        return []
    n = len(attr.data)
    obj = ctx.model(params.model).obj
    if hasattr(obj, "predict_proba"):
        proba = np.asarray(ctx.predict(params.model, params.dataset, "predict_proba"), dtype=float)[rows[:n]]
        top2 = np.sort(proba, axis=1)[:, -2:] if proba.shape[1] > 1 else np.column_stack([1 - proba, proba])
        margin = top2[:, 1] - top2[:, 0]
        chosen, why = (
            np.argsort(margin, kind="stable")[: params.n_local],
            "smallest probability margin",
        )
    else:
        gap = np.abs(attr.output - attr.base).sum(axis=1)
        chosen, why = (
            np.argsort(-gap, kind="stable")[: params.n_local],
            "largest departure from the base value",
        )
    ids = ctx.dataset(params.dataset).frame.index[rows[:n]]
    local = []
    for i in chosen:
        contrib = attr.values[i].sum(axis=1)
        order = np.argsort(-np.abs(contrib), kind="stable")
        local.append(
            {
                "row": plain(ids[i]),
                "selected_by": why,
                "output": [float(v) for v in attr.output[i]],
                "base_value": [float(v) for v in attr.base[i]],
                "contributions": [
                    {
                        "feature": attr.features[j],
                        "value": plain(attr.data.iloc[i, j]),
                        "shap": float(contrib[j]),
                    }
                    for j in order
                ],
            }
        )
    return local


def _plots(
    out: CheckOutput,
    ctx: CheckContext,
    attr: Attribution,
    imp: np.ndarray,
    versus: tuple[list[str], np.ndarray, np.ndarray] | None,
) -> None:
    from . import _plots as pl

    ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.artifact_dir / "shap_importance.png"
    if versus is not None and versus[1].sum() > 0 and versus[2].sum() > 0:
        # the two models may explain different output spaces (log-odds vs probability):
        # compare shares of each model's total importance, not raw magnitudes
        union, cand_imp, base_imp = versus
        out.artifacts["importance"] = str(
            pl.importance_bar(
                path,
                union,
                cand_imp / cand_imp.sum(),
                "Share of SHAP importance: candidate vs baseline",
                baseline=base_imp / base_imp.sum(),
                xlabel="share of total mean |SHAP value|",
            )
        )
    else:
        metrics = [out.metrics.get(f"importance.{f}") for f in attr.features]
        low = high = None
        if all(m is not None and m.has_interval for m in metrics):
            low = np.array([m.lower for m in metrics if m is not None], dtype=float)
            high = np.array([m.upper for m in metrics if m is not None], dtype=float)
        out.artifacts["importance"] = str(
            pl.importance_bar(
                path,
                attr.features,
                imp,
                f"SHAP importance ({', '.join(attr.outputs)})",
                low=low,
                high=high,
            )
        )
    data = np.full((len(attr.data), len(attr.features)), np.nan)
    for j, col in enumerate(attr.features):
        if pd.api.types.is_numeric_dtype(attr.data[col]):
            data[:, j] = attr.data[col].to_numpy(dtype=float)  # categories stay grey (NaN)
    out.artifacts["beeswarm"] = str(
        pl.beeswarm(
            ctx.artifact_dir / "shap_beeswarm.png",
            attr.values.sum(axis=2),
            data,
            attr.features,
            f"SHAP values ({', '.join(attr.outputs)})",
        )
    )
