"""LIME explanations (the ``lime`` package) as :class:`Attribution` / :class:`TextAttribution`.

One explainer, seeded with the run's seed, explains the sampled rows in order: the values
are exactly what ``lime`` itself returns for that seed and order (the tests compare them).

* tabular: ``lime.lime_tabular.LimeTabularExplainer`` over the background rows
  (categorical columns coded as integers and declared as categorical, decoded before
  every model call), every feature in the explanation (``num_features`` = all),
  ``num_samples`` perturbations per row, the explained class's probability (regressors:
  the prediction);
* text: ``lime.lime_text.LimeTextExplainer`` (bag of words), ``num_samples``
  perturbed texts per text.

The intercept is kept as the base value and LIME's local prediction as the output, so
``base + Σ values = output`` holds for the local surrogate; its R² on the perturbed
sample (``explanation.score``) is the fidelity LIME reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ._tabular import Attribution, CategoryCodec, _as_2d, _classes
from ._text import TextAttribution


def explain_tabular_lime(
    model: Any,
    frame: pd.DataFrame,
    background: pd.DataFrame,
    feed: Callable[[pd.DataFrame], Any],
    num_samples: int,
    class_index: int | None,
    seed: int,
    time_limit_s: float | None,
    discretize_continuous: bool = True,
) -> tuple[Attribution, np.ndarray]:
    """LIME weights of every feature on every row; with each row's local-fit R²."""

    start = time.perf_counter()
    features = [str(c) for c in frame.columns]
    codec = CategoryCodec(frame, background)
    classify = hasattr(model, "predict_proba")
    classes = _classes(model)

    def f(x: np.ndarray) -> np.ndarray:
        inputs = feed(codec.decode(x))
        return _as_2d(model.predict_proba(inputs) if classify else model.predict(inputs))

    x = codec.encode(frame)
    explainer = make_tabular_explainer(codec.encode(background), features, codec, classify, seed, discretize_continuous)
    k = f(x[:1]).shape[1] if classify else 1
    label = class_index if class_index is not None else (1 if k == 2 else 0)
    values, base, local, fit = [], [], [], []
    notes: list[str] = []
    for i, row in enumerate(x):
        exp = explainer.explain_instance(
            row,
            f if classify else (lambda z: f(z)[:, 0]),
            labels=(label,),
            num_features=len(features),
            num_samples=num_samples,
        )
        key = label if classify else 0
        w = np.zeros(len(features))
        for j, weight in exp.as_map()[key if classify else 1]:
            w[j] = weight
        values.append(w)
        base.append(float(exp.intercept[key if classify else 1]))
        local.append(float(np.atleast_1d(exp.local_pred)[0]))
        fit.append(float(exp.score))
        if time_limit_s is not None and time.perf_counter() - start > time_limit_s and i + 1 < len(x):
            notes.append(f"time limit {time_limit_s:g}s reached: explained {i + 1} of {len(x)} rows")
            break
    done = len(values)
    name = classes[label] if classify and classes else ("prediction" if not classify else str(label))
    attr = Attribution(
        features,
        np.asarray(values)[:, :, None],
        np.asarray(base)[:, None],
        np.asarray(local)[:, None],
        [str(name)],
        f"LimeTabularExplainer ({num_samples} samples per row, {len(background)} training rows, "
        f"{'quartile-discretised' if discretize_continuous else 'standardised'} continuous features)",
        "probability" if classify else "prediction",
        frame.iloc[:done].reset_index(drop=True),
        notes,
        time.perf_counter() - start,
    )
    return attr, np.asarray(fit)


def make_tabular_explainer(
    training: np.ndarray,
    features: list[str],
    codec: CategoryCodec,
    classify: bool,
    seed: int,
    discretize_continuous: bool = True,
) -> Any:
    """The ``LimeTabularExplainer`` the check uses (also built by the tests, as the oracle)."""
    from lime.lime_tabular import LimeTabularExplainer

    categorical = [j for j, c in enumerate(features) if c in codec.codes]
    return LimeTabularExplainer(
        training,
        mode="classification" if classify else "regression",
        feature_names=features,
        categorical_features=categorical,
        categorical_names={j: [str(v) for v in codec.codes[features[j]]] for j in categorical},
        discretize_continuous=discretize_continuous,
        random_state=seed,
    )


def explain_text_lime(
    model: Any,
    texts: list[str],
    num_samples: int,
    class_index: int | None,
    seed: int,
    time_limit_s: float | None,
) -> tuple[TextAttribution, np.ndarray]:
    """LIME word weights of a text classifier on ``texts``; with each text's local-fit R²."""
    from lime.lime_text import LimeTextExplainer

    if not hasattr(model, "predict_proba"):
        raise ValueError(f"LIME text explanations need a classifier, not {type(model).__name__}")
    start = time.perf_counter()

    def f(batch: list[str]) -> np.ndarray:
        return np.asarray(model.predict_proba([str(t) for t in batch]), dtype=float)

    k = f(texts[:1]).shape[1]
    label = class_index if class_index is not None else (1 if k == 2 else 0)
    explainer = LimeTextExplainer(random_state=seed)
    tokens, values, base, local, fit = [], [], [], [], []
    notes: list[str] = []
    for i, text in enumerate(texts):
        exp = explainer.explain_instance(text, f, labels=(label,), num_features=10_000, num_samples=num_samples)
        pairs = exp.as_list(label=label)
        tokens.append([str(t) for t, _ in pairs])
        values.append(np.asarray([w for _, w in pairs], dtype=float))
        base.append(float(exp.intercept[label]))
        local.append(float(np.atleast_1d(exp.local_pred)[0]))
        fit.append(float(exp.score))
        if time_limit_s is not None and time.perf_counter() - start > time_limit_s and i + 1 < len(texts):
            notes.append(f"time limit {time_limit_s:g}s reached: {i + 1} of {len(texts)} done")
            break
    config = getattr(getattr(model, "model", None), "config", None)
    names = getattr(config, "id2label", None) or {}
    attr = TextAttribution(
        texts=list(texts[: len(values)]),
        tokens=tokens,
        values=values,
        base=np.asarray(base),
        output=np.asarray(local),
        output_name=str(names.get(label, label)),
        explainer=f"LimeTextExplainer (bag of words, {num_samples} samples per text)",
        notes=notes,
        seconds=time.perf_counter() - start,
    )
    return attr, np.asarray(fit)
