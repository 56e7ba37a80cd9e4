"""bias.data: bias in the data itself, found before a model is trained on it.

Three questions about a training (or reference) dataset and its sensitive columns:

* **Representation**: is each group (and each intersection of groups) present in the
  share it has in the population the model will serve? The expected share is declared in
  the suite (``population``) or measured on another dataset (``production``). Shares get
  Wilson intervals; against production data the ratio gets the Katz log interval of two
  independent proportions.
* **Label balance**: AIF360's dataset metrics on the labels, privileged group against
  the rest: base-rate difference (``statistical_parity_difference`` of the labels) and
  disparate impact of the labels, with multinomial-bootstrap intervals over the
  (group, label) count table; the base rate of every group; and AIF360's
  ``consistency_score`` (how often a row's label agrees with its nearest neighbours').
* **Proxies**: features that reveal a sensitive attribute, by mutual information
  (scikit-learn's ``mutual_info_classif``), normalised by the attribute's entropy: the
  share of the attribute's uncertainty that the feature removes, in [0, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from llmguard_ops import CheckContext, CheckOutput, DatasetRef, MetricSpec

from .group_fairness import group_name


class DataBiasParams(BaseModel):
    """Parameters of ``bias.data``."""

    model_config = ConfigDict(extra="forbid")

    dataset: DatasetRef = Field("reference", description="Training or reference data to examine.")
    sensitive: list[str] | None = Field(None, description="Sensitive columns (default: the dataset's).")
    population: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Expected share per group: {sex: {female: 0.5, male: 0.5}}; an "
        "intersection as {'sex&age_group': {'female&18-29': 0.1, ...}}.",
    )
    production: DatasetRef | None = Field(
        None,
        description="Dataset whose group shares are the expected ones (instead of population).",
    )
    features: list[str] | None = Field(
        None,
        description="Features searched for proxies (default: every column that is neither target, text nor sensitive).",
    )
    positive_label: Any = Field(None, description="Favourable label (default: the larger one).")
    privileged: dict[str, Any] = Field(
        default_factory=dict,
        description="Reference value per sensitive column (default: the highest base rate).",
    )
    min_group_size: int = Field(30, ge=1, description="Smaller groups are excluded from label metrics.")
    proxy_threshold: float = Field(
        0.2, gt=0, le=1, description="Normalised mutual information at which a feature is a proxy."
    )
    consistency_neighbors: int = Field(5, ge=1, description="Neighbours for AIF360's consistency.")
    max_rows: int = Field(5000, ge=50, description="Rows sampled (with the seed) for consistency and proxies.")
    n_resamples: int = Field(1000, ge=0, description="Bootstrap resamples for label metrics.")


METRICS = (
    MetricSpec("representation.*.share", "share of the rows in one group (Wilson interval)", None),
    MetricSpec("representation.*.expected", "expected share of one group", None),
    MetricSpec("representation.*.ratio", "share / expected share of one group", None),
    MetricSpec("min_representation_ratio", "smallest share / expected share over all groups", True),
    MetricSpec("max_representation_gap", "largest |share - expected share| over all groups", False),
    MetricSpec(
        "base_rate_difference",
        "AIF360 statistical_parity_difference of the labels: P(y=1 | unprivileged) - P(y=1 | privileged)",
        None,
    ),
    MetricSpec(
        "label_disparate_impact",
        "AIF360 disparate_impact_ratio of the labels: P(y=1 | unpriv) / P(y=1 | priv)",
        True,
    ),
    MetricSpec("base_rate_range", "max - min base rate over groups", False),
    MetricSpec("group.*.base_rate", "P(y=1) in one group", None),
    MetricSpec("consistency", "AIF360 consistency_score: label agreement with k neighbours", True),
    MetricSpec("max_proxy_strength", "largest normalised MI of a feature with a sensitive column", False),
    MetricSpec("proxy_features", "features whose normalised MI reaches proxy_threshold", False),
    MetricSpec("proxy.*", "normalised MI of one feature with one sensitive column", False),
)


def _groupings(columns: list[str]) -> list[list[str]]:
    return [[c] for c in columns] + ([columns] if len(columns) > 1 else [])


def _keys(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    return frame[columns].astype(str).agg("&".join, axis=1) if len(columns) > 1 else frame[columns[0]].astype(str)


def _wilson(k: int, n: int, level: float) -> tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def _katz(k1: int, n1: int, k2: int, n2: int, level: float) -> tuple[float, float] | None:
    """Interval of the ratio of two independent proportions (log scale, Katz)."""
    from scipy.stats import norm

    if k1 == 0 or k2 == 0:
        return None
    ratio = (k1 / n1) / (k2 / n2)
    se = np.sqrt(1 / k1 - 1 / n1 + 1 / k2 - 1 / n2)
    z = float(norm.ppf(0.5 + level / 2))
    return float(ratio * np.exp(-z * se)), float(ratio * np.exp(z * se))


def _representation(
    out: CheckOutput,
    ctx: CheckContext,
    params: DataBiasParams,
    frame: pd.DataFrame,
    columns: list[str],
) -> list[dict[str, Any]]:
    prod = ctx.dataset(params.production).frame if params.production else None
    rows: list[dict[str, Any]] = []
    ratios: list[tuple[str, float]] = []
    gaps: list[float] = []
    n = len(frame)
    for grouping in _groupings(columns):
        key = "&".join(grouping)
        declared = params.population.get(key)
        if declared is None and prod is None:
            continue
        counts = _keys(frame, grouping).value_counts()
        if declared is not None:
            total = sum(declared.values())
            if not 0.98 <= total <= 1.02:
                raise ValueError(f"population.{key}: shares sum to {total:g}, not 1")
            groups = list(dict.fromkeys([*map(str, declared), *counts.index.astype(str)]))
            expected = {g: float(declared.get(g, 0.0)) for g in groups}
            prod_counts = None
        else:
            assert prod is not None
            missing = [c for c in grouping if c not in prod.columns]
            if missing:
                raise ValueError(f"production dataset '{params.production}' lacks {', '.join(missing)}")
            prod_counts = _keys(prod, grouping).value_counts()
            groups = list(dict.fromkeys([*prod_counts.index.astype(str), *counts.index.astype(str)]))
            expected = {g: float(prod_counts.get(g, 0)) / len(prod) for g in groups}
        for g in groups:
            k = int(counts.get(g, 0))
            name = group_name(grouping, tuple(g.split("&")) if len(grouping) > 1 else (g,))
            level = ctx.confidence(f"representation.{name}.share")
            low, high = _wilson(k, n, level)
            share = k / n
            out.add(
                f"representation.{name}.share", share, lower=low, upper=high,
                confidence=level, interval_method="Wilson score", n=n,
            )  # fmt: skip
            exp = expected[g]
            out.add(f"representation.{name}.expected", exp)
            row: dict[str, Any] = {"group": name, "count": k, "share": share, "expected": exp}
            if exp > 0:
                ratio = share / exp
                fields: dict[str, Any] = {"n": n}
                level = ctx.confidence(f"representation.{name}.ratio")
                if prod_counts is None:
                    fields.update(lower=low / exp, upper=high / exp, confidence=level)
                    fields["interval_method"] = "Wilson interval of the share / declared share"
                else:
                    iv = _katz(k, n, int(prod_counts.get(g, 0)), len(prod), level)  # type: ignore[arg-type]
                    if iv is not None:
                        fields.update(lower=iv[0], upper=iv[1], confidence=level)
                        fields["interval_method"] = "Katz log interval (two independent shares)"
                out.add(f"representation.{name}.ratio", ratio, **fields)
                ratios.append((name, ratio))
                row["ratio"] = ratio
            gaps.append(abs(share - exp))
            row["under_represented"] = bool(exp > 0 and share / exp < 0.8)
            rows.append(row)
    if ratios:
        worst, value = min(ratios, key=lambda r: r[1])
        m = out.metrics[f"representation.{worst}.ratio"]
        out.add(
            "min_representation_ratio", value, lower=m.lower, upper=m.upper,
            confidence=m.confidence, interval_method=m.interval_method, n=n,
        )  # fmt: skip
        out.add("max_representation_gap", max(gaps), n=n)
    return rows


def _label_balance(
    out: CheckOutput,
    ctx: CheckContext,
    params: DataBiasParams,
    frame: pd.DataFrame,
    y01: np.ndarray,
    columns: list[str],
    prefix: str = "",
) -> dict[str, Any]:
    from . import _counts as cnt
    from ._libraries import _import_aif360_metrics

    keys = _keys(frame, columns).to_numpy()
    groups, codes = np.unique(keys, return_inverse=True)
    counts = np.zeros((len(groups), 2), dtype=np.int64)
    np.add.at(counts, (codes, y01.astype(np.int64)), 1)
    sizes = counts.sum(axis=1)
    keep = sizes >= params.min_group_size
    for g in groups[~keep]:
        out.warnings.append(f"group {g} has fewer than {params.min_group_size} rows: excluded from label metrics")
    groups, counts = groups[keep], counts[keep]
    if len(groups) < 2:
        out.warnings.append("fewer than two groups large enough: no label-balance metrics")
        return {}
    rates = counts[:, 1] / counts.sum(axis=1)
    names = [group_name(columns, tuple(g.split("&")) if len(columns) > 1 else (g,)) for g in groups]
    if all(c in params.privileged for c in columns):
        wanted = "&".join(str(params.privileged[c]) for c in columns)
        if wanted not in groups.tolist():
            raise ValueError(f"privileged group {wanted} has fewer than {params.min_group_size} rows")
        ref, how = groups.tolist().index(wanted), "configured (privileged)"
    else:
        ref, how = int(np.argmax(rates)), "highest base rate (set 'privileged' to fix it)"
    # AIF360 on the collapsed (group, label) rows, weighted by their counts
    am = _import_aif360_metrics()
    g_idx, y_idx = np.nonzero(counts)
    weights = counts[g_idx, y_idx].astype(np.float64)
    y_true = pd.Series(y_idx, index=pd.Index((g_idx == ref).astype(int), name="privileged"))
    kw: dict[str, Any] = {"prot_attr": "privileged", "priv_group": 1, "pos_label": 1}
    library = {
        "base_rate_difference": float(am.statistical_parity_difference(y_true, sample_weight=weights, **kw)),
        "label_disparate_impact": float(
            am.disparate_impact_ratio(y_true, sample_weight=weights, zero_division=np.nan, **kw)
        ),
    }

    def stats(c: np.ndarray) -> dict[str, np.ndarray]:
        c = c.astype(np.float64)
        priv = c[..., ref, :]
        rest = c.sum(axis=-2) - priv
        with np.errstate(invalid="ignore", divide="ignore"):
            rp, ru = priv[..., 1] / priv.sum(-1), rest[..., 1] / rest.sum(-1)
            br = c[..., 1] / c.sum(-1)
            return {
                "base_rate_difference": ru - rp,
                "label_disparate_impact": ru / rp,
                "base_rate_range": np.nanmax(br, -1) - np.nanmin(br, -1),
                "group_rates": br,
            }

    point = stats(counts)
    for k in ("base_rate_difference", "label_disparate_impact"):
        if np.isfinite(library[k]) and abs(library[k] - float(point[k])) > 1e-9:
            raise AssertionError(f"{k}: count formula {point[k]} != AIF360 {library[k]}")
    draws = None
    if params.n_resamples > 0:
        flat = counts.reshape(-1).astype(np.float64)
        rng = ctx.rng()
        draws = stats(
            rng.multinomial(int(flat.sum()), flat / flat.sum(), size=params.n_resamples).reshape(
                params.n_resamples, *counts.shape
            )
        )
    n = int(counts.sum())

    def add(name: str, value: float, reps: np.ndarray | None) -> None:
        name = prefix + name
        fields: dict[str, Any] = {"n": n}
        if reps is not None:
            level = ctx.confidence(name)
            low, high, _ = cnt.percentile_interval(reps, level)
            if np.isfinite(low) and np.isfinite(high):
                fields.update(
                    lower=low, upper=high, confidence=level,
                    interval_method=f"bootstrap-percentile ({params.n_resamples} multinomial "
                    "resamples of the (group, label) counts)",
                )  # fmt: skip
        if np.isfinite(value):
            out.add(name, float(value), **fields)
        else:
            out.warnings.append(f"{name}: undefined on this data (a base rate of 0)")

    add("base_rate_difference", library["base_rate_difference"], _get(draws, "base_rate_difference"))
    add(
        "label_disparate_impact",
        library["label_disparate_impact"],
        _get(draws, "label_disparate_impact"),
    )
    add("base_rate_range", float(point["base_rate_range"]), _get(draws, "base_rate_range"))
    for i, name in enumerate(names):
        reps = draws["group_rates"][:, i] if draws is not None else None
        add(f"group.{name}.base_rate", float(rates[i]), reps)
    return {
        "columns": columns,
        "reference_group": names[ref],
        "reference_chosen_by": how,
        "groups": [
            {"group": nm, "count": int(c.sum()), "positives": int(c[1]), "base_rate": float(r)}
            for nm, c, r in zip(names, counts, rates, strict=True)
        ],
    }


def _get(draws: dict[str, np.ndarray] | None, key: str) -> np.ndarray | None:
    return None if draws is None else draws[key]


def _design(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Numeric features standardised, categorical ones one-hot: a space for neighbours."""
    parts = []
    for f in features:
        col = frame[f]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            x = col.astype(float).fillna(col.astype(float).mean()).to_numpy()
            sd = x.std()
            parts.append(((x - x.mean()) / sd if sd > 0 else x * 0.0)[:, None])
        else:
            parts.append(pd.get_dummies(col.astype(str)).to_numpy(dtype=float))
    return np.hstack(parts) if parts else np.zeros((len(frame), 0))


def _proxies(
    out: CheckOutput,
    params: DataBiasParams,
    frame: pd.DataFrame,
    features: list[str],
    columns: list[str],
    seed: int,
) -> list[dict[str, Any]]:
    from scipy.stats import entropy
    from sklearn.feature_selection import mutual_info_classif
    from sklearn.metrics import mutual_info_score

    found: list[dict[str, Any]] = []
    for col in columns:
        s = frame[col].astype(str).to_numpy()
        h = float(entropy(pd.Series(s).value_counts(normalize=True).to_numpy()))  # nats
        if h <= 0:
            continue
        for f in features:
            x = frame[f]
            if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x) and x.nunique() > 10:
                xv = x.astype(float).fillna(x.astype(float).median()).to_numpy()[:, None]
                mi = float(mutual_info_classif(xv, s, discrete_features=False, random_state=seed)[0])
                how = "mutual_info_classif (k-NN estimate)"
            else:
                mi = float(mutual_info_score(s, x.astype(str).to_numpy()))
                how = "mutual_info_score (plug-in, categorical)"
            strength = min(max(mi / h, 0.0), 1.0)
            found.append(
                {
                    "feature": f,
                    "sensitive": col,
                    "mutual_information_nats": round(mi, 6),
                    "sensitive_entropy_nats": round(h, 6),
                    "strength": round(strength, 6),
                    "estimator": how,
                    "proxy": strength >= params.proxy_threshold,
                }
            )
            out.add(f"proxy.{f}.{col}", strength, n=len(frame))
    found.sort(key=lambda r: -float(r["strength"]))
    out.add("max_proxy_strength", float(found[0]["strength"]) if found else 0.0, n=len(frame))
    out.add("proxy_features", float(len({r["feature"] for r in found if r["proxy"]})), n=len(features))
    return found


def run_data_bias(ctx: CheckContext, params: DataBiasParams) -> CheckOutput:
    ds = ctx.dataset(params.dataset)
    frame = ds.frame
    columns = list(params.sensitive or ds.sensitive)
    if not columns:
        raise ValueError(f"dataset '{params.dataset}' declares no sensitive columns; set 'sensitive'")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"sensitive columns not in dataset '{params.dataset}': {', '.join(missing)}")
    known = {"&".join(g) for g in _groupings(columns)}
    unknown = sorted(set(params.population) - known)
    if unknown:
        raise ValueError(f"population names {', '.join(unknown)}; expected one of {', '.join(sorted(known))}")
    if params.population and params.production:
        raise ValueError("set either 'population' or 'production', not both")
    out = CheckOutput()
    details: dict[str, Any] = {"dataset": params.dataset, "rows": len(frame), "sensitive": columns}
    details["representation"] = _representation(out, ctx, params, frame, columns)
    details["expected_shares_from"] = (
        f"dataset '{params.production}'" if params.production else "population (suite)"
    ) if (params.production or params.population) else None  # fmt: skip
    if not details["representation"]:
        ctx.note("no 'population' or 'production' given: representation not compared")
    skip = {ds.spec.target, ds.spec.text, *columns, *ds.sensitive}
    features = params.features or [c for c in frame.columns if c not in skip]
    bad = [f for f in features if f not in frame.columns]
    if bad:
        raise ValueError(f"features not in dataset '{params.dataset}': {', '.join(bad)}")
    sample = frame
    if len(frame) > params.max_rows:
        sample = frame.iloc[np.sort(ctx.rng().choice(len(frame), params.max_rows, replace=False))]
    if ds.spec.target is not None:
        y = ds.y()
        labels = sorted(np.unique(y).tolist(), key=lambda v: (isinstance(v, str), v))
        positive = params.positive_label if params.positive_label is not None else labels[-1]
        if len(labels) > 2 and params.positive_label is None:
            raise ValueError(f"target has {len(labels)} labels; set 'positive_label'")
        y01 = (y == positive).astype(np.int8)
        details["positive_label"] = str(positive)
        details["label_balance"] = {
            "&".join(g): _label_balance(
                out, ctx, params, frame, y01, g, "" if g == columns else f"attribute.{g[0]}."
            )
            for g in ([columns] + ([[c] for c in columns] if len(columns) > 1 else []))
        }  # fmt: skip
        if features:
            from ._libraries import _import_aif360_metrics

            am = _import_aif360_metrics()
            ys = (sample[ds.spec.target] == positive).astype(int).to_numpy()
            k = min(params.consistency_neighbors, len(sample) - 1)
            out.add(
                "consistency",
                float(am.consistency_score(_design(sample, features), ys, k)),
                n=len(sample),
            )
    else:
        ctx.note(f"dataset '{params.dataset}' has no target: label balance not measured")
    details["proxies"] = _proxies(out, params, sample, features, columns, ctx.seed)[:25]
    details["proxy_threshold"] = params.proxy_threshold
    details["definitions"] = {
        "representation ratio": "share in the data / expected share",
        "base_rate_difference": "AIF360 statistical_parity_difference on the labels",
        "label_disparate_impact": "AIF360 disparate_impact_ratio on the labels",
        "consistency": "AIF360 consistency_score (Zemel et al. 2013)",
        "proxy strength": "I(feature; sensitive) / H(sensitive), in [0, 1]",
    }
    out.details.update(details)
    return out
