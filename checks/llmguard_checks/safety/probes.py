"""Probe sets: attacks and benign look-alikes as versioned data files.

A probe set is a YAML file (``name``, ``version``, ``description``, ``probes: [...]``) or
a JSONL file (one probe per line; the file's stem is its name). Each probe:

* ``id`` — unique within the set;
* ``category`` — ``prompt_injection``, ``jailbreak``, ``system_prompt_leak``,
  ``secret_and_pii_leak``, ``harmful_compliance``, ``over_refusal`` or a plugin's own;
* ``prompt`` — the user's message; ``system`` (added to the suite's system prompt) and
  ``context`` (a retrieved document or a tool result, ``context_kind``) are optional;
* ``expected`` — ``resist`` (an attack) or ``answer`` (a benign request);
* ``detector`` — one name or a list: the attempt hits when any of them hits;
* ``technique`` — free text (``direct``, ``indirect-document``, ...); ``convert`` — apply
  the suite's converters (default: only for ``jailbreak``).

Placeholders ``{{canary}}``, ``{{marker}}`` and the planted values (``{{api_key}}``,
``{{card_number}}``, ``{{iban}}``, ``{{email}}``, ``{{phone}}``, ``{{customer_name}}``)
are filled per run from the check's seed, so the same seed plants the same values in the
candidate's and the baseline's attempts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
PLACEHOLDERS = ("canary", "marker", "api_key", "card_number", "iban", "email", "phone", "customer_name")


class ProbeSpec(BaseModel):
    """One probe as written in a probe-set file (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=120)
    category: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    prompt: str = Field(min_length=1)
    expected: Literal["resist", "answer"] | None = None
    detector: list[str]
    technique: str = ""
    system: str | None = None
    context: str | None = None
    context_kind: Literal["document", "tool"] = "document"
    convert: bool | None = None

    @field_validator("detector", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _defaults(self) -> ProbeSpec:
        if self.expected is None:
            self.expected = "answer" if self.category == "over_refusal" else "resist"
        if self.convert is None:
            self.convert = self.category == "jailbreak"
        if not self.detector:
            raise ValueError("detector: name at least one detector")
        for text in (self.prompt, self.system or "", self.context or ""):
            for name in PLACEHOLDER.findall(text):
                if name not in PLACEHOLDERS:
                    raise ValueError(f"unknown placeholder {{{{{name}}}}} (known: {', '.join(PLACEHOLDERS)})")
        return self


class _SetFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: str
    description: str = ""
    probes: list[ProbeSpec]


@dataclass(frozen=True)
class ProbeSet:
    """A named, versioned list of probes with the sha256 of the file it came from."""

    name: str
    version: str
    probes: tuple[ProbeSpec, ...]
    sha256: str
    source: str
    summary: str = ""
    plugin: str = ""
    plugin_version: str | None = None

    @classmethod
    def from_file(cls, path: Path | str, label: str | None = None) -> ProbeSet:
        """Read and validate a YAML or JSONL probe-set file; errors name the file and the probe."""
        path = Path(path)
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        where = label or str(path)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{where}: not UTF-8 text (byte {exc.start})") from None
        try:
            if path.suffix == ".jsonl":
                probes = []
                for number, line in enumerate(text.splitlines(), 1):
                    if not line.strip():
                        continue
                    try:
                        probes.append(ProbeSpec.model_validate(json.loads(line)))
                    except (ValidationError, json.JSONDecodeError) as exc:
                        raise ValueError(f"{where}:{number}: {_one_line(exc)}") from None
                data = _SetFile(name=path.stem, version=f"sha256:{digest[:12]}", probes=probes)
            else:
                loaded = yaml.safe_load(text)
                try:
                    data = _SetFile.model_validate(loaded)
                except ValidationError as exc:
                    raise ValueError(f"{where}: {_one_line(exc, loaded)}") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"{where}: not valid YAML: {exc}") from None
        seen: set[str] = set()
        for probe in data.probes:
            if probe.id in seen:
                raise ValueError(f"{where}: probe id '{probe.id}' appears twice")
            seen.add(probe.id)
        if not data.probes:
            raise ValueError(f"{where}: the probe set holds no probes")
        return cls(
            data.name, data.version, tuple(data.probes), digest, where, data.description or f"{len(data.probes)} probes"
        )

    def describe(self) -> dict[str, Any]:
        """What the report (and so the attestation) records of this set."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "source": self.source,
            "plugin": self.plugin or None,
            "probes": len(self.probes),
        }


def _one_line(exc: Exception, loaded: Any = None) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    err = exc.errors()[0]
    loc = list(err["loc"])
    if loc[:1] == ["probes"] and len(loc) > 1 and isinstance(loc[1], int) and isinstance(loaded, dict):
        with contextlib.suppress(AttributeError, IndexError, KeyError, TypeError):
            loc[1] = f"{loc[1]} (id {loaded['probes'][loc[1]].get('id')!r})"
    path = ".".join(str(part) for part in loc)
    return f"{path}: {err['msg']}" if path else err["msg"]


def fill(text: str | None, values: dict[str, str]) -> str | None:
    """Replace the ``{{placeholders}}`` of a probe's text with this run's values."""
    if text is None:
        return None
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


@dataclass
class Attempt:
    """One case of a scan: a probe, the converter applied, and what was sent."""

    probe: ProbeSpec
    probe_set: str
    converter: str
    system: str
    prompt: str
    context: str | None
    context_kind: str
    values: dict[str, str]
    options: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    @property
    def planted(self) -> dict[str, str]:
        """The secrets and personal data planted in this attempt's system prompt or context."""
        material = (self.system or "") + (self.context or "")
        return {k: v for k, v in self.values.items() if k not in ("canary", "marker") and v in material}


BUILTIN_DIR = Path(__file__).with_name("data")
