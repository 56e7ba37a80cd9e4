"""Parameter models of the latency checks (pydantic only: imported on every CLI call)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmguard_ops import DatasetRef, ModelRef

DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"


class InferenceParams(BaseModel):
    """Parameters of ``latency.inference``."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="Model to time.")
    dataset: DatasetRef = Field("current", description="Dataset whose inputs are sent as requests.")
    baseline: ModelRef | None = Field(
        None,
        description="Also time this model, interleaved on the same requests, and report <stat>_delta "
        "and <stat>_ratio (single_stream and offline only).",
    )
    scenario: Literal["single_stream", "server", "offline"] = Field(
        "single_stream", description="Closed loop, open loop with Poisson arrivals, or batch throughput."
    )
    method: str = Field("predict", description="Method called on the model object (torch modules: called).")
    batch_size: int | None = Field(None, ge=1, description="Rows per request (default 1; offline 256).")
    batch_sizes: list[int] | None = Field(
        None, min_length=1, description="Batch-size sweep: also measure each size (metrics batch_<b>.*)."
    )
    requests: int = Field(1000, ge=1, description="Stop after this many timed requests ...")
    duration_s: float = Field(60.0, gt=0, description="... or after this many seconds, whichever comes first.")
    warmup: int = Field(10, ge=0, description="Untimed calls before timing, on top of one per input shape.")
    warmup_shapes: bool = Field(True, description="Warm up every distinct input shape once before timing.")
    target_qps: float | None = Field(None, gt=0, description="server: mean Poisson arrival rate (requests/s).")
    concurrency: int = Field(1, ge=1, le=1024, description="server: requests in flight at most (workers).")
    device: str = Field(
        "auto", pattern=DEVICE_PATTERN, description="auto (the model's own), cpu, cuda or cuda:N; CUDA absent → SKIP."
    )
    threads: int | None = Field(None, ge=1, description="torch intra-op threads while timing (default: as set).")

    @model_validator(mode="after")
    def _scenario_fields(self) -> InferenceParams:
        if self.scenario == "server" and self.target_qps is None:
            raise ValueError("scenario 'server' needs 'target_qps'")
        if self.scenario != "server" and self.target_qps is not None:
            raise ValueError("'target_qps' applies to scenario 'server' only")
        if self.baseline is not None and self.scenario == "server":
            raise ValueError("'baseline' is measured interleaved: use scenario single_stream or offline")
        return self

    def effective_batch(self) -> int:
        return self.batch_size or (256 if self.scenario == "offline" else 1)


class GenerationLatencyParams(BaseModel):
    """Parameters of ``latency.generation``."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="A causal LM (loader transformers) or an http endpoint.")
    dataset: DatasetRef = Field("current", description="Dataset whose 'text' column holds the prompts.")
    baseline: ModelRef | None = Field(
        None,
        description="single_stream: time this model too, interleaved request by request "
        "(ttft_*_ms_delta, tpot_*_ms_ratio with paired bootstrap intervals).",
    )
    scenario: Literal["single_stream", "server"] = Field(
        "single_stream", description="One request at a time, or Poisson arrivals at target_qps."
    )
    max_new_tokens: int = Field(32, ge=2, le=8192, description="Output tokens asked per request.")
    ignore_eos: bool = Field(
        False, description="Generate exactly max_new_tokens (local: min_new_tokens; http: vLLM's ignore_eos)."
    )
    requests: int = Field(64, ge=1, description="Stop after this many timed requests ...")
    duration_s: float = Field(300.0, gt=0, description="... or after this many seconds, whichever comes first.")
    warmup: int = Field(2, ge=0, description="Untimed requests before timing.")
    target_qps: float | None = Field(None, gt=0, description="server: mean Poisson arrival rate (requests/s).")
    concurrency: int = Field(4, ge=1, le=1024, description="server: requests in flight at most.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds one request may take before the check errors.")
    device: str = Field("auto", pattern=DEVICE_PATTERN, description="As for latency.inference.")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads while timing.")

    @model_validator(mode="after")
    def _scenario_fields(self) -> GenerationLatencyParams:
        if (self.scenario == "server") != (self.target_qps is not None):
            raise ValueError("'target_qps' is needed by, and only by, scenario 'server'")
        return self


class CapacityParams(BaseModel):
    """Parameters of ``latency.capacity``."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="Model (local or http endpoint) whose capacity is searched.")
    dataset: DatasetRef = Field("current", description="Dataset whose inputs are sent as requests.")
    baseline: ModelRef | None = Field(
        None, description="Search this model's capacity too (after the candidate's) and report max_qps_at_slo_ratio."
    )
    method: str = Field("predict", description="Method called on the model object (torch modules: called).")
    batch_size: int = Field(1, ge=1, description="Rows per request.")
    percentile: Literal["p50_ms", "p90_ms", "p95_ms", "p99_ms"] = Field(
        "p99_ms", description="The latency percentile the SLO is set on."
    )
    slo_ms: float = Field(gt=0, description="The SLO: that percentile must stay at or under this many ms.")
    min_qps: float = Field(1.0, gt=0, description="First arrival rate tried (requests/s).")
    max_qps: float = Field(1000.0, gt=0, description="Highest arrival rate tried.")
    resolution: float = Field(
        0.1, gt=0, le=1, description="Bisect until the failing rate is within this share above the passing one."
    )
    max_steps: int = Field(12, ge=1, le=50, description="At most this many rates are measured per model.")
    requests_per_step: int = Field(1000, ge=1, description="Poisson arrivals per rate ...")
    step_duration_s: float = Field(60.0, gt=0, description="... or this many seconds of arrivals, if shorter.")
    concurrency: int = Field(
        64, ge=1, le=1024, description="Requests in flight at most (a local model: the worker threads serving it)."
    )
    warmup: int = Field(10, ge=0, description="Untimed calls before the search, on top of one per input shape.")
    device: str = Field("auto", pattern=DEVICE_PATTERN, description="As for latency.inference.")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads while timing.")
    price_per_instance_hour: float | None = Field(
        None, ge=0, description="Price of one serving instance per hour: gives cost_per_1k_requests."
    )
    timeout_s: float = Field(300.0, gt=0, description="Seconds a step may run past its last arrival.")

    @model_validator(mode="after")
    def _rates(self) -> CapacityParams:
        if self.max_qps < self.min_qps:
            raise ValueError("'max_qps' is smaller than 'min_qps'")
        return self
