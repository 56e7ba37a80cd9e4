"""Stores a copy of every run's report in the run history (see :mod:`llmguard_ops.history`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..hookspecs import hookimpl
from ..registry import Reporter
from ..report import Report


def store(report: Report, out_dir: Path) -> list[Path]:
    """Save ``report`` under the history folder; nothing when history is switched off.

    Returns no path: the copy lives outside the output folder and is not one of the
    run's outputs (the attestation digests those, and a byte-identical copy of
    ``report.json`` listed among them would only confuse ``verify --artifact``).
    """
    from ..history import history_dir, save_run

    directory = history_dir()
    if directory is not None:
        save_run(report, directory)
    return []


@hookimpl
def llmguard_register_reporters(register: Callable[[Reporter], None]) -> None:
    register(
        Reporter(
            name="history",
            write=store,
            summary="a copy of report.json in the run history (.llmguard/runs)",
            needs=(),
            provides=(),
        )
    )
