"""Judges over generated answers: pairwise preference and pass/fail verdicts.

**Pairwise** (MT-Bench style, Zheng et al. 2023): the judge sees the question and two
answers and replies ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie). Every pair is judged twice,
candidate first and baseline first. A pair counts as a win (loss, tie) only when both
orders agree; ``position_bias`` is the share of pairs where the judge chose the same
*position* in both orders (a judge that always says "the first" scores 1 and yields no
wins and no losses), and ``inconsistent_rate`` the share whose two verdicts disagree.

**Verdict** (``pass: {kind: judge}``): the judge replies ``PASS`` or ``FAIL`` for one
answer against its reference; ``judge_repeats`` > 1 asks again with fresh samples
(``judge_consistency``: share of items whose verdicts all agree). With a column of human
labels, ``judge_agreement`` is Cohen's kappa between the judge's verdict and the humans.

Judges are suite models called through :meth:`CheckContext.chat`, so their answers are
cached under (judge digest, prompt, generation config, seed, sample index).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

PAIRWISE_SYSTEM = (
    "You are an impartial judge. Compare two answers to the user's question and decide which is better: "
    "more correct, helpful and concise. Do not let the order or the length of the answers sway you. "
    'Reply with "[[A]]" if answer A is better, "[[B]]" if answer B is better, "[[C]]" for a tie.'
)
VERDICT_SYSTEM = (
    "You grade an answer against the reference answer. Reply PASS if the answer is correct, FAIL otherwise."
)


def pairwise_conversation(question: str, first: str, second: str, reference: str | None) -> list[dict[str, str]]:
    ref = f"[Reference answer]\n{reference}\n\n" if reference else ""
    user = f"[Question]\n{question}\n\n{ref}[Answer A]\n{first}\n\n[Answer B]\n{second}\n\nYour verdict:"
    return [{"role": "system", "content": PAIRWISE_SYSTEM}, {"role": "user", "content": user}]


def verdict_conversation(question: str, answer: str, reference: str | None) -> list[dict[str, str]]:
    user = f"[Question]\n{question}\n\n[Reference answer]\n{reference or ''}\n\n[Answer]\n{answer}\n\nGrade:"
    return [{"role": "system", "content": VERDICT_SYSTEM}, {"role": "user", "content": user}]


_PAIR = re.compile(r"\[\[\s*([ABC])\s*\]\]", re.IGNORECASE)
_BARE = re.compile(r"^\W*(A|B|C|tie)\b", re.IGNORECASE)


def parse_preference(text: str) -> str | None:
    """``"A"``, ``"B"``, ``"C"`` (tie) from a judge's answer, or None when it gave none."""
    m = _PAIR.search(text or "") or _BARE.search(text or "")
    if m is None:
        return None
    v = m.group(1).upper()
    return "C" if v == "TIE" else v


def parse_verdict(text: str) -> bool | None:
    """True for PASS, False for FAIL (the first one written), None when neither."""
    m = re.search(r"\b(PASS|FAIL)\b", text or "", re.IGNORECASE)
    return None if m is None else m.group(1).upper() == "PASS"


@dataclass
class PairwiseTally:
    """Per-item outcomes of a two-order pairwise judgement."""

    outcome: np.ndarray  # +1 win, -1 loss, 0 tie, nan inconsistent or unparsed
    same_position: np.ndarray  # 1 when the judge picked the same slot in both orders
    unparsed: int


def tally(candidate_first: list[str | None], baseline_first: list[str | None]) -> PairwiseTally:
    """Combine the verdicts of both orders (A = first slot)."""
    n = len(candidate_first)
    outcome = np.full(n, np.nan)
    same = np.zeros(n)
    unparsed = 0
    for i, (a, b) in enumerate(zip(candidate_first, baseline_first, strict=True)):
        if a is None or b is None:
            unparsed += 1
            continue
        # in the first order the candidate is A; in the second it is B
        cand_1 = {"A": 1, "B": -1, "C": 0}[a]
        cand_2 = {"B": 1, "A": -1, "C": 0}[b]
        if a == b and a != "C":
            same[i] = 1.0
        if cand_1 == cand_2:
            outcome[i] = cand_1
    return PairwiseTally(outcome, same, unparsed)


__all__ = [
    "PairwiseTally",
    "pairwise_conversation",
    "parse_preference",
    "parse_verdict",
    "tally",
    "verdict_conversation",
]
