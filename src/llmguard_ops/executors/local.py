"""The ``local`` executor (the default): every check in this process, one after another.

Exactly what the runner always did: each check runs through
:meth:`~llmguard_ops.runner.Session.run_check` (a worker thread under its timeout, or a
forked child under ``policy.isolation: process``), in suite order, sharing one
prediction cache. ``resources:`` are recorded in the suite but not enforced here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..results import CheckResult
    from ..runner import ProgressFn, Session
    from ..suite import CheckConfig


class LocalExecutor:
    """Runs the checks of a run in this process, in order."""

    def describe(self) -> dict[str, Any]:
        return {"name": "local"}

    def run(self, session: Session, configs: Sequence[CheckConfig], progress: ProgressFn | None) -> list[CheckResult]:
        results = []
        for config in configs:
            if progress:
                progress("check_start", {"id": config.id, "uses": config.uses})
            result = session.run_check(config)
            if progress:
                progress("check_end", {"id": config.id, "result": result})
            results.append(result)
        return results

    def close(self) -> None:
        return None


def open_local(options: Mapping[str, Any]) -> LocalExecutor:
    """The ``open`` of the ``local`` executor (it takes no options)."""
    return LocalExecutor()
