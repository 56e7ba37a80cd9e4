"""data.integrity: train/evaluation overlap, leakage suspects, label errors.

* **Exact overlap**: a 64-bit hash of each row over the feature columns both datasets
  share with the same kind (numbers compared as float64, the rest as text); an
  evaluation row whose hash occurs in the training set is a copy.
* **Near-duplicate text**: rapidfuzz's ``fuzz.ratio`` (normalised Indel similarity,
  0-100) of every evaluation text against every training text (``process.cdist``, in
  chunks); a pair at or above ``near_duplicate_threshold`` is a near-duplicate.
* **Leakage suspects**: each feature alone, in a shallow decision tree, predicts the
  training target out of fold (``cross_val_predict``); a feature whose AUC (classes) or
  R² (numbers) reaches ``leakage_threshold`` is a suspect.
* **Label issues**: cleanlab's confident learning (``cleanlab.filter.find_label_issues``)
  on out-of-fold predicted probabilities of a cross-validated model of the evaluation
  set. Leakage suspects are left out of that model: a leak lets it memorise the recorded
  labels, wrong ones included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from llmguard_ops import CheckContext, CheckOutput

from ._frame import add_rate, design_matrix, example_rows, is_numeric, model_columns, row_hashes
from .params import IntegrityParams


def run_integrity(ctx: CheckContext, params: IntegrityParams) -> CheckOutput:
    train = ctx.dataset(params.train)
    evaluation = ctx.dataset(params.evaluation)
    if train.name == evaluation.name:
        raise ValueError(f"'train' and 'evaluation' name the same dataset ({train.name})")
    out = CheckOutput()
    tf, ef = train.frame, evaluation.frame
    target = evaluation.target or train.target
    excluded = set(params.exclude) | set(train.sensitive) | set(evaluation.sensitive)
    shared = [c for c in ef.columns if c in tf.columns and c not in excluded and c != target]
    mismatched = [c for c in shared if is_numeric(tf[c]) != is_numeric(ef[c])]
    features = [c for c in shared if c not in mismatched]
    if mismatched:
        out.warnings.append(
            f"columns whose kind differs between the datasets are left out of the overlap and the "
            f"models: {', '.join(mismatched)}"
        )
    out.details.update(
        train=train.name, evaluation=evaluation.name, target=target, features=features, kind_mismatch=mismatched
    )

    _exact_overlap(ctx, out, tf, ef, features, params.examples)
    texts = (
        params.text
        if params.text is not None
        else sorted({t for t in (train.spec.text, evaluation.spec.text) if t is not None})
    )
    if texts:
        _near_duplicates(ctx, out, tf, ef, texts, params)

    suspects: list[str] = []
    if target is None:
        out.warnings.append("no target declared: leakage suspects and label issues are not computed")
        return out
    if params.leakage and target in tf.columns:
        suspects = _leakage(ctx, out, tf, target, features, params)
    if params.label_issues and target in ef.columns:
        _label_issues(ctx, out, ef, target, [c for c in features if c not in suspects], params)
    return out


def _exact_overlap(
    ctx: CheckContext, out: CheckOutput, tf: pd.DataFrame, ef: pd.DataFrame, features: list[str], examples: int
) -> None:
    if not features:
        out.warnings.append("no feature column shared by both datasets: exact overlap not computed")
        return
    seen = set(row_hashes(tf, features).tolist())
    hits = np.fromiter((h in seen for h in row_hashes(ef, features).tolist()), dtype=bool, count=len(ef))
    add_rate(out, ctx, "exact_overlap_rate", int(hits.sum()), len(ef))
    out.add("exact_overlap_rows", float(hits.sum()), n=len(ef))
    out.details["exact_overlap"] = {
        "method": "64-bit row hash over the shared features (pandas hash_pandas_object)",
        "examples": example_rows(ef, np.flatnonzero(hits), examples),
    }


def _near_duplicates(
    ctx: CheckContext, out: CheckOutput, tf: pd.DataFrame, ef: pd.DataFrame, texts: list[str], params: IntegrityParams
) -> None:
    from rapidfuzz import fuzz, process

    missing = [t for t in texts if t not in tf.columns or t not in ef.columns]
    if missing:
        raise ValueError(f"text column(s) {', '.join(missing)} missing from one of the datasets")

    def joined(df: pd.DataFrame) -> list[str]:
        rows: list[str] = (
            df[texts].astype("object").where(df[texts].notna(), "").astype(str).agg(" ".join, axis=1).tolist()
        )
        return rows

    a, b = joined(ef), joined(tf)
    if len(a) * len(b) > params.max_text_pairs:
        raise ValueError(
            f"near-duplicate search over {len(a)} × {len(b)} texts exceeds max_text_pairs "
            f"({params.max_text_pairs}); raise it or sample the datasets"
        )
    best = np.zeros(len(a))
    match = np.zeros(len(a), dtype=np.int64)
    for start in range(0, len(a), 256):
        scores = process.cdist(a[start : start + 256], b, scorer=fuzz.ratio, dtype=np.float32, workers=1)
        best[start : start + 256] = scores.max(axis=1) if len(b) else 0
        match[start : start + 256] = scores.argmax(axis=1) if len(b) else 0
    near = best >= params.near_duplicate_threshold
    add_rate(out, ctx, "near_duplicate_rate", int(near.sum()), len(a))
    rows = np.flatnonzero(near)[: params.examples]
    out.details["near_duplicates"] = {
        "method": f"rapidfuzz fuzz.ratio ≥ {params.near_duplicate_threshold:g} (process.cdist, all pairs)",
        "columns": texts,
        "examples": [
            {
                "row": int(i),
                "train_row": int(match[i]),
                "score": float(best[i]),
                "text": a[i][:200],
                "train_text": b[int(match[i])][:200],
            }
            for i in rows
        ],
    }


def _task(y: pd.Series) -> str:
    from sklearn.utils.multiclass import type_of_target

    kind = type_of_target(y.to_numpy() if is_numeric(y) else y.astype(str).to_numpy())
    return "classification" if kind in ("binary", "multiclass") else "regression"


def _leakage(
    ctx: CheckContext, out: CheckOutput, tf: pd.DataFrame, target: str, features: list[str], params: IntegrityParams
) -> list[str]:
    from sklearn.metrics import r2_score, roc_auc_score
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    frame = tf[tf[target].notna()]
    y_raw = frame[target]
    task = _task(y_raw)
    numeric, categorical, dropped = model_columns(frame, features, params.categorical_max_unique)
    seed = ctx.seed % 2**31
    rows: list[dict[str, Any]] = []
    suspects: list[str] = []
    scores: dict[str, float] = {}
    if task == "classification":
        y = np.unique(y_raw.astype(str).to_numpy(), return_inverse=True)[1]
        if np.bincount(y).min() < params.folds:
            raise ValueError(f"a class of '{target}' has fewer rows than folds ({params.folds})")
        cv: Any = StratifiedKFold(params.folds, shuffle=True, random_state=seed)
        score_name = "auc"
    else:
        y = y_raw.astype("float64").to_numpy()
        cv = KFold(params.folds, shuffle=True, random_state=seed)
        score_name = "r2"
    for col in numeric + categorical:
        x = design_matrix(frame, [col] if col in numeric else [], [col] if col in categorical else [])
        if task == "classification":
            tree = DecisionTreeClassifier(max_leaf_nodes=16, min_samples_leaf=5, random_state=seed)
            proba = cross_val_predict(tree, x, y, cv=cv, method="predict_proba")
            score = float(
                roc_auc_score(y, proba[:, 1]) if proba.shape[1] == 2 else roc_auc_score(y, proba, multi_class="ovr")
            )
        else:
            reg = DecisionTreeRegressor(max_leaf_nodes=16, min_samples_leaf=5, random_state=seed)
            score = float(r2_score(y, cross_val_predict(reg, x, y, cv=cv)))
        out.add(f"feature_{score_name}.{col}", score, n=len(frame))
        suspect = score >= params.leakage_threshold
        if suspect:
            suspects.append(col)
        scores[col] = score
        rows.append({"feature": col, score_name: score, "suspect": suspect})
    rows.sort(key=lambda r: -scores[r["feature"]])
    out.add("leakage_suspects", float(len(suspects)), n=len(rows))
    if rows:
        out.add(f"max_feature_{score_name}", max(scores.values()), n=len(frame))
    out.details["leakage"] = {
        "method": f"one feature at a time, decision tree (16 leaves), {params.folds}-fold out-of-fold "
        f"{'ROC AUC' if task == 'classification' else 'R²'} on the training set",
        "threshold": params.leakage_threshold,
        "suspects": suspects,
        "features": rows,
        "left_out": dropped,
    }
    return suspects


def _label_issues(
    ctx: CheckContext, out: CheckOutput, ef: pd.DataFrame, target: str, features: list[str], params: IntegrityParams
) -> None:
    from cleanlab.filter import find_label_issues
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    labelled = np.flatnonzero(ef[target].notna().to_numpy())  # rows are reported by their position in ef
    frame = ef.iloc[labelled].reset_index(drop=True)
    if _task(frame[target]) != "classification":
        out.warnings.append("label issues: the target is not categorical; confident learning needs classes")
        return
    classes, y = np.unique(frame[target].astype(str).to_numpy(), return_inverse=True)
    if np.bincount(y).min() < params.folds:
        raise ValueError(f"a class of '{target}' has fewer rows than folds ({params.folds}) in the evaluation set")
    numeric, categorical, dropped = model_columns(frame, features, params.categorical_max_unique)
    if not numeric and not categorical:
        out.warnings.append("label issues: no usable feature")
        return
    model = _classifier(params.label_model, numeric, categorical, ctx.seed % 2**31)
    cv = StratifiedKFold(params.folds, shuffle=True, random_state=ctx.seed % 2**31)
    x = frame[numeric + categorical].copy()
    for c in categorical:  # one representation of text for the encoders (pandas may hold it as arrow strings)
        x[c] = x[c].astype("object").where(x[c].notna(), np.nan)
    proba = cross_val_predict(model, x, y, cv=cv, method="predict_proba")
    # n_jobs=1: cleanlab forks a process pool otherwise, which can deadlock in a process that
    # already runs threads (torch, BLAS, the runner's check threads)
    issues = find_label_issues(labels=y, pred_probs=proba, return_indices_ranked_by="self_confidence", n_jobs=1)
    add_rate(out, ctx, "label_issue_rate", len(issues), len(frame))
    out.add("label_issues", float(len(issues)), n=len(frame))
    listed = []
    for i in issues[: params.examples]:
        row = example_rows(ef, [labelled[i]], 1)[0]
        row["given_label"] = str(classes[y[i]])
        row["suggested_label"] = str(classes[int(np.argmax(proba[i]))])
        row["given_label_probability"] = float(proba[i, y[i]])
        listed.append(row)
    out.details["label_issues"] = {
        "method": f"cleanlab.filter.find_label_issues (confident learning) on {params.folds}-fold out-of-fold "
        f"probabilities of a {params.label_model} model",
        "features": numeric + categorical,
        "left_out": dropped,
        "suspected_rows": [int(labelled[i]) for i in issues],
        "examples": listed,
    }


def _classifier(kind: str, numeric: list[str], categorical: list[str], seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    if kind == "gradient_boosting":
        prep = ColumnTransformer(
            [
                ("num", "passthrough", numeric),
                (
                    "cat",
                    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
                    categorical,
                ),
            ]
        )
        return make_pipeline(prep, HistGradientBoostingClassifier(max_iter=100, random_state=seed))
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"), OneHotEncoder(handle_unknown="ignore")
                ),
                categorical,
            ),
        ]
    )
    return make_pipeline(prep, LogisticRegression(max_iter=1000))
