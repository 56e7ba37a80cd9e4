"""drift.tabular against Evidently 0.7's DataDriftPreset on the same generated data.

One command runs both halves and prints one table:

    python benchmarks/drift.py                       # 1,000,000 and 100,000 rows x 20 columns
    python benchmarks/drift.py --rows 100000         # one size only

Evidently 0.7 needs pandas < 3, so it runs in its own interpreter (a subprocess of this
script), given by ``--evidently-python`` or the ``LLMGUARD_EVIDENTLY_PYTHON`` environment
variable (default ``/work/venv-evidently/bin/python``). Make that environment with::

    python3 -m venv /work/venv-evidently
    /work/venv-evidently/bin/pip install "evidently>=0.7,<0.8" "pandas<3"

(the ``benchmark-evidently`` extra of pyproject.toml lists the same pins). The data are
written once as plain ``.npy`` arrays so both interpreters read identical values, whatever
their pandas. Only the drift computation is timed on each side (data already in memory),
each in a fresh process-warm state: ours is ``compare_frames`` + metrics with every
default (``auto`` rule, Benjamini-Hochberg), Evidently's is ``Report([DataDriftPreset()]).run``.

This file must stay importable without llmguard (the Evidently worker imports it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NUMERIC = [f"num_{i:02d}" for i in range(12)]
FEW_VALUES = ["int_00", "int_01"]
CATEGORICAL = [f"cat_{i:02d}" for i in range(6)]
SHIFTED = {"num_00", "num_01", "num_05", "int_01", "cat_00", "cat_03"}
LEVELS = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"], dtype=object)


def generate(rows: int, folder: Path, seed: int = 0) -> None:
    """A reference of ``rows`` rows and a current of 0.9 x ``rows``; 20 columns, six shifted.

    The sizes differ on purpose: equal sizes would let Wasserstein take its one-pass
    shortcut, which real monitoring windows rarely allow.
    """
    rng = np.random.default_rng(seed)
    for side, size in (("reference", rows), ("current", rows - rows // 10)):
        moved = side == "current"
        cols: dict[str, np.ndarray] = {}
        for i, name in enumerate(NUMERIC):
            shift = 0.3 if moved and name in SHIFTED else 0.0
            kind = i % 4
            if kind == 0:
                col = rng.normal(shift, 1.0, size)
            elif kind == 1:
                col = rng.exponential(1.0 + shift, size)
            elif kind == 2:
                col = np.round(rng.lognormal(3 + shift, 0.4, size), 2)  # prices: many ties
            else:
                col = rng.uniform(0 + shift, 1 + shift, size)
            col[rng.random(size) < 0.01] = np.nan  # 1 % missing
            cols[name] = col
        for name in FEW_VALUES:
            weights = [0.4, 0.3, 0.2, 0.1] if moved and name in SHIFTED else [0.25] * 4
            cols[name] = rng.choice(4, size, p=weights).astype(np.int64)
        for i, name in enumerate(CATEGORICAL):
            k = 3 + i
            p = np.full(k, 1 / k)
            if moved and name in SHIFTED:
                p = np.linspace(2, 0.5, k)
                p /= p.sum()
            cols[name] = rng.choice(k, size, p=p).astype(np.int8)
        np.savez(folder / f"{side}.npz", **cols)  # type: ignore[arg-type]


def load(folder: Path, side: str) -> pd.DataFrame:
    """The frame of one side: categorical codes become strings (as read from a CSV)."""
    data = np.load(folder / f"{side}.npz")
    frame = {}
    for name in NUMERIC + FEW_VALUES + CATEGORICAL:
        frame[name] = LEVELS[data[name]] if name in CATEGORICAL else data[name]
    return pd.DataFrame(frame)


def evidently_worker(folder: Path) -> dict[str, Any]:
    """Runs inside the Evidently interpreter."""
    import evidently
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, cur = load(folder, "reference"), load(folder, "current")
    Report([DataDriftPreset()]).run(current_data=cur.head(2000), reference_data=ref.head(2000))  # warm-up
    t0 = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    seconds = time.perf_counter() - t0
    columns = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            columns[config["column"]] = {
                "method": config["method"],
                "value": float(metric["value"]),
                "threshold": float(config["threshold"]),
            }
    return {
        "seconds": seconds,
        "columns": columns,
        "version": evidently.__version__,
        "pandas": pd.__version__,
    }


def ours(folder: Path) -> dict[str, Any]:
    """drift.tabular's computation on the same frames, with every default."""
    from llmguard_checks.drift import TabularDriftParams
    from llmguard_checks.drift._tabular import add_metrics, compare_frames
    from llmguard_ops import CheckOutput

    ref, cur = load(folder, "reference"), load(folder, "current")
    params = TabularDriftParams.model_validate({})
    compare_frames(ref.head(2000), cur.head(2000), params)  # warm-up: imports, first calls
    t0 = time.perf_counter()
    features, others, _ = compare_frames(ref, cur, params)
    add_metrics(CheckOutput(), features, others, params)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "columns": {r.column: {"method": r.method, "value": r.statistic, "drifted": bool(r.drifted)} for r in features},
    }


EVIDENTLY_METHOD = {
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
}


def compare(rows: int, python: str, folder: Path) -> dict[str, Any]:
    generate(rows, folder)
    mine = ours(folder)
    proc = subprocess.run([python, __file__, "--worker", str(folder)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"Evidently worker failed ({python}):\n{proc.stderr[-3000:]}")
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    same_method = agree = 0
    max_diff = 0.0
    for name, ev in theirs["columns"].items():
        our = mine["columns"][name]
        ev_drift = ev["value"] >= ev["threshold"] if "p_value" not in ev["method"] else ev["value"] < ev["threshold"]
        agree += ev_drift == our["drifted"]
        if EVIDENTLY_METHOD.get(ev["method"]) == our["method"]:
            same_method += 1
            max_diff = max(max_diff, abs(ev["value"] - our["value"]))
    ours_drifted = {c for c, r in mine["columns"].items() if r["drifted"]}
    return {
        "rows": rows,
        "ours_s": mine["seconds"],
        "evidently_s": theirs["seconds"],
        "ratio": theirs["seconds"] / mine["seconds"],
        "columns": len(theirs["columns"]),
        "same_method": same_method,
        "decisions_agree": agree,
        "max_abs_diff": max_diff,
        "exact_planted": ours_drifted == SHIFTED,
        "evidently": theirs["version"],
        "evidently_pandas": theirs["pandas"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[1_000_000, 100_000],
        help="rows per side (default: 1000000 100000)",
    )
    parser.add_argument(
        "--evidently-python",
        default=os.environ.get("LLMGUARD_EVIDENTLY_PYTHON", "/work/venv-evidently/bin/python"),
        help="interpreter with evidently 0.7 and pandas<3 (env LLMGUARD_EVIDENTLY_PYTHON)",
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(evidently_worker(args.worker)))
        return
    if not Path(args.evidently_python).exists():
        raise SystemExit(f"no Evidently interpreter at {args.evidently_python}: see this file's docstring")
    import scipy

    results = []
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
        for rows in args.rows:
            results.append(compare(rows, args.evidently_python, Path(tmp)))
    print(
        f"# drift.tabular vs Evidently {results[0]['evidently']} DataDriftPreset "
        f"({time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} CPUs, python "
        f"{platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, pandas "
        f"{pd.__version__} / {results[0]['evidently_pandas']} for Evidently)"
    )
    print(
        "| reference rows (current 0.9x) | columns | ours (s) | Evidently (s) | speed-up "
        "| same method | decisions agree | max abs diff (same method) "
        "| planted columns found exactly |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for r in results:
        print(
            f"| {r['rows']:,} | {r['columns']} | {r['ours_s']:.2f} | {r['evidently_s']:.2f} | "
            f"{r['ratio']:.1f}x | {r['same_method']}/{r['columns']} "
            f"| {r['decisions_agree']}/{r['columns']} | {r['max_abs_diff']:.1e} "
            f"| {'yes' if r['exact_planted'] else 'no'} |"
        )


if __name__ == "__main__":
    main()
