"""The run function of ``explain.shap``: sample, explain, compare, gate, plot."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from llmguard_ops import CheckContext, CheckOutput

from . import _stats as st
from ._tabular import Attribution, Budget, explain_tabular

if TYPE_CHECKING:
    from llmguard_ops import LoadedModel

    from . import ShapParams


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    if n == 0:
        raise ValueError("the dataset has no rows to explain")
    return np.sort(rng.choice(n, size=min(size, n), replace=False))


def _feed(loaded: LoadedModel) -> Callable[[pd.DataFrame], Any]:
    """Frames as the model expects them (arrays for models fitted without column names)."""
    obj = loaded.obj
    if getattr(obj, "feature_names_in_", None) is None and hasattr(obj, "n_features_in_"):
        return lambda df: df.to_numpy()
    return lambda df: df


def _class_index(loaded: LoadedModel, label: Any) -> int | None:
    if label is None:
        return None
    config = getattr(getattr(loaded.obj, "model", None), "config", None)
    if config is not None:  # transformers: a label name or an index
        label2id = {str(k): int(v) for k, v in (getattr(config, "label2id", None) or {}).items()}
        if str(label) in label2id:
            return label2id[str(label)]
        if str(label).isdigit() and int(label) < int(getattr(config, "num_labels", 0)):
            return int(label)
        raise ValueError(f"class_label {label!r} is not a label of model '{loaded.name}' ({sorted(label2id)})")
    classes = [str(c) for c in getattr(loaded.obj, "classes_", [])]
    if str(label) not in classes:
        raise ValueError(f"class_label {label!r} is not a class of model '{loaded.name}' ({classes})")
    return classes.index(str(label))


def _budget(params: ShapParams) -> Budget:
    return Budget(background=params.background, max_evals=params.max_evals, time_limit_s=params.time_limit_s)


def run_shap(ctx: CheckContext, params: ShapParams) -> CheckOutput:
    """Explain ``params.model`` on ``params.dataset`` and compare as the suite asks."""
    loaded = ctx.model(params.model)
    if loaded.input_kind == "text":
        from ._text_check import run_text

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
        _feed(loaded),
        _budget(params),
        params.explainer,
        _class_index(loaded, params.class_label),
        ctx.seed,
    )


def _run_tabular(ctx: CheckContext, params: ShapParams, loaded: LoadedModel) -> CheckOutput:
    out = CheckOutput()
    rng = ctx.rng()
    ds = ctx.dataset(params.dataset)
    rows = _sample(len(ds.frame), params.max_samples, rng)
    bg_source = ctx.dataset(params.reference or params.dataset).frame
    background = bg_source.iloc[_sample(len(bg_source), params.background, rng)]
    cand = _explain(ctx, params, loaded, params.dataset, rows, background)
    abs_cand = cand.abs_values()
    _importance_metrics(out, ctx, params, cand.features, abs_cand)
    imp = st.importance(abs_cand)
    top = st.top_k(cand.features, imp, params.top_k)
    _additivity(out, params, "additivity_error", cand.additivity_error)
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
        ranking=_ranking(cand.features, imp),
    )
    baseline_imp: tuple[list[str], np.ndarray, np.ndarray] | None = None
    if params.baseline:
        base_loaded = ctx.model(params.baseline)
        if base_loaded.input_kind == "text":
            raise ValueError(f"baseline '{params.baseline}' is a text model; model '{params.model}' is tabular")
        base = _explain(ctx, params, base_loaded, params.dataset, rows, background)
        _compare(out, ctx, params, cand.features, abs_cand, base.features, base.abs_values())
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
        ref_rows = _sample(len(ref_ds.frame), params.max_samples, rng)
        ref = _explain(ctx, params, loaded, params.reference, ref_rows, background)
        _drift(out, ctx, params, ref.abs_values(), abs_cand, cand.features)
    _protected(out, params, ds.frame, ds.sensitive, cand.features, top)
    out.details["local_explanations"] = _local(ctx, params, cand, rows)
    if params.plots:
        _plots(out, ctx, cand, imp, baseline_imp)
    return out


def _ranking(features: list[str], imp: np.ndarray) -> list[dict[str, Any]]:
    order = np.argsort(-imp, kind="stable")
    return [{"rank": r + 1, "feature": features[i], "importance": float(imp[i])} for r, i in enumerate(order)]


def _importance_metrics(
    out: CheckOutput,
    ctx: CheckContext,
    params: ShapParams,
    features: list[str],
    abs_values: np.ndarray,
    only: list[str] | None = None,
) -> None:
    imp = st.importance(abs_values)
    wanted = [i for i, f in enumerate(features) if only is None or f in only]
    for level in sorted({ctx.confidence(f"importance.{features[i]}") for i in wanted}):
        iv = st.importance_intervals(
            abs_values[:, wanted], confidence=level, n_resamples=params.n_resamples, seed=ctx.seed
        )
        for j, i in enumerate(wanted):
            name = f"importance.{features[i]}"
            if ctx.confidence(name) != level:
                continue
            fields: dict[str, Any] = {"n": len(abs_values)}
            if iv is not None:
                fields.update(
                    lower=float(iv[0][j]),
                    upper=float(iv[1][j]),
                    confidence=level,
                    interval_method=f"bootstrap-percentile ({params.n_resamples} resamples)",
                )
            out.add(name, float(imp[i]), **fields)


def _additivity(out: CheckOutput, params: ShapParams, name: str, error: float) -> None:
    out.add(name, error)
    if error > params.additivity_tolerance:
        out.warnings.append(
            f"{name} {error:.3g} exceeds the tolerance {params.additivity_tolerance:g}: the "
            "attributions do not add up to the model output"
        )


def _compare(
    out: CheckOutput,
    ctx: CheckContext,
    params: ShapParams,
    cand_features: list[str],
    cand_abs: np.ndarray,
    base_features: list[str],
    base_abs: np.ndarray,
) -> None:
    levels = {ctx.confidence("rank_correlation_vs_baseline"), ctx.confidence("top_k_overlap")}
    results = {
        level: st.compare(
            cand_features,
            cand_abs,
            base_features,
            base_abs,
            params.top_k,
            confidence=level,
            n_resamples=params.n_resamples,
            seed=ctx.seed,
        )
        for level in sorted(levels)
    }
    for name, attr, iv_attr in (
        ("rank_correlation_vs_baseline", "rank_correlation", "rank_interval"),
        ("top_k_overlap", "overlap", "overlap_interval"),
    ):
        level = ctx.confidence(name)
        cmp = results[level]
        iv = getattr(cmp, iv_attr)
        fields: dict[str, Any] = {"n": min(len(cand_abs), len(base_abs))}
        if iv is not None:
            fields.update(
                lower=iv[0],
                upper=iv[1],
                confidence=level,
                interval_method=f"paired bootstrap-percentile ({params.n_resamples} resamples)",
            )
        out.add(name, getattr(cmp, attr), **fields)
    cmp = next(iter(results.values()))
    out.details["baseline_comparison"] = {
        "k": cmp.k,
        "rank_correlation": "spearman",
        "baseline_top_features": st.top_k(cmp.features, cmp.baseline, cmp.k),
        "features": [
            {"feature": f, "candidate": float(a), "baseline": float(b)}
            for f, a, b in zip(cmp.features, cmp.candidate, cmp.baseline, strict=True)
        ],
    }


def _drift(
    out: CheckOutput,
    ctx: CheckContext,
    params: ShapParams,
    ref_abs: np.ndarray,
    cur_abs: np.ndarray,
    features: list[str],
) -> None:
    drift = st.attribution_drift(ref_abs, cur_abs, n_resamples=params.n_resamples, seed=ctx.seed)
    out.add("attribution_drift", drift.distance, p_value=drift.p_value, n=len(ref_abs) + len(cur_abs))
    out.add("rank_correlation_vs_reference", drift.rank_correlation, n=len(features))
    out.details["attribution_drift"] = {
        "distance": "total variation of normalised mean |SHAP|",
        "test": "permutation test of rows",
        "reference": params.reference,
        "current": params.dataset,
        "features": [
            {"feature": f, "reference": float(r), "current": float(c)}
            for f, r, c in zip(features, drift.reference, drift.current, strict=True)
        ],
    }


def _protected(
    out: CheckOutput,
    params: ShapParams,
    frame: pd.DataFrame,
    sensitive: list[str],
    features: list[str],
    top: list[str],
) -> None:
    protected = params.protected if params.protected is not None else sensitive
    if not protected:
        return
    direct = [p for p in protected if p in features]
    columns = [p for p in protected if p in frame.columns]
    assoc = st.proxies(frame, features, columns, params.proxy_threshold) if columns else []
    proxy = list(dict.fromkeys(r["feature"] for r in assoc if r["proxy"]))
    flagged = list(dict.fromkeys([*direct, *proxy]))
    in_top = [f for f in top if f in flagged]
    out.add("protected_in_top_k", float(len(in_top)), n=len(top))
    out.details["protected"] = {
        "protected": protected,
        "used_directly": direct,
        "proxies": proxy,
        "in_top_k": in_top,
        "proxy_threshold": params.proxy_threshold,
        "associations": assoc[:25],
        "unmeasured": [p for p in protected if p not in frame.columns and p not in features],
    }


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
                "row": _plain(ids[i]),
                "selected_by": why,
                "output": [float(v) for v in attr.output[i]],
                "base_value": [float(v) for v in attr.base[i]],
                "contributions": [
                    {
                        "feature": attr.features[j],
                        "value": _plain(attr.data.iloc[i, j]),
                        "shap": float(contrib[j]),
                    }
                    for j in order
                ],
            }
        )
    return local


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


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
