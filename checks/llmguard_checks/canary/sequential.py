"""Group-sequential monitoring of a staged canary rollout (1 % → 5 % → 25 % → 100 %).

At each stage the paired per-request difference ``d_i`` (candidate - baseline, e.g.
correct_c - correct_b) of the requests routed to the canary so far gives

    Z_k = (mean(d) + margin) / (sd(d) / sqrt(n_k))

and the rollout stops for harm at the first stage with ``Z_k <= -c_k``. The bounds
``c_k`` come from a Lan-DeMets alpha-spending function evaluated at the information
fraction ``t_k = n_k / n_K``:

* ``obrien-fleming``: alpha(t) = 2 - 2 Φ(z_{1-alpha/2} / √t) — spends almost nothing early;
* ``pocock``:        alpha(t) = alpha · ln(1 + (e - 1) t) — spends evenly, stops earlier.

Under H0 (true delta = -margin) the Z_k are jointly normal with
corr(Z_i, Z_j) = √(t_i / t_j), and ``c_k`` solves
P(Z_1 > -c_1, …, Z_{k-1} > -c_{k-1}, Z_k ≤ -c_k) = alpha(t_k) - alpha(t_{k-1}).
The total one-sided type-I error is alpha
however many stages there are. The bounds are computed by numerical integration over
the stages (see :func:`boundaries`), the method behind standard group-sequential
software.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._lazy import lazy_module

# imported when a rollout is simulated, not when the plugin loads
optimize = lazy_module("scipy.optimize")
special = lazy_module("scipy.special")
stats = lazy_module("scipy.stats")


def spent(t: float, alpha: float, spending: str) -> float:
    """Cumulative one-sided alpha spent by information fraction ``t`` (0 < t ≤ 1)."""
    if t <= 0:
        return 0.0
    t = min(t, 1.0)
    if spending == "obrien-fleming":
        return float(2.0 - 2.0 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / math.sqrt(t)))
    if spending == "pocock":
        return float(alpha * math.log(1 + (math.e - 1) * t))
    raise ValueError(f"unknown spending function '{spending}' (obrien-fleming or pocock)")


def _weights(x: np.ndarray) -> np.ndarray:
    """Trapezoid weights of an equally spaced grid."""
    w = np.full(len(x), x[1] - x[0])
    w[[0, -1]] *= 0.5
    return w


def boundaries(fractions: Sequence[float], alpha: float, spending: str, grid: int = 301) -> list[float]:
    """Critical values ``c_k`` (stop when Z_k ≤ -c_k) at the given information fractions.

    Numerical integration in the manner of Armitage, McPherson & Rowe (1969): with
    B_k = Z_k √t_k a Brownian motion under H0, the sub-density of B_k on the paths not
    yet stopped is carried from stage to stage on a grid, and each ``c_k`` solves
    P(stop at stage k, not before) = alpha(t_k) - alpha(t_{k-1}) by root finding. A stage with
    (numerically) nothing to spend gets an infinite bound.
    """
    t = np.asarray(fractions, dtype=float)
    if np.any(np.diff(t) <= 0) or t[0] <= 0 or t[-1] > 1 + 1e-12:
        raise ValueError(f"information fractions must increase within (0, 1]: {t.tolist()}")
    bounds: list[float] = []
    x = np.array([0.0])
    f = np.array([1.0])  # a point mass at B_0 = 0
    w = np.array([1.0])
    prev_t, prev_spent = 0.0, 0.0
    for tk in t:
        sd = math.sqrt(tk - prev_t)
        target = spent(float(tk), alpha, spending) - prev_spent
        mass = w * f

        def stop_prob(c: float, tk: float = tk, sd: float = sd, mass: np.ndarray = mass, x: np.ndarray = x) -> float:
            return float(mass @ special.ndtr((-c * math.sqrt(tk) - x) / sd))

        if target <= 1e-14 or stop_prob(40.0) >= target:
            c = math.inf
        else:
            c = float(optimize.brentq(lambda v, g=target: stop_prob(v) - g, -40.0, 40.0, xtol=1e-9))
        bounds.append(c)
        low = -c * math.sqrt(tk) if math.isfinite(c) else -9 * math.sqrt(tk)
        y = np.linspace(low, 9 * math.sqrt(tk), grid)
        gauss = np.exp(-0.5 * ((y[:, None] - x[None, :]) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
        f = gauss @ mass
        x, w = y, _weights(y)
        prev_t, prev_spent = float(tk), prev_spent + (target if math.isfinite(c) else 0.0)
    return bounds


@dataclass(frozen=True)
class StageResult:
    """What the monitor saw at the end of one rollout stage."""

    stage: int
    share: float
    requests: int
    canary_requests: int
    cumulative: int
    information: float
    delta: float
    z: float
    bound: float
    alpha_spent: float
    stopped: bool

    def record(self) -> dict[str, float | int | bool | None]:
        """JSON-friendly row for the report (infinite bounds shown as None)."""
        row: dict[str, float | int | bool | None] = dict(self.__dict__)
        for key in ("z", "bound"):
            value = row[key]
            row[key] = None if value is None or not math.isfinite(float(value)) else round(float(value), 4)
        return row


@dataclass(frozen=True)
class Rollout:
    """A simulated rollout: every stage evaluated, and where it would have stopped."""

    stages: list[StageResult]
    stopped_at: int | None  # index into stages, None when it ran to completion
    spending: str
    alpha: float
    margin: float


def simulate_rollout(
    diff: np.ndarray,
    shares: Sequence[float],
    *,
    alpha: float,
    spending: str,
    margin: float,
    rng: np.random.Generator,
    stage_sizes: Sequence[int] | None = None,
) -> Rollout:
    """Replay a log of paired per-request differences through a staged rollout.

    ``diff[i]`` is the candidate-minus-baseline score of request ``i`` (higher better),
    in log order. The log is cut into one consecutive window per stage (equal windows
    unless ``stage_sizes`` says otherwise); in stage k each request of its window goes
    to the canary with probability ``shares[k]``. Every stage is evaluated (for the
    report); ``stopped_at`` is the first stage whose bound is crossed.
    """
    diff = np.asarray(diff, dtype=float)
    n = len(diff)
    if stage_sizes is None:
        edges = np.linspace(0, n, len(shares) + 1).round().astype(int)
    else:
        if len(stage_sizes) != len(shares) or sum(stage_sizes) > n:
            raise ValueError(f"stage_sizes {list(stage_sizes)} must give one size per stage and sum to at most {n}")
        edges = np.concatenate([[0], np.cumsum(stage_sizes)]).astype(int)
    routed = np.zeros(n, dtype=bool)
    for k, share in enumerate(shares):
        a, b = edges[k], edges[k + 1]
        routed[a:b] = rng.random(b - a) < share
    counts = [int(routed[: edges[k + 1]].sum()) for k in range(len(shares))]
    looks = [k for k in range(len(shares)) if counts[k] >= 2 and (k == 0 or counts[k] > counts[k - 1])]
    if not looks:
        raise ValueError("no stage routed at least two requests to the canary; the log is too short")
    total = counts[looks[-1]]
    fractions = [counts[k] / total for k in looks]
    bounds = dict(zip(looks, boundaries(fractions, alpha, spending), strict=True))
    stages: list[StageResult] = []
    stopped_at: int | None = None
    for k, share in enumerate(shares):
        seen = diff[: edges[k + 1]][routed[: edges[k + 1]]]
        info = counts[k] / total
        if k in bounds:
            mean = float(seen.mean())
            sd = float(seen.std(ddof=1))
            z = (
                (mean + margin) / (sd / math.sqrt(len(seen)))
                if sd > 0
                else (math.inf if mean + margin >= 0 else -math.inf)
            )
            bound = bounds[k]
        else:
            mean = float(seen.mean()) if len(seen) else 0.0
            z, bound = math.nan, math.inf
        crossed = bool(np.isfinite(bound) and z <= -bound)
        if crossed and stopped_at is None:
            stopped_at = k
        stages.append(
            StageResult(
                stage=k + 1,
                share=float(share),
                requests=int(edges[k + 1] - edges[k]),
                canary_requests=int(routed[edges[k] : edges[k + 1]].sum()),
                cumulative=counts[k],
                information=round(info, 6),
                delta=mean,
                z=z,
                bound=bound,
                alpha_spent=spent(info, alpha, spending),
                stopped=crossed,
            )
        )
    return Rollout(stages, stopped_at, spending, alpha, margin)
