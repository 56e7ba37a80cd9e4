"""Reading a production log and cutting it into consecutive time windows."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LlmguardError

if TYPE_CHECKING:
    import pandas as pd

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def parse_every(text: str) -> dt.timedelta:
    """``30m``, ``1h``, ``1d``, ``7d``, ``1w`` → a window length."""
    m = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if not m or int(m.group(1)) == 0:
        raise LlmguardError(f"--every: expected a length such as 1h, 1d or 7d, got {text!r}")
    return dt.timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def _read_one(path: Path) -> pd.DataFrame:
    import pandas as pd

    kind = _SUFFIXES.get(path.suffix.lower())
    try:
        if kind == "csv":
            return pd.read_csv(path)
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind == "jsonl":
            return pd.read_json(path, lines=True)
    except (OSError, ValueError) as exc:
        raise LlmguardError(f"{path}: cannot read the production log: {exc}") from None
    raise LlmguardError(f"{path}: unknown log format (expected .csv, .parquet or .jsonl)")


def read_log(path: str | Path) -> pd.DataFrame:
    """One file, or a folder of partitions (every CSV/Parquet/JSONL file under it, sorted)."""
    import pandas as pd

    p = Path(path)
    if p.is_dir():
        parts = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in _SUFFIXES)
        if not parts:
            raise LlmguardError(f"{p}: no .csv, .parquet or .jsonl partitions in this folder")
        return pd.concat([_read_one(f) for f in parts], ignore_index=True)
    if not p.is_file():
        raise LlmguardError(f"{p}: production log not found")
    return _read_one(p)


@dataclass
class Window:
    """One window ``[start, end)`` of the log and its rows."""

    start: dt.datetime
    end: dt.datetime
    frame: pd.DataFrame

    @property
    def key(self) -> str:
        return iso(self.start)

    @property
    def folder_name(self) -> str:
        return self.start.strftime("%Y%m%dT%H%M%SZ")


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def split(
    frame: pd.DataFrame,
    time_column: str,
    every: dt.timedelta,
    *,
    complete_only: bool = True,
    now: dt.datetime | None = None,
) -> Iterator[Window]:
    """Consecutive windows aligned on the epoch (UTC), oldest first; empty ones are skipped.

    With ``complete_only`` a window still open at ``now`` (default: the current time)
    is left for a later call, so a cron job never records a half-filled window.
    """
    import pandas as pd

    if time_column not in frame.columns:
        raise LlmguardError(
            f"--time-column: the log has no column {time_column!r} (columns: {', '.join(map(str, frame.columns[:20]))})"
        )
    stamps = pd.to_datetime(frame[time_column], utc=True, errors="coerce")
    if stamps.isna().any():
        bad = int(stamps.isna().idxmax())
        raise LlmguardError(
            f"--time-column {time_column}: row {bad + 1} holds no timestamp ({frame[time_column].iloc[bad]!r})"
        )
    step = pd.Timedelta(every)
    epoch = pd.Timestamp(0, tz="UTC")
    starts = epoch + ((stamps - epoch) // step) * step
    limit = pd.Timestamp(now if now is not None else dt.datetime.now(dt.UTC))
    for start, rows in frame.groupby(starts.rename("__window_start__"), sort=True):
        s = pd.Timestamp(start)
        s = s.tz_localize("UTC") if s.tzinfo is None else s
        e = s + step
        if complete_only and e > limit:
            continue
        yield Window(start=s.to_pydatetime(), end=e.to_pydatetime(), frame=rows.reset_index(drop=True))
