"""Simulation benchmark of canary.compare's decision rules: false alarms and power.

Each replicate draws a fresh labelled sample and two models whose errors are correlated
through a per-row difficulty (rows hard for one model tend to be hard for the other, as
with real champion/challenger pairs). The rules are exactly the check's code:

* ``regression_detected`` — one-sided McNemar for harm at alpha = 0.05 (what
  ``gate: {regression_detected: {max: 0}}`` blocks on), via
  :func:`llmguard_checks.canary.compare.compare`;
* ``replay`` — the staged rollout 1 % → 5 % → 25 % → 100 % with Lan-DeMets
  O'Brien-Fleming (and Pocock) alpha spending, total one-sided alpha 0.05, via
  :func:`llmguard_checks.canary.sequential.simulate_rollout`, with the log sized so the
  canary has seen about n requests at 100 %.

For comparison, ``peer: point estimate`` is the gate peers ship (MLflow's and TFMA's
baseline comparisons without a tolerance): block when the candidate's accuracy is below
the baseline's.

Scenarios: A/A (same accuracy, 0.85) and a planted 2-point accuracy drop, n = 5000.
Targets: false BLOCK rate within 5 % ± 1.5 % under A/A; the drop caught ≥ 80 %.

Run: ``python benchmarks/canary_stats.py [--reps 1000] [--n 5000]``
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
import scipy
from scipy import stats

from llmguard_checks.canary.compare import Arm, Settings, compare
from llmguard_checks.canary.sequential import simulate_rollout

STAGES = [0.01, 0.05, 0.25, 1.0]


def draw_pair(rng: np.random.Generator, n: int, accuracy: float, drop: float) -> tuple[np.ndarray, np.ndarray]:
    """Correctness of baseline and candidate on n rows with correlated errors."""
    # P(right) per row ~ Beta(2·acc, 2·(1 - acc)): mostly easy rows, some hard for both;
    # with acc = 0.85 about 17 % of rows are discordant
    difficulty = rng.beta(2.0 * accuracy, 2.0 * (1 - accuracy), n)
    base_ok = rng.random(n) < difficulty
    cand_ok = rng.random(n) < difficulty
    if drop > 0:  # break a share of the candidate's right answers: accuracy falls by `drop`
        cand_ok &= ~(rng.random(n) < drop / accuracy)
    return base_ok, cand_ok


def fixed_rule(rng: np.random.Generator, n: int, drop: float) -> bool:
    base_ok, cand_ok = draw_pair(rng, n, 0.85, drop)
    y = np.ones(n, dtype=int)
    comp = compare(
        y,
        Arm(cand_ok.astype(int)),
        Arm(base_ok.astype(int)),
        Settings(metrics=["accuracy"], n_resamples=0),
    )
    return comp.deltas["accuracy"].p_harm_adjusted < 0.05


def point_estimate_rule(rng: np.random.Generator, n: int, drop: float) -> bool:
    """The peers' gate: block when the candidate's point estimate is below the baseline's."""
    base_ok, cand_ok = draw_pair(rng, n, 0.85, drop)
    return bool(cand_ok.mean() < base_ok.mean())


def replay_rule(spending: str) -> Callable[[np.random.Generator, int, float], int | None]:
    def rule(rng: np.random.Generator, n: int, drop: float) -> int | None:
        size = round(n / sum(STAGES))  # equal windows; the canary sees ≈ n requests in all
        base_ok, cand_ok = draw_pair(rng, size * len(STAGES), 0.85, drop)
        diff = cand_ok.astype(float) - base_ok.astype(float)
        roll = simulate_rollout(diff, STAGES, alpha=0.05, spending=spending, margin=0.0, rng=rng)
        return roll.stopped_at

    return rule


def rate(hits: int, reps: int) -> str:
    ci = stats.binomtest(hits, reps).proportion_ci(0.95, method="wilson")
    return f"{hits / reps:6.1%}  [{ci.low:.1%}, {ci.high:.1%}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=20261128)
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}; "
        f"{args.reps} replicates, n = {args.n}, alpha = 0.05 one-sided"
    )
    print(f"{'rule':<38} {'scenario':<18} {'BLOCK rate [95% CI]':<26} {'target':<14} ok   caught at stage")
    rules: list[tuple[str, Callable[[np.random.Generator, int, float], object]]] = [
        ("peer: point estimate (delta < 0)", point_estimate_rule),
        ("regression_detected (McNemar)", fixed_rule),
        ("replay, O'Brien-Fleming spending", replay_rule("obrien-fleming")),
        ("replay, Pocock spending", replay_rule("pocock")),
    ]
    for name, rule in rules:
        for scenario, drop in (("A/A", 0.0), ("2-point drop", 0.02)):
            rng = np.random.default_rng([args.seed, int(drop * 100)])
            start = time.perf_counter()
            outcomes = [rule(rng, args.n, drop) for _ in range(args.reps)]
            seconds = time.perf_counter() - start
            stops = [o for o in outcomes if o is not None and o is not False]
            hits = len(stops)
            if drop == 0:
                target, ok = "5% ± 1.5%", abs(hits / args.reps - 0.05) <= 0.015
            else:
                target, ok = ">= 80%", hits / args.reps >= 0.80
            where = ""
            if name.startswith("replay"):
                counts = Counter(int(o) for o in stops if not isinstance(o, bool))
                where = ", ".join(f"{STAGES[k]:.0%}: {counts[k]}" for k in range(len(STAGES)))
            print(
                f"{name:<38} {scenario:<18} {rate(hits, args.reps):<26} {target:<14} "
                f"{'yes' if ok else 'NO ':<4} {where}  ({seconds:.1f}s)"
            )


if __name__ == "__main__":
    main()
