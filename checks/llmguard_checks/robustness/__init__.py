"""robustness.perturbation: property-based invariance checks driven by hypothesis.

Importing this module imports neither hypothesis nor any model library: they load when
the check runs. See ``docs/robustness.md`` for the perturbations, the properties and the
statistics.
"""

from __future__ import annotations

from collections.abc import Callable

from llmguard_ops import CheckDefinition, MetricSpec, hookimpl

from .._lazy import lazy_function
from .params import PerturbationParams

METRICS = (
    MetricSpec(
        "invariance_rate",
        "share of perturbed examples on which the property holds (Clopper-Pearson interval)",
        True,
    ),
    MetricSpec(
        "invariance_rate.*",
        "invariance rate per perturbation kind (Clopper-Pearson interval)",
        True,
    ),
    MetricSpec("failures", "perturbed examples on which the property failed", False),
)


#: The limitation the model card lists when a suite has no robustness check.
UNASSESSED = "robustness to perturbed inputs was not tested (no `robustness.*` check)"


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    """Register ``robustness.perturbation``."""
    register(
        CheckDefinition(
            name="robustness.perturbation",
            run=lazy_function(f"{__name__}._check", "run_perturbation"),
            params=PerturbationParams,
            metrics=METRICS,
            summary="Invariance under case, whitespace, typo, synonym, look-alike and noise "
            "perturbations (hypothesis), with the minimal failing example.",
            unassessed=UNASSESSED,
        )
    )
