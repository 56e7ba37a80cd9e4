"""PNG plots of attributions for the HTML report (matplotlib's Agg backend, lazily).

Checks run in a worker thread and pyplot keeps global state, so drawing is serialised
by a lock and every figure is closed after saving.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import ModuleType

import numpy as np

_LOCK = threading.Lock()


def _pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")  # no display in CI; must precede the pyplot import
    import matplotlib.pyplot as plt

    return plt


def importance_bar(
    path: Path,
    features: list[str],
    imp: np.ndarray,
    title: str,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    baseline: np.ndarray | None = None,
    max_display: int = 15,
    xlabel: str = "mean |SHAP value|",
) -> Path:
    """Horizontal bars of mean |SHAP| (with interval whiskers and the baseline, if given)."""
    order = np.argsort(-imp, kind="stable")[:max_display][::-1]
    with _LOCK:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(order) + 1.4))
        try:
            y = np.arange(len(order))
            height = 0.4 if baseline is not None else 0.7
            err = None
            if low is not None and high is not None:
                err = np.vstack([imp[order] - low[order], high[order] - imp[order]]).clip(min=0)
            ax.barh(
                y + (height / 2 if baseline is not None else 0),
                imp[order],
                height,
                xerr=err,
                color="#1f77b4",
                label="candidate",
                capsize=2,
            )
            if baseline is not None:
                ax.barh(y - height / 2, baseline[order], height, color="#aaaaaa", label="baseline")
                ax.legend(loc="lower right")
            ax.set_yticks(y, [features[i] for i in order])
            ax.set_xlabel(xlabel)
            ax.set_title(title)
            fig.tight_layout()
            fig.savefig(path, dpi=110)
        finally:
            plt.close(fig)
    return path


def beeswarm(
    path: Path,
    values: np.ndarray,
    data: np.ndarray,
    features: list[str],
    title: str,
    max_display: int = 15,
) -> Path:
    """shap's beeswarm: one dot per row and feature, coloured by the feature's value."""
    import warnings

    import shap

    with _LOCK, warnings.catch_warnings():
        # categorical columns carry NaN values (drawn grey); shap's colour scaling warns on them
        warnings.simplefilter("ignore", RuntimeWarning)
        plt = _pyplot()
        explanation = shap.Explanation(values=values, data=data, feature_names=features)
        try:
            shap.plots.beeswarm(explanation, max_display=max_display, show=False)
            fig = plt.gcf()
            fig.suptitle(title)
            fig.tight_layout()
            fig.savefig(path, dpi=110)
        finally:
            plt.close("all")
    return path
