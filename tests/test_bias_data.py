"""bias.data: a planted under-represented group and a planted proxy are found; clean data passes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import llmguard_ops
from llmguard_ops import Status

POPULATION = {"ethnicity": {"a": 0.4, "b": 0.4, "c": 0.2}}
GATE = {
    "min_representation_ratio": {"min": 0.8, "confidence": 0.95},
    "proxy_features": {"max": 0},
}


def frame(n: int, seed: int, planted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shares = [0.485, 0.485, 0.03] if planted else [0.4, 0.4, 0.2]
    ethnicity = rng.choice(["a", "b", "c"], p=shares, size=n)
    sex = rng.choice(["female", "male"], size=n)
    male = sex == "male"
    if planted:  # the branch code follows sex 90 % of the time
        branch = np.where(rng.uniform(size=n) < 0.9, np.where(male, "north", "south"), "east")
    else:
        branch = rng.choice(["north", "south", "east"], size=n)
    income = rng.normal(size=n)
    logit = income + (0.8 * male if planted else 0.0)
    label = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"income": income, "branch": branch, "ethnicity": ethnicity, "sex": sex, "label": label})


def run(
    tmp_path: Path, data: pd.DataFrame, with_: dict[str, Any], gate: dict[str, Any] | None = None
) -> llmguard_ops.CheckResult:
    data.to_csv(tmp_path / "train.csv", index=False)
    suite = {
        "apiVersion": "llmguard/v1",
        "name": "data-bias",
        "seed": 1,
        "models": {},
        "datasets": {"reference": {"path": "train.csv", "target": "label", "sensitive": ["ethnicity", "sex"]}},
        "checks": [
            {
                "id": "data",
                "uses": "bias.data",
                "with": with_,
                "gate": GATE if gate is None else gate,
            }
        ],
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    result = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out").report.checks[0]
    assert result.status is not Status.ERROR, result.error
    return result


def test_planted_under_representation_and_proxy_are_found(tmp_path: Path) -> None:
    data = frame(4000, 0, planted=True)
    result = run(tmp_path, data, {"population": POPULATION, "n_resamples": 300})
    assert result.status is Status.FAIL
    failed = {g.metric for g in result.failed_gates}
    assert failed == {"min_representation_ratio", "proxy_features"}
    ratio = result.metrics["representation.ethnicity=c.ratio"]
    share = (data.ethnicity == "c").mean()
    assert ratio.value == pytest.approx(share / 0.2)
    assert result.metrics["min_representation_ratio"].value == ratio.value
    rows = {r["group"]: r for r in result.details["representation"]}
    assert rows["ethnicity=c"]["under_represented"] and not rows["ethnicity=a"]["under_represented"]
    proxies = [r for r in result.details["proxies"] if r["proxy"]]
    assert [(r["feature"], r["sensitive"]) for r in proxies] == [("branch", "sex")]
    # the oracle: scikit-learn's plug-in MI over scipy's entropy of sex
    from scipy.stats import entropy
    from sklearn.metrics import mutual_info_score

    expected = mutual_info_score(data.sex, data.branch) / entropy(data.sex.value_counts().to_numpy())
    assert result.metrics["proxy.branch.sex"].value == pytest.approx(expected, rel=1e-6)
    assert result.metrics["proxy.income.sex"].value < 0.05


def test_label_metrics_equal_aif360_on_the_raw_rows(tmp_path: Path) -> None:
    logging.getLogger().setLevel(logging.ERROR)
    import aif360.sklearn.metrics as am

    data = frame(3000, 4, planted=True)
    result = run(
        tmp_path,
        data,
        {"sensitive": ["sex"], "privileged": {"sex": "male"}, "n_resamples": 300},
        {},
    )
    y = pd.Series(data.label.to_numpy(), index=pd.Index(data.sex.to_numpy(), name="sex"))
    kw: dict[str, Any] = {"prot_attr": "sex", "priv_group": "male", "pos_label": 1}
    brd = result.metrics["base_rate_difference"]
    assert brd.value == pytest.approx(am.statistical_parity_difference(y, **kw), abs=1e-12)
    assert brd.value < -0.1 and brd.lower is not None and brd.upper is not None and brd.upper < 0
    di = result.metrics["label_disparate_impact"]
    assert di.value == pytest.approx(am.disparate_impact_ratio(y, **kw), abs=1e-12)
    # consistency: AIF360's own score on the same standardised/one-hot design
    from llmguard_checks.bias.data_check import _design

    design = _design(data, ["income", "branch"])
    expected = am.consistency_score(design, data.label.to_numpy(), 5)
    assert result.metrics["consistency"].value == pytest.approx(expected)


def test_clean_data_passes_against_production_shares(tmp_path: Path) -> None:
    data = frame(4000, 2, planted=False)
    frame(4000, 3, planted=False).to_csv(tmp_path / "prod.csv", index=False)
    data.to_csv(tmp_path / "train.csv", index=False)
    result = run(tmp_path, data, {"population": POPULATION, "n_resamples": 200})
    assert result.status is Status.PASS, result.failed_gates
    assert result.metrics["max_proxy_strength"].value < 0.05
    # the same data against a production sample (Katz interval of two shares)
    suite = yaml.safe_load((tmp_path / "suite.yaml").read_text())
    suite["datasets"]["production"] = {"path": "prod.csv", "sensitive": ["ethnicity", "sex"]}
    suite["checks"][0]["with"] = {"production": "production", "n_resamples": 0}
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    result = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out2").report.checks[0]
    assert result.status is Status.PASS, result.error or result.failed_gates
    m = result.metrics["representation.ethnicity=c&sex=male.ratio"]
    assert m.lower is not None and m.lower < 1 < m.upper
    assert result.details["expected_shares_from"] == "dataset 'production'"


def test_population_naming_an_unknown_grouping_is_a_clear_error(tmp_path: Path) -> None:
    data = frame(500, 0, planted=False)
    data.to_csv(tmp_path / "train.csv", index=False)
    suite = {
        "apiVersion": "llmguard/v1",
        "name": "x",
        "models": {},
        "datasets": {"reference": {"path": "train.csv", "target": "label", "sensitive": ["sex"]}},
        "checks": [{"id": "d", "uses": "bias.data", "with": {"population": {"race": {"a": 1}}}}],
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    result = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out").report.checks[0]
    assert result.status is Status.ERROR
    assert result.error is not None and "population names race" in result.error.message


def test_docs_suite_blocks_planted_data_and_passes_clean_data(tmp_path: Path) -> None:
    import shutil

    suite = Path(__file__).parent / "data" / "bias" / "data.yaml"
    failed = {}
    for planted, status in ((True, Status.FAIL), (False, Status.PASS)):
        folder = tmp_path / str(planted)
        folder.mkdir()
        shutil.copy(suite, folder / "suite.yaml")
        frame(4000, 5, planted=planted).to_csv(folder / "train.csv", index=False)
        result = llmguard_ops.run(folder / "suite.yaml", folder / "out").report.checks[0]
        assert result.status is status, (result.error, result.failed_gates)
        failed[planted] = {g.metric for g in result.failed_gates}
    # the planted data: a small group, a proxy of sex, and fewer favourable labels for women
    assert failed[True] == {"min_representation_ratio", "proxy_features", "label_disparate_impact"}
