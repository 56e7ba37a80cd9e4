"""Small but real checks that emit the metric-name conventions the reports render.

They stand in for the first-party families in the report tests (those ship separately):
per-column KS drift (``column.<c>.*``), per-group selection rates with Wilson intervals
(``group.<g>.*``), single-row latency percentiles (``*_ms``, raw samples in details),
correlation importances (``importance.<f>``), and a check that raises. The group and
importance checks declare the model card's Fairness and Explanations sections, as a
third-party family would.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict

from llmguard_ops import (
    CardSection,
    CheckContext,
    CheckDefinition,
    CheckOutput,
    DatasetRef,
    MetricSpec,
    ModelRef,
    hookimpl,
)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelRef = "candidate"
    dataset: DatasetRef = "current"
    reference: DatasetRef = "reference"


def run_ks(ctx: CheckContext, params: _Params) -> CheckOutput:
    from matplotlib.figure import Figure
    from scipy.stats import ks_2samp

    ref, cur = ctx.dataset(params.reference).frame, ctx.dataset(params.dataset).frame
    out = CheckOutput()
    numeric = [c for c in ("age", "income", "debt_ratio", "credit_history_months", "num_accounts")]
    drifted = 0
    for col in numeric:
        res = ks_2samp(ref[col], cur[col])
        out.add(f"column.{col}.statistic", float(res.statistic))
        out.add(f"column.{col}.p_value", float(res.pvalue))
        out.add(f"column.{col}.drifted", float(res.pvalue < 0.05))
        drifted += res.pvalue < 0.05
    out.add("share_drifted_columns", drifted / len(numeric))
    fig = Figure(figsize=(4, 2.5))
    ax = fig.subplots()
    ax.hist([ref["income"], cur["income"]], bins=30, label=["reference", "current"])
    ax.legend()
    path = ctx.artifact_dir / "income.png"
    fig.savefig(path, format="png")
    out.artifacts["income distribution"] = str(path)
    out.details["columns"] = [{"column": c, "method": "ks"} for c in numeric]
    return out


def run_groups(ctx: CheckContext, params: _Params) -> CheckOutput:
    from scipy.stats import binomtest

    data = ctx.dataset(params.dataset)
    pred = ctx.predict(params.model, params.dataset)
    out = CheckOutput()
    rates = {}
    for group in sorted(data.frame["sex"].unique()):
        mask = (data.frame["sex"] == group).to_numpy()
        k, n = int(pred[mask].sum()), int(mask.sum())
        ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
        low, high = ci.low, ci.high
        rates[group] = k / n
        out.add(
            f"group.sex={group}.selection_rate",
            k / n,
            lower=low,
            upper=high,
            confidence=0.95,
            interval_method="wilson",
            n=n,
        )
    out.add("demographic_parity_difference", max(rates.values()) - min(rates.values()))
    return out


def run_latency(ctx: CheckContext, params: _Params) -> CheckOutput:
    model = ctx.model(params.model)
    rows = ctx.inputs(params.model, params.dataset).iloc[:40]
    samples = []
    for i in range(len(rows)):
        t0 = time.perf_counter()
        model.obj.predict(rows.iloc[[i]])
        samples.append((time.perf_counter() - t0) * 1000)
    out = CheckOutput()
    for p in (50, 90, 99):
        out.add(f"p{p}_ms", float(np.percentile(samples, p)), unit="ms")
    out.add("max_ms", max(samples), unit="ms")
    out.details["samples_ms"] = samples
    return out


def run_importance(ctx: CheckContext, params: _Params) -> CheckOutput:
    from scipy.stats import spearmanr

    x = ctx.inputs(params.model, params.dataset)
    proba = ctx.predict(params.model, params.dataset, "predict_proba")[:, 1]
    out = CheckOutput()
    for col in x.select_dtypes("number").columns:
        out.add(f"importance.{col}", abs(float(spearmanr(x[col], proba).statistic)))
    out.details["top_features"] = sorted(
        (n.removeprefix("importance.") for n in out.metrics),
        key=lambda n: -out.metrics[f"importance.{n}"].value,
    )[:3]
    return out


def run_broken(ctx: CheckContext, params: _Params) -> CheckOutput:
    raise RuntimeError("the judge model is unreachable")


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    register(
        CheckDefinition(
            "drift.ks_fixture",
            run_ks,
            _Params,
            (MetricSpec("column.*"), MetricSpec("share_drifted_columns")),
            "KS per column",
        )
    )
    register(
        CheckDefinition(
            "bias.rates_fixture",
            run_groups,
            _Params,
            (MetricSpec("group.*"), MetricSpec("demographic_parity_difference")),
            "rates",
            card_section=CardSection("Fairness", order=10, render="groups"),
        )
    )
    register(CheckDefinition("latency.fixture", run_latency, _Params, (MetricSpec("*_ms"),), "latency"))
    register(
        CheckDefinition(
            "explain.corr_fixture",
            run_importance,
            _Params,
            (MetricSpec("importance.*"),),
            "correlation importance",
            card_section=CardSection("Explanations", order=20, render="features"),
        )
    )
    register(CheckDefinition("broken.fixture", run_broken, _Params, (MetricSpec("x"),), "raises"))
