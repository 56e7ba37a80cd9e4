"""Pass criteria: whether one generated answer passes, beyond string equality.

One criterion per check gives a per-item (per-sample) pass column; it feeds
``pass_rate``, ``pass_at_<k>`` / ``pass_all_<k>``, McNemar against a baseline and the
worst-items table. ``format`` separately gives ``format_valid_rate`` (JSON, or JSON
valid against a JSON Schema checked by the ``jsonschema`` library).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .text import normalize

Kind = Literal[
    "exact",
    "normalized_exact",
    "regex",
    "numeric",
    "json",
    "json_schema",
    "contains_all",
    "contains_any",
    "semantic",
    "judge",
]


class PassCriterion(BaseModel):
    """When a generated answer passes (the ``pass:`` block of performance.generation)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kind: Kind = Field(
        description="exact | normalized_exact (SQuAD) | regex | numeric | json | json_schema | "
        "contains_all | contains_any | semantic | judge"
    )
    pattern: str | None = Field(
        None, description="regex: searched in the answer (re.search); default: the reference taken as a pattern."
    )
    tolerance: float = Field(0.0, ge=0, description="numeric: absolute tolerance.")
    relative: float = Field(0.0, ge=0, description="numeric: relative tolerance.")
    json_schema: dict[str, Any] | None = Field(None, alias="schema", description="json_schema: the JSON Schema.")
    terms: list[str] | None = Field(None, description="contains_*: terms (default: the reference split on '|').")
    case_sensitive: bool = Field(False, description="contains_*, regex: match case.")
    floor: float = Field(0.8, ge=-1, le=1, description="semantic: least cosine similarity to the reference.")

    @model_validator(mode="after")
    def _needs(self) -> PassCriterion:
        if self.kind == "json_schema" and self.json_schema is None:
            raise ValueError("kind json_schema needs 'schema'")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        if self.json_schema is not None:
            from jsonschema import validators

            cls = validators.validator_for(self.json_schema)
            try:
                cls.check_schema(self.json_schema)
            except Exception as exc:
                raise ValueError(f"schema is not a valid JSON Schema: {str(exc).splitlines()[0]}") from None
        return self


class FormatSpec(BaseModel):
    """Output format every answer must have (``format_valid_rate``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kind: Literal["json", "json_schema"] = "json"
    json_schema: dict[str, Any] | None = Field(None, alias="schema", description="JSON Schema the answer obeys.")


_NUMBER = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def first_number(text: str) -> float | None:
    """The first number written in ``text`` (thousands commas dropped), or None."""
    m = _NUMBER.search(text or "")
    if m is None:
        return None
    try:
        return float(m.group(0).replace(",", ""))
    except ValueError:
        return None


def parse_json(text: str) -> Any:
    """The answer as JSON (surrounding whitespace and a ``` fence allowed); raises ValueError."""
    body = (text or "").strip()
    if body.startswith("```"):
        body = body.strip("`")
        body = body[4:] if body.lower().startswith("json") else body
    return json.loads(body)


def json_valid(text: str, schema: dict[str, Any] | None) -> bool:
    try:
        value = parse_json(text)
    except ValueError:
        return False
    if schema is None:
        return True
    from jsonschema import validators

    validator = validators.validator_for(schema)(schema)
    return bool(validator.is_valid(value))


def scorer(c: PassCriterion) -> Callable[[str, str | None], bool]:
    """``(answer, reference) → passed`` for the lexical criteria (not semantic/judge)."""
    flags = 0 if c.case_sensitive else re.IGNORECASE

    def terms(ref: str | None) -> list[str]:
        if c.terms is not None:
            return list(c.terms)
        return [t.strip() for t in (ref or "").split("|") if t.strip()]

    def fold(s: str) -> str:
        return s if c.case_sensitive else s.lower()

    if c.kind == "exact":
        return lambda a, r: (a or "").strip() == (r or "").strip()
    if c.kind == "normalized_exact":
        return lambda a, r: normalize(a) == normalize(r or "")
    if c.kind == "regex":
        return lambda a, r: re.search(c.pattern if c.pattern is not None else (r or ""), a or "", flags) is not None
    if c.kind == "numeric":

        def numeric(a: str, r: str | None) -> bool:
            got, want = first_number(a), first_number(r or "")
            if got is None or want is None:
                return False
            return abs(got - want) <= max(c.tolerance, c.relative * abs(want))

        return numeric
    if c.kind in ("json", "json_schema"):
        return lambda a, r: json_valid(a, c.json_schema)
    if c.kind == "contains_all":
        return lambda a, r: all(fold(t) in fold(a or "") for t in terms(r))
    if c.kind == "contains_any":
        return lambda a, r: any(fold(t) in fold(a or "") for t in terms(r))
    raise ValueError(f"criterion {c.kind} is not lexical")


__all__ = ["FormatSpec", "PassCriterion", "first_number", "json_valid", "parse_json", "scorer"]
