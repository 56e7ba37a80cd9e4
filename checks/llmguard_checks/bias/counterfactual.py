"""bias.counterfactual: does swapping a demographic term change what the model says?

Templates (``The {person} applied for the loan``) are filled with the aligned terms of
each axis (woman / man, Muslim person / Jewish person, ...); every pair of groups of the
same template and slot is a counterfactual pair. The model's outputs for the two texts
are compared:

* a classifier (anything with ``predict_proba``, e.g. a transformers sequence classifier):
  a *flip* when the predicted class differs, a *score gap* |P(c | a) - P(c | b)| for the
  score class c;
* a generator (``generate``, e.g. a transformers causal LM): its continuations are
  compared as text (flip = they differ once the swapped term is masked; similarity by
  difflib) and, given a ``scorer`` model (e.g. a local sentiment classifier), scored:
  flips and gaps of the scorer on the two continuations.

Intervals: scipy's bootstrap over templates (pairs of one template are not independent),
through resampling weights (:mod:`.._bootstrap`).
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llmguard_ops import CheckContext, CheckOutput, CheckSkipped, DatasetRef, MetricSpec, ModelRef

from .._bootstrap import bootstrap_weighted
from .terms import (
    PLACEHOLDER,
    Counterfactual,
    counterfactuals,
    load_lexicon,
    load_templates,
    load_terms,
    swaps,
)


class CounterfactualParams(BaseModel):
    """Parameters of ``bias.counterfactual``."""

    model: ModelRef = Field("candidate", description="Text model: a classifier (predict_proba) or a generator.")
    scorer: ModelRef | None = Field(
        None, description="Classifier scoring a generator's outputs (e.g. a local sentiment model)."
    )
    axes: list[str] | None = Field(None, description="Axes of the term file to use (default: all).")
    dataset: DatasetRef | None = Field(
        None,
        description="Swap terms in this dataset's text column instead of filling templates.",
    )
    terms: str | None = Field(None, description="Term-list YAML file (default: the shipped data/terms.yaml).")
    templates: list[str] | str | None = Field(
        None,
        description="Templates with one {person}, inline or a YAML list file (default: shipped).",
    )
    names: str | bool = Field(
        True,
        description="Dataset swaps also exchange first names by perceived group: the shipped "
        "data/names.yaml (true), your file, or none (false).",
    )
    pronouns: str | bool = Field(
        True,
        description="Dataset swaps also exchange pronouns with agreement (he/she/they, "
        "his/her/their...): the shipped data/pronouns.yaml (true), your file, or none (false).",
    )
    joint_axes: list[str] | None = Field(
        None,
        description="Dataset swaps: also swap these axes together (e.g. [gender, ethnicity]).",
    )
    score_label: str | int | None = Field(
        None,
        description="Class whose probability is the score, by name (id2label) or index (default: the last class).",
    )
    compare: Literal["auto", "classifier", "generation"] = Field(
        "auto",
        description="How outputs are compared (auto: classifier when the model has predict_proba).",
    )
    n_resamples: int = Field(1000, ge=0, description="Bootstrap resamples over templates (0: no intervals).")
    worst: int = Field(10, ge=0, description="Worst pairs shown as examples.")
    report_pairs: int = Field(200, ge=0, description="Pairs listed in the report (all are in the artifact).")
    model_config = ConfigDict(extra="forbid")


METRICS = (
    MetricSpec("flip_rate", "share of counterfactual pairs whose predicted class differs", False),
    MetricSpec("mean_score_gap", "mean |score(a) - score(b)| over counterfactual pairs", False),
    MetricSpec("max_score_gap", "largest |score(a) - score(b)| over counterfactual pairs", False),
    MetricSpec("mean_text_similarity", "generators: mean difflib similarity of the two outputs", True),
    MetricSpec("axis.*.flip_rate", "flip_rate within one axis (e.g. axis.gender.flip_rate)", False),
    MetricSpec("axis.*.mean_score_gap", "mean_score_gap within one axis", False),
)


def _class_names(obj: Any, k: int) -> list[str]:
    config = getattr(getattr(obj, "model", None), "config", None)
    id2label = getattr(config, "id2label", None)
    if id2label and len(id2label) == k:
        return [str(id2label[i]) for i in range(k)]
    classes = getattr(obj, "classes_", None)
    if classes is not None and len(classes) == k:
        return [str(c) for c in classes]
    return [str(i) for i in range(k)]


def _score_index(names: list[str], wanted: str | int | None) -> int:
    if wanted is None:
        return len(names) - 1
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        if not 0 <= wanted < len(names):
            raise ValueError(f"score_label {wanted} is out of range for {len(names)} classes")
        return wanted
    if str(wanted) not in names:
        raise ValueError(f"score_label '{wanted}' is not a class of the model: {names}")
    return names.index(str(wanted))


def _classify(obj: Any, texts: list[str], wanted: str | int | None) -> tuple[np.ndarray, np.ndarray, str]:
    proba = np.asarray(obj.predict_proba(texts), dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] != len(texts):
        raise ValueError(f"predict_proba returned shape {proba.shape} for {len(texts)} texts")
    names = _class_names(obj, proba.shape[1])
    j = _score_index(names, wanted)
    return proba.argmax(axis=1), proba[:, j], names[j]


def _is_generator(obj: Any, compare: str) -> bool:
    if compare != "auto":
        return compare == "generation"
    if getattr(obj, "task", None) == "causal-lm":
        return True
    return not hasattr(obj, "predict_proba") and hasattr(obj, "generate")


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.split(), b.split()).ratio()


def _outputs(ctx: CheckContext, params: CounterfactualParams, texts: list[str]) -> dict[str, Any]:
    """Per text: label, score and (generators) the output text."""
    obj = ctx.model(params.model).obj
    if _is_generator(obj, params.compare):
        if not hasattr(obj, "generate"):
            raise ValueError(f"model '{params.model}' has no generate()")
        generated = [str(g) for g in obj.generate(texts)]
        out: dict[str, Any] = {"mode": "generation", "text": generated}
        if params.scorer is not None:
            labels, scores, name = _classify(ctx.model(params.scorer).obj, generated, params.score_label)
            out.update(label=labels, score=scores, score_label=name, scored_by=params.scorer)
        return out
    if not hasattr(obj, "predict_proba"):
        raise ValueError(f"model '{params.model}' has neither predict_proba() nor generate()")
    labels, scores, name = _classify(obj, texts, params.score_label)
    return {"mode": "classifier", "label": labels, "score": scores, "score_label": name}


def _pair_records(cfs: list[Counterfactual], index: dict[str, int], outs: dict[str, Any]) -> list[dict[str, Any]]:
    records = []
    labels, scores, texts = outs.get("label"), outs.get("score"), outs.get("text")
    for cf in cfs:
        for a, b in cf.pairs():
            ia, ib = index[cf.texts[a]], index[cf.texts[b]]
            rec: dict[str, Any] = {
                "axis": cf.axis,
                "template": cf.template,
                "slot": cf.slot,
                "groups": [a, b],
                "terms": [cf.terms[a], cf.terms[b]],
                "inputs": [cf.texts[a], cf.texts[b]],
            }
            if texts is not None:
                # mask the swapped term so that echoing it back is not counted as a change
                ta = texts[ia].replace(cf.terms[a], PLACEHOLDER)
                tb = texts[ib].replace(cf.terms[b], PLACEHOLDER)
                rec.update(outputs=[texts[ia], texts[ib]], similarity=round(_similarity(ta, tb), 6))
                rec["flip"] = bool(ta.strip() != tb.strip())
            if labels is not None and scores is not None:
                rec.update(
                    labels=[int(labels[ia]), int(labels[ib])],
                    scores=[round(float(scores[ia]), 6), round(float(scores[ib]), 6)],
                    score_gap=float(abs(scores[ia] - scores[ib])),
                    flip=bool(labels[ia] != labels[ib]),
                )
            records.append(rec)
    return records


def _add_rates(
    out: CheckOutput,
    ctx: CheckContext,
    params: CounterfactualParams,
    records: list[dict[str, Any]],
    prefix: str = "",
) -> None:
    """flip_rate and mean_score_gap with intervals from a bootstrap over templates."""
    # the resampling units are the templates (or dataset texts) that produced a pair
    _, units = np.unique(np.array([r["template"] for r in records]), return_inverse=True)
    n_templates = int(units.max()) + 1
    pairs = np.bincount(units, minlength=n_templates).astype(np.float64)
    columns = {"flip_rate": np.array([float(r["flip"]) for r in records])}
    if "score_gap" in records[0]:
        columns["mean_score_gap"] = np.array([r["score_gap"] for r in records])
    if prefix == "" and "similarity" in records[0]:
        columns["mean_text_similarity"] = np.array([r["similarity"] for r in records])
    sums = {k: np.bincount(units, weights=v, minlength=n_templates) for k, v in columns.items()}
    names = list(sums)

    def stat(w: np.ndarray) -> np.ndarray:
        den = w @ pairs
        return np.vstack([(w @ sums[k]) / den for k in names])

    points = stat(np.ones((1, n_templates)))[:, 0]
    used = int((pairs > 0).sum())
    intervals: dict[str, tuple[float, float, float]] = {}
    if params.n_resamples > 0 and used > 1:
        for level in sorted({ctx.confidence(prefix + k) for k in names}):
            res = bootstrap_weighted(stat, n_templates, confidence=level, n_resamples=params.n_resamples, seed=ctx.seed)
            for i, k in enumerate(names):
                if ctx.confidence(prefix + k) == level:
                    intervals[k] = (float(res.low[i]), float(res.high[i]), level)
    elif params.n_resamples > 0 and not prefix:
        out.warnings.append("a single template: no interval (the bootstrap resamples templates)")
    for i, k in enumerate(names):
        fields: dict[str, Any] = {"n": len(records)}
        if k in intervals and all(np.isfinite(intervals[k][:2])):
            low, high, level = intervals[k]
            fields.update(
                lower=low,
                upper=high,
                confidence=level,
                interval_method=f"bootstrap-percentile over {used} templates ({params.n_resamples} resamples)",
            )
        out.add(prefix + k, float(points[i]), **fields)


def _direction(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per axis: mean score of each group and mean signed gap of each ordered pair."""
    by_group: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    gaps: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        a, b = r["groups"]
        sa, sb = r["scores"]
        by_group[r["axis"]][a].append(sa)
        by_group[r["axis"]][b].append(sb)
        gaps[r["axis"]][f"{a} - {b}"].append(sa - sb)
    return {
        axis: {
            "mean_score": {g: round(float(np.mean(v)), 6) for g, v in groups.items()},
            "mean_signed_gap": {p: round(float(np.mean(v)), 6) for p, v in gaps[axis].items()},
        }
        for axis, groups in by_group.items()
    }


def _counterfactual_sets(
    ctx: CheckContext, params: CounterfactualParams, terms: dict[str, dict[str, list[str]]]
) -> tuple[list[Counterfactual], int, dict[str, Any]]:
    """Filled templates, or swapped texts of a dataset; with the number of units and facts."""
    if params.dataset is None:
        templates, facts = load_templates(params.templates, ctx.base_dir)
        return counterfactuals(templates, terms), len(templates), facts
    if params.templates is not None:
        raise ValueError("set either 'templates' or 'dataset', not both")
    ds = ctx.dataset(params.dataset)
    if ds.spec.text is None:
        raise ValueError(f"dataset '{params.dataset}' declares no 'text' column")
    texts = [str(t) for t in ds.frame[ds.spec.text].tolist()]
    unknown = [a for a in params.joint_axes or [] if a not in terms]
    if unknown:
        raise ValueError(f"joint_axes names axes not in use: {', '.join(unknown)}")
    lexicon, lexicon_facts = load_lexicon(terms, params.names, params.pronouns, ctx.base_dir)
    cfs = swaps(texts, terms, lexicon, params.joint_axes)
    matched = len({cf.template for cf in cfs})
    facts = {
        "source": f"dataset '{params.dataset}' column '{ds.spec.text}'",
        "sha256": ds.sha256,
        "texts": str(len(texts)),
        "texts_with_a_term": str(matched),
        **{k: f"{v['source']} (sha256 {v['sha256'][:12]}…)" for k, v in lexicon_facts.items()},
    }
    return cfs, matched, facts


def run_counterfactual(ctx: CheckContext, params: CounterfactualParams) -> CheckOutput:
    base = ctx.base_dir
    terms, terms_facts = load_terms(params.terms, base, params.axes)
    cfs, units, template_facts = _counterfactual_sets(ctx, params, terms)
    if not cfs:
        raise CheckSkipped(f"no text of dataset '{params.dataset}' mentions a term of {sorted(terms)}")
    texts = sorted({t for cf in cfs for t in cf.texts.values()})
    index = {t: i for i, t in enumerate(texts)}
    outs = _outputs(ctx, params, texts)
    records = _pair_records(cfs, index, outs)
    out = CheckOutput()
    if outs["mode"] == "generation" and "score" not in outs:
        out.warnings.append("generator without a 'scorer': flips compare the output texts; no score gap")
    _add_rates(out, ctx, params, records)
    joint = params.joint_axes or []
    reported = [*terms, *(["+".join(joint)] if params.dataset and len(joint) > 1 else [])]
    for axis in reported:
        chosen = [r for r in records if r["axis"] == axis]
        if chosen:
            _add_rates(out, ctx, params, chosen, f"axis.{axis}.")
        else:
            out.warnings.append(f"axis '{axis}': no text mentions one of its terms; not reported")
    has_scores = "score_gap" in records[0]
    if has_scores:
        out.add("max_score_gap", max(r["score_gap"] for r in records), n=len(records))
    key = (lambda r: (r["score_gap"], r["flip"])) if has_scores else (lambda r: (r["flip"], -r["similarity"]))
    ranked = sorted(records, key=key, reverse=True)
    pairs = ctx.write_artifact(
        "counterfactual_pairs.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ranked)
    )
    out.artifacts["pairs"] = str(pairs.path)
    out.details.update(
        mode=outs["mode"],
        score_label=outs.get("score_label"),
        scored_by=outs.get("scored_by"),
        n_texts=len(texts),
        n_pairs=len(records),
        n_units=units,
        axes={a: sorted(g) for a, g in terms.items()},
        terms=terms_facts,
        templates=template_facts,
        worst_pairs=ranked[: params.worst],
        pairs=ranked[: params.report_pairs],
        pairs_listed=min(len(ranked), params.report_pairs),
        direction=_direction(records) if has_scores else None,
        definitions={
            "flip_rate": "share of pairs whose predicted class differs"
            + (" (scorer on the outputs)" if outs["mode"] == "generation" and has_scores else "")
            + (
                "; generators without scorer: outputs differ after masking the term"
                if outs["mode"] == "generation" and not has_scores
                else ""
            ),
            "mean_score_gap": "mean |P({c}|a) - P({c}|b)|".format(c=outs.get("score_label")),
        },
    )
    return out
