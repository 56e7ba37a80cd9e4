"""Point estimates of group fairness from fairlearn and AIF360, on the collapsed rows.

Both libraries receive the weighted rows of a :class:`~._counts.CountTable` (one row
per non-empty (group, y, ŷ) cell, ``sample_weight`` = its count), which gives exactly
their result on the original rows. fairlearn's :class:`~fairlearn.metrics.MetricFrame`
provides the per-group metrics and the between-group disparities; AIF360's
sklearn-compatible metrics (protected attribute in the index, ``priv_group``) provide the
privileged-vs-unprivileged ones.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ._counts import CountTable

GROUP_METRICS = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")


def _import_aif360_metrics() -> Any:
    """``aif360.sklearn.metrics``, without its import-time notes about optional extras.

    AIF360 logs a root-logger warning for every optional dependency it lacks (tensorflow,
    ot, ...), none of which these metrics use.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        import aif360.sklearn.metrics as metrics
    finally:
        root.setLevel(level)
    return metrics


def fairlearn_by_group(table: CountTable, labelled: bool) -> dict[str, Any]:
    """Per-group metrics and disparities from fairlearn on the weighted rows.

    Groups without positive (or negative) labels have no TPR (FPR); fairlearn would report
    0 for them, so the TPR/FPR disparities are computed over the groups that have both.
    """
    import pandas as pd
    from fairlearn import metrics as flm
    from sklearn.metrics import accuracy_score

    g, y, p, w = table.weighted_rows()
    groups = np.array(["\x1f".join(table.labels[i]) for i in g], dtype=object)
    metrics: dict[str, Any] = {"selection_rate": flm.selection_rate}
    if labelled:
        metrics.update(true_positive_rate=flm.true_positive_rate,
                       false_positive_rate=flm.false_positive_rate, accuracy=accuracy_score)
    frame = flm.MetricFrame(
        metrics=metrics, y_true=y, y_pred=p, sensitive_features=pd.Series(groups, name="group"),
        sample_params={k: {"sample_weight": w} for k in metrics},
    )
    by_group = frame.by_group
    out: dict[str, Any] = {
        "by_group": {
            tuple(str(k).split("\x1f")): {m: float(by_group.loc[k, m]) for m in metrics}
            for k in by_group.index
        },
        "demographic_parity_difference": float(
            flm.demographic_parity_difference(y, p, sensitive_features=groups, sample_weight=w)),
        "demographic_parity_ratio": float(
            flm.demographic_parity_ratio(y, p, sensitive_features=groups, sample_weight=w)),
    }
    if labelled:
        both = table.counts[:, 1, :].sum(axis=1) > 0
        both &= table.counts[:, 0, :].sum(axis=1) > 0
        keep = both[g]
        kw = {"sensitive_features": groups[keep], "sample_weight": w[keep]}
        if keep.any():
            out["equalized_odds_difference"] = float(flm.equalized_odds_difference(y[keep], p[keep], **kw))
            out["equal_opportunity_difference"] = float(
                flm.equal_opportunity_difference(y[keep], p[keep], **kw))
        for label, has in zip(table.labels, both, strict=True):
            if not has:
                out["by_group"][label]["true_positive_rate"] = float("nan")
                out["by_group"][label]["false_positive_rate"] = float("nan")
    return out


def aif360_privileged(table: CountTable, privileged: int, labelled: bool) -> dict[str, float]:
    """AIF360's privileged-vs-unprivileged metrics on the weighted rows.

    The protected attribute is a binary index level (1 = the privileged group), so the
    unprivileged side is every other included group, pooled — AIF360's own convention.
    """
    import pandas as pd

    am = _import_aif360_metrics()
    g, y, p, w = table.weighted_rows()
    prot = (g == privileged).astype(int)
    y_true = pd.Series(y, index=pd.Index(prot, name="privileged"))
    kw: dict[str, Any] = {"prot_attr": "privileged", "priv_group": 1, "pos_label": 1, "sample_weight": w}
    out = {
        "disparate_impact_ratio": float(am.disparate_impact_ratio(y_true, p, zero_division=np.nan, **kw)),
        "statistical_parity_difference": float(am.statistical_parity_difference(y_true, p, **kw)),
    }
    if labelled:
        out["average_odds_difference"] = float(am.average_odds_difference(y_true, p, **kw))
        out["aif360_equal_opportunity_difference"] = float(am.equal_opportunity_difference(y_true, p, **kw))
    return out
