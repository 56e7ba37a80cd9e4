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
        None, description="Also time this model, interleaved on the same requests, and report <stat>_delta "
        "and <stat>_ratio (single_stream and offline only).")
    scenario: Literal["single_stream", "server", "offline"] = Field(
        "single_stream", description="Closed loop, open loop with Poisson arrivals, or batch throughput.")
    method: str = Field("predict", description="Method called on the model object (torch modules: called).")
    batch_size: int | None = Field(None, ge=1, description="Rows per request (default 1; offline 256).")
    batch_sizes: list[int] | None = Field(
        None, min_length=1, description="Batch-size sweep: also measure each size (metrics batch_<b>.*).")
    requests: int = Field(1000, ge=1, description="Stop after this many timed requests ...")
    duration_s: float = Field(60.0, gt=0, description="... or after this many seconds, whichever comes first.")
    warmup: int = Field(10, ge=0, description="Untimed calls before timing, on top of one per input shape.")
    warmup_shapes: bool = Field(True, description="Warm up every distinct input shape once before timing.")
    target_qps: float | None = Field(None, gt=0, description="server: mean Poisson arrival rate (requests/s).")
    concurrency: int = Field(1, ge=1, le=1024, description="server: requests in flight at most (workers).")
    device: str = Field("auto", pattern=DEVICE_PATTERN,
                        description="auto (the model's own), cpu, cuda or cuda:N; CUDA absent → SKIP.")
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



class GenerationParams(BaseModel):
    """Parameters of ``latency.generation``."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="A causal LM (loader transformers) or an http endpoint.")
    dataset: DatasetRef = Field("current", description="Dataset whose 'text' column holds the prompts.")
    baseline: ModelRef | None = Field(
        None, description="single_stream: time this model too, interleaved request by request "
        "(ttft_*_ms_delta, tpot_*_ms_ratio with paired bootstrap intervals)."
    )
    scenario: Literal["single_stream", "server"] = Field(
        "single_stream", description="One request at a time, or Poisson arrivals at target_qps.")
    max_new_tokens: int = Field(32, ge=2, le=8192, description="Output tokens asked per request.")
    ignore_eos: bool = Field(
        False, description="Generate exactly max_new_tokens (local: min_new_tokens; http: vLLM's ignore_eos).")
    requests: int = Field(64, ge=1, description="Stop after this many timed requests ...")
    duration_s: float = Field(300.0, gt=0, description="... or after this many seconds, whichever comes first.")
    warmup: int = Field(2, ge=0, description="Untimed requests before timing.")
    target_qps: float | None = Field(None, gt=0, description="server: mean Poisson arrival rate (requests/s).")
    concurrency: int = Field(4, ge=1, le=1024, description="server: requests in flight at most.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds one request may take before the check errors.")
    device: str = Field("auto", pattern=DEVICE_PATTERN, description="As for latency.inference.")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads while timing.")

    @model_validator(mode="after")
    def _scenario_fields(self) -> GenerationParams:
        if (self.scenario == "server") != (self.target_qps is not None):
            raise ValueError("'target_qps' is needed by, and only by, scenario 'server'")
        return self
