"""Token attributions of text classifiers through shap's text masker.

The model is called on the texts shap builds by masking tokens (``shap.maskers.Text``
over the model's own tokenizer; the explainer shap picks for it is the Partition
explainer, which respects the token hierarchy). The explained output is the class
probability. Global importance of a token is its |SHAP| summed within a text and
averaged over the explained texts (a text without the token contributes 0), the text
analogue of mean |SHAP| per feature.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._tabular import Budget


@dataclass
class TextAttribution:
    """Per-text token attributions of one explained output, and their global view."""

    texts: list[str]
    tokens: list[list[str]]
    values: list[np.ndarray]  # per text: (tokens,)
    base: np.ndarray  # (n,)
    output: np.ndarray  # (n,)
    output_name: str
    explainer: str
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def additivity_error(self) -> float:
        sums = np.array([v.sum() for v in self.values])
        return float(np.max(np.abs(self.base + sums - self.output)))

    def vocabulary(self) -> list[str]:
        return list(dict.fromkeys(t for toks in self.tokens for t in toks))

    def abs_matrix(self, vocabulary: list[str] | None = None) -> tuple[list[str], np.ndarray]:
        """``(texts, tokens)``: |SHAP| of each token summed within each text."""
        vocab = vocabulary or self.vocabulary()
        index = {t: j for j, t in enumerate(vocab)}
        out = np.zeros((len(self.texts), len(vocab)))
        for i, (toks, vals) in enumerate(zip(self.tokens, self.values, strict=True)):
            for tok, v in zip(toks, vals, strict=True):
                if tok in index:
                    out[i, index[tok]] += abs(v)
        return vocab, out


def explain_text(model: Any, texts: list[str], budget: Budget, class_index: int | None, seed: int) -> TextAttribution:
    """Token attributions of a ``TransformersModel`` sequence classifier on ``texts``."""
    import shap

    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None or not hasattr(model, "predict_proba"):
        raise ValueError(f"text attributions need a classifier with a tokenizer, not {type(model).__name__}")
    start = time.perf_counter()

    def f(x: Any) -> np.ndarray:
        return np.asarray(model.predict_proba([str(t) for t in x]), dtype=float)

    explainer = shap.Explainer(f, shap.maskers.Text(tokenizer), seed=seed)
    max_evals = budget.max_evals or 200
    notes: list[str] = []
    tokens: list[list[str]] = []
    values: list[np.ndarray] = []
    bases: list[np.ndarray] = []
    done = 0
    while done < len(texts):
        batch = texts[done : done + budget.batch_rows]
        exp = explainer(np.array(batch, dtype=object), max_evals=max_evals, silent=True)
        for i in range(len(batch)):
            tokens.append([str(t).strip() for t in exp.data[i]])
            values.append(np.asarray(exp.values[i], dtype=float))
            bases.append(np.atleast_1d(np.asarray(exp.base_values[i], dtype=float)))
        done += len(batch)
        if budget.time_limit_s is not None and time.perf_counter() - start > budget.time_limit_s and done < len(texts):
            notes.append(f"time limit {budget.time_limit_s:g}s reached: {done} of {len(texts)} done")
            break
    output = f(texts[:done])
    k = output.shape[1]
    index = class_index if class_index is not None else (1 if k == 2 else int(np.argmax(output.mean(axis=0))))
    if not 0 <= index < k:
        raise ValueError(f"class index {index} is out of range for a model with {k} outputs")
    sel_values = [v[:, index] if v.ndim == 2 else v for v in values]
    # special tokens ([CLS], [SEP]) come back as empty strings with zero attribution
    kept = [([t for t in toks if t], v[[bool(t) for t in toks]]) for toks, v in zip(tokens, sel_values, strict=True)]
    labels = getattr(getattr(model, "model", None), "config", None)
    names = getattr(labels, "id2label", None) or {}
    return TextAttribution(
        texts=list(texts[:done]),
        tokens=[k_[0] for k_ in kept],
        values=[k_[1] for k_ in kept],
        base=np.array([b[index] if b.shape[0] > index else b[0] for b in bases]),
        output=output[:, index],
        output_name=str(names.get(index, index)),
        explainer=f"{type(explainer).__name__} over shap.maskers.Text ({max_evals} evaluations per text)",
        notes=notes,
        seconds=time.perf_counter() - start,
    )
