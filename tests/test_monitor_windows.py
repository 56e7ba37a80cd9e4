"""Cutting a production log into windows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from llmguard_ops.errors import LlmguardError
from llmguard_ops.monitor.windows import parse_every, read_log, split

UTC = dt.UTC


def test_parse_every() -> None:
    assert parse_every("1h") == dt.timedelta(hours=1)
    assert parse_every("7d") == dt.timedelta(days=7)
    assert parse_every("30m") == dt.timedelta(minutes=30)
    for bad in ("0d", "1y", "d", ""):
        with pytest.raises(LlmguardError, match="--every"):
            parse_every(bad)


def test_hourly_windows_are_aligned_ordered_and_skip_the_open_one(tmp_path: Path) -> None:
    stamps = [
        "2026-05-01T10:59:59Z",
        "2026-05-01T09:00:00Z",
        "2026-05-01T09:30:00+02:00",
        "2026-05-01T12:10:00Z",
        "2026-05-01T10:00:00Z",
    ]
    log = tmp_path / "log.jsonl"
    pd.DataFrame({"ts": stamps, "v": range(5)}).to_json(log, orient="records", lines=True)
    frame = read_log(log)
    now = dt.datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    windows = list(split(frame, "ts", parse_every("1h"), now=now))
    # 09:30+02:00 is 07:30 UTC; 12:xx is still open at 12:30
    assert [w.key for w in windows] == ["2026-05-01T07:00:00Z", "2026-05-01T09:00:00Z", "2026-05-01T10:00:00Z"]
    assert [sorted(w.frame["v"]) for w in windows] == [[2], [1], [0, 4]]
    assert windows[2].end - windows[2].start == dt.timedelta(hours=1)
    later = list(split(frame, "ts", parse_every("1h"), now=now + dt.timedelta(hours=1)))
    assert later[-1].key == "2026-05-01T12:00:00Z"


def test_bad_timestamp_names_the_row(tmp_path: Path) -> None:
    frame = pd.DataFrame({"ts": ["2026-05-01T10:00:00Z", "yesterday"], "v": [1, 2]})
    with pytest.raises(LlmguardError, match="row 2 holds no timestamp"):
        list(split(frame, "ts", parse_every("1d")))


def test_log_errors(tmp_path: Path) -> None:
    with pytest.raises(LlmguardError, match="production log not found"):
        read_log(tmp_path / "nope.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LlmguardError, match=r"no \.csv, \.parquet or \.jsonl partitions"):
        read_log(tmp_path / "empty")
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(LlmguardError, match="unknown log format"):
        read_log(tmp_path / "x.txt")
