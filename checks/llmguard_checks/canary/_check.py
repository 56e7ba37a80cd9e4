"""canary.compare's run: gather both arms, compare them, report (see the package docstring)."""

from __future__ import annotations

from typing import Any

import numpy as np

from llmguard_ops import (
    CheckContext,
    CheckOutput,
)

from .compare import (
    NEEDS_PROBA,
    Arm,
    Comparison,
    Settings,
    compare,
)
from .params import CompareParams
from .replay import run_replay


def _classes(y: np.ndarray, preds: list[np.ndarray]) -> np.ndarray:
    pooled = np.concatenate([np.asarray(y, dtype=object), *[np.asarray(p, dtype=object) for p in preds]])
    return np.unique(pooled.astype(np.asarray(y).dtype))


def _model_arm(
    ctx: CheckContext, model: str, dataset: str, classes: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    pred = np.asarray(ctx.predict(model, dataset, "predict"))
    if classes is None:
        return pred.astype(float).reshape(-1), None
    obj = ctx.model(model).obj
    if not hasattr(obj, "predict_proba"):
        return pred, None
    raw = np.asarray(ctx.predict(model, dataset, "predict_proba"), dtype=float)
    order = getattr(obj, "classes_", None)
    if order is None:
        return pred, raw
    proba = np.zeros((len(pred), len(classes)))
    index = {c: i for i, c in enumerate(classes.tolist())}
    for j, c in enumerate(np.asarray(order).tolist()):
        if c in index:
            proba[:, index[c]] = raw[:, j]
    return pred, proba


def _gather(ctx: CheckContext, p: CompareParams) -> tuple[np.ndarray, Arm, Arm, Settings, np.ndarray]:
    """Encoded target, both arms, settings, and the class labels (empty for regression)."""
    ds = ctx.dataset(p.dataset)
    y_raw = np.asarray(ds.y())
    frame = ds.frame
    regression = p.task == "regression"
    raw: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for role, model in (("candidate", p.candidate), ("baseline", p.baseline)):
        if p.predictions is not None:
            col = getattr(p.predictions, role)
            score = getattr(p.predictions, f"{role}_score")
            for c in (col, score):
                if c is not None and c not in frame.columns:
                    raise ValueError(f"predictions.{role}: column '{c}' is not in dataset '{p.dataset}'")
            s = None if score is None else np.asarray(frame[score], dtype=float)
            raw[role] = (np.asarray(frame[col]), s)
        else:
            raw[role] = (np.asarray(ctx.predict(model, p.dataset, "predict")), None)
    if regression:
        y = y_raw.astype(float)
        arms = [Arm(raw[r][0].astype(float).reshape(-1)) for r in ("candidate", "baseline")]
        return y, arms[0], arms[1], Settings(metrics=[], task="regression"), np.array([])
    classes = _classes(y_raw, [raw["candidate"][0], raw["baseline"][0]])
    if len(classes) < 2:
        raise ValueError(f"dataset '{p.dataset}' and both models show a single class; nothing to compare")
    index = {c: i for i, c in enumerate(classes.tolist())}
    positive = 1 if len(classes) == 2 else None
    if p.positive_label is not None:
        if p.positive_label not in index:
            raise ValueError(f"positive_label {p.positive_label!r} is not one of the labels {classes.tolist()}")
        positive = index[p.positive_label]
    arms = []
    for role, model in (("candidate", p.candidate), ("baseline", p.baseline)):
        pred, score = raw[role]
        if p.predictions is not None:
            proba = None
            if score is not None:
                if len(classes) != 2:
                    raise ValueError("score columns give P(positive class) and need a binary target")
                j = positive if positive is not None else 1
                proba = np.zeros((len(pred), 2))
                proba[:, j], proba[:, 1 - j] = score, 1 - score
        else:
            pred, proba = _model_arm(ctx, model, p.dataset, classes)
        arms.append(Arm(np.array([index[v] for v in pred.tolist()]), proba))
    settings = Settings(
        metrics=[],
        n_classes=len(classes),
        positive=positive,
        average="binary" if len(classes) == 2 else "macro",
    )
    return np.array([index[v] for v in y_raw.tolist()]), arms[0], arms[1], settings, classes


def _disagreements(
    ctx: CheckContext,
    p: CompareParams,
    y: np.ndarray,
    cand: Arm,
    base: Arm,
    classes: np.ndarray,
    positive: int | None,
) -> list[dict[str, Any]]:
    """The ``top_k`` rows where the two models differ most."""
    if p.top_k == 0:
        return []
    if cand.proba is not None and base.proba is not None:
        gap = 0.5 * np.abs(cand.proba - base.proba).sum(axis=1)  # total variation distance
        what = "probability gap (total variation)"
    elif len(classes) == 0:
        gap = np.abs(cand.pred - base.pred)
        what = "absolute prediction gap"
    else:
        gap = (cand.pred != base.pred).astype(float)
        what = "label disagreement"
    order = np.argsort(-gap, kind="stable")[: p.top_k]
    frame = ctx.dataset(p.dataset).frame
    ids = frame[p.id_column].to_numpy() if p.id_column else frame.index.to_numpy()
    rows = []
    for i in order:
        if gap[i] <= 0:
            break

        def label(v: Any) -> Any:
            return str(classes[int(v)]) if len(classes) else float(v)

        row: dict[str, Any] = {
            "row": _plain(ids[i]),
            "gap": round(float(gap[i]), 6),
            "measure": what,
            "target": label(y[i]),
            "candidate": label(cand.pred[i]),
            "baseline": label(base.pred[i]),
        }
        if cand.proba is not None and base.proba is not None and positive is not None:
            row["candidate_p"] = round(float(cand.proba[i, positive]), 6)
            row["baseline_p"] = round(float(base.proba[i, positive]), 6)
        rows.append(row)
    return rows


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _report(out: CheckOutput, comp: Comparison, s: Settings, n_resamples: int, interval: str) -> None:
    for m, d in comp.deltas.items():
        fields: dict[str, Any] = {"n": comp.n, "p_value": d.p_adjusted}
        if d.lower is not None:
            fields.update(
                lower=d.lower,
                upper=d.upper,
                confidence=s.confidence.get(m, s.default_confidence),
                interval_method=f"paired bootstrap-{interval} ({n_resamples} resamples)",
            )
        out.add(f"{m}_delta", d.value, **fields)
    ag: dict[str, Any] = {"n": comp.n}
    if comp.agreement_interval is not None:
        ag.update(
            lower=comp.agreement_interval[0],
            upper=comp.agreement_interval[1],
            confidence=s.default_confidence,
            interval_method=f"bootstrap-{interval} ({n_resamples} resamples)",
        )
    out.add("agreement_rate", comp.agreement_rate, **ag)
    out.details["comparison"] = [
        {
            "metric": m,
            "candidate": d.candidate,
            "baseline": d.baseline,
            "delta": d.value,
            "lower": d.lower,
            "upper": d.upper,
            "test": d.test.name,
            "statistic": d.test.statistic,
            "p_value_raw": d.test.p_value,
            "p_value": d.p_adjusted,
            "p_harm_raw": d.test.p_harm,
            "p_harm": d.p_harm_adjusted,
            "test_detail": d.test.detail,
        }
        for m, d in comp.deltas.items()
    ]
    out.details["correction"] = {
        "holm": "Holm step-down over the compared metrics (family-wise error)",
        "bh": "Benjamini-Hochberg over the compared metrics (false discovery rate)",
        "none": "none",
    }[comp.correction]
    out.warnings.extend(comp.notes)


def _generative(obj: Any) -> bool:
    """A model that writes text: a causal LM, an endpoint, a python generate()/chat() model."""
    if getattr(obj, "input_kind", "tabular") != "text":
        return False
    if getattr(obj, "task", None) == "sequence-classification":
        return False
    has_gen = callable(getattr(obj, "generate", None)) or callable(getattr(obj, "chat", None))
    return has_gen and (
        getattr(obj, "task", None) == "causal-lm"
        or not hasattr(obj, "predict_proba")
        or getattr(obj, "is_remote", False)
    )


def run_compare_generation(ctx: CheckContext, p: CompareParams) -> CheckOutput:
    """canary.compare on generated text: paired deltas of generation metrics over items."""
    from ..generation.scoring import ScoreSettings, report, score

    if p.predictions is not None:
        raise ValueError("task generation runs both models; logged 'predictions' columns are not supported")
    ds = ctx.dataset(p.dataset)
    refs = [None if v is None or v != v else str(v) for v in ds.y()]
    metrics = list(p.metrics) if p.metrics is not None else ["exact_match", "token_f1"]
    lexical = [m for m in metrics if m in ("exact_match", "token_f1", "semantic_similarity")]
    if "pass_rate" in metrics and p.pass_ is None:
        raise ValueError("pass_rate needs a pass criterion ('pass:')")
    if "format_valid_rate" in metrics and p.format is None:
        raise ValueError("format_valid_rate needs 'format:'")
    s = ScoreSettings(
        metrics=lexical,
        criterion=p.pass_,
        format=p.format,
        embedding_model=p.embedding_model,
        n_resamples=p.n_resamples,
    )
    scored = []
    gens = []
    for model in (p.candidate, p.baseline):
        g = ctx.generate(model, p.dataset, samples=1)
        gens.append(g)
        scored.append(score(ctx, s, model, [c[-1]["content"] for c in g.conversations], g.texts, refs))
    tmp = CheckOutput()
    report(tmp, ctx, s, scored[0], scored[1])
    out = CheckOutput()
    wanted = {f"{m}_delta" for m in metrics}
    for name, metric in tmp.metrics.items():
        if name in wanted:
            out.metrics[name] = metric
    from ..generation.text import normalize

    a, b = gens[0].first(), gens[1].first()
    agree = np.array([normalize(x) == normalize(y) for x, y in zip(a, b, strict=True)], dtype=float)
    out.add("agreement_rate", float(agree.mean()), n=len(agree))
    harm = [d["p_harm"] for d in tmp.details.get("mcnemar", {}).values()]
    out.details.update(
        candidate=p.candidate,
        baseline=p.baseline,
        n=len(a),
        task="generation",
        mcnemar=tmp.details.get("mcnemar", {}),
        worst_items=tmp.details.get("worst_items", []),
        generation={"candidate": gens[0].describe(), "baseline": gens[1].describe()},
        agreement="share of rows whose two answers are equal after SQuAD normalisation",
    )
    if harm:
        out.add("regression_detected", float(min(harm) < p.alpha), p_value=min(harm), n=len(a))
    return out


def run_compare(ctx: CheckContext, p: CompareParams) -> CheckOutput:
    """Run canary.compare."""
    auto = (
        p.task == "classification"
        and p.metrics is None
        and p.predictions is None
        and _generative(ctx.model(p.candidate).obj)
    )
    if p.task == "generation" or auto:
        return run_compare_generation(ctx, p)
    y, cand, base, settings, classes = _gather(ctx, p)
    has_proba = cand.proba is not None and base.proba is not None
    out = CheckOutput()
    if p.metrics is None:
        metrics = ["mae", "rmse"] if p.task == "regression" else ["accuracy"] + (["roc_auc"] if has_proba else [])
        if p.task == "classification" and not has_proba:
            out.warnings.append("a model has no probabilities: roc_auc_delta not reported")
    else:
        metrics = list(p.metrics)
        missing = sorted(set(metrics) & NEEDS_PROBA) if not has_proba and p.task == "classification" else []
        if missing:
            raise ValueError(f"metrics {missing} need probabilities from both models (predict_proba or score columns)")
    settings.metrics = metrics
    settings.confidence = {m: ctx.confidence(f"{m}_delta") for m in metrics}
    settings.default_confidence = ctx.confidence("agreement_rate")
    settings.n_resamples, settings.n_permutations = p.n_resamples, p.n_permutations
    settings.interval, settings.correction = p.interval, p.correction
    settings.mcnemar_exact_below, settings.seed = p.mcnemar_exact_below, ctx.seed
    comp = compare(y, cand, base, settings)
    _report(out, comp, settings, p.n_resamples, p.interval)
    harm = min(d.p_harm_adjusted for d in comp.deltas.values())
    out.add("regression_detected", float(harm < p.alpha), p_value=harm, n=comp.n)
    out.details.update(
        candidate=p.candidate if p.predictions is None else f"column {p.predictions.candidate}",
        baseline=p.baseline if p.predictions is None else f"column {p.predictions.baseline}",
        n=comp.n,
        alpha=p.alpha,
        regression_detected=(
            f"1 when any metric's one-sided {p.correction}-adjusted p-value for 'candidate worse' is below {p.alpha}"
        ),
        disagreements=_disagreements(ctx, p, y, cand, base, classes, settings.positive),
    )
    if p.replay is not None:
        run_replay(ctx, p.replay, ctx.dataset(p.dataset).frame, y, cand, base, settings, out)
    return out
