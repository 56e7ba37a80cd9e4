"""bias.mitigation: retrain the candidate under fairness constraints, pick the cheapest fix.

The candidate (a scikit-learn estimator) is cloned and retrained on the suite's training
data by each mitigation method; every variant, and the candidate itself, is then scored on
the holdout dataset exactly as ``bias.group_fairness`` would score it (the same code, so
the same numbers and bootstrap intervals) plus accuracy. The variants that meet the
fairness gates (those of a ``bias.group_fairness`` check of the suite, or the ones given
here) are compared on accuracy; the most accurate one is recommended and written as a
skops file with its sha256, ready to be the candidate of the next run.

Methods (``methods:``):

* ``reweighing`` — AIF360's ``Reweighing`` weights (label and group made independent),
  the estimator refitted with them: a plain scikit-learn model;
* ``exponentiated_gradient_dp`` / ``exponentiated_gradient_eo`` — fairlearn's
  ``ExponentiatedGradient`` with ``DemographicParity`` / ``EqualizedOdds``: a randomised
  mixture of retrained estimators;
* ``threshold_optimizer_dp`` / ``threshold_optimizer_eo`` — fairlearn's
  ``ThresholdOptimizer`` on a retrained estimator's scores: group-specific randomised
  thresholds, so the saved model reads the sensitive columns at prediction time (the
  report says so: in many jurisdictions that is disparate treatment);
* ``adversarial_dp`` / ``adversarial_eo`` — fairlearn's ``AdversarialFairnessClassifier``
  (torch backend): a small network trained against an adversary that predicts the
  sensitive attribute. It is a point of the front only: not the candidate's estimator,
  and not stored with skops, so it is never the recommended variant. Not run by default.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llmguard_ops import CheckContext, CheckOutput, DatasetRef, GateBound, MetricSpec, ModelRef, evaluate_gates

from .group_fairness import DISPARITIES, GroupFairnessParams, evaluate_grouping

Method = Literal[
    "reweighing",
    "exponentiated_gradient_dp",
    "exponentiated_gradient_eo",
    "threshold_optimizer_dp",
    "threshold_optimizer_eo",
    "adversarial_dp",
    "adversarial_eo",
]
DEFAULT_METHODS: list[Method] = [
    "reweighing",
    "exponentiated_gradient_dp",
    "exponentiated_gradient_eo",
    "threshold_optimizer_dp",
    "threshold_optimizer_eo",
]
DESCRIPTIONS = {
    "candidate": "the candidate as it is (no mitigation)",
    "reweighing": "aif360.sklearn.preprocessing.Reweighing weights, estimator refitted",
    "exponentiated_gradient_dp": "fairlearn.reductions.ExponentiatedGradient(DemographicParity)",
    "exponentiated_gradient_eo": "fairlearn.reductions.ExponentiatedGradient(EqualizedOdds)",
    "threshold_optimizer_dp": "fairlearn.postprocessing.ThresholdOptimizer(demographic_parity)",
    "threshold_optimizer_eo": "fairlearn.postprocessing.ThresholdOptimizer(equalized_odds)",
    "adversarial_dp": "fairlearn.adversarial.AdversarialFairnessClassifier(demographic_parity, torch)",
    "adversarial_eo": "fairlearn.adversarial.AdversarialFairnessClassifier(equalized_odds, torch)",
}


class MitigationParams(BaseModel):
    """Parameters of ``bias.mitigation``."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="The scikit-learn candidate to mitigate.")
    train: DatasetRef = Field("reference", description="Training data (target and sensitive columns) for the variants.")
    dataset: DatasetRef = Field("current", description="Holdout on which every variant is scored.")
    sensitive: list[str] | None = Field(None, description="Sensitive columns (default: the holdout's).")
    methods: list[Method] = Field(default_factory=lambda: list(DEFAULT_METHODS), description="Mitigations to train.")
    gates_from: str | None = Field(
        None,
        description="Id of a bias.group_fairness check of this suite whose gates a variant "
        "must meet (default: the first such check, unless fairness_gates is set).",
    )
    fairness_gates: dict[str, GateBound] = Field(
        default_factory=dict,
        description="Gates a variant must meet (group-fairness metric names, or accuracy).",
    )
    positive_label: Any = Field(None, description="Favourable label (default: the larger one).")
    privileged: dict[str, Any] = Field(
        default_factory=dict, description="Reference value per sensitive column, e.g. {sex: male}."
    )
    min_group_size: int = Field(30, ge=1, description="Smaller groups are excluded, as in group_fairness.")
    n_resamples: int = Field(1000, ge=0, description="Bootstrap resamples for the intervals.")
    max_iter: int = Field(50, ge=1, description="ExponentiatedGradient iterations.")
    eps: float = Field(0.01, gt=0, description="ExponentiatedGradient constraint slack.")
    save: bool = Field(True, description="Write the recommended variant as a skops file.")
    adversarial_epochs: int = Field(20, ge=1, description="Training epochs of the adversarial methods (torch).")
    adversarial_hidden: int = Field(16, ge=1, description="Hidden units of the adversarial methods' predictor network.")


METRICS = (
    MetricSpec("candidate.accuracy", "holdout accuracy of the unmitigated candidate", True),
    MetricSpec("candidate.*", "a gated fairness metric of the candidate on the holdout", None),
    MetricSpec("variant.*.accuracy", "holdout accuracy of one mitigated variant", True),
    MetricSpec("variant.*", "a gated fairness metric of one variant on the holdout", None),
    MetricSpec("recommended.accuracy", "holdout accuracy of the recommended variant", True),
    MetricSpec("recommended.*", "a gated fairness metric of the recommended variant", None),
    MetricSpec(
        "accuracy_cost",
        "candidate accuracy minus recommended accuracy (paired bootstrap interval)",
        False,
    ),
    MetricSpec("variants_meeting_gates", "mitigated variants that meet every fairness gate", True),
    MetricSpec("candidate_meets_gates", "1 when the candidate already meets the fairness gates", True),
)


# -- gates ---------------------------------------------------------------------------


def _target_gates(ctx: CheckContext, params: MitigationParams) -> tuple[dict[str, GateBound], str]:
    if params.fairness_gates and params.gates_from is None:
        return dict(params.fairness_gates), "fairness_gates"
    checks = ctx.suite_checks()
    if params.gates_from is not None:
        found = [c for c in checks if c.id == params.gates_from]
        if not found:
            raise ValueError(f"gates_from: no check with id '{params.gates_from}' in this suite")
        source = found[0]
    else:
        fairness = [c for c in checks if c.uses == "bias.group_fairness" and c.gate]
        if not fairness:
            raise ValueError(
                "no fairness gates to meet: set 'fairness_gates', or 'gates_from' naming a "
                "gated bias.group_fairness check"
            )
        source = fairness[0]
    gates = {**source.gate, **params.fairness_gates}
    return gates, f"check '{source.id}'" + (" + fairness_gates" if params.fairness_gates else "")


def _usable(name: str) -> bool:
    base = name.rsplit(".", 1)[-1]
    return name == "accuracy" or (base in DISPARITIES and not name.startswith("group."))


class _Levels:
    """The ``ctx`` that evaluate_grouping sees: intervals at the target gates' levels."""

    def __init__(self, gates: dict[str, GateBound], default: float) -> None:
        self.gates = gates
        self.default = default

    def confidence(self, name: str) -> float:
        bound = self.gates.get(name)
        return bound.confidence if bound is not None and bound.confidence else self.default


# -- data ----------------------------------------------------------------------------


def _labels(y: np.ndarray, positive: Any) -> tuple[list[Any], Any]:
    labels = sorted(np.unique(y).tolist(), key=lambda v: (isinstance(v, str), v))
    if positive is None:
        if len(labels) != 2:
            raise ValueError(f"the target has {len(labels)} labels; set 'positive_label'")
        positive = labels[-1]
    elif positive not in labels:
        raise ValueError(f"positive_label {positive!r} is not one of the labels {labels}")
    others = [v for v in labels if v != positive]
    if len(others) != 1:
        raise ValueError("bias.mitigation needs a binary target")
    return [others[0], positive], positive


def _model_input(obj: Any, frame: Any, features: list[str]) -> Any:
    """As the harness feeds a model: its declared columns, else an array of the features."""
    names = getattr(obj, "feature_names_in_", None)
    if names is not None:
        return frame[[str(c) for c in names]]
    if hasattr(obj, "n_features_in_"):
        return frame[features].to_numpy()
    return frame[features]


# -- training the variants ----------------------------------------------------------


def _fit_variant(
    method: str,
    estimator: Any,
    x: Any,
    y01: np.ndarray,
    y_raw: np.ndarray,
    sens: Any,
    features: list[str],
    sensitive: list[str],
    labels: list[Any],
    params: MitigationParams,
    seed: int,
) -> tuple[Any, dict[str, Any]]:
    """The deployable variant of ``method`` and facts about it."""
    from sklearn.base import clone

    from . import variants

    if method == "reweighing":
        from ._libraries import quiet_aif360

        with quiet_aif360():
            from aif360.sklearn.preprocessing import Reweighing
        xi = x.copy()
        xi.index = _prot_index(sens, sensitive)
        _, weights = Reweighing(prot_attr=sensitive).fit_transform(xi, y_raw)
        model = clone(estimator).fit(x, y_raw, sample_weight=np.asarray(weights, dtype=float))
        return model, {"randomised": False, "uses_sensitive_at_prediction": False}
    if method.startswith("adversarial"):
        from fairlearn.adversarial import AdversarialFairnessClassifier

        net = AdversarialFairnessClassifier(
            backend="torch",
            predictor_model=[params.adversarial_hidden, "leaky_relu"],
            adversary_model=[8, "leaky_relu"],
            constraints="demographic_parity" if method.endswith("_dp") else "equalized_odds",
            epochs=params.adversarial_epochs,
            batch_size=64,
            shuffle=True,
            learning_rate=0.005,
            random_state=seed,
        )
        net.fit(x, y01, sensitive_features=variants.group_keys(sens, sensitive))
        return _Decoded(net, labels), {
            "randomised": False,
            "uses_sensitive_at_prediction": False,
            "deployable": False,
            "epochs": params.adversarial_epochs,
        }
    if method.startswith("exponentiated_gradient"):
        from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient

        constraint = DemographicParity() if method.endswith("_dp") else EqualizedOdds()
        eg = ExponentiatedGradient(clone(estimator), constraints=constraint, eps=params.eps, max_iter=params.max_iter)
        eg.fit(x, y01, sensitive_features=variants.group_keys(sens, sensitive))
        model = variants.from_exponentiated_gradient(eg, features, labels, seed)
        used = sum(w > 0 for w in model.weights)
        return model, {
            "randomised": True,
            "uses_sensitive_at_prediction": False,
            "predictors": len(model.weights),
            "predictors_with_weight": int(used),
            "iterations": int(eg.last_iter_ + 1),
        }
    from fairlearn.postprocessing import ThresholdOptimizer

    base = clone(estimator).fit(x, y01)
    score = "predict_proba" if hasattr(base, "predict_proba") else "decision_function"
    to = ThresholdOptimizer(
        estimator=base,
        constraints="demographic_parity" if method.endswith("_dp") else "equalized_odds",
        prefit=True,
        predict_method=score,
        objective="accuracy_score",
    )
    to.fit(x, y01, sensitive_features=variants.group_keys(sens, sensitive))
    model = variants.from_threshold_optimizer(to, features, sensitive, labels, seed)
    return model, {"randomised": True, "uses_sensitive_at_prediction": True}


class _Decoded:
    """Predictions of a 0/1 classifier as the candidate's labels (adversarial methods)."""

    def __init__(self, model: Any, labels: list[Any]) -> None:
        self.model = model
        self.labels = labels

    def predict(self, x: Any) -> np.ndarray:
        p = np.asarray(self.model.predict(x)).astype(int)
        decoded: np.ndarray = np.where(p == 1, self.labels[1], self.labels[0])
        return decoded


def _prot_index(sens: Any, sensitive: list[str]) -> Any:
    import pandas as pd

    return pd.MultiIndex.from_frame(sens[sensitive].astype(str).reset_index(drop=True))


# -- scoring ------------------------------------------------------------------------


def _score(
    name: str,
    pred01: np.ndarray,
    y01: np.ndarray,
    sens: Any,
    sensitive: list[str],
    params: MitigationParams,
    levels: _Levels,
    rng: np.random.Generator,
    ctx: CheckContext,
) -> CheckOutput:
    """Every group-fairness metric of ``bias.group_fairness`` (same code), and accuracy."""
    from . import _counts as cnt

    scratch = CheckOutput()
    gf = GroupFairnessParams(
        model=None,
        dataset=params.dataset,
        sensitive=sensitive,
        privileged=params.privileged,
        min_group_size=params.min_group_size,
        n_resamples=params.n_resamples,
    )
    table = cnt.build_table([sens[c] for c in sensitive], y01, pred01)
    lv: Any = levels
    evaluate_grouping(scratch, lv, gf, table, sensitive, "", True, rng)
    if len(sensitive) > 1:
        for i, column in enumerate(sensitive):
            evaluate_grouping(scratch, lv, gf, cnt.marginal(table, i), [column], f"attribute.{column}.", True, rng)
    correct = (pred01 == y01).astype(np.float64)
    fields = _mean_interval(correct, levels.confidence("accuracy"), params.n_resamples, ctx.seed, "bootstrap")
    scratch.add("accuracy", float(correct.mean()), **fields)
    return scratch


def _mean_interval(values: np.ndarray, level: float, n_resamples: int, seed: int, kind: str) -> dict[str, Any]:
    """``n`` and, with resamples, the percentile-bootstrap interval of the mean of ``values``."""
    from .._bootstrap import bootstrap_weighted

    fields: dict[str, Any] = {"n": len(values)}
    if n_resamples > 0:
        iv = bootstrap_weighted(
            lambda w: (w @ values / w.sum(axis=1))[None, :],
            len(values),
            confidence=level,
            n_resamples=n_resamples,
            seed=seed,
        )
        fields.update(
            lower=float(iv.low[0]),
            upper=float(iv.high[0]),
            confidence=level,
            interval_method=f"{kind}-percentile ({n_resamples} resamples)",
        )
    return fields


def _meets(gates: dict[str, GateBound], scored: CheckOutput) -> tuple[bool, list[str]]:
    evaluation = evaluate_gates(gates, scored.metrics)
    return evaluation.passed, list(evaluation.reasons)


def _lower_better(metric: str) -> bool:
    return not metric.endswith(("_ratio",)) and metric != "accuracy"


def pareto_front(points: list[tuple[str, float, float]]) -> list[str]:
    """Names of the points not dominated in (accuracy ↑, disparity ↓)."""
    front = []
    for name, acc, dis in points:
        dominated = any((a >= acc and d <= dis) and (a > acc or d < dis) for n, a, d in points if n != name)
        if not dominated:
            front.append(name)
    return front


def _row(name: str, scored: CheckOutput, shown: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"variant": name, "method": DESCRIPTIONS.get(name, name)}
    for metric in ["accuracy", *shown]:
        m = scored.metrics.get(metric)
        row[metric] = (
            None if m is None else {"value": m.value, "lower": m.lower, "upper": m.upper, "confidence": m.confidence}
        )
    return row


# -- the check ----------------------------------------------------------------------


def run_mitigation(ctx: CheckContext, params: MitigationParams) -> CheckOutput:
    loaded = ctx.model(params.model)
    if loaded.input_kind != "tabular":
        raise ValueError(f"bias.mitigation retrains tabular models; '{params.model}' is a text model")
    from sklearn.base import is_classifier

    if not is_classifier(loaded.obj):
        raise ValueError(
            f"bias.mitigation retrains the candidate: model '{params.model}' "
            f"({type(loaded.obj).__name__}) is not a scikit-learn classifier"
        )
    gates, gates_source = _target_gates(ctx, params)
    unusable = [g for g in gates if not _usable(g)]
    gates = {k: v for k, v in gates.items() if _usable(k)}
    if not gates:
        raise ValueError(f"none of the fairness gates ({gates_source}) is a metric this check measures")
    train, hold = ctx.dataset(params.train), ctx.dataset(params.dataset)
    for ds in (train, hold):
        if ds.spec.target is None:
            raise ValueError(f"dataset '{ds.name}' declares no target")
    sensitive = list(params.sensitive or hold.sensitive or train.sensitive)
    if not sensitive:
        raise ValueError(f"dataset '{params.dataset}' declares no sensitive columns; set 'sensitive'")
    for ds in (train, hold):
        missing = [c for c in sensitive if c not in ds.frame.columns]
        if missing:
            raise ValueError(f"sensitive columns not in dataset '{ds.name}': {', '.join(missing)}")
    features = loaded.feature_names(hold)
    loaded.feature_names(train)  # the training data must hold the candidate's features too
    y_train_raw = train.y()
    labels, positive = _labels(np.concatenate([y_train_raw, hold.y()]), params.positive_label)
    y_train = (y_train_raw == positive).astype(np.int8)
    y_hold = (hold.y() == positive).astype(np.int8)
    x_train = _model_input(loaded.obj, train.frame, features)
    sens_train = train.frame[sensitive].reset_index(drop=True)
    sens_hold = hold.frame[sensitive].reset_index(drop=True)
    levels = _Levels(gates, ctx.default_confidence)
    out = CheckOutput()
    for g in unusable:
        out.warnings.append(f"gate '{g}' ({gates_source}) is not measured on variants; ignored")

    scored: dict[str, CheckOutput] = {}
    facts: dict[str, dict[str, Any]] = {}
    models: dict[str, Any] = {}
    preds: dict[str, np.ndarray] = {}
    cand_pred = np.asarray(ctx.predict(params.model, params.dataset)) == positive
    preds["candidate"] = cand_pred.astype(np.int8)
    facts["candidate"] = {
        "randomised": False,
        "uses_sensitive_at_prediction": False,
        "deployable": True,
    }
    for method in dict.fromkeys(params.methods):
        start = time.perf_counter()
        try:
            model, info = _fit_variant(
                method, loaded.obj, x_train, y_train, y_train_raw, sens_train,
                features, sensitive, labels, params, ctx.seed,
            )  # fmt: skip
        except Exception as exc:  # one method failing leaves the others to compare
            out.warnings.append(f"{method}: training failed ({type(exc).__name__}: {exc})")
            continue
        info["fit_seconds"] = round(time.perf_counter() - start, 3)
        info.setdefault("deployable", True)
        pred = np.asarray(model.predict(_model_input(model, hold.frame, features)))
        preds[method] = (pred == positive).astype(np.int8)
        models[method], facts[method] = model, info
    for name, pred in preds.items():
        scored[name] = _score(name, pred, y_hold, sens_hold, sensitive, params, levels, ctx.rng(), ctx)

    shown = list(gates if "demographic_parity_difference" in gates else [*gates, "demographic_parity_difference"])
    shown = [m for m in shown if m != "accuracy"]
    primary = next((m for m in gates if m != "accuracy"), "demographic_parity_difference")
    rows, points, passing = [], [], []
    for name, s in scored.items():
        ok, failed = _meets(gates, s)
        prefix = "candidate." if name == "candidate" else f"variant.{name}."
        for metric in ["accuracy", *shown]:
            if metric in s.metrics:
                out.metrics[prefix + metric] = s.metrics[metric]
        row = _row(name, s, shown) | facts[name] | {"meets_gates": ok, "failed_gates": failed}
        rows.append(row)
        if primary in s.metrics:
            value = s.metrics[primary].value
            disparity = value if _lower_better(primary) else -value
            if primary == "average_odds_difference" or primary.endswith(".average_odds_difference"):
                disparity = abs(value)
            points.append((name, s.metrics["accuracy"].value, disparity))
        if ok and name != "candidate" and facts[name].get("deployable", True):
            passing.append(name)
    front = pareto_front(points)
    for row in rows:
        row["on_pareto_front"] = row["variant"] in front
    cand_ok = next(r["meets_gates"] for r in rows if r["variant"] == "candidate")
    out.add("candidate_meets_gates", float(cand_ok))
    out.add("variants_meeting_gates", float(len(passing)), n=len(scored) - 1)
    details: dict[str, Any] = {
        "gates": {k: v.model_dump(exclude_none=True) for k, v in gates.items()},
        "gates_from": gates_source,
        "positive_label": str(positive),
        "sensitive": sensitive,
        "train": {"dataset": params.train, "rows": len(y_train), "sha256": train.sha256},
        "holdout": {"dataset": params.dataset, "rows": len(y_hold), "sha256": hold.sha256},
        "pareto_axes": {"accuracy": "higher is better", primary: "disparity (lower is better)"},
        "variants": rows,
        "pareto_front": front,
        "definitions": {
            "accuracy_cost": "accuracy(candidate) - accuracy(recommended) on the holdout; "
            "paired bootstrap over holdout rows",
            "metrics": "as bias.group_fairness computes them (fairlearn, AIF360), on the holdout",
        },
    }
    if not passing:
        out.warnings.append("no mitigated variant meets every fairness gate: nothing recommended")
        details["recommended"] = None
        out.details.update(details)
        return out
    order = list(scored)
    best = max(passing, key=lambda n: (scored[n].metrics["accuracy"].value, -order.index(n)))
    for metric in ["accuracy", *shown]:
        if metric in scored[best].metrics:
            out.metrics[f"recommended.{metric}"] = scored[best].metrics[metric]
    _accuracy_cost(out, ctx, params, preds["candidate"], preds[best], y_hold)
    recommended: dict[str, Any] = {
        "variant": best,
        "method": DESCRIPTIONS[best],
        **facts[best],
    }
    if params.save:
        recommended |= _save(ctx, best, models[best])
        out.artifacts["recommended_model"] = recommended["path"]
    if facts[best]["uses_sensitive_at_prediction"]:
        out.warnings.append(
            f"the recommended variant ({best}) reads {', '.join(sensitive)} at prediction time "
            "(group-specific thresholds): check that this is lawful for the use case"
        )
    details["recommended"] = recommended
    out.details.update(details)
    return out


def _accuracy_cost(
    out: CheckOutput,
    ctx: CheckContext,
    params: MitigationParams,
    cand: np.ndarray,
    best: np.ndarray,
    y: np.ndarray,
) -> None:
    diff = (cand == y).astype(np.float64) - (best == y).astype(np.float64)
    level = ctx.confidence("accuracy_cost")
    fields = _mean_interval(diff, level, params.n_resamples, ctx.seed, "paired bootstrap")
    out.add("accuracy_cost", float(diff.mean()), **fields)


def _save(ctx: CheckContext, name: str, model: Any) -> dict[str, Any]:
    """Write ``model`` with skops; its digest and the types a loader must trust."""
    import skops.io as sio

    data = sio.dumps(model)
    written = ctx.write_artifact(f"mitigated-{name}.skops", data)
    path = written.path
    trusted = [str(t) for t in sio.get_untrusted_types(data=data)]
    spec: dict[str, Any] = {"loader": "sklearn", "path": str(path)}
    if trusted:
        spec["options"] = {"trusted": trusted}
    return {
        "path": str(path),
        "sha256": written.sha256,
        "bytes": len(data),
        "trusted_types": trusted,
        "model_spec": spec,
    }
