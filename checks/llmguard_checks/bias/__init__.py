"""The bias checks of llmguard-ops: group_fairness, counterfactual, mitigation, data, bbq.

Registered through the ``llmguard`` entry point ``bias``. Importing this package imports
no heavy library: fairlearn, AIF360, scikit-learn and torch are imported inside the
functions that use them, when a suite runs one of these checks.
"""

from __future__ import annotations

from collections.abc import Callable

from llmguard_ops import CardSection, CheckDefinition, hookimpl

from .bbq import METRICS as BBQ_METRICS
from .bbq import BBQParams, run_bbq
from .counterfactual import METRICS as COUNTERFACTUAL_METRICS
from .counterfactual import CounterfactualParams, run_counterfactual
from .data_check import METRICS as DATA_METRICS
from .data_check import DataBiasParams, run_data_bias
from .group_fairness import GroupFairnessParams, metric_specs, run_group_fairness
from .mitigation_check import METRICS as MITIGATION_METRICS
from .mitigation_check import MitigationParams, run_mitigation

__all__ = [
    "BBQParams",
    "CounterfactualParams",
    "DataBiasParams",
    "GroupFairnessParams",
    "MitigationParams",
    "llmguard_register_checks",
    "run_bbq",
    "run_counterfactual",
    "run_data_bias",
    "run_group_fairness",
    "run_mitigation",
]


#: What the host needs to know of the bias checks: they are about fairness and read the
#: labels, record fairlearn's and AIF360's versions, and have the model card's Fairness section.
FAMILY_TAGS = ("fairness", "needs-labels")
PACKAGES = ("fairlearn", "aif360")
FAIRNESS = CardSection(
    "Fairness",
    order=10,
    render="groups",
    empty="No fairness check (`bias.*`) ran in this suite: how the model treats groups is not assessed.",
)
UNASSESSED = "fairness across groups was not assessed (no `bias.*` check)"


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    """Register the ``bias.*`` checks."""
    register(
        CheckDefinition(
            name="bias.group_fairness",
            run=run_group_fairness,
            params=GroupFairnessParams,
            metrics=metric_specs(),
            summary="Disparities between (intersectional) groups from fairlearn and AIF360, "
            "with bootstrap intervals and mitigation advice.",
            tags=FAMILY_TAGS,
            packages=PACKAGES,
            card_section=FAIRNESS,
            unassessed=UNASSESSED,
        )
    )
    register(
        CheckDefinition(
            name="bias.counterfactual",
            run=run_counterfactual,
            params=CounterfactualParams,
            metrics=COUNTERFACTUAL_METRICS,
            summary="Swap demographic terms, names and pronouns; flip rate and score gap of a "
            "language model's outputs.",
            tags=FAMILY_TAGS,
            packages=PACKAGES,
            card_section=FAIRNESS,
            unassessed=UNASSESSED,
        )
    )
    register(
        CheckDefinition(
            name="bias.mitigation",
            run=run_mitigation,
            params=MitigationParams,
            metrics=MITIGATION_METRICS,
            summary="Retrain the candidate with fairlearn/AIF360 mitigations; fairness/accuracy "
            "Pareto front on the holdout; the cheapest variant meeting the gates, saved (skops).",
            tags=FAMILY_TAGS,
            packages=PACKAGES,
            card_section=FAIRNESS,
            unassessed=UNASSESSED,
        )
    )
    register(
        CheckDefinition(
            name="bias.data",
            run=run_data_bias,
            params=DataBiasParams,
            metrics=DATA_METRICS,
            summary="Bias in training data: representation against the population, label "
            "balance (AIF360), proxies of sensitive columns (mutual information).",
            tags=FAMILY_TAGS,
            packages=PACKAGES,
            card_section=FAIRNESS,
            unassessed=UNASSESSED,
        )
    )
    register(
        CheckDefinition(
            name="bias.bbq",
            run=run_bbq,
            params=BBQParams,
            metrics=BBQ_METRICS,
            summary="Stereotyped answers of a generative model in ambiguous and disambiguated "
            "contexts: BBQ bias scores with intervals over items.",
            tags=FAMILY_TAGS,
            packages=PACKAGES,
            card_section=FAIRNESS,
            unassessed=UNASSESSED,
        )
    )
