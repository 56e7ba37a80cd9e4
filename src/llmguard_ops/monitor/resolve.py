"""Turning learnt gates into concrete bounds for one window, before its checks run.

The gate stays a pure function of the report: each learnt band and each gate's
earlier raw states are resolved here from the history store into an ordinary
:class:`~llmguard_ops.suite.GateBound` (``min``/``max`` plus ``prior``), and the bands
used are written into the report's ``suite.metadata["llmguard.monitor"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .bands import learn
from .spec import GatePrior

if TYPE_CHECKING:
    from ..loading import LoadedSuite
    from .store import Store

PRIOR_LIMIT = 500  # raw states kept per gate (persistence only looks back for + keep windows)


def resolve_gates(loaded: LoadedSuite, store: Store, before: str) -> dict[str, Any]:
    """Replace every learnt or persistent gate of ``loaded`` by its bounds for this window.

    ``before``: the window's start; only windows that started earlier are history.
    Returns what was applied, per ``check.metric``, for the report.
    """
    suite = loaded.suite.name
    applied: dict[str, Any] = {}
    for check in loaded.suite.checks:
        for name, bound in list(check.gate.items()):
            if bound.learned is None and bound.for_ is None and bound.keep_firing_for is None:
                continue
            points = [p for p in store.series(suite, check.id, name) if p.window_start < before]
            update: dict[str, Any] = {"prior": GatePrior(breached=[bool(p.breached) for p in points][-PRIOR_LIMIT:])}
            entry: dict[str, Any] = {
                "static": {"min": bound.min, "max": bound.max},
                "for": bound.for_ or 1,
                "keep_firing_for": bound.keep_firing_for or 0,
            }
            if bound.learned is not None:
                # Deequ: windows whose raw condition held do not teach the baseline
                band = learn(
                    bound.learned, [p.value for p in points], [bool(p.breached) or bool(p.fired) for p in points]
                )
                if band is not None:
                    update["min"], update["max"] = band.low, band.high
                    entry["band"] = band.to_json()
                    entry["band_text"] = band.describe()
                else:
                    entry["band"] = None
                    entry["band_text"] = f"learning: {len(points)} of {bound.learned.min_history} windows; " + (
                        "static bound" if bound.min is not None or bound.max is not None else "no bound yet"
                    )
            new = bound.model_copy(update=update)
            check.gate[name] = new
            entry["applied"] = {"min": new.min, "max": new.max}
            applied[f"{check.id}.{name}"] = entry
    return applied
