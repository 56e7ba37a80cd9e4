"""explain.shap and explain.lime: attributions, stability against the baseline, agreement.

Importing this module imports neither shap, lime nor scikit-learn, torch or matplotlib:
they load when the check runs. See ``docs/explain.md`` for the parameters, the metrics and the
statistics behind them.
"""

from __future__ import annotations

from collections.abc import Callable

from llmguard_ops import CardSection, CheckDefinition, MetricSpec, hookimpl

from .._lazy import lazy_function
from .params import LimeParams, ShapParams

METRICS = (
    MetricSpec(
        "importance.*",
        "mean |SHAP| of a feature (or token) over the explained rows, bootstrap interval",
    ),
    MetricSpec(
        "rank_correlation_vs_baseline",
        "Spearman correlation of candidate and baseline importances",
        True,
    ),
    MetricSpec("top_k_overlap", "share of the baseline's top-k features in the candidate's top k", True),
    MetricSpec(
        "attribution_drift",
        "total-variation distance of normalised importances, reference → current (permutation-test p-value)",
        False,
    ),
    MetricSpec(
        "rank_correlation_vs_reference",
        "Spearman correlation of importances on reference and current",
        True,
    ),
    MetricSpec("protected_in_top_k", "protected features and their proxies among the top k", False),
    MetricSpec(
        "additivity_error",
        "max |base value + sum of SHAP - model output| over explained rows",
        False,
    ),
)


LIME_METRICS = (
    MetricSpec("importance.*", "mean |LIME weight| of a feature (or token), bootstrap interval"),
    MetricSpec(
        "rank_correlation_vs_baseline",
        "Spearman correlation of candidate and baseline importances",
        True,
    ),
    MetricSpec("top_k_overlap", "share of the baseline's top-k features in the candidate's top k", True),
    MetricSpec("protected_in_top_k", "protected features and their proxies among the top k", False),
    MetricSpec("shap_lime_agreement", "Spearman correlation of global |LIME| and |SHAP| importances", True),
    MetricSpec(
        "shap_lime_row_agreement",
        "mean over rows of the Spearman correlation of |LIME| and |SHAP|",
        True,
    ),
    MetricSpec("local_fit", "mean R² of LIME's local surrogate on its perturbed samples", True),
)


#: The model card's Explanations section, shared by both explainers.
EXPLANATIONS = CardSection(
    "Explanations",
    order=20,
    render="features",
    empty="No explanation check (`explain.*`) ran in this suite.",
)


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    """Register ``explain.shap`` and ``explain.lime``."""
    register(
        CheckDefinition(
            name="explain.shap",
            run=lazy_function(f"{__name__}._check", "run_shap"),
            params=ShapParams,
            metrics=METRICS,
            summary="SHAP importance, top features, stability vs baseline, attribution drift, protected-feature gate.",
            card_section=EXPLANATIONS,
            tags=("explanation",),
            packages=("shap",),
        )
    )
    register(
        CheckDefinition(
            name="explain.lime",
            run=lazy_function(f"{__name__}._lime_check", "run_lime"),
            params=LimeParams,
            metrics=LIME_METRICS,
            summary="LIME importance, top features, stability vs baseline, protected-feature gate, "
            "agreement with SHAP.",
            card_section=EXPLANATIONS,
            tags=("explanation",),
        )
    )
