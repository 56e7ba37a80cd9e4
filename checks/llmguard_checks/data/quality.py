"""data.quality: a data contract validated with pandera, duplicates, conflicts, outliers.

The contract is the declared one (``contract:``) plus, with ``learn: true``, one learnt
from the reference for every other column: the type, a range widened by
``range_margin`` of the reference span, the allowed categories of a text column with few
values, and not-null when the reference has no missing value. pandera validates it
(lazily: every failure is collected), and its failure cases become per-column
violation counts with examples.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from llmguard_ops import CheckContext, CheckOutput

from ._frame import add_rate, design_matrix, example_rows, is_numeric, jsonable, model_columns, row_hashes
from .params import ColumnContract, QualityParams

_PANDERA_TYPES = {
    "number": "float64",
    "integer": "Int64",
    "string": "str",
    "boolean": "boolean",
    "datetime": "datetime64[ns]",
}


def learn_contract(
    reference: pd.DataFrame, columns: list[str], margin: float, max_unique: int
) -> dict[str, ColumnContract]:
    """A contract each reference column satisfies (see the module docstring)."""
    learnt: dict[str, ColumnContract] = {}
    for col in columns:
        s = reference[col]
        nullable = bool(s.isna().any())
        if pd.api.types.is_bool_dtype(s):
            learnt[col] = ColumnContract(type="boolean", nullable=nullable)
        elif is_numeric(s):
            values = s.dropna().astype("float64")
            kind = (
                "integer"
                if pd.api.types.is_integer_dtype(s) or (len(values) and bool(np.all(values == np.round(values))))
                else "number"
            )
            if len(values) == 0:
                learnt[col] = ColumnContract(type=kind, nullable=nullable)
                continue
            lo, hi = float(values.min()), float(values.max())
            pad = margin * (hi - lo)
            learnt[col] = ColumnContract(type=kind, min=lo - pad, max=hi + pad, nullable=nullable)
        elif pd.api.types.is_datetime64_any_dtype(s):
            learnt[col] = ColumnContract(type="datetime", nullable=nullable)
        else:
            values = s.dropna()
            allowed = sorted({str(v) for v in values}) if values.nunique() <= max_unique else None
            learnt[col] = ColumnContract(type="string", allowed=allowed or None, nullable=nullable)
    return learnt


def _schema(contract: dict[str, ColumnContract], rows: Any, strict: bool) -> Any:
    import pandera.pandas as pa

    columns = {}
    for name, c in contract.items():
        checks = []
        if c.min is not None:
            checks.append(pa.Check.ge(c.min))
        if c.max is not None:
            checks.append(pa.Check.le(c.max))
        if c.allowed is not None:
            allowed = [str(v) for v in c.allowed] if c.type == "string" else list(c.allowed)
            checks.append(pa.Check.isin(allowed))
        dtype = _PANDERA_TYPES.get(c.type) if c.type else None
        columns[name] = pa.Column(
            dtype, checks=checks, nullable=c.nullable, unique=c.unique, required=c.required, coerce=dtype is not None
        )
    frame_checks = []
    if rows is not None and rows.min is not None:
        frame_checks.append(
            pa.Check(
                lambda df, n=rows.min: len(df) >= n,
                element_wise=False,
                error=f"row_count >= {rows.min}",
                name="row_count_min",
            )
        )
    if rows is not None and rows.max is not None:
        frame_checks.append(
            pa.Check(
                lambda df, n=rows.max: len(df) <= n,
                element_wise=False,
                error=f"row_count <= {rows.max}",
                name="row_count_max",
            )
        )
    return pa.DataFrameSchema(columns, checks=frame_checks, strict=strict)


def validate(frame: pd.DataFrame, schema: Any, examples: int) -> tuple[dict[str, dict[str, Any]], set[int], list[str]]:
    """Run pandera lazily; return per-column findings, violating row positions, table-level failures."""
    import pandera.errors as pa_errors

    try:
        schema.validate(frame.copy(), lazy=True)
    except pa_errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return {}, set(), []
    per_column: dict[str, dict[str, Any]] = defaultdict(lambda: {"checks": set(), "rows": set(), "examples": []})
    bad_rows: set[int] = set()
    table: list[str] = []
    positions = pd.Series(np.arange(len(frame)), index=frame.index)
    for case in cases.to_dict("records"):
        column, check, index = case.get("column"), str(case.get("check")), case.get("index")
        if column is None or (isinstance(column, float) and np.isnan(column)):
            if case.get("schema_context") == "DataFrameSchema" and check not in table:
                table.append(check if check != "column_in_schema" else f"unexpected column {case['failure_case']}")
            if check == "column_in_schema":
                per_column[str(case["failure_case"])]["checks"].add("column_in_schema")
            continue
        entry = per_column[str(column)]
        entry["checks"].add(check)
        if index is None or (isinstance(index, float) and np.isnan(index)):
            entry.setdefault("column_level", set()).add(f"{check}: {case.get('failure_case')}")
            continue
        pos = int(positions.loc[index]) if index in positions.index else int(index)
        if pos not in entry["rows"] and len(entry["examples"]) < examples:
            entry["examples"].append({"row": pos, "value": jsonable(case.get("failure_case")), "check": check})
        entry["rows"].add(pos)
        bad_rows.add(pos)
    return dict(per_column), bad_rows, table


def run_quality(ctx: CheckContext, params: QualityParams) -> CheckOutput:
    data = ctx.dataset(params.dataset)
    frame = data.frame
    ref = ctx.dataset(params.reference) if params.reference is not None else None
    out = CheckOutput()
    n = len(frame)
    excluded = set(params.exclude)
    contract: dict[str, ColumnContract] = {}
    learnt: list[str] = []
    if params.learn and ref is not None:
        cols = [c for c in ref.frame.columns if c not in excluded and c not in params.contract]
        contract.update(learn_contract(ref.frame, cols, params.range_margin, params.categorical_max_unique))
        learnt = list(contract)
    contract.update(params.contract)
    if params.learn and ref is None and not params.contract:
        out.warnings.append("no reference and no declared contract: only duplicates and row counts are checked")

    checked = frame.drop(columns=[c for c in excluded if c in frame.columns])
    schema = _schema(contract, params.rows, params.strict)
    per_column, bad_rows, table = validate(checked, schema, params.examples)

    whole = {c for c, e in per_column.items() if e.get("column_level") and not e["rows"]}
    if whole:  # a missing column or one that fails as a whole: every row lacks a valid value there
        bad_rows = set(range(n))
    out.add("row_count", float(n), n=n)
    add_rate(out, ctx, "contract_violation_rate", len(bad_rows), n)
    failed = sum(len(v["checks"]) for v in per_column.values()) + len(table)
    out.add("contract_failed_checks", float(failed), n=n)
    out.add("columns_violating", float(len(per_column)), n=len(contract))
    columns_table = []
    for col in sorted(per_column):
        entry = per_column[col]
        k = len(entry["rows"])
        add_rate(out, ctx, f"column_violation_rate.{col}", n if col in whole else k, n)
        columns_table.append(
            {
                "column": col,
                "checks_failed": sorted(entry["checks"]),
                "violating_rows": k,
                "violation_rate": out.metrics[f"column_violation_rate.{col}"].value,
                "column_level": sorted(entry.get("column_level", ())),
                "examples": entry["examples"],
            }
        )

    _duplicates(ctx, out, frame, data.target, excluded, params.examples)
    if params.outliers:
        if ref is None:
            out.warnings.append("outliers: no reference dataset given, outlier_rate not computed")
        else:
            _outliers(ctx, out, frame, ref.frame, data.target, excluded, params)

    out.details.update(
        dataset=params.dataset,
        reference=params.reference,
        rows=n,
        validator="pandera (lazy validation)",
        contract={k: v.model_dump(exclude_none=True) for k, v in contract.items()},
        learnt_columns=learnt,
        violations=columns_table,
        table_failures=table,
    )
    return out


def _duplicates(
    ctx: CheckContext, out: CheckOutput, frame: pd.DataFrame, target: str | None, excluded: set[str], examples: int
) -> None:
    """Exact duplicate rows, and rows with equal features but different targets."""
    keys = [c for c in frame.columns if c not in excluded]
    n = len(frame)
    hashes = pd.Series(row_hashes(frame, keys))
    dup = hashes.duplicated(keep="first").to_numpy()
    add_rate(out, ctx, "duplicate_row_rate", int(dup.sum()), n)
    out.details["duplicate_examples"] = example_rows(frame, np.flatnonzero(dup), examples)
    if target is None or target not in frame.columns:
        return
    features = [c for c in keys if c != target]
    groups = pd.Series(row_hashes(frame, features))
    labels = frame[target].astype("object").map(str)
    distinct = labels.groupby(groups.to_numpy()).transform("nunique").to_numpy()
    conflict = distinct > 1
    add_rate(out, ctx, "conflicting_label_rate", int(conflict.sum()), n)
    out.details["conflicting_examples"] = example_rows(frame, np.flatnonzero(conflict), examples)


def _outliers(
    ctx: CheckContext,
    out: CheckOutput,
    frame: pd.DataFrame,
    reference: pd.DataFrame,
    target: str | None,
    excluded: set[str],
    params: QualityParams,
) -> None:
    """Share of rows an IsolationForest fit on the reference calls outliers."""
    from sklearn.ensemble import IsolationForest

    candidates = [c for c in reference.columns if c not in excluded and c != target and c in frame.columns]
    # a column whose kind changed (numbers turned to text) is the contract's finding, not an outlier
    usable = [c for c in candidates if is_numeric(reference[c]) == is_numeric(frame[c])]
    numeric, categorical, left = model_columns(reference, usable, params.categorical_max_unique)
    left += [c for c in candidates if c not in usable]
    if not numeric and not categorical:
        out.warnings.append("outliers: no feature usable for the IsolationForest")
        return
    cats = {c: pd.Categorical(reference[c].astype("object")).categories for c in categorical}

    def matrix(df: pd.DataFrame) -> np.ndarray:
        encoded = df[numeric + categorical].copy()
        for c in categorical:
            known = df[c].astype("object").where(df[c].isin(cats[c]))  # unseen categories → −1, as missing
            encoded[c] = pd.Categorical(known, categories=cats[c]).codes
        x = design_matrix(encoded, numeric + categorical, [])
        medians = np.nanmedian(design_matrix(reference, numeric, []), axis=0) if numeric else np.array([])
        for j in range(len(numeric)):  # missing values at the reference median: absence is the contract's job
            x[np.isnan(x[:, j]), j] = medians[j]
        return x

    forest = IsolationForest(n_estimators=200, contamination=params.contamination, random_state=ctx.seed % 2**31)
    forest.fit(matrix(reference))
    flags = forest.predict(matrix(frame)) == -1
    add_rate(out, ctx, "outlier_rate", int(flags.sum()), len(frame))
    scores = forest.score_samples(matrix(frame))
    order = np.argsort(scores)
    out.details["outliers"] = {
        "method": f"sklearn IsolationForest (200 trees) fit on the reference; threshold: contamination "
        f"{params.contamination} of the reference",
        "features": numeric + categorical,
        "left_out": sorted(set(left)),
        "expected_rate_if_like_reference": params.contamination,
        "examples": example_rows(frame, [i for i in order if flags[i]], params.examples),
    }
