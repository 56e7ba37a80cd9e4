"""bias.group_fairness: disparities between groups of one or more sensitive columns.

The rows are collapsed into a (group, y, ŷ) count table (:mod:`._counts`). fairlearn and
AIF360 compute the point estimates on its weighted rows (:mod:`._libraries`); the same
quantities written over counts are checked against them on every run and give the
bootstrap intervals (multinomial resampling of the table = row resampling).

Groups are the intersections of all listed sensitive columns (e.g. sex x age group);
with several columns each column alone is also reported under ``attribute.<column>.``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llmguard_ops import CheckContext, CheckOutput, CheckSkipped, DatasetRef, MetricSpec, ModelRef

from . import _counts as cnt
from ._libraries import GROUP_METRICS, aif360_privileged, fairlearn_by_group
from .mitigation import advise, failed_fairness_gates, threshold_optimizer

DISPARITIES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "disparate_impact_ratio",
    "average_odds_difference",
)
LABEL_FREE = ("demographic_parity_difference", "demographic_parity_ratio", "disparate_impact_ratio")
DEFINITIONS = {
    "demographic_parity_difference": "fairlearn: max - min selection rate P(ŷ=1 | group)",
    "demographic_parity_ratio": "fairlearn: min / max selection rate over groups",
    "equalized_odds_difference": "fairlearn: max(TPR range, FPR range) over groups (worst case)",
    "equal_opportunity_difference": "fairlearn: max - min true positive rate over groups",
    "disparate_impact_ratio": "AIF360: P(ŷ=1 | unprivileged) / P(ŷ=1 | privileged), unprivileged groups pooled",
    "average_odds_difference": "AIF360: ½[(FPR_u - FPR_p) + (TPR_u - TPR_p)], unprivileged groups pooled",
}


class GroupFairnessParams(BaseModel):
    """Parameters of ``bias.group_fairness``."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef | None = Field("candidate", description="Model whose predictions are assessed.")
    dataset: DatasetRef = Field("current", description="Dataset with the sensitive columns (and a target).")
    sensitive: list[str] | None = Field(
        None,
        description="Sensitive columns; groups are their intersections (default: the dataset's).",
    )
    predictions: str | None = Field(
        None,
        description="Dataset column holding predictions or scores (e.g. scored LLM outputs); "
        "the model is then not called.",
    )
    threshold: float | None = Field(
        None,
        description="Positive when the score (P(positive) or the predictions column) >= threshold.",
    )
    positive_label: Any = Field(None, description="Favourable label (default: the larger of two labels).")
    privileged: dict[str, Any] = Field(
        default_factory=dict,
        description="Reference value per sensitive column, e.g. {sex: male} "
        "(default: the group with the highest selection rate).",
    )
    min_group_size: int = Field(30, ge=1, description="Smaller groups are reported but excluded from the gate.")
    n_resamples: int = Field(2000, ge=0, description="Bootstrap resamples for intervals (0: none).")
    plot: bool = Field(False, description="Write a chart of per-group rates with intervals (PNG).")
    mitigate: bool = Field(
        False,
        description="Also show the metrics after fairlearn's ThresholdOptimizer "
        "(advice only, never the promoted model).",
    )
    mitigation_constraint: Literal[
        "auto",
        "demographic_parity",
        "equalized_odds",
        "true_positive_rate_parity",
        "false_positive_rate_parity",
    ] = Field("auto", description="ThresholdOptimizer constraint (auto: from the failed gate).")


def group_name(columns: list[str], label: tuple[str, ...]) -> str:
    """``sex=female&age_group=18-29``: the name of a group in metric names and tables."""
    return "&".join(f"{c}={v}" for c, v in zip(columns, label, strict=True))


def metric_specs() -> tuple[MetricSpec, ...]:
    better = {
        "demographic_parity_ratio": True,
        "disparate_impact_ratio": True,
        "average_odds_difference": None,
    }
    specs = [MetricSpec(n, DEFINITIONS[n], better.get(n, False)) for n in DISPARITIES]
    specs += [
        MetricSpec(f"attribute.*.{n}", f"{n} over the groups of one sensitive column", better.get(n, False))
        for n in DISPARITIES
    ]
    specs += [MetricSpec(f"group.*.{m}", f"{m} of one group", None) for m in (*GROUP_METRICS, "count")]
    return tuple(specs)


# -- inputs -------------------------------------------------------------------------


def _binary_inputs(
    ctx: CheckContext, params: GroupFairnessParams
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """``(y01 or None, ŷ01, scores or None, facts)`` with 1 = the favourable outcome."""
    ds = ctx.dataset(params.dataset)
    frame = ds.frame
    y_raw = ds.y() if ds.spec.target is not None else None
    labels = np.unique(y_raw).tolist() if y_raw is not None else []
    positive = params.positive_label
    if positive is None:
        if len(labels) > 2:
            raise ValueError(f"target '{ds.spec.target}' has {len(labels)} labels; set 'positive_label'")
        positive = labels[-1] if labels else 1
    elif labels and positive not in labels:
        raise ValueError(f"positive_label {positive!r} is not one of the labels {labels}")
    facts: dict[str, Any] = {"positive_label": str(positive)}
    y01 = (y_raw == positive).astype(np.int8) if y_raw is not None else None
    scores: np.ndarray | None = None
    if params.predictions is not None:
        if params.predictions not in frame.columns:
            raise ValueError(f"predictions column '{params.predictions}' not in dataset '{params.dataset}'")
        values = frame[params.predictions].to_numpy()
        facts["source"] = f"column '{params.predictions}'"
        if params.threshold is not None:
            scores = values.astype(np.float64)
            pred = scores >= params.threshold
        else:
            pred = values == positive
    else:
        if params.model is None:
            raise ValueError("set 'model' or 'predictions'")
        obj = ctx.model(params.model).obj
        facts["source"] = f"model '{params.model}'"
        # scores only when something needs them: a threshold, or the mitigation run
        if hasattr(obj, "predict_proba") and (params.threshold is not None or params.mitigate):
            proba = np.asarray(ctx.predict(params.model, params.dataset, "predict_proba"), dtype=np.float64)
            classes = list(getattr(obj, "classes_", labels or [0, 1]))
            if positive in classes and proba.ndim == 2 and proba.shape[1] == len(classes):
                scores = proba[:, classes.index(positive)]
        if params.threshold is not None:
            if scores is None:
                raise ValueError("'threshold' needs a model with predict_proba or a 'predictions' column")
            pred = scores >= params.threshold
        else:
            pred = np.asarray(ctx.predict(params.model, params.dataset, "predict")) == positive
    if params.threshold is not None:
        facts["threshold"] = params.threshold
    return y01, np.asarray(pred, dtype=np.int8), scores, facts


# -- one grouping -------------------------------------------------------------------


def _reference(table: cnt.CountTable, columns: list[str], params: GroupFairnessParams) -> tuple[int, str]:
    if all(c in params.privileged for c in columns):
        wanted = tuple(str(params.privileged[c]) for c in columns)
        if wanted not in table.labels:
            raise ValueError(
                f"privileged group {group_name(columns, wanted)} has no rows of at least "
                f"min_group_size={params.min_group_size}"
            )
        return table.labels.index(wanted), "configured (privileged)"
    rates = cnt.group_rates(table.counts)
    order = np.lexsort((-table.sizes, -rates["selection_rate"]))  # highest rate, then largest
    return int(order[0]), "highest selection rate (set 'privileged' to fix it)"


def _agree(name: str, ours: float, theirs: float) -> None:
    """The count formulas must reproduce the library value (else the intervals would lie)."""
    if np.isfinite(theirs) and not abs(ours - theirs) <= 1e-9:
        raise AssertionError(f"{name}: count-table value {ours!r} != library value {theirs!r}")


def _interval(
    out: CheckOutput,
    ctx: CheckContext,
    name: str,
    value: float,
    replicates: np.ndarray | None,
    n: int,
    params: GroupFairnessParams,
) -> None:
    fields: dict[str, Any] = {"n": n}
    if replicates is not None:
        level = ctx.confidence(name)
        low, high, undefined = cnt.percentile_interval(replicates, level)
        if undefined:
            out.warnings.append(
                f"{name}: {undefined} of {replicates.size} resamples undefined "
                "(a group lost all its rows or labels); interval over the rest"
            )
        if np.isfinite(low) and np.isfinite(high):
            fields.update(
                lower=low,
                upper=high,
                confidence=level,
                interval_method=f"bootstrap-percentile ({params.n_resamples} multinomial resamples of the count table)",
            )
    out.add(name, value, **fields)


def _included(
    out: CheckOutput, params: GroupFairnessParams, table: cnt.CountTable, columns: list[str]
) -> tuple[cnt.CountTable, np.ndarray]:
    """The groups with at least ``min_group_size`` rows, and the mask of the others (each
    warned about: reported, never gated)."""
    small = table.sizes < params.min_group_size
    for label, size in zip(table.labels, table.sizes, strict=True):
        if size < params.min_group_size:
            out.warnings.append(
                f"group {group_name(columns, label)} has {int(size)} rows "
                f"(< min_group_size {params.min_group_size}): reported, excluded from the gate"
            )
    return table.subset(~small), small


def _add_disparities(
    out: CheckOutput,
    ctx: CheckContext,
    params: GroupFairnessParams,
    included: cnt.CountTable,
    ref: int,
    labelled: bool,
    prefix: str,
    library: dict[str, Any],
    boot: cnt.Resamples | None,
) -> None:
    """Each disparity as the libraries compute it, checked against the count table's own,
    with a bootstrap interval from the resampled tables."""
    ours = {k: float(v) for k, v in cnt.disparities(included.counts, ref, labelled).items()}
    dist = cnt.disparities(boot.counts, ref, labelled) if boot is not None else {}
    n = int(included.sizes.sum())
    for name in DISPARITIES if labelled else LABEL_FREE:
        value = library.get(name)
        if value is None or not np.isfinite(value):
            out.warnings.append(
                f"{prefix}{name}: undefined on this data "
                f"(e.g. the reference group has no positive predictions); not reported"
            )
            continue
        _agree(prefix + name, ours[name], value)
        _interval(out, ctx, prefix + name, value, dist.get(name), n, params)


def _add_group_metrics(
    out: CheckOutput,
    ctx: CheckContext,
    params: GroupFairnessParams,
    included: cnt.CountTable,
    ref: int,
    labelled: bool,
    columns: list[str],
    groups_prefix: str,
    by_group: dict[Any, dict[str, Any]],
    boot: cnt.Resamples | None,
) -> list[dict[str, Any]]:
    """Per-group metrics (fairlearn's, checked against the count table's) with intervals and
    counts; returns the groups' table rows."""
    rates = cnt.group_rates(included.counts)
    boot_rates = cnt.group_rates(boot.counts) if boot is not None else None
    ref_rate = rates["selection_rate"][ref]
    rows = []
    for i, label in enumerate(included.labels):
        name = group_name(columns, label)
        by = by_group[label]
        size = int(included.sizes[i])
        for metric in GROUP_METRICS:
            value = by.get(metric)
            if value is None or not np.isfinite(value):
                continue
            _agree(f"group.{name}.{metric}", float(rates[metric][i]), value)
            replicates = boot_rates[metric][:, i] if boot_rates is not None else None
            _interval(out, ctx, f"{groups_prefix}{name}.{metric}", value, replicates, size, params)
        out.add(f"{groups_prefix}{name}.count", float(included.sizes[i]), n=size)
        rows.append(
            {
                "group": name,
                "count": size,
                "included": True,
                "reference": i == ref,
                **{m: _num(by.get(m)) for m in GROUP_METRICS},
                "base_rate": _num(rates["base_rate"][i]) if labelled else None,
                "selection_rate_ratio_to_reference": _num(rates["selection_rate"][i] / ref_rate)
                if ref_rate > 0
                else None,
                "selection_rate_difference_to_reference": _num(rates["selection_rate"][i] - ref_rate),
            }
        )
    return rows


def _excluded_rows(table: cnt.CountTable, small: np.ndarray, columns: list[str]) -> list[dict[str, Any]]:
    """Table rows of the groups too small to gate (their rates shown, no intervals)."""
    if not small.any():
        return []
    small_rates = cnt.group_rates(table.counts[small])
    return [
        {
            "group": group_name(columns, label),
            "count": int(small_rates["count"][j]),
            "included": False,
            "reference": False,
            **{m: _num(small_rates[m][j]) for m in GROUP_METRICS},
        }
        for j, label in enumerate(lab for lab, s in zip(table.labels, small, strict=True) if s)
    ]


def evaluate_grouping(
    out: CheckOutput,
    ctx: CheckContext,
    params: GroupFairnessParams,
    table: cnt.CountTable,
    columns: list[str],
    prefix: str,
    labelled: bool,
    rng: np.random.Generator,
    groups_prefix: str = "group.",
) -> dict[str, Any]:
    """Add the disparities (``prefix`` + name) and per-group metrics of one grouping."""
    included, small = _included(out, params, table, columns)
    if len(included.labels) < 2:
        message = (
            f"{'&'.join(columns)}: fewer than two groups with at least "
            f"{params.min_group_size} rows "
            f"({len(included.labels)} of {len(table.labels)})"
        )
        if not prefix:
            raise CheckSkipped(message)
        out.warnings.append(message + "; no disparities reported")
        return {"columns": columns, "skipped": message}
    ref, ref_how = _reference(included, columns, params)
    fl = fairlearn_by_group(included, labelled)
    aif = aif360_privileged(included, ref, labelled)
    library = {**{k: v for k, v in fl.items() if k != "by_group"}, **aif}
    boot = cnt.resample(included, params.n_resamples, rng) if params.n_resamples > 0 else None
    _add_disparities(out, ctx, params, included, ref, labelled, prefix, library, boot)
    rows = _add_group_metrics(out, ctx, params, included, ref, labelled, columns, groups_prefix, fl["by_group"], boot)
    rows += _excluded_rows(table, small, columns)
    return {
        "columns": columns,
        "reference_group": group_name(columns, included.labels[ref]),
        "reference_chosen_by": ref_how,
        "groups": rows,
        "n_included": int(included.sizes.sum()),
        "excluded_groups": [group_name(columns, lab) for lab, s in zip(table.labels, small, strict=True) if s],
        "aif360": {k: _num(v) for k, v in aif.items()},
    }


def _num(x: Any) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


# -- the check ----------------------------------------------------------------------


def sensitive_columns(ctx: CheckContext, params: GroupFairnessParams) -> list[str]:
    """The sensitive columns of the check, each present in the dataset."""
    ds = ctx.dataset(params.dataset)
    columns = list(params.sensitive or ds.sensitive)
    if not columns:
        raise ValueError(f"dataset '{params.dataset}' declares no sensitive columns; set 'sensitive'")
    missing = [c for c in columns if c not in ds.columns]
    if missing:
        raise ValueError(f"sensitive columns not in dataset '{params.dataset}': {', '.join(missing)}")
    unknown = sorted(set(params.privileged) - set(columns))
    if unknown:
        raise ValueError(f"privileged names columns that are not sensitive here: {', '.join(unknown)}")
    return columns


def evaluate_table(
    ctx: CheckContext,
    params: GroupFairnessParams,
    table: cnt.CountTable,
    columns: list[str],
    labelled: bool,
    facts: dict[str, Any],
) -> tuple[CheckOutput, dict[str, Any]]:
    """The check's metrics and details from the (group, y, ŷ) table; returns the output
    and its groupings."""
    if not labelled:
        ctx.note(f"dataset '{params.dataset}' has no target: only selection-rate metrics are reported")
    rng = ctx.rng()
    out = CheckOutput()
    groupings = {"&".join(columns): evaluate_grouping(out, ctx, params, table, columns, "", labelled, rng)}
    if len(columns) > 1:
        for i, column in enumerate(columns):
            groupings[column] = evaluate_grouping(
                out,
                ctx,
                params,
                cnt.marginal(table, i),
                [column],
                f"attribute.{column}.",
                labelled,
                rng,
            )
    out.details.update(
        definitions={k: DEFINITIONS[k] for k in (DISPARITIES if labelled else LABEL_FREE)},
        groupings=groupings,
        n=int(table.sizes.sum()),
        sensitive=columns,
        min_group_size=params.min_group_size,
        favourable_outcome=facts,
        intervals=f"bootstrap percentile, {params.n_resamples} multinomial resamples of the (group, y, ŷ) count table",
    )
    return out, groupings


def run_group_fairness(ctx: CheckContext, params: GroupFairnessParams) -> CheckOutput:
    if ctx.is_partitioned(params.dataset):
        from ._partitioned import run_partitioned

        return run_partitioned(ctx, params)
    ds = ctx.dataset(params.dataset)
    columns = sensitive_columns(ctx, params)
    y01, pred, scores, facts = _binary_inputs(ctx, params)
    labelled = y01 is not None
    labels = y01 if y01 is not None else np.zeros_like(pred)  # unlabelled: one dummy label
    table = cnt.build_table([ds.frame[c] for c in columns], labels, pred)
    out, groupings = evaluate_table(ctx, params, table, columns, labelled, facts)
    main = next(iter(groupings.values()))
    if params.plot and "groups" in main:
        from .plot import plot_group_rates

        path = plot_group_rates(out, main, ctx.artifact_dir / "group_rates.png")
        out.artifacts["group_rates"] = str(path)
    failed = failed_fairness_gates(ctx, out)
    if failed or params.mitigate:
        out.details["mitigation"] = advise(ctx, params, failed, columns)
    if params.mitigate:
        if not labelled:
            out.warnings.append("mitigate: ThresholdOptimizer needs a target column; not run")
        else:
            assert y01 is not None
            result = threshold_optimizer(ds.frame[columns], y01, pred, scores, params, failed, ctx.seed)
            out.details.setdefault("mitigation", {})["threshold_optimizer"] = result
    return out
