"""bias.group_fairness vs fairlearn's MetricFrame on 1M rows, values compared.

Two sensitive columns (sex x 4 regions = 8 intersectional groups) with planted selection
rates. The peer is one fairlearn MetricFrame with four metrics (selection rate, TPR, FPR,
accuracy) over the intersectional groups; the check is run through the host (suite →
Session → run_check), intervals (2000 bootstrap resamples) and per-attribute groupings
included, predictions read from a column so that no model time is counted.

    python benchmarks/bias.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

SUITE = """\
apiVersion: llmguard/v1
name: bias-benchmark
datasets:
  current: {path: data.parquet, target: y, sensitive: [sex, region]}
checks:
  - id: fairness
    uses: bias.group_fairness
    with: {dataset: current, predictions: yhat, privileged: {sex: m, region: north}}
    gate: {demographic_parity_difference: {max: 0.5, confidence: 0.95}}
"""


def make_data(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["f", "m"], size=n)
    region = rng.choice(["north", "south", "east", "west"], size=n)
    base = 0.3 + 0.1 * (sex == "m") + 0.05 * (region == "north")
    y = (rng.uniform(size=n) < 0.5).astype(np.int64)
    yhat = (rng.uniform(size=n) < base + 0.2 * y).astype(np.int64)
    return pd.DataFrame({"sex": sex, "region": region, "y": y, "yhat": yhat})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    import fairlearn
    import sklearn
    from fairlearn import metrics as flm
    from sklearn.metrics import accuracy_score

    from llmguard_checks.bias._libraries import _import_aif360_metrics
    from llmguard_ops.loading import load_suite
    from llmguard_ops.plugins import get_plugin_manager
    from llmguard_ops.runner import Session

    _import_aif360_metrics()  # imports outside both timings
    frame = make_data(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frame.to_parquet(folder / "data.parquet")
        (folder / "suite.yaml").write_text(SUITE)
        host = get_plugin_manager()
        loaded = load_suite(folder / "suite.yaml", host.registry())
        session = Session.open(loaded, host, folder / "out")
        data = session.datasets["current"].frame

        metrics = {
            "selection_rate": flm.selection_rate,
            "true_positive_rate": flm.true_positive_rate,
            "false_positive_rate": flm.false_positive_rate,
            "accuracy": accuracy_score,
        }
        t0 = time.perf_counter()
        mf = flm.MetricFrame(
            metrics=metrics,
            y_true=data["y"],
            y_pred=data["yhat"],
            sensitive_features=data[["sex", "region"]],
        )
        t_mf = time.perf_counter() - t0

        t0 = time.perf_counter()
        result = session.run_check(loaded.suite.checks[0])
        t_check = time.perf_counter() - t0

    if result.error is not None:
        raise SystemExit(f"check failed: {result.error.message}")
    worst = 0.0
    for (sex, region), row in mf.by_group.iterrows():
        for metric in metrics:
            ours = result.metrics[f"group.sex={sex}&region={region}.{metric}"].value
            worst = max(worst, abs(ours - float(row[metric])))
    dp = result.metrics["demographic_parity_difference"]
    dp_mf = float(mf.difference()["selection_rate"])
    print(
        f"rows: {args.rows:,}  groups: {len(mf.by_group)}  machine: {platform.machine()} "
        f"python {platform.python_version()}  fairlearn {fairlearn.__version__}  "
        f"aif360 {version('aif360')}  scikit-learn {sklearn.__version__}  pandas {pd.__version__}"
    )
    print()
    print("| what | seconds | speed-up |")
    print("| --- | ---: | ---: |")
    print(f"| fairlearn MetricFrame, 4 metrics, 8 groups | {t_mf:.3f} | 1.0x |")
    print(
        f"| bias.group_fairness (whole check, 2000-resample intervals, + per-attribute) "
        f"| {t_check:.3f} | {t_mf / t_check:.1f}x |"
    )
    print()
    print(f"largest |check - MetricFrame| over 8 groups x 4 metrics: {worst:.2e}")
    print(
        f"demographic_parity_difference: check {dp.value:.12f} [{dp.lower:.4f}, {dp.upper:.4f}], "
        f"MetricFrame {dp_mf:.12f}"
    )


if __name__ == "__main__":
    main()
