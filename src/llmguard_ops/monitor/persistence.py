"""Prometheus' alert persistence over windows: ``for`` and ``keep_firing_for``.

A gate's raw condition is evaluated once per window. With ``for: N`` an alert is
*pending* until the condition held in N consecutive windows, and only then *fires*
(``for: 1`` fires at once). With ``keep_firing_for: M`` a firing alert whose condition
clears keeps firing for M more windows; if the condition comes back meanwhile it just
goes on firing. This is the state machine of Prometheus' rule evaluator with one
evaluation per window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..results import GateOutcome


def firing(breached: Sequence[bool], for_: int = 1, keep_firing_for: int = 0) -> list[bool]:
    """Whether the gate fires in each window, given the raw condition per window."""
    if for_ < 1 or keep_firing_for < 0:
        raise ValueError("for must be ≥ 1 and keep_firing_for ≥ 0")
    out: list[bool] = []
    run = 0  # consecutive windows with the condition true
    active = False  # alert in the firing state
    cleared_for = 0  # windows since the condition cleared while firing
    for b in breached:
        if b:
            run += 1
            cleared_for = 0
            if run >= for_:
                active = True
        else:
            run = 0
            if active:
                cleared_for += 1
                if cleared_for > keep_firing_for:
                    active = False
                    cleared_for = 0
        out.append(active)
    return out


def state(breached: Sequence[bool], for_: int = 1, keep_firing_for: int = 0) -> str:
    """The alert state after the last window: ``inactive``, ``pending`` or ``firing``."""
    fired = firing(breached, for_, keep_firing_for)
    if fired and fired[-1]:
        return "firing"
    return "pending" if breached and breached[-1] else "inactive"


def raw_breach(gate: GateOutcome) -> bool:
    """Whether the bound alone was violated (before for/keep_firing_for), from the report."""
    low = gate.tested_low if gate.tested_low is not None else gate.value
    high = gate.tested_high if gate.tested_high is not None else gate.value
    return bool(
        (gate.min is not None and (low is None or low < gate.min))
        or (gate.max is not None and (high is None or high > gate.max))
    )
