"""One column, reference against current: type, method, statistic, decision inputs.

The ``auto`` rule (documented in docs/drift.md) follows the field's convention:

* a column is *categorical* when it is not numeric, is boolean, or is numeric with at most
  ``categorical_max_unique`` distinct values over both sides; otherwise *numeric*;
* with at most ``small_sample`` non-missing reference values, a test with a p-value:
  numeric → Kolmogorov-Smirnov; categorical with ≤ 2 categories → two-proportion z;
  categorical with more → chi-square;
* with more reference values (where every p-value is tiny), a distance with a threshold:
  numeric → Wasserstein normalised by the reference std; categorical → Jensen-Shannon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from . import _stats as st

Method = Literal["auto", "ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi", "anderson"]
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z", "anderson"})
NUMERIC_ONLY = frozenset({"ks", "wasserstein", "anderson"})
DEFAULT_THRESHOLDS: dict[str, float] = {"wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.1}


@dataclass(frozen=True)
class ColumnRules:
    """The parameters that decide how a column is compared."""

    method: str = "auto"
    forced: bool = False  # True when the method was set for this very column
    small_sample: int = 1000
    categorical_max_unique: int = 5
    force_kind: str | None = None  # "numeric" | "categorical"
    bins: int = 10
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))


@dataclass
class ColumnResult:
    """Everything the report says about one compared column."""

    column: str
    role: str  # feature | prediction | target
    kind: str = "unknown"
    method: str = "none"
    statistic: float | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    distance: float | None = None
    threshold: float | None = None
    drifted: bool | None = None
    n_reference: int = 0
    n_current: int = 0
    missing_reference: float = 0.0
    missing_current: float = 0.0
    categories: int | None = None
    unseen_categories: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def tested(self) -> bool:
        return self.statistic is not None

    def record(self) -> dict[str, Any]:
        """The row of the details table."""
        return {
            "column": self.column,
            "role": self.role,
            "kind": self.kind,
            "method": self.method,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "p_value_adjusted": self.p_value_adjusted,
            "distance": self.distance,
            "threshold": self.threshold,
            "drifted": None if self.drifted is None else int(self.drifted),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "missing_reference": self.missing_reference,
            "missing_current": self.missing_current,
            "categories": self.categories,
            "unseen_categories": self.unseen_categories[:20],
            "notes": "; ".join(self.notes),
        }


def _numeric_values(series: Any) -> tuple[np.ndarray, int]:
    """Finite float values of a numeric Series (a fresh array) and how many were infinite."""
    arr = series.to_numpy(dtype=float, na_value=np.nan)
    finite = np.isfinite(arr)
    if finite.all():
        return arr.copy(), 0
    n_inf = int(np.count_nonzero(np.isinf(arr)))
    return arr[finite], n_inf


def _is_numeric(series: Any) -> bool:
    import pandas as pd

    dtype = series.dtype
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def _as_text(series: Any) -> Any:
    """Categories as strings (missing kept missing), so 1 and "1" meet as the same value."""
    return series.astype("string")


def _kind(name: str, ref: Any, cur: Any, rules: ColumnRules, out: ColumnResult) -> tuple[str, Any, Any]:
    """Decide numeric vs categorical; return the (possibly converted) two Series."""
    import pandas as pd

    if rules.force_kind == "categorical":
        return "categorical", ref, cur
    rn, cn = _is_numeric(ref), _is_numeric(cur)
    if rn != cn:  # one side parsed as numbers, the other not: try to read both as numbers
        other = cur if rn else ref
        parsed = pd.to_numeric(other, errors="coerce")
        if int(parsed.isna().sum()) == int(other.isna().sum()):
            out.notes.append(f"{'current' if rn else 'reference'} values were text holding numbers: parsed")
            ref, cur = (ref, parsed) if rn else (parsed, cur)
            rn = cn = True
        else:
            out.notes.append("mixed types (numbers on one side, text on the other): compared as categories")
            return "categorical", _as_text(ref), _as_text(cur)
    if rules.force_kind == "numeric":
        if not rn:
            raise ValueError(f"column '{name}' is declared numeric but holds non-numeric values")
        return "numeric", ref, cur
    if not rn:
        inferred = {pd.api.types.infer_dtype(s, skipna=True) for s in (ref, cur)}
        if inferred & {"mixed", "mixed-integer", "mixed-integer-float"}:
            out.notes.append("mixed value types: compared as text categories")
            return "categorical", _as_text(ref), _as_text(cur)
        return "categorical", ref, cur
    return "numeric", ref, cur


def _choose(kind: str, n_categories: int, rules: ColumnRules, n_ref: int, out: ColumnResult) -> str:
    method = rules.method
    if method != "auto" and kind == "categorical" and method in NUMERIC_ONLY:
        if rules.forced:
            raise ValueError(f"column '{out.column}': method '{method}' needs numbers, the column is categorical")
        out.notes.append(f"'{method}' needs numbers: auto rule used")
        method = "auto"
    if method == "z" and (kind == "numeric" or n_categories > 2):
        if rules.forced:
            raise ValueError(f"column '{out.column}': method 'z' needs a binary column")
        out.notes.append("'z' needs a binary column: auto rule used")
        method = "auto"
    if method != "auto":
        return method
    if n_ref <= rules.small_sample:
        if kind == "numeric":
            return "ks"
        return "z" if n_categories <= 2 else "chisquare"
    return "wasserstein" if kind == "numeric" else "jensenshannon"


def compare_column(name: str, role: str, ref: Any, cur: Any, rules: ColumnRules) -> ColumnResult:
    """Compare one column of the reference with the current one (pandas Series each)."""
    out = ColumnResult(column=name, role=role)
    out.missing_reference = float(ref.isna().mean()) if len(ref) else 0.0
    out.missing_current = float(cur.isna().mean()) if len(cur) else 0.0
    if abs(out.missing_reference - out.missing_current) >= 0.05:
        out.notes.append(f"missing share changed: {out.missing_reference:.1%} → {out.missing_current:.1%}")
    kind, ref, cur = _kind(name, ref, cur, rules, out)
    sample: st.NumericSample | None = None
    labels: list[str] = []
    rc = cc = np.zeros(0, dtype=np.int64)
    if kind == "numeric":
        r, r_inf = _numeric_values(ref)
        c, c_inf = _numeric_values(cur)
        if r_inf or c_inf:
            out.notes.append(f"infinite values treated as missing (reference {r_inf}, current {c_inf})")
        sample = st.NumericSample.of(r, c, owned=True)
        small = rules.categorical_max_unique
        nr = 1 + int(np.count_nonzero(np.diff(sample.ref))) if r.size else 0
        nc = 1 + int(np.count_nonzero(np.diff(sample.cur))) if c.size else 0
        # few distinct values make a numeric column categorical, unless a numeric-only
        # method was asked for
        few = nr <= small and nc <= small and rules.method not in NUMERIC_ONLY
        if rules.force_kind is None and few:
            values = np.union1d(np.unique(sample.ref), np.unique(sample.cur))
            if values.size <= small:
                kind = "categorical"
                out.notes.append(f"numeric with {values.size} distinct values: compared as categories")
                rc = np.searchsorted(sample.ref, values, "right") - np.searchsorted(sample.ref, values, "left")
                cc = np.searchsorted(sample.cur, values, "right") - np.searchsorted(sample.cur, values, "left")
                labels = [f"{v:g}" for v in values]
        n_ref, n_cur = r.size, c.size
    else:
        labels, rc, cc = st.aligned_counts(ref, cur)
        n_ref, n_cur = int(rc.sum()), int(cc.sum())
    if not record_sizes(out, kind, labels, rc, cc, int(n_ref), int(n_cur)):
        return out
    method = _choose(kind, len(labels), rules, n_ref, out)
    out.method = method
    constant = (
        sample.ref[0] == sample.ref[-1] if kind == "numeric" and sample is not None else int(np.count_nonzero(rc)) == 1
    )
    if constant:
        out.notes.append("reference column is constant")
    _apply(method, kind, sample, rc, cc, rules, out)
    return out


def record_sizes(
    out: ColumnResult, kind: str, labels: list[str], rc: np.ndarray, cc: np.ndarray, n_ref: int, n_cur: int
) -> bool:
    """Record kind, sizes and unseen categories; False when a side has no values (then
    the column is decided here: not compared, or drifted when only one side is empty)."""
    out.kind = kind
    out.n_reference, out.n_current = n_ref, n_cur
    if kind == "categorical":
        out.categories = len(labels)
        out.unseen_categories = [lab for lab, a, b in zip(labels, rc, cc, strict=True) if a == 0 and b > 0]
        if out.unseen_categories:
            share = float(cc[rc == 0].sum() / max(n_cur, 1))
            out.notes.append(f"{len(out.unseen_categories)} categories unseen in reference ({share:.1%} of current)")
    if n_ref == 0 or n_cur == 0:
        side = "reference" if n_ref == 0 else "current"
        if n_ref == 0 and n_cur == 0:
            out.notes.append("no values on either side: not compared")
            return False
        out.notes.append(f"no non-missing values in {side}: counted as drifted")
        out.method, out.drifted = "missing", True
        return False
    return True


def _apply(
    method: str,
    kind: str,
    sample: st.NumericSample | None,
    rc: np.ndarray,
    cc: np.ndarray,
    rules: ColumnRules,
    out: ColumnResult,
) -> None:
    if method in ("psi", "jensenshannon", "chisquare") and kind == "numeric":
        assert sample is not None
        rc, cc = st.numeric_bin_counts(sample, rules.bins)
        out.notes.append(f"binned at {rc.size} reference-quantile bins")
    if method == "ks":
        assert sample is not None
        out.statistic, out.p_value = st.ks(sample)
    elif method == "anderson":
        assert sample is not None
        out.statistic, out.p_value, note = st.anderson(sample)
        if note:
            out.notes.append(note)
    elif method == "chisquare":
        out.statistic, out.p_value = st.chi_square(rc, cc)
    elif method == "z":
        out.statistic, out.p_value = st.two_proportion_z(rc, cc)
    elif method == "wasserstein":
        assert sample is not None
        out.distance, raw, note = st.normalised_wasserstein(sample)
        out.statistic = out.distance
        out.notes.append(f"raw Wasserstein distance {raw:.6g}")
        if note:
            out.notes.append(note)
    elif method == "jensenshannon":
        out.statistic = out.distance = st.jensen_shannon(rc, cc)
    elif method == "psi":
        out.statistic = out.distance = st.psi(rc, cc)
    else:  # pragma: no cover - Method is a closed Literal
        raise ValueError(f"unknown method '{method}'")
    if method not in P_VALUE_METHODS:
        out.threshold = rules.thresholds.get(method, DEFAULT_THRESHOLDS[method])
        assert out.distance is not None
        out.drifted = out.distance >= out.threshold
