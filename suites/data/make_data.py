"""Generate the data-check example: a training set and a holdout, clean and with planted defects.

The defective pair carries, on purpose:

* 5 % of the holdout's rows duplicated (exact copies appended);
* 3 % of the holdout copied from the training set;
* one leaking feature, ``review_score``, computed from the true label (clean version: a weak,
  honest signal under the same name);
* 8 % of the holdout's labels flipped;
* the column ``accounts`` turned to text (``"3 accounts"``).

The labels are a near-deterministic linear rule of the features, so a clean holdout has
almost no label errors for confident learning to find. ``planted()`` returns the data and
the row positions of every defect, which the tests compare with what the checks report.

    python suites/data/make_data.py      # writes suites/data/data/*.csv (committed)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
SEED = 20261202


def population(n: int, rng: np.random.Generator, leak: bool) -> pd.DataFrame:
    age = rng.integers(18, 81, size=n)
    income = np.clip(rng.normal(52_000, 15_000, size=n), 5_000, None).round(2)
    debt_ratio = rng.uniform(0, 1, size=n).round(4)
    accounts = rng.poisson(3.0, size=n)
    employment = rng.choice(["salaried", "self-employed", "unemployed", "retired"], size=n, p=[0.6, 0.2, 0.1, 0.1])
    region = rng.choice(["north", "south", "east", "west", "centre"], size=n)
    score = (
        8e-5 * (income - 52_000)
        - 3.0 * (debt_ratio - 0.5)
        + 0.02 * (age - 49)
        - 1.0 * (employment == "unemployed")
        + 0.2
    )
    approved = (score + rng.logistic(scale=0.03, size=n) > 0).astype(int)
    review = approved + rng.normal(0, 0.1, size=n) if leak else 0.3 * approved + rng.normal(0, 1, size=n)
    return pd.DataFrame(
        {
            "row_id": np.arange(n),
            "age": age,
            "income": income,
            "debt_ratio": debt_ratio,
            "accounts": accounts,
            "employment": employment,
            "region": region,
            "review_score": review.round(4),
            "approved": approved,
        }
    )


@dataclass
class Planted:
    """The data and where each defect sits (row positions in ``holdout``)."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    duplicated: set[int] = field(default_factory=set)  # rows repeating an earlier row
    copied: set[int] = field(default_factory=set)  # rows equal to a training row (features)
    flipped: set[int] = field(default_factory=set)  # rows whose label was flipped
    string_column: str = "accounts"
    leaking_feature: str = "review_score"


def planted(seed: int = SEED, n_train: int = 2000, n_holdout: int = 1000, defects: bool = True) -> Planted:
    """Training set and holdout (``n_holdout`` rows in the end), with or without the defects."""
    rng = np.random.default_rng(seed)
    train = population(n_train, rng, leak=defects)
    if not defects:
        holdout = population(n_holdout, rng, leak=False)
        holdout["row_id"] += n_train
        return Planted(train, holdout)
    n_dup = round(0.05 * n_holdout)
    n_base = n_holdout - n_dup
    base = population(n_base, rng, leak=True)
    n_copy = round(0.03 * n_holdout)
    copy_at = rng.choice(n_base, size=n_copy, replace=False)
    base.iloc[copy_at] = train.iloc[rng.choice(n_train, size=n_copy, replace=False)].to_numpy()
    others = np.setdiff1d(np.arange(n_base), copy_at)
    flip_at = rng.choice(others, size=round(0.08 * n_holdout), replace=False)
    base.loc[flip_at, "approved"] = 1 - base.loc[flip_at, "approved"]
    dup_of = rng.choice(n_base, size=n_dup, replace=False)
    holdout = pd.concat([base, base.iloc[dup_of]], ignore_index=True)
    origin = np.concatenate([np.arange(n_base), dup_of])  # which base row each holdout row is
    order = rng.permutation(len(holdout))
    holdout, origin = holdout.iloc[order].reset_index(drop=True), origin[order]
    holdout["row_id"] = np.arange(len(holdout)) + n_train  # a re-ingested row gets a fresh id
    holdout["accounts"] = [f"{int(v)} accounts" for v in holdout["accounts"]]
    for col in ("age", "approved"):
        holdout[col] = holdout[col].astype(int)
    seen: set[int] = set()
    duplicated = set()
    for pos, src in enumerate(origin):
        if src in seen:
            duplicated.add(pos)
        seen.add(int(src))
    copied = {pos for pos, src in enumerate(origin) if src in set(copy_at.tolist())}
    flipped = {pos for pos, src in enumerate(origin) if src in set(flip_at.tolist())}
    return Planted(train, holdout, duplicated, copied, flipped)


def main() -> None:
    out = HERE / "data"
    out.mkdir(exist_ok=True)
    bad = planted()
    bad.train.to_csv(out / "train.csv", index=False)
    bad.holdout.to_csv(out / "holdout.csv", index=False)
    clean = planted(defects=False)
    clean.train.to_csv(out / "train_clean.csv", index=False)
    clean.holdout.to_csv(out / "holdout_clean.csv", index=False)


if __name__ == "__main__":
    main()
