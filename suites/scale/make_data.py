"""Write the data of suites/scale/partitioned.yaml: two folders of Parquet partitions.

    python suites/scale/make_data.py                 # into suites/scale/out/ (git-ignored)
    python suites/scale/make_data.py OUT --partitions 16 --rows 250000

``reference/`` and ``current/`` hold ``part-00000.parquet`` ... with numeric, categorical
and integer columns, two sensitive columns, a label and a model score; in ``current`` one
numeric and one categorical column move and one group's scores drop (planted drift and
disparity). One partition at a time is in memory, so the data may be larger than RAM.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def partition(n: int, rng: np.random.Generator, moved: bool) -> Any:
    """One partition's frame (``moved``: the current data's planted shifts)."""
    import pandas as pd

    sex = rng.choice(["female", "male"], n)
    region = rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2])
    x1 = rng.normal(0.3 if moved else 0.0, 1.0, n)
    x2 = rng.exponential(1.0, n)
    label = (x1 + 0.5 * x2 + rng.normal(0, 1, n) > 0.8).astype(np.int64)
    logit = 1.2 * x1 + 0.6 * x2 - 1.0 - (0.6 if moved else 0.0) * (sex == "female")
    score = 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "x3": rng.uniform(0, 1, n),
            "channel": rng.choice(["web", "app", "store", "phone"], n, p=[0.1, 0.2, 0.3, 0.4] if moved else [0.25] * 4),
            "k1": rng.integers(0, 4, n),
            "sex": sex,
            "region": region,
            "label": label,
            "score": score,
        }
    )


def write_partitions(folder: Path, partitions: int, rows: int, seed: int, moved: bool) -> list[Path]:
    """``partitions`` files of ``rows`` rows each under ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(partitions):
        path = folder / f"part-{i:05d}.parquet"
        partition(rows, rng, moved).to_parquet(path, index=False)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=HERE / "out")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--rows", type=int, default=50_000, help="rows per partition")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    write_partitions(args.out / "reference", args.partitions, args.rows, args.seed, moved=False)
    write_partitions(args.out / "current", args.partitions, args.rows, args.seed + 1, moved=True)
    print(f"wrote {2 * args.partitions} partitions of {args.rows} rows under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
