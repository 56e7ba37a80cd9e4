"""What a check sees of a run: models, datasets, cached predictions, seed, levels."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ArtifactError

if TYPE_CHECKING:
    from .artifacts import LoadedDataset, LoadedModel
    from .loading import LoadedSuite
    from .registry import Registry
    from .suite import CheckConfig


class PredictionCache:
    """Each (model, dataset, method) is computed at most once per run, whatever the checks.

    ``calls`` counts the real model calls, so tests (and the report) can show it.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[str, str, str], Any] = {}
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.calls: Counter[tuple[str, str, str]] = Counter()

    def get(self, key: tuple[str, str, str], compute: Callable[[], Any]) -> Any:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self.calls[key] += 1
                self._values[key] = compute()
            return self._values[key]

    def stats(self) -> dict[str, int]:
        return {"/".join(k): v for k, v in sorted(self.calls.items())}


def derive_seed(seed: int, *parts: str) -> int:
    """A stable 32-bit seed per (run seed, check id): independent streams, reproducible."""
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass
class CheckContext:
    """The run as one check sees it.

    Checks read models and datasets through this object, never from disk, so every
    artifact is loaded and digested once and predictions are shared across checks.
    """

    suite: LoadedSuite
    check: CheckConfig
    models: dict[str, LoadedModel]
    datasets: dict[str, LoadedDataset]
    cache: PredictionCache
    artifact_dir: Path
    seed: int
    default_confidence: float = 0.95
    notes: list[str] = field(default_factory=list)
    #: what the installed plugins provide (checks read ``registry.extensions`` from it)
    registry: Registry | None = None

    @property
    def check_id(self) -> str:
        return self.check.id

    def rng(self) -> np.random.Generator:
        """A fresh generator seeded for this check (same seed → same draws)."""
        return np.random.default_rng(self.seed)

    def model(self, name: str) -> LoadedModel:
        try:
            return self.models[name]
        except KeyError:
            raise ArtifactError(f"unknown model '{name}'") from None

    def dataset(self, name: str) -> LoadedDataset:
        try:
            return self.datasets[name]
        except KeyError:
            raise ArtifactError(f"unknown dataset '{name}'") from None

    def confidence(self, metric: str | None = None) -> float:
        """Level at which to compute the interval of ``metric``.

        The gate's ``confidence`` when the suite gates that metric with one, otherwise the
        policy's reporting level.
        """
        if metric is not None:
            bound = self.check.gate.get(metric)
            if bound is not None and bound.confidence is not None:
                return bound.confidence
        return self.default_confidence

    def gated_metrics(self) -> list[str]:
        return list(self.check.gate)

    def inputs(self, model: str, dataset: str) -> Any:
        return self.model(model).inputs(self.dataset(dataset))

    def predict(self, model: str, dataset: str, method: str = "predict") -> np.ndarray:
        """``model.<method>(inputs of dataset)``, computed once per run and shared."""
        loaded = self.model(model)
        data = self.dataset(dataset)

        def compute() -> np.ndarray:
            fn = getattr(loaded.obj, method, None)
            if fn is None:
                raise ArtifactError(f"model '{model}' ({type(loaded.obj).__name__}) has no {method}()")
            return np.asarray(fn(loaded.inputs(data)))

        out: np.ndarray = self.cache.get((model, dataset, method), compute)
        return out

    def note(self, message: str) -> None:
        """Record a warning shown with this check's result."""
        self.notes.append(message)
