"""Perturbations as hypothesis strategies, so that hypothesis can shrink a failure.

Every perturbation is drawn as a small list of *edits* (which words, which operation,
which replacement). Hypothesis shrinks the draws toward the first word, the first
operation and the fewest edits, so a failing example shrinks to the smallest change of
the earliest row that still breaks the model. Each strategy yields a :class:`Perturbed`
that records its edits in words a reviewer can read.

Text: ``case``, ``whitespace``, ``punctuation``, ``typos``, ``synonyms``, ``names``,
``homoglyphs``. Tabular rows: ``numeric_noise`` (within a per-column tolerance) and
``category_swap`` (between values the suite declares equivalent).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

TEXT_KINDS = ("case", "whitespace", "punctuation", "typos", "synonyms", "names", "homoglyphs")
TABULAR_KINDS = ("numeric_noise", "category_swap")

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
PUNCTUATION = ".,!?;:"
WHITESPACE = (" ", "  ", "\t", "\n")
# Latin letters → Cyrillic letters drawn the same in most fonts (escaped: they are
# indistinguishable in source)
HOMOGLYPHS = {
    "a": "\u0430",
    "c": "\u0441",
    "e": "\u0435",
    "i": "\u0456",
    "o": "\u043e",
    "p": "\u0440",
    "x": "\u0445",
    "y": "\u0443",
    "A": "\u0410",
    "B": "\u0412",
    "C": "\u0421",
    "E": "\u0415",
    "H": "\u041d",
    "K": "\u041a",
    "M": "\u041c",
    "O": "\u041e",
    "P": "\u0420",
    "T": "\u0422",
    "X": "\u0425",
    "s": "\u0455",
    "j": "\u0458",
}
KEYBOARD = dict(
    zip(
        "qwertyuiopasdfghjklzxcvbnm",
        [
            "wa",
            "qes",
            "wrd",
            "etf",
            "ryg",
            "tuh",
            "yij",
            "uok",
            "ipl",
            "ol",
            "qsz",
            "awdx",
            "sefc",
            "drgv",
            "fthb",
            "gyjn",
            "hukm",
            "jil",
            "kop",
            "asx",
            "zsdc",
            "xdfv",
            "cfgb",
            "vghn",
            "bhjm",
            "njk",
        ],
        strict=True,
    )
)


@dataclass(frozen=True)
class Perturbed:
    """One perturbed input: the kind, the new value and the edits that made it."""

    kind: str
    value: Any
    edits: tuple[str, ...]


def _lines(name: str) -> list[str]:
    text = (resources.files("llmguard_checks.robustness") / "data" / name).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


@cache
def synonym_table() -> dict[str, tuple[str, ...]]:
    """word → its group of interchangeable words (from the shipped ``synonyms.txt``)."""
    table: dict[str, tuple[str, ...]] = {}
    for line in _lines("synonyms.txt"):
        group = tuple(w.strip() for w in line.split(",") if w.strip())
        for word in group:
            table.setdefault(word, group)
    return table


@cache
def name_list() -> tuple[str, ...]:
    """Personal names for name swaps (the shipped ``names.txt``)."""
    return tuple(_lines("names.txt"))


def _positions(draw: Any, n: int, max_edits: int) -> list[int]:
    picked = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=min(max_edits, n), unique=True))
    return sorted(picked)


def _replace_spans(text: str, changes: list[tuple[int, int, str]]) -> str:
    for start, end, new in sorted(changes, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    return word[:1].upper() + word[1:] if template[:1].isupper() else word


Words = list[re.Match[str]]


def _case(text: str, words: Words, max_edits: int) -> st.SearchStrategy[Perturbed] | None:
    """Lower, upper, title or swap the case of some words."""
    if not words:
        return None

    @st.composite
    def case(draw: Any) -> Perturbed:
        idx = _positions(draw, len(words), max_edits)
        mode = draw(st.sampled_from(("lower", "upper", "title", "swapcase")))
        changes = [(words[i].start(), words[i].end(), getattr(words[i].group(), mode)()) for i in idx]
        new = _replace_spans(text, changes)
        assume(new != text)
        return Perturbed("case", new, tuple(f"{mode}: {words[i].group()!r}" for i in idx))

    return case()


def _whitespace(text: str, words: Words, max_edits: int) -> st.SearchStrategy[Perturbed]:
    """Insert spaces, tabs or newlines at the ends or beside existing whitespace."""
    gaps = [0, *[m.start() for m in re.finditer(r"\s+", text)], len(text)]

    @st.composite
    def whitespace(draw: Any) -> Perturbed:
        idx = _positions(draw, len(gaps), max_edits)
        spaces = [draw(st.sampled_from(WHITESPACE)) for _ in idx]
        new = _replace_spans(text, [(gaps[i], gaps[i], s) for i, s in zip(idx, spaces, strict=True)])
        return Perturbed(
            "whitespace",
            new,
            tuple(f"insert {s!r} at {gaps[i]}" for i, s in zip(idx, spaces, strict=True)),
        )

    return whitespace()


def _punctuation(text: str, words: Words, max_edits: int) -> st.SearchStrategy[Perturbed] | None:
    """Remove punctuation marks, or insert one after some words."""
    marks = [i for i, c in enumerate(text) if c in PUNCTUATION]
    ends = [m.end() for m in words]
    if not ends and not marks:
        return None

    @st.composite
    def punctuation(draw: Any) -> Perturbed:
        ops = ["insert"] + (["remove"] if marks else []) if ends else ["remove"]
        op = draw(st.sampled_from(ops))
        if op == "remove":
            idx = _positions(draw, len(marks), max_edits)
            new = _replace_spans(text, [(marks[i], marks[i] + 1, "") for i in idx])
            return Perturbed("punctuation", new, tuple(f"remove {text[marks[i]]!r} at {marks[i]}" for i in idx))
        idx = _positions(draw, len(ends), max_edits)
        chars = [draw(st.sampled_from(tuple(PUNCTUATION))) for _ in idx]
        new = _replace_spans(text, [(ends[i], ends[i], c) for i, c in zip(idx, chars, strict=True)])
        return Perturbed(
            "punctuation",
            new,
            tuple(f"insert {c!r} after {words[i].group()!r}" for i, c in zip(idx, chars, strict=True)),
        )

    return punctuation()


def _typo(draw: Any, w: str) -> tuple[str, str]:
    """One typo inside ``w`` (the first and last letters kept): the operation and the new word."""
    op = draw(st.sampled_from(("swap", "delete", "duplicate", "neighbour")))
    j = draw(st.integers(1, len(w) - 2))
    if op == "swap":
        return op, w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    if op == "delete":
        return op, w[:j] + w[j + 1 :]
    if op == "duplicate":
        return op, w[:j] + w[j] + w[j:]
    near = KEYBOARD.get(w[j].lower(), w[j])
    return op, w[:j] + draw(st.sampled_from(tuple(near))) + w[j + 1 :]


def _typos(text: str, words: Words, max_edits: int) -> st.SearchStrategy[Perturbed] | None:
    """Swap, delete, duplicate or mistype (a keyboard neighbour) one letter of some words."""
    long_words = [m for m in words if len(m.group()) >= 4]
    if not long_words:
        return None

    @st.composite
    def typos(draw: Any) -> Perturbed:
        idx = _positions(draw, len(long_words), max_edits)
        changes, edits = [], []
        for i in idx:
            w = long_words[i].group()
            op, new_w = _typo(draw, w)
            changes.append((long_words[i].start(), long_words[i].end(), new_w))
            edits.append(f"{op}: {w!r} -> {new_w!r}")
        new = _replace_spans(text, changes)
        assume(new != text)
        return Perturbed("typos", new, tuple(edits))

    return typos()


def _word_swaps(
    kind: str, text: str, found: Words, max_edits: int, pool: Callable[[str], tuple[str, ...]], keep_case: bool
) -> st.SearchStrategy[Perturbed] | None:
    """Replace some of the ``found`` words by another word of ``pool(word)``."""
    if not found:
        return None

    @st.composite
    def swap(draw: Any) -> Perturbed:
        idx = _positions(draw, len(found), max_edits)
        changes, edits = [], []
        for i in idx:
            w = found[i].group()
            choices = tuple(c for c in pool(w) if c.lower() != w.lower())
            new_w = draw(st.sampled_from(choices))
            if keep_case:
                new_w = _match_case(w, new_w)
            changes.append((found[i].start(), found[i].end(), new_w))
            edits.append(f"{w!r} -> {new_w!r}")
        return Perturbed(kind, _replace_spans(text, changes), tuple(edits))

    return swap()


def _synonyms(
    text: str, words: Words, max_edits: int, extra_synonyms: dict[str, tuple[str, ...]]
) -> st.SearchStrategy[Perturbed] | None:
    """Replace words by a synonym (the shipped table and the suite's), keeping their case."""
    table = {**synonym_table(), **extra_synonyms}
    found = [m for m in words if m.group().lower() in table]
    return _word_swaps("synonyms", text, found, max_edits, lambda w: table[w.lower()], keep_case=True)


def _names(text: str, words: Words, max_edits: int) -> st.SearchStrategy[Perturbed] | None:
    """Replace personal names by other names of the shipped list."""
    names = set(name_list())
    found = [m for m in words if m.group() in names]
    return _word_swaps("names", text, found, max_edits, lambda w: name_list(), keep_case=False)


def _homoglyphs(text: str, words: Words, max_edits: int) -> st.SearchStrategy[Perturbed] | None:
    """Replace some Latin letters by Cyrillic letters drawn alike."""
    spots = [i for i, c in enumerate(text) if c in HOMOGLYPHS]
    if not spots:
        return None

    @st.composite
    def homoglyphs(draw: Any) -> Perturbed:
        idx = _positions(draw, len(spots), max_edits)
        new = _replace_spans(text, [(spots[i], spots[i] + 1, HOMOGLYPHS[text[spots[i]]]) for i in idx])
        return Perturbed(
            "homoglyphs",
            new,
            tuple(f"{text[spots[i]]!r} -> U+{ord(HOMOGLYPHS[text[spots[i]]]):04X} at {spots[i]}" for i in idx),
        )

    return homoglyphs()


_TEXT_STRATEGIES: dict[str, Callable[[str, Words, int], st.SearchStrategy[Perturbed] | None]] = {
    "case": _case,
    "whitespace": _whitespace,
    "punctuation": _punctuation,
    "typos": _typos,
    "names": _names,
    "homoglyphs": _homoglyphs,
}


def text_strategy(
    kind: str, text: str, max_edits: int, extra_synonyms: dict[str, tuple[str, ...]]
) -> st.SearchStrategy[Perturbed] | None:
    """Perturbations of ``kind`` for ``text``, or ``None`` when the kind cannot apply."""
    words = list(WORD.finditer(text))
    if kind == "synonyms":
        return _synonyms(text, words, max_edits, extra_synonyms)
    build = _TEXT_STRATEGIES.get(kind)
    if build is None:
        raise ValueError(f"unknown text perturbation '{kind}' (choose from {', '.join(TEXT_KINDS)})")
    return build(text, words, max_edits)


def row_strategy(
    kind: str,
    row: dict[str, Any],
    max_edits: int,
    tolerance: dict[str, tuple[float, bool]],
    equivalent: dict[str, list[list[Any]]],
) -> st.SearchStrategy[Perturbed] | None:
    """Perturbations of a tabular row; ``tolerance`` maps column → (± bound, integer?)."""
    if kind == "numeric_noise":
        cols = [c for c, (tol, is_int) in tolerance.items() if c in row and (tol >= 1 if is_int else tol > 0)]
        if not cols:
            return None

        @st.composite
        def noise(draw: Any) -> Perturbed:
            idx = _positions(draw, len(cols), max_edits)
            new = dict(row)
            edits = []
            for i in idx:
                col = cols[i]
                tol, is_int = tolerance[col]
                delta = (
                    draw(st.integers(-int(tol), int(tol)))
                    if is_int
                    else draw(st.floats(-tol, tol, allow_nan=False, allow_infinity=False))
                )
                new[col] = row[col] + delta
                edits.append(f"{col}: {row[col]!r} -> {new[col]!r} ({delta:+g})")
            assume(new != row)
            return Perturbed(kind, new, tuple(edits))

        return noise()
    if kind == "category_swap":
        options = {}
        for col, groups in equivalent.items():
            for group in groups:
                if col in row and row[col] in group and len(group) > 1:
                    options[col] = tuple(v for v in group if v != row[col])
        cols = sorted(options)
        if not cols:
            return None

        @st.composite
        def swap(draw: Any) -> Perturbed:
            idx = _positions(draw, len(cols), max_edits)
            new = dict(row)
            for i in idx:
                new[cols[i]] = draw(st.sampled_from(options[cols[i]]))
            return Perturbed(kind, new, tuple(f"{cols[i]}: {row[cols[i]]!r} -> {new[cols[i]]!r}" for i in idx))

        return swap()
    raise ValueError(f"unknown tabular perturbation '{kind}' (choose from {', '.join(TABULAR_KINDS)})")


def examples(
    rows: list[int], per_row: Callable[[int], list[st.SearchStrategy[Perturbed]]]
) -> st.SearchStrategy[tuple[int, Perturbed]]:
    """(row, perturbation) pairs: hypothesis picks a row, then one applicable perturbation."""
    usable = [r for r in rows if per_row(r)]
    if not usable:
        raise ValueError("no perturbation applies to any sampled row")

    def for_row(r: int) -> st.SearchStrategy[tuple[int, Perturbed]]:
        return st.one_of(per_row(r)).map(lambda p: (r, p))

    return st.sampled_from(usable).flatmap(for_row)
