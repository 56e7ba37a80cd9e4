"""The candidates of a fleet: a matrix file (``--matrix FILE``) or a suite's ``matrix:``.

A matrix lists candidates; each has a ``name`` (its output folder ``OUT/<name>/``) and
the overrides that make it, written as ``--set`` would take them (``PATH: VALUE``, the
path in ``--set``'s syntax, checks addressable by id)::

    set:                                 # applied to every candidate first (optional)
      checks.quality.with.n_resamples: 200
    candidates:
      - name: small
        set: {models.candidate.path: models/small.joblib}
      - name: large
        description: the 3-layer variant
        set:
          models.candidate.path: models/large.joblib
          checks.quality.gate.accuracy.min: 0.8

Values are YAML values (numbers, strings, lists, mappings) and are applied exactly like
``--set`` (so relative paths resolve against the suite's folder). Every problem is
reported as ``file:line:col key: message``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from .errors import SuiteError
from .yamlsource import Path_, SourceMap, load_yaml

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
RESERVED_NAMES = frozenset({"logs"})  # OUT/logs/ holds each candidate's output
MAX_MATRIX_BYTES = 1 << 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Candidate(_Strict):
    """One candidate: a name and the overrides that make it."""

    name: str = Field(pattern=NAME_PATTERN, description="Output folder name (letters, digits, '.', '_', '-').")
    description: str | None = None
    overrides: dict[str, JsonValue] = Field(
        default_factory=dict, alias="set", description="PATH: VALUE pairs applied like --set PATH=VALUE."
    )


class Matrix(_Strict):
    """A fleet's candidates (the matrix file, or a suite's ``matrix:``)."""

    overrides: dict[str, JsonValue] = Field(
        default_factory=dict, alias="set", description="Overrides applied to every candidate before its own."
    )
    candidates: list[Candidate] = Field(min_length=1)


@dataclass
class LoadedMatrix:
    """A validated matrix and where it came from."""

    matrix: Matrix
    file: str
    sha256: str

    def overrides(self, candidate: Candidate) -> list[str]:
        """The candidate's ``--set`` arguments: the shared ones first, then its own."""
        merged = {**self.matrix.overrides, **candidate.overrides}
        return [f"{path}={_value_text(value)}" for path, value in merged.items()]


def _value_text(value: Any) -> str:
    """The ``--set`` spelling of ``value``: as written when YAML reads it back unchanged."""
    if isinstance(value, str) and value.strip() == value and value:
        try:
            if yaml.safe_load(value) == value:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value, ensure_ascii=False)  # JSON is YAML: --set parses it back exactly


def _no_environment(data: Any, raw: Any, smap: SourceMap, at: Path_) -> None:
    """Refuse ``${ENV}`` in a matrix: the fleet would resolve it and hand the value to each
    candidate as ``--set`` (visible in the process list, written into each report's
    ``suite.overrides``), where a suite's own references stay masked."""
    if isinstance(raw, dict) and isinstance(data, dict):
        for key, value in raw.items():
            _no_environment(data.get(key), value, smap, (*at, key))
    elif isinstance(raw, list) and isinstance(data, list):
        for i, (value, resolved) in enumerate(zip(raw, data, strict=False)):
            _no_environment(resolved, value, smap, (*at, i))
    elif raw != data:
        raise smap.error(
            at,
            "${...} environment references are not allowed in a matrix (their values would be recorded "
            "in every report); reference the variable in the suite itself",
        )


def _check(data: Any, smap: SourceMap, prefix: Path_) -> Matrix:
    from .loading import SuiteErrors, _located, parse_override

    if not isinstance(data, dict):
        raise smap.error(prefix, "a matrix must be a mapping with 'candidates:' (a list of name + set)")
    try:
        matrix = Matrix.model_validate(data)
    except ValidationError as exc:
        raise _located(exc, smap, Matrix, prefix) from None
    errors: list[SuiteError] = []
    seen: dict[str, int] = {}
    for i, cand in enumerate(matrix.candidates):
        at: Path_ = (*prefix, "candidates", i)
        key = cand.name.lower()  # case-insensitive file systems would merge two folders
        if key in seen:
            errors.append(
                smap.error((*at, "name"), f"candidate name '{cand.name}' is used twice (first at [{seen[key]}])")
            )
        elif key in RESERVED_NAMES:
            errors.append(smap.error((*at, "name"), f"'{cand.name}' is reserved for the fleet's own folder"))
        seen.setdefault(key, i)
    pairs = [((*prefix, "set"), matrix.overrides)] + [
        ((*prefix, "candidates", i, "set"), c.overrides) for i, c in enumerate(matrix.candidates)
    ]
    for at, overrides in pairs:
        for path in overrides:
            if not re.fullmatch(r"[A-Za-z0-9_.\[\]-]+", path):
                errors.append(
                    smap.error((*at, path), f"'{path}' is not a PATH like models.candidate.path", prefer_key=True)
                )
                continue
            try:
                parse_override(f"{path}=0")
            except SuiteError as exc:
                errors.append(smap.error((*at, path), exc.message, prefer_key=True))
    if errors:
        raise SuiteErrors(errors)
    return matrix


def _read(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_MATRIX_BYTES + 1)
    except FileNotFoundError:
        raise SuiteError("matrix file not found", file=str(path)) from None
    except OSError as exc:
        raise SuiteError(f"cannot read the matrix file: {exc.strerror or exc}", file=str(path)) from None
    if len(data) > MAX_MATRIX_BYTES:
        raise SuiteError(f"the matrix file is larger than {MAX_MATRIX_BYTES} bytes", file=str(path))
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise SuiteError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x})", file=str(path)) from None


def load_matrix(path: str | Path) -> LoadedMatrix:
    """Read and validate a matrix file; raises :class:`SuiteError` naming file, line and key."""
    path = Path(path)
    text = _read(path)
    data, raw, smap = load_yaml(text, str(path))
    _no_environment(data, raw, smap, ())
    return LoadedMatrix(_check(data, smap, ()), str(path), hashlib.sha256(text.encode("utf-8")).hexdigest())


def suite_matrix(suite: str | Path) -> LoadedMatrix | None:
    """The suite's own ``matrix:``, or None (also when the suite cannot be read: the run
    itself then reports that problem)."""
    from .loading import read_suite_text

    path = Path(suite)
    try:
        text = read_suite_text(path)
        data, raw, smap = load_yaml(text, str(path))
    except (SuiteError, yaml.YAMLError):
        return None
    if not isinstance(data, dict) or data.get("matrix") is None:
        return None
    _no_environment(data["matrix"], raw.get("matrix") if isinstance(raw, dict) else None, smap, ("matrix",))
    return LoadedMatrix(_check(data["matrix"], smap, ("matrix",)), str(path), hashlib.sha256(text.encode()).hexdigest())
