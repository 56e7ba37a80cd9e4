"""bias.group_fairness over a partitioned dataset: the (group, y, ŷ) table, merged.

Every group-fairness metric depends on the rows only through the ``G x 2 x 2`` count table
(see :mod:`._counts`), and count tables add: each partition's task predicts its own rows
and returns its :class:`GroupConfusion`; the merged table is *the* table of the whole
dataset, so the point estimates (fairlearn and AIF360 on its weighted cells) and the
bootstrap (multinomial draws of that table, with the check's seed) are the same numbers
as in memory. The favourable label, when not set, comes from one pass over the target.

Not on partitioned data: ``mitigate`` (ThresholdOptimizer fits on every row) and the
sensitive-proxy search of the mitigation advice (both need the rows in memory).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from llmguard_ops import CategoryCounts, CheckContext, CheckOutput, GroupConfusion

from . import _counts as cnt
from .group_fairness import GroupFairnessParams, evaluate_table, sensitive_columns
from .mitigation import failed_fairness_gates

if TYPE_CHECKING:
    import pandas as pd


def _labels(frame: pd.DataFrame, target: str) -> CategoryCounts:
    return CategoryCounts().update(frame[target])


def _model_inputs(obj: Any, frame: pd.DataFrame, features: list[str] | None, text: str | None) -> Any:
    """What ``predict`` gets, as the host gives it (:meth:`LoadedModel.inputs`)."""
    if features is None:
        assert text is not None
        return [str(t) for t in frame[text].tolist()]
    inputs = frame[features]
    if getattr(obj, "feature_names_in_", None) is None and hasattr(obj, "n_features_in_"):
        return inputs.to_numpy()
    return inputs


def confusion_of_partition(
    frame: pd.DataFrame,
    sensitive: list[str],
    positive: Any,
    target: str | None,
    predictions: str | None,
    threshold: float | None,
    model: Any,
    features: list[str] | None,
    text: str | None,
) -> GroupConfusion:
    """One partition's (group, y, ŷ) counts, ŷ from the predictions column or the model."""
    if predictions is not None:
        values = frame[predictions].to_numpy()
        pred = values.astype(np.float64) >= threshold if threshold is not None else values == positive
    else:
        inputs = _model_inputs(model, frame, features, text)
        if threshold is not None:
            proba = np.asarray(model.predict_proba(inputs), dtype=np.float64)
            classes = list(model.classes_)
            pred = proba[:, classes.index(positive)] >= threshold
        else:
            pred = np.asarray(model.predict(inputs)) == positive
    y = (frame[target].to_numpy() == positive) if target is not None else np.zeros(len(frame), dtype=bool)
    return GroupConfusion().update([frame[c] for c in sensitive], y.astype(np.int8), pred.astype(np.int8))


def _positive(ctx: CheckContext, params: GroupFairnessParams, target: str | None) -> Any:
    """The favourable label: the parameter (checked against the labels), or the larger of two."""
    labels: list[Any] = []
    if target is not None:
        counts = ctx.partition_map(params.dataset, functools.partial(_labels, target=target), columns=[target])
        labels = sorted(CategoryCounts.merge_all(counts.values).counts)
    positive = params.positive_label
    if positive is None:
        if len(labels) > 2:
            raise ValueError(f"target '{target}' has {len(labels)} labels; set 'positive_label'")
        return labels[-1] if labels else 1
    if labels and positive not in labels:
        raise ValueError(f"positive_label {positive!r} is not one of the labels {labels}")
    return positive


def run_partitioned(ctx: CheckContext, params: GroupFairnessParams) -> CheckOutput:
    """bias.group_fairness on a partitioned dataset (see the module docstring)."""
    if params.mitigate:
        raise ValueError("mitigate: ThresholdOptimizer needs every row in memory; not available on partitioned data")
    ds = ctx.dataset(params.dataset)
    columns = sensitive_columns(ctx, params)
    target = ds.spec.target
    positive = _positive(ctx, params, target)
    facts: dict[str, Any] = {"positive_label": str(positive)}
    model = features = text = None
    read = [*columns, *([target] if target else [])]
    if params.predictions is not None:
        if params.predictions not in ds.columns:
            raise ValueError(f"predictions column '{params.predictions}' not in dataset '{params.dataset}'")
        facts["source"] = f"column '{params.predictions}'"
        read.append(params.predictions)
    else:
        if params.model is None:
            raise ValueError("set 'model' or 'predictions'")
        loaded = ctx.model(params.model)
        model = loaded.obj
        facts["source"] = f"model '{params.model}'"
        if params.threshold is not None and not hasattr(model, "predict_proba"):
            raise ValueError("'threshold' needs a model with predict_proba or a 'predictions' column")
        if loaded.input_kind == "text":
            text = ds.spec.text
            if text is None:
                raise ValueError(f"dataset '{params.dataset}' declares no 'text' column for model '{params.model}'")
            read.append(text)
        else:
            features = loaded.feature_names(ds)
            read += features
    if params.threshold is not None:
        facts["threshold"] = params.threshold
    fn = functools.partial(
        confusion_of_partition,
        sensitive=columns,
        positive=positive,
        target=target,
        predictions=params.predictions,
        threshold=params.threshold,
        model=model,
        features=features,
        text=text,
    )
    result = ctx.partition_map(params.dataset, fn, columns=list(dict.fromkeys(read)))
    merged = GroupConfusion.merge_all(result.values)
    labels, counts = merged.ordered()
    table = cnt.CountTable(counts, tuple(tuple(str(v) for v in lab) for lab in labels))
    out, _ = evaluate_table(ctx, params, table, columns, target is not None, facts)
    out.warnings += result.notes
    out.details["partitioned"] = {
        **result.describe(),
        "exact": "the (group, y, ŷ) count table is the sum of the partitions' tables: every metric and the "
        "bootstrap (multinomial draws of that table) are those of the whole dataset in memory",
    }
    failed = failed_fairness_gates(ctx, out)
    if failed:
        out.details["mitigation"] = {
            "failed_gates": failed,
            "note": "the sensitive-proxy search needs the rows in memory; not run on partitioned data",
        }
    return out
