"""The run function of ``robustness.perturbation``.

Two hypothesis runs, both without an example database and seeded by the run's seed:

1. **Estimate.** A ``@given`` probe draws up to ``max_examples`` (row, perturbation)
   pairs and records whether the property held; it never fails, so generation is not
   cut short by the first counterexample. Repeated examples count once. The invariance
   rate gets a Clopper-Pearson interval (scipy's exact binomial interval), which treats
   the examples as independent trials.
2. **Shrink.** When anything failed, ``hypothesis.find`` searches for a violation and
   shrinks it to a minimal failing example (earliest row, fewest and simplest edits).
"""

from __future__ import annotations

import contextlib
import difflib
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from llmguard_ops import CheckContext, CheckOutput, CheckSkipped

if TYPE_CHECKING:
    from hypothesis import strategies as st

    from ._strategies import Perturbed
    from .params import PerturbationParams

DEFAULT_TEXT = ["case", "whitespace", "punctuation", "typos"]


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Exact binomial interval of k successes in n trials (scipy)."""
    from .._proportion import exact_interval

    return exact_interval(k, n, confidence)


def _plain(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    return v.item() if hasattr(v, "item") else v


class _Subject:
    """The model under test with its original outputs and the chosen property."""

    def __init__(self, ctx: CheckContext, params: PerturbationParams) -> None:
        self.params = params
        self.loaded = ctx.model(params.model)
        self.obj = self.loaded.obj
        self.text = self.loaded.input_kind == "text"
        generative = self.text and getattr(self.obj, "task", "") == "causal-lm"
        self.prop = params.invariance if params.invariance != "auto" else ("similarity" if generative else "label")
        if self.prop == "score" and hasattr(self.obj, "predict_proba"):
            self.method = "predict_proba"
        else:
            self.method = "predict"
        self.original = ctx.predict(params.model, params.dataset, self.method)
        ds = ctx.dataset(params.dataset)
        self.columns = None if self.text else self.loaded.feature_names(ds)
        # texts, or the feature frame itself (ctx.inputs gives arrays to array-fitted models)
        self.inputs: Any = ctx.inputs(params.model, params.dataset) if self.text else ds.frame[self.columns]
        self.as_array = (
            not self.text
            and getattr(self.obj, "feature_names_in_", None) is None
            and hasattr(self.obj, "n_features_in_")
        )

    def seed_value(self, row: int) -> Any:
        if self.text:
            return self.inputs[row]
        return {c: _plain(v) for c, v in self.inputs.iloc[row].items()}

    def evaluate(self, value: Any) -> Any:
        if self.text:
            batch: Any = [value]
        else:
            frame = pd.DataFrame([value], columns=self.columns).astype(self.inputs.dtypes.to_dict())
            batch = frame.to_numpy() if self.as_array else frame
        return np.asarray(getattr(self.obj, self.method)(batch), dtype=object if self.text else None)[0]

    def holds(self, row: int, new: Any) -> tuple[bool, float | None]:
        """Whether the property holds, and the measured change (score gap or similarity)."""
        old = self.original[row]
        if self.prop == "label":
            return bool(_plain(old) == _plain(new)), None
        if self.prop == "score":
            gap = float(np.max(np.abs(np.asarray(old, dtype=float) - np.asarray(new, dtype=float))))
            return gap <= self.params.score_tolerance, gap
        a, b = str(old), str(new)
        sim = 1.0 if a == b else difflib.SequenceMatcher(None, a, b).ratio()
        return sim >= self.params.similarity_floor, sim


def _strategies(
    subject: _Subject, params: PerturbationParams, kinds: list[str], ctx: CheckContext
) -> Callable[[int], list[st.SearchStrategy[Perturbed]]]:
    from . import _strategies as S

    cache: dict[int, list[st.SearchStrategy[Perturbed]]] = {}
    extra = {w.lower(): tuple([w, *alts]) for w, alts in params.synonyms.items()}
    tolerance: dict[str, tuple[float, bool]] = {}
    if not subject.text:
        frame = subject.inputs
        for col in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(frame[col]):
                continue
            tol = params.tolerance.get(col)
            if tol is None and params.relative_tolerance is not None:
                tol = params.relative_tolerance * float(frame[col].std())
            if tol is not None:
                tolerance[str(col)] = (float(tol), pd.api.types.is_integer_dtype(frame[col]))
        unknown = sorted(set(params.tolerance) - set(tolerance))
        if unknown:
            raise ValueError(f"tolerance names columns that are not numeric features of the model: {unknown}")

    def per_row(row: int) -> list[st.SearchStrategy[Perturbed]]:
        if row not in cache:
            value = subject.seed_value(row)
            found = []
            for kind in kinds:
                if subject.text:
                    strat = S.text_strategy(kind, value, params.max_edits, extra)
                else:
                    strat = S.row_strategy(kind, value, params.max_edits, tolerance, params.equivalent)
                if strat is not None:
                    found.append(strat)
            cache[row] = found
        return cache[row]

    return per_row


def _kinds(subject: _Subject, params: PerturbationParams) -> list[str]:
    from ._strategies import TABULAR_KINDS, TEXT_KINDS

    kinds: list[str]
    if params.perturbations:
        kinds = [str(k) for k in dict.fromkeys(params.perturbations)]
    elif subject.text:
        kinds = list(DEFAULT_TEXT)
    else:
        kinds = ["numeric_noise"] + (["category_swap"] if params.equivalent else [])
    allowed = TEXT_KINDS if subject.text else TABULAR_KINDS
    wrong = [k for k in kinds if k not in allowed]
    if wrong:
        what = "text" if subject.text else "tabular"
        raise ValueError(
            f"perturbations {wrong} do not apply to the {what} model '{params.model}' "
            f"(choose from {', '.join(allowed)})"
        )
    return kinds


class _Judge:
    """Evaluates one (row, perturbation) example against the property; counts model calls."""

    def __init__(self, subject: _Subject) -> None:
        self.subject = subject
        self.calls = 0

    def __call__(self, row: int, p: Perturbed) -> dict[str, Any]:
        self.calls += 1
        new = self.subject.evaluate(p.value)
        ok, measure = self.subject.holds(row, new)
        return {"row": row, "kind": p.kind, "ok": ok, "perturbed": p, "output": new, "measure": measure}


def _hypothesis_settings(params: PerturbationParams) -> dict[str, Any]:
    """Settings both hypothesis runs share: no database, no deadline, the check's provider."""
    from hypothesis import HealthCheck, Verbosity

    from ._provider import register

    return dict(
        backend=register(),
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
        derandomize=params.derandomize,
    )


def _estimate(
    ctx: CheckContext,
    params: PerturbationParams,
    strategy: st.SearchStrategy[tuple[int, Perturbed]],
    judge: _Judge,
    common: dict[str, Any],
    start: float,
) -> tuple[list[dict[str, Any]], bool]:
    """Run 1: the ``@given`` probe. Returns one record per distinct example, and whether
    the time limit cut the probe short."""
    import hypothesis
    import hypothesis.errors
    from hypothesis import Phase, assume, given, settings

    records: dict[tuple[int, str], dict[str, Any]] = {}
    timed_out = False

    @settings(max_examples=params.max_examples, phases=[Phase.generate], **common)
    @given(strategy)
    def probe(example: tuple[int, Perturbed]) -> None:
        nonlocal timed_out
        if time.perf_counter() - start > params.time_limit_s:
            timed_out = True
            assume(False)
        row, p = example
        key = (row, repr(p.value))
        if key not in records:
            records[key] = judge(row, p)

    if not params.derandomize:
        probe = hypothesis.seed(ctx.seed)(probe)
    # every example rejected (time limit hit at once): reported as none evaluated
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        probe()
    return list(records.values()), timed_out


def _shrink(
    ctx: CheckContext,
    params: PerturbationParams,
    spaces: list[st.SearchStrategy[tuple[int, Perturbed]]],
    judge: _Judge,
    common: dict[str, Any],
) -> dict[str, Any] | None:
    """Run 2: ``hypothesis.find`` re-finds a violation in the first space where it can and
    shrinks it; returns the shrunk example's record, or None when none was re-found."""
    from hypothesis import Phase, find, settings
    from hypothesis.errors import NoSuchExample

    shrink_start = time.perf_counter()

    def violated(example: tuple[int, Perturbed]) -> bool:
        if time.perf_counter() - shrink_start > params.time_limit_s:
            return False  # out of time: find keeps the smallest failure so far
        return not judge(*example)["ok"]

    find_settings = settings(max_examples=params.max_examples, phases=[Phase.generate, Phase.shrink], **common)
    rng = None if params.derandomize else random.Random(ctx.seed)
    for space in spaces:
        try:
            row, p = find(space, violated, settings=find_settings, random=rng)
        except NoSuchExample:
            continue
        return judge(row, p)
    return None


def _add_rates(out: CheckOutput, ctx: CheckContext, kinds: list[str], results: list[dict[str, Any]]) -> None:
    """The overall invariance rate, one per perturbation kind that was drawn, and failures."""
    _rate(out, ctx, "invariance_rate", results)
    for kind in kinds:
        subset = [r for r in results if r["kind"] == kind]
        if subset:
            _rate(out, ctx, f"invariance_rate.{kind}", subset)
    out.add("failures", float(sum(1 for r in results if not r["ok"])), n=len(results))


def _tolerance(subject: _Subject, params: PerturbationParams) -> dict[str, float]:
    if subject.prop == "score":
        return {"score": params.score_tolerance}
    if subject.prop == "similarity":
        return {"similarity_floor": params.similarity_floor}
    return {}


def run_perturbation(ctx: CheckContext, params: PerturbationParams) -> CheckOutput:
    """Estimate the invariance rate and shrink the first violation, under the run's seed."""
    import hypothesis

    from ._strategies import examples

    subject = _Subject(ctx, params)
    kinds = _kinds(subject, params)
    n_rows = len(subject.inputs)
    if n_rows == 0:
        raise ValueError(f"dataset '{params.dataset}' has no rows")
    rows = sorted(int(r) for r in ctx.rng().choice(n_rows, size=min(params.max_rows, n_rows), replace=False))
    per_row = _strategies(subject, params, kinds, ctx)
    try:
        strategy = examples(rows, per_row)
    except ValueError as exc:
        raise CheckSkipped(f"{exc}: perturbations {kinds}") from None

    start = time.perf_counter()
    judge = _Judge(subject)
    common = _hypothesis_settings(params)
    results, timed_out = _estimate(ctx, params, strategy, judge, common, start)
    elapsed = time.perf_counter() - start
    if not results:
        raise ValueError(f"no example was evaluated within {params.time_limit_s:g}s")

    out = CheckOutput()
    _add_rates(out, ctx, kinds, results)
    failed = [r for r in results if not r["ok"]]
    minimal = None
    if failed and params.shrink:
        # the whole space first, then the first failure's row alone
        shrunk = _shrink(ctx, params, [strategy, examples([failed[0]["row"]], per_row)], judge, common)
        if shrunk is not None:
            minimal = _describe(subject, shrunk, shrunk=True)
    if failed and minimal is None:
        minimal = _describe(subject, failed[0], shrunk=False)
        if params.shrink:
            out.warnings.append("hypothesis did not re-find a failure to shrink; the first failure is shown")
    if timed_out:
        out.warnings.append(f"time limit {params.time_limit_s:g}s reached after {len(results)} examples")
    out.details.update(
        property=subject.prop,
        perturbations=kinds,
        n_examples=len(results),
        model_calls=judge.calls,
        seed_rows=len(rows),
        timed_out=timed_out,
        elapsed_s=round(elapsed, 3),
        budget={
            "max_examples": params.max_examples,
            "time_limit_s": params.time_limit_s,
            "max_rows": params.max_rows,
            "max_edits": params.max_edits,
        },
        hypothesis={
            "version": hypothesis.__version__,
            "seed": None if params.derandomize else ctx.seed,
            "derandomize": params.derandomize,
            "database": None,
        },
        tolerance=_tolerance(subject, params),
        minimal_failing_example=minimal,
        failure_sample=[_describe(subject, r, shrunk=False) for r in failed[:5]],
    )
    return out


def _rate(out: CheckOutput, ctx: CheckContext, name: str, results: list[dict[str, Any]]) -> None:
    n = len(results)
    k = sum(1 for r in results if r["ok"])
    level = ctx.confidence(name)
    low, high = clopper_pearson(k, n, level)
    out.add(name, k / n, lower=low, upper=high, confidence=level, interval_method="clopper-pearson", n=n)


def _describe(subject: _Subject, record: dict[str, Any], *, shrunk: bool) -> dict[str, Any]:
    p: Perturbed = record["perturbed"]
    row = record["row"]
    original = subject.seed_value(row)
    if subject.text:
        shown: dict[str, Any] = {"original": original, "perturbed": p.value}
    else:
        shown = {"changed": {c: [original[c], p.value[c]] for c in original if original[c] != p.value[c]}}
    return {
        "row": int(row),
        "kind": p.kind,
        "edits": list(p.edits),
        **shown,
        "original_output": _plain(subject.original[row]),
        "perturbed_output": _plain(record["output"]),
        "measure": record["measure"],
        "shrunk": shrunk,
    }
