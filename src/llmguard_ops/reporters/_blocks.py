"""The pieces a report page is built of (tables, images, panels, plot estimates).

Shared by :mod:`.view` (the generic check sections) and :mod:`.panels` (the views for
metric-name conventions), which both build them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..results import GateOutcome, Metric
from .plots import Estimate


@dataclass
class Table:
    """A table to render: header cells, rows of text cells, a CSS class per row."""

    headers: list[str]
    rows: list[list[str]]
    classes: list[str] = field(default_factory=list)
    note: str = ""

    def compact(self) -> Table:
        """Drop columns (after the first) that are empty in every row."""
        keep = [0] + [i for i in range(1, len(self.headers)) if any(row[i] not in ("", "—") for row in self.rows)]
        return Table(
            [self.headers[i] for i in keep],
            [[row[i] for i in keep] for row in self.rows],
            self.classes,
            self.note,
        )


@dataclass
class Image:
    src: str
    alt: str
    caption: str = ""


@dataclass
class Panel:
    """One block of a check section: a title, an optional plot, an optional table."""

    title: str
    image: Image | None = None
    table: Table | None = None
    note: str = ""
    pre: str = ""


def estimate(label: str, m: Metric, gate: GateOutcome | None = None) -> Estimate:
    return Estimate(
        label=label,
        value=m.value,
        lower=m.lower,
        upper=m.upper,
        min=gate.min if gate else None,
        max=gate.max if gate else None,
        passed=gate.passed if gate else None,
    )
