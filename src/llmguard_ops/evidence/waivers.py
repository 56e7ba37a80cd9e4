"""Waivers: approved, expiring exceptions for a named check.

A waiver comes from the suite's ``waivers:`` or from a ``--waiver FILE`` (a YAML list
of ``{check, approver, reason, expires}``). While valid (``expires`` is an ISO date,
inclusive, in UTC), a failed, warned or errored check it names does not gate: the gate
records the failure as a note naming the approver. The check's status and metric
values stay in the report unchanged. An expired waiver is ignored with a warning.
Every waiver that names a check of the run is listed in the report and the signed
predicate with its status: ``applied``, ``not needed`` (the check passed), ``redundant``
(another waiver already applied) or ``expired``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from ..errors import SuiteError, did_you_mean
from ..results import CheckResult, Status
from ..suite import Waiver

if TYPE_CHECKING:
    from ..loading import LoadedSuite

_WAIVABLE = (Status.FAIL, Status.WARN, Status.ERROR)


@dataclass(frozen=True)
class WaiverEntry:
    """A waiver with where it came from (``suite`` or a file and its sha256)."""

    waiver: Waiver
    source: str
    source_sha256: str | None = None

    def record(self, status: str) -> dict[str, Any]:
        data: dict[str, Any] = {**self.waiver.model_dump(), "source": self.source, "status": status}
        if self.source_sha256:
            data["source_sha256"] = self.source_sha256
        return data


def load_file(path: Path, check_ids: Iterable[str]) -> list[WaiverEntry]:
    """Read a waiver file; errors name ``file:line:col`` and the key."""
    from ..loading import _located, read_suite_text
    from ..yamlsource import load_yaml

    path = Path(path)
    text = read_suite_text(path)
    data, _raw, smap = load_yaml(text, str(path), env={})
    if isinstance(data, dict) and set(data) == {"waivers"}:
        data = data["waivers"]
        prefix: tuple[str | int, ...] = ("waivers",)
    else:
        prefix = ()
    if not isinstance(data, list):
        raise SuiteError(
            "a waiver file is a list of {check, approver, reason, expires}",
            file=str(path),
            line=1,
            column=1,
        )
    try:
        waivers = TypeAdapter(list[Waiver]).validate_python(data)
    except ValidationError as exc:
        raise _located(exc, smap, Waiver, prefix) from None
    ids = list(check_ids)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    for i, w in enumerate(waivers):
        if w.check not in ids:
            raise smap.error(
                (*prefix, i, "check"),
                f"no check '{w.check}' in the suite{did_you_mean(w.check, ids)}",
            )
    return [WaiverEntry(w, source=str(path), source_sha256=digest) for w in waivers]


def suite_entries(loaded: LoadedSuite) -> list[WaiverEntry]:
    """The suite's own waivers, each checked to name one of its checks."""
    ids = [c.id for c in loaded.suite.checks]
    for i, w in enumerate(loaded.suite.waivers):
        if w.check not in ids:
            raise loaded.source.error(
                ("waivers", i, "check"),
                f"no check '{w.check}' in the suite{did_you_mean(w.check, ids)}",
            )
    return [WaiverEntry(w, source="suite") for w in loaded.suite.waivers]


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass
class WaiverBook:
    """The waivers of one run, applied check by check."""

    entries: list[WaiverEntry]
    today: dt.date = field(default_factory=utc_today)
    used: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def apply(self, result: CheckResult) -> None:
        """Mark ``result`` waived when a valid waiver names it and it would gate."""
        applied = False
        for entry in self.entries:
            w = entry.waiver
            if w.check != result.id:
                continue
            if dt.date.fromisoformat(w.expires) < self.today:
                message = f"waiver for '{w.check}' by {w.approver} ({entry.source}) expired on {w.expires}; ignored"
                result.warnings.append(message)
                self.warnings.append(message)
                self.used.append(entry.record("expired"))
            elif applied:
                self.used.append(entry.record("redundant"))
            elif result.status in _WAIVABLE:
                record = entry.record("applied")
                result.waiver = record
                self.used.append(record)
                applied = True
            else:
                self.used.append(entry.record("not needed"))
