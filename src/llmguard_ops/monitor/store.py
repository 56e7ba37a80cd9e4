"""The history store: a SQL database (SQLite by default, any SQLAlchemy URL).

One row per (suite, check, metric, window) holds the metric's value, its interval, the
bounds it was gated with and whether the raw condition held (``breached``) and the gate
fired (``fired``). A ``windows`` table lists each monitored window with its decision;
``runs`` keeps each stored report (the JSON run history migrates into it).
``window_revisions`` holds, under a label delay, each evaluation of a window: revision 0
label-free, revision 1 once its labels arrived; earlier rows are never changed, and a
revision adds metric rows only for metrics the window did not have yet.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Float, Integer, String, Text, UniqueConstraint, create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ..errors import LlmguardError
from .persistence import raw_breach

if TYPE_CHECKING:
    from ..report import Report

DEFAULT_DB = Path(".llmguard") / "history.db"
DB_ENV = "LLMGUARD_HISTORY_DB"


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "runs"
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    suite: Mapped[str] = mapped_column(String(200), index=True)
    started_at: Mapped[str] = mapped_column(String(40))
    decision: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[str | None] = mapped_column(String(40), nullable=True)
    report: Mapped[str] = mapped_column(Text)


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("suite", "check_id", "metric", "window_start"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    suite: Mapped[str] = mapped_column(String(200), index=True)
    check_id: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(300))
    window_start: Mapped[str] = mapped_column(String(40))
    window_end: Mapped[str] = mapped_column(String(40))
    run_id: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    lower: Mapped[float | None] = mapped_column(Float, nullable=True)
    upper: Mapped[float | None] = mapped_column(Float, nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    gate_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    gate_max: Mapped[float | None] = mapped_column(Float, nullable=True)
    breached: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    fired: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class WindowRow(Base):
    __tablename__ = "windows"
    __table_args__ = (UniqueConstraint("suite", "window_start"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    suite: Mapped[str] = mapped_column(String(200), index=True)
    window_start: Mapped[str] = mapped_column(String(40))
    window_end: Mapped[str] = mapped_column(String(40))
    rows: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    fired: Mapped[str] = mapped_column(Text)  # JSON list of "check.metric"
    folder: Mapped[str] = mapped_column(Text)


class RevisionRow(Base):
    __tablename__ = "window_revisions"
    __table_args__ = (UniqueConstraint("suite", "window_start", "revision"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    suite: Mapped[str] = mapped_column(String(200), index=True)
    window_start: Mapped[str] = mapped_column(String(40))
    revision: Mapped[int] = mapped_column(Integer)
    label_free: Mapped[bool] = mapped_column(Boolean)
    run_id: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    fired: Mapped[str] = mapped_column(Text)
    folder: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True)
class Point:
    """One recorded window of one metric."""

    window_start: str
    value: float
    lower: float | None
    upper: float | None
    breached: bool | None
    fired: bool | None
    gate_min: float | None = None
    gate_max: float | None = None


def default_url(explicit: str | None = None) -> str:
    """``explicit``, else ``$LLMGUARD_HISTORY_DB``, else SQLite at ``.llmguard/history.db``.

    A plain path is taken as a SQLite file.
    """
    value = explicit or os.environ.get(DB_ENV) or str(DEFAULT_DB)
    if "://" in value:
        return value
    path = Path(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class Store:
    """A history database; tables are created on first use."""

    def __init__(self, url: str | None = None) -> None:
        self.url = default_url(url)
        try:
            self.engine = create_engine(self.url, future=True)
            Base.metadata.create_all(self.engine)
        except Exception as exc:  # bad URL, missing driver, unreachable server
            raise LlmguardError(f"history database {self.url}: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self.engine.dispose()

    # writing ------------------------------------------------------------------------
    def record_report(
        self,
        report: Report,
        *,
        window_start: str | None = None,
        window_end: str | None = None,
        session: Session | None = None,
        new_metrics_only: bool = False,
    ) -> bool:
        """Store a report and one metric row per metric; False when its run is known.

        ``new_metrics_only``: a revision of a window adds only the metrics it lacks.
        """
        own = session is None
        db = session or Session(self.engine)
        try:
            if db.get(RunRow, report.run_id) is not None:
                return False
            start = window_start or report.started_at
            end = window_end or report.finished_at
            db.add(
                RunRow(
                    run_id=report.run_id,
                    suite=report.suite.name,
                    started_at=report.started_at,
                    decision=report.decision.decision.value,
                    window_start=window_start,
                    report=json.dumps(report.to_json_dict(), sort_keys=True),
                )
            )
            known: set[tuple[str, str]] = set()
            if new_metrics_only:
                q = select(MetricRow.check_id, MetricRow.metric).where(
                    MetricRow.suite == report.suite.name, MetricRow.window_start == start
                )
                known = {(str(c), str(m)) for c, m in db.execute(q)}
            for check in report.checks:
                gates = {g.metric: g for g in check.gates}
                for name, m in check.metrics.items():
                    if (check.id, name) in known:
                        continue
                    g = gates.get(name)
                    db.add(
                        MetricRow(
                            suite=report.suite.name,
                            check_id=check.id,
                            metric=name,
                            window_start=start,
                            window_end=end,
                            run_id=report.run_id,
                            value=m.value,
                            lower=m.lower,
                            upper=m.upper,
                            confidence=m.confidence,
                            gate_min=g.min if g else None,
                            gate_max=g.max if g else None,
                            breached=raw_breach(g) if g else None,
                            fired=(not g.passed) if g else None,
                        )
                    )
            if own:
                db.commit()
            return True
        finally:
            if own:
                db.close()

    def record_window(
        self,
        report: Report,
        *,
        start: str,
        end: str,
        rows: int,
        fired: list[str],
        folder: str,
        revision: int | None = None,
        label_free: bool = False,
    ) -> None:
        """Store a monitored window and its report in one transaction.

        ``revision`` (label delay only): 0 records the window and its first revision, a
        later one only appends a revision row and the metrics the window lacked.
        """
        with Session(self.engine) as db:
            self.record_report(report, window_start=start, window_end=end, session=db, new_metrics_only=bool(revision))
            if revision is not None:
                db.add(
                    RevisionRow(
                        suite=report.suite.name,
                        window_start=start,
                        revision=revision,
                        label_free=label_free,
                        run_id=report.run_id,
                        decision=report.decision.decision.value,
                        fired=json.dumps(fired),
                        folder=folder,
                    )
                )
            if revision:
                try:
                    db.commit()
                except IntegrityError:
                    db.rollback()
                    raise LlmguardError(
                        f"{self.url}: revision {revision} of window {start} was recorded meanwhile; not recorded"
                    ) from None
                return
            db.add(
                WindowRow(
                    suite=report.suite.name,
                    window_start=start,
                    window_end=end,
                    rows=rows,
                    run_id=report.run_id,
                    decision=report.decision.decision.value,
                    fired=json.dumps(fired),
                    folder=folder,
                )
            )
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
                raise LlmguardError(
                    f"{self.url}: window {start} of suite '{report.suite.name}' was recorded meanwhile "
                    "(another llmguard monitor running on the same database?); this run is not recorded"
                ) from None

    # reading ------------------------------------------------------------------------
    def revisions(self, suite: str) -> dict[str, list[dict[str, Any]]]:
        """Window start → its revisions, oldest first (only windows run under a label delay)."""
        out: dict[str, list[dict[str, Any]]] = {}
        with Session(self.engine) as db:
            q = select(RevisionRow).where(RevisionRow.suite == suite)
            for r in db.scalars(q.order_by(RevisionRow.window_start, RevisionRow.revision)):
                out.setdefault(r.window_start, []).append(
                    {
                        "revision": r.revision,
                        "label_free": r.label_free,
                        "run_id": r.run_id,
                        "decision": r.decision,
                        "fired": json.loads(r.fired),
                        "folder": r.folder,
                    }
                )
        return out

    def windows(self, suite: str) -> list[dict[str, Any]]:
        """Every monitored window; one with revisions shows its latest one."""
        revisions = self.revisions(suite)
        out = self._windows(suite)
        for w in out:
            revs = revisions.get(w["start"])
            if revs:
                last = revs[-1]
                w.update({k: last[k] for k in ("run_id", "decision", "fired", "folder", "revision", "label_free")})
                w["revisions"] = revs
        return out

    def _windows(self, suite: str) -> list[dict[str, Any]]:
        with Session(self.engine) as db:
            rows = db.scalars(select(WindowRow).where(WindowRow.suite == suite).order_by(WindowRow.window_start))
            return [
                {
                    "start": r.window_start,
                    "end": r.window_end,
                    "rows": r.rows,
                    "run_id": r.run_id,
                    "decision": r.decision,
                    "fired": json.loads(r.fired),
                    "folder": r.folder,
                }
                for r in rows
            ]

    def series(self, suite: str, check_id: str, metric: str, *, windows_only: bool = True) -> list[Point]:
        """Recorded values of one metric, oldest first (monitored windows only by default)."""
        with Session(self.engine) as db:
            q = select(MetricRow).where(
                MetricRow.suite == suite, MetricRow.check_id == check_id, MetricRow.metric == metric
            )
            if windows_only:
                q = q.where(MetricRow.run_id.in_(self._window_runs(suite)))
            rows = db.scalars(q.order_by(MetricRow.window_start))
            return [
                Point(r.window_start, r.value, r.lower, r.upper, r.breached, r.fired, r.gate_min, r.gate_max)
                for r in rows
            ]

    @staticmethod
    def _window_runs(suite: str) -> Any:
        from sqlalchemy import union

        return union(
            select(WindowRow.run_id).where(WindowRow.suite == suite),
            select(RevisionRow.run_id).where(RevisionRow.suite == suite),
        )

    def all_series(self, suite: str) -> dict[str, list[Point]]:
        """Every metric of the suite's monitored windows as ``check.metric`` → points."""
        out: dict[str, list[Point]] = {}
        with Session(self.engine) as db:
            q = (
                select(MetricRow)
                .where(
                    MetricRow.suite == suite,
                    MetricRow.run_id.in_(self._window_runs(suite)),
                )
                .order_by(MetricRow.window_start)
            )
            for r in db.scalars(q):
                out.setdefault(f"{r.check_id}.{r.metric}", []).append(
                    Point(r.window_start, r.value, r.lower, r.upper, r.breached, r.fired, r.gate_min, r.gate_max)
                )
        return out

    def reports(self, suite: str | None = None) -> list[Report]:
        from ..report import Report

        with Session(self.engine) as db:
            q = select(RunRow).order_by(RunRow.started_at, RunRow.run_id)
            if suite is not None:
                q = q.where(RunRow.suite == suite)
            return [Report.model_validate(json.loads(r.report)) for r in db.scalars(q)]

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with Session(self.engine) as db:
            return {
                t.__tablename__: int(db.scalar(select(func.count()).select_from(t)) or 0)
                for t in (RunRow, MetricRow, WindowRow)
            }


def migrate_json_runs(directory: Path, store: Store) -> tuple[int, list[str]]:
    """Copy every report of a JSON run-history folder into ``store`` (idempotent).

    Returns how many runs were added and the files that could not be read.
    """
    from ..history import load_history

    history = load_history(Path(directory), audit_log=Path(directory) / "__none__")
    added = 0
    for run in history.runs:
        if run.report is not None and store.record_report(run.report):
            added += 1
    return added, history.problems


def iter_reports_for_history(url: str | None, suite: str | None) -> Iterable[Report]:
    """The stored reports, for ``llmguard history --db``."""
    store = Store(url)
    try:
        return store.reports(suite)
    finally:
        store.close()
