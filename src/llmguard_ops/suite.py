"""The suite format, ``apiVersion: llmguard/v1``, as pydantic models.

These models are the contract of the YAML file. Check parameters (``with:``) are
validated in a second step against the parameter model of the check named by
``uses`` (see :mod:`llmguard_ops.loading`), so each check's own errors carry their
full key path too.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .errors import did_you_mean
from .matrix import Matrix
from .monitor.spec import GatePrior, IncidentStep, LearnedBand
from .results import Severity

API_VERSION = "llmguard/v1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ModelSignature(_Strict):
    """An OpenSSF model-signing signature of the model's file or folder, checked before loading."""

    path: str = Field(description="The signature file (a Sigstore bundle), relative to the suite file.")
    public_key: str | None = Field(None, description="EC public key (PEM) for a key-based signature.")
    certificate_chain: list[str] = Field(
        default_factory=list, description="PEM certificates for a certificate-based signature."
    )

    @model_validator(mode="after")
    def _one_verifier(self) -> ModelSignature:
        if (self.public_key is None) == (not self.certificate_chain):
            raise ValueError("give exactly one of 'public_key' and 'certificate_chain'")
        return self


class FewShot(_Strict):
    """One worked example shown to a generative model before the real question."""

    user: str = Field(description="The example's user turn (plain text, no placeholders).")
    assistant: str = Field(description="The answer the model should imitate.")


class PromptSpec(_Strict):
    """A prompt template: how one dataset row becomes the conversation a model is sent.

    ``template`` fills ``{column}`` placeholders from the row (``{{`` and ``}}`` for
    literal braces). With ``context_column`` the row's retrieval context is given to the
    model: in place of a ``{context}`` placeholder when the template has one, else as a
    ``Context:`` block before the template. A dataset with a ``messages`` column
    (OpenAI-shaped turns) is sent as is, after the system prompt and the few-shot turns.
    """

    system: str | None = Field(None, description="System prompt (first message of every conversation).")
    template: str = Field(
        "{text}", description="User turn with {column} placeholders; {text} is the dataset's text column."
    )
    context_column: str | None = Field(None, description="Column of retrieval context (RAG) shown to the model.")
    few_shot: list[FewShot] = Field(default_factory=list, description="Worked examples before the question.")
    messages_column: str | None = Field(
        None,
        description="Column holding OpenAI-shaped messages (multi-turn); default 'messages' when the dataset has it.",
    )
    description: str | None = None

    @field_validator("template")
    @classmethod
    def _fields_are_names(cls, v: str) -> str:
        import string

        try:
            names = [f for _, f, _, _ in string.Formatter().parse(v) if f is not None]
        except ValueError as exc:
            raise ValueError(f"bad template: {exc}") from None
        for name in names:
            if not name or not name.replace("_", "").replace("-", "").replace(" ", "").isalnum():
                raise ValueError(f"template placeholder {{{name}}} must name a column")
        return v


class GenerationConfig(_Strict):
    """Generation settings of a model: part of what is released, with the prompt."""

    temperature: float = Field(0.0, ge=0, le=5, description="0: greedy (deterministic).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(32, ge=1, le=1_000_000, description="Longest answer in tokens.")
    stop: list[str] = Field(default_factory=list, description="The answer ends before the first of these strings.")
    seed: int | None = Field(
        None, description="Seed of sample 0 (default: the suite seed); sample i uses a seed derived from it and i."
    )
    samples: int = Field(1, ge=1, le=1000, description="Independent generations per prompt (pass@k).")
    truncate: Literal["left", "error"] = Field(
        "left", description="A prompt longer than the context window: keep its end (counted warning), or error."
    )

    @field_validator("stop", mode="before")
    @classmethod
    def _one_or_many_stop(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class TokenPrice(_Strict):
    """Price of a model's tokens, in any currency, per 1000 tokens."""

    prompt_per_1k: float = Field(0.0, ge=0, description="Price of 1000 prompt tokens.")
    output_per_1k: float = Field(0.0, ge=0, description="Price of 1000 output tokens.")
    currency: str = "USD"


class ModelSpec(_Strict):
    """A model artifact: which loader reads it and from where.

    For a generative model, ``prompt`` (a name from the suite's ``prompts:`` or an inline
    template) and ``generation`` (settings) complete the deployable unit: two entries may
    share ``path`` and differ only in prompt.
    """

    loader: str = Field(description="Model loader name, e.g. sklearn, python, torch, transformers, onnx.")
    path: str | None = Field(None, description="File, folder or 'module:callable', relative to the suite file.")
    options: dict[str, Any] = Field(default_factory=dict, description="Loader-specific options.")
    description: str | None = None
    signature: ModelSignature | None = Field(
        None, description="OpenSSF model-signing signature verified before the model is loaded."
    )
    prompt: str | PromptSpec | None = Field(
        None, description="Prompt template of a generative model: a name from 'prompts:' or an inline template."
    )
    generation: GenerationConfig | None = Field(None, description="Generation settings of a generative model.")
    price: TokenPrice | None = Field(None, description="Token prices (cost_per_1k_requests).")


class DatasetSpec(_Strict):
    """A dataset: a CSV, Parquet or JSONL file (or a folder of Parquet partitions), and the roles of its columns."""

    path: str = Field(description="Data file, relative to the suite file.")
    loader: str | None = Field(None, description="Dataset loader; by default chosen by file extension.")
    target: str | None = Field(None, description="Column holding the label or regression target.")
    sensitive: list[str] = Field(
        default_factory=list, description="Sensitive attribute columns (never fed to a model)."
    )
    features: list[str] | None = Field(
        None, description="Columns fed to models that do not declare their own feature names."
    )
    text: str | None = Field(None, description="Column holding text inputs for language models.")
    options: dict[str, Any] = Field(default_factory=dict, description="Loader-specific options.")
    description: str | None = None
    partitioned: bool = Field(
        False, description="A folder of Parquet partitions, read one partition at a time (never loaded whole)."
    )
    format: Literal["parquet"] | None = Field(None, description="File format of a folder path: parquet partitions.")
    task_memory_mb: int | None = Field(None, ge=1, description="Memory per partition task on Ray (MiB; default 512).")

    @field_validator("sensitive", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class GateBound(_Strict):
    """Bounds one metric must respect.

    With ``confidence`` set, the bound must hold for the whole confidence interval at
    that level: ``min`` is compared with the lower end, ``max`` with the upper end.
    """

    min: float | None = None
    max: float | None = None
    confidence: float | None = Field(None, gt=0, lt=1, description="e.g. 0.95")
    learned: LearnedBand | None = Field(
        None, description="Bounds learnt from the metric's history (llmguard monitor); min/max apply until then."
    )
    for_: int | None = Field(
        None, alias="for", ge=1, description="Windows the condition must hold before the gate fires (default 1)."
    )
    keep_firing_for: int | None = Field(
        None, ge=0, description="Windows a fired gate keeps firing after it clears (default 0)."
    )
    prior: GatePrior | None = Field(
        None, description="Raw states of earlier windows; filled in by llmguard monitor, not by hand."
    )

    @model_validator(mode="after")
    def _some_bound(self) -> GateBound:
        if self.min is None and self.max is None and self.learned is None:
            raise ValueError("a gate needs 'min' and/or 'max' (or 'learned')")
        for name in ("min", "max"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"'{name}' must be a finite number")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' ({self.min}) is greater than 'max' ({self.max})")
        return self


class Waiver(_Strict):
    """An approved exception for one check: its failure does not gate until ``expires``."""

    check: str
    approver: str
    reason: str
    expires: str = Field(description="ISO date (YYYY-MM-DD, UTC, inclusive); an expired waiver is ignored.")

    @field_validator("expires", mode="before")
    @classmethod
    def _iso_date(cls, v: Any) -> Any:
        if isinstance(v, dt.date):  # YAML reads an unquoted 2026-12-31 as a date
            return v.isoformat()
        if isinstance(v, str):
            try:
                dt.date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"expected an ISO date YYYY-MM-DD, got {v!r}") from None
        return v


_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "ki": 2**10,
    "kib": 2**10,
    "mi": 2**20,
    "mib": 2**20,
    "gi": 2**30,
    "gib": 2**30,
    "ti": 2**40,
    "tib": 2**40,
}


def _memory_bytes(v: Any) -> Any:
    """``512MiB``, ``2GB``, ``4Gi`` or a number of bytes → bytes (an int)."""
    if isinstance(v, str):
        import re

        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", v)
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _MEMORY_UNITS:
            raise ValueError(f"expected bytes or a size such as 512MiB or 2GB, got {v!r}")
        return int(float(match.group(1)) * _MEMORY_UNITS[str(unit)])
    return v


class ResourceSpec(_Strict):
    """What one check needs where checks are placed on machines (``policy.executor: ray``)."""

    cpus: float | None = Field(None, ge=0, allow_inf_nan=False, description="CPUs (default 1).")
    gpus: float | None = Field(None, ge=0, allow_inf_nan=False, description="GPUs (default 0; fractions share one).")
    memory: Annotated[
        int | None,
        BeforeValidator(_memory_bytes),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "integer", "minimum": 0},
                    {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*[A-Za-z]*\s*$"},
                    {"type": "null"},
                ]
            }
        ),
    ] = Field(None, ge=0, description="Memory to reserve: bytes or a size such as 512MiB or 2GB.")
    custom: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict, description="Custom cluster resources (e.g. a node label set with ray start --resources)."
    )


class CheckConfig(_Strict):
    """One check of a suite: ``uses`` names an installed check, ``with`` its parameters."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$", description="Unique id of this check.")]
    uses: str = Field(description="Installed check name (`llmguard checks` lists them), e.g. template.row_quality.")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="Check parameters.")
    gate: dict[str, GateBound] = Field(default_factory=dict, description="Metric name → bounds.")
    severity: Severity = Severity.BLOCKER
    timeout: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Seconds before the check becomes ERROR."
    )
    allow_error: bool = Field(False, description="An ERROR of this check does not block (explicit exception).")
    resources: ResourceSpec | None = Field(
        None, description="CPUs, GPUs and memory the check needs where an executor places checks (ray)."
    )
    description: str | None = None


DecisionName = Literal["PROMOTE", "REVIEW", "BLOCK"]


def _incidents() -> list[DecisionName]:
    return ["BLOCK", "REVIEW"]


class Notification(_Strict):
    """A webhook told about the decision (e.g. an incident channel on BLOCK)."""

    webhook: str = Field(
        pattern=r"^https?://",
        description="URL receiving a JSON POST of the decision summary; write secret URLs as ${VAR}.",
    )
    when: list[DecisionName] = Field(default_factory=_incidents, description="Decisions that trigger the POST.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers; use ${VAR} for tokens.")
    timeout: float = Field(5.0, gt=0, allow_inf_nan=False, description="Seconds per attempt.")
    retries: int = Field(3, ge=0, le=10, description="Retries after the first attempt (5xx, 429, network errors).")
    approvers: list[str] = Field(
        default_factory=list,
        description="People (or handles) asked to sign off a REVIEW; named in the payload's 'approval' block.",
    )
    report_url: str | None = Field(
        None,
        description="Where reviewers read this run's report.html (e.g. the CI artifact URL, with ${VAR}); "
        "default: the page's path on the machine that ran.",
    )


class ApprovalPolicy(_Strict):
    """Signed human approvals a REVIEW needs before ``llmguard verify --approvals`` accepts it."""

    required: int = Field(1, ge=1, le=20, description="How many valid approvals a REVIEW needs.")
    roles: list[str] = Field(
        default_factory=list,
        description="Roles that must each approve at least once (only these roles count; "
        "a rejection by any of them wins). Empty: any role in the trust file counts.",
    )
    distinct_people: bool = Field(True, description="Each approval must come from another person.")
    two_person_rule: bool = Field(True, description="Whoever signed the run (its key or its name) cannot approve it.")
    valid_for_days: float | None = Field(
        30.0, gt=0, description="Days an approval stays valid after it was signed (null: no limit)."
    )


class Policy(_Strict):
    """How results become a decision."""

    review_on: Literal["warning", "never"] = Field(
        "warning", description="'warning': a failed warning-severity gate asks for human REVIEW."
    )
    on_skip: Literal["review", "block", "ignore"] = Field(
        "review", description="What a skipped blocker check means for the decision."
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of reported confidence intervals.")
    default_timeout: float = Field(
        600.0, gt=0, allow_inf_nan=False, description="Seconds per check when it sets no timeout."
    )
    require_signature: bool = Field(False, description="BLOCK when the run is not signed.")
    isolation: Literal["thread", "process"] = Field(
        "thread", description="'process': each check runs in a forked child, so a crash is an ERROR of that check."
    )
    load_timeout: float = Field(
        600.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds a model loader or factory may take before the run stops with exit 2.",
    )
    allow_pickle: bool = Field(
        True, description="false: refuse (exit 2, before loading) models stored as pickle/joblib."
    )
    paths: Literal["any", "confined"] = Field(
        "any",
        description="'confined': every dataset and model must resolve (symlinks followed) inside the suite's folder.",
    )
    require_model_signature: bool = Field(False, description="Refuse (exit 2) to load a model that names no signature.")
    approvals: ApprovalPolicy | None = Field(
        None, description="Signed approvals that turn a REVIEW into an accepted promotion."
    )
    executor: str = Field(
        "local",
        description="Where checks run: 'local' (this process) or 'ray' (Ray tasks); llmguard run --executor overrides.",
    )
    inference_actors: int = Field(
        0,
        ge=0,
        le=1024,
        description="Model predictions and generations computed by this many Ray actors (Ray Data map_batches; "
        "needs the ray extra), whichever executor runs the checks; 0: in the check's own process. "
        "llmguard run --inference-actors overrides.",
    )


def _known(kind: str) -> Any:
    def check(v: str, info: ValidationInfo) -> str:
        names = (info.context or {}).get(kind)
        if names is not None and v not in names:
            listed = ", ".join(sorted(names)) or "none"
            raise ValueError(f"unknown {kind[:-1]} '{v}'{did_you_mean(v, names)}; the suite defines: {listed}")
        return v

    check.llmguard_ref = kind  # type: ignore[attr-defined]  # read by loading._default_refs
    return AfterValidator(check)


ModelRef = Annotated[str, _known("models")]
"""A check parameter naming one of the suite's models (validated against them)."""

DatasetRef = Annotated[str, _known("datasets")]
"""A check parameter naming one of the suite's datasets (validated against them)."""


class Suite(_Strict):
    """A validated suite (``apiVersion: llmguard/v1``)."""

    apiVersion: Literal["llmguard/v1"]
    name: str
    description: str | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Free-form facts for reports (owner, intended use, ...)."
    )
    seed: int = Field(0, ge=0, lt=2**63, description="Seed of every random draw in the run.")
    prompts: dict[str, PromptSpec] = Field(
        default_factory=dict, description="Named prompt templates that models attach with 'prompt: NAME'."
    )
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = Field(default_factory=dict)
    checks: list[CheckConfig] = Field(min_length=1)
    policy: Policy = Field(default_factory=lambda: Policy())
    waivers: list[Waiver] = Field(default_factory=list)
    notify: list[Notification] = Field(default_factory=list, description="Webhooks told about the decision.")
    incidents: list[IncidentStep] = Field(
        default_factory=list, description="Playbook run by llmguard monitor on a fired gate or BLOCK."
    )
    matrix: Matrix | None = Field(
        None, description="Candidates of a fleet: 'llmguard run' runs the suite once for each (see --matrix)."
    )

    @model_validator(mode="after")
    def _known_prompts(self) -> Suite:
        for name, model in self.models.items():
            if isinstance(model.prompt, str) and model.prompt not in self.prompts:
                listed = ", ".join(sorted(self.prompts)) or "none"
                raise ValueError(
                    f"models.{name}.prompt: unknown prompt '{model.prompt}'"
                    f"{did_you_mean(model.prompt, self.prompts)}; 'prompts:' defines: {listed}"
                )
        return self

    def prompt_of(self, model: str) -> PromptSpec | None:
        """The prompt template attached to ``model`` (resolved by name), or None."""
        spec = self.models[model].prompt
        return self.prompts[spec] if isinstance(spec, str) else spec

    @model_validator(mode="after")
    def _unique_ids(self) -> Suite:
        seen: set[str] = set()
        for check in self.checks:
            if check.id in seen:
                raise ValueError(f"two checks have the id '{check.id}'")
            seen.add(check.id)
        return self

    def check(self, check_id: str) -> CheckConfig:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)
