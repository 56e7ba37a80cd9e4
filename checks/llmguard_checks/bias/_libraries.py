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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ._counts import CountTable

GROUP_METRICS = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")


@contextmanager
def quiet_aif360() -> Iterator[None]:
    """Import AIF360 modules without its import-time notes about optional extras.

    AIF360 logs a root-logger warning for every optional dependency it lacks (tensorflow,
    ot, rpy2, ...), none of which these checks use.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _import_aif360_metrics() -> Any:
    """``aif360.sklearn.metrics``, quietly."""
    with quiet_aif360():
        import aif360.sklearn.metrics as metrics
    return metrics


def fairlearn_by_group(table: CountTable, labelled: bool) -> dict[str, Any]:
    """Per-group metrics and between-group disparities from one fairlearn MetricFrame.

    The disparities are the MetricFrame's own ``difference()``/``ratio()`` (between groups),
    which is how fairlearn's ``demographic_parity_difference``, ``demographic_parity_ratio``,
    ``equal_opportunity_difference`` and ``equalized_odds_difference`` (worst case) are
    defined; one frame per grouping instead of one per metric keeps the check fast.
    Groups without positive (or negative) labels have no TPR (FPR): fairlearn would report 0
    for them, so they are left out of the TPR (FPR) disparities.
    """
    from fairlearn import metrics as flm
    from sklearn.metrics import accuracy_score

    g, y, p, w = table.weighted_rows()
    metrics: dict[str, Any] = {"selection_rate": flm.selection_rate}
    if labelled:
        metrics.update(
            true_positive_rate=flm.true_positive_rate,
            false_positive_rate=flm.false_positive_rate,
            accuracy=accuracy_score,
        )
    frame = flm.MetricFrame(
        metrics=metrics,
        y_true=y,
        y_pred=p,
        sensitive_features=g,  # integer codes: cheapest grouping
        sample_params={k: {"sample_weight": w} for k in metrics},
    )
    by_group = frame.by_group
    has_pos = table.counts[:, 1, :].sum(axis=1) > 0
    has_neg = table.counts[:, 0, :].sum(axis=1) > 0
    if labelled:
        by_group.loc[[i for i in by_group.index if not has_pos[i]], "true_positive_rate"] = np.nan
        by_group.loc[[i for i in by_group.index if not has_neg[i]], "false_positive_rate"] = np.nan
    out: dict[str, Any] = {
        "by_group": {table.labels[int(i)]: {m: float(by_group.loc[i, m]) for m in metrics} for i in by_group.index},
    }
    if labelled and not (has_pos.all() and has_neg.all()):
        ranges = by_group.max() - by_group.min()  # pandas skips the NaN groups
    else:
        ranges = frame.difference(method="between_groups")
    out["demographic_parity_difference"] = float(ranges["selection_rate"])
    out["demographic_parity_ratio"] = float(frame.ratio(method="between_groups")["selection_rate"])
    if labelled:
        out["equal_opportunity_difference"] = float(ranges["true_positive_rate"])
        out["equalized_odds_difference"] = float(max(ranges["true_positive_rate"], ranges["false_positive_rate"]))
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
    kw: dict[str, Any] = {
        "prot_attr": "privileged",
        "priv_group": 1,
        "pos_label": 1,
        "sample_weight": w,
    }
    out = {"disparate_impact_ratio": float(am.disparate_impact_ratio(y_true, p, zero_division=np.nan, **kw))}
    if labelled:
        out["average_odds_difference"] = float(am.average_odds_difference(y_true, p, **kw))
    return out
