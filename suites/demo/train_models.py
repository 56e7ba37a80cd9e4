"""Train the demo's baseline (champion) and candidate models, deterministically.

Both are scikit-learn pipelines fitted on ``data/train.csv`` with fixed seeds, fed the
feature columns only (never ``sex``, ``age_group`` or ``applicant_id``):

* ``models/champion.skops``: last year's model in production: a shallow decision tree
  on four features;
* ``models/candidate.skops``: the challenger: logistic regression on every feature.

They are saved with skops, which loads without running code from the file (the demo
suite lists the one non-default type it trusts, the tree's ``Tree``). The same models are
also written as ``.joblib`` (pickle) for the example suites that show pickle handling.

    python suites/demo/train_models.py
"""

from __future__ import annotations

from pathlib import Path

import joblib
import pandas as pd
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

HERE = Path(__file__).parent
NUMERIC = ["age", "income", "debt_ratio", "credit_history_months", "num_accounts"]
CATEGORICAL = ["employment", "purpose"]
TARGET = "approved"


def _prep(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ]
    )


def main() -> None:
    train = pd.read_csv(HERE / "data" / "train.csv")
    x, y = train[NUMERIC + CATEGORICAL], train[TARGET]
    old = ["income", "debt_ratio", "num_accounts", "employment"]
    champion = Pipeline(
        [
            ("prep", _prep(["income", "debt_ratio", "num_accounts"], ["employment"])),
            ("clf", DecisionTreeClassifier(max_depth=4, min_samples_leaf=40, random_state=0)),
        ]
    ).fit(train[old], y)
    candidate = Pipeline(
        [
            ("prep", _prep(NUMERIC, CATEGORICAL)),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    ).fit(x, y)
    out = HERE / "models"
    out.mkdir(exist_ok=True)
    for name, model in (("champion", champion), ("candidate", candidate)):
        sio.dump(model, out / f"{name}.skops")
        joblib.dump(model, out / f"{name}.joblib")
    print(f"wrote {out / 'champion.skops'} and {out / 'candidate.skops'} (and .joblib copies)")


if __name__ == "__main__":
    main()
