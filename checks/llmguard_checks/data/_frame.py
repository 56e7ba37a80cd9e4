"""Helpers shared by the data checks: column roles, row hashes, proportion intervals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from llmguard_ops import CheckContext, CheckOutput

from .._proportion import exact_interval

CLOPPER_PEARSON = "clopper-pearson (exact binomial)"


def add_rate(out: CheckOutput, ctx: CheckContext, name: str, k: int, n: int) -> None:
    """Add the proportion ``k / n`` with its Clopper–Pearson interval at the check's level."""
    level = ctx.confidence(name)
    if n == 0:
        out.add(name, 0.0, n=0)
        return
    low, high = exact_interval(k, n, level)
    value = k / n
    out.add(
        name,
        value,
        lower=min(low, value),
        upper=max(high, value),
        confidence=level,
        interval_method=CLOPPER_PEARSON,
        n=int(n),
    )


def is_numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def row_hashes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One 64-bit hash per row over ``columns``, after normalising values.

    Numbers are compared as float64 (an int column and a float column holding the same
    values hash alike), everything else as its text; missing values hash alike.
    """
    parts = {}
    for col in columns:
        s = frame[col]
        if is_numeric(s):
            parts[col] = s.astype("float64")
        else:
            parts[col] = s.astype("object").where(s.notna(), None).map(lambda v: None if v is None else str(v))
    normal = pd.DataFrame(parts, index=frame.index)
    out: np.ndarray = pd.util.hash_pandas_object(normal, index=False).to_numpy()
    return out


def example_rows(frame: pd.DataFrame, positions: Any, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` rows (by position) as JSON-friendly records with their row number."""
    rows = []
    for pos in list(positions)[:limit]:
        record = {"row": int(pos)}
        for col, value in frame.iloc[int(pos)].items():
            record[str(col)] = jsonable(value)
        rows.append(record)
    return rows


def jsonable(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | str | bool):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def model_columns(frame: pd.DataFrame, columns: list[str], max_unique: int) -> tuple[list[str], list[str], list[str]]:
    """Split ``columns`` into numeric, categorical (few values) and left out (many-valued text)."""
    numeric, categorical, dropped = [], [], []
    for col in columns:
        s = frame[col]
        if is_numeric(s) or pd.api.types.is_bool_dtype(s):
            numeric.append(col)
        elif s.nunique(dropna=True) <= max_unique:
            categorical.append(col)
        else:
            dropped.append(col)
    return numeric, categorical, dropped


def design_matrix(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> np.ndarray:
    """Numbers as float (NaN kept), categories as integer codes (missing → −1)."""
    cols = [frame[c].astype("float64").to_numpy() for c in numeric]
    for c in categorical:
        codes = pd.Categorical(frame[c].astype("object").where(frame[c].notna(), None)).codes
        cols.append(codes.astype("float64"))
    if not cols:
        return np.empty((len(frame), 0))
    return np.column_stack(cols)
