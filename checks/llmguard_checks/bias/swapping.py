"""Counterfactual rewriting of a text: terms, names and pronouns swapped between two groups.

``swap_text("a man reset her password", {"gender": ("male", "female")}, lexicon)`` gives
"a woman reset his password": every term, name and pronoun of either group is replaced by
its aligned counterpart of the other (a swap is symmetric, so a text that mentions both
groups stays consistent), several axes at once when asked.

Pronouns carry grammatical roles, and two forms are ambiguous:

* *her* is an object (*him*, *them*) or a possessive determiner (*his*, *their*): it is a
  determiner when the next word can be what it determines, i.e. is not punctuation, the
  end of the text, or a function word (article, preposition, conjunction, pronoun,
  adverb in -ly) — "reset her password" → *his*, "told her that" → *him*;
* *his* is a possessive determiner (*her*, *their*) or a possessive pronoun (*hers*,
  *theirs*), decided the same way — "his car" → *her car*, "the car is his." → *hers*.

Verb agreement for singular *they* is fixed for the auxiliaries directly after the
subject (*he is* ↔ *they are*, was/were, has/have, does/do and their negations); other
verbs ("he resets" / "they reset") and inverted questions ("does he …") are left as they
are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ROLES = ("subject", "object", "determiner", "possessive", "reflexive")

# words after which an ambiguous her/his is not a determiner
_FUNCTION_TEXT = """a an the this that these those some any no every each my your his her its our their
    to for with at in on about from by of into onto up down out off over back away again
    through after before than as and or but nor so yet because if when while although
    though until unless since whether that which who whom whose what where why how
    i me you he him she they them we us it is are was were be been being am has have had
    do does did will would shall should can could may might must not too also very
    then there here now today tomorrow yesterday"""
_FUNCTION_WORDS = frozenset(_FUNCTION_TEXT.split())
_SINGULAR = {
    "is": "are", "was": "were", "has": "have", "does": "do",
    "isn't": "aren't", "wasn't": "weren't", "hasn't": "haven't", "doesn't": "don't",
}  # fmt: skip
_PLURAL = {v: k for k, v in _SINGULAR.items()}
_NEXT_WORD = re.compile(r"\s*([A-Za-z][\w'-]*)")


@dataclass
class Lexicon:
    """Aligned terms and names per axis and group, and pronoun forms per group."""

    terms: dict[str, dict[str, list[str]]]
    names: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    pronouns: dict[str, dict[str, str]] = field(default_factory=dict)  # group -> role -> form
    pronoun_axis: str = "gender"

    def words(self, axis: str, group: str) -> list[str]:
        return [*self.terms.get(axis, {}).get(group, []), *self.names.get(axis, {}).get(group, [])]

    def aligned(self, axis: str, a: str, b: str) -> list[tuple[str, str]]:
        """Aligned (term of a, term of b) pairs: terms, and names where both groups have some."""
        out: list[tuple[str, str]] = []
        for source in (self.terms, self.names):
            la, lb = source.get(axis, {}).get(a, []), source.get(axis, {}).get(b, [])
            if la and lb:
                if len(la) != len(lb):
                    raise ValueError(f"axis '{axis}': the lists of {a} and {b} are not aligned")
                out += list(zip(la, lb, strict=True))
        return out


def _like(found: str, listed: str, target: str) -> str:
    """``target`` as listed, upper-cased or capitalised where ``found`` was but ``listed`` is not
    (a term at the start of a sentence, a shouted word)."""
    if found.isupper() and len(found) > 1 and not listed.isupper():
        return target.upper()
    if found[:1].isupper() and not listed[:1].isupper():
        return target[:1].upper() + target[1:]
    return target


def _determines(rest: str) -> bool:
    """Does the text after a her/his start with a word it can determine?"""
    m = _NEXT_WORD.match(rest)
    if m is None:
        return False
    word = m.group(1).lower()
    return word not in _FUNCTION_WORDS and not word.endswith("ly")


@dataclass
class _Rule:
    kind: str  # "word" or "pronoun"
    source: str = ""
    target: str = ""
    roles: dict[str, str] = field(default_factory=dict)  # pronoun: role -> replacement


def _rules(swaps: dict[str, tuple[str, str]], lexicon: Lexicon) -> dict[str, _Rule]:
    rules: dict[str, _Rule] = {}
    clash: set[str] = set()

    def put(word: str, rule: _Rule) -> None:
        key = word.lower()
        if key in rules and rules[key].target.lower() != rule.target.lower():
            clash.add(key)
        rules[key] = rule

    for axis, (a, b) in swaps.items():
        for x, y in lexicon.aligned(axis, a, b):
            put(x, _Rule("word", x, y))
            put(y, _Rule("word", y, x))
        if axis == lexicon.pronoun_axis and a in lexicon.pronouns and b in lexicon.pronouns:
            for x, y in ((a, b), (b, a)):
                forms: dict[str, dict[str, str]] = {}
                for role in ROLES:
                    form = lexicon.pronouns[x].get(role)
                    if form:
                        forms.setdefault(form.lower(), {})[role] = lexicon.pronouns[y][role]
                for form, roles in forms.items():
                    rules[form] = _Rule("pronoun", form, next(iter(roles.values())), roles)
    for key in clash:  # a word listed for two groups cannot be swapped unambiguously
        rules.pop(key, None)
    return rules


def swap_text(text: str, swaps: dict[str, tuple[str, str]], lexicon: Lexicon) -> str:
    """``text`` with the groups of every axis in ``swaps`` exchanged (see the module doc).

    Axes are swapped one after the other, in the order given, so that a term of one axis
    ("Black man") is rewritten by the next ("white man" → "white woman").
    """
    for axis, pair in swaps.items():
        text = _swap_axis(text, axis, pair, lexicon)
    return text


def _swap_axis(text: str, axis: str, pair: tuple[str, str], lexicon: Lexicon) -> str:
    swaps = {axis: pair}
    rules = _rules(swaps, lexicon)
    if not rules:
        return text
    words = sorted(rules, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w'])(" + "|".join(re.escape(w) for w in words) + r")(?![\w'])", re.IGNORECASE)
    subjects = {
        lexicon.pronouns[g]["subject"].lower()
        for g in pair
        if axis == lexicon.pronoun_axis and lexicon.pronouns.get(g, {}).get("subject")
    }

    def repl(m: re.Match[str]) -> str:
        found = m.group(1)
        rule = rules[found.lower()]
        if rule.kind == "word":
            return _like(found, rule.source, rule.target)
        roles = rule.roles
        if len(roles) == 1:
            target = next(iter(roles.values()))
        else:  # her: object | determiner; his: determiner | possessive
            rest = m.string[m.end() :]
            det = _determines(rest)
            if "determiner" in roles and det:
                target = roles["determiner"]
            else:
                target = roles.get("object") or roles.get("possessive") or roles["determiner"]
        return _like(found, rule.source, target)

    out = pattern.sub(repl, text)
    if subjects:
        out = _agree(out, text, subjects)
    return out


def _agree(out: str, original: str, subjects: set[str]) -> str:
    """Auxiliaries after a swapped subject pronoun: he is ↔ they are (and the like)."""
    plural = "they" in subjects

    def fix(m: re.Match[str]) -> str:
        pron, space, aux = m.group(1), m.group(2), m.group(3)
        table = _SINGULAR if pron.lower() == "they" else _PLURAL
        new = table.get(aux.lower())
        return m.group(0) if new is None else pron + space + _like(aux, aux.lower(), new)

    if not plural:
        return out
    aux = "|".join(re.escape(a) for a in [*_SINGULAR, *_PLURAL])
    return re.sub(
        rf"(?<![\w'])({'|'.join(sorted(subjects))})(\s+)({aux})(?![\w'])",
        fix,
        out,
        flags=re.IGNORECASE,
    )


def mentions(text: str, axis: str, group: str, lexicon: Lexicon) -> str | None:
    """The first term, name or pronoun of ``group`` in ``text`` (earliest, longest), or None."""
    forms = lexicon.words(axis, group)
    if axis == lexicon.pronoun_axis:
        forms = [*forms, *(f for f in lexicon.pronouns.get(group, {}).values() if f)]
    best: tuple[int, int, str] | None = None
    for form in set(forms):
        m = re.search(r"(?<![\w'])" + re.escape(form) + r"(?![\w'])", text, re.IGNORECASE)
        if m and (best is None or (m.start(), -len(form)) < best[:2]):
            best = (m.start(), -len(form), m.group(0))
    return None if best is None else best[2]
