"""Toy text classifiers for robustness tests, loaded with ``loader: python``."""

from __future__ import annotations

import numpy as np


class _KeywordModel:
    """Label 1 when a keyword occurs in the text; the score is 0.9 or 0.1."""

    input_kind = "text"

    def __init__(self, keyword: str, case_sensitive: bool) -> None:
        self.keyword = keyword if case_sensitive else keyword.lower()
        self.case_sensitive = case_sensitive

    def _hits(self, texts: list[str]) -> np.ndarray:
        return np.array([self.keyword in (t if self.case_sensitive else t.lower()) for t in texts])

    def predict(self, texts: list[str]) -> np.ndarray:
        return self._hits(texts).astype(int)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        p = np.where(self._hits(texts), 0.9, 0.1)
        return np.column_stack([1 - p, p])


def case_sensitive() -> _KeywordModel:
    """Flags greetings only when written exactly 'Hello' (a deliberate case bug)."""
    return _KeywordModel("Hello", case_sensitive=True)


def case_insensitive() -> _KeywordModel:
    """Flags greetings whatever their case."""
    return _KeywordModel("hello", case_sensitive=False)


class _EchoGenerator:
    """A 'generative' model that answers with its prompt, lower-cased and stripped."""

    input_kind = "text"
    task = "causal-lm"

    def predict(self, texts: list[str]) -> np.ndarray:
        return np.array([" ".join(t.lower().split()) for t in texts], dtype=object)


def echo_generator() -> _EchoGenerator:
    """Generations invariant to case and whitespace, not to typos."""
    return _EchoGenerator()
