"""Reference-based text metrics: exact match and token F1 with SQuAD normalisation.

Normalisation as in the SQuAD v1.1 evaluation script: lower-case, drop punctuation,
drop the articles *a*, *an*, *the*, collapse whitespace. Token F1 is the harmonic mean
of precision and recall of the bag of normalised tokens; an answer and a reference
that both normalise to nothing score 1.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize(text: str) -> str:
    """SQuAD answer normalisation."""
    text = "".join(ch for ch in str(text).lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when both normalise to the same string."""
    return float(normalize(prediction) == normalize(reference))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token-level F1 between the normalised strings."""
    pred, ref = normalize(prediction).split(), normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)
