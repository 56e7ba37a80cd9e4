"""Train the demo's baseline (champion) and candidate models, deterministically.

Both are scikit-learn pipelines fitted on ``data/train.csv`` with fixed seeds, fed the
feature columns only (never ``sex``, ``age_group`` or ``applicant_id``):

* ``models/champion.joblib``: logistic regression (the model in production);
* ``models/candidate.joblib``: histogram gradient boosting (the challenger).

    python suites/demo/train_models.py
"""

from __future__ import annotations

from pathlib import Path

import joblib
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = Path(__file__).parent
NUMERIC = ["age", "income", "debt_ratio", "credit_history_months", "num_accounts"]
CATEGORICAL = ["employment", "purpose"]
TARGET = "approved"


def _prep() -> ColumnTransformer:
    return ColumnTransformer([
        ("num", StandardScaler(), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
    ])


def main() -> None:
    train = pd.read_csv(HERE / "data" / "train.csv")
    x, y = train[NUMERIC + CATEGORICAL], train[TARGET]
    champion = Pipeline([("prep", _prep()), ("clf", LogisticRegression(max_iter=1000))]).fit(x, y)
    candidate = Pipeline([
        ("prep", _prep()),
        ("clf", HistGradientBoostingClassifier(max_iter=150, learning_rate=0.06, max_leaf_nodes=15,
                                               l2_regularization=1.0, random_state=0)),
    ]).fit(x, y)
    out = HERE / "models"
    out.mkdir(exist_ok=True)
    joblib.dump(champion, out / "champion.joblib")
    joblib.dump(candidate, out / "candidate.joblib")
    print(f"wrote {out / 'champion.joblib'} and {out / 'candidate.joblib'}")


if __name__ == "__main__":
    main()
