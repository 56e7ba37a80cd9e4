"""Term lists and templates of bias.counterfactual: shipped defaults or the user's files.

A term file maps axes (gender, religion, ...) to groups to aligned term lists; a template
file is a YAML list of sentences with one ``{person}`` placeholder. The shipped files live
in this package's ``data/`` folder; a suite can point ``terms:`` / ``templates:`` at
edited copies (paths relative to the suite file).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .swapping import ROLES, Lexicon, mentions, swap_text

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
        text = resources.files("llmguard_checks.bias").joinpath("data", shipped).read_text(encoding="utf-8")
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
            if not isinstance(terms, list) or not terms or not all(isinstance(t, str) and t for t in terms):
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


def load_templates(source: str | list[str] | None, base_dir: Path) -> tuple[list[str], dict[str, str]]:
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
            raise ValueError(f"template {i} ({t!r}) must be a string with exactly one {PLACEHOLDER}")
    return [str(t) for t in templates], facts


def counterfactuals(templates: list[str], terms: dict[str, dict[str, list[str]]]) -> list[Counterfactual]:
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


def load_lexicon(
    terms: dict[str, dict[str, list[str]]],
    names: str | bool,
    pronouns: str | bool,
    base_dir: Path,
) -> tuple[Lexicon, dict[str, dict[str, str]]]:
    """Terms plus the name lists and pronoun forms a swap also rewrites (``False``: none;
    ``True``: the shipped files; a path: the user's file)."""
    facts: dict[str, dict[str, str]] = {}
    name_lists: dict[str, dict[str, list[str]]] = {}
    forms: dict[str, dict[str, str]] = {}
    axis = "gender"
    if names is not False:
        data, where, digest = _read(None if names is True else str(names), base_dir, "names.yaml")
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a mapping of axes to groups to name lists")
        for ax, groups in data.items():
            if not isinstance(groups, dict) or not all(
                isinstance(v, list) and all(isinstance(n, str) for n in v) for v in groups.values()
            ):
                raise ValueError(f"{where}: {ax} must map groups to lists of names")
            if len({len(v) for v in groups.values()}) > 1:
                raise ValueError(f"{where}: the name lists of axis '{ax}' are not aligned")
            if str(ax) in terms:
                name_lists[str(ax)] = {str(g): [str(n) for n in v] for g, v in groups.items()}
        facts["names"] = {"source": where, "sha256": digest}
    if pronouns is not False:
        data, where, digest = _read(None if pronouns is True else str(pronouns), base_dir, "pronouns.yaml")
        groups = data.get("groups") if isinstance(data, dict) else None
        if not isinstance(groups, dict):
            raise ValueError(f"{where}: expected 'axis' and 'groups' (group -> role -> form)")
        axis = str(data.get("axis", "gender"))
        for group, roles in groups.items():
            if not isinstance(roles, dict) or set(roles) != set(ROLES):
                raise ValueError(f"{where}: groups.{group} needs exactly the roles {list(ROLES)}")
            forms[str(group)] = {str(r): str(f) for r, f in roles.items()}
        facts["pronouns"] = {"source": where, "sha256": digest}
    return Lexicon(terms, name_lists, forms, axis), facts


def swaps(
    texts: list[str],
    terms: dict[str, dict[str, list[str]]],
    lexicon: Lexicon | None = None,
    joint: list[str] | None = None,
) -> list[Counterfactual]:
    """Counterfactuals of real texts: for each axis, the group a text mentions first (by a
    term, a name or a pronoun; longer terms first, so "Black woman" wins over "woman") is
    exchanged with every other group of the axis by :func:`.swapping.swap_text`: all its
    terms, names and pronouns, with the other group's rewritten the other way.

    ``joint`` axes are also swapped together (e.g. gender and ethnicity at once): one
    counterfactual set per text mentioning all of them, its groups the combinations
    (``female+black``), under the axis name ``gender+ethnicity``. Texts that mention no
    group of an axis give no pair for it.
    """
    lexicon = lexicon or Lexicon(terms)
    out = []
    axes = [[a] for a in terms] + ([list(joint)] if joint and len(joint) > 1 else [])
    for combo in axes:
        for i, text in enumerate(texts):
            found: dict[str, tuple[str, str]] = {}
            for axis in combo:
                hits = [(m, g) for g in terms[axis] if (m := mentions(text, axis, g, lexicon)) is not None]
                if hits:
                    first = min(hits, key=lambda h: (text.lower().find(h[0].lower()), -len(h[0])))
                    found[axis] = (first[1], first[0])
            if len(found) < len(combo):
                continue
            filled: dict[str, str] = {}
            used: dict[str, str] = {}
            for targets in itertools.product(*(sorted(terms[a]) for a in combo)):
                plan = {a: (found[a][0], t) for a, t in zip(combo, targets, strict=True)}
                name = "+".join(targets)
                filled[name] = swap_text(text, plan, lexicon)
                used[name] = " ".join(swap_text(found[a][1], {a: plan[a]}, lexicon) for a in combo)
            slot = 0
            out.append(Counterfactual("+".join(combo), i, slot, filled, used))
    return out
