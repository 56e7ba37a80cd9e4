"""The canonical result of a run (``report.json``) and atomic file writing."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .results import CheckResult, GateDecision

REPORT_SCHEMA = "https://llmguard.dev/schemas/report/v1"


class SuiteInfo(BaseModel):
    name: str
    path: str
    sha256: str
    api_version: str
    seed: int
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    overrides: list[str] = Field(default_factory=list)


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with milliseconds (``2026-01-02T03:04:05.678Z``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class OutputFile(BaseModel):
    """One file a run wrote into its output folder, and who wrote it."""

    path: str = Field(description="relative to the output folder, POSIX separators")
    sha256: str
    size: int
    reporter: str = Field(
        description="the reporter that wrote it (``report`` for report.json; empty for a check's artifact)"
    )
    plugin: str = Field(description="the plugin that registered that reporter (or the check)")
    check: str | None = Field(default=None, description="the id of the check whose artifact it is")

    model_config = {"frozen": True}


class Report(BaseModel):
    """Everything a reviewer or auditor needs to understand and recheck one run."""

    schema_: str = Field(default=REPORT_SCHEMA, alias="schema")
    run_id: str
    started_at: str
    finished_at: str
    duration_s: float
    suite: SuiteInfo
    decision: GateDecision
    checks: list[CheckResult]
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    plugins: dict[str, str | None] = Field(default_factory=dict)
    plugin_failures: list[str] = Field(default_factory=list)
    prediction_calls: dict[str, int] = Field(default_factory=dict)
    waivers: list[dict[str, Any]] = Field(default_factory=list)
    signed: bool = False
    signing: dict[str, Any] | None = None
    executor: dict[str, Any] | None = Field(
        None, description="where the checks ran: the executor's name and, on a cluster, its nodes, CPUs, GPUs, version"
    )
    #: every file written so far, by path: empty in ``report.json`` itself (written first,
    #: and the attestation's report body is that file); each reporter sees the files written
    #: before it; complete in the report the decision hooks and the run's caller get.
    outputs: dict[str, OutputFile] = Field(default_factory=dict)

    model_config = {"populate_by_name": True}

    def to_json_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return data

    def check(self, check_id: str) -> CheckResult:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)


def atomic_write(path: Path, data: bytes | str, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def dumps(data: Any) -> str:
    """Stable JSON text (sorted keys, no NaN) used for every file the run writes."""
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"


def write_report(report: Report, out_dir: Path) -> Path:
    return atomic_write(out_dir / "report.json", dumps(report.to_json_dict()))


def read_report(path: Path) -> Report:
    return Report.model_validate(json.loads(path.read_text(encoding="utf-8")))
