"""bias.mitigation: a variant that passes the parity gate the candidate fails, promoted next run."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml

import llmguard_ops
from llmguard_ops import Status
from llmguard_ops.cli import main

FEATURES = ["x1", "x2", "zip_score"]


def planted(n: int, seed: int) -> pd.DataFrame:
    """Men are approved far more often; ``zip_score`` carries sex into the features."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], size=n)
    male = (sex == "male").astype(float)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "zip_score": male + rng.normal(scale=0.3, size=n),
            "sex": sex,
        }
    )
    logit = 1.2 * frame.x1 - frame.x2 + 1.6 * male - 0.8
    frame["approved"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def project(tmp_path: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    train, hold = planted(2000, 1), planted(2000, 2)
    train.to_csv(tmp_path / "train.csv", index=False)
    hold.to_csv(tmp_path / "holdout.csv", index=False)
    model = LogisticRegression().fit(train[FEATURES], train.approved)
    joblib.dump(model, tmp_path / "candidate.joblib")
    return tmp_path


DATASETS = {
    "reference": {"path": "train.csv", "target": "approved", "sensitive": ["sex"]},
    "current": {"path": "holdout.csv", "target": "approved", "sensitive": ["sex"]},
}
FAIRNESS = {
    "id": "fairness",
    "uses": "bias.group_fairness",
    "with": {"model": "candidate", "dataset": "current", "n_resamples": 500},
    "gate": {"demographic_parity_difference": {"max": 0.1, "confidence": 0.95}},
    "severity": "blocker",
}


def write(path: Path, models: dict[str, Any], checks: list[dict[str, Any]]) -> Path:
    suite = {
        "apiVersion": "llmguard/v1",
        "name": path.stem,
        "seed": 7,
        "models": models,
        "datasets": DATASETS,
        "checks": checks,
    }
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def test_mitigation_passes_the_gate_the_candidate_fails_and_the_next_run_promotes(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    first = write(
        root / "mitigate.yaml",
        {"candidate": {"loader": "sklearn", "path": "candidate.joblib"}},
        [
            FAIRNESS,
            {
                "id": "mitigation",
                "uses": "bias.mitigation",
                "with": {"train": "reference", "dataset": "current", "n_resamples": 500},
                "gate": {"variants_meeting_gates": {"min": 1}, "accuracy_cost": {"max": 0.2}},
                "severity": "warning",
            },
        ],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = llmguard_ops.run(first, root / "out1")
    fairness, mitigation = outcome.report.checks
    assert fairness.status is Status.FAIL  # the candidate fails the parity gate
    assert fairness.metrics["demographic_parity_difference"].value > 0.2
    assert mitigation.status is Status.PASS, mitigation.error or mitigation.failed_gates
    assert outcome.report.decision.decision.value == "BLOCK"
    d = mitigation.details
    assert d["gates_from"] == "check 'fairness'"
    # the candidate's numbers in the front are exactly bias.group_fairness's
    cand = mitigation.metrics["candidate.demographic_parity_difference"]
    assert cand.value == pytest.approx(fairness.metrics["demographic_parity_difference"].value)
    assert mitigation.metrics["candidate_meets_gates"].value == 0
    variants = {r["variant"]: r for r in d["variants"]}
    assert set(variants) >= {"candidate", "reweighing", "exponentiated_gradient_dp"}
    assert variants["candidate"]["meets_gates"] is False
    rec = d["recommended"]
    best = rec["variant"]
    assert variants[best]["meets_gates"] is True
    # least accuracy cost: no other passing variant is more accurate
    passing = [r for r in d["variants"] if r["meets_gates"] and r["variant"] != "candidate"]
    assert variants[best]["accuracy"]["value"] == max(r["accuracy"]["value"] for r in passing)
    cost = mitigation.metrics["accuracy_cost"]
    acc_c = mitigation.metrics["candidate.accuracy"].value
    acc_r = mitigation.metrics["recommended.accuracy"].value
    assert cost.value == pytest.approx(acc_c - acc_r)
    assert cost.lower is not None and cost.lower <= cost.value <= cost.upper
    assert mitigation.metrics["recommended.demographic_parity_difference"].upper < 0.1
    # the front: exactly the variants no other one beats on both accuracy and parity gap
    points = {n: (r["accuracy"]["value"], r["demographic_parity_difference"]["value"]) for n, r in variants.items()}
    front = {
        n
        for n, (a, g) in points.items()
        if not any(a2 >= a and g2 <= g and (a2, g2) != (a, g) for a2, g2 in points.values())
    }
    assert set(d["pareto_front"]) == front
    assert all(r["on_pareto_front"] == (r["variant"] in front) for r in d["variants"])
    assert "threshold_optimizer_eo" in variants, mitigation.warnings
    # the artifact: a skops file whose digest is recorded
    import hashlib

    artifact = root / "out1" / mitigation.artifacts["recommended_model"]
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == rec["sha256"]

    # the next run gates that artifact as the candidate: a real `llmguard run`
    spec = dict(rec["model_spec"], path=str(artifact))
    second = write(
        root / "promote.yaml",
        {"candidate": spec},
        [
            FAIRNESS,
            {
                "id": "quality",
                "uses": "performance.classification",
                "with": {"model": "candidate", "dataset": "current"},
                "gate": {"accuracy": {"min": 0.6}},
            },
        ],
    )
    code = main(["run", str(second), "--out", str(root / "out2"), "-q"])
    report = json.loads((root / "out2" / "report.json").read_text())
    assert report["decision"]["decision"] == "PROMOTE", report["decision"]
    assert code == 0
    assert report["models"]["candidate"]["sha256"] == rec["sha256"]
    dp = report["checks"][0]["metrics"]["demographic_parity_difference"]
    assert dp["value"] == pytest.approx(mitigation.metrics["recommended.demographic_parity_difference"].value)


def _xy() -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    frame = planted(800, 3)
    return frame[FEATURES], frame.approved, frame[["sex"]]


def test_exponentiated_gradient_variant_predicts_as_fairlearn() -> None:
    from fairlearn.reductions import DemographicParity, ExponentiatedGradient
    from sklearn.linear_model import LogisticRegression

    from llmguard_checks.bias.variants import from_exponentiated_gradient, group_keys

    x, y, sens = _xy()
    keys = group_keys(sens, ["sex"])
    eg = ExponentiatedGradient(LogisticRegression(), DemographicParity()).fit(x, y, sensitive_features=keys)
    ours = from_exponentiated_gradient(eg, FEATURES, [0, 1], random_state=5)
    assert np.allclose(ours.predict_proba(x), eg._pmf_predict(x))
    assert (ours.predict(x) == eg.predict(x, random_state=5)).all()


def test_threshold_optimizer_variant_predicts_as_fairlearn_and_survives_skops() -> None:
    import skops.io as sio
    from fairlearn.postprocessing import ThresholdOptimizer
    from sklearn.linear_model import LogisticRegression

    from llmguard_checks.bias.variants import TYPE_NAME, from_threshold_optimizer, group_keys

    x, y, sens = _xy()
    keys = group_keys(sens, ["sex"])
    base = LogisticRegression().fit(x, y)
    to = ThresholdOptimizer(
        estimator=base,
        constraints="demographic_parity",
        prefit=True,
        predict_method="predict_proba",
    ).fit(x, y, sensitive_features=keys)
    ours = from_threshold_optimizer(to, FEATURES, ["sex"], [0, 1], random_state=9)
    frame = pd.concat([x, sens], axis=1)
    expected = to.predict(x, sensitive_features=keys, random_state=9)
    assert (ours.predict(frame) == expected).all()
    eo = ThresholdOptimizer(
        estimator=base, constraints="equalized_odds", prefit=True, predict_method="predict_proba"
    ).fit(x, y, sensitive_features=keys)
    ours_eo = from_threshold_optimizer(eo, FEATURES, ["sex"], [0, 1], random_state=9)
    assert np.allclose(ours_eo.predict_proba(frame), eo._pmf_predict(x, sensitive_features=keys))
    assert (ours_eo.predict(frame) == eo.predict(x, sensitive_features=keys, random_state=9)).all()
    data = sio.dumps(ours)
    assert sio.get_untrusted_types(data=data) == [TYPE_NAME]
    loaded = sio.loads(data, trusted=[TYPE_NAME])
    assert (loaded.predict(frame) == expected).all()
    assert list(loaded.feature_names_in_) == [*FEATURES, "sex"]


def test_without_fairness_gates_it_is_a_clear_error(tmp_path: Path) -> None:
    root = project(tmp_path)
    suite = write(
        root / "s.yaml",
        {"candidate": {"loader": "sklearn", "path": "candidate.joblib"}},
        [{"id": "m", "uses": "bias.mitigation", "with": {"methods": ["reweighing"]}}],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = llmguard_ops.run(suite, root / "out").report.checks[0]
    assert result.status is Status.ERROR
    assert result.error is not None and "no fairness gates" in result.error.message


def test_docs_suites_mitigate_then_promote(tmp_path: Path) -> None:
    import shutil

    data = Path(__file__).parent / "data" / "bias"
    root = project(tmp_path)
    shutil.copy(data / "mitigation.yaml", root / "mitigation.yaml")
    shutil.copy(data / "mitigated-release.yaml", root / "release.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["run", str(root / "mitigation.yaml"), "--out", str(root / "out"), "-q"])
    assert code == 1  # the candidate fails the parity gate: BLOCK
    report = json.loads((root / "out" / "report.json").read_text())
    fairness, mitigation = report["checks"]
    assert fairness["status"] == "fail" and mitigation["status"] == "pass"
    release = yaml.safe_load((root / "release.yaml").read_text())
    rec = mitigation["details"]["recommended"]
    assert Path(rec["path"]) == (root / release["models"]["candidate"]["path"]).resolve()
    assert release["models"]["candidate"]["options"]["trusted"] == rec["trusted_types"]
    assert main(["run", str(root / "release.yaml"), "--out", str(root / "out2"), "-q"]) == 0


def test_model_card_names_the_recommended_variant(tmp_path: Path) -> None:
    root = project(tmp_path)
    suite = write(
        root / "card.yaml",
        {"candidate": {"loader": "sklearn", "path": "candidate.joblib"}},
        [
            FAIRNESS,
            {
                "id": "mitigation",
                "uses": "bias.mitigation",
                "with": {"methods": ["threshold_optimizer_dp"], "n_resamples": 200},
            },
        ],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = llmguard_ops.run(suite, root / "out")
    rec = outcome.report.checks[1].details["recommended"]
    card = (root / "out" / "model_card.md").read_text()
    assert "Recommended mitigation: `threshold_optimizer_dp`" in card
    assert rec["sha256"] in card and "reads the sensitive attributes" in card


@pytest.mark.slow
def test_adversarial_debiasing_is_a_point_of_the_front_but_never_recommended(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    suite = write(
        root / "adv.yaml",
        {"candidate": {"loader": "sklearn", "path": "candidate.joblib"}},
        [
            FAIRNESS,
            {
                "id": "mitigation",
                "uses": "bias.mitigation",
                "with": {
                    "methods": ["adversarial_dp", "reweighing"],
                    "adversarial_epochs": 3,
                    "n_resamples": 100,
                    "fairness_gates": {"demographic_parity_difference": {"max": 1.0}},
                    "gates_from": None,
                },
            },
        ],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = llmguard_ops.run(suite, root / "out").report.checks[1]
    assert result.status is Status.PASS, result.error or result.warnings
    rows = {r["variant"]: r for r in result.details["variants"]}
    assert rows["adversarial_dp"]["deployable"] is False
    assert rows["adversarial_dp"]["meets_gates"] is True  # every variant passes a bound of 1
    assert result.details["recommended"]["variant"] != "adversarial_dp"
    assert "variant.adversarial_dp.accuracy" in result.metrics
