"""Term lists and templates of bias.counterfactual: shipped defaults or the user's files.

A term file maps axes (gender, religion, ...) to groups to aligned term lists; a template
file is a YAML list of sentences with one ``{person}`` placeholder. The shipped files live
in this package's ``data/`` folder; a suite can point ``terms:`` / ``templates:`` at
edited copies (paths relative to the suite file).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

PLACEHOLDER = "{person}"


@dataclass(frozen=True)
class Counterfactual:
    """One template filled with the aligned terms of every group of one axis."""

    axis: str
    template: int  # index of the template (the resampling unit)
    slot: int  # index of the aligned term
    texts: dict[str, str]  # group -> filled text
    terms: dict[str, str]  # group -> term used

    def pairs(self) -> list[tuple[str, str]]:
        return list(itertools.combinations(sorted(self.texts), 2))


def _read(source: str | None, base_dir: Path, shipped: str) -> tuple[Any, str, str]:
    """``(parsed YAML, where it came from, sha256)`` of a user file or the shipped one."""
    if source is None:
        text = (
            resources.files("llmguard_checks.bias")
            .joinpath("data", shipped)
            .read_text(encoding="utf-8")
        )
        where = f"shipped data/{shipped}"
    else:
        path = Path(source).expanduser()
        path = path if path.is_absolute() else base_dir / path
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
        text = path.read_text(encoding="utf-8")
        where = str(path)
    return yaml.safe_load(text), where, hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_terms(
    source: str | None, base_dir: Path, axes: list[str] | None
) -> tuple[dict[str, dict[str, list[str]]], dict[str, str]]:
    """Validated ``axis -> group -> terms`` (aligned lists), restricted to ``axes``."""
    data, where, digest = _read(source, base_dir, "terms.yaml")
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{where}: expected a mapping of axes to groups to term lists")
    out: dict[str, dict[str, list[str]]] = {}
    for axis, groups in data.items():
        if not isinstance(groups, dict) or len(groups) < 2:
            raise ValueError(f"{where}: axis '{axis}' needs at least two groups")
        lengths = set()
        for group, terms in groups.items():
            if (
                not isinstance(terms, list)
                or not terms
                or not all(isinstance(t, str) and t for t in terms)
            ):
                raise ValueError(f"{where}: {axis}.{group} must be a non-empty list of strings")
            lengths.add(len(terms))
        if len(lengths) != 1:
            raise ValueError(
                f"{where}: the term lists of axis '{axis}' are not aligned (lengths "
                f"{sorted(lengths)}); every group needs the same number of terms"
            )
        out[str(axis)] = {str(g): [str(t) for t in ts] for g, ts in groups.items()}
    if axes is not None:
        unknown = [a for a in axes if a not in out]
        if unknown:
            raise ValueError(f"{where}: unknown axes {unknown}; the file defines {sorted(out)}")
        out = {a: out[a] for a in axes}
    return out, {"source": where, "sha256": digest}


def load_templates(
    source: str | list[str] | None, base_dir: Path
) -> tuple[list[str], dict[str, str]]:
    """Templates from an inline list, a YAML list file, or the shipped file."""
    if isinstance(source, list):
        templates, facts = (
            source,
            {
                "source": "inline",
                "sha256": hashlib.sha256("\n".join(source).encode("utf-8")).hexdigest(),
            },
        )
    else:
        data, where, digest = _read(source, base_dir, "templates.yaml")
        if not isinstance(data, list):
            raise ValueError(f"{where}: expected a YAML list of template strings")
        templates, facts = data, {"source": where, "sha256": digest}
    for i, t in enumerate(templates):
        if not isinstance(t, str) or t.count(PLACEHOLDER) != 1:
            raise ValueError(
                f"template {i} ({t!r}) must be a string with exactly one {PLACEHOLDER}"
            )
    return [str(t) for t in templates], facts


def counterfactuals(
    templates: list[str], terms: dict[str, dict[str, list[str]]]
) -> list[Counterfactual]:
    """Every template filled with every aligned slot of every axis."""
    out = []
    for axis, groups in terms.items():
        slots = len(next(iter(groups.values())))
        for t, template in enumerate(templates):
            for s in range(slots):
                used = {g: groups[g][s] for g in groups}
                out.append(
                    Counterfactual(
                        axis,
                        t,
                        s,
                        {g: template.replace(PLACEHOLDER, term) for g, term in used.items()},
                        used,
                    )
                )
    return out


def _pattern(term: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(term) + r"(?!\w)", re.IGNORECASE)


def _like(found: str, listed: str, target: str) -> str:
    """``target`` as listed, capitalised where ``found`` was capitalised but ``listed`` is not
    (a term at the start of a sentence)."""
    if found[:1].isupper() and not listed[:1].isupper():
        return target[:1].upper() + target[1:]
    return target


def _replace(pattern: re.Pattern[str], text: str, listed: str, target: str) -> str:
    def repl(match: re.Match[str]) -> str:
        return _like(match.group(0), listed, target)

    return pattern.sub(repl, text)


def swaps(texts: list[str], terms: dict[str, dict[str, list[str]]]) -> list[Counterfactual]:
    """Counterfactuals of real texts: the first term of an axis found in a text is replaced
    (every occurrence, whole words, case-insensitive) by the aligned term of every other group.

    Longer terms are tried first, so "Black woman" is swapped as a whole rather than as
    "woman". Texts that mention no term of an axis give no pair for it.
    """
    out = []
    for axis, groups in terms.items():
        candidates = sorted(
            ((t, g, s) for g, ts in groups.items() for s, t in enumerate(ts)),
            key=lambda c: -len(c[0]),
        )
        compiled = [(_pattern(t), g, s) for t, g, s in candidates]
        for i, text in enumerate(texts):
            hit = next(((p, g, s, m) for p, g, s in compiled if (m := p.search(text))), None)
            if hit is None:
                continue
            pattern, group, slot, match = hit
            used = {g: groups[g][slot] for g in groups}
            listed = groups[group][slot]
            filled = {g: _replace(pattern, text, listed, term) for g, term in used.items()}
            filled[group] = text
            out.append(Counterfactual(axis, i, slot, filled, used | {group: match.group(0)}))
    return out
