"""Cost and agreement of explaining the demo pipelines, explain.shap vs shap's generic path.

explain.shap explains a scikit-learn pipeline on its final estimator with the exact
explainer (Linear, Tree) and sums one-hot columns back to source features. The peer is
what a user does without that: shap's model-agnostic Permutation explainer over the raw
frame, calling the whole pipeline (here through explain.shap's own agnostic path, which
codes categories as integers for the masker). Both explain the same rows; agreement is
the Spearman correlation of the two importance rankings.

    python benchmarks/explain_shap.py [--rows 50] [--background 50]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from scipy import stats

from llmguard_checks.explain._tabular import Budget, explain_tabular

DEMO = Path(__file__).parents[1] / "suites" / "demo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--background", type=int, default=50)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    data = pd.read_csv(DEMO / "data" / "current.csv")
    rng = np.random.default_rng(0)
    rows = data.iloc[np.sort(rng.choice(len(data), args.rows, replace=False))]
    background = data.iloc[np.sort(rng.choice(len(data), args.background, replace=False))]
    budget = Budget(background=args.background, max_evals=None, time_limit_s=None)
    head = ("model", "method", "rows", "seconds", "rows/s", "additivity", "rho")
    print("{:<10} {:<44} {:>5} {:>8} {:>8} {:>11} {:>6}".format(*head))
    for name in ("candidate", "champion"):
        model = joblib.load(DEMO / "models" / f"{name}.joblib")
        cols = list(model.feature_names_in_)
        # first call of each path pays imports and numba compilation: not what we measure
        explain_tabular(model, rows[cols].iloc[:2], background[cols], lambda d: d, budget, "auto", None, 0)
        explain_tabular(
            model,
            rows[cols].iloc[:1],
            background[cols],
            lambda d: d,
            budget,
            "permutation",
            None,
            0,
        )
        results = {}
        for method in ("auto", "permutation"):
            start = time.perf_counter()
            attr = explain_tabular(model, rows[cols], background[cols], lambda d: d, budget, method, None, 0)
            seconds = time.perf_counter() - start
            results[method] = attr.abs_values().mean(axis=0)
            rho = stats.spearmanr(results["auto"], results[method]).statistic
            label = (
                attr.explainer.split(",")[0] if method == "auto" else "shap PermutationExplainer on raw frame (peer)"
            )
            print(
                f"{name:<10} {label[:44]:<44} {len(attr.data):>5} {seconds:>8.3f} "
                f"{len(attr.data) / seconds:>8.1f} {attr.additivity_error:>11.2e} {rho:>6.3f}"
            )


if __name__ == "__main__":
    main()
