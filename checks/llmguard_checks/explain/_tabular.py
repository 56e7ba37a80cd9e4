"""SHAP attributions of tabular models, per source feature.

The explainer follows the model:

* a scikit-learn ``Pipeline`` whose preprocessing maps every output column back to one
  input column (``ColumnTransformer`` of scalers, imputers, one-hot encoders, ...) is
  explained on its *final estimator*, in the transformed space, with the exact explainer
  of that estimator; the attributions of the columns born of one source feature (the
  one-hot columns of ``employment``) are summed back into that feature. SHAP values are
  additive, so the sum is that feature's share of the output and additivity still holds;
* trees (scikit-learn trees and forests, gradient boosting, XGBoost, LightGBM, CatBoost)
  → ``shap.TreeExplainer`` (path-dependent: no background needed, exact);
* linear models (``coef_``/``intercept_``) → ``shap.LinearExplainer`` over an
  independent background sample;
* anything else → ``shap.PermutationExplainer`` on the raw feature frame (categories
  coded as integers and decoded before each model call), with the sample, background
  and evaluation budgets of the suite.

Everything returns an :class:`Attribution`: values ``(rows, features, outputs)`` plus
the base values and the model output they must add up to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

TREE_MODULES = ("sklearn.tree", "sklearn.ensemble", "xgboost", "lightgbm", "catboost")
TREE_NAMES = ("Tree", "Forest", "Boosting", "XGB", "LGBM", "CatBoost")


@dataclass
class Attribution:
    """Attributions of one model on some rows, summed to source features."""

    features: list[str]
    values: np.ndarray  # (n, f, k)
    base: np.ndarray  # (n, k)
    output: np.ndarray  # (n, k): the model output the values explain
    outputs: list[str]  # names of the k explained outputs
    explainer: str
    output_space: str
    data: pd.DataFrame  # the explained rows, source features
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def additivity_error(self) -> float:
        """max |base + sum(values) - output| over rows and outputs."""
        return float(np.max(np.abs(self.base + self.values.sum(axis=1) - self.output)))

    def abs_values(self) -> np.ndarray:
        """``(n, f)``: |SHAP| summed over the explained outputs."""
        out: np.ndarray = np.abs(self.values).sum(axis=2)
        return out


@dataclass(frozen=True)
class Budget:
    """Sample, background and evaluation budgets (recorded in the report)."""

    background: int
    max_evals: int | None
    time_limit_s: float | None
    batch_rows: int = 50


def _as_3d(values: np.ndarray, base: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=float)
    if values.ndim == 2:
        values = values[:, :, None]
    base_arr = np.asarray(base, dtype=float)
    if base_arr.ndim == 0:
        base_arr = np.full((n, values.shape[2]), float(base_arr))
    elif base_arr.ndim == 1:
        base_arr = base_arr[:, None] if base_arr.shape[0] == n else np.tile(base_arr, (n, 1))
    return values, base_arr


def _as_2d(output: Any) -> np.ndarray:
    arr = np.asarray(output, dtype=float)
    return arr[:, None] if arr.ndim == 1 else arr


# -- mapping pipeline columns back to source features ----------------------------------


def _column_names(cols: Any, inputs: list[str]) -> list[str] | None:
    if isinstance(cols, str):
        return [cols]
    if callable(cols) or isinstance(cols, slice):
        return None
    items = list(np.asarray(cols).tolist()) if not isinstance(cols, list) else cols
    if all(isinstance(c, str) for c in items):
        return [str(c) for c in items]
    if all(isinstance(c, bool) for c in items):
        return [inputs[i] for i, keep in enumerate(items) if keep]
    if all(isinstance(c, int) for c in items):
        return [inputs[i] for i in items]
    return None


def source_groups(transformer: Any, inputs: list[str]) -> list[int] | None:
    """For each output column of a fitted transformer, the index of its one input column.

    ``None`` when some output mixes several inputs (PCA, polynomial features) or the
    mapping cannot be read: such pipelines are explained model-agnostically instead.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(transformer, Pipeline):
        current: list[int] | None = list(range(len(inputs)))
        names = list(inputs)
        for _, step in transformer.steps:
            if step in (None, "passthrough"):
                continue
            sub = source_groups(step, names)
            if sub is None or current is None:
                return None
            current = [current[j] for j in sub]
            try:  # later steps are fitted on the names this step produces
                names = [str(n) for n in step.get_feature_names_out(names)]
            except Exception:
                names = [f"x{i}" for i in range(len(sub))]
        return current
    if isinstance(transformer, ColumnTransformer):
        width = max((s.stop for s in transformer.output_indices_.values()), default=0)
        out: list[int | None] = [None] * width
        for name, trans, cols in transformer.transformers_:
            if trans == "drop":
                continue
            selected = _column_names(cols, inputs)
            if selected is None:
                return None
            sl = transformer.output_indices_[name]
            sub = list(range(len(selected))) if trans == "passthrough" else source_groups(trans, selected)
            if sub is None or len(sub) != sl.stop - sl.start:
                return None
            for j, k in enumerate(sub):
                out[sl.start + j] = inputs.index(selected[k])
        return None if any(o is None for o in out) else [int(o) for o in out if o is not None]
    try:
        produced = [str(n) for n in transformer.get_feature_names_out(inputs)]
    except Exception:
        return None
    if produced == inputs:
        return list(range(len(inputs)))
    groups = []
    for name in produced:
        owners = [i for i, c in enumerate(inputs) if name == c or name.startswith(c + "_")]
        if not owners:
            return None
        groups.append(max(owners, key=lambda i: len(inputs[i])))  # longest prefix wins
    return groups


def _sum_groups(values: np.ndarray, groups: list[int], n_sources: int) -> np.ndarray:
    out = np.zeros((values.shape[0], n_sources, values.shape[2]))
    for column, source in enumerate(groups):
        out[:, source, :] += values[:, column, :]
    return out


# -- choosing the explainer -------------------------------------------------------------


def model_family(est: Any) -> str:
    """``tree``, ``linear`` or ``other`` for a fitted estimator."""
    module = type(est).__module__
    name = type(est).__name__
    if module.startswith(TREE_MODULES) and any(t in name for t in TREE_NAMES):
        return "tree"
    if hasattr(est, "coef_") and hasattr(est, "intercept_"):
        return "linear"
    return "other"


def _raw_output(est: Any, z: np.ndarray) -> tuple[np.ndarray, str]:
    """The output TreeExplainer/LinearExplainer explain for ``est`` ("raw" output)."""
    names = getattr(est, "feature_names_in_", None)
    if names is not None and len(names) == z.shape[1]:  # fitted on named columns: call it so
        z = pd.DataFrame(z, columns=list(names))
    if hasattr(est, "decision_function"):
        return _as_2d(est.decision_function(z)), "decision_function (log-odds for classifiers)"
    if hasattr(est, "predict_proba"):
        return _as_2d(est.predict_proba(z)), "probability"
    return _as_2d(est.predict(z)), "prediction"


def _select_output(
    values: np.ndarray,
    base: np.ndarray,
    output: np.ndarray,
    classes: list[str],
    class_index: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Keep one class column of a multi-output explanation (the positive class of a binary)."""
    k = values.shape[2]
    if k == 1:
        label = classes[-1] if len(classes) == 2 else (classes[0] if classes else "output")
        return values, base, output, [label]
    index = class_index if class_index is not None else (1 if k == 2 else None)
    if index is None:
        return values, base, output, classes if len(classes) == k else [str(i) for i in range(k)]
    sel = slice(index, index + 1)
    return (
        values[:, :, sel],
        base[:, sel],
        output[:, sel],
        [classes[index] if classes else str(index)],
    )


def _classes(est: Any) -> list[str]:
    return [str(c) for c in getattr(est, "classes_", [])]


def explain_tabular(
    model: Any,
    frame: pd.DataFrame,
    background: pd.DataFrame,
    feed: Callable[[pd.DataFrame], Any],
    budget: Budget,
    explainer: str,
    class_index: int | None,
    seed: int,
) -> Attribution:
    """Attributions of ``model`` on the rows of ``frame`` (its own feature columns)."""
    from sklearn.pipeline import Pipeline

    features = [str(c) for c in frame.columns]
    start = time.perf_counter()
    notes: list[str] = []
    prep, est = None, model
    if isinstance(model, Pipeline) and len(model.steps) > 1:
        prep, est = model[:-1], model.steps[-1][1]
    family = model_family(est)
    wanted = explainer if explainer != "auto" else family
    groups = None
    if prep is not None and wanted in ("tree", "linear"):
        groups = source_groups(prep, features)
        if groups is None:
            if explainer != "auto":
                raise ValueError(
                    f"explainer '{explainer}': the pipeline's preprocessing mixes input columns, "
                    "so its attributions cannot be summed back to features; use 'permutation'"
                )
            notes.append("preprocessing mixes input columns: explained model-agnostically on raw features")
            wanted = "permutation"
    if wanted in ("tree", "linear"):
        if explainer != "auto" and family != wanted:
            raise ValueError(f"explainer '{explainer}' does not fit a {type(est).__name__}")
        try:
            attr = _explain_exact(est, prep, wanted, frame, background, feed, groups, class_index)
        except Exception as exc:
            if explainer != "auto":
                raise
            # e.g. a tree ensemble shap's TreeExplainer cannot read (AdaBoost)
            notes.append(f"{wanted} explainer unavailable ({type(exc).__name__}: {exc}); explained model-agnostically")
        else:
            attr.notes[:0] = notes
            attr.seconds = time.perf_counter() - start
            return attr
    return _explain_agnostic(model, frame, background, feed, budget, class_index, seed, notes, start)


def _explain_exact(
    est: Any,
    prep: Any,
    wanted: str,
    frame: pd.DataFrame,
    background: pd.DataFrame,
    feed: Callable[[pd.DataFrame], Any],
    groups: list[int] | None,
    class_index: int | None,
) -> Attribution:
    """Tree or Linear explainer on the final estimator; derived columns summed back."""
    import shap

    features = [str(c) for c in frame.columns]
    z = _dense(prep.transform(feed(frame)) if prep is not None else feed(frame))
    if wanted == "tree":
        exp = shap.TreeExplainer(est, feature_perturbation="tree_path_dependent")(z, check_additivity=False)
        name = "TreeExplainer (tree_path_dependent)"
    else:
        zb = _dense(prep.transform(feed(background)) if prep is not None else feed(background))
        exp = shap.LinearExplainer(est, shap.maskers.Independent(zb, max_samples=len(zb)))(z)
        name = f"LinearExplainer (interventional, {len(zb)} background rows)"
    values, base = _as_3d(exp.values, exp.base_values, len(z))
    output, space = _raw_output(est, z)
    if values.shape[2] != output.shape[1]:  # e.g. a binary linear model: one margin
        output = output[:, -1:] if output.shape[1] > values.shape[2] else output
    if groups is not None:
        values = _sum_groups(values, groups, len(features))
        name += ", one-hot and other derived columns summed to their source feature"
    values, base, output, outs = _select_output(values, base, output, _classes(est), class_index)
    return Attribution(features, values, base, output, outs, name, space, frame.reset_index(drop=True))


def _dense(x: Any) -> np.ndarray:
    if hasattr(x, "toarray"):
        x = x.toarray()
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    return np.asarray(x, dtype=float)


class CategoryCodec:
    """Categorical columns as integer codes, so model-agnostic explainers can mix rows.

    ``encode`` turns a frame into a float matrix; ``decode`` turns such a matrix back into
    a frame with the original categories and dtypes, before every model call.
    """

    def __init__(self, frame: pd.DataFrame, background: pd.DataFrame) -> None:
        self.features = [str(c) for c in frame.columns]
        self.dtypes = {c: frame[c].dtype for c in self.features}
        self.codes: dict[str, list[Any]] = {}
        for col in self.features:
            if not pd.api.types.is_numeric_dtype(frame[col]):
                self.codes[col] = sorted(
                    set(frame[col].dropna().tolist()) | set(background[col].dropna().tolist()),
                    key=str,
                )

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        out = df.copy()
        for col, cats in self.codes.items():
            out[col] = out[col].map({c: i for i, c in enumerate(cats)}).astype(float)
        encoded: np.ndarray = out.to_numpy(dtype=float)
        return encoded

    def decode(self, x: np.ndarray) -> pd.DataFrame:
        df = pd.DataFrame(x, columns=self.features)
        for col, cats in self.codes.items():
            df[col] = np.asarray(cats, dtype=object)[df[col].to_numpy().astype(int)]
        for col in self.features:
            if col not in self.codes:
                df[col] = df[col].astype(self.dtypes[col])
        return df


def _explain_agnostic(
    model: Any,
    frame: pd.DataFrame,
    background: pd.DataFrame,
    feed: Callable[[pd.DataFrame], Any],
    budget: Budget,
    class_index: int | None,
    seed: int,
    notes: list[str],
    start: float,
) -> Attribution:
    import shap

    features = [str(c) for c in frame.columns]
    codec = CategoryCodec(frame, background)
    encode, decode = codec.encode, codec.decode
    classes = _classes(model)
    proba = hasattr(model, "predict_proba")

    def f(x: np.ndarray) -> np.ndarray:
        inputs = feed(decode(x))
        return _as_2d(model.predict_proba(inputs) if proba else model.predict(inputs))

    bg = encode(background)
    # one antithetic permutation costs 2f+1 calls; by default ten of them per row
    max_evals = budget.max_evals or 10 * (2 * len(features) + 1)
    explainer = shap.PermutationExplainer(f, shap.maskers.Independent(bg, max_samples=len(bg)), seed=seed)
    x = encode(frame)
    parts = []
    done = 0
    while done < len(x):
        batch = x[done : done + budget.batch_rows]
        parts.append(explainer(batch, max_evals=max_evals, silent=True))
        done += len(batch)
        if budget.time_limit_s is not None and time.perf_counter() - start > budget.time_limit_s and done < len(x):
            notes.append(f"time limit {budget.time_limit_s:g}s reached: explained {done} of {len(x)} rows")
            break
    values = np.concatenate([np.asarray(p.values, dtype=float) for p in parts])
    base_values = np.concatenate([np.asarray(p.base_values, dtype=float) for p in parts])
    values, base = _as_3d(values, base_values, len(values))
    output = f(x[:done])
    values, base, output, outs = _select_output(values, base, output, classes, class_index)
    space = "probability" if proba else "prediction"
    name = f"PermutationExplainer ({max_evals} evaluations per row, {len(bg)} background rows)"
    return Attribution(
        features,
        values,
        base,
        output,
        outs,
        name,
        space,
        frame.iloc[:done].reset_index(drop=True),
        notes,
        time.perf_counter() - start,
    )
