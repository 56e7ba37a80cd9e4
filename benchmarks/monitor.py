"""``llmguard monitor`` over many daily windows: time per window and history size.

Generates a production log like ``suites/monitor/generate.py`` (DAYS windows of ROWS
rows; defaults 365 × 100,000), then runs the monitoring suite below on every window and
prints, in the same run, the peer floor: the same statistics (KS statistic of x1 and x2
against the reference with scipy, latency p50/p95 with numpy, accuracy with
scikit-learn) computed directly on each window without the harness, so the table
shows what the harness adds (validation, evidence, reports, the history database).

    python benchmarks/monitor.py                 # 365 windows × 100k rows (long)
    python benchmarks/monitor.py --days 30 --rows 20000
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SUITE = """\
apiVersion: llmguard/v1
name: monitor-benchmark
models:
  candidate: {loader: python, path: generate.py:model}
datasets:
  reference: {path: data/reference.csv, target: label, features: [x1, x2]}
  current: {path: data/reference.csv, target: label, features: [x1, x2]}
checks:
  - id: drift
    uses: drift.tabular
    with: {reference: reference, current: current, columns: [x1, x2], method: ks}
    gate:
      column.x1.statistic: {learned: {k: 4, window: 14, min_history: 7, side: upper}}
  - id: latency
    uses: monitor.column_stats
    with: {dataset: current, columns: [latency_ms], quantiles: [0.5, 0.95]}
    gate:
      latency_ms.p95: {learned: {method: median_mad, k: 4, window: 14, min_history: 7, side: upper}, for: 2}
  - id: quality
    uses: performance.classification
    with: {model: candidate, dataset: current, n_resamples: 0}
    gate: {accuracy: {min: 0.6}}
"""


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen", ROOT / "suites" / "monitor" / "generate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def peer(work: Path, log: Path) -> float:
    """Seconds for the bare statistics of every window (no harness)."""
    import numpy as np
    import pandas as pd
    from scipy.stats import ks_2samp
    from sklearn.metrics import accuracy_score

    ref = pd.read_csv(work / "data" / "reference.csv")
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(ref[["x1", "x2"]], ref["label"])  # as generate.model does
    t0 = time.perf_counter()
    frame = pd.read_parquet(log)
    day = pd.to_datetime(frame["ts"], utc=True).dt.floor("D")
    for _, w in frame.groupby(day):
        ks_2samp(ref["x1"], w["x1"])
        ks_2samp(ref["x2"], w["x2"])
        np.quantile(w["latency_ms"], [0.5, 0.95])
        accuracy_score(w["label"], model.predict(w[["x1", "x2"]]))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    from llmguard_ops.monitor.run import MonitorOptions, monitor
    from llmguard_ops.monitor.store import Store
    from llmguard_ops.plugins import get_plugin_manager

    gen = _generator()
    work = Path(tempfile.mkdtemp(prefix="llmguard-monitor-bench-"))
    os.environ["LLMGUARD_HISTORY_DIR"] = "off"
    try:
        gen.main(work, days=1, rows_per_day=10)  # the reference
        shutil.copy(ROOT / "suites" / "monitor" / "generate.py", work / "generate.py")  # the model
        (work / "suite.yaml").write_text(SUITE)
        t0 = time.perf_counter()
        log = work / "data" / "production.parquet"
        gen.production(days=args.days, rows_per_day=args.rows).to_parquet(log, index=False)
        t_gen = time.perf_counter() - t0
        t_peer = peer(work, log)
        db = work / "history.db"
        opts = MonitorOptions(
            suite=work / "suite.yaml",
            dataset="current",
            log=log,
            time_column="ts",
            every="1d",
            out=work / "out",
            db=str(db),
        )
        host = get_plugin_manager(blocked=["llmguard_ops.reporters.html"])
        t0 = time.perf_counter()
        result = monitor(opts, host)
        t_mon = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = monitor(opts, host)
        t_rerun = time.perf_counter() - t0
        store = Store(str(db))
        counts = store.counts()
        store.close()
        out_bytes = sum(f.stat().st_size for f in (work / "out").rglob("*") if f.is_file())
        n = len(result.windows)
        print(
            f"{n} daily windows × {args.rows:,} rows (log generated in {t_gen:.1f} s); "
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
        )
        print()
        print("| what | total s | per window s |")
        print("| --- | ---: | ---: |")
        print(
            f"| peer floor: scipy KS ×2, numpy quantiles, sklearn accuracy per window | {t_peer:.2f} | "
            f"{t_peer / n:.4f} |"
        )
        print(f"| llmguard monitor (suite per window, evidence, history DB; no HTML) | {t_mon:.2f} | {t_mon / n:.4f} |")
        print(f"| rerun over the same log (nothing new: {len(again.ran)} windows run) | {t_rerun:.2f} | - |")
        print()
        print(
            f"history database: {db.stat().st_size / 1e6:.2f} MB ({counts['runs']} runs, "
            f"{counts['metrics']} metric rows, {counts['windows']} windows); "
            f"window outputs incl. data copies: {out_bytes / 1e6:.1f} MB"
        )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
