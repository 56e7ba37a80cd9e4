"""Cost of explain.lime on the demo pipelines, beside SHAP on the same rows, and their agreement.

Both explain the same rows of the demo's current data with the same background rows:
LIME (``lime.lime_tabular``, ``--samples`` perturbations per row, through explain.lime's
path) and SHAP (explain.shap's path: the exact explainer of the final estimator, and
shap's model-agnostic Permutation explainer as the generic peer). ``rho`` is the Spearman
correlation of each method's global importances with LIME's.

    python benchmarks/explain_lime.py [--rows 50] [--samples 1000] [--background 100]
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

from llmguard_checks.explain._lime import explain_tabular_lime
from llmguard_checks.explain._tabular import Budget, explain_tabular

DEMO = Path(__file__).parents[1] / "suites" / "demo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--background", type=int, default=100)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    data = pd.read_csv(DEMO / "data" / "current.csv")
    rng = np.random.default_rng(0)
    rows = data.iloc[np.sort(rng.choice(len(data), args.rows, replace=False))]
    background = data.iloc[np.sort(rng.choice(len(data), args.background, replace=False))]
    budget = Budget(background=args.background, max_evals=None, time_limit_s=None)
    head = ("model", "method", "rows", "seconds", "rows/s", "rho vs LIME")
    print("{:<10} {:<46} {:>5} {:>8} {:>8} {:>12}".format(*head))
    for name in ("candidate", "champion"):
        model = joblib.load(DEMO / "models" / f"{name}.joblib")
        cols = list(model.feature_names_in_)
        x, bg = rows[cols], background[cols]
        # warm-up: imports and numba compilation are not what is measured
        explain_tabular_lime(model, x.iloc[:1], bg, lambda d: d, 50, None, 0, None)
        explain_tabular(model, x.iloc[:1], bg, lambda d: d, budget, "auto", None, 0)
        explain_tabular(model, x.iloc[:1], bg, lambda d: d, budget, "permutation", None, 0)
        start = time.perf_counter()
        lime_attr, _ = explain_tabular_lime(model, x, bg, lambda d: d, args.samples, None, 0, None)
        seconds = time.perf_counter() - start
        lime_imp = lime_attr.abs_values().mean(axis=0)
        print(
            f"{name:<10} {'LIME (' + str(args.samples) + ' samples per row)':<46} "
            f"{len(x):>5} {seconds:>8.3f} {len(x) / seconds:>8.1f} {1.0:>12.3f}"
        )
        for method in ("auto", "permutation"):
            start = time.perf_counter()
            attr = explain_tabular(model, x, bg, lambda d: d, budget, method, None, 0)
            seconds = time.perf_counter() - start
            rho = stats.spearmanr(lime_imp, attr.abs_values().mean(axis=0)).statistic
            label = "SHAP " + attr.explainer.split(",")[0].split(" (")[0]
            print(f"{name:<10} {label[:46]:<46} {len(x):>5} {seconds:>8.3f} {len(x) / seconds:>8.1f} {rho:>12.3f}")


if __name__ == "__main__":
    main()
