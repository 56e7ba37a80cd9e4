"""Generate the demo's credit-approval data (run once; the CSVs are committed).

A synthetic lending population: applicants with income, debt, history and accounts,
two sensitive attributes (``sex``, ``age_group``) and an ``approved`` label. Income is
planted to differ by sex (a proxy path), so a model that never sees ``sex`` can still
approve the groups at different rates: the fairness check has something real to find.
``current.csv`` is a later sample with a modest shift in income and debt (drift).

    python suites/demo/make_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def population(n: int, rng: np.random.Generator, income_shift: float = 0.0, debt_shift: float = 0.0) -> pd.DataFrame:
    sex = rng.choice(["female", "male"], size=n, p=[0.48, 0.52])
    age = rng.integers(19, 75, size=n)
    age_group = np.where(age < 30, "18-29", np.where(age < 50, "30-49", "50+"))
    income = rng.lognormal(mean=10.6 + 0.12 * (sex == "male") + income_shift, sigma=0.45, size=n)
    debt_ratio = np.clip(rng.beta(2.2, 5.0, size=n) + debt_shift, 0, 1.5)
    history = np.clip((age - 18) * 12 * rng.uniform(0.3, 1.0, size=n), 0, None).round()
    accounts = rng.poisson(3.0, size=n)
    employment = rng.choice(["salaried", "self-employed", "unemployed", "retired"], size=n, p=[0.62, 0.2, 0.08, 0.1])
    purpose = rng.choice(["car", "home", "education", "business", "other"], size=n)
    logit = (
        1.6 * (np.log(income) - 10.6)
        - 4.0 * (debt_ratio - 0.3)
        + 0.004 * (history - 150)
        - 0.15 * (accounts - 3)
        - 1.2 * (employment == "unemployed")
        + 0.3 * (purpose == "home")
        + 0.6
    )
    approved = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "applicant_id": np.arange(n) + 1,
            "age": age,
            "income": income.round(2),
            "debt_ratio": debt_ratio.round(4),
            "credit_history_months": history.astype(int),
            "num_accounts": accounts,
            "employment": employment,
            "purpose": purpose,
            "sex": sex,
            "age_group": age_group,
            "approved": approved,
        }
    )


def main() -> None:
    rng = np.random.default_rng(20261128)
    out = HERE / "data"
    out.mkdir(exist_ok=True)
    population(4000, rng).to_csv(out / "train.csv", index=False)
    population(2000, rng).to_csv(out / "holdout.csv", index=False)
    population(2000, rng, income_shift=0.08, debt_shift=0.04).to_csv(out / "current.csv", index=False)


if __name__ == "__main__":
    main()
