"""What explain.shap and explain.lime share: row sampling, model feeding, importance metrics,
the baseline comparison, attribution drift and the protected-feature gate."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from llmguard_ops import CheckContext, CheckOutput

from . import _stats as st
from ._tabular import Budget

if TYPE_CHECKING:
    from llmguard_ops import LoadedModel

    from .params import ShapParams


def sample_rows(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    if n == 0:
        raise ValueError("the dataset has no rows to explain")
    return np.sort(rng.choice(n, size=min(size, n), replace=False))


def feed(loaded: LoadedModel) -> Callable[[pd.DataFrame], Any]:
    """Frames as the model expects them (arrays for models fitted without column names)."""
    obj = loaded.obj
    if getattr(obj, "feature_names_in_", None) is None and hasattr(obj, "n_features_in_"):
        return lambda df: df.to_numpy()
    return lambda df: df


def class_index(loaded: LoadedModel, label: Any) -> int | None:
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


def budget(params: ShapParams) -> Budget:
    return Budget(background=params.background, max_evals=params.max_evals, time_limit_s=params.time_limit_s)


def ranking(features: list[str], imp: np.ndarray) -> list[dict[str, Any]]:
    order = np.argsort(-imp, kind="stable")
    return [{"rank": r + 1, "feature": features[i], "importance": float(imp[i])} for r, i in enumerate(order)]


def importance_metrics(
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


def additivity(out: CheckOutput, params: ShapParams, name: str, error: float) -> None:
    out.add(name, error)
    if error > params.additivity_tolerance:
        out.warnings.append(
            f"{name} {error:.3g} exceeds the tolerance {params.additivity_tolerance:g}: the "
            "attributions do not add up to the model output"
        )


def compare_baseline(
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


def report_drift(
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


def protected_gate(
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


def plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v
