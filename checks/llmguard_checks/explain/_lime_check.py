"""The run function of ``explain.lime``: LIME importances, compared, gated, set beside SHAP.

Importance of a feature (token) is the mean |LIME weight| over the explained rows, the
same aggregation as ``explain.shap`` uses for |SHAP|, so the helpers of the SHAP check
compute the intervals, the baseline comparison and the protected-feature gate. With
``shap_agreement`` the same rows are explained by SHAP too and the two rankings compared:
per row (Spearman correlation of |LIME| and |SHAP| over the features) and overall
(Spearman correlation of the two global importance vectors).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np

from llmguard_ops import CheckContext, CheckOutput

from . import _stats as st
from ._common import (
    budget,
    class_index,
    compare_baseline,
    feed,
    importance_metrics,
    plain,
    protected_gate,
    ranking,
    sample_rows,
)
from ._stats import _rowwise_spearman

if TYPE_CHECKING:
    import pandas as pd

    from llmguard_ops import LoadedModel

    from .params import LimeParams


def _as_shap(params: LimeParams) -> Any:
    """The SHAP helpers read n_resamples, top_k, protected, proxy_threshold: all here."""
    return cast(Any, params)


def run_lime(ctx: CheckContext, params: LimeParams) -> CheckOutput:
    loaded = ctx.model(params.model)
    if loaded.input_kind == "text":
        return _run_text(ctx, params, loaded)
    return _run_tabular(ctx, params, loaded)


def _budget_check(params: LimeParams, rows: int) -> None:
    cost = rows * params.num_samples
    if cost > params.max_model_rows:
        raise ValueError(
            f"budget: {rows} rows x {params.num_samples} samples = {cost} model rows exceeds "
            f"max_model_rows={params.max_model_rows}; lower max_samples or num_samples"
        )


def _explain(
    ctx: CheckContext, params: LimeParams, loaded: LoadedModel, rows: np.ndarray, bg: pd.DataFrame
) -> tuple[Any, np.ndarray]:
    from ._lime import explain_tabular_lime

    ds = ctx.dataset(params.dataset)
    features = loaded.feature_names(ds)
    return explain_tabular_lime(
        loaded.obj,
        ds.frame[features].iloc[rows],
        bg.reindex(columns=features),
        feed(loaded),
        params.num_samples,
        class_index(loaded, params.class_label),
        ctx.seed,
        params.time_limit_s,
        params.discretize_continuous,
    )


def _run_tabular(ctx: CheckContext, params: LimeParams, loaded: LoadedModel) -> CheckOutput:
    out = CheckOutput()
    rng = ctx.rng()
    ds = ctx.dataset(params.dataset)
    rows = sample_rows(len(ds.frame), params.max_samples, rng)
    _budget_check(params, len(rows))
    bg_source = ctx.dataset(params.reference or params.dataset).frame
    background = bg_source.iloc[sample_rows(len(bg_source), params.background, rng)]
    cand, fit = _explain(ctx, params, loaded, rows, background)
    abs_cand = cand.abs_values()
    importance_metrics(out, ctx, _as_shap(params), cand.features, abs_cand)
    imp = st.importance(abs_cand)
    top = st.top_k(cand.features, imp, params.top_k)
    out.add("local_fit", float(np.mean(fit)), n=len(fit))
    out.warnings.extend(cand.notes)
    out.details.update(
        explainer=cand.explainer,
        output_space=cand.output_space,
        explained_output=cand.outputs,
        n_explained=len(cand.data),
        explain_seconds=round(cand.seconds, 3),
        budget={
            "max_samples": params.max_samples,
            "num_samples": params.num_samples,
            "model_rows": len(cand.data) * params.num_samples,
            "max_model_rows": params.max_model_rows,
            "background": params.background,
            "time_limit_s": params.time_limit_s,
        },
        top_features=top,
        ranking=ranking(cand.features, imp),
        seed=ctx.seed,
    )
    if params.baseline:
        base_loaded = ctx.model(params.baseline)
        if base_loaded.input_kind == "text":
            raise ValueError(f"baseline '{params.baseline}' is a text model; '{params.model}' is tabular")
        base, _ = _explain(ctx, params, base_loaded, rows[: len(cand.data)], background)
        compare_baseline(out, ctx, _as_shap(params), cand.features, abs_cand, base.features, base.abs_values())
    protected_gate(out, _as_shap(params), ds.frame, ds.sensitive, cand.features, top)
    if params.shap_agreement:
        from ._tabular import explain_tabular

        shap_attr = explain_tabular(
            loaded.obj,
            ds.frame[cand.features].iloc[rows[: len(cand.data)]],
            background.reindex(columns=cand.features),
            feed(loaded),
            budget(cast(Any, params)),
            "auto",
            class_index(loaded, params.class_label),
            ctx.seed,
        )
        n = min(len(shap_attr.data), len(cand.data))
        _agreement(out, ctx, params, abs_cand[:n], shap_attr.abs_values()[:n], cand.features)
        out.details["shap_explainer"] = shap_attr.explainer
    out.details["local_explanations"] = [
        {
            "row": plain(ds.frame.index[rows[i]]),
            "local_fit_r2": float(fit[i]),
            "intercept": float(cand.base[i, 0]),
            "local_prediction": float(cand.output[i, 0]),
            "weights": sorted(
                ({"feature": f, "lime": float(cand.values[i, j, 0])} for j, f in enumerate(cand.features)),
                key=lambda r: -abs(r["lime"]),
            ),
        }
        for i in range(min(params.n_local, len(cand.data)))
    ]
    if params.plots:
        from . import _plots as pl

        ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
        out.artifacts["importance"] = str(
            pl.importance_bar(
                ctx.artifact_dir / "lime_importance.png",
                cand.features,
                imp,
                f"LIME importance ({', '.join(cand.outputs)})",
                xlabel="mean |LIME weight|",
            )
        )
    return out


def _agreement(
    out: CheckOutput,
    ctx: CheckContext,
    params: LimeParams,
    lime_abs: np.ndarray,
    shap_abs: np.ndarray,
    features: list[str],
    present: np.ndarray | None = None,
) -> None:
    """Spearman agreement of |LIME| and |SHAP|: per row (mean, bootstrap) and overall.

    ``present`` (texts): per row, the tokens that occur in it; a row's correlation is taken
    over those only, so tokens absent from a text do not count as agreeing zeros.
    """
    from .._bootstrap import bootstrap_weighted

    if present is None:
        per_row = _rowwise_spearman(lime_abs, shap_abs)
    else:
        per_row = np.array(
            [
                st.spearman(a[m], b[m]) if m.sum() > 1 else np.nan
                for a, b, m in zip(lime_abs, shap_abs, present, strict=True)
            ]
        )
    valid = np.isfinite(per_row)
    if valid.sum() < len(per_row):
        out.warnings.append(f"shap_lime_row_agreement: {int((~valid).sum())} rows with constant attributions left out")
    rho = per_row[valid]
    fields: dict[str, Any] = {"n": int(valid.sum())}
    if params.n_resamples > 0 and len(rho) > 1:
        level = ctx.confidence("shap_lime_row_agreement")
        iv = bootstrap_weighted(
            lambda w: (w @ rho / w.sum(axis=1))[None, :],
            len(rho),
            confidence=level,
            n_resamples=params.n_resamples,
            seed=ctx.seed,
        )
        fields.update(
            lower=float(iv.low[0]),
            upper=float(iv.high[0]),
            confidence=level,
            interval_method=f"bootstrap-percentile over rows ({params.n_resamples} resamples)",
        )
    if len(rho):
        out.add("shap_lime_row_agreement", float(rho.mean()), **fields)
    li, si = lime_abs.mean(axis=0), shap_abs.mean(axis=0)
    overall = st.spearman(li, si) if len(features) > 1 else 1.0
    if np.isfinite(overall):
        out.add("shap_lime_agreement", overall, n=len(features))
    else:
        out.warnings.append("shap_lime_agreement undefined: one explanation is constant")
    out.details["shap_lime"] = {
        "rank_correlation": "spearman",
        "per_row": [float(r) if np.isfinite(r) else None for r in per_row],
        "features": [
            {"feature": f, "lime": float(a), "shap": float(b)} for f, a, b in zip(features, li, si, strict=True)
        ],
        "lime_top_features": st.top_k(features, li, params.top_k),
        "shap_top_features": st.top_k(features, si, params.top_k),
    }


def _run_text(ctx: CheckContext, params: LimeParams, loaded: LoadedModel) -> CheckOutput:
    from ._lime import explain_text_lime

    out = CheckOutput()
    rng = ctx.rng()
    texts = list(ctx.inputs(params.model, params.dataset))
    rows = sample_rows(len(texts), params.max_samples, rng)
    _budget_check(params, len(rows))
    chosen = [texts[i] for i in rows]
    index = class_index(loaded, params.class_label)
    cand, fit = explain_text_lime(loaded.obj, chosen, params.num_samples, index, ctx.seed, params.time_limit_s)
    vocab, abs_cand = cand.abs_matrix()
    imp = st.importance(abs_cand)
    top = st.top_k(vocab, imp, params.top_k)
    shown = st.top_k(vocab, imp, max(params.top_k, 20))
    importance_metrics(out, ctx, _as_shap(params), vocab, abs_cand, only=shown)
    out.add("local_fit", float(np.mean(fit)), n=len(fit))
    out.warnings.extend(cand.notes)
    out.details.update(
        explainer=cand.explainer,
        output_space="probability",
        explained_output=[cand.output_name],
        n_explained=len(cand.texts),
        explain_seconds=round(cand.seconds, 3),
        budget={
            "max_samples": params.max_samples,
            "num_samples": params.num_samples,
            "model_rows": len(cand.texts) * params.num_samples,
            "max_model_rows": params.max_model_rows,
        },
        top_features=top,
        ranking=ranking(vocab, imp)[:50],
        seed=ctx.seed,
    )
    if params.baseline:
        base, _ = explain_text_lime(
            ctx.model(params.baseline).obj, cand.texts, params.num_samples, index, ctx.seed, None
        )
        base_vocab, base_abs = base.abs_matrix()
        compare_baseline(out, ctx, _as_shap(params), vocab, abs_cand, base_vocab, base_abs)
    if params.protected:
        wanted = {p.lower() for p in params.protected}
        in_top = [t for t in top if t.lower() in wanted]
        out.add("protected_in_top_k", float(len(in_top)), n=len(top))
        out.details["protected"] = {"protected": params.protected, "in_top_k": in_top}
    if params.shap_agreement:
        from ._text import explain_text

        shap_attr = explain_text(loaded.obj, cand.texts, budget(cast(Any, params)), index, ctx.seed)
        union = list(dict.fromkeys([*vocab, *shap_attr.vocabulary()]))
        lime_m, shap_m = cand.abs_matrix(union)[1], shap_attr.abs_matrix(union)[1]
        present = np.zeros_like(lime_m, dtype=bool)
        for i, toks in enumerate([*zip(cand.tokens, shap_attr.tokens, strict=True)]):
            for t in {*toks[0], *toks[1]}:
                present[i, union.index(t)] = True
        _agreement(out, ctx, params, lime_m, shap_m, union, present)
        out.details["shap_explainer"] = shap_attr.explainer
    return out
